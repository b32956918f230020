/**
 * SPEC §4, browser frontends on another origin: with @fastify/cors
 * registered before or after the plugin, in the same scope or across
 * scopes, a preflight is answered and every 200, 401, 403 and 503 carries
 * the CORS headers the app configured, so the page can read `code`,
 * `message` and (exposed) `WWW-Authenticate`. Where a layout cannot work,
 * `ready()` fails with a message naming @fastify/cors and what to change.
 *
 * One table: layout × request -> status, Access-Control-Allow-Origin,
 * Access-Control-Expose-Headers, body code and message.
 */
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type LightMyRequestResponse } from 'fastify'
import cors, { type FastifyCorsOptions } from '@fastify/cors'
import griddyAuth, { type GriddyAuthOptions } from '../lib/index'
import { createTestIssuer, type TestIssuer } from '../lib/testing/index'
import { createFakeIdp, type FakeIdp } from './fixtures/fake-idp'
import { messages } from './helpers'

const frontend = 'https://app.griddy.test'
const exposed = 'WWW-Authenticate, Retry-After'

/** The @fastify/cors options the README recommends, plus a hook variant. */
function corsOptions (extra: FastifyCorsOptions = {}): FastifyCorsOptions {
  return {
    origin: [frontend],
    methods: ['GET', 'POST'],
    allowedHeaders: ['Authorization', 'Content-Type'],
    exposedHeaders: ['WWW-Authenticate', 'Retry-After'],
    ...extra
  }
}

const routes: FastifyPluginAsync = async (app) => {
  app.get('/leagues', { config: { permissions: 'leagues:read' } }, async (request) => ({ userId: request.auth?.userId }))
}

type Layout = (app: FastifyInstance, auth: GriddyAuthOptions) => void

/** How an app may be assembled: where @fastify/cors goes relative to the plugin and the routes. */
const layouts: Array<{ name: string, build: Layout }> = [
  {
    name: 'cors before the plugin, same scope',
    build: (app, auth) => { app.register(cors, corsOptions()); app.register(griddyAuth, auth); app.register(routes) }
  },
  {
    name: 'cors after the plugin, same scope',
    build: (app, auth) => { app.register(griddyAuth, auth); app.register(cors, corsOptions()); app.register(routes) }
  },
  {
    name: 'cors after the plugin and the routes, same scope',
    build: (app, auth) => { app.register(griddyAuth, auth); app.register(routes); app.register(cors, corsOptions()) }
  },
  {
    name: 'cors at the root, plugin and routes in a child scope',
    build: (app, auth) => {
      app.register(cors, corsOptions())
      app.register(async (child) => { await child.register(griddyAuth, auth); child.register(routes) })
    }
  },
  {
    name: 'a child scope with plugin and routes, then cors at the root',
    build: (app, auth) => {
      app.register(async (child) => { await child.register(griddyAuth, auth); child.register(routes) })
      app.register(cors, corsOptions())
    }
  },
  {
    name: 'plugin at the root, cors and routes in a child scope',
    build: (app, auth) => {
      app.register(griddyAuth, auth)
      app.register(async (child) => { await child.register(cors, corsOptions()); child.register(routes) })
    }
  },
  {
    name: 'cors with hook: \'preParsing\', registered before the plugin',
    build: (app, auth) => { app.register(cors, corsOptions({ hook: 'preParsing' })); app.register(griddyAuth, auth); app.register(routes) }
  },
  {
    name: 'cors with hook: \'preParsing\' at the root, plugin in a child scope',
    build: (app, auth) => {
      app.register(cors, corsOptions({ hook: 'preParsing' }))
      app.register(async (child) => { await child.register(griddyAuth, auth); child.register(routes) })
    }
  },
  {
    name: 'cors with an options delegator, after the plugin',
    build: (app, auth) => {
      app.register(griddyAuth, auth)
      app.register(cors, { delegator: (_request, callback) => callback(null, corsOptions()) })
      app.register(routes)
    }
  }
]

interface Expected {
  status: number
  code?: string
  message?: string
  /** Exact WWW-Authenticate; absent when undefined. */
  challenge?: string
}

interface Row {
  name: string
  request: (issuer: TestIssuer, idp: FakeIdp) => { method: 'GET' | 'OPTIONS', headers: Record<string, string> }
  expected: Expected
}

const bearer = (token: string): Record<string, string> => ({ origin: frontend, authorization: `Bearer ${token}` })

const rows: Row[] = [
  {
    name: 'preflight',
    request: () => ({ method: 'OPTIONS', headers: { origin: frontend, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } }),
    expected: { status: 204 }
  },
  {
    name: '200',
    request: (issuer) => ({ method: 'GET', headers: bearer(issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] })) }),
    expected: { status: 200 }
  },
  {
    name: '401 no token',
    request: () => ({ method: 'GET', headers: { origin: frontend } }),
    expected: { status: 401, code: 'GRIDDY_AUTH_NO_TOKEN', message: messages.GRIDDY_AUTH_NO_TOKEN, challenge: 'Bearer' }
  },
  {
    name: '401 expired',
    request: (issuer) => ({ method: 'GET', headers: bearer(issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] }, { expiresIn: -60 })) }),
    expected: { status: 401, code: 'GRIDDY_AUTH_EXPIRED', message: 'Token has expired', challenge: 'Bearer error="invalid_token", error_description="Token has expired"' }
  },
  {
    name: '401 another frontend\'s token',
    request: (issuer) => ({ method: 'GET', headers: bearer(issuer.sign({ sub: 'user_1', permissions: ['leagues:read'], azp: 'https://other.griddy.test' })) }),
    expected: { status: 401, code: 'GRIDDY_AUTH_AUTHORIZED_PARTY', message: 'Invalid authorized party.', challenge: 'Bearer error="invalid_token", error_description="Invalid authorized party."' }
  },
  {
    name: '403',
    request: (issuer) => ({ method: 'GET', headers: bearer(issuer.sign({ sub: 'user_1', permissions: ['teams:read'] })) }),
    expected: { status: 403, code: 'GRIDDY_AUTH_FORBIDDEN', message: messages.GRIDDY_AUTH_FORBIDDEN, challenge: 'Bearer error="insufficient_scope", scope="leagues:read"' }
  },
  {
    name: '503 (JWKS down)',
    request: (issuer, idp) => {
      idp.set('status', { status: 500, body: 'down' })
      // A key the plugin has not fetched yet: it must ask the (failing) provider.
      return { method: 'GET', headers: bearer(issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] }, { kid: 'not-fetched-yet' })) }
    },
    expected: { status: 503, code: 'GRIDDY_AUTH_UNAVAILABLE', message: messages.GRIDDY_AUTH_UNAVAILABLE }
  }
]

let issuer: TestIssuer
t.before(async () => {
  issuer = await createTestIssuer({ issuer: 'https://clerk.griddy.test', audience: 'https://api.griddy.test', authorizedParties: [frontend] })
})

/** An app assembled by `layout`, its keys fetched from a fake IdP that is up; closed on teardown. */
async function appWith (t: Test, layout: Layout): Promise<{ app: FastifyInstance, idp: FakeIdp }> {
  const idp = await createFakeIdp({ jwks: issuer.jwks })
  t.teardown(() => idp.close())
  const app = Fastify()
  t.teardown(() => app.close())
  layout(app, { issuer: issuer.issuer, audience: issuer.audience, authorizedParties: [frontend], jwksUrl: idp.jwksUrl, jwksCooldown: 0 })
  await app.ready()
  return { app, idp }
}

function assertCors (t: Test, res: LightMyRequestResponse, expected: Expected): void {
  t.equal(res.statusCode, expected.status, 'status')
  t.equal(res.headers['access-control-allow-origin'], frontend, 'Access-Control-Allow-Origin: the page can read the answer')
  if (expected.status === 204) {
    t.equal(res.headers['access-control-allow-headers'], 'Authorization, Content-Type', 'the preflight allows Authorization')
    t.equal(res.body, '', 'the preflight has no body')
    return
  }
  t.equal(res.headers['access-control-expose-headers'], exposed, 'Access-Control-Expose-Headers')
  const body = res.json() as { code?: string, message?: string, userId?: string }
  if (expected.code === undefined) {
    t.same(body, { userId: 'user_1' }, 'the handler answered')
    return
  }
  t.equal(body.code, expected.code, 'body code')
  t.equal(body.message, expected.message, 'body message')
  if (expected.challenge !== undefined) t.equal(res.headers['www-authenticate'], expected.challenge, 'WWW-Authenticate')
  if (expected.status === 503) t.match(res.headers['retry-after'], /^\d+$/, 'Retry-After')
}

for (const layout of layouts) {
  t.test(layout.name, async (t) => {
    const { app, idp } = await appWith(t, layout.build)
    for (const row of rows) {
      t.test(`${row.name} -> ${row.expected.status}${row.expected.code === undefined ? '' : ` ${row.expected.code}`}`, async (t) => {
        const { method, headers } = row.request(issuer, idp)
        assertCors(t, await app.inject({ method, url: '/leagues', headers }), row.expected)
      })
    }
  })
}

// Layouts where @fastify/cors's hook would run after the plugin's answers: start-up fails, saying what to change.
const tooLate = (hook: string, where: string): RegExp => new RegExp(
  `^fastify-griddy-auth: @fastify/cors is registered with hook: '${hook}' \\(${where}\\): that hook runs after the plugin has answered, ` +
  'so the plugin\'s 401, 403 and 503 answers would carry no CORS headers and a browser frontend on another origin would only see "Failed to fetch"\\. ' +
  'Use @fastify/cors\'s default hook, \'onRequest\': it works registered before or after fastify-griddy-auth\\.$')
const preParsingAfter = (where: string): RegExp => new RegExp(
  `^fastify-griddy-auth: @fastify/cors is registered with hook: 'preParsing' after fastify-griddy-auth \\(${where}\\): its hook would run after the plugin's, ` +
  'so .* "Failed to fetch"\\. Register @fastify/cors before fastify-griddy-auth \\(in the same scope or a parent scope\\), ' +
  'or use its default hook, \'onRequest\', which works in either order\\.$')
const leaguesRoute = 'route "GET /leagues"'

const impossible: Array<{ name: string, build: Layout, message: RegExp }> = [
  {
    name: 'hook: \'preParsing\', registered after the plugin',
    build: (app, auth) => { app.register(griddyAuth, auth); app.register(cors, corsOptions({ hook: 'preParsing' })); app.register(routes) },
    message: preParsingAfter(leaguesRoute)
  },
  {
    name: 'hook: \'preParsing\' in a child scope, the plugin at the root',
    build: (app, auth) => {
      app.register(griddyAuth, auth)
      app.register(async (child) => { await child.register(cors, corsOptions({ hook: 'preParsing' })); child.register(routes) })
    },
    message: preParsingAfter(leaguesRoute)
  },
  ...(['preValidation', 'preHandler', 'preSerialization'] as const).flatMap((hook) => [
    {
      name: `hook: '${hook}', registered before the plugin`,
      build: (app: FastifyInstance, auth: GriddyAuthOptions) => { app.register(cors, corsOptions({ hook })); app.register(griddyAuth, auth); app.register(routes) },
      message: tooLate(hook, leaguesRoute)
    },
    {
      name: `hook: '${hook}', registered after the plugin`,
      build: (app: FastifyInstance, auth: GriddyAuthOptions) => { app.register(griddyAuth, auth); app.register(routes); app.register(cors, corsOptions({ hook })) },
      message: tooLate(hook, leaguesRoute)
    }
  ]),
  {
    name: 'an options delegator with hook: \'preHandler\'',
    build: (app, auth) => {
      app.register(griddyAuth, auth)
      app.register(cors, { hook: 'preHandler', delegator: (_request, callback) => callback(null, corsOptions()) })
      app.register(routes)
    },
    message: tooLate('preHandler', leaguesRoute)
  },
  {
    name: 'hook: \'preHandler\', with routes declared before the plugin (Fastify shows it none of them)',
    build: (app, auth) => {
      app.register(cors, corsOptions({ hook: 'preHandler' }))
      app.get('/leagues', async () => ({}))
      app.register(griddyAuth, auth)
    },
    message: tooLate('preHandler', 'the scope fastify-griddy-auth is registered in')
  }
]

t.test('layouts that cannot work: ready() fails, naming @fastify/cors and what to change', async (t) => {
  for (const { name, build, message } of impossible) {
    t.test(name, async (t) => {
      const app = Fastify()
      t.teardown(() => app.close())
      build(app, issuer.pluginOptions)
      await t.rejects(async () => { await app.ready() }, { message })
    })
  }
})

t.test('a late @fastify/cors hook is no concern for public routes: nothing guarded reaches it', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(async (guarded) => {
    await guarded.register(griddyAuth, issuer.pluginOptions)
    // Two guarded routes in the plugin's scope, and a child scope with CORS after handlers (public routes only).
    guarded.get('/private', async () => ({}))
    guarded.get('/private/too', async () => ({}))
    guarded.register(async (child) => {
      await child.register(cors, corsOptions({ hook: 'preHandler' }))
      child.get('/status', { config: { public: true } }, async (request) => {
        await request.authorize()
        return {}
      })
    })
  })
  await app.ready()
  const res = await app.inject({ url: '/status', headers: { origin: frontend } })
  t.equal(res.statusCode, 401, 'authorize() in the handler: 401')
  t.equal(res.headers['access-control-allow-origin'], frontend, 'with the CORS headers: the handler runs after every hook')
  t.equal(res.json().code, 'GRIDDY_AUTH_NO_TOKEN')
})

const preflightHeaders = { origin: frontend, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' }

t.test('without @fastify/cors: a preflight is never authenticated, any other OPTIONS is', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const seen: Array<string | null> = []
  await app.register(griddyAuth, issuer.pluginOptions)
  app.get('/leagues', { config: { permissions: 'leagues:read' } }, async () => ({}))
  // An app answering preflights itself, and plain OPTIONS requests with the caller.
  app.options('/teams', async (request, reply) => {
    seen.push(request.auth?.userId ?? null)
    if (request.headers['access-control-request-method'] !== undefined) {
      return await reply.code(204).header('access-control-allow-origin', frontend).header('access-control-allow-headers', 'authorization').send()
    }
    return { allow: 'GET, OPTIONS' }
  })
  await app.ready()

  const preflightToGetRoute = await app.inject({ method: 'OPTIONS', url: '/leagues', headers: preflightHeaders })
  t.equal(preflightToGetRoute.statusCode, 404, 'to a route with no OPTIONS handler: Fastify\'s 404, not 401')
  t.equal(preflightToGetRoute.headers['www-authenticate'], undefined, 'no challenge')

  const preflight = await app.inject({ method: 'OPTIONS', url: '/teams', headers: { ...preflightHeaders, authorization: 'Bearer not.a.token' } })
  t.equal(preflight.statusCode, 204, 'to the app\'s OPTIONS route: the app answers it')
  t.equal(preflight.headers['access-control-allow-origin'], frontend)
  t.same(seen, [null], 'unauthenticated (request.auth is null), whatever Authorization it carries')

  const token = issuer.sign({ sub: 'user_1' })
  const cases: Array<{ name: string, headers: Record<string, string>, status: number, code?: string }> = [
    { name: 'a plain OPTIONS, no token', headers: {}, status: 401, code: 'GRIDDY_AUTH_NO_TOKEN' },
    { name: 'a plain OPTIONS, a bad token', headers: { authorization: 'Bearer not.a.token' }, status: 401, code: 'GRIDDY_AUTH_MALFORMED' },
    { name: 'OPTIONS with Origin only', headers: { origin: frontend }, status: 401, code: 'GRIDDY_AUTH_NO_TOKEN' },
    { name: 'OPTIONS with Access-Control-Request-Method only', headers: { 'access-control-request-method': 'GET' }, status: 401, code: 'GRIDDY_AUTH_NO_TOKEN' },
    { name: 'OPTIONS with an empty Origin', headers: { origin: '', 'access-control-request-method': 'GET' }, status: 401, code: 'GRIDDY_AUTH_NO_TOKEN' },
    { name: 'OPTIONS with an empty Access-Control-Request-Method', headers: { origin: frontend, 'access-control-request-method': '' }, status: 401, code: 'GRIDDY_AUTH_NO_TOKEN' },
    { name: 'a plain OPTIONS with a valid token', headers: { authorization: `Bearer ${token}` }, status: 200 }
  ]
  for (const c of cases) {
    const res = await app.inject({ method: 'OPTIONS', url: '/teams', headers: c.headers })
    t.equal(res.statusCode, c.status, `${c.name}: ${c.status}`)
    if (c.code !== undefined) t.equal(res.json().code, c.code, `${c.name}: ${c.code}`)
  }
  t.same(seen, [null, 'user_1'], 'the handler ran for the preflight and for the authenticated OPTIONS only')

  const getLikePreflight = await app.inject({ method: 'GET', url: '/leagues', headers: preflightHeaders })
  t.equal(getLikePreflight.statusCode, 401, 'preflight headers on a GET: authenticated as usual')
})

t.test('with @fastify/cors: what reaches the plugin as OPTIONS', async (t) => {
  async function appWithCors (t: Test, options: FastifyCorsOptions): Promise<FastifyInstance> {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(griddyAuth, issuer.pluginOptions)
    await app.register(cors, corsOptions(options))
    app.get('/leagues', async () => ({}))
    await app.ready()
    return app
  }

  t.test('default options: @fastify/cors answers every OPTIONS itself, before the plugin', async (t) => {
    const app = await appWithCors(t, {})
    const plain = await app.inject({ method: 'OPTIONS', url: '/leagues' })
    t.equal(plain.statusCode, 400, 'a plain OPTIONS: its strictPreflight 400')
    t.equal(plain.body, 'Invalid Preflight Request')
  })

  t.test('preflightContinue: the preflight passes the plugin unauthenticated, to @fastify/cors\'s OPTIONS route', async (t) => {
    const app = await appWithCors(t, { preflightContinue: true })
    const preflight = await app.inject({ method: 'OPTIONS', url: '/leagues', headers: preflightHeaders })
    t.equal(preflight.statusCode, 200)
    t.equal(preflight.headers['access-control-allow-origin'], frontend)
  })

  t.test('preflight: false: a plain OPTIONS reaches the plugin and is authenticated', async (t) => {
    const app = await appWithCors(t, { preflight: false })
    const plain = await app.inject({ method: 'OPTIONS', url: '/leagues', headers: { origin: frontend } })
    t.equal(plain.statusCode, 401)
    t.equal(plain.json().code, 'GRIDDY_AUTH_NO_TOKEN')
    t.equal(plain.headers['access-control-allow-origin'], frontend, 'with the CORS headers')
  })
})
