/**
 * SPEC §6 (the issuer-selection exception) and §9 (per-URL state): without
 * `jwksUrl`, a token's unverified `iss` only picks one configured issuer's
 * key set at `${iss}/.well-known/jwks.json`; anything else is rejected with
 * GRIDDY_AUTH_ISSUER before any lookup, and nothing is fetched for it. With
 * `jwksUrl`, `iss` is judged after the signature like every claim.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { buildApp, call, codeOf, createAttacker, createFakeIdp, poolKey, sharedIssuer, sleep, type Attacker, type FakeIdp, type Asserts } from '../fixtures/fake-idp'
import type { TestIssuer, TestKey } from '../../lib/testing/index'

interface TwoIssuers {
  signer: TestIssuer
  a: FakeIdp
  b: FakeIdp
  keyA: TestKey
  keyB: TestKey
  attacker: Attacker
  app: FastifyInstance
}

/** Two fake IdPs, each publishing its own key at its well-known URL, both configured as issuers; an attacker besides. */
async function twoIssuers (t: Asserts, cooldown: number): Promise<TwoIssuers> {
  const signer = await sharedIssuer()
  const [keyA, keyB] = await Promise.all([poolKey(0), poolKey(1)])
  const a = await createFakeIdp({ jwks: { keys: [keyA.jwk] } })
  const b = await createFakeIdp({ jwks: { keys: [keyB.jwk] } })
  const attacker = await createAttacker({ keys: [keyA.jwk, keyB.jwk] })
  t.teardown(() => Promise.all([a.close(), b.close(), attacker.close()]))
  const app = await buildApp(t, { issuer: [a.url, b.url], audience: signer.audience, jwksCooldown: cooldown, jwksTimeout: 300 })
  return { signer, a, b, keyA, keyB, attacker, app }
}

t.test('without jwksUrl, keys come from the well-known URL of the token\'s (configured) issuer', async (t) => {
  const { signer, a, b, keyA, keyB, attacker, app } = await twoIssuers(t, 60_000)
  t.equal(a.hits('*') + b.hits('*'), 0, 'lazy')

  let res = await call(app, signer.sign({ sub: 'from-a', iss: a.url }, { key: keyA }))
  t.equal(res.statusCode, 200)
  t.same([a.hits(), b.hits()], [1, 0], "fetched from A's well-known URL only")
  res = await call(app, signer.sign({ sub: 'from-b', iss: b.url }, { key: keyB }))
  t.equal(res.statusCode, 200)
  t.same([a.hits(), b.hits()], [1, 1])
  t.same([...a.requests, ...b.requests], ['/.well-known/jwks.json', '/.well-known/jwks.json'])

  // A's keys are not B's: a token claiming B but signed under A's kid is looked up in B's set only
  res = await call(app, signer.sign({ sub: 'x', iss: b.url }, { key: keyA }))
  t.equal(codeOf(res), 'GRIDDY_AUTH_UNKNOWN_KEY', "A's key does not vouch for B's tokens")
  t.same([a.hits(), b.hits()], [1, 2], "the miss refetched B's set, never A's")
  t.equal(attacker.hits, 0)
})

t.test('a token whose iss is not configured: GRIDDY_AUTH_ISSUER before any lookup, nothing fetched', async (t) => {
  const { signer, a, b, keyA, attacker, app } = await twoIssuers(t, 60_000)
  const cases: Array<[string, string]> = [
    ['the attacker URL', signer.sign({ sub: 'u', iss: attacker.url }, { key: keyA })],
    ['the attacker URL, random kid', signer.sign({ sub: 'u', iss: attacker.url }, { kid: randomUUID() })],
    ['a configured issuer plus a slash', signer.sign({ sub: 'u', iss: `${a.url}/` }, { key: keyA })],
    ['a prefix of a configured issuer', signer.sign({ sub: 'u', iss: a.url.slice(0, -1) }, { key: keyA })],
    ['no iss', signer.sign({ sub: 'u' }, { key: keyA, omit: ['iss'] })],
    ['a numeric iss', signer.sign({ sub: 'u', iss: 42 }, { key: keyA })],
    ['an array iss', signer.sign({ sub: 'u', iss: [a.url] }, { key: keyA })]
  ]
  for (const [name, token] of cases) {
    const res = await call(app, token)
    t.equal(res.statusCode, 401, name)
    t.same(res.json(), { statusCode: 401, code: 'GRIDDY_AUTH_ISSUER', error: 'Unauthorized', message: 'Invalid issuer.' }, name)
  }
  t.equal(attacker.hits, 0, 'the attacker got no request')
  t.equal(a.hits('*') + b.hits('*'), 0, 'no configured IdP was asked either')
})

t.test('cooldown, back-off and health are kept per issuer key set', async (t) => {
  const cooldown = 300
  const { signer, a, b, keyA, keyB, app } = await twoIssuers(t, cooldown)
  const fromA = (kid?: string): string => signer.sign({ sub: 'a', iss: a.url }, kid === undefined ? { key: keyA } : { kid })
  const fromB = (kid?: string): string => signer.sign({ sub: 'b', iss: b.url }, kid === undefined ? { key: keyB } : { kid })

  t.equal((await call(app, fromA())).statusCode, 200)
  t.equal((await call(app, fromB())).statusCode, 200)

  // A's cooldown does not hold B's refetch
  t.equal(codeOf(await call(app, fromA(randomUUID()))), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(codeOf(await call(app, fromA(randomUUID()))), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(a.hits(), 2, 'A: one refetch, then its cooldown')
  t.equal(codeOf(await call(app, fromB(randomUUID()))), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(b.hits(), 2, "B refetches: A's cooldown is not B's")

  // A goes down: A's unknown kids get 503, B's stay UNKNOWN_KEY, and both known keys keep working
  a.set('status', { status: 500 })
  await sleep(cooldown + 20)
  let res = await call(app, fromA(randomUUID()))
  t.equal(res.statusCode, 503)
  t.equal(codeOf(res), 'GRIDDY_AUTH_UNAVAILABLE')
  t.equal(a.hits(), 3)
  res = await call(app, fromA(randomUUID()))
  t.equal(codeOf(res), 'GRIDDY_AUTH_UNAVAILABLE', 'A in back-off')
  t.equal(a.hits(), 3)
  t.equal(codeOf(await call(app, fromB(randomUUID()))), 'GRIDDY_AUTH_UNKNOWN_KEY', "B is healthy: UNKNOWN_KEY, not A's 503")
  t.equal(b.hits(), 3, 'B (past its cooldown) refetched, and was answered')
  t.equal((await call(app, fromA())).statusCode, 200, "A's known key still verifies")
  t.equal((await call(app, fromB())).statusCode, 200)

  a.set('ok')
  await sleep(cooldown + 20)
  t.equal(codeOf(await call(app, fromA(randomUUID()))), 'GRIDDY_AUTH_UNKNOWN_KEY', 'A recovered')
  t.equal(a.hits(), 4)
})

t.test('with jwksUrl, iss is judged after the signature', async (t) => {
  const signer = await sharedIssuer()
  const idp = await createFakeIdp({ jwks: { keys: [...signer.jwks.keys] } })
  const attacker = await createAttacker()
  t.teardown(() => Promise.all([idp.close(), attacker.close()]))
  const app = await buildApp(t, { issuer: signer.issuer, audience: signer.audience, jwksUrl: idp.jwksUrl, jwksCooldown: 60_000 })
  const foreign = await poolKey(2)

  let res = await call(app, signer.sign({ sub: 'u', iss: attacker.url }))
  t.equal(codeOf(res), 'GRIDDY_AUTH_ISSUER', 'signed by a configured key, unconfigured iss: ISSUER, once the signature holds')
  t.equal(idp.hits(), 1, 'the key was fetched from jwksUrl to check the signature first')

  res = await call(app, signer.sign({ sub: 'u', iss: attacker.url }, { key: foreign, kid: signer.key.kid }))
  t.equal(codeOf(res), 'GRIDDY_AUTH_SIGNATURE', 'a forged token gets a signature error, never a claim error')

  res = await call(app, signer.sign({ sub: 'u', iss: attacker.url }, { kid: randomUUID() }))
  t.equal(codeOf(res), 'GRIDDY_AUTH_UNKNOWN_KEY', 'an unknown kid is a key error whatever the iss')
  t.equal(idp.hits(), 2, 'that miss refetched jwksUrl')

  t.equal((await call(app, signer.sign({ sub: 'u' }))).statusCode, 200)
  t.equal(attacker.hits, 0, 'the iss never chose a URL')
})
