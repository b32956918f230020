/**
 * Shares ended sessions between instances through Redis, off the request
 * path: each instance keeps its own copy in memory (records.ts) and Redis
 * keeps it current.
 *
 * Layout (prefix `griddy-auth:` by default):
 * - `<prefix>session:<sid>` and `<prefix>user:<userId>`: the time of the end
 *   (epoch ms, a decimal string), with a TTL of `maxTokenLifetime`, so
 *   records disappear by themselves;
 * - `<prefix>ended`: a channel on which each end is published as
 *   `{"kind":"session"|"user","id":"...","at":<ms>}`.
 *
 * A sync (at start-up, after every (re)connection of either client, and
 * after a failure) subscribes, then loads every key under the prefix (SCAN +
 * MGET), then writes back the live records this instance knows and Redis
 * lacks (ends made while Redis was unreachable, or lost by a Redis restarted
 * without persistence). Subscribing first means an end published while the
 * keys are read is still seen. Every command is bounded by `redisTimeout`:
 * nothing waits on Redis for longer, whatever the client's own options.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { EndedRecords, RecordKind } from './records'
import type { ResolvedSessionsOptions, SessionsRedis, SessionsRedisSubscriber } from './options'

const scanCount = 1000
const firstRetryDelay = 1000
const maxRetryDelay = 10_000

/** A Redis command that did not answer in time, or failed. */
class RedisUnavailable extends Error {}

function within<T> (ms: number, what: string, promise: Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new RedisUnavailable(`${what}: no answer within ${ms} ms`)), ms)
    // A process that is otherwise done need not stay up for a Redis that does not answer.
    timer.unref()
    promise.then((value) => {
      clearTimeout(timer)
      resolve(value)
    }, (err: unknown) => {
      clearTimeout(timer)
      reject(new RedisUnavailable(`${what}: ${(err as Error).message}`))
    })
  })
}

/** A prefix as a SCAN pattern, its glob characters escaped. */
function globEscape (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

export class RedisSync {
  private readonly channel: string
  private subscriber: SessionsRedisSubscriber | undefined
  private healthy = true
  private outageSince = 0
  private closed = false
  /** The sync running, if any, and whether another must follow it. */
  private syncing: Promise<void> | undefined
  private subscribing = false
  private again = false
  private retryTimer: NodeJS.Timeout | undefined
  private retryDelay = firstRetryDelay

  private readonly onReady = (): void => { this.sync() }
  private readonly onClose = (): void => { this.outage('connection closed') }
  private readonly onError = (err: Error): void => { this.outage(err.message) }
  private readonly onMessage = (_channel: string, message: string): void => { this.receive(message) }

  constructor (
    private readonly redis: SessionsRedis,
    private readonly options: ResolvedSessionsOptions,
    private readonly records: EndedRecords,
    private readonly log: FastifyBaseLogger
  ) {
    this.channel = `${options.prefix}ended`
  }

  /** Opens the subscriber and runs the first sync: resolves within about `redisTimeout`, Redis up or not. */
  async start (): Promise<void> {
    const subscriber = this.redis.duplicate()
    for (const name of ['subscribe', 'on', 'removeListener', 'disconnect'] as const) {
      if (typeof subscriber?.[name] !== 'function') {
        throw new TypeError(`fastify-griddy-auth: option "sessions.redis": its duplicate() gave no ${name}(); pass an ioredis client`)
      }
    }
    this.subscriber = subscriber
    subscriber.on('message', this.onMessage)
    // Also keeps ioredis from printing every failed reconnection attempt of our connection.
    subscriber.on('error', this.onError)
    subscriber.on('ready', this.onReady)
    subscriber.on('close', this.onClose)
    this.redis.on('ready', this.onReady)
    this.redis.on('close', this.onClose)
    await this.sync()
  }

  /** Stores and publishes one end. Rejects (within `redisTimeout`) when Redis does not take it. */
  async store (kind: RecordKind, id: string, at: number): Promise<void> {
    try {
      await this.write(kind, id, at, Date.now())
    } catch (err) {
      this.failed(err)
      throw new Error(`fastify-griddy-auth: the end could not be stored in Redis (${(err as Error).message}); ` +
        'this instance refuses its tokens already, and writes it to Redis once Redis answers again')
    }
  }

  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.retryTimer)
    this.redis.removeListener('ready', this.onReady)
    this.redis.removeListener('close', this.onClose)
    const subscriber = this.subscriber
    if (subscriber === undefined) return
    subscriber.removeListener('message', this.onMessage)
    subscriber.removeListener('ready', this.onReady)
    subscriber.removeListener('close', this.onClose)
    subscriber.disconnect()
  }

  private write (kind: RecordKind, id: string, at: number, now: number): Promise<unknown> {
    // At least 1 ms: PX 0 is an error, and a record at the very end of its life may as well go in Redis too.
    const ttl = Math.max(1, at + this.options.maxTokenLifetime - now)
    const key = `${this.options.prefix}${kind}:${id}`
    const message = JSON.stringify({ kind, id, at })
    return within(this.options.redisTimeout, 'SET and PUBLISH',
      Promise.all([this.redis.set(key, String(at), 'PX', ttl), this.redis.publish(this.channel, message)]))
  }

  /** A message on the channel (the only one subscribed). */
  private receive (message: string): void {
    let parsed: unknown
    try {
      parsed = JSON.parse(message)
    } catch {
      return
    }
    const { kind, id, at } = (parsed ?? {}) as Record<string, unknown>
    if ((kind === 'session' || kind === 'user') && typeof id === 'string' && id !== '' && typeof at === 'number' && Number.isFinite(at)) {
      this.records.add(kind, id, at, Date.now())
    }
  }

  /** Runs a sync, or asks the running one to run again. Never rejects. */
  private sync (): Promise<void> {
    if (this.syncing !== undefined) {
      // A connection that comes up while the running sync subscribes is the one it is subscribing on.
      if (!this.subscribing) this.again = true
      return this.syncing
    }
    clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    this.syncing = (async () => {
      do {
        this.again = false
        try {
          await this.syncOnce()
        } catch (err) {
          this.failed(err)
          break
        }
      } while (this.again)
      this.syncing = undefined
    })()
    return this.syncing
  }

  private async syncOnce (): Promise<void> {
    const timeout = this.options.redisTimeout
    this.subscribing = true
    try {
      await within(timeout, 'SUBSCRIBE', (this.subscriber as SessionsRedisSubscriber).subscribe(this.channel))
    } finally {
      this.subscribing = false
    }
    const { prefix } = this.options
    const inRedis = new Set<string>()
    let cursor = '0'
    do {
      const [next, keys] = await within(timeout, 'SCAN', this.redis.scan(cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', scanCount))
      cursor = next
      const values = keys.length === 0 ? [] : await within(timeout, 'MGET', this.redis.mget(keys))
      const now = Date.now()
      keys.forEach((key, i) => {
        const name = key.slice(prefix.length)
        const kind: RecordKind | undefined = name.startsWith('session:') ? 'session' : name.startsWith('user:') ? 'user' : undefined
        const at = Number(values[i])
        if (kind === undefined || values[i] === null || !Number.isFinite(at)) return
        inRedis.add(name)
        this.records.add(kind, name.slice(kind.length + 1), at, now)
      })
    } while (cursor !== '0')
    const now = Date.now()
    const missing = [...this.records.live(now)].filter(([kind, id]) => !inRedis.has(`${kind}:${id}`))
    await Promise.all(missing.map(([kind, id, at]) => this.write(kind, id, at, now)))
    this.recovered(inRedis.size, missing.length)
  }

  private outage (reason: string): void {
    if (this.closed || !this.healthy) return
    this.healthy = false
    this.outageSince = Date.now()
    this.log.error({ reason, knownRecords: this.records.size },
      'griddy-auth: Redis is unreachable; ended sessions known to this instance are still refused, new ends are not shared until it answers again')
  }

  private recovered (loaded: number, written: number): void {
    this.retryDelay = firstRetryDelay
    if (this.healthy) return
    this.healthy = true
    this.log.warn({ outageMs: Date.now() - this.outageSince, loaded, written },
      'griddy-auth: Redis answers again; ended sessions reloaded and shared')
  }

  /**
   * After a failure: an outage, and a later sync. A reconnection starts one
   * too, but a Redis that is slow or paused keeps its connections up and
   * never reconnects, so a timer retries, with a growing delay.
   */
  private failed (err: unknown): void {
    this.outage((err as Error).message)
    // Before start() (an end before ready()), the first sync will write it back.
    if (this.closed || this.retryTimer !== undefined || this.subscriber === undefined) return
    const delay = this.retryDelay
    this.retryDelay = Math.min(2 * delay, maxRetryDelay)
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      // A client that is reconnecting syncs on its 'ready' event; queueing commands meanwhile would only pile them up.
      for (const client of [this.redis, this.subscriber as SessionsRedisSubscriber]) {
        if (client.status !== 'ready') return
      }
      this.sync()
    }, delay)
    this.retryTimer.unref()
  }
}
