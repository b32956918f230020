/**
 * Fuzzing claim types in validly SIGNED tokens (SPEC §1, §4, §5, §6): exp
 * as a string, aud as an object, permissions as nested arrays, sub as a
 * number, iss as an array, nbf as a string, azp as an object, sid as a
 * number, and so on, plus duplicate keys and `__proto__`, with unusual but
 * harmless header members (typ, cty...). The signature is always good, so
 * the answer is decided by the claims: the oracle's, at the first failing
 * claim in SPEC order, or 200 with the right `request.auth`.
 */
import t from 'tap'
import fc from 'fast-check'
import { sign } from 'node:crypto'
import { createTestIssuer, type TestIssuer, type TestKey } from '../../lib/testing/index'
import { check, createTarget, probe, routes, type FuzzTarget } from './harness'
import { expectForClaims, expectForHeader, type Deployment } from './oracle'

const issuers = ['https://issuer.test', 'https://other-issuer.test']
const audiences = ['https://api.test', 'api2']
const parties = ['https://app.test', 'https://admin.test']

let issuer: TestIssuer
let target: FuzzTarget
/** Seconds, when a value is generated: generated times keep 30 s or more clear of now +/- the tolerance. */
const nowSeconds = (): number => Math.floor(Date.now() / 1000)
/** A fixed "now" for constants (one day of margin: long fuzz runs stay well inside it). */
const now = nowSeconds()

t.before(async () => {
  issuer = await createTestIssuer({ issuer: issuers[0], audience: audiences[0] })
  const deployment: Deployment = {
    issuers,
    audiences,
    authorizedParties: parties,
    clockTolerance: 5,
    permissionsClaim: 'permissions',
    keys: new Map([[issuer.key.kid, issuer.key.publicKey]])
  }
  target = await createTarget(t, { issuer: issuers, audience: audiences, authorizedParties: parties, jwks: issuer.jwks }, deployment)
})

/** Any JSON value a broken or hostile issuer could put in a claim. */
const anyJson = (): fc.Arbitrary<unknown> => fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 0, -1, 1.5, 1e308, -1e308, 5e-324, '', ' ', '0', 'null', 'true', [], {}, [[]], [null], { length: 1 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.jsonValue({ maxDepth: 3 })
)

/** A claim: a good value mostly, else a value of the wrong type or shape, else absent (undefined). */
function claim (good: fc.Arbitrary<unknown>, wrong: fc.Arbitrary<unknown>, goodWeight = 16): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: goodWeight, arbitrary: good },
    { weight: 2, arbitrary: wrong },
    { weight: 1, arbitrary: anyJson() },
    { weight: 1, arbitrary: fc.constant(undefined) }
  )
}

// Times are kept 30 s or more away from now +/- the 5 s tolerance, so the oracle's clock and the plugin's agree.
const future = (): fc.Arbitrary<number> => fc.integer({ min: 30, max: 10_000_000 }).map((d) => nowSeconds() + d)
const past = (): fc.Arbitrary<number> => fc.integer({ min: 30, max: 1_000_000_000 }).map((d) => nowSeconds() - d)

const claimsArb = (): fc.Arbitrary<Record<string, unknown>> => fc.record({
  iss: claim(fc.constantFrom(...issuers), fc.constantFrom<unknown>([issuers[0]], { iss: issuers[0] }, `${issuers[0]}/`, issuers[0]?.toUpperCase(), ` ${issuers[0]}`, 'https://evil.test', 'https://issuer.test\u0000')),
  aud: claim(
    fc.oneof(fc.constantFrom(...audiences), fc.constantFrom<unknown>(['x', 'api2'], [5, null, 'https://api.test'], [{}, ['api2'], 'api2'])),
    fc.constantFrom<unknown>({ aud: 'api2' }, [['api2']], 'API2', 'https://api.test/', ['x'], [], { 0: 'api2', length: 1 })
  ),
  sub: claim(fc.string({ minLength: 1, maxLength: 16 }), fc.constantFrom<unknown>(42, '', ['user_1'], { id: 'user_1' }, null, 0)),
  exp: claim(future(), fc.oneof(past(), future().map(String), fc.constantFrom<unknown>({ $gt: 0 }, [now + 86_400], null, '1e999')), 20),
  nbf: fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: past() },
    { weight: 1, arbitrary: future() },
    { weight: 1, arbitrary: fc.oneof(past().map(String), fc.constantFrom<unknown>(null, {}, [now - 86_400], true)) }
  ),
  iat: fc.oneof(past(), future(), anyJson(), fc.constant(undefined)),
  azp: claim(fc.constantFrom(...parties), fc.constantFrom<unknown>({ azp: parties[0] }, [parties[0]], `${parties[0]}/`, 'https://evil.test', 5)),
  sid: fc.oneof(fc.string({ maxLength: 10 }), anyJson(), fc.constant(undefined)),
  permissions: fc.oneof(
    { weight: 3, arbitrary: fc.subarray(['leagues:read', 'leagues:write', 'leagues:admin', 'Leagues:read', 'leagues:*', 'leagues', '']) },
    { weight: 2, arbitrary: fc.constantFrom<unknown>('leagues:read leagues:write', ' leagues:read\tleagues:write\n', 'leagues:read,leagues:write', 'leagues:read\u00a0leagues:write', 'leagues:read\u3000leagues:write') },
    { weight: 2, arbitrary: fc.constantFrom<unknown>([['leagues:read']], [['leagues:read', 'leagues:write']], { 'leagues:read': true }, ['leagues:read', 5, null, {}, 'leagues:write'], [' leagues:read'], 42) },
    { weight: 1, arbitrary: anyJson() },
    { weight: 1, arbitrary: fc.constant(undefined) }
  )
}).map((record) => Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)))

/** JSON text of the claims, sometimes with a duplicate key or a `__proto__` member spliced in front (so the real member wins). */
const payloadText = (): fc.Arbitrary<string> => fc.tuple(claimsArb(), fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '"__proto__":{"sub":"admin","permissions":["leagues:read","leagues:write"],"exp":9999999999,"iss":"https://issuer.test","aud":"api2","azp":"https://app.test"}',
      '"sub":"shadowed"', '"permissions":["leagues:read","leagues:write"]', '"exp":1', `"exp":${now + 86_400}`, '"iss":"https://evil.test"', '"aud":"api2"', '"azp":"https://app.test"',
      '"constructor":{"prototype":{"polluted":true}}'
    )
  }
)).map(([claims, front]) => {
  const text = JSON.stringify(claims)
  return front === '' ? text : text === '{}' ? `{${front}}` : `{${front},${text.slice(1)}`
})

/** A token over exactly these JSON texts, RS256-signed with `key`. */
function rawToken (headerJson: string, payloadJson: string, key: TestKey): string {
  const input = `${Buffer.from(headerJson).toString('base64url')}.${Buffer.from(payloadJson).toString('base64url')}`
  return `${input}.${sign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`
}

const harmlessHeader = fc.dictionary(
  fc.constantFrom('typ', 'cty', 'x5t', 'x5t#S256', 'foo', 'iss', 'b64', 'zip', 'enc'),
  fc.oneof(fc.constantFrom<unknown>('JWT', 'JWE', 'application/jwt', 'at+jwt', 'JOSE+JSON', '', null, 5, {}, 'DEF', false), anyJson()),
  { maxKeys: 3 }
)

t.test('any claims in a signed token: the oracle\'s answer, the right request.auth on success, never a 500', async (t) => {
  await check(t, 'signed claims', fc.asyncProperty(payloadText(), harmlessHeader, fc.constantFrom(...Object.keys(routes)), async (payload, extraHeader, url) => {
    // typ, cty and other members are not checked (SPEC §6 names no typ check): they change nothing.
    // The payload is signed as this exact text (duplicate keys, __proto__ first), not re-serialised.
    const exact = rawToken(JSON.stringify({ ...extraHeader, alg: 'RS256', kid: issuer.key.kid }), payload, issuer.key)
    const required = routes[url] as readonly string[]
    const claims = JSON.parse(payload) as Record<string, unknown>
    const acceptable = [expectForClaims(claims, target.deployment, required, Date.now())]
    // the two oracles agree on a well-formed, well-signed token
    const whole = expectForHeader(`Bearer ${exact}`, target.deployment, required, Date.now())
    if (whole.length !== 1 || JSON.stringify(whole[0]) !== JSON.stringify(acceptable[0])) throw new Error(`oracle disagreement: ${JSON.stringify(whole)} / ${JSON.stringify(acceptable)}`)
    await probe(target, { authorization: `Bearer ${exact}` }, { url, secrets: [exact, exact.split('.')[2] as string], claims }, acceptable)
  }), { seed: 0x6a77_0005, runs: 500 })
})
