/**
 * A small Griddy-style fantasy-sports API (leagues, teams, matches, all in
 * memory) protected by fastify-griddy-auth. It shows the three ways a route
 * states who may call it:
 *
 * - `config: { permissions: [...] }`: the token must carry all of them;
 * - no config: any valid token (GET /api/v1/me);
 * - `config: { public: true }`: no authentication (GET /healthz);
 *
 * and a check that depends on data: a private league is readable by its
 * owner, or by a caller holding `leagues:admin` (`request.authorize()`).
 *
 * It documents itself: @fastify/swagger generates the OpenAPI document, in
 * which the plugin writes each route's real requirement (bearer token,
 * permissions, 401/403/503), and Swagger UI serves it at /docs.
 *
 * Browser frontends on other origins (the dashboard of `npm start`) call it
 * through CORS: @fastify/cors, with the options docs/browser-frontends.md
 * explains, registered before or after the plugin (both work).
 *
 * In your own project, import from 'fastify-griddy-auth' instead of '../lib'.
 */
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import cors, { type FastifyCorsOptions } from '@fastify/cors'
import griddyAuth, { type AuthContext, type GriddyAuthOptions } from '../lib'

export interface BuildAppOptions {
  /** The plugin's options: your issuer and audience, or a test issuer's `pluginOptions`. */
  auth: GriddyAuthOptions
  /** Fastify's own options (logger...). */
  server?: FastifyServerOptions
  /**
   * Origins of the browser frontends that call the API from another origin
   * (`http://127.0.0.1:5173`): CORS is answered for them only. Use the same
   * list as the plugin's `authorizedParties`. None: no CORS.
   */
  frontends?: readonly string[]
  /** Where @fastify/cors is registered: `'before'` or `'after'` the plugin (default), which both work. */
  corsOrder?: 'before' | 'after'
}

/**
 * CORS for bearer tokens: the frontends' exact origins, the `Authorization`
 * header allowed, and the two headers of the plugin's errors exposed to the
 * page's script. No `credentials`: a bearer token is not a cookie.
 */
export function corsOptions (frontends: readonly string[]): FastifyCorsOptions {
  return {
    origin: [...frontends],
    methods: ['GET', 'POST'],
    allowedHeaders: ['Authorization', 'Content-Type'],
    exposedHeaders: ['WWW-Authenticate', 'Retry-After'],
    maxAge: 600 // seconds a browser may reuse a preflight's answer
  }
}

export interface League { id: string, name: string, ownerId: string, private: boolean }
export interface Team { id: string, leagueId: string, name: string, managerId: string }
export interface Match {
  id: string
  leagueId: string
  homeTeamId: string
  awayTeamId: string
  status: 'scheduled' | 'final'
  homeScore: number | null
  awayScore: number | null
  reportedBy: string | null
}

/** The demo data: user_1 owns a public league, user_2 a private one. Fresh for every app. */
function seed (): { leagues: Map<string, League>, teams: Team[], matches: Map<string, Match> } {
  const leagues: League[] = [
    { id: 'lg_1', name: 'Griddy Premier', ownerId: 'user_1', private: false },
    { id: 'lg_2', name: 'Office League', ownerId: 'user_2', private: true }
  ]
  const teams: Team[] = [
    { id: 'tm_1', leagueId: 'lg_1', name: 'Gridiron Gang', managerId: 'user_1' },
    { id: 'tm_2', leagueId: 'lg_1', name: 'Fourth & Long', managerId: 'user_3' },
    { id: 'tm_3', leagueId: 'lg_2', name: 'Spreadsheet Sharks', managerId: 'user_2' }
  ]
  const matches: Match[] = [
    { id: 'mt_1', leagueId: 'lg_1', homeTeamId: 'tm_1', awayTeamId: 'tm_2', status: 'scheduled', homeScore: null, awayScore: null, reportedBy: null }
  ]
  return {
    leagues: new Map(leagues.map((league) => [league.id, league])),
    teams,
    matches: new Map(matches.map((match) => [match.id, match]))
  }
}

/** A 404 in Fastify's usual error shape: `{ statusCode, code, error, message }`. */
class NotFoundError extends Error {
  readonly statusCode = 404
  readonly code = 'GRIDDY_NOT_FOUND'
}

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[a-z]+_[0-9]+$' } }
} as const

export function buildApp (options: BuildAppOptions): FastifyInstance {
  const app = Fastify(options.server)
  const data = seed()

  // The OpenAPI document: registered first, so it sees every route.
  app.register(swagger, {
    openapi: {
      info: { title: 'Griddy example API', version: '1.0.0', description: 'Leagues, teams and matches, guarded by fastify-griddy-auth.' },
      tags: [{ name: 'leagues' }, { name: 'teams' }, { name: 'matches' }, { name: 'account' }, { name: 'health' }]
    }
  })
  // Swagger UI at /docs, outside the scope the plugin guards: a browser
  // loading the page cannot send a bearer token. The plugin guards the scope
  // it is registered in and that scope's children, whatever the order.
  app.register(swaggerUi, { routePrefix: '/docs' })

  const frontends = options.frontends ?? []
  app.register(async function guarded (app) {
    // Preflights are never authenticated, and @fastify/cors's default
    // onRequest hook runs before the plugin's authentication either way.
    if (frontends.length > 0 && options.corsOrder === 'before') await app.register(cors, corsOptions(frontends))
    // Every route of this scope needs a valid token unless it says otherwise.
    await app.register(griddyAuth, options.auth)
    if (frontends.length > 0 && options.corsOrder !== 'before') await app.register(cors, corsOptions(frontends))
    app.register(health)
    app.register(api, { prefix: '/api/v1' })
  })

  /**
   * The league, if the caller may see it. Whether `leagues:admin` is needed
   * depends on the league, so it cannot be in the route config: it is asked
   * for here, and `authorize()` answers 403 for us when it is missing.
   */
  async function visibleLeague (request: FastifyRequest, caller: AuthContext, id: string): Promise<League> {
    const league = data.leagues.get(id)
    if (league === undefined) throw new NotFoundError(`League ${id} not found.`)
    if (league.private && league.ownerId !== caller.userId) await request.authorize('leagues:admin')
    return league
  }

  async function health (app: FastifyInstance): Promise<void> {
    app.get('/healthz', { config: { public: true }, schema: { tags: ['health'], summary: 'Liveness check' } }, async () => ({ ok: true }))
  }

  async function api (app: FastifyInstance): Promise<void> {
    // Without an argument, authorize() returns the caller already authenticated
    // by the plugin's hook: an `AuthContext`, never null, without a cast.
    app.get('/me', { schema: { tags: ['account'], summary: 'The caller, as the token says' } }, async (request) => {
      const caller = await request.authorize()
      return { userId: caller.userId, sessionId: caller.sessionId ?? null, permissions: caller.permissions }
    })

    app.get('/leagues', {
      config: { permissions: ['leagues:read'] },
      schema: { tags: ['leagues'], summary: 'Leagues the caller may see' }
    }, async (request) => {
      const caller = await request.authorize()
      const isAdmin = caller.permissions.includes('leagues:admin')
      const leagues = [...data.leagues.values()]
        .filter((league) => !league.private || league.ownerId === caller.userId || isAdmin)
      return { leagues }
    })

    app.get<{ Params: { id: string } }>('/leagues/:id', {
      config: { permissions: ['leagues:read'] },
      schema: {
        tags: ['leagues'],
        summary: 'One league',
        description: 'A private league is visible to its owner, or with `leagues:admin` (else 403).',
        params: idParams
      }
    }, async (request) => {
      const caller = await request.authorize()
      return await visibleLeague(request, caller, request.params.id)
    })

    app.post<{ Body: { name: string, private?: boolean } }>('/leagues', {
      config: { permissions: ['leagues:write'] },
      schema: {
        tags: ['leagues'],
        summary: 'Create a league, owned by the caller',
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 80 },
            private: { type: 'boolean' }
          }
        }
      }
    }, async (request, reply) => {
      const caller = await request.authorize()
      const league: League = {
        id: `lg_${data.leagues.size + 1}`,
        name: request.body.name,
        ownerId: caller.userId,
        private: request.body.private ?? false
      }
      data.leagues.set(league.id, league)
      reply.code(201)
      return league
    })

    app.get<{ Params: { id: string } }>('/leagues/:id/teams', {
      config: { permissions: ['teams:read'] },
      schema: { tags: ['teams'], summary: 'Teams of a league', params: idParams }
    }, async (request) => {
      const caller = await request.authorize()
      const league = await visibleLeague(request, caller, request.params.id)
      return { teams: data.teams.filter((team) => team.leagueId === league.id) }
    })

    // An admin-only action: both permissions are required.
    app.post<{ Params: { id: string }, Body: { homeScore: number, awayScore: number } }>('/matches/:id/result', {
      config: { permissions: ['matches:write', 'matches:admin'] },
      schema: {
        tags: ['matches'],
        summary: 'Report a final score (admins)',
        params: idParams,
        body: {
          type: 'object',
          required: ['homeScore', 'awayScore'],
          additionalProperties: false,
          properties: {
            homeScore: { type: 'integer', minimum: 0, maximum: 999 },
            awayScore: { type: 'integer', minimum: 0, maximum: 999 }
          }
        }
      }
    }, async (request) => {
      const caller = await request.authorize()
      const match = data.matches.get(request.params.id)
      if (match === undefined) throw new NotFoundError(`Match ${request.params.id} not found.`)
      const result: Match = { ...match, ...request.body, status: 'final', reportedBy: caller.userId }
      data.matches.set(result.id, result)
      return result
    })
  }

  return app
}
