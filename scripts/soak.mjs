#!/usr/bin/env node
// Bounded soak with mixed traffic, against the BUILT package (dist/):
//
//   npm run soak                       (builds first, then runs 30 s)
//   node scripts/soak.mjs --duration 10 --connections 32 --cooldown 1000
//
// The plugin runs in a child process (so its memory is measured alone) on
// 127.0.0.1, with `jwksUrl` pointing at a fake identity provider in this
// process. autocannon sends, for `--duration` seconds over `--connections`
// connections, a mix of
//   valid      -> must be 200
//   expired    -> must be 401 GRIDDY_AUTH_EXPIRED
//   forged     -> must be 401 GRIDDY_AUTH_SIGNATURE   (another key, the real kid)
//   random-kid -> must be 401 GRIDDY_AUTH_UNKNOWN_KEY (a new kid per token)
// and the run fails (exit 1) on any other answer, on memory growth beyond
// the limits, or when the provider saw more JWKS requests than
// 1 + ⌈duration / jwksCooldown⌉ (the lazy fetch, then one refetch per
// cooldown for the random kids). It prints its figures as a markdown table.
//
// Options: --duration <s> (30), --connections <n> (32), --cooldown <ms>
// (1000), --valid <n> distinct valid tokens (1500, more than the 1000-entry
// verified-token cache, so it churns), --mix valid:70,expired:10,forged:10,random-kid:10,
// --seed <n> (1), --max-rss-growth <MiB> (64), --max-heap-growth <MiB> (16).
import { fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const MiB = 1024 * 1024

function option (name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback
}

if (process.argv.includes('--child')) await child()
else await parent()

// ---------------------------------------------------------------------------
// The server under test: the built plugin, one route, nothing else.

async function child () {
  const { default: Fastify } = await import('fastify')
  const { default: griddyAuth } = await import(join(root, 'dist/index.mjs'))
  const config = JSON.parse(process.env.SOAK_CONFIG)
  const app = Fastify({ logger: false })
  await app.register(griddyAuth, config.plugin)
  // The kind of each request comes back in a header, so the load generator can judge every answer.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-soak-kind', request.url.slice('/soak/'.length))
    done(null, payload)
  })
  app.get('/soak/:kind', async (request) => ({ userId: request.auth.userId }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const memory = () => {
    const { rss, heapUsed } = process.memoryUsage()
    return { rss, heapUsed }
  }
  process.on('message', async (message) => {
    if (message === 'memory') process.send({ memory: memory() })
    if (message === 'gc-memory') {
      globalThis.gc?.()
      process.send({ gcMemory: memory() })
    }
    if (message === 'close') {
      await app.close()
      process.exit(0)
    }
  })
  process.send({ port: app.server.address().port })
}

// ---------------------------------------------------------------------------
// The load generator, the fake identity provider and the verdict.

async function parent () {
  const duration = Number(option('duration', '30'))
  const connections = Number(option('connections', '32'))
  const cooldown = Number(option('cooldown', '1000'))
  const validCount = Number(option('valid', '1500'))
  const maxRssGrowth = Number(option('max-rss-growth', '64')) * MiB
  const maxHeapGrowth = Number(option('max-heap-growth', '16')) * MiB
  const mix = Object.fromEntries(option('mix', 'valid:70,expired:10,forged:10,random-kid:10').split(',').map((part) => {
    const [kind, weight] = part.split(':')
    return [kind, Number(weight)]
  }))
  let seed = Number(option('seed', '1')) >>> 0
  const random = () => { // mulberry32: the same mix for the same seed
    seed = (seed + 0x6d2b79f5) >>> 0
    let x = seed
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }

  const { createTestIssuer, createTestKey } = await import(join(root, 'dist/testing/index.mjs'))
  const { default: autocannon } = await import('autocannon')

  const issuer = await createTestIssuer({ issuer: 'https://soak.test', audience: 'https://api.soak.test', ttl: duration + 600 })
  const foreign = await createTestKey(undefined)
  const started = Date.now()
  const pools = {
    valid: Array.from({ length: validCount }, (_, i) => issuer.sign({ sub: `user_${i}`, permissions: ['leagues:read'] })),
    expired: Array.from({ length: 200 }, (_, i) => issuer.sign({ sub: `expired_${i}` }, { expiresIn: -3600 })),
    forged: Array.from({ length: 200 }, (_, i) => issuer.sign({ sub: `forged_${i}` }, { key: foreign, kid: issuer.key.kid })),
    'random-kid': Array.from({ length: 500 }, (_, i) => issuer.sign({ sub: `random_${i}` }, { kid: randomUUID() }))
  }
  const expected = {
    valid: { status: 200 },
    expired: { status: 401, code: 'GRIDDY_AUTH_EXPIRED' },
    forged: { status: 401, code: 'GRIDDY_AUTH_SIGNATURE' },
    'random-kid': { status: 401, code: 'GRIDDY_AUTH_UNKNOWN_KEY' }
  }
  for (const kind of Object.keys(mix)) {
    if (pools[kind] === undefined) throw new Error(`--mix: unknown kind ${kind} (valid, expired, forged, random-kid)`)
  }
  const kinds = Object.keys(mix)
  const total = kinds.reduce((sum, kind) => sum + mix[kind], 0)
  const pick = () => {
    let r = random() * total
    for (const kind of kinds) {
      r -= mix[kind]
      if (r < 0) return kind
    }
    return kinds[kinds.length - 1]
  }
  console.error(`prepared ${Object.values(pools).reduce((n, p) => n + p.length, 0)} tokens in ${Date.now() - started} ms`)

  // The fake identity provider: the issuer's key set, every request counted.
  let jwksRequests = 0
  const idp = createServer((request, response) => {
    if (request.url !== '/.well-known/jwks.json') return response.writeHead(404).end()
    jwksRequests++
    const body = JSON.stringify(issuer.jwks)
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body)
  })
  await new Promise((resolve) => idp.listen(0, '127.0.0.1', resolve))
  const jwksUrl = `http://127.0.0.1:${idp.address().port}/.well-known/jwks.json`

  const server = fork(fileURLToPath(import.meta.url), ['--child'], {
    execArgv: ['--expose-gc'],
    env: { ...process.env, SOAK_CONFIG: JSON.stringify({ plugin: { issuer: issuer.issuer, audience: issuer.audience, jwksUrl, jwksCooldown: cooldown } }) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const ask = (question, field) => new Promise((resolve) => {
    const onMessage = (message) => {
      if (message[field] !== undefined) {
        server.off('message', onMessage)
        resolve(message[field])
      }
    }
    server.on('message', onMessage)
    server.send(question)
  })
  const port = await new Promise((resolve, reject) => {
    server.once('message', (message) => resolve(message.port))
    server.once('exit', (code) => reject(new Error(`the server exited (${code})`)))
  })

  // Judge every answer.
  const answers = {}
  const unexpected = []
  const record = (kind, status, code) => {
    const key = `${kind} -> ${status}${code === undefined ? '' : ` ${code}`}`
    answers[key] = (answers[key] ?? 0) + 1
    const want = expected[kind]
    if (want === undefined || status !== want.status || code !== want.code) {
      if (unexpected.length < 20) unexpected.push(key)
      unexpected.count = (unexpected.count ?? 0) + 1
    }
  }

  const warmup = Math.min(3000, duration * 100)
  const samples = []
  const baseline = { gc: await ask('gc-memory', 'gcMemory') }
  const sampler = setInterval(async () => {
    samples.push({ at: Date.now() - started, ...(await ask('memory', 'memory')) })
  }, 1000)
  let afterWarmup
  const warmupTimer = setTimeout(async () => { afterWarmup = await ask('gc-memory', 'gcMemory') }, warmup)

  const loadStarted = Date.now()
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration,
    requests: [{
      method: 'GET',
      setupRequest (request) {
        const kind = pick()
        const pool = pools[kind]
        request.path = `/soak/${kind}`
        request.headers = { ...request.headers, authorization: `Bearer ${pool[Math.floor(random() * pool.length)]}` }
        return request
      },
      onResponse (status, body, _context, headers) {
        let code
        if (status !== 200) {
          try { code = JSON.parse(body).code } catch { code = 'not-json' }
        }
        record(headers['x-soak-kind'] ?? 'unknown', status, code)
      }
    }]
  })
  const loadMs = Date.now() - loadStarted
  clearInterval(sampler)
  clearTimeout(warmupTimer)
  const end = await ask('memory', 'memory')
  const endGc = await ask('gc-memory', 'gcMemory')
  server.send('close')
  await new Promise((resolve) => server.once('exit', resolve))
  idp.close()

  // Verdict
  const during = samples.filter((s) => s.at - (loadStarted - started) >= warmup)
  const start = during[0] ?? end
  const peakRss = Math.max(...samples.map((s) => s.rss), end.rss)
  const rssGrowth = end.rss - start.rss
  const heapGrowth = endGc.heapUsed - (afterWarmup ?? baseline.gc).heapUsed
  // SPEC §9: the lazy fetch, then at most one refetch per cooldown for unknown kids, over the measured run.
  const jwksBound = 1 + Math.ceil(loadMs / cooldown)
  const judged = Object.values(answers).reduce((a, b) => a + b, 0)
  const failures = []
  if ((unexpected.count ?? 0) > 0) failures.push(`${unexpected.count} unexpected answers, e.g. ${unexpected.slice(0, 5).join('; ')}`)
  if (result.errors > 0 || result.timeouts > 0) failures.push(`${result.errors} connection errors, ${result.timeouts} timeouts`)
  if (result.non2xx + result['2xx'] !== judged) failures.push(`answers judged (${judged}) != answers received (${result.non2xx + result['2xx']})`)
  if (rssGrowth > maxRssGrowth) failures.push(`RSS grew by ${(rssGrowth / MiB).toFixed(1)} MiB after warm-up (limit ${maxRssGrowth / MiB})`)
  if (heapGrowth > maxHeapGrowth) failures.push(`heap after GC grew by ${(heapGrowth / MiB).toFixed(1)} MiB (limit ${maxHeapGrowth / MiB})`)
  if (jwksRequests > jwksBound) failures.push(`${jwksRequests} JWKS requests, more than 1 + duration/cooldown = ${jwksBound}`)

  const mb = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`
  const rows = [
    ['duration', `${duration} s (${(loadMs / 1000).toFixed(1)} s measured), ${connections} connections, Node ${process.version}`],
    ['mix', kinds.map((kind) => `${kind} ${mix[kind]}`).join(', ')],
    ['requests', `${result.requests.total} (${Math.round(result.requests.average)} req/s average)`],
    ['latency', `p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms`],
    ['answers', Object.entries(answers).sort().map(([k, n]) => `${k}: ${n}`).join('<br>')],
    ['unexpected answers', String(unexpected.count ?? 0)],
    ['errors / timeouts', `${result.errors} / ${result.timeouts}`],
    ['server RSS', `start ${mb(start.rss)} (after ${warmup / 1000} s warm-up), end ${mb(end.rss)}, peak ${mb(peakRss)}; growth ${mb(rssGrowth)}`],
    ['server heap after GC', `after warm-up ${mb((afterWarmup ?? baseline.gc).heapUsed)}, end ${mb(endGc.heapUsed)}; growth ${mb(heapGrowth)}`],
    ['JWKS requests', `${jwksRequests} (bound 1 + ⌈${loadMs} ms / ${cooldown} ms⌉ = ${jwksBound})`],
    ['verdict', failures.length === 0 ? 'pass' : `FAIL: ${failures.join('; ')}`]
  ]
  console.log('| soak | |\n|---|---|')
  for (const [name, value] of rows) console.log(`| ${name} | ${value} |`)
  process.exitCode = failures.length === 0 ? 0 : 1
}
