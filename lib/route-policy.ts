/**
 * Route config -> policy (SPEC §4). Compiled once per route in `onRoute`,
 * so a bad `config.permissions` stops start-up naming the route. The policy
 * is stored on the route's config under a symbol; a route that `onRoute`
 * did not see (declared before the plugin finished loading) is compiled at
 * its first request instead, so no route escapes authentication.
 */
import { parseRequirement } from './permissions'

export interface RoutePolicy {
  readonly public: boolean
  readonly required: readonly string[]
}

const kPolicy = Symbol('griddyAuth.policy')
const lateCompiled = new WeakMap<object, RoutePolicy>()
const authenticatedOnly: RoutePolicy = Object.freeze({ public: false, required: Object.freeze([]) })
const publicRoute: RoutePolicy = Object.freeze({ public: true, required: Object.freeze([]) })

type RouteConfig = Record<PropertyKey, unknown> | undefined

export function compilePolicy (config: RouteConfig, route: string): RoutePolicy {
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
  return { ...config, [kPolicy]: compilePolicy(config, route) }
}

/** The policy of a matched route's config. */
export function policyOf (config: Record<PropertyKey, unknown>): RoutePolicy {
  const compiled = config[kPolicy] as RoutePolicy | undefined
  if (compiled !== undefined) return compiled
  let late = lateCompiled.get(config)
  if (late === undefined) {
    late = compilePolicy(config, `route "${String(config.method)} ${String(config.url)}"`)
    lateCompiled.set(config, late)
  }
  return late
}
