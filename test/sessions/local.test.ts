/**
 * Sign-out within one process (SPEC §11, `sessions` without `redis`):
 * endSession() and endUserSessions() as a client sees them, the place of
 * the check in the verification order (§6), the verified-token cache, the
 * other entry points (verify(), authorize()), argument mistakes, expiry,
 * and the in-memory records' bound.
 */
import t from 'tap'
import Fastify from 'fastify'
import griddyAuth, { GriddyAuthError, type GriddyAuthOptions } from '../../lib/index'
import { EndedRecords } from '../../lib/sessions/records'
import type { AuthContext } from '../../lib/auth-context'
import { createTestIssuer, type TestIssuer } from '../../lib/testing/index'
import { assertFailure, buildApp, captureLogs, forbidden, get, nowSeconds, tokenFailure } from '../helpers'

const APP = 'https://app.test'
let issuer: TestIssuer

t.before(async () => {
  issuer = await createTestIssuer({ authorizedParties: [APP] })
})

const options = (sessions: GriddyAuthOptions['sessions'] = {}, extra: Partial<GriddyAuthOptions> = {}): GriddyAuthOptions =>
  ({ ...issuer.pluginOptions, sessions, ...extra })

const ended = tokenFailure('GRIDDY_AUTH_SESSION_ENDED')

t.test("endSession(): that session's tokens are refused, fresh or cached; nothing else is", async (t) => {
  const app = await buildApp(t, options())
  const cached = issuer.sign({ sub: 'user_1', sid: 'sess_cached' })
  const fresh = issuer.sign({ sub: 'user_1', sid: 'sess_fresh' })
  const other = issuer.sign({ sub: 'user_1', sid: 'sess_other' })
  const noSid = issuer.sign({ sub: 'user_1' })
  const numericSid = issuer.sign({ sub: 'user_1', sid: 42 })
  for (const token of [cached, other, noSid, numericSid]) t.equal((await get(app, '/private', token)).statusCode, 200, 'accepted (and cached) before')

  t.equal(await app.griddyAuth.endSession('sess_cached'), undefined, 'resolves with nothing')
  await app.griddyAuth.endSession('sess_fresh')
  await app.griddyAuth.endSession('42')
  assertFailure(t, await get(app, '/private', cached), ended, cached, 'a token in the verified-token cache:')
  assertFailure(t, await get(app, '/private', fresh), ended, fresh, 'a token never seen before:')
  assertFailure(t, await get(app, '/private', cached), ended, cached, 'again: every request is judged, not only the first')
  t.equal((await get(app, '/private', other)).statusCode, 200, 'another session of the same user works')
  t.equal((await get(app, '/private', noSid)).statusCode, 200, 'a token without sid is not touched by endSession()')
  t.equal((await get(app, '/private', numericSid)).statusCode, 200, 'a non-string sid is no session id (the context has no sessionId)')
  t.equal((await get(app, '/public')).statusCode, 200, 'public routes need no token')
  t.equal((await get(app, '/public', cached)).statusCode, 200, 'and ignore the token they are sent')

  await app.griddyAuth.endSession('sess_cached')
  assertFailure(t, await get(app, '/private', cached), ended, cached, 'ending twice changes nothing')
})

t.test("endUserSessions(): that user's tokens issued before the call are refused; later ones work", async (t) => {
  const app = await buildApp(t, options())
  const now = nowSeconds()
  const earlier = issuer.sign({ sub: 'user_1', sid: 'sess_1', iat: now - 30 })
  const sameSecond = issuer.sign({ sub: 'user_1', sid: 'sess_1', iat: now })
  const noIat = issuer.sign({ sub: 'user_1', sid: 'sess_2' }, { omit: ['iat'] })
  const stringIat = issuer.sign({ sub: 'user_1', iat: String(now - 30) })
  const otherUser = issuer.sign({ sub: 'user_2', iat: now - 30 })
  t.equal((await get(app, '/private', earlier)).statusCode, 200, 'cached before')

  await app.griddyAuth.endUserSessions('user_1')
  const later = issuer.sign({ sub: 'user_1', sid: 'sess_3', iat: nowSeconds() + 1 })
  assertFailure(t, await get(app, '/private', earlier), ended, earlier, 'issued 30 s before, from the cache:')
  assertFailure(t, await get(app, '/private', sameSecond), ended, sameSecond, 'issued in the same second (cannot be told apart: fail closed):')
  assertFailure(t, await get(app, '/private', noIat), ended, noIat, 'no iat (fail closed):')
  assertFailure(t, await get(app, '/private', stringIat), ended, stringIat, 'a non-numeric iat (fail closed):')
  t.equal((await get(app, '/private', later)).statusCode, 200, 'a token issued after the call works')
  t.equal((await get(app, '/private', otherUser)).statusCode, 200, 'another user is not touched')

  // A later call moves the line: what the first call let through is refused now.
  await new Promise((resolve) => setTimeout(resolve, 1100))
  await app.griddyAuth.endUserSessions('user_1')
  assertFailure(t, await get(app, '/private', later), ended, later, 'a second endUserSessions() refuses what was issued before it')
})

t.test('the check\'s place in the verification order (SPEC §6): after azp, before permissions', async (t) => {
  const app = await buildApp(t, options({}, { realm: 'x' }))
  await app.griddyAuth.endSession('sess_gone')
  const cases = [
    { name: 'expired and ended', token: issuer.sign({ sub: 'u', sid: 'sess_gone' }, { expiresIn: -60 }), url: '/private', expect: tokenFailure('GRIDDY_AUTH_EXPIRED', 'x') },
    { name: 'another audience and ended', token: issuer.sign({ sub: 'u', sid: 'sess_gone', aud: 'https://other.test' }), url: '/private', expect: tokenFailure('GRIDDY_AUTH_AUDIENCE', 'x') },
    { name: 'another party and ended', token: issuer.sign({ sub: 'u', sid: 'sess_gone', azp: 'https://evil.test' }), url: '/private', expect: tokenFailure('GRIDDY_AUTH_AUTHORIZED_PARTY', 'x') },
    { name: 'no azp and ended', token: issuer.sign({ sub: 'u', sid: 'sess_gone' }, { omit: ['azp'] }), url: '/private', expect: tokenFailure('GRIDDY_AUTH_AUTHORIZED_PARTY', 'x') },
    { name: 'ended, lacking a permission', token: issuer.sign({ sub: 'u', sid: 'sess_gone' }), url: '/admin', expect: tokenFailure('GRIDDY_AUTH_SESSION_ENDED', 'x') },
    { name: 'ended, with the permissions', token: issuer.sign({ sub: 'u', sid: 'sess_gone', permissions: ['leagues:read'] }), url: '/leagues/1', expect: tokenFailure('GRIDDY_AUTH_SESSION_ENDED', 'x') },
    { name: 'live, lacking a permission', token: issuer.sign({ sub: 'u', sid: 'sess_live' }), url: '/admin', expect: forbidden('leagues:read leagues:write', 'x') }
  ]
  for (const c of cases) {
    assertFailure(t, await get(app, c.url, c.token), c.expect, c.token, `${c.name}:`)
    assertFailure(t, await get(app, c.url, c.token), c.expect, c.token, `${c.name}, second time (cache):`)
  }
})

t.test('verify() and request.authorize() refuse ended sessions too', async (t) => {
  const app = await buildApp(t, options(), {
    routes: (a) => {
      a.get('/open', { config: { public: true } }, async (request) => await request.authorize())
    }
  })
  const token = issuer.sign({ sub: 'user_1', sid: 'sess_ws' })
  t.match(await app.griddyAuth.verify(token), { userId: 'user_1', sessionId: 'sess_ws' })
  await app.griddyAuth.endSession('sess_ws')
  await t.rejects(app.griddyAuth.verify(token), { name: 'GriddyAuthError', code: 'GRIDDY_AUTH_SESSION_ENDED', statusCode: 401, message: 'Session has ended.' })
  const err = await app.griddyAuth.verify(token).catch((err: unknown) => err)
  t.ok(err instanceof GriddyAuthError)
  t.same((err as GriddyAuthError).headers, { 'www-authenticate': 'Bearer error="invalid_token", error_description="Session has ended."' })
  assertFailure(t, await get(app, '/open', token), ended, token, 'authorize() on a public route:')

  const fresh = issuer.sign({ sub: 'user_2', sid: 'sess_ws2' })
  await app.griddyAuth.endUserSessions('user_2')
  await t.rejects(app.griddyAuth.verify(fresh), { code: 'GRIDDY_AUTH_SESSION_ENDED' }, 'verify() of a token never seen')
})

t.test('bad arguments are a TypeError; without the sessions option, a TypeError naming it', async (t) => {
  const app = await buildApp(t, options())
  for (const method of ['endSession', 'endUserSessions'] as const) {
    for (const [argument, got] of [['', 'an empty string'], [undefined, 'undefined'], [null, 'null'], [42, 'number'], [['sess_1'], 'object']] as const) {
      await t.rejects(app.griddyAuth[method](argument as unknown as string),
        new TypeError(`fastify-griddy-auth: ${method}() needs a non-empty string, got ${got}`), `${method}(${JSON.stringify(argument)})`)
    }
  }
  const token = issuer.sign({ sub: 'user_1', sid: 'sess_1' })
  t.equal((await get(app, '/private', token)).statusCode, 200, 'and nothing was ended')

  const without = await buildApp(t, issuer.pluginOptions)
  for (const method of ['endSession', 'endUserSessions'] as const) {
    await t.rejects(without.griddyAuth[method]('sess_1'), new TypeError(
      `fastify-griddy-auth: ${method}() needs the "sessions" option (sessions: {} for this process only, or sessions: { redis } to share ends between instances)`))
  }
  t.equal((await get(without, '/private', token)).statusCode, 200)
})

t.test('a record lasts maxTokenLifetime, then the session is not refused any more', async (t) => {
  const app = await buildApp(t, options({ maxTokenLifetime: 300 }))
  const token = issuer.sign({ sub: 'user_1', sid: 'sess_short', iat: nowSeconds() - 1 })
  await app.griddyAuth.endSession('sess_short')
  await app.griddyAuth.endUserSessions('user_9')
  assertFailure(t, await get(app, '/private', token), ended, token)
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.equal((await get(app, '/private', token)).statusCode, 200, 'the record expired (a token should not outlive maxTokenLifetime)')
})

t.test('each refusal is logged once at info, with its code and route, never the token', async (t) => {
  const logs = captureLogs()
  const app = await buildApp(t, options(), { fastify: { logger: { level: 'info', stream: logs.stream } } })
  const token = issuer.sign({ sub: 'user_1', sid: 'sess_log' })
  await app.griddyAuth.endSession('sess_log')
  logs.clear()
  await get(app, '/leagues/1', token)
  t.match(logs.pluginLines(), [{ level: 30, code: 'GRIDDY_AUTH_SESSION_ENDED', route: '/leagues/:id', msg: 'griddy-auth: Session has ended.' }])
  t.equal(logs.pluginLines().length, 1)
  t.notOk(logs.raw.join('').includes(token), 'no token in the logs')
})

t.test('one plugin per scope: ends are per registration', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const a = await createTestIssuer()
  await app.register(async (scope) => {
    await scope.register(griddyAuth, { ...a.pluginOptions, sessions: {} })
    scope.get('/a', async () => 'a')
    await scope.griddyAuth.endSession('sess_1')
  })
  await app.register(async (scope) => {
    await scope.register(griddyAuth, { ...a.pluginOptions, sessions: {} })
    scope.get('/b', async () => 'b')
  })
  await app.ready()
  const token = a.sign({ sub: 'user_1', sid: 'sess_1' })
  t.equal((await get(app, '/a', token)).statusCode, 401)
  t.equal((await get(app, '/b', token)).statusCode, 200)
})

t.test('the in-memory records: bounded by the lifetime, without a timer', async (t) => {
  const context = (claims: Record<string, unknown>): AuthContext =>
    ({ userId: claims.sub as string, ...(typeof claims.sid === 'string' ? { sessionId: claims.sid } : {}), permissions: [], claims })

  t.test('a flood of ends costs memory for one lifetime only', async (t) => {
    const records = new EndedRecords(1000)
    for (let i = 0; i < 100_000; i++) records.add('session', `sess_${i}`, 0, i % 1000)
    for (let i = 0; i < 1000; i++) records.add('user', `user_${i}`, 0, 0)
    t.equal(records.size, 101_000, 'every live record is kept: none may be dropped early')
    t.ok(records.add('session', 'sess_late', 5000, 5000))
    t.equal(records.size, 1001, 'expired session records went as the next one arrived')
    t.ok(records.add('user', 'user_late', 5000, 5000))
    t.equal(records.size, 2, 'and user records')
  })

  t.test('renewal, late and stale records', async (t) => {
    const records = new EndedRecords(1000)
    t.ok(records.add('session', 's', 100, 100))
    t.notOk(records.add('session', 's', 100, 150), 'the same end again changes nothing (a replay)')
    t.notOk(records.add('session', 's', 50, 150), 'an older end changes nothing')
    t.ok(records.add('session', 's', 900, 950), 'a later end renews the record')
    t.ok(records.refuses(context({ sub: 'u', sid: 's' }), 1850), 'alive until its latest end + lifetime')
    t.notOk(records.refuses(context({ sub: 'u', sid: 's' }), 1901))
    t.notOk(records.add('user', 'u', 0, 1001), 'a record already expired when it arrives is not kept')
    t.equal(records.size, 1)
    t.same([...records.live(1000)], [['session', 's', 900]])
    t.same([...records.live(2000)], [], 'live() skips expired records')
  })

  t.test('iat against the time of the end', async (t) => {
    const records = new EndedRecords(60_000)
    records.add('user', 'u', 10_500, 10_500)
    const cases: Array<[unknown, boolean]> = [
      [9, true], [10, true], [11, false], [10.6, false], [10.5, true], [undefined, true], ['9', true], [null, true],
      [Number.NaN, true], [Number.POSITIVE_INFINITY, true]
    ]
    for (const [iat, refused] of cases) {
      t.equal(records.refuses(context({ sub: 'u', iat }), 11_000), refused, `iat ${typeof iat === 'string' ? JSON.stringify(iat) : String(iat)}: ${refused ? 'refused' : 'accepted'}`)
    }
    t.notOk(records.refuses(context({ sub: 'v', iat: 1 }), 11_000), 'another user')
    t.notOk(records.refuses(context({ sub: 'u', iat: 1 }), 70_501), 'an expired record refuses nothing')
  })
})
