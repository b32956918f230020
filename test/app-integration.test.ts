/**
 * The plugin among an app's own parts (issue #15): an app's own
 * @fastify/jwt or `request.user`, the plugin registered twice, Fastify's
 * register options (`prefix`, `logLevel`, `logSerializers`), the log lines
 * a refused request costs, URLs in log lines, and an `Authorization`
 * header sent twice on a real socket (Node drops the second one before
 * any hook runs, so `inject` cannot show it).
 */
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import griddyAuth, { type GriddyAuthOptions } from '../lib/index'
import { redactUrl } from '../lib/redact-url'
import { createTestIssuer, type TestIssuer } from '../lib/testing/index'
import { captureLogs, countingServer, get, standardRoutes, type Tap } from './helpers'

let issuer: TestIssuer
let options: GriddyAuthOptions
t.before(async () => {
  issuer = await createTestIssuer()
  options = issuer.pluginOptions
})

/** An app whose log is captured, with the plugin registered with `extra` (Fastify's register options). */
async function loggedApp (t: Tap, extra: Record<string, unknown>, fastifyOptions: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, logs: ReturnType<typeof captureLogs> }> {
  const logs = captureLogs()
  const app = Fastify({ logger: { level: 'info', stream: logs.stream }, ...fastifyOptions })
  t.teardown(() => app.close())
  await app.register(griddyAuth, { ...options, ...extra } as GriddyAuthOptions)
  standardRoutes(app)
  await app.ready()
  return { app, logs }
}

t.test('JWKS URLs are logged without credentials, query or fragment', async (t) => {
  const idp = await countingServer(t, (_request, response) => { response.writeHead(500).end() })
  const { app, logs } = await loggedApp(t, { jwks: undefined, jwksUrl: `${idp.url}/tenant/jwks.json?api_key=SECRET-KEY#frag` })
  t.equal((await get(app, '/private', issuer.sign({ sub: 'u' }))).statusCode, 503)
  const outage = logs.pluginLines().filter((line) => line.level === 50)
  t.equal(outage.length, 1, 'the outage is logged')
  t.equal(outage[0]?.jwksUrl, `${idp.url}/tenant/jwks.json`, 'origin and path only')
  t.notOk(logs.raw.join('').includes('SECRET-KEY'), 'the query string is in no line')
  t.equal(idp.paths[0], '/tenant/jwks.json?api_key=SECRET-KEY', 'while the fetch itself uses the URL as configured')

  const table: Array<[string, string]> = [
    ['https://user:pass@idp.test:8443/a/b?x=1#y', 'https://idp.test:8443/a/b'],
    ['http://idp.test', 'http://idp.test/'],
    ['not a url', '(not a URL)']
  ]
  for (const [url, logged] of table) t.equal(redactUrl(url), logged, url)
})
