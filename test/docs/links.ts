/**
 * Links and anchors of the Markdown documentation, as GitHub and the npm
 * page resolve them. Code blocks and code spans are not prose: links inside
 * them are not links.
 */

export const REPOSITORY = 'https://github.com/griddy/fastify-griddy-auth'

export interface Link {
  readonly target: string
  /** 1-based line in the document. */
  readonly line: number
}

/** The document's lines with fenced blocks blanked and code spans removed (line numbers kept). */
export function proseLines (markdown: string): string[] {
  const lines = markdown.split(/\r?\n/)
  let fence: RegExp | undefined
  return lines.map((line) => {
    if (fence !== undefined) {
      if (fence.test(line)) fence = undefined
      return ''
    }
    const open = /^\s*(`{3,}|~{3,})/.exec(line)
    if (open !== null) {
      const marker = open[1] as string
      fence = new RegExp(`^\\s*${marker[0] === '`' ? '`' : '~'}{${marker.length},}\\s*$`)
      return ''
    }
    return line.replace(/(`+)(?:(?!\1)[\s\S])*?\1/g, '')
  })
}

/** Inline links `[text](target "title")`, images, and reference definitions `[label]: target`. */
export function extractLinks (markdown: string): Link[] {
  const links: Link[] = []
  proseLines(markdown).forEach((text, i) => {
    for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ target: m[1] as string, line: i + 1 })
    const ref = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(text)
    if (ref !== null) links.push({ target: ref[1] as string, line: i + 1 })
    for (const m of text.matchAll(/<a\s[^>]*href="([^"]+)"/g)) links.push({ target: m[1] as string, line: i + 1 })
  })
  return links
}

/** GitHub's heading anchor for a heading's text (github-slugger's rules). */
export function slug (heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links keep their text
    .replace(/<[^>]+>/g, '') // HTML tags
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-')
}

const HEADING = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/

/** Every anchor a document defines: its headings (deduplicated as GitHub does) and explicit ids. */
export function anchors (markdown: string): Set<string> {
  const found = new Set<string>()
  const seen = new Map<string, number>()
  const raw = markdown.split(/\r?\n/)
  proseLines(markdown).forEach((line, i) => {
    // A blank prose line may be a fenced one; code spans are part of a heading's text, so read it raw.
    const heading = line === '' ? null : HEADING.exec(raw[i] as string)
    if (heading !== null) {
      const base = slug(heading[1] as string)
      const n = seen.get(base) ?? 0
      seen.set(base, n + 1)
      found.add(n === 0 ? base : `${base}-${n}`)
    }
    for (const m of line.matchAll(/<a\s[^>]*(?:id|name)="([^"]+)"/g)) found.add(m[1] as string)
  })
  return found
}

/** Words of the maintainers' documents that mean nothing to someone reading the package. */
export const INTERNAL_REFERENCES: ReadonlyArray<{ pattern: RegExp, why: string }> = [
  { pattern: /\bSPEC\b/, why: 'SPEC.md does not ship' },
  { pattern: /§/, why: '"§" cites a section of a document the reader does not have (write "RFC 6750, section 3")' },
  { pattern: /\bthe contract\b/i, why: '"the contract" is a maintainers\' document that does not ship' },
  { pattern: /STACK-NOTES/, why: 'STACK-NOTES.md does not ship' }
]
