/**
 * CORS preflights (SPEC §4). Before a cross-origin call that sends
 * `Authorization`, a browser asks the API with an `OPTIONS` request carrying
 * `Origin` and `Access-Control-Request-Method`, and it never sends
 * credentials on it (Fetch standard, CORS-preflight fetch): authenticating
 * it could only fail, and a failed preflight is an opaque "Failed to fetch"
 * for the page. So a preflight is let through unauthenticated, to whatever
 * answers it (@fastify/cors, an `OPTIONS` route of the app, or Fastify's
 * 404), and `request.auth` stays null. Any other `OPTIONS` is an ordinary,
 * authenticated request.
 */
import type { FastifyRequest } from 'fastify'

/** Whether `request` is a CORS preflight: `OPTIONS` with a non-empty `Origin` and `Access-Control-Request-Method`. */
export function isCorsPreflight (request: FastifyRequest): boolean {
  if (request.method !== 'OPTIONS') return false
  const { origin, 'access-control-request-method': method } = request.headers
  return typeof origin === 'string' && origin !== '' && typeof method === 'string' && method !== ''
}
