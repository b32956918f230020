/**
 * The verified-token cache (SPEC §8): a bounded LRU from the token string to
 * the result of its verification, so a token reused for its whole lifetime
 * costs one RSA verification. An entry never outlives the token's `exp` plus
 * tolerance, nor the key that signed it: a key dropped from its JWKS takes
 * its cached tokens with it.
 */

export interface CachedEntry<T> {
  readonly value: T
  /** Epoch ms after which the entry is dead (exp + tolerance). */
  readonly expiresAt: number
  /** The signing key's liveness, shared with the key store. */
  readonly key: { readonly revoked: boolean }
}

export class TokenCache<T> {
  private readonly entries = new Map<string, CachedEntry<T>>()
  constructor (private readonly max: number) {}

  get size (): number {
    return this.entries.size
  }

  /** The live entry for `token`, refreshed as most recently used; dead entries are dropped. */
  get (token: string, now: number): T | undefined {
    const entry = this.entries.get(token)
    if (entry === undefined) return undefined
    this.entries.delete(token)
    if (now > entry.expiresAt || entry.key.revoked) return undefined
    this.entries.set(token, entry)
    return entry.value
  }

  set (token: string, entry: CachedEntry<T>): void {
    if (this.max === 0) return
    this.entries.delete(token)
    if (this.entries.size >= this.max) {
      // Maps iterate in insertion order, and get() re-inserts: the first key is the least recently used.
      this.entries.delete(this.entries.keys().next().value as string)
    }
    this.entries.set(token, entry)
  }
}
