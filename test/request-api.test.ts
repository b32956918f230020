/**
 * What a handler works with (SPEC §5, §8), in two parts:
 * - the request and instance API: request.authorize(),
 *   fastify.griddyAuth.verify(), the AuthContext (normalised permissions,
 *   deeply frozen claims, permissionsClaim);
 * - the verified-token cache: one RSA verification per token, bounded LRU,
 *   never past exp (+ tolerance) nor past its key, permissions per request.
 *
 * (One file, not two: each tap process pays a few seconds of TypeScript
 * and Fastify start-up, and the suite has a time budget.)
 */
import t from 'tap'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { GriddyAuthError, type AuthContext } from '../lib/index'
import type * as Index from '../lib/index'
import * as signature from '../lib/signature'
import { TokenCache } from '../lib/token-cache'
import { createTestIssuer, type TestIssuer } from '../lib/testing/index'
import { assertFailure, assertSafe, badHeader, buildApp, forbidden, get, getWithHeader, noToken, tokenFailure, type Tap } from './helpers'

t.test('request and instance API (SPEC §5)', async (t) => {
  // Request and instance API (SPEC §5): request.authorize(), fastify.griddyAuth.verify(),
  // and the AuthContext a handler sees (normalised permissions, frozen claims).
  let issuer: TestIssuer
  let app: FastifyInstance

  t.before(async () => {
    issuer = await createTestIssuer()
  })

  /** What a handler reports about `request.authorize(permissions)` failing with a non-GriddyAuthError. */
  async function tryAuthorize (request: FastifyRequest, permissions: unknown): Promise<unknown> {
    try {
      return await request.authorize(permissions as string)
    } catch (err) {
      if (err instanceof GriddyAuthError) throw err
      return { thrown: (err as Error).name, message: (err as Error).message }
    }
  }

  t.beforeEach(async (t) => {
    app = await buildApp(t, issuer.pluginOptions, {
      routes: (a) => {
        a.get('/open', { config: { public: true } }, async (request) => {
          const before = request.auth
          const context = await request.authorize()
          return { before, context, same: context === request.auth }
        })
        a.get('/open/needs', { config: { public: true } }, async (request) => {
          const list = (request.query as { p?: string }).p?.split(',') ?? []
          return await request.authorize(list.length === 1 ? list[0] : list)
        })
        a.get('/open/bad-argument', { config: { public: true } }, async (request) => {
          const results: unknown[] = []
          // undefined passed explicitly (issue #15): a constant that does not exist, not "no permission needed".
          for (const argument of [5, {}, null, ['a', 5], [['a']], true, undefined]) results.push(await tryAuthorize(request, argument))
          return { results, auth: request.auth }
        })
        a.get('/protected', { config: { permissions: 'leagues:read' } }, async (request) => {
          const before = request.auth
          request.headers.authorization = 'Basic not-looked-at-again'
          const context = await request.authorize()
          return { same: context === before && context === request.auth, userId: context.userId }
        })
        a.get('/protected/extra', { config: { permissions: 'leagues:read' } }, async (request) => request.authorize(['leagues:read', 'leagues:admin']))
        a.get('/leagues/:id', { config: { permissions: 'leagues:read' } }, async (request) => {
          const { id } = request.params as { id: string }
          if (id.startsWith('private-')) await request.authorize('leagues:admin')
          return { league: id }
        })
        a.get('/context', async (request) => request.auth)
        a.get('/frozen', async (request) => {
          const auth = request.auth as AuthContext
          const attempts: Record<string, string> = {}
          const attempt = (name: string, mutate: () => void): void => {
            try {
              mutate()
              attempts[name] = 'mutated'
            } catch (err) {
              attempts[name] = (err as Error).name
            }
          }
          const claims = auth.claims as Record<string, any>
          attempt('claims.sub', () => { claims.sub = 'admin' })
          attempt('claims.added', () => { claims.added = 1 })
          attempt('claims.nested.x', () => { claims.nested.x = 2 })
          attempt('claims.nested.list.push', () => { claims.nested.list.push(4) })
          attempt('claims.nested.list[0].deep', () => { claims.nested.list[0].deep = 'changed' })
          attempt('delete claims.exp', () => { delete claims.exp })
          attempt('permissions.push', () => { (auth.permissions as string[]).push('leagues:admin') })
          attempt('context.userId', () => { (auth as { userId: string }).userId = 'admin' })
          attempt('context.permissions', () => { (auth as unknown as { permissions: string[] }).permissions = ['leagues:admin'] })
          return { attempts, claims: auth.claims }
        })
      }
    })
  })

  t.test('authorize() on a public route authenticates on demand', async (t) => {
    assertFailure(t, await get(app, '/open'), noToken(), undefined, 'no header:')
    assertFailure(t, await getWithHeader(app, '/open', 'Basic x'), badHeader(), undefined, 'another scheme:')
    const expired = issuer.sign({ sub: 'user_1' }, { expiresIn: -3600 })
    assertFailure(t, await get(app, '/open', expired), tokenFailure('GRIDDY_AUTH_EXPIRED'), expired, 'expired:')

    const token = issuer.sign({ sub: 'user_1', sid: 'sess_1', permissions: ['leagues:read'] })
    const res = await get(app, '/open', token)
    assertSafe(t, res, token)
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.equal(body.before, null, 'request.auth was null before authorize()')
    t.equal(body.same, true, 'authorize() resolves to request.auth')
    t.same(body.context, { userId: 'user_1', sessionId: 'sess_1', permissions: ['leagues:read'], claims: JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) })
  })

  t.test('authorize(permissions) on a public route: 403 naming exactly the given permissions', async (t) => {
    const token = issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] })
    t.equal((await get(app, '/open/needs?p=leagues:read', token)).statusCode, 200, 'one granted permission')
    assertFailure(t, await get(app, '/open/needs?p=leagues:admin', token), forbidden('leagues:admin'), token, 'one missing:')
    assertFailure(t, await get(app, '/open/needs?p=leagues:read,leagues:admin,teams:write', token),
      forbidden('leagues:read leagues:admin teams:write'), token, 'a list with missing ones:')
    assertFailure(t, await get(app, '/open/needs?p=leagues:admin'), noToken(), undefined, 'no token: 401 before 403:')
    // Names built from data are compared exactly, whatever they hold.
    assertFailure(t, await get(app, '/open/needs?p=leagues:read%20leagues:admin', token), forbidden('leagues:read leagues:admin'), token, 'a name with a space is one name:')
  })

  t.test('authorize() with arguments of the wrong type throws a TypeError', async (t) => {
    const token = issuer.sign({ sub: 'user_1' })
    const res = await get(app, '/open/bad-argument', token)
    t.equal(res.statusCode, 200)
    const { results, auth } = res.json()
    t.equal(results.length, 7)
    for (const result of results) {
      t.equal(result.thrown, 'TypeError')
      t.match(result.message, /^fastify-griddy-auth: request\.authorize\(\) permissions must /)
    }
    t.equal(results[6].message, 'fastify-griddy-auth: request.authorize() permissions must be a permission name or an array of names, got undefined; ' +
      'call request.authorize() with no argument to require a valid token only', 'an explicit undefined says how to ask for no permission')
    t.equal(auth, null, 'a refused argument authenticates nothing')
  })

  t.test('authorize() on a protected route re-uses request.auth', async (t) => {
    const token = issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] })
    const res = await get(app, '/protected', token)
    t.equal(res.statusCode, 200, 'the changed header is not read again')
    t.same(res.json(), { same: true, userId: 'user_1' })
    assertFailure(t, await get(app, '/protected/extra', token), forbidden('leagues:read leagues:admin'), token, 'extra permissions:')
    const admin = issuer.sign({ sub: 'user_1', permissions: ['leagues:read', 'leagues:admin'] })
    t.equal((await get(app, '/protected/extra', admin)).json().userId, 'user_1')
  })

  t.test('data-dependent authorization in a handler', async (t) => {
    const reader = issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] })
    const admin = issuer.sign({ sub: 'user_2', permissions: ['leagues:read', 'leagues:admin'] })
    t.same((await get(app, '/leagues/public-1', reader)).json(), { league: 'public-1' })
    assertFailure(t, await get(app, '/leagues/private-1', reader), forbidden('leagues:admin'), reader, 'private league, reader:')
    t.same((await get(app, '/leagues/private-1', admin)).json(), { league: 'private-1' })
  })

  t.test('fastify.griddyAuth.verify(token)', async (t) => {
    t.ok(Object.isFrozen(app.griddyAuth), 'the decorator is frozen')
    const token = issuer.sign({ sub: 'user_1', sid: 'sess_9', permissions: 'a b' })
    const pending = app.griddyAuth.verify(token)
    t.ok(pending instanceof Promise, 'returns a promise')
    const context = await pending
    t.equal(context.userId, 'user_1')
    t.equal(context.sessionId, 'sess_9')
    t.same(context.permissions, ['a', 'b'])
    t.ok(await app.griddyAuth.verify(token) instanceof Object, 'a cached token still resolves')
    t.ok(app.griddyAuth.verify(token) instanceof Promise, 'a promise on a cache hit too')

    const bad: Array<[string, unknown, string]> = [
      ['expired', issuer.sign({ sub: 'u' }, { expiresIn: -3600 }), 'GRIDDY_AUTH_EXPIRED'],
      ['alg none', issuer.sign({ sub: 'u' }, { alg: 'none' }), 'GRIDDY_AUTH_ALGORITHM'],
      ['another audience', issuer.sign({ sub: 'u', aud: 'x' }), 'GRIDDY_AUTH_AUDIENCE'],
      ['no sub', issuer.sign({}), 'GRIDDY_AUTH_MISSING_CLAIM'],
      ['junk', 'junk', 'GRIDDY_AUTH_MALFORMED'],
      ['an empty string', '', 'GRIDDY_AUTH_MALFORMED'],
      ['a whole header value', `Bearer ${token}`, 'GRIDDY_AUTH_MALFORMED'],
      ['a number', 5, 'GRIDDY_AUTH_MALFORMED'],
      ['undefined', undefined, 'GRIDDY_AUTH_MALFORMED'],
      ['null', null, 'GRIDDY_AUTH_MALFORMED'],
      ['an object', { token }, 'GRIDDY_AUTH_MALFORMED'],
      ['a String object', Object(token), 'GRIDDY_AUTH_MALFORMED']
    ]
    for (const [name, value, code] of bad) {
      let settled: unknown
      const result = app.griddyAuth.verify(value as string)
      t.ok(result instanceof Promise, `${name}: a promise, not a throw`)
      try {
        await result
      } catch (err) {
        settled = err
      }
      t.ok(settled instanceof GriddyAuthError, `${name}: rejects with a GriddyAuthError`)
      t.match(settled, { code, statusCode: 401 }, `${name}: ${code}`)
    }
    // verify() checks no permission: that is a route's or authorize()'s business.
    const plain = await app.griddyAuth.verify(issuer.sign({ sub: 'u' }))
    t.same(plain.permissions, [])
  })

  t.test('the AuthContext shape', async (t) => {
    const context = async (claims: Record<string, unknown>): Promise<Record<string, unknown>> => {
      const token = issuer.sign({ sub: 'user_1', ...claims })
      const res = await get(app, '/context', token)
      t.equal(res.statusCode, 200)
      return res.json()
    }
    const noSid = await context({ permissions: ['a'] })
    t.same(Object.keys(noSid).sort(), ['claims', 'permissions', 'userId'], 'no sessionId without sid')
    for (const sid of [5, null, ['s'], { id: 's' }, true]) {
      t.notOk('sessionId' in await context({ sid }), `no sessionId for sid ${JSON.stringify(sid)}`)
    }
    t.equal((await context({ sid: 'sess_1' })).sessionId, 'sess_1')
    t.equal((await context({ sid: '' })).sessionId, '', 'an empty string sid is still a string')

    const permissionCases: Array<[string, unknown, string[]]> = [
      ['a list', ['a:read', 'a:write'], ['a:read', 'a:write']],
      ['a space-delimited string', 'a:read a:write', ['a:read', 'a:write']],
      ['runs of whitespace', '  a:read \t\n  a:write\r\n', ['a:read', 'a:write']],
      ['an empty string', '', []],
      ['whitespace only', ' \t ', []],
      ['a list with non-strings', ['a:read', 5, null, { x: 1 }, ['b'], true, 'a:write'], ['a:read', 'a:write']],
      ['an empty list', [], []],
      ['a number', 5, []],
      ['an object', { 'a:read': true }, []],
      ['null', null, []],
      ['true', true, []]
    ]
    for (const [name, claim, expected] of permissionCases) {
      t.same((await context({ permissions: claim })).permissions, expected, `permissions from ${name}`)
    }
    t.same((await context({})).permissions, [], 'no permissions claim')
  })

  t.test('a permissions claim of another shape grants nothing: a permissioned route answers 403', async (t) => {
    for (const claim of [5, { 'leagues:read': true }, null, true, [['leagues:read']], 'leagues:read,x']) {
      const token = issuer.sign({ sub: 'user_1', permissions: claim })
      assertFailure(t, await get(app, '/leagues/1', token), forbidden('leagues:read'), token, `permissions ${JSON.stringify(claim)}:`)
    }
  })

  t.test('claims is the whole payload, deeply frozen', async (t) => {
    const token = issuer.sign({ sub: 'user_1', nested: { x: 1, list: [{ deep: 'value' }, 2, 3] }, org_id: 'org_1' })
    const res = await get(app, '/frozen', token)
    t.equal(res.statusCode, 200)
    const { attempts, claims } = res.json()
    t.same(attempts, {
      'claims.sub': 'TypeError',
      'claims.added': 'TypeError',
      'claims.nested.x': 'TypeError',
      'claims.nested.list.push': 'TypeError',
      'claims.nested.list[0].deep': 'TypeError',
      'delete claims.exp': 'TypeError',
      'permissions.push': 'TypeError',
      'context.userId': 'TypeError',
      'context.permissions': 'TypeError'
    }, 'every mutation throws in strict mode')
    t.same(claims, JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()), 'the whole verified payload, unchanged')
    // The same token again (served from the cache) is just as intact.
    t.same((await get(app, '/frozen', token)).json().claims.nested, { x: 1, list: [{ deep: 'value' }, 2, 3] })
  })

  t.test('permissionsClaim selects the claim that carries permissions', async (t: Tap) => {
    const orgApp = await buildApp(t, { ...issuer.pluginOptions, permissionsClaim: 'org_permissions' })
    const token = issuer.sign({ sub: 'user_1', permissions: ['leagues:read'], org_permissions: 'org:read leagues:write' })
    const res = await get(orgApp, '/private', token)
    t.same(res.json().permissions, ['org:read', 'leagues:write'], 'read from org_permissions')
    assertFailure(t, await get(orgApp, '/leagues/1', token), forbidden('leagues:read'), token, 'the default claim is ignored:')
    const reader = issuer.sign({ sub: 'user_1', org_permissions: ['leagues:read'] })
    t.equal((await get(orgApp, '/leagues/1', reader)).statusCode, 200)
  })
})

t.test('verified-token cache (SPEC §8)', async (t) => {
  // The verified-token cache (SPEC §8): one RSA verification per token, bounded
  // LRU, never past the token's exp (+ tolerance), never past its key, and
  // route permissions checked on every request.
  //
  // Verifications are counted by loading the plugin with a wrapped signature
  // layer (t.mockRequire), so the count is the plugin's real work.
  let issuer: TestIssuer
  let verifications = 0
  /** The plugin, loaded once (loading it mocked costs a second) with a counting signature layer. */
  let countingGriddyAuth: typeof Index.griddyAuth

  t.before(async () => {
    issuer = await createTestIssuer()
    countingGriddyAuth = countingPlugin(t)
  })

  /** The plugin, loaded with a signature layer that counts verifications. */
  function countingPlugin (t: Tap & { mockRequire: (module: string, mocks: Record<string, unknown>) => unknown }): typeof Index.griddyAuth {
    const counted: typeof signature = {
      ...signature,
      registerSignatureVerifier: async (fastify, chooseKey) => {
        const verify = await signature.registerSignatureVerifier(fastify, chooseKey)
        return async (token) => {
          verifications++
          return verify(token)
        }
      }
    }
    return (t.mockRequire('../lib/index', { '../lib/signature': counted }) as typeof Index).griddyAuth
  }

  async function countingApp (t: Tap, options: Partial<Index.GriddyAuthOptions> = {}): Promise<FastifyInstance> {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(countingGriddyAuth, { ...issuer.pluginOptions, ...options })
    app.get('/private', async (request) => ({ userId: request.auth?.userId }))
    app.get('/read', { config: { permissions: 'leagues:read' } }, async () => 'ok')
    app.get('/write', { config: { permissions: 'leagues:write' } }, async () => 'ok')
    await app.ready()
    verifications = 0
    return app
  }

  /** Runs `fn` with Date.now() moved `offsetMs` ahead. */
  async function later<T> (offsetMs: number, fn: () => Promise<T>): Promise<T> {
    const realNow = Date.now
    Date.now = () => realNow() + offsetMs
    try {
      return await fn()
    } finally {
      Date.now = realNow
    }
  }

  t.test('a reused token costs one RSA verification', async (t) => {
    const app = await countingApp(t)
    const token = issuer.sign({ sub: 'user_1' })
    for (let i = 0; i < 5; i++) t.equal((await get(app, '/private', token)).statusCode, 200)
    t.equal(verifications, 1, 'five requests, one verification')
    await app.griddyAuth.verify(token)
    t.equal(verifications, 1, 'verify() shares the cache')
    const other = issuer.sign({ sub: 'user_2' })
    t.equal((await get(app, '/private', other)).json().userId, 'user_2', 'another token gets its own context')
    t.equal((await get(app, '/private', token)).json().userId, 'user_1', 'and the first keeps its own')
    t.equal(verifications, 2, 'another token, another verification')
  })

  t.test('cache: false and cache: 0 verify every time', async (t) => {
    for (const cache of [false, 0] as const) {
      const app = await countingApp(t, { cache })
      const token = issuer.sign({ sub: 'user_1' })
      for (let i = 0; i < 3; i++) t.equal((await get(app, '/private', token)).statusCode, 200)
      t.equal(verifications, 3, `cache: ${String(cache)}: three requests, three verifications`)
    }
  })

  t.test('failures are not cached as successes', async (t) => {
    const app = await countingApp(t)
    const [h, , sig] = issuer.sign({ sub: 'user_1' }).split('.')
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'admin', iss: issuer.issuer, aud: issuer.audience, exp: 2e9 })).toString('base64url')}.${sig}`
    for (let i = 0; i < 2; i++) assertFailure(t, await get(app, '/private', forged), tokenFailure('GRIDDY_AUTH_SIGNATURE'), forged)
    const wrongAudience = issuer.sign({ sub: 'user_1', aud: 'x' })
    for (let i = 0; i < 2; i++) assertFailure(t, await get(app, '/private', wrongAudience), tokenFailure('GRIDDY_AUTH_AUDIENCE'), wrongAudience)
    t.equal(verifications, 4, 'each failing request was verified again')
  })

  t.test('bounded LRU: cache: 2 keeps the two most recently used tokens', async (t) => {
    const app = await countingApp(t, { cache: 2 })
    const [a, b, c] = ['a', 'b', 'c'].map((sub) => issuer.sign({ sub })) as [string, string, string]
    const send = async (token: string): Promise<number> => {
      const before = verifications
      t.equal((await get(app, '/private', token)).statusCode, 200)
      return verifications - before
    }
    t.equal(await send(a), 1, 'a: verified')
    t.equal(await send(b), 1, 'b: verified')
    t.equal(await send(a), 0, 'a: cached (and now the most recent)')
    t.equal(await send(c), 1, 'c: verified, evicting b, the least recently used')
    t.equal(await send(a), 0, 'a: still cached')
    t.equal(await send(c), 0, 'c: cached')
    t.equal(await send(b), 1, 'b: evicted, verified again')
  })

  /** The token's exp, in epoch ms. */
  function expMs (token: string): number {
    return (JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { exp: number }).exp * 1000
  }

  /** Runs `fn` with the clock at `atMs` (epoch ms). */
  async function at<T> (atMs: number, fn: () => Promise<T>): Promise<T> {
    return later(atMs - Date.now(), fn)
  }

  t.test('a cached token is rejected once expired (clockTolerance: 0)', async (t) => {
    const app = await countingApp(t, { clockTolerance: 0 })
    const token = issuer.sign({ sub: 'user_1' }, { expiresIn: 30 })
    const exp = expMs(token)
    t.equal((await get(app, '/private', token)).statusCode, 200, 'valid now')
    t.equal((await at(exp - 1_000, () => get(app, '/private', token))).statusCode, 200, 'still valid a second before exp')
    t.equal(verifications, 1, 'served from the cache')
    const res = await at(exp + 50, () => get(app, '/private', token))
    assertFailure(t, res, tokenFailure('GRIDDY_AUTH_EXPIRED'), token, 'just after exp:')
    t.equal((await at(exp + 1_000, () => get(app, '/private', token))).statusCode, 401, 'and stays rejected')
    const verified = await at(exp + 1_000, async () => {
      try {
        await app.griddyAuth.verify(token)
        return 'accepted'
      } catch (err) {
        return (err as { code: string }).code
      }
    })
    t.equal(verified, 'GRIDDY_AUTH_EXPIRED', 'verify() too')
  })

  t.test('a cached token lives until exp + tolerance, not beyond', async (t) => {
    const app = await countingApp(t, { clockTolerance: 5 })
    const token = issuer.sign({ sub: 'user_1' }, { expiresIn: 30 })
    const exp = expMs(token)
    t.equal((await get(app, '/private', token)).statusCode, 200)
    t.equal((await at(exp + 4_000, () => get(app, '/private', token))).statusCode, 200, 'past exp, within tolerance')
    t.equal(verifications, 1, 'from the cache')
    assertFailure(t, await at(exp + 5_050, () => get(app, '/private', token)), tokenFailure('GRIDDY_AUTH_EXPIRED'), token, 'past exp + tolerance:')
  })

  t.test('route permissions are checked on every request of a cached token', async (t) => {
    const app = await countingApp(t)
    const token = issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] })
    t.equal((await get(app, '/read', token)).statusCode, 200)
    assertFailure(t, await get(app, '/write', token), forbidden('leagues:write'), token, '/write:')
    t.equal((await get(app, '/read', token)).statusCode, 200)
    assertFailure(t, await get(app, '/write', token), forbidden('leagues:write'), token, '/write again:')
    t.equal(verifications, 1, 'one verification for the four requests')
  })

  t.test('a key dropped from the JWKS takes its cached tokens with it', async (t) => {
    const rotating = await createTestIssuer()
    const served = await rotating.serve()
    t.teardown(() => served.close())
    const ttl = 100
    const app = await buildApp(t, { issuer: rotating.issuer, audience: rotating.audience, jwksUrl: served.jwksUrl, jwksCooldown: 0, jwksCacheTtl: ttl })
    const notFound = await fetch(`${served.url}/elsewhere`)
    t.equal(notFound.status, 404, 'the testing kit serves its JWKS path only')
    await notFound.arrayBuffer()
    const old = rotating.sign({ sub: 'user_1' })
    t.equal((await get(app, '/private', old)).statusCode, 200, 'the token of the current key')
    t.equal((await get(app, '/private', old)).statusCode, 200, 'cached')
    const retired = rotating.key
    await rotating.rotate({ retire: true })
    const fresh = rotating.sign({ sub: 'user_2' })
    t.equal((await get(app, '/private', fresh)).statusCode, 200, 'a token of the new key: a fetch of its own')
    // get-jwks fetches per key: the retired key is seen gone by its own refetch, once its ttl has passed
    await new Promise((resolve) => setTimeout(resolve, ttl + 20))
    t.equal((await get(app, '/private', rotating.sign({ sub: 'user_3' }, { key: retired }))).statusCode, 200, 'past the ttl the stale key answers, and is refetched')
    let res = await get(app, '/private', old)
    for (let i = 0; i < 100 && res.statusCode === 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
      res = await get(app, '/private', old)
    }
    assertFailure(t, res, tokenFailure('GRIDDY_AUTH_UNKNOWN_KEY'), old, 'the retired key\'s token, though cached:')
    t.equal(served.requests, 3, 'fetches: the first lookup, the new kid, the retired key\'s refetch')
  })

  t.test('TokenCache', async (t) => {
    const live = { revoked: false }
    const cache = new TokenCache<string>(2)
    t.equal(cache.get('a', 0), undefined, 'empty')
    cache.set('a', { value: 'A', expiresAt: 100, key: live })
    cache.set('a', { value: 'A2', expiresAt: 100, key: live })
    t.equal(cache.size, 1, 'setting a token again replaces it')
    t.equal(cache.get('a', 100), 'A2', 'alive at expiresAt')
    t.equal(cache.get('a', 101), undefined, 'dead after expiresAt')
    t.equal(cache.size, 0, 'and dropped')

    cache.set('a', { value: 'A', expiresAt: 1000, key: live })
    cache.set('b', { value: 'B', expiresAt: 1000, key: live })
    t.equal(cache.get('a', 0), 'A', 'a used: b is now the least recent')
    cache.set('c', { value: 'C', expiresAt: 1000, key: live })
    t.equal(cache.size, 2, 'bounded')
    t.equal(cache.get('b', 0), undefined, 'b evicted')
    t.equal(cache.get('a', 0), 'A')
    t.equal(cache.get('c', 0), 'C')

    const key = { revoked: false }
    cache.set('d', { value: 'D', expiresAt: 1000, key })
    t.equal(cache.get('d', 0), 'D')
    key.revoked = true
    t.equal(cache.get('d', 0), undefined, 'a revoked key is not served')
    t.equal(cache.get('d', 0), undefined, 'nor later')

    const off = new TokenCache<string>(0)
    off.set('a', { value: 'A', expiresAt: 1000, key: live })
    t.equal(off.size, 0, 'max 0 stores nothing')
    t.equal(off.get('a', 0), undefined)
  })

  t.test('TokenCache: tokens that end alike are never confused', async (t) => {
    // The map is keyed by a token's last 32 characters; a hit is confirmed on the whole token.
    const live = { revoked: false }
    const end = 'S'.repeat(32)
    const cases: Array<[string, string, string]> = [
      ['same end, different start', `aaa.bbb.${end}`, `aaa.bbc.${end}`],
      ['one a prefix-extension of the other', `x.y.${end}`, `xx.y.${end}`],
      ['same length, one character apart at the front', `A${'.'.repeat(40)}${end}`, `B${'.'.repeat(40)}${end}`]
    ]
    for (const [name, first, second] of cases) {
      const cache = new TokenCache<string>(10)
      cache.set(first, { value: 'first', expiresAt: 1000, key: live })
      t.equal(cache.get(second, 0), undefined, `${name}: the other token is a miss`)
      t.equal(cache.get(first, 0), 'first', `${name}: the stored one is a hit`)
      cache.set(second, { value: 'second', expiresAt: 1000, key: live })
      t.equal(cache.get(second, 0), 'second', `${name}: once stored, the second is a hit`)
      t.equal(cache.get(first, 0), undefined, `${name}: and has taken the first one's place (a miss, never the other's value)`)
      t.equal(cache.size, 1, `${name}: one slot`)
    }
    const cache = new TokenCache<string>(10)
    cache.set('short.a', { value: 'a', expiresAt: 1000, key: live })
    cache.set('short.b', { value: 'b', expiresAt: 1000, key: live })
    t.same([cache.get('short.a', 0), cache.get('short.b', 0), cache.get('short', 0)], ['a', 'b', undefined], 'tokens shorter than the key length are keyed whole')
  })
})
