// CPU per verification in one process, with no HTTP around it: a new valid
// token, a token with a bad signature (a real RSA signature of another
// token: a full RSA operation, then a mismatch), and the ideal floor (a
// hand-written one-shot `crypto.verify` of the same token: split, parse the
// header and payload, verify; no library, no checks). run.mjs starts it
// pinned to the server core, once per round.
//
//   node bench/in-process.mjs <plugin index.cjs> <fixtures dir> <jwks url> [seconds]
//
// The plugin gets its keys from `jwksUrl` (the JWKS served by run.mjs), so
// the key path is the one a real deployment runs. Valid and invalid batches
// alternate (interleaved in time: the machine's noise falls on both), every
// token is used once (no token cache hit), and each batch is timed with the
// process's own CPU clock. Prints `BENCH_JSON { valid, invalid, ideal, ratio, ... }`.
import { createPublicKey, verify as cryptoVerify } from 'node:crypto'
import { closeSync, openSync, readFileSync, readSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const [pluginPath, fixtures, jwksUrl, secondsArg] = process.argv.slice(2)
const seconds = Number(secondsArg ?? 2)
const require = createRequire(import.meta.url)
const Fastify = require('fastify')
const griddyAuth = require(pluginPath)
const { createVerifier } = require('fast-jwt')
const meta = JSON.parse(readFileSync(join(fixtures, 'meta.json'), 'utf8'))
const { jwk } = JSON.parse(readFileSync(join(fixtures, 'key.json'), 'utf8'))
// The first 8 MB of each file (~11k tokens): more than a few seconds can use, read in a blink.
function lines (name) {
  const buffer = Buffer.alloc(8 * 2 ** 20)
  const fd = openSync(join(fixtures, name), 'r')
  const size = readSync(fd, buffer, 0, buffer.length, 0)
  closeSync(fd)
  const text = buffer.subarray(0, size).toString('utf8')
  return text.slice(0, text.lastIndexOf('\n')).split('\n')
}
const valid = lines('cold.txt')
const invalid = lines('invalid.txt')

const app = Fastify({ logger: false })
await app.register(griddyAuth, { issuer: meta.issuer, audience: meta.audience, jwksUrl })
await app.ready()
const { verify } = app.griddyAuth

/**
 * fast-jwt alone, as @fastify/jwt configures it for the plugin (RS256, no cache,
 * time claims left to the plugin) and with stack traces off as the plugin
 * calls it: how much its own refusal path costs over its
 * acceptance (it reports a bad signature by building a TokenError and throwing
 * it twice), measured beside the plugin so the share that is not the plugin's is printed.
 */
const fastJwt = createVerifier({
  key: createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }),
  algorithms: ['RS256'],
  cache: false,
  ignoreExpiration: true,
  ignoreNotBefore: true
})

/** The floor: what any RS256 verifier must do for this token, written by hand. */
const key = createPublicKey({ key: jwk, format: 'jwk' })
function ideal (token) {
  const first = token.indexOf('.')
  const last = token.lastIndexOf('.')
  const header = JSON.parse(Buffer.from(token.slice(0, first), 'base64url').toString())
  const payload = JSON.parse(Buffer.from(token.slice(first + 1, last), 'base64url').toString())
  if (header.alg !== 'RS256') throw new Error('alg')
  const ok = cryptoVerify('sha256', Buffer.from(token.slice(0, last)), key, Buffer.from(token.slice(last + 1), 'base64url'))
  return ok ? payload : null
}

let next = {}
function take (kind, list) {
  const i = next[kind] ?? 0
  next[kind] = i + 1
  return list[i % list.length]
}

const accepted = () => { throw new Error('in-process: a bad-signature token was accepted') }
const refused = (err) => { if (err.code !== 'GRIDDY_AUTH_SIGNATURE') throw err }

const batch = 100
async function runBatch (kind) {
  const before = process.cpuUsage()
  if (kind === 'valid') {
    for (let i = 0; i < batch; i++) await verify(take('valid', valid))
  } else if (kind === 'invalid') {
    // The refusal is taken as a rejection handler, not awaited in a try: a caller's own
    // rethrow at the await (a throw costs V8 a stack walk) is not the plugin's cost.
    for (let i = 0; i < batch; i++) await verify(take('invalid', invalid)).then(accepted, refused)
  } else if (kind === 'fastJwtValid' || kind === 'fastJwtInvalid') {
    // With stack traces off, as the plugin calls it (signature.ts).
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    for (let i = 0; i < batch; i++) {
      try {
        fastJwt(take(kind, kind === 'fastJwtValid' ? valid : invalid))
      } catch (err) {
        if (kind === 'fastJwtValid' || err.code !== 'FAST_JWT_INVALID_SIGNATURE') throw err
      }
    }
    Error.stackTraceLimit = limit
  } else {
    for (let i = 0; i < batch; i++) ideal(take('ideal', valid))
  }
  const cpu = process.cpuUsage(before)
  return (cpu.user + cpu.system) / batch
}

const kinds = ['valid', 'invalid', 'ideal', 'fastJwtValid', 'fastJwtInvalid']
const fresh = () => Object.fromEntries(kinds.map((kind) => [kind, 0]))
// Warm-up: the key is fetched once, the code is optimised.
for (let i = 0; i < 10; i++) for (const kind of kinds) await runBatch(kind)
next = fresh()

const samples = Object.fromEntries(kinds.map((kind) => [kind, []]))
const ratios = []
const fastJwtRatios = []
const end = performance.now() + seconds * 1000
let round = 0
while (performance.now() < end) {
  // Rotate the order, so neither kind always follows the other.
  const order = round++ % 2 === 0 ? kinds : [...kinds].reverse()
  const got = {}
  for (const kind of order) {
    got[kind] = await runBatch(kind)
    samples[kind].push(got[kind])
  }
  ratios.push(got.invalid / got.valid)
  fastJwtRatios.push(got.fastJwtInvalid / got.fastJwtValid)
}
await app.close()

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
process.stdout.write('BENCH_JSON ' + JSON.stringify({
  valid: median(samples.valid),
  invalid: median(samples.invalid),
  ideal: median(samples.ideal),
  fastJwtValid: median(samples.fastJwtValid),
  fastJwtInvalid: median(samples.fastJwtInvalid),
  fastJwtRatio: median(fastJwtRatios),
  ratio: median(ratios),
  ratioMin: Math.min(...ratios),
  ratioMax: Math.max(...ratios),
  batches: ratios.length,
  perBatch: batch
}) + '\n')
