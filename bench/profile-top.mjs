#!/usr/bin/env node
// Top self-time frames of a V8 .cpuprofile (as written by `node --cpu-prof`).
//
//   node bench/profile-top.mjs <file.cpuprofile> [--top 20] [--from-us T --to-us T --requests N]
//
// --from-us/--to-us keep only the samples of a window (CLOCK_MONOTONIC µs, the
// clock of process.hrtime(), which V8's profiler uses too); --requests adds a
// µs-per-request column.
// Self time is summed per function (name + file + line) over all its call
// sites, as a percentage of the busy (non-idle) samples; a second table sums
// it per package / origin (this plugin's dist/, fastify, fast-jwt, node
// internals, GC...). Prints markdown.
import { readFileSync } from 'node:fs'
import { basename, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

function shortUrl (url) {
  if (url === '') return ''
  let path = url.startsWith('file://') ? fileURLToPath(url) : url
  if (path.startsWith('/')) path = relative(root, path)
  return path.replace(/^(\.\.\/)+/, '')
}

/** The origin a frame's file belongs to: a package, the plugin, node internals, or a V8 pseudo-frame. */
function originOf (name, url) {
  if (url === '') return name.startsWith('(') ? name : '(native)'
  if (url.startsWith('node:')) return 'node internals'
  const path = shortUrl(url)
  const nm = path.lastIndexOf('node_modules/')
  if (nm !== -1) {
    const parts = path.slice(nm + 'node_modules/'.length).split('/')
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]
  }
  if (/(^|\/)dist(-snapshot)?\//.test(path)) return 'fastify-griddy-auth (dist)'
  if (path.startsWith('bench/')) return 'bench server'
  return path
}

/**
 * `window`: optional { fromUs, toUs } in the profile's clock (CLOCK_MONOTONIC µs,
 * the clock of process.hrtime) to keep only the samples of a measured window,
 * and { requests } answered in it, for a µs-per-request column.
 */
export function summarize (profile, top = 20, window = {}) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const selfUs = new Map()
  const { samples, timeDeltas } = profile
  const from = window.fromUs ?? -Infinity
  const to = window.toUs ?? Infinity
  let windowed = Number.isFinite(from) || Number.isFinite(to)
  if (windowed && (to < profile.startTime || from > profile.endTime)) windowed = false // not the same clock: keep all
  // samples[i] was taken at startTime + sum(timeDeltas[0..i]) and lasts until the next one
  let t = profile.startTime
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i]
    if (windowed && (t < from || t > to)) continue
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, dt))
  }
  const frames = new Map()
  const origins = new Map()
  let busy = 0
  let idle = 0
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame
    const name = functionName || '(anonymous)'
    if (name === '(idle)') {
      idle += us
      continue
    }
    busy += us
    const key = `${name}\0${url}\0${lineNumber}`
    const frame = frames.get(key) ?? { name, file: shortUrl(url), line: lineNumber + 1, us: 0 }
    frame.us += us
    frames.set(key, frame)
    const origin = originOf(name, url)
    origins.set(origin, (origins.get(origin) ?? 0) + us)
  }
  const topFrames = [...frames.values()].sort((a, b) => b.us - a.us).slice(0, top)
  const topOrigins = [...origins.entries()].sort((a, b) => b[1] - a[1]).map(([origin, us]) => ({ origin, us }))
  return { busyUs: busy, idleUs: idle, topFrames, topOrigins, windowed, requests: windowed ? window.requests : undefined }
}

export function toMarkdown (summary, title) {
  const pct = (us) => (100 * us / summary.busyUs).toFixed(1)
  const perReq = summary.requests > 0
  const us = (v) => perReq ? ` ${(v / summary.requests).toFixed(2)} |` : ''
  const lines = []
  if (title) lines.push(`#### ${title}`, '')
  const total = summary.busyUs + summary.idleUs
  lines.push(`${summary.windowed ? 'Measured window only. ' : 'Whole process lifetime (start-up included). '}Main thread busy ${(summary.busyUs / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s sampled (${(100 * summary.busyUs / total).toFixed(0)}%); percentages are of busy time${perReq ? `; µs/req = self time ÷ ${summary.requests} requests (main thread only: GC helper threads and the kernel's share of syscalls are not in it)` : ''}.`, '')
  lines.push(`| # | self % |${perReq ? ' µs/req |' : ''} function | file:line |`, `|---:|---:|${perReq ? '---:|' : ''}---|---|`)
  summary.topFrames.forEach((f, i) => {
    lines.push(`| ${i + 1} | ${pct(f.us)} |${us(f.us)} \`${f.name}\` | ${f.file ? `${f.file}:${f.line}` : ''} |`)
  })
  lines.push('', `| origin | self % |${perReq ? ' µs/req |' : ''}`, `|---|---:|${perReq ? '---:|' : ''}`)
  for (const o of summary.topOrigins.slice(0, 12)) lines.push(`| ${o.origin} | ${pct(o.us)} |${us(o.us)}`)
  if (perReq) lines.push(`| **all (main thread busy)** | 100.0 |${us(summary.busyUs)}`)
  return lines.join('\n') + '\n'
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2)
  const file = args.find((a, i) => !a.startsWith('--') && (i === 0 || !args[i - 1].startsWith('--')))
  if (file === undefined) {
    console.error('usage: node bench/profile-top.mjs <file.cpuprofile> [--top 20] [--from-us T --to-us T --requests N]')
    process.exit(2)
  }
  const opt = (name) => {
    const at = args.indexOf(name)
    return at === -1 ? undefined : Number(args[at + 1])
  }
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const window = { fromUs: opt('--from-us'), toUs: opt('--to-us'), requests: opt('--requests') }
  process.stdout.write(toMarkdown(summarize(profile, opt('--top') ?? 20, window), basename(file)))
}
