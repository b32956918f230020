/**
 * The matched route's context, as Fastify keeps it on each request.
 *
 * Fastify's public way to read a route's config at request time is
 * `request.routeOptions`, a getter that builds a new twelve-property object
 * on every call; for the plugin, on every request. Fastify keeps the route
 * context on the request under its `fastify.context` symbol
 * (fastify-symbol.ts), and the plugin reads `config` there. The same context holds the
 * route's `preParsing` hooks, which is what lets a public route stop paying
 * for the plugin's hook (`dropHook`).
 *
 * Should a Fastify version rename the symbol, `configOf` falls back to
 * `request.routeOptions.config` and `dropHook` does nothing: the plugin stays
 * correct, only slower. test/route-context.test.ts pins both paths.
 */
import type { FastifyRequest } from 'fastify'
import { fastifySymbol } from './fastify-symbol'

/** What the plugin reads and writes of Fastify's route context. */
interface RouteContext {
  readonly config: Record<PropertyKey, unknown>
  preParsing: ReadonlyArray<(...args: never[]) => unknown> | null
}

/** undefined: not looked for yet; null: this Fastify has no such symbol. */
let kContext: symbol | null | undefined

function contextSymbol (request: FastifyRequest): symbol | null {
  kContext = fastifySymbol(request, 'fastify.context') ?? null
  return kContext
}

function contextOf (request: FastifyRequest): RouteContext | undefined {
  const symbol = kContext === undefined ? contextSymbol(request) : kContext
  if (symbol === null) return undefined
  const context = (request as unknown as Record<symbol, RouteContext | undefined>)[symbol]
  return typeof context?.config === 'object' ? context : undefined
}

/** The matched route's config (with `url` and `method`, as Fastify sets them). */
export function configOf (request: FastifyRequest): Record<PropertyKey, unknown> {
  return contextOf(request)?.config ?? request.routeOptions.config as unknown as Record<PropertyKey, unknown>
}

/**
 * Removes `hook` (named `name`; Fastify holds bound copies, `bound <name>`)
 * from the preParsing hooks of the route `request` matched, for the
 * requests that follow. The list is replaced, never changed in place: a
 * request already running its hooks keeps the list it started with.
 */
export function dropHook (request: FastifyRequest, name: string): void {
  const context = contextOf(request)
  const hooks = context?.preParsing
  if (context === undefined || !Array.isArray(hooks)) return
  const bound = `bound ${name}`
  const rest = hooks.filter((fn) => fn.name !== bound && fn.name !== name)
  if (rest.length !== hooks.length) context.preParsing = rest.length === 0 ? null : rest
}

/** For tests: forget the symbol, as if on a first request. */
export function resetRouteContextSymbol (value?: null): void {
  kContext = value
}
