/**
 * The dashboard's own server, in local mode of `npm start`: the page of
 * examples/dashboard/ on an origin of its own (another port than the API's,
 * so every call it makes to the API is a CORS request, as
 * app.griddy.example calling api.griddy.example would be), and a stand-in
 * for Clerk's `getToken()`.
 *
 * `POST /dev/token` mints a fresh session token (60 s, like Clerk's) from the
 * local dev issuer for one of the demo users, whose permissions are fixed
 * here: the page cannot ask for more. It answers the dashboard's own page
 * only (its `Origin`), never carries CORS headers, and lives on this server,
 * never on the API. Two variants let the page show the API's refusals on
 * purpose: `expired` (a token that expired a minute ago, as a page that kept
 * one too long would send) and `other-frontend` (a token whose `azp` is
 * another frontend's origin).
 *
 * Dev only: a real frontend gets its tokens from its identity provider.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { DevTokenRequest } from './local-issuer'

export interface DemoUser {
  readonly id: string
  readonly name: string
  readonly sessionId: string
  readonly permissions: readonly string[]
}

/** Who can sign in (seed data in app.ts: user_1 owns lg_1, user_2 owns the private lg_2). */
export const demoUsers: readonly DemoUser[] = [
  { id: 'user_1', name: 'Alex', sessionId: 'sess_1', permissions: ['leagues:read', 'teams:read'] },
  { id: 'user_2', name: 'Blair', sessionId: 'sess_2', permissions: ['leagues:read', 'teams:read'] },
  { id: 'user_4', name: 'Sam', sessionId: 'sess_4', permissions: ['teams:read'] }
]

/** Seconds a fresh token lives: Clerk's session tokens live 60 s. */
export const tokenLifetime = 60

/** The `azp` of the `other-frontend` variant: a frontend the API does not list in `authorizedParties`. */
export const otherFrontend = 'https://other-app.griddy.example'

const variants = ['fresh', 'expired', 'other-frontend'] as const
type Variant = typeof variants[number]

/** What the dashboard needs from the rest of local mode, once the API is listening. */
export interface DashboardBackend {
  /** The API's origin, e.g. `http://127.0.0.1:3000`. */
  readonly apiUrl: string
  mint (request: DevTokenRequest): string
}

export interface Dashboard {
  readonly app: FastifyInstance
  /** Hands over the API's URL and the token minter; until then the page answers 503. */
  connect (backend: DashboardBackend): void
}

const pageDir = join(__dirname, 'dashboard')

export function buildDashboard (server?: FastifyServerOptions): Dashboard {
  const app = Fastify(server)
  // Read once: the page is two static files, no build step.
  const html = readFileSync(join(pageDir, 'index.html'), 'utf8')
  const script = readFileSync(join(pageDir, 'dashboard.js'), 'utf8')
  let backend: DashboardBackend | undefined

  function connected (): DashboardBackend {
    if (backend === undefined) throw Object.assign(new Error('The dashboard is starting: try again in a moment.'), { statusCode: 503 })
    return backend
  }

  app.get('/', async (_request, reply) => {
    const { apiUrl } = connected()
    // The page may call its own origin (getToken) and the API, nothing else.
    reply.header('content-security-policy', `default-src 'self'; style-src 'unsafe-inline'; connect-src 'self' ${apiUrl}`)
    return await reply.type('text/html; charset=utf-8').send(html)
  })
  app.get('/dashboard.js', async (_request, reply) => await reply.type('text/javascript; charset=utf-8').send(script))
  app.get('/config.json', async () => ({
    api: connected().apiUrl,
    users: demoUsers.map(({ id, name, permissions }) => ({ id, name, permissions }))
  }))

  app.post<{ Body: { user: string, variant?: Variant } }>('/dev/token', {
    schema: {
      body: {
        type: 'object',
        required: ['user'],
        additionalProperties: false,
        properties: {
          user: { type: 'string', enum: demoUsers.map((user) => user.id) },
          variant: { type: 'string', enum: [...variants] }
        }
      }
    }
  }, async (request, reply) => {
    // Only this server's own page: a page of another origin cannot even send
    // this JSON POST without a preflight, which nothing here answers.
    if (request.headers.origin !== `${request.protocol}://${request.host}`) {
      return await reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: 'The dev token endpoint answers the dashboard\'s own page only.' })
    }
    const user = demoUsers.find((candidate) => candidate.id === request.body.user) as DemoUser
    const variant = request.body.variant ?? 'fresh'
    const token = connected().mint({
      sub: user.id,
      sessionId: user.sessionId,
      permissions: user.permissions,
      expiresIn: variant === 'expired' ? -tokenLifetime : tokenLifetime,
      ...(variant === 'other-frontend' ? { authorizedParty: otherFrontend } : {})
    })
    reply.header('cache-control', 'no-store')
    return { token }
  })

  return {
    app,
    connect (next) { backend = next }
  }
}
