/**
 * The verification pipeline (SPEC §6): token -> AuthContext.
 *
 *   cache -> shape -> alg -> kid -> key -> signature (+crit) -> time -> iss -> aud -> sub -> azp -> ended session
 *
 * A token seen before and still alive answers from the cache, synchronously;
 * whether its session was ended is judged on every request, cache hits too.
 * The steps up to `crit` run inside @fastify/jwt (signature.ts); nothing
 * from the payload is judged before the signature is proven, except the
 * unverified `iss` choosing a configured issuer's key set (keys.ts).
 */
import { authErrors, GriddyAuthError, type GriddyAuthErrorCode, type Rejection } from './errors'
import type { ResolvedOptions } from './options'
import { isRejection, type SignatureVerifier, type Verified } from './signature'
import { checkClaims } from './claims'
import { TokenCache } from './token-cache'
import { createAuthContext, type AuthContext } from './auth-context'
import type { PermissionsExtractor } from './permissions-claim'
import type { Sessions } from './sessions'

/** Tokens larger than this are refused unread (a Node request header is at most 16 KiB anyway). */
export const maxTokenLength = 16 * 1024

/**
 * What authentication comes to: the caller's context, or the error to answer
 * with. A refusal is a value, not a throw or a rejection: each throw costs V8
 * a message object and a walk of the stack, each rejected promise a round
 * through Node's unhandled-rejection tracking, and a forged token already
 * costs two throws inside fast-jwt. Only the public edges (verify(),
 * authorize()) turn a refusal into a rejection.
 */
export type Outcome = AuthContext | GriddyAuthError

export interface Authenticator {
  /** The outcome for a token: synchronous on a cache hit. Never throws or rejects for a refusal. */
  authenticate (token: string): Outcome | Promise<Outcome>
  /** The outcome for a token verified before and still alive, if `candidate` is exactly such a token. */
  cached (candidate: string): Outcome | undefined
  /** `authenticate` for a token `cached` has just missed: the cache is not asked twice. */
  verifyUncached (token: string): Outcome | Promise<Outcome>
  /** The error for `code` with this deployment's realm. */
  error (code: GriddyAuthErrorCode | Rejection): GriddyAuthError
}

export function createAuthenticator (options: ResolvedOptions, verifySignature: SignatureVerifier, permissionsOf: PermissionsExtractor, sessions?: Sessions): Authenticator {
  const cache = new TokenCache<AuthContext>(options.cacheSize)
  const { clockToleranceMs } = options
  const errorOf = authErrors(options.realm)

  function error (failure: GriddyAuthErrorCode | Rejection): GriddyAuthError {
    return typeof failure === 'string' ? errorOf(failure) : errorOf(failure.code, failure)
  }

  /** The last step (SPEC §6, §11): a verified token whose session or user was ended is refused. */
  function judged (context: AuthContext, now: number): Outcome {
    return sessions !== undefined && sessions.refuses(context, now) ? errorOf('GRIDDY_AUTH_SESSION_ENDED') : context
  }

  /** What a verification proves, judged; a verified token is cached before its session is judged. */
  function accept (token: string, verified: Verified | Rejection): Outcome {
    if (isRejection(verified)) return error(verified)
    const { claims, key } = verified
    const now = Date.now()
    const rejection = checkClaims(claims, options, now)
    if (rejection !== undefined) return error(rejection)
    const context = createAuthContext(claims, permissionsOf)
    cache.set(token, { value: context, expiresAt: (claims.exp as number) * 1000 + clockToleranceMs, key })
    return judged(context, now)
  }

  function cached (candidate: string): Outcome | undefined {
    const now = Date.now()
    const context = cache.get(candidate, now)
    return context === undefined ? undefined : judged(context, now)
  }

  function verifyUncached (token: string): Outcome | Promise<Outcome> {
    if (token.length > maxTokenLength) return errorOf('GRIDDY_AUTH_MALFORMED')
    return verifySignature(token).then((verified) => accept(token, verified))
  }

  function authenticate (token: string): Outcome | Promise<Outcome> {
    return cached(token) ?? verifyUncached(token)
  }

  return { authenticate, cached, verifyUncached, error }
}

/** For the public edges: the context, or the refusal thrown. */
export function unwrap (outcome: Outcome): AuthContext {
  if (outcome instanceof GriddyAuthError) throw outcome
  return outcome
}
