// One benchmark server process: `node bench/server.mjs '<json config>'`,
// started by run.mjs with an IPC channel. Kinds:
//   bare     Fastify alone (the ceiling): same routes, a constant user, the same permission check
//   plugin   fastify-griddy-auth (the built package)
//   jwks     fastify-jwt-jwks: onRequest authenticate + preHandler permission check
//   sessions fastify-griddy-auth with `sessions: { redis }` (a real Redis, started by run.mjs),
//            1000 sessions and 100 users ended before the measurements (none of the fixtures')
//   baseline fastify-griddy-auth as built from another commit (`--baseline REF`): before/after in one run
//   ideal    the floor: bare Fastify plus a hand-written one-shot crypto.verify of the token in the
//            handler (split, parse header and payload, check alg, verify; no library, no cache)
// All three serve GET /api/v1/leagues/ (needs leagues:read) and GET /healthz (public),
// on 127.0.0.1 only, with the logger off.
//
// IPC: the server sends { type: 'ready', port }; on { type: 'stats' } it answers
// with its own CPU accounting (process.cpuUsage), memory, requests received, and how many RSA
// signature verifications node:crypto was asked for (counted by wrapping
// crypto.createVerify, which fast-jwt uses for RS256). Nothing of this goes
// over HTTP, so measured request counts hold only benchmark traffic.
import crypto from 'node:crypto'
import { readFileSync } from 'node:fs'
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
} else if (config.kind === 'ideal') {
  const { jwk } = JSON.parse(readFileSync(config.keyFile, 'utf8'))
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' })
  const unauthorized = () => Object.assign(new Error('Unauthorized'), { statusCode: 401 })
  app.get(config.route, async (request) => {
    const header = request.headers.authorization
    if (typeof header !== 'string' || !header.startsWith('Bearer ')) throw unauthorized()
    const token = header.slice(7)
    const first = token.indexOf('.')
    const last = token.lastIndexOf('.')
    const jose = JSON.parse(Buffer.from(token.slice(0, first), 'base64url').toString())
    const payload = JSON.parse(Buffer.from(token.slice(first + 1, last), 'base64url').toString())
    if (jose.alg !== 'RS256') throw unauthorized()
    verifications++ // crypto.verify is not createVerify: counted here
    if (!crypto.verify('sha256', Buffer.from(token.slice(0, last)), key, Buffer.from(token.slice(last + 1), 'base64url'))) throw unauthorized()
    if (!grants(payload.permissions, REQUIRED)) throw forbidden()
    return { userId: payload.sub, leagues: [] }
  })
  app.get(config.publicRoute, async () => ({ ok: true }))
} else if (config.kind === 'plugin' || config.kind === 'sessions' || config.kind === 'baseline') {
  const griddyAuth = require(config.pluginPath)
  const options = { issuer: config.issuer, audience: config.audience, jwksUrl: config.jwksUrl }
  let redis
  if (config.kind === 'sessions') {
    const Redis = require('ioredis')
    redis = new Redis(config.redisUrl)
    app.addHook('onClose', async () => { redis.disconnect() })
    options.sessions = { redis }
  }
  await app.register(griddyAuth, options)
  app.get(config.route, { config: { permissions: REQUIRED } }, async (request) => ({ userId: request.auth.userId, leagues: [] }))
  app.get(config.publicRoute, { config: { public: true } }, async () => ({ ok: true }))
  if (config.kind === 'sessions') {
    await app.ready()
    for (let i = 0; i < 1000; i++) await app.griddyAuth.endSession(`sess_ended_${i}`)
    for (let i = 0; i < 100; i++) await app.griddyAuth.endUserSessions(`user_ended_${i}`)
    await selfCheck(app)
  }
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

/** Proves the sessions server refuses an ended session (a token signed with the fixtures' key), before anything is measured. */
async function selfCheck (app) {
  const { kid, pem } = JSON.parse(readFileSync(config.keyFile, 'utf8'))
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid })}.${b64({ iss: config.issuer, aud: config.audience, sub: 'user_x', sid: 'sess_ended_7', permissions: REQUIRED, iat: now, exp: now + 60 })}`
  const token = `${input}.${crypto.sign('sha256', Buffer.from(input), crypto.createPrivateKey(pem)).toString('base64url')}`
  const res = await app.inject({ url: config.route, headers: { authorization: `Bearer ${token}` } })
  if (res.statusCode !== 401 || res.json().code !== 'GRIDDY_AUTH_SESSION_ENDED') {
    throw new Error(`bench: the sessions server did not refuse an ended session: ${res.statusCode} ${res.body}`)
  }
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
