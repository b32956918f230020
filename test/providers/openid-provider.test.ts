/**
 * A real OpenID Provider (panva's oidc-provider, OpenID Certified) issues
 * RFC 9068 JWT access tokens through a real client-credentials grant with a
 * resource indicator; the plugin, which knows only the provider's issuer,
 * verifies them from the provider's own endpoints. No key set is written by
 * hand here: the keys are the provider's, fetched by the plugin.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { assertFailure, buildApp, forbidden, get, tokenFailure, type Tap } from '../helpers'
import { clientId, discoveryPath, startOpenIdProvider, type OpenIdProvider } from '../fixtures/openid-provider'

const audience = 'https://api.griddy.example'
const otherAudience = 'https://other.griddy.example'

interface Decoded { header: Record<string, unknown>, payload: Record<string, unknown> }
function decode (token: string): Decoded {
  const [header, payload] = token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>)
  return { header: header as Record<string, unknown>, payload: payload as Record<string, unknown> }
}

/** The same token with its payload edited and its signature kept. */
function tamper (token: string, edit: (payload: Record<string, unknown>) => void): string {
  const [header, , signature] = token.split('.')
  const { payload } = decode(token)
  edit(payload)
  return `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${signature}`
}

/** A route per scope the tests need: `teams:write` is one the provider never grants. */
function routes (app: FastifyInstance): void {
  app.get('/leagues', { config: { permissions: 'leagues:read' } }, async (request) => request.auth)
  app.get('/teams', { config: { permissions: 'teams:read' } }, async (request) => ({ userId: request.auth?.userId }))
  app.get('/teams/edit', { config: { permissions: 'teams:write' } }, async () => ({ edited: true }))
}

async function setup (t: Tap): Promise<{ op: OpenIdProvider, other: OpenIdProvider, app: FastifyInstance }> {
  const [op, other] = await Promise.all([startOpenIdProvider(), startOpenIdProvider()])
  t.teardown(() => Promise.all([op.close(), other.close()]))
  // The plugin knows only the provider's issuer: its keys come by OpenID Connect Discovery.
  const app = await buildApp(t, { issuer: op.issuer, audience, discovery: true, permissionsClaim: 'scope' }, { routes })
  return { op, other, app }
}

/** What the plugin asked the provider: discovery documents and key sets (the test's own token requests left out). */
function fetchedBy (op: OpenIdProvider): { discovery: number, jwks: number, other: string[] } {
  return {
    discovery: op.hits(discoveryPath),
    jwks: op.hits('/jwks'),
    other: op.requests.filter((line) => line !== `GET ${discoveryPath}` && line !== 'GET /jwks' && line !== 'POST /token')
  }
}

t.test('tokens from a real client-credentials grant: accepted where their scope covers the route, 403 where not', async (t) => {
  const { op, app } = await setup(t)
  t.same(fetchedBy(op), { discovery: 0, jwks: 0, other: [] }, 'nothing is fetched at start-up')

  const leaguesOnly = await op.accessToken({ resource: audience, scope: 'leagues:read' })
  const both = await op.accessToken({ resource: audience, scope: 'leagues:read teams:read' })
  const { header, payload } = decode(leaguesOnly)
  t.same({ alg: header.alg, typ: header.typ, kidIsString: typeof header.kid === 'string' },
    { alg: 'RS256', typ: 'at+jwt', kidIsString: true }, 'an RFC 9068 access token, typ at+jwt')
  t.same({ iss: payload.iss, aud: payload.aud, sub: payload.sub, client_id: payload.client_id, scope: payload.scope },
    { iss: op.issuer, aud: audience, sub: clientId, client_id: clientId, scope: 'leagues:read' }, 'with the claims RFC 9068 names')

  const cases: Array<{ name: string, token: string, url: string, status: number, scope?: string }> = [
    { name: 'leagues:read token, route needing leagues:read', token: leaguesOnly, url: '/leagues', status: 200 },
    { name: 'leagues:read token, route needing teams:read', token: leaguesOnly, url: '/teams', status: 403, scope: 'teams:read' },
    { name: 'both scopes, route needing teams:read', token: both, url: '/teams', status: 200 },
    { name: 'both scopes, route needing a scope never granted', token: both, url: '/teams/edit', status: 403, scope: 'teams:write' }
  ]
  for (const { name, token, url, status, scope } of cases) {
    const res = await get(app, url, token)
    if (scope === undefined) t.equal(res.statusCode, status, name)
    else assertFailure(t, res, forbidden(scope), token, name)
  }

  const res = await get(app, '/leagues', leaguesOnly)
  const auth = res.json() as { userId: string, permissions: string[], claims: Record<string, unknown> }
  t.same({ userId: auth.userId, permissions: auth.permissions, iss: auth.claims.iss },
    { userId: clientId, permissions: ['leagues:read'], iss: op.issuer }, 'request.auth: sub as the user id, the scope as permissions')

  t.same(fetchedBy(op), { discovery: 1, jwks: 1, other: [] }, 'one discovery document and one key set for every token of that key')
})

t.test('refused: another audience, another issuer, a tampered payload', async (t) => {
  const { op, other, app } = await setup(t)
  const good = await op.accessToken({ resource: audience, scope: 'leagues:read' })
  t.equal((await get(app, '/leagues', good)).statusCode, 200, 'the provider\'s own token passes first')

  const forOtherApi = await op.accessToken({ resource: otherAudience, scope: 'leagues:read' })
  t.equal(decode(forOtherApi).payload.aud, otherAudience, 'the provider made it for the other resource')
  const fromOtherProvider = await other.accessToken({ resource: audience, scope: 'leagues:read' })
  const escalated = tamper(good, (payload) => { payload.scope = 'leagues:read teams:read teams:write' })
  const otherSubject = tamper(good, (payload) => { payload.sub = 'someone-else' })

  const cases: Array<[string, string, Parameters<typeof tokenFailure>[0]]> = [
    ['a token for another resource (aud)', forOtherApi, 'GRIDDY_AUTH_AUDIENCE'],
    // Its iss is not configured: refused before any key lookup (SPEC §6), nothing fetched for it.
    ['a token of another OpenID Provider (iss)', fromOtherProvider, 'GRIDDY_AUTH_ISSUER'],
    ['scope widened after signing', escalated, 'GRIDDY_AUTH_SIGNATURE'],
    ['sub changed after signing', otherSubject, 'GRIDDY_AUTH_SIGNATURE']
  ]
  for (const [name, token, code] of cases) {
    assertFailure(t, await get(app, '/leagues', token), tokenFailure(code), token, name)
  }

  t.same(fetchedBy(op), { discovery: 1, jwks: 1, other: [] }, 'refusals cost the provider nothing more')
  t.same(other.requests, ['POST /token'], 'the other provider was never asked anything by the plugin')
})

t.test('another issuer is not vouched for by this provider\'s key set', async (t) => {
  // Both issuers accepted, but keys pinned to the first provider's jwks_uri:
  // the second provider's tokens carry a kid that set does not hold.
  const [op, other] = await Promise.all([startOpenIdProvider(), startOpenIdProvider()])
  t.teardown(() => Promise.all([op.close(), other.close()]))
  const { jwks_uri: jwksUrl } = await (await fetch(`${op.issuer}${discoveryPath}`)).json() as { jwks_uri: string }
  const app = await buildApp(t, { issuer: [op.issuer, other.issuer], audience, permissionsClaim: 'scope', jwksUrl, jwksCooldown: 60_000 }, { routes })

  const mine = await op.accessToken({ resource: audience, scope: 'leagues:read' })
  const theirs = await other.accessToken({ resource: audience, scope: 'leagues:read' })
  t.not(decode(theirs).header.kid, decode(mine).header.kid, 'each provider signs with its own key')
  t.equal((await get(app, '/leagues', mine)).statusCode, 200)
  assertFailure(t, await get(app, '/leagues', theirs), tokenFailure('GRIDDY_AUTH_UNKNOWN_KEY'), theirs, 'the other provider\'s token')
  t.same(other.requests, ['POST /token'], 'its own endpoints are never consulted')
  t.equal(op.hits('/jwks'), 2, 'the first fetch, then one refetch for the unknown kid (then the cooldown)')
})

t.test('concurrent first requests share one discovery and one key-set fetch', async (t) => {
  const { op, app } = await setup(t)
  const token = await op.accessToken({ resource: audience, scope: 'leagues:read' })
  const responses = await Promise.all(Array.from({ length: 20 }, () => get(app, '/leagues', token)))
  t.same(responses.map((res) => res.statusCode), Array(20).fill(200), 'all 20 accepted')
  t.same(fetchedBy(op), { discovery: 1, jwks: 1, other: [] }, 'the provider was asked once for each')
})
