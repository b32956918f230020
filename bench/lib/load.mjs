// Load generators: wrk with bench/wrk/tokens.lua (preferred: cheap per
// request), or autocannon in a child process (fallback: costs about as much
// CPU per request as bare Fastify, so on 2 cores it can starve the server).
// Both report the same shape: counts, load window, latency, and the load
// generator's own CPU time.
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { benchDir, pinned } from './common.mjs'

const CLK_TCK = (() => {
  const res = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
  return Number(res.stdout) > 0 ? Number(res.stdout) : 100
})()

/**
 * Starts one load run. `target`: { port, path, tokenFile (null: no
 * Authorization header), offset, limit }. `opts`: { tool, duration (s),
 * connections, threads, cpus }. Returns { child, done: Promise<result> }; a
 * SIGINT to child ends the run early with a result.
 */
export function startLoad (target, opts) {
  return opts.tool === 'wrk' ? startWrk(target, opts) : startAutocannon(target, opts)
}

function collect (child, parse) {
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => { stdout += chunk })
    child.stderr.on('data', (chunk) => { stderr += chunk })
    child.on('error', reject)
    child.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '))
      if (line === undefined) return reject(new Error(`load generator failed (exit ${code}): ${stderr.trim() || stdout.trim()}`))
      resolve(parse(JSON.parse(line.slice('BENCH_JSON '.length))))
    })
  })
}

function startWrk (target, opts) {
  const args = [
    '-t', String(opts.threads), '-c', String(Math.max(opts.connections, opts.threads)), '-d', `${Math.max(1, Math.round(opts.duration))}s`,
    '--timeout', '10s', '-s', join(benchDir, 'wrk', 'tokens.lua'), `http://127.0.0.1:${target.port}`,
    '--', target.path, target.tokenFile ?? '-', String(target.offset ?? 0), String(opts.threads), String(target.limit ?? 0)
  ]
  const [cmd, argv] = pinned(opts.cpus, 'wrk', args)
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  const done = collect(child, (r) => ({
    requests: r.requests,
    windowSec: r.window_us / 1e6,
    rps: r.requests / (r.window_us / 1e6),
    non2xx: r.errors.status, // wrk counts status > 399
    socketErrors: r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout,
    latencyMs: { p50: r.latency_us.p50 / 1000, p99: r.latency_us.p99 / 1000 },
    loadCpuSec: r.cpu_ticks.utime >= 0 ? (r.cpu_ticks.utime + r.cpu_ticks.stime) / CLK_TCK : NaN
  }))
  return { child, done }
}

function startAutocannon (target, opts) {
  const config = JSON.stringify({ ...target, duration: opts.duration, connections: opts.connections, workers: opts.threads })
  const [cmd, argv] = pinned(opts.cpus, process.execPath, [join(benchDir, 'lib', 'autocannon-child.mjs'), config])
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  return { child, done: collect(child, (r) => r) }
}
