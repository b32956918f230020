/**
 * Start-up check (SPEC §4): @fastify/cors must add its headers before the
 * plugin can answer 401, 403 or 503, or a browser frontend on another origin
 * reads none of those answers (its fetch rejects with "Failed to fetch").
 *
 * The plugin authenticates in `preParsing`, so @fastify/cors's default hook,
 * `onRequest`, always runs first, whatever the registration order or scope.
 * Its other `hook` settings cannot all work: `preParsing` works only if its
 * hook runs before ours (registered before the plugin, or in a parent
 * scope), and `preValidation`, `preHandler` and `preSerialization` run after
 * the plugin has already answered. Those layouts fail at `ready()` with a
 * message saying what to change, instead of a silent missing header.
 *
 * Fastify has no public way to list a scope's hooks: they are read from its
 * `fastify.hooks` symbol (Fastify 4 and 5), and @fastify/cors's hook is
 * recognised by the name it gives its function, `handleCors` (@fastify/cors
 * 8 to 11). Should either change, the check finds nothing and stays quiet;
 * test/cors.test.ts fails then, so an upgrade cannot lose it unnoticed.
 */
import type { FastifyInstance } from 'fastify'
import { fastifySymbol } from './fastify-symbol'

/** Hook phases that run after the plugin's `preParsing` authentication has answered. */
const tooLate = ['preValidation', 'preHandler', 'preSerialization'] as const

/** The hook lists of a scope, as Fastify keeps them (it always has every lifecycle list). */
type Hooks = Readonly<Record<typeof tooLate[number] | 'preParsing', readonly unknown[]>>

const noHooks: Hooks = { preParsing: [], preValidation: [], preHandler: [], preSerialization: [] }

function hooksOf (instance: FastifyInstance): Hooks {
  const symbol = fastifySymbol(instance, 'fastify.hooks')
  /* c8 ignore next -- only with a Fastify that no longer has the symbol: nothing to check (see above) */
  if (symbol === undefined) return noHooks
  return (instance as unknown as Record<symbol, Hooks>)[symbol] as Hooks
}

function isCorsHook (fn: unknown): boolean {
  return typeof fn === 'function' && fn.name === 'handleCors'
}

const consequence = 'so the plugin\'s 401, 403 and 503 answers would carry no CORS headers and a browser frontend on another origin would only see "Failed to fetch"'

/**
 * Throws (an Error naming @fastify/cors and the fix) if @fastify/cors, as
 * registered for `instance`, would run after `authHook`, the plugin's own
 * `preParsing` hook. `where` names the guarded route (or scope) concerned.
 */
export function checkCorsPlacement (instance: FastifyInstance, authHook: unknown, where: string): void {
  const hooks = hooksOf(instance)
  for (const phase of tooLate) {
    if (hooks[phase].some(isCorsHook)) {
      throw new Error(`fastify-griddy-auth: @fastify/cors is registered with hook: '${phase}' (${where}): that hook runs after the plugin has answered, ${consequence}. Use @fastify/cors's default hook, 'onRequest': it works registered before or after fastify-griddy-auth.`)
    }
  }
  const preParsing = hooks.preParsing
  if (preParsing.slice(preParsing.indexOf(authHook) + 1).some(isCorsHook)) {
    throw new Error(`fastify-griddy-auth: @fastify/cors is registered with hook: 'preParsing' after fastify-griddy-auth (${where}): its hook would run after the plugin's, ${consequence}. Register @fastify/cors before fastify-griddy-auth (in the same scope or a parent scope), or use its default hook, 'onRequest', which works in either order.`)
  }
}
