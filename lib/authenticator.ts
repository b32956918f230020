/**
 * The verification pipeline (SPEC §6): token -> AuthContext.
 *
 *   cache -> shape -> alg -> kid -> key -> signature (+crit) -> time -> iss -> aud -> sub -> azp
 *
 * A token seen before and still alive answers from the cache, synchronously.
 * The steps up to `crit` run inside @fastify/jwt (signature.ts); nothing
 * from the payload is judged before the signature is proven, except the
 * unverified `iss` choosing a configured issuer's key set (keys.ts).
 */
import { authError, type GriddyAuthError, type GriddyAuthErrorCode, type Rejection } from './errors'
import type { ResolvedOptions } from './options'
import { isRejection, type SignatureVerifier } from './signature'
import { checkClaims } from './claims'
import { TokenCache } from './token-cache'
import { createAuthContext, type AuthContext } from './auth-context'
import type { PermissionsExtractor } from './permissions-claim'

/** Tokens larger than this are refused unread (a Node request header is at most 16 KiB anyway). */
export const maxTokenLength = 16 * 1024

export interface Authenticator {
  /** The context of a valid token: synchronous on a cache hit. Throws/rejects with a GriddyAuthError. */
  authenticate (token: string): AuthContext | Promise<AuthContext>
  /** The context of a token verified before and still alive, if `candidate` is exactly such a token. */
  cached (candidate: string): AuthContext | undefined
  /** The error for `code` with this deployment's realm. */
  error (code: GriddyAuthErrorCode | Rejection): GriddyAuthError
}

export function createAuthenticator (options: ResolvedOptions, verifySignature: SignatureVerifier, permissionsOf: PermissionsExtractor): Authenticator {
  const cache = new TokenCache<AuthContext>(options.cacheSize)
  const { realm, clockToleranceMs } = options

  function error (failure: GriddyAuthErrorCode | Rejection): GriddyAuthError {
    return typeof failure === 'string' ? authError(failure, realm) : authError(failure.code, realm, failure)
  }

  async function verify (token: string): Promise<AuthContext> {
    const verified = await verifySignature(token)
    if (isRejection(verified)) throw error(verified)
    const { claims, key } = verified
    const rejection = checkClaims(claims, options, Date.now())
    if (rejection !== undefined) throw error(rejection)
    const context = createAuthContext(claims, permissionsOf)
    cache.set(token, { value: context, expiresAt: (claims.exp as number) * 1000 + clockToleranceMs, key })
    return context
  }

  function authenticate (token: string): AuthContext | Promise<AuthContext> {
    const cached = cache.get(token, Date.now())
    if (cached !== undefined) return cached
    if (token.length > maxTokenLength) throw error('GRIDDY_AUTH_MALFORMED')
    return verify(token)
  }

  return { authenticate, cached: (candidate) => cache.get(candidate, Date.now()), error }
}
