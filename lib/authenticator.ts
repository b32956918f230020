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
import { authErrors, type GriddyAuthError, type GriddyAuthErrorCode, type Rejection } from './errors'
import type { ResolvedOptions } from './options'
import { isRejection, type SignatureVerifier } from './signature'
import { checkClaims } from './claims'
import { TokenCache } from './token-cache'
import { createAuthContext, type AuthContext } from './auth-context'
import type { PermissionsExtractor } from './permissions-claim'
import type { Sessions } from './sessions'

/** Tokens larger than this are refused unread (a Node request header is at most 16 KiB anyway). */
export const maxTokenLength = 16 * 1024

export interface Authenticator {
  /** The context of a valid token: synchronous on a cache hit. Throws/rejects with a GriddyAuthError. */
  authenticate (token: string): AuthContext | Promise<AuthContext>
  /** The context of a token verified before and still alive, if `candidate` is exactly such a token. Throws if its session was ended. */
  cached (candidate: string): AuthContext | undefined
  /** `authenticate` for a token `cached` has just missed: the cache is not asked twice. */
  verifyUncached (token: string): Promise<AuthContext>
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
  function judged (context: AuthContext, now: number): AuthContext {
    if (sessions !== undefined && sessions.refuses(context, now)) throw errorOf('GRIDDY_AUTH_SESSION_ENDED')
    return context
  }

  async function verify (token: string): Promise<AuthContext> {
    const verified = await verifySignature(token)
    if (isRejection(verified)) throw error(verified)
    const { claims, key } = verified
    const now = Date.now()
    const rejection = checkClaims(claims, options, now)
    if (rejection !== undefined) throw error(rejection)
    const context = createAuthContext(claims, permissionsOf)
    cache.set(token, { value: context, expiresAt: (claims.exp as number) * 1000 + clockToleranceMs, key })
    return judged(context, now)
  }

  function cached (candidate: string): AuthContext | undefined {
    const now = Date.now()
    const context = cache.get(candidate, now)
    return context === undefined ? undefined : judged(context, now)
  }

  function verifyUncached (token: string): Promise<AuthContext> {
    if (token.length > maxTokenLength) return Promise.reject(errorOf('GRIDDY_AUTH_MALFORMED'))
    return verify(token)
  }

  function authenticate (token: string): AuthContext | Promise<AuthContext> {
    const context = cached(token)
    if (context !== undefined) return context
    if (token.length > maxTokenLength) throw errorOf('GRIDDY_AUTH_MALFORMED')
    return verify(token)
  }

  return { authenticate, cached, verifyUncached, error }
}
