/**
 * `fastify-griddy-auth/testing`: a local issuer for your route tests. It
 * mints real RS256 tokens (and any bad token on purpose), gives plugin
 * options with a static key set (no network), and can serve its JWKS on a
 * loopback port when a test wants the real fetch path.
 *
 * @example
 * const issuer = await createTestIssuer({ issuer: 'https://test.local', audience: 'api' })
 * await app.register(griddyAuth, issuer.pluginOptions)
 * const token = issuer.sign({ sub: 'user_1', permissions: ['leagues:read'] })
 */
import { createHmac, generateKeyPair, randomUUID, sign as rsaSign, type KeyObject } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'
import type { GriddyAuthOptions, JWK } from '../options'

export interface TestIssuerOptions {
  /** The `iss` of minted tokens. Default `'https://issuer.test'`. */
  issuer?: string
  /** The `aud` of minted tokens and the plugin's accepted audience. Default `'https://api.test'`. */
  audience?: string | string[]
  /** Authorized parties for `pluginOptions`; minted tokens get the first as `azp`. */
  authorizedParties?: string[]
  /** Default lifetime of minted tokens, in seconds. Default 60 (a Clerk session token's). */
  ttl?: number
}

/** A key pair the issuer can sign with. */
export interface TestKey {
  readonly kid: string
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  readonly jwk: JWK
}

export interface SignOptions {
  /** Lifetime in seconds from now (negative: already expired). Default: the issuer's `ttl`. */
  expiresIn?: number
  /** `nbf` as seconds from now (positive: not yet valid). */
  notBefore?: number
  /** The header's `kid`; `null` leaves it out. Default: the signing key's kid. */
  kid?: string | null
  /**
   * The header's `alg` and how the token is signed: `'RS256'` (default),
   * `'none'` (no signature), `'HS256'` (HMAC keyed with `secret`, or with the
   * public key's PEM: the algorithm-confusion attack), or any other name
   * (signed as RS256 anyway, so only the name is wrong).
   */
  alg?: string
  /** HMAC secret for `alg: 'HS256'`. Default: the signing key's public PEM. */
  secret?: string
  /** Sign with another key (from `createKey()`), e.g. one the JWKS does not publish. */
  key?: TestKey
  /** Extra or overriding header members (`jku`, `crit`, `typ`...). */
  header?: Record<string, unknown>
  /** Claims to remove from the defaults (`'exp'`, `'iss'`, `'aud'`, `'azp'`...). */
  omit?: string[]
}

export interface ServedJwks {
  /** Base URL of the server, e.g. `http://127.0.0.1:40123`. */
  readonly url: string
  /** Full URL of the JWKS document. */
  readonly jwksUrl: string
  /** How many JWKS requests the server has answered. */
  readonly requests: number
  close (): Promise<void>
}

export interface TestIssuer {
  readonly issuer: string
  readonly audience: string | string[]
  /** The current signing key (the last one added). */
  readonly key: TestKey
  /** The published key set. */
  readonly jwks: { keys: JWK[] }
  /** Options for the plugin: this issuer, its audience, its static key set. */
  readonly pluginOptions: GriddyAuthOptions
  /** A signed token: `iss`, `aud`, `iat`, `exp` (and `azp`) filled unless overridden or omitted. */
  sign (claims?: Record<string, unknown>, options?: SignOptions): string
  /** A new key pair, not published. */
  createKey (kid?: string): Promise<TestKey>
  /** Publishes a new key and signs with it from now on (key rotation); older keys stay published unless `retire`. */
  rotate (options?: { retire?: boolean, kid?: string }): Promise<TestKey>
  /** Serves the key set at `/.well-known/jwks.json` on 127.0.0.1, reflecting later rotations. */
  serve (): Promise<ServedJwks>
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

export async function createTestKey (kid: string = randomUUID()): Promise<TestKey> {
  const { privateKey, publicKey } = await new Promise<{ privateKey: KeyObject, publicKey: KeyObject }>((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: 2048 }, (err, publicKey, privateKey) => {
      /* c8 ignore next -- key generation does not fail for valid parameters */
      if (err !== null) return reject(err)
      resolve({ privateKey, publicKey })
    })
  })
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } as JWK
  return { kid, privateKey, publicKey, jwk }
}

/** Signs a JWS over exactly `header` and `payload` (no defaults): for tokens no issuer would make. */
export function signToken (header: Record<string, unknown>, payload: unknown, key: TestKey, secret?: string): string {
  const input = `${b64(header)}.${b64(payload)}`
  if (header.alg === 'none') return `${input}.`
  if (header.alg === 'HS256') {
    const hmacKey = secret ?? (key.publicKey.export({ type: 'spki', format: 'pem' }) as string)
    return `${input}.${createHmac('sha256', hmacKey).update(input).digest('base64url')}`
  }
  return `${input}.${rsaSign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`
}

export async function createTestIssuer (options: TestIssuerOptions = {}): Promise<TestIssuer> {
  const issuer = options.issuer ?? 'https://issuer.test'
  const audience = options.audience ?? 'https://api.test'
  const ttl = options.ttl ?? 60
  const published: TestKey[] = [await createTestKey()]
  const jwks = { keys: published.map((key) => key.jwk) }
  const current = (): TestKey => published[published.length - 1] as TestKey

  const pluginOptions: GriddyAuthOptions = {
    issuer,
    audience,
    jwks,
    ...(options.authorizedParties !== undefined ? { authorizedParties: options.authorizedParties } : {})
  }

  function sign (claims: Record<string, unknown> = {}, signOptions: SignOptions = {}): string {
    const key = signOptions.key ?? current()
    const now = Math.floor(Date.now() / 1000)
    const payload: Record<string, unknown> = {
      iss: issuer,
      aud: audience,
      iat: now,
      exp: now + (signOptions.expiresIn ?? ttl),
      ...(options.authorizedParties?.[0] !== undefined ? { azp: options.authorizedParties[0] } : {}),
      ...(signOptions.notBefore !== undefined ? { nbf: now + signOptions.notBefore } : {}),
      ...claims
    }
    for (const claim of signOptions.omit ?? []) delete payload[claim]
    const header: Record<string, unknown> = { alg: signOptions.alg ?? 'RS256', typ: 'JWT' }
    const kid = signOptions.kid === undefined ? key.kid : signOptions.kid
    if (kid !== null) header.kid = kid
    Object.assign(header, signOptions.header)
    return signToken(header, payload, key, signOptions.secret)
  }

  async function rotate (rotateOptions: { retire?: boolean, kid?: string } = {}): Promise<TestKey> {
    const key = await createTestKey(rotateOptions.kid)
    if (rotateOptions.retire === true) published.length = 0
    published.push(key)
    jwks.keys.splice(0, jwks.keys.length, ...published.map((k) => k.jwk))
    return key
  }

  async function serve (): Promise<ServedJwks> {
    let requests = 0
    const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
      if (request.url !== '/.well-known/jwks.json') {
        response.writeHead(404).end()
        return
      }
      requests++
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    return {
      url,
      jwksUrl: `${url}/.well-known/jwks.json`,
      get requests () { return requests },
      close: () => new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
    }
  }

  return {
    issuer,
    audience,
    get key () { return current() },
    jwks,
    pluginOptions,
    sign,
    createKey: createTestKey,
    rotate,
    serve
  }
}

/** A webhook delivery as Clerk (through Svix) sends it: the body, and its headers. */
export interface ClerkWebhookDelivery {
  readonly payload: string
  /** `content-type`, `svix-id`, `svix-timestamp`, `svix-signature`. */
  readonly headers: Readonly<Record<string, string>>
}

export interface ClerkWebhookOptions {
  /** The delivery's `svix-id`. Default: a random one. */
  id?: string
  /** When it was sent (signed). Default: now; more than 5 minutes ago makes a stale delivery. */
  timestamp?: Date
}

/**
 * Signs a Clerk webhook event with the endpoint's signing secret
 * (`whsec_...`), exactly as Svix does, for tests of a `sessions.clerkWebhook`
 * route: POST `payload` with `headers`.
 *
 * @example
 * const delivery = signClerkWebhook(secret, { type: 'session.ended', data: { id: 'sess_1' } })
 * await app.inject({ method: 'POST', url: '/webhooks/clerk', payload: delivery.payload, headers: delivery.headers })
 */
export function signClerkWebhook (secret: string, event: { type: string, data: Record<string, unknown>, [member: string]: unknown }, options: ClerkWebhookOptions = {}): ClerkWebhookDelivery {
  const id = options.id ?? `msg_${randomUUID().replaceAll('-', '')}`
  const timestamp = options.timestamp ?? new Date()
  const payload = JSON.stringify({ object: 'event', timestamp: timestamp.getTime(), ...event })
  return {
    payload,
    headers: {
      'content-type': 'application/json',
      'svix-id': id,
      'svix-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
      'svix-signature': new Webhook(secret).sign(id, timestamp, payload)
    }
  }
}
