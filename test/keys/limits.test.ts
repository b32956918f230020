/**
 * SPEC §9: what counts as a failed fetch (error statuses, an HTML 502,
 * invalid JSON, JSON that is not a key set, a body over 1 MiB with or
 * without content-length, a trickling body, a reset connection) and what
 * does not (a valid set with no usable key). A failed fetch is a 503 for a
 * key not known, never a 500, never a crash, never upstream content in the
 * answer or the log.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { call, captureLog, codeOf, eventually, retryAfterOf, setupRemote, sleep, upstreamMarker, type FakeIdp } from '../fixtures/fake-idp'

const MiB = 1024 * 1024
const html502 = `<!doctype html><html><body><h1>502 Bad Gateway</h1><pre>${upstreamMarker}</pre></body></html>`

const failures: Array<[string, (idp: FakeIdp) => void]> = [
  ['500', (idp) => idp.set('status', { status: 500, body: upstreamMarker })],
  ['502 with an HTML body', (idp) => idp.set('status', { status: 502, body: html502, headers: { 'content-type': 'text/html' } })],
  ['503 with Retry-After', (idp) => idp.set('status', { status: 503, body: upstreamMarker, headers: { 'retry-after': '1' } })],
  ['404', (idp) => idp.set('status', { status: 404, body: upstreamMarker })],
  ['401 with a JSON key set body', (idp) => idp.set('status', { status: 401, body: JSON.stringify(idp.jwks), headers: { 'content-type': 'application/json' } })],
  ['a redirect to a 404', (idp) => idp.set('status', { status: 302, body: '', headers: { location: '/nowhere' } })],
  ['invalid JSON', (idp) => idp.set('invalid-json')],
  ['HTML with status 200', (idp) => idp.set('status', { status: 200, body: html502 })],
  ['JSON that is not a key set', (idp) => idp.set('not-a-keyset')],
  ['JSON null', (idp) => idp.set('status', { status: 200, body: 'null', headers: { 'content-type': 'application/json' } })],
  ['a JSON string', (idp) => idp.set('status', { status: 200, body: `"${upstreamMarker}"`, headers: { 'content-type': 'application/json' } })],
  ['a JSON array', (idp) => idp.set('status', { status: 200, body: JSON.stringify(idp.jwks.keys), headers: { 'content-type': 'application/json' } })],
  ['keys that is not an array', (idp) => idp.set('status', { status: 200, body: JSON.stringify({ keys: { 0: idp.jwks.keys[0] } }), headers: { 'content-type': 'application/json' } })],
  ['a 204 without a body', (idp) => idp.set('status', { status: 204, body: '' })],
  ['3 MiB with content-length', (idp) => idp.set('huge', { hugeBytes: 3 * MiB, hugeContentLength: true, trickleMs: 0 })],
  ['3 MiB chunked, without content-length', (idp) => idp.set('huge', { hugeBytes: 3 * MiB, hugeContentLength: false, trickleMs: 0 })],
  ['1 MiB + 1 byte, chunked', (idp) => idp.set('huge', { hugeBytes: MiB + 1, hugeContentLength: false, trickleMs: 0 })],
  ['a body that trickles past the timeout', (idp) => idp.set('huge', { hugeBytes: 256 * 1024, hugeContentLength: true, trickleMs: 40 })],
  ['an answer slower than the timeout', (idp) => idp.set('slow', { delayMs: 2000 })],
  ['no answer at all', (idp) => idp.set('hang')],
  ['a reset connection', (idp) => idp.set('reset')]
]

t.test('failed fetches: 503 for a key not known yet, then recovery', async (t) => {
  for (const [name, fail] of failures) {
    t.test(name, async (t) => {
      const log = captureLog()
      const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 60, jwksTimeout: 250 }, log)
      fail(idp)
      const started = Date.now()
      const res = await call(app, issuer.sign({ sub: 'u' }))
      t.equal(res.statusCode, 503, 'not a 500')
      t.equal(codeOf(res), 'GRIDDY_AUTH_UNAVAILABLE')
      t.equal(res.json().message, 'Signing keys are unavailable; try again shortly.')
      t.ok(retryAfterOf(res) >= 1, `Retry-After: ${String(res.headers['retry-after'])}`)
      t.notOk(res.body.includes(upstreamMarker) || res.body.includes('502 Bad Gateway'), 'no upstream content in the answer')
      t.ok(Date.now() - started < 1300, `within jwksTimeout plus a little (${Date.now() - started} ms)`)
      // (none when the machine is so loaded that the deadline passed before the request was even written)
      t.ok(idp.hits() <= 2, `one fetch at most, not retried (two requests when redirected): ${idp.requests.join(' ')}`)

      const alerts = log.alerts()
      t.equal(alerts.length, 1, 'one alert')
      t.notOk(log.raw.join('').includes(upstreamMarker), 'no upstream content in the log')
      t.notOk(log.raw.join('').includes('Bad Gateway</h1>'))

      idp.set('ok')
      await sleep(75)
      t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200, 'recovered')
    })
  }
})

t.test('the body limit is 1 MiB: a set of exactly 1 MiB is accepted', async (t) => {
  const { issuer, idp, app } = await setupRemote(t)
  const doc = JSON.stringify(idp.jwks)
  const padded = doc.slice(0, -1) + ',"padding":"' + 'x'.repeat(MiB - doc.length - 13) + '"}'
  t.equal(Buffer.byteLength(padded), MiB)
  idp.set('status', { status: 200, body: padded, headers: { 'content-type': 'application/json' } })
  t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200)
})

t.test('an empty key set is a successful fetch: its tokens get UNKNOWN_KEY, the cooldown applies, no alert', async (t) => {
  const log = captureLog()
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 150 }, log)
  idp.set('empty-set')
  let res = await call(app, issuer.sign({ sub: 'u' }))
  t.equal(res.statusCode, 401)
  t.equal(codeOf(res), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.match(res.headers['www-authenticate'], /error="invalid_token"/)
  res = await call(app, issuer.sign({ sub: 'u' }))
  t.equal(codeOf(res), 'GRIDDY_AUTH_UNKNOWN_KEY', 'not 503: the provider is healthy')
  res = await call(app, issuer.sign({ sub: 'u' }, { kid: randomUUID() }))
  t.equal(codeOf(res), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(idp.hits(), 1, 'the first fetch missed its kid: the cooldown holds every unknown kid after it')
  t.same(log.alerts(), [])

  idp.set('ok') // the provider publishes its key
  await sleep(160)
  t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200, 'found after the cooldown')
  t.equal(idp.hits(), 2)
})

t.test('a refetch that brings an empty set drops the known keys: a successful fetch, not an outage', async (t) => {
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 60_000, jwksCacheTtl: 50, cache: false })
  t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200)
  idp.set('empty-set')
  await sleep(60)
  t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200, 'stale key while the refetch runs')
  t.ok(await eventually(async () => codeOf(await call(app, issuer.sign({ sub: 'u' }))) === 'GRIDDY_AUTH_UNKNOWN_KEY'),
    'once the refetch is in, the key the provider no longer publishes is gone')
  t.ok(idp.hits() <= 3, 'the background refetch (and, once the removed kid is forgotten after jwksCacheTtl, one miss for it)')
  t.equal(codeOf(await call(app, issuer.sign({ sub: 'u' }, { kid: randomUUID() }))), 'GRIDDY_AUTH_UNKNOWN_KEY', 'not 503: healthy')
  t.equal(idp.hits(), 3, 'one miss in all...')
  t.equal(codeOf(await call(app, issuer.sign({ sub: 'u' }, { kid: randomUUID() }))), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(idp.hits(), 3, '...then the cooldown')
})
