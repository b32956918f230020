/**
 * The route policy in the OpenAPI document (issue #6): with @fastify/swagger
 * registered, every route the plugin guards documents the requirement the
 * hook enforces, nothing the app wrote is replaced, and nothing the app
 * serves changes.
 *
 * The example API's document is checked with a real OpenAPI validator
 * (@seriousme/openapi-schema-validator, the one @fastify/swagger tests with)
 * and route by route against a table of what each route really requires.
 */
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import swagger, { type SwaggerOptions } from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { Validator } from '@seriousme/openapi-schema-validator' with { 'resolution-mode': 'import' }
import griddyAuth from '../lib/index'
import { documentPolicy, yamlStringifier } from '../lib/openapi'
import { createTestIssuer, type TestIssuer } from '../lib/testing/index'
import { buildApp } from '../examples/app'
import { messages, type Tap } from './helpers'

type Json = Record<string, any>

let issuer: TestIssuer
t.before(async () => { issuer = await createTestIssuer() })

const openapi = { info: { title: 'test', version: '1.0.0' } }
const bearer = [{ griddyAuth: [] }]

/** The validator, an ES module. */
async function newValidator (): Promise<Validator> {
  const { Validator } = await import('@seriousme/openapi-schema-validator')
  return new Validator()
}

/** Asserts `document` is a valid OpenAPI document, every $ref resolving. */
async function assertValid (t: Test, document: unknown, label = 'the document'): Promise<void> {
  const validator = await newValidator()
  // A copy: resolveRefs() replaces the $refs of the object it was given.
  const result = await validator.validate(structuredClone(document) as never)
  t.same(result.errors ?? [], [], `${label} is valid OpenAPI ${validator.version ?? '?'}`)
  t.ok(result.valid, `${label}: valid`)
  t.doesNotThrow(() => validator.resolveRefs(), `${label}: every $ref resolves`)
}

/** Every scheme an operation's security names is in the document's components. */
function assertSchemesDeclared (t: Tap, document: Json): void {
  const declared = Object.keys(document.components?.securitySchemes ?? {})
  for (const [path, item] of Object.entries<Json>(document.paths)) {
    for (const [method, operation] of Object.entries<Json>(item)) {
      for (const requirement of operation.security ?? []) {
        for (const name of Object.keys(requirement)) t.ok(declared.includes(name), `${method.toUpperCase()} ${path}: scheme ${name} is declared`)
      }
    }
  }
}

t.test('the example API documents every route\'s real requirement', async (t) => {
  const app = buildApp({ auth: issuer.pluginOptions })
  t.teardown(() => app.close())
  await app.ready()
  const document = app.swagger() as Json

  await assertValid(t, document)
  assertSchemesDeclared(t, document)
  t.same(document.components.securitySchemes.griddyAuth, {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: document.components.securitySchemes.griddyAuth.description
  }, 'one bearer JWT scheme')
  const schema = document.components.schemas.GriddyAuthError
  t.match(schema, { type: 'object', required: ['statusCode', 'code', 'error', 'message'] }, 'the error body of SPEC §7')
  t.same(schema.properties.code.enum, [...new Set(Object.keys(messages).map((code) => code.replace(/_(EXP|SUB)$/, '')))], 'every code of SPEC §7')

  // What each route of examples/app.ts requires; `null`: public.
  const expected: Record<string, string[] | null> = {
    'get /healthz': null,
    'get /api/v1/me': [],
    'get /api/v1/leagues': ['leagues:read'],
    'get /api/v1/leagues/{id}': ['leagues:read'],
    'post /api/v1/leagues': ['leagues:write'],
    'get /api/v1/leagues/{id}/teams': ['teams:read'],
    'post /api/v1/matches/{id}/result': ['matches:write', 'matches:admin']
  }
  const operations = Object.entries<Json>(document.paths).flatMap(([path, item]) => Object.entries<Json>(item).map(([method, operation]) => [`${method} ${path}`, operation] as const))
  t.same(operations.map(([key]) => key).sort(), Object.keys(expected).sort(), 'every route is documented, and Swagger UI\'s own routes are not')

  for (const [key, operation] of operations) {
    const permissions = expected[key]
    t.test(key, async (t) => {
      t.notOk('x-griddy-auth' in operation, 'no marker left')
      if (permissions === null) {
        t.same(operation.security, [], 'public: security []')
        t.notOk('401' in operation.responses, 'no 401')
        t.notOk('x-permissions' in operation, 'no x-permissions')
        return
      }
      t.same(operation.security, bearer, 'the bearer scheme')
      t.match(operation.responses['401'], { content: { 'application/json': { schema: { $ref: '#/components/schemas/GriddyAuthError' } } } }, '401')
      t.match(operation.responses['503'], { headers: { 'Retry-After': {} } }, '503 with Retry-After')
      t.match(operation.responses['200'] ?? operation.responses['201'], { description: String }, 'its own success response is kept')
      if (permissions.length === 0) {
        t.notOk('403' in operation.responses, 'no 403: any valid token')
        t.notOk('x-permissions' in operation, 'no x-permissions')
        return
      }
      t.same(operation['x-permissions'], permissions, 'x-permissions')
      t.match(operation.responses['403'], {
        description: `The token lacks a required permission (needs all of: ${permissions.join(', ')}).`,
        content: { 'application/json': { example: { code: 'GRIDDY_AUTH_FORBIDDEN', message: messages.GRIDDY_AUTH_FORBIDDEN } } }
      }, '403 naming the permissions')
      t.match(operation.description, `**Requires permissions:** ${permissions.map((name) => `\`${name}\``).join(', ')}`, 'a description line')
    })
  }

  t.test('a description the route wrote comes first, intact', async (t) => {
    t.equal(document.paths['/api/v1/leagues/{id}'].get.description,
      'A private league is visible to its owner, or with `leagues:admin` (else 403).\n\n**Requires permissions:** `leagues:read`')
  })

  t.test('Swagger UI serves the same document, as JSON and YAML, without a token', async (t) => {
    const json = await app.inject('/docs/json')
    t.equal(json.statusCode, 200)
    t.same(json.json(), document)
    const yaml = await app.inject('/docs/yaml')
    t.equal(yaml.statusCode, 200)
    t.match(yaml.headers['content-type'], /yaml/)
    const validator = await newValidator()
    t.ok((await validator.validate(yaml.body)).valid, 'the YAML is valid')
    t.same(validator.specification, document, 'and says the same')
    t.equal((await app.inject('/docs')).statusCode, 200, '/docs')
  })

  t.test('a second generation is the same document (nothing appended twice)', async (t) => {
    t.equal(JSON.stringify(app.swagger()), JSON.stringify(document))
  })
})

/** An app with @fastify/swagger (options `swaggerOptions`) then the plugin, and `routes`. */
async function appWith (t: Test, routes: (app: FastifyInstance) => void, swaggerOptions: SwaggerOptions = { openapi }): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(swagger, swaggerOptions)
  await app.register(griddyAuth, issuer.pluginOptions)
  routes(app)
  await app.ready()
  return app
}

t.test('nothing the app wrote is replaced', async (t) => {
  const userError = { type: 'object', description: 'Our own 401', properties: { reason: { type: 'string' } } }
  const app = await appWith(t, (app) => {
    app.get('/own-security', { schema: { security: [{ apiKey: [] }] }, config: { permissions: 'a' } }, async () => 'ok')
    app.get('/own-401', { schema: { response: { 401: userError } } }, async () => 'ok')
    app.get('/own-4xx', { schema: { response: { '4XX': userError, '5XX': userError } }, config: { permissions: 'a' } }, async () => 'ok')
    app.get('/own-403', { schema: { response: { 403: userError }, 'x-permissions': ['mine'] } as never, config: { permissions: ['a', 'b'] } }, async () => 'ok')
    app.get('/public-own-security', { schema: { security: bearer }, config: { public: true } }, async () => 'ok')
  }, {
    openapi: {
      ...openapi,
      components: {
        securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' }, griddyAuth: { type: 'http', scheme: 'bearer', description: 'ours' } },
        schemas: { GriddyAuthError: { type: 'object', description: 'ours' } }
      }
    }
  })
  const document = app.swagger() as Json
  await assertValid(t, document)
  const op = (path: string): Json => document.paths[path].get
  t.same(op('/own-security').security, [{ apiKey: [] }], 'its security')
  t.equal(op('/own-401').responses['401'].description, 'Our own 401', 'its 401')
  t.ok(op('/own-401').responses['503'], 'a 503 still added')
  t.same(Object.keys(op('/own-4xx').responses).sort(), ['4XX', '5XX'], 'its 4XX and 5XX ranges stand for 401, 403 and 503')
  t.equal(op('/own-403').responses['403'].description, 'Our own 401', 'its 403')
  t.same(op('/own-403')['x-permissions'], ['mine'], 'its x-permissions')
  t.same(op('/public-own-security').security, bearer, 'a public route\'s own security')
  t.same(document.components.securitySchemes.griddyAuth, { type: 'http', scheme: 'bearer', description: 'ours' }, 'its scheme of the same name')
  t.same(document.components.schemas.GriddyAuthError, { type: 'object', description: 'ours' }, 'its schema of the same name')
})

t.test('what the app serves does not change', async (t) => {
  // Had the plugin put 401/403 schemas where Fastify compiles serializers, an
  // error handler's own body would be stripped down to SPEC §7's shape.
  const app = await appWith(t, (app) => {
    app.setErrorHandler(async (err: Error & { statusCode?: number, code?: string }, _request, reply) => {
      return await reply.code(err.statusCode ?? 500).send({ problem: { type: err.code, detail: 'custom' } })
    })
    app.get('/guarded', { config: { permissions: 'a' }, schema: { response: { 200: { type: 'object', properties: { schema: { type: 'array' } } } } } },
      async (request) => ({ schema: Object.keys(request.routeOptions.schema ?? {}) }))
    app.get('/bare', { config: { public: true } }, async (request) => ({ schema: request.routeOptions.schema ?? null }))
  })
  t.ok((app.swagger() as Json).paths['/guarded'].get.responses['401'], 'documented')
  for (const [token, status, code] of [[undefined, 401, 'GRIDDY_AUTH_NO_TOKEN'], [issuer.sign({ sub: 'u' }), 403, 'GRIDDY_AUTH_FORBIDDEN']] as const) {
    const res = await app.inject({ url: '/guarded', headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
    t.equal(res.statusCode, status)
    t.same(res.json(), { problem: { type: code, detail: 'custom' } }, `${status}: the error handler's body, whole`)
  }
  const ok = await app.inject({ url: '/guarded', headers: { authorization: `Bearer ${issuer.sign({ sub: 'u', permissions: ['a'] })}` } })
  t.same(ok.json(), { schema: ['response'] }, 'Fastify\'s route schema has no marker')
  t.same((await app.inject('/bare')).json(), { schema: null }, 'a route without a schema still has none')
})

t.test('without @fastify/swagger, route schemas are left alone', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(griddyAuth, issuer.pluginOptions)
  app.get('/p', { config: { public: true } }, async (request) => ({ schema: request.routeOptions.schema ?? null }))
  await app.ready()
  t.same((await app.inject('/p')).json(), { schema: null })
})

t.test('one schema object shared by routes with different policies', async (t) => {
  const shared = { params: { type: 'object', properties: { id: { type: 'string' } } } }
  const app = await appWith(t, (app) => {
    app.get('/a/:id', { schema: shared, config: { permissions: 'a' } }, async () => 'ok')
    app.get('/b/:id', { schema: shared, config: { public: true } }, async () => 'ok')
    app.get('/c/:id', { schema: shared }, async () => 'ok')
  })
  const paths = (app.swagger() as Json).paths
  t.same(paths['/a/{id}'].get['x-permissions'], ['a'])
  t.same(paths['/b/{id}'].get.security, [])
  t.same(paths['/c/{id}'].get.security, bearer)
  t.notOk('x-permissions' in paths['/c/{id}'].get)
  t.same(Object.keys(shared), ['params'], 'the shared object itself is untouched')
})

t.test('registration order, scopes and other @fastify/swagger setups', async (t) => {
  t.test('@fastify/swagger registered after the plugin', async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(griddyAuth, issuer.pluginOptions)
    await app.register(swagger, { openapi })
    app.get('/x', { config: { permissions: 'a' } }, async () => 'ok')
    await app.ready()
    const document = app.swagger() as Json
    t.same(document.paths['/x'].get.security, bearer)
    await assertValid(t, document)
  })

  t.test('routes outside the guarded scope document no requirement', async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(swagger, { openapi })
    app.register(async (guarded) => {
      await guarded.register(griddyAuth, issuer.pluginOptions)
      guarded.get('/in', async () => 'ok')
    })
    app.register(async (open) => { open.get('/out', async () => 'ok') })
    await app.ready()
    const paths = (app.swagger() as Json).paths
    t.same(paths['/in'].get.security, bearer)
    t.notOk('security' in paths['/out'].get, 'not guarded: nothing said')
    t.notOk('401' in paths['/out'].get.responses)
  })

  t.test('two guarded scopes, one document', async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(swagger, { openapi })
    for (const [prefix, permission] of [['/one', 'a'], ['/two', 'b']]) {
      app.register(async (scope) => {
        await scope.register(griddyAuth, issuer.pluginOptions)
        scope.get('/r', { config: { permissions: permission } }, async () => 'ok')
      }, { prefix })
    }
    await app.ready()
    const document = app.swagger() as Json
    t.same(document.paths['/one/r'].get['x-permissions'], ['a'])
    t.same(document.paths['/two/r'].get['x-permissions'], ['b'])
    await assertValid(t, document)
  })

  t.test('the app\'s transform and transformObject', async (t) => {
    const app = await appWith(t, (app) => {
      app.get('/x', { config: { permissions: 'a' } }, async () => 'ok')
    }, {
      openapi,
      transform: ({ schema, url }) => ({ schema: { ...schema, summary: 'from transform' } as never, url: `/v2${url}` }),
      transformObject: (({ openapiObject }: { openapiObject: Json }) => ({ ...openapiObject, info: { title: 'transformed', version: '2' } })) as never
    })
    const document = app.swagger() as Json
    t.equal(document.info.title, 'transformed')
    t.match(document.paths['/v2/x'].get, { summary: 'from transform', security: bearer, 'x-permissions': ['a'] })
    await assertValid(t, document)
  })

  t.test('OpenAPI 3.1: the permissions are the requirement\'s roles', async (t) => {
    const app = await appWith(t, (app) => {
      app.get('/x', { config: { permissions: ['a', 'b'] } }, async () => 'ok')
      app.get('/y', async () => 'ok')
    }, { openapi: { ...openapi, openapi: '3.1.0' } })
    const document = app.swagger() as Json
    t.same(document.paths['/x'].get.security, [{ griddyAuth: ['a', 'b'] }])
    t.same(document.paths['/y'].get.security, bearer)
    await assertValid(t, document)
  })

  t.test('Swagger 2.0 (no openapi option): left as generated, no marker', async (t) => {
    const app = await appWith(t, (app) => {
      app.get('/x', { config: { permissions: 'a' } }, async () => 'ok')
    }, {})
    const document = app.swagger() as Json
    t.equal(document.swagger, '2.0')
    t.same(document.paths['/x'].get, { responses: { 200: { description: 'Default Response' } } })
    await assertValid(t, document)
  })

  t.test('hidden routes stay hidden', async (t) => {
    const app = await appWith(t, (app) => {
      app.get('/hidden', { schema: { hide: true }, config: { permissions: 'a' } }, async () => 'ok')
    })
    t.same((app.swagger() as Json).paths, {})
  })

  t.test('a `swagger` decorator that is not @fastify/swagger\'s function is left alone', async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.decorate('swagger', { not: 'a function' } as never)
    await app.register(griddyAuth, issuer.pluginOptions)
    app.get('/x', async (request) => ({ schema: request.routeOptions.schema ?? null }))
    await app.ready()
    t.same(app.getDecorator('swagger'), { not: 'a function' })
  })
})

t.test('Swagger UI registered before the plugin, in its scope, is guarded all the same', async (t) => {
  // The plugin's hook reaches every route of its scope and the scope's
  // children, whatever the registration order: Swagger UI inside it answers 401.
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(swagger, { openapi })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  await app.register(griddyAuth, issuer.pluginOptions)
  await app.ready()
  const res = await app.inject('/docs/json')
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'GRIDDY_AUTH_NO_TOKEN')
})

t.test('documentPolicy on documents @fastify/swagger would not make', async (t) => {
  const marked = (policy: { public: boolean, required: string[] }): Json => ({ 'x-griddy-auth': policy })
  const untouched: Array<[string, unknown]> = [
    ['not an object', 'openapi'],
    ['no paths', { openapi: '3.0.3' }],
    ['a path item that is not an object', { openapi: '3.0.3', paths: { '/x': null } }],
    ['an operation without marker', { openapi: '3.0.3', paths: { '/x': { get: { responses: {} } } } }]
  ]
  for (const [name, document] of untouched) {
    const before = JSON.stringify(document)
    documentPolicy(document)
    t.equal(JSON.stringify(document), before, `${name}: untouched`)
  }

  const bare: Json = { openapi: '3.0.3', paths: { '/x': { get: marked({ public: false, required: [] }) } } }
  documentPolicy(bare)
  t.match(bare, {
    paths: { '/x': { get: { security: bearer, responses: { 401: Object, 503: Object } } } },
    components: { securitySchemes: { griddyAuth: { type: 'http' } }, schemas: { GriddyAuthError: { type: 'object' } } }
  }, 'no responses and no components: both created')

  const empty: Json = { openapi: '3.0.3', components: {}, paths: { '/x': { post: { ...marked({ public: false, required: ['a'] }), description: '' } } } }
  documentPolicy(empty)
  t.match(empty, { components: { securitySchemes: { griddyAuth: Object }, schemas: { GriddyAuthError: Object } } }, 'empty components: filled')
  t.equal(empty.paths['/x'].post.description, '**Requires permissions:** `a`', 'an empty description: replaced by the line')

  const publicOnly: Json = { openapi: '3.0.3', paths: { '/x': { get: marked({ public: true, required: [] }) } } }
  documentPolicy(publicOnly)
  t.same(publicOnly, { openapi: '3.0.3', paths: { '/x': { get: { security: [] } } } }, 'only public routes: no scheme, no schema')
})

t.test('YAML is written with @fastify/swagger\'s own yaml, or as JSON if that cannot be found', async (t) => {
  const document = { openapi: '3.0.3', info: { title: 'x', version: '1' }, paths: {} }
  t.equal(yamlStringifier()(document), 'openapi: 3.0.3\ninfo:\n  title: x\n  version: "1"\npaths: {}\n')
  const fallback = yamlStringifier(() => { throw new Error('Cannot find module') })
  t.equal(fallback(document), JSON.stringify(document, null, 2))
})

t.test('a swagger function that returns no object is passed through', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.decorate('swagger', () => 'text')
  await app.register(griddyAuth, issuer.pluginOptions)
  app.get('/x', async () => 'ok')
  await app.ready()
  const documented = app.getDecorator<(opts?: { yaml?: boolean }) => unknown>('swagger')
  t.equal(documented(), 'text')
  t.equal(documented({ yaml: true }), 'text')
})
