/**
 * Several instances sharing one real Redis (SPEC §11): an end on one is
 * refused by the others within 1 s, by an instance started afterwards from
 * its first request, records expire by themselves (nothing left behind), the
 * prefix separates deployments, and closing the app closes only what the
 * plugin opened. Faults (Redis down, killed, slow) are in redis-faults.test.ts.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type Redis from 'ioredis'
import type { SessionsOptions } from '../../lib/index'
import { createTestIssuer, type TestIssuer } from '../../lib/testing/index'
import { buildApp, get, nowSeconds, type Tap } from '../helpers'
import { RedisServer, redisUnavailable } from '../fixtures/redis-server'

const skip = redisUnavailable(t)
let issuer: TestIssuer
let redis: RedisServer
/** A client of the test's own, to look at what is in Redis. */
let probe: Redis

t.before(async () => {
  if (skip !== false) return
  issuer = await createTestIssuer()
  redis = await RedisServer.create(t)
  probe = redis.client()
})

/** An instance of the API with its own ioredis client, as each process of a deployment has. */
async function instance (t: Tap, sessions: Omit<SessionsOptions, 'redis'> = {}): Promise<{ app: FastifyInstance, client: Redis }> {
  const client = redis.client()
  const app = await buildApp(t, { ...issuer.pluginOptions, sessions: { redis: client, ...sessions } })
  return { app, client }
}

/** How long until `url` answers `status` for `token` on `app` (polling every 5 ms), or Infinity after `limit` ms. */
async function timeUntil (app: FastifyInstance, token: string, status: number, limit = 2000): Promise<number> {
  const started = performance.now()
  while (performance.now() - started < limit) {
    if ((await get(app, '/private', token)).statusCode === status) return performance.now() - started
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return Infinity
}

t.test('an end on one instance is refused by the others within 1 s', { skip }, async (t) => {
  const a = await instance(t)
  const b = await instance(t)
  const c = await instance(t)
  const session = issuer.sign({ sub: 'user_1', sid: 'sess_shared' })
  const user = issuer.sign({ sub: 'user_2', sid: 'sess_u', iat: nowSeconds() - 2 })
  for (const { app } of [a, b, c]) {
    t.equal((await get(app, '/private', session)).statusCode, 200, 'accepted (and cached) everywhere first')
    t.equal((await get(app, '/private', user)).statusCode, 200)
  }

  await a.app.griddyAuth.endSession('sess_shared')
  t.equal((await get(a.app, '/private', session)).statusCode, 401, 'refused at once where it was ended')
  for (const [name, { app }] of [['B', b], ['C', c]] as const) {
    const ms = await timeUntil(app, session, 401)
    t.ok(ms < 1000, `endSession(): refused by ${name} after ${ms.toFixed(0)} ms (< 1000)`)
  }

  await b.app.griddyAuth.endUserSessions('user_2')
  for (const [name, { app }] of [['A', a], ['C', c]] as const) {
    const ms = await timeUntil(app, user, 401)
    t.ok(ms < 1000, `endUserSessions(): refused by ${name} after ${ms.toFixed(0)} ms (< 1000)`)
  }
  const res = await get(c.app, '/private', user)
  t.match(res.json(), { code: 'GRIDDY_AUTH_SESSION_ENDED', message: 'Session has ended.' })
  t.equal((await get(c.app, '/private', issuer.sign({ sub: 'user_2', iat: nowSeconds() + 1 }))).statusCode, 200, 'a token issued afterwards works everywhere')

  // An instance started afterwards refuses them from its very first request.
  const late = await instance(t)
  t.equal((await get(late.app, '/private', session)).statusCode, 401, 'a later instance: the ended session, first request')
  t.equal((await get(late.app, '/private', user)).statusCode, 401, 'a later instance: the ended user, first request')
  t.equal((await get(late.app, '/private', issuer.sign({ sub: 'user_1', sid: 'sess_other' }))).statusCode, 200)
})

t.test('the Redis layout: one key per record with its TTL, one channel; nothing left behind', { skip }, async (t) => {
  const prefix = `layout-${process.pid}:`
  const a = await instance(t, { prefix, maxTokenLifetime: 600 })
  const messages: string[] = []
  const listener = redis.client()
  await listener.subscribe(`${prefix}ended`)
  listener.on('message', (_channel: string, message: string) => messages.push(message))

  const before = Date.now()
  await a.app.griddyAuth.endSession('sess_k')
  await a.app.griddyAuth.endUserSessions('user_k')
  const after = Date.now()
  t.same((await probe.keys(`${prefix}*`)).sort(), [`${prefix}session:sess_k`, `${prefix}user:user_k`])
  for (const key of [`${prefix}session:sess_k`, `${prefix}user:user_k`]) {
    const at = Number(await probe.get(key))
    t.ok(at >= before && at <= after, `${key} holds the time of the end (epoch ms)`)
    const ttl = await probe.pttl(key)
    t.ok(ttl > 0 && ttl <= 600, `${key} expires by itself (PTTL ${ttl} ms of 600)`)
  }
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(messages.map((m) => JSON.parse(m)), [{ kind: 'session', id: 'sess_k', at: Number }, { kind: 'user', id: 'user_k', at: Number }], 'each end published on <prefix>ended')

  const token = issuer.sign({ sub: 'user_z', sid: 'sess_k' })
  t.equal((await get(a.app, '/private', token)).statusCode, 401)
  await new Promise((resolve) => setTimeout(resolve, 700))
  t.same(await probe.keys(`${prefix}*`), [], 'after maxTokenLifetime no key is left')
  t.equal((await get(a.app, '/private', token)).statusCode, 200, 'and the instance forgot it too')
  const late = await instance(t, { prefix, maxTokenLifetime: 600 })
  t.equal((await get(late.app, '/private', token)).statusCode, 200, 'a later instance loads nothing')
})

t.test('the prefix separates deployments, glob characters and all', { skip }, async (t) => {
  const a = await instance(t, { prefix: 'tenant-a:' })
  const star = await instance(t, { prefix: 'tenant-*:' })
  const other = await instance(t, { prefix: 'tenant-b:' })
  const token = issuer.sign({ sub: 'user_1', sid: 'sess_tenant' })
  await a.app.griddyAuth.endSession('sess_tenant')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal((await get(a.app, '/private', token)).statusCode, 401)
  t.equal((await get(other.app, '/private', token)).statusCode, 200, 'another prefix: not ended')
  t.equal((await get(star.app, '/private', token)).statusCode, 200, 'a prefix with "*" is no pattern')
  const lateStar = await instance(t, { prefix: 'tenant-*:' })
  t.equal((await get(lateStar.app, '/private', token)).statusCode, 200, 'nor when it loads the keys')
  const lateA = await instance(t, { prefix: 'tenant-a:' })
  t.equal((await get(lateA.app, '/private', token)).statusCode, 401)
})

t.test('junk in Redis is ignored', { skip }, async (t) => {
  const prefix = `junk-${process.pid}:`
  await probe.set(`${prefix}session:sess_nan`, 'not a time', 'PX', 60_000)
  await probe.set(`${prefix}unknown:sess_j`, String(Date.now()), 'PX', 60_000)
  await probe.set(`${prefix}session:sess_loaded`, String(Date.now()), 'PX', 60_000)
  const a = await instance(t, { prefix })
  t.equal((await get(a.app, '/private', issuer.sign({ sub: 'u', sid: 'sess_nan' }))).statusCode, 200, 'a value that is no time')
  t.equal((await get(a.app, '/private', issuer.sign({ sub: 'u', sid: 'sess_j' }))).statusCode, 200, 'a key of another kind')
  t.equal((await get(a.app, '/private', issuer.sign({ sub: 'u', sid: 'sess_loaded' }))).statusCode, 401, 'a valid key is loaded')
  for (const message of ['not json', 'null', '5', '{"kind":"session","id":"sess_m"}', '{"kind":"group","id":"sess_m","at":1}',
    '{"kind":"session","id":"","at":1}', '{"kind":"session","id":5,"at":1}', '{"kind":"session","id":"sess_m","at":1e999}']) {
    await probe.publish(`${prefix}ended`, message)
  }
  await probe.publish(`${prefix}other`, JSON.stringify({ kind: 'session', id: 'sess_m', at: Date.now() }))
  await probe.publish(`${prefix}ended`, JSON.stringify({ kind: 'session', id: 'sess_last', at: Date.now() }))
  const last = issuer.sign({ sub: 'u', sid: 'sess_last' })
  t.ok(await timeUntil(a.app, last, 401) < 1000, 'a valid message after the junk is applied')
  t.equal((await get(a.app, '/private', issuer.sign({ sub: 'u', sid: 'sess_m' }))).statusCode, 200, 'no junk message was applied')
})

t.test('more keys than one SCAN page', { skip }, async (t) => {
  const prefix = `many-${process.pid}:`
  const pipeline = probe.pipeline()
  for (let i = 0; i < 2500; i++) pipeline.set(`${prefix}session:sess_${i}`, String(Date.now()), 'PX', 60_000)
  await pipeline.exec()
  const a = await instance(t, { prefix })
  for (const i of [0, 1234, 2499]) {
    t.equal((await get(a.app, '/private', issuer.sign({ sub: 'u', sid: `sess_${i}` }))).statusCode, 401, `sess_${i} loaded`)
  }
})

t.test('a (re)connection during a full load starts another full load', { skip }, async (t) => {
  // Messages published while a connection was down are lost: each 'ready' needs a load that starts after it.
  const prefix = `again-${process.pid}:`
  const pipeline = probe.pipeline()
  for (let i = 0; i < 20_000; i++) pipeline.set(`${prefix}session:sess_${i}`, String(Date.now()), 'PX', 60_000)
  await pipeline.exec()
  const client = redis.client()
  await buildApp(t, { ...issuer.pluginOptions, sessions: { redis: client, prefix } })

  const monitor = await redis.client().monitor()
  t.teardown(() => monitor.disconnect())
  const loads: number[] = []
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toLowerCase() !== 'scan' || args[1] !== '0' || args[3] !== `${prefix}*`) return
    loads.push(performance.now())
    // The first load has begun: the client "reconnects" while it runs.
    if (loads.length === 1) client.emit('ready')
  })
  client.emit('ready')
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal(loads.length, 2, 'two loads: the second starts after the first, not alongside it')
})

t.test('app.close() closes the connection the plugin opened, not yours', { skip }, async (t) => {
  // duplicate() copies the options, the connection name too: count the connections by it.
  const name = `close-test-${process.pid}`
  const connections = async (): Promise<number> =>
    (await probe.client('LIST') as string).split('\n').filter((line) => line.includes(` name=${name} `)).length
  const client = redis.client({ connectionName: name })
  await client.ping()
  const listeners = { ready: client.listenerCount('ready'), close: client.listenerCount('close') }
  const app = await buildApp(t, { ...issuer.pluginOptions, sessions: { redis: client } })
  t.equal(await connections(), 2, 'your client and the plugin\'s subscriber')
  await app.close()
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(await connections(), 1, 'the subscriber is closed')
  t.equal(await client.ping(), 'PONG', 'your client still works')
  t.same({ ready: client.listenerCount('ready'), close: client.listenerCount('close') }, listeners, 'and carries no listener of the plugin')
})
