/**
 * A remote key set (one JWKS URL), kept calm whatever the provider does
 * (SPEC §9):
 * - fetched lazily, one fetch shared by every waiting request, the whole
 *   set kept (a second `kid` of the same response costs nothing);
 * - fresh for `ttl`; a known key past it is still served while one
 *   background refetch runs (stale-while-revalidate);
 * - an unknown `kid` refetches at most once per `cooldown` while the
 *   provider is healthy (the first, lazy fetch does not count), so a flood
 *   of random `kid`s costs the provider one request per cooldown;
 * - a failed fetch keeps the known keys (stale-if-error) and starts a
 *   back-off (doubling from 1 s, at most `cooldown`, longer if the provider
 *   said `Retry-After`): until it ends, unknown `kid`s get 503 at once;
 * - an outage is logged when it starts and when it ends, not per request.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Rejection } from './errors'
import { fetchJson, JwksFetchError } from './jwks-fetch'
import { toKeyMap, type SigningKey } from './jwk'
import { redactUrl } from './redact-url'

export interface KeySetTimings {
  readonly ttl: number
  readonly cooldown: number
  readonly timeout: number
}

export type KeyLookup = SigningKey | Rejection

const unknownKey: Rejection = Object.freeze({ code: 'GRIDDY_AUTH_UNKNOWN_KEY' })

export class RemoteKeySet {
  private keys = new Map<string, SigningKey>()
  private attempted = false
  private fetchedAt = -Infinity
  private missRefetchAt = -Infinity
  private inflight: Promise<void> | undefined
  private failures = 0
  private failingSince = 0
  private retryAt = 0

  constructor (
    readonly url: string,
    private readonly timings: KeySetTimings,
    private readonly log: FastifyBaseLogger
  ) {}

  /** True while the last fetch of this set failed. */
  get failing (): boolean {
    return this.failures > 0
  }

  lookup (kid: string): KeyLookup | Promise<KeyLookup> {
    const now = Date.now()
    const key = this.keys.get(kid)
    if (key !== undefined) {
      if (now - this.fetchedAt >= this.timings.ttl && this.inflight === undefined && now >= this.retryAt) {
        // The known key answers now; the outcome is recorded for later requests (refresh never rejects).
        // eslint-disable-next-line no-void
        void this.refresh()
      }
      return key
    }
    if (this.inflight !== undefined) return this.inflight.then(() => this.afterFetch(kid))
    if (this.attempted) {
      if (this.failing) {
        if (now < this.retryAt) return this.unavailable(now)
      } else if (now - this.missRefetchAt < this.timings.cooldown) {
        // However stale the set is: else a short jwksCacheTtl would let a flood of random kids refetch once per ttl.
        return unknownKey
      }
      this.missRefetchAt = now
    }
    return this.refresh().then(() => this.afterFetch(kid))
  }

  private afterFetch (kid: string): KeyLookup {
    return this.keys.get(kid) ?? (this.failing ? this.unavailable(Date.now()) : unknownKey)
  }

  private unavailable (now: number): Rejection {
    return { code: 'GRIDDY_AUTH_UNAVAILABLE', retryAfter: Math.max(0, this.retryAt - now) / 1000 }
  }

  /** Fetches the set; never rejects: the outcome is recorded in this object's state. */
  private refresh (): Promise<void> {
    this.attempted = true
    const fetching = fetchJson(this.url, this.timings.timeout)
      .then((body) => {
        const keys = toKeyMap(body, this.keys)
        if (keys === undefined) throw new JwksFetchError('body is not a JSON key set')
        this.recordSuccess(keys)
      })
      .catch((err: unknown) => this.recordFailure(err))
      .finally(() => { this.inflight = undefined })
    this.inflight = fetching
    return fetching
  }

  private recordSuccess (keys: Map<string, SigningKey>): void {
    this.keys = keys
    this.fetchedAt = Date.now()
    if (this.failing) {
      this.log.warn({ jwksUrl: redactUrl(this.url), failedAttempts: this.failures, outageMs: this.fetchedAt - this.failingSince },
        'griddy-auth: signing keys are reachable again')
    }
    this.failures = 0
    this.retryAt = 0
  }

  private recordFailure (err: unknown): void {
    const failedAt = Date.now()
    const reason = err instanceof JwksFetchError ? err.message : 'unexpected error'
    if (!this.failing) {
      this.failingSince = failedAt
      this.log.error({ jwksUrl: redactUrl(this.url), reason, knownKeys: this.keys.size },
        'griddy-auth: JWKS fetch failed; known keys stay in use, unknown keys get 503 until it recovers')
    }
    this.failures++
    const askedWait = err instanceof JwksFetchError ? (err.retryAfter ?? 0) * 1000 : 0
    const backoff = Math.max(1000 * 2 ** Math.min(this.failures - 1, 20), askedWait)
    this.retryAt = failedAt + Math.min(this.timings.cooldown, backoff)
  }
}
