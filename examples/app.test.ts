/**
 * How to test your own routes: a test issuer from the testing kit (a static
 * key set, no network), `app.inject()`, and one table of
 * route × token recipe -> expected answer.
 *
 * In your project: import { createTestIssuer } from 'fastify-griddy-auth/testing'
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app'
import { createTestIssuer, type TestIssuer } from '../lib/testing'

/** How the request authenticates: the `Authorization` header it sends, if any. */
interface Recipe {
  readonly label: string
  authorization (issuer: TestIssuer): string | undefined
}

const noToken: Recipe = { label: 'no token', authorization: () => undefined }
const garbage: Recipe = { label: 'a garbage token', authorization: () => 'Bearer not.a.token' }

/** A valid token for `sub` carrying `permissions` (and `sid` if given). */
function user (sub: string, permissions: string[], sid?: string): Recipe {
  return {
    label: `${sub} [${permissions.join(' ')}]${sid === undefined ? '' : ` ${sid}`}`,
    authorization: (issuer) => `Bearer ${issuer.sign({ sub, permissions, ...(sid === undefined ? {} : { sid }) })}`
  }
}

/** The same token, expired a minute ago (beyond the 5 s clock tolerance). */
function expired (sub: string, permissions: string[]): Recipe {
  return {
    label: `${sub} [${permissions.join(' ')}], expired`,
    authorization: (issuer) => `Bearer ${issuer.sign({ sub, permissions }, { expiresIn: -60 })}`
  }
}

interface Row {
  /** `METHOD /url` */
  route: string
  token: Recipe
  payload?: Record<string, unknown>
  status: number
  /** The error `code` of a failure. */
  code?: string
  /** A pattern the JSON body must match (`t.match`). */
  body?: Record<string, unknown>
  /** The exact ids of the returned list (`leagues` or `teams`). */
  ids?: string[]
  headers?: Record<string, string>
}

// Seed data (see app.ts): lg_1 is public (owner user_1), lg_2 is private (owner user_2), mt_1 is a match of lg_1.
const reader = user('user_1', ['leagues:read'])
const rows: Row[] = [
  // Any valid token.
  { route: 'GET /api/v1/me', token: user('user_1', [], 'sess_1'), status: 200, body: { userId: 'user_1', sessionId: 'sess_1', permissions: [] } },
  { route: 'GET /api/v1/me', token: user('user_2', ['leagues:read']), status: 200, body: { userId: 'user_2', sessionId: null, permissions: ['leagues:read'] } },
  { route: 'GET /api/v1/me', token: noToken, status: 401, code: 'GRIDDY_AUTH_NO_TOKEN', headers: { 'www-authenticate': 'Bearer' } },
  { route: 'GET /api/v1/me', token: garbage, status: 401, code: 'GRIDDY_AUTH_MALFORMED' },
  { route: 'GET /api/v1/me', token: expired('user_1', []), status: 401, code: 'GRIDDY_AUTH_EXPIRED', body: { message: 'Token has expired' } },

  // leagues:read; private leagues only for their owner or leagues:admin.
  { route: 'GET /api/v1/leagues', token: reader, status: 200, ids: ['lg_1'] },
  { route: 'GET /api/v1/leagues', token: user('user_2', ['leagues:read']), status: 200, ids: ['lg_1', 'lg_2'] },
  { route: 'GET /api/v1/leagues', token: user('user_3', ['leagues:read', 'leagues:admin']), status: 200, ids: ['lg_1', 'lg_2'] },
  { route: 'GET /api/v1/leagues', token: user('user_1', ['teams:read']), status: 403, code: 'GRIDDY_AUTH_FORBIDDEN' },
  { route: 'GET /api/v1/leagues', token: noToken, status: 401, code: 'GRIDDY_AUTH_NO_TOKEN' },
  { route: 'GET /api/v1/leagues', token: expired('user_1', ['leagues:read']), status: 401, code: 'GRIDDY_AUTH_EXPIRED' },

  { route: 'GET /api/v1/leagues/lg_1', token: reader, status: 200, body: { id: 'lg_1', private: false } },
  { route: 'GET /api/v1/leagues/lg_1', token: user('user_1', ['teams:read']), status: 403, code: 'GRIDDY_AUTH_FORBIDDEN', headers: { 'www-authenticate': 'Bearer error="insufficient_scope", scope="leagues:read"' } },
  { route: 'GET /api/v1/leagues/lg_1', token: noToken, status: 401, code: 'GRIDDY_AUTH_NO_TOKEN' },
  { route: 'GET /api/v1/leagues/lg_1', token: expired('user_1', ['leagues:read']), status: 401, code: 'GRIDDY_AUTH_EXPIRED' },
  { route: 'GET /api/v1/leagues/lg_9', token: reader, status: 404, code: 'GRIDDY_NOT_FOUND' },
  { route: 'GET /api/v1/leagues/LG-1', token: reader, status: 400, code: 'FST_ERR_VALIDATION' },
  // The data-dependent check: request.authorize('leagues:admin') unless the caller owns the league.
  { route: 'GET /api/v1/leagues/lg_2', token: user('user_2', ['leagues:read']), status: 200, body: { id: 'lg_2', ownerId: 'user_2', private: true } },
  { route: 'GET /api/v1/leagues/lg_2', token: reader, status: 403, code: 'GRIDDY_AUTH_FORBIDDEN', headers: { 'www-authenticate': 'Bearer error="insufficient_scope", scope="leagues:admin"' } },
  { route: 'GET /api/v1/leagues/lg_2', token: user('user_1', ['leagues:read', 'leagues:admin']), status: 200, body: { id: 'lg_2' } },
  { route: 'GET /api/v1/leagues/lg_2', token: user('user_1', ['leagues:admin']), status: 403, code: 'GRIDDY_AUTH_FORBIDDEN' },
  { route: 'GET /api/v1/leagues/lg_2', token: expired('user_2', ['leagues:read']), status: 401, code: 'GRIDDY_AUTH_EXPIRED' },

  // leagues:write. Authentication comes before body validation.
  { route: 'POST /api/v1/leagues', payload: { name: 'Sunday League' }, token: user('user_1', ['leagues:write']), status: 201, body: { name: 'Sunday League', ownerId: 'user_1', private: false } },
  { route: 'POST /api/v1/leagues', payload: { name: 'Secret League', private: true }, token: user('user_3', ['leagues:write']), status: 201, body: { ownerId: 'user_3', private: true } },
  { route: 'POST /api/v1/leagues', payload: { name: 'Sunday League' }, token: reader, status: 403, code: 'GRIDDY_AUTH_FORBIDDEN' },
  { route: 'POST /api/v1/leagues', payload: { name: 'Sunday League' }, token: noToken, status: 401, code: 'GRIDDY_AUTH_NO_TOKEN' },
  { route: 'POST /api/v1/leagues', payload: { name: 'Sunday League' }, token: expired('user_1', ['leagues:write']), status: 401, code: 'GRIDDY_AUTH_EXPIRED' },
  { route: 'POST /api/v1/leagues', payload: { title: 'no name' }, token: user('user_1', ['leagues:write']), status: 400, code: 'FST_ERR_VALIDATION' },
  { route: 'POST /api/v1/leagues', payload: { title: 'no name' }, token: noToken, status: 401, code: 'GRIDDY_AUTH_NO_TOKEN' },

  // teams:read, plus the private-league rule.
  { route: 'GET /api/v1/leagues/lg_1/teams', token: user('user_1', ['teams:read']), status: 200, ids: ['tm_1', 'tm_2'] },
  { route: 'GET /api/v1/leagues/lg_1/teams', token: reader, status: 403, code: 'GRIDDY_AUTH_FORBIDDEN' },
  { route: 'GET /api/v1/leagues/lg_1/teams', token: noToken, status: 401, code: 'GRIDDY_AUTH_NO_TOKEN' },
  { route: 'GET /api/v1/leagues/lg_1/teams', token: expired('user_1', ['teams:read']), status: 401, code: 'GRIDDY_AUTH_EXPIRED' },
  { route: 'GET /api/v1/leagues/lg_2/teams', token: user('user_2', ['teams:read']), status: 200, ids: ['tm_3'] },
  { route: 'GET /api/v1/leagues/lg_2/teams', token: user('user_1', ['teams:read']), status: 403, code: 'GRIDDY_AUTH_FORBIDDEN' },
  { route: 'GET /api/v1/leagues/lg_9/teams', token: user('user_1', ['teams:read']), status: 404, code: 'GRIDDY_NOT_FOUND' },

  // Admin-only action: matches:write AND matches:admin.
  { route: 'POST /api/v1/matches/mt_1/result', payload: { homeScore: 24, awayScore: 17 }, token: user('user_9', ['matches:write', 'matches:admin']), status: 200, body: { id: 'mt_1', status: 'final', homeScore: 24, awayScore: 17, reportedBy: 'user_9' } },
  { route: 'POST /api/v1/matches/mt_1/result', payload: { homeScore: 24, awayScore: 17 }, token: user('user_1', ['matches:write']), status: 403, code: 'GRIDDY_AUTH_FORBIDDEN', headers: { 'www-authenticate': 'Bearer error="insufficient_scope", scope="matches:write matches:admin"' } },
  { route: 'POST /api/v1/matches/mt_1/result', payload: { homeScore: 24, awayScore: 17 }, token: user('user_1', ['matches:admin']), status: 403, code: 'GRIDDY_AUTH_FORBIDDEN' },
  { route: 'POST /api/v1/matches/mt_1/result', payload: { homeScore: 24, awayScore: 17 }, token: noToken, status: 401, code: 'GRIDDY_AUTH_NO_TOKEN' },
  { route: 'POST /api/v1/matches/mt_1/result', payload: { homeScore: 24, awayScore: 17 }, token: expired('user_9', ['matches:write', 'matches:admin']), status: 401, code: 'GRIDDY_AUTH_EXPIRED' },
  { route: 'POST /api/v1/matches/mt_9/result', payload: { homeScore: 1, awayScore: 0 }, token: user('user_9', ['matches:write', 'matches:admin']), status: 404, code: 'GRIDDY_NOT_FOUND' },
  { route: 'POST /api/v1/matches/mt_1/result', payload: { homeScore: -1, awayScore: 0 }, token: user('user_9', ['matches:write', 'matches:admin']), status: 400, code: 'FST_ERR_VALIDATION' },

  // Public: no authentication, a token is ignored.
  { route: 'GET /healthz', token: noToken, status: 200, body: { ok: true } },
  { route: 'GET /healthz', token: garbage, status: 200, body: { ok: true } },
  { route: 'GET /healthz', token: expired('user_1', []), status: 200, body: { ok: true } },

  // No route: a 404 stays a 404, even without a token.
  { route: 'GET /api/v1/nothing-here', token: noToken, status: 404, body: { error: 'Not Found' } }
]

let issuer: TestIssuer
let app: FastifyInstance

t.before(async () => {
  issuer = await createTestIssuer({
    issuer: 'https://clerk.griddy.test',
    audience: 'https://api.griddy.test',
    authorizedParties: ['https://app.griddy.test']
  })
  app = buildApp({ auth: issuer.pluginOptions })
  await app.ready()
})
t.teardown(async () => { await app.close() })

for (const row of rows) {
  const [method = 'GET', url = '/'] = row.route.split(' ')
  t.test(`${row.route}, ${row.token.label} -> ${row.status}${row.code === undefined ? '' : ` ${row.code}`}`, async (t) => {
    const authorization = row.token.authorization(issuer)
    const res = await app.inject({
      method: method === 'POST' ? 'POST' : 'GET',
      url,
      ...(authorization === undefined ? {} : { headers: { authorization } }),
      ...(row.payload === undefined ? {} : { payload: row.payload })
    })
    t.equal(res.statusCode, row.status, res.body)
    const body = res.json()
    if (row.code !== undefined) t.equal(body.code, row.code)
    if (row.body !== undefined) t.match(body, row.body)
    if (row.ids !== undefined) {
      const list: Array<{ id: string }> = body.leagues ?? body.teams
      t.same(list.map((item) => item.id), row.ids)
    }
    for (const [name, value] of Object.entries(row.headers ?? {})) t.equal(res.headers[name], value, name)
  })
}

// A browser frontend on another origin (the dashboard of `npm start`): CORS with @fastify/cors,
// registered before or after the plugin. dashboard.e2e.test.ts drives the same in a real browser.
for (const corsOrder of ['before', 'after'] as const) {
  t.test(`CORS for a frontend, @fastify/cors registered ${corsOrder} the plugin`, async (t) => {
    const frontend = 'https://app.griddy.test'
    const corsApp = buildApp({ auth: issuer.pluginOptions, frontends: [frontend], corsOrder })
    t.teardown(() => corsApp.close())
    await corsApp.ready()

    const preflight = await corsApp.inject({
      method: 'OPTIONS',
      url: '/api/v1/leagues',
      headers: { origin: frontend, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' }
    })
    t.equal(preflight.statusCode, 204, 'the preflight is answered, unauthenticated')
    t.equal(preflight.headers['access-control-allow-origin'], frontend)
    t.equal(preflight.headers['access-control-allow-methods'], 'GET, POST')
    t.equal(preflight.headers['access-control-allow-headers'], 'Authorization, Content-Type')
    t.equal(preflight.headers['access-control-max-age'], '600')

    const calls: Array<{ authorization?: string, status: number, code?: string }> = [
      { authorization: `Bearer ${issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] })}`, status: 200 },
      { status: 401, code: 'GRIDDY_AUTH_NO_TOKEN' },
      { authorization: `Bearer ${issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] }, { expiresIn: -60 })}`, status: 401, code: 'GRIDDY_AUTH_EXPIRED' },
      { authorization: `Bearer ${issuer.sign({ sub: 'user_1', permissions: ['leagues:read'], azp: 'https://other.griddy.test' })}`, status: 401, code: 'GRIDDY_AUTH_AUTHORIZED_PARTY' },
      { authorization: `Bearer ${issuer.sign({ sub: 'user_1', permissions: ['teams:read'] })}`, status: 403, code: 'GRIDDY_AUTH_FORBIDDEN' }
    ]
    for (const row of calls) {
      const res = await corsApp.inject({ url: '/api/v1/leagues', headers: { origin: frontend, ...(row.authorization === undefined ? {} : { authorization: row.authorization }) } })
      t.equal(res.statusCode, row.status, `${row.code ?? 'ok'}: status`)
      if (row.code !== undefined) t.equal(res.json().code, row.code)
      t.equal(res.headers['access-control-allow-origin'], frontend, `${row.code ?? 'ok'}: readable by the frontend`)
      t.equal(res.headers['access-control-expose-headers'], 'WWW-Authenticate, Retry-After', `${row.code ?? 'ok'}: WWW-Authenticate exposed`)
    }
    const otherOrigin = await corsApp.inject({ url: '/api/v1/leagues', headers: { origin: 'https://evil.example' } })
    t.equal(otherOrigin.headers['access-control-allow-origin'], undefined, 'another origin gets no CORS: its page cannot read the answer')
  })
}
