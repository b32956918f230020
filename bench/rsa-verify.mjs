// RS256 verifications per second with node:crypto alone, on one core (run.mjs
// starts it pinned to the server core): crypto.verify('sha256', ...) with a
// KeyObject over a real token's signing input. The upper bound of any RS256
// verifier on this machine. Usage: node bench/rsa-verify.mjs <seconds> <token file> <key.json>
// Prints `BENCH_JSON { verifications, wallSec, cpuSec }`.
import { createPublicKey, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'

const seconds = Number(process.argv[2] ?? 2)
const token = readFileSync(process.argv[3], 'utf8').split('\n')[0]
const { jwk } = JSON.parse(readFileSync(process.argv[4], 'utf8'))
const key = createPublicKey({ key: jwk, format: 'jwk' })
const dot = token.lastIndexOf('.')
const input = Buffer.from(token.slice(0, dot))
const signature = Buffer.from(token.slice(dot + 1), 'base64url')

if (!verify('sha256', input, key, signature)) throw new Error('rsa-verify: the fixture token does not verify')
for (let i = 0; i < 200; i++) verify('sha256', input, key, signature) // warm-up

const cpuBefore = process.cpuUsage()
const start = performance.now()
const end = start + seconds * 1000
let n = 0
while (performance.now() < end) {
  for (let i = 0; i < 50; i++) verify('sha256', input, key, signature)
  n += 50
}
const wallSec = (performance.now() - start) / 1000
const cpu = process.cpuUsage(cpuBefore)
process.stdout.write('BENCH_JSON ' + JSON.stringify({ verifications: n, wallSec, cpuSec: (cpu.user + cpu.system) / 1e6 }) + '\n')
