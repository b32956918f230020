#!/usr/bin/env node
// The benchmark of fastify-griddy-auth: `npm run bench [-- options]`. See bench/README.md.
//
//   --rounds N        interleaved rounds (default 5; --quick: 1)
//   --duration S      whole seconds per server x scenario per round (default 3; --quick: 2)
//   --warmup S        warm-up seconds per server x scenario, before round 1 (default 1)
//   --connections C   concurrent connections (default 50)
//   --tokens N        distinct valid (and invalid) tokens in the fixture files (default 100000)
//   --mem-tokens N    distinct tokens for the memory test (default 100000; --quick: 30000; 0 skips it)
//   --tool wrk|autocannon   force a load generator (default: wrk when installed)
//   --quick           a ~1 minute run
//   --profile         instead of the benchmark: CPU profiles of the plugin server under hot, cold, invalid
//   --profile-duration S   seconds of load per profile (default 10)
//   --ref REF         measure the plugin as built from commit REF (git archive; the working tree is untouched)
//                     instead of the working tree's lib/ (built to dist/ when dist/ is missing or older)
//   --baseline REF    also measure the plugin as built from commit REF, side by side in the same rounds
//                     (before/after in one run); its memory test and in-process figures too
//   --servers a,b     only these servers (bare is always measured: every ratio is to it)
//   --scenarios a,b   only these scenarios
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { cpus as osCpus, loadavg } from 'node:os'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import {
  PUBLIC_ROUTE, ROUTE, benchDir, fmt, median, newestMtime, oldestMtime, pinSelf, pinned, planCpus,
  fixturesDir, resultsDir, rootDir, run, sleep, which
} from './lib/common.mjs'
import { ensureFixtures, fixtureFiles } from './lib/fixtures.mjs'
import { startLoad } from './lib/load.mjs'
import { startRedis } from './lib/redis.mjs'
import { delta, startServer } from './lib/servers.mjs'
import { summarize, toMarkdown } from './profile-top.mjs'

const { values: argv } = parseArgs({
  options: {
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '50' },
    tokens: { type: 'string', default: '100000' },
    'mem-tokens': { type: 'string' },
    tool: { type: 'string' },
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'profile-duration': { type: 'string', default: '10' },
    ref: { type: 'string' },
    baseline: { type: 'string' },
    servers: { type: 'string' },
    scenarios: { type: 'string' }
  }
})
const quick = argv.quick
const cfg = {
  rounds: Number(argv.rounds ?? (quick ? 1 : 5)),
  duration: Number(argv.duration ?? (quick ? 2 : 3)),
  warmup: Number(argv.warmup ?? 1),
  connections: Number(argv.connections),
  tokens: Number(argv.tokens),
  memTokens: Number(argv['mem-tokens'] ?? (quick ? 30000 : 100000)),
  profileDuration: Number(argv['profile-duration'])
}
for (const [name, value] of Object.entries(cfg)) {
  if (!Number.isFinite(value) || value < 0) throw new Error(`bench: --${name} must be a non-negative number`)
}
cfg.memTokens = Math.min(cfg.memTokens, cfg.tokens)
// wrk takes whole seconds
cfg.duration = Math.max(1, Math.round(cfg.duration))
cfg.warmup = Math.round(cfg.warmup)
cfg.profileDuration = Math.max(1, Math.round(cfg.profileDuration))

// 'sessions' is dropped (with a warning) when redis-server is not installed; 'baseline' is there with --baseline only.
const SERVERS = ['bare', 'plugin', 'jwks', 'sessions', 'ideal']
if (argv.baseline !== undefined) SERVERS.splice(2, 0, 'baseline')
const SERVER_LABEL = {
  bare: 'bare Fastify',
  plugin: 'fastify-griddy-auth',
  baseline: `fastify-griddy-auth @ ${argv.baseline ?? ''} (baseline)`,
  jwks: 'fastify-jwt-jwks',
  sessions: 'fastify-griddy-auth + sessions (Redis)',
  ideal: 'ideal floor (bare + one-shot crypto.verify)'
}
// The sessions server is measured where ended sessions could cost something: the request path, hot and cold.
// The ideal floor has no cache and no public-route work: it is the limit of a new token, valid or not.
const SERVER_SCENARIOS = { sessions: ['hot', 'cold'], ideal: ['cold', 'invalid'] }
const measured = (server, scenario) => SERVER_SCENARIOS[server]?.includes(scenario) ?? true
const SCENARIOS = ['hot', 'cold', 'invalid', 'public']
if (argv.servers !== undefined) {
  const wanted = new Set(['bare', ...argv.servers.split(',')])
  for (const name of wanted) if (!(name in SERVER_LABEL)) throw new Error(`bench: unknown server ${name} in --servers`)
  for (const name of [...SERVERS]) if (!wanted.has(name)) SERVERS.splice(SERVERS.indexOf(name), 1)
}
if (argv.scenarios !== undefined) {
  const wanted = new Set(argv.scenarios.split(','))
  for (const name of wanted) if (!SCENARIOS.includes(name)) throw new Error(`bench: unknown scenario ${name} in --scenarios`)
  for (const name of [...SCENARIOS]) if (!wanted.has(name)) SCENARIOS.splice(SCENARIOS.indexOf(name), 1)
}
const SCENARIO_LABEL = {
  hot: 'hot (one token reused)',
  cold: 'cold (every token new)',
  invalid: 'invalid (bad signatures)',
  public: 'public route (no token)'
}
// expected status class per server x scenario: 'ok' (all 2xx) or 'error' (all 4xx)
const expectErrors = (server, scenario) => scenario === 'invalid' && server !== 'bare'
const isPlugin = (server) => server === 'plugin' || server === 'baseline'

const warnings = []
const log = (...args) => console.error(...args)
const warn = (msg) => {
  warnings.push(msg)
  log(`WARNING: ${msg}`)
}

// ---------------------------------------------------------------- setup

/**
 * `--ref <commit>`: builds that commit's lib/ (git archive) in
 * bench/results/build-<sha>/, kept for later runs; the working tree is untouched.
 */
function buildRef (ref) {
  const sha = execFileSync('git', ['rev-parse', '--verify', `${ref}^{commit}`], { cwd: rootDir, encoding: 'utf8' }).trim()
  const dir = join(resultsDir, `build-${sha.slice(0, 12)}`)
  const pluginPath = join(dir, 'dist', 'index.cjs')
  if (!existsSync(pluginPath)) {
    log(`bench: building ${ref} (${sha.slice(0, 12)}) in ${relative(rootDir, dir)}/`)
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    const files = ['lib', 'scripts/build.mjs', 'tsconfig.json', 'tsconfig.build.json', 'package.json']
    const tar = spawnSync('sh', ['-c', `git archive --format=tar ${sha} ${files.join(' ')} | tar -x -C "${dir}"`], { cwd: rootDir, stdio: 'inherit' })
    if (tar.status !== 0) throw new Error(`bench: git archive of ${ref} failed`)
    symlinkSync(join(rootDir, 'node_modules'), join(dir, 'node_modules'))
    const res = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] })
    if (res.status !== 0) throw new Error(`bench: building ${ref} failed`)
  }
  return { pluginPath, source: `commit ${sha.slice(0, 12)} (--ref ${ref})` }
}

/** Builds dist/ if missing or older than lib/, then snapshots it (a parallel `npm run build` must not pull it away mid-run). */
function preparePackage () {
  if (argv.ref !== undefined) return buildRef(argv.ref)
  const dist = join(rootDir, 'dist')
  const libNewest = newestMtime(join(rootDir, 'lib'), (name) => name.endsWith('.ts'))
  const needBuild = !existsSync(join(dist, 'index.cjs')) || !existsSync(join(dist, 'testing', 'index.cjs')) || oldestMtime(dist) < libNewest
  if (needBuild) {
    log('bench: dist/ is missing or older than lib/: npm run build')
    const res = spawnSync('npm', ['run', 'build'], { cwd: rootDir, stdio: ['ignore', 'inherit', 'inherit'] })
    if (res.status !== 0) throw new Error('bench: npm run build failed')
  }
  const snapshot = join(resultsDir, 'dist-snapshot')
  rmSync(snapshot, { recursive: true, force: true })
  mkdirSync(resultsDir, { recursive: true })
  cpSync(dist, snapshot, { recursive: true })
  return { pluginPath: join(snapshot, 'index.cjs'), source: `working tree, ${gitDescribe()}` }
}

function gitDescribe () {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: rootDir, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lib'], { cwd: rootDir, encoding: 'utf8' }).trim() !== ''
    return `${commit}${dirty ? ' (lib/ has uncommitted changes)' : ''}`
  } catch {
    return 'unknown'
  }
}

/** The JWKS endpoint, served by this (orchestrating) process: every server fetches the same key set from it. */
async function startJwks (jwks) {
  let requests = 0
  const body = JSON.stringify(jwks)
  const server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') return res.writeHead(404).end()
    requests++
    res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}/.well-known/jwks.json`,
    get requests () { return requests },
    close: () => new Promise((resolve) => {
      server.closeAllConnections()
      server.close(resolve)
    })
  }
}

function scenarioTarget (scenario, port, offset = 0, limit = 0) {
  switch (scenario) {
    case 'hot': return { port, path: ROUTE, tokenFile: fixtureFiles.hot, offset: 0 }
    case 'cold': return { port, path: ROUTE, tokenFile: fixtureFiles.cold, offset, limit }
    case 'invalid': return { port, path: ROUTE, tokenFile: fixtureFiles.invalid, offset }
    case 'public': return { port, path: PUBLIC_ROUTE, tokenFile: null, offset: 0 }
  }
  throw new Error(`unknown scenario ${scenario}`)
}

/** One request per server x scenario: the servers answer as the benchmark expects (200s, and 401 for invalid). */
async function smokeCheck (servers) {
  const hot = readFileSync(fixtureFiles.hot, 'utf8').trim()
  const invalid = readFileSync(fixtureFiles.invalid, 'utf8').slice(0, 4096).split('\n')[0]
  for (const [kind, server] of Object.entries(servers)) {
    const base = `http://127.0.0.1:${server.port}`
    const checks = [
      ['hot', ROUTE, hot, 200],
      ['invalid', ROUTE, invalid, kind === 'bare' ? 200 : 401],
      ['public', PUBLIC_ROUTE, null, 200]
    ]
    for (const [name, path, token, want] of checks) {
      const res = await fetch(base + path, { headers: token ? { authorization: `Bearer ${token}` } : {} })
      const text = await res.text()
      if (res.status !== want) throw new Error(`bench: ${kind} ${name}: expected ${want}, got ${res.status} ${text}`)
    }
  }
}

// ---------------------------------------------------------------- measuring

/** Ticks of one core from /proc/stat: { busy, total }, or null when unavailable. */
function coreTicks (cpu) {
  if (cpu === null || !/^\d+$/.test(cpu)) return null
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `))
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)
    const busy = user + nice + system + irq + softirq + steal
    return { busy, total: busy + idle + iowait }
  } catch {
    return null
  }
}

/** Runs one load against one server; returns load + server-side figures for the window. */
async function measure (server, scenario, target, load, serverCpus) {
  const before = await server.stats()
  const coreBefore = coreTicks(serverCpus)
  const { done } = startLoad(target, load)
  const result = await done
  const coreAfter = coreTicks(serverCpus)
  const after = await server.stats()
  const d = delta(before, after)
  // How busy the server's core was (by anyone) while it was measured: ~100% means
  // the server had work queued all the time, so the load generator kept up.
  const coreBusy = coreBefore && coreAfter ? (coreAfter.busy - coreBefore.busy) / (coreAfter.total - coreBefore.total) : NaN
  return {
    ...result,
    wallStartNs: before.wallNs,
    wallEndNs: after.wallNs,
    coreBusy,
    cpuSec: d.cpuSec,
    serverRequests: d.requests,
    cpuUsPerReq: 1e6 * d.cpuSec / d.requests,
    serverUtil: d.cpuSec / result.windowSec,
    loadUtil: result.loadCpuSec / result.windowSec,
    verifPerReq: d.verifications / d.requests,
    rss: after.rss
  }
}

async function rsaBench (cpus, seconds) {
  const [cmd, args] = pinned(cpus, process.execPath, [join(benchDir, 'rsa-verify.mjs'), String(seconds), fixtureFiles.hot, fixtureFiles.key])
  const res = await run(cmd, args)
  const line = res.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '))
  if (line === undefined) throw new Error(`rsa-verify failed: ${res.stderr}`)
  const r = JSON.parse(line.slice('BENCH_JSON '.length))
  return { rps: r.verifications / r.wallSec, cpuUsPerVerify: 1e6 * r.cpuSec / r.verifications, util: r.cpuSec / r.wallSec }
}

/** CPU per verification in one process (bench/in-process.mjs): a new valid token, a bad signature, the ideal floor. */
async function inProcessBench (cpus, pluginPath, jwksUrl, seconds) {
  const [cmd, args] = pinned(cpus, process.execPath, [join(benchDir, 'in-process.mjs'), pluginPath, fixturesDir, jwksUrl, String(seconds)])
  const res = await run(cmd, args)
  const line = res.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '))
  if (line === undefined) throw new Error(`in-process bench failed: ${res.stderr}`)
  return JSON.parse(line.slice('BENCH_JSON '.length))
}

/**
 * RSS of a fresh plugin server (`kind`: plugin or baseline) before and after `count`
 * distinct tokens, valid and invalid alternating (default cache: 1000 entries).
 */
async function memoryTest (kind, common, load, count) {
  const server = await startServer(kind, { ...common, nodeArgs: ['--expose-gc'] })
  try {
    // warm up with the hot token, so the growth measured is the cold path's, not start-up's
    await startLoad(scenarioTarget('hot', server.port), { ...load, duration: 1 }).done
    const before = await server.gc()
    // + threads: wrk calls request() once on its first thread to check the script, and drops that request
    const { child, done } = startLoad({ port: server.port, path: ROUTE, tokenFile: fixtureFiles.mixed, offset: 0, limit: count + load.threads }, { ...load, duration: 600 })
    // Past its share of tokens, wrk repeats its last one (a cache hit): done when the
    // server has verified them all, i.e. when verifications stop growing.
    const deadline = Date.now() + 300_000
    let peakRss = before.rss
    let stats = before
    let last = -1
    let stableSince = Date.now()
    const checkpoints = [] // RSS as the token count passes each quarter: flat means bounded
    while (Date.now() < deadline) {
      await sleep(100)
      stats = await server.stats()
      peakRss = Math.max(peakRss, stats.rss)
      const verified = stats.verifications - before.verifications
      if (verified >= (checkpoints.length + 1) * count / 4) checkpoints.push({ tokens: verified, rssMb: stats.rss / 2 ** 20 })
      if (verified >= count) break
      if (verified !== last) {
        last = verified
        stableSince = Date.now()
      } else if (verified > 0 && Date.now() - stableSince > 1000) {
        break
      }
    }
    child.kill('SIGINT')
    const result = await done
    const afterRaw = await server.stats()
    const afterGc = await server.gc()
    return {
      kind,
      tokens: afterRaw.verifications - before.verifications,
      requests: result.requests,
      non2xx: result.non2xx,
      checkpoints,
      rssBeforeMb: before.rss / 2 ** 20,
      rssAfterMb: afterRaw.rss / 2 ** 20,
      rssPeakMb: Math.max(peakRss, afterRaw.rss) / 2 ** 20,
      rssAfterGcMb: afterGc.rss / 2 ** 20,
      heapBeforeMb: before.heapUsed / 2 ** 20,
      heapAfterGcMb: afterGc.heapUsed / 2 ** 20
    }
  } finally {
    await server.stop()
  }
}

// ---------------------------------------------------------------- report

/** ' (lo–hi)' of finite values, or '' for fewer than two. */
function range (values) {
  const v = values.filter(Number.isFinite)
  return v.length < 2 ? '' : ` (${fmt(Math.min(...v), 2)}–${fmt(Math.max(...v), 2)})`
}

function buildReport (ctx) {
  const { samples, rsa, inProcess, memory, env } = ctx
  const rounds = cfg.rounds
  const get = (server, scenario) => samples.filter((s) => s.server === server && s.scenario === scenario)
  const bareOf = (scenario, round) => samples.find((s) => s.server === 'bare' && s.scenario === scenario && s.round === round)
  const rsaOf = (round) => rsa.find((r) => r.round === round)

  // composite cold limit per round: bare's cold request plus one RSA verification
  const composite = []
  for (let round = 0; round < rounds; round++) {
    const bare = bareOf('cold', round)
    const r = rsaOf(round)
    if (bare && r) composite.push({ round, rps: 1 / (1 / bare.rps + 1 / r.rps), cpuUs: bare.cpuUsPerReq + r.cpuUsPerVerify })
  }
  const compositeRps = median(composite.map((c) => c.rps))
  const compositeCpu = median(composite.map((c) => c.cpuUs))

  const rows = []
  for (const scenario of SCENARIOS) {
    for (const server of SERVERS) {
      const list = get(server, scenario)
      if (list.length === 0) continue
      const ratio = (fn) => median(list.map((s) => {
        const bare = bareOf(scenario, s.round)
        return bare ? fn(s, bare) : NaN
      }))
      const vsComposite = (fn) => median(list.map((s) => {
        const c = composite.find((x) => x.round === s.round)
        return c ? fn(s, c) : NaN
      }))
      const expected = expectErrors(server, scenario) ? 'all 401' : 'all 2xx'
      const bad = list.filter((s) => (expectErrors(server, scenario) ? s.non2xx !== s.requests : s.non2xx !== 0) || s.socketErrors > 0)
      rows.push({
        scenario,
        server,
        rps: median(list.map((s) => s.rps)),
        rpsRatio: ratio((s, b) => s.rps / b.rps),
        cpuUs: median(list.map((s) => s.cpuUsPerReq)),
        cpuRatio: ratio((s, b) => b.cpuUsPerReq / s.cpuUsPerReq),
        cpuRatioRange: range(list.map((s) => {
          const bare = bareOf(scenario, s.round)
          return bare ? bare.cpuUsPerReq / s.cpuUsPerReq : NaN
        })),
        p99: median(list.map((s) => s.latencyMs.p99)),
        p99Ratio: ratio((s, b) => s.latencyMs.p99 / b.latencyMs.p99),
        serverUtil: median(list.map((s) => s.serverUtil)),
        coreBusy: median(list.map((s) => s.coreBusy)),
        loadUtil: median(list.map((s) => s.loadUtil)),
        verifPerReq: median(list.map((s) => s.verifPerReq)),
        compositeRps: scenario === 'cold' ? vsComposite((s, c) => s.rps / c.rps) : NaN,
        compositeCpu: scenario === 'cold' ? vsComposite((s, c) => c.cpuUs / s.cpuUsPerReq) : NaN,
        check: bad.length === 0 ? `ok (${expected})` : `**${bad.length}/${list.length} runs not ${expected}**`
      })
    }
  }
  const row = (server, scenario) => rows.find((r) => r.server === server && r.scenario === scenario)
  /** The sessions server against the plain plugin server, round by round. */
  function sessionsRatio (scenario) {
    const pairs = get('sessions', scenario).map((on) => [samples.find((s) => s.server === 'plugin' && s.scenario === scenario && s.round === on.round), on]).filter(([off]) => off)
    if (pairs.length === 0) return null
    const cpus = pairs.map(([off, on]) => off.cpuUsPerReq / on.cpuUsPerReq)
    return {
      offUs: median(pairs.map(([off]) => off.cpuUsPerReq)),
      onUs: median(pairs.map(([, on]) => on.cpuUsPerReq)),
      cpu: median(cpus),
      cpuRange: range(cpus),
      rps: median(pairs.map(([off, on]) => on.rps / off.rps))
    }
  }

  const out = []
  out.push('## fastify-griddy-auth benchmark', '')
  out.push(`- ${env.date}; plugin: ${env.source}; Node ${process.version}, ${env.cpuModel}, ${env.cores} cores`)
  out.push(`- ${env.pinning}`)
  out.push(`- load generator: ${env.tool}, ${cfg.connections} connections, ${env.loadThreads} thread(s)`)
  out.push(`- ${rounds} interleaved round(s) x ${cfg.duration} s per server x scenario (order rotated each round), after a ${cfg.warmup} s warm-up each; medians over rounds; ratios are to bare Fastify in the same round, then the median`)
  out.push(`- load average at start / end: ${env.loadStart} / ${env.loadEnd} (on ${env.cores} cores)`)
  out.push(`- JWKS: one local endpoint (RSA-2048, one key), fetched ${env.jwksFetches} time(s) in total by all servers`)
  out.push('')
  out.push('CPU/req is the server process\'s own CPU time (user + system, `process.cpuUsage()`) over the measured window divided by the requests it received: on a shared, noisy machine it is far steadier than req/s. "CPU vs bare" is bare\'s CPU/req divided by this server\'s (1.00 = as cheap as bare; comparable with req/s × bare when the server is the bottleneck), with its lowest–highest over the rounds: the noise to allow for.')
  out.push('')
  out.push('| scenario | server | req/s | req/s × bare | CPU µs/req | CPU vs bare | p99 ms | p99 × bare | server CPU | its core busy | load-gen CPU | RSA verif./req | responses |')
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const r of rows) {
    out.push(`| ${SCENARIO_LABEL[r.scenario]} | ${SERVER_LABEL[r.server]} | ${fmt(r.rps)} | ${fmt(r.rpsRatio, 2)} | ${fmt(r.cpuUs, 1)} | ${fmt(r.cpuRatio, 2)}${r.cpuRatioRange} | ${fmt(r.p99, 2)} | ${fmt(r.p99Ratio, 2)} | ${fmt(100 * r.serverUtil)}% | ${fmt(100 * r.coreBusy)}% | ${fmt(100 * r.loadUtil)}% | ${fmt(r.verifPerReq, 2)} | ${r.check} |`)
  }
  out.push('')
  const tableServers = SERVERS.filter((server) => server !== 'sessions')
  out.push('Least-disturbed figures: contention from other processes only ever adds CPU per request (cache and TLB pollution, context switches), so the lowest CPU/req of each server × scenario over the rounds is the closest to its intrinsic cost. µs/req, with the ratio to bare in brackets.', '')
  out.push(`| scenario | ${tableServers.map((server) => SERVER_LABEL[server]).join(' | ')} |`, `|---|${tableServers.map(() => '---:').join('|')}|`)
  for (const scenario of SCENARIOS) {
    const best = (server) => Math.min(...get(server, scenario).map((s) => s.cpuUsPerReq))
    const bare = best('bare')
    out.push(`| ${SCENARIO_LABEL[scenario]} | ${tableServers.map((server) => {
      const v = best(server)
      return Number.isFinite(v) ? `${fmt(v, 1)}${server === 'bare' ? '' : ` (${fmt(bare / v, 2)})`}` : '—'
    }).join(' | ')} |`)
  }
  out.push('')

  /** Per round: a's CPU/req ÷ b's (same round), then the median and range. */
  function perRound (a, sa, b, sb) {
    const ratios = get(a, sa).map((x) => {
      const y = samples.find((s) => s.server === b && s.scenario === sb && s.round === x.round)
      return y ? x.cpuUsPerReq / y.cpuUsPerReq : NaN
    }).filter(Number.isFinite)
    return ratios.length === 0 ? null : { value: median(ratios), range: range(ratios) }
  }
  const ratioText = (r) => r === null ? '—' : `${fmt(r.value, 2)}${r.range}`

  if (SCENARIOS.includes('cold') && SCENARIOS.includes('invalid')) {
    out.push('### A refused token against an accepted one', '')
    out.push('Over HTTP: the invalid scenario\'s CPU/req ÷ the cold one\'s, same server, same round (≤ 1.00: refusing a forged token costs no more than accepting a new one). In process (`bench/in-process.mjs`, pinned to the server core, once per round): `griddyAuth.verify()` of a new valid token and of a bad-signature token, in alternating batches of 100 in one process, and the ideal floor (a hand-written one-shot `crypto.verify` of the same token); CPU per verification, medians over the batches, then over rounds.', '')
    out.push('| server | HTTP invalid ÷ cold | HTTP invalid − cold, µs | in-process valid µs | in-process invalid µs | in-process invalid ÷ valid | ideal floor µs | valid ÷ ideal | fast-jwt alone, stack traces off: invalid ÷ valid |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const server of SERVERS.filter((x) => x !== 'bare' && x !== 'sessions')) {
      const http = perRound(server, 'invalid', server, 'cold')
      const extra = median(get(server, 'invalid').map((x) => {
        const y = samples.find((s) => s.server === server && s.scenario === 'cold' && s.round === x.round)
        return y ? x.cpuUsPerReq - y.cpuUsPerReq : NaN
      }).filter(Number.isFinite))
      const ip = inProcess.filter((r) => r.server === server)
      const cell = (fn, digits) => ip.length === 0 ? '—' : fmt(median(ip.map(fn)), digits)
      const withRange = (values) => ip.length === 0 ? '—' : `${fmt(median(values), 2)}${range(values)}`
      out.push(`| ${SERVER_LABEL[server]} | ${ratioText(http)} | ${fmt(extra, 1)} | ${cell((r) => r.valid, 1)} | ${cell((r) => r.invalid, 1)} | ${withRange(ip.map((r) => r.ratio))} | ${cell((r) => r.ideal, 1)} | ${cell((r) => r.valid / r.ideal, 2)} | ${withRange(ip.map((r) => r.fastJwtRatio))} |`)
    }
    out.push('', 'The ideal floor\'s own row is what the framework charges for a 401 over a 200 (Fastify\'s error reply); "fast-jwt alone" is the verifier library\'s own refusal cost over its acceptance (a TokenError built and thrown twice), called as the plugin calls it: the part no code around it can remove.', '')
  }

  if (SERVERS.includes('ideal') && SCENARIOS.includes('cold')) {
    out.push('### Distance to the ideal floor', '')
    out.push('The ideal floor is bare Fastify plus a hand-written one-shot `crypto.verify` of the same token in the handler (split, parse header and payload, check `alg`, verify; no library, no cache, no claim checks): what any RS256 verifier must spend on a new token. Each server\'s CPU/req ÷ the floor\'s, same round (1.00 = at the limit).', '')
    out.push('| scenario | server | × the floor\'s CPU/req |', '|---|---|---:|')
    for (const scenario of ['cold', 'invalid'].filter((x) => SCENARIOS.includes(x))) {
      for (const server of SERVERS.filter((x) => x !== 'bare' && x !== 'ideal' && measured(x, scenario))) {
        out.push(`| ${SCENARIO_LABEL[scenario]} | ${SERVER_LABEL[server]} | ${ratioText(perRound(server, scenario, 'ideal', scenario))} |`)
      }
    }
    out.push('')
  }

  if (SERVERS.includes('baseline')) {
    out.push('### Before and after, same rounds', '')
    out.push(`The baseline (${env.source.split('baseline: ')[1]}) ÷ the working tree, CPU/req per round, then the median (above 1.00: the working tree is cheaper).`, '')
    out.push('| scenario | baseline µs/req | working tree µs/req | baseline ÷ working tree |', '|---|---:|---:|---:|')
    for (const scenario of SCENARIOS) {
      const before = median(get('baseline', scenario).map((s) => s.cpuUsPerReq))
      const after = median(get('plugin', scenario).map((s) => s.cpuUsPerReq))
      out.push(`| ${SCENARIO_LABEL[scenario]} | ${fmt(before, 1)} | ${fmt(after, 1)} | ${ratioText(perRound('baseline', scenario, 'plugin', scenario))} |`)
    }
    out.push('')
  }

  const rsaRps = median(rsa.map((r) => r.rps))
  const rsaCpu = median(rsa.map((r) => r.cpuUsPerVerify))
  out.push('### RS256 with node:crypto alone, and the composite cold limit', '')
  out.push(`- \`crypto.verify('sha256', …)\` with a KeyObject, one core: **${fmt(rsaRps)} verifications/s** (${fmt(rsaCpu, 1)} µs CPU each; median of ${rsa.length} run(s), one per round)`)
  out.push(`- composite cold limit \`1 / (1/bare + 1/rsa)\`: **${fmt(compositeRps)} req/s**; in CPU: bare's cold CPU/req + one verification = **${fmt(compositeCpu, 1)} µs/req**`)
  for (const server of ['plugin', 'jwks']) {
    const r = row(server, 'cold')
    if (r) out.push(`- ${SERVER_LABEL[server]} cold: ${fmt(r.compositeRps, 2)} of the composite limit in req/s, ${fmt(r.compositeCpu, 2)} in CPU/req (composite CPU/req ÷ its CPU/req)`)
  }
  out.push('')

  if (SERVERS.includes('sessions')) {
    out.push('### Sessions on vs off (SPEC §11)', '')
    out.push('`fastify-griddy-auth + sessions`: the same plugin server with `sessions: { redis }` (a local redis-server started by the bench), 1000 sessions and 100 users ended before the measurements (none of the fixtures\' tokens: every request looks up both maps and misses). Ratios are sessions-off ÷ sessions-on per round (1.00 = free), then the median, with the lowest–highest.', '')
    out.push('| scenario | sessions off µs/req | sessions on µs/req | CPU ratio | req/s ratio |', '|---|---:|---:|---:|---:|')
    for (const scenario of SERVER_SCENARIOS.sessions) {
      const r = sessionsRatio(scenario)
      if (r) out.push(`| ${SCENARIO_LABEL[scenario]} | ${fmt(r.offUs, 1)} | ${fmt(r.onUs, 1)} | ${fmt(r.cpu, 2)}${r.cpuRange} | ${fmt(r.rps, 2)} |`)
    }
    out.push('')
  }

  for (const m of memory) {
    out.push(`### Memory: ${SERVER_LABEL[m.kind]} server, default cache (1000 tokens)`, '')
    out.push(`- ${fmt(m.tokens)} distinct tokens verified, valid and invalid alternating (${fmt(m.requests)} requests, ${fmt(m.non2xx)} non-2xx: the invalid half)`)
    out.push(`- RSS after GC before: ${fmt(m.rssBeforeMb, 1)} MB; right after: ${fmt(m.rssAfterMb, 1)} MB (peak seen ${fmt(m.rssPeakMb, 1)} MB); after GC: ${fmt(m.rssAfterGcMb, 1)} MB`)
    out.push(`- RSS along the way: ${m.checkpoints.map((c) => `${fmt(c.rssMb, 1)} MB after ${fmt(c.tokens)}`).join(', ')}`)
    out.push(`- **growth: ${fmt(m.rssAfterMb - m.rssBeforeMb, 1)} MB** (${fmt(m.rssAfterGcMb - m.rssBeforeMb, 1)} MB after GC); heap used after GC: ${fmt(m.heapBeforeMb, 1)} → ${fmt(m.heapAfterGcMb, 1)} MB`)
    out.push('')
  }

  // targets (informational)
  const targets = []
  const t = (name, value, pass, detail) => targets.push(`| ${name} | ${value} | ${pass === null ? 'n/a' : pass ? 'met' : '**not met**'} | ${detail} |`)
  const hot = row('plugin', 'hot')
  const pub = row('plugin', 'public')
  const cold = row('plugin', 'cold')
  const jcold = row('jwks', 'cold')
  const inv = row('plugin', 'invalid')
  if (hot) t('hot ≥ 0.95 of bare', `${fmt(hot.rpsRatio, 2)} req/s, ${fmt(hot.cpuRatio, 2)}${hot.cpuRatioRange} CPU`, hot.cpuRatio >= 0.95, 'judged on CPU/req')
  if (pub) t('public ≥ 0.97 of bare', `${fmt(pub.rpsRatio, 2)} req/s, ${fmt(pub.cpuRatio, 2)}${pub.cpuRatioRange} CPU`, pub.cpuRatio >= 0.97, 'judged on CPU/req')
  const vsJwks = perRound('jwks', 'cold', 'plugin', 'cold')
  if (cold && jcold && vsJwks) t('cold ≥ 1.1× cheaper than fastify-jwt-jwks', `${ratioText(vsJwks)}× (${fmt(cold.cpuUs, 1)} vs ${fmt(jcold.cpuUs, 1)} µs/req)`, vsJwks.value >= 1.1, 'its CPU/req ÷ ours, same round')
  const invCold = perRound('plugin', 'invalid', 'plugin', 'cold')
  if (cold && inv && invCold) t('invalid no costlier than cold (HTTP)', `${ratioText(invCold)} (${fmt(inv.cpuUs, 1)} vs ${fmt(cold.cpuUs, 1)} µs/req)`, invCold.value <= 1.02, 'CPU/req, same round; 2% noise allowance')
  const ip = inProcess.filter((r) => r.server === 'plugin')
  if (ip.length > 0) t('bad signature ≤ 1.1× a new valid token (in process)', `${fmt(median(ip.map((r) => r.ratio)), 2)}${range(ip.map((r) => r.ratio))}`, median(ip.map((r) => r.ratio)) <= 1.1, 'CPU per verification, interleaved batches')
  const sessionsHot = sessionsRatio('hot')
  if (sessionsHot) t('hot with sessions ≥ 0.9 of sessions off', `${fmt(sessionsHot.rps, 2)} req/s, ${fmt(sessionsHot.cpu, 2)}${sessionsHot.cpuRange} CPU`, sessionsHot.cpu >= 0.9, 'judged on CPU/req, same round')
  const mem = memory.find((m) => m.kind === 'plugin')
  if (mem) t('RSS growth after 100k mixed tokens < 40 MB', `${fmt(mem.rssAfterMb - mem.rssBeforeMb, 1)} MB (${fmt(mem.tokens)} tokens)`, mem.tokens >= 100000 ? mem.rssAfterMb - mem.rssBeforeMb < 40 : null, mem.tokens >= 100000 ? 'RSS right after the tokens, vs after GC before' : 'fewer than 100k tokens sent (--quick?)')
  out.push('### Targets (informational, not enforced)', '')
  out.push('| target | measured | | basis |', '|---|---|---|---|', ...targets, '')

  // load generator check
  const maxLoad = Math.max(...samples.map((s) => s.loadUtil))
  const medServer = median(samples.map((s) => s.serverUtil))
  const minServer = Math.min(...samples.map((s) => s.serverUtil))
  const medCore = median(samples.map((s) => s.coreBusy))
  const minCore = Math.min(...samples.map((s) => s.coreBusy))
  out.push('### Is the server the bottleneck?', '')
  out.push(`- server process CPU over the measured windows: median ${fmt(100 * medServer)}%, lowest ${fmt(100 * minServer)}% of one core`)
  if (Number.isFinite(medCore)) {
    out.push(`- its core (from /proc/stat) was busy: median ${fmt(100 * medCore)}%, lowest ${fmt(100 * minCore)}%; the rest of the busy time went to other processes of this shared machine`)
  }
  out.push(`- load generator CPU: highest ${fmt(100 * maxLoad)}% of one core (${env.loadThreads} core(s) / thread(s) for it)`)
  const loadFree = maxLoad < 0.9 * env.loadThreads
  const coreFull = Number.isFinite(medCore) ? medCore >= 0.95 : medServer >= 0.9
  const verdict = !loadFree
    ? 'NOT CERTAIN: the load generator saturated its core(s) at times; req/s may understate the servers, compare CPU/req'
    : coreFull && medServer >= 0.9
      ? 'yes: the server used ~all of its core while the load generator had headroom'
      : coreFull
        ? 'yes, the server\'s core was saturated and the load generator had headroom, but other processes took part of that core: req/s understates the servers and is noisy; CPU/req is the figure to compare'
        : Number.isFinite(medCore)
          ? 'NOT CERTAIN: the server\'s core had idle time while the load generator had headroom (too few connections?)'
          : 'NOT CERTAIN: processes were not pinned, so the server shared the cores with the load generator; compare CPU/req only'
  out.push(`- verdict: ${verdict}`)
  out.push('')
  if (warnings.length > 0) {
    out.push('### Warnings', '', ...warnings.map((w) => `- ${w}`), '')
  }
  return out.join('\n')
}

// ---------------------------------------------------------------- main

async function main () {
  const started = performance.now()
  const plan = planCpus()
  for (const w of plan.warnings) warn(w)
  pinSelf(plan.loadCpus)

  let tool = argv.tool ?? (which('wrk') ? 'wrk' : 'autocannon')
  if (tool === 'wrk' && !which('wrk')) {
    warn('wrk is not installed (apt-get install wrk): falling back to autocannon')
    tool = 'autocannon'
  }
  if (tool === 'autocannon') {
    warn('using autocannon: it costs about as much CPU per request as bare Fastify, so the load generator may be the bottleneck and req/s understate the servers; CPU/req stays meaningful. Install wrk for real figures.')
  }

  const { pluginPath, source } = preparePackage()
  const baseline = argv.baseline === undefined ? null : buildRef(argv.baseline)
  const fixtures = await ensureFixtures(cfg.tokens, log)
  if (fixtures.generatedSeconds > 0) log(`bench: (token generation is a one-time cost, not counted in the benchmark time: ${fixtures.generatedSeconds.toFixed(0)} s)`)
  const jwks = await startJwks(fixtures.jwks)
  const load = { tool, connections: cfg.connections, threads: plan.loadThreads, cpus: plan.loadCpus }
  const common = { cpus: plan.serverCpus, jwksUrl: jwks.url, pluginPath, baselinePath: baseline?.pluginPath, cwd: rootDir, keyFile: fixtureFiles.key }
  mkdirSync(resultsDir, { recursive: true })

  if (argv.profile) {
    await profile(common, load, source)
    await jwks.close()
    return
  }

  const env = {
    date: new Date().toISOString().replace('T', ' ').slice(0, 16) + ' UTC',
    source: baseline === null ? source : `${source}; baseline: ${baseline.source.replace('--ref', '--baseline')}`,
    cpuModel: osCpus()[0]?.model ?? 'unknown CPU',
    cores: osCpus().length,
    pinning: plan.pinned ? `server and RSA micro-benchmark pinned to core ${plan.serverCpus}, load generator to core(s) ${plan.loadCpus} (taskset)` : 'not pinned (see warnings)',
    tool: tool === 'wrk' ? 'wrk (Lua script rotating tokens)' : 'autocannon (fallback)',
    loadThreads: plan.loadThreads,
    loadStart: loadavg()[0].toFixed(2)
  }

  const redis = await startRedis(plan.loadCpus)
  if (redis === null) {
    if (SERVERS.includes('sessions')) {
      warn('redis-server is not installed (apt-get install redis-server): the sessions server is not measured')
      SERVERS.splice(SERVERS.indexOf('sessions'), 1)
    }
  } else {
    common.redisUrl = redis.url
  }
  log(`bench: starting servers (${SERVERS.join(', ')})`)
  const servers = {}
  try {
    for (const kind of SERVERS) servers[kind] = await startServer(kind, common)
    await smokeCheck(servers)

    // Token rotation offsets per server: each cold/invalid run continues where the
    // last one stopped, so a token recurs only after the whole file (N >> cache size).
    const offsets = {}
    for (const kind of SERVERS) offsets[kind] = { cold: 0, invalid: 0 }
    const slots = SCENARIOS.flatMap((scenario) => SERVERS.filter((server) => measured(server, scenario)).map((server) => ({ server, scenario })))
    const runSlot = async (slot, duration, round) => {
      const server = servers[slot.server]
      const target = scenarioTarget(slot.scenario, server.port, offsets[slot.server][slot.scenario] ?? 0)
      const result = await measure(server, slot.scenario, target, { ...load, duration }, common.cpus)
      if (slot.scenario in offsets[slot.server]) offsets[slot.server][slot.scenario] += result.requests + cfg.connections
      await sleep(200)
      return { ...slot, round, ...result }
    }

    if (cfg.warmup > 0) {
      log(`bench: warm-up (${cfg.warmup} s per server x scenario)`)
      for (const slot of slots) await runSlot(slot, cfg.warmup, -1)
    }

    const samples = []
    const rsa = []
    const inProcess = []
    const pluginServers = SERVERS.filter(isPlugin)
    for (let round = 0; round < cfg.rounds; round++) {
      const shift = Math.round(round * slots.length / cfg.rounds)
      const order = [...slots.slice(shift), ...slots.slice(0, shift)]
      log(`bench: round ${round + 1}/${cfg.rounds}`)
      rsa.push({ round, ...await rsaBench(plan.serverCpus, 1) })
      for (const server of round % 2 === 0 ? pluginServers : [...pluginServers].reverse()) {
        const r = await inProcessBench(plan.serverCpus, server === 'baseline' ? baseline.pluginPath : pluginPath, jwks.url, 2)
        inProcess.push({ round, server, ...r })
        log(`  in-process ${server.padEnd(8)} valid ${fmt(r.valid, 1)} µs  invalid ${fmt(r.invalid, 1)} µs  ideal ${fmt(r.ideal, 1)} µs  invalid÷valid ${fmt(r.ratio, 2)}  (fast-jwt alone ${fmt(r.fastJwtRatio, 2)})`)
      }
      for (const slot of order) {
        const s = await runSlot(slot, cfg.duration, round)
        samples.push(s)
        log(`  ${slot.scenario.padEnd(7)} ${slot.server.padEnd(8)} ${fmt(s.rps).padStart(7)} req/s  ${fmt(s.cpuUsPerReq, 1).padStart(6)} µs CPU/req  p99 ${fmt(s.latencyMs.p99, 2)} ms  server ${fmt(100 * s.serverUtil)}% (core ${fmt(100 * s.coreBusy)}%)  load-gen ${fmt(100 * s.loadUtil)}%  verif/req ${fmt(s.verifPerReq, 2)}  non-2xx ${s.non2xx}`)
      }
    }
    for (const s of samples) {
      if (s.scenario === 'cold' && s.server !== 'bare' && s.verifPerReq < 0.98) warn(`${s.server} cold round ${s.round + 1}: only ${fmt(s.verifPerReq, 2)} RSA verifications per request (token cache hits?)`)
    }

    const memory = []
    if (cfg.memTokens > 0) {
      for (const kind of pluginServers) {
        log(`bench: memory test, ${kind} (${cfg.memTokens} distinct tokens, valid and invalid alternating, fresh server)`)
        memory.push(await memoryTest(kind, common, load, cfg.memTokens))
      }
    }
    env.loadEnd = loadavg()[0].toFixed(2)
    env.jwksFetches = jwks.requests
    const report = buildReport({ samples, rsa, inProcess, memory, env })
    const seconds = (performance.now() - started) / 1000
    const text = report + `\n_${seconds.toFixed(0)} s in total (npm run bench${process.argv.slice(2).length ? ' -- ' + process.argv.slice(2).join(' ') : ''})._\n`
    process.stdout.write('\n' + text)
    writeFileSync(join(resultsDir, 'latest.md'), text)
    writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify({ cfg, env, samples, rsa, inProcess, memory, warnings }, null, 2))
    log(`bench: written ${relative(rootDir, join(resultsDir, 'latest.md'))} and latest.json`)
  } finally {
    for (const server of Object.values(servers)) await server.stop()
    await redis?.stop()
    await jwks.close()
  }
}

/** CPU profiles of the plugin server under the hot, cold and invalid scenarios. */
async function profile (common, load, source) {
  const dir = join(resultsDir, 'profiles')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const parts = []
  for (const scenario of ['hot', 'cold', 'invalid']) {
    const name = `plugin-${scenario}.cpuprofile`
    const server = await startServer('plugin', {
      ...common,
      nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', name, '--cpu-prof-interval', '250']
    })
    let result
    try {
      await startLoad(scenarioTarget(scenario, server.port), { ...load, duration: 1 }).done // warm-up (in the profile too)
      log(`bench: profiling the plugin server, ${scenario}, ${cfg.profileDuration} s`)
      result = await measure(server, scenario, scenarioTarget(scenario, server.port, 10_000), { ...load, duration: cfg.profileDuration }, common.cpus)
    } finally {
      await server.stop()
    }
    const summary = summarize(JSON.parse(readFileSync(join(dir, name), 'utf8')), 20, {
      fromUs: Number(BigInt(result.wallStartNs) / 1000n),
      toUs: Number(BigInt(result.wallEndNs) / 1000n),
      requests: result.requests
    })
    const head = `plugin server, ${scenario}: ${fmt(result.rps)} req/s, ${fmt(result.cpuUsPerReq, 1)} µs CPU/req under the profiler, ${fmt(result.verifPerReq, 2)} RSA verifications/req`
    parts.push(toMarkdown(summary, head))
  }
  const text = `## CPU profiles of fastify-griddy-auth (node --cpu-prof, 250 µs sampling)\n\nPlugin: ${source}; ${cfg.profileDuration} s of load per scenario, after a 1 s warm-up.\n\n` + parts.join('\n')
  process.stdout.write('\n' + text)
  writeFileSync(join(resultsDir, 'profiles.md'), text)
  log(`bench: written ${relative(rootDir, join(resultsDir, 'profiles.md'))}; raw profiles in ${relative(rootDir, dir)}/ (open them in Chrome DevTools)`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
