/**
 * Configuration, validated at start-up (SPEC §3, §4), in three parts:
 * - plugin options: every invalid option stops start-up naming the option;
 * - route policy: route config validated naming the route, all-of exact
 *   permissions, public routes, 404s, late routes, encapsulation, HEAD;
 * - permissions, unit level: claim normalisation, requirement parsing.
 *
 * (One file, not three: each tap process pays a few seconds of TypeScript
 * and Fastify start-up, and the suite has a time budget.)
 */
import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import griddyAuth, { type GriddyAuthOptions, type JWK } from '../lib/index'
import { resolveOptions } from '../lib/options'
import { editDistance, misspelling } from '../lib/config-keys'
import { grantedPermissions, grants, parseRequirement } from '../lib/permissions'
import { createTestIssuer, type TestIssuer } from '../lib/testing/index'
import { assertFailure, assertSafe, buildApp, captureLogs, forbidden, get, getWithHeader, noToken, tokenFailure, type Tap } from './helpers'

t.test('options (SPEC §3)', async (t) => {
  // Options (SPEC §3): every invalid option stops start-up (register + ready
  // reject) with a message naming the option; valid edge values are accepted.
  let issuer: TestIssuer
  let base: GriddyAuthOptions
  let rsaJwk: JWK
  let weakJwk: JWK
  let ecJwk: JWK

  t.before(async () => {
    issuer = await createTestIssuer()
    base = issuer.pluginOptions
    rsaJwk = issuer.key.jwk
    weakJwk = { ...generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }), kid: 'weak', alg: 'RS256' } as JWK
    ecJwk = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid: 'ec' } as JWK
  })

  /** Registers the plugin with `options` (no routes) and waits for ready. */
  async function start (options: unknown): Promise<void> {
    const app = Fastify()
    try {
      await app.register(griddyAuth, options as GriddyAuthOptions)
      await app.ready()
    } finally {
      await app.close()
    }
  }

  interface Invalid {
    name: string
    options: () => Record<string, unknown>
    /** The option the message must name, as `option "<name>"`. */
    option: string
  }

  const drop = (name: string): Record<string, unknown> => {
    const copy: Record<string, unknown> = { ...base }
    delete copy[name]
    return copy
  }

  const invalid: Invalid[] = [
    { name: 'no options at all', options: () => ({}), option: 'issuer' },
    { name: 'missing issuer', options: () => drop('issuer'), option: 'issuer' },
    { name: 'missing audience', options: () => drop('audience'), option: 'audience' },
    { name: 'issuer: []', options: () => ({ ...base, issuer: [] }), option: 'issuer' },
    { name: 'audience: []', options: () => ({ ...base, audience: [] }), option: 'audience' },
    { name: 'issuer: ""', options: () => ({ ...base, issuer: '' }), option: 'issuer' },
    { name: 'audience: [""]', options: () => ({ ...base, audience: [''] }), option: 'audience' },
    { name: 'issuer: 5', options: () => ({ ...base, issuer: 5 }), option: 'issuer' },
    { name: 'issuer: [url, 5]', options: () => ({ ...base, issuer: ['https://issuer.test', 5] }), option: 'issuer' },
    { name: 'audience: null', options: () => ({ ...base, audience: null }), option: 'audience' },
    { name: 'both jwks and jwksUrl', options: () => ({ ...base, jwksUrl: 'https://issuer.test/jwks.json' }), option: 'jwks' },
    { name: 'jwksUrl ftp://', options: () => ({ ...drop('jwks'), jwksUrl: 'ftp://issuer.test/jwks.json' }), option: 'jwksUrl' },
    { name: 'jwksUrl file://', options: () => ({ ...drop('jwks'), jwksUrl: 'file:///etc/passwd' }), option: 'jwksUrl' },
    { name: 'jwksUrl not a URL', options: () => ({ ...drop('jwks'), jwksUrl: 'issuer.test/jwks.json' }), option: 'jwksUrl' },
    { name: 'jwksUrl empty', options: () => ({ ...drop('jwks'), jwksUrl: '' }), option: 'jwksUrl' },
    { name: 'jwksUrl a number', options: () => ({ ...drop('jwks'), jwksUrl: 443 }), option: 'jwksUrl' },
    { name: 'issuer not a URL, with no jwksUrl nor jwks', options: () => ({ ...drop('jwks'), issuer: 'clerk' }), option: 'issuer' },
    { name: 'one issuer of two not a URL, with no jwksUrl nor jwks', options: () => ({ ...drop('jwks'), issuer: ['https://a.test', 'b'] }), option: 'issuer' },
    { name: 'issuer an ftp URL, with no jwksUrl nor jwks', options: () => ({ ...drop('jwks'), issuer: 'ftp://issuer.test' }), option: 'issuer' },
    { name: 'jwks null', options: () => ({ ...base, jwks: null }), option: 'jwks' },
    { name: 'jwks an array', options: () => ({ ...base, jwks: [rsaJwk] }), option: 'jwks' },
    { name: 'jwks without keys', options: () => ({ ...base, jwks: {} }), option: 'jwks' },
    { name: 'jwks a string', options: () => ({ ...base, jwks: JSON.stringify({ keys: [rsaJwk] }) }), option: 'jwks' },
    { name: 'jwks with no key', options: () => ({ ...base, jwks: { keys: [] } }), option: 'jwks' },
    { name: 'jwks with an EC key only', options: () => ({ ...base, jwks: { keys: [ecJwk] } }), option: 'jwks' },
    { name: 'jwks with an encryption key only', options: () => ({ ...base, jwks: { keys: [{ ...rsaJwk, use: 'enc' }] } }), option: 'jwks' },
    { name: 'jwks with an RS512 key only', options: () => ({ ...base, jwks: { keys: [{ ...rsaJwk, alg: 'RS512' }] } }), option: 'jwks' },
    { name: 'jwks with a key without kid', options: () => ({ ...base, jwks: { keys: [{ ...rsaJwk, kid: undefined }] } }), option: 'jwks' },
    { name: 'jwks with a 1024-bit key only', options: () => ({ ...base, jwks: { keys: [weakJwk] } }), option: 'jwks' },
    { name: 'jwks with junk entries only', options: () => ({ ...base, jwks: { keys: [null, 5, 'x', { kty: 'RSA' }] } }), option: 'jwks' },
    { name: 'authorizedParties a number', options: () => ({ ...base, authorizedParties: 5 }), option: 'authorizedParties' },
    { name: 'authorizedParties: [""]', options: () => ({ ...base, authorizedParties: [''] }), option: 'authorizedParties' },
    { name: 'authorizedParties: [5]', options: () => ({ ...base, authorizedParties: [5] }), option: 'authorizedParties' },
    { name: 'permissionsClaim: ""', options: () => ({ ...base, permissionsClaim: '' }), option: 'permissionsClaim' },
    { name: 'permissionsClaim: 5', options: () => ({ ...base, permissionsClaim: 5 }), option: 'permissionsClaim' },
    { name: 'permissionsClaim: null', options: () => ({ ...base, permissionsClaim: null }), option: 'permissionsClaim' },
    { name: 'cache: 1.5', options: () => ({ ...base, cache: 1.5 }), option: 'cache' },
    { name: 'cache: -1', options: () => ({ ...base, cache: -1 }), option: 'cache' },
    { name: 'cache: true', options: () => ({ ...base, cache: true }), option: 'cache' },
    { name: 'cache: "100"', options: () => ({ ...base, cache: '100' }), option: 'cache' },
    { name: 'cache: NaN', options: () => ({ ...base, cache: NaN }), option: 'cache' },
    { name: 'cache: Infinity', options: () => ({ ...base, cache: Infinity }), option: 'cache' },
    { name: 'realm with a control character', options: () => ({ ...base, realm: 'a\u0001b' }), option: 'realm' },
    { name: 'realm with a newline (header injection)', options: () => ({ ...base, realm: 'x\r\nSet-Cookie: a=b' }), option: 'realm' },
    { name: 'realm with DEL', options: () => ({ ...base, realm: 'x\u007f' }), option: 'realm' },
    { name: 'realm not ASCII', options: () => ({ ...base, realm: 'réalm' }), option: 'realm' },
    { name: 'realm a number', options: () => ({ ...base, realm: 5 }), option: 'realm' },
    { name: 'unknown option issuers', options: () => ({ ...base, issuers: ['https://issuer.test'] }), option: 'issuers' },
    { name: 'unknown option clock_tolerance', options: () => ({ ...base, clock_tolerance: 5 }), option: 'clock_tolerance' },
    { name: 'unknown option jwksURL (case)', options: () => ({ ...drop('jwks'), jwksURL: 'https://issuer.test/jwks.json' }), option: 'jwksURL' },
    { name: 'unknown option algorithms', options: () => ({ ...base, algorithms: ['HS256'] }), option: 'algorithms' },
    { name: 'discovery: "true"', options: () => ({ ...drop('jwks'), discovery: 'true' }), option: 'discovery' },
    { name: 'discovery: 1', options: () => ({ ...drop('jwks'), discovery: 1 }), option: 'discovery' },
    { name: 'discovery: null', options: () => ({ ...drop('jwks'), discovery: null }), option: 'discovery' },
    { name: 'discovery with jwks', options: () => ({ ...base, discovery: true }), option: 'discovery' },
    { name: 'discovery with jwksUrl', options: () => ({ ...drop('jwks'), discovery: true, jwksUrl: 'https://issuer.test/jwks.json' }), option: 'discovery' },
    { name: 'discovery with an issuer that is no URL', options: () => ({ ...drop('jwks'), discovery: true, issuer: ['https://a.test', 'clerk'] }), option: 'issuer' },
    { name: 'discovery with an ftp issuer', options: () => ({ ...drop('jwks'), discovery: true, issuer: 'ftp://issuer.test' }), option: 'issuer' }
  ]

  for (const option of ['jwksTimeout', 'jwksCooldown', 'jwksCacheTtl', 'clockTolerance']) {
    for (const [label, value] of [['-1', -1], ['-0.5', -0.5], ['NaN', NaN], ['Infinity', Infinity], ['"5"', '5'], ['null', null], ['true', true]] as const) {
      invalid.push({ name: `${option}: ${label}`, options: () => ({ ...base, [option]: value }), option })
    }
  }
  // Issue #15: values no Node timer can hold (a longer delay fires at once) or no fetch can take.
  for (const option of ['jwksTimeout', 'jwksCooldown', 'jwksCacheTtl']) {
    for (const [label, value] of [['2500.5', 2500.5], ['2**31', 2 ** 31], ['1e12', 1e12], ['Number.MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER]] as const) {
      invalid.push({ name: `${option}: ${label}`, options: () => ({ ...base, [option]: value }), option })
    }
  }
  invalid.push(
    { name: 'clockTolerance: 3601 (milliseconds given as seconds?)', options: () => ({ ...base, clockTolerance: 3601 }), option: 'clockTolerance' },
    { name: 'clockTolerance: 5000', options: () => ({ ...base, clockTolerance: 5000 }), option: 'clockTolerance' },
    { name: 'jwksUrl with user:password@', options: () => ({ ...drop('jwks'), jwksUrl: 'https://user:secret@issuer.test/jwks.json' }), option: 'jwksUrl' },
    { name: 'jwksUrl with a user only', options: () => ({ ...drop('jwks'), jwksUrl: 'https://user@issuer.test/jwks.json' }), option: 'jwksUrl' },
    { name: 'an issuer with credentials, used as the key URL', options: () => ({ ...drop('jwks'), issuer: ['https://a.test', 'https://u:p@b.test'] }), option: 'issuer' },
    { name: 'logLevel not a string', options: () => ({ ...base, logLevel: 30 }), option: 'logLevel' },
    { name: 'logLevel empty', options: () => ({ ...base, logLevel: '' }), option: 'logLevel' },
    { name: 'logSerializers not an object', options: () => ({ ...base, logSerializers: 'x' }), option: 'logSerializers' },
    { name: 'logSerializers null', options: () => ({ ...base, logSerializers: null }), option: 'logSerializers' },
    { name: 'logSerializers holding a non-function', options: () => ({ ...base, logSerializers: { code: 'x' } }), option: 'logSerializers' }
  )

  t.test('invalid options fail start-up with a message naming the option', async (t) => {
    for (const c of invalid) {
      const options = c.options()
      await t.rejects(start(options), { name: 'TypeError', message: new RegExp(`^fastify-griddy-auth: option "${c.option}" `) }, c.name)
    }
  })

  t.test('the error surfaces at register, never at the first request', async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.get('/x', async () => 'ok')
    app.register(griddyAuth, { ...base, clockTolerance: -1 })
    await t.rejects(async () => { await app.ready() }, /option "clockTolerance" must be a finite number >= 0, got -1/)
  })

  t.test('resolveOptions refuses a non-object', async (t) => {
    for (const value of [null, undefined, 'https://issuer.test', 5]) {
      t.throws(() => resolveOptions(value), { name: 'TypeError', message: /options are required/ }, String(value))
    }
  })

  t.test('valid edge values are accepted', async (t) => {
    const valid: Array<[string, Record<string, unknown>]> = [
      ['0 for every ms option and clockTolerance', { ...base, jwksTimeout: 0, jwksCooldown: 0, jwksCacheTtl: 0, clockTolerance: 0 }],
      ['2**31 - 1 for every ms option, 3600 s of tolerance', { ...base, jwksTimeout: 2 ** 31 - 1, jwksCooldown: 2 ** 31 - 1, jwksCacheTtl: 2 ** 31 - 1, clockTolerance: 3600 }],
      ["an issuer with credentials when keys don't come from it", { ...base, issuer: 'https://u:p@issuer.test' }],
      ['a jwksUrl with a query string', { ...drop('jwks'), jwksUrl: 'https://issuer.test/jwks.json?tenant=a' }],
      ["Fastify's own register options", { ...base, prefix: '/api', logLevel: 'warn', logSerializers: { code: (value: unknown) => String(value) } }],
      ['fractional seconds of tolerance', { ...base, clockTolerance: 0.5 }],
      ['cache: false', { ...base, cache: false }],
      ['cache: 0', { ...base, cache: 0 }],
      ['cache: 1', { ...base, cache: 1 }],
      ['issuer and audience as arrays', { ...base, issuer: ['https://a.test', 'https://b.test'], audience: ['a', 'b'] }],
      ['an issuer that is no URL, with jwks', { ...base, issuer: 'clerk' }],
      ['an issuer that is no URL, with jwksUrl', { ...drop('jwks'), issuer: 'clerk', jwksUrl: 'http://127.0.0.1:1/jwks.json' }],
      ['no jwks, an https issuer (well-known)', { ...drop('jwks'), issuer: 'https://clerk.example.com' }],
      ['jwksUrl https', { ...drop('jwks'), jwksUrl: 'https://clerk.example.com/.well-known/jwks.json' }],
      ['discovery with an https issuer', { ...drop('jwks'), issuer: 'https://sso.example.com/realms/griddy', discovery: true }],
      ['discovery: false with jwks', { ...base, discovery: false }],
      ['discovery: false with jwksUrl', { ...drop('jwks'), jwksUrl: 'https://clerk.example.com/.well-known/jwks.json', discovery: false }],
      ['authorizedParties: []', { ...base, authorizedParties: [] }],
      ['a realm with quotes and backslashes', { ...base, realm: 'my "api" \\ v1' }],
      ['an empty realm', { ...base, realm: '' }],
      ['jwks with junk around one usable key', { ...base, jwks: { keys: [ecJwk, weakJwk, null, rsaJwk] } }],
      ['permissionsClaim org_permissions', { ...base, permissionsClaim: 'org_permissions' }],
      ['every option undefined but the required ones', {
        ...base,
        jwksUrl: undefined,
        authorizedParties: undefined,
        clockTolerance: undefined,
        permissionsClaim: undefined,
        cache: undefined,
        jwksCacheTtl: undefined,
        jwksCooldown: undefined,
        jwksTimeout: undefined,
        realm: undefined,
        discovery: undefined
      }]
    ]
    for (const [name, options] of valid) {
      await t.resolves(start(options), name)
    }
  })

  t.test('defaults: 5 s clock tolerance', async (t) => {
    const app = await buildApp(t, base)
    // Token times are whole seconds: -2 leaves at least 2 s of margin, -6 is always beyond 5 s.
    t.equal((await get(app, '/private', issuer.sign({ sub: 'u' }, { expiresIn: -2 }))).statusCode, 200, '2 s late: accepted')
    const late = issuer.sign({ sub: 'u' }, { expiresIn: -6 })
    assertFailure(t, await get(app, '/private', late), tokenFailure('GRIDDY_AUTH_EXPIRED'), late, '6 s late:')
  })

  t.test('the options object is not mutated and later changes to it have no effect', async (t) => {
    const options = { ...base, audience: ['https://api.test'] as string[] }
    const snapshot = JSON.stringify(options)
    const app = await buildApp(t, options)
    t.equal(JSON.stringify(options), snapshot, 'not mutated')
    options.audience.push('https://evil.test')
    const token = issuer.sign({ sub: 'u', aud: 'https://evil.test' })
    assertFailure(t, await get(app, '/private', token), tokenFailure('GRIDDY_AUTH_AUDIENCE'), token)
  })
})

t.test('route policy (SPEC §4)', async (t) => {
  // Route policy (SPEC §4): route config validated at start-up naming the
  // route, all-of permissions compared exactly, public routes, 404s, routes
  // declared before the plugin loaded, encapsulation, HEAD routes.
  let issuer: TestIssuer
  let options: GriddyAuthOptions

  t.before(async () => {
    issuer = await createTestIssuer()
    options = issuer.pluginOptions
  })

  const sign = (permissions?: unknown, claims: Record<string, unknown> = {}): string =>
    issuer.sign({ sub: 'user_1', ...(permissions === undefined ? {} : { permissions }), ...claims })

  async function expectOk (t: Tap, app: FastifyInstance, url: string, token: string | undefined, label: string): Promise<void> {
    const res = await get(app, url, token)
    assertSafe(t, res, token, label)
    t.equal(res.statusCode, 200, `${label}: 200`)
  }

  t.test('invalid route config stops start-up, naming the route', async (t) => {
    const cases: Array<{ name: string, declare: (app: FastifyInstance) => void, message: RegExp }> = [
      { name: 'permissions a number', declare: (a) => a.get('/x', { config: { permissions: 5 as never } }, async () => 'x'), message: /route "GET \/x": config\.permissions must be a permission name or an array of names, got number/ },
      { name: 'permissions an empty string', declare: (a) => a.get('/x', { config: { permissions: '' } }, async () => 'x'), message: /route "GET \/x": config\.permissions must hold non-empty permission names without whitespace, got ""/ },
      { name: 'permissions holding a number', declare: (a) => a.get('/x', { config: { permissions: ['a', 3] as never } }, async () => 'x'), message: /route "GET \/x": config\.permissions must hold permission names \(strings\), got number/ },
      { name: 'permissions with a space', declare: (a) => a.get('/x', { config: { permissions: 'a b' } }, async () => 'x'), message: /route "GET \/x": config\.permissions .*"a b"/ },
      { name: 'permissions with a tab', declare: (a) => a.get('/x', { config: { permissions: ['a', 'b\tc'] } }, async () => 'x'), message: /route "GET \/x": config\.permissions/ },
      { name: 'permissions an object', declare: (a) => a.get('/x', { config: { permissions: { all: ['a'] } as never } }, async () => 'x'), message: /route "GET \/x": config\.permissions .*got object/ },
      { name: 'permissions null', declare: (a) => a.get('/x', { config: { permissions: null as never } }, async () => 'x'), message: /route "GET \/x": config\.permissions/ },
      { name: 'public a string', declare: (a) => a.get('/x', { config: { public: 'yes' as never } }, async () => 'x'), message: /route "GET \/x": config\.public must be a boolean/ },
      { name: 'public 1', declare: (a) => a.get('/x', { config: { public: 1 as never } }, async () => 'x'), message: /route "GET \/x": config\.public must be a boolean/ },
      { name: 'public with permissions', declare: (a) => a.get('/x', { config: { public: true, permissions: 'a' } }, async () => 'x'), message: /route "GET \/x": config\.public and config\.permissions contradict each other/ },
      { name: 'public with empty permissions', declare: (a) => a.get('/x', { config: { public: true, permissions: [] } }, async () => 'x'), message: /route "GET \/x": config\.public and config\.permissions/ },
      { name: 'a POST route', declare: (a) => a.post('/things', { config: { permissions: 7 as never } }, async () => 'x'), message: /route "POST \/things"/ },
      { name: 'a route with two methods', declare: (a) => a.route({ method: ['GET', 'POST'], url: '/multi', config: { permissions: [''] }, handler: async () => 'x' }), message: /route "GET,POST \/multi"/ },
      {
        name: 'a prefixed route in a child plugin',
        declare: (a) => { a.register(async (child) => { child.get('/x', { config: { public: 'no' as never } }, async () => 'x') }, { prefix: '/api' }) },
        message: /route "GET \/api\/x"/
      },
      // Issue #15: mistakes that would silently drop a check.
      { name: 'permissions: undefined (a constant that does not exist)', declare: (a) => a.get('/x', { config: { permissions: undefined } }, async () => 'x'), message: /route "GET \/x": config\.permissions is undefined \(a misspelt or renamed constant\?\); omit the key, or write \[\] for any valid token/ },
      { name: 'permissions: undefined beside public: true', declare: (a) => a.get('/x', { config: { public: true, permissions: undefined } }, async () => 'x'), message: /route "GET \/x": config\.permissions is undefined/ },
      ...['permission', 'Permissions', 'PERMISSIONS', 'permisions', 'permissons', 'premissions', 'permissoins', 'permissionss', 'permisison'].map((key) => ({
        name: `config.${key}`,
        declare: (a: FastifyInstance) => a.get('/x', { config: { [key]: 'leagues:admin' } }, async () => 'x'),
        message: new RegExp(`route "GET /x": config\\.${key} is not read by fastify-griddy-auth; did you mean config\\.permissions\\?`)
      })),
      ...['publc', 'Public', 'PUBLIC', 'pubilc', 'publik', 'publics'].map((key) => ({
        name: `config.${key}`,
        declare: (a: FastifyInstance) => a.get('/x', { config: { [key]: true } }, async () => 'x'),
        message: new RegExp(`route "GET /x": config\\.${key} is not read by fastify-griddy-auth; did you mean config\\.public\\?`)
      })),
      { name: 'a misspelling beside permissions', declare: (a) => a.get('/x', { config: { permissions: 'a', permision: 'b' } as never }, async () => 'x'), message: /config\.permision is not read/ },
      { name: 'permissions beside config, not in it', declare: (a) => a.route({ method: 'GET', url: '/x', permissions: 'a', handler: async () => 'x' } as never), message: /route "GET \/x": "permissions" is a route config key: write \{ config: \{ permissions \} \}, not \{ permissions \}/ },
      { name: 'public beside config, not in it', declare: (a) => a.get('/x', { public: true } as never, async () => 'x'), message: /route "GET \/x": "public" is a route config key/ }
    ]
    for (const c of cases) {
      const app = Fastify()
      await app.register(griddyAuth, options)
      let declared: unknown
      try {
        c.declare(app)
        await app.ready()
      } catch (err) {
        declared = err
      }
      t.match(declared, { name: 'TypeError', message: c.message }, c.name)
      t.match((declared as Error).message, /^fastify-griddy-auth: /, `${c.name}: says which plugin`)
      await app.close()
    }
  })

  t.test('permissions as a string or a one-item array mean the same', async (t) => {
    const app = await buildApp(t, options, {
      routes: (a) => {
        a.get('/string', { config: { permissions: 'leagues:read' } }, async () => 'ok')
        a.get('/array', { config: { permissions: ['leagues:read'] } }, async () => 'ok')
      }
    })
    for (const url of ['/string', '/array']) {
      await expectOk(t, app, url, sign(['leagues:read']), `${url} with the permission`)
      const without = sign(['leagues:write'])
      assertFailure(t, await get(app, url, without), forbidden('leagues:read'), without, `${url} without:`)
    }
  })

  t.test('all listed permissions are required, compared exactly', async (t) => {
    const app = await buildApp(t, options, {
      routes: (a) => {
        a.get('/both', { config: { permissions: ['leagues:read', 'leagues:write'] } }, async () => 'ok')
        a.get('/dup', { config: { permissions: ['leagues:read', 'leagues:read'] } }, async () => 'ok')
        a.get('/none', { config: { permissions: [] } }, async () => 'ok')
        a.get('/not-public', { config: { public: false, permissions: 'leagues:read' } }, async () => 'ok')
      }
    })
    const table: Array<[string, unknown, boolean]> = [
      ['none', [], false],
      ['the first only', ['leagues:read'], false],
      ['the second only', ['leagues:write'], false],
      ['both', ['leagues:read', 'leagues:write'], true],
      ['both, another order, with extras', ['x', 'leagues:write', 'y', 'leagues:read'], true],
      ['both as one space-delimited string', 'leagues:read leagues:write', true],
      ['both in a string with runs of whitespace', '  leagues:write \n\t leagues:read  ', true],
      ['a different case', ['Leagues:read', 'leagues:write'], false],
      ['upper case', ['LEAGUES:READ', 'LEAGUES:WRITE'], false],
      ['a wildcard', ['leagues:*'], false],
      ['a global wildcard', ['*'], false],
      ['a prefix', ['leagues', 'leagues:write'], false],
      ['a longer name', ['leagues:read:all', 'leagues:write'], false],
      ['a name with a leading space, in a list', [' leagues:read', 'leagues:write'], false],
      ['both, joined by a comma', 'leagues:read,leagues:write', false],
      ['an object keyed by the names', { 'leagues:read': true, 'leagues:write': true }, false]
    ]
    for (const [name, permissions, granted] of table) {
      const token = sign(permissions)
      const res = await get(app, '/both', token)
      if (granted) {
        assertSafe(t, res, token, name)
        t.equal(res.statusCode, 200, `${name}: granted`)
      } else {
        assertFailure(t, res, forbidden('leagues:read leagues:write'), token, `${name}:`)
      }
    }
    const token = sign([])
    assertFailure(t, await get(app, '/dup', token), forbidden('leagues:read'), token, 'a permission listed twice is required (and named) once:')
    await expectOk(t, app, '/none', sign(), 'an empty list requires only a valid token')
    assertFailure(t, await get(app, '/none'), noToken(), undefined, 'an empty list still requires a token:')
    assertFailure(t, await get(app, '/not-public', token), forbidden('leagues:read'), token, 'public: false is protected:')
  })

  t.test('a public route ignores any token and leaves request.auth null', async (t) => {
    const app = await buildApp(t, options)
    const cases: Array<[string, string | undefined]> = [
      ['no header', undefined],
      ['a valid token', `Bearer ${sign(['leagues:read'])}`],
      ['an expired token', `Bearer ${issuer.sign({ sub: 'u' }, { expiresIn: -3600 })}`],
      ['a forged token', `Bearer ${issuer.sign({ sub: 'u' }, { alg: 'none' })}`],
      ['junk', 'Bearer junk'],
      ['another scheme', 'Basic dXNlcjpwYXNz']
    ]
    for (const [name, header] of cases) {
      const res = header === undefined ? await get(app, '/public') : await getWithHeader(app, '/public', header)
      t.equal(res.statusCode, 200, `${name}: 200`)
      t.same(res.json(), { auth: null }, `${name}: request.auth is null`)
      t.equal(res.headers['www-authenticate'], undefined, `${name}: no challenge`)
    }
    const head = await app.inject({ method: 'HEAD', url: '/public' })
    t.equal(head.statusCode, 200, 'HEAD of a public route')
  })

  t.test('a request matching no route keeps its 404', async (t) => {
    const app = await buildApp(t, options)
    const custom = await buildApp(t, options, {
      routes: (a) => {
        standardRoutesWithNotFound(a)
      }
    })
    const headers: Array<[string, string | undefined]> = [
      ['no header', undefined], ['a valid token', `Bearer ${sign()}`], ['a bad token', 'Bearer junk'], ['another scheme', 'Basic x']
    ]
    for (const [name, header] of headers) {
      const requests: Array<[string, string]> = [['GET', '/nope'], ['POST', '/private'], ['DELETE', '/leagues/1'], ['GET', '/leagues']]
      for (const [method, url] of requests) {
        const res = await app.inject({ method: method as 'GET', url, headers: header === undefined ? {} : { authorization: header } })
        t.equal(res.statusCode, 404, `${method} ${url}, ${name}: 404`)
        t.same(res.json(), { statusCode: 404, error: 'Not Found', message: `Route ${method}:${url} not found` }, `${method} ${url}, ${name}: Fastify's 404`)
        t.equal(res.headers['www-authenticate'], undefined, `${method} ${url}, ${name}: no challenge`)
      }
      const res = await custom.inject({ url: '/nope', headers: header === undefined ? {} : { authorization: header } })
      t.equal(res.statusCode, 404, `custom not-found handler, ${name}: 404`)
      t.same(res.json(), { custom: 'not found' }, `custom not-found handler, ${name}: its body`)
    }
  })

  function standardRoutesWithNotFound (app: FastifyInstance): void {
    app.get('/private', async () => 'ok')
    app.setNotFoundHandler(async (_request, reply) => reply.code(404).send({ custom: 'not found' }))
  }

  t.test('routes declared before the plugin finished loading are protected too', async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    // A plugin registered before griddyAuth: its routes exist before the plugin's onRoute hook does.
    app.register(async (child) => {
      child.get('/early', { config: { permissions: 'leagues:read' } }, async (request) => ({ userId: request.auth?.userId }))
      child.get('/early-open', async (request) => ({ userId: request.auth?.userId }))
      child.get('/early-public', { config: { public: true } }, async (request) => ({ auth: request.auth }))
    })
    // Registered without await: the routes below are declared before it loads.
    app.register(griddyAuth, options)
    app.get('/late', { config: { permissions: ['leagues:read', 'leagues:write'] } }, async (request) => ({ userId: request.auth?.userId }))
    app.get('/late-public', { config: { public: true } }, async (request) => ({ auth: request.auth }))
    app.get('/late-open', async (request) => ({ userId: request.auth?.userId }))
    await app.ready()

    for (const url of ['/early', '/early-open', '/late', '/late-open']) {
      for (let i = 0; i < 2; i++) { // twice: the late-compiled policy is remembered
        assertFailure(t, await get(app, url), noToken(), undefined, `${url} (#${i + 1}) without a token:`)
        const expired = issuer.sign({ sub: 'user_1', permissions: ['leagues:read', 'leagues:write'] }, { expiresIn: -3600 })
        assertFailure(t, await get(app, url, expired), tokenFailure('GRIDDY_AUTH_EXPIRED'), expired, `${url} (#${i + 1}) expired:`)
      }
    }
    const reader = sign(['leagues:read'])
    const res = await get(app, '/early', reader)
    t.equal(res.statusCode, 200)
    t.same(res.json(), { userId: 'user_1' })
    assertFailure(t, await get(app, '/early', sign([])), forbidden('leagues:read'), undefined, '/early without the permission:')
    assertFailure(t, await get(app, '/late', reader), forbidden('leagues:read leagues:write'), reader, '/late with one of two:')
    await expectOk(t, app, '/late', sign(['leagues:read', 'leagues:write']), '/late with both')
    await expectOk(t, app, '/early-open', sign(), '/early-open with a token')
    const latePublic = await getWithHeader(app, '/late-public', 'Bearer junk')
    t.equal(latePublic.statusCode, 200, '/late-public: public')
    t.same(latePublic.json(), { auth: null }, '/late-public: request.auth is null')
    // A plugin created before griddyAuth was registered does not inherit the `auth: null`
    // default (Fastify copies request decorators into a context when it is created), so there
    // request.auth is undefined, not null, on a public route: never an AuthContext anyway.
    const earlyPublic = await getWithHeader(app, '/early-public', 'Bearer junk')
    t.equal(earlyPublic.statusCode, 200, '/early-public: public')
    t.same(earlyPublic.json(), {}, '/early-public: no request.auth')
  })

  // SPEC §3/§4 and the brief: bad route config must fail at start-up, never at the first
  // request. For a route declared before the plugin loaded, onRoute never sees it, and the
  // plugin only finds the mistake at the first request (a 500 naming the route). Known gap.
  t.test('a bad config on a route declared before the plugin loaded fails at start-up', { todo: 'the plugin cannot see routes declared before it loaded; they are compiled (and fail with a 500) at their first request' }, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(griddyAuth, options)
    app.get('/late-bad', { config: { permissions: 5 as never } }, async () => 'ok')
    let failure: unknown
    try {
      await app.ready()
    } catch (err) {
      failure = err
    }
    t.match(failure, { message: /route "GET \/late-bad"/ }, 'ready() rejects naming the route')
    if (failure === undefined) {
      const res = await get(app, '/late-bad', sign())
      t.not(res.statusCode, 500, 'the first request is not a 500')
    }
  })

  // An onRoute hook of a child scope runs after the plugin's: what it changes is what counts.
  t.test('config changed by a later onRoute hook is enforced, and validated at start-up', async (t) => {
    type Hook = (route: { config?: Record<string, unknown> }) => void
    /** An app whose child scope has `hook`, and one route `/r` in it with `config`. */
    async function appWith (t: Tap, hook: Hook, config: Record<string, unknown> = {}): Promise<FastifyInstance> {
      const app = Fastify()
      t.teardown(() => app.close())
      await app.register(griddyAuth, options)
      app.register(async (child) => {
        child.addHook('onRoute', hook as never)
        child.get('/r', { config }, async (request) => ({ userId: request.auth?.userId ?? null }))
      })
      await app.ready()
      return app
    }

    t.test('permissions added by a new config object', async (t) => {
      const app = await appWith(t, (route) => { route.config = { ...route.config, permissions: ['leagues:admin'] } })
      for (let i = 0; i < 2; i++) {
        assertFailure(t, await get(app, '/r', sign(['leagues:read'])), forbidden('leagues:admin'), undefined, `#${i + 1} without leagues:admin:`)
      }
      await expectOk(t, app, '/r', sign(['leagues:admin']), 'with leagues:admin')
    })

    t.test('public set in place, permissions dropped', async (t) => {
      const app = await appWith(t, (route) => {
        route.config!.public = true
        delete route.config!.permissions
      }, { permissions: 'leagues:read' })
      const res = await getWithHeader(app, '/r', 'Bearer junk')
      t.equal(res.statusCode, 200)
      t.same(res.json(), { userId: null })
    })

    t.test('config removed: any valid token', async (t) => {
      const app = await appWith(t, (route) => { delete route.config }, { permissions: 'leagues:read' })
      assertFailure(t, await get(app, '/r'), noToken(), undefined, 'without a token:')
      await expectOk(t, app, '/r', sign([]), 'with a token and no permissions')
    })

    const invalid: Array<{ name: string, hook: Hook, config?: Record<string, unknown>, message: RegExp }> = [
      { name: 'an invalid permission', hook: (route) => { route.config = { ...route.config, permissions: 5 } }, message: /route "GET \/r": config\.permissions must be a permission name or an array of names, got number/ },
      { name: 'public and permissions together', hook: (route) => { route.config!.public = true }, config: { permissions: 'leagues:read' }, message: /route "GET \/r": config\.public and config\.permissions contradict each other/ },
      { name: 'a permission pushed in place', hook: (route) => { (route.config!.permissions as string[]).push('leagues:admin') }, config: { permissions: ['leagues:read'] }, message: /route "GET \/r": config\.permissions was changed in place after the plugin read it; assign a new array instead/ },
      { name: 'a permission replaced in place', hook: (route) => { (route.config!.permissions as string[])[0] = 'leagues:admin' }, config: { permissions: ['leagues:read'] }, message: /changed in place/ },
      { name: 'permissions: undefined added (issue #15)', hook: (route) => { route.config = { ...route.config, permissions: undefined } }, message: /route "GET \/r": config\.permissions is undefined/ },
      { name: 'a misspelt key added (issue #15)', hook: (route) => { route.config!.permision = 'leagues:admin' }, message: /route "GET \/r": config\.permision is not read by fastify-griddy-auth; did you mean config\.permissions\?/ }
    ]
    for (const { name, hook, config, message } of invalid) {
      t.test(`${name} stops start-up naming the route`, async (t) => {
        await t.rejects(appWith(t, hook, config), { name: 'TypeError', message })
      })
    }
  })

  t.test('registered in an encapsulated child, the plugin protects only that child', async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(async (child) => {
      await child.register(griddyAuth, options)
      child.get('/inside', async (request) => ({ userId: request.auth?.userId }))
      await child.register(async (grandchild) => {
        grandchild.get('/nested', { config: { permissions: 'leagues:read' } }, async () => 'ok')
      })
    })
    await app.register(async (sibling) => {
      sibling.get('/sibling', async (request) => ({ hasAuth: 'auth' in request }))
    })
    app.get('/outside', { config: { permissions: 'leagues:read' } }, async (request) => ({ hasAuth: 'auth' in request }))
    await app.ready()

    assertFailure(t, await get(app, '/inside'), noToken(), undefined, '/inside:')
    assertFailure(t, await get(app, '/nested', sign()), forbidden('leagues:read'), undefined, '/nested:')
    await expectOk(t, app, '/inside', sign(), '/inside with a token')
    for (const url of ['/outside', '/sibling']) {
      const res = await getWithHeader(app, url, 'Bearer junk')
      t.equal(res.statusCode, 200, `${url}: not protected`)
      t.same(res.json(), { hasAuth: false }, `${url}: no request.auth outside the child`)
    }
    t.equal((app as unknown as { griddyAuth?: unknown }).griddyAuth, undefined, 'no fastify.griddyAuth at the root')
  })

  t.test('the HEAD route of a GET inherits its policy', async (t) => {
    const app = await buildApp(t, options)
    const head = (url: string, token?: string): Promise<LightMyRequestResponse> =>
      app.inject({ method: 'HEAD', url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })

    const none = await head('/private')
    t.equal(none.statusCode, 401, 'HEAD without a token: 401')
    t.equal(none.headers['www-authenticate'], 'Bearer')
    t.equal(none.body, '', 'HEAD has no body')

    const expired = await head('/private', issuer.sign({ sub: 'u' }, { expiresIn: -3600 }))
    t.equal(expired.statusCode, 401)
    t.equal(expired.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="Token has expired"')

    const lacking = await head('/leagues/1', sign(['x']))
    t.equal(lacking.statusCode, 403, 'HEAD without the permission: 403')
    t.equal(lacking.headers['www-authenticate'], 'Bearer error="insufficient_scope", scope="leagues:read"')

    t.equal((await head('/leagues/1', sign(['leagues:read']))).statusCode, 200, 'HEAD with the permission: 200')
  })

  t.test('route config stays readable by the app', async (t) => {
    const app = await buildApp(t, options, {
      routes: (a) => {
        a.get('/cfg', { config: { permissions: ['leagues:read'] } }, async (request) => ({
          permissions: request.routeOptions.config.permissions,
          isPublic: request.routeOptions.config.public ?? null
        }))
      }
    })
    const res = await get(app, '/cfg', sign(['leagues:read']))
    t.same(res.json(), { permissions: ['leagues:read'], isPublic: null })
  })
})

t.test('route config keys that look like ours (issue #15)', async (t) => {
  // A key Fastify keeps but nobody reads is a check silently dropped: misspellings stop
  // start-up (the table above), synonyms other plugins may own warn, other keys pass quietly.
  let issuer: TestIssuer
  t.before(async () => { issuer = await createTestIssuer() })

  t.test('a synonym warns once at start-up, naming the route and the key it probably meant', async (t) => {
    const logs = captureLogs()
    const app = Fastify({ logger: { level: 'info', stream: logs.stream } })
    t.teardown(() => app.close())
    await app.register(griddyAuth, issuer.pluginOptions)
    const routes: Array<[string, Record<string, unknown>]> = [
      ['/scopes', { scopes: ['leagues:admin'] }],
      ['/roles', { roles: 'admin' }],
      ['/perms', { perms: ['leagues:admin'] }],
      ['/is-public', { isPublic: true }],
      ['/auth-false', { auth: false }],
      // Other plugins' keys, and routes that state their policy, stay quiet.
      ['/rate-limited', { rateLimit: { max: 5 }, swagger: { hide: false }, compress: false, publish: true, permissionsClaim: 'x' }],
      ['/stated', { permissions: [], scopes: ['x'] }],
      ['/stated-public', { public: true, auth: false }],
      ['/stated-private', { public: false, isPublic: true }]
    ]
    for (const [url, config] of routes) app.get(url, { config }, async (request) => ({ userId: request.auth?.userId ?? null }))
    await app.ready()

    const warnings = logs.lines.filter((line) => line.level === 40)
    t.same(warnings.map(({ route, key, meant }) => ({ route, key, meant })), [
      { route: 'route "GET /scopes"', key: 'scopes', meant: 'permissions' },
      { route: 'route "GET /roles"', key: 'roles', meant: 'permissions' },
      { route: 'route "GET /perms"', key: 'perms', meant: 'permissions' },
      { route: 'route "GET /is-public"', key: 'isPublic', meant: 'public' },
      { route: 'route "GET /auth-false"', key: 'auth', meant: 'public' }
    ], 'one warning per synonym, none for other keys or for routes that state their policy')
    t.equal(warnings[0]?.msg, 'griddy-auth: route "GET /scopes": config.scopes is not read by fastify-griddy-auth, so the route requires no permission, ' +
      'only a valid token; did you mean config.permissions? (State config.permissions or config.public on the route to silence this.)')
    t.match(warnings[3]?.msg, /config\.isPublic is not read by fastify-griddy-auth, so the route still requires a valid token; did you mean config\.public\?/)

    // A warning changes nothing: the synonym is simply not read.
    t.equal((await get(app, '/scopes', issuer.sign({ sub: 'u' }))).statusCode, 200, '/scopes: any valid token')
    assertFailure(t, await get(app, '/is-public'), noToken(), undefined, '/is-public: still needs a token:')
  })

  t.test('keys of other plugins are not taken for misspellings', async (t) => {
    const quiet = ['rateLimit', 'swagger', 'schema', 'url', 'method', 'publish', 'publicKey', 'republic', 'permissionsClaim', 'permit', 'submissions',
      'missions', 'admissions', 'cors', 'compress', 'otel', 'cache', 'version', 'pub', 'publicly', 'permissions', 'public', '__proto__', 'constructor']
    for (const key of quiet) t.equal(misspelling({ [key]: 1 }), undefined, key)
    t.same(misspelling({ rateLimit: 1, permision: 2 }), { key: 'permision', meant: 'permissions' })
    t.same(misspelling({ pubilc: true }), { key: 'pubilc', meant: 'public' })
  })

  t.test('editDistance counts insertions, deletions, substitutions and transpositions', async (t) => {
    const table: Array<[string, string, number]> = [
      ['', '', 0], ['', 'abc', 3], ['abc', '', 3], ['public', 'public', 0], ['publc', 'public', 1], ['pubilc', 'public', 1],
      ['publik', 'public', 1], ['publish', 'public', 2], ['permisison', 'permissions', 2], ['premissions', 'permissions', 1], ['perms', 'permissions', 6]
    ]
    for (const [a, b, distance] of table) t.equal(editDistance(a, b), distance, `${JSON.stringify(a)} -> ${JSON.stringify(b)}`)
  })

  t.test('a route declared before the plugin loaded, with permissions: undefined, admits no one', async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(griddyAuth, issuer.pluginOptions)
    app.get('/late-undefined', { config: { permissions: undefined } }, async () => 'ok')
    await app.ready()
    const res = await get(app, '/late-undefined', issuer.sign({ sub: 'u', permissions: ['leagues:admin'] }))
    t.not(res.statusCode, 200, 'not admitted')
    t.match(res.json(), { message: /route "GET \/late-undefined": config\.permissions is undefined/ }, 'the error names the route')
  })
})

t.test('permissions, unit level (SPEC §4)', async (t) => {
  // Permissions (SPEC §4), unit level: how a claim is normalised, how a
  // requirement is validated, and the all-of, exact comparison.
  t.test('grantedPermissions: the claim, normalised', async (t) => {
    const table: Array<[string, unknown, string[]]> = [
      ['a list of strings', ['a:read', 'a:write'], ['a:read', 'a:write']],
      ['a list keeps duplicates harmlessly', ['a', 'a'], ['a', 'a']],
      ['a list drops non-strings', ['a', 1, null, undefined, {}, [], true, 'b'], ['a', 'b']],
      ['a list drops empty strings', ['', 'a', ''], ['a']],
      ['a list item is not split on spaces', ['a b'], ['a b']],
      ['one name', 'a:read', ['a:read']],
      ['a space-delimited string', 'a:read a:write', ['a:read', 'a:write']],
      ['tabs, newlines and runs of spaces', '\t a:read  \n\r a:write \u00a0 b ', ['a:read', 'a:write', 'b']],
      ['an empty string', '', []],
      ['whitespace only', '   \n', []],
      ['a comma-separated string is one name', 'a,b', ['a,b']],
      ['an empty list', [], []],
      ['undefined', undefined, []],
      ['null', null, []],
      ['a number', 42, []],
      ['a boolean', true, []],
      ['an object', { a: true }, []],
      ['a nested list', [['a']], []]
    ]
    for (const [name, claim, expected] of table) {
      for (const frozen of [false, true]) {
        // A verified payload arrives deep-frozen; a permissionsClaim function's result may not be.
        const input = frozen && Array.isArray(claim) ? Object.freeze([...claim]) : claim
        const label = `${name}${frozen ? ' (frozen)' : ''}`
        const granted = grantedPermissions(input)
        t.same(granted, expected, label)
        t.ok(Object.isFrozen(granted), `${label}: frozen`)
        t.ok(granted.every((item) => typeof item === 'string' && item.length > 0), `${label}: non-empty strings only`)
        if (Array.isArray(input) && !frozen) t.notOk(Object.isFrozen(input), `${label}: the caller's array is not frozen`)
      }
    }
    const names = Object.freeze(['a:read', 'a:write'])
    t.equal(grantedPermissions(names), names, 'a frozen list of names is used as it is, not copied')
  })

  t.test('parseRequirement: route config (strict) and authorize() (lenient)', async (t) => {
    const valid: Array<[string, unknown, string[]]> = [
      ['undefined', undefined, []],
      ['one name', 'a:read', ['a:read']],
      ['a list', ['a:read', 'a:write'], ['a:read', 'a:write']],
      ['a list with duplicates', ['a', 'b', 'a'], ['a', 'b']],
      ['an empty list', [], []]
    ]
    for (const [name, value, expected] of valid) {
      for (const strict of [true, false]) {
        const parsed = parseRequirement(value, 'where', strict)
        t.same(parsed, expected, `${name} (strict: ${String(strict)})`)
        t.ok(Object.isFrozen(parsed), `${name}: frozen`)
      }
    }
    const lenientOnly: Array<[string, unknown, string[]]> = [
      ['an empty name', '', ['']],
      ['a name with a space', 'a b', ['a b']],
      ['a list with a blank name', ['a', ' '], ['a', ' ']]
    ]
    for (const [name, value, expected] of lenientOnly) {
      t.same(parseRequirement(value, 'where', false), expected, `${name}: taken as is by authorize()`)
      t.throws(() => parseRequirement(value, 'THE ROUTE', true), {
        name: 'TypeError',
        message: /^fastify-griddy-auth: THE ROUTE must hold non-empty permission names without whitespace, got /
      }, `${name}: refused in route config`)
    }
    const wrongTypes: Array<[string, unknown, RegExp]> = [
      ['a number', 5, /THE PLACE must be a permission name or an array of names, got number/],
      ['null', null, /THE PLACE must be a permission name or an array of names, got object/],
      ['an object', { a: 1 }, /got object/],
      ['a boolean', false, /got boolean/],
      ['a list holding a number', ['a', 3], /THE PLACE must hold permission names \(strings\), got number/],
      ['a list holding a list', [['a']], /must hold permission names \(strings\), got object/],
      ['a list holding undefined', ['a', undefined], /got undefined/]
    ]
    for (const [name, value, message] of wrongTypes) {
      for (const strict of [true, false]) {
        t.throws(() => parseRequirement(value, 'THE PLACE', strict), { name: 'TypeError', message }, `${name} (strict: ${String(strict)})`)
      }
    }
  })

  t.test('grants: all of the required names, compared exactly', async (t) => {
    const table: Array<[string[], string[], boolean]> = [
      [[], [], true],
      [['a'], [], true],
      [[], ['a'], false],
      [['a', 'b'], ['a', 'b'], true],
      [['b', 'a', 'c'], ['a', 'b'], true],
      [['a'], ['a', 'b'], false],
      [['A'], ['a'], false],
      [['a:*'], ['a:read'], false],
      [['*'], ['a:read'], false],
      [['a'], ['a:read'], false],
      [['a:read'], ['a'], false],
      [['a:read '], ['a:read'], false],
      [['a:read'], ['a:read', 'a:read'], true]
    ]
    for (const [granted, required, expected] of table) {
      t.equal(grants(granted, required), expected, `granted ${JSON.stringify(granted)}, required ${JSON.stringify(required)}`)
    }
  })
})
