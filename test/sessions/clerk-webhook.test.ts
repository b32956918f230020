/**
 * Clerk's webhooks (`sessions.clerkWebhook`): deliveries signed as Svix
 * signs them (standardwebhooks' Webhook#sign, through the testing kit's
 * signClerkWebhook), forged, altered, aged; what each ends; and that the
 * route's raw-body parsing stays its own.
 */
import t from 'tap'
import { Webhook } from 'standardwebhooks'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import swagger from '@fastify/swagger'
import griddyAuth from '../../lib/index'
import { createTestIssuer, signClerkWebhook, type ClerkWebhookDelivery, type TestIssuer } from '../../lib/testing/index'
import { buildApp, captureLogs, get, nowSeconds, standardRoutes, type LogCapture } from '../helpers'

const secret = `whsec_${Buffer.from('a Clerk endpoint signing secret').toString('base64')}`
const otherSecret = `whsec_${Buffer.from('some other endpoint').toString('base64')}`
const path = '/webhooks/clerk'

let issuer: TestIssuer
t.before(async () => {
  issuer = await createTestIssuer()
})

interface Setup { app: FastifyInstance, logs: LogCapture }

async function setUp (t: Parameters<typeof buildApp>[0]): Promise<Setup> {
  const logs = captureLogs()
  const app = await buildApp(t, { ...issuer.pluginOptions, sessions: { clerkWebhook: { path, secret } } }, {
    fastify: { logger: { level: 'info', stream: logs.stream } },
    routes: (a) => {
      standardRoutes(a)
      a.post('/echo', async (request) => ({ body: request.body as unknown }))
    }
  })
  return { app, logs }
}

function deliver (app: FastifyInstance, delivery: ClerkWebhookDelivery, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: path, payload: delivery.payload, headers: { ...delivery.headers, ...headers } })
}

const event = (type: string, id: string): { type: string, data: Record<string, unknown> } =>
  ({ type, data: { id, object: type.startsWith('user') ? 'user' : 'session' } })

t.test('session.ended, session.removed, session.revoked end that session; user.deleted that user', async (t) => {
  const { app, logs } = await setUp(t)
  const tokens = {
    ended: issuer.sign({ sub: 'user_1', sid: 'sess_ended' }),
    removed: issuer.sign({ sub: 'user_1', sid: 'sess_removed' }),
    revoked: issuer.sign({ sub: 'user_1', sid: 'sess_revoked' }),
    deleted: issuer.sign({ sub: 'user_deleted', sid: 'sess_x', iat: nowSeconds() - 5 }),
    untouched: issuer.sign({ sub: 'user_1', sid: 'sess_live' })
  }
  for (const token of Object.values(tokens)) t.equal((await get(app, '/private', token)).statusCode, 200)

  for (const [type, id] of [['session.ended', 'sess_ended'], ['session.removed', 'sess_removed'], ['session.revoked', 'sess_revoked'], ['user.deleted', 'user_deleted']]) {
    const res = await deliver(app, signClerkWebhook(secret, event(type as string, id as string)))
    t.equal(res.statusCode, 200, `${type}: 200`)
    t.same(res.json(), { received: true })
  }
  for (const name of ['ended', 'removed', 'revoked', 'deleted'] as const) {
    const res = await get(app, '/private', tokens[name])
    t.equal(res.statusCode, 401, `${name}: refused`)
    t.equal(res.json().code, 'GRIDDY_AUTH_SESSION_ENDED')
  }
  t.equal((await get(app, '/private', tokens.untouched)).statusCode, 200, 'another session works')
  t.match(logs.pluginLines().filter((line) => line.msg === 'griddy-auth: Clerk webhook applied'), [
    { level: 30, event: 'session.ended', id: 'sess_ended' },
    { event: 'session.removed' },
    { event: 'session.revoked' },
    { event: 'user.deleted', id: 'user_deleted' }
  ])
})

t.test('other events are acknowledged and change nothing', async (t) => {
  const { app } = await setUp(t)
  const token = issuer.sign({ sub: 'user_1', sid: 'sess_1' })
  for (const type of ['session.created', 'user.created', 'user.updated', 'email.created', 'organization.deleted', 'toString', '__proto__']) {
    const res = await deliver(app, signClerkWebhook(secret, event(type, 'sess_1')))
    t.equal(res.statusCode, 200, `${type}: acknowledged`)
    t.same(res.json(), { received: true })
  }
  const untyped = signClerkWebhook(secret, { type: 'x', data: {} })
  const noType = new Webhook(secret)
  const payload = JSON.stringify({ data: { id: 'sess_1' } })
  const id = 'msg_no_type'
  const now = new Date()
  const res = await app.inject({
    method: 'POST',
    url: path,
    payload,
    headers: { 'content-type': 'application/json', 'svix-id': id, 'svix-timestamp': String(Math.floor(now.getTime() / 1000)), 'svix-signature': noType.sign(id, now, payload) }
  })
  t.equal(res.statusCode, 200, 'an event without a type: acknowledged')
  t.equal((await deliver(app, untyped)).statusCode, 200)
  t.equal((await get(app, '/private', token)).statusCode, 200, 'sess_1 still works')
})

t.test('missing, forged, altered or stale signatures: 400, nothing changes', async (t) => {
  const { app, logs } = await setUp(t)
  const token = issuer.sign({ sub: 'user_1', sid: 'sess_target' })
  const good = signClerkWebhook(secret, event('session.ended', 'sess_target'))
  const without = (name: string): Record<string, string> => {
    const headers: Record<string, string> = { ...good.headers }
    delete headers[name]
    return headers
  }
  const cases: Array<{ name: string, send: () => Promise<LightMyRequestResponse> }> = [
    { name: 'no signature headers at all', send: () => app.inject({ method: 'POST', url: path, payload: good.payload, headers: { 'content-type': 'application/json' } }) },
    { name: 'no svix-signature', send: () => app.inject({ method: 'POST', url: path, payload: good.payload, headers: without('svix-signature') }) },
    { name: 'no svix-id', send: () => app.inject({ method: 'POST', url: path, payload: good.payload, headers: without('svix-id') }) },
    { name: 'no svix-timestamp', send: () => app.inject({ method: 'POST', url: path, payload: good.payload, headers: without('svix-timestamp') }) },
    { name: 'signed with another secret', send: () => deliver(app, signClerkWebhook(otherSecret, event('session.ended', 'sess_target'))) },
    { name: 'another session id in the body', send: () => deliver(app, { ...good, payload: good.payload.replace('sess_target', 'sess_targe2') }) },
    { name: 'a byte appended to the body', send: () => deliver(app, { ...good, payload: `${good.payload} ` }) },
    { name: 'another svix-id', send: () => deliver(app, good, { 'svix-id': 'msg_other' }) },
    { name: 'another timestamp', send: () => deliver(app, good, { 'svix-timestamp': String(Number(good.headers['svix-timestamp']) - 1) }) },
    { name: 'a signature of junk', send: () => deliver(app, good, { 'svix-signature': 'v1,AAAA' }) },
    { name: 'an unknown signature version', send: () => deliver(app, good, { 'svix-signature': good.headers['svix-signature']!.replace('v1,', 'v2,') }) },
    { name: 'signed 6 minutes ago (stale)', send: () => deliver(app, signClerkWebhook(secret, event('session.ended', 'sess_target'), { timestamp: new Date(Date.now() - 6 * 60_000) })) },
    { name: 'signed 6 minutes ahead', send: () => deliver(app, signClerkWebhook(secret, event('session.ended', 'sess_target'), { timestamp: new Date(Date.now() + 6 * 60_000) })) },
    { name: 'a timestamp that is no number', send: () => deliver(app, good, { 'svix-timestamp': 'soon' }) },
    { name: 'no body', send: () => app.inject({ method: 'POST', url: path, headers: { 'svix-id': good.headers['svix-id']!, 'svix-timestamp': good.headers['svix-timestamp']!, 'svix-signature': good.headers['svix-signature']! } }) }
  ]
  for (const c of cases) {
    logs.clear()
    const res = await c.send()
    t.equal(res.statusCode, 400, `${c.name}: 400`)
    t.same(res.json(), { statusCode: 400, error: 'Bad Request', message: 'Invalid webhook signature.' }, `${c.name}: the body says no more`)
    t.notOk(res.body.includes(secret.slice(6)), `${c.name}: no secret in the body`)
    t.match(logs.pluginLines(), [{ level: 40, msg: 'griddy-auth: Clerk webhook refused: its signature does not verify', reason: String }], `${c.name}: logged at warn with the reason`)
    t.equal((await get(app, '/private', token)).statusCode, 200, `${c.name}: the session still works`)
  }
  t.notOk(logs.raw.join('').includes(secret.slice(6)), 'the secret is never logged')

  // The real delivery, after all that, still applies: nothing was consumed by the failures.
  t.equal((await deliver(app, good)).statusCode, 200)
  t.equal((await get(app, '/private', token)).statusCode, 401)
})

t.test('the standard webhook-* header names work too; a duplicated header does not crash', async (t) => {
  const { app } = await setUp(t)
  const token = issuer.sign({ sub: 'user_1', sid: 'sess_std' })
  const delivery = signClerkWebhook(secret, event('session.ended', 'sess_std'))
  const res = await app.inject({
    method: 'POST',
    url: path,
    payload: delivery.payload,
    headers: {
      'content-type': 'application/json',
      'webhook-id': delivery.headers['svix-id']!,
      'webhook-timestamp': delivery.headers['svix-timestamp']!,
      'webhook-signature': delivery.headers['svix-signature']!
    }
  })
  t.equal(res.statusCode, 200)
  t.equal((await get(app, '/private', token)).statusCode, 401)
  const twice = await app.inject({ method: 'POST', url: path, payload: delivery.payload, headers: { ...delivery.headers, 'svix-id': [delivery.headers['svix-id']!, 'x'] as unknown as string } })
  t.equal(twice.statusCode, 400, 'two svix-id headers: 400, not a crash')
})

t.test('a verified delivery with a payload it cannot apply: 400', async (t) => {
  const { app } = await setUp(t)
  const sign = (payload: string): ClerkWebhookDelivery => {
    const now = new Date()
    return {
      payload,
      headers: { 'content-type': 'application/json', 'svix-id': 'msg_1', 'svix-timestamp': String(Math.floor(now.getTime() / 1000)), 'svix-signature': new Webhook(secret).sign('msg_1', now, payload) }
    }
  }
  const cases: Array<[string, string, string]> = [
    ['not JSON', '{"type":', 'Invalid webhook payload.'],
    ['JSON null', 'null', ''],
    ['session.ended without data', '{"type":"session.ended"}', 'Invalid webhook payload: no data.id.'],
    ['session.ended with data null', '{"type":"session.ended","data":null}', 'Invalid webhook payload: no data.id.'],
    ['session.ended with an empty id', '{"type":"session.ended","data":{"id":""}}', 'Invalid webhook payload: no data.id.'],
    ['user.deleted with a numeric id', '{"type":"user.deleted","data":{"id":5}}', 'Invalid webhook payload: no data.id.']
  ]
  for (const [name, payload, message] of cases) {
    const res = await deliver(app, sign(payload))
    if (message === '') {
      t.equal(res.statusCode, 200, `${name}: no event type, acknowledged`)
      continue
    }
    t.equal(res.statusCode, 400, `${name}: 400`)
    t.same(res.json(), { statusCode: 400, error: 'Bad Request', message }, name)
  }
})

t.test('replaying a delivery is harmless', async (t) => {
  const { app } = await setUp(t)
  const later = issuer.sign({ sub: 'user_r', sid: 'sess_r2', iat: nowSeconds() + 2 })
  const delivery = signClerkWebhook(secret, event('session.ended', 'sess_r'))
  const deleted = signClerkWebhook(secret, event('user.deleted', 'user_d'))
  for (let i = 0; i < 3; i++) {
    t.equal((await deliver(app, delivery)).statusCode, 200, `session.ended, delivery ${i + 1}`)
    t.equal((await deliver(app, deleted)).statusCode, 200, `user.deleted, delivery ${i + 1}`)
  }
  t.equal((await get(app, '/private', issuer.sign({ sub: 'user_r', sid: 'sess_r' }))).statusCode, 401)
  t.equal((await get(app, '/private', later)).statusCode, 200, 'the same user\'s other session is untouched')
})

t.test('the route is public and its raw-body parsing stays its own', async (t) => {
  const { app } = await setUp(t)
  const delivery = signClerkWebhook(secret, event('session.ended', 'sess_p'))
  t.equal((await deliver(app, delivery, { authorization: 'Bearer not-a-token' })).statusCode, 200, 'a bearer header is ignored')
  t.equal((await deliver(app, delivery, { 'content-type': 'text/plain' })).statusCode, 200, 'any content type: the signature covers the bytes')

  const token = issuer.sign({ sub: 'user_1' })
  const echo = await app.inject({ method: 'POST', url: '/echo', payload: { a: 1 }, headers: { authorization: `Bearer ${token}` } })
  t.same(echo.json(), { body: { a: 1 } }, 'the app\'s other routes still parse JSON')
  const text = await app.inject({ method: 'POST', url: '/echo', payload: 'x', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' } })
  t.same(text.json(), { body: 'x' })
  const get404 = await app.inject({ method: 'GET', url: path })
  t.equal(get404.statusCode, 404, 'GET is not routed (POST only); the 404 stays a 404')
  const unauthenticated = await app.inject({ method: 'POST', url: '/echo', payload: { a: 1 } })
  t.equal(unauthenticated.statusCode, 401, 'and still need a token')
})

t.test('the webhook route is not an operation of the API\'s OpenAPI document', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(swagger, { openapi: { info: { title: 't', version: '1' } } })
  await app.register(griddyAuth, { ...issuer.pluginOptions, sessions: { clerkWebhook: { path, secret } } })
  app.get('/private', async () => 'ok')
  await app.ready()
  const paths = Object.keys((app.swagger() as { paths: Record<string, unknown> }).paths)
  t.same(paths, ['/private'])
})
