/**
 * SPEC §9: only RSA keys usable for RS256 signatures are used (kty RSA, use
 * absent or sig, alg absent or RS256, key_ops absent or with verify, a kid,
 * a modulus of at least 2048 bits); anything else in a key set is ignored,
 * never trusted and never a crash. Unit tests of lib/jwk.ts, then the same
 * keys through the plugin, static and fetched.
 */
import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { minModulusBits, toKeyMap, toSigningKey } from '../../lib/keys/jwk'
import type { JWK } from '../../lib/index'
import type { TestKey } from '../../lib/testing/index'
import { buildApp, call, codeOf, createFakeIdp, poolKey, sharedIssuer, type Asserts } from '../fixtures/fake-idp'

function weakKey (kid: string, modulusLength: number): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength })
  return { kid, privateKey, publicKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } as JWK }
}

const ecJwk = (kid: string): JWK => ({ ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid, use: 'sig' } as JWK)

/** Each bad variant of a good key, under its own kid, with the reason it must be ignored. */
function badVariants (good: JWK): Array<[string, unknown]> {
  return [
    ['use: enc', { ...good, kid: 'enc', use: 'enc' }],
    ['alg: RS384', { ...good, kid: 'rs384', alg: 'RS384' }],
    ['alg: PS256', { ...good, kid: 'ps256', alg: 'PS256' }],
    ['alg: none', { ...good, kid: 'none', alg: 'none' }],
    ['kty: EC', ecJwk('ec')],
    ['kty missing', { ...good, kid: 'no-kty', kty: undefined }],
    ['kty: rsa (lower case)', { ...good, kid: 'lower', kty: 'rsa' }],
    ['key_ops without verify', { ...good, kid: 'ops-enc', key_ops: ['encrypt', 'wrapKey'] }],
    ['key_ops not an array', { ...good, kid: 'ops-string', key_ops: 'verify' }],
    ['empty kid', { ...good, kid: '' }],
    ['numeric kid', { ...good, kid: 7 }],
    ['n not a string', { ...good, kid: 'n-number', n: 12345 }],
    ['e missing', { ...good, kid: 'no-e', e: undefined }],
    ['garbage n', { ...good, kid: 'garbage-n', n: '!!!not*base64url!!!' }],
    ['empty n', { ...good, kid: 'empty-n', n: '' }],
    ['empty e (e = 0)', { ...good, kid: 'empty-e', e: '' }],
    ['garbage e', { ...good, kid: 'garbage-e', e: '***' }],
    ['e = 1 (anyone could forge: s = EM)', { ...good, kid: 'e-one', e: 'AQ' }],
    ['e = 2 (even: no RSA key)', { ...good, kid: 'e-two', e: 'Ag' }],
    ['e = 65536 (even)', { ...good, kid: 'e-even', e: 'AQAA' }]
  ]
}

t.test('toSigningKey', async (t) => {
  const key = await poolKey(0)
  const good = key.jwk

  const signing = toSigningKey(good)
  t.match(signing, { kid: key.kid, revoked: false })
  t.match(signing?.pem, /^-----BEGIN PUBLIC KEY-----\n/)
  t.equal(signing?.pem, key.publicKey.export({ type: 'spki', format: 'pem' }), 'the public key, in SPKI PEM')

  t.ok(toSigningKey({ kty: 'RSA', kid: 'bare', n: good.n, e: good.e }), 'use and alg may be absent')
  t.ok(toSigningKey({ ...good, e: 'Aw' }), 'e = 3 is a valid exponent')
  t.ok(toSigningKey({ ...good, key_ops: ['verify'] }), 'key_ops with verify')
  t.ok(toSigningKey({ ...good, x5c: ['garbage'], x5u: 'http://evil.example/', d: undefined }), 'other members are ignored')
  t.equal(toSigningKey({ ...good, d: 'private' })?.pem, signing?.pem, 'private members never make it in: a public key only')

  for (const [reason, jwk] of badVariants(good)) t.equal(toSigningKey(jwk), undefined, reason)

  t.equal(minModulusBits, 2048)
  t.equal(toSigningKey(weakKey('weak', 1024).jwk), undefined, '1024-bit RSA')
  t.equal(toSigningKey(weakKey('weak', 2040).jwk), undefined, '2040-bit RSA')
  t.equal(toSigningKey({ kty: 'RSA', kid: 'tiny', n: 'AQAB', e: 'AQAB' }), undefined, 'a 17-bit modulus')

  for (const value of [null, undefined, 'RSA', 42, true, [good]]) t.equal(toSigningKey(value), undefined, String(value))
})

t.test('toKeyMap', async (t) => {
  const [a, b] = await Promise.all([poolKey(0), poolKey(1)])

  for (const value of [null, undefined, 'x', 1, [], [a.jwk], {}, { keys: 'x' }, { keys: { 0: a.jwk } }, { keys: null }]) {
    t.equal(toKeyMap(value), undefined, `${JSON.stringify(value)?.slice(0, 40)} is not a key set`)
  }
  t.same(toKeyMap({ keys: [] }), new Map(), 'an empty set is a set')

  const map = toKeyMap({ keys: [null, 'x', 1, ...badVariants(a.jwk).map(([, jwk]) => jwk), a.jwk, b.jwk] })!
  t.same([...map.keys()], [a.kid, b.kid], 'only usable keys, in order')

  const dup = toKeyMap({ keys: [{ ...a.jwk, kid: 'dup' }, { ...b.jwk, kid: 'dup' }] })!
  t.equal(dup.size, 1)
  t.equal(dup.get('dup')?.pem, toSigningKey(a.jwk)?.pem, 'duplicate kid: the first wins')
  const dupAfterBad = toKeyMap({ keys: [{ ...b.jwk, kid: 'dup', use: 'enc' }, { ...a.jwk, kid: 'dup' }] })!
  t.equal(dupAfterBad.get('dup')?.pem, toSigningKey(a.jwk)?.pem, 'an ignored key does not take the kid')
})

t.test('through the plugin: tokens under ignored keys get UNKNOWN_KEY', async (t) => {
  const issuer = await sharedIssuer()
  const [material, other] = await Promise.all([poolKey(0), poolKey(1)])
  const weak = weakKey('weak-1024', 1024)
  // The ignored entries reuse real key material, so a token under their kid would verify if they were used.
  const bad = badVariants(material.jwk).filter(([, jwk]) => typeof (jwk as JWK).kid === 'string' && (jwk as JWK).kid !== '' && (jwk as JWK).kty !== 'EC')
  const keys = [
    ...bad.map(([, jwk]) => jwk as JWK),
    weak.jwk,
    { ...material.jwk, kid: 'dup' },
    { ...other.jwk, kid: 'dup' },
    ...issuer.jwks.keys
  ]

  const check = async (t: Asserts, options: Record<string, unknown>): Promise<void> => {
    const app = await buildApp(t, { issuer: issuer.issuer, audience: issuer.audience, ...options })
    for (const [reason, jwk] of bad) {
      const res = await call(app, issuer.sign({ sub: 'u' }, { key: material, kid: (jwk as JWK).kid! }))
      t.equal(res.statusCode, 401, reason)
      t.equal(codeOf(res), 'GRIDDY_AUTH_UNKNOWN_KEY', reason)
    }
    t.equal(codeOf(await call(app, issuer.sign({ sub: 'u' }, { key: weak }))), 'GRIDDY_AUTH_UNKNOWN_KEY', '1024-bit key')
    t.equal((await call(app, issuer.sign({ sub: 'u' }, { key: material, kid: 'dup' }))).statusCode, 200, 'duplicate kid: the first key')
    t.equal(codeOf(await call(app, issuer.sign({ sub: 'u' }, { key: other, kid: 'dup' }))), 'GRIDDY_AUTH_SIGNATURE', 'not the second')
    t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200, 'the usable key of the set works')
  }

  t.test('static jwks', async (t) => {
    await check(t, { jwks: { keys } })
  })

  t.test('fetched from jwksUrl: a set with ignored keys is a successful fetch', async (t) => {
    const idp = await createFakeIdp({ jwks: { keys } })
    t.teardown(() => idp.close())
    // jwksCooldown 0: get-jwks fetches per kid, and the kids it filters out itself (another alg) are misses
    await check(t, { jwksUrl: idp.jwksUrl, jwksCooldown: 0 })
    const kids = new Set([...bad.map(([, jwk]) => (jwk as JWK).kid), 'weak-1024', 'dup', issuer.key.kid])
    t.equal(idp.hits(), kids.size, 'one fetch per kid')

    const app = await buildApp(t, { issuer: issuer.issuer, audience: issuer.audience, jwksUrl: idp.jwksUrl, jwksCooldown: 0 })
    const ask = async (kid: string): Promise<number> => {
      const before = idp.hits()
      t.equal(codeOf(await call(app, issuer.sign({ sub: 'u' }, { key: material, kid }))), 'GRIDDY_AUTH_UNKNOWN_KEY', kid)
      return idp.hits() - before
    }
    for (const [reason, jwk] of bad) {
      const kid = (jwk as JWK).kid as string
      const filteredByGetJwks = (jwk as JWK).alg !== undefined && (jwk as JWK).alg !== 'RS256'
      t.equal(await ask(kid), 1, `${reason}: fetched once`)
      t.equal(await ask(kid), filteredByGetJwks ? 1 : 0, filteredByGetJwks
        ? `${reason}: get-jwks finds no RS256 key: a miss, fetched again without a cooldown`
        : `${reason}: published but refused by the checks: remembered, no fetch`)
    }
  })
})

t.test('regression: a published key with e = 1 does not let anyone forge tokens', async (t) => {
  const issuer = await sharedIssuer()
  const { createHash } = await import('node:crypto')
  const n = issuer.key.jwk.n as string
  const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'e-one' })}.${b64({ iss: issuer.issuer, aud: issuer.audience, sub: 'forged', iat: now, exp: now + 60 })}`
  // With e = 1, the "signature" is the PKCS#1 v1.5 encoded message itself: no private key needed.
  const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update(input).digest()])
  const size = Buffer.from(n, 'base64url').length
  const em = Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(size - 3 - digestInfo.length, 0xff), Buffer.from([0]), digestInfo])
  const forged = `${input}.${em.toString('base64url')}`

  const app = await buildApp(t, { issuer: issuer.issuer, audience: issuer.audience, jwks: { keys: [...issuer.jwks.keys, { kty: 'RSA', kid: 'e-one', n, e: 'AQ' }] } })
  const res = await call(app, forged)
  t.equal(res.statusCode, 401)
  t.equal(codeOf(res), 'GRIDDY_AUTH_UNKNOWN_KEY', 'the e = 1 key is ignored')
})
