/**
 * What a route handler learns about the caller (SPEC §5), built once per
 * verified token and shared by every request that reuses the token, hence
 * deeply frozen.
 */
import type { PermissionsExtractor } from './permissions-claim'

export interface AuthContext {
  /** The user id: the token's `sub`. */
  readonly userId: string
  /** The session id: the token's `sid`, when it is a string. */
  readonly sessionId?: string
  /** The granted permissions, normalised to strings. */
  readonly permissions: readonly string[]
  /** The whole verified payload. */
  readonly claims: Readonly<Record<string, unknown>>
}

/** Freezes a JSON value all the way down, without recursion (a deep payload cannot overflow the stack). */
function deepFreeze (root: object): void {
  const pending: object[] = [root]
  for (let value = pending.pop(); value !== undefined; value = pending.pop()) {
    Object.freeze(value)
    for (const child of Object.values(value)) {
      if (child !== null && typeof child === 'object') pending.push(child)
    }
  }
}

export function createAuthContext (claims: Record<string, unknown>, permissionsOf: PermissionsExtractor): AuthContext {
  deepFreeze(claims)
  const { sub, sid } = claims
  const context = typeof sid === 'string'
    ? { userId: sub as string, sessionId: sid, permissions: permissionsOf(claims), claims }
    : { userId: sub as string, permissions: permissionsOf(claims), claims }
  return Object.freeze(context)
}
