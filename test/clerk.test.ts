/**
 * Clerk, against Clerk's own libraries (dev dependencies only):
 * - clerkOrganizationPermissions decodes v2 claims (`fea`, `o.per`, `o.fpm`)
 *   exactly as @clerk/shared's `__experimental_JWTPayloadToAuthObjectProperties`
 *   does: a table of readable cases, then a differential run on generated
 *   claim sets (FUZZ_RUNS sets its size, FUZZ_SEED its seed);
 * - a v2 session token signed by @clerk/backend's `signJwt` is accepted by
 *   the plugin, and routes needing `org:<feature>:<permission>` answer as
 *   Clerk's own `has({ permission })` decides;
 * - tokens from fastify-griddy-auth/testing pass @clerk/backend's
 *   `verifyToken` with a networkless `jwtKey` and `authorizedParties`.
 */
import t from 'tap'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import { verifyToken } from '@clerk/backend'
import { signJwt } from '@clerk/backend/jwt'
import { __experimental_JWTPayloadToAuthObjectProperties as clerkAuthObject } from '@clerk/shared/jwtPayloadParser'
import { createCheckAuthorization } from '@clerk/shared/authorization'
import type { JwtPayload } from '@clerk/shared/types'
import { clerkOrganizationPermissions } from '../lib/index'
import { createTestIssuer, createTestKey, type TestKey } from '../lib/testing/index'
import { assertFailure, assertSafe, buildApp, forbidden, get, type Tap } from './helpers'

type Outcome = { threw: true } | { threw: false, permissions: string[] }

/** What Clerk's SDK makes of the claims: its orgPermissions, or that it threw. */
function clerkSays (claims: Record<string, unknown>): Outcome {
  let orgPermissions: unknown
  try {
    orgPermissions = clerkAuthObject(claims as JwtPayload).orgPermissions
  } catch {
    return { threw: true }
  }
  if (claims.v === 2) return { threw: false, permissions: orgPermissions as string[] ?? [] }
  // v1: Clerk hands org_permissions on as it is; ours is the strings of an array.
  return { threw: false, permissions: Array.isArray(orgPermissions) ? orgPermissions.filter((p): p is string => typeof p === 'string') : [] }
}

function weSay (claims: Record<string, unknown>): Outcome {
  try {
    return { threw: false, permissions: clerkOrganizationPermissions(claims) }
  } catch (err) {
    if (!(err instanceof TypeError) || !err.message.startsWith('clerkOrganizationPermissions: ')) throw err
    return { threw: true }
  }
}

const organization = { id: 'org_2vX', slg: 'griddy', rol: 'admin' }

t.test('clerkOrganizationPermissions: readable cases, each agreeing with Clerk', async (t) => {
  const cases: Array<{ name: string, claims: Record<string, unknown>, expected: string[] | 'throws' }> = [
    {
      name: 'the example of Clerk\'s session-token documentation',
      claims: { v: 2, fea: 'o:dashboard,o:teams', o: { ...organization, per: 'manage,read', fpm: '3,2' } },
      expected: ['org:dashboard:manage', 'org:dashboard:read', 'org:teams:read']
    },
    {
      name: 'two features, two permissions, bitmasks 3 and 1',
      claims: { v: 2, fea: 'o:billing,o:teams', o: { ...organization, per: 'manage,read', fpm: '3,1' } },
      expected: ['org:billing:manage', 'org:billing:read', 'org:teams:manage']
    },
    {
      name: 'user features are skipped; ou and uo count for the organization',
      claims: { v: 2, fea: 'u:profile,o:billing,uo:teams,ou:reports', o: { ...organization, per: 'read,manage', fpm: '1,2,3' } },
      expected: ['org:billing:read', 'org:teams:manage', 'org:reports:read', 'org:reports:manage']
    },
    {
      name: 'spaces around elements are trimmed',
      claims: { v: 2, fea: ' o:billing , o:teams', o: { ...organization, per: ' read , manage', fpm: ' 2 , 1 ' } },
      expected: ['org:billing:manage', 'org:teams:read']
    },
    {
      name: 'fpm shorter than the features: the rest grant nothing',
      claims: { v: 2, fea: 'o:a,o:b,o:c', o: { ...organization, per: 'read', fpm: '1' } },
      expected: ['org:a:read']
    },
    {
      name: 'fpm longer than the features, and bits beyond per: ignored',
      claims: { v: 2, fea: 'o:a', o: { ...organization, per: 'read', fpm: '7,1,1' } },
      expected: ['org:a:read']
    },
    {
      name: 'a mask that is not a decimal number grants nothing',
      claims: { v: 2, fea: 'o:a,o:b,o:c,o:d', o: { ...organization, per: 'read', fpm: '-1,1.0,0x1,1' } },
      expected: ['org:d:read']
    },
    {
      name: 'masks wider than 2^53 are exact (leading zeros too)',
      claims: { v: 2, fea: 'o:wide', o: { ...organization, per: Array.from({ length: 70 }, (_, i) => `p${i}`).join(','), fpm: `00${(2n ** 69n + 1n).toString()}` } },
      expected: ['org:wide:p0', 'org:wide:p69']
    },
    { name: 'no o (no active organization)', claims: { v: 2, fea: 'o:billing', permissions: ['x'] }, expected: [] },
    { name: 'o without per', claims: { v: 2, fea: 'o:billing', o: { ...organization, fpm: '1' } }, expected: [] },
    { name: 'o without fpm', claims: { v: 2, fea: 'o:billing', o: { ...organization, per: 'read' } }, expected: [] },
    { name: 'no fea', claims: { v: 2, o: { ...organization, per: 'read', fpm: '1' } }, expected: [] },
    { name: 'a feature scope Clerk does not know is skipped', claims: { v: 2, fea: 'x:a,o:b', o: { ...organization, per: 'read', fpm: '1' } }, expected: ['org:b:read'] },
    { name: 'a fea element without a scope: Clerk throws', claims: { v: 2, fea: 'o:a,billing', o: { ...organization, per: 'read', fpm: '1' } }, expected: 'throws' },
    { name: 'a trailing comma in fea is an element without a scope', claims: { v: 2, fea: 'o:a,', o: { ...organization, per: 'read', fpm: '1' } }, expected: 'throws' },
    { name: 'fea not a string: Clerk throws', claims: { v: 2, fea: ['o:a'], o: { ...organization, per: 'read', fpm: '1' } }, expected: 'throws' },
    { name: 'o.per not a string: Clerk throws', claims: { v: 2, fea: 'o:a', o: { ...organization, per: ['read'], fpm: '1' } }, expected: 'throws' },
    { name: 'v1: org_permissions', claims: { org_id: 'org_1', org_permissions: ['org:billing:manage', 'org:teams:read'] }, expected: ['org:billing:manage', 'org:teams:read'] },
    { name: 'v1 claims in a v2 token are not read', claims: { v: 2, org_permissions: ['org:billing:manage'] }, expected: [] },
    { name: 'v "2" (a string) is v1, as for Clerk', claims: { v: '2', org_permissions: ['org:a:b'], fea: 'o:x', o: { per: 'read', fpm: '1' } }, expected: ['org:a:b'] },
    { name: 'no claims at all', claims: {}, expected: [] }
  ]
  for (const c of cases) {
    const ours = weSay(c.claims)
    t.same(ours, c.expected === 'throws' ? { threw: true } : { threw: false, permissions: c.expected }, c.name)
    t.same(ours, clerkSays(c.claims), `${c.name}: Clerk agrees`)
  }
  t.throws(() => clerkOrganizationPermissions({ v: 2, fea: 'nope', o: organization }),
    { name: 'TypeError', message: 'clerkOrganizationPermissions: an element of the "fea" claim has no scope (no colon)' })
})

// --- The differential run ----------------------------------------------------

const runs = Number.isInteger(Number(process.env.FUZZ_RUNS)) && Number(process.env.FUZZ_RUNS) > 0 ? Number(process.env.FUZZ_RUNS) : 20_000
const seed = Number.isInteger(Number(process.env.FUZZ_SEED)) && process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : 0x6a77_0c1e

/** Values that are not strings, falsy and truthy, as a JSON payload can carry them. */
const oddValue = fc.constantFrom<unknown>(undefined, null, 0, false, '', 5, true, [], {}, ['o:a'], { per: 'read' }, 'o:a')
/** Text from an alphabet that makes every separator likely. */
const text = (max: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom('o', 'u', 'a', 'b', ':', ',', ' ', '1', '0', '9'), maxLength: max })
const featureName = fc.oneof(fc.constantFrom('billing', 'teams', 'reports', ''), text(4))
const scope = fc.oneof({ weight: 3, arbitrary: fc.constantFrom('o', 'ou', 'uo') }, { weight: 2, arbitrary: fc.constantFrom('u', 'org', 'x', '', 'O', ' o') })
const pad = fc.constantFrom('', '', '', ' ', '  ', '\t')
const feaElement = fc.oneof(
  { weight: 40, arbitrary: fc.tuple(pad, scope, featureName, pad).map(([l, s, n, r]) => `${l}${s}:${n}${r}`) },
  { weight: 1, arbitrary: fc.oneof(featureName, fc.constant('')) } // no colon: Clerk throws
)
const fea = fc.oneof(
  { weight: 8, arbitrary: fc.array(feaElement, { maxLength: 6 }).map((elements) => elements.join(',')) },
  { weight: 1, arbitrary: text(12) },
  { weight: 1, arbitrary: oddValue }
)
const permissionName = fc.oneof(fc.constantFrom('read', 'manage', 'delete', 'create', ''), text(3))
const per = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.tuple(pad, permissionName, pad).map((parts) => parts.join('')), { minLength: 1, maxLength: 8 }).map((names) => names.join(',')) },
  { weight: 1, arbitrary: text(10) },
  { weight: 1, arbitrary: oddValue }
)
const mask = fc.oneof(
  { weight: 6, arbitrary: fc.nat(255).map(String) },
  { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 80n }).map(String) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('0', '00', ' ', ''), fc.nat(31)).map(([prefix, n]) => `${prefix}${n}`) },
  { weight: 2, arbitrary: fc.constantFrom('', '-1', '1.5', 'abc', '1e3', '+1', '0x1f', '\u0663', '1 1', '３', 'Infinity', ' 3 ', '3\n') }
)
const fpm = fc.oneof(
  { weight: 8, arbitrary: fc.array(mask, { maxLength: 8 }).map((masks) => masks.join(',')) },
  { weight: 1, arbitrary: text(10) },
  { weight: 1, arbitrary: oddValue }
)
const orgClaim = fc.oneof(
  { weight: 6, arbitrary: fc.record({ id: fc.constant('org_1'), rol: fc.constant('admin'), per, fpm }) },
  { weight: 2, arbitrary: fc.record({ id: fc.constant('org_1'), per, fpm }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: oddValue }
)
const v1Permissions = fc.oneof(
  fc.array(fc.constantFrom('org:billing:manage', 'org:teams:read', ''), { maxLength: 3 }),
  fc.array(fc.oneof(fc.string({ maxLength: 6 }), oddValue), { maxLength: 3 }),
  oddValue
)
const claimSet = fc.record({
  v: fc.oneof({ weight: 8, arbitrary: fc.constant<unknown>(2) }, { weight: 2, arbitrary: fc.constantFrom<unknown>(undefined, 1, '2', null, 3) }),
  fea,
  o: orgClaim,
  org_permissions: v1Permissions,
  sub: fc.constant('user_1')
}, { requiredKeys: ['v', 'fea', 'o', 'sub'] })

t.test(`clerkOrganizationPermissions agrees with @clerk/shared on ${runs} generated claim sets`, async (t) => {
  const seen = { v2Granted: 0, v2Empty: 0, threw: 0, v1: 0 }
  fc.assert(fc.property(claimSet, (claims) => {
    const clerk = clerkSays(claims)
    const ours = weSay(claims)
    if (JSON.stringify(ours) !== JSON.stringify(clerk)) {
      throw new Error(`ours ${JSON.stringify(ours)} != Clerk's ${JSON.stringify(clerk)}`)
    }
    if (clerk.threw) seen.threw++
    else if (claims.v !== 2) seen.v1++
    else if (clerk.permissions.length > 0) seen.v2Granted++
    else seen.v2Empty++
  }), { seed, numRuns: runs })
  t.comment(`seed ${seed}: ${JSON.stringify(seen)}`)
  // The generator reaches every kind of outcome, so agreement means something.
  for (const [kind, count] of Object.entries(seen)) t.ok(count > runs / 50, `${kind}: ${count} of ${runs}`)
})

// --- Tokens Clerk signs --------------------------------------------------------

const clerkIssuer = 'https://clerk.griddy.example'
const audience = 'https://api.griddy.example'
const frontend = 'https://app.griddy.example'

function pem (key: TestKey, which: 'private' | 'public'): string {
  return which === 'private'
    ? key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
    : key.publicKey.export({ type: 'spki', format: 'pem' }) as string
}

/** A v2 session token as Clerk's Frontend API issues it, signed by @clerk/backend. */
async function clerkSessionToken (key: TestKey, claims: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return await signJwt({
    azp: frontend,
    exp: now + 60,
    fva: [0, -1],
    iss: clerkIssuer,
    jti: 'a7c3e1f09b2d4c6e8f10',
    nbf: now - 10,
    sid: 'sess_2x4Hk9',
    sts: 'active',
    sub: 'user_2x4Hk9',
    v: 2,
    aud: audience,
    ...claims
  }, pem(key, 'private'), { algorithm: 'RS256', header: { typ: 'JWT', kid: key.kid } })
}

const orgRoutes = ['org:billing:manage', 'org:billing:read', 'org:teams:manage', 'org:teams:read', 'org:reports:read', 'leagues:read']

t.test('a v2 session token signed by @clerk/backend: accepted, org permissions enforced as Clerk has() decides', async (t) => {
  const key = await createTestKey('ins_clerk_1')
  const app = await buildApp(t, {
    issuer: clerkIssuer,
    audience,
    authorizedParties: [frontend],
    jwks: { keys: [key.jwk] },
    // The SPEC's usage, as written: no cast.
    permissionsClaim: (c) => [...clerkOrganizationPermissions(c), ...(c.permissions ?? [])]
  }, {
    routes: (a: FastifyInstance) => {
      a.get('/me', async (request) => request.auth)
      // By index: a colon in a path would start a route parameter.
      for (const [index, permission] of orgRoutes.entries()) a.get(`/needs/${index}`, { config: { permissions: permission } }, async () => 'ok')
    }
  })

  const sessions: Array<{ name: string, claims: Record<string, unknown> }> = [
    { name: 'an admin of billing and teams', claims: { fea: 'o:billing,o:teams,u:profile', o: { id: 'org_2x', rol: 'admin', slg: 'griddy', per: 'manage,read', fpm: '3,3' } } },
    { name: 'a member who can read', claims: { fea: 'o:billing,o:teams', o: { id: 'org_2x', rol: 'member', slg: 'griddy', per: 'read,manage', fpm: '1,1' } } },
    { name: 'a member of teams only, with a custom claim too', claims: { fea: 'o:billing,ou:teams,o:reports', o: { id: 'org_2x', rol: 'member', slg: 'griddy', per: 'read,manage', fpm: '0,3,1' }, permissions: ['leagues:read'] } },
    { name: 'no active organization', claims: { fea: 'u:profile', permissions: ['leagues:read'] } }
  ]
  for (const session of sessions) {
    const token = await clerkSessionToken(key, session.claims)
    const verifiedByClerk = await verifyToken(token, { jwtKey: pem(key, 'public'), authorizedParties: [frontend], issuer: clerkIssuer, audience })
    const clerk = clerkAuthObject(verifiedByClerk)
    const has = createCheckAuthorization({ ...clerk, features: null, plans: null, orgPermissions: clerk.orgPermissions ?? null, factorVerificationAge: null })

    const me = await get(app, '/me', token)
    assertSafe(t, me, token, session.name)
    t.equal(me.statusCode, 200, `${session.name}: accepted`)
    t.same(me.json().permissions, [...(clerk.orgPermissions ?? []), ...((session.claims.permissions as string[] | undefined) ?? [])],
      `${session.name}: request.auth.permissions are Clerk's orgPermissions, then the custom claim`)
    t.equal(me.json().sessionId, 'sess_2x4Hk9')

    for (const [index, permission] of orgRoutes.entries()) {
      const res = await get(app, `/needs/${index}`, token)
      const allowed = permission.startsWith('org:') ? has({ permission: permission as `org:${string}` }) : (session.claims.permissions as string[] | undefined)?.includes(permission) === true
      if (allowed) t.equal(res.statusCode, 200, `${session.name}: ${permission} allowed, as Clerk's has() says`)
      else assertFailure(t, res, forbidden(permission), token, `${session.name}: ${permission} refused, as Clerk's has() says:`)
    }
  }
})

// --- Tokens the testing kit mints --------------------------------------------

t.test('tokens from fastify-griddy-auth/testing pass @clerk/backend verifyToken (networkless jwtKey)', async (t) => {
  const issuer = await createTestIssuer({ issuer: clerkIssuer, audience, authorizedParties: [frontend] })
  const jwtKey = pem(issuer.key, 'public')
  const options = { jwtKey, authorizedParties: [frontend], issuer: clerkIssuer, audience }

  const token = issuer.sign({ sub: 'user_1', sid: 'sess_1', permissions: ['leagues:read'] })
  const payload = await verifyToken(token, options)
  t.match(payload, { sub: 'user_1', sid: 'sess_1', iss: clerkIssuer, aud: audience, azp: frontend, permissions: ['leagues:read'] }, 'Clerk accepts it')
  t.same(await verifyToken(issuer.sign({ sub: 'user_1' }), { jwtKey, authorizedParties: [frontend] }), await verifyToken(issuer.sign({ sub: 'user_1' }), { jwtKey }), 'also with only jwtKey')

  // Clerk really checks them: what the plugin refuses, Clerk refuses too.
  const other = await issuer.createKey()
  const refused: Array<[string, string, RegExp]> = [
    ['expired', issuer.sign({ sub: 'user_1' }, { expiresIn: -60 }), /expired/],
    ['not yet valid', issuer.sign({ sub: 'user_1' }, { notBefore: 60 }), /not before/],
    ['another azp', issuer.sign({ sub: 'user_1', azp: 'https://evil.example' }), /Authorized party/],
    ['no azp', issuer.sign({ sub: 'user_1' }, { omit: ['azp'] }), /Authorized party/],
    ['no sub', issuer.sign({}), /Subject claim/],
    ['another key', issuer.sign({ sub: 'user_1' }, { key: other }), /signature is invalid/],
    ['alg none', issuer.sign({ sub: 'user_1' }, { alg: 'none' }), /algorithm/]
  ]
  for (const [name, bad, reason] of refused) {
    await t.rejects(verifyToken(bad, options), { message: reason }, `${name}: Clerk refuses it`)
  }
})

t.test('the plugin and Clerk agree on a testing-kit token with Clerk organization claims', async (t: Tap) => {
  const issuer = await createTestIssuer({ issuer: clerkIssuer, audience, authorizedParties: [frontend] })
  const app = await buildApp(t, { ...issuer.pluginOptions, permissionsClaim: clerkOrganizationPermissions }, {
    routes: (a: FastifyInstance) => { a.get('/invoices', { config: { permissions: 'org:billing:manage' } }, async () => 'ok') }
  })
  const claims = { sub: 'user_1', sid: 'sess_1', v: 2, fea: 'o:billing', o: { id: 'org_1', rol: 'admin', per: 'read,manage', fpm: '2' } }
  const token = issuer.sign(claims)
  const clerk = clerkAuthObject(await verifyToken(token, { jwtKey: pem(issuer.key, 'public'), authorizedParties: [frontend] }))
  t.same(clerk.orgPermissions, ['org:billing:manage'])
  t.equal((await get(app, '/invoices', token)).statusCode, 200)
  const reader = issuer.sign({ ...claims, o: { ...claims.o, fpm: '1' } })
  assertFailure(t, await get(app, '/invoices', reader), forbidden('org:billing:manage'), reader)
})
