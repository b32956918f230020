// Benchmark fixtures: one RSA-2048 key, a hot token, N distinct valid tokens
// (cold) and N distinct tokens with a wrong signature (invalid), one per line.
//
// RSA signing is slow (~1-2 ms per token per core), so the set is generated
// once, in parallel on every core, and kept under bench/results/fixtures/
// (gitignored) until it is about to expire or a larger set is asked for.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import { AUDIENCE, ISSUER, fixturesDir } from './common.mjs'

const FORMAT = 1
const LIFETIME_S = 30 * 24 * 3600 // tokens live 30 days
const MIN_REMAINING_S = 24 * 3600 // regenerate when less than a day is left

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')

function claims (i, iat, exp) {
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: `user_${i}`,
    sid: `sess_${i}`,
    permissions: ['leagues:read', 'leagues:write'],
    iat,
    nbf: iat - 10,
    exp
  }
}

function signRange ({ pem, kid, start, end, iat, exp }) {
  const key = createPrivateKey(pem)
  const header = b64({ alg: 'RS256', typ: 'JWT', kid })
  const out = []
  for (let i = start; i < end; i++) {
    const input = `${header}.${b64(claims(i, iat, exp))}`
    out.push(`${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`)
  }
  return out
}

if (!isMainThread && workerData?.role === 'bench-signer') {
  parentPort.postMessage(signRange(workerData))
}

export const fixtureFiles = {
  meta: join(fixturesDir, 'meta.json'),
  key: join(fixturesDir, 'key.json'),
  hot: join(fixturesDir, 'hot.txt'),
  cold: join(fixturesDir, 'cold.txt'),
  invalid: join(fixturesDir, 'invalid.txt'),
  // valid and invalid alternating, each token once: the memory test's traffic
  mixed: join(fixturesDir, 'mixed.txt')
}

/** mixed.txt from cold.txt and invalid.txt (line i: the cold token if i is even, else the invalid one; no token twice). */
function writeMixed () {
  const cold = readFileSync(fixtureFiles.cold, 'utf8').split('\n').filter(Boolean)
  const invalid = readFileSync(fixtureFiles.invalid, 'utf8').split('\n').filter(Boolean)
  writeFileSync(fixtureFiles.mixed, cold.map((token, i) => i % 2 === 0 ? token : invalid[i]).join('\n') + '\n')
}

function readMeta () {
  try {
    return JSON.parse(readFileSync(fixtureFiles.meta, 'utf8'))
  } catch {
    return null
  }
}

/** Ensures at least `count` tokens that stay valid for a day; returns { jwks, count, generatedSeconds }. */
export async function ensureFixtures (count, log = console.log) {
  const now = Math.floor(Date.now() / 1000)
  const meta = readMeta()
  const usable = meta !== null && meta.format === FORMAT && meta.count >= count && meta.exp - now > MIN_REMAINING_S &&
    [fixtureFiles.meta, fixtureFiles.key, fixtureFiles.hot, fixtureFiles.cold, fixtureFiles.invalid].every((file) => existsSync(file))
  if (usable) {
    if (!existsSync(fixtureFiles.mixed)) writeMixed()
    const key = JSON.parse(readFileSync(fixtureFiles.key, 'utf8'))
    return { jwks: { keys: [key.jwk] }, count: meta.count, generatedSeconds: 0 }
  }

  mkdirSync(fixturesDir, { recursive: true })
  const started = performance.now()
  const kid = randomUUID()
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' })
  const jwk = { ...createPublicKey(privateKey).export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }
  const iat = now
  const exp = now + LIFETIME_S
  const workers = Math.max(1, availableParallelism())
  log(`fixtures: signing ${count + 1} RS256 tokens on ${workers} thread(s), once (kept in bench/results/fixtures/) ...`)

  const per = Math.ceil((count + 1) / workers)
  const self = fileURLToPath(import.meta.url)
  const parts = await Promise.all(Array.from({ length: workers }, (_, w) => {
    const start = w * per
    const end = Math.min(count + 1, start + per)
    if (start >= end) return []
    return new Promise((resolve, reject) => {
      const worker = new Worker(self, { workerData: { role: 'bench-signer', pem, kid, start, end, iat, exp } })
      worker.once('message', resolve)
      worker.once('error', reject)
    })
  }))
  const all = parts.flat()
  const hot = all.pop() // token #count: never in the cold set
  const cold = all
  // A wrong signature that is still a well-formed RSA signature of the right
  // size: token i's header and payload with token i+1's signature. Verifying
  // it costs a full RSA public-key operation, as for a forged token.
  const invalid = cold.map((token, i) => {
    const next = cold[(i + 1) % cold.length]
    return token.slice(0, token.lastIndexOf('.')) + next.slice(next.lastIndexOf('.'))
  })
  writeFileSync(fixtureFiles.key, JSON.stringify({ kid, pem, jwk }))
  writeFileSync(fixtureFiles.hot, hot + '\n')
  writeFileSync(fixtureFiles.cold, cold.join('\n') + '\n')
  writeFileSync(fixtureFiles.invalid, invalid.join('\n') + '\n')
  writeMixed()
  writeFileSync(fixtureFiles.meta, JSON.stringify({ format: FORMAT, kid, count, iat, exp, issuer: ISSUER, audience: AUDIENCE }))
  const generatedSeconds = (performance.now() - started) / 1000
  log(`fixtures: done in ${generatedSeconds.toFixed(1)} s`)
  return { jwks: { keys: [jwk] }, count, generatedSeconds }
}
