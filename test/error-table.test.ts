/**
 * What a client sees when authentication fails (SPEC §6, §7), in three parts:
 * - the error table: every code through inject(), with its status, body,
 *   `error` field and exact `WWW-Authenticate`, with and without `realm`,
 *   and the verification order;
 * - the `Authorization` header: what carries a token, what is NO_TOKEN, what
 *   is BAD_HEADER, and that tokens are read from nowhere else;
 * - logging: one info line per failure with its code and route pattern,
 *   never the token.
 *
 * (One file, not three: each tap process pays a few seconds of TypeScript
 * and Fastify start-up, and the suite has a time budget.)
 */
import t from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { GriddyAuthError, errorCodes, type GriddyAuthOptions } from '../lib/index'
import { authError, authErrors, type ErrorDetails, type GriddyAuthErrorCode } from '../lib/errors'
import { codeOfJwtError } from '../lib/signature'
import { readBearer } from '../lib/bearer'
import { createTestIssuer, createTestKey, type TestIssuer, type TestKey } from '../lib/testing/index'
import {
  assertFailure, assertSafe, badHeader, buildApp, captureLogs, countingServer, forbidden, get, getWithHeader, messages,
  noToken, nowSeconds, rawToken, tokenFailure, type ExpectedFailure, type LogCapture, type Tap
} from './helpers'

t.test('error table and verification order (SPEC §6, §7)', async (t) => {
  // SPEC §7 (errors) and §6 (verification order), seen from a client: every
  // row of the error table reached through inject(), with its status, body,
  // `error` field and exact `WWW-Authenticate`, with and without `realm`.
  const APP = 'https://app.test'
  const ADMIN_APP = 'https://admin.test'

  let issuer: TestIssuer
  let other: TestKey

  t.before(async () => {
    issuer = await createTestIssuer({ issuer: 'https://issuer.test', audience: 'https://api.test' })
    other = await createTestKey(undefined)
  })

  interface Row {
    name: string
    /** The token sent as `Bearer <token>`; or `header` for a raw header; neither: no header. */
    token?: () => string
    header?: () => string
    url?: string
    /** The expected failure for a realm (undefined: no realm configured); undefined: 200. */
    expect?: (realm?: string) => ExpectedFailure
  }

  /** Runs each row through `app`; `realm` is the realm `app` was built with. */
  async function runTable (t: Tap, app: FastifyInstance, rows: Row[], realm?: string): Promise<void> {
    for (const row of rows) {
      const token = row.token?.()
      const res = row.header !== undefined
        ? await getWithHeader(app, row.url ?? '/private', row.header())
        : await get(app, row.url ?? '/private', token)
      const label = `${row.name}${realm === undefined ? '' : ` (realm "${realm}")`}:`
      if (row.expect === undefined) {
        assertSafe(t, res, token, label)
        t.equal(res.statusCode, 200, `${label} accepted`)
        t.equal(res.headers['www-authenticate'], undefined, `${label} no challenge on success`)
      } else {
        assertFailure(t, res, row.expect(realm), token, label)
      }
    }
  }

  const sign = (claims: Record<string, unknown> = {}, options: Parameters<TestIssuer['sign']>[1] = {}): string =>
    issuer.sign({ sub: 'user_1', ...claims }, options)

  /** A token whose payload is exactly `payload` (JSON text), correctly signed under the issuer's kid. */
  const signedPayload = (payload: string): string =>
    rawToken(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: issuer.key.kid }), payload, issuer.key)

  const failures: Row[] = [
    { name: 'no Authorization header', expect: noToken },
    { name: 'an empty Authorization header', header: () => '', expect: noToken },
    { name: 'another scheme', header: () => 'Basic dXNlcjpwYXNz', expect: badHeader },
    { name: 'Bearer without a token', header: () => 'Bearer', expect: badHeader },
    { name: 'two tokens', header: () => `Bearer ${sign()} ${sign()}`, expect: badHeader },
    { name: 'not a JWT', token: () => 'not-a-jwt', expect: (r) => tokenFailure('GRIDDY_AUTH_MALFORMED', r) },
    { name: 'alg none', token: () => sign({}, { alg: 'none' }), expect: (r) => tokenFailure('GRIDDY_AUTH_ALGORITHM', r) },
    { name: 'alg HS256', token: () => sign({}, { alg: 'HS256', secret: 'shared' }), expect: (r) => tokenFailure('GRIDDY_AUTH_ALGORITHM', r) },
    { name: 'an unknown kid', token: () => sign({}, { kid: 'no-such-kid' }), expect: (r) => tokenFailure('GRIDDY_AUTH_UNKNOWN_KEY', r) },
    { name: 'no kid', token: () => sign({}, { kid: null }), expect: (r) => tokenFailure('GRIDDY_AUTH_UNKNOWN_KEY', r) },
    { name: 'an empty kid', token: () => sign({}, { kid: '' }), expect: (r) => tokenFailure('GRIDDY_AUTH_UNKNOWN_KEY', r) },
    {
      name: 'signed by another key under a known kid',
      token: () => sign({}, { key: other, kid: issuer.key.kid }),
      expect: (r) => tokenFailure('GRIDDY_AUTH_SIGNATURE', r)
    },
    { name: 'expired a minute ago', token: () => sign({}, { expiresIn: -60 }), expect: (r) => tokenFailure('GRIDDY_AUTH_EXPIRED', r) },
    { name: 'expired just beyond the 5 s tolerance', token: () => sign({}, { expiresIn: -7 }), expect: (r) => tokenFailure('GRIDDY_AUTH_EXPIRED', r) },
    { name: 'nbf beyond the tolerance', token: () => sign({}, { notBefore: 10 }), expect: (r) => tokenFailure('GRIDDY_AUTH_NOT_YET_VALID', r) },
    { name: 'nbf an hour ahead', token: () => sign({}, { notBefore: 3600 }), expect: (r) => tokenFailure('GRIDDY_AUTH_NOT_YET_VALID', r) },
    // SPEC is silent on a non-numeric nbf; the plugin calls the token malformed (never a 500, never accepted).
    { name: 'nbf as a string', token: () => sign({ nbf: 'soon' }), expect: (r) => tokenFailure('GRIDDY_AUTH_MALFORMED', r) },
    { name: 'exp absent', token: () => sign({}, { omit: ['exp'] }), expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_EXP', r) },
    { name: 'exp as a string', token: () => sign({ exp: String(nowSeconds() + 60) }), expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_EXP', r) },
    { name: 'exp null', token: () => sign({ exp: null }), expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_EXP', r) },
    { name: 'exp an object', token: () => sign({ exp: { $gt: 0 } }), expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_EXP', r) },
    {
      name: 'exp that parses to Infinity (1e999)',
      token: () => signedPayload('{"iss":"https://issuer.test","aud":"https://api.test","sub":"user_1","exp":1e999}'),
      expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_EXP', r)
    },
    { name: 'sub absent', token: () => issuer.sign({}), expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_SUB', r) },
    { name: 'sub a number', token: () => sign({ sub: 42 }), expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_SUB', r) },
    { name: 'sub empty', token: () => sign({ sub: '' }), expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_SUB', r) },
    { name: 'sub null', token: () => sign({ sub: null }), expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_SUB', r) },
    { name: 'sub an array', token: () => sign({ sub: ['user_1'] }), expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_SUB', r) },
    { name: 'another iss', token: () => sign({ iss: 'https://evil.test' }), expect: (r) => tokenFailure('GRIDDY_AUTH_ISSUER', r) },
    { name: 'iss absent', token: () => sign({}, { omit: ['iss'] }), expect: (r) => tokenFailure('GRIDDY_AUTH_ISSUER', r) },
    { name: 'iss with a trailing slash', token: () => sign({ iss: 'https://issuer.test/' }), expect: (r) => tokenFailure('GRIDDY_AUTH_ISSUER', r) },
    { name: 'iss in another case', token: () => sign({ iss: 'https://ISSUER.test' }), expect: (r) => tokenFailure('GRIDDY_AUTH_ISSUER', r) },
    { name: 'iss an array holding the issuer', token: () => sign({ iss: ['https://issuer.test'] }), expect: (r) => tokenFailure('GRIDDY_AUTH_ISSUER', r) },
    { name: 'another aud', token: () => sign({ aud: 'https://other-api.test' }), expect: (r) => tokenFailure('GRIDDY_AUTH_AUDIENCE', r) },
    { name: 'aud absent', token: () => sign({}, { omit: ['aud'] }), expect: (r) => tokenFailure('GRIDDY_AUTH_AUDIENCE', r) },
    { name: 'aud a number', token: () => sign({ aud: 5 }), expect: (r) => tokenFailure('GRIDDY_AUTH_AUDIENCE', r) },
    { name: 'aud an empty array', token: () => sign({ aud: [] }), expect: (r) => tokenFailure('GRIDDY_AUTH_AUDIENCE', r) },
    { name: 'aud an array without a configured one', token: () => sign({ aud: ['https://other-api.test', 'x'] }), expect: (r) => tokenFailure('GRIDDY_AUTH_AUDIENCE', r) },
    { name: 'aud an array of non-strings', token: () => sign({ aud: [5, null, { a: 1 }] }), expect: (r) => tokenFailure('GRIDDY_AUTH_AUDIENCE', r) },
    { name: 'aud with a trailing slash', token: () => sign({ aud: 'https://api.test/' }), expect: (r) => tokenFailure('GRIDDY_AUTH_AUDIENCE', r) },
    { name: 'a missing permission', url: '/leagues/42', token: () => sign({ permissions: ['leagues:write'] }), expect: (r) => forbidden('leagues:read', r) },
    { name: 'no permission claim', url: '/leagues/42', token: () => sign(), expect: (r) => forbidden('leagues:read', r) },
    { name: 'one of two permissions', url: '/admin', token: () => sign({ permissions: ['leagues:read'] }), expect: (r) => forbidden('leagues:read leagues:write', r) }
  ]

  const accepted: Row[] = [
    { name: 'a valid token', token: () => sign() },
    { name: 'a valid token with its permission', url: '/leagues/42', token: () => sign({ permissions: ['leagues:read'] }) },
    { name: 'aud an array containing the audience', token: () => sign({ aud: ['https://other-api.test', 'https://api.test'] }) },
    { name: 'aud an array with junk and the audience', token: () => sign({ aud: [5, null, 'https://api.test'] }) },
    { name: 'exp 2 s ago, within the 5 s tolerance', token: () => sign({}, { expiresIn: -2 }) },
    { name: 'nbf 3 s ahead, within the 5 s tolerance', token: () => sign({}, { notBefore: 3 }) },
    { name: 'nbf in the past', token: () => sign({}, { notBefore: -30 }) },
    { name: 'azp is ignored when no authorized party is configured', token: () => sign({ azp: 'https://evil.test' }) },
    { name: 'azp of a wrong type is ignored too', token: () => sign({ azp: 5 }) }
  ]

  t.test('every failure of SPEC §7, without realm', async (t) => {
    const app = await buildApp(t, issuer.pluginOptions)
    await runTable(t, app, failures)
    await runTable(t, app, accepted)
  })

  t.test('every failure of SPEC §7, with realm "x"', async (t) => {
    const app = await buildApp(t, { ...issuer.pluginOptions, realm: 'x' })
    await runTable(t, app, failures, 'x')
    await runTable(t, app, accepted, 'x')
  })

  t.test('WWW-Authenticate, literally (RFC 6750 §3)', async (t) => {
    const plain = await buildApp(t, issuer.pluginOptions)
    const withRealm = await buildApp(t, { ...issuer.pluginOptions, realm: 'x' })
    const expired = sign({}, { expiresIn: -60 })
    const cases: Array<[() => Promise<{ headers: Record<string, unknown> }>, string]> = [
      [() => get(plain, '/private'), 'Bearer'],
      [() => get(withRealm, '/private'), 'Bearer realm="x"'],
      [() => getWithHeader(plain, '/private', 'Basic x'),
        'Bearer error="invalid_request", error_description="Authorization header must be: Bearer <token>."'],
      [() => getWithHeader(withRealm, '/private', 'Basic x'),
        'Bearer realm="x", error="invalid_request", error_description="Authorization header must be: Bearer <token>."'],
      [() => get(plain, '/private', expired), 'Bearer error="invalid_token", error_description="Token has expired"'],
      [() => get(withRealm, '/private', expired), 'Bearer realm="x", error="invalid_token", error_description="Token has expired"'],
      [() => get(plain, '/private', sign({ aud: 'nope' })), 'Bearer error="invalid_token", error_description="Invalid audience."'],
      [() => get(plain, '/private', sign({}, { omit: ['exp'] })),
        'Bearer error="invalid_token", error_description="Token is missing required claim: exp."'],
      [() => get(plain, '/admin', sign()), 'Bearer error="insufficient_scope", scope="leagues:read leagues:write"'],
      [() => get(withRealm, '/admin', sign()), 'Bearer realm="x", error="insufficient_scope", scope="leagues:read leagues:write"']
    ]
    for (const [send, challenge] of cases) {
      t.equal((await send()).headers['www-authenticate'], challenge)
    }
  })

  t.test('a realm holding quotes and backslashes is escaped as a quoted-string', async (t) => {
    const app = await buildApp(t, { ...issuer.pluginOptions, realm: 'say "hi" \\o/' })
    const res = await get(app, '/private')
    t.equal(res.headers['www-authenticate'], 'Bearer realm="say \\"hi\\" \\\\o/"')
  })

  t.test('authorized parties: azp required and checked when configured', async (t) => {
    const app = await buildApp(t, { ...issuer.pluginOptions, authorizedParties: [APP, ADMIN_APP] })
    await runTable(t, app, [
      { name: 'azp absent', token: () => sign(), expect: (r) => tokenFailure('GRIDDY_AUTH_AUTHORIZED_PARTY', r) },
      { name: 'azp another party', token: () => sign({ azp: 'https://evil.test' }), expect: (r) => tokenFailure('GRIDDY_AUTH_AUTHORIZED_PARTY', r) },
      { name: 'azp with a trailing slash', token: () => sign({ azp: `${APP}/` }), expect: (r) => tokenFailure('GRIDDY_AUTH_AUTHORIZED_PARTY', r) },
      { name: 'azp a number', token: () => sign({ azp: 5 }), expect: (r) => tokenFailure('GRIDDY_AUTH_AUTHORIZED_PARTY', r) },
      { name: 'azp an array holding a party', token: () => sign({ azp: [APP] }), expect: (r) => tokenFailure('GRIDDY_AUTH_AUTHORIZED_PARTY', r) },
      { name: 'azp the first party', token: () => sign({ azp: APP }) },
      { name: 'azp the second party', token: () => sign({ azp: ADMIN_APP }) }
    ])
  })

  t.test('an empty authorizedParties list requires no azp', async (t) => {
    const app = await buildApp(t, { ...issuer.pluginOptions, authorizedParties: [] })
    await runTable(t, app, [{ name: 'azp absent', token: () => sign() }])
  })

  t.test('several issuers and audiences', async (t) => {
    const app = await buildApp(t, {
      ...issuer.pluginOptions,
      issuer: ['https://issuer.test', 'https://second-issuer.test'],
      audience: ['https://api.test', 'urn:griddy:api']
    })
    await runTable(t, app, [
      { name: 'the first issuer', token: () => sign() },
      { name: 'the second issuer', token: () => sign({ iss: 'https://second-issuer.test' }) },
      { name: 'the second audience', token: () => sign({ aud: 'urn:griddy:api' }) },
      { name: 'both audiences', token: () => sign({ aud: ['urn:griddy:api', 'https://api.test'] }) },
      { name: 'a third issuer', token: () => sign({ iss: 'https://third-issuer.test' }), expect: (r) => tokenFailure('GRIDDY_AUTH_ISSUER', r) },
      { name: 'a third audience', token: () => sign({ aud: 'urn:other' }), expect: (r) => tokenFailure('GRIDDY_AUTH_AUDIENCE', r) }
    ])
  })

  t.test('verification order (SPEC §6): the first failing step names the error', async (t) => {
    const app = await buildApp(t, issuer.pluginOptions)
    const azpApp = await buildApp(t, { ...issuer.pluginOptions, authorizedParties: [APP] })
    const everythingWrong = { iss: 'https://evil.test', aud: 'evil', sub: '', azp: 'evil' }
    await runTable(t, app, [
      {
        name: 'forged (bad signature) + expired + wrong aud -> signature',
        token: () => sign({ aud: 'evil' }, { key: other, kid: issuer.key.kid, expiresIn: -3600 }),
        expect: (r) => tokenFailure('GRIDDY_AUTH_SIGNATURE', r)
      },
      {
        name: 'forged + every claim wrong -> signature',
        token: () => sign(everythingWrong, { key: other, kid: issuer.key.kid, omit: ['exp'] }),
        expect: (r) => tokenFailure('GRIDDY_AUTH_SIGNATURE', r)
      },
      {
        name: 'claims tampered after signing -> signature, not issuer',
        token: () => {
          const [header, , signature] = sign().split('.')
          const payload = Buffer.from(JSON.stringify({ iss: 'https://evil.test', aud: 'https://api.test', sub: 'admin', exp: nowSeconds() + 60 })).toString('base64url')
          return `${header}.${payload}.${signature}`
        },
        expect: (r) => tokenFailure('GRIDDY_AUTH_SIGNATURE', r)
      },
      {
        name: 'alg none + expired + unknown kid -> algorithm',
        token: () => sign({}, { alg: 'none', kid: 'nope', expiresIn: -3600 }),
        expect: (r) => tokenFailure('GRIDDY_AUTH_ALGORITHM', r)
      },
      {
        name: 'unknown kid + forged + expired -> unknown key',
        token: () => sign(everythingWrong, { key: other, kid: 'nope', expiresIn: -3600 }),
        expect: (r) => tokenFailure('GRIDDY_AUTH_UNKNOWN_KEY', r)
      },
      {
        name: 'unknown crit + expired + wrong iss -> malformed (crit before time)',
        token: () => sign({ iss: 'https://evil.test' }, { header: { crit: ['urn:x'], 'urn:x': true }, expiresIn: -3600 }),
        expect: (r) => tokenFailure('GRIDDY_AUTH_MALFORMED', r)
      },
      {
        name: 'expired + wrong iss + wrong aud -> expired (time before iss)',
        token: () => sign({ iss: 'https://evil.test', aud: 'evil' }, { expiresIn: -3600 }),
        expect: (r) => tokenFailure('GRIDDY_AUTH_EXPIRED', r)
      },
      {
        name: 'exp absent + wrong iss -> missing exp',
        token: () => sign({ iss: 'https://evil.test' }, { omit: ['exp'] }),
        expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_EXP', r)
      },
      {
        name: 'not yet valid + wrong iss -> not yet valid',
        token: () => sign({ iss: 'https://evil.test' }, { notBefore: 3600 }),
        expect: (r) => tokenFailure('GRIDDY_AUTH_NOT_YET_VALID', r)
      },
      {
        name: 'wrong iss + wrong aud + no sub -> issuer',
        token: () => issuer.sign({ iss: 'https://evil.test', aud: 'evil' }),
        expect: (r) => tokenFailure('GRIDDY_AUTH_ISSUER', r)
      },
      {
        name: 'wrong aud + no sub -> audience',
        token: () => issuer.sign({ aud: 'evil' }),
        expect: (r) => tokenFailure('GRIDDY_AUTH_AUDIENCE', r)
      },
      {
        name: 'no sub on a permissioned route -> missing sub, not forbidden',
        url: '/admin',
        token: () => issuer.sign({}),
        expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_SUB', r)
      }
    ])
    await runTable(t, azpApp, [
      {
        name: 'no sub + wrong azp -> missing sub',
        token: () => issuer.sign({ azp: 'evil' }),
        expect: (r) => tokenFailure('GRIDDY_AUTH_MISSING_CLAIM_SUB', r)
      },
      {
        name: 'wrong azp + missing permission -> authorized party (401 before 403)',
        url: '/admin',
        token: () => sign({ azp: 'evil' }),
        expect: (r) => tokenFailure('GRIDDY_AUTH_AUTHORIZED_PARTY', r)
      },
      {
        name: 'right azp + missing permission -> forbidden',
        url: '/admin',
        token: () => sign({ azp: APP }),
        expect: (r) => forbidden('leagues:read leagues:write', r)
      }
    ])
  })

  t.test('503 when the signing keys are unavailable: Retry-After, no challenge, no upstream body', async (t) => {
    const idp = await countingServer(t, (_request, response) => {
      response.writeHead(500, { 'content-type': 'text/html' }).end('<h1>UPSTREAM-SECRET-BODY</h1>')
    })
    const options: GriddyAuthOptions = { issuer: issuer.issuer, audience: issuer.audience, jwksUrl: `${idp.url}/jwks.json` }
    for (const realm of [undefined, 'x']) {
      const app = await buildApp(t, realm === undefined ? options : { ...options, realm })
      const token = sign()
      const res = await get(app, '/private', token)
      assertFailure(t, res, {
        status: 503,
        code: 'GRIDDY_AUTH_UNAVAILABLE',
        message: 'Signing keys are unavailable; try again shortly.',
        challenge: null
      }, token)
      t.match(res.headers['retry-after'], /^[1-9][0-9]*$/, 'Retry-After is a positive number of seconds')
      t.notMatch(res.body, /UPSTREAM|html|HTTP 500/, 'the upstream response is not echoed')
    }
    t.ok(idp.hits >= 1, 'the configured jwksUrl was tried')
  })

  t.test('a custom setErrorHandler still gets the headers and a GriddyAuthError', async (t) => {
    const idp = await countingServer(t, (_request, response) => { response.writeHead(502).end('bad gateway') })
    const seen: unknown[] = []
    const before = (app: FastifyInstance): void => {
      app.setErrorHandler((err: Error & { statusCode?: number, code?: string }, _request, reply) => {
        seen.push(err)
        reply.code(err.statusCode ?? 500).send({ custom: true, code: err.code })
      })
    }
    const app = await buildApp(t, { ...issuer.pluginOptions, realm: 'x' }, {
      before,
      routes: (app) => {
        app.get('/private', async () => 'ok')
        app.get('/admin', { config: { permissions: 'leagues:admin' } }, async () => 'ok')
        app.get('/public', { config: { public: true } }, async (request) => request.authorize('leagues:admin'))
      }
    })
    const remote = await buildApp(t, { issuer: issuer.issuer, audience: issuer.audience, jwksUrl: `${idp.url}/jwks.json` }, { before })

    const cases: Array<{ app: FastifyInstance, url: string, token?: string, status: number, code: string, challenge?: string }> = [
      { app, url: '/private', status: 401, code: 'GRIDDY_AUTH_NO_TOKEN', challenge: 'Bearer realm="x"' },
      {
        app,
        url: '/private',
        token: sign({}, { expiresIn: -60 }),
        status: 401,
        code: 'GRIDDY_AUTH_EXPIRED',
        challenge: 'Bearer realm="x", error="invalid_token", error_description="Token has expired"'
      },
      { app, url: '/admin', token: sign(), status: 403, code: 'GRIDDY_AUTH_FORBIDDEN', challenge: 'Bearer realm="x", error="insufficient_scope", scope="leagues:admin"' },
      { app, url: '/public', token: sign(), status: 403, code: 'GRIDDY_AUTH_FORBIDDEN', challenge: 'Bearer realm="x", error="insufficient_scope", scope="leagues:admin"' },
      { app: remote, url: '/private', token: sign(), status: 503, code: 'GRIDDY_AUTH_UNAVAILABLE' }
    ]
    for (const c of cases) {
      seen.length = 0
      const res = await get(c.app, c.url, c.token)
      t.equal(res.statusCode, c.status, `${c.code}: status`)
      t.same(res.json(), { custom: true, code: c.code }, `${c.code}: the app's own body`)
      t.equal(res.headers['www-authenticate'], c.challenge, `${c.code}: WWW-Authenticate kept`)
      if (c.status === 503) t.match(res.headers['retry-after'], /^[1-9][0-9]*$/, 'Retry-After kept')
      t.equal(seen.length, 1, `${c.code}: the handler saw one error`)
      const err = seen[0] as GriddyAuthError
      t.ok(err instanceof GriddyAuthError, `${c.code}: instance of GriddyAuthError`)
      t.ok(err instanceof Error, `${c.code}: an Error`)
      t.equal(err.name, 'GriddyAuthError')
      t.equal(err.statusCode, c.status)
      t.equal(err.code, c.code)
    }
  })

  t.test('the error table itself', async (t) => {
    t.same([...errorCodes].sort(), [
      'GRIDDY_AUTH_ALGORITHM', 'GRIDDY_AUTH_AUDIENCE', 'GRIDDY_AUTH_AUTHORIZED_PARTY', 'GRIDDY_AUTH_BAD_HEADER',
      'GRIDDY_AUTH_EXPIRED', 'GRIDDY_AUTH_FORBIDDEN', 'GRIDDY_AUTH_ISSUER', 'GRIDDY_AUTH_MALFORMED',
      'GRIDDY_AUTH_MISSING_CLAIM', 'GRIDDY_AUTH_NOT_YET_VALID', 'GRIDDY_AUTH_NO_TOKEN', 'GRIDDY_AUTH_SESSION_ENDED',
      'GRIDDY_AUTH_SIGNATURE', 'GRIDDY_AUTH_UNAVAILABLE', 'GRIDDY_AUTH_UNKNOWN_KEY'
    ], 'exactly the 15 codes of SPEC §7')
    t.ok(Object.isFrozen(errorCodes), 'errorCodes is frozen')

    const forbiddenNoScope = authError('GRIDDY_AUTH_FORBIDDEN', undefined)
    t.same(forbiddenNoScope.headers, { 'www-authenticate': 'Bearer error="insufficient_scope", scope=""' })
    const unavailable = authError('GRIDDY_AUTH_UNAVAILABLE', 'x')
    t.same(unavailable.headers, { 'retry-after': '1' }, 'Retry-After at least 1 s; no challenge even with a realm')
    t.same(authError('GRIDDY_AUTH_UNAVAILABLE', undefined, { retryAfter: 0 }).headers, { 'retry-after': '1' })
    t.same(authError('GRIDDY_AUTH_UNAVAILABLE', undefined, { retryAfter: 2.2 }).headers, { 'retry-after': '3' }, 'rounded up')
    const missing = authError('GRIDDY_AUTH_MISSING_CLAIM', undefined, { claim: 'sub' })
    t.equal(missing.message, 'Token is missing required claim: sub.')
    t.equal(missing.statusCode, 401)
    t.equal(missing.code, 'GRIDDY_AUTH_MISSING_CLAIM')
  })

  t.test('errors built once per deployment say exactly what errors built from scratch say', async (t) => {
    // authErrors(realm) is the request path's factory: it reuses messages and challenges.
    const required = Object.freeze(['leagues:read', 'leagues:write'])
    const detailsOf = (code: GriddyAuthErrorCode): Array<ErrorDetails | undefined> => {
      switch (code) {
        case 'GRIDDY_AUTH_MISSING_CLAIM': return [{ claim: 'exp' }, { claim: 'sub' }]
        case 'GRIDDY_AUTH_FORBIDDEN': return [{ required }, { required: ['a b', 'c"d'] }, undefined]
        case 'GRIDDY_AUTH_UNAVAILABLE': return [{ retryAfter: 0 }, { retryAfter: 2.2 }, { retryAfter: 30 }, undefined]
        default: return [undefined]
      }
    }
    for (const realm of [undefined, 'api', 'quo"te\\d']) {
      const errorOf = authErrors(realm)
      for (const code of errorCodes) {
        for (const details of detailsOf(code)) {
          const label = `${code} ${JSON.stringify(details)} realm=${String(realm)}`
          for (const round of ['first', 'again']) {
            const reused = errorOf(code, details)
            const fresh = authError(code, realm, details)
            t.same(
              { name: reused.name, code: reused.code, statusCode: reused.statusCode, message: reused.message, headers: { ...reused.headers } },
              { name: fresh.name, code: fresh.code, statusCode: fresh.statusCode, message: fresh.message, headers: { ...fresh.headers } },
              `${label} (${round})`)
            t.ok(reused instanceof GriddyAuthError && reused.stack === `GriddyAuthError: ${reused.message}`, `${label}: a GriddyAuthError, no stack frames`)
            t.ok(Object.isFrozen(reused.headers), `${label}: its headers cannot be changed by one answer for the next`)
          }
        }
      }
      t.not(errorOf('GRIDDY_AUTH_SIGNATURE'), errorOf('GRIDDY_AUTH_SIGNATURE'), 'a new error object each time')
      t.equal(errorOf('GRIDDY_AUTH_SIGNATURE').headers, errorOf('GRIDDY_AUTH_SIGNATURE').headers, 'sharing one challenge')
      t.equal(errorOf('GRIDDY_AUTH_FORBIDDEN', { required }).headers, errorOf('GRIDDY_AUTH_FORBIDDEN', { required }).headers, 'a route\'s 403 challenge is built once')
    }
  })

  t.test('every error of the verifier maps to a 401 code, never a 500', async (t) => {
    const table: Array<[unknown, string]> = [
      ['FAST_JWT_INVALID_ALGORITHM', 'GRIDDY_AUTH_ALGORITHM'],
      ['FAST_JWT_INVALID_CRIT_HEADER', 'GRIDDY_AUTH_MALFORMED'],
      ['FAST_JWT_INVALID_SIGNATURE', 'GRIDDY_AUTH_SIGNATURE'],
      ['FAST_JWT_MISSING_SIGNATURE', 'GRIDDY_AUTH_SIGNATURE'],
      ['FST_JWT_AUTHORIZATION_TOKEN_INVALID', 'GRIDDY_AUTH_SIGNATURE'],
      ['SOMETHING_A_LATER_VERSION_ADDS', 'GRIDDY_AUTH_SIGNATURE'],
      [undefined, 'GRIDDY_AUTH_SIGNATURE'],
      [42, 'GRIDDY_AUTH_SIGNATURE']
    ]
    for (const [code, expected] of table) t.equal(codeOfJwtError({ code }), expected, String(code))
  })

  t.test('expired within the tolerance, as configured (clockTolerance: 0 and 60)', async (t) => {
    const strict = await buildApp(t, { ...issuer.pluginOptions, clockTolerance: 0 })
    const lenient = await buildApp(t, { ...issuer.pluginOptions, clockTolerance: 60 })
    await runTable(t, strict, [
      { name: 'exp 2 s ago, no tolerance', token: () => sign({}, { expiresIn: -2 }), expect: (r) => tokenFailure('GRIDDY_AUTH_EXPIRED', r) },
      { name: 'nbf 5 s ahead, no tolerance', token: () => sign({}, { notBefore: 5 }), expect: (r) => tokenFailure('GRIDDY_AUTH_NOT_YET_VALID', r) }
    ])
    await runTable(t, lenient, [
      { name: 'exp 50 s ago, 60 s tolerance', token: () => sign({}, { expiresIn: -50 }) },
      { name: 'nbf 50 s ahead, 60 s tolerance', token: () => sign({}, { notBefore: 50 }) },
      { name: 'exp 70 s ago, 60 s tolerance', token: () => sign({}, { expiresIn: -70 }), expect: (r) => tokenFailure('GRIDDY_AUTH_EXPIRED', r) }
    ])
  })
})

t.test('the Authorization header (SPEC §7)', async (t) => {
  // The `Authorization` header (SPEC §7): which headers carry a token, which
  // are NO_TOKEN and which are BAD_HEADER; tokens are read from nowhere else.
  let issuer: TestIssuer
  let app: FastifyInstance
  let token: string

  t.before(async () => {
    issuer = await createTestIssuer()
    token = issuer.sign({ sub: 'user_1' })
  })

  t.beforeEach(async (t) => {
    app = await buildApp(t, issuer.pluginOptions)
  })

  interface HeaderCase {
    name: string
    header: (token: string) => string
    /** undefined: accepted (200, the token's user). */
    expect?: ExpectedFailure
  }

  const cases: HeaderCase[] = [
    { name: 'Bearer <t>', header: (tk) => `Bearer ${tk}` },
    { name: 'bearer <t>', header: (tk) => `bearer ${tk}` },
    { name: 'BEARER <t>', header: (tk) => `BEARER ${tk}` },
    { name: 'BeArEr <t>', header: (tk) => `BeArEr ${tk}` },
    { name: 'several spaces after the scheme', header: (tk) => `Bearer     ${tk}` },
    { name: 'surrounding spaces', header: (tk) => `   Bearer ${tk}   ` },
    { name: 'surrounding tabs', header: (tk) => `\tBearer ${tk}\t` },
    { name: 'empty header', header: () => '', expect: noToken() },
    { name: 'whitespace only', header: () => ' \t ', expect: noToken() },
    { name: 'Bearer alone', header: () => 'Bearer', expect: badHeader() },
    { name: 'Bearer and a space', header: () => 'Bearer ', expect: badHeader() },
    { name: 'Bearer and spaces', header: () => 'Bearer    ', expect: badHeader() },
    { name: 'Basic credentials', header: () => 'Basic dXNlcjpwYXNz', expect: badHeader() },
    { name: 'Token scheme', header: (tk) => `Token ${tk}`, expect: badHeader() },
    { name: 'JWT scheme', header: (tk) => `JWT ${tk}`, expect: badHeader() },
    { name: 'the bare token, no scheme', header: (tk) => tk, expect: badHeader() },
    { name: 'no space after the scheme', header: (tk) => `Bearer${tk}`, expect: badHeader() },
    { name: 'a colon after the scheme', header: (tk) => `Bearer: ${tk}`, expect: badHeader() },
    { name: 'a tab after the scheme', header: (tk) => `Bearer\t${tk}`, expect: badHeader() },
    { name: 'two tokens', header: (tk) => `Bearer ${tk} ${tk}`, expect: badHeader() },
    { name: 'Bearer a b', header: () => 'Bearer a b', expect: badHeader() },
    { name: 'junk after a comma', header: (tk) => `Bearer ${tk},junk`, expect: badHeader() },
    { name: 'two schemes, comma separated', header: (tk) => `Bearer ${tk}, Basic dXNlcjpwYXNz`, expect: badHeader() },
    { name: 'a quoted token', header: (tk) => `Bearer "${tk}"`, expect: badHeader() },
    { name: 'a non-ASCII letter in the token', header: (tk) => `Bearer ${tk}é`, expect: badHeader() },
    { name: 'a right-to-left override before the token', header: (tk) => `Bearer \u202e${tk}`, expect: badHeader() },
    { name: 'a zero-width space in the token', header: (tk) => `Bearer ${tk.slice(0, 10)}\u200b${tk.slice(10)}`, expect: badHeader() },
    { name: 'a fullwidth B in the scheme', header: (tk) => `\uff22earer ${tk}`, expect: badHeader() },
    { name: 'a Cyrillic e in the scheme', header: (tk) => `B\u0435arer ${tk}`, expect: badHeader() },
    { name: 'a NUL after the token', header: (tk) => `Bearer ${tk}\u0000`, expect: badHeader() },
    { name: 'a non-breaking space after the scheme', header: (tk) => `Bearer\u00a0${tk}`, expect: badHeader() },
    { name: 'an emoji token', header: () => 'Bearer \ud83d\udd11', expect: badHeader() },
    { name: 'a lone surrogate', header: () => 'Bearer \ud800', expect: badHeader() },
    // Valid b64token characters that a JWT never holds: past the header check, the token shape refuses them.
    { name: 'b64token characters (~ + /) a JWT never holds', header: () => 'Bearer a~b+c/d', expect: tokenFailure('GRIDDY_AUTH_MALFORMED') },
    { name: 'trailing = padding', header: (tk) => `Bearer ${tk}==`, expect: tokenFailure('GRIDDY_AUTH_MALFORMED') },
    { name: 'a token that is not a JWT', header: () => 'Bearer abc', expect: tokenFailure('GRIDDY_AUTH_MALFORMED') }
  ]

  t.test('Authorization header table (through inject)', async (t) => {
    for (const c of cases) {
      const res = await getWithHeader(app, '/private', c.header(token))
      if (c.expect === undefined) {
        assertSafe(t, res, token, c.name)
        t.equal(res.statusCode, 200, `${c.name}: accepted`)
        t.equal(res.json().userId, 'user_1', `${c.name}: authenticated as the token's user`)
      } else {
        assertFailure(t, res, c.expect, token, `${c.name}:`)
      }
    }
  })

  t.test('the same table read directly (readBearer)', async (t) => {
    for (const c of cases) {
      const found = readBearer(c.header(token))
      if (c.expect === undefined) t.equal(found, token, c.name)
      else if (c.expect.code === 'GRIDDY_AUTH_MALFORMED') t.type(found, 'string', `${c.name}: passes the header check`)
      else t.same(found, { code: c.expect.code }, c.name)
    }
    t.same(readBearer(undefined), { code: 'GRIDDY_AUTH_NO_TOKEN' }, 'no header')
    t.same(readBearer([`Bearer ${token}`, `Bearer ${token}`]), { code: 'GRIDDY_AUTH_BAD_HEADER' }, 'a header sent twice is ambiguous')
  })

  t.test('the token is read from the Authorization header only: query, cookies, body get NO_TOKEN', async (t) => {
    const posting = await buildApp(t, issuer.pluginOptions, {
      routes: (a) => {
        a.route({ method: ['GET', 'POST'], url: '/private', handler: async (request) => request.auth })
      }
    })
    const requests: Array<[string, InjectOptions]> = [
      ['query ?access_token=', { url: `/private?access_token=${token}` }],
      ['cookie', { url: '/private', headers: { cookie: `access_token=${token}; __session=${token}` } }],
      ['form body', {
        method: 'POST',
        url: '/private',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `access_token=${token}`
      }],
      ['JSON body', { method: 'POST', url: '/private', payload: { access_token: token } }],
      ['X-Access-Token header', { url: '/private', headers: { 'x-access-token': token } }],
      ['Proxy-Authorization header', { url: '/private', headers: { 'proxy-authorization': `Bearer ${token}` } }]
    ]
    for (const [name, request] of requests) {
      assertFailure(t, await posting.inject(request), noToken(), token, `${name}:`)
    }
    // And the header, when present, is what counts even with a bad token elsewhere.
    const res = await posting.inject({ url: '/private?access_token=junk', headers: { authorization: `Bearer ${token}`, cookie: '__session=junk' } })
    t.equal(res.statusCode, 200)
  })

  t.test('a token in the query string is not read even when the header is bad', async (t) => {
    const res = await app.inject({ url: `/private?access_token=${token}`, headers: { authorization: 'Basic x' } })
    assertFailure(t, res, badHeader(), token)
  })

  t.test('the plain token works through a real socket too (header whitespace as Node parses it)', async (t) => {
    const address = await app.listen({ port: 0, host: '127.0.0.1' })
    for (const [header, status] of [[`Bearer ${token}`, 200], [`  bearer   ${token}  `, 200], ['Bearer', 401], ['Basic x', 401]] as const) {
      const res = await fetch(`${address}/private`, { headers: { authorization: header } })
      t.equal(res.status, status, JSON.stringify(header.replace(token, '<t>')))
      const body = await res.text()
      t.notOk(body.includes(token), 'no token echoed')
    }
    const none = await fetch(`${address}/private`)
    t.equal(none.status, 401)
    t.equal(none.headers.get('www-authenticate'), 'Bearer')
    const res = await get(app, '/private', token)
    t.equal(res.statusCode, 200)
  })
})

t.test('logging (SPEC §7)', async (t) => {
  // Logging (SPEC §7): each failure is logged once by the plugin at info, in
  // one line holding its code and the route's URL pattern; no line of the
  // whole app ever holds the token.
  const APP = 'https://app.test'

  let issuer: TestIssuer
  let logs: LogCapture
  let app: FastifyInstance

  t.before(async () => {
    issuer = await createTestIssuer({ authorizedParties: [APP] })
  })

  t.beforeEach(async (t) => {
    logs = captureLogs()
    app = await buildApp(t, issuer.pluginOptions, {
      fastify: { logger: { level: 'trace', stream: logs.stream } },
      routes: (a) => {
        a.get('/leagues/:id', { config: { permissions: 'leagues:read' } }, async (request) => ({ userId: request.auth?.userId }))
        a.get('/public/:id', { config: { public: true } }, async (request) => {
          if ((request.params as { id: string }).id === 'secret') await request.authorize('leagues:admin')
          return { ok: true }
        })
      }
    })
    logs.clear()
  })

  /** Every secret part of `token`: the token, its payload and its signature segments. */
  function secretsOf (token: string): string[] {
    return [token, ...token.split('.').slice(1)].filter((part) => part.length >= 16)
  }

  function assertNoSecret (t: Tap, capture: LogCapture, token: string, label: string): void {
    const leaks = capture.raw.filter((line) => secretsOf(token).some((secret) => line.includes(secret)))
    t.same(leaks, [], `${label}: no log line holds the token or a part of it`)
  }

  interface Case {
    name: string
    token: () => string
    header?: (token: string) => string
    code: string
    message: string
  }

  const sign = (claims: Record<string, unknown> = {}, options: Parameters<TestIssuer['sign']>[1] = {}): string =>
    issuer.sign({ sub: 'user_1', permissions: ['leagues:read'], ...claims }, options)

  const cases: Case[] = [
    { name: 'no token', token: () => '', header: () => '', code: 'GRIDDY_AUTH_NO_TOKEN', message: messages.GRIDDY_AUTH_NO_TOKEN },
    { name: 'another scheme', token: () => sign(), header: (tk) => `Basic ${tk}`, code: 'GRIDDY_AUTH_BAD_HEADER', message: messages.GRIDDY_AUTH_BAD_HEADER },
    { name: 'junk after the token', token: () => sign(), header: (tk) => `Bearer ${tk} ${tk}`, code: 'GRIDDY_AUTH_BAD_HEADER', message: messages.GRIDDY_AUTH_BAD_HEADER },
    { name: 'malformed', token: () => `${sign()}.extra`, code: 'GRIDDY_AUTH_MALFORMED', message: messages.GRIDDY_AUTH_MALFORMED },
    { name: 'alg none', token: () => sign({}, { alg: 'none' }), code: 'GRIDDY_AUTH_ALGORITHM', message: messages.GRIDDY_AUTH_ALGORITHM },
    { name: 'unknown kid', token: () => sign({}, { kid: 'nope' }), code: 'GRIDDY_AUTH_UNKNOWN_KEY', message: messages.GRIDDY_AUTH_UNKNOWN_KEY },
    {
      name: 'bad signature',
      token: () => {
        const [h, p, s] = sign().split('.') as [string, string, string]
        return `${h}.${p}.${s.slice(0, 20)}${s[20] === 'A' ? 'B' : 'A'}${s.slice(21)}`
      },
      code: 'GRIDDY_AUTH_SIGNATURE',
      message: messages.GRIDDY_AUTH_SIGNATURE
    },
    { name: 'expired', token: () => sign({}, { expiresIn: -60 }), code: 'GRIDDY_AUTH_EXPIRED', message: messages.GRIDDY_AUTH_EXPIRED },
    { name: 'not yet valid', token: () => sign({}, { notBefore: 60 }), code: 'GRIDDY_AUTH_NOT_YET_VALID', message: messages.GRIDDY_AUTH_NOT_YET_VALID },
    { name: 'no exp', token: () => sign({}, { omit: ['exp'] }), code: 'GRIDDY_AUTH_MISSING_CLAIM', message: messages.GRIDDY_AUTH_MISSING_CLAIM_EXP },
    { name: 'no sub', token: () => sign({ sub: undefined }), code: 'GRIDDY_AUTH_MISSING_CLAIM', message: messages.GRIDDY_AUTH_MISSING_CLAIM_SUB },
    { name: 'wrong iss', token: () => sign({ iss: 'https://evil.test' }), code: 'GRIDDY_AUTH_ISSUER', message: messages.GRIDDY_AUTH_ISSUER },
    { name: 'wrong aud', token: () => sign({ aud: 'evil' }), code: 'GRIDDY_AUTH_AUDIENCE', message: messages.GRIDDY_AUTH_AUDIENCE },
    { name: 'wrong azp', token: () => sign({ azp: 'evil' }), code: 'GRIDDY_AUTH_AUTHORIZED_PARTY', message: messages.GRIDDY_AUTH_AUTHORIZED_PARTY },
    { name: 'missing permission', token: () => sign({ permissions: [] }), code: 'GRIDDY_AUTH_FORBIDDEN', message: messages.GRIDDY_AUTH_FORBIDDEN }
  ]

  t.test('each failure: exactly one plugin line, at info, with its code and the route pattern', async (t) => {
    for (const c of cases) {
      logs.clear()
      const token = c.token()
      const res = await getWithHeader(app, '/leagues/42', c.header?.(token) ?? `Bearer ${token}`)
      t.equal(res.json().code, c.code, `${c.name}: answered ${c.code}`)
      const lines = logs.pluginLines()
      t.equal(lines.length, 1, `${c.name}: one plugin line`)
      t.match(lines[0], { level: 30, code: c.code, route: '/leagues/:id', msg: `griddy-auth: ${c.message}` }, `${c.name}: info, code, route pattern`)
      t.equal(lines[0]?.reqId, logs.lines.find((line) => line.msg === 'incoming request')?.reqId, `${c.name}: bound to the request`)
      t.notOk(logs.raw.filter((line) => line.includes('griddy-auth')).some((line) => line.includes('/leagues/42')), `${c.name}: the plugin logs the pattern, not the URL`)
      if (token.length > 0) assertNoSecret(t, logs, token, c.name)
    }
  })

  t.test('a success logs nothing from the plugin, and no line holds the token', async (t) => {
    const token = sign()
    t.equal((await get(app, '/leagues/42', token)).statusCode, 200)
    t.equal((await get(app, '/leagues/42', token)).statusCode, 200)
    t.same(logs.pluginLines(), [])
    t.ok(logs.lines.length > 0, 'the app did log (requests, responses)')
    assertNoSecret(t, logs, token, 'success')
  })

  t.test('a token sent to a public route is never logged', async (t) => {
    const token = sign()
    t.equal((await get(app, '/public/1', token)).statusCode, 200)
    t.same(logs.pluginLines(), [])
    assertNoSecret(t, logs, token, 'public route')
  })

  t.test('an authorize() failure is logged once, with the route pattern', async (t) => {
    const token = sign()
    const res = await get(app, '/public/secret', token)
    t.equal(res.statusCode, 403)
    const lines = logs.pluginLines()
    t.equal(lines.length, 1)
    t.match(lines[0], { level: 30, code: 'GRIDDY_AUTH_FORBIDDEN', route: '/public/:id' })
    assertNoSecret(t, logs, token, 'authorize()')
    logs.clear()
    await get(app, '/public/secret')
    t.match(logs.pluginLines(), [{ level: 30, code: 'GRIDDY_AUTH_NO_TOKEN', route: '/public/:id' }], 'no token: one line')
  })

  t.test('a JWKS outage: one plugin line per failed request, one error line per incident, no secret', async (t) => {
    const outage = captureLogs()
    const idp = await countingServer(t, (_request, response) => {
      response.writeHead(500, { 'content-type': 'text/plain' }).end('UPSTREAM-SECRET-BODY')
    })
    const remote = await buildApp(t, { issuer: issuer.issuer, audience: issuer.audience, jwksUrl: `${idp.url}/jwks.json` }, {
      fastify: { logger: { level: 'trace', stream: outage.stream } },
      routes: (a) => { a.get('/leagues/:id', async () => 'ok') }
    })
    const tokens = [sign(), sign({}, { kid: 'other-kid' }), sign()]
    for (const token of tokens) t.equal((await get(remote, '/leagues/7', token)).statusCode, 503)
    const infos = outage.pluginLines().filter((line) => line.level === 30)
    t.equal(infos.length, 3, 'one info line per failed request')
    t.ok(infos.every((line) => line.code === 'GRIDDY_AUTH_UNAVAILABLE' && line.route === '/leagues/:id'))
    const alarms = outage.lines.filter((line) => line.level >= 40 && typeof line.msg === 'string' && line.msg.startsWith('griddy-auth:'))
    t.equal(alarms.length, 1, 'the outage is reported once, not per request')
    t.ok(alarms[0]?.jwksUrl, 'naming the JWKS URL')
    t.notOk(outage.raw.some((line) => line.includes('UPSTREAM-SECRET-BODY')), 'the upstream body is not logged')
    for (const token of tokens) assertNoSecret(t, outage, token, 'outage')
  })
})
