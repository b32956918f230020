/**
 * Clerk session tokens: the active organization's permissions, decoded as
 * Clerk's own SDK decodes them (`@clerk/shared`, src/jwtPayloadParser.ts:
 * `__experimental_JWTPayloadToAuthObjectProperties` with `parsePermissions`,
 * `buildOrgPermissions`, and src/authorization.ts: `splitByScope`), without
 * depending on it. test/clerk.test.ts compares the two on generated claims.
 */

/** An own property of an object, never one inherited from its prototype. */
function own (value: unknown, key: string): unknown {
  return value !== null && typeof value === 'object' && Object.hasOwn(value, key)
    ? (value as Record<string, unknown>)[key]
    : undefined
}

/**
 * A comma-separated claim, read as Clerk reads it: a falsy value is absent,
 * and Clerk calls `.split` on any other, so a truthy non-string is a
 * TypeError there and here.
 */
function commaList (value: unknown, claim: string): string[] {
  if (typeof value !== 'string') throw new TypeError(`clerkOrganizationPermissions: the "${claim}" claim must be a string`)
  return value.split(',')
}

/**
 * The organization features of `fea` ("o:billing,u:profile,ou:teams"): the
 * scopes `o`, `ou` and `uo`, in order. An element without a colon is an
 * error, as in Clerk's `splitByScope`.
 */
function organizationFeatures (fea: unknown): string[] {
  const features: string[] = []
  if (!fea) return features
  for (const element of commaList(fea, 'fea')) {
    const part = element.trim()
    const colon = part.indexOf(':')
    if (colon === -1) throw new TypeError('clerkOrganizationPermissions: an element of the "fea" claim has no scope (no colon)')
    const scope = part.slice(0, colon)
    if (scope === 'o' || scope === 'ou' || scope === 'uo') features.push(part.slice(colon + 1))
  }
  return features
}

const decimal = /^\d+$/

/**
 * The organization permissions of a Clerk session token, as
 * `org:<feature>:<permission>`, in Clerk's order.
 *
 * - v2 tokens (`v: 2`, Clerk's default since April 2025): decoded from the
 *   compact claims. `fea` lists the features, `o.per` the permission names,
 *   and `o.fpm` one decimal bitmask per organization feature, bit `i` (from
 *   the least significant) granting `o.per[i]`. Without `o` (no active
 *   organization), none.
 * - v1 tokens: the strings of `org_permissions`.
 *
 * Throws a TypeError where Clerk's SDK throws too (a `fea` element without a
 * scope, a claim that is not a string): used in `permissionsClaim`, such a
 * token then grants nothing and the error is logged once.
 *
 * @example
 * await app.register(griddyAuth, {
 *   issuer: 'https://clerk.griddy.example',
 *   audience: 'https://api.griddy.example',
 *   permissionsClaim: (c) => [...clerkOrganizationPermissions(c), ...(c.permissions ?? [])]
 * })
 * app.post('/invoices', { config: { permissions: 'org:billing:manage' } }, handler)
 */
export function clerkOrganizationPermissions (claims: Readonly<Record<string, unknown>>): string[] {
  if (own(claims, 'v') !== 2) {
    const v1 = own(claims, 'org_permissions')
    return Array.isArray(v1) ? v1.filter((name): name is string => typeof name === 'string') : []
  }
  const organization = own(claims, 'o')
  // Clerk: `if (claims.o)`; any truthy `o` counts, even one with no members.
  if (!organization) return []
  const features = organizationFeatures(own(claims, 'fea'))
  const per = own(organization, 'per')
  const fpm = own(organization, 'fpm')
  // Clerk reads neither unless both are there (truthy).
  if (!per || !fpm) return []
  const permissions = commaList(per, 'o.per').map((name) => name.trim())
  const masks = commaList(fpm, 'o.fpm')

  const granted: string[] = []
  const count = Math.min(features.length, masks.length)
  for (let index = 0; index < count; index++) {
    const mask = (masks[index] as string).trim()
    // A mask that is not a decimal number grants nothing, as in Clerk.
    if (!decimal.test(mask)) continue
    let bits = BigInt(mask)
    for (let bit = 0; bit < permissions.length && bits > 0n; bit++, bits >>= 1n) {
      if ((bits & 1n) === 1n) granted.push(`org:${features[index] as string}:${permissions[bit] as string}`)
    }
  }
  return granted
}
