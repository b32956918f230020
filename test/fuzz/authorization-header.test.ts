/**
 * Fuzzing the `Authorization` header (SPEC §7): schemes, spacing, unicode,
 * control characters, very long values, around real and junk tokens. Every
 * answer must be the oracle's (oracle.ts), with the fixed body and challenge,
 * never a 500, never the token in the body or the log; and through a real
 * socket, whatever bytes a client writes, the server answers and survives.
 */
import t from 'tap'
import fc from 'fast-check'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { createTestIssuer, type TestIssuer } from '../../lib/testing/index'
import { check, createTarget, probe, routes, tally, type FuzzTarget } from './harness'
import { expectForHeader, type Deployment } from './oracle'

let issuer: TestIssuer
let target: FuzzTarget
let tokens: string[]

t.before(async () => {
  issuer = await createTestIssuer({ issuer: 'https://issuer.test', audience: 'https://api.test', ttl: 3600 })
  const deployment: Deployment = {
    issuers: [issuer.issuer],
    audiences: ['https://api.test'],
    clockTolerance: 5,
    permissionsClaim: 'permissions',
    keys: new Map([[issuer.key.kid, issuer.key.publicKey]])
  }
  target = await createTarget(t, issuer.pluginOptions, deployment)
  tokens = [
    issuer.sign({ sub: 'user_1' }),
    issuer.sign({ sub: 'user_2', permissions: ['leagues:read', 'leagues:write'] }),
    issuer.sign({ sub: 'user_3', permissions: 'leagues:read' }),
    issuer.sign({ sub: 'user_4' }, { expiresIn: -3600 }),
    issuer.sign({ sub: 'user_5' }, { alg: 'none' }),
    issuer.sign({ sub: 'user_6' }, { kid: 'nope' })
  ]
})

/** Around the credentials: HTTP's OWS mostly, sometimes whitespace that is not OWS. */
const ows = fc.oneof(
  { weight: 9, arbitrary: fc.string({ unit: fc.constantFrom(' ', '\t'), maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom('\u00a0', '\n', '\r\n', '\v', '\f', '\u3000', '\ufeff', '\u0000', '\u0085', ' \u2028') }
)
const schemeWord = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('Bearer', 'bearer', 'BEARER', 'bEaReR') },
  { weight: 2, arbitrary: fc.constantFrom('Basic', 'Digest', 'Token', 'JWT', 'Bearer:', 'Bearer,', 'Bear', 'Bearers', 'B\u0435arer', '\uff22earer', 'Bearer\u200b', 'DPoP', 'MAC', '') }
)
const gap = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 4 }).map((n) => ' '.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom('', '\t', ' \t', '\u00a0', '\u3000', '\r\n ', '\n', '\v', '\f', '\u0085', '\u2028', '  \u0000') }
)
/** Characters an attacker likes: controls, separators, lookalikes, invisibles, astral and lone surrogates. */
const hostileChar = fc.oneof(
  fc.constantFrom('\u0000', '\u0001', '\u0007', '\b', '\t', '\n', '\v', '\f', '\r', '\u001b', '\u007f', '\u0080', '\u0085', '\u00a0', '\u00ad',
    '\u200b', '\u200e', '\u202e', '\u2028', '\u2029', '\ufeff', '\ufffd', '\ud800', '\udfff', '\ud83d\udd11', 'é', 'İ', 'ſ', 'K',
    ' ', '.', '=', '+', '/', '~', '-', '_', ',', ';', ':', '"', "'", '\\', '%', '*', '<', '>', '{', '}', '[', ']', '$', '#', '?', '&'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code))
)
const b64tokenChars = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/'.split('')), minLength: 1, maxLength: 80 })

/** Inserts, deletes or replaces one character at a random place. */
function mutate (value: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(value, fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), hostileChar).map(([text, at, how, char]) => {
    const i = text.length === 0 ? 0 : at % text.length
    if (how === 'insert') return text.slice(0, i) + char + text.slice(i)
    if (how === 'delete') return text.slice(0, i) + text.slice(i + 1)
    return text.slice(0, i) + char + text.slice(i + 1)
  })
}

const anyToken = (): fc.Arbitrary<string> => fc.integer({ min: 0, max: tokens.length - 1 }).map((i) => tokens[i] as string)

/** Scheme, spacing and token, each of them possibly wrong. */
const framed = (): fc.Arbitrary<string> => fc.tuple(ows, schemeWord, gap, fc.oneof({ weight: 4, arbitrary: anyToken() }, { weight: 1, arbitrary: b64tokenChars }, { weight: 1, arbitrary: fc.constant('') }), ows)
  .map(([lead, scheme, space, token, trail]) => `${lead}${scheme}${space}${token}${trail}`)

const headerValue = (): fc.Arbitrary<string> => fc.oneof(
  { weight: 6, arbitrary: framed() },
  { weight: 4, arbitrary: mutate(framed()) },
  { weight: 1, arbitrary: mutate(mutate(framed())) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  { weight: 1, arbitrary: fc.string({ unit: hostileChar, maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((junk) => `Bearer ${junk}`) },
  { weight: 1, arbitrary: fc.tuple(anyToken(), anyToken()).map(([a, b]) => `Bearer ${a} ${b}`) },
  { weight: 1, arbitrary: fc.tuple(anyToken(), fc.constantFrom(',', ', Basic x', ';', ' x', '\u0000', '=', '==', '.', '..', '.x')).map(([tk, junk]) => `Bearer ${tk}${junk}`) },
  // very long values: repeated units up to ~100 kB, long padding around a real token
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom('a', 'a.', '.', ' ', '=', 'Bearer ', '\u00e9', 'x.y.z', '\t'), fc.integer({ min: 1, max: 100_000 }))
      .map(([unit, n]) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n))
      .chain((long) => fc.constantFrom(long, `Bearer ${long}`))
  },
  { weight: 1, arbitrary: fc.tuple(anyToken(), fc.integer({ min: 1, max: 20_000 })).map(([tk, n]) => `Bearer${' '.repeat(n)}${tk}${' '.repeat(n)}`) }
)

t.test('any Authorization header: the oracle\'s answer, the fixed body, never a 500, never the token echoed', async (t) => {
  await check(t, 'Authorization header', fc.asyncProperty(headerValue(), fc.constantFrom(...Object.keys(routes)), async (value, url) => {
    const acceptable = expectForHeader(value, target.deployment, routes[url] as readonly string[], Date.now())
    const token = /\S+$/.exec(value)?.[0] ?? value
    await probe(target, { authorization: value }, { url, secrets: [value, token, token.split('.')[2] ?? ''] }, acceptable)
  }), { seed: 0x6a77_0001, runs: 600 })
})

/**
 * What Node lets through from the wire: no CR or LF (they would end the header line), no other
 * control character but HTAB (llhttp answers 400), bytes 0x80-0xFF read as latin1, leading and
 * trailing OWS stripped, and at most 16 KiB of headers (431 beyond).
 */
function expectFromWire (bytes: Buffer, required: readonly string[]): number[] {
  if (bytes.some((b) => (b < 0x20 && b !== 0x09) || b === 0x7f)) return [400]
  const statuses = expectForHeader(bytes.toString('latin1'), target.deployment, required, Date.now())
    .map((outcome) => outcome.ok ? 200 : outcome.code === 'GRIDDY_AUTH_FORBIDDEN' ? 403 : 401)
  return bytes.length > 16_000 ? [...statuses, 431] : statuses
}

function rawRequest (port: number, path: string, value: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => {
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(Buffer.concat(chunks).toString('latin1'))
      if (status === null) reject(new Error('no HTTP answer'))
      else resolve(Number(status[1]))
    })
    socket.end(Buffer.concat([
      Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: `, 'latin1'),
      value,
      Buffer.from('\r\n\r\n', 'latin1')
    ]))
  })
}

t.test('any bytes on the wire: Node\'s parser or the plugin answers (400, 401, 403, 200, 431), the server survives', async (t) => {
  const address = await target.app.listen({ port: 0, host: '127.0.0.1' })
  const port = (target.app.server.address() as AddressInfo).port
  t.match(address, /^http:\/\/127\.0\.0\.1:/)
  const wireBytes = fc.oneof(
    { weight: 3, arbitrary: framed().map((value) => Buffer.from(value, 'utf8')) },
    { weight: 3, arbitrary: mutate(framed()).map((value) => Buffer.from(value, 'utf8')) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 80 }).map((bytes) => Buffer.from(bytes)) },
    { weight: 1, arbitrary: fc.tuple(anyToken(), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([tk, junk]) => Buffer.concat([Buffer.from(`Bearer ${tk}`), junk])) },
    { weight: 1, arbitrary: fc.integer({ min: 8000, max: 40_000 }).map((n) => Buffer.from(`Bearer ${'a'.repeat(n)}`)) }
  ).filter((bytes) => !bytes.includes(0x0d) && !bytes.includes(0x0a))
  await check(t, 'raw Authorization bytes', fc.asyncProperty(wireBytes, fc.constantFrom(...Object.keys(routes)), async (bytes, url) => {
    const status = await rawRequest(port, url, bytes)
    tally(String(status))
    const acceptable = expectFromWire(bytes, routes[url] as readonly string[])
    if (!acceptable.includes(status)) throw new Error(`answered ${status}, expected one of ${acceptable.join(', ')} for ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`)
  }), { seed: 0x6a77_0002, runs: 150 })
  // still serving
  const res = await fetch(`${address}/private`, { headers: { authorization: `Bearer ${tokens[0] as string}` } })
  t.equal(res.status, 200, 'the server still answers a valid token')
  await res.text()
})
