/**
 * The typings users see, by module augmentation of Fastify: route
 * `config.permissions` / `config.public`, `request.auth`,
 * `request.authorize()` and `fastify.griddyAuth`. Every added config key
 * is optional: a required one would break every route of every app.
 */
import type { AuthContext } from './auth-context'

/**
 * Declare your permission names here to have them checked at compile time
 * in `config.permissions` and `request.authorize()`:
 *
 * @example
 * declare module 'fastify-griddy-auth' {
 *   interface PermissionRegistry {
 *     'leagues:read': true
 *     'leagues:write': true
 *   }
 * }
 *
 * Without a declaration, any string is accepted.
 */
export interface PermissionRegistry {}

/** A permission name: any string, or one of the declared names once `PermissionRegistry` is augmented. */
export type Permission = [keyof PermissionRegistry] extends [never] ? string : Extract<keyof PermissionRegistry, string>

/** What a route may require: one permission or all of a list. */
export type PermissionRequirement = Permission | readonly Permission[]

/** `fastify.griddyAuth`: verification outside an HTTP request (WebSocket upgrade, queue consumers), and sign-out. */
export interface GriddyAuthDecorator {
  /** Verifies a bare token exactly as the hook does (no permission check); rejects with a GriddyAuthError. */
  verify (token: string): Promise<AuthContext>
  /**
   * Every token whose `sid` is `sessionId` is refused from now on
   * (`GRIDDY_AUTH_SESSION_ENDED`), cached ones too, on every instance sharing
   * the Redis of the `sessions` option. Resolves once stored; rejects with a
   * TypeError without the `sessions` option or for an empty id.
   *
   * @example
   * app.post('/sign-out', async (request) => { await app.griddyAuth.endSession(request.auth!.sessionId!) })
   */
  endSession (sessionId: string): Promise<void>
  /** Every token of `userId` (its `sub`) issued before now is refused from now on ("sign out everywhere"). Otherwise as `endSession`. */
  endUserSessions (userId: string): Promise<void>
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Permissions the caller's token must all carry. */
    permissions?: PermissionRequirement
    /** `true`: no authentication on this route (a token, if sent, is ignored). */
    public?: boolean
  }

  interface FastifyRequest {
    /** The authenticated caller; `null` on public routes until `authorize()` is called. */
    auth: AuthContext | null
    /**
     * Authenticates the request if not done yet: a valid token, no permission.
     * Rejects with a GriddyAuthError (401 or 503).
     */
    authorize (): Promise<AuthContext>
    /**
     * Authenticates the request if not done yet, then checks `permissions`.
     * Rejects with a GriddyAuthError (401, 403 or 503); an explicit
     * `undefined` is a TypeError (a missing constant must not mean "none").
     *
     * @example
     * if (league.private) await request.authorize('leagues:admin')
     */
    authorize (permissions: PermissionRequirement): Promise<AuthContext>
  }

  interface FastifyInstance {
    griddyAuth: GriddyAuthDecorator
  }
}
