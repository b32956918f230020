/**
 * An oracle written from SPEC (§4, §6, §7), not from lib/: given what a
 * client sends, the answers the plugin may give. It is a set, because SPEC
 * leaves a few things open (noted where they are); a property holds when the
 * plugin's answer is in the set.
 *
 * Deliberately independent of lib/: its own header grammar (a loop, not the
 * plugin's regular expression), its own strict base64url decoder, its own
 * signature check (node:crypto directly, not fast-jwt), its own claim rules.
 */
import { verify as rsaVerify, type KeyObject } from 'node:crypto'

export type FailureCode =
  | 'GRIDDY_AUTH_NO_TOKEN' | 'GRIDDY_AUTH_BAD_HEADER' | 'GRIDDY_AUTH_MALFORMED' | 'GRIDDY_AUTH_ALGORITHM'
  | 'GRIDDY_AUTH_UNKNOWN_KEY' | 'GRIDDY_AUTH_SIGNATURE' | 'GRIDDY_AUTH_EXPIRED' | 'GRIDDY_AUTH_NOT_YET_VALID'
  | 'GRIDDY_AUTH_MISSING_CLAIM' | 'GRIDDY_AUTH_ISSUER' | 'GRIDDY_AUTH_AUDIENCE' | 'GRIDDY_AUTH_AUTHORIZED_PARTY'
  | 'GRIDDY_AUTH_SESSION_ENDED'
  | 'GRIDDY_AUTH_FORBIDDEN' | 'GRIDDY_AUTH_UNAVAILABLE'

/** One acceptable answer: success, or a failure (with the claim for MISSING_CLAIM). */
export type Outcome =
  | { ok: true }
  | { ok: false, code: FailureCode, claim?: 'exp' | 'sub' }

export const ok: Outcome = { ok: true }
export const fail = (code: FailureCode, claim?: 'exp' | 'sub'): Outcome => claim === undefined ? { ok: false, code } : { ok: false, code, claim }

export function describe (outcome: Outcome): string {
  if (outcome.ok) return '200'
  return outcome.claim === undefined ? outcome.code : `${outcome.code}(${outcome.claim})`
}

export function sameOutcome (a: Outcome, b: Outcome): boolean {
  return describe(a) === describe(b)
}

/** What the deployment under test accepts (the plugin options, seen from the oracle). */
export interface Deployment {
  issuers: readonly string[]
  audiences: readonly string[]
  /** undefined or empty: no azp required. */
  authorizedParties?: readonly string[]
  /** Seconds. */
  clockTolerance: number
  permissionsClaim: string
  /** The verification keys by kid (the static JWKS). */
  keys: ReadonlyMap<string, KeyObject>
}

// ---------------------------------------------------------------------------
// §7: the Authorization header

const isOws = (c: string): boolean => c === ' ' || c === '\t'

/** RFC 6750 §2.1 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
export function isB64token (value: string): boolean {
  let i = 0
  while (i < value.length) {
    const c = value.charCodeAt(i)
    const tokenChar = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
      c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e || c === 0x2b || c === 0x2f
    if (!tokenChar) break
    i++
  }
  if (i === 0) return false
  while (i < value.length && value[i] === '=') i++
  return i === value.length
}

/**
 * The header value -> the token, or the failure (SPEC §7). "Surrounding
 * whitespace" is read as HTTP's OWS (space, tab): what an HTTP parser strips
 * from a field value; anything else around the credentials is junk.
 */
export function readAuthorization (value: string | undefined): { token: string } | { outcome: Outcome } {
  if (value === undefined) return { outcome: fail('GRIDDY_AUTH_NO_TOKEN') }
  let start = 0
  let end = value.length
  while (start < end && isOws(value[start] as string)) start++
  while (end > start && isOws(value[end - 1] as string)) end--
  const trimmed = value.slice(start, end)
  if (trimmed === '') return { outcome: fail('GRIDDY_AUTH_NO_TOKEN') }

  const scheme = 'bearer'
  for (let i = 0; i < scheme.length; i++) {
    const c = trimmed[i]
    if (c === undefined || (c !== scheme[i] && c !== (scheme[i] as string).toUpperCase())) return { outcome: fail('GRIDDY_AUTH_BAD_HEADER') }
  }
  let i = scheme.length
  if (trimmed[i] !== ' ') return { outcome: fail('GRIDDY_AUTH_BAD_HEADER') }
  while (trimmed[i] === ' ') i++
  const token = trimmed.slice(i)
  return isB64token(token) ? { token } : { outcome: fail('GRIDDY_AUTH_BAD_HEADER') }
}

// ---------------------------------------------------------------------------
// §6: the token

const base64urlAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * Strict RFC 4648 §5 decoding without padding: undefined for a character
 * outside the alphabet, a length of 4k+1, or pad bits that are not zero.
 */
export function strictBase64url (segment: string): Buffer | undefined {
  if (segment.length % 4 === 1) return undefined
  const bytes: number[] = []
  let bits = 0
  let acc = 0
  for (const c of segment) {
    const v = base64urlAlphabet.indexOf(c)
    if (v < 0) return undefined
    acc = (acc << 6) | v
    bits += 6
    if (bits >= 8) {
      bits -= 8
      bytes.push((acc >> bits) & 0xff)
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) return undefined
  return Buffer.from(bytes)
}

const segmentChars = /^[A-Za-z0-9_-]*$/

function jsonObject (bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'))
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

function isUtf8 (bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes)
    return true
  } catch {
    return false
  }
}

/** Adds `outcome` to `set` unless it is there. */
function add (set: Outcome[], outcome: Outcome): Outcome[] {
  if (!set.some((o) => sameOutcome(o, outcome))) set.push(outcome)
  return set
}

/**
 * The acceptable answers for a token sent to a route requiring `required`.
 * `nowMs` is the time the oracle is asked; generators keep times clear of
 * the exp/nbf edges, so the plugin's own clock a few ms later agrees.
 */
export function expectForToken (token: string, deployment: Deployment, required: readonly string[], nowMs: number): Outcome[] {
  const parts = token.split('.')
  if (parts.length !== 3) return [fail('GRIDDY_AUTH_MALFORMED')]
  const [h, p, s] = parts as [string, string, string]
  if (h === '' || p === '' || !segmentChars.test(h) || !segmentChars.test(p) || !segmentChars.test(s)) return [fail('GRIDDY_AUTH_MALFORMED')]

  // SPEC is silent on non-canonical base64url (a dangling character, non-zero pad bits) and on
  // invalid UTF-8: refusing them as malformed is right; reading them leniently, as Node's decoders
  // do, is tolerated when the result is then judged correctly.
  const lenient: Outcome[] = []
  // SPEC sets no size limit; Node refuses request headers over 16 KiB anyway, and the plugin
  // refuses a longer token (reachable through inject() or verify()) as malformed: tolerated.
  if (token.length > 16 * 1024) add(lenient, fail('GRIDDY_AUTH_MALFORMED'))
  const decode = (segment: string): Buffer => {
    const strict = strictBase64url(segment)
    if (strict !== undefined) return strict
    add(lenient, fail('GRIDDY_AUTH_MALFORMED'))
    return Buffer.from(segment, 'base64url')
  }
  const headerBytes = decode(h)
  const payloadBytes = decode(p)
  if (!isUtf8(headerBytes) || !isUtf8(payloadBytes)) add(lenient, fail('GRIDDY_AUTH_MALFORMED'))
  const header = jsonObject(headerBytes)
  const payload = jsonObject(payloadBytes)
  if (header === undefined || payload === undefined) return [fail('GRIDDY_AUTH_MALFORMED')]

  const judged = (outcome: Outcome): Outcome[] => add([...lenient], outcome)

  if (!Object.hasOwn(header, 'alg') || header.alg !== 'RS256') return judged(fail('GRIDDY_AUTH_ALGORITHM'))
  const kid = Object.hasOwn(header, 'kid') ? header.kid : undefined
  const key = typeof kid === 'string' && kid !== '' ? deployment.keys.get(kid) : undefined
  if (key === undefined) return judged(fail('GRIDDY_AUTH_UNKNOWN_KEY'))

  const signature = strictBase64url(s)
  if (signature === undefined) {
    // A non-canonical signature encoding: malformed, or a signature that does not verify, or
    // (leniently decoded) whatever the decoded bytes prove. Signature malleability: see docs.
    add(lenient, fail('GRIDDY_AUTH_MALFORMED'))
    add(lenient, fail('GRIDDY_AUTH_SIGNATURE'))
  }
  const signatureBytes = signature ?? Buffer.from(s, 'base64url')
  if (signatureBytes.length === 0 || !rsaVerify('sha256', Buffer.from(`${h}.${p}`), key, signatureBytes)) {
    return judged(fail('GRIDDY_AUTH_SIGNATURE'))
  }

  // crit (RFC 7515 §4.1.11): the plugin understands no extension, so any crit that names one is
  // refused, and so is a crit that is not a list of names. A crit of false, 0, "" or null names
  // nothing: SPEC only says one naming an unknown extension is refused, so either answer is fine.
  if (Object.hasOwn(header, 'crit')) {
    const crit = header.crit
    if (crit !== false && crit !== 0 && crit !== '' && crit !== null) return judged(fail('GRIDDY_AUTH_MALFORMED'))
    add(lenient, fail('GRIDDY_AUTH_MALFORMED'))
  }
  return judged(expectForClaims(payload, deployment, required, nowMs))
}

// ---------------------------------------------------------------------------
// §1, §6, §4: the claims of a token whose signature is proven

const own = (claims: Record<string, unknown>, name: string): unknown => Object.hasOwn(claims, name) ? claims[name] : undefined
const isTime = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)

/** SPEC §4: a list of strings (others dropped) or one whitespace-delimited string; anything else grants nothing. */
export function grantedBy (claim: unknown): string[] {
  if (typeof claim === 'string') return claim.split(/\s+/).filter((name) => name !== '')
  if (Array.isArray(claim)) return claim.filter((item): item is string => typeof item === 'string' && item !== '')
  return []
}

export function expectForClaims (claims: Record<string, unknown>, deployment: Deployment, required: readonly string[], nowMs: number): Outcome {
  const tolerance = deployment.clockTolerance * 1000
  const exp = own(claims, 'exp')
  if (!isTime(exp)) return fail('GRIDDY_AUTH_MISSING_CLAIM', 'exp')
  if (nowMs > exp * 1000 + tolerance) return fail('GRIDDY_AUTH_EXPIRED')
  if (Object.hasOwn(claims, 'nbf')) {
    const nbf = claims.nbf
    // SPEC is silent on a nbf that is not a number; the plugin documents MALFORMED (test/error-table.test.ts).
    if (!isTime(nbf)) return fail('GRIDDY_AUTH_MALFORMED')
    if (nowMs < nbf * 1000 - tolerance) return fail('GRIDDY_AUTH_NOT_YET_VALID')
  }
  const iss = own(claims, 'iss')
  if (typeof iss !== 'string' || !deployment.issuers.includes(iss)) return fail('GRIDDY_AUTH_ISSUER')
  const aud = own(claims, 'aud')
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []
  if (!audiences.some((a) => typeof a === 'string' && deployment.audiences.includes(a))) return fail('GRIDDY_AUTH_AUDIENCE')
  const sub = own(claims, 'sub')
  if (typeof sub !== 'string' || sub === '') return fail('GRIDDY_AUTH_MISSING_CLAIM', 'sub')
  const parties = deployment.authorizedParties ?? []
  if (parties.length > 0) {
    const azp = own(claims, 'azp')
    if (typeof azp !== 'string' || !parties.includes(azp)) return fail('GRIDDY_AUTH_AUTHORIZED_PARTY')
  }
  const granted = grantedBy(own(claims, deployment.permissionsClaim))
  if (!required.every((name) => granted.includes(name))) return fail('GRIDDY_AUTH_FORBIDDEN')
  return ok
}

/** The whole request: header value -> acceptable answers. */
export function expectForHeader (value: string | undefined, deployment: Deployment, required: readonly string[], nowMs: number): Outcome[] {
  const read = readAuthorization(value)
  if ('outcome' in read) return [read.outcome]
  return expectForToken(read.token, deployment, required, nowMs)
}
