/**
 * The provider table (docs/providers.md), one row per provider setup: each
 * row's fake IdP publishes that provider's key-set shape at that provider's
 * path (and its discovery document where the row uses discovery), and signs
 * tokens with that provider's claim shape, with local keys. Every row checks
 * what a client sees (200 with the right user, 403 without the permission,
 * `Invalid audience.` for another API) and exactly what the plugin asked the
 * fake IdP; rows add the cases their provider is known for (Keycloak's
 * encryption key, Cognito's access tokens, Google's concurrent keys...).
 */
import t from 'tap'
import { createHash, randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { clerkOrganizationPermissions, type GriddyAuthOptions, type JWK } from '../../lib/index'
import { signToken, type TestKey } from '../../lib/testing/index'
import { assertFailure, buildApp, forbidden, get, nowSeconds, tokenFailure, type Tap } from '../helpers'
import { createFakeIdp, discoveryPath, poolKey, type FakeIdp } from '../fixtures/fake-idp'

const app = 'https://app.griddy.example'

/** Where a row's keys come from, as a user would configure it. */
type KeySource =
  | { kind: 'well-known' } // `${iss}/.well-known/jwks.json`, no key option at all
  | { kind: 'jwksUrl', path: string }
  | { kind: 'discovery', jwksPath: string } // `jwks_uri` of `${iss}/.well-known/openid-configuration`

/** The RSA public numbers of a test key, to dress in a provider's JWK shape. */
function rsa (key: TestKey): { kty: string, n: string, e: string } {
  return { kty: 'RSA', n: key.jwk.n as string, e: key.jwk.e as string }
}

/**
 * An `x5c` entry as providers publish it, but not a certificate of this key:
 * the plugin verifies with `n` and `e` only, so a chain it parsed would break
 * these rows. `x5t` is the SHA-1 thumbprint of that entry, as published.
 */
function fakeChain (kid: string): { x5c: string[], x5t: string } {
  const der = createHash('sha512').update(`not a certificate of ${kid}`).digest()
  return { x5c: [der.toString('base64')], x5t: createHash('sha1').update(der).digest('base64url') }
}

interface RowKeys {
  /** The keys the row signs with, in pool order; `keys[0]` signs unless a case says otherwise. */
  keys: TestKey[]
  /** The kids the row publishes them under (provider-style names). */
  kids: string[]
}

interface RowCase {
  name: string
  /** Edit the row's claims (after its permissions were placed). */
  edit?: (claims: Record<string, unknown>) => void
  /** Whole other claims (a provider's other token type). */
  claims?: (issuer: string, now: number) => Record<string, unknown>
  /** Index into the row's keys (and kids) that signs; default 0. */
  key?: number
  /** 200, or the failure code a client must see. */
  expect: 200 | Parameters<typeof tokenFailure>[0]
}

interface ProviderRow {
  provider: string
  setup: string
  /** The issuer for a fake IdP at `base` (rows whose keys are fetched from `iss` must live on it). */
  issuer: (base: string) => string
  audience: string
  keys: KeySource
  /** How many pool keys the row publishes and signs with. */
  keyCount: number
  kids: (keys: TestKey[]) => string[]
  /** The provider's published key set. */
  keySet: (row: RowKeys) => JWK[]
  header: (kid: string) => Record<string, unknown>
  /** The provider's claims for a user with `permissions`, placed where that provider puts them. */
  claims: (issuer: string, now: number, permissions: string[]) => Record<string, unknown>
  /** The user id (`sub`) the claims carry. */
  userId: string
  options?: Partial<GriddyAuthOptions>
  /** A permission the provider can grant, required by the row's route; none: only a valid token is required. */
  permission?: string
  cases?: RowCase[]
  /** The paths the plugin fetches from the fake IdP over all the row's cases, in order. */
  fetches: (issuerPath: string) => string[]
}

const tenant = 'b3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d'
const entraApp = '6e74172b-be56-4843-9ff4-e66a39bb12e3'
const entraClient = '2d4a1f3e-7b8c-4d9e-a0b1-c2d3e4f5a6b7'
const cognitoClient = '3n4b5urk1ft4fl3mg5e62d9ado'
const googleClient = '1234567890-griddy.apps.googleusercontent.com'

const rows: ProviderRow[] = [
  {
    provider: 'Clerk',
    setup: 'session token v2, permissions added in Customize session token',
    issuer: (base) => base, // the Frontend API URL
    audience: 'https://api.griddy.example',
    keys: { kind: 'well-known' },
    keyCount: 1,
    kids: () => ['ins_2griddyInstanceKey'],
    keySet: ({ keys, kids }) => [{ use: 'sig', ...rsa(keys[0] as TestKey), kid: kids[0], alg: 'RS256' }],
    header: (kid) => ({ alg: 'RS256', kid, typ: 'JWT' }),
    claims: (iss, now, permissions) => ({ ...clerkSession(iss, now), permissions }),
    userId: 'user_2griddyUser',
    options: { authorizedParties: [app] },
    permission: 'leagues:read',
    cases: [
      { name: 'a token another frontend obtained (azp)', edit: (c) => { c.azp = 'https://evil.example' }, expect: 'GRIDDY_AUTH_AUTHORIZED_PARTY' },
      { name: 'a default session token: no aud', edit: (c) => { delete c.aud }, expect: 'GRIDDY_AUTH_AUDIENCE' }
    ],
    fetches: () => ['/.well-known/jwks.json']
  },
  {
    provider: 'Clerk',
    setup: 'session token v2, Organizations permissions (fea, o.per, o.fpm) with clerkOrganizationPermissions',
    issuer: (base) => base,
    audience: 'https://api.griddy.example',
    keys: { kind: 'well-known' },
    keyCount: 1,
    kids: () => ['ins_2griddyInstanceKey'],
    keySet: ({ keys, kids }) => [{ use: 'sig', ...rsa(keys[0] as TestKey), kid: kids[0], alg: 'RS256' }],
    header: (kid) => ({ alg: 'RS256', kid, typ: 'JWT' }),
    claims: (iss, now, permissions) => ({ ...clerkSession(iss, now), ...clerkOrganization(permissions) }),
    userId: 'user_2griddyUser',
    options: {
      authorizedParties: [app],
      permissionsClaim: (c) => [...clerkOrganizationPermissions(c), ...(c.permissions ?? [])]
    },
    permission: 'org:leagues:manage',
    cases: [
      {
        name: 'the custom permissions claim counts too',
        edit: (c) => { Object.assign(c, clerkOrganization([]), { permissions: ['org:leagues:manage'] }) },
        expect: 200
      },
      { name: 'no active organization (no o claim)', edit: (c) => { delete c.o }, expect: 'GRIDDY_AUTH_FORBIDDEN' },
      {
        name: 'the permission granted for another feature only',
        edit: (c) => { Object.assign(c, clerkOrganization(['org:billing:manage', 'org:leagues:read'])) },
        expect: 'GRIDDY_AUTH_FORBIDDEN'
      }
    ],
    fetches: () => ['/.well-known/jwks.json']
  },
  {
    provider: 'Auth0',
    setup: 'access token, RBAC with "Add Permissions in the Access Token"',
    issuer: (base) => `${base}/`, // Auth0's issuer ends with a slash
    audience: 'https://api.griddy.example',
    keys: { kind: 'well-known' },
    keyCount: 2, // the current and the next signing key
    kids: () => ['x3ZzTq9c0-griddy-current', 'x3ZzTq9c0-griddy-next'],
    keySet: ({ keys, kids }) => keys.map((key, i) => ({ alg: 'RS256', ...rsa(key), use: 'sig', kid: kids[i], ...fakeChain(kids[i] as string) })),
    header: (kid) => ({ alg: 'RS256', typ: 'JWT', kid }),
    claims: (iss, now, permissions) => ({
      iss,
      sub: 'auth0|6512f0c2a1b2c3d4e5f60718',
      aud: ['https://api.griddy.example', `${iss}userinfo`],
      iat: now,
      exp: now + 86400,
      scope: 'openid profile email',
      azp: 'kT3cL1entIdGriddyWeb',
      permissions
    }),
    userId: 'auth0|6512f0c2a1b2c3d4e5f60718',
    permission: 'leagues:read',
    cases: [{ name: 'signed with the next key, already published', key: 1, expect: 200 }],
    // get-jwks fetches per key: a key first seen costs one fetch of the set, never a refusal.
    fetches: () => ['/.well-known/jwks.json', '/.well-known/jwks.json']
  },
  {
    provider: 'Auth0',
    setup: 'access token, permissions set by an Action under a namespaced claim',
    issuer: (base) => `${base}/`,
    audience: 'https://api.griddy.example',
    keys: { kind: 'well-known' },
    keyCount: 1,
    kids: () => ['x3ZzTq9c0-griddy-current'],
    keySet: ({ keys, kids }) => [{ alg: 'RS256', ...rsa(keys[0] as TestKey), use: 'sig', kid: kids[0], ...fakeChain(kids[0] as string) }],
    header: (kid) => ({ alg: 'RS256', typ: 'JWT', kid }),
    claims: (iss, now, permissions) => ({
      iss,
      sub: 'auth0|6512f0c2a1b2c3d4e5f60718',
      aud: ['https://api.griddy.example', `${iss}userinfo`],
      iat: now,
      exp: now + 86400,
      scope: 'openid profile',
      azp: 'kT3cL1entIdGriddyWeb',
      'https://griddy.example/permissions': permissions
    }),
    userId: 'auth0|6512f0c2a1b2c3d4e5f60718',
    options: { permissionsClaim: 'https://griddy.example/permissions' },
    permission: 'leagues:read',
    cases: [
      {
        name: 'the name is read literally, never split on its dots',
        edit: (c) => { c['https://griddy'] = { 'example/permissions': ['leagues:read'] }; delete c['https://griddy.example/permissions'] },
        expect: 'GRIDDY_AUTH_FORBIDDEN'
      },
      {
        name: 'the top-level permissions claim is not the configured one',
        edit: (c) => { c.permissions = ['leagues:read']; c['https://griddy.example/permissions'] = [] },
        expect: 'GRIDDY_AUTH_FORBIDDEN'
      }
    ],
    fetches: () => ['/.well-known/jwks.json']
  },
  {
    provider: 'Okta',
    setup: 'access token of a custom authorization server, scopes in scp',
    issuer: (base) => `${base}/oauth2/default`,
    audience: 'api://griddy',
    keys: { kind: 'discovery', jwksPath: '/oauth2/default/v1/keys' },
    keyCount: 1,
    kids: () => ['Okt4GriddyKey-1'],
    keySet: ({ keys, kids }) => [{ ...rsa(keys[0] as TestKey), alg: 'RS256', kid: kids[0], use: 'sig' }],
    header: (kid) => ({ kid, alg: 'RS256' }),
    claims: (iss, now, permissions) => ({
      ver: 1,
      jti: 'AT.griddy-jti',
      iss,
      aud: 'api://griddy',
      iat: now,
      exp: now + 3600,
      cid: '0oa1griddyclient',
      uid: '00u1griddyuser',
      scp: ['openid', ...permissions],
      auth_time: now - 30,
      sub: 'alice@griddy.example'
    }),
    userId: 'alice@griddy.example',
    options: { permissionsClaim: 'scp' },
    permission: 'leagues:read',
    fetches: (iss) => [`${iss}${discoveryPath}`, `${iss}/v1/keys`]
  },
  {
    provider: 'Keycloak',
    setup: 'access token, client scopes in scope; an RSA-OAEP encryption key in the set',
    issuer: (base) => `${base}/realms/griddy`,
    audience: 'griddy-api',
    keys: { kind: 'discovery', jwksPath: '/realms/griddy/protocol/openid-connect/certs' },
    keyCount: 2,
    kids: () => ['kc-sig-Zm9vYmFy', 'kc-enc-YmF6cXV4'],
    // The encryption key first: a verifier that took the first RSA key, or ignored `use`, would pick it.
    keySet: ({ keys, kids }) => [
      { kid: kids[1], ...rsa(keys[1] as TestKey), alg: 'RSA-OAEP', use: 'enc', ...fakeChain(kids[1] as string) },
      { kid: kids[0], ...rsa(keys[0] as TestKey), alg: 'RS256', use: 'sig', ...fakeChain(kids[0] as string) }
    ],
    header: (kid) => ({ alg: 'RS256', typ: 'JWT', kid }),
    claims: keycloakClaims,
    userId: '9f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f',
    options: { permissionsClaim: 'scope' },
    permission: 'leagues:read',
    cases: [
      { name: 'signed with the encryption key (its kid): never a verification key', key: 1, expect: 'GRIDDY_AUTH_UNKNOWN_KEY' }
    ],
    // The encryption key's kid is not a signing key's: one refetch, as for any unknown kid, then the cooldown.
    fetches: (iss) => [`${iss}${discoveryPath}`, `${iss}/protocol/openid-connect/certs`, `${iss}/protocol/openid-connect/certs`]
  },
  {
    provider: 'Keycloak',
    setup: 'access token, realm roles at realm_access.roles',
    issuer: (base) => `${base}/realms/griddy`,
    audience: 'griddy-api',
    keys: { kind: 'discovery', jwksPath: '/realms/griddy/protocol/openid-connect/certs' },
    keyCount: 1,
    kids: () => ['kc-sig-Zm9vYmFy'],
    keySet: ({ keys, kids }) => [{ kid: kids[0], ...rsa(keys[0] as TestKey), alg: 'RS256', use: 'sig', ...fakeChain(kids[0] as string) }],
    header: (kid) => ({ alg: 'RS256', typ: 'JWT', kid }),
    claims: (iss, now, permissions) => ({ ...keycloakClaims(iss, now, []), realm_access: { roles: ['default-roles-griddy', 'offline_access', ...permissions] } }),
    userId: '9f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f',
    options: { permissionsClaim: ['realm_access', 'roles'] },
    permission: 'leagues:read',
    fetches: (iss) => [`${iss}${discoveryPath}`, `${iss}/protocol/openid-connect/certs`]
  },
  {
    provider: 'Keycloak',
    setup: 'access token, client roles at resource_access.<client>.roles',
    issuer: (base) => `${base}/realms/griddy`,
    audience: 'griddy-api',
    keys: { kind: 'discovery', jwksPath: '/realms/griddy/protocol/openid-connect/certs' },
    keyCount: 1,
    kids: () => ['kc-sig-Zm9vYmFy'],
    keySet: ({ keys, kids }) => [{ kid: kids[0], ...rsa(keys[0] as TestKey), alg: 'RS256', use: 'sig', ...fakeChain(kids[0] as string) }],
    header: (kid) => ({ alg: 'RS256', typ: 'JWT', kid }),
    claims: (iss, now, permissions) => ({
      ...keycloakClaims(iss, now, []),
      resource_access: { 'griddy-api': { roles: permissions }, account: { roles: ['manage-account', 'leagues:read'] } }
    }),
    userId: '9f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f',
    options: { permissionsClaim: ['resource_access', 'griddy-api', 'roles'] },
    permission: 'leagues:read',
    fetches: (iss) => [`${iss}${discoveryPath}`, `${iss}/protocol/openid-connect/certs`]
  },
  {
    provider: 'Microsoft Entra ID',
    setup: 'v2 access token, delegated scopes in scp (space-delimited)',
    issuer: () => `https://login.microsoftonline.com/${tenant}/v2.0`,
    audience: entraApp,
    keys: { kind: 'jwksUrl', path: `/${tenant}/discovery/v2.0/keys` },
    keyCount: 1,
    kids: () => ['nOo3ZDrODXEK1jKWhXslHR_KXEg'],
    keySet: entraKeySet,
    header: (kid) => ({ typ: 'JWT', alg: 'RS256', kid }),
    claims: (iss, now, permissions) => ({
      ...entraClaims(iss, now),
      azpacr: '0',
      name: 'Alice Griddy',
      preferred_username: 'alice@griddy.example',
      scp: permissions.join(' ') || 'User.Read',
      sid: '00a1b2c3-d4e5-46f7-a8b9-c0d1e2f3a4b5'
    }),
    userId: 'AAAAAAAAAAAAAAAAAAAAAGriddyAliceSub',
    options: { permissionsClaim: 'scp' },
    permission: 'Leagues.Read',
    cases: [{ name: 'another scope alongside (space-delimited)', edit: (c) => { c.scp = 'User.Read Leagues.Read' }, expect: 200 }],
    fetches: () => [`/${tenant}/discovery/v2.0/keys`]
  },
  {
    provider: 'Microsoft Entra ID',
    setup: 'v2 access token, app roles in roles (client credentials)',
    issuer: () => `https://login.microsoftonline.com/${tenant}/v2.0`,
    audience: entraApp,
    keys: { kind: 'jwksUrl', path: `/${tenant}/discovery/v2.0/keys` },
    keyCount: 1,
    kids: () => ['nOo3ZDrODXEK1jKWhXslHR_KXEg'],
    keySet: entraKeySet,
    header: (kid) => ({ typ: 'JWT', alg: 'RS256', kid }),
    claims: (iss, now, permissions) => ({ ...entraClaims(iss, now), azpacr: '1', idtyp: 'app', roles: permissions }),
    userId: 'AAAAAAAAAAAAAAAAAAAAAGriddyAliceSub',
    options: { permissionsClaim: 'roles' },
    permission: 'Leagues.Read.All',
    fetches: () => [`/${tenant}/discovery/v2.0/keys`]
  },
  {
    provider: 'Amazon Cognito',
    setup: 'ID token (aud = app client id), groups in cognito:groups',
    issuer: (base) => `${base}/us-east-1_gRiDdY42`,
    audience: cognitoClient,
    keys: { kind: 'well-known' },
    keyCount: 2,
    kids: () => ['Zm9vYmFyQ29nbml0b0tleTE=', 'Zm9vYmFyQ29nbml0b0tleTI='],
    keySet: ({ keys, kids }) => keys.map((key, i) => ({ alg: 'RS256', e: rsa(key).e, kid: kids[i], kty: 'RSA', n: rsa(key).n, use: 'sig' })),
    header: (kid) => ({ kid, alg: 'RS256' }),
    claims: (iss, now, permissions) => ({
      at_hash: 'griddyAtHash',
      sub: 'a1b2c3d4-0000-4000-8000-griddyalice',
      'cognito:groups': permissions,
      email_verified: true,
      iss,
      'cognito:username': 'alice',
      origin_jti: randomUUID(),
      aud: cognitoClient,
      event_id: randomUUID(),
      token_use: 'id',
      auth_time: now - 30,
      exp: now + 3600,
      iat: now,
      jti: randomUUID(),
      email: 'alice@griddy.example'
    }),
    userId: 'a1b2c3d4-0000-4000-8000-griddyalice',
    options: { permissionsClaim: 'cognito:groups' },
    permission: 'leagues:read',
    cases: [{
      // The app is named by client_id, the API only by scope prefixes: no claim says which API the token is for.
      name: 'an access token: client_id and no aud, refused',
      claims: (iss, now) => ({
        sub: 'a1b2c3d4-0000-4000-8000-griddyalice',
        'cognito:groups': ['leagues:read'],
        iss,
        version: 2,
        client_id: cognitoClient,
        origin_jti: randomUUID(),
        event_id: randomUUID(),
        token_use: 'access',
        scope: 'https://api.griddy.example/leagues.read',
        auth_time: now - 30,
        exp: now + 3600,
        iat: now,
        jti: randomUUID(),
        username: 'alice'
      }),
      expect: 'GRIDDY_AUTH_AUDIENCE'
    }],
    fetches: (iss) => [`${iss}/.well-known/jwks.json`]
  },
  {
    provider: 'Google',
    setup: 'Sign in with Google ID token, three keys published at once',
    issuer: () => 'https://accounts.google.com',
    audience: googleClient,
    keys: { kind: 'jwksUrl', path: '/oauth2/v3/certs' },
    keyCount: 3,
    kids: (keys) => keys.map((_key, i) => createHash('sha1').update(`google-${i}`).digest('hex')),
    keySet: ({ keys, kids }) => keys.map((key, i) => ({ e: rsa(key).e, kty: 'RSA', use: 'sig', n: rsa(key).n, alg: 'RS256', kid: kids[i] })),
    header: (kid) => ({ alg: 'RS256', kid, typ: 'JWT' }),
    claims: (iss, now) => ({
      iss,
      azp: googleClient,
      aud: googleClient,
      sub: '110248495921238986420',
      email: 'alice@griddy.example',
      email_verified: true,
      at_hash: 'griddyAtHash',
      iat: now,
      exp: now + 3600
    }),
    userId: '110248495921238986420',
    // Google documents both spellings of its iss; with a jwksUrl the bare one can be accepted too.
    options: { issuer: ['https://accounts.google.com', 'accounts.google.com'], jwksCooldown: 60_000 },
    // Google's tokens carry no permissions: routes that need one are for your own claims.
    cases: [
      { name: 'iss without the scheme, as Google also issues', edit: (c) => { c.iss = 'accounts.google.com' }, expect: 200 },
      { name: 'signed with the second key, first seen now', key: 1, expect: 200 },
      { name: 'signed with the third key, first seen now', key: 2, expect: 200 }
    ],
    // One fetch per key first seen (get-jwks fetches per key), none refused for the cooldown.
    fetches: () => ['/oauth2/v3/certs', '/oauth2/v3/certs', '/oauth2/v3/certs']
  },
  {
    provider: 'Firebase Authentication',
    setup: 'ID token, custom claims set with the Admin SDK',
    issuer: () => 'https://securetoken.google.com/griddy-app',
    audience: 'griddy-app',
    keys: { kind: 'jwksUrl', path: '/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com' },
    keyCount: 2,
    kids: (keys) => keys.map((_key, i) => createHash('sha1').update(`firebase-${i}`).digest('hex')),
    keySet: ({ keys, kids }) => keys.map((key, i) => ({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: kids[i], n: rsa(key).n, e: rsa(key).e })),
    header: (kid) => ({ alg: 'RS256', kid, typ: 'JWT' }),
    claims: (iss, now, permissions) => ({
      permissions,
      iss,
      aud: 'griddy-app',
      auth_time: now - 30,
      user_id: 'fbUidAliceGriddy01',
      sub: 'fbUidAliceGriddy01',
      iat: now,
      exp: now + 3600,
      email: 'alice@griddy.example',
      email_verified: true,
      firebase: { identities: { email: ['alice@griddy.example'] }, sign_in_provider: 'password' }
    }),
    userId: 'fbUidAliceGriddy01',
    options: { jwksCooldown: 60_000 },
    permission: 'leagues:read',
    cases: [{ name: 'signed with the other published key, first seen now', key: 1, expect: 200 }],
    fetches: () => Array(2).fill('/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com')
  }
]

/** A Clerk v2 session token's own claims, with the `aud` added in Customize session token. */
function clerkSession (iss: string, now: number): Record<string, unknown> {
  return {
    azp: app,
    exp: now + 60,
    fva: [0, -1],
    iat: now,
    iss,
    nbf: now - 10,
    sid: 'sess_2griddySession',
    sts: 'active',
    sub: 'user_2griddyUser',
    v: 2,
    aud: 'https://api.griddy.example'
  }
}

/**
 * Clerk's compact v2 organization claims granting `org:<feature>:<permission>`
 * names: `fea` lists the features (a user feature first, which grants
 * nothing here), `o.per` the permission names, `o.fpm` one bitmask per
 * organization feature (bit i grants `per[i]`). Other names go to the
 * custom `permissions` claim.
 */
function clerkOrganization (permissions: string[]): Record<string, unknown> {
  const per = ['read', 'manage']
  const masks = new Map<string, number>()
  const custom: string[] = []
  for (const name of permissions) {
    const [scope, feature, permission] = name.split(':')
    const bit = per.indexOf(permission as string)
    if (scope === 'org' && feature !== undefined && bit !== -1) masks.set(feature, (masks.get(feature) ?? 0) | (1 << bit))
    else custom.push(name)
  }
  return {
    fea: ['u:profile', ...[...masks.keys()].map((feature) => `o:${feature}`)].join(','),
    o: { id: 'org_2griddyOrg', rol: 'admin', slg: 'griddy', per: per.join(','), fpm: [...masks.values()].join(',') },
    permissions: custom
  }
}

function keycloakClaims (iss: string, now: number, permissions: string[]): Record<string, unknown> {
  return {
    exp: now + 300,
    iat: now,
    auth_time: now - 30,
    jti: randomUUID(),
    iss,
    aud: ['griddy-api', 'account'],
    sub: '9f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f',
    typ: 'Bearer',
    azp: 'griddy-web',
    sid: randomUUID(),
    acr: '1',
    'allowed-origins': [app],
    realm_access: { roles: ['default-roles-griddy', 'offline_access'] },
    resource_access: { account: { roles: ['manage-account'] } },
    scope: ['openid', 'profile', 'email', ...permissions].join(' '),
    email_verified: true,
    preferred_username: 'alice'
  }
}

/** Entra's keys: `x5c`, `x5t` (equal to the kid), its issuer, and no `alg`. */
function entraKeySet ({ keys, kids }: RowKeys): JWK[] {
  return keys.map((key, i) => {
    const { x5c } = fakeChain(kids[i] as string)
    return {
      use: 'sig',
      kid: kids[i],
      x5t: kids[i],
      ...rsa(key),
      x5c,
      cloud_instance_name: 'microsoftonline.com',
      issuer: `https://login.microsoftonline.com/${tenant}/v2.0`
    }
  })
}

function entraClaims (iss: string, now: number): Record<string, unknown> {
  return {
    aud: entraApp,
    iss,
    iat: now,
    nbf: now,
    exp: now + 3900,
    aio: 'griddyAio',
    azp: entraClient,
    oid: 'c0ffee00-1234-4abc-9def-000000griddy',
    rh: '0.griddy.',
    sub: 'AAAAAAAAAAAAAAAAAAAAAGriddyAliceSub',
    tid: tenant,
    uti: 'griddyUti',
    ver: '2.0'
  }
}

/** The plugin's key options for a row, and the discovery document its fake IdP serves (if any). */
function keyOptions (row: ProviderRow, idp: FakeIdp, issuer: string): Partial<GriddyAuthOptions> {
  switch (row.keys.kind) {
    case 'well-known':
      return {}
    case 'jwksUrl':
      return { jwksUrl: idp.url + row.keys.path }
    case 'discovery': {
      // Served at any path ending in the discovery path: the fetch log says which one was asked.
      idp.discovery = {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: idp.url + row.keys.jwksPath,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256']
      }
      return { discovery: true }
    }
  }
}

/** The path of the fake IdP where the row's provider publishes its key set. */
function publishedAt (row: ProviderRow): string {
  switch (row.keys.kind) {
    case 'well-known':
      // The issuer's own path (Cognito's user pool id), without the trailing slash (Auth0's).
      return `${row.issuer('').replace(/\/$/, '')}/.well-known/jwks.json`
    case 'jwksUrl':
      return row.keys.path
    case 'discovery':
      return row.keys.jwksPath
  }
}

function routes (permission: string | undefined) {
  return (app: FastifyInstance): void => {
    app.get('/resource', permission === undefined ? {} : { config: { permissions: permission } }, async (request) => ({
      userId: request.auth?.userId,
      permissions: request.auth?.permissions
    }))
  }
}

async function runRow (t: Tap, row: ProviderRow): Promise<void> {
  const keys = await Promise.all(Array.from({ length: row.keyCount }, (_v, i) => poolKey(i)))
  const kids = row.kids(keys)
  const idp = await createFakeIdp({ jwks: { keys: row.keySet({ keys, kids }) }, paths: [publishedAt(row)] })
  t.teardown(() => idp.close())
  const issuer = row.issuer(idp.url)
  const issuerPath = issuer.startsWith(idp.url) ? issuer.slice(idp.url.length).replace(/\/$/, '') : ''
  const options: GriddyAuthOptions = { issuer, audience: row.audience, ...keyOptions(row, idp, issuer), ...row.options }
  const server = await buildApp(t, options, { routes: routes(row.permission) })

  const sign = (claims: Record<string, unknown>, key = 0): string =>
    signToken(row.header(kids[key] as string), claims, keys[key] as TestKey)
  const granted = row.permission === undefined ? [] : [row.permission]

  // The cases every row has, then the row's own.
  const withPermission = sign(row.claims(issuer, nowSeconds(), granted))
  let res = await get(server, '/resource', withPermission)
  t.equal(res.statusCode, 200, 'a token of this provider is accepted')
  const body = res.json() as { userId: string, permissions: string[] }
  t.equal(body.userId, row.userId, 'request.auth.userId is its sub')
  if (row.permission === undefined) t.same(body.permissions, [], 'no permissions: this provider puts none in its tokens')
  else t.ok(Array.isArray(body.permissions) && body.permissions.includes(row.permission), `request.auth.permissions holds ${row.permission}, read from where the provider puts it`)

  if (row.permission !== undefined) {
    const without = sign(row.claims(issuer, nowSeconds(), ['something:else']))
    assertFailure(t, await get(server, '/resource', without), forbidden(row.permission), without, 'without the permission:')
  }
  const elsewhere = row.claims(issuer, nowSeconds(), granted)
  elsewhere.aud = 'https://another-api.example'
  assertFailure(t, await get(server, '/resource', sign(elsewhere)), tokenFailure('GRIDDY_AUTH_AUDIENCE'), undefined, 'a token for another API:')

  for (const { name, edit, claims, key, expect } of row.cases ?? []) {
    const payload = claims?.(issuer, nowSeconds()) ?? row.claims(issuer, nowSeconds(), granted)
    edit?.(payload)
    const token = sign(payload, key)
    res = await get(server, '/resource', token)
    if (expect === 200) t.equal(res.statusCode, 200, name)
    else if (expect === 'GRIDDY_AUTH_FORBIDDEN') assertFailure(t, res, forbidden(row.permission as string), token, `${name}:`)
    else assertFailure(t, res, tokenFailure(expect), token, `${name}:`)
  }

  t.same(idp.requests, row.fetches(issuerPath), 'the plugin fetched only these, in this order')
}

for (const row of rows) {
  const name = `${row.provider}: ${row.setup}`
  t.test(name, (t) => runRow(t, row))
}
