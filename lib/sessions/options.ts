/**
 * The `sessions` option (SPEC §11): its public shape, and its validation at
 * start-up, with messages naming the nested option (`sessions.prefix`...).
 *
 * The Redis client is typed structurally, by the few methods the plugin
 * calls: an ioredis client fits, and this package's typings never import
 * ioredis, so an app without it installs nothing more.
 */

/** The Redis connection that receives ended-session messages: what the plugin gets from `duplicate()`. */
export interface SessionsRedisSubscriber {
  subscribe (channel: string): Promise<unknown>
  on (event: string, listener: (...args: any[]) => void): unknown
  removeListener (event: string, listener: (...args: any[]) => void): unknown
  disconnect (): void
  /** ioredis' connection state; the plugin retries a failed sync only while it is `'ready'` (else it waits for the `'ready'` event). */
  readonly status: string
}

/**
 * The part of an ioredis client (`new Redis(...)`, ioredis 5 or 6) the plugin
 * uses. A subscribed connection cannot run commands, so the plugin opens its
 * own with `duplicate()` and closes it on `app.close()`; your client stays yours.
 */
export interface SessionsRedis {
  set (key: string, value: string, millisecondsToken: 'PX', milliseconds: number): Promise<unknown>
  publish (channel: string, message: string): Promise<unknown>
  scan (cursor: string, patternToken: 'MATCH', pattern: string, countToken: 'COUNT', count: number): Promise<[cursor: string, keys: string[]]>
  mget (keys: string[]): Promise<Array<string | null>>
  duplicate (): SessionsRedisSubscriber
  on (event: string, listener: (...args: any[]) => void): unknown
  removeListener (event: string, listener: (...args: any[]) => void): unknown
  /** ioredis' connection state; the plugin retries a failed sync only while it is `'ready'` (else it waits for the `'ready'` event). */
  readonly status: string
}

/** `sessions`: ended sessions and users stop working at once (SPEC §11). */
export interface SessionsOptions {
  /** An ioredis client: ends shared by every instance using the same Redis and prefix. Omitted: this process only. */
  redis?: SessionsRedis
  /** Prefix of the plugin's keys and channel in Redis. Default `'griddy-auth:'`. */
  prefix?: string
  /** How long an ended-session or ended-user record is kept, in ms: at least your tokens' lifetime. Default 3600000 (1 h). */
  maxTokenLifetime?: number
  /** Longest wait for Redis, in ms: start-up, and each `endSession()` / `endUserSessions()`. Default 2000. */
  redisTimeout?: number
  /** A public `POST` route at `path` taking Clerk's webhooks, signed (Svix) with `secret` (`whsec_...`). */
  clerkWebhook?: { path: string, secret: string }
}

export interface ResolvedSessionsOptions {
  readonly redis: SessionsRedis | undefined
  readonly prefix: string
  readonly maxTokenLifetime: number
  readonly redisTimeout: number
  readonly clerkWebhook: { readonly path: string, readonly secret: string } | undefined
}

const known = new Set(['redis', 'prefix', 'maxTokenLifetime', 'redisTimeout', 'clerkWebhook'])
const redisMethods = ['set', 'publish', 'scan', 'mget', 'duplicate', 'on', 'removeListener'] as const
/** setTimeout's limit: a longer delay fires at once. */
const maxDelay = 2 ** 31 - 1

function fail (option: string, problem: string): never {
  throw new TypeError(`fastify-griddy-auth: option "sessions${option === '' ? '' : `.${option}`}" ${problem}`)
}

function isObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function milliseconds (option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > maxDelay) {
    fail(option, `must be a whole number of milliseconds, 1 to ${maxDelay}, got ${String(value)}`)
  }
  return value
}

function resolveRedis (redis: unknown): SessionsRedis | undefined {
  if (redis === undefined) return undefined
  const missing = isObject(redis) || typeof redis === 'function'
    ? redisMethods.filter((name) => typeof (redis as Record<string, unknown>)[name] !== 'function')
    : redisMethods
  if (missing.length > 0) {
    fail('redis', `must be an ioredis client (new Redis(...)); missing: ${missing.map((name) => `${name}()`).join(', ')}`)
  }
  // ioredis prefixes keys but not SCAN patterns nor what SCAN returns: the load would find nothing (fail open).
  const keyPrefix = (redis as { options?: { keyPrefix?: unknown } }).options?.keyPrefix
  if (typeof keyPrefix === 'string' && keyPrefix !== '') {
    fail('redis', `must be a client without keyPrefix (it has ${JSON.stringify(keyPrefix)}); set sessions.prefix instead`)
  }
  return redis as SessionsRedis
}

function resolveWebhook (raw: unknown): { path: string, secret: string } | undefined {
  if (raw === undefined) return undefined
  if (!isObject(raw)) fail('clerkWebhook', 'must be { path, secret }')
  for (const name of Object.keys(raw)) {
    if (name !== 'path' && name !== 'secret') fail(`clerkWebhook.${name}`, 'is not an option (expected path and secret)')
  }
  const { path, secret } = raw
  if (typeof path !== 'string' || !path.startsWith('/')) fail('clerkWebhook.path', 'must be a route path starting with "/", e.g. "/webhooks/clerk"')
  // The signing secret Clerk shows for the endpoint: "whsec_" and base64.
  if (typeof secret !== 'string' || !/^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(secret) || secret.length === 6) {
    fail('clerkWebhook.secret', 'must be the endpoint\'s signing secret, "whsec_" followed by base64 (Clerk dashboard -> Webhooks -> your endpoint -> Signing Secret)')
  }
  return { path, secret }
}

/** Validates `sessions`; `undefined` when it is not configured. Throws a TypeError naming the option. */
export function resolveSessionsOptions (raw: unknown): ResolvedSessionsOptions | undefined {
  if (raw === undefined) return undefined
  if (!isObject(raw)) fail('', 'must be an object: {} for this process only, or { redis } to share ends between instances')
  for (const name of Object.keys(raw)) {
    if (!known.has(name)) fail(name, `is not an option (expected one of: ${[...known].join(', ')})`)
  }
  const prefix = raw.prefix === undefined ? 'griddy-auth:' : raw.prefix
  if (typeof prefix !== 'string' || prefix.length === 0) fail('prefix', 'must be a non-empty string')
  return {
    redis: resolveRedis(raw.redis),
    prefix,
    maxTokenLifetime: milliseconds('maxTokenLifetime', raw.maxTokenLifetime, 3_600_000),
    redisTimeout: milliseconds('redisTimeout', raw.redisTimeout, 2_000),
    clerkWebhook: resolveWebhook(raw.clerkWebhook)
  }
}
