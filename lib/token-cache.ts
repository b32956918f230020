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

interface Slot<T> extends CachedEntry<T> {
  /** The whole token: the map key is only its end. */
  readonly token: string
  /** When it was last (re)inserted, counted in insertions. */
  tick: number
}

/**
 * How many characters of a token's end key the map. A Map hashes every
 * character of a new string, and each request brings a new string of ~700
 * characters; its last 32 are signature bytes (24 of them), as good a hash
 * input as the whole. A hit is then confirmed against the whole token, so
 * two tokens with the same end are never confused: the second simply takes
 * the first one's place, and only a token whose signature was verified is
 * ever stored.
 */
const keyLength = 32
const keyOf = (token: string): string => token.length > keyLength ? token.slice(-keyLength) : token

export class TokenCache<T> {
  private readonly entries = new Map<string, Slot<T>>()
  private tick = 0
  /** A hit older than this many insertions is moved to the young end. */
  private readonly refreshAfter: number

  constructor (private readonly max: number) {
    this.refreshAfter = max >> 1
  }

  get size (): number {
    return this.entries.size
  }

  /**
   * The live entry for `token`; dead entries are dropped. A hit in the older
   * half is re-inserted as most recently used; a hit in the younger half is
   * left in place, so a hot token costs one map lookup instead of a delete
   * and an insert. The bound still holds, and an entry used within the last
   * max/2 insertions is never the one evicted.
   */
  get (token: string, now: number): T | undefined {
    const key = keyOf(token)
    const slot = this.entries.get(key)
    if (slot === undefined || slot.token !== token) return undefined
    if (now > slot.expiresAt || slot.key.revoked) {
      this.entries.delete(key)
      return undefined
    }
    if (this.tick - slot.tick >= this.refreshAfter) {
      this.entries.delete(key)
      slot.tick = ++this.tick
      this.entries.set(key, slot)
    }
    return slot.value
  }

  set (token: string, entry: CachedEntry<T>): void {
    if (this.max === 0) return
    const key = keyOf(token)
    this.entries.delete(key)
    if (this.entries.size >= this.max) {
      // Maps iterate in insertion order: the first key is the least recently (re)inserted.
      this.entries.delete(this.entries.keys().next().value as string)
    }
    this.entries.set(key, { token, value: entry.value, expiresAt: entry.expiresAt, key: entry.key, tick: ++this.tick })
  }
}
