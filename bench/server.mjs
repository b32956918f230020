// One benchmark server process: `node bench/server.mjs '<json config>'`,
// started by run.mjs with an IPC channel. Kinds:
//   bare     Fastify alone (the ceiling): same routes, a constant user, the same permission check
//   plugin   fastify-griddy-auth (the built package)
//   jwks     fastify-jwt-jwks: onRequest authenticate + preHandler permission check
// All three serve GET /api/v1/leagues/ (needs leagues:read) and GET /healthz (public),
// on 127.0.0.1 only, with the logger off.
//
// IPC: the server sends { type: 'ready', port }; on { type: 'stats' } it answers
// with its own CPU accounting (process.cpuUsage), memory, requests received, and how many RSA
// signature verifications node:crypto was asked for (counted by wrapping
// crypto.createVerify, which fast-jwt uses for RS256). Nothing of this goes
// over HTTP, so measured request counts hold only benchmark traffic.
import crypto from 'node:crypto'
import { createRequire } from 'node:module'

const config = JSON.parse(process.argv[2])
const require = createRequire(import.meta.url)

// Count RSA verifications: to prove that the cold scenario misses the token
// cache and the hot one hits it. Installed before fast-jwt captures the function.
let verifications = 0
const createVerify = crypto.createVerify
crypto.createVerify = function countedCreateVerify (...args) {
  verifications++
  return createVerify.apply(this, args)
}

const Fastify = require('fastify')
const app = Fastify({ logger: false })

const REQUIRED = [config.permission]
function grants (granted, required) {
  if (!Array.isArray(granted)) return false
  for (const name of required) if (!granted.includes(name)) return false
  return true
}
function forbidden () {
  const err = new Error('Insufficient permissions.')
  err.statusCode = 403
  return err
}

if (config.kind === 'bare') {
  const user = Object.freeze({ userId: 'user_0', permissions: Object.freeze(['leagues:read', 'leagues:write']) })
  app.get(config.route, async () => {
    if (!grants(user.permissions, REQUIRED)) throw forbidden()
    return { userId: user.userId, leagues: [] }
  })
  app.get(config.publicRoute, async () => ({ ok: true }))
} else if (config.kind === 'plugin') {
  const griddyAuth = require(config.pluginPath)
  await app.register(griddyAuth, { issuer: config.issuer, audience: config.audience, jwksUrl: config.jwksUrl })
  app.get(config.route, { config: { permissions: REQUIRED } }, async (request) => ({ userId: request.auth.userId, leagues: [] }))
  app.get(config.publicRoute, { config: { public: true } }, async () => ({ ok: true }))
} else if (config.kind === 'jwks') {
  const fastifyJwtJwks = require('fastify-jwt-jwks')
  await app.register(fastifyJwtJwks, { jwksUrl: config.jwksUrl, issuer: config.issuer, audience: config.audience })
  app.get(config.route, {
    onRequest: [app.authenticate],
    preHandler: async (request) => {
      if (!grants(request.user.permissions, REQUIRED)) throw forbidden()
    }
  }, async (request) => ({ userId: request.user.sub, leagues: [] }))
  app.get(config.publicRoute, async () => ({ ok: true }))
} else {
  throw new Error(`unknown server kind ${config.kind}`)
}

await app.listen({ host: '127.0.0.1', port: 0 })
// Requests the server received (a second 'request' listener: the same tiny cost in every
// server). CPU per request divides by this, so the requests wrk had in flight when it
// stopped (served, so paid for, but not counted by wrk) are not charged to the others.
let requests = 0
app.server.on('request', () => { requests++ })

function stats () {
  const mem = process.memoryUsage()
  return {
    type: 'stats',
    cpu: process.cpuUsage(),
    wallNs: process.hrtime.bigint().toString(),
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    requests,
    verifications
  }
}

process.on('message', (msg) => {
  if (msg.type === 'stats') {
    process.send(stats())
  } else if (msg.type === 'gc') {
    if (typeof globalThis.gc === 'function') {
      globalThis.gc()
      globalThis.gc()
    }
    setTimeout(() => process.send(stats()), 100)
  } else if (msg.type === 'exit') {
    // process.exit (not a signal) so that --cpu-prof writes its profile.
    app.close().finally(() => process.exit(0))
  }
})
process.on('disconnect', () => process.exit(0))
process.send({ type: 'ready', port: app.server.address().port })
