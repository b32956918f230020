/**
 * Route config -> policy (SPEC §4). Compiled once per route in `onRoute`,
 * so a bad `config.permissions` stops start-up naming the route. The policy
 * is stored on the route's config under a symbol, with the `public` and
 * `permissions` values it was compiled from: an `onRoute` hook that runs
 * after ours (one in a child scope does) may change them, and then the
 * stored policy is stale. `finalPolicy`, at `onReady`, checks the final
 * config of every route once more, so such a change is still validated at
 * start-up; at request time a stale or missing policy (a route declared
 * before the plugin finished loading) is compiled at the first request.
 * No route escapes authentication, nor a permission added late.
 *
 * A mistake that would silently drop a check stops start-up too: a
 * `permissions` key whose value is undefined (a misspelt or renamed
 * constant), a misspelt key (config-keys.ts), `permissions` or `public`
 * written beside `config` instead of in it.
 */
import { parseRequirement } from './permissions'
import { misspelling } from './config-keys'

export interface RoutePolicy {
  readonly public: boolean
  readonly required: readonly string[]
}

/** A policy and the config values it was compiled from. */
interface Compiled {
  readonly policy: RoutePolicy
  readonly public: unknown
  readonly permissions: unknown
  /** The names of a `permissions` array when compiled: an array can change in place. */
  readonly names: readonly unknown[] | undefined
}

const kPolicy = Symbol('griddyAuth.policy')
const lateCompiled = new WeakMap<object, RoutePolicy>()
const authenticatedOnly: RoutePolicy = Object.freeze({ public: false, required: Object.freeze([]) })
const publicRoute: RoutePolicy = Object.freeze({ public: true, required: Object.freeze([]) })

type RouteConfig = Record<PropertyKey, unknown> | undefined

/** Throws a TypeError naming `route` for a config mistake that would drop a check. */
function refuseMistakes (config: Record<PropertyKey, unknown>, route: string): void {
  if (Object.hasOwn(config, 'permissions') && config.permissions === undefined) {
    throw new TypeError(`fastify-griddy-auth: ${route}: config.permissions is undefined (a misspelt or renamed constant?); omit the key, or write [] for any valid token`)
  }
  const miss = misspelling(config)
  if (miss !== undefined) {
    throw new TypeError(`fastify-griddy-auth: ${route}: config.${miss.key} is not read by fastify-griddy-auth; did you mean config.${miss.meant}?`)
  }
}

/** For `onRoute`: Fastify ignores route options it does not know, so ours there would be lost. */
export function refuseMisplaced (routeOptions: object, route: string): void {
  for (const key of ['permissions', 'public']) {
    if (Object.hasOwn(routeOptions, key)) {
      throw new TypeError(`fastify-griddy-auth: ${route}: "${key}" is a route config key: write { config: { ${key} } }, not { ${key} }`)
    }
  }
}

export function compilePolicy (config: RouteConfig, route: string): RoutePolicy {
  if (config != null) refuseMistakes(config, route)
  const isPublic = config?.public
  const permissions = config?.permissions
  if (isPublic !== undefined && typeof isPublic !== 'boolean') {
    throw new TypeError(`fastify-griddy-auth: ${route}: config.public must be a boolean`)
  }
  if (isPublic === true) {
    if (permissions !== undefined) {
      throw new TypeError(`fastify-griddy-auth: ${route}: config.public and config.permissions contradict each other`)
    }
    return publicRoute
  }
  const required = parseRequirement(permissions, `${route}: config.permissions`, true)
  return required.length === 0 ? authenticatedOnly : Object.freeze({ public: false, required })
}

/** For `onRoute`: the route's config with its compiled policy. */
export function withPolicy (config: RouteConfig, route: string): Record<PropertyKey, unknown> {
  const permissions = config?.permissions
  const compiled: Compiled = {
    policy: compilePolicy(config, route),
    public: config?.public,
    permissions,
    names: Array.isArray(permissions) ? [...permissions] : undefined
  }
  return { ...config, [kPolicy]: compiled }
}

function compiledFor (config: Record<PropertyKey, unknown>): Compiled | undefined {
  const compiled = config[kPolicy] as Compiled | undefined
  if (compiled === undefined || compiled.public !== config.public || compiled.permissions !== config.permissions) return undefined
  return compiled
}

function compileLate (config: Record<PropertyKey, unknown>, route: string): RoutePolicy {
  let late = lateCompiled.get(config)
  if (late === undefined) {
    late = compilePolicy(config, route)
    lateCompiled.set(config, late)
  }
  return late
}

/** The policy of a matched route's config. */
export function policyOf (config: Record<PropertyKey, unknown>): RoutePolicy {
  return compiledFor(config)?.policy ?? compileLate(config, `route "${String(config.method)} ${String(config.url)}"`)
}

/**
 * For `onReady`: the policy of a route's final config, validated (throws a
 * TypeError naming `route`). Fastify copies the config for requests once all
 * `onRoute` hooks ran, so a `permissions` array changed in place after ours
 * cannot be followed there: it stops start-up instead.
 */
export function finalPolicy (config: Record<PropertyKey, unknown>, route: string): RoutePolicy {
  // A later hook may have added a mistake without changing what the stored policy was compiled from.
  refuseMistakes(config, route)
  const compiled = compiledFor(config)
  if (compiled === undefined) return compileLate(config, route)
  const names = compiled.names
  const current = config.permissions as readonly unknown[] | undefined
  if (names !== undefined && (current!.length !== names.length || names.some((name, i) => current![i] !== name))) {
    throw new TypeError(`fastify-griddy-auth: ${route}: config.permissions was changed in place after the plugin read it; assign a new array instead`)
  }
  return compiled.policy
}
