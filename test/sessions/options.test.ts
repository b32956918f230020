/**
 * The `sessions` option (SPEC §11): every mistake stops start-up with a
 * message naming the nested option; valid edge values start.
 */
import t from 'tap'
import Fastify from 'fastify'
import griddyAuth, { type GriddyAuthOptions } from '../../lib/index'
import { createTestIssuer, type TestIssuer } from '../../lib/testing/index'

const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
let issuer: TestIssuer

t.before(async () => {
  issuer = await createTestIssuer()
})

async function start (sessions: unknown): Promise<void> {
  const app = Fastify()
  try {
    await app.register(griddyAuth, { ...issuer.pluginOptions, sessions } as GriddyAuthOptions)
    await app.ready()
  } finally {
    await app.close()
  }
}

const noop = (): void => {}
/** Quacks like an ioredis client, minus `without`. */
function fakeClient (without: string[] = [], duplicate: () => unknown = () => ({})): Record<string, unknown> {
  const client: Record<string, unknown> = { set: noop, publish: noop, scan: noop, mget: noop, duplicate, on: noop, removeListener: noop }
  for (const name of without) delete client[name]
  return client
}

t.test('invalid sessions options name the option', async (t) => {
  const cases: Array<[string, unknown, string, RegExp?]> = [
    ['null', null, 'sessions', /must be an object/],
    ['an array', [], 'sessions'],
    ['a string', 'redis://127.0.0.1', 'sessions'],
    ['true', true, 'sessions'],
    ['an unknown key', { prefx: 'a:' }, 'sessions.prefx', /is not an option \(expected one of: redis, prefix, maxTokenLifetime, redisTimeout, clerkWebhook\)/],
    ['prefix ""', { prefix: '' }, 'sessions.prefix'],
    ['prefix 5', { prefix: 5 }, 'sessions.prefix'],
    ['prefix null', { prefix: null }, 'sessions.prefix'],
    ['redis null', { redis: null }, 'sessions.redis', /must be an ioredis client \(new Redis\(\.\.\.\)\); missing: set\(\), publish\(\), scan\(\), mget\(\), duplicate\(\), on\(\), removeListener\(\)/],
    ['redis a URL', { redis: 'redis://127.0.0.1:6379' }, 'sessions.redis'],
    ['redis {}', { redis: {} }, 'sessions.redis'],
    ['redis without scan()', { redis: fakeClient(['scan']) }, 'sessions.redis', /missing: scan\(\)$/],
    ['redis without duplicate() and mget()', { redis: fakeClient(['duplicate', 'mget']) }, 'sessions.redis', /missing: mget\(\), duplicate\(\)$/],
    ['redis with a keyPrefix', { redis: { ...fakeClient(), options: { keyPrefix: 'app:' } } }, 'sessions.redis', /must be a client without keyPrefix \(it has "app:"\); set sessions\.prefix instead/],
    ['clerkWebhook null', { clerkWebhook: null }, 'sessions.clerkWebhook', /must be \{ path, secret \}/],
    ['clerkWebhook a string', { clerkWebhook: '/webhooks/clerk' }, 'sessions.clerkWebhook'],
    ['clerkWebhook with an unknown key', { clerkWebhook: { path: '/w', secret, events: [] } }, 'sessions.clerkWebhook.events'],
    ['clerkWebhook without path', { clerkWebhook: { secret } }, 'sessions.clerkWebhook.path', /starting with "\/"/],
    ['clerkWebhook path without "/"', { clerkWebhook: { path: 'webhooks/clerk', secret } }, 'sessions.clerkWebhook.path'],
    ['clerkWebhook without secret', { clerkWebhook: { path: '/w' } }, 'sessions.clerkWebhook.secret', /"whsec_" followed by base64/],
    ['clerkWebhook secret without whsec_', { clerkWebhook: { path: '/w', secret: secret.slice(6) } }, 'sessions.clerkWebhook.secret'],
    ['clerkWebhook secret "whsec_"', { clerkWebhook: { path: '/w', secret: 'whsec_' } }, 'sessions.clerkWebhook.secret'],
    ['clerkWebhook secret not base64', { clerkWebhook: { path: '/w', secret: 'whsec_not base64!' } }, 'sessions.clerkWebhook.secret'],
    ['clerkWebhook secret a number', { clerkWebhook: { path: '/w', secret: 5 } }, 'sessions.clerkWebhook.secret']
  ]
  for (const option of ['maxTokenLifetime', 'redisTimeout']) {
    for (const [label, value] of [['0', 0], ['-1', -1], ['1.5', 1.5], ['2^31', 2 ** 31], ['"1000"', '1000'], ['NaN', NaN], ['Infinity', Infinity], ['null', null]] as const) {
      cases.push([`${option}: ${label}`, { [option]: value }, `sessions.${option}`, /must be a whole number of milliseconds, 1 to 2147483647/])
    }
  }
  for (const [name, sessions, option, message] of cases) {
    const err = await start(sessions).then(() => undefined, (err: unknown) => err)
    t.ok(err instanceof TypeError, `${name}: a TypeError`)
    t.match((err as Error | undefined)?.message, new RegExp(`^fastify-griddy-auth: option "${option.replaceAll('.', '\\.')}" `), `${name}: names "${option}"`)
    if (message !== undefined) t.match((err as Error | undefined)?.message, message, `${name}: says what is expected`)
  }
})

t.test('a client whose duplicate() is no Redis connection stops start-up', async (t) => {
  for (const duplicate of [() => ({}), () => undefined, () => ({ subscribe: noop, on: noop, removeListener: noop })]) {
    await t.rejects(start({ redis: fakeClient([], duplicate) }), {
      name: 'TypeError',
      message: /^fastify-griddy-auth: option "sessions\.redis": its duplicate\(\) gave no (subscribe|disconnect)\(\); pass an ioredis client$/
    })
  }
})

t.test('valid edge values start', async (t) => {
  for (const sessions of [
    {},
    { prefix: 'x' },
    { maxTokenLifetime: 1 },
    { maxTokenLifetime: 2 ** 31 - 1, redisTimeout: 2 ** 31 - 1 },
    { clerkWebhook: { path: '/', secret } },
    { clerkWebhook: { path: '/w', secret: 'whsec_YWJj' } },
    { clerkWebhook: { path: '/w', secret: 'whsec_YWI=' } },
    { clerkWebhook: { path: '/w', secret: 'whsec_YQ==' } },
    { redis: { ...fakeClient([], () => ({ subscribe: async () => 1, on: noop, removeListener: noop, disconnect: noop, status: 'ready' })), scan: async () => ['0', []], options: { keyPrefix: '' } }, redisTimeout: 50 }
  ]) {
    await t.resolves(start(sessions), JSON.stringify(sessions))
  }
})
