/**
 * docs/security.md names, for each attack, the tests that prove the answer
 * ("catalogue: *algorithm confusion…*"). Each name must be in the page's
 * table of test files, and each title must begin a test of that file, so the
 * catalogue cannot cite a test that was renamed or removed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { REPOSITORY } from './docs/links'
import { root } from './docs/snippets'

const page = readFileSync(join(root, 'docs', 'security.md'), 'utf8')
const lines = page.split('\n')
const LEGEND = /^\| `([\w/-]+)` \| \[[^\]]*\]\(([^)]+)\)/
const legend = new Map<string, string>()
for (const line of lines) {
  const m = LEGEND.exec(line)
  if (m === null) continue
  const url = m[2] as string
  const path = url.replace(new RegExp(`^${REPOSITORY}/(?:blob|tree)/main/`), '')
  legend.set(m[1] as string, path)
}

/** The text of the named test file (or of every file of a named folder). */
function sourceOf (path: string): string {
  const full = join(root, path)
  if (!statSync(full).isDirectory()) return readFileSync(full, 'utf8')
  return readdirSync(full).map((f) => readFileSync(join(full, f), 'utf8')).join('\n')
}

t.test('the table of test files names existing files', async (t) => {
  t.ok(legend.size >= 10, `the legend lists the test files (${legend.size})`)
  for (const [name, path] of legend) t.doesNotThrow(() => sourceOf(path), `${name}: ${path}`)
})

t.test('every test the catalogue cites exists, under the title it is cited by', async (t) => {
  const start = lines.findIndex((l) => l.startsWith('## Attack catalogue'))
  let cited = 0
  const missing: string[] = []
  lines.forEach((line, i) => {
    if (i <= start || !line.startsWith('| ') || line.startsWith('| name |') || LEGEND.test(line)) return
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim()).filter(Boolean)
    const last = cells[cells.length - 1] as string
    if (last === 'test' || /^-+$/.test(last)) return
    for (const part of last.split(';')) {
      const name = /^\s*([\w/-]+)/.exec(part)?.[1] ?? ''
      const path = legend.get(name)
      if (path === undefined) {
        missing.push(`docs/security.md:${i + 1}: "${name}" is not in the table of test files`)
        continue
      }
      const source = sourceOf(path)
      for (const m of part.matchAll(/\*([^*]+)\*/g)) {
        cited++
        // "…" stands for the rest of a title; every piece around it must be in the file.
        for (const piece of (m[1] as string).split('…').map((p) => p.trim()).filter(Boolean)) {
          if (!source.includes(piece)) missing.push(`docs/security.md:${i + 1}: ${name} (${path}) has no test titled "${piece}"`)
        }
      }
    }
  })
  t.ok(cited > 40, `the catalogue cites tests by title (${cited})`)
  t.same(missing, [], 'each cited title is in its file')
})
