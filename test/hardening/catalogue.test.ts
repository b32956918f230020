/**
 * The attack catalogue: RFC 8725 (JWT BCP) and known CVEs of JWT libraries,
 * one test per attack, each named after what it attacks. The table of
 * attack -> answer -> test is docs/security.md.
 *
 * Attacks other suites already cover identically are not repeated here:
 * - alg "none" in any casing (CVE-2015-9235): test/attacks.test.ts 'alg none, in any casing, signed or not'
 * - HS256 keyed with the PEM / PKCS#1 PEM / JWK JSON / modulus string (CVE-2016-10555, CVE-2023-48223):
 *   test/attacks.test.ts 'HS256 keyed with the public key (algorithm confusion)'
 * - 'RS256 ' with a space, 'rs256', PS256 on an RSA key, alg as array / object / null / missing:
 *   test/attacks.test.ts 'other algorithm names, even over a valid RS256 signature'
 * - jku, x5u, jwk, x5c pointing at the attacker: test/attacks.test.ts 'jku, x5u, jwk, x5c headers are ignored and
 *   never fetched', test/keys/fetch.test.ts 'the JWKS location comes from configuration only...'
 * - kid path traversal and URLs: test/attacks.test.ts 'hostile kid values are opaque lookup keys: unknown key, nothing fetched'
 * - crit with an unknown extension, b64: false (RFC 7797): test/attacks.test.ts 'crit naming an unknown extension is a 401'
 * - signature stripping, tampering without re-signing, another token's signature:
 *   test/attacks.test.ts 'claims tampered after signing'
 * - claims tampered and re-signed with another key under the real kid / its own kid:
 *   test/attacks.test.ts 'a valid signature by another key under a known kid'
 * - 4 and 5 segments, empty segments: test/attacks.test.ts 'wrong number of segments'
 * - 1024-bit keys, use: enc, alg other than RS256, key_ops without verify: test/keys/jwk.test.ts
 *   'through the plugin: tokens under ignored keys get UNKNOWN_KEY'
 * - RSA e = 1 (forgery without the private key): test/keys/jwk.test.ts 'regression: a published key with e = 1...'
 * - iss as an array (fast-jwt CVE-2025-30144), iss of an unconfigured issuer choosing the JWKS (SSRF):
 *   test/error-table.test.ts, test/attacks.test.ts 'iss naming the attacker...', test/keys/issuers.test.ts
 * - a flood of random kids (JWKS request storm): test/keys/rotation.test.ts 'unknown-kid flood...'
 * - duplicate keys and __proto__ in header and payload: test/attacks.test.ts
 */
import t from 'tap'
import { createHmac, createSign, randomBytes, randomUUID, sign as rsaSign } from 'node:crypto'
import { deflateRawSync } from 'node:zlib'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createTestKey, signToken, type TestIssuer, type TestKey } from '../../lib/testing/index'
import type { JWK } from '../../lib/index'
import { buildApp, call, captureLog, poolKey, setupRemote, sharedIssuer, type Asserts, type CapturedLog } from '../fixtures/fake-idp'

const messages: Record<string, string> = {
  GRIDDY_AUTH_BAD_HEADER: 'Authorization header must be: Bearer <token>.',
  GRIDDY_AUTH_MALFORMED: 'Token is malformed.',
  GRIDDY_AUTH_ALGORITHM: 'Invalid token algorithm.',
  GRIDDY_AUTH_UNKNOWN_KEY: 'Signing key not found.',
  GRIDDY_AUTH_SIGNATURE: 'Invalid token signature.',
  GRIDDY_AUTH_AUDIENCE: 'Invalid audience.'
}

/** Asserts the whole 401: status, code, fixed message, challenge, and that the token is not echoed. */
function refused (t: Asserts, res: LightMyRequestResponse, code: string, token: string, what: string): void {
  const message = messages[code] as string
  t.equal(res.statusCode, 401, `${what}: 401`)
  t.same(res.json(), { statusCode: 401, code, error: 'Unauthorized', message }, `${what}: ${code}`)
  const kind = code === 'GRIDDY_AUTH_BAD_HEADER' ? 'invalid_request' : 'invalid_token'
  t.equal(res.headers['www-authenticate'], `Bearer error="${kind}", error_description="${message}"`, `${what}: challenge`)
  t.notOk(token.length > 16 && res.body.includes(token), `${what}: the token is not echoed`)
}

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
const now = (): number => Math.floor(Date.now() / 1000)

let issuer: TestIssuer
let attacker: TestKey
let app: FastifyInstance

t.before(async () => {
  issuer = await sharedIssuer()
  attacker = await createTestKey('attacker')
})

t.beforeEach(async (t) => {
  app = await buildApp(t, issuer.pluginOptions)
})

function claims (extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: issuer.issuer, aud: issuer.audience, sub: 'user_1', iat: now(), exp: now() + 60, ...extra }
}

/** HMAC-SHA-`bits` over `header.payload`, keyed with `secret` (bytes or text). */
function hmacToken (alg: 'HS256' | 'HS384' | 'HS512', secret: Buffer | string, header: Record<string, unknown> = {}): string {
  const input = `${b64({ alg, typ: 'JWT', kid: issuer.key.kid, ...header })}.${b64(claims({ sub: 'admin' }))}`
  return `${input}.${createHmac(`sha${alg.slice(2)}`, secret).update(input).digest('base64url')}`
}

t.test('algorithm confusion (CVE-2016-10555, CVE-2022-23541): HMAC keyed with the public key as DER, base64 DER, modulus or exponent bytes, or an empty secret', async (t) => {
  const { issuer: remote, idp, app: remoteApp } = await setupRemote(t)
  const der = remote.key.publicKey.export({ type: 'spki', format: 'der' })
  const pkcs1Der = remote.key.publicKey.export({ type: 'pkcs1', format: 'der' })
  const secrets: Record<string, Buffer | string> = {
    'SPKI DER bytes': der,
    'SPKI DER, base64': der.toString('base64'),
    'PKCS#1 DER bytes': pkcs1Der,
    'the modulus bytes': Buffer.from(remote.key.jwk.n as string, 'base64url'),
    'the exponent bytes': Buffer.from(remote.key.jwk.e as string, 'base64url'),
    'the PEM (HS384/HS512 below)': remote.key.publicKey.export({ type: 'spki', format: 'pem' }) as string,
    'an empty secret (CVE-2022-23540)': '',
    'the string "null"': 'null'
  }
  for (const [name, secret] of Object.entries(secrets)) {
    for (const alg of ['HS256', 'HS384', 'HS512'] as const) {
      const token = hmacToken(alg, secret)
      refused(t, await call(remoteApp, token), 'GRIDDY_AUTH_ALGORITHM', token, `${alg} keyed with ${name}`)
    }
  }
  t.equal(idp.hits('*'), 0, 'refused before any key lookup: the JWKS was never even fetched')
})

t.test('embedded jwk without kid (CVE-2018-0114): a key carried in the token is never trusted', async (t) => {
  const forged = signToken({ alg: 'RS256', typ: 'JWT', jwk: attacker.jwk }, claims({ sub: 'admin' }), attacker)
  refused(t, await call(app, forged), 'GRIDDY_AUTH_UNKNOWN_KEY', forged, "the attacker's key embedded, no kid")
  // Even the real public key, embedded and really signed for: no kid, no lookup (SPEC §6).
  const real = signToken({ alg: 'RS256', typ: 'JWT', jwk: issuer.key.jwk }, claims(), issuer.key)
  refused(t, await call(app, real), 'GRIDDY_AUTH_UNKNOWN_KEY', real, 'the real key embedded, no kid')
  const x5c = signToken({ alg: 'RS256', typ: 'JWT', x5c: [attacker.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')] }, claims(), attacker)
  refused(t, await call(app, x5c), 'GRIDDY_AUTH_UNKNOWN_KEY', x5c, "the attacker's key as x5c, no kid")
})

t.test('kid injection: SQL, NUL bytes, CRLF, format strings and lookalikes are opaque map keys, never logged, never fetched', async (t) => {
  const log: CapturedLog = captureLog()
  const { issuer: remote, idp, app: remoteApp } = await setupRemote(t, { jwksCooldown: 60_000 }, log)
  const kid = remote.key.kid
  const kids = [
    "' OR '1'='1", `${kid}' --`, '1; DROP TABLE keys', '" UNION SELECT pem FROM keys --', `${kid}\u0000`, `\u0000${kid}`, `${kid}\u0000.pem`,
    `${kid}\r\nX-Injected: 1`, '%s%s%s%n', '$' + '{jndi:ldap://127.0.0.1/a}', '{{7*7}}', `${kid}\u200b`, kid.replace(/-/g, '\u2010'),
    '*', '.*', '$where', 'true', 'null'
  ]
  t.equal((await call(remoteApp, remote.sign({ sub: 'u' }))).statusCode, 200, 'the real kid works')
  for (const injected of kids) {
    const token = remote.sign({ sub: 'admin' }, { kid: injected })
    refused(t, await call(remoteApp, token), 'GRIDDY_AUTH_UNKNOWN_KEY', token, `kid ${JSON.stringify(injected)}`)
  }
  t.ok(idp.hits() <= 2, `the lazy fetch and at most one refetch per cooldown (${idp.hits()})`)
  t.ok(idp.requests.every((path) => path === '/.well-known/jwks.json'), 'no kid became part of a URL')
  const text = log.raw.join('')
  t.notOk(kids.some((injected) => injected.length > 4 && text.includes(JSON.stringify(injected).slice(1, -1))), 'no kid reached the log')
})

t.test('unusual typ is not checked (SPEC §6 names no typ check): a valid token with typ JWE, application/jwt, at+jwt, none or a number still verifies', async (t) => {
  for (const typ of ['JWE', 'application/jwt', 'at+jwt', 'application/at+jwt', 'JOSE+JSON', '', 5, null, { a: 1 }, undefined]) {
    const header: Record<string, unknown> = { alg: 'RS256', kid: issuer.key.kid }
    if (typ !== undefined) header.typ = typ
    const res = await call(app, signToken(header, claims({ sub: 'typ-user' }), issuer.key))
    t.equal(res.statusCode, 200, `typ ${JSON.stringify(typ) ?? 'absent'}: accepted (the signature, iss and aud carry the trust)`)
    t.equal(res.json().userId, 'typ-user')
  }
})

t.test('JWS JSON serialization (general and flattened) is not a bearer token', async (t) => {
  const valid = issuer.sign({ sub: 'user_1' })
  const [h, p, s] = valid.split('.') as [string, string, string]
  const flattened = JSON.stringify({ protected: h, payload: p, signature: s })
  const general = JSON.stringify({ payload: p, signatures: [{ protected: h, signature: s }] })
  for (const [name, json] of [['flattened', flattened], ['general', general]]) {
    refused(t, await app.inject({ url: '/me', headers: { authorization: `Bearer ${json}` } }), 'GRIDDY_AUTH_BAD_HEADER', json, `${name}, raw`)
    const wrapped = Buffer.from(json).toString('base64url')
    refused(t, await call(app, wrapped), 'GRIDDY_AUTH_MALFORMED', wrapped, `${name}, base64url-wrapped`)
    refused(t, await call(app, `${wrapped}.${p}.${s}`), 'GRIDDY_AUTH_ALGORITHM', wrapped, `${name} as the header of a compact token`)
  }
})

t.test('JWE compact serialization (5 parts) and a JWE header on a 3-part token', async (t) => {
  const { issuer: remote, idp, app: remoteApp } = await setupRemote(t)
  const jweHeader = b64({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: remote.key.kid, cty: 'JWT' })
  const parts = [jweHeader, randomBytes(256).toString('base64url'), randomBytes(12).toString('base64url'), randomBytes(64).toString('base64url'), randomBytes(16).toString('base64url')]
  refused(t, await call(remoteApp, parts.join('.')), 'GRIDDY_AUTH_MALFORMED', parts.join('.'), 'a 5-part JWE')
  const dir = [b64({ alg: 'dir', enc: 'A128CBC-HS256', kid: remote.key.kid }), '', ...parts.slice(2)].join('.')
  refused(t, await call(remoteApp, dir), 'GRIDDY_AUTH_MALFORMED', dir, "a 5-part JWE with alg 'dir' (empty encrypted key)")
  const asJws = `${jweHeader}.${b64(claims())}.${randomBytes(256).toString('base64url')}`
  refused(t, await call(remoteApp, asJws), 'GRIDDY_AUTH_ALGORITHM', asJws, 'a JWE header on a 3-part token')
  t.equal(idp.hits('*'), 0, 'nothing was decrypted or looked up')
})

t.test('psychic signatures (CVE-2022-21449): ES256 with r = s = 0 is refused as ALGORITHM before any key lookup or crypto', async (t) => {
  const { issuer: remote, idp, app: remoteApp } = await setupRemote(t)
  const input = `${b64({ alg: 'ES256', typ: 'JWT', kid: remote.key.kid })}.${b64({ ...claims({ sub: 'admin' }), iss: remote.issuer })}`
  const signatures: Record<string, string> = {
    'raw r || s of 64 zero bytes': Buffer.alloc(64).toString('base64url'),
    'DER SEQUENCE { 0, 0 }': Buffer.from('3006020100020100', 'hex').toString('base64url'),
    'no signature': ''
  }
  for (const [name, signature] of Object.entries(signatures)) {
    refused(t, await call(remoteApp, `${input}.${signature}`), 'GRIDDY_AUTH_ALGORITHM', `${input}.${signature}`, `ES256, ${name}`)
  }
  for (const alg of ['ES384', 'ES512', 'ES256K']) {
    const token = `${b64({ alg, kid: remote.key.kid })}.${b64(claims())}.${Buffer.alloc(96).toString('base64url')}`
    refused(t, await call(remoteApp, token), 'GRIDDY_AUTH_ALGORITHM', token, `${alg}, zero signature`)
  }
  t.equal(idp.hits('*'), 0, 'no key was looked up, so no signature arithmetic could have run')
  // The RSA analogue of a zero signature: refused by the signature check.
  const zeros = `${b64({ alg: 'RS256', kid: remote.key.kid })}.${b64(claims())}.${Buffer.alloc(256).toString('base64url')}`
  refused(t, await call(remoteApp, zeros), 'GRIDDY_AUTH_SIGNATURE', zeros, 'RS256 with an all-zero signature')
})

t.test('JSON bombs within the 16 KiB limit (the billion-laughs idea for JSON): deep nesting, thousands of members and duplicate keys, answered at once', async (t) => {
  const kid = JSON.stringify(issuer.key.kid)
  const sign = (headerJson: string, payloadJson: string): string => {
    const input = `${b64(headerJson)}.${b64(payloadJson)}`
    return `${input}.${rsaSign('sha256', Buffer.from(input), issuer.key.privateKey).toString('base64url')}`
  }
  const body = JSON.stringify(claims({ sub: 'bomb' })).slice(0, -1)
  const cases: Array<[string, string, number | string]> = [
    ['a header nested 5000 arrays deep', sign(`{"alg":"RS256","kid":${kid},"x":${'['.repeat(5000)}${']'.repeat(5000)}}`, JSON.stringify(claims({ sub: 'bomb' }))), 200],
    ['a payload nested 5500 arrays deep', sign(JSON.stringify({ alg: 'RS256', kid: issuer.key.kid }), `${body},"x":${'['.repeat(5500)}${']'.repeat(5500)}}`), 200],
    ['a payload nested 1800 objects deep', sign(JSON.stringify({ alg: 'RS256', kid: issuer.key.kid }), `${body},"x":${'{"a":'.repeat(1800)}1${'}'.repeat(1800)}}`), 200],
    ['1200 members in the header', sign(`{"alg":"RS256","kid":${kid}${Array.from({ length: 1200 }, (_, i) => `,"${i.toString(36)}":0`).join('')}}`, JSON.stringify(claims({ sub: 'bomb' }))), 200],
    ['1500 duplicate keys in the payload', sign(JSON.stringify({ alg: 'RS256', kid: issuer.key.kid }), `${body}${',"d":1'.repeat(1500)}}`), 200],
    ['700 duplicate alg members, the last one none', sign(`{"kid":${kid}${',"alg":"RS256"'.repeat(700)},"alg":"none"}`, JSON.stringify(claims())), 'GRIDDY_AUTH_ALGORITHM']
  ]
  for (const [name, token, expected] of cases) {
    t.ok(token.length < 16 * 1024, `${name}: ${token.length} chars, within the limit`)
    const started = Date.now()
    const res = await call(app, token)
    t.ok(Date.now() - started < 2000, `${name}: answered in ${Date.now() - started} ms`)
    if (typeof expected === 'number') t.equal(res.statusCode, expected, `${name}: ${expected}`)
    else refused(t, res, expected, token, name)
  }
})

t.test('token replay across audiences (RFC 8725 §3.9, cross-JWT confusion): a token for another service is refused there', async (t) => {
  const billing = await buildApp(t, { ...issuer.pluginOptions, audience: 'https://billing.test' })
  const games = await buildApp(t, { ...issuer.pluginOptions, audience: 'https://games.test' })
  const forBilling = issuer.sign({ sub: 'u', aud: 'https://billing.test' })
  const forGames = issuer.sign({ sub: 'u', aud: ['https://games.test'] })
  const forBoth = issuer.sign({ sub: 'u', aud: ['https://billing.test', 'https://games.test'] })
  const idToken = issuer.sign({ sub: 'u', aud: 'client_abc123', nonce: 'n' }) // an OIDC ID token: aud is the client id

  t.equal((await call(billing, forBilling)).statusCode, 200, 'billing token at billing')
  t.equal((await call(billing, forBilling)).statusCode, 200, 'again, from the cache')
  refused(t, await call(games, forBilling), 'GRIDDY_AUTH_AUDIENCE', forBilling, 'billing token replayed at games')
  refused(t, await call(billing, forGames), 'GRIDDY_AUTH_AUDIENCE', forGames, 'games token replayed at billing')
  t.equal((await call(games, forGames)).statusCode, 200, 'games token at games')
  t.equal((await call(billing, forBoth)).statusCode, 200, 'a token naming both audiences: billing')
  t.equal((await call(games, forBoth)).statusCode, 200, 'a token naming both audiences: games')
  for (const target of [billing, games]) refused(t, await call(target, idToken), 'GRIDDY_AUTH_AUDIENCE', idToken, 'an ID token used as an access token')
})

t.test('symmetric key in the JWKS (kty oct): never used, so an HMAC signed with its k is refused', async (t) => {
  const k = randomBytes(32)
  const oct = { kty: 'oct', k: k.toString('base64url'), kid: 'hmac-key', alg: 'HS256', use: 'sig' } as unknown as JWK
  const withOct = await buildApp(t, { ...issuer.pluginOptions, jwks: { keys: [oct, ...issuer.jwks.keys] } })
  const input = `${b64({ alg: 'HS256', kid: 'hmac-key' })}.${b64(claims({ sub: 'admin' }))}`
  const hs = `${input}.${createHmac('sha256', k).update(input).digest('base64url')}`
  refused(t, await call(withOct, hs), 'GRIDDY_AUTH_ALGORITHM', hs, 'HS256 under the oct kid')
  const rs = signToken({ alg: 'RS256', kid: 'hmac-key' }, claims({ sub: 'admin' }), attacker)
  refused(t, await call(withOct, rs), 'GRIDDY_AUTH_UNKNOWN_KEY', rs, 'RS256 naming the oct kid')
  t.equal((await call(withOct, issuer.sign({ sub: 'u' }))).statusCode, 200, 'the RSA key of the same set works')
})

t.test('compression bomb (zip: DEF, CVE-2024-28176): a JWS payload is never inflated', async (t) => {
  const bomb = deflateRawSync(Buffer.alloc(10 * 1024 * 1024, 0x20), { level: 9 })
  const header = { alg: 'RS256', kid: issuer.key.kid, zip: 'DEF' }
  const input = `${b64(header)}.${bomb.toString('base64url')}`
  const token = `${input}.${rsaSign('sha256', Buffer.from(input), issuer.key.privateKey).toString('base64url')}`
  t.ok(token.length < 16 * 1024, `10 MiB deflated into a ${token.length}-char token`)
  const heapBefore = process.memoryUsage().heapUsed
  const started = Date.now()
  refused(t, await call(app, token), 'GRIDDY_AUTH_MALFORMED', token, 'a deflated payload is not JSON')
  t.ok(Date.now() - started < 1000, `answered in ${Date.now() - started} ms`)
  t.ok(process.memoryUsage().heapUsed - heapBefore < 8 * 1024 * 1024, 'nothing was inflated')
  // zip means nothing for a JWS (RFC 7515 defines no zip): a normal payload under it is judged as usual.
  t.equal((await call(app, signToken(header, claims({ sub: 'zip' }), issuer.key))).statusCode, 200, 'zip on a JSON payload is ignored')
})

t.test('nested JWT (cty: JWT): an inner token is never unwrapped or verified', async (t) => {
  const inner = signToken({ alg: 'RS256', kid: 'attacker' }, claims({ sub: 'admin' }), attacker)
  const outer = signToken({ alg: 'RS256', kid: issuer.key.kid, cty: 'JWT' }, inner, issuer.key)
  refused(t, await call(app, outer), 'GRIDDY_AUTH_MALFORMED', outer, 'a payload that is a JWT string is not a claims object')
})

t.test('signature malleability through non-canonical base64url (RFC 4648 §3.5): another spelling of the same signature grants nothing more', async (t) => {
  const token = issuer.sign({ sub: 'user_1', permissions: [] })
  const [h, p, s] = token.split('.') as [string, string, string]
  // 256 signature bytes make 342 characters: the last one carries 2 bits and 4 pad bits.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const last = alphabet.indexOf(s.slice(-1))
  const respelled = `${h}.${p}.${s.slice(0, -1)}${alphabet[last | 0b0101] as string}`
  t.not(respelled, token)
  t.same(Buffer.from(respelled.split('.')[2] as string, 'base64url'), Buffer.from(s, 'base64url'), 'the same signature bytes')
  const res = await call(app, respelled)
  // SPEC is silent; RFC 4648 lets a decoder accept or refuse non-zero pad bits. Accepting is safe here: the
  // bytes verified are the issuer's own, and no check keys on the token's spelling except the cache, which
  // just holds one more entry. Today the plugin accepts (docs/security.md).
  t.ok(res.statusCode === 200 || ['GRIDDY_AUTH_MALFORMED', 'GRIDDY_AUTH_SIGNATURE'].includes(res.json().code), `answered ${res.statusCode}`)
  if (res.statusCode === 200) t.equal(res.json().userId, 'user_1', 'the same user, nothing more')
  t.comment(`non-canonical signature spelling: ${res.statusCode === 200 ? 'accepted (same signature bytes)' : `refused ${String(res.json().code)}`}`)
})

t.test('verified-token cache confusion (fast-jwt GHSA-rp9m-7r4c-75qg): a cached token vouches only for its exact string', async (t) => {
  const token = issuer.sign({ sub: 'user_1', permissions: [] })
  t.equal((await call(app, token)).statusCode, 200, 'verified and cached')
  t.equal((await call(app, token)).statusCode, 200, 'a cache hit')
  const [h, p, s] = token.split('.') as [string, string, string]
  const elevated = b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'admin' })
  const forged = signToken({ alg: 'RS256', kid: issuer.key.kid, typ: 'JWT' }, { sub: 'admin' }, attacker).split('.')[2] as string
  const variants: Array<[string, string]> = [
    ['the cached header and signature, an elevated payload', `${h}.${elevated}.${s}`],
    ['the cached header and payload, a forged signature', `${h}.${p}.${forged}`],
    ['the cached token with its signature truncated', `${h}.${p}.${s.slice(0, 300)}`],
    ['a prefix of the cached token', `${h}.${p}.${s.slice(0, -8)}`]
  ]
  for (const [name, variant] of variants) refused(t, await call(app, variant), 'GRIDDY_AUTH_SIGNATURE', variant, name)
  t.equal((await call(app, token)).statusCode, 200, 'the cached token itself still works')
})

t.test('RSA signature with another hash or padding under an RS256 header (SHA-1/384/512 PKCS#1 v1.5, PSS): refused', async (t) => {
  const input = `${b64({ alg: 'RS256', kid: issuer.key.kid })}.${b64(claims({ sub: 'admin' }))}`
  for (const hash of ['sha1', 'sha512', 'sha384']) {
    const signature = createSign(hash).update(input).sign(issuer.key.privateKey).toString('base64url')
    refused(t, await call(app, `${input}.${signature}`), 'GRIDDY_AUTH_SIGNATURE', `${input}.${signature}`, `a ${hash} signature`)
  }
  const issuerPss = rsaSign('sha256', Buffer.from(input), { key: issuer.key.privateKey, padding: 6 }).toString('base64url')
  refused(t, await call(app, `${input}.${issuerPss}`), 'GRIDDY_AUTH_SIGNATURE', `${input}.${issuerPss}`, "the issuer's own key with PSS padding under an RS256 header")
})

t.test('a key of another tenant of the same provider (multi-tenant key confusion) with a static key set: only the configured set counts', async (t) => {
  const tenantKey = await poolKey(0) // tenant B's signing key, published in tenant B's JWKS, not ours
  const token = issuer.sign({ sub: 'admin' }, { key: tenantKey })
  refused(t, await call(app, token), 'GRIDDY_AUTH_UNKNOWN_KEY', token, "tenant B's key and kid, our iss")
  const underOurKid = issuer.sign({ sub: 'admin' }, { key: tenantKey, kid: issuer.key.kid })
  refused(t, await call(app, underOurKid), 'GRIDDY_AUTH_SIGNATURE', underOurKid, "tenant B's key under our kid")
  const kid = randomUUID()
  refused(t, await call(app, issuer.sign({ sub: 'x' }, { key: tenantKey, kid })), 'GRIDDY_AUTH_UNKNOWN_KEY', kid, 'a random kid')
})
