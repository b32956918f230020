/**
 * Route config keys that were probably meant as `permissions` or `public`.
 * Fastify keeps every config key and never says which ones nobody reads,
 * so `config: { permission: 'a:admin' }` would silently admit any valid
 * token. Two kinds:
 * - misspellings (case, or a couple of letters away): no plugin owns such a
 *   key, so they stop start-up (`misspelling`, called for every policy);
 * - synonyms another plugin or the app itself may own (`scopes`, `roles`,
 *   `isPublic`…): those only warn (`warnSynonyms`), and not on a route whose
 *   config states `permissions` or `public` itself: that says what it meant.
 */

import type { FastifyBaseLogger } from 'fastify'

export type PolicyKey = 'permissions' | 'public'

/** A config key that looks like one of ours, and the key it probably meant. */
export interface NearMiss {
  readonly key: string
  readonly meant: PolicyKey
}

const synonymsOf: ReadonlyMap<string, PolicyKey> = new Map([
  ...['perm', 'perms', 'permit', 'permits', 'scope', 'scopes', 'role', 'roles', 'rights', 'grants', 'requires',
    'requiredpermissions', 'requiredscopes', 'requiredroles', 'authorize', 'authorization'].map((key) => [key, 'permissions'] as const),
  ...['ispublic', 'noauth', 'skipauth', 'auth', 'anonymous', 'unauthenticated', 'unprotected'].map((key) => [key, 'public'] as const)
])

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions. */
export function editDistance (a: string, b: string): number {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)]
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      let value = Math.min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, rows[i - 2][j - 2] + 1)
      row.push(value)
    }
    rows.push(row)
  }
  return rows[a.length][b.length]
}

/** Whether `key` is within `limit` edits of `target`, ignoring case (cheap for keys of another length). */
function near (key: string, target: string, limit: number): boolean {
  return Math.abs(key.length - target.length) <= limit && editDistance(key.toLowerCase(), target) <= limit
}

/** The key `key` misspells, if it is one: any case of ours, or up to 2 letters from `permissions`, 1 from `public`. */
function misspelled (key: string): PolicyKey | undefined {
  if (key === 'permissions' || key === 'public') return undefined
  if (near(key, 'permissions', 2)) return 'permissions'
  if (near(key, 'public', 1)) return 'public'
  return undefined
}

/** The first key of `config` that misspells `permissions` or `public`. */
export function misspelling (config: Record<PropertyKey, unknown>): NearMiss | undefined {
  for (const key of Object.keys(config)) {
    const meant = misspelled(key)
    if (meant !== undefined) return { key, meant }
  }
  return undefined
}

const consequence: Readonly<Record<PolicyKey, string>> = {
  permissions: 'the route requires no permission, only a valid token',
  public: 'the route still requires a valid token'
}

/**
 * Warns about each key of `config` that is a synonym of ours, unless the
 * config states `permissions` or `public` itself. `warned` holds the
 * `url key` pairs already warned about: a GET route's HEAD twin shares its
 * config and needs no second line.
 */
export function warnSynonyms (log: FastifyBaseLogger, config: Record<PropertyKey, unknown>, route: string, url: string, warned: Set<string>): void {
  if (Object.hasOwn(config, 'permissions') || Object.hasOwn(config, 'public')) return
  for (const key of Object.keys(config)) {
    const meant = synonymsOf.get(key.toLowerCase())
    if (meant === undefined || warned.has(`${url} ${key}`)) continue
    warned.add(`${url} ${key}`)
    log.warn({ route, key, meant },
      `griddy-auth: ${route}: config.${key} is not read by fastify-griddy-auth, so ${consequence[meant]}; ` +
      `did you mean config.${meant}? (State config.permissions or config.public on the route to silence this.)`)
  }
}
