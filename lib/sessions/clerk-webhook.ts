/**
 * Clerk's webhooks (`sessions.clerkWebhook`): a public `POST` route that
 * verifies the delivery's Svix signature and ends what Clerk ended.
 *
 * The signature is checked by `standardwebhooks`, the verifier Svix's own
 * SDK delegates to (svix 2's `Webhook` only renames the `svix-*` headers,
 * as done here), over the raw body: the route lives in its own encapsulated
 * context with a buffer parser, so the app's other routes keep their parsers.
 * A missing, forged or stale (over 5 minutes) signature is a 400 and changes
 * nothing. Ending is idempotent, so a replayed delivery is harmless.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify'
import { Webhook } from 'standardwebhooks'

export interface WebhookActions {
  endSession (sessionId: string): Promise<void>
  endUserSessions (userId: string): Promise<void>
}

/** Clerk event types and what each ends (with `data.id`). */
const actions: Readonly<Record<string, keyof WebhookActions>> = {
  'session.ended': 'endSession',
  'session.removed': 'endSession',
  'session.revoked': 'endSession',
  'user.deleted': 'endUserSessions'
}

const empty = Buffer.alloc(0)
/** Not an operation of the app's API: @fastify/swagger leaves out a route with `schema.hide` (a key its own typings add). */
const hidden = { hide: true } as FastifySchema

function header (request: FastifyRequest, svix: string, standard: string): string {
  const value = request.headers[svix] ?? request.headers[standard]
  return typeof value === 'string' ? value : ''
}

function answer (reply: FastifyReply, statusCode: 400 | 503, error: string, message: string): FastifyReply {
  return reply.code(statusCode).send({ statusCode, error, message })
}

export function registerClerkWebhook (fastify: FastifyInstance, options: { path: string, secret: string }, end: WebhookActions): void {
  const verifier = new Webhook(options.secret)

  async function receive (request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const body = Buffer.isBuffer(request.body) ? request.body : empty
    try {
      verifier.verify(body, {
        'webhook-id': header(request, 'svix-id', 'webhook-id'),
        'webhook-timestamp': header(request, 'svix-timestamp', 'webhook-timestamp'),
        'webhook-signature': header(request, 'svix-signature', 'webhook-signature')
      }, { jsonParse: false })
    } catch (err) {
      request.log.warn({ reason: (err as Error).message }, 'griddy-auth: Clerk webhook refused: its signature does not verify')
      return answer(reply, 400, 'Bad Request', 'Invalid webhook signature.')
    }

    let event: { type?: unknown, data?: { id?: unknown } }
    try {
      event = JSON.parse(body.toString('utf8')) ?? {}
    } catch {
      return answer(reply, 400, 'Bad Request', 'Invalid webhook payload.')
    }
    const action = typeof event.type === 'string' && Object.hasOwn(actions, event.type) ? actions[event.type] : undefined
    if (action === undefined) return { received: true }
    const id = event.data?.id
    if (typeof id !== 'string' || id === '') return answer(reply, 400, 'Bad Request', 'Invalid webhook payload: no data.id.')
    try {
      await end[action](id)
    } catch {
      // Applied here, not yet in Redis: a 503 makes Svix deliver it again later.
      return answer(reply, 503, 'Service Unavailable', 'The end could not be shared yet; deliver again.')
    }
    request.log.info({ event: event.type, id }, 'griddy-auth: Clerk webhook applied')
    return { received: true }
  }

  fastify.register(async function griddyAuthClerkWebhook (child) {
    // This context only: the raw bytes the signature covers, whatever the content type.
    child.removeAllContentTypeParsers()
    child.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })
    child.post(options.path, { config: { public: true }, schema: hidden }, receive)
  })
}
