/**
 * A remote key set (one JWKS URL, or one issuer's discovery document), kept
 * calm whatever the provider does (SPEC §9). get-jwks fetches one key at a
 * time; this keeps the keys it brought, checked, in a map of its own, so a
 * known key is answered synchronously and never waits for get-jwks.
 *
 * - one fetch at a time per set, shared: requests that arrive during a
 *   fetch wait for it, then look again (100 first requests: one fetch);
 * - a key is fresh for `ttl`; past it, it keeps answering while one
 *   background refetch of that key runs (stale-while-revalidate); a refetch
 *   that no longer finds it revokes it (and the tokens it verified);
 * - a fetch that does not find an unknown `kid` (a miss) starts the
 *   cooldown: until it ends, unknown `kid`s get UNKNOWN_KEY without a
 *   fetch, so a flood of random `kid`s costs one request per cooldown. A
 *   fetch that finds its key starts nothing: a provider signing with two or
 *   three keys has each accepted the first time it is seen;
 * - a `kid` the provider publishes but that fails the strength checks, or
 *   one it removed, is remembered for `ttl` as unusable: its tokens get
 *   UNKNOWN_KEY at once, and they are no miss (tokens of a retired key
 *   still in circulation must not hold back the key that replaced it);
 * - a failed fetch keeps the known keys (stale-if-error) and starts a
 *   back-off (doubling from 1 s, at most `cooldown`, longer if the provider
 *   said `Retry-After`): until it ends, unknown `kid`s get 503 at once;
 * - an outage is logged when it starts and when it ends, not per request.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Rejection } from '../errors'
import { toSigningKey, type SigningKey } from './jwk'
import type { Failure, FetchOutcome, KeySource } from './source'

export interface KeySetTimings {
  readonly ttl: number
  readonly cooldown: number
}

export type KeyLookup = SigningKey | Rejection

interface Entry {
  /** Undefined: a `kid` the provider published that is not used (refused by the checks, or removed since). */
  readonly key: SigningKey | undefined
  readonly staleAt: number
}

const unknownKey: Rejection = Object.freeze({ code: 'GRIDDY_AUTH_UNKNOWN_KEY' })

export class RemoteKeySet {
  private readonly entries = new Map<string, Entry>()
  private inflight: Promise<void> | undefined
  private cooldownUntil = 0
  private failures = 0
  private failingSince = 0
  private retryAt = 0

  constructor (
    private readonly source: KeySource,
    private readonly timings: KeySetTimings,
    private readonly log: FastifyBaseLogger
  ) {}

  /** True while the last fetch of this set failed. */
  get failing (): boolean {
    return this.failures > 0
  }

  lookup (kid: string): KeyLookup | Promise<KeyLookup> {
    const entry = this.entries.get(kid)
    if (entry !== undefined) {
      const { key, staleAt } = entry
      const now = Date.now()
      if (now < staleAt) return key ?? unknownKey
      if (key !== undefined) {
        // The known key answers now; its refetch runs in the background (and never rejects).
        // eslint-disable-next-line no-void
        if (this.inflight === undefined && now >= this.retryAt) void this.fetch(kid)
        return key
      }
      this.entries.delete(kid) // remembered long enough: unknown again
    }
    return this.lookupUnknown(kid)
  }

  private lookupUnknown (kid: string): KeyLookup | Promise<KeyLookup> {
    if (this.inflight !== undefined) return this.inflight.then(() => this.entries.get(kid)?.key ?? this.lookup(kid))
    const now = Date.now()
    if (this.failing) {
      if (now < this.retryAt) return this.unavailable(now)
    } else if (now < this.cooldownUntil) {
      return unknownKey
    }
    return this.fetch(kid).then(() => this.settled(kid))
  }

  /** The answer for `kid` right after its own fetch. */
  private settled (kid: string): KeyLookup {
    const entry = this.entries.get(kid)
    if (entry !== undefined) return entry.key ?? unknownKey
    return this.failing ? this.unavailable(Date.now()) : unknownKey
  }

  private unavailable (now: number): Rejection {
    return { code: 'GRIDDY_AUTH_UNAVAILABLE', retryAfter: Math.max(0, this.retryAt - now) / 1000 }
  }

  /** Fetches `kid`; never rejects: the outcome is recorded in this object's state. */
  private fetch (kid: string): Promise<void> {
    const fetching = this.source.fetchKey(kid)
      .then((outcome) => this.record(kid, outcome))
      .finally(() => { this.inflight = undefined })
    this.inflight = fetching
    return fetching
  }

  private record (kid: string, outcome: FetchOutcome): void {
    const now = Date.now()
    if ('failed' in outcome) return this.recordFailure(outcome, now)
    this.recordHealthy(now)
    const previous = this.entries.get(kid)?.key
    const found = 'jwk' in outcome ? toSigningKey(outcome.jwk) : undefined
    if (found !== undefined && found.kid === kid) {
      // Unchanged material keeps its object, so the tokens it verified stay cached.
      const key = previous !== undefined && previous.pem === found.pem ? previous : found
      if (previous !== undefined && key !== previous) previous.revoked = true
      this.entries.set(kid, { key, staleAt: now + this.timings.ttl })
    } else if (previous !== undefined || 'jwk' in outcome) {
      if (previous !== undefined) previous.revoked = true
      this.entries.set(kid, { key: undefined, staleAt: now + this.timings.ttl })
    } else {
      this.cooldownUntil = now + this.timings.cooldown
    }
  }

  private recordHealthy (now: number): void {
    if (!this.failing) return
    this.log.warn({ ...this.source.where, failedAttempts: this.failures, outageMs: now - this.failingSince },
      'griddy-auth: signing keys are reachable again')
    this.failures = 0
    this.retryAt = 0
  }

  private recordFailure (failure: Failure, failedAt: number): void {
    if (!this.failing) {
      this.failingSince = failedAt
      this.log.error({ ...this.source.where, reason: failure.failed, knownKeys: this.knownKeys() },
        'griddy-auth: JWKS fetch failed; known keys stay in use, unknown keys get 503 until it recovers')
    }
    this.failures++
    const askedWait = (failure.retryAfter ?? 0) * 1000
    const backoff = Math.max(1000 * 2 ** Math.min(this.failures - 1, 20), askedWait)
    this.retryAt = failedAt + Math.min(this.timings.cooldown, backoff)
  }

  private knownKeys (): number {
    let count = 0
    for (const entry of this.entries.values()) if (entry.key !== undefined) count++
    return count
  }
}
