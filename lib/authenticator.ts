/**
 * The verification pipeline (SPEC §6): token -> AuthContext.
 *
 *   cache -> shape -> alg -> kid -> key -> signature (+crit) -> time -> iss -> aud -> sub -> azp
 *
 * A token seen before and still alive answers from the cache, synchronously.
 * Nothing from the payload is judged before the signature is proven, except
 * the unverified `iss` choosing a configured issuer's key set (keys.ts).
 */
import { authError, type GriddyAuthError, type GriddyAuthErrorCode, type Rejection } from './errors'
import type { ResolvedOptions } from './options'
import type { KeyResolver } from './keys'
import type { SignatureVerifier } from './signature'
import { codeOfJwtError } from './signature'
import type { SigningKey } from './jwk'
import { decodeUnverified } from './token-shape'
import { checkClaims } from './claims'
import { TokenCache } from './token-cache'
import { createAuthContext, type AuthContext } from './auth-context'

export interface Authenticator {
  /** The context of a valid token: synchronous on a cache hit. Throws/rejects with a GriddyAuthError. */
  authenticate (token: string): AuthContext | Promise<AuthContext>
  /** The error for `code` with this deployment's realm. */
  error (code: GriddyAuthErrorCode | Rejection): GriddyAuthError
}

function isRejection (value: SigningKey | Rejection): value is Rejection {
  return (value as Rejection).code !== undefined
}

export function createAuthenticator (options: ResolvedOptions, keys: KeyResolver, verifySignature: SignatureVerifier): Authenticator {
  const cache = new TokenCache<AuthContext>(options.cacheSize)
  const { realm, clockToleranceMs, permissionsClaim } = options

  function error (failure: GriddyAuthErrorCode | Rejection): GriddyAuthError {
    return typeof failure === 'string' ? authError(failure, realm) : authError(failure.code, realm, failure)
  }

  async function verifyWithKey (token: string, key: SigningKey): Promise<AuthContext> {
    let claims: Record<string, unknown>
    try {
      claims = await verifySignature(token, key.pem)
    } catch (err) {
      throw error(codeOfJwtError(err as { code?: unknown }))
    }
    const rejection = checkClaims(claims, options, Date.now())
    if (rejection !== undefined) throw error(rejection)
    const context = createAuthContext(claims, permissionsClaim)
    cache.set(token, { value: context, expiresAt: (claims.exp as number) * 1000 + clockToleranceMs, key })
    return context
  }

  function authenticate (token: string): AuthContext | Promise<AuthContext> {
    const cached = cache.get(token, Date.now())
    if (cached !== undefined) return cached

    const unverified = decodeUnverified(token)
    if (unverified === undefined) throw error('GRIDDY_AUTH_MALFORMED')
    const { header, payload } = unverified
    if (header.alg !== 'RS256') throw error('GRIDDY_AUTH_ALGORITHM')
    if (typeof header.kid !== 'string' || header.kid.length === 0) throw error('GRIDDY_AUTH_UNKNOWN_KEY')

    const found = keys.lookup(header.kid, payload.iss)
    if (!(found instanceof Promise)) {
      if (isRejection(found)) throw error(found)
      return verifyWithKey(token, found)
    }
    return found.then((key) => {
      if (isRejection(key)) throw error(key)
      return verifyWithKey(token, key)
    })
  }

  return { authenticate, error }
}
