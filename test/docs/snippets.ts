/**
 * The TypeScript snippets of the documentation, as a user would paste them:
 * extracted from Markdown, compiled in one TypeScript program (strict,
 * `nodenext`) against the package as it is installed (`fastify-griddy-auth`
 * resolves through package.json `exports` to the built dist/), and the ones
 * marked `run` executed with Node.
 *
 * The convention authors follow is in CONTRIBUTING.md ("Snippets in the
 * documentation"); `checkConvention` below enforces its rules, so a misplaced
 * directive is an error rather than a snippet silently left unchecked.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import ts from 'typescript'

export const root = join(__dirname, '..', '..')

/** One line of a snippet file and where it came from in the Markdown. */
export interface SourceLine {
  readonly text: string
  /** 1-based line in the Markdown document. */
  readonly line: number
  /** Columns of indentation removed (a fence inside a list item). */
  readonly indent: number
}

export interface SnippetFile {
  /** Path inside the snippet's own directory: `snippet.ts` or a `// @filename:`. */
  readonly name: string
  readonly lines: SourceLine[]
}

export interface Snippet {
  /** The document, relative to the repository root (`README.md`, `docs/faq.md`). */
  readonly doc: string
  /** Line of the opening fence. */
  readonly line: number
  readonly run: boolean
  /** The first file is the one `run` executes: the one holding the block's first line. */
  readonly files: SnippetFile[]
}

/** A broken rule of the convention, or a failing snippet: `doc:line: message`. */
export interface Problem {
  readonly doc: string
  readonly line: number
  readonly message: string
}

export const format = (p: Problem): string => `${p.doc}:${p.line}: ${p.message}`

export const MAIN_FILE = 'snippet.ts'
const FLAGS = new Set(['run'])
const TS_LANGS = new Set(['ts', 'typescript'])
const FILENAME = /^\s*\/\/\s*@filename:\s*(\S*)\s*$/
const SAFE_NAME = /^(?:[\w-]+\/)*[\w.-]+\.(?:ts|mts|cts)$/
const FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/
const COMMENT_START = /^\s*<!--\s*snippet\b(.*)$/

interface Fence { indent: number, marker: string, info: string[], open: number, body: SourceLine[], close: number }

/** The fenced blocks of a document, with the line after each (where the next search starts). */
function readFence (lines: string[], at: number): Fence | undefined {
  const m = FENCE.exec(lines[at] as string)
  if (m === null) return undefined
  const indent = (m[1] as string).length
  const marker = m[2] as string
  const info = (m[3] as string).trim().split(/\s+/).filter(Boolean)
  const closing = new RegExp(`^\\s*${marker[0] === '`' ? '`' : '~'}{${marker.length},}\\s*$`)
  const body: SourceLine[] = []
  let i = at + 1
  for (; i < lines.length && !closing.test(lines[i] as string); i++) {
    const text = lines[i] as string
    const strip = Math.min(indent, text.length - text.trimStart().length)
    body.push({ text: text.slice(strip), line: i + 1, indent: strip })
  }
  return { indent, marker, info, open: at + 1, body, close: i + 1 }
}

/** A `<!-- snippet ... -->` comment starting at `at`: its code lines and the line after it. */
function readComment (lines: string[], at: number): { body: SourceLine[], next: number } | undefined {
  const m = COMMENT_START.exec(lines[at] as string)
  if (m === null) return undefined
  const body: SourceLine[] = []
  let text = m[1] as string
  let i = at
  let column = (lines[at] as string).length - text.length
  for (;;) {
    const end = text.indexOf('-->')
    const code = end === -1 ? text : text.slice(0, end)
    if (code.trim() !== '') body.push({ text: code, line: i + 1, indent: column })
    if (end !== -1) return { body, next: i + 1 }
    i++
    if (i >= lines.length) return { body, next: -1 }
    text = lines[i] as string
    column = 0
  }
}

/** Splits lines on `// @filename:` markers into `files` (in order of first appearance). */
function splitFiles (source: SourceLine[], files: Map<string, SourceLine[]>, doc: string, problems: Problem[]): void {
  let current = files.get(MAIN_FILE) as SourceLine[]
  const named = new Set<string>()
  for (const l of source) {
    const m = FILENAME.exec(l.text)
    if (m !== null) {
      const name = m[1] as string
      if (!SAFE_NAME.test(name) || name.split('/').includes('..')) {
        problems.push({ doc, line: l.line, message: `@filename "${name}" must be a relative .ts/.mts/.cts path inside the snippet` })
      } else if (name === MAIN_FILE || named.has(name)) {
        problems.push({ doc, line: l.line, message: `@filename "${name}" is used twice in one snippet` })
      }
      named.add(name)
      current = files.get(name) ?? []
      files.set(name, current)
    }
    current.push(l)
  }
}

/**
 * Every ```ts / ```typescript block of a document, with the hidden context of
 * a `<!-- snippet ... -->` comment right before it (blank lines may separate
 * them). Rule violations are returned as problems.
 */
export function extractSnippets (doc: string, markdown: string): { snippets: Snippet[], problems: Problem[] } {
  const lines = markdown.split(/\r?\n/)
  const snippets: Snippet[] = []
  const problems: Problem[] = []
  let prelude: { body: SourceLine[], line: number } | undefined
  for (let i = 0; i < lines.length;) {
    const comment = readComment(lines, i)
    if (comment !== undefined) {
      if (prelude !== undefined) problems.push({ doc, line: prelude.line, message: 'snippet comment is not followed by a ts block' })
      if (comment.next === -1) {
        problems.push({ doc, line: i + 1, message: 'snippet comment is never closed with -->' })
        break
      }
      prelude = { body: comment.body, line: i + 1 }
      i = comment.next
      continue
    }
    const fence = readFence(lines, i)
    if (fence === undefined) {
      if ((lines[i] as string).trim() !== '' && prelude !== undefined) {
        problems.push({ doc, line: prelude.line, message: 'snippet comment is not followed by a ts block' })
        prelude = undefined
      }
      i++
      continue
    }
    const [lang = '', ...flags] = fence.info
    if (TS_LANGS.has(lang)) {
      for (const flag of flags) {
        if (!FLAGS.has(flag)) problems.push({ doc, line: fence.open, message: `unknown snippet flag "${flag}" (known: ${[...FLAGS].join(', ')})` })
      }
      const files = new Map<string, SourceLine[]>([[MAIN_FILE, []]])
      if (prelude !== undefined) splitFiles(prelude.body, files, doc, problems)
      splitFiles(fence.body, files, doc, problems)
      const list = [...files].map(([name, lines]) => ({ name, lines }))
        .filter((f) => f.name !== MAIN_FILE || f.lines.some((l) => l.text.trim() !== ''))
      // The file `run` executes is the one holding the block's first line, wherever the prelude put its files.
      const first = fence.body[0]
      const runs = list.findIndex((f) => first !== undefined && f.lines.includes(first))
      if (runs > 0) list.unshift(...list.splice(runs, 1))
      snippets.push({ doc, line: fence.open, run: flags.includes('run'), files: list })
    } else if (prelude !== undefined) {
      problems.push({ doc, line: prelude.line, message: `snippet comment is followed by a \`\`\`${lang} block, not a ts one` })
    }
    prelude = undefined
    i = fence.close
  }
  if (prelude !== undefined) problems.push({ doc, line: prelude.line, message: 'snippet comment is not followed by a ts block' })
  return { snippets, problems }
}

/** The Markdown files whose snippets are checked, relative to the root. */
export function documents (): string[] {
  const docs = ['README.md', 'CONTRIBUTING.md', 'CHANGELOG.md']
  for (const dir of ['docs', 'examples', 'bench']) {
    if (!existsSync(join(root, dir))) continue
    for (const f of readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })) {
      if (f.endsWith('.md') && !f.includes('node_modules')) docs.push(join(dir, f).replaceAll('\\', '/'))
    }
  }
  return docs.filter((d) => existsSync(join(root, d))).sort()
}

/**
 * A directory where a snippet sees what an installed user sees:
 * `node_modules/fastify-griddy-auth` is this package (its `exports` lead to
 * dist/), every other package is the repository's own, and `"type": "module"`
 * makes each snippet an ES module, as in a project that uses top-level await.
 */
export function prepareWorkDir (): string {
  const work = mkdtempSync(join(tmpdir(), 'griddy-snippets-'))
  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'snippets', private: true, type: 'module' }))
  const nm = join(work, 'node_modules')
  mkdirSync(nm)
  for (const entry of readdirSync(join(root, 'node_modules'))) {
    if (entry.startsWith('.')) continue
    symlinkSync(join(root, 'node_modules', entry), join(nm, entry), 'dir')
  }
  symlinkSync(root, join(nm, 'fastify-griddy-auth'), 'dir')
  return work
}

/** Why dist/ cannot stand for lib/ right now, if it cannot. */
export function distProblem (): string | undefined {
  const built = join(root, 'dist', 'index.mjs')
  if (!existsSync(built)) return 'dist/ is missing: run `npm run build` first'
  const newest = readdirSync(join(root, 'lib'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .reduce((max, f) => Math.max(max, statSync(join(root, 'lib', f)).mtimeMs), 0)
  if (newest > statSync(built).mtimeMs) return 'dist/ is older than lib/: run `npm run build` first'
  return undefined
}

export const compilerOptions: ts.CompilerOptions = {
  strict: true,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2023.d.ts'],
  types: ['node'],
  skipLibCheck: true,
  noEmitOnError: false
}

const slug = (doc: string): string => doc.replace(/[^\w]+/g, '_')
const AUGMENTS = /\bdeclare\s+(?:module|global)\b/

// Parsed library files (Fastify's, Node's, dist/), shared by every program of the run.
const cache = new Map<string, ts.SourceFile | undefined>()

interface Placed { snippet: Snippet, file: SnippetFile, path: string }

/**
 * Compiles every snippet and runs the `run` ones. Snippets that augment a
 * module (`declare module`, `declare global`) get a program of their own,
 * since an augmentation changes the types every other snippet sees; all the
 * others share one program.
 */
export async function checkSnippets (snippets: Snippet[], work: string, runTimeout = 60_000): Promise<Map<Snippet, Problem[]>> {
  const results = new Map<Snippet, Problem[]>(snippets.map((s) => [s, []]))
  const placed = new Map<string, Placed>()
  const groups: Snippet[][] = [[]]
  for (const snippet of snippets) {
    const dir = join(work, `${slug(snippet.doc)}-L${snippet.line}`)
    for (const file of snippet.files) {
      const path = join(dir, file.name)
      mkdirSync(dirname(path), { recursive: true })
      writeFileSync(path, file.lines.map((l) => l.text).join('\n') + '\n')
      placed.set(path, { snippet, file, path })
    }
    const augments = snippet.files.some((f) => f.lines.some((l) => AUGMENTS.test(l.text)))
    if (augments) groups.push([snippet]); else (groups[0] as Snippet[]).push(snippet)
  }

  const host = ts.createCompilerHost(compilerOptions)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (fileName, languageVersion, onError, fresh) => {
    if (fileName.startsWith(work) && !fileName.includes('node_modules')) return getSourceFile(fileName, languageVersion, onError, fresh)
    if (!cache.has(fileName)) cache.set(fileName, getSourceFile(fileName, languageVersion, onError, fresh))
    return cache.get(fileName)
  }

  const runnable: Placed[] = []
  for (const group of groups) {
    if (group.length === 0) continue
    const rootNames = group.flatMap((s) => s.files.map((f) => join(work, `${slug(s.doc)}-L${s.line}`, f.name)))
    const program = ts.createProgram({ rootNames, options: compilerOptions, host })
    for (const d of ts.getPreEmitDiagnostics(program)) {
      const text = ts.flattenDiagnosticMessageText(d.messageText, '\n')
      const at = d.file === undefined ? undefined : placed.get(d.file.fileName)
      if (at === undefined || d.start === undefined || d.file === undefined) {
        // Not in a snippet (an options or library error): every snippet of the group is suspect.
        const where = d.file === undefined ? '' : ` (in ${relative(work, d.file.fileName)})`
        for (const s of group) (results.get(s) as Problem[]).push({ doc: s.doc, line: s.line, message: `TS${d.code}: ${text}${where}` })
        continue
      }
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start)
      const source = at.file.lines[line] as SourceLine
      const file = at.snippet.files.length > 1 ? ` in ${at.file.name}` : ''
      ;(results.get(at.snippet) as Problem[]).push({
        doc: at.snippet.doc,
        line: source.line,
        message: `column ${character + source.indent + 1}: TS${d.code}: ${text} (snippet at line ${at.snippet.line}${file})`
      })
    }
    for (const s of group) {
      if (!s.run || (results.get(s) as Problem[]).length > 0) continue
      for (const f of s.files) {
        const path = join(work, `${slug(s.doc)}-L${s.line}`, f.name)
        program.emit(program.getSourceFile(path))
      }
      const first = s.files[0] as SnippetFile
      runnable.push(placed.get(join(work, `${slug(s.doc)}-L${s.line}`, first.name)) as Placed)
    }
  }

  // Two at a time: the machine is shared, and each run starts a Node process.
  const queue = [...runnable]
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const problem = await runOne(next, runTimeout)
      if (problem !== undefined) (results.get(next.snippet) as Problem[]).push(problem)
    }
  }
  await Promise.all([worker(), worker()])
  return results
}

/** Runs one compiled snippet in a clean environment: no tap, no coverage, no loaders. */
function runOne ({ snippet, path }: Placed, timeout: number): Promise<Problem | undefined> {
  const js = path.replace(/\.([mc]?)ts$/, '.$1js')
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TMPDIR: tmpdir() }
  return new Promise((resolve) => {
    execFile(process.execPath, [js], { cwd: dirname(path), env, timeout, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) return resolve(undefined)
      const how = err.killed ? `did not exit within ${timeout / 1000} s (a server or timer left open?)` : `exited with ${err.code ?? err.signal}`
      const output = `${stdout}${stderr}`.trimEnd().split('\n').slice(-30).map((l) => `    ${l}`).join('\n')
      resolve({ doc: snippet.doc, line: snippet.line, message: `run: ${how}\n${output}` })
    })
  })
}
