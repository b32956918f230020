/**
 * Type tests: what a user's TypeScript project sees, with no casts.
 * Run by tstyche in `npm test`.
 */
import Fastify, { type FastifyRequest } from 'fastify'
import { expect, test } from 'tstyche'
import type { JwtPayload } from '@clerk/shared/types'
import griddyAuth, {
  griddyAuth as named,
  GriddyAuthError,
  clerkOrganizationPermissions,
  errorCodes,
  type AuthContext,
  type GriddyAuthErrorCode,
  type GriddyAuthOptions,
  type Permission,
  type PermissionsClaim,
  type TokenClaims
} from '../lib/index'
import { createTestIssuer, type TestIssuer } from '../lib/testing/index'

const app = Fastify()

test('the default and the named export are the same plugin', () => {
  expect(named).type.toBe(griddyAuth)
  expect(app.register).type.toBeCallableWith(griddyAuth, { issuer: 'https://a', audience: 'b' })
})

test('options are typed: required issuer and audience, known option names only', () => {
  expect<GriddyAuthOptions>().type.toBeAssignableFrom({ issuer: ['https://a', 'https://b'], audience: 'api', cache: false as const })
  expect<GriddyAuthOptions>().type.not.toBeAssignableFrom({ audience: 'api' })
  expect<GriddyAuthOptions>().type.not.toBeAssignableFrom({ issuer: 'https://a', audience: 'api', jwksTimeout: '5s' })
  expect(app.register).type.not.toBeCallableWith(griddyAuth, { issuer: 'https://a' })
})

test('permissionsClaim: a claim name, a path, or a function of the claims', () => {
  const base = { issuer: 'https://a', audience: 'b' }
  expect<GriddyAuthOptions>().type.toBeAssignableFrom({ ...base, permissionsClaim: 'https://griddy.example/permissions' })
  expect<GriddyAuthOptions>().type.toBeAssignableFrom({ ...base, permissionsClaim: ['realm_access', 'roles'] })
  expect<GriddyAuthOptions>().type.toBeAssignableFrom({ ...base, permissionsClaim: ['resource_access', 'griddy-api', 'roles'] as const })
  const computed: string[] = ['realm_access', 'roles']
  expect<GriddyAuthOptions>().type.toBeAssignableFrom({ ...base, permissionsClaim: computed })
  expect<GriddyAuthOptions>().type.toBeAssignableFrom({ ...base, permissionsClaim: (claims: Readonly<Record<string, unknown>>) => claims.scp })
  expect<GriddyAuthOptions>().type.toBeAssignableFrom({ ...base, permissionsClaim: () => undefined })
  expect<GriddyAuthOptions>().type.toBeAssignableFrom({ ...base, permissionsClaim: clerkOrganizationPermissions })

  expect<GriddyAuthOptions>().type.not.toBeAssignableFrom({ ...base, permissionsClaim: 5 })
  expect<GriddyAuthOptions>().type.not.toBeAssignableFrom({ ...base, permissionsClaim: ['realm_access', 5] })
  expect<GriddyAuthOptions>().type.not.toBeAssignableFrom({ ...base, permissionsClaim: [['realm_access', 'roles']] })
  expect<GriddyAuthOptions>().type.not.toBeAssignableFrom({ ...base, permissionsClaim: { path: ['a'] } })
  expect<GriddyAuthOptions>().type.not.toBeAssignableFrom({ ...base, permissionsClaim: (claims: string) => claims })
  expect<GriddyAuthOptions>().type.not.toBeAssignableFrom({ ...base, permissionsClaim: (claims: TokenClaims, request: string) => [claims, request] })
  expect<PermissionsClaim>().type.toBe<string | readonly string[] | ((claims: TokenClaims) => unknown)>()
})

test('a permissionsClaim function sees unknown claims, and permissions as the shapes the plugin reads', () => {
  app.register(griddyAuth, {
    issuer: 'https://a',
    audience: 'b',
    permissionsClaim: (claims) => {
      expect(claims).type.toBe<TokenClaims>()
      expect(claims.groups).type.toBe<unknown>()
      expect(claims.permissions).type.toBe<string | readonly string[] | undefined>()
      return claims.groups
    }
  })
  // @ts-expect-error Cannot assign to 'permissions' because it is a read-only property
  const write = (claims: TokenClaims): void => { claims.permissions = [] }
  expect(write).type.toBe<(claims: TokenClaims) => void>()
})

test('clerkOrganizationPermissions: the SPEC usage compiles with no cast', () => {
  app.register(griddyAuth, {
    issuer: 'https://clerk.example.com',
    audience: 'https://api.example.com',
    permissionsClaim: (c) => [...clerkOrganizationPermissions(c), ...(c.permissions ?? [])]
  })
  const options: GriddyAuthOptions = {
    issuer: 'https://clerk.example.com',
    audience: 'https://api.example.com',
    permissionsClaim: (c) => [...clerkOrganizationPermissions(c), ...(c.permissions ?? [])]
  }
  expect(options.permissionsClaim).type.toBe<PermissionsClaim | undefined>()
  expect(clerkOrganizationPermissions({ v: 2 })).type.toBe<string[]>()
  expect(clerkOrganizationPermissions).type.toBeCallableWith({} as AuthContext['claims'])
  expect(clerkOrganizationPermissions).type.toBeCallableWith({} as JwtPayload) // Clerk's own payload type
  expect(clerkOrganizationPermissions).type.not.toBeCallableWith('a.b.c')
  expect(clerkOrganizationPermissions).type.not.toBeCallableWith()
})

test('discovery is a boolean option', () => {
  expect(app.register).type.toBeCallableWith(griddyAuth, { issuer: 'https://sso.example.com/realms/griddy', audience: 'api', discovery: true })
  expect<GriddyAuthOptions['discovery']>().type.toBe<boolean | undefined>()
  expect<GriddyAuthOptions>().type.not.toBeAssignableFrom({ issuer: 'https://a', audience: 'api', discovery: 'yes' })
})

test('route config accepts permissions and public, and rejects wrong shapes', () => {
  expect(app.get).type.toBeCallableWith('/a', { config: { permissions: 'leagues:read' } }, async () => 'ok')
  expect(app.get).type.toBeCallableWith('/a', { config: { permissions: ['leagues:read', 'leagues:write'] } }, async () => 'ok')
  expect(app.get).type.toBeCallableWith('/a', { config: { public: true } }, async () => 'ok')
  expect(app.get).type.toBeCallableWith('/a', async () => 'ok')
  expect(app.get).type.not.toBeCallableWith('/a', { config: { permissions: 42 } }, async () => 'ok')
  expect(app.get).type.not.toBeCallableWith('/a', { config: { public: 'yes' } }, async () => 'ok')
})

test('without a PermissionRegistry declaration, any string is a permission', () => {
  // The declared case is types/registry/, its own project: an augmentation is global.
  expect<Permission>().type.toBe<string>()
  expect(app.get).type.toBeCallableWith('/a', { config: { permissions: ['any:thing', `built:${String(1)}`] } }, async () => 'ok')
  app.get('/b', async (request) => {
    expect(request.authorize).type.toBeCallableWith('whatever:name')
    return 'ok'
  })
})

test('request.auth and request.authorize are typed on every request', () => {
  app.get('/me', { config: { permissions: ['me:read'] } }, async (request) => {
    expect(request.auth).type.toBe<AuthContext | null>()
    const context = await request.authorize('leagues:admin')
    expect(context).type.toBe<AuthContext>()
    expect(context.userId).type.toBe<string>()
    expect(context.sessionId).type.toBe<string | undefined>()
    expect(context.permissions).type.toBe<readonly string[]>()
    expect(context.claims).type.toBe<Readonly<Record<string, unknown>>>()
    return context.userId
  })
  expect<FastifyRequest['authorize']>().type.toBeCallableWith()
  expect<FastifyRequest['authorize']>().type.toBeCallableWith(['a', 'b'])
  expect<FastifyRequest['authorize']>().type.not.toBeCallableWith(1)
})

test('AuthContext is read-only', () => {
  const context = {} as AuthContext
  // @ts-expect-error Cannot assign to 'userId' -- a handler cannot change who the caller is
  context.userId = 'x'
  // @ts-expect-error Property 'push' does not exist -- nor grant itself a permission
  context.permissions.push('admin')
})

test('fastify.griddyAuth.verify verifies a bare token', () => {
  expect(app.griddyAuth.verify('token')).type.toBe<Promise<AuthContext>>()
  expect(app.griddyAuth.verify).type.not.toBeCallableWith(42)
})

test('errors have a stable code union', () => {
  const err = new GriddyAuthError('GRIDDY_AUTH_EXPIRED', 'Token has expired', {})
  expect(err.code).type.toBe<GriddyAuthErrorCode>()
  expect(err.statusCode).type.toBe<number>()
  expect<'GRIDDY_AUTH_EXPIRED'>().type.toBeAssignableTo<GriddyAuthErrorCode>()
  expect<'GRIDDY_AUTH_NOPE'>().type.not.toBeAssignableTo<GriddyAuthErrorCode>()
  expect(errorCodes).type.toBe<readonly GriddyAuthErrorCode[]>()
})

test('the testing kit is typed', async () => {
  const issuer = await createTestIssuer({ issuer: 'https://test.local', audience: 'api' })
  expect(issuer).type.toBe<TestIssuer>()
  expect(issuer.pluginOptions).type.toBeAssignableTo<GriddyAuthOptions>()
  expect(issuer.sign({ sub: 'user_1' }, { expiresIn: -10, alg: 'none', kid: null })).type.toBe<string>()
  expect(issuer.sign).type.not.toBeCallableWith({ sub: 'u' }, { expiresIn: '1h' })
})
