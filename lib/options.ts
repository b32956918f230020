/**
 * The plugin's options: their public shape, and their validation, done once
 * at registration so a mistake stops start-up with a message naming the
 * option instead of surfacing at the first request.
 */
import type { PermissionsClaim } from './permissions-claim'

/** A JSON Web Key as published in a JWKS. Only RSA signing keys are used. */
export interface JWK {
  kty?: string
  kid?: string
  use?: string
  alg?: string
  key_ops?: string[]
  n?: string
  e?: string
  [member: string]: unknown
}

/** Options of `fastify-griddy-auth` (SPEC §3). Units: seconds for `clockTolerance`, milliseconds for the `jwks*` options. */
export interface GriddyAuthOptions {
  /** Accepted `iss` values, compared exactly (a trailing slash is not ignored). */
  issuer: string | readonly string[]
  /** Accepted audiences; the token's `aud` (string or array) must contain at least one. */
  audience: string | readonly string[]
  /** Where signing keys are fetched. Default: `${iss}/.well-known/jwks.json` of the token's accepted issuer. */
  jwksUrl?: string
  /** A static key set: no network at all. Exclusive with `jwksUrl`. */
  jwks?: { keys: readonly JWK[] }
  /** If non-empty, `azp` is required and must be one of these. */
  authorizedParties?: readonly string[]
  /** Leeway for `exp` and `nbf`, in seconds. Default 5. */
  clockTolerance?: number
  /**
   * Where permissions are read. Default `'permissions'`. A claim name, read
   * literally (`'https://griddy.example/permissions'` is one claim); a path
   * into nested claims (`['realm_access', 'roles']`); or a function of the
   * verified claims, for formats no path reaches (Clerk organizations:
   * `(c) => [...clerkOrganizationPermissions(c), ...(c.permissions ?? [])]`).
   */
  permissionsClaim?: PermissionsClaim
  /** Size of the verified-token cache; `false` or `0` turns it off. Default 1000. */
  cache?: number | false
  /** How long fetched keys are fresh, in ms. Default 600000 (10 min). */
  jwksCacheTtl?: number
  /** Least time between two JWKS refetches caused by unknown `kid`s, in ms. Default 30000. */
  jwksCooldown?: number
  /** A JWKS fetch that takes longer is aborted, in ms. Default 5000. */
  jwksTimeout?: number
  /** `realm` attribute of `WWW-Authenticate`. */
  realm?: string
  /**
   * Keys from the `jwks_uri` of each issuer's OpenID Connect discovery
   * document, `<issuer>/.well-known/openid-configuration`: for providers
   * whose keys are not at `<issuer>/.well-known/jwks.json` (Keycloak, Okta,
   * Microsoft Entra ID, Google...). Exclusive with `jwksUrl` and `jwks`. Default `false`.
   *
   * @example
   * await app.register(griddyAuth, { issuer: 'https://sso.example.com/realms/griddy', audience: 'griddy-api', discovery: true })
   */
  discovery?: boolean
}

/** Options after validation: every default filled in, every list a Set or array. */
export interface ResolvedOptions {
  readonly issuers: ReadonlySet<string>
  readonly audiences: ReadonlySet<string>
  readonly jwksUrl: string | undefined
  readonly jwks: { keys: readonly JWK[] } | undefined
  readonly authorizedParties: ReadonlySet<string> | undefined
  readonly clockToleranceMs: number
  readonly permissionsClaim: PermissionsClaim
  readonly cacheSize: number
  readonly jwksCacheTtl: number
  readonly jwksCooldown: number
  readonly jwksTimeout: number
  readonly realm: string | undefined
  readonly discovery: boolean
}

const known = new Set([
  'issuer', 'audience', 'jwksUrl', 'jwks', 'authorizedParties', 'clockTolerance', 'permissionsClaim',
  'cache', 'jwksCacheTtl', 'jwksCooldown', 'jwksTimeout', 'realm', 'discovery'
])

function fail (option: string, problem: string): never {
  throw new TypeError(`fastify-griddy-auth: option "${option}" ${problem}`)
}

export function isHttpUrl (value: string): boolean {
  try {
    const url = new URL(value)
    return url.protocol === 'https:' || url.protocol === 'http:'
  } catch {
    return false
  }
}

function nonEmptyStrings (option: string, value: unknown, required: boolean): string[] | undefined {
  if (value === undefined && !required) return undefined
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list) || (required && list.length === 0)) {
    fail(option, required ? 'is required: a non-empty string or array of strings' : 'must be an array of strings')
  }
  for (const item of list) {
    if (typeof item !== 'string' || item.length === 0) fail(option, 'must contain non-empty strings only')
  }
  return list as string[]
}

function nonNegative (option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    fail(option, `must be a finite number >= 0, got ${String(value)}`)
  }
  return value
}

/** A claim name, a path (copied: later changes to the user's array have no effect) or a function. */
function permissionsClaimOption (value: unknown): PermissionsClaim {
  if (value === undefined) return 'permissions'
  if (typeof value === 'function') return value as PermissionsClaim
  if (typeof value === 'string' && value.length > 0) return value
  if (!Array.isArray(value)) fail('permissionsClaim', 'must be a claim name, a path (array of claim names) or a function')
  if (value.length === 0) fail('permissionsClaim', 'must not be an empty path')
  for (const [index, step] of value.entries()) {
    if (typeof step !== 'string' || step.length === 0) {
      fail('permissionsClaim', `must be a path of non-empty claim names: step ${index} is ${typeof step === 'string' ? 'empty' : typeof step}`)
    }
  }
  return Object.freeze([...value as string[]])
}

/** Validates and normalises the user's options. Throws a TypeError naming the option. */
export function resolveOptions (raw: unknown): ResolvedOptions {
  if (raw === null || typeof raw !== 'object') {
    throw new TypeError('fastify-griddy-auth: options are required ({ issuer, audience })')
  }
  const options = raw as Record<string, unknown>
  for (const name of Object.keys(options)) {
    if (!known.has(name)) fail(name, 'is not an option of fastify-griddy-auth (check its spelling)')
  }

  const issuers = nonEmptyStrings('issuer', options.issuer, true) as string[]
  const audiences = nonEmptyStrings('audience', options.audience, true) as string[]
  const authorizedParties = nonEmptyStrings('authorizedParties', options.authorizedParties, false)

  const { jwksUrl, jwks } = options
  if (jwksUrl !== undefined && jwks !== undefined) fail('jwks', 'cannot be combined with "jwksUrl": choose one source of keys')
  if (jwksUrl !== undefined && (typeof jwksUrl !== 'string' || !isHttpUrl(jwksUrl))) {
    fail('jwksUrl', 'must be an http(s) URL')
  }
  if (jwks !== undefined && (jwks === null || typeof jwks !== 'object' || !Array.isArray((jwks as { keys?: unknown }).keys))) {
    fail('jwks', 'must be a key set: { keys: [...] }')
  }
  const discovery = options.discovery === undefined ? false : options.discovery
  if (typeof discovery !== 'boolean') fail('discovery', 'must be a boolean')
  if (discovery && jwksUrl !== undefined) fail('discovery', 'cannot be combined with "jwksUrl": keys come from the discovery document')
  if (discovery && jwks !== undefined) fail('discovery', 'cannot be combined with "jwks": choose one source of keys')
  if (jwksUrl === undefined && jwks === undefined) {
    // Keys then come from each issuer's well-known URL (or discovery document), so each issuer must be one.
    for (const issuer of issuers) {
      if (!isHttpUrl(issuer)) fail('issuer', `must be an http(s) URL when neither "jwksUrl" nor "jwks" is set, got ${JSON.stringify(issuer)}`)
    }
  }

  const clockTolerance = nonNegative('clockTolerance', options.clockTolerance, 5)

  const permissionsClaim = permissionsClaimOption(options.permissionsClaim)

  let cacheSize = 1000
  if (options.cache === false) cacheSize = 0
  else if (options.cache !== undefined) {
    cacheSize = nonNegative('cache', options.cache, 1000)
    if (!Number.isInteger(cacheSize)) fail('cache', 'must be an integer number of entries, or false')
  }

  const realm = options.realm
  if (realm !== undefined && (typeof realm !== 'string' || /[^\x20-\x7e]/.test(realm))) {
    fail('realm', 'must be a string of printable ASCII characters')
  }

  return {
    issuers: new Set(issuers),
    audiences: new Set(audiences),
    jwksUrl: jwksUrl as string | undefined,
    jwks: jwks as { keys: readonly JWK[] } | undefined,
    authorizedParties: authorizedParties !== undefined && authorizedParties.length > 0 ? new Set(authorizedParties) : undefined,
    clockToleranceMs: clockTolerance * 1000,
    permissionsClaim,
    cacheSize,
    jwksCacheTtl: nonNegative('jwksCacheTtl', options.jwksCacheTtl, 600_000),
    jwksCooldown: nonNegative('jwksCooldown', options.jwksCooldown, 30_000),
    jwksTimeout: nonNegative('jwksTimeout', options.jwksTimeout, 5_000),
    realm: realm as string | undefined,
    discovery
  }
}
