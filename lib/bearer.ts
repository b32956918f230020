/**
 * `Authorization` header -> token (SPEC §7): the scheme word is matched
 * case-insensitively and may be followed by one or more spaces; surrounding
 * whitespace is ignored; the token must be one RFC 6750 b64token. Tokens are
 * never read from anywhere else (query string, cookies).
 */
import type { GriddyAuthErrorCode } from './errors'

const bearer = /^[ \t]*bearer +([A-Za-z0-9\-._~+/]+=*)[ \t]*$/i
const blank = /^[ \t]*$/

/** The token, or the code of what is wrong with the header. */
export function readBearer (header: string | string[] | undefined): string | { code: GriddyAuthErrorCode } {
  if (header === undefined || (typeof header === 'string' && blank.test(header))) {
    return { code: 'GRIDDY_AUTH_NO_TOKEN' }
  }
  // An array means the header was sent twice: ambiguous, so refused.
  const match = typeof header === 'string' ? bearer.exec(header) : null
  return match === null ? { code: 'GRIDDY_AUTH_BAD_HEADER' } : match[1] as string
}

/**
 * True when the request carried `Authorization` more than once. Node keeps
 * only the first in `request.headers` and drops the rest, so the raw list
 * is the only place a second one shows; ambiguous, it is refused whichever
 * comes first. Cheap: a length test skips nearly every other name.
 */
export function sentTwice (rawHeaders: readonly string[]): boolean {
  let seen = false
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    // The two spellings clients send are compared first: toLowerCase goes through ICU.
    if (name.length === 13 && (name === 'authorization' || name === 'Authorization' || name.toLowerCase() === 'authorization')) {
      if (seen) return true
      seen = true
    }
  }
  return false
}
