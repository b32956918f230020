/**
 * Where authentication runs in the request lifecycle: in `preParsing`
 * (after every `onRequest` hook, so @fastify/cors's headers are on every
 * answer; see cors.test.ts), and still before the body is parsed or
 * validated. What an app's own hooks see on either side of it.
 */
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import griddyAuth from '../lib/index'
import { createTestIssuer, type TestIssuer } from '../lib/testing/index'

let issuer: TestIssuer
t.before(async () => {
  issuer = await createTestIssuer()
})

/** An app recording, for each request, what its own hooks and body parser saw. */
async function recordingApp (t: Test): Promise<{ app: FastifyInstance, seen: string[] }> {
  const seen: string[] = []
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(griddyAuth, issuer.pluginOptions)
  app.addHook('onRequest', async (request) => { seen.push(`onRequest: ${request.auth?.userId ?? 'null'}`) })
  app.addHook('preValidation', async (request) => { seen.push(`preValidation: ${request.auth?.userId ?? 'null'}`) })
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    seen.push('body parsed')
    done(null, JSON.parse(body as string))
  })
  app.post('/leagues', { config: { permissions: 'leagues:write' } }, async (request) => ({ name: (request.body as { name: string }).name }))
  await app.ready()
  return { app, seen }
}

const post = async (app: FastifyInstance, authorization?: string): Promise<LightMyRequestResponse> => await app.inject({
  method: 'POST',
  url: '/leagues',
  headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
  payload: '{"name":"Sunday League"}'
})

t.test('an unauthenticated body is never parsed; onRequest hooks run before authentication, later hooks after it', async (t) => {
  const { app, seen } = await recordingApp(t)

  const refused = await post(app)
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'GRIDDY_AUTH_NO_TOKEN')
  t.same(seen, ['onRequest: null'], 'onRequest ran (request.auth null); no body parsed, no preValidation')

  seen.length = 0
  const forbidden = await post(app, `Bearer ${issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] })}`)
  t.equal(forbidden.statusCode, 403)
  t.same(seen, ['onRequest: null'], 'a 403 parses no body either')

  seen.length = 0
  const created = await post(app, `Bearer ${issuer.sign({ sub: 'user_1', permissions: ['leagues:write'] })}`)
  t.equal(created.statusCode, 200)
  t.same(created.json(), { name: 'Sunday League' })
  t.same(seen, ['onRequest: null', 'body parsed', 'preValidation: user_1'], 'the body is parsed once authenticated; preValidation sees request.auth')
})

t.test('an onRequest hook that needs the caller (a rate limit keyed by user) calls request.authorize()', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const keys: string[] = []
  await app.register(griddyAuth, issuer.pluginOptions)
  app.addHook('onRequest', async (request) => {
    const caller = await request.authorize().catch(() => null)
    keys.push(caller?.userId ?? request.ip)
  })
  app.get('/me', async (request) => ({ userId: request.auth?.userId }))
  await app.ready()

  const ok = await app.inject({ url: '/me', headers: { authorization: `Bearer ${issuer.sign({ sub: 'user_7' })}` } })
  t.same(ok.json(), { userId: 'user_7' })
  const refused = await app.inject({ url: '/me' })
  t.equal(refused.statusCode, 401, 'a failed authorize() in the hook still ends in the plugin\'s 401')
  t.equal(refused.json().code, 'GRIDDY_AUTH_NO_TOKEN')
  t.same(keys, ['user_7', '127.0.0.1'], 'keyed by user when authenticated, else by address')
})
