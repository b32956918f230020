/**
 * The ended sessions and users this instance knows, in memory: what the
 * request path consults, synchronously, on every request (cache hits too).
 *
 * A record is `id -> when it was ended` (epoch ms) and is kept
 * `maxTokenLifetime`, the longest a token issued before the end can still be
 * alive. Expired records are dropped from the old end of each map as new ones
 * arrive (Maps iterate in insertion order, and a record is re-inserted when
 * it is renewed), so memory holds about the records of the last lifetime,
 * without a timer.
 */
import type { AuthContext } from '../auth-context'

export type RecordKind = 'session' | 'user'

export class EndedRecords {
  private readonly sessions = new Map<string, number>()
  private readonly users = new Map<string, number>()

  constructor (private readonly lifetime: number) {}

  /** How many records are held (live or not yet pruned). */
  get size (): number {
    return this.sessions.size + this.users.size
  }

  /**
   * Records that `id` was ended at `at` (ms). Returns whether it changed
   * anything: a record already known with the same or a later time, or one
   * already expired (a late message), changes nothing.
   */
  add (kind: RecordKind, id: string, at: number, now: number): boolean {
    if (now - at > this.lifetime) return false
    const map = kind === 'session' ? this.sessions : this.users
    const known = map.get(id)
    if (known !== undefined && known >= at) return false
    map.delete(id)
    map.set(id, at)
    this.prune(map, now)
    return true
  }

  /** Every live record, for writing back to a Redis that lost them. */
  * live (now: number): Generator<[RecordKind, string, number]> {
    for (const [id, at] of this.sessions) if (now - at <= this.lifetime) yield ['session', id, at]
    for (const [id, at] of this.users) if (now - at <= this.lifetime) yield ['user', id, at]
  }

  /**
   * Whether a verified token is refused: its `sid` was ended, or its user's
   * sessions were ended at or after its `iat`. `iat` has whole-second
   * precision, so a token of the same second as the end cannot be told apart
   * from one issued just before it: it is refused, as is a token without a
   * numeric `iat` (fail closed; its user signs in again).
   */
  refuses (context: AuthContext, now: number): boolean {
    if (this.sessions.size !== 0 && context.sessionId !== undefined) {
      const at = this.sessions.get(context.sessionId)
      if (at !== undefined && now - at <= this.lifetime) return true
    }
    if (this.users.size !== 0) {
      const at = this.users.get(context.userId)
      if (at !== undefined && now - at <= this.lifetime) {
        const iat = context.claims.iat
        return typeof iat !== 'number' || !Number.isFinite(iat) || iat * 1000 <= at
      }
    }
    return false
  }

  private prune (map: Map<string, number>, now: number): void {
    for (const [id, at] of map) {
      if (now - at <= this.lifetime) break
      map.delete(id)
    }
  }
}
