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
 * - it decorates `fastify.jwt`, `request.user`, `request.jwtVerify`…,
 *   which collide with an app's own @fastify/jwt (or anything else that
 *   decorates `request.user`) registered before this plugin.
 * So it is registered in an encapsulated child (nothing leaks into the
 * app), under a namespace of its own, with names of its own for the
 * request decorators. The child first decorates its own `fastify.jwt`
 * (Fastify allows shadowing an instance decorator of a parent), so
 * @fastify/jwt files the namespace there, never in an app's `fastify.jwt`,
 * and then skips `request.user` altogether. Its `griddyAuthJwtVerify`
 * function is captured as it is decorated and called on a small call
 * object, and fast-jwt is asked for the signature, the algorithm and
 * `crit` only: time and claims are judged by claims.ts, after this step.
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
const namespace = 'griddyAuth'
const verifyName = 'griddyAuthJwtVerify'

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
  /** Where @fastify/jwt puts the payload (its `decoratorName`). */
  griddyAuthUser?: unknown
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

/**
 * Runs `work` (the synchronous part of a call into @fastify/jwt) with
 * `Error.stackTraceLimit` at 0, restored before anything else runs. Every
 * refusal makes fast-jwt build a TokenError and @fastify/jwt wrap it in a
 * FastifyError: two stack traces nobody reads (only the code leaves this
 * module), which made a forged token dearer to refuse than a valid one to
 * accept.
 */
function withoutStackTraces (work: () => void): void {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    work()
  } finally {
    Error.stackTraceLimit = limit
  }
}

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
    // @fastify/jwt resumes inside answer(): its stacks are skipped there too.
    if (found instanceof Promise) found.then((key) => { withoutStackTraces(() => { answer(call, key, done) }) }, done)
    else answer(call, found, done)
  }

  await fastify.register(async function griddyAuthJwt (child) {
    const decorateRequest = child.decorateRequest
    // @fastify/jwt is fastify-plugin wrapped: it decorates this very instance.
    child.decorateRequest = function (this: FastifyInstance, name: string, value: unknown, deps?: string[]) {
      if (name === verifyName) requestVerify = value as RequestVerify
      return decorateRequest.call(this, name, value as never, deps as string[])
    } as typeof child.decorateRequest
    child.decorate('jwt', Object.create(null))
    await child.register(fastifyJwt, {
      secret,
      namespace,
      jwtVerify: verifyName,
      jwtDecode: 'griddyAuthJwtDecode',
      jwtSign: 'griddyAuthJwtSign',
      decoratorName: 'griddyAuthUser',
      decode: { complete: true },
      // Its messages never leave this module (only the code does): a constant
      // spares util.format of fast-jwt's message on every refused token.
      messages: { authorizationTokenInvalid: 'invalid token' },
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
    withoutStackTraces(() => {
      verify.call(call, undefined, (err, claims) => {
        if (err === null) resolve({ claims: claims as Record<string, unknown>, key: call.key as SigningKey })
        else if (call.rejection !== undefined) resolve(call.rejection)
        else if (call.key === undefined) resolve(malformed) // failed in decoding, before any key was asked for
        else resolve({ code: codeOfJwtError(err as { code?: unknown }) })
      })
    })
  })
}
