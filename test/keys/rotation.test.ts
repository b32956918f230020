/**
 * SPEC §9, rotation: a new kid costs one fetch of its own (get-jwks fetches
 * per key) and only a miss starts the cooldown; a flood of random kids
 * costs the provider at most one request per cooldown and is answered at
 * once; a key dropped, seen by its refetch after the ttl, takes its tokens
 * with it, cached or not.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { createTestIssuer } from '../../lib/testing/index'
import { buildApp, call, codeOf, createFakeIdp, eventually, poolKey, setupRemote, sharedIssuer, sleep } from '../fixtures/fake-idp'

const randomKidTokens = async (count: number): Promise<string[]> => {
  const issuer = await sharedIssuer()
  // signed by a real, published key: only the kid is unknown
  return Array.from({ length: count }, () => issuer.sign({ sub: 'flood' }, { kid: randomUUID() }))
}

t.test('rotation: each new key is accepted the first time it is seen; only a miss starts the cooldown, and keys already known never wait for it', async (t) => {
  const cooldown = 400
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: cooldown })
  t.equal((await call(app, issuer.sign({ sub: 'old' }))).statusCode, 200)
  t.equal(idp.hits(), 1, 'the first fetch')

  const [b, c, d] = await Promise.all([poolKey(0), poolKey(1), poolKey(2)])
  idp.jwks.keys.push(b.jwk) // the provider rotates
  const res = await call(app, issuer.sign({ sub: 'new' }, { key: b }))
  t.equal(res.statusCode, 200, 'the new kid is accepted right away')
  t.equal(res.json().userId, 'new')
  t.equal(idp.hits(), 2, 'after exactly one fetch of its own')

  idp.jwks.keys.push(c.jwk)
  t.equal((await call(app, issuer.sign({ sub: 'c' }, { key: c }))).statusCode, 200, 'a second rotation right after: accepted too (nothing was missed)')
  t.equal(idp.hits(), 3)

  t.equal(codeOf(await call(app, issuer.sign({ sub: 'x' }, { kid: randomUUID() }))), 'GRIDDY_AUTH_UNKNOWN_KEY', 'a kid the provider does not have: a miss')
  const started = Date.now() // the cooldown began just before
  t.equal(idp.hits(), 4)
  idp.jwks.keys.push(d.jwk)
  const refused = await call(app, issuer.sign({ sub: 'd' }, { key: d }))
  t.equal(refused.statusCode, 401)
  t.equal(codeOf(refused), 'GRIDDY_AUTH_UNKNOWN_KEY', 'a real key first seen inside the cooldown waits for it')
  t.equal(idp.hits(), 4, 'without a fetch')
  for (const key of [issuer.key, b, c]) t.equal((await call(app, issuer.sign({ sub: 'k' }, { key }))).statusCode, 200, `${key.kid}, already known, never waits`)
  t.ok(Date.now() - started < cooldown, 'all inside the cooldown')

  await sleep(cooldown - (Date.now() - started) + 30)
  t.equal((await call(app, issuer.sign({ sub: 'd' }, { key: d }))).statusCode, 200, 'accepted once the cooldown has passed')
  t.equal(idp.hits(), 5)
})

t.test('unknown-kid flood: at most one refetch per cooldown, answered with UNKNOWN_KEY without waiting', async (t) => {
  const cooldown = 1000
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: cooldown, jwksTimeout: 3000 })
  const flood = await randomKidTokens(200)
  const more = await randomKidTokens(100)
  const after = await randomKidTokens(50)

  t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200)
  t.equal(idp.hits(), 1)

  const started = Date.now()
  const responses = await Promise.all(flood.map((token) => call(app, token)))
  t.same(new Set(responses.map((r) => r.statusCode)), new Set([401]))
  t.same(new Set(responses.map(codeOf)), new Set(['GRIDDY_AUTH_UNKNOWN_KEY']))
  t.same(responses[0]?.json(), { statusCode: 401, code: 'GRIDDY_AUTH_UNKNOWN_KEY', error: 'Unauthorized', message: 'Signing key not found.' })
  t.equal(idp.hits(), 2, '200 random kids: one refetch')

  // Inside the cooldown nothing is fetched, so nothing is waited for: prove it with a provider that would hang.
  idp.set('hang')
  const before = Date.now()
  const quick = await Promise.all(more.map((token) => call(app, token)))
  t.same(new Set(quick.map(codeOf)), new Set(['GRIDDY_AUTH_UNKNOWN_KEY']))
  t.ok(Date.now() - before < 900, `answered at once (${Date.now() - before} ms) although the provider hangs`)
  t.equal(idp.hits(), 2, 'no request reached the provider')
  t.ok(Date.now() - started < cooldown, 'still inside the cooldown')

  idp.set('ok')
  await sleep(cooldown + 50) // the cooldown began when the first miss was known, a little after `started`
  const next = await Promise.all(after.map((token) => call(app, token)))
  t.same(new Set(next.map(codeOf)), new Set(['GRIDDY_AUTH_UNKNOWN_KEY']))
  t.equal(idp.hits(), 3, 'after the cooldown, one more refetch')
})

t.test('the cooldown holds even when jwksCacheTtl is shorter (and 0)', async (t) => {
  for (const ttl of [0, 20]) {
    t.test(`jwksCacheTtl ${ttl}`, async (t) => {
      const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 60_000, jwksCacheTtl: ttl })
      t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200)
      for (const token of await randomKidTokens(20)) {
        t.equal(codeOf(await call(app, token)), 'GRIDDY_AUTH_UNKNOWN_KEY')
        await sleep(3)
      }
      t.equal(idp.hits(), 2, 'twenty unknown kids, sequential, past the ttl: one refetch')
    })
  }
})

t.test('requests that come during a fetch wait for it, then fetch their own kid one at a time', async (t) => {
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 60_000 })
  const next = await poolKey(0)
  idp.jwks.keys.push(next.jwk)
  idp.set('slow', { delayMs: 100 })
  const [a, b, c] = await Promise.all([
    call(app, issuer.sign({ sub: 'a' })),
    call(app, issuer.sign({ sub: 'b' }, { key: next })),
    call(app, issuer.sign({ sub: 'c' }, { kid: randomUUID() }))
  ])
  t.equal(a?.statusCode, 200)
  t.equal(b?.statusCode, 200, 'a real key that waited behind another fetch is still accepted')
  t.equal(codeOf(c!), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(idp.hits(), 3, 'one fetch per kid')
  const gaps = idp.arrivals.slice(1).map((at, i) => at - (idp.arrivals[i] as number))
  t.ok(gaps.every((gap) => gap >= 90), `one fetch at a time per key set (gaps ${gaps.join(', ')} ms)`)
  t.equal(codeOf(await call(app, issuer.sign({ sub: 'd' }, { kid: randomUUID() }))), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(idp.hits(), 3, 'the miss started the cooldown')
})

t.test('revocation: a key dropped by a refetch takes its tokens with it, even cached ones', async (t) => {
  // This test rotates its issuer's own (served, live) key set, so it has an issuer of its own.
  const issuer = await createTestIssuer({ issuer: 'https://rotating.test', audience: 'api' })
  const idp = await createFakeIdp({ jwks: issuer.jwks })
  t.teardown(() => idp.close())
  const ttl = 400 // long enough for the removed kids to be remembered through the steps below
  const app = await buildApp(t, { issuer: issuer.issuer, audience: 'api', jwksUrl: idp.jwksUrl, jwksCacheTtl: ttl, jwksCooldown: 60_000 })

  const a = issuer.key
  const old = issuer.sign({ sub: 'old' })
  t.equal((await call(app, old)).statusCode, 200)
  t.equal((await call(app, old)).statusCode, 200, 'now in the verified-token cache')
  t.equal(idp.hits(), 1)

  // 1. a rotation that keeps the old key: its cached tokens stand
  const b = await issuer.rotate()
  const underB = issuer.sign({ sub: 'b' })
  t.equal((await call(app, underB)).statusCode, 200)
  t.equal(idp.hits(), 2)
  t.equal((await call(app, old)).statusCode, 200, 'the old key is unchanged in the new set: its cached token stands')

  // 2. the provider retires both: nothing changes until a refetch...
  const c = await issuer.rotate({ retire: true })
  t.equal((await call(app, old)).statusCode, 200, 'keys still fresh: the cached token stands')
  await sleep(ttl + 20)
  // ...which a request under a known key starts once its ttl has passed (the stale key answers meanwhile):
  // get-jwks fetches per key, so each key is refetched on its own
  t.equal((await call(app, issuer.sign({ sub: 'a2' }, { key: a }))).statusCode, 200)
  t.ok(await eventually(async () => codeOf(await call(app, old)) === 'GRIDDY_AUTH_UNKNOWN_KEY'), 'once the refetch of a is in, its cached token is gone')
  t.equal(idp.hits(), 3)
  t.equal((await call(app, underB)).statusCode, 200, 'b, not looked up since its ttl passed, is not refetched yet: its cached token stands')
  t.equal((await call(app, issuer.sign({ sub: 'b2' }, { key: b }))).statusCode, 200, 'a lookup of b: the stale key answers, its refetch starts')
  t.ok(await eventually(async () => codeOf(await call(app, underB)) === 'GRIDDY_AUTH_UNKNOWN_KEY'), 'once it is in, b\'s cached token is gone')
  t.equal(idp.hits(), 4)
  for (const [name, token] of [['cached old', old], ['cached under b', underB], ['new under a', issuer.sign({ sub: 'a3' }, { key: a })], ['new under b', issuer.sign({ sub: 'b3' }, { key: b })]] as const) {
    const res = await call(app, token)
    t.equal(res.statusCode, 401, name)
    t.equal(codeOf(res), 'GRIDDY_AUTH_UNKNOWN_KEY', `${name}: the dropped key is gone`)
  }
  t.equal(idp.hits(), 4, 'a removed kid is remembered as such: its tokens cost no fetch and are no miss...')
  const underC = issuer.sign({ sub: 'c' })
  t.equal((await call(app, underC)).statusCode, 200, '...so the new key is accepted at once, no cooldown')
  t.equal((await call(app, underC)).statusCode, 200)
  t.equal(idp.hits(), 5)

  // 3. same kid, new key material: tokens of the old material fail their signature, cached or not
  const c2 = await issuer.rotate({ retire: true, kid: c.kid })
  t.equal(c2.kid, c.kid)
  await sleep(ttl + 20)
  const hits = idp.hits()
  t.equal((await call(app, issuer.sign({ sub: 'c-again' }, { key: c }))).statusCode, 200, 'stale key, background refetch')
  t.ok(await eventually(async () => codeOf(await call(app, underC)) === 'GRIDDY_AUTH_SIGNATURE'),
    'the cached token of the replaced material is re-verified and fails')
  t.equal(idp.hits(), hits + 1)
  t.equal((await call(app, issuer.sign({ sub: 'c2' }))).statusCode, 200, 'the new material verifies')
})

t.test('a kid remembered as unusable (published, refused by the checks) costs no fetch until jwksCacheTtl has passed, then one', async (t) => {
  const ttl = 300
  const { issuer, idp, app } = await setupRemote(t, { jwksCacheTtl: ttl, jwksCooldown: 60_000 })
  const enc = await poolKey(3)
  idp.jwks.keys.push({ ...enc.jwk, use: 'enc' })
  const token = issuer.sign({ sub: 'u' }, { key: enc })
  t.equal(codeOf(await call(app, token)), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(codeOf(await call(app, token)), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(idp.hits(), 1, 'fetched once, then remembered')
  t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200, 'no miss: a real key is still fetched at once')
  t.equal(idp.hits(), 2)
  await sleep(ttl + 20)
  t.equal(codeOf(await call(app, token)), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(idp.hits(), 3, 'past the ttl it is asked for again (still no miss: the provider has it)')
  idp.jwks.keys = idp.jwks.keys.filter((jwk) => jwk.kid !== enc.kid)
  await sleep(ttl + 20)
  t.equal(codeOf(await call(app, token)), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(codeOf(await call(app, issuer.sign({ sub: 'u' }, { kid: randomUUID() }))), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(idp.hits(), 4, 'gone from the set: that fetch was a miss, and the cooldown holds the random kid after it')
})
