/**
 * SPEC §3/§9: a static `jwks` means no network at all; an unknown kid is
 * GRIDDY_AUTH_UNKNOWN_KEY at once; a set with no usable key stops start-up
 * with a message naming `jwks`.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import griddyAuth from '../../lib/index'
import { buildApp, call, codeOf, createAttacker, createFakeIdp, poolKey, sharedIssuer } from '../fixtures/fake-idp'

t.test('static jwks: no network at all, unknown kid is UNKNOWN_KEY at once', async (t) => {
  const issuer = await sharedIssuer()
  const idp = await createFakeIdp({ jwks: { keys: [...issuer.jwks.keys] } })
  const attacker = await createAttacker({ keys: [...issuer.jwks.keys] })
  t.teardown(() => Promise.all([idp.close(), attacker.close()]))
  // the issuer is the fake IdP's URL: a plugin that fetched its well-known URL anyway would show up there
  const app = await buildApp(t, { issuer: idp.url, audience: issuer.audience, jwks: issuer.jwks, jwksCooldown: 0, jwksCacheTtl: 0 })
  const sign = (claims: Record<string, unknown> = {}, options = {}): string => issuer.sign({ sub: 'u', iss: idp.url, ...claims }, options)

  t.equal((await call(app, sign())).statusCode, 200)

  const started = Date.now()
  const responses = await Promise.all(Array.from({ length: 50 }, () => call(app, sign({}, { kid: randomUUID() }))))
  t.same(new Set(responses.map((r) => r.statusCode)), new Set([401]))
  t.same(new Set(responses.map(codeOf)), new Set(['GRIDDY_AUTH_UNKNOWN_KEY']))
  t.ok(Date.now() - started < 500, `answered at once (${Date.now() - started} ms)`)

  t.equal(codeOf(await call(app, sign({}, { kid: null }))), 'GRIDDY_AUTH_UNKNOWN_KEY', 'no kid')
  t.equal(codeOf(await call(app, sign({}, { key: await poolKey(0) }))), 'GRIDDY_AUTH_UNKNOWN_KEY', 'a key not in the set')
  t.equal((await call(app, sign({}, { header: { jku: attacker.jwksUrl, x5u: attacker.url } }))).statusCode, 200, 'jku/x5u ignored')
  t.equal(codeOf(await call(app, sign({ iss: attacker.url }))), 'GRIDDY_AUTH_ISSUER', 'iss is judged after the signature')
  t.equal(codeOf(await call(app, sign({ iss: attacker.url }, { kid: randomUUID() }))), 'GRIDDY_AUTH_UNKNOWN_KEY')

  t.equal(idp.hits('*'), 0, 'the issuer URL was never contacted')
  t.equal(attacker.hits, 0, 'the attacker was never contacted')
})

t.test('static jwks from the testing kit (pluginOptions) works and knows every published key', async (t) => {
  const issuer = await sharedIssuer()
  const extra = await poolKey(0)
  const app = await buildApp(t, { ...issuer.pluginOptions, jwks: { keys: [...issuer.jwks.keys, extra.jwk] } })
  t.equal((await call(app, issuer.sign({ sub: 'a' }))).statusCode, 200)
  t.equal((await call(app, issuer.sign({ sub: 'b' }, { key: extra }))).statusCode, 200)
})

t.test('a static jwks with no usable key fails at registration, naming `jwks`', async (t) => {
  const issuer = await sharedIssuer()
  const good = issuer.jwks.keys[0]!
  const sets = [
    { keys: [] },
    { keys: [{ ...good, use: 'enc' }] },
    { keys: [{ ...good, alg: 'RS512' }, { ...good, kid: undefined }, { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }] }
  ]
  for (const jwks of sets) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(griddyAuth, { issuer: issuer.issuer, audience: 'api', jwks }).ready() }, {
      name: 'TypeError',
      message: /option "jwks" holds no usable key/
    }, JSON.stringify(jwks).slice(0, 60))
  }
})
