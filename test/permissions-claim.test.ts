/**
 * `permissionsClaim` (SPEC §3): a claim name read literally, a path into
 * nested claims (Keycloak's `realm_access.roles`, `resource_access.<client>.roles`),
 * or a function. What a client sees for each (200 with `request.auth.permissions`,
 * or 403), what start-up refuses, and what a failing function logs.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createTestIssuer, type TestIssuer } from '../lib/testing/index'
import type { GriddyAuthOptions } from '../lib/index'
import { assertFailure, assertSafe, buildApp, captureLogs, forbidden, get, rawToken, type Tap } from './helpers'

let issuer: TestIssuer

t.before(async () => {
  issuer = await createTestIssuer()
})

/** `/private` answers the permissions; `/needs?p=x` needs permission x (a route per name used below). */
const needed = ['leagues:read', 'Object']
function routes (app: FastifyInstance): void {
  app.get('/private', async (request) => request.auth?.permissions)
  for (const [index, name] of needed.entries()) {
    app.get(`/needs/${index}`, { config: { permissions: name } }, async () => 'ok')
  }
}

async function appWith (t: Tap, permissionsClaim: unknown, extra: Record<string, unknown> = {}): Promise<FastifyInstance> {
  return await buildApp(t, { ...issuer.pluginOptions, permissionsClaim, ...extra } as GriddyAuthOptions, { routes })
}

interface Case {
  name: string
  option: unknown
  claims: Record<string, unknown>
  /** What `request.auth.permissions` must be. */
  granted: string[]
}

const keycloakRealm = ['realm_access', 'roles']
const keycloakClient = ['resource_access', 'griddy-api', 'roles']

const cases: Case[] = [
  // A name is one claim, dots, slashes and all.
  { name: 'an Auth0 namespaced claim', option: 'https://griddy.example/permissions', claims: { 'https://griddy.example/permissions': ['leagues:read'] }, granted: ['leagues:read'] },
  { name: 'a dotted name is never split', option: 'realm_access.roles', claims: { realm_access: { roles: ['leagues:read'] } }, granted: [] },
  { name: 'a dotted name, present literally', option: 'realm_access.roles', claims: { 'realm_access.roles': 'leagues:read' }, granted: ['leagues:read'] },
  { name: 'a one-step path is a name', option: ['scp'], claims: { scp: 'leagues:read other' }, granted: ['leagues:read', 'other'] },
  // Paths.
  { name: 'Keycloak realm roles', option: keycloakRealm, claims: { realm_access: { roles: ['leagues:read', 'offline_access'] } }, granted: ['leagues:read', 'offline_access'] },
  { name: 'Keycloak client roles', option: keycloakClient, claims: { resource_access: { 'griddy-api': { roles: ['leagues:read'] }, account: { roles: ['manage-account'] } } }, granted: ['leagues:read'] },
  { name: 'another client\'s roles are not ours', option: keycloakClient, claims: { resource_access: { account: { roles: ['leagues:read'] } } }, granted: [] },
  { name: 'a path ending in a space-delimited string', option: keycloakRealm, claims: { realm_access: { roles: ' leagues:read  b ' } }, granted: ['leagues:read', 'b'] },
  { name: 'a path ending in a list with non-strings', option: keycloakRealm, claims: { realm_access: { roles: ['leagues:read', 5, null, ['x']] } }, granted: ['leagues:read'] },
  { name: 'a path ending in an object', option: keycloakRealm, claims: { realm_access: { roles: { 'leagues:read': true } } }, granted: [] },
  { name: 'a missing first step', option: keycloakRealm, claims: {}, granted: [] },
  { name: 'a missing last step', option: keycloakRealm, claims: { realm_access: {} }, granted: [] },
  { name: 'a null step', option: keycloakRealm, claims: { realm_access: null }, granted: [] },
  { name: 'a string step', option: keycloakRealm, claims: { realm_access: 'roles' }, granted: [] },
  { name: 'a number step', option: keycloakRealm, claims: { realm_access: 5 }, granted: [] },
  { name: 'an array step (paths step into objects only)', option: ['groups', '0'], claims: { groups: [['leagues:read']] }, granted: [] },
  { name: 'a null leaf', option: keycloakRealm, claims: { realm_access: { roles: null } }, granted: [] },
  // Nothing is read from Object.prototype: without own-property reads these would grant "Object" or the constructor's source.
  { name: 'constructor.name', option: ['constructor', 'name'], claims: {}, granted: [] },
  { name: '__proto__.constructor.name', option: ['__proto__', 'constructor', 'name'], claims: {}, granted: [] },
  { name: 'a claim named constructor', option: 'constructor', claims: {}, granted: [] },
  { name: 'realm_access.constructor.name', option: ['realm_access', 'constructor', 'name'], claims: { realm_access: {} }, granted: [] },
  { name: 'roles.toString', option: ['realm_access', 'roles', 'toString'], claims: { realm_access: { roles: ['leagues:read'] } }, granted: [] },
  { name: 'prototype', option: ['constructor', 'prototype', 'constructor', 'name'], claims: {}, granted: [] },
  // Functions.
  { name: 'a function returning a list', option: (c: Record<string, any>) => [...c.a, 'b'], claims: { a: ['leagues:read'] }, granted: ['leagues:read', 'b'] },
  { name: 'a function returning a space-delimited string', option: (c: Record<string, any>) => `${c.x as string} leagues:read`, claims: { x: 'a' }, granted: ['a', 'leagues:read'] },
  { name: 'a function returning a number', option: () => 42, claims: {}, granted: [] },
  { name: 'a function returning undefined', option: () => undefined, claims: {}, granted: [] },
  { name: 'a function returning an object', option: () => ({ 'leagues:read': true }), claims: {}, granted: [] },
  { name: 'a function returning a list with non-strings', option: () => ['leagues:read', 1, null, { a: 1 }, ''], claims: {}, granted: ['leagues:read'] },
  { name: 'a function reading a nested format', option: (c: Record<string, any>) => c.groups.map((g: { name: string }) => `group:${g.name}`), claims: { groups: [{ name: 'x' }, { name: 'y' }] }, granted: ['group:x', 'group:y'] }
]

t.test('where permissions are read from: what a client sees', async (t) => {
  for (const c of cases) {
    const app = await appWith(t, c.option)
    const token = issuer.sign({ sub: 'user_1', ...c.claims })
    const res = await get(app, '/private', token)
    assertSafe(t, res, token, c.name)
    t.equal(res.statusCode, 200, `${c.name}: a valid token passes a route needing no permission`)
    t.same(res.json(), c.granted, `${c.name}: request.auth.permissions`)
    for (const [index, name] of needed.entries()) {
      const needs = await get(app, `/needs/${index}`, token)
      if (c.granted.includes(name)) t.equal(needs.statusCode, 200, `${c.name}: ${name} granted`)
      else assertFailure(t, needs, forbidden(name), token, `${c.name}: ${name} needed:`)
    }
  }
})

t.test('a JSON member named __proto__ is a claim like another, and pollutes nothing', async (t) => {
  const app = await appWith(t, ['__proto__', 'roles'])
  const base = JSON.stringify({ iss: issuer.issuer, aud: issuer.audience, sub: 'user_1', exp: Math.floor(Date.now() / 1000) + 60 })
  const header = JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: issuer.key.kid })
  const token = rawToken(header, `${base.slice(0, -1)},"__proto__":{"roles":["leagues:read"]}}`, issuer.key)
  const res = await get(app, '/private', token)
  assertSafe(t, res, token)
  t.equal(res.statusCode, 200)
  // Whatever the JSON parser made of the member, Object.prototype gave nothing and got nothing.
  t.ok(Array.isArray(res.json()), 'permissions are a list')
  t.notOk(res.json().includes('Object'), 'nothing read from Object.prototype')
  t.equal(({} as Record<string, unknown>).roles, undefined, 'Object.prototype untouched')
})

t.test('a function gets the whole verified payload, frozen, once per token', async (t) => {
  const seen: unknown[] = []
  const app = await appWith(t, (claims: Readonly<Record<string, unknown>>) => {
    seen.push(claims)
    return claims.permissions
  })
  const token = issuer.sign({ sub: 'user_1', sid: 'sess_1', permissions: ['leagues:read'], nested: { a: [1] } })
  for (let i = 0; i < 3; i++) t.equal((await get(app, '/needs/0', token)).statusCode, 200)
  t.equal(seen.length, 1, 'called once: the verified-token cache keeps its result')
  const claims = seen[0] as Record<string, unknown>
  t.same(claims, JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()), 'the whole payload')
  t.ok(Object.isFrozen(claims) && Object.isFrozen(claims.nested), 'deeply frozen: the function cannot change what handlers see')
  await get(app, '/needs/0', issuer.sign({ sub: 'user_2', permissions: ['leagues:read'] }))
  t.equal(seen.length, 2, 'a new token, a new call')
})

t.test('a function that throws grants nothing, never a 500, and is logged once', async (t) => {
  const problems: Array<[string, (claims: Readonly<Record<string, unknown>>) => unknown, RegExp]> = [
    ['throws an Error', (c) => { throw new Error(`no groups for ${String(c.sub)}`) }, /^Error: no groups for user_\d$/],
    ['throws a TypeError reading a missing claim', (c) => (c.groups as string[]).map((g) => g), /^TypeError: /],
    ['throws a string holding the claims', (c) => { throw JSON.stringify(c) }, /^a thrown string$/],
    ['writes to the frozen claims', (c) => { (c as Record<string, unknown>).permissions = ['leagues:read']; return c.permissions }, /^TypeError: /],
    ['returns a Promise', async (c) => c.permissions, /returned a Promise/],
    ['returns a rejected Promise', async () => { throw new Error('later') }, /returned a Promise/]
  ]
  for (const [name, option, problem] of problems) {
    const logs = captureLogs()
    const app = await buildApp(t, { ...issuer.pluginOptions, permissionsClaim: option }, {
      routes,
      fastify: { logger: { level: 'info', stream: logs.stream } }
    })
    const tokens: string[] = []
    for (let i = 0; i < 3; i++) {
      const token = issuer.sign({ sub: `user_${i}`, permissions: ['leagues:read'] })
      tokens.push(token)
      assertFailure(t, await get(app, '/needs/0', token), forbidden('leagues:read'), token, `${name}, token ${i}:`)
      const open = await get(app, '/private', token)
      t.equal(open.statusCode, 200, `${name}: a route needing no permission still answers`)
      t.same(open.json(), [], `${name}: no permission granted`)
    }
    await new Promise((resolve) => setImmediate(resolve))
    const errors = logs.lines.filter((line) => line.level === 50)
    t.equal(errors.length, 1, `${name}: one error line for three tokens`)
    t.match(errors[0], { option: 'permissionsClaim', msg: /^griddy-auth: the permissionsClaim function failed/ }, `${name}: the line names the option`)
    t.match(String(errors[0]?.problem), problem, `${name}: and says what went wrong`)
    for (const token of tokens) {
      t.notOk(logs.raw.some((line) => line.includes(token) || line.includes(token.split('.')[1] as string)), `${name}: no log line holds the token or its payload`)
    }
  }
})

t.test('invalid permissionsClaim values stop start-up, naming the option', async (t) => {
  const sparse: unknown[] = ['a']
  sparse[2] = 'c'
  const invalid: Array<[string, unknown]> = [
    ['an empty name', ''],
    ['an empty path', []],
    ['a path with an empty step', ['realm_access', '']],
    ['a path with a number step', ['resource_access', 0, 'roles']],
    ['a path with a null step', [null]],
    ['a path with a nested array step', [['realm_access', 'roles']]],
    ['a sparse path', sparse],
    ['a number', 5],
    ['an object', { path: ['a'] }],
    ['true', true],
    ['null', null]
  ]
  for (const [name, value] of invalid) {
    await t.rejects(appWith(t, value), { name: 'TypeError', message: /^fastify-griddy-auth: option "permissionsClaim" / }, name)
  }
  await t.rejects(appWith(t, ['a', 5]), { message: 'fastify-griddy-auth: option "permissionsClaim" must be a path of non-empty claim names: step 1 is number' })
  await t.rejects(appWith(t, []), { message: 'fastify-griddy-auth: option "permissionsClaim" must not be an empty path' })
})

t.test('a path is copied at start-up: later changes to the array have no effect', async (t) => {
  const path = ['realm_access', 'roles']
  const app = await appWith(t, path)
  path[1] = 'other'
  path.push('x')
  const token = issuer.sign({ sub: 'user_1', realm_access: { roles: ['leagues:read'], other: { x: ['Object'] } } })
  t.same((await get(app, '/private', token)).json(), ['leagues:read'])
})
