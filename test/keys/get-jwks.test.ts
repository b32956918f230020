/**
 * SPEC §1 and §9: every remote key (and every discovery document) is
 * fetched through get-jwks, never by a fetch of the plugin's own. Shown two
 * ways, with the plugin loaded with get-jwks replaced (t.mockRequire):
 * - get-jwks made to fail, in every way it can: the identity provider sees
 *   no request at all, and the answer is a 401 or a 503, never a 500;
 * - get-jwks wrapped to count: each request the provider sees is one that
 *   get-jwks made.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import realGetJwks from 'get-jwks'
import type { GriddyAuthOptions } from '../../lib/index'
import { readFileSync } from 'node:fs'
import { call, captureLog, codeOf, createFakeIdp, sharedIssuer, upstreamMarker, type Asserts, type CapturedLog } from '../fixtures/fake-idp'

type BuildGetJwks = typeof realGetJwks
type GetJwks = ReturnType<BuildGetJwks>

/** An app whose plugin was loaded with `getJwks` in place of get-jwks. */
async function appWith (t: Asserts & { mockRequire: <T>(module: string, mocks: Record<string, unknown>) => T }, getJwks: BuildGetJwks, options: GriddyAuthOptions, log?: CapturedLog): Promise<FastifyInstance> {
  const { griddyAuth } = t.mockRequire<typeof import('../../lib/index')>('../../lib/index', { 'get-jwks': getJwks })
  const app = Fastify(log === undefined ? {} : { logger: { level: 'info', stream: log.stream } })
  t.teardown(() => app.close())
  await app.register(griddyAuth, options)
  app.get('/me', async (request) => ({ userId: request.auth?.userId }))
  await app.ready()
  return app
}

t.test('get-jwks is a runtime dependency', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', `file://${__filename}`), 'utf8')) as { dependencies: Record<string, string> }
  t.match(pkg.dependencies, { 'get-jwks': /^\^11\./ })
})

t.test('with get-jwks failing, the provider sees no request and the answer is 401 or 503, never 500', async (t) => {
  const issuer = await sharedIssuer()
  const boom = (): Promise<never> => Promise.reject(new RangeError(upstreamMarker))
  /** get-jwks with some of its functions replaced. */
  const broken = (parts: Partial<GetJwks>): BuildGetJwks => ((options) => ({ ...realGetJwks(options), ...parts })) as BuildGetJwks
  const notFound = Object.assign(new Error('No matching JWK found in the set.'), { code: 'JWK_NOT_FOUND' })

  const cases: Array<[string, BuildGetJwks, 'jwksUrl' | 'discovery', number, string]> = [
    ['getJwk rejects', broken({ getJwk: boom }), 'jwksUrl', 503, 'unexpected error'],
    ['getJwk rejects with a TypeError', broken({ getJwk: () => Promise.reject(new TypeError('fetch failed')) }), 'jwksUrl', 503, 'network error (TypeError)'],
    ['getJwk throws', broken({ getJwk: () => { throw new Error(upstreamMarker) } }), 'jwksUrl', 503, 'unexpected error'],
    ['getJwk answers JWK_NOT_FOUND', broken({ getJwk: () => Promise.reject(notFound) }), 'jwksUrl', 401, ''],
    ['getJwk answers the key of another kid', broken({ getJwk: async () => ({ ...issuer.key.jwk, kid: 'other' }) as never }), 'jwksUrl', 401, ''],
    ['getJwk answers garbage', broken({ getJwk: async () => null as never }), 'jwksUrl', 401, ''],
    ['getJwksUri rejects', broken({ getJwksUri: boom }), 'discovery', 503, 'discovery document: unexpected error'],
    ['getJwksUri answers a data: URL', broken({ getJwksUri: async () => `data:application/json,${JSON.stringify(issuer.jwks)}` }), 'discovery', 503, 'discovery document: jwks_uri is not an http(s) URL']
  ]
  for (const [name, getJwks, source, status, reason] of cases) {
    t.test(name, async (t) => {
      const idp = await createFakeIdp({ jwks: { keys: [...issuer.jwks.keys] } })
      t.teardown(() => idp.close())
      const log = captureLog()
      const options: GriddyAuthOptions = source === 'jwksUrl'
        ? { issuer: issuer.issuer, audience: issuer.audience, jwksUrl: idp.jwksUrl }
        : { issuer: idp.url, audience: issuer.audience, discovery: true }
      const app = await appWith(t, getJwks, options, log)
      const res = await call(app, issuer.sign({ sub: 'u', iss: source === 'jwksUrl' ? issuer.issuer : idp.url }))
      t.equal(res.statusCode, status)
      t.equal(codeOf(res), status === 503 ? 'GRIDDY_AUTH_UNAVAILABLE' : 'GRIDDY_AUTH_UNKNOWN_KEY')
      t.equal(idp.hits('*'), 0, 'the provider saw no request: the plugin has no fetch of its own')
      t.same(log.alerts().map((line) => line.reason), reason === '' ? [] : [reason], 'logged as a failed fetch (or not at all)')
      t.notOk(log.raw.join('').includes(upstreamMarker), 'the error\'s own message is not logged')
    })
  }
})

t.test('get-jwks is built when the plugin registers: if that throws, start-up fails, not a request', async (t) => {
  const issuer = await sharedIssuer()
  await t.rejects(appWith(t, (() => { throw new Error('cannot build') }) as never, { issuer: issuer.issuer, audience: issuer.audience }), { message: 'cannot build' })
})

t.test('every request the provider sees is one get-jwks made: keys, and discovery documents', async (t) => {
  const issuer = await sharedIssuer()
  const idp = await createFakeIdp({ jwks: { keys: [...issuer.jwks.keys] }, paths: ['/protocol/openid-connect/certs'] })
  t.teardown(() => idp.close())
  const calls: string[] = []
  const counting = ((options) => {
    const getJwks = realGetJwks(options)
    return {
      ...getJwks,
      getJwk: (signature) => { calls.push('getJwk'); return getJwks.getJwk(signature) },
      getJwksUri: (domain) => { calls.push('getJwksUri'); return getJwks.getJwksUri(domain) }
    }
  }) as BuildGetJwks

  for (const options of [
    { issuer: idp.url, audience: issuer.audience },
    { issuer: idp.url, audience: issuer.audience, jwksUrl: idp.jwksUrl },
    { issuer: idp.url, audience: issuer.audience, discovery: true }
  ] as GriddyAuthOptions[]) {
    calls.length = 0
    const before = idp.hits('*')
    const app = await appWith(t, counting, { ...options, jwksCooldown: 60_000 })
    t.equal((await call(app, issuer.sign({ sub: 'u', iss: idp.url }))).statusCode, 200)
    t.equal(codeOf(await call(app, issuer.sign({ sub: 'u', iss: idp.url }, { kid: randomUUID() }))), 'GRIDDY_AUTH_UNKNOWN_KEY')
    t.same(calls, options.discovery === true ? ['getJwksUri', 'getJwk', 'getJwk'] : ['getJwk', 'getJwk'])
    t.equal(idp.hits('*') - before, calls.length, `${Object.keys(options).join(', ')}: one request per get-jwks call`)
  }
  t.same(idp.requests.slice(-3), ['/.well-known/openid-configuration', '/protocol/openid-connect/certs', '/protocol/openid-connect/certs'])
})
