/**
 * Every failure the plugin can answer with, in one table (SPEC §7).
 *
 * Each entry carries its HTTP status, its fixed message and the RFC 6750
 * challenge kind, so the `WWW-Authenticate` header is derived from the code
 * and can never disagree with it.
 */

type Challenge = 'none' | 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'unavailable'

interface ErrorSpec {
  readonly statusCode: number
  readonly message: string
  readonly challenge: Challenge
}

const table = {
  GRIDDY_AUTH_NO_TOKEN: { statusCode: 401, message: 'Authentication credentials were not provided.', challenge: 'none' },
  GRIDDY_AUTH_BAD_HEADER: { statusCode: 401, message: 'Authorization header must be: Bearer <token>.', challenge: 'invalid_request' },
  GRIDDY_AUTH_MALFORMED: { statusCode: 401, message: 'Token is malformed.', challenge: 'invalid_token' },
  GRIDDY_AUTH_ALGORITHM: { statusCode: 401, message: 'Invalid token algorithm.', challenge: 'invalid_token' },
  GRIDDY_AUTH_UNKNOWN_KEY: { statusCode: 401, message: 'Signing key not found.', challenge: 'invalid_token' },
  GRIDDY_AUTH_SIGNATURE: { statusCode: 401, message: 'Invalid token signature.', challenge: 'invalid_token' },
  // Verbatim from the Griddy docs, without a final period.
  GRIDDY_AUTH_EXPIRED: { statusCode: 401, message: 'Token has expired', challenge: 'invalid_token' },
  GRIDDY_AUTH_NOT_YET_VALID: { statusCode: 401, message: 'Token is not yet valid.', challenge: 'invalid_token' },
  GRIDDY_AUTH_MISSING_CLAIM: { statusCode: 401, message: 'Token is missing required claim: %s.', challenge: 'invalid_token' },
  GRIDDY_AUTH_ISSUER: { statusCode: 401, message: 'Invalid issuer.', challenge: 'invalid_token' },
  GRIDDY_AUTH_AUDIENCE: { statusCode: 401, message: 'Invalid audience.', challenge: 'invalid_token' },
  GRIDDY_AUTH_AUTHORIZED_PARTY: { statusCode: 401, message: 'Invalid authorized party.', challenge: 'invalid_token' },
  // SPEC §11: the token's session, or its user's sessions, were ended (sign-out, revocation).
  GRIDDY_AUTH_SESSION_ENDED: { statusCode: 401, message: 'Session has ended.', challenge: 'invalid_token' },
  GRIDDY_AUTH_FORBIDDEN: { statusCode: 403, message: 'Insufficient permissions.', challenge: 'insufficient_scope' },
  GRIDDY_AUTH_UNAVAILABLE: { statusCode: 503, message: 'Signing keys are unavailable; try again shortly.', challenge: 'unavailable' }
} as const satisfies Record<string, ErrorSpec>

/** The stable identifier of a failure: switch on this, never on the message. */
export type GriddyAuthErrorCode = keyof typeof table

/** Every code the plugin can produce, for exhaustive handling and documentation. */
export const errorCodes = Object.freeze(Object.keys(table)) as readonly GriddyAuthErrorCode[]

/** What a failure may say beyond its code: the claim, the scope, the wait. */
export interface ErrorDetails {
  /** `GRIDDY_AUTH_MISSING_CLAIM`: which claim. */
  claim?: string
  /** `GRIDDY_AUTH_FORBIDDEN`: the permissions that were required. */
  required?: readonly string[]
  /** `GRIDDY_AUTH_UNAVAILABLE`: seconds until the next JWKS attempt. */
  retryAfter?: number
}

/**
 * A Fastify-style error (`statusCode`, `code`) with the headers the answer
 * needs. Fastify's default error handler applies `headers`; the plugin also
 * applies them in an `onError` hook so a custom `setErrorHandler` keeps them.
 *
 * @example
 * app.setErrorHandler((err, request, reply) => {
 *   if (err instanceof GriddyAuthError) return reply.code(err.statusCode).send({ error: err.code })
 *   throw err
 * })
 */
export class GriddyAuthError extends Error {
  readonly code: GriddyAuthErrorCode
  readonly statusCode: number
  readonly headers: Readonly<Record<string, string>>

  constructor (code: GriddyAuthErrorCode, message: string, headers: Readonly<Record<string, string>>) {
    // No stack: it would only describe the plugin's internals, must never reach a
    // client anyway, and capturing it made an invalid token dearer than a valid one.
    const stackTraceLimit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(message)
    Error.stackTraceLimit = stackTraceLimit
    this.code = code
    this.statusCode = table[code].statusCode
    this.headers = headers
  }

  get name (): string {
    return 'GriddyAuthError'
  }
}

/** RFC 7230 quoted-string, with anything a header cannot carry replaced. */
function quote (value: string): string {
  return '"' + value.replace(/[\\"]/g, '\\$&').replace(/[^\x20-\x7e]/g, '?') + '"'
}

/** A failure found by one step of the pipeline, before it becomes an error. */
export interface Rejection extends ErrorDetails {
  code: GriddyAuthErrorCode
}

/** The headers of one answer, shared by every error that says the same thing: never written to. */
type Headers = Readonly<Record<string, string>>

/** The challenge for `code` with `details`, built from scratch. */
function buildHeaders (spec: ErrorSpec, message: string, realm: string | undefined, details: ErrorDetails): Headers {
  const params: string[] = realm === undefined ? [] : [`realm=${quote(realm)}`]
  switch (spec.challenge) {
    case 'none':
      break
    case 'invalid_request':
    case 'invalid_token':
      params.push(`error="${spec.challenge}"`, `error_description=${quote(message)}`)
      break
    case 'insufficient_scope':
      params.push('error="insufficient_scope"', `scope=${quote((details.required ?? []).join(' '))}`)
      break
    case 'unavailable':
      return Object.freeze({ 'retry-after': String(Math.max(1, Math.ceil(details.retryAfter ?? 1))) })
  }
  return Object.freeze({ 'www-authenticate': params.length === 0 ? 'Bearer' : `Bearer ${params.join(', ')}` })
}

/**
 * Builds the error for `code`. `realm` is the configured realm (already
 * validated at start-up), included in every challenge.
 */
export function authError (code: GriddyAuthErrorCode, realm: string | undefined, details: ErrorDetails = {}): GriddyAuthError {
  const spec: ErrorSpec = table[code]
  const message = details.claim === undefined ? spec.message : spec.message.replace('%s', details.claim)
  return new GriddyAuthError(code, message, buildHeaders(spec, message, realm, details))
}

/**
 * The errors of one deployment (one realm), for the request path: what an
 * answer says depends only on its code, the missing claim or the required
 * permissions, so each message and challenge is built once and reused. A
 * refusal then costs one small object (no stack, no string building), and
 * an attacker's flood of bad tokens nothing more. Only `retryAfter` changes
 * from one answer to the next; those are built each time.
 */
export function authErrors (realm: string | undefined): (code: GriddyAuthErrorCode, details?: ErrorDetails) => GriddyAuthError {
  const byKey = new Map<string, { message: string, headers: Headers }>()
  // A route's required permissions are one frozen array: its 403 is keyed by that array.
  const byRequired = new WeakMap<readonly string[], Headers>()
  const forbidden = table.GRIDDY_AUTH_FORBIDDEN

  return function error (code, details) {
    if (details !== undefined) {
      if (details.retryAfter !== undefined) return authError(code, realm, details)
      const required = details.required
      if (required !== undefined && code === 'GRIDDY_AUTH_FORBIDDEN') {
        let headers = byRequired.get(required)
        if (headers === undefined) {
          headers = buildHeaders(forbidden, forbidden.message, realm, details)
          if (Object.isFrozen(required)) byRequired.set(required, headers)
        }
        return new GriddyAuthError(code, forbidden.message, headers)
      }
    }
    const claim = details?.claim
    const key = claim === undefined ? code : `${code} ${claim}`
    let built = byKey.get(key)
    if (built === undefined) {
      const spec: ErrorSpec = table[code]
      const message = claim === undefined ? spec.message : spec.message.replace('%s', claim)
      built = { message, headers: buildHeaders(spec, message, realm, claim === undefined ? {} : { claim }) }
      // Claims are the plugin's own names (exp, sub): the map stays a few entries long.
      byKey.set(key, built)
    }
    return new GriddyAuthError(code, built.message, built.headers)
  }
}
