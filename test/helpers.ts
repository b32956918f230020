/**
 * Shared helpers of the core behaviour suites: building an app around the
 * plugin, capturing its logs, sending tokens, and asserting what a client
 * sees (status, body, WWW-Authenticate) for every failure of SPEC §7.
 *
 * Not a test file itself: it only exports helpers (tap runs it as an empty
 * suite, which passes).
 */
import { sign as rsaSign } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions, type InjectOptions, type LightMyRequestResponse } from 'fastify'
import griddyAuth, { type GriddyAuthOptions } from '../lib/index'
import type { TestKey } from '../lib/testing/index'

/**
 * The part of a tap test these helpers use. Method syntax, so tap's own
 * `Test` (whatever plugins it was built with) is assignable to it.
 */
export interface Tap {
  equal (...args: any[]): any
  not (...args: any[]): any
  same (...args: any[]): any
  match (...args: any[]): any
  notMatch (...args: any[]): any
  ok (...args: any[]): any
  notOk (...args: any[]): any
  teardown (fn: () => unknown): any
}

/** The fixed messages of SPEC §7, written out here (not imported) so a change in lib/ is caught. */
export const messages = {
  GRIDDY_AUTH_NO_TOKEN: 'Authentication credentials were not provided.',
  GRIDDY_AUTH_BAD_HEADER: 'Authorization header must be: Bearer <token>.',
  GRIDDY_AUTH_MALFORMED: 'Token is malformed.',
  GRIDDY_AUTH_ALGORITHM: 'Invalid token algorithm.',
  GRIDDY_AUTH_UNKNOWN_KEY: 'Signing key not found.',
  GRIDDY_AUTH_SIGNATURE: 'Invalid token signature.',
  GRIDDY_AUTH_EXPIRED: 'Token has expired',
  GRIDDY_AUTH_NOT_YET_VALID: 'Token is not yet valid.',
  GRIDDY_AUTH_MISSING_CLAIM_EXP: 'Token is missing required claim: exp.',
  GRIDDY_AUTH_MISSING_CLAIM_SUB: 'Token is missing required claim: sub.',
  GRIDDY_AUTH_ISSUER: 'Invalid issuer.',
  GRIDDY_AUTH_AUDIENCE: 'Invalid audience.',
  GRIDDY_AUTH_AUTHORIZED_PARTY: 'Invalid authorized party.',
  GRIDDY_AUTH_SESSION_ENDED: 'Session has ended.',
  GRIDDY_AUTH_FORBIDDEN: 'Insufficient permissions.',
  GRIDDY_AUTH_UNAVAILABLE: 'Signing keys are unavailable; try again shortly.'
} as const

/** What a client must see for one failure. */
export interface ExpectedFailure {
  status: number
  code: string
  message: string
  /** Exact `WWW-Authenticate`; `null` when the header must be absent. */
  challenge: string | null
}

/** An expected token failure (401, error="invalid_token"). */
export function tokenFailure (code: keyof typeof messages, realm?: string): ExpectedFailure {
  const message = messages[code]
  const realmPart = realm === undefined ? '' : `realm="${realm}", `
  return {
    status: 401,
    code: code.replace(/_(EXP|SUB)$/, ''),
    message,
    challenge: `Bearer ${realmPart}error="invalid_token", error_description="${message}"`
  }
}

export function noToken (realm?: string): ExpectedFailure {
  return {
    status: 401,
    code: 'GRIDDY_AUTH_NO_TOKEN',
    message: messages.GRIDDY_AUTH_NO_TOKEN,
    challenge: realm === undefined ? 'Bearer' : `Bearer realm="${realm}"`
  }
}

export function badHeader (realm?: string): ExpectedFailure {
  const realmPart = realm === undefined ? '' : `realm="${realm}", `
  return {
    status: 401,
    code: 'GRIDDY_AUTH_BAD_HEADER',
    message: messages.GRIDDY_AUTH_BAD_HEADER,
    challenge: `Bearer ${realmPart}error="invalid_request", error_description="Authorization header must be: Bearer <token>."`
  }
}

export function forbidden (scope: string, realm?: string): ExpectedFailure {
  const realmPart = realm === undefined ? '' : `realm="${realm}", `
  return {
    status: 403,
    code: 'GRIDDY_AUTH_FORBIDDEN',
    message: messages.GRIDDY_AUTH_FORBIDDEN,
    challenge: `Bearer ${realmPart}error="insufficient_scope", scope="${scope}"`
  }
}

const reasonPhrases: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 503: 'Service Unavailable' }

/** Every response of these suites goes through this: never a 500, never the token echoed. */
export function assertSafe (t: Tap, res: LightMyRequestResponse, token: string | undefined, label = ''): void {
  t.not(res.statusCode, 500, `${label} never answers 500`)
  if (token !== undefined && token.length > 0) {
    t.notOk(res.body.includes(token), `${label} the body never contains the token`)
    const signature = token.split('.')[2]
    if (signature !== undefined && signature.length > 8) {
      t.notOk(res.body.includes(signature), `${label} the body never contains the token's signature`)
    }
  }
  t.notOk(/BEGIN PUBLIC KEY|"stack"|at .*\.ts:\d+/.test(res.body), `${label} the body holds no key and no stack`)
}

/** Asserts the status, the whole default-handler body and the challenge of a failure. */
export function assertFailure (t: Tap, res: LightMyRequestResponse, expected: ExpectedFailure, token?: string, label = ''): void {
  assertSafe(t, res, token, label)
  t.equal(res.statusCode, expected.status, `${label} status ${expected.status}`)
  let body: unknown
  try {
    body = res.json()
  } catch {
    body = res.body
  }
  t.same(body, {
    statusCode: expected.status,
    code: expected.code,
    error: reasonPhrases[expected.status],
    message: expected.message
  }, `${label} body is { statusCode, code: ${expected.code}, error, message }`)
  t.equal(res.headers['www-authenticate'], expected.challenge ?? undefined, `${label} WWW-Authenticate`)
}

/** One JSON log line, as pino wrote it. */
export interface LogLine {
  level: number
  msg?: string
  reqId?: string
  code?: string
  route?: string
  [key: string]: unknown
}

export interface LogCapture {
  /** Every raw line, as written. */
  readonly raw: string[]
  /** The parsed lines. */
  readonly lines: LogLine[]
  /** The plugin's own lines (its messages start with `griddy-auth:`). */
  pluginLines: () => LogLine[]
  clear: () => void
  readonly stream: { write: (line: string) => void }
}

export function captureLogs (): LogCapture {
  const raw: string[] = []
  const lines: LogLine[] = []
  return {
    raw,
    lines,
    pluginLines: () => lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('griddy-auth:')),
    clear: () => {
      raw.length = 0
      lines.length = 0
    },
    stream: {
      write (line: string) {
        raw.push(line)
        lines.push(JSON.parse(line) as LogLine)
      }
    }
  }
}

type RouteSetup = (app: FastifyInstance) => void | Promise<void>

export interface BuildOptions {
  /** Fastify's own options (a logger, for instance). */
  fastify?: FastifyServerOptions
  /** Called before the plugin is registered (an error handler, for instance). */
  before?: RouteSetup
  /** Routes; default: `standardRoutes`. */
  routes?: RouteSetup
}

/**
 * The routes most suites use:
 * - `GET /private`: a valid token, no permission; answers `request.auth`;
 * - `GET /leagues/:id`: needs `leagues:read`;
 * - `GET /admin`: needs `leagues:read` and `leagues:write`;
 * - `GET /public`: public; answers `{ auth: request.auth }`.
 */
export function standardRoutes (app: FastifyInstance): void {
  app.get('/private', async (request) => request.auth)
  app.get('/leagues/:id', { config: { permissions: 'leagues:read' } }, async (request) => ({
    league: (request.params as { id: string }).id,
    userId: request.auth?.userId
  }))
  app.get('/admin', { config: { permissions: ['leagues:read', 'leagues:write'] } }, async (request) => request.auth)
  app.get('/public', { config: { public: true } }, async (request) => ({ auth: request.auth }))
}

/** An app with the plugin and routes, ready, closed at the end of `t`. */
export async function buildApp (t: Tap, options: GriddyAuthOptions, build: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(build.fastify)
  t.teardown(() => app.close())
  await build.before?.(app)
  await app.register(griddyAuth, options)
  await (build.routes ?? standardRoutes)(app)
  await app.ready()
  return app
}

/** `GET url` with `Authorization: Bearer <token>` (no header when token is undefined). */
export function get (app: FastifyInstance, url: string, token?: string, extra: Partial<InjectOptions> = {}): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
  return app.inject({ method: 'GET', url, ...extra, headers: { ...headers, ...(extra.headers as Record<string, string> | undefined) } })
}

/** `GET url` with a raw `Authorization` header value. */
export function getWithHeader (app: FastifyInstance, url: string, authorization: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url, headers: { authorization } })
}

/** base64url of a string, as JWS segments are. */
export function b64url (text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url')
}

/**
 * A token over exactly the given JSON texts (duplicate keys, `__proto__`,
 * non-object values...), RS256-signed with `key` unless `signature` is given.
 */
export function rawToken (headerJson: string, payloadJson: string, key: TestKey, signature?: string): string {
  const input = `${b64url(headerJson)}.${b64url(payloadJson)}`
  return `${input}.${signature ?? rsaSign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`
}

/** Seconds since the epoch, as JWT times are. */
export function nowSeconds (): number {
  return Math.floor(Date.now() / 1000)
}

export interface CountingServer {
  readonly url: string
  /** Requests received so far, whatever their path. */
  readonly hits: number
  readonly paths: string[]
  close: () => Promise<void>
}

/**
 * An HTTP server on 127.0.0.1 that counts every request and answers with
 * `respond` (default: 200 and `body`). Closed at the end of `t`.
 */
export async function countingServer (
  t: Tap,
  respond: (request: IncomingMessage, response: ServerResponse) => void = (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}')
  }
): Promise<CountingServer> {
  const paths: string[] = []
  const server: Server = createServer((request, response) => {
    paths.push(request.url ?? '')
    respond(request, response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const close = (): Promise<void> => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
  t.teardown(close)
  return {
    url,
    get hits () { return paths.length },
    paths,
    close
  }
}
