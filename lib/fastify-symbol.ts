/**
 * Fastify has no public way to read a scope's hook lists or the route
 * context of a request; it keeps both under symbols of its own
 * (`fastify.hooks`, `fastify.context`, Fastify 4 and 5). The plugin finds
 * them by description, here only (cors-placement.ts, route-context.ts), and
 * both callers do without should a Fastify version rename them.
 */

/** The symbol described `description` on `object` or one of its prototypes. */
export function fastifySymbol (object: object, description: string): symbol | undefined {
  for (let level: object | null = object; level !== null; level = Object.getPrototypeOf(level)) {
    const symbol = Object.getOwnPropertySymbols(level).find((s) => s.description === description)
    if (symbol !== undefined) return symbol
  }
  return undefined
}
