/**
 * Redis faults (SPEC §11), with a real redis-server that the tests start
 * late, kill and pause: never a 500, never a hang of the request path;
 * known records stay enforced; each outage is logged once when it starts and
 * once when it ends; endSession() rejects within `redisTimeout` while Redis
 * does not answer; ends made meanwhile reach the other instances once Redis
 * is back, and new ones propagate again, without a restart.
 */
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import griddyAuth, { type SessionsOptions } from '../../lib/index'
import { createTestIssuer, signClerkWebhook, type TestIssuer } from '../../lib/testing/index'
import { buildApp, captureLogs, get, type LogCapture, type Tap } from '../helpers'
import { RedisServer, redisUnavailable } from '../fixtures/redis-server'

const skip = redisUnavailable(t)
const redisTimeout = 300
const secret = `whsec_${Buffer.from('webhook secret of the fault tests').toString('base64')}`
let issuer: TestIssuer

t.before(async () => {
  issuer = await createTestIssuer()
})

interface Instance { app: FastifyInstance, logs: LogCapture, readyMs: number }

async function instance (t: Tap, redis: RedisServer, sessions: Omit<SessionsOptions, 'redis'> = {}): Promise<Instance> {
  const logs = captureLogs()
  const started = performance.now()
  const app = await buildApp(t, { ...issuer.pluginOptions, sessions: { redis: redis.client(), redisTimeout, ...sessions } }, {
    fastify: { logger: { level: 'info', stream: logs.stream } }
  })
  return { app, logs, readyMs: performance.now() - started }
}

const outageStarts = (logs: LogCapture): unknown[] => logs.pluginLines().filter((line) => line.msg?.startsWith('griddy-auth: Redis is unreachable'))
const outageEnds = (logs: LogCapture): unknown[] => logs.pluginLines().filter((line) => line.msg === 'griddy-auth: Redis answers again; ended sessions reloaded and shared')

async function until (what: string, condition: () => boolean | Promise<boolean>, limit = 5000): Promise<number> {
  const started = performance.now()
  while (!await condition()) {
    if (performance.now() - started > limit) throw new Error(`${what}: not within ${limit} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return performance.now() - started
}

async function status (app: FastifyInstance, sid: string): Promise<number> {
  return (await get(app, '/private', issuer.sign({ sub: 'user_1', sid }))).statusCode
}

/** How long `promise` takes to settle, and how. */
async function timed (promise: Promise<unknown>): Promise<{ ms: number, error: Error | undefined }> {
  const started = performance.now()
  const error = await promise.then(() => undefined, (err: unknown) => err as Error)
  return { ms: performance.now() - started, error }
}

t.test('Redis down at start-up: ready() is bounded, ends are kept, and shared once it is up', { skip }, async (t) => {
  const redis = await RedisServer.create(t, { started: false })
  const a = await instance(t, redis, { clerkWebhook: { path: '/webhooks/clerk', secret } })
  t.ok(a.readyMs < redisTimeout + 1000, `ready() after ${a.readyMs.toFixed(0)} ms, Redis down`)
  t.match(outageStarts(a.logs), [{ level: 50, reason: String, knownRecords: 0 }], 'the outage is logged at error')

  const end = await timed(a.app.griddyAuth.endSession('sess_down'))
  t.ok(end.ms < redisTimeout + 200, `endSession() settles after ${end.ms.toFixed(0)} ms`)
  t.match(end.error, { message: /^fastify-griddy-auth: the end could not be stored in Redis \(SET and PUBLISH: .*\); this instance refuses its tokens already, and writes it to Redis once Redis answers again$/ }, 'and rejects, saying what it means')
  t.equal(await status(a.app, 'sess_down'), 401, 'this instance refuses it at once')

  const delivery = signClerkWebhook(secret, { type: 'session.revoked', data: { id: 'sess_hook' } })
  const hook = await a.app.inject({ method: 'POST', url: '/webhooks/clerk', payload: delivery.payload, headers: delivery.headers })
  t.equal(hook.statusCode, 503, 'a webhook that cannot be shared: 503, so Svix delivers it again')
  t.same(hook.json(), { statusCode: 503, error: 'Service Unavailable', message: 'The end could not be shared yet; deliver again.' })
  t.equal(await status(a.app, 'sess_hook'), 401, 'but applied here already')
  t.equal(await status(a.app, 'sess_live'), 200, 'other sessions work')
  t.equal(outageStarts(a.logs).length, 1, 'logged once, not once per failure')

  // Past the first retry (1 s): it finds the clients reconnecting and leaves the sync to their 'ready'.
  await new Promise((resolve) => setTimeout(resolve, 1200))
  t.equal(outageStarts(a.logs).length, 1, 'still logged once')
  await redis.start()
  const recoveredMs = await until('recovery logged', () => outageEnds(a.logs).length === 1)
  t.pass(`recovery logged ${recoveredMs.toFixed(0)} ms after Redis started`)
  t.match(outageEnds(a.logs), [{ level: 40, outageMs: Number, loaded: Number, written: Number }], 'the end of the outage is logged')
  // ioredis may have sent the SETs it queued before the sync reads the keys: either way, both are there.
  const [recovery] = outageEnds(a.logs) as Array<{ loaded: number, written: number }>
  t.equal((recovery?.loaded ?? 0) + (recovery?.written ?? 0), 2, 'with what it found and what it wrote back')
  const probe = redis.client()
  t.same((await probe.keys('griddy-auth:*')).sort(), ['griddy-auth:session:sess_down', 'griddy-auth:session:sess_hook'], 'the ends made meanwhile are in Redis now')

  const b = await instance(t, redis)
  t.equal(await status(b.app, 'sess_down'), 401, 'an instance started now refuses them from its first request')
  t.equal(await status(b.app, 'sess_hook'), 401)
  await a.app.griddyAuth.endSession('sess_after')
  const ms = await until('propagation to B', async () => await status(b.app, 'sess_after') === 401, 1000)
  t.pass(`a new end propagates again (${ms.toFixed(0)} ms), without a restart`)
  t.equal(outageStarts(a.logs).length, 1)
  t.equal(outageEnds(a.logs).length, 1)
  t.same(outageStarts(b.logs), [], 'B saw no outage')
})

t.test('an end before ready(), Redis paused: rejects the same way, and the first sync writes it', { skip }, async (t) => {
  const redis = await RedisServer.create(t)
  const probe = redis.client()
  const client = redis.client()
  await client.ping()
  const logs = captureLogs()
  const app = Fastify({ logger: { level: 'info', stream: logs.stream } })
  t.teardown(() => app.close())
  await app.register(griddyAuth, { ...issuer.pluginOptions, sessions: { redis: client, redisTimeout } })
  app.get('/private', async () => 'ok')
  await probe.client('PAUSE', 800, 'ALL')
  const early = await timed(app.griddyAuth.endSession('sess_early'))
  t.match(early.error, { message: /could not be stored in Redis/ }, 'rejects after redisTimeout')
  // Past the first retry's time, Redis answering again: nothing may fire on a plugin that has not started.
  await new Promise((resolve) => setTimeout(resolve, 1200))
  await app.ready()
  t.equal(await status(app, 'sess_early'), 401)
  t.equal(await probe.get('griddy-auth:session:sess_early') !== null, true, 'in Redis')
  t.equal(outageStarts(logs).length, 1)
  t.equal(outageEnds(logs).length, 1, 'the first sync ends the outage')
})

t.test('a client that does not queue (enableOfflineQueue: false) fails at once, the same way', { skip }, async (t) => {
  const redis = await RedisServer.create(t, { started: false })
  const logs = captureLogs()
  const started = performance.now()
  const app = await buildApp(t, { ...issuer.pluginOptions, sessions: { redis: redis.client({ enableOfflineQueue: false }), redisTimeout } }, {
    fastify: { logger: { level: 'info', stream: logs.stream } }
  })
  t.ok(performance.now() - started < redisTimeout, 'ready() without waiting out the timeout')
  const end = await timed(app.griddyAuth.endSession('sess_q'))
  t.ok(end.ms < 100, `endSession() rejects after ${end.ms.toFixed(0)} ms`)
  t.match(end.error, { message: /\(SET and PUBLISH: .*enableOfflineQueue.*\)/ })
  t.equal(await status(app, 'sess_q'), 401)
  t.equal(outageStarts(logs).length, 1)
})

t.test('Redis killed mid-traffic, then back empty: known ends hold, nothing 500s or hangs', { skip }, async (t) => {
  const redis = await RedisServer.create(t)
  const a = await instance(t, redis)
  const b = await instance(t, redis)
  await a.app.griddyAuth.endSession('sess_before')
  await until('B knows sess_before', async () => await status(b.app, 'sess_before') === 401)
  const ended = issuer.sign({ sub: 'user_1', sid: 'sess_before' })
  const live = issuer.sign({ sub: 'user_1', sid: 'sess_live' })

  // Traffic on both instances, every few ms, while Redis dies.
  const seen: Array<{ status: number, expected: number, ms: number }> = []
  const traffic = { on: true }
  const load = (async () => {
    while (traffic.on) {
      for (const app of [a.app, b.app]) {
        for (const [token, expected] of [[ended, 401], [live, 200]] as const) {
          const started = performance.now()
          const res = await get(app, '/private', token)
          seen.push({ status: res.statusCode, expected, ms: performance.now() - started })
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  })()
  await new Promise((resolve) => setTimeout(resolve, 100))
  await redis.kill()
  await until('both see the outage', () => outageStarts(a.logs).length === 1 && outageStarts(b.logs).length === 1)
  const during = await timed(a.app.griddyAuth.endSession('sess_during'))
  t.ok(during.ms < redisTimeout + 200, `endSession() while Redis is down settles after ${during.ms.toFixed(0)} ms`)
  t.ok(during.error instanceof Error, 'and rejects')
  t.equal(await status(a.app, 'sess_during'), 401, 'A refuses it at once')
  t.equal(await status(b.app, 'sess_during'), 200, 'B cannot know yet')
  await new Promise((resolve) => setTimeout(resolve, 300))
  traffic.on = false
  await load

  t.ok(seen.length > 50, `${seen.length} requests during the kill`)
  t.same(seen.filter((r) => r.status !== r.expected), [], 'every answer as before: the ended session 401, the live one 200, never a 500')
  const slowest = Math.max(...seen.map((r) => r.ms))
  t.ok(slowest < 250, `no request waited on Redis (slowest ${slowest.toFixed(1)} ms)`)

  await redis.start()
  await until('both recovered', () => outageEnds(a.logs).length === 1 && outageEnds(b.logs).length === 1)
  const ms = await until('B learns the end made during the outage', async () => await status(b.app, 'sess_during') === 401, 2000)
  t.pass(`B refuses sess_during ${ms.toFixed(0)} ms after recovery (A wrote it back)`)
  const probe = redis.client()
  t.same((await probe.keys('griddy-auth:*')).sort(), ['griddy-auth:session:sess_before', 'griddy-auth:session:sess_during'], 'Redis came back empty and got the known ends back')
  const late = await instance(t, redis)
  t.equal(await status(late.app, 'sess_before'), 401, 'so an instance started now knows them')

  await b.app.griddyAuth.endSession('sess_after')
  t.ok(await until('A learns sess_after', async () => await status(a.app, 'sess_after') === 401, 1000) < 1000, 'new ends propagate again')
  for (const [name, logs] of [['A', a.logs], ['B', b.logs]] as const) {
    t.equal(outageStarts(logs).length, 1, `${name}: the outage logged once at its start`)
    t.equal(outageEnds(logs).length, 1, `${name}: and once at its end`)
  }
})

t.test('a slow Redis (CLIENT PAUSE): endSession() is bounded, requests are not slowed, ends catch up', { skip }, async (t) => {
  const redis = await RedisServer.create(t)
  const a = await instance(t, redis)
  const b = await instance(t, redis)
  const probe = redis.client()
  await probe.client('PAUSE', 1500, 'ALL')
  const paused = performance.now()

  const end = await timed(a.app.griddyAuth.endSession('sess_slow'))
  t.ok(end.ms >= redisTimeout - 20 && end.ms < redisTimeout + 200, `endSession() gave up after ${end.ms.toFixed(0)} ms (redisTimeout ${redisTimeout})`)
  t.match(end.error, { message: /\(SET and PUBLISH: no answer within 300 ms\)/ })
  const started = performance.now()
  t.equal(await status(a.app, 'sess_slow'), 401, 'A refuses it at once')
  t.equal(await status(b.app, 'sess_slow'), 200, 'B does not know yet')
  t.ok(performance.now() - started < 100, 'requests do not wait on the paused Redis')
  t.equal(outageStarts(a.logs).length, 1, 'A logs the outage')

  const ms = await until('B refuses sess_slow', async () => await status(b.app, 'sess_slow') === 401, 5000)
  t.ok(performance.now() - paused > 1400, `B learns it once the pause is over (${ms.toFixed(0)} ms after the timeout)`)
  await until('A logs the recovery', () => outageEnds(a.logs).length === 1)
  await a.app.griddyAuth.endSession('sess_next')
  t.ok(await until('B refuses sess_next', async () => await status(b.app, 'sess_next') === 401, 1000) < 1000, 'new ends propagate again')
  t.equal(outageStarts(a.logs).length, 1)
  t.equal(outageEnds(a.logs).length, 1)
  t.same(outageStarts(b.logs), [], 'B, which sent nothing, saw no outage')
})
