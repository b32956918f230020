/**
 * Every TypeScript snippet of README.md, CONTRIBUTING.md, docs/ and
 * examples/ compiles as a user would paste it (strict, `nodenext`, against
 * the built package), and the ones marked `run` run. Convention:
 * CONTRIBUTING.md, "Snippets in the documentation".
 *
 * A failure names the document and line: `README.md:312: column 40: TS2339 ...`.
 */
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { checkSnippets, distProblem, documents, extractSnippets, format, prepareWorkDir, root, type Problem, type Snippet } from './docs/snippets'

// One TypeScript program over Fastify's types, then a Node process per
// runnable snippet: more than tap's default per-file budget on a busy machine.
t.setTimeout(240_000)

const stale = distProblem()
if (stale !== undefined) t.fail(stale)

const work = prepareWorkDir()
t.teardown(() => rmSync(work, { recursive: true, force: true }))

// The checker's own cases, compiled in the same program as the real snippets:
// each must produce exactly the problem written next to it, so a checker that
// reports nothing (or the wrong line) fails here.
const SELF = 'selftest.md'
const selfTest = [
  /* 1 */ '# Self-test',
  /* 2 */ '',
  /* 3 */ '<!-- snippet',
  /* 4 */ "import Fastify from 'fastify'",
  /* 5 */ 'const app = Fastify()',
  /* 6 */ '-->',
  /* 7 */ '```ts',
  /* 8 */ "app.get('/x', async (request) => request.params.id)",
  /* 9 */ '```',
  /* 10 */ '',
  /* 11 */ '- in a list:',
  /* 12 */ '',
  /* 13 */ '  ```typescript',
  /* 14 */ "  import { routes } from './routes'",
  /* 15 */ '  // @filename: routes.ts',
  /* 16 */ '  export const routes = 1',
  /* 17 */ '  ```',
  /* 18 */ '',
  /* 19 */ '```ts run',
  /* 20 */ "throw new Error('boom at run time')",
  /* 21 */ '```',
  /* 22 */ '',
  /* 23 */ '```ts run',
  /* 24 */ "import { strict as assert } from 'node:assert'",
  /* 25 */ "import griddyAuth, { errorCodes } from 'fastify-griddy-auth'",
  /* 26 */ "assert.equal(typeof griddyAuth, 'function')",
  /* 27 */ "assert.ok(errorCodes.includes('GRIDDY_AUTH_EXPIRED'))",
  /* 28 */ '// @ts-expect-error: an unknown option is a type error',
  /* 29 */ "const options: import('fastify-griddy-auth').GriddyAuthOptions = { issuer: 'a', audience: 'b', audiences: 'c' }",
  /* 30 */ 'assert.ok(options)',
  /* 31 */ '```',
  /* 32 */ '',
  /* 33 */ '```ts rnu',
  /* 34 */ 'export {}',
  /* 35 */ '```',
  /* 36 */ '<!-- snippet',
  /* 37 */ 'declare const x: number',
  /* 38 */ '-->',
  /* 39 */ '```sh',
  /* 40 */ 'npm test',
  /* 41 */ '```'
].join('\n')
const expectedSelf: Array<{ line: number, message: RegExp }> = [
  { line: 33, message: /^unknown snippet flag "rnu"/ },
  { line: 36, message: /followed by a ```sh block/ },
  { line: 8, message: /^column 34: TS18046: 'request.params' is of type 'unknown'. \(snippet at line 7\)$/ },
  { line: 14, message: /^column 26: TS2835: Relative import paths need explicit file extensions.*\(snippet at line 13 in snippet\.ts\)$/ },
  { line: 19, message: /^run: exited with 1\n[\s\S]*boom at run time/ }
]

t.test('the snippet checker reports each problem at its line', async (t) => {
  const { snippets, problems } = extractSnippets(SELF, selfTest)
  t.equal(snippets.length, 5, 'five ts blocks; the sh block is not one')
  t.same(snippets.map((s) => s.files.map((f) => f.name)), [['snippet.ts'], ['snippet.ts', 'routes.ts'], ['snippet.ts'], ['snippet.ts'], ['snippet.ts']])
  const results = await checkSnippets(snippets, work)
  const found = [...problems, ...[...results.values()].flat()]
  for (const { line, message } of expectedSelf) {
    const hit = found.find((p) => p.line === line && message.test(p.message))
    t.ok(hit, `reported at ${SELF}:${line}: ${message}`, { found: found.map(format) })
  }
  t.equal(found.length, expectedSelf.length, 'and nothing else (the last run snippet passes)', { found: found.map(format) })
})

t.test('every TypeScript snippet of the documentation compiles, and the runnable ones run', async (t) => {
  const all: Snippet[] = []
  const conventions: Problem[] = []
  for (const doc of documents()) {
    const { snippets, problems } = extractSnippets(doc, readFileSync(join(root, doc), 'utf8'))
    all.push(...snippets)
    conventions.push(...problems)
  }
  t.same(conventions.map(format), [], 'the snippet convention is followed (CONTRIBUTING.md)')
  t.ok(all.some((s) => s.doc === 'README.md'), 'README.md has snippets to check')
  const results = await checkSnippets(all, work)
  for (const [snippet, problems] of results) {
    const what = `${snippet.doc}:${snippet.line} ${snippet.run ? 'compiles and runs' : 'compiles'}`
    if (problems.length === 0) t.pass(what)
    // The problems are the diagnostic; the test file's own stack would only hide them.
    else t.fail(what, { problems: problems.map(format), at: null, stack: '' })
  }
  t.comment(`${all.length} snippets in ${new Set(all.map((s) => s.doc)).size} documents, ${all.filter((s) => s.run).length} run`)
})
