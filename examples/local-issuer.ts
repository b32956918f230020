/**
 * The embedded dev issuer of local mode: an RS256 key pair from the testing
 * kit, its JWKS served over HTTP on 127.0.0.1 (so the API exercises the real
 * JWKS fetch path, `jwksUrl`), and a token minter.
 *
 * How `npm run token` (another process) mints tokens the running server
 * accepts: once the API listens, the server writes this issuer's details and
 * its private key to a small file (`examples/.dev-issuer.json`, mode 0600,
 * gitignored, replaced atomically) and deletes it on stop. The CLI reads the
 * file, checks that the JWKS it names answers and still publishes that key
 * (so a file left by a killed server is detected), then signs locally. The
 * key is created at start and lives only as long as the server: nothing
 * outlives it. The one endpoint that hands out tokens is the dashboard's
 * `getToken()` stand-in (dashboard-server.ts): on the dashboard's own
 * origin, never on the API, for its few demo users only.
 *
 * Sign-out works as with Clerk: the API takes Clerk-style webhooks
 * (`sessions.clerkWebhook`) signed with a throwaway secret, shared in the
 * same file, and `npm run token -- --end-session <sid>` sends it a signed
 * `session.ended` delivery, exactly as Clerk (through Svix) would.
 */
import { createPrivateKey, createPublicKey, randomBytes, randomUUID } from 'node:crypto'
import { readFile, rename, unlink, writeFile } from 'node:fs/promises'
import type { GriddyAuthOptions } from '../lib'
import { createTestIssuer, signClerkWebhook, signToken, type TestKey } from '../lib/testing'

/** What a token must say to be accepted by the local server. */
export interface DevIssuerInfo {
  readonly issuer: string
  readonly audience: string
  readonly authorizedParties: readonly string[]
  readonly jwksUrl: string
}

export interface DevTokenRequest {
  /** The user id (`sub`). */
  sub: string
  permissions?: readonly string[]
  /** The session id (`sid`). */
  sessionId?: string
  /** Seconds from now; negative makes an expired token. Default 3600. */
  expiresIn?: number
  /** The `azp`: the origin of the frontend the token is for. Default: the first authorized party. */
  authorizedParty?: string
}

export interface DevTokenMinter {
  readonly info: DevIssuerInfo
  /** The API the token is for, e.g. `http://127.0.0.1:3000`. */
  readonly apiUrl: string
  mint (request: DevTokenRequest): string
  /** Ends a session at the running API, as Clerk's `session.ended` webhook does. */
  endSession (sessionId: string): Promise<void>
}

export interface LocalIssuer {
  readonly info: DevIssuerInfo
  /** Plugin options for this issuer: keys fetched from its JWKS URL. */
  readonly pluginOptions: GriddyAuthOptions
  mint (request: DevTokenRequest): string
  /** Writes the file `npm run token` reads, for the API listening at `apiUrl`. */
  share (file: string, apiUrl: string): Promise<void>
  /** Stops serving the JWKS and deletes the shared file (if it is still ours). */
  close (): Promise<void>
}

/** The local server is not running (or its file is unreadable): the message says what to do. */
export class LocalIssuerUnavailable extends Error {
  override get name (): string { return 'LocalIssuerUnavailable' }
}

const localInfo = {
  issuer: 'urn:griddy:dev-issuer',
  audience: 'urn:griddy:example-api'
} as const

export interface LocalIssuerOptions {
  /**
   * Like Clerk's `azp`: the origins of the frontends that may obtain tokens
   * (`npm start` passes the dashboard's). Minted tokens get the first.
   * Default `['http://localhost:5173']`.
   */
  authorizedParties?: readonly string[]
}

/** Where the local API takes Clerk-style webhooks (sign-out). */
export const devWebhookPath = '/webhooks/clerk'

/** Claims shaped like a Clerk session token's, signed RS256 with `key`. */
export function mintDevToken (info: DevIssuerInfo, key: TestKey, request: DevTokenRequest): string {
  const now = Math.floor(Date.now() / 1000)
  const exp = now + (request.expiresIn ?? 3600)
  const azp = request.authorizedParty ?? info.authorizedParties[0]
  const payload = {
    iss: info.issuer,
    aud: info.audience,
    sub: request.sub,
    ...(request.sessionId !== undefined ? { sid: request.sessionId } : {}),
    ...(azp !== undefined ? { azp } : {}),
    permissions: request.permissions ?? [],
    iat: Math.min(now, exp - 60),
    exp,
    // A token id (RFC 7519): two tokens minted in the same second still differ.
    jti: randomUUID()
  }
  return signToken({ alg: 'RS256', typ: 'JWT', kid: key.kid }, payload, key)
}

/** Starts the dev issuer: a fresh key, its JWKS on a free 127.0.0.1 port. */
export async function startLocalIssuer (options: LocalIssuerOptions = {}): Promise<LocalIssuer> {
  const issuer = await createTestIssuer({ issuer: localInfo.issuer, audience: localInfo.audience })
  const served = await issuer.serve()
  const info: DevIssuerInfo = { ...localInfo, authorizedParties: options.authorizedParties ?? ['http://localhost:5173'], jwksUrl: served.jwksUrl }
  const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`
  let sharedFile: string | undefined

  return {
    info,
    pluginOptions: {
      issuer: info.issuer,
      audience: info.audience,
      authorizedParties: info.authorizedParties,
      jwksUrl: info.jwksUrl,
      sessions: { clerkWebhook: { path: devWebhookPath, secret: webhookSecret } }
    },
    mint: (request) => mintDevToken(info, issuer.key, request),
    async share (file, apiUrl) {
      const state: SharedState = {
        about: 'Dev-only signing key of the running example server (npm start); deleted when it stops.',
        pid: process.pid,
        apiUrl,
        ...info,
        kid: issuer.key.kid,
        privateKey: issuer.key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        webhookSecret
      }
      const temporary = `${file}.${process.pid}.tmp`
      await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 })
      await rename(temporary, file)
      sharedFile = file
    },
    async close () {
      await served.close()
      if (sharedFile === undefined) return
      const state = await readState(sharedFile).catch(() => undefined)
      // Another server may have started since and taken the file over: leave it.
      if (state?.kid === issuer.key.kid) await unlink(sharedFile).catch(() => {})
      sharedFile = undefined
    }
  }
}

interface SharedState extends DevIssuerInfo {
  about: string
  pid: number
  apiUrl: string
  kid: string
  privateKey: string
  webhookSecret: string
}

function isStringArray (value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}

async function readState (file: string): Promise<SharedState> {
  const parsed: unknown = JSON.parse(await readFile(file, 'utf8'))
  if (typeof parsed !== 'object' || parsed === null) throw new TypeError('not an object')
  const record: Record<string, unknown> = { ...parsed }
  const { about, pid, apiUrl, issuer, audience, authorizedParties, jwksUrl, kid, privateKey, webhookSecret } = record
  if (typeof about !== 'string' || typeof pid !== 'number' || typeof apiUrl !== 'string' ||
    typeof issuer !== 'string' || typeof audience !== 'string' || !isStringArray(authorizedParties) ||
    typeof jwksUrl !== 'string' || typeof kid !== 'string' || typeof privateKey !== 'string' || typeof webhookSecret !== 'string') {
    throw new TypeError('unexpected content')
  }
  return { about, pid, apiUrl, issuer, audience, authorizedParties, jwksUrl, kid, privateKey, webhookSecret }
}

/** Whether the JWKS still publishes `kid`: proof that the server that wrote the file is running. */
async function publishes (jwksUrl: string, kid: string): Promise<boolean> {
  try {
    const response = await fetch(jwksUrl, { signal: AbortSignal.timeout(2000) })
    if (!response.ok) return false
    const body: unknown = await response.json()
    if (typeof body !== 'object' || body === null || !('keys' in body) || !Array.isArray(body.keys)) return false
    return body.keys.some((jwk: unknown) => typeof jwk === 'object' && jwk !== null && 'kid' in jwk && jwk.kid === kid)
  } catch {
    return false
  }
}

/** For `npm run token`: the running local server's issuer, from the file it shared. */
export async function connectToLocalIssuer (file: string): Promise<DevTokenMinter> {
  const start = 'start the example server first, in another terminal: npm start'
  let state: SharedState
  try {
    state = await readState(file)
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') {
      throw new LocalIssuerUnavailable(`The local dev issuer is not running (no ${file}): ${start}`)
    }
    throw new LocalIssuerUnavailable(`Cannot read ${file}: delete it and ${start}`)
  }
  if (!await publishes(state.jwksUrl, state.kid)) {
    throw new LocalIssuerUnavailable(`The local dev issuer recorded in ${file} is not answering (its server was stopped?): ${start}`)
  }
  const privateKey = createPrivateKey(state.privateKey)
  const publicKey = createPublicKey(privateKey)
  const { n, e } = publicKey.export({ format: 'jwk' })
  if (n === undefined || e === undefined) throw new LocalIssuerUnavailable(`Cannot read ${file}: not an RSA key; delete it and ${start}`)
  const key: TestKey = { kid: state.kid, privateKey, publicKey, jwk: { kty: 'RSA', kid: state.kid, alg: 'RS256', use: 'sig', n, e } }
  const info: DevIssuerInfo = {
    issuer: state.issuer,
    audience: state.audience,
    authorizedParties: state.authorizedParties,
    jwksUrl: state.jwksUrl
  }
  async function endSession (sessionId: string): Promise<void> {
    const delivery = signClerkWebhook(state.webhookSecret, { type: 'session.ended', data: { object: 'session', id: sessionId, status: 'ended' } })
    const response = await fetch(`${state.apiUrl}${devWebhookPath}`, {
      method: 'POST', body: delivery.payload, headers: delivery.headers, signal: AbortSignal.timeout(5000)
    }).catch((err: unknown) => {
      throw new LocalIssuerUnavailable(`The API at ${state.apiUrl} did not take the sign-out (${(err as Error).message}): ${start}`)
    })
    if (!response.ok) throw new LocalIssuerUnavailable(`The API at ${state.apiUrl} refused the sign-out: ${response.status} ${await response.text()}`)
  }
  return { info, apiUrl: state.apiUrl, mint: (request) => mintDevToken(info, key, request), endSession }
}
