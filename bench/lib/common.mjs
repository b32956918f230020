// Shared helpers of the benchmark: paths, CPU pinning, process spawning, statistics.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..')
export const rootDir = join(benchDir, '..')
export const resultsDir = join(benchDir, 'results')
export const fixturesDir = join(resultsDir, 'fixtures')

export const ISSUER = 'https://issuer.bench.local'
export const AUDIENCE = 'https://api.bench.local'
export const ROUTE = '/api/v1/leagues/'
export const PUBLIC_ROUTE = '/healthz'
export const PERMISSION = 'leagues:read'

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export function which (cmd) {
  const res = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' })
  return res.status === 0 && res.stdout.trim() !== '' ? res.stdout.trim() : null
}

/** Parses a CPU list as printed by taskset ("0-3,6"). */
function parseCpuList (list) {
  const cpus = []
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number)
    for (let c = a; c <= (b ?? a); c++) cpus.push(c)
  }
  return cpus
}

/**
 * Which cores the server and the load generator use. With taskset: the
 * server (and the RS256 micro-benchmark) on the last allowed core, the load
 * generator on the others. Without taskset, or on one core: nothing pinned.
 */
export function planCpus () {
  const taskset = which('taskset')
  const warnings = []
  if (taskset === null) {
    warnings.push('taskset not found: processes run unpinned; the server and the load generator compete for all cores')
    return { pinned: false, serverCpus: null, loadCpus: null, loadThreads: Math.max(1, availableParallelism() - 1), warnings }
  }
  const res = spawnSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' })
  const match = /list:\s*([\d,-]+)/.exec(res.stdout)
  const cpus = match ? parseCpuList(match[1]) : []
  if (cpus.length < 2) {
    warnings.push(`only ${cpus.length} core(s) allowed: the server and the load generator share one core; req/s is meaningless, compare CPU time per request only`)
    return { pinned: false, serverCpus: null, loadCpus: null, loadThreads: 1, warnings }
  }
  const server = cpus[cpus.length - 1]
  const load = cpus.slice(0, -1)
  return { pinned: true, serverCpus: String(server), loadCpus: load.join(','), loadThreads: load.length, warnings }
}

/** argv for running `cmd args` pinned to `cpus` (or unpinned when cpus is null). */
export function pinned (cpus, cmd, args) {
  return cpus === null ? [cmd, args] : ['taskset', ['-c', cpus, cmd, ...args]]
}

/** Pins this process (all its threads) to `cpus`; best effort. */
export function pinSelf (cpus) {
  if (cpus !== null) spawnSync('taskset', ['-a', '-cp', cpus, String(process.pid)], { stdio: 'ignore' })
}

/** Runs a command, collecting stdout/stderr; resolves with { code, stdout, stderr }. */
export function run (cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => { stdout += chunk })
    child.stderr.on('data', (chunk) => { stderr += chunk })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

export function median (values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Newest mtime (ms) of the files under `dir` whose names match `filter`. */
export function newestMtime (dir, filter = () => true) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path, filter))
    else if (filter(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs)
  }
  return newest
}

export function oldestMtime (dir) {
  let oldest = Infinity
  if (!existsSync(dir)) return 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    oldest = Math.min(oldest, entry.isDirectory() ? oldestMtime(path) : statSync(path).mtimeMs)
  }
  return oldest
}

export function fmt (value, digits = 0) {
  if (!Number.isFinite(value)) return 'n/a'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}
