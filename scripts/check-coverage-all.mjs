#!/usr/bin/env node
// Run after a full `tap` run. tap (c8) only reports coverage for files that some
// test actually loaded, so a lib/ module that no test imports would not count
// against the 100% requirement. This fails if any lib/**/*.ts file that has
// runtime code is missing from tap's raw coverage data (.tap/coverage).
// Type-only modules (nothing left after transpiling) are skipped.
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const ts = createRequire(import.meta.url)('typescript')
const covDir = join(root, '.tap', 'coverage')

let covFiles
try {
  covFiles = readdirSync(covDir).filter((f) => f.endsWith('.json'))
} catch {
  covFiles = []
}
if (!covFiles.length) {
  console.error('check-coverage-all: no coverage data in .tap/coverage (run `tap` first)')
  process.exit(1)
}

const loaded = new Set()
for (const f of covFiles) {
  const data = JSON.parse(readFileSync(join(covDir, f), 'utf8'))
  for (const r of data.result || []) loaded.add(r.url)
}

const BOILERPLATE = [
  /^"use strict";$/,
  /^Object\.defineProperty\(exports, "__esModule", \{ value: true \}\);$/,
  /^\/\/# sourceMappingURL=.*$/
]
function hasRuntimeCode (file) {
  const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
    fileName: file,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, removeComments: true }
  })
  return outputText.split('\n').map((l) => l.trim())
    .some((l) => l && !BOILERPLATE.some((re) => re.test(l)))
}

const missing = []
const lib = join(root, 'lib')
for (const rel of readdirSync(lib, { recursive: true })) {
  if (!rel.endsWith('.ts') || rel.endsWith('.d.ts')) continue
  const file = join(lib, rel)
  if (!loaded.has(pathToFileURL(file).href) && hasRuntimeCode(file)) missing.push(relative(root, file))
}

if (missing.length) {
  console.error('check-coverage-all: these lib modules were never loaded by any test, so they have 0% coverage:')
  for (const m of missing.sort()) console.error(`  ${m}`)
  process.exit(1)
}
console.log(`check-coverage-all: all runtime lib modules were loaded by tests (${loaded.size} file(s) with coverage)`)
