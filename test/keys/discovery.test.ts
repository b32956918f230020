/**
 * SPEC §3 and §9, `discovery: true`: keys from the `jwks_uri` of each
 * configured issuer's OpenID Connect discovery document, fetched through
 * get-jwks under the same deadline, size cap, cooldown, back-off and health
 * rules as the keys. A document without an http(s) `jwks_uri` is a failed
 * fetch, and a `jwks_uri` of another scheme is never followed.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { TestIssuer } from '../../lib/testing/index'
import {
  buildApp, call, captureLog, codeOf, createAttacker, createFakeIdp, discoveryPath, poolKey, retryAfterOf, sharedIssuer, sleep, upstreamMarker,
  type Asserts, type CapturedLog, type FakeIdp
} from '../fixtures/fake-idp'
import type { GriddyAuthOptions } from '../../lib/index'

const realm = '/realms/griddy'
const certsPath = `${realm}/protocol/openid-connect/certs`

interface Keycloak {
  signer: TestIssuer
  idp: FakeIdp
  /** The issuer URL, `<idp>/realms/griddy`, as Keycloak has it. */
  issuer: string
  app: FastifyInstance
  /** A token of this issuer, under the shared issuer's key unless `kid` says otherwise. */
  token: (sub?: string, kid?: string) => string
}

/** A fake Keycloak realm: its discovery document points at `/realms/griddy/protocol/openid-connect/certs`. */
async function keycloak (t: Asserts, options: Partial<GriddyAuthOptions> = {}, log?: CapturedLog): Promise<Keycloak> {
  const signer = await sharedIssuer()
  const idp = await createFakeIdp({ jwks: { keys: [...signer.jwks.keys] }, paths: [certsPath] })
  t.teardown(() => idp.close())
  const issuer = idp.url + realm
  idp.discovery = { issuer, jwks_uri: idp.url + certsPath, authorization_endpoint: `${issuer}/protocol/openid-connect/auth` }
  const app = await buildApp(t, { issuer, audience: signer.audience, discovery: true, ...options }, log)
  const token = (sub = 'u', kid?: string): string => signer.sign({ sub, iss: issuer }, kid === undefined ? {} : { kid })
  return { signer, idp, issuer, app, token }
}

const documentPath = realm + discoveryPath

t.test('keys come from the jwks_uri of <issuer>/.well-known/openid-configuration; 100 first requests: one document, one key set', async (t) => {
  const { signer, idp, app, issuer } = await keycloak(t, { jwksCooldown: 60_000 })
  t.equal(idp.hits('*'), 0, 'lazy')
  const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => call(app, signer.sign({ sub: `u${i}`, iss: issuer }))))
  t.same(responses.map((r) => r.statusCode), responses.map(() => 200))
  t.same(idp.requests, [documentPath, certsPath], 'the document, then its jwks_uri; never the well-known JWKS path')

  const next = await poolKey(0)
  idp.jwks.keys.push(next.jwk)
  t.equal((await call(app, signer.sign({ sub: 'n', iss: issuer }, { key: next }))).statusCode, 200, 'a new key: one fetch of its own')
  t.equal(codeOf(await call(app, signer.sign({ sub: 'x', iss: issuer }, { kid: randomUUID() }))), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.same(idp.requests, [documentPath, certsPath, certsPath, certsPath], 'the document is not re-read for each key (get-jwks\' providerDiscovery would)')
})

t.test('a jwks_uri on another host (as Google\'s) is followed; a token whose iss is not configured fetches nothing', async (t) => {
  const signer = await sharedIssuer()
  const provider = await createFakeIdp()
  const keyHost = await createFakeIdp({ jwks: { keys: [...signer.jwks.keys] }, paths: ['/oauth2/v3/certs'] })
  const attacker = await createAttacker(signer.jwks)
  t.teardown(() => Promise.all([provider.close(), keyHost.close(), attacker.close()]))
  provider.discovery = { issuer: provider.url, jwks_uri: keyHost.url + '/oauth2/v3/certs' }
  const app = await buildApp(t, { issuer: provider.url, audience: signer.audience, discovery: true })

  t.equal((await call(app, signer.sign({ sub: 'u', iss: provider.url }))).statusCode, 200)
  t.same(provider.requests, [discoveryPath])
  t.same(keyHost.requests, ['/oauth2/v3/certs'])
  t.equal(codeOf(await call(app, signer.sign({ sub: 'u', iss: attacker.url }))), 'GRIDDY_AUTH_ISSUER')
  t.equal(attacker.hits, 0, 'no discovery document is fetched for an issuer that is not configured')
})

t.test('a document without an http(s) jwks_uri is a failed fetch (503); another scheme is never followed', async (t) => {
  const evil = await poolKey(1)
  const dataUrl = `data:application/json,${encodeURIComponent(JSON.stringify({ keys: [evil.jwk] }))}`
  const documents: Array<[string, unknown, string]> = [
    ['no jwks_uri', { issuer: 'x' }, 'discovery document: no jwks_uri'],
    ['jwks_uri null', { jwks_uri: null }, 'discovery document: no jwks_uri'],
    ['jwks_uri ""', { jwks_uri: '' }, 'discovery document: no jwks_uri'],
    ['a JSON null document', null, 'discovery document: no jwks_uri'],
    ['a JSON array', [{ jwks_uri: 'x' }], 'discovery document: no jwks_uri'],
    ['jwks_uri 42', { jwks_uri: 42 }, 'discovery document: jwks_uri is not an http(s) URL'],
    ['jwks_uri relative', { jwks_uri: certsPath }, 'discovery document: jwks_uri is not an http(s) URL'],
    ['jwks_uri data: holding a key', { jwks_uri: dataUrl }, 'discovery document: jwks_uri is not an http(s) URL'],
    ['jwks_uri file:', { jwks_uri: 'file:///etc/passwd' }, 'discovery document: jwks_uri is not an http(s) URL'],
    ['jwks_uri javascript:', { jwks_uri: 'javascript:alert(1)' }, 'discovery document: jwks_uri is not an http(s) URL'],
    ['jwks_uri ftp:', { jwks_uri: 'ftp://127.0.0.1/certs' }, 'discovery document: jwks_uri is not an http(s) URL'],
    ['jwks_uri blob:', { jwks_uri: 'blob:http://127.0.0.1/0b4e' }, 'discovery document: jwks_uri is not an http(s) URL']
  ]
  for (const [name, document, reason] of documents) {
    t.test(name, async (t) => {
      const log = captureLog()
      const { signer, idp, app, issuer } = await keycloak(t, { jwksCooldown: 60_000 }, log)
      idp.discovery = document
      for (const token of [signer.sign({ sub: 'u', iss: issuer }), signer.sign({ sub: 'evil', iss: issuer }, { key: evil })]) {
        const res = await call(app, token)
        t.equal(res.statusCode, 503)
        t.equal(codeOf(res), 'GRIDDY_AUTH_UNAVAILABLE', 'never 200, never 500')
        t.ok(retryAfterOf(res) >= 1)
      }
      t.same(idp.requests, [documentPath], 'only the document was fetched; then the back-off')
      t.match(log.alerts(), [{ level: 50, reason, discoveryUrl: issuer + discoveryPath }])
    })
  }
})

t.test('the document has the keys\' rules: failures are 503 within jwksTimeout, a back-off, one alert, recovery', async (t) => {
  const failures: Array<[string, (idp: FakeIdp) => void, string | RegExp]> = [
    ['an HTML 502', (idp) => idp.set('status', { status: 502 }), 'discovery document: HTTP 502'],
    ['404', (idp) => idp.set('status', { status: 404, body: upstreamMarker }), 'discovery document: HTTP 404'],
    ['invalid JSON', (idp) => idp.set('invalid-json'), 'discovery document: body is not JSON'],
    ['no answer', (idp) => idp.set('hang'), 'discovery document: no answer within 300 ms'],
    ['a trickling body', (idp) => idp.set('huge', { hugeBytes: 200_000, hugeContentLength: true, trickleMs: 40 }), 'discovery document: no answer within 300 ms'],
    ['16 MiB', (idp) => idp.set('huge', { hugeBytes: 16 * 1024 * 1024, hugeContentLength: false, trickleMs: 0 }), 'discovery document: body larger than 1048576 bytes'],
    ['a gzip bomb', (idp) => idp.set('gzip-bomb', { hugeBytes: 64 * 1024 * 1024 }), 'discovery document: encoded body refused (content-encoding gzip)'],
    ['a reset connection', (idp) => idp.set('reset'), /^discovery document: network error \(\w+\)$/]
  ]
  for (const [name, fail, reason] of failures) {
    t.test(name, async (t) => {
      const log = captureLog()
      const { idp, app, token } = await keycloak(t, { jwksTimeout: 300, jwksCooldown: 200 }, log)
      fail(idp)
      idp.discoveryMode = idp.mode
      idp.mode = 'ok'
      const started = Date.now()
      const res = await call(app, token())
      t.equal(res.statusCode, 503)
      t.equal(codeOf(res), 'GRIDDY_AUTH_UNAVAILABLE')
      t.notOk(res.body.includes(upstreamMarker))
      t.ok(Date.now() - started < 300 + 1000, `within jwksTimeout plus a little (${Date.now() - started} ms)`)
      t.equal(codeOf(await call(app, token())), 'GRIDDY_AUTH_UNAVAILABLE', 'in the back-off...')
      t.same(idp.requests, [documentPath], '...without a request')

      idp.discoveryMode = 'ok'
      await sleep(220)
      t.equal((await call(app, token())).statusCode, 200, 'recovered without a restart')
      t.same(idp.requests, [documentPath, documentPath, certsPath])
      t.match(log.alerts(), [{ level: 50, reason }, { level: 40, msg: /reachable again/, discoveryUrl: idp.url + documentPath, jwksUrl: idp.url + certsPath }])
      t.notOk(log.raw.join('').includes(upstreamMarker), 'no upstream content in the log')
    })
  }
})

t.test('one deadline covers the document and the key set together', async (t) => {
  const { idp, app, token } = await keycloak(t, { jwksTimeout: 250, jwksCooldown: 0 })
  idp.set('slow', { delayMs: 150 })
  idp.discoveryMode = 'slow'
  const started = Date.now()
  t.equal(codeOf(await call(app, token())), 'GRIDDY_AUTH_UNAVAILABLE', '150 ms + 150 ms do not fit in 250 ms')
  t.ok(Date.now() - started < 250 + 400, `cut at the deadline (${Date.now() - started} ms)`)
  t.same(idp.requests, [documentPath, certsPath])

  idp.set('slow', { delayMs: 80 })
  t.equal((await call(app, token())).statusCode, 200, '80 ms + 80 ms do')
})

t.test('the document is re-read once per jwksCacheTtl and after a failed fetch: keys that move are found again', async (t) => {
  const ttl = 300
  const { idp, app, token, issuer } = await keycloak(t, { jwksCacheTtl: ttl, jwksCooldown: 100, cache: false })
  t.equal((await call(app, token())).statusCode, 200)
  t.same(idp.requests, [documentPath, certsPath])

  // the provider moves its keys: the old path answers 404 (the fake serves only known paths)
  const moved = '/realms/griddy/protocol/openid-connect/certs-v2'
  idp.discovery = { issuer, jwks_uri: idp.url + moved }
  t.equal(codeOf(await call(app, token('u', randomUUID()))), 'GRIDDY_AUTH_UNKNOWN_KEY', 'inside the ttl: the old jwks_uri, still working')
  t.same(idp.requests, [documentPath, certsPath, certsPath], 'no re-read')

  await sleep(ttl + 20)
  t.equal((await call(app, token())).statusCode, 200, 'past the ttl: the stale key answers; its refetch re-reads the document...')
  await sleep(50)
  t.same(idp.requests.slice(3), [documentPath, moved], '...and fetches from the new jwks_uri (a 404 there, as the fake has no such path)')
  t.equal((await call(app, token())).statusCode, 200, 'stale-if-error: the known key keeps verifying')
})

t.test('a jwks_uri that fails is re-discovered on the next attempt', async (t) => {
  const { idp, app, token, issuer } = await keycloak(t, { jwksCooldown: 100 })
  idp.discovery = { issuer, jwks_uri: idp.url + '/old/certs' } // a path the fake does not serve: 404
  t.equal(codeOf(await call(app, token())), 'GRIDDY_AUTH_UNAVAILABLE')
  idp.discovery = { issuer, jwks_uri: idp.url + certsPath }
  await sleep(120)
  t.equal((await call(app, token())).statusCode, 200)
  t.same(idp.requests, [documentPath, '/old/certs', documentPath, certsPath])
})

t.test('a flood of random kids: at most one key-set request per jwksCooldown, and the document read once', async (t) => {
  const cooldown = 500
  const { idp, app, token } = await keycloak(t, { jwksCooldown: cooldown })
  t.equal((await call(app, token())).statusCode, 200)
  const flood = Array.from({ length: 150 }, () => token('flood', randomUUID()))
  const started = Date.now()
  const answers = await Promise.all(flood.map((tok) => call(app, tok)))
  t.same(new Set(answers.map(codeOf)), new Set(['GRIDDY_AUTH_UNKNOWN_KEY']))
  t.ok(Date.now() - started < cooldown, 'inside one cooldown')
  t.same(idp.requests, [documentPath, certsPath, certsPath], 'one miss, then nothing')
})

t.test('two issuers with discovery: a document and a key set each; per-issuer health', async (t) => {
  const signer = await sharedIssuer()
  const a = await createFakeIdp({ jwks: { keys: [...signer.jwks.keys] }, paths: [certsPath] })
  const b = await createFakeIdp({ jwks: { keys: [...signer.jwks.keys] }, paths: [certsPath] })
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const app = await buildApp(t, { issuer: [a.url, `${a.url}/`, b.url], audience: signer.audience, discovery: true, jwksCooldown: 1000 })
  t.equal((await call(app, signer.sign({ sub: 'u', iss: a.url }))).statusCode, 200)
  t.equal((await call(app, signer.sign({ sub: 'u', iss: `${a.url}/` }))).statusCode, 200, 'the same document, whatever the trailing slash')
  t.same(a.requests, [discoveryPath, certsPath])
  b.discoveryMode = 'status'
  t.equal(codeOf(await call(app, signer.sign({ sub: 'u', iss: b.url }))), 'GRIDDY_AUTH_UNAVAILABLE')
  t.equal(codeOf(await call(app, signer.sign({ sub: 'u', iss: a.url }, { kid: randomUUID() }))), 'GRIDDY_AUTH_UNKNOWN_KEY', 'a is healthy: not b\'s 503')
})
