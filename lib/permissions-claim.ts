/**
 * Where a token's permissions are read from (`permissionsClaim`, SPEC §3):
 * a claim name, a path into nested claims, or a function. Validated by
 * options.ts and compiled here once at start-up into one extractor, so the
 * request path never inspects the option again.
 */
import type { FastifyBaseLogger } from 'fastify'
import { grantedPermissions } from './permissions'

/**
 * A verified token's payload as a `permissionsClaim` function receives it.
 * Every claim is `unknown`, except `permissions`, typed as the shapes the
 * plugin reads by default (SPEC §4) so that `...(c.permissions ?? [])`
 * compiles. It holds what the token says: a space-delimited string would be
 * spread into characters, so split it first if your provider sends one.
 */
export type TokenClaims = Readonly<Record<string, unknown>> & {
  readonly permissions?: string | readonly string[]
}

/**
 * Reads the permissions from a verified payload; its result is read as a
 * permissions claim is (a list of strings, or one space-delimited string).
 * It must be synchronous; if it throws, the token grants nothing.
 */
export type PermissionsClaimFunction = (claims: TokenClaims) => unknown

/** A claim name (never split on dots), a path into nested claims, or a function. */
export type PermissionsClaim = string | readonly string[] | PermissionsClaimFunction

/** The compiled option: a verified payload -> its granted permissions. Never throws. */
export type PermissionsExtractor = (claims: Readonly<Record<string, unknown>>) => readonly string[]

/**
 * The value at `path`: each step an own property of a JSON object (not an
 * array), so `__proto__`, `constructor` or `prototype` can only ever name
 * a claim the token really carries, never reach Object.prototype.
 */
function readPath (claims: Readonly<Record<string, unknown>>, path: readonly string[]): unknown {
  let value: unknown = claims
  for (const step of path) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, step)) return undefined
    value = (value as Record<string, unknown>)[step]
  }
  return value
}

function describe (err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : `a thrown ${typeof err}`
}

/**
 * A user's function behind a guard: a throw (or a Promise, which cannot be
 * awaited on the synchronous path) grants nothing, and the first such
 * mistake is logged at `error`, once per plugin instance rather than per
 * request: the same function fails the same way for every token.
 */
function guarded (read: PermissionsClaimFunction, log: FastifyBaseLogger): PermissionsExtractor {
  let reported = false
  function report (problem: string): void {
    if (reported) return
    reported = true
    log.error({ option: 'permissionsClaim', problem },
      'griddy-auth: the permissionsClaim function failed; such tokens grant no permission (logged once)')
  }
  return (claims) => {
    try {
      const result = read(claims)
      if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
        // Left alone, a rejected Promise would be an unhandled rejection.
        Promise.resolve(result).catch(() => {})
        report('it returned a Promise: it must return the permissions synchronously')
        return grantedPermissions(undefined)
      }
      return grantedPermissions(result)
    } catch (err) {
      report(describe(err))
      return grantedPermissions(undefined)
    }
  }
}

/** Compiles a validated `permissionsClaim` (see options.ts) into its extractor. */
export function compilePermissionsClaim (source: PermissionsClaim, log: FastifyBaseLogger): PermissionsExtractor {
  if (typeof source === 'function') return guarded(source, log)
  if (typeof source === 'string' || source.length === 1) {
    const name = typeof source === 'string' ? source : source[0] as string
    return (claims) => grantedPermissions(Object.hasOwn(claims, name) ? claims[name] : undefined)
  }
  return (claims) => grantedPermissions(readPath(claims, source))
}
