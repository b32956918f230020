/**
 * SPEC §9 (outage) and §7 (GRIDDY_AUTH_UNAVAILABLE, outage logging): a real
 * timeout, a back-off without request storms, stale-if-error, Retry-After
 * honoured, recovery without restart, one log line per incident edge.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import {
  call, captureLog, codeOf, retryAfterOf, setupRemote, sharedIssuer, sleep, upstreamMarker,
  type Asserts, type FakeIdp
} from '../fixtures/fake-idp'

const unavailableBody = {
  statusCode: 503,
  code: 'GRIDDY_AUTH_UNAVAILABLE',
  error: 'Service Unavailable',
  message: 'Signing keys are unavailable; try again shortly.'
}

/** Asserts a proper 503: the fixed body (so never upstream content) and an integer Retry-After >= 1. */
function assertUnavailable (t: Asserts, res: LightMyRequestResponse, what = 'unavailable'): void {
  t.equal(res.statusCode, 503, `${what}: 503`)
  t.same(res.json(), unavailableBody, `${what}: the fixed body`)
  t.notMatch(res.body, upstreamMarker)
  const retryAfter = retryAfterOf(res)
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `${what}: Retry-After ${String(res.headers['retry-after'])} is whole seconds >= 1`)
}

const unknownKid = async (): Promise<string> => (await sharedIssuer()).sign({ sub: 'u' }, { kid: randomUUID() })

t.test('real timeout (STACK-NOTES get-jwks regression): a hanging JWKS server answers 503 within jwksTimeout, not after 300 s', async (t) => {
  const jwksTimeout = 300
  const backoff = 600 // min(jwksCooldown, the 1 s first back-off)
  const { issuer, idp, app } = await setupRemote(t, { jwksTimeout, jwksCooldown: backoff })
  idp.set('hang')

  let started = Date.now()
  const res = await call(app, issuer.sign({ sub: 'u' }))
  const elapsed = Date.now() - started
  assertUnavailable(t, res)
  t.ok(elapsed >= jwksTimeout - 50, `waited for the timeout (${elapsed} ms)`)
  t.ok(elapsed < jwksTimeout + 1000, `and not much longer (${elapsed} ms)`)
  t.equal(idp.hits(), 1)

  // back-off: no fetch, an immediate 503
  started = Date.now()
  const during = await Promise.all(Array.from({ length: 20 }, () => call(app, issuer.sign({ sub: 'u' }))))
  for (const r of during) assertUnavailable(t, r, 'during the back-off')
  t.ok(Date.now() - started < 400, `answered at once (${Date.now() - started} ms)`)
  t.equal(idp.hits(), 1, 'no request reached the provider during the back-off')

  // Recovery, with an answer that takes a while but less than the timeout: each fetch has a timeout of
  // its own (an AbortSignal.timeout() built once would have fired already and abort this fetch at once).
  idp.set('slow', { delayMs: 100 })
  await sleep(backoff - (Date.now() - started) + 20)
  started = Date.now()
  const ok = await call(app, issuer.sign({ sub: 'back' }))
  t.equal(ok.statusCode, 200, 'recovered without a restart')
  t.ok(Date.now() - started >= 90, 'the slow answer was waited for')
  t.equal(idp.hits(), 2)
  t.equal((await call(app, issuer.sign({ sub: 'again' }))).statusCode, 200)
  t.equal(idp.hits(), 2)
})

t.test('stale-if-error: known keys keep verifying past jwksCacheTtl while the provider fails; unknown kids get 503', async (t) => {
  const failures: Array<[string, (idp: FakeIdp) => void]> = [
    ['500', (idp) => idp.set('status', { status: 500, body: upstreamMarker })],
    ['hang', (idp) => idp.set('hang')],
    ['invalid JSON', (idp) => idp.set('invalid-json')]
  ]
  for (const [name, fail] of failures) {
    t.test(name, async (t) => {
      const ttl = 50
      const cooldown = 300
      const log = captureLog()
      const { issuer, idp, app } = await setupRemote(t, { jwksCacheTtl: ttl, jwksCooldown: cooldown, jwksTimeout: 600, cache: false }, log)
      const known = (): Promise<LightMyRequestResponse> => call(app, issuer.sign({ sub: 'known' }))

      t.equal((await known()).statusCode, 200)
      t.equal(idp.hits(), 1)
      fail(idp)
      await sleep(ttl + 10)

      let started = Date.now()
      t.equal((await known()).statusCode, 200, 'the stale key answers at once...')
      t.ok(Date.now() - started < 300, `(${Date.now() - started} ms)`)
      await idp.waitForHits(2) // ...while one refetch runs in the background
      const unknown = await call(app, await unknownKid())
      assertUnavailable(t, unknown, 'an unknown kid while the refetch fails')
      t.equal(codeOf(unknown), 'GRIDDY_AUTH_UNAVAILABLE', 'not UNKNOWN_KEY: a new key cannot be told from a bogus one')

      for (let i = 0; i < 3; i++) t.equal((await known()).statusCode, 200, 'the known key keeps verifying')
      assertUnavailable(t, await call(app, await unknownKid()), 'in the back-off')
      t.equal(idp.hits(), 2, 'nothing fetched during the back-off')

      await sleep(cooldown + 20)
      started = Date.now()
      t.equal((await known()).statusCode, 200, 'past the back-off the known key still answers at once')
      t.ok(Date.now() - started < 300)
      await idp.waitForHits(3)
      assertUnavailable(t, await call(app, await unknownKid()), 'still failing')
      t.equal(log.alerts().length, 1, 'one alert for the whole outage')

      idp.set('ok')
      await sleep(cooldown + 20)
      const recovered = await call(app, await unknownKid())
      t.equal(codeOf(recovered), 'GRIDDY_AUTH_UNKNOWN_KEY', 'healthy again: an unknown kid is UNKNOWN_KEY')
      t.equal(idp.hits(), 4)
      t.equal((await known()).statusCode, 200)
      t.same(log.alerts().map((l) => l.level), [50, 40], 'outage start (error) and end (warn)')
      t.notOk(log.raw.join('').includes(upstreamMarker), 'no upstream body in the log')
    })
  }
})

t.test('429 with Retry-After from the provider stretches the back-off, up to jwksCooldown', async (t) => {
  t.test('Retry-After: 2 with jwksCooldown 5000: no refetch for 2 s (the default back-off would be 1 s)', async (t) => {
    const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 5000, jwksTimeout: 500 })
    idp.set('status', { status: 429, body: upstreamMarker, headers: { 'retry-after': '2' } })
    const first = await call(app, issuer.sign({ sub: 'u' }))
    assertUnavailable(t, first)
    t.equal(retryAfterOf(first), 2, 'our Retry-After tells the client the same wait')
    idp.set('ok')

    await sleep(1150)
    const mid = await call(app, issuer.sign({ sub: 'u' }))
    assertUnavailable(t, mid, 'after 1.15 s')
    t.equal(retryAfterOf(mid), 1, 'the remaining wait')
    t.equal(idp.hits(), 1, 'the provider was not asked again before its Retry-After')
  })

  t.test('Retry-After: 3600 with jwksCooldown 300: retried after the cooldown', async (t) => {
    const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 300, jwksTimeout: 500 })
    idp.set('status', { status: 429, headers: { 'retry-after': '3600' } })
    const first = await call(app, issuer.sign({ sub: 'u' }))
    assertUnavailable(t, first)
    t.equal(retryAfterOf(first), 1)
    idp.set('ok')
    assertUnavailable(t, await call(app, issuer.sign({ sub: 'u' })), 'inside the cooldown')
    t.equal(idp.hits(), 1)
    await sleep(330)
    t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200)
    t.equal(idp.hits(), 2)
  })
})

t.test('jwksCooldown 0: no back-off, every request after a failure may fetch (shared while in flight)', async (t) => {
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 0 })
  idp.set('status', { status: 500 })
  for (let i = 1; i <= 3; i++) {
    const res = await call(app, issuer.sign({ sub: 'u' }))
    assertUnavailable(t, res)
    t.equal(retryAfterOf(res), 1)
    t.equal(idp.hits(), i)
  }
  idp.set('ok')
  t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200)
})

t.test('outage logging: one line when an outage starts, one when it ends, never per request; no token, no body', async (t) => {
  const cooldown = 120
  const log = captureLog()
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: cooldown, jwksTimeout: 200 }, log)
  const tokens: string[] = []
  const send = async (token: string): Promise<LightMyRequestResponse> => { tokens.push(token); return await call(app, token) }

  t.equal((await send(issuer.sign({ sub: 'u' }))).statusCode, 200)
  t.same(log.alerts(), [], 'nothing to alert about')

  const outage = async (modes: Array<(idp: FakeIdp) => void>): Promise<number> => {
    let unavailable = 0
    for (const mode of modes) {
      mode(idp)
      for (let i = 0; i < 8; i++) {
        const res = await send(await unknownKid())
        t.equal(res.statusCode, 503)
        unavailable++
      }
      await sleep(cooldown + 10)
    }
    return unavailable
  }

  // one incident, several failed attempts of several kinds
  const before = idp.hits()
  let unavailable = await outage([
    (idp) => idp.set('status', { status: 502 }),
    (idp) => idp.set('invalid-json'),
    (idp) => idp.set('hang'),
    (idp) => idp.set('reset')
  ])
  t.ok(idp.hits() - before >= 4, `several failed fetches (${idp.hits() - before})`)
  let alerts = log.alerts()
  t.equal(alerts.length, 1, 'one alert for the outage')
  t.equal(alerts[0]?.level, 50)
  t.match(alerts[0], { jwksUrl: idp.jwksUrl, reason: 'HTTP 502' })

  idp.set('ok')
  t.equal(codeOf(await send(await unknownKid())), 'GRIDDY_AUTH_UNKNOWN_KEY')
  alerts = log.alerts()
  t.equal(alerts.length, 2, 'one more when it ends')
  t.equal(alerts[1]?.level, 40)
  t.match(alerts[1], { jwksUrl: idp.jwksUrl, msg: /reachable again/ })

  // a second incident is a new one
  await sleep(cooldown + 10)
  unavailable += await outage([(idp) => idp.set('status', { status: 500 })])
  idp.set('ok')
  await sleep(cooldown + 10)
  t.equal((await send(issuer.sign({ sub: 'u' }))).statusCode, 200)
  t.equal(codeOf(await send(await unknownKid())), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.same(log.alerts().map((l) => l.level), [50, 40, 50, 40])

  // per-request failures are info lines (SPEC §7), one per 503
  const infos = log.lines.filter((l) => l.level === 30 && l.code === 'GRIDDY_AUTH_UNAVAILABLE')
  t.equal(infos.length, unavailable)
  const text = log.raw.join('')
  t.notOk(text.includes(upstreamMarker), 'no upstream body in the log')
  t.notOk(tokens.some((token) => text.includes(token) || text.includes(token.split('.')[2] as string)), 'no token in the log')
})

// Fastify's default error handler logs every 5xx it formats at `error`, one line per request: the plugin
// cannot keep a 503 out of it while it reports failures as thrown Fastify errors (SPEC §7). An app that
// formats errors itself decides: with such a handler the log holds the plugin's two lines per incident only.
t.test('with an error handler that does not log, an outage leaves exactly two warn/error lines', async (t) => {
  const log = captureLog()
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 100 }, log, (app) => {
    app.setErrorHandler((err: Error & { statusCode?: number }, _request, reply) => {
      return reply.code(err.statusCode ?? 500).send({ code: (err as { code?: string }).code })
    })
  })
  idp.set('status', { status: 500 })
  for (let i = 0; i < 10; i++) {
    const res = await call(app, issuer.sign({ sub: 'u' }))
    t.equal(res.statusCode, 503)
    t.equal(retryAfterOf(res), 1, 'the plugin keeps Retry-After under a custom error handler')
  }
  await sleep(110)
  idp.set('ok')
  t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200)
  t.same(log.severe().map((l) => [l.level, l.msg.slice(0, 30)]), [[50, 'griddy-auth: JWKS fetch failed'], [40, 'griddy-auth: signing keys are ']])
})

t.test('with Fastify\'s default error handler, a 503 adds no per-request error line', {
  todo: 'SPEC §7 deviation outside key management: Fastify\'s default error handler logs each 5xx at error (lib/index.ts throws 503 as an error)'
}, async (t) => {
  const log = captureLog()
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 100 }, log)
  idp.set('status', { status: 500 })
  for (let i = 0; i < 5; i++) t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 503)
  t.equal(log.severe().length, 1, `warn/error lines: ${log.severe().length}`)
})

t.test('closing the app ends the fetches in flight: a provider that never answers holds neither close() nor its request', async (t) => {
  const { issuer, idp, app } = await setupRemote(t, { jwksTimeout: 0 }) // no deadline: only close() can end it
  idp.set('hang')
  const pending = call(app, issuer.sign({ sub: 'u' }))
  await idp.waitForHits(1)
  const started = Date.now()
  await app.close()
  const res = await pending
  t.equal(res.statusCode, 503, 'the waiting request gets its 503')
  t.ok(Date.now() - started < 1000, `at once (${Date.now() - started} ms)`)
})
