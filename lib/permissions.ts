/**
 * Permissions: the token's claim, normalised once per token, and the route's
 * requirement, validated once per route (SPEC §4). Names are compared
 * exactly: case-sensitive, no wildcards, no prefixes.
 */

const whitespace = /\s+/
const frozenEmpty: readonly string[] = Object.freeze([])

/**
 * The permissions a claim grants: a list of strings (non-strings dropped) or
 * one whitespace-delimited string. Any other shape grants nothing.
 */
export function grantedPermissions (claim: unknown): readonly string[] {
  if (Array.isArray(claim)) {
    // The common shape, a frozen list of names (the verified payload is deep-frozen
    // before this runs), is already what the context holds: no copy.
    if (Object.isFrozen(claim) && claim.every(isName)) return claim as readonly string[]
    return Object.freeze(claim.filter(isName))
  }
  if (typeof claim === 'string') return Object.freeze(claim.split(whitespace).filter(isName))
  return frozenEmpty
}

function isName (item: unknown): item is string {
  return typeof item === 'string' && item.length > 0
}

/**
 * A requirement as written in route config or passed to `authorize()`:
 * undefined, one name, or a list of names. Throws a TypeError naming `where`
 * for anything else. `strict` (route config, checked at start-up) also
 * refuses empty names and names with whitespace, which no space-delimited
 * claim could grant; `authorize()` takes them, since they may be built from
 * request data, and simply compares them exactly.
 */
export function parseRequirement (value: unknown, where: string, strict: boolean): readonly string[] {
  if (value === undefined) return frozenEmpty
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list)) {
    throw new TypeError(`fastify-griddy-auth: ${where} must be a permission name or an array of names, got ${typeof value}`)
  }
  for (const name of list) {
    if (typeof name !== 'string') {
      throw new TypeError(`fastify-griddy-auth: ${where} must hold permission names (strings), got ${typeof name}`)
    }
    if (strict && (name.length === 0 || whitespace.test(name))) {
      throw new TypeError(`fastify-griddy-auth: ${where} must hold non-empty permission names without whitespace, got ${JSON.stringify(name)}`)
    }
  }
  return Object.freeze([...new Set(list as string[])])
}

/** True when every required name is granted. */
export function grants (granted: readonly string[], required: readonly string[]): boolean {
  for (const name of required) {
    if (!granted.includes(name)) return false
  }
  return true
}
