/**
 * Tokens an attacker would send (SPEC §6, §9): algorithm tricks, forged and
 * tampered signatures, key-location headers, hostile `kid`s and `iss`s,
 * malformed encodings, hostile JSON. None may be accepted wrongly, none may
 * answer 500, and nothing may be fetched from a place the token names.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createTestIssuer, createTestKey, signToken, type TestIssuer, type TestKey } from '../lib/testing/index'
import {
  assertFailure, assertSafe, b64url, badHeader, buildApp, countingServer, forbidden, get, nowSeconds, rawToken,
  tokenFailure, type CountingServer, type ExpectedFailure, type Tap
} from './helpers'

let issuer: TestIssuer
let attackerKey: TestKey
/** The plugin with the issuer's static key set. */
let app: FastifyInstance

t.before(async () => {
  issuer = await createTestIssuer({ issuer: 'https://issuer.test', audience: 'https://api.test' })
  attackerKey = await createTestKey('attacker-kid')
})

t.beforeEach(async (t) => {
  app = await buildApp(t, issuer.pluginOptions, {
    routes: (a) => {
      a.get('/private', async (request) => ({
        userId: request.auth?.userId,
        permissions: request.auth?.permissions,
        protoIsObject: Object.getPrototypeOf(request.auth?.claims) === Object.prototype,
        polluted: (request.auth?.claims as Record<string, unknown>).polluted ?? null,
        globalPolluted: ({} as Record<string, unknown>).polluted ?? null
      }))
      a.get('/admin', { config: { permissions: 'leagues:admin' } }, async () => ({ ok: true }))
    }
  })
})

function payload (claims: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSeconds()
  return { iss: issuer.issuer, aud: issuer.audience, sub: 'user_1', iat: now, exp: now + 60, ...claims }
}

function header (members: Record<string, unknown> = {}): Record<string, unknown> {
  return { alg: 'RS256', typ: 'JWT', kid: issuer.key.kid, ...members }
}

/** RS256-signed with `key` (default: the issuer's real key) over exactly these values. */
function forge (h: unknown, p: unknown, key: TestKey = issuer.key): string {
  return rawToken(JSON.stringify(h), JSON.stringify(p), key)
}

/** `header.payload.` with no signature. */
function unsigned (h: unknown, p: unknown = payload()): string {
  return `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify(p))}.`
}

async function expectFailure (t: Tap, token: string, expected: ExpectedFailure, label: string, target = app, url = '/private'): Promise<void> {
  assertFailure(t, await get(target, url, token), expected, token, `${label}:`)
}

async function expectAccepted (t: Tap, token: string, label: string, target = app): Promise<void> {
  const res = await get(target, '/private', token)
  assertSafe(t, res, token, label)
  t.equal(res.statusCode, 200, `${label}: accepted`)
}

/** A server the attacker controls: it serves its own key set at every path and counts hits. */
async function attackerServer (t: Tap): Promise<CountingServer> {
  return countingServer(t, (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [attackerKey.jwk] }))
  })
}

/** The real issuer's JWKS on 127.0.0.1, recording the paths asked for. */
/** The same keys through each source the plugin knows: static, `jwksUrl`, an issuer's well-known URL. */
async function keySourceApps (t: Tap, legit: CountingServer): Promise<Record<string, FastifyInstance>> {
  return {
    'static jwks': app,
    jwksUrl: await buildApp(t, { issuer: issuer.issuer, audience: issuer.audience, jwksUrl: `${legit.url}/.well-known/jwks.json` }),
    'issuer well-known': await buildApp(t, { issuer: legit.url, audience: issuer.audience })
  }
}

async function legitServer (t: Tap): Promise<CountingServer> {
  return countingServer(t, (request, response) => {
    if (request.url === '/.well-known/jwks.json') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(issuer.jwks))
    } else {
      response.writeHead(404).end()
    }
  })
}

t.test('alg none, in any casing, signed or not', async (t) => {
  const valid = issuer.sign({ sub: 'user_1' })
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    await expectFailure(t, unsigned(header({ alg })), tokenFailure('GRIDDY_AUTH_ALGORITHM'), `alg ${alg}, no signature`)
    const [, , signature] = valid.split('.')
    await expectFailure(t, `${unsigned(header({ alg }))}${signature}`, tokenFailure('GRIDDY_AUTH_ALGORITHM'), `alg ${alg} with a real signature`)
  }
  await expectFailure(t, issuer.sign({ sub: 'user_1' }, { alg: 'none' }), tokenFailure('GRIDDY_AUTH_ALGORITHM'), 'testing kit alg none')
})

t.test('HS256 keyed with the public key (algorithm confusion)', async (t) => {
  const pem = issuer.key.publicKey.export({ type: 'spki', format: 'pem' }) as string
  const pkcs1 = issuer.key.publicKey.export({ type: 'pkcs1', format: 'pem' }) as string
  const secrets = { 'the SPKI PEM': pem, 'the PKCS#1 PEM': pkcs1, 'the JWK JSON': JSON.stringify(issuer.key.jwk), 'the modulus': String(issuer.key.jwk.n) }
  for (const [name, secret] of Object.entries(secrets)) {
    const token = signToken(header({ alg: 'HS256' }), payload(), issuer.key, secret)
    await expectFailure(t, token, tokenFailure('GRIDDY_AUTH_ALGORITHM'), `HS256 keyed with ${name}`)
  }
  await expectFailure(t, issuer.sign({ sub: 'user_1' }, { alg: 'HS256' }), tokenFailure('GRIDDY_AUTH_ALGORITHM'), 'testing kit confusion token')
})

t.test('other algorithm names, even over a valid RS256 signature', async (t) => {
  for (const alg of ['PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'RS384', 'RS512', 'HS384', 'HS512', 'EdDSA', 'rs256', 'RS256 ', ' RS256', 'RS 256', '']) {
    await expectFailure(t, issuer.sign({ sub: 'user_1' }, { alg }), tokenFailure('GRIDDY_AUTH_ALGORITHM'), `alg ${JSON.stringify(alg)}`)
  }
  for (const alg of [null, 256, ['RS256'], { name: 'RS256' }, true]) {
    await expectFailure(t, forge(header({ alg }), payload()), tokenFailure('GRIDDY_AUTH_ALGORITHM'), `alg ${JSON.stringify(alg)}`)
  }
  const { alg: _alg, ...noAlg } = header()
  await expectFailure(t, forge(noAlg, payload()), tokenFailure('GRIDDY_AUTH_ALGORITHM'), 'alg missing')
})

t.test('a valid signature by another key under a known kid', async (t) => {
  await expectFailure(t, forge(header(), payload(), attackerKey), tokenFailure('GRIDDY_AUTH_SIGNATURE'), 'attacker key, real kid')
  await expectFailure(t, forge(header({ kid: attackerKey.kid }), payload(), attackerKey), tokenFailure('GRIDDY_AUTH_UNKNOWN_KEY'), 'attacker key, its own kid')
})

t.test('claims tampered after signing', async (t) => {
  const [h, p, s] = issuer.sign({ sub: 'user_1', permissions: [] }).split('.') as [string, string, string]
  const tampered = { ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'admin', permissions: ['leagues:admin'] }
  const token = `${h}.${b64url(JSON.stringify(tampered))}.${s}`
  await expectFailure(t, token, tokenFailure('GRIDDY_AUTH_SIGNATURE'), 'sub and permissions changed')
  await expectFailure(t, token, tokenFailure('GRIDDY_AUTH_SIGNATURE'), 'still refused on a permissioned route', app, '/admin')
  const otherSignature = issuer.sign({ sub: 'user_2' }).split('.')[2]
  await expectFailure(t, `${h}.${p}.${otherSignature}`, tokenFailure('GRIDDY_AUTH_SIGNATURE'), 'the signature of another token')
  await expectFailure(t, `${h}.${p}.`, tokenFailure('GRIDDY_AUTH_SIGNATURE'), 'the signature stripped')
  await expectFailure(t, `${h}.${p}.${s.slice(0, -4)}`, tokenFailure('GRIDDY_AUTH_SIGNATURE'), 'the signature truncated')
  await expectFailure(t, `${h}.${p}.AAAA`, tokenFailure('GRIDDY_AUTH_SIGNATURE'), 'a junk signature')
  const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11)
  await expectFailure(t, `${h}.${p}.${flipped}`, tokenFailure('GRIDDY_AUTH_SIGNATURE'), 'one signature character changed')
})

t.test('jku, x5u, jwk, x5c headers are ignored and never fetched', async (t) => {
  const attacker = await attackerServer(t)
  const legit = await legitServer(t)
  const locationHeaders = {
    jku: `${attacker.url}/jwks.json`,
    x5u: `${attacker.url}/cert.pem`,
    jwk: attackerKey.jwk,
    x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA']
  }
  const apps = await keySourceApps(t, legit)
  for (const [mode, target] of Object.entries(apps)) {
    const iss = mode === 'issuer well-known' ? legit.url : issuer.issuer
    for (const [name, value] of Object.entries(locationHeaders)) {
      // Signed by the real key: still verifies against the configured keys.
      await expectAccepted(t, forge(header({ [name]: value }), payload({ iss })), `${mode}: real token carrying ${name}`, target)
      // Signed by the attacker, pointing at the attacker's keys: refused.
      await expectFailure(t, forge(header({ [name]: value, kid: attackerKey.kid }), payload({ iss }), attackerKey),
        tokenFailure('GRIDDY_AUTH_UNKNOWN_KEY'), `${mode}: attacker token with ${name} and the attacker's kid`, target)
      await expectFailure(t, forge(header({ [name]: value }), payload({ iss }), attackerKey),
        tokenFailure('GRIDDY_AUTH_SIGNATURE'), `${mode}: attacker token with ${name} and the real kid`, target)
    }
    await expectAccepted(t, forge(header(locationHeaders), payload({ iss })), `${mode}: all four at once`, target)
  }
  t.equal(attacker.hits, 0, 'the attacker server was never contacted')
  t.ok(legit.paths.every((path) => path === '/.well-known/jwks.json'), 'only the configured JWKS path was fetched')
})

t.test('hostile kid values are opaque lookup keys: unknown key, nothing fetched', async (t) => {
  const attacker = await attackerServer(t)
  const legit = await legitServer(t)
  const kids: unknown[] = [
    '../x', '../../../../etc/passwd', '..%2f..%2fjwks.json', '/.well-known/jwks.json', '?kid=1', '#frag',
    `${attacker.url}/jwks.json`, `//127.0.0.1:${new URL(attacker.url).port}/x`, 'k'.repeat(10_000), '__proto__', 'constructor',
    'hasOwnProperty', `${issuer.key.kid} `, issuer.key.kid.toUpperCase(), 5, 0, { kid: issuer.key.kid }, [issuer.key.kid], true, null
  ]
  const apps = await keySourceApps(t, legit)
  for (const [mode, target] of Object.entries(apps)) {
    const iss = mode === 'issuer well-known' ? legit.url : issuer.issuer
    for (const kid of kids) {
      const label = `${mode}: kid ${JSON.stringify(kid).slice(0, 40)}`
      await expectFailure(t, forge(header({ kid }), payload({ iss })), tokenFailure('GRIDDY_AUTH_UNKNOWN_KEY'), label, target)
    }
  }
  t.equal(attacker.hits, 0, 'no kid was ever turned into a request')
  t.ok(legit.paths.every((path) => path === '/.well-known/jwks.json'), 'no kid ever became part of a URL')
})

t.test('iss naming the attacker, without jwksUrl: ISSUER and nothing fetched', async (t) => {
  const attacker = await attackerServer(t)
  const legit = await legitServer(t)
  const wellKnown = await buildApp(t, { issuer: legit.url, audience: issuer.audience })
  const isses: unknown[] = [attacker.url, `${attacker.url}/`, `${legit.url}/`, `${legit.url}/../${attacker.url}`, [legit.url], 5, null]
  for (const iss of isses) {
    // Signed by the attacker with a JWKS the attacker serves: must not even be looked up.
    await expectFailure(t, forge(header({ kid: attackerKey.kid }), payload({ iss }), attackerKey), tokenFailure('GRIDDY_AUTH_ISSUER'),
      `iss ${JSON.stringify(iss)}`, wellKnown)
  }
  await expectFailure(t, forge(header({ kid: attackerKey.kid }), payload({ iss: undefined }), attackerKey), tokenFailure('GRIDDY_AUTH_ISSUER'),
    'iss absent', wellKnown)
  t.equal(attacker.hits, 0, 'the attacker server got no request')
  t.equal(legit.hits, 0, 'no key set was fetched for an unconfigured issuer')
  await expectAccepted(t, forge(header(), payload({ iss: legit.url })), 'the configured issuer still works', wellKnown)
  t.equal(legit.hits, 1, 'one fetch for the configured issuer')
})

t.test('crit naming an unknown extension is a 401', async (t) => {
  for (const crit of [['urn:example:unknown'], ['b64'], ['exp'], [], 'urn:x', [5]]) {
    const members: Record<string, unknown> = { crit }
    if (Array.isArray(crit) && typeof crit[0] === 'string') members[crit[0]] = false
    await expectFailure(t, issuer.sign({ sub: 'user_1' }, { header: members }), tokenFailure('GRIDDY_AUTH_MALFORMED'), `crit ${JSON.stringify(crit)}`)
  }
})

t.test('large tokens: 15 kB signed works, beyond 16 KiB is malformed, never a 500', async (t) => {
  const big = issuer.sign({ sub: 'user_1', padding: 'x'.repeat(11_000) })
  t.ok(big.length > 15_000 && big.length < 16 * 1024, `a ${big.length}-char token`)
  await expectAccepted(t, big, '15 kB token')
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const res = await fetch(`${address}/private`, { headers: { authorization: `Bearer ${big}` } })
  t.equal(res.status, 200, '15 kB token through a real socket')
  await res.text()

  const huge = issuer.sign({ sub: 'user_1', padding: 'x'.repeat(13_000) })
  t.ok(huge.length > 16 * 1024, `a ${huge.length}-char token`)
  await expectFailure(t, huge, tokenFailure('GRIDDY_AUTH_MALFORMED'), 'over 16 KiB')
  await expectFailure(t, `${'a'.repeat(40_000)}.${'b'.repeat(40_000)}.c`, tokenFailure('GRIDDY_AUTH_MALFORMED'), '80 kB of junk')
})

/** A header in standard base64 that needs "=" padding (whose length is not a multiple of 3). */
function paddedStandardBase64Header (t: Tap): string {
  let filler = ''
  while (JSON.stringify(header({ x: filler })).length % 3 === 0) filler += 'a'
  const encoded = Buffer.from(JSON.stringify(header({ x: filler }))).toString('base64')
  t.match(encoded, /=$/, 'the standard-base64 header is padded')
  return encoded
}

t.test('bad base64url in each segment', async (t) => {
  const [h, p, s] = issuer.sign({ sub: 'user_1' }).split('.') as [string, string, string]
  const cases: Array<[string, string, ExpectedFailure]> = [
    ['"+" in the header', `${h.slice(0, 5)}+${h.slice(6)}.${p}.${s}`, tokenFailure('GRIDDY_AUTH_MALFORMED')],
    ['"/" in the payload', `${h}.${p.slice(0, 5)}/${p.slice(6)}.${s}`, tokenFailure('GRIDDY_AUTH_MALFORMED')],
    ['"+" in the signature', `${h}.${p}.${s.slice(0, 5)}+${s.slice(6)}`, tokenFailure('GRIDDY_AUTH_MALFORMED')],
    ['"~" in the header', `~${h}.${p}.${s}`, tokenFailure('GRIDDY_AUTH_MALFORMED')],
    ['"*" in the payload', `${h}.*${p}.${s}`, badHeader()],
    ['a header that is not JSON', `${b64url('not json')}.${p}.${s}`, tokenFailure('GRIDDY_AUTH_MALFORMED')],
    ['a header of invalid UTF-8', `${Buffer.from([0xff, 0xfe, 0x7b]).toString('base64url')}.${p}.${s}`, tokenFailure('GRIDDY_AUTH_MALFORMED')],
    ['a one-character header', `a.${p}.${s}`, tokenFailure('GRIDDY_AUTH_MALFORMED')],
    ['a payload that is not JSON', rawToken(JSON.stringify(header()), '{"sub":', issuer.key), tokenFailure('GRIDDY_AUTH_MALFORMED')],
    ['a one-character signature', `${h}.${p}.A`, tokenFailure('GRIDDY_AUTH_SIGNATURE')],
    ['padding "=" after the header', `${h}=.${p}.${s}`, badHeader()],
    ['padding "=" after the payload', `${h}.${p}==.${s}`, badHeader()],
    ['padding "=" after the signature', `${h}.${p}.${s}=`, tokenFailure('GRIDDY_AUTH_MALFORMED')],
    ['a standard-base64 header with "=" padding', `${paddedStandardBase64Header(t)}.${p}.${s}`, badHeader()]
  ]
  for (const [name, token, expected] of cases) await expectFailure(t, token, expected, name)
})

t.test('wrong number of segments', async (t) => {
  const [h, p, s] = issuer.sign({ sub: 'user_1' }).split('.') as [string, string, string]
  const cases: Array<[string, string]> = [
    ['1 segment', h], ['2 segments', `${h}.${p}`], ['4 segments', `${h}.${p}.${s}.${s}`],
    ['5 segments (a JWE)', `${h}.${p}.${s}.${s}.${s}`], ['empty header', `.${p}.${s}`], ['empty payload', `${h}..${s}`],
    ['only dots', '..'], ['a trailing dot after the signature', `${h}.${p}.${s}.`]
  ]
  for (const [name, token] of cases) await expectFailure(t, token, tokenFailure('GRIDDY_AUTH_MALFORMED'), name)
})

t.test('header or payload JSON that is not an object', async (t) => {
  for (const value of ['[]', '["RS256"]', '5', '"RS256"', 'null', 'true', '{}x']) {
    await expectFailure(t, rawToken(value, JSON.stringify(payload()), issuer.key), tokenFailure('GRIDDY_AUTH_MALFORMED'), `header ${value}`)
    await expectFailure(t, rawToken(JSON.stringify(header()), value, issuer.key), tokenFailure('GRIDDY_AUTH_MALFORMED'), `signed payload ${value}`)
  }
})

t.test('a deeply nested payload verifies, without a stack overflow', async (t) => {
  const depth = 1500
  const nested = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)
  const body = JSON.stringify(payload()).slice(0, -1) + `,"deep":${nested}}`
  const token = rawToken(JSON.stringify(header()), body, issuer.key)
  const res = await get(app, '/private', token)
  assertSafe(t, res, token)
  t.equal(res.statusCode, 200)
  t.equal(res.json().userId, 'user_1')
})

t.test('__proto__ and constructor in the payload pollute nothing', async (t) => {
  const body = JSON.stringify(payload()).slice(0, -1) +
    ',"__proto__":{"polluted":"yes","permissions":["leagues:admin"],"sub":"admin"},"constructor":{"prototype":{"polluted":"yes"}}}'
  const token = rawToken(JSON.stringify(header()), body, issuer.key)
  const res = await get(app, '/private', token)
  assertSafe(t, res, token)
  t.equal(res.statusCode, 200)
  t.same(res.json(), { userId: 'user_1', permissions: [], protoIsObject: true, polluted: null, globalPolluted: null })
  await expectFailure(t, token, forbidden('leagues:admin'), 'no permission granted through __proto__', app, '/admin')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched')

  const viaProto = rawToken(`{"__proto__":{"alg":"RS256"},"kid":${JSON.stringify(issuer.key.kid)}}`, JSON.stringify(payload()), issuer.key)
  await expectFailure(t, viaProto, tokenFailure('GRIDDY_AUTH_ALGORITHM'), 'an alg inherited through __proto__ does not count')
  const permissionsViaProto = rawToken(JSON.stringify(header()),
    JSON.stringify(payload()).slice(0, -1) + ',"__proto__":{"permissions":"leagues:admin"}}', issuer.key)
  await expectFailure(t, permissionsViaProto, forbidden('leagues:admin'), 'permissions via __proto__ grant nothing', app, '/admin')
})

t.test('duplicate JSON keys: the last one wins, for the plugin and the verifier alike', async (t) => {
  const kid = JSON.stringify(issuer.key.kid)
  const p = JSON.stringify(payload())
  const withClaims = (extra: string): string => rawToken(JSON.stringify(header()), p.slice(0, -1) + ',' + extra + '}', issuer.key)
  await expectAccepted(t, rawToken(`{"alg":"none","kid":${kid},"alg":"RS256"}`, p, issuer.key), 'alg none then RS256')
  await expectFailure(t, rawToken(`{"alg":"RS256","kid":${kid},"alg":"none"}`, p, issuer.key), tokenFailure('GRIDDY_AUTH_ALGORITHM'), 'alg RS256 then none')
  await expectFailure(t, rawToken(`{"alg":"RS256","kid":${kid},"kid":"other"}`, p, issuer.key), tokenFailure('GRIDDY_AUTH_UNKNOWN_KEY'), 'kid real then unknown')
  await expectFailure(t, withClaims('"iss":"https://evil.test"'), tokenFailure('GRIDDY_AUTH_ISSUER'), 'iss real then evil')
  await expectAccepted(t, rawToken(JSON.stringify(header()), `{"iss":"https://evil.test",${p.slice(1)}`, issuer.key), 'iss evil then real')
  await expectFailure(t, withClaims('"exp":1'), tokenFailure('GRIDDY_AUTH_EXPIRED'), 'exp valid then expired')
  const res = await get(app, '/private', withClaims('"sub":"user_2","permissions":["a"],"permissions":["b"]'))
  t.equal(res.statusCode, 200)
  t.same(res.json().userId, 'user_2', 'the last sub')
  t.same(res.json().permissions, ['b'], 'the last permissions')
})
