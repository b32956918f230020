/**
 * Fuzzing each segment of the token (SPEC §6, shape → alg → kid → signature
 * → crit → claims): base64url edge cases (padding, the standard alphabet,
 * non-canonical pad bits, a dangling character, stray characters), JSON
 * that is not an object, deep nesting, huge numbers, duplicate keys,
 * `__proto__`, invalid UTF-8, a BOM, segment counts from 1 to 6, and
 * signatures that are real, foreign, stripped, truncated or junk. The
 * header and payload are often validly signed by the configured key, so
 * the later steps (alg, kid, crit, claims) are reached too.
 */
import t from 'tap'
import fc from 'fast-check'
import { createHmac, sign as rsaSign } from 'node:crypto'
import { createTestIssuer, createTestKey, type TestIssuer, type TestKey } from '../../lib/testing/index'
import { check, createTarget, probe, routes, tally, type FuzzTarget } from './harness'
import { expectForHeader, type Deployment } from './oracle'

let issuer: TestIssuer
let foreign: TestKey
let target: FuzzTarget
let kid: string
/** Seconds, when a value is generated: generated times keep 30 s or more clear of now +/- the tolerance. */
const nowSeconds = (): number => Math.floor(Date.now() / 1000)
/** A fixed "now" for constants (one day of margin: long fuzz runs stay well inside it). */
const now = nowSeconds()

t.before(async () => {
  issuer = await createTestIssuer({ issuer: 'https://issuer.test', audience: 'https://api.test' })
  foreign = await createTestKey('foreign')
  kid = issuer.key.kid
  const deployment: Deployment = {
    issuers: [issuer.issuer],
    audiences: ['https://api.test'],
    clockTolerance: 5,
    permissionsClaim: 'permissions',
    keys: new Map([[kid, issuer.key.publicKey]])
  }
  target = await createTarget(t, issuer.pluginOptions, deployment)
})

const json = (value: unknown): string => JSON.stringify(value)
/** A JSON object's text with `extra` (raw "key":value text) spliced in after its first member. */
const splice = (objectText: string, extra: string): string => objectText === '{}' ? `{${extra}}` : `{${extra},${objectText.slice(1)}`
const nested = (depth: number, open: string, close: string, inner: string): string => open.repeat(depth) + inner + close.repeat(depth)

const hostileMember = (): fc.Arbitrary<string> => fc.oneof(
  fc.constantFrom(
    '"__proto__":{"alg":"none","kid":"x","sub":"admin","permissions":["leagues:read","leagues:write"]}',
    '"constructor":{"prototype":{"polluted":true}}',
    '"n":1e999', '"n":-1e999', '"n":123456789012345678901234567890123456789', '"n":-0', '"n":5e-324', '"n":1.7976931348623157e308',
    '"s":"\\u0000\\ud800\\udfff\\u202e"', '"":""', '"x":null'
  ),
  fc.integer({ min: 1, max: 5000 }).map((depth) => `"deep":${nested(depth, '[', ']', '1')}`),
  fc.integer({ min: 1, max: 3000 }).map((depth) => `"deep":${nested(depth, '{"a":', '}', '1')}`),
  fc.tuple(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 })).map(([key, value]) => `${json(key)}:${json(value) ?? 'null'}`)
)

const algValue = fc.oneof(
  { weight: 6, arbitrary: fc.constant<unknown>('RS256') },
  { weight: 2, arbitrary: fc.constantFrom<unknown>('none', 'None', 'NONE', 'HS256', 'HS512', 'ES256', 'PS256', 'RS384', 'RS256 ', ' RS256', 'rs256', 'RS256\u0000', '', 'EdDSA') },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, 256, true, ['RS256'], { alg: 'RS256' }, ['none']) }
)
const kidValue = (): fc.Arbitrary<unknown> => fc.oneof(
  { weight: 6, arbitrary: fc.constant<unknown>(kid) },
  { weight: 2, arbitrary: fc.constantFrom<unknown>('', 'nope', `${kid}\u0000`, `${kid} `, kid.toUpperCase(), '../../etc/passwd', "' OR 1=1 --", '__proto__', 'http://127.0.0.1:1/jwks') },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(undefined, null, 5, [kid], { kid }) }
)
const headerExtra = fc.dictionary(
  fc.constantFrom('typ', 'cty', 'x5t', 'jku', 'x5u', 'jwk', 'zip', 'enc', 'b64', 'crit', 'foo'),
  fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('JWT', 'JWE', 'application/jwt', 'DEF', ['b64'], ['urn:x'], [], false, 0, '', null)),
  { maxKeys: 3 }
)

const headerText = (): fc.Arbitrary<string> => fc.oneof(
  { weight: 8, arbitrary: fc.tuple(algValue, kidValue(), headerExtra).map(([alg, k, extra]) => json({ alg, ...(k === undefined ? {} : { kid: k }), ...extra })) },
  { weight: 2, arbitrary: fc.tuple(algValue, kidValue(), hostileMember()).map(([alg, k, member]) => splice(json({ alg, ...(k === undefined ? {} : { kid: k }) }), member)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      `{"alg":"none","kid":${json(kid)},"alg":"RS256"}`, `{"alg":"RS256","kid":${json(kid)},"alg":"none"}`,
      `{"alg":"RS256","kid":"nope","kid":${json(kid)}}`, `{"alg":"RS256","kid":${json(kid)},"kid":"nope"}`,
      `{"__proto__":{"alg":"RS256"},"kid":${json(kid)}}`, `{"alg":"RS256","__proto__":{"kid":${json(kid)}}}`,
      `\ufeff{"alg":"RS256","kid":${json(kid)}}`, ` \n{"alg":"RS256","kid":${json(kid)}}\t `, `{"alg":"RS256","kid":${json(kid)}}x`,
      `{"alg":"RS256","kid":${json(kid)}`, `{'alg':'RS256','kid':${json(kid)}}`, `{"alg":"RS256","kid":${json(kid)},}`,
      '[{"alg":"RS256"}]', '"RS256"', 'null', '0', 'true', '{}', '', `{"alg":"RS256","kid":${json(kid)},"n":NaN}`
    )
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => json(value) ?? 'null') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) }
)

const timeValue = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 30, max: 1_000_000 }).map((d) => nowSeconds() + d) },
  { weight: 2, arbitrary: fc.integer({ min: 30, max: 1_000_000_000 }).map((d) => nowSeconds() - d) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(0, -1, 1e308, String(now + 86_400), null, { $gt: 0 }, [now + 86_400], true) }
)

const payloadText = (): fc.Arbitrary<string> => {
  const claims = fc.record({
    iss: fc.oneof({ weight: 6, arbitrary: fc.constant<unknown>('https://issuer.test') }, { weight: 1, arbitrary: fc.constantFrom<unknown>('https://issuer.test/', 'https://evil.test', ['https://issuer.test'], null, 5) }),
    aud: fc.oneof({ weight: 6, arbitrary: fc.constant<unknown>('https://api.test') }, { weight: 1, arbitrary: fc.constantFrom<unknown>(['x', 'https://api.test'], 'x', [], { aud: 'https://api.test' }, 5) }),
    sub: fc.oneof({ weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) }, { weight: 1, arbitrary: fc.constantFrom<unknown>('', 5, null, ['u']) }),
    exp: timeValue,
    permissions: fc.constantFrom<unknown>(['leagues:read'], ['leagues:read', 'leagues:write'], 'leagues:read leagues:write', [['leagues:read']], 'x', null)
  }, { requiredKeys: ['iss', 'aud', 'sub'] })
  return fc.oneof(
    { weight: 8, arbitrary: claims.map(json) },
    { weight: 3, arbitrary: fc.tuple(claims, hostileMember()).map(([value, member]) => splice(json(value), member)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '[]', 'null', '"sub"', '42', 'true', '{"sub":', '{"sub":"a"}garbage', `{"exp":${now + 86_400},"exp":1,"iss":"https://issuer.test","aud":"https://api.test","sub":"u"}`,
        `{"iss":"https://evil.test","iss":"https://issuer.test","aud":"https://api.test","sub":"u","exp":${now + 86_400}}`
      )
    },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => json(value) ?? 'null') }
  )
}

/** Text -> bytes: UTF-8, sometimes with a BOM, an invalid byte, an overlong sequence, or UTF-16. */
const bytesOf = (text: fc.Arbitrary<string>): fc.Arbitrary<Buffer> => fc.tuple(text, fc.oneof({ weight: 16, arbitrary: fc.constant('utf8') }, { weight: 1, arbitrary: fc.constantFrom('bom', 'invalid', 'overlong', 'utf16') }), fc.nat())
  .map(([value, how, at]) => {
    const bytes = Buffer.from(value, 'utf8')
    const i = bytes.length === 0 ? 0 : at % bytes.length
    switch (how) {
      case 'bom': return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes])
      case 'invalid': return Buffer.concat([bytes.subarray(0, i), Buffer.from([0xff]), bytes.subarray(i)])
      case 'overlong': return Buffer.concat([bytes.subarray(0, i), Buffer.from([0xc0, 0xaf]), bytes.subarray(i)])
      case 'utf16': return Buffer.from(value, 'utf16le')
      default: return bytes
    }
  })

/** Bytes -> segment text: canonical base64url mostly, else one of the encodings a sloppy or hostile client uses. */
const encoded = (bytes: fc.Arbitrary<Buffer>): fc.Arbitrary<string> => fc.tuple(bytes,
  fc.oneof({ weight: 16, arbitrary: fc.constant('canonical') }, { weight: 1, arbitrary: fc.constantFrom('base64', 'padded', 'pad-bits', 'dangling', 'stray', 'empty') }),
  fc.nat(), fc.constantFrom('+', '/', '=', '~', ' ', '%', '.', '\u00e9'))
  .map(([value, how, at, stray]) => {
    const canonical = value.toString('base64url')
    switch (how) {
      case 'base64': return value.toString('base64')
      case 'padded': return canonical + '='.repeat((4 - (canonical.length % 4)) % 4)
      case 'pad-bits': return withPadBits(canonical)
      case 'dangling': return canonical + 'A'
      case 'stray': {
        const i = canonical.length === 0 ? 0 : at % canonical.length
        return canonical.slice(0, i) + stray + canonical.slice(i)
      }
      case 'empty': return ''
      default: return canonical
    }
  })

/** The same bytes with non-zero pad bits in the last character (a non-canonical encoding), when it has pad bits. */
function withPadBits (canonical: string): string {
  if (canonical.length % 4 === 0) return canonical
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const last = alphabet.indexOf(canonical[canonical.length - 1] as string)
  return canonical.slice(0, -1) + alphabet[last | 1]
}

type SignatureKind = 'real' | 'foreign' | 'empty' | 'junk' | 'pad-bits' | 'extra' | 'truncated' | 'hmac' | 'zeros'
const signatureKind = fc.oneof(
  { weight: 10, arbitrary: fc.constant<SignatureKind>('real') },
  { weight: 1, arbitrary: fc.constantFrom<SignatureKind>('foreign', 'empty', 'junk', 'pad-bits', 'extra', 'truncated', 'hmac', 'zeros') }
)

function signatureFor (input: string, kind: SignatureKind, junk: string): string {
  const real = (): string => rsaSign('sha256', Buffer.from(input), issuer.key.privateKey).toString('base64url')
  switch (kind) {
    case 'real': return real()
    case 'foreign': return rsaSign('sha256', Buffer.from(input), foreign.privateKey).toString('base64url')
    case 'empty': return ''
    case 'junk': return junk
    case 'pad-bits': return withPadBits(real())
    case 'extra': return real() + 'A'
    case 'truncated': return real().slice(0, -2)
    case 'hmac': return createHmac('sha256', issuer.key.publicKey.export({ type: 'spki', format: 'pem' })).update(input).digest('base64url')
    case 'zeros': return Buffer.alloc(256).toString('base64url')
  }
}

/** Segments -> token: three of them mostly, else too few, too many, or empty ones. */
const assembly = fc.oneof(
  { weight: 12, arbitrary: fc.constant('h.p.s') },
  { weight: 1, arbitrary: fc.constantFrom('h', 'h.p', 'h.p.s.s', 'h.p.s.s.s', '.h.p.s', 'h.p.s.', 'h..s', 'h.p..s', '..', 'h.p.s.h.p.s') }
)

const token = (): fc.Arbitrary<string> => fc.tuple(encoded(bytesOf(headerText())), encoded(bytesOf(payloadText())), signatureKind,
  fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('')), maxLength: 400 }), assembly)
  .map(([h, p, kind, junk, shape]) => {
    const s = signatureFor(`${h}.${p}`, kind, junk)
    return shape.replace(/[hps]/g, (part) => part === 'h' ? h : part === 'p' ? p : s)
  })

t.test('any token: the oracle\'s answer at the first failing step, the fixed body, never a 500, never the token echoed', async (t) => {
  await check(t, 'token segments', fc.asyncProperty(token(), fc.constantFrom(...Object.keys(routes)), async (value, url) => {
    const header = `Bearer ${value}`
    const acceptable = expectForHeader(header, target.deployment, routes[url] as readonly string[], Date.now())
    await probe(target, { authorization: header }, { url, secrets: [value, value.split('.')[2] ?? ''] }, acceptable)
  }), { seed: 0x6a77_0003, runs: 500 })
})

t.test('verify(token) answers the same as the header path, for any token string', async (t) => {
  await check(t, 'verify()', fc.asyncProperty(token(), async (value) => {
    const viaHeader = expectForHeader(`Bearer ${value}`, target.deployment, [], Date.now())
    // verify() takes the bare token: a token the header grammar refuses is judged as a token (malformed, at worst).
    const acceptable = viaHeader.some((o) => !o.ok && o.code === 'GRIDDY_AUTH_BAD_HEADER') ? [{ ok: false as const, code: 'GRIDDY_AUTH_MALFORMED' as const }] : viaHeader
    let got: string
    try {
      await target.app.griddyAuth.verify(value)
      got = '200'
    } catch (err) {
      const { code, statusCode } = err as { code?: string, statusCode?: number }
      if (statusCode === undefined || statusCode >= 500) throw new Error(`verify() threw ${String(err)}`)
      got = code === 'GRIDDY_AUTH_MISSING_CLAIM' ? `${code}(${/claim: (\w+)/.exec((err as Error).message)?.[1] ?? '?'})` : String(code)
    }
    tally(got)
    const allowed = acceptable.map((o) => o.ok ? '200' : o.claim === undefined ? o.code : `${o.code}(${o.claim})`)
    if (!allowed.includes(got)) throw new Error(`verify() gave ${got}, expected one of ${allowed.join(', ')}`)
  }), { seed: 0x6a77_0004, runs: 150 })
})
