// Fallback load generator (when wrk is not installed): autocannon in its own
// process, rotating tokens like bench/wrk/tokens.lua. Prints `BENCH_JSON {...}`.
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'

const target = JSON.parse(process.argv[2])
const tokens = target.tokenFile === null ? [] : readFileSync(target.tokenFile, 'utf8').split('\n').filter(Boolean)
const n = tokens.length
let idx = n > 0 ? (target.offset ?? 0) % n : 0
let sent = 0
const limit = target.limit ?? 0

function setupRequest (req) {
  if (n === 0) return req
  if (limit === 0 || sent < limit) {
    idx = (idx + 1) % n
    sent++
  }
  req.headers = { ...req.headers, authorization: `Bearer ${tokens[idx]}` }
  return req
}

const cpuBefore = process.cpuUsage()
let first = null
const instance = autocannon({
  url: `http://127.0.0.1:${target.port}`,
  connections: target.connections,
  duration: target.duration,
  requests: [{ method: 'GET', path: target.path, setupRequest }]
}, (err, result) => {
  if (err) throw err
  const cpu = process.cpuUsage(cpuBefore)
  const windowSec = first === null ? result.duration : (performance.now() - first) / 1000
  const requests = result.requests.total
  process.stdout.write('BENCH_JSON ' + JSON.stringify({
    requests,
    windowSec,
    rps: requests / windowSec,
    non2xx: result.non2xx,
    socketErrors: result.errors + result.timeouts,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    loadCpuSec: (cpu.user + cpu.system) / 1e6
  }) + '\n')
})
instance.once('start', () => { first = performance.now() })
process.once('SIGINT', () => instance.stop())
