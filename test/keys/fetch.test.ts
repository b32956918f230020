/**
 * SPEC §9, fetching: lazy, shared by concurrent requests, the whole set per
 * fetch, the location from configuration only (never from the token), and
 * the fetch itself (jwks-fetch.ts) unit-tested against the fake IdP.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { fetchJson, JwksFetchError, maxBodyBytes } from '../../lib/jwks-fetch'
import { wellKnownJwksUrl } from '../../lib/keys'
import { buildApp, call, codeOf, createAttacker, createFakeIdp, jwksPath, poolKey, setupRemote, sharedIssuer } from '../fixtures/fake-idp'

t.test('keys are fetched lazily, and 100 concurrent first requests share one fetch', async (t) => {
  const { issuer, idp, app } = await setupRemote(t)
  t.equal(idp.hits(), 0, 'registering the plugin fetches nothing')

  const tokens = Array.from({ length: 100 }, (_, i) => issuer.sign({ sub: `user_${i}` }))
  const responses = await Promise.all(tokens.map((token) => call(app, token)))
  t.same(responses.map((r) => r.statusCode), tokens.map(() => 200), 'all 100 succeed')
  t.same(responses.map((r) => r.json().userId), tokens.map((_, i) => `user_${i}`))
  t.equal(idp.hits(), 1, 'the identity provider saw exactly one JWKS request')
  t.same(idp.requests, [jwksPath])
})

t.test('one fetch brings the whole set: a second kid of the same response costs no fetch', async (t) => {
  const { issuer, idp, app } = await setupRemote(t)
  const first = issuer.key
  const second = await poolKey(0)
  idp.jwks.keys.push(second.jwk) // both published before the first fetch

  t.equal((await call(app, issuer.sign({ sub: 'a' }, { key: first }))).statusCode, 200)
  t.equal(idp.hits(), 1)
  const res = await call(app, issuer.sign({ sub: 'b' }, { key: second }))
  t.equal(res.statusCode, 200)
  t.equal(res.json().userId, 'b')
  t.equal(idp.hits(), 1, 'the second kid came with the first response')
})

t.test('the JWKS location comes from configuration only, never from the token (jku, x5u, jwk, x5c, kid)', async (t) => {
  const attacker = await createAttacker()
  t.teardown(() => attacker.close())
  const evilKey = await poolKey(1)
  const { issuer, idp, app } = await setupRemote(t, { cache: false })
  const pointers = {
    jku: attacker.jwksUrl,
    x5u: `${attacker.url}/cert.pem`,
    jwk: evilKey.jwk,
    x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA']
  }

  let res = await call(app, issuer.sign({ sub: 'u' }, { header: pointers }))
  t.equal(res.statusCode, 200, 'a valid token carrying the headers still verifies against the configured keys')

  res = await call(app, issuer.sign({ sub: 'u' }, { key: evilKey, header: pointers }))
  t.equal(res.statusCode, 401)
  t.equal(codeOf(res), 'GRIDDY_AUTH_UNKNOWN_KEY', "the attacker's key, offered in the token, is not trusted")

  res = await call(app, issuer.sign({ sub: 'u' }, { key: evilKey, kid: issuer.key.kid, header: pointers }))
  t.equal(codeOf(res), 'GRIDDY_AUTH_SIGNATURE', "a configured kid with the attacker's embedded key fails the signature")

  for (const kid of [`../../..${attacker.url}/x`, attacker.jwksUrl, '?jku=1', '%2F..%2Fadmin', 'a/b#c']) {
    res = await call(app, issuer.sign({ sub: 'u' }, { kid }))
    t.equal(codeOf(res), 'GRIDDY_AUTH_UNKNOWN_KEY', `kid ${JSON.stringify(kid)} is only a lookup key`)
  }
  t.equal(attacker.hits, 0, 'the attacker server was never contacted')
  t.ok(idp.requests.every((url) => url === jwksPath), 'every request went to the configured URL, unchanged by any kid')
})

t.test('issuer well-known URL: a trailing slash does not produce //.well-known', async (t) => {
  t.equal(wellKnownJwksUrl('https://clerk.example.com'), 'https://clerk.example.com/.well-known/jwks.json')
  t.equal(wellKnownJwksUrl('https://clerk.example.com/'), 'https://clerk.example.com/.well-known/jwks.json')
  t.equal(wellKnownJwksUrl('https://example.com/tenant/'), 'https://example.com/tenant/.well-known/jwks.json')

  const issuer = await sharedIssuer()
  const idp = await createFakeIdp({ jwks: issuer.jwks, paths: ['/tenant/.well-known/jwks.json'] })
  t.teardown(() => idp.close())
  const slash = `${idp.url}/`
  const tenant = `${idp.url}/tenant/`
  const app = await buildApp(t, { issuer: [slash, tenant], audience: issuer.audience })

  t.equal((await call(app, issuer.sign({ sub: 'u', iss: slash }))).statusCode, 200)
  t.equal((await call(app, issuer.sign({ sub: 'u', iss: tenant }))).statusCode, 200)
  t.same(idp.requests, [jwksPath, '/tenant/.well-known/jwks.json'])
})

t.test('two configured issuers with the same JWKS URL share one key set (per-URL state)', async (t) => {
  const issuer = await sharedIssuer()
  const idp = await createFakeIdp({ jwks: issuer.jwks })
  t.teardown(() => idp.close())
  const bare = idp.url
  const slash = `${idp.url}/`
  const app = await buildApp(t, { issuer: [bare, slash], audience: issuer.audience, jwksCooldown: 60_000 })

  t.equal((await call(app, issuer.sign({ sub: 'u', iss: bare }))).statusCode, 200)
  t.equal((await call(app, issuer.sign({ sub: 'u', iss: slash }))).statusCode, 200)
  t.equal(idp.hits(), 1, 'one fetch of the one URL')
  t.equal(codeOf(await call(app, issuer.sign({ sub: 'u', iss: bare }, { kid: randomUUID() }))), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(codeOf(await call(app, issuer.sign({ sub: 'u', iss: slash }, { kid: randomUUID() }))), 'GRIDDY_AUTH_UNKNOWN_KEY')
  t.equal(idp.hits(), 2, 'one cooldown for the one URL: two unknown kids, one refetch')
})

t.test('fetchJson', async (t) => {
  const idp = await createFakeIdp({ jwks: { keys: [{ kty: 'RSA', kid: 'k' }] } })
  t.teardown(() => idp.close())

  const reason = async (url: string, timeout = 1000): Promise<JwksFetchError> => {
    const err = await fetchJson(url, timeout).then(() => undefined, (e: unknown) => e)
    if (!(err instanceof JwksFetchError)) throw new Error(`expected a JwksFetchError, got ${String(err)}`)
    return err
  }

  t.test('parses a JSON body', async (t) => {
    t.same(await fetchJson(idp.jwksUrl, 1000), { keys: [{ kty: 'RSA', kid: 'k' }] })
  })

  t.test('asks for JSON', async (t) => {
    const seen: string[] = []
    const { createServer } = await import('node:http')
    const server = createServer((req, res) => { seen.push(String(req.headers.accept)); res.end('{"keys":[]}') })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
    await fetchJson(`http://127.0.0.1:${(server.address() as { port: number }).port}/`, 1000)
    t.same(seen, ['application/json'])
  })

  t.test('error statuses, with Retry-After in seconds or as an HTTP date', async (t) => {
    idp.set('status', { status: 500, body: 'boom', headers: {} })
    let err = await reason(idp.jwksUrl)
    t.equal(err.message, 'HTTP 500')
    t.equal(err.retryAfter, undefined)

    idp.set('status', { status: 429, headers: { 'retry-after': '7' } })
    err = await reason(idp.jwksUrl)
    t.equal(err.message, 'HTTP 429')
    t.equal(err.retryAfter, 7)

    idp.set('status', { status: 503, headers: { 'retry-after': new Date(Date.now() + 60_000).toUTCString() } })
    err = await reason(idp.jwksUrl)
    t.ok(err.retryAfter !== undefined && err.retryAfter > 55 && err.retryAfter <= 60, `HTTP date: ${String(err.retryAfter)} s`)

    for (const value of ['0', new Date(Date.now() - 60_000).toUTCString(), 'soon', '-5', '1.5']) {
      idp.set('status', { status: 503, headers: { 'retry-after': value } })
      t.equal((await reason(idp.jwksUrl)).retryAfter, undefined, `Retry-After ${JSON.stringify(value)} is ignored`)
    }
  })

  t.test('a 2xx without a body is a failure', async (t) => {
    idp.set('status', { status: 204, body: '', headers: {} })
    t.equal((await reason(idp.jwksUrl)).message, 'empty body')
  })

  t.test('invalid JSON', async (t) => {
    idp.set('invalid-json')
    const err = await reason(idp.jwksUrl)
    t.equal(err.message, 'body is not JSON')
  })

  t.test('body size: at most 1 MiB, with or without content-length', async (t) => {
    t.equal(maxBodyBytes, 1024 * 1024)
    idp.set('huge', { hugeBytes: maxBodyBytes + 1, hugeContentLength: true, trickleMs: 0 })
    t.equal((await reason(idp.jwksUrl)).message, `body larger than ${maxBodyBytes} bytes`)
    idp.set('huge', { hugeBytes: 5 * maxBodyBytes, hugeContentLength: false })
    t.equal((await reason(idp.jwksUrl)).message, `body larger than ${maxBodyBytes} bytes`)
    idp.set('huge', { hugeBytes: maxBodyBytes, hugeContentLength: false })
    t.match(await fetchJson(idp.jwksUrl, 2000), { keys: [] }, 'exactly 1 MiB is accepted')
  })

  t.test('timeouts are per fetch and cover the body', async (t) => {
    idp.set('hang')
    let started = Date.now()
    t.equal((await reason(idp.jwksUrl, 200)).message, 'no answer within 200 ms')
    t.ok(Date.now() - started < 1200, 'aborted at the timeout')

    idp.set('huge', { hugeBytes: 200_000, hugeContentLength: true, trickleMs: 50 })
    started = Date.now()
    t.equal((await reason(idp.jwksUrl, 200)).message, 'no answer within 200 ms', 'a trickling body is cut at the timeout')
    t.ok(Date.now() - started < 1200)

    idp.set('slow', { delayMs: 50 })
    t.match(await fetchJson(idp.jwksUrl, 400), { keys: [] }, 'the next fetch has its own, fresh timeout')
  })

  t.test('network errors', async (t) => {
    idp.set('reset')
    t.match((await reason(idp.jwksUrl)).message, /^network error \(\w+\)$/)

    const closed = await createFakeIdp()
    await closed.close()
    t.equal((await reason(closed.jwksUrl)).message, 'network error (ECONNREFUSED)')

    // fetch refuses a URL with credentials, with an error that has no cause
    t.equal((await reason(`http://user:pass@127.0.0.1:${new URL(idp.url).port}/`)).message, 'network error (TypeError)')
  })
})

t.test('jwksTimeout: 0 means no timeout (as for Node\'s own timeouts), not an immediate abort', async (t) => {
  const { issuer, idp, app } = await setupRemote(t, { jwksTimeout: 0 })
  idp.set('slow', { delayMs: 300 })
  const res = await call(app, issuer.sign({ sub: 'patient' }))
  t.equal(res.statusCode, 200, 'a slow provider is waited for')
  t.equal(idp.hits(), 1)
})
