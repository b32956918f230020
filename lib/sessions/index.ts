/**
 * Sign-out ends access (SPEC §11): `endSession()` / `endUserSessions()`, the
 * in-memory records the request path consults, their sharing through Redis,
 * and Clerk's webhooks. Wired into the plugin's hooks here, so lib/index.ts
 * only hands over the options.
 */
import type { FastifyInstance } from 'fastify'
import type { AuthContext } from '../auth-context'
import type { ResolvedSessionsOptions } from './options'
import { EndedRecords, type RecordKind } from './records'
import { RedisSync } from './redis-sync'
import { registerClerkWebhook } from './clerk-webhook'

export interface Sessions {
  /** Whether a verified token's session or user was ended: a Map lookup or two, synchronous. */
  refuses (context: AuthContext, now: number): boolean
  endSession (sessionId: string): Promise<void>
  endUserSessions (userId: string): Promise<void>
}

function describe (value: unknown): string {
  return typeof value === 'string' ? 'an empty string' : value === null ? 'null' : typeof value
}

export function setUpSessions (fastify: FastifyInstance, options: ResolvedSessionsOptions): Sessions {
  const records = new EndedRecords(options.maxTokenLifetime)
  const sync = options.redis === undefined ? undefined : new RedisSync(options.redis, options, records, fastify.log)

  async function end (kind: RecordKind, id: unknown, method: string): Promise<void> {
    if (typeof id !== 'string' || id.length === 0) {
      throw new TypeError(`fastify-griddy-auth: ${method}() needs a non-empty string, got ${describe(id)}`)
    }
    const at = Date.now()
    // Refused here at once; then shared.
    records.add(kind, id, at, at)
    await sync?.store(kind, id, at)
  }

  const sessions: Sessions = {
    refuses: (context, now) => records.refuses(context, now),
    endSession: (sessionId) => end('session', sessionId, 'endSession'),
    endUserSessions: (userId) => end('user', userId, 'endUserSessions')
  }

  if (sync !== undefined) {
    fastify.addHook('onReady', () => sync.start())
    fastify.addHook('onClose', () => sync.close())
  }
  if (options.clerkWebhook !== undefined) registerClerkWebhook(fastify, options.clerkWebhook, sessions)
  return sessions
}

/** `endSession()` / `endUserSessions()` of a plugin registered without `sessions`: a mistake, said at once. */
export function sessionsNotConfigured (method: string): () => Promise<never> {
  return async () => {
    throw new TypeError(`fastify-griddy-auth: ${method}() needs the "sessions" option (sessions: {} for this process only, or sessions: { redis } to share ends between instances)`)
  }
}
