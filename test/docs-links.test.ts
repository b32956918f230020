/**
 * The documentation's links work where it is read: a document that ships in
 * the npm package (README.md, docs/, CHANGELOG.md) links relatively only to
 * files that ship too, and to the rest of the repository by absolute URL; a
 * link to the repository names a file that exists; every `#anchor` is a
 * heading of its target. Shipped documents never cite maintainers' documents
 * that do not ship (SPEC, "§", "the contract").
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join, posix } from 'node:path'
import t from 'tap'
import { anchors, extractLinks, INTERNAL_REFERENCES, proseLines, REPOSITORY, slug } from './docs/links'
import { documents, root } from './docs/snippets'

t.test('the link helpers read Markdown as GitHub does', async (t) => {
  const cases: Array<[string, string]> = [
    ['Quick start', 'quick-start'],
    ['Typed permission names (opt-in)', 'typed-permission-names-opt-in'],
    ['Each code: cause and fix', 'each-code-cause-and-fix'],
    ['`GRIDDY_AUTH_NO_TOKEN` and `request.auth`', 'griddy_auth_no_token-and-requestauth'],
    ['From `@fastify/jwt`', 'from-fastifyjwt'],
    ['Signing keys and identity-provider outages', 'signing-keys-and-identity-provider-outages'],
    ['[Links](x.md) keep their text', 'links-keep-their-text']
  ]
  for (const [heading, expected] of cases) t.equal(slug(heading), expected, heading)

  const md = ['# A', '## A', 'see [b](b.md#x) and `[not](a-link.md)`', '```md', '[not](either.md)', '## `code` head', '```', '[ref]: c.md', '<a id="here"></a>'].join('\n')
  t.same(extractLinks(md), [{ target: 'b.md#x', line: 3 }, { target: 'c.md', line: 8 }], 'links outside code only')
  t.same([...anchors(md)].sort(), ['a', 'a-1', 'here'], 'duplicate headings get -1; a heading inside a code block is none')
  t.same(proseLines('x `§` y\n```\n§\n```').join('|'), 'x  y|||', 'code is not prose')
})

const packed = new Set<string>((JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
  cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']
})) as Array<{ files: Array<{ path: string }> }>)[0]?.files.map((f) => f.path))
const shipped = (doc: string): boolean => packed.has(doc)
const docs = documents()
const anchorCache = new Map<string, Set<string>>()
const anchorsOf = (file: string): Set<string> => {
  if (!anchorCache.has(file)) anchorCache.set(file, anchors(readFileSync(join(root, file), 'utf8')))
  return anchorCache.get(file) as Set<string>
}
// Ignored by git: present here, absent on GitHub.
const UNTRACKED = /^(?:node_modules|dist|coverage|\.tap)(?:\/|$)/

/** What is wrong with one link of `doc`, if anything. */
function brokenLink (doc: string, target: string): string | undefined {
  const [path = '', anchor] = target.split('#', 2)
  const checkAnchor = (file: string): string | undefined =>
    anchor === undefined || !file.endsWith('.md') || anchorsOf(file).has(decodeURIComponent(anchor))
      ? undefined
      : `${file} has no heading #${anchor}`
  if (path === '') return checkAnchor(doc)
  if (target.startsWith(`${REPOSITORY}/`)) {
    const m = /^\/(blob|tree)\/main\/([^?#]+)$/.exec(path.slice(REPOSITORY.length))
    if (m === null) return undefined // issues, releases, compare views: not files
    const file = decodeURIComponent(m[2] as string).replace(/\/$/, '')
    if (UNTRACKED.test(file) || !existsSync(join(root, file))) return `${file} is not in the repository`
    if (statSync(join(root, file)).isDirectory() !== (m[1] === 'tree')) return `${file}: use /${m[1] === 'tree' ? 'blob' : 'tree'}/main/ for a ${m[1] === 'tree' ? 'file' : 'directory'}`
    return checkAnchor(file)
  }
  if (/^[a-z][\w+.-]*:/i.test(path)) return undefined // another site, mailto: not checked (no network)
  if (path.startsWith('/')) return 'a root-relative link works on neither GitHub nor npm: link relatively'
  const file = posix.normalize(posix.join(posix.dirname(doc), decodeURIComponent(path))).replace(/\/$/, '')
  if (shipped(doc)) {
    const kind = existsSync(join(root, file)) && statSync(join(root, file)).isDirectory() ? 'tree' : 'blob'
    if (!packed.has(file)) return `${file} is not in the npm package: link it as ${REPOSITORY}/${kind}/main/${file}`
  } else if (file.startsWith('..') || UNTRACKED.test(file) || !existsSync(join(root, file))) {
    return `${file} does not exist`
  }
  return checkAnchor(file)
}

t.test('the package ships its documentation', async (t) => {
  for (const doc of ['README.md', 'LICENSE', 'CHANGELOG.md']) t.ok(packed.has(doc), `${doc} is in the npm package`)
  for (const doc of docs.filter((d) => d.startsWith('docs/'))) t.ok(packed.has(doc), `${doc} is in the npm package`)
})

t.test('every link of the documentation resolves where the document is read', async (t) => {
  for (const doc of docs) {
    const broken = extractLinks(readFileSync(join(root, doc), 'utf8'))
      .flatMap(({ target, line }) => {
        const why = brokenLink(doc, target)
        return why === undefined ? [] : [`${doc}:${line}: (${target}) ${why}`]
      })
    t.same(broken, [], `${doc}${shipped(doc) ? ' (shipped)' : ''}: every link resolves`)
  }
})

t.test('shipped documents cite nothing that does not ship', async (t) => {
  for (const doc of docs.filter(shipped)) {
    const found = readFileSync(join(root, doc), 'utf8').split(/\r?\n/).flatMap((text, i) =>
      INTERNAL_REFERENCES.filter(({ pattern }) => pattern.test(text)).map(({ why }) => `${doc}:${i + 1}: ${why}`))
    t.same(found, [], `${doc} refers to no maintainers' document`)
  }
})
