/**
 * The plugin among an app's own parts (issue #15): an app's own
 * @fastify/jwt or `request.user`, the plugin registered twice, Fastify's
 * register options (`prefix`, `logLevel`, `logSerializers`), the log lines
 * a refused request costs, URLs in log lines, and an `Authorization`
 * header sent twice on a real socket (Node drops the second one before
 * any hook runs, so `inject` cannot show it).
 */
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import griddyAuth, { type GriddyAuthOptions } from '../lib/index'
import { redactUrl } from '../lib/redact-url'
import { createTestIssuer, type TestIssuer } from '../lib/testing/index'
import { assertFailure, badHeader, captureLogs, countingServer, get, messages, noToken, standardRoutes, type Tap } from './helpers'

let issuer: TestIssuer
let options: GriddyAuthOptions
t.before(async () => {
  issuer = await createTestIssuer()
  options = issuer.pluginOptions
})

t.test("an app's own @fastify/jwt keeps working, before or after the plugin, and so does the plugin", async (t) => {
  const orders = ['app jwt first', 'plugin first', 'app jwt in a parent scope'] as const
  for (const order of orders) {
    t.test(order, async (t) => {
      const app = Fastify()
      t.teardown(() => app.close())
      const appJwt = (): unknown => app.register(fastifyJwt, { secret: 'the-app-own-secret-of-32-characters' })
      if (order !== 'plugin first') await appJwt()
      const register = async (scope: FastifyInstance): Promise<void> => {
        await scope.register(griddyAuth, options)
        scope.get('/guarded', async (request) => ({ userId: request.auth?.userId, user: request.user ?? null }))
        scope.get('/app-login', { config: { public: true } }, async (request) => {
          await request.jwtVerify()
          return { user: request.user }
        })
      }
      if (order === 'app jwt in a parent scope') await app.register(async (child) => { await register(child) })
      else await register(app)
      if (order === 'plugin first') await appJwt()
      await app.ready()

      // The plugin: our tokens pass, none fails, and it never fills the app's request.user.
      const ours = await get(app, '/guarded', issuer.sign({ sub: 'user_1' }))
      t.equal(ours.statusCode, 200, 'the plugin admits its token')
      t.same(ours.json(), { userId: 'user_1', user: null }, 'request.user is left to the app')
      assertFailure(t, await get(app, '/guarded'), noToken(), undefined, 'the plugin still refuses no token:')

      // The app's own @fastify/jwt: its decorators, its secret, its request.user.
      const appToken = app.jwt.sign({ sub: 'app-user', role: 'admin' })
      const theirs = await get(app, '/app-login', appToken)
      t.equal(theirs.statusCode, 200, "the app's request.jwtVerify() verifies the app's token")
      t.match(theirs.json(), { user: { sub: 'app-user', role: 'admin' } }, "and sets the app's request.user")
      const crossed = await get(app, '/app-login', issuer.sign({ sub: 'user_1' }))
      // (@fastify/jwt's own answer to an RS256 token under an HS secret is a 500: its weak spot, not ours.)
      t.not(crossed.statusCode, 200, "the app's verifier does not take the plugin's tokens")
      t.equal(Object.keys(app.jwt).includes('griddyAuth'), false, "the plugin's namespace is not filed in the app's fastify.jwt")
      t.equal(app.hasRequestDecorator('griddyAuthJwtVerify'), false, "the plugin's verifier stays in its child")
    })
  }
})

t.test('anything else that decorates request.user before the plugin is no collision', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.decorateRequest('user', 'anonymous')
  app.addHook('onRequest', async (request) => { request.user = 'from-passport' })
  await app.register(griddyAuth, options)
  app.get('/guarded', async (request) => ({ userId: request.auth?.userId, user: request.user }))
  await app.ready()
  t.same((await get(app, '/guarded', issuer.sign({ sub: 'user_1' }))).json(), { userId: 'user_1', user: 'from-passport' })
})

t.test('registering the plugin twice in one scope chain fails at start-up, naming the plugin', async (t) => {
  const layouts: Array<[string, (app: FastifyInstance) => void]> = [
    ['nested', (app) => { app.register(griddyAuth, options).register(async (child) => { await child.register(griddyAuth, options) }) }],
    ['twice at the root', (app) => { app.register(griddyAuth, options).register(griddyAuth, options) }]
  ]
  for (const [name, layout] of layouts) {
    const app = Fastify()
    layout(app)
    await t.rejects(async () => { await app.ready() }, {
      message: 'fastify-griddy-auth is already registered in this scope or a parent scope: register it once, in the outermost scope that needs it (its policy reaches every child scope)'
    }, name)
    await app.close()
  }
  // Sibling scopes, each with its own options, remain fine.
  const app = Fastify()
  t.teardown(() => app.close())
  for (const prefix of ['/a', '/b']) {
    app.register(async (scope) => {
      await scope.register(griddyAuth, options)
      scope.get('/me', async (request) => request.auth?.userId)
    }, { prefix })
  }
  await app.ready()
  t.equal((await get(app, '/b/me', issuer.sign({ sub: 'user_2' }))).body, 'user_2', 'two sibling scopes')
})

/** An app whose log is captured, with the plugin registered with `extra` (Fastify's register options). */
async function loggedApp (t: Tap, extra: Record<string, unknown>, fastifyOptions: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, logs: ReturnType<typeof captureLogs> }> {
  const logs = captureLogs()
  const app = Fastify({ logger: { level: 'info', stream: logs.stream }, ...fastifyOptions })
  t.teardown(() => app.close())
  await app.register(griddyAuth, { ...options, ...extra } as GriddyAuthOptions)
  standardRoutes(app)
  await app.ready()
  return { app, logs }
}

t.test("Fastify's own register options are accepted, and logLevel / logSerializers apply to the plugin's lines", async (t) => {
  t.test('prefix: accepted; the plugin declares no route of its own, so nothing moves', async (t) => {
    const { app } = await loggedApp(t, { prefix: '/api' })
    assertFailure(t, await get(app, '/private'), noToken(), undefined, '/private still guarded:')
  })

  t.test("the plugin's refusal line follows its logLevel, not the app's", async (t) => {
    const cases: Array<[string, Record<string, unknown>, 'info' | 'warn', number]> = [
      ['no logLevel: the app level (info)', {}, 'info', 1],
      ['no logLevel: the app level (warn)', {}, 'warn', 0],
      ["logLevel 'warn' hides it", { logLevel: 'warn' }, 'info', 0],
      ["logLevel 'silent' hides it", { logLevel: 'silent' }, 'info', 0],
      ["logLevel 'info' under an app at 'warn' shows it", { logLevel: 'info' }, 'warn', 1]
    ]
    for (const [name, extra, appLevel, expected] of cases) {
      const logs = captureLogs()
      const app = Fastify({ logger: { level: appLevel, stream: logs.stream } })
      await app.register(griddyAuth, { ...options, ...extra } as GriddyAuthOptions)
      standardRoutes(app)
      await app.ready()
      const res = await get(app, '/private')
      t.equal(res.statusCode, 401, `${name}: still refused`)
      const lines = logs.pluginLines().filter((line) => line.code === 'GRIDDY_AUTH_NO_TOKEN')
      t.equal(lines.length, expected, `${name}: ${expected} plugin line(s)`)
      if (expected === 1) t.match(lines[0], { level: 30, route: '/private', reqId: /./ }, `${name}: at info, with the route and the request id`)
      await app.close()
    }
  })

  t.test('logSerializers apply to the plugin lines', async (t) => {
    const { app, logs } = await loggedApp(t, { logSerializers: { code: (code: unknown) => `serialized:${String(code)}` } })
    await get(app, '/private')
    t.same(logs.pluginLines().map((line) => line.code), ['serialized:GRIDDY_AUTH_NO_TOKEN'])
  })

  t.test('an unknown logLevel stops start-up naming the option', async (t) => {
    const app = Fastify({ logger: { level: 'info', stream: captureLogs().stream } })
    app.register(griddyAuth, { ...options, logLevel: 'verbose' } as GriddyAuthOptions)
    await t.rejects(async () => { await app.ready() }, { name: 'TypeError', message: /^fastify-griddy-auth: option "logLevel" must be one of trace, debug, info, warn, error, fatal, silent, got "verbose"$/ })
    await app.close()
  })

  t.test('with no logger at all, the options are still accepted', async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(griddyAuth, { ...options, logLevel: 'warn', logSerializers: {} } as GriddyAuthOptions)
    standardRoutes(app)
    await app.ready()
    assertFailure(t, await get(app, '/private'), noToken(), undefined, 'still guarded:')
  })
})

t.test('one log line per refused request (the README recipes)', async (t) => {
  const message = messages.GRIDDY_AUTH_NO_TOKEN
  const recipes: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
    ["the defaults: the plugin's line and Fastify's error line", {}, {}],
    ["Fastify's disableRequestLogging: the plugin's line only", {}, { disableRequestLogging: true }],
    ["the plugin at logLevel 'warn': Fastify's error line only", { logLevel: 'warn' }, {}]
  ]
  const expected = [2, 1, 1]
  for (const [i, [name, extra, fastifyOptions]] of recipes.entries()) {
    const { app, logs } = await loggedApp(t, extra, fastifyOptions)
    await get(app, '/private')
    const refusal = logs.lines.filter((line) => typeof line.msg === 'string' && line.msg.includes(message))
    t.equal(refusal.length, expected[i], `${name}: ${expected[i]} line(s) about the refusal`)
    t.ok(refusal.every((line) => line.level === 30 && typeof line.reqId === 'string'), `${name}: at info, with the request id`)
  }
})

t.test('JWKS URLs are logged without credentials, query or fragment', async (t) => {
  const idp = await countingServer(t, (_request, response) => { response.writeHead(500).end() })
  const { app, logs } = await loggedApp(t, { jwks: undefined, jwksUrl: `${idp.url}/tenant/jwks.json?api_key=SECRET-KEY#frag` })
  t.equal((await get(app, '/private', issuer.sign({ sub: 'u' }))).statusCode, 503)
  const outage = logs.pluginLines().filter((line) => line.level === 50)
  t.equal(outage.length, 1, 'the outage is logged')
  t.equal(outage[0]?.jwksUrl, `${idp.url}/tenant/jwks.json`, 'origin and path only')
  t.notOk(logs.raw.join('').includes('SECRET-KEY'), 'the query string is in no line')
  t.equal(idp.paths[0], '/tenant/jwks.json?api_key=SECRET-KEY', 'while the fetch itself uses the URL as configured')

  const table: Array<[string, string]> = [
    ['https://user:pass@idp.test:8443/a/b?x=1#y', 'https://idp.test:8443/a/b'],
    ['http://idp.test', 'http://idp.test/'],
    ['not a url', '(not a URL)']
  ]
  for (const [url, logged] of table) t.equal(redactUrl(url), logged, url)
})

/** Sends a request line and headers as written on a raw socket; resolves to the status and body. */
function rawRequest (port: number, lines: string[]): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let data = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { data += chunk })
    socket.on('error', reject)
    socket.on('end', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n')
      resolve({ status: Number(head.split(' ')[1]), body })
    })
    socket.end([...lines, 'Host: 127.0.0.1', 'Connection: close', '', ''].join('\r\n'))
  })
}

t.test('an Authorization header sent twice on the wire is GRIDDY_AUTH_BAD_HEADER, even when the first is a cached valid token', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(griddyAuth, options)
  standardRoutes(app)
  app.get('/open', { config: { public: true } }, async (request) => (await request.authorize()).userId)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port

  const valid = issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] })
  const other = issuer.sign({ sub: 'user_2', permissions: ['leagues:read'] })
  const once = await rawRequest(port, ['GET /private HTTP/1.1', `Authorization: Bearer ${valid}`])
  t.equal(once.status, 200, 'sent once: admitted (and now cached)')

  const expected = badHeader()
  const cases: Array<[string, string, string[]]> = [
    ['the cached valid token, then junk', '/private', [`Authorization: Bearer ${valid}`, 'Authorization: Bearer junk']],
    ['the cached valid token twice', '/private', [`Authorization: Bearer ${valid}`, `Authorization: Bearer ${valid}`]],
    ['two valid tokens of two users', '/leagues/1', [`Authorization: Bearer ${other}`, `Authorization: Bearer ${valid}`]],
    ['names in other cases', '/private', [`authorization: Bearer ${valid}`, 'AUTHORIZATION: Basic eDp5']],
    ['apart, other headers between', '/private', [`Authorization: Bearer ${valid}`, 'Accept: */*', 'Cache-Control: no-cache', 'Authorization: Bearer x']],
    ['on a public route, asked by authorize()', '/open', [`Authorization: Bearer ${valid}`, `Authorization: Bearer ${other}`]]
  ]
  for (const [name, url, headers] of cases) {
    const res = await rawRequest(port, [`GET ${url} HTTP/1.1`, ...headers])
    t.equal(res.status, expected.status, `${name}: ${expected.status}`)
    t.match(JSON.parse(res.body), { code: expected.code, message: expected.message }, `${name}: ${expected.code}`)
  }
  const headers = [`Authorization: Bearer ${valid}`, 'Authorization: Bearer junk']
  t.equal((await rawRequest(port, ['GET /public HTTP/1.1', ...headers])).status, 200, 'a public route ignores the header, even twice')
  t.equal((await rawRequest(port, ['GET /private HTTP/1.1', `Authorization: Bearer ${valid}`, 'Cache-Control: no-cache'])).status, 200,
    'a header of the same length is not taken for a second Authorization')
})
