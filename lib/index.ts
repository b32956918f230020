/**
 * fastify-griddy-auth: the plugin. Wires options, key resolution, the
 * verification pipeline, the route policy, hooks and decorators; each of
 * those lives in its own module.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, preParsingHookHandler, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { resolveOptions, type GriddyAuthOptions } from './options'
import { createKeyResolver } from './keys/resolver'
import { registerSignatureVerifier } from './signature'
import { createAuthenticator, unwrap, type Outcome } from './authenticator'
import { compilePermissionsClaim } from './permissions-claim'
import { GriddyAuthError } from './errors'
import { readBearer, sentTwice } from './bearer'
import { grants, parseRequirement } from './permissions'
import { finalPolicy, policyOf, refuseMisplaced, withPolicy } from './route-policy'
import { warnSynonyms } from './config-keys'
import { createPluginLog } from './plugin-log'
import { documentRoute } from './openapi'
import { isCorsPreflight } from './preflight'
import { checkCorsPlacement } from './cors-placement'
import { configOf, dropHook } from './route-context'
import { sessionsNotConfigured, setUpSessions } from './sessions'
import type { AuthContext } from './auth-context'
import type { GriddyAuthDecorator, PermissionRequirement } from './types'

type HookDone = (err?: Error) => void

async function plugin (fastify: FastifyInstance, rawOptions: GriddyAuthOptions): Promise<void> {
  if (fastify.hasDecorator('griddyAuth')) {
    throw new Error('fastify-griddy-auth is already registered in this scope or a parent scope: register it once, in the outermost scope that needs it (its policy reaches every child scope)')
  }
  const options = resolveOptions(rawOptions)
  const { log, refusals } = createPluginLog(fastify.log, options)
  const keys = createKeyResolver(options, log)
  fastify.addHook('onClose', async () => { await keys.close() })
  const verifySignature = await registerSignatureVerifier(fastify, ({ header, payload }) => keys.lookup(header.kid as string, payload.iss))
  const sessions = options.sessions === undefined ? undefined : setUpSessions(fastify, options.sessions)
  const authenticator = createAuthenticator(options, verifySignature, compilePermissionsClaim(options.permissionsClaim, log), sessions)

  /** The caller's context from the `Authorization` header, or the refusal (never thrown: see Outcome). */
  function authenticateRequest (request: FastifyRequest): Outcome | Promise<Outcome> {
    const header = request.headers.authorization
    if (header !== undefined && sentTwice(request.raw.rawHeaders)) return authenticator.error('GRIDDY_AUTH_BAD_HEADER')
    // The canonical header of a token verified before skips the header parse:
    // the cache holds only exact tokens that passed every check, so a hit on
    // what follows "Bearer " is exactly what readBearer would have returned.
    if (typeof header === 'string' && header.startsWith('Bearer ')) {
      const candidate = header.slice(7)
      const hit = authenticator.cached(candidate)
      if (hit !== undefined) return hit
      const token = readBearer(header)
      if (typeof token !== 'string') return authenticator.error(token.code)
      // The same string the cache just missed: it is not asked twice.
      return token.length === candidate.length ? authenticator.verifyUncached(token) : authenticator.authenticate(token)
    }
    const token = readBearer(header)
    return typeof token === 'string' ? authenticator.authenticate(token) : authenticator.error(token.code)
  }

  /** One info line per failure: its code and the route pattern, never the token. */
  function logFailure (request: FastifyRequest, err: unknown): void {
    if (err instanceof GriddyAuthError) {
      refusals(request)?.info({ code: err.code, route: configOf(request).url }, `griddy-auth: ${err.message}`)
    }
  }

  function forbidden (required: readonly string[]): GriddyAuthError {
    return authenticator.error({ code: 'GRIDDY_AUTH_FORBIDDEN', required })
  }

  function settle (request: FastifyRequest, outcome: Outcome, required: readonly string[], done: HookDone): void {
    if (outcome instanceof GriddyAuthError) return refuse(request, outcome, done)
    request.auth = outcome
    if (grants(outcome.permissions, required)) return done()
    refuse(request, forbidden(required), done)
  }

  function refuse (request: FastifyRequest, err: unknown, done: HookDone): void {
    logFailure(request, err)
    done(err as Error)
  }

  // preParsing, not onRequest: every onRequest hook (@fastify/cors's, registered
  // before or after the plugin) has run, and the body is still unparsed.
  const authenticationHook: preParsingHookHandler = function griddyAuthAuthenticate (request, _reply, _payload, done) {
    const config = configOf(request)
    if (config.url === undefined) return done() // no route matched: the 404 stays a 404
    const policy = policyOf(config)
    if (policy.public) {
      // Nothing to do on this route, ever: later requests skip the hook altogether.
      dropHook(request, authenticationHook.name)
      return done()
    }
    if (isCorsPreflight(request)) return done()

    // Refusals are values; anything thrown here would be a bug, which Fastify's
    // hook runner answers as an error (never a hang).
    const result = authenticateRequest(request)
    // A cached token answers synchronously: closures are made only for the async path.
    if (result instanceof Promise) {
      result.then((outcome) => settle(request, outcome, policy.required, done), (err: unknown) => refuse(request, err, done))
    } else {
      settle(request, result, policy.required, done)
    }
  }

  async function authorize (this: FastifyRequest, permissions?: PermissionRequirement): Promise<AuthContext> {
    // An explicit undefined is a constant that does not exist, not "no permission needed".
    if (permissions === undefined && arguments.length > 0) {
      throw new TypeError('fastify-griddy-auth: request.authorize() permissions must be a permission name or an array of names, got undefined; call request.authorize() with no argument to require a valid token only')
    }
    const required = parseRequirement(permissions, 'request.authorize() permissions', false)
    try {
      this.auth ??= unwrap(await authenticateRequest(this))
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
      return unwrap(await authenticator.authenticate(token))
    },
    endSession: sessions?.endSession ?? sessionsNotConfigured('endSession'),
    endUserSessions: sessions?.endUserSessions ?? sessionsNotConfigured('endUserSessions')
  })

  fastify.decorate('griddyAuth', decorator)
  fastify.decorateRequest('auth', null)
  fastify.decorateRequest('authorize', authorize)
  // Routes as onRoute saw them, until onReady checks their final config and documents them.
  const declared: Array<{ instance: FastifyInstance, route: RouteOptions, name: string }> = []
  fastify.addHook('onRoute', function (route) {
    const name = `route "${String(route.method)} ${route.url}"`
    refuseMisplaced(route, name)
    route.config = withPolicy(route.config as Record<PropertyKey, unknown> | undefined, name) as typeof route.config
    declared.push({ instance: this, route, name })
  })
  fastify.addHook('onReady', async function () {
    const checked = new Set<FastifyInstance>()
    const warned = new Set<string>()
    for (const { instance, route, name } of declared.splice(0)) {
      const config = (route.config ?? {}) as Record<PropertyKey, unknown>
      const policy = finalPolicy(config, name)
      warnSynonyms(log, config, name, route.url, warned)
      documentRoute(instance, route, policy)
      // Guarded routes say where a frontend calls; @fastify/cors's own OPTIONS route does not.
      if (!policy.public && route.method !== 'OPTIONS' && !checked.has(instance)) {
        checked.add(instance)
        checkCorsPlacement(instance, authenticationHook, name)
      }
    }
    if (!checked.has(fastify)) checkCorsPlacement(fastify, authenticationHook, 'the scope fastify-griddy-auth is registered in')
  })
  fastify.addHook('preParsing', authenticationHook)
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
export type { SessionsOptions, SessionsRedis, SessionsRedisSubscriber } from './sessions/options'
export type { AuthContext } from './auth-context'
export type { PermissionsClaim, PermissionsClaimFunction, TokenClaims } from './permissions-claim'
export { clerkOrganizationPermissions } from './clerk'
export type { Permission, PermissionRegistry, PermissionRequirement, GriddyAuthDecorator } from './types'
export { GriddyAuthError, errorCodes, type GriddyAuthErrorCode } from './errors'
