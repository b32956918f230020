/**
 * Signature verification through @fastify/jwt (fast-jwt underneath).
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
 * this step. What can then come out of it maps to exactly one code.
 */
import type { FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import type { GriddyAuthErrorCode } from './errors'

const kToken = Symbol('griddyAuth.token')
const kKey = Symbol('griddyAuth.key')

interface VerifyCall {
  [kToken]: string
  [kKey]: string
  user?: unknown
}

type Done = (err: Error | null, payload?: unknown) => void
type RequestVerify = (this: VerifyCall, options: undefined, done: Done) => void

/** Verifies `token`'s signature with `pem`; resolves to the verified payload. */
export type SignatureVerifier = (token: string, pem: string) => Promise<Record<string, unknown>>

/** Our code for an error of @fastify/jwt / fast-jwt. Total: nothing becomes a 500. */
export function codeOfJwtError (err: { code?: unknown }): GriddyAuthErrorCode {
  switch (err.code) {
    case 'FAST_JWT_INVALID_ALGORITHM':
      return 'GRIDDY_AUTH_ALGORITHM'
    case 'FAST_JWT_INVALID_CRIT_HEADER':
    case 'FAST_JWT_MALFORMED':
    case 'FAST_JWT_INVALID_PAYLOAD':
      return 'GRIDDY_AUTH_MALFORMED'
    default:
      // FST_JWT_AUTHORIZATION_TOKEN_INVALID (a bad signature, once the shape
      // and the key are known good), FAST_JWT_MISSING_SIGNATURE, and anything
      // a later version may add: the signature was not proven.
      return 'GRIDDY_AUTH_SIGNATURE'
  }
}

export async function registerSignatureVerifier (fastify: FastifyInstance): Promise<SignatureVerifier> {
  let requestVerify: RequestVerify | undefined

  await fastify.register(async function griddyAuthJwt (child) {
    const decorateRequest = child.decorateRequest
    // @fastify/jwt is fastify-plugin wrapped: it decorates this very instance.
    child.decorateRequest = function (this: FastifyInstance, name: string, value: unknown, deps?: string[]) {
      if (name === 'jwtVerify') requestVerify = value as RequestVerify
      return decorateRequest.call(this, name, value as never, deps as string[])
    } as typeof child.decorateRequest
    await child.register(fastifyJwt, {
      secret: (call: VerifyCall, _payload: unknown, cb: (err: null, key: string) => void) => cb(null, call[kKey]),
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
  return (token, pem) => new Promise((resolve, reject) => {
    const call: VerifyCall = { [kToken]: token, [kKey]: pem }
    verify.call(call, undefined, (err, payload) => {
      if (err !== null) reject(err)
      else resolve(payload as Record<string, unknown>)
    })
  })
}
