/**
 * The claim policy, applied only to a payload whose signature is proven
 * (SPEC §6): time (`exp`, `nbf`), then `iss`, `aud`, `sub`, `azp`.
 */
import type { Rejection } from './errors'

export interface ClaimPolicy {
  readonly issuers: ReadonlySet<string>
  readonly audiences: ReadonlySet<string>
  readonly authorizedParties: ReadonlySet<string> | undefined
  readonly clockToleranceMs: number
}

function isTime (value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

function hasAudience (aud: unknown, audiences: ReadonlySet<string>): boolean {
  if (typeof aud === 'string') return audiences.has(aud)
  if (!Array.isArray(aud)) return false
  for (const item of aud) {
    if (typeof item === 'string' && audiences.has(item)) return true
  }
  return false
}

/** The first claim that fails, or undefined when the payload is acceptable at `now` (ms). */
export function checkClaims (payload: Readonly<Record<string, unknown>>, policy: ClaimPolicy, now: number): Rejection | undefined {
  const { exp, nbf, iss, sub, azp } = payload
  if (!isTime(exp)) return { code: 'GRIDDY_AUTH_MISSING_CLAIM', claim: 'exp' }
  if (now > exp * 1000 + policy.clockToleranceMs) return { code: 'GRIDDY_AUTH_EXPIRED' }
  if (nbf !== undefined) {
    if (!isTime(nbf)) return { code: 'GRIDDY_AUTH_MALFORMED' }
    if (now < nbf * 1000 - policy.clockToleranceMs) return { code: 'GRIDDY_AUTH_NOT_YET_VALID' }
  }
  if (typeof iss !== 'string' || !policy.issuers.has(iss)) return { code: 'GRIDDY_AUTH_ISSUER' }
  if (!hasAudience(payload.aud, policy.audiences)) return { code: 'GRIDDY_AUTH_AUDIENCE' }
  if (typeof sub !== 'string' || sub.length === 0) return { code: 'GRIDDY_AUTH_MISSING_CLAIM', claim: 'sub' }
  if (policy.authorizedParties !== undefined && (typeof azp !== 'string' || !policy.authorizedParties.has(azp))) {
    return { code: 'GRIDDY_AUTH_AUTHORIZED_PARTY' }
  }
  return undefined
}
