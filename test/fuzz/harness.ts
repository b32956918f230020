/**
 * The fuzzing harness: seeded, bounded fast-check runs against the plugin
 * through inject(), each answer judged against the SPEC oracle (oracle.ts)
 * and checked for what must never happen: a 500, a crash, a body or a log
 * line holding the token, a body that is not the fixed one of SPEC §7.
 *
 * Not a test file (tap runs *.test.ts only).
 *
 * Runs: each property has a small default so `npm test` stays fast;
 * `FUZZ_RUNS=<n>` sets every property's run count (`npm run fuzz`), and
 * `FUZZ_SEED=<n>` replays a reported failure (with `FUZZ_PATH` to jump to
 * its shrunk counterexample).
 */
import fc from 'fast-check'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import griddyAuth, { type GriddyAuthOptions } from '../../lib/index'
import { describe, grantedBy, sameOutcome, type Deployment, type FailureCode, type Outcome } from './oracle'

/** SPEC §7, written out here (not imported from lib/). */
export const spec: Record<FailureCode, { status: number, message: string }> = {
  GRIDDY_AUTH_NO_TOKEN: { status: 401, message: 'Authentication credentials were not provided.' },
  GRIDDY_AUTH_BAD_HEADER: { status: 401, message: 'Authorization header must be: Bearer <token>.' },
  GRIDDY_AUTH_MALFORMED: { status: 401, message: 'Token is malformed.' },
  GRIDDY_AUTH_ALGORITHM: { status: 401, message: 'Invalid token algorithm.' },
  GRIDDY_AUTH_UNKNOWN_KEY: { status: 401, message: 'Signing key not found.' },
  GRIDDY_AUTH_SIGNATURE: { status: 401, message: 'Invalid token signature.' },
  GRIDDY_AUTH_EXPIRED: { status: 401, message: 'Token has expired' },
  GRIDDY_AUTH_NOT_YET_VALID: { status: 401, message: 'Token is not yet valid.' },
  GRIDDY_AUTH_MISSING_CLAIM: { status: 401, message: 'Token is missing required claim: %s.' },
  GRIDDY_AUTH_ISSUER: { status: 401, message: 'Invalid issuer.' },
  GRIDDY_AUTH_AUDIENCE: { status: 401, message: 'Invalid audience.' },
  GRIDDY_AUTH_AUTHORIZED_PARTY: { status: 401, message: 'Invalid authorized party.' },
  GRIDDY_AUTH_SESSION_ENDED: { status: 401, message: 'Session has ended.' },
  GRIDDY_AUTH_FORBIDDEN: { status: 403, message: 'Insufficient permissions.' },
  GRIDDY_AUTH_UNAVAILABLE: { status: 503, message: 'Signing keys are unavailable; try again shortly.' }
}

const reasons: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 503: 'Service Unavailable' }

/** The routes of a fuzz target and the permissions each requires. */
export const routes: Record<string, readonly string[]> = {
  '/private': [],
  '/leagues': ['leagues:read'],
  '/admin': ['leagues:read', 'leagues:write']
}

export interface FuzzTarget {
  app: FastifyInstance
  deployment: Deployment
  /** Every raw log line so far. */
  log: string[]
}

/** An app with the plugin (`options`, a static key set) and the three routes, logging at info into `log`. */
export async function createTarget (t: { teardown (fn: () => unknown): unknown }, options: GriddyAuthOptions, deployment: Deployment): Promise<FuzzTarget> {
  const log: string[] = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { log.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(griddyAuth, options)
  for (const [url, required] of Object.entries(routes)) {
    app.get(url, { config: required.length === 0 ? {} : { permissions: [...required] } }, async (request) => ({
      userId: request.auth?.userId,
      sessionId: request.auth?.sessionId ?? null,
      permissions: request.auth?.permissions
    }))
  }
  await app.ready()
  return { app, deployment, log }
}

function challengeFor (code: FailureCode, message: string, required: readonly string[]): string | undefined {
  switch (code) {
    case 'GRIDDY_AUTH_NO_TOKEN': return 'Bearer'
    case 'GRIDDY_AUTH_BAD_HEADER': return `Bearer error="invalid_request", error_description="${message}"`
    case 'GRIDDY_AUTH_FORBIDDEN': return `Bearer error="insufficient_scope", scope="${required.join(' ')}"`
    case 'GRIDDY_AUTH_UNAVAILABLE': return undefined
    default: return `Bearer error="invalid_token", error_description="${message}"`
  }
}

/** How often each answer was seen in the current property (printed as a comment: is the generator reaching every branch?). */
const seen = new Map<string, number>()

/** Counts one answer for the current property's statistics. */
export function tally (answer: string): void {
  seen.set(answer, (seen.get(answer) ?? 0) + 1)
}

const short = (value: string): string => JSON.stringify(value.length > 120 ? `${value.slice(0, 120)}…(${value.length} chars)` : value)

export interface Sent {
  /** The route requested. */
  url: string
  /** Strings that must appear in no body and no log line: the token, its signature, the header value. */
  secrets: string[]
  /** For a 200: the verified claims, to check the AuthContext the handler saw. */
  claims?: Record<string, unknown>
}

/**
 * Sends one request and judges it; throws an Error naming the problem
 * (fast-check then shrinks and reports the seed and counterexample).
 */
export async function probe (target: FuzzTarget, headers: Record<string, string>, sent: Sent, acceptable: Outcome[]): Promise<void> {
  const from = target.log.length
  const res = await target.app.inject({ method: 'GET', url: sent.url, headers })
  // The "request completed" line is written as the response finishes: let it land.
  await new Promise((resolve) => setImmediate(resolve))
  const lines = target.log.slice(from)
  const answer = res.statusCode === 200 ? undefined : JSON.parse(res.body) as { code?: unknown, message?: unknown }
  tally(answer === undefined ? '200' : answer.code === 'GRIDDY_AUTH_MISSING_CLAIM' ? `MISSING_CLAIM(${String(answer.message).slice(-4, -1)})` : String(answer.code ?? res.statusCode))
  const problem = judge(res, acceptable, sent, lines, target.deployment)
  if (problem !== undefined) {
    throw new Error(`${problem}\n  expected one of: ${acceptable.map(describe).join(', ')}\n  got ${res.statusCode} ${short(res.body)}\n  header: ${short(JSON.stringify(headers))}`)
  }
}

function judge (res: LightMyRequestResponse, acceptable: Outcome[], sent: Sent, lines: string[], deployment: Deployment): string | undefined {
  if (res.statusCode >= 500 && res.statusCode !== 503) return `a ${res.statusCode}`
  const required = routes[sent.url] as readonly string[]

  for (const secret of sent.secrets) {
    if (secret.length < 16) continue
    if (res.body.includes(secret)) return 'the body holds the token'
    if (lines.some((line) => line.includes(secret))) return 'a log line holds the token'
  }
  const pluginLines = lines.map((line) => JSON.parse(line) as { level: number, msg?: string, code?: string, route?: string })
    .filter((line) => typeof line.msg === 'string' && line.msg.startsWith('griddy-auth:'))

  let got: Outcome
  if (res.statusCode === 200) {
    got = { ok: true }
    if (pluginLines.length !== 0) return 'a success logged a plugin line'
    if (sent.claims !== undefined) {
      const body = res.json() as { userId: unknown, sessionId: unknown, permissions: unknown }
      const { sub, sid } = sent.claims
      const expected = { userId: sub, sessionId: typeof sid === 'string' ? sid : null, permissions: grantedBy(sent.claims[deployment.permissionsClaim]) }
      if (JSON.stringify(body) !== JSON.stringify(expected)) return `request.auth is ${JSON.stringify(body)}, expected ${JSON.stringify(expected)}`
    }
  } else {
    let body: Record<string, unknown>
    try {
      body = res.json()
    } catch {
      return 'the body is not JSON'
    }
    const code = body.code as FailureCode
    const entry = spec[code]
    if (entry === undefined) return `code ${String(body.code)} is not in SPEC §7`
    const claim = code === 'GRIDDY_AUTH_MISSING_CLAIM' ? /claim: (exp|sub)\.$/.exec(String(body.message))?.[1] as 'exp' | 'sub' | undefined : undefined
    if (code === 'GRIDDY_AUTH_MISSING_CLAIM' && claim === undefined) return `MISSING_CLAIM names no claim: ${String(body.message)}`
    const message = claim === undefined ? entry.message : entry.message.replace('%s', claim)
    got = claim === undefined ? { ok: false, code } : { ok: false, code, claim }
    if (res.statusCode !== entry.status) return `status ${res.statusCode} for ${code}`
    const expectedBody = { statusCode: entry.status, code, error: reasons[entry.status], message }
    if (JSON.stringify(body) !== JSON.stringify(expectedBody)) return `body ${res.body} is not the fixed one`
    if (res.headers['www-authenticate'] !== challengeFor(code, message, required)) return `WWW-Authenticate ${String(res.headers['www-authenticate'])}`
    const own = pluginLines.filter((line) => line.code === code && line.route === sent.url && line.level === 30)
    if (pluginLines.length !== 1 || own.length !== 1) return `expected one info line with the code and route, got ${JSON.stringify(pluginLines)}`
  }
  if (!acceptable.some((outcome) => sameOutcome(outcome, got))) return `answered ${describe(got)}`
  return undefined
}

/** Run count for a property: FUZZ_RUNS when set, else its default. */
export function runsFor (defaultRuns: number): number {
  const value = Number(process.env.FUZZ_RUNS)
  return Number.isInteger(value) && value > 0 ? value : defaultRuns
}

interface Tap {
  comment (...args: unknown[]): unknown
  pass (message: string): unknown
  fail (message: string): unknown
}

/**
 * Checks `property` with a fixed seed (FUZZ_SEED overrides it), reporting
 * the seed and the shrunk counterexample on failure.
 */
export async function check<T> (t: Tap, name: string, property: fc.IAsyncProperty<T>, options: { seed: number, runs: number }): Promise<void> {
  const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : options.seed
  const path = process.env.FUZZ_PATH
  const numRuns = runsFor(options.runs)
  const started = Date.now()
  seen.clear()
  const details = await fc.check(property, { seed, numRuns, ...(path !== undefined ? { path } : {}) })
  const took = `${numRuns} runs in ${Date.now() - started} ms`
  if (details.failed) {
    t.fail(`${name}: ${took}; replay with FUZZ_SEED=${seed}${details.counterexamplePath !== null ? ` FUZZ_PATH=${details.counterexamplePath}` : ''}\n${fc.defaultReportMessage(details)}\n${String(details.errorInstance)}`)
  } else {
    t.pass(`${name} (seed ${seed}, ${took})`)
  }
  t.comment(`${name}: ${[...seen].sort((a, b) => b[1] - a[1]).map(([answer, count]) => `${answer} ${count}`).join(', ')}`)
}
