/**
 * SPEC §9, fetching: lazy, shared by concurrent requests, a fetch per key
 * first seen (get-jwks fetches per key), the location from configuration
 * only (never from the token), and the fetch itself (get-jwks under the
 * plugin's Wire: lib/keys/source.ts, wire.ts) unit-tested against the fake IdP.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { JwksSource } from '../../lib/keys/source'
import { Agent } from 'undici'
import { createKeyAgent, maxBodyBytes, Wire } from '../../lib/keys/wire'
import { createKeyResolver, wellKnownJwksUrl } from '../../lib/keys/resolver'
import { resolveOptions } from '../../lib/options'
import { countingServer } from '../helpers'
import { buildApp, call, codeOf, createAttacker, createFakeIdp, jwksPath, poolKey, setupRemote, sharedIssuer, sleep } from '../fixtures/fake-idp'

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

t.test('a provider signing with three keys at once: each accepted the first time it is seen, one fetch each, then none', async (t) => {
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 60_000 })
  const keys = [issuer.key, await poolKey(0), await poolKey(1)]
  idp.jwks.keys.push(keys[1]!.jwk, keys[2]!.jwk) // all three published before the first request

  const first = await Promise.all(Array.from({ length: 60 }, (_, i) => call(app, issuer.sign({ sub: `u${i}` }, { key: keys[i % 3] }))))
  t.same(first.map((r) => r.statusCode), first.map(() => 200), '60 concurrent first requests under three new kids: all 200')
  t.equal(idp.hits(), 3, 'get-jwks fetches per key: one fetch per kid, shared by its requests; no cooldown, since nothing was missed')
  for (const key of keys) t.equal((await call(app, issuer.sign({ sub: 'again' }, { key }))).statusCode, 200)
  t.equal(idp.hits(), 3, 'known keys cost no fetch')
})

t.test('a key already known is answered synchronously, stale or not: the request path never awaits get-jwks for it', async (t) => {
  const issuer = await sharedIssuer()
  const idp = await createFakeIdp({ jwks: { keys: [...issuer.jwks.keys] } })
  t.teardown(() => idp.close())
  const silent = { error () {}, warn () {} } as never
  const keys = createKeyResolver(resolveOptions({ issuer: idp.url, audience: 'a', jwksCacheTtl: 50 }), silent)
  t.teardown(() => keys.close())
  const first = keys.lookup(issuer.key.kid, idp.url)
  t.ok(first instanceof Promise, 'the first lookup waits for its fetch')
  const key = await first
  t.match(key, { kid: issuer.key.kid, pem: /BEGIN PUBLIC KEY/, revoked: false })
  t.equal(keys.lookup(issuer.key.kid, idp.url), key, 'then the same key object, synchronously')
  await sleep(60)
  t.equal(keys.lookup(issuer.key.kid, idp.url), key, 'past jwksCacheTtl too (its refetch runs in the background)')
  t.equal(keys.lookup(issuer.key.kid, idp.url), key, 'and while that refetch is in flight')
  await idp.waitForHits(2)
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

t.test('the fetch, through get-jwks: JwksSource and its Wire against the fake IdP', async (t) => {
  const idp = await createFakeIdp({ jwks: { keys: [{ kty: 'RSA', kid: 'k' }] } })
  t.teardown(() => idp.close())

  /** A source for `url` with its own Agent (destroyed at the end of the test). */
  const source = (url: string, timeout = 1000): JwksSource => {
    const agent = createKeyAgent(timeout)
    t.teardown(() => agent.destroy())
    return new JwksSource(url, new Wire(agent, timeout))
  }
  const failure = async (url: string, timeout = 1000, kid = 'k'): Promise<{ failed: string, retryAfter?: number }> => {
    const outcome = await source(url, timeout).fetchKey(kid)
    if (!('failed' in outcome)) throw new Error(`expected a failed fetch, got ${JSON.stringify(outcome)}`)
    return outcome
  }

  t.test('the JWK of a kid; a kid not in the set, or an empty set, is missing: a successful fetch', async (t) => {
    t.same(await source(idp.jwksUrl).fetchKey('k'), { jwk: { kty: 'RSA', kid: 'k' } })
    t.same(await source(idp.jwksUrl).fetchKey('other'), { missing: true })
    idp.set('empty-set')
    t.same(await source(idp.jwksUrl).fetchKey('k'), { missing: true })
    idp.set('status', { status: 200, body: '\uFEFF{"keys":[], "note":"a BOM first"}', headers: { 'content-type': 'application/json' } })
    t.same(await source(idp.jwksUrl).fetchKey('k'), { missing: true }, 'an empty set after a byte-order mark')
    idp.set('ok')
  })

  t.test('exactly the configured URL (path, query, the root), asking for unencoded JSON', async (t) => {
    const seen: Array<[string, string, string]> = []
    const server = await countingServer(t, (request, response) => {
      seen.push([request.url ?? '', String(request.headers.accept), String(request.headers['accept-encoding'])])
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[{"kid":"k"}]}')
    })
    for (const path of ['/keys/v1.json?tenant=a&x=%2F', '/', '/.well-known/jwks.json']) {
      t.same(await source(server.url + path).fetchKey('k'), { jwk: { kid: 'k' } }, path)
    }
    t.same(seen, [
      ['/keys/v1.json?tenant=a&x=%2F', 'application/json', 'identity'],
      ['/', 'application/json', 'identity'],
      ['/.well-known/jwks.json', 'application/json', 'identity']
    ])
  })

  t.test('every fetch asks the provider: a key removed since is missing, never get-jwks\' stale copy', async (t) => {
    const keys = source(idp.jwksUrl)
    const before = idp.hits()
    t.same(await keys.fetchKey('k'), { jwk: { kty: 'RSA', kid: 'k' } })
    idp.set('empty-set')
    t.same(await keys.fetchKey('k'), { missing: true }, 'not the cached JWK')
    idp.set('status', { status: 500, body: 'down', headers: {} })
    t.same(await keys.fetchKey('k'), { failed: 'HTTP 500' }, 'not the stale JWK either')
    idp.set('ok')
    t.equal(idp.hits() - before, 3, 'one request per fetch')
  })

  t.test('1xx informational answers are passed over', async (t) => {
    const server = await countingServer(t, (_request, response) => {
      response.writeEarlyHints({ link: '</x>; rel=preload' })
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[{"kid":"k"}]}')
    })
    t.same(await source(server.url).fetchKey('k'), { jwk: { kid: 'k' } })
  })

  t.test('error statuses, whatever the body, with Retry-After in seconds or as an HTTP date', async (t) => {
    idp.set('status', { status: 500, body: 'boom', headers: {} })
    t.same(await failure(idp.jwksUrl), { failed: 'HTTP 500' })

    idp.set('status', { status: 502, headers: {} })
    t.same(await failure(idp.jwksUrl), { failed: 'HTTP 502' }, 'an HTML 502 (a SyntaxError inside get-jwks)')

    idp.set('status', { status: 401, body: JSON.stringify({ keys: [{ kid: 'k' }] }), headers: { 'content-type': 'application/json' } })
    t.same(await failure(idp.jwksUrl), { failed: 'HTTP 401' }, 'a key set under an error status is no answer')

    idp.set('status', { status: 429, body: 'slow down', headers: { 'retry-after': '7' } })
    t.same(await failure(idp.jwksUrl), { failed: 'HTTP 429', retryAfter: 7 })

    idp.set('status', { status: 503, headers: { 'retry-after': new Date(Date.now() + 60_000).toUTCString() } })
    const { retryAfter } = await failure(idp.jwksUrl)
    t.ok(retryAfter !== undefined && retryAfter > 55 && retryAfter <= 60, `HTTP date: ${String(retryAfter)} s`)

    for (const value of ['0', new Date(Date.now() - 60_000).toUTCString(), 'soon', '-5', '1.5']) {
      idp.set('status', { status: 503, headers: { 'retry-after': value } })
      t.same(await failure(idp.jwksUrl), { failed: 'HTTP 503' }, `Retry-After ${JSON.stringify(value)} is ignored`)
    }
  })

  t.test('bodies that are no JSON key set', async (t) => {
    const cases: Array<[string, () => void, string]> = [
      ['a 2xx without a body', () => idp.set('status', { status: 204, body: '', headers: {} }), 'body is not JSON'],
      ['invalid JSON', () => idp.set('invalid-json'), 'body is not JSON'],
      ['JSON without keys', () => idp.set('not-a-keyset'), 'body is not a JSON key set'],
      ['JSON null', () => idp.set('status', { status: 200, body: 'null', headers: {} }), 'body is not a JSON key set'],
      ['a JSON array', () => idp.set('status', { status: 200, body: '[{"kid":"k"}]', headers: {} }), 'body is not a JSON key set'],
      ['keys an object', () => idp.set('status', { status: 200, body: '{"keys":{"0":{"kid":"k"}}}', headers: {} }), 'body is not a JSON key set'],
      ['keys a string', () => idp.set('status', { status: 200, body: '{"keys":"kk"}', headers: {} }), 'body is not a JSON key set']
    ]
    for (const [name, make, reason] of cases) {
      make()
      t.same(await failure(idp.jwksUrl), { failed: reason }, name)
    }
  })

  t.test('body size: at most 1 MiB, with or without content-length', async (t) => {
    t.equal(maxBodyBytes, 1024 * 1024)
    const tooLarge = { failed: `body larger than ${maxBodyBytes} bytes` }
    idp.set('huge', { hugeBytes: maxBodyBytes + 1, hugeContentLength: true, trickleMs: 0 })
    t.same(await failure(idp.jwksUrl), tooLarge, 'announced')
    idp.set('huge', { hugeBytes: 16 * maxBodyBytes, hugeContentLength: false })
    t.same(await failure(idp.jwksUrl), tooLarge, '16 MiB chunked')
    idp.set('huge', { hugeBytes: maxBodyBytes, hugeContentLength: false })
    t.same(await source(idp.jwksUrl, 2000).fetchKey('k'), { missing: true }, 'exactly 1 MiB is read (a set without the kid)')
  })

  t.test('encoded bodies are refused unread: fetch would inflate them past any cap', async (t) => {
    idp.set('gzip-bomb', { hugeBytes: 64 * 1024 * 1024 })
    t.same(await failure(idp.jwksUrl), { failed: 'encoded body refused (content-encoding gzip)' })
    for (const encoding of ['br', 'deflate', 'x-gzip, identity']) {
      const server = await countingServer(t, (_request, response) => {
        response.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding }).end('junk')
      })
      t.same(await failure(server.url), { failed: `encoded body refused (content-encoding ${encoding})` }, encoding)
    }
    const identity = await countingServer(t, (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'identity' }).end('{"keys":[{"kid":"k"}]}')
    })
    t.same(await source(identity.url).fetchKey('k'), { jwk: { kid: 'k' } }, 'identity is no encoding')
  })

  t.test('the deadline is per fetch, covers headers and body, and the next fetch has its own', async (t) => {
    idp.set('hang')
    let started = Date.now()
    t.same(await failure(idp.jwksUrl, 200), { failed: 'no answer within 200 ms' })
    t.ok(Date.now() - started < 1200, `aborted at the deadline (${Date.now() - started} ms)`)

    // 16 KiB every 50 ms: each chunk comes well within any idle timeout, the whole never within 200 ms
    idp.set('huge', { hugeBytes: 200_000, hugeContentLength: true, trickleMs: 50 })
    started = Date.now()
    t.same(await failure(idp.jwksUrl, 200), { failed: 'no answer within 200 ms' }, 'a trickling body is cut at the deadline')
    t.ok(Date.now() - started < 1200, `(${Date.now() - started} ms)`)

    const keys = source(idp.jwksUrl, 400)
    idp.set('slow', { delayMs: 300 })
    t.same(await keys.fetchKey('k'), { jwk: { kty: 'RSA', kid: 'k' } })
    t.same(await keys.fetchKey('k'), { jwk: { kty: 'RSA', kid: 'k' } }, 'two fetches of 300 ms each under a 400 ms deadline: it is per fetch')
  })

  t.test('network errors', async (t) => {
    idp.set('reset')
    t.match(await failure(idp.jwksUrl), { failed: /^network error \(\w+\)$/ })
    idp.set('reset-mid-body', { resetAfterBytes: 10 })
    t.match(await failure(idp.jwksUrl), { failed: /^network error \(\w+\)$/ }, 'reset mid-body')

    const closed = await createFakeIdp()
    await closed.close()
    t.same(await failure(closed.jwksUrl), { failed: 'network error (ECONNREFUSED)' })

    // fetch refuses a URL with credentials before any request, with an error that has no cause
    t.same(await failure(`http://user:pass@127.0.0.1:${new URL(idp.url).port}/`), { failed: 'network error (TypeError)' })
    idp.set('ok')
  })
})

t.test('the Wire, dispatched directly', async (t) => {
  const idp = await createFakeIdp({ jwks: { keys: [{ kty: 'RSA', kid: 'k' }] } })
  t.teardown(() => idp.close())
  const { origin } = new URL(idp.url)

  /** Dispatches GET `path` through `wire` with a handler that has only `methods`; resolves with the error, if any. */
  const send = (wire: Wire, path: string, methods: Record<string, unknown> = {}): Promise<Error | undefined> => new Promise((resolve) => {
    wire.dispatcher.dispatch({ origin, path, method: 'GET' }, { ...methods, onComplete: () => resolve(undefined), onError: resolve })
  })

  t.test('a handler without onHeaders or onData still gets the whole answer, and the exchange is recorded', async (t) => {
    const agent = createKeyAgent(1000)
    t.teardown(() => agent.destroy())
    const wire = new Wire(agent, 1000)
    wire.begin()
    t.equal(await send(wire, jwksPath), undefined)
    t.same(wire.last, { status: 200, retryAfter: undefined, chunks: [Buffer.from('{"keys":[{"kty":"RSA","kid":"k"}]}')], failure: undefined })
  })

  t.test('an error without a code is a network error named after it', async (t) => {
    const agent = createKeyAgent(1000)
    t.teardown(() => agent.destroy())
    const wire = new Wire(agent, 1000)
    wire.begin()
    const err = await send(wire, jwksPath, { onConnect: (abort: (err: Error) => void) => abort(new RangeError('plain')) })
    t.match(err, { message: 'plain' })
    t.equal(wire.last?.failure, 'network error (RangeError)')
  })

  t.test('a request still queued at its deadline is cut the moment undici dispatches it', async (t) => {
    // One connection for the origin: the second request waits behind a first that hangs.
    const agent = new Agent({ connections: 1 })
    t.teardown(() => agent.destroy())
    idp.set('hang')
    const first = new Wire(agent, 300)
    const second = new Wire(agent, 100)
    first.begin()
    second.begin()
    const started = Date.now()
    const [a, b] = await Promise.all([send(first, jwksPath), send(second, jwksPath)])
    t.match(a, { message: 'no answer within 300 ms' })
    t.match(b, { message: 'no answer within 100 ms' }, 'its own deadline, although it passed while it waited')
    t.ok(Date.now() - started < 1000, `(${Date.now() - started} ms)`)
    t.equal(idp.hits(), 2, 'dispatched, then cut at once')
    idp.set('ok')
  })

  t.test('without a deadline (timeout 0) nothing is cut', async (t) => {
    const agent = createKeyAgent(0)
    t.teardown(() => agent.destroy())
    const wire = new Wire(agent, 0)
    wire.begin()
    t.equal(wire.remaining(), Infinity)
    idp.set('slow', { delayMs: 150 })
    t.equal(await send(wire, jwksPath), undefined)
    idp.set('ok')
  })
})

t.test('no global state is changed: not globalThis.fetch, not the global dispatcher; the app\'s own fetches keep their defaults', async (t) => {
  const globalDispatcher = Symbol.for('undici.globalDispatcher.1')
  const before = { fetch: globalThis.fetch, dispatcher: (globalThis as Record<symbol, unknown>)[globalDispatcher] }
  const { issuer, idp, app } = await setupRemote(t, { jwksTimeout: 200 })
  t.equal((await call(app, issuer.sign({ sub: 'u' }))).statusCode, 200)
  idp.set('hang')
  t.equal(codeOf(await call(app, issuer.sign({ sub: 'u' }, { kid: randomUUID() }))), 'GRIDDY_AUTH_UNAVAILABLE', 'the plugin\'s own deadline')
  t.equal(globalThis.fetch, before.fetch, 'globalThis.fetch')
  t.equal((globalThis as Record<symbol, unknown>)[globalDispatcher], before.dispatcher, 'the global dispatcher')

  idp.set('slow', { delayMs: 400 })
  const res = await fetch(idp.jwksUrl)
  t.equal(res.status, 200, 'a global fetch slower than jwksTimeout is not cut')
  t.equal(res.headers.get('content-type'), 'application/json')
})

t.test('jwksTimeout: 0 means no timeout (as for Node\'s own timeouts), not an immediate abort', async (t) => {
  const { issuer, idp, app } = await setupRemote(t, { jwksTimeout: 0 })
  idp.set('slow', { delayMs: 300 })
  const res = await call(app, issuer.sign({ sub: 'patient' }))
  t.equal(res.statusCode, 200, 'a slow provider is waited for')
  t.equal(idp.hits(), 1)
})
