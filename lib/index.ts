/**
 * fastify-griddy-auth: the plugin. Wires options, key resolution, the
 * verification pipeline, the route policy, hooks and decorators; each of
 * those lives in its own module.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, onRequestHookHandler, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { resolveOptions, type GriddyAuthOptions } from './options'
import { createKeyResolver } from './keys/resolver'
import { registerSignatureVerifier } from './signature'
import { createAuthenticator } from './authenticator'
import { compilePermissionsClaim } from './permissions-claim'
import { GriddyAuthError } from './errors'
import { readBearer } from './bearer'
import { grants, parseRequirement } from './permissions'
import { finalPolicy, policyOf, withPolicy } from './route-policy'
import { documentRoute } from './openapi'
import type { AuthContext } from './auth-context'
import type { GriddyAuthDecorator, PermissionRequirement } from './types'

type HookDone = (err?: Error) => void

async function plugin (fastify: FastifyInstance, rawOptions: GriddyAuthOptions): Promise<void> {
  const options = resolveOptions(rawOptions)
  const keys = createKeyResolver(options, fastify.log)
  fastify.addHook('onClose', async () => { await keys.close() })
  const verifySignature = await registerSignatureVerifier(fastify, ({ header, payload }) => keys.lookup(header.kid as string, payload.iss))
  const authenticator = createAuthenticator(options, verifySignature, compilePermissionsClaim(options.permissionsClaim, fastify.log))

  /** The caller's context from the `Authorization` header; throws/rejects with a GriddyAuthError. */
  function authenticateRequest (request: FastifyRequest): AuthContext | Promise<AuthContext> {
    const header = request.headers.authorization
    // The canonical header of a token verified before skips the header parse:
    // the cache holds only exact tokens that passed every check, so a hit on
    // what follows "Bearer " is exactly what readBearer would have returned.
    if (typeof header === 'string' && header.startsWith('Bearer ')) {
      const context = authenticator.cached(header.slice(7))
      if (context !== undefined) return context
    }
    const token = readBearer(header)
    if (typeof token !== 'string') throw authenticator.error(token.code)
    return authenticator.authenticate(token)
  }

  /** One info line per failure: its code and the route pattern, never the token. */
  function logFailure (request: FastifyRequest, err: unknown): void {
    if (err instanceof GriddyAuthError) {
      request.log.info({ code: err.code, route: request.routeOptions.url }, `griddy-auth: ${err.message}`)
    }
  }

  function forbidden (required: readonly string[]): GriddyAuthError {
    return authenticator.error({ code: 'GRIDDY_AUTH_FORBIDDEN', required })
  }

  function admit (request: FastifyRequest, context: AuthContext, required: readonly string[], done: HookDone): void {
    request.auth = context
    if (grants(context.permissions, required)) return done()
    refuse(request, forbidden(required), done)
  }

  function refuse (request: FastifyRequest, err: unknown, done: HookDone): void {
    logFailure(request, err)
    done(err as Error)
  }

  const onRequest: onRequestHookHandler = function (request, _reply, done) {
    const config = request.routeOptions.config as unknown as Record<PropertyKey, unknown>
    if (config.url === undefined) return done() // no route matched: the 404 stays a 404
    const policy = policyOf(config)
    if (policy.public) return done()

    let result: AuthContext | Promise<AuthContext>
    try {
      result = authenticateRequest(request)
    } catch (err) {
      return refuse(request, err, done)
    }
    // A cached token answers synchronously: closures are made only for the async path.
    if (result instanceof Promise) {
      result.then((context) => admit(request, context, policy.required, done), (err: unknown) => refuse(request, err, done))
    } else {
      admit(request, result, policy.required, done)
    }
  }

  async function authorize (this: FastifyRequest, permissions?: PermissionRequirement): Promise<AuthContext> {
    const required = parseRequirement(permissions, 'request.authorize() permissions', false)
    try {
      this.auth ??= await authenticateRequest(this)
      if (!grants(this.auth.permissions, required)) throw forbidden(required)
      return this.auth
    } catch (err) {
      logFailure(this, err)
      throw err
    }
  }

  const decorator: GriddyAuthDecorator = Object.freeze({
    async verify (token: string): Promise<AuthContext> {
      if (typeof token !== 'string') throw authenticator.error('GRIDDY_AUTH_MALFORMED')
      return await authenticator.authenticate(token)
    }
  })

  fastify.decorate('griddyAuth', decorator)
  fastify.decorateRequest('auth', null)
  fastify.decorateRequest('authorize', authorize)
  // Routes as onRoute saw them, until onReady checks their final config and documents them.
  const declared: Array<{ instance: FastifyInstance, route: RouteOptions, name: string }> = []
  fastify.addHook('onRoute', function (route) {
    const name = `route "${String(route.method)} ${route.url}"`
    route.config = withPolicy(route.config as Record<PropertyKey, unknown> | undefined, name) as typeof route.config
    declared.push({ instance: this, route, name })
  })
  fastify.addHook('onReady', async function () {
    for (const { instance, route, name } of declared.splice(0)) {
      documentRoute(instance, route, finalPolicy((route.config ?? {}) as Record<PropertyKey, unknown>, name))
    }
  })
  fastify.addHook('onRequest', onRequest)
  // Fastify's default error handler applies err.headers; this keeps them for a custom setErrorHandler too.
  fastify.addHook('onError', (_request, reply, err, done) => {
    if (err instanceof GriddyAuthError) reply.headers(err.headers)
    done()
  })
}

/**
 * The plugin. Register it before your routes' plugins; every route of the
 * context then requires a valid token, unless its config says `public: true`.
 *
 * @example
 * await app.register(griddyAuth, { issuer: 'https://clerk.example.com', audience: 'https://api.example.com' })
 * app.get('/leagues', { config: { permissions: ['leagues:read'] } }, async (request) => list(request.auth!.userId))
 */
export const griddyAuth: FastifyPluginAsync<GriddyAuthOptions> = fp(plugin, {
  fastify: '5.x',
  name: 'fastify-griddy-auth'
})

export default griddyAuth
export type { GriddyAuthOptions, JWK } from './options'
export type { AuthContext } from './auth-context'
export type { PermissionsClaim, PermissionsClaimFunction, TokenClaims } from './permissions-claim'
export { clerkOrganizationPermissions } from './clerk'
export type { Permission, PermissionRegistry, PermissionRequirement, GriddyAuthDecorator } from './types'
export { GriddyAuthError, errorCodes, type GriddyAuthErrorCode } from './errors'
