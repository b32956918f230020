/**
 * Decoding, key choice and signature verification through @fastify/jwt
 * (fast-jwt underneath).
 *
 * Three of its behaviours decide the wiring:
 * - it reuses a verifier (one parsed key) only on its request-level
 *   `jwtVerify` with a secret callback that returns a string key; the
 *   instance-level `jwt.verify` builds a verifier per call;
 * - its error mapping collapses several fast-jwt codes into one and lets
 *   others through as 500s;
 * - it decorates `fastify.jwt` and `request.user`, which would collide with
 *   an app's own @fastify/jwt.
 * So it is registered in an encapsulated child (nothing leaks into the
 * app), its `jwtVerify` function is captured as it is decorated and called
 * on a small call object, and fast-jwt is asked for the signature, the
 * algorithm and `crit` only: time and claims are judged by claims.ts, after
 * this step.
 *
 * The order of SPEC §6 falls out of @fastify/jwt's own: it decodes the
 * token (shape), then asks the secret callback for a key, where `alg` and
 * `kid` are judged and the key is looked up, then verifies the signature
 * and `crit`. Each outcome maps to exactly one code.
 */
import type { FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import type { GriddyAuthErrorCode, Rejection } from './errors'
import type { SigningKey } from './keys/jwk'

const kToken = Symbol('griddyAuth.token')

/** A decoded, unverified token as @fastify/jwt hands it to the secret callback. */
export interface UnverifiedToken {
  readonly header: Readonly<Record<string, unknown>>
  readonly payload: Readonly<Record<string, unknown>>
}

/** Chooses the key for a decoded token, or says why there is none. */
export type KeyChooser = (token: UnverifiedToken) => SigningKey | Rejection | Promise<SigningKey | Rejection>

/** What a verification proves: the payload, and the key that signed it. */
export interface Verified {
  readonly claims: Record<string, unknown>
  readonly key: SigningKey
}

/** Verifies `token`: what it proves, or why not. Never rejects. */
export type SignatureVerifier = (token: string) => Promise<Verified | Rejection>

interface VerifyCall {
  readonly [kToken]: string
  /** Set once @fastify/jwt has decoded the token and asked for its key. */
  key?: SigningKey | null
  rejection?: Rejection
  user?: unknown
}

type Done = (err: Error | null, payload?: unknown) => void
type RequestVerify = (this: VerifyCall, options: undefined, done: Done) => void
type SecretDone = (err: Error | null, key?: string) => void

/** Our code for an error of @fastify/jwt / fast-jwt, once the token was decoded. Total: nothing becomes a 500. */
export function codeOfJwtError (err: { code?: unknown }): GriddyAuthErrorCode {
  switch (err.code) {
    case 'FAST_JWT_INVALID_ALGORITHM':
      return 'GRIDDY_AUTH_ALGORITHM'
    case 'FAST_JWT_INVALID_CRIT_HEADER':
      return 'GRIDDY_AUTH_MALFORMED'
    default:
      // FST_JWT_AUTHORIZATION_TOKEN_INVALID (a bad signature, the key being
      // known good), FAST_JWT_MISSING_SIGNATURE, and anything a later
      // version may add: the signature was not proven.
      return 'GRIDDY_AUTH_SIGNATURE'
  }
}

const algorithm: Rejection = Object.freeze({ code: 'GRIDDY_AUTH_ALGORITHM' })
const unknownKey: Rejection = Object.freeze({ code: 'GRIDDY_AUTH_UNKNOWN_KEY' })
const malformed: Rejection = Object.freeze({ code: 'GRIDDY_AUTH_MALFORMED' })

export function isRejection<T extends object> (value: T | Rejection): value is Rejection {
  return (value as Rejection).code !== undefined
}

export async function registerSignatureVerifier (fastify: FastifyInstance, chooseKey: KeyChooser): Promise<SignatureVerifier> {
  let requestVerify: RequestVerify | undefined

  function answer (call: VerifyCall, found: SigningKey | Rejection, done: SecretDone): void {
    if (isRejection(found)) {
      call.rejection = found
      return done(new Error(found.code))
    }
    call.key = found
    done(null, found.pem)
  }

  // Called by @fastify/jwt with the decoded token: the shape is good.
  function secret (call: VerifyCall, decoded: UnverifiedToken, done: SecretDone): void {
    call.key = null
    const { alg, kid } = decoded.header
    if (alg !== 'RS256') return answer(call, algorithm, done)
    if (typeof kid !== 'string' || kid.length === 0) return answer(call, unknownKey, done)
    const found = chooseKey(decoded)
    if (found instanceof Promise) found.then((key) => answer(call, key, done), done)
    else answer(call, found, done)
  }

  await fastify.register(async function griddyAuthJwt (child) {
    const decorateRequest = child.decorateRequest
    // @fastify/jwt is fastify-plugin wrapped: it decorates this very instance.
    child.decorateRequest = function (this: FastifyInstance, name: string, value: unknown, deps?: string[]) {
      if (name === 'jwtVerify') requestVerify = value as RequestVerify
      return decorateRequest.call(this, name, value as never, deps as string[])
    } as typeof child.decorateRequest
    await child.register(fastifyJwt, {
      secret,
      decode: { complete: true },
      verify: {
        algorithms: ['RS256'],
        cache: false,
        ignoreExpiration: true,
        ignoreNotBefore: true,
        extractToken: (call: VerifyCall) => call[kToken]
      }
    } as never)
    child.decorateRequest = decorateRequest
  })

  /* c8 ignore next 3 -- a guard against a future @fastify/jwt renaming its decorator */
  if (requestVerify === undefined) {
    throw new Error('fastify-griddy-auth: @fastify/jwt did not expose its request verifier; check its version')
  }
  const verify = requestVerify
  return (token) => new Promise((resolve) => {
    const call: VerifyCall = { [kToken]: token }
    verify.call(call, undefined, (err, claims) => {
      if (err === null) resolve({ claims: claims as Record<string, unknown>, key: call.key as SigningKey })
      else if (call.rejection !== undefined) resolve(call.rejection)
      else if (call.key === undefined) resolve(malformed) // failed in decoding, before any key was asked for
      else resolve({ code: codeOfJwtError(err as { code?: unknown }) })
    })
  })
}
