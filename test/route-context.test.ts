/**
 * The request path reads the matched route's context through Fastify's
 * internal `fastify.context` symbol (lib/route-context.ts): its config, and
 * its preParsing hooks, from which a public route drops the plugin's hook
 * after its first request. What a client sees must not change, nor the
 * app's own hooks; and without the symbol (a future Fastify), everything
 * still works through `request.routeOptions`, only without the drop.
 */
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import griddyAuth from '../lib/index'
import { configOf, dropHook, resetRouteContextSymbol } from '../lib/route-context'
import { createTestIssuer, type TestIssuer } from '../lib/testing/index'

let issuer: TestIssuer
t.before(async () => {
  issuer = await createTestIssuer()
})

const hookName = 'griddyAuthAuthenticate'

/** The preParsing hook names of `METHOD url`, from Fastify's own route listing. */
function preParsingOf (app: FastifyInstance, method: string, url: string): string[] {
  const lines = app.printRoutes({ includeHooks: true, commonPrefix: false }).split('\n')
  const at = lines.findIndex((line) => line.includes(`${url} (${method})`))
  if (at === -1) throw new Error(`no route ${method} ${url}`)
  for (let i = at + 1; i < lines.length && lines[i]!.includes('•'); i++) {
    const match = /\(preParsing\) (\[.*\])/.exec(lines[i]!)
    if (match !== null) return (JSON.parse(match[1]!) as string[]).map((name) => name.replace(/\(\)$/, ''))
  }
  return []
}

interface Layout {
  name: string
  /** The plugin registered without await: its onRoute hook never sees the routes. */
  awaited: boolean
}

const layouts: Layout[] = [
  { name: 'routes declared after the plugin loaded', awaited: true },
  { name: 'routes declared before the plugin loaded (register not awaited)', awaited: false }
]

async function build (t: Test, layout: Layout, seen: string[]): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  if (layout.awaited) await app.register(griddyAuth, issuer.pluginOptions)
  else app.register(griddyAuth, issuer.pluginOptions)
  app.get('/public', {
    config: { public: true },
    preParsing: (request, _reply, _payload, done) => { seen.push(`route hook: ${request.url}`); done() }
  }, async (request) => ({ auth: request.auth ?? null }))
  app.get('/private', { config: { permissions: 'leagues:read' } }, async (request) => ({ userId: request.auth?.userId }))
  app.addHook('preParsing', (request, _reply, _payload, done) => { seen.push(`app hook: ${request.url}`); done() })
  await app.ready()
  return app
}

for (const layout of layouts) {
  t.test(`${layout.name}: a public route stops running the plugin's hook after its first request`, async (t) => {
    const seen: string[] = []
    const app = await build(t, layout, seen)
    t.ok(preParsingOf(app, 'GET', '/public').includes(hookName), 'before any request, the public route has the hook')

    const token = issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] })
    for (let i = 1; i <= 3; i++) {
      seen.length = 0
      const pub = await app.inject({ url: '/public', headers: { authorization: 'Bearer junk' } })
      t.equal(pub.statusCode, 200, `public #${i}: 200, a bad token ignored`)
      t.same(pub.json(), { auth: null }, `public #${i}: no request.auth`)
      t.same(seen, ['app hook: /public', 'route hook: /public'], `public #${i}: the app's own hooks still run, in order`)
      t.notOk(preParsingOf(app, 'GET', '/public').includes(hookName), `after public #${i}: the plugin's hook is gone from the route`)

      const refused = await app.inject('/private')
      t.equal(refused.statusCode, 401, `private #${i}: still 401 without a token`)
      t.equal(refused.json().code, 'GRIDDY_AUTH_NO_TOKEN')
      const admitted = await app.inject({ url: '/private', headers: { authorization: `Bearer ${token}` } })
      t.same([admitted.statusCode, admitted.json()], [200, { userId: 'user_1' }], `private #${i}: a valid token admitted`)
      t.ok(preParsingOf(app, 'GET', '/private').includes(hookName), `after private #${i}: the guarded route keeps the hook`)
    }

    // HEAD /public is a route of its own (Fastify made it): it drops the hook on its own first request.
    t.ok(preParsingOf(app, 'HEAD', '/public').includes(hookName), 'HEAD /public still has the hook')
    const head = await app.inject({ method: 'HEAD', url: '/public' })
    t.equal(head.statusCode, 200)
    t.notOk(preParsingOf(app, 'HEAD', '/public').includes(hookName), 'and drops it after its first request')
  })
}

t.test('without Fastify\'s context symbol, config comes from request.routeOptions and nothing is dropped', async (t) => {
  resetRouteContextSymbol(null)
  t.teardown(() => resetRouteContextSymbol())
  const seen: string[] = []
  const app = await build(t, layouts[0]!, seen)
  const token = issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] })
  for (let i = 1; i <= 2; i++) {
    const pub = await app.inject('/public')
    t.same([pub.statusCode, pub.json()], [200, { auth: null }], `public #${i}`)
    t.equal((await app.inject('/private')).statusCode, 401, `private #${i} without a token`)
    const bad = await app.inject({ url: '/private', headers: { authorization: `Bearer ${issuer.sign({ sub: 'user_1', permissions: [] })}` } })
    t.same([bad.statusCode, bad.json().code], [403, 'GRIDDY_AUTH_FORBIDDEN'], `private #${i} without the permission`)
    const ok = await app.inject({ url: '/private', headers: { authorization: `Bearer ${token}` } })
    t.same([ok.statusCode, ok.json()], [200, { userId: 'user_1' }], `private #${i} with it`)
  }
  t.ok(preParsingOf(app, 'GET', '/public').includes(hookName), 'the public route keeps the (harmless) hook')
})

t.test('the symbol is looked up again on a fresh start: Fastify\'s is found', async (t) => {
  resetRouteContextSymbol()
  const app = await build(t, layouts[0]!, [])
  t.equal((await app.inject('/public')).statusCode, 200)
  t.notOk(preParsingOf(app, 'GET', '/public').includes(hookName), 'found and used: the hook was dropped')
})

t.test('requests whose context is not what the plugin expects: routeOptions, and only the plugin\'s own hook ever dropped', async (t) => {
  t.teardown(() => resetRouteContextSymbol())
  const config = { url: '/fallback', method: 'GET' }
  // [name, the request's own part, where its config comes from, the hook list lengths left after dropHook]
  const cases: Array<[string, () => object, string, number[]]> = [
    ['no such symbol on the request', () => ({}), 'routeOptions', []],
    ['the symbol, without a config', () => ({ [Symbol('fastify.context')]: { preParsing: [function griddyAuthAuthenticate () {}] } }), 'routeOptions', [1]],
    ['the symbol, with no context at all', () => ({ [Symbol('fastify.context')]: undefined }), 'routeOptions', []],
    ['a context whose preParsing list is already empty (null)', () => ({ [Symbol('fastify.context')]: { config, preParsing: null } }), 'the context', []],
    ['a context whose hooks are all the app\'s', () => ({ [Symbol('fastify.context')]: { config, preParsing: [function appHook () {}] } }), 'the context', [1]],
    ['a context holding the hook unbound', () => ({ [Symbol('fastify.context')]: { config, preParsing: [function griddyAuthAuthenticate () {}] } }), 'the context', []]
  ]
  for (const [name, make, source, left] of cases) {
    resetRouteContextSymbol() // looked up on this request, as on a first request
    const request = Object.assign(make(), { routeOptions: { config: source === 'the context' ? {} : config } }) as unknown as FastifyRequest
    t.equal(configOf(request), config, `${name}: the config comes from ${source}`)
    dropHook(request, hookName)
    const kept = Object.getOwnPropertySymbols(request).map((symbol) => (request as unknown as Record<symbol, { preParsing?: unknown[] } | undefined>)[symbol]?.preParsing?.length)
    t.same(kept.filter((length) => length !== undefined), left, `${name}: hook lists left`)
  }
})
