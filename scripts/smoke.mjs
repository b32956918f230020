#!/usr/bin/env node
// Packaging smoke test. Run after `npm run build`:
//
//   node scripts/smoke.mjs
//
// Packs the package with `npm pack` (so "files" is exercised too), unpacks it
// into <tmp>/node_modules/fastify-griddy-auth next to symlinks of its runtime
// dependencies, and checks, as a consumer would see it:
//   - contents: exactly the expected kinds of file (LICENSE, README, CHANGELOG,
//     docs/, dist/), the package's provenance, source maps that resolve;
//   - runtime: require() and import of "fastify-griddy-auth" and
//     "fastify-griddy-auth/testing" on this Node version (default + named
//     exports are the same functions, CJS and ESM share one instance);
//   - types: a consumer project type-checks under moduleResolution
//     node16, nodenext, bundler and node10, including `import x = require()`
//     and a JavaScript file under checkJs, where require() is the plugin.
// Exits non-zero on any failure. Output is "ok"/"not ok" lines.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const NAME = pkg.name
const keep = process.argv.includes('--keep')

let passed = 0
let failed = 0
function check (name, fn) {
  try {
    fn()
    passed++
    console.log(`ok - ${name}`)
  } catch (err) {
    failed++
    console.log(`not ok - ${name}`)
    const text = err.stdout || err.stderr ? `${err.stdout || ''}${err.stderr || ''}` : String(err.stack || err)
    console.log(text.trimEnd().split('\n').map((l) => `  ${l}`).join('\n'))
  }
}

if (!existsSync(join(root, 'dist', 'index.js'))) {
  console.error('smoke: dist/ is missing, run `npm run build` first')
  process.exit(1)
}

const tmp = mkdtempSync(join(tmpdir(), 'griddy-smoke-'))
const nm = join(tmp, 'node_modules')
const dest = join(nm, NAME)
mkdirSync(dest, { recursive: true })

// 1. pack + unpack (prepack is skipped: dist/ is already built)
const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], {
  cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit']
}))
execFileSync('tar', ['-xzf', join(tmp, packed[0].filename), '-C', dest, '--strip-components=1'])

// 2. link runtime and peer deps (+ what the type checks need) from this repo's node_modules.
// Not ioredis: an optional peer the plugin never loads, whose absence the checks below prove harmless.
const notInstalled = new Set(['ioredis'])
for (const dep of [...Object.keys(pkg.dependencies || {}), ...Object.keys(pkg.peerDependencies || {}), '@types/node'].filter((d) => !notInstalled.has(d))) {
  const link = join(nm, dep)
  mkdirSync(dirname(link), { recursive: true })
  symlinkSync(join(root, 'node_modules', dep), link, 'dir')
}
writeFileSync(join(tmp, 'package.json'), JSON.stringify({ name: 'smoke-consumer', private: true }))

const node = (file, src) => {
  writeFileSync(join(tmp, file), src)
  return execFileSync(process.execPath, [file], { cwd: tmp, encoding: 'utf8', stdio: 'pipe' })
}

// 3. contents of the tarball
const packedFiles = packed[0].files.map((f) => f.path)
const packedSet = new Set(packedFiles)

check('packed files are exactly the expected kinds (no tests, bench, examples, sources, dotfiles)', () => {
  const allowed = [
    /^package\.json$/, /^README\.md$/, /^LICENSE$/, /^CHANGELOG\.md$/,
    /^docs\/[\w-]+\.md$/,
    /^dist\/(?:[\w-]+\/)*[\w.-]+\.(?:js|cjs|mjs|d\.ts|d\.mts|d\.cts|js\.map)$/
  ]
  const unexpected = packedFiles.filter((f) => !allowed.some((re) => re.test(f)))
  if (unexpected.length) throw new Error(`not meant to ship: ${unexpected.join(', ')}`)
  const docs = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)
  const missing = ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', ...docs].filter((f) => !packedSet.has(f))
  if (missing.length) throw new Error(`missing from the tarball: ${missing.join(', ')}`)
})

check('package.json tells where the package comes from', () => {
  const shipped = JSON.parse(readFileSync(join(dest, 'package.json'), 'utf8'))
  if (shipped.license !== 'MIT') throw new Error(`license is ${shipped.license}`)
  if (!/^MIT License/.test(readFileSync(join(dest, 'LICENSE'), 'utf8'))) throw new Error('LICENSE is not the MIT licence text')
  for (const key of ['repository', 'homepage', 'bugs', 'keywords']) {
    if (shipped[key] === undefined) throw new Error(`package.json has no "${key}"`)
  }
  if (!/^git\+https:\/\/github\.com\/.+\.git$/.test(shipped.repository.url)) throw new Error(`repository.url ${shipped.repository.url}`)
})

check('source maps in the tarball point at shipped files, or carry their sources', () => {
  const problems = []
  for (const file of packedFiles.filter((f) => /\.[cm]?js$/.test(f))) {
    const ref = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(dest, file), 'utf8'))
    if (ref === null) continue
    const map = posix.join(posix.dirname(file), ref[1])
    if (!packedSet.has(map)) {
      problems.push(`${file} -> ${map}, which is not in the tarball`)
      continue
    }
    const { sources = [], sourcesContent = [], sourceRoot = '' } = JSON.parse(readFileSync(join(dest, map), 'utf8'))
    sources.forEach((source, i) => {
      const target = posix.join(posix.dirname(map), sourceRoot, source)
      if (!packedSet.has(target) && typeof sourcesContent[i] !== 'string') problems.push(`${map}: ${source} is neither shipped nor inlined`)
    })
  }
  if (problems.length) throw new Error(problems.join('\n'))
})

// 4. runtime
check('packed files include dist entry points', () => {
  const files = new Set(packed[0].files.map((f) => f.path))
  for (const f of Object.values(pkg.exports).flatMap((e) => typeof e === 'string' ? [e] : Object.values(e).flatMap((c) => Object.values(c)))) {
    if (!files.has(f.replace(/^\.\//, ''))) throw new Error(`${f} is not in the tarball`)
  }
})

check('require() main and testing entry', () => node('cjs.cjs', `
const assert = require('node:assert/strict')
const plugin = require('${NAME}')
assert.equal(typeof plugin, 'function', 'require() returns the plugin function')
assert.equal(plugin.default, plugin, 'require().default is the plugin')
assert.equal(plugin.griddyAuth, plugin, 'require().griddyAuth is the plugin')
const testing = require('${NAME}/testing')
assert.equal(typeof testing.createTestIssuer, 'function', 'testing.createTestIssuer')
`))

check('import main and testing entry', () => node('esm.mjs', `
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import griddyAuth, { griddyAuth as named } from '${NAME}'
import * as ns from '${NAME}'
import { createTestIssuer } from '${NAME}/testing'
import * as testingNs from '${NAME}/testing'
const require = createRequire(import.meta.url)
assert.equal(typeof griddyAuth, 'function', 'default import is the plugin function')
assert.equal(named, griddyAuth, 'named griddyAuth === default')
assert.equal(require('${NAME}'), griddyAuth, 'CJS and ESM share one instance')
assert.equal(typeof createTestIssuer, 'function', 'createTestIssuer')
const cjs = require('${NAME}')
const raw = require('./node_modules/${NAME}/dist/index.js')
const esmNames = Object.keys(ns).filter((k) => k !== 'default').sort()
const rawNames = Object.keys(raw).filter((k) => k !== 'default').sort()
assert.deepEqual(esmNames, rawNames, 'ESM wrapper exposes every named export')
for (const k of esmNames) assert.equal(cjs[k], ns[k], 'require().' + k + ' === import { ' + k + ' }')
const t = require('${NAME}/testing')
assert.deepEqual(Object.keys(testingNs).sort(), Object.keys(t).sort(), 'testing: same names')
for (const k of Object.keys(t)) assert.equal(testingNs[k], t[k], 'testing.' + k + ' same instance')
`))

check('no built file loads or imports ioredis (sessions.redis is passed in by the app)', () => {
  const files = readdirSync(join(dest, 'dist'), { recursive: true }).filter((f) => /\.(c|m)?js$|\.d\.(m)?ts$/.test(f))
  for (const f of files) {
    if (/(?:require\(|import\(|from\s*)['"]ioredis['"]/.test(readFileSync(join(dest, 'dist', f), 'utf8'))) throw new Error(`dist/${f} refers to ioredis`)
  }
  node('no-ioredis.cjs', `
const assert = require('node:assert/strict')
assert.throws(() => require.resolve('ioredis'), 'ioredis is not installed in the consumer')
require('${NAME}')
`)
})

// 5. types, as a TS consumer sees them
const esmSrc = `
import griddyAuth, { griddyAuth as named } from '${NAME}'
import type { GriddyAuthOptions, AuthContext, SessionsOptions } from '${NAME}'
import { createTestIssuer } from '${NAME}/testing'
import Fastify from 'fastify'
const same: typeof named = griddyAuth
const back: typeof griddyAuth = named
const app = Fastify()
app.register(griddyAuth, {} as GriddyAuthOptions)
const sessions: SessionsOptions = { prefix: 'app:', clerkWebhook: { path: '/webhooks/clerk', secret: 'whsec_abc' } }
app.register(griddyAuth, { issuer: 'https://a', audience: 'b', sessions })
const ended: Promise<void> = app.griddyAuth.endSession('sess_1')
const ctx = {} as AuthContext | undefined
export { same, back, ctx, createTestIssuer, ended }
`
const cjsSrc = `
import pkg = require('${NAME}')
import testing = require('${NAME}/testing')
import Fastify from 'fastify'
const app = Fastify()
app.register(pkg.default, {} as pkg.GriddyAuthOptions)
app.register(pkg.griddyAuth, {} as pkg.GriddyAuthOptions)
// require() returns the plugin itself (module.exports is the function): so do its types.
app.register(pkg, { issuer: 'https://issuer.test', audience: 'api' })
// @ts-expect-error -- audience is required: the plugin is typed, not any
app.register(pkg, { issuer: 'https://issuer.test' })
const code: pkg.GriddyAuthErrorCode = pkg.errorCodes[0] as pkg.GriddyAuthErrorCode
const err: pkg.GriddyAuthError = new pkg.GriddyAuthError(code, 'message', {})
const ctx = {} as pkg.AuthContext
export const f = testing.createTestIssuer
export { err, ctx }
`
// A JavaScript user under checkJs: require() types as the plugin, with its named exports on it.
const checkJsSrc = `// @ts-check
const griddyAuth = require('${NAME}')
const Fastify = require('fastify')
const app = Fastify()
app.register(griddyAuth, { issuer: 'https://issuer.test', audience: 'api' })
// @ts-expect-error -- audience is required: the plugin is typed, not any
app.register(griddyAuth, { issuer: 'https://issuer.test' })
app.register(griddyAuth.griddyAuth, { issuer: 'https://issuer.test', audience: 'api' })
app.register(griddyAuth.default, { issuer: 'https://issuer.test', audience: 'api' })
/** @type {import('${NAME}').GriddyAuthErrorCode} */
const code = 'GRIDDY_AUTH_EXPIRED'
module.exports = { code, error: new griddyAuth.GriddyAuthError(code, 'Token has expired', {}), codes: griddyAuth.errorCodes }
`
writeFileSync(join(tmp, 'esm.mts'), esmSrc)
writeFileSync(join(tmp, 'import-from-cjs.cts'), esmSrc)
writeFileSync(join(tmp, 'require.cts'), cjsSrc)
writeFileSync(join(tmp, 'bundler.ts'), esmSrc)
writeFileSync(join(tmp, 'node10.ts'), esmSrc)
// A PermissionRegistry augmentation (global to its program, hence a program of its own)
// must reach require() users too: the .d.cts re-exports the interface, it does not alias it.
const augmentSrc = (importLine) => `${importLine}
import Fastify from 'fastify'
declare module '${NAME}' {
  interface PermissionRegistry { 'leagues:read': true }
}
const app = Fastify()
app.register(griddyAuth, { issuer: 'https://issuer.test', audience: 'api' })
app.get('/x', { config: { permissions: 'leagues:read' } }, async () => 'x')
// @ts-expect-error -- not a declared permission
app.get('/y', { config: { permissions: 'leagues:raed' } }, async () => 'x')
`
writeFileSync(join(tmp, 'augment.cts'), augmentSrc(`import griddyAuth = require('${NAME}')`))
writeFileSync(join(tmp, 'augment.mts'), augmentSrc(`import griddyAuth from '${NAME}'`))
writeFileSync(join(tmp, 'checkjs.cjs'), checkJsSrc)
writeFileSync(join(tmp, 'checkjs-node10.js'), checkJsSrc)

const tsc = require.resolve('typescript/bin/tsc')
const modes = {
  node16: { module: 'node16', moduleResolution: 'node16', files: ['esm.mts', 'import-from-cjs.cts', 'require.cts', 'checkjs.cjs'] },
  nodenext: { module: 'nodenext', moduleResolution: 'nodenext', files: ['esm.mts', 'import-from-cjs.cts', 'require.cts', 'checkjs.cjs'] },
  bundler: { module: 'esnext', moduleResolution: 'bundler', files: ['bundler.ts'] },
  node10: { module: 'commonjs', moduleResolution: 'node10', files: ['node10.ts', 'checkjs-node10.js'] },
  'nodenext, PermissionRegistry declared': { module: 'nodenext', moduleResolution: 'nodenext', files: ['augment.cts', 'augment.mts'] }
}
for (const [mode, { files, ...opts }] of Object.entries(modes)) {
  check(`types resolve with moduleResolution ${mode}`, () => {
    const cfg = `tsconfig.${mode.replace(/\W+/g, '-')}.json`
    writeFileSync(join(tmp, cfg), JSON.stringify({
      compilerOptions: { ...opts, target: 'es2022', strict: true, noEmit: true, esModuleInterop: true, skipLibCheck: true, types: ['node'], allowJs: true, checkJs: true },
      files
    }))
    const r = spawnSync(process.execPath, [tsc, '-p', cfg], { cwd: tmp, encoding: 'utf8' })
    if (r.status !== 0) throw Object.assign(new Error(`tsc ${mode} failed`), { stdout: r.stdout, stderr: r.stderr })
  })
}

if (keep) console.log(`# kept ${tmp}`)
else rmSync(tmp, { recursive: true, force: true })
console.log(`# smoke: ${passed} ok, ${failed} not ok`)
process.exitCode = failed ? 1 : 0
