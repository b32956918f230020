/**
 * signature.ts on its own: what the @fastify/jwt wiring answers for each
 * way a token can fail before its claims are read, including a key chooser
 * that fails unexpectedly (a bug elsewhere must not hang the request).
 */
import t from 'tap'
import Fastify from 'fastify'
import { registerSignatureVerifier, type KeyChooser, type SignatureVerifier } from '../lib/signature'
import { toSigningKey } from '../lib/keys/jwk'
import { createTestIssuer } from '../lib/testing/index'
import type { Tap } from './helpers'

async function verifierWith (t: Tap, chooseKey: KeyChooser): Promise<SignatureVerifier> {
  const app = Fastify()
  t.teardown(() => app.close())
  let verify: SignatureVerifier | undefined
  await app.register(async (instance) => { verify = await registerSignatureVerifier(instance, chooseKey) })
  await app.ready()
  return verify as SignatureVerifier
}

t.test('the chooser sees the decoded token and its key verifies the signature', async (t) => {
  const issuer = await createTestIssuer()
  const key = toSigningKey(issuer.key.jwk)
  t.ok(key)
  const seen: unknown[] = []
  const verify = await verifierWith(t, async ({ header, payload }) => {
    seen.push([header.kid, payload.sub])
    return key as NonNullable<typeof key>
  })
  t.match(await verify(issuer.sign({ sub: 'user_1' })), { claims: { sub: 'user_1', iss: issuer.issuer }, key },
    'the payload, and the key that signed it (the cache ties entries to it)')
  t.same(seen, [[issuer.key.kid, 'user_1']])
})

t.test('a chooser that rejects unexpectedly gives a signature failure, not a hang or a 500', async (t) => {
  const issuer = await createTestIssuer()
  const verify = await verifierWith(t, () => Promise.reject(new Error('a bug elsewhere')))
  t.same(await verify(issuer.sign({ sub: 'u' })), { code: 'GRIDDY_AUTH_SIGNATURE' })
})

t.test('nothing is asked of the chooser for a token that does not decode, or has the wrong alg or no kid', async (t) => {
  const issuer = await createTestIssuer()
  let asked = 0
  const verify = await verifierWith(t, () => { asked++; return { code: 'GRIDDY_AUTH_UNKNOWN_KEY' } })
  t.same(await verify('not.a.token'), { code: 'GRIDDY_AUTH_MALFORMED' })
  t.same(await verify(issuer.sign({ sub: 'u' }, { alg: 'none' })), { code: 'GRIDDY_AUTH_ALGORITHM' })
  t.same(await verify(issuer.sign({ sub: 'u' }, { kid: null })), { code: 'GRIDDY_AUTH_UNKNOWN_KEY' })
  t.equal(asked, 0)
  t.same(await verify(issuer.sign({ sub: 'u' })), { code: 'GRIDDY_AUTH_UNKNOWN_KEY' })
  t.equal(asked, 1)
})

t.test('stack traces are skipped inside @fastify/jwt only: Error.stackTraceLimit is the app\'s again after every outcome', async (t) => {
  const issuer = await createTestIssuer()
  const other = await createTestIssuer()
  const key = toSigningKey(issuer.key.jwk) as NonNullable<ReturnType<typeof toSigningKey>>
  const good = issuer.sign({ sub: 'u' })
  const forged = good.slice(0, good.lastIndexOf('.')) + other.sign({ sub: 'u' }).slice(good.lastIndexOf('.'))
  // What the chooser saw of the limit: the app's own code it calls (a key fetch) must keep its stacks.
  const limitsSeen: number[] = []
  const choosers: Array<[string, KeyChooser]> = [
    ['a key known now', () => { limitsSeen.push(Error.stackTraceLimit); return key }],
    ['a key fetched first', async () => { await new Promise((resolve) => setTimeout(resolve, 1)); limitsSeen.push(Error.stackTraceLimit); return key }],
    ['no such key, later', async () => { await new Promise((resolve) => setTimeout(resolve, 1)); return { code: 'GRIDDY_AUTH_UNKNOWN_KEY' } }],
    ['a chooser that rejects', () => Promise.reject(new Error('a bug elsewhere'))]
  ]
  const tokens: Array<[string, string]> = [['valid', good], ['bad signature', forged], ['malformed', 'not.a.token'], ['alg none', issuer.sign({ sub: 'u' }, { alg: 'none' })]]
  const appLimit = 23
  const saved = Error.stackTraceLimit
  t.teardown(() => { Error.stackTraceLimit = saved })
  for (const [chooserName, chooser] of choosers) {
    const verify = await verifierWith(t, chooser)
    for (const [tokenName, token] of tokens) {
      Error.stackTraceLimit = appLimit
      const pending = verify(token)
      t.equal(Error.stackTraceLimit, appLimit, `${chooserName}, ${tokenName}: restored as soon as verify() returns`)
      const outcome = await pending
      t.equal(Error.stackTraceLimit, appLimit, `${chooserName}, ${tokenName}: and after it settles (${JSON.stringify('code' in outcome ? outcome : 'verified')})`)
      t.match(new Error('app').stack, /\n\s+at /, `${chooserName}, ${tokenName}: the app's next error has its stack`)
    }
  }
  // Valid and forged tokens reach the chooser (malformed and alg none do not): the synchronous chooser runs
  // inside @fastify/jwt's call, so with the limit at 0; code resumed after an await runs with the app's.
  t.same(limitsSeen, [0, 0, appLimit, appLimit], 'what the chooser saw of the limit')
})
