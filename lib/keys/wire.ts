/**
 * What lies under get-jwks: it fetches with the global `fetch(url,
 * fetchOptions)`, and `fetchOptions.dispatcher` is the plugin's own undici
 * Agent, composed with an interceptor per key set. That is the only way to
 * bound its fetches (Node's fetch ignores the `timeout` it passes, and its
 * fetch options are fixed when it is built), and nothing global changes:
 * not `globalThis.fetch`, not the global dispatcher.
 *
 * - a deadline per fetch, headers and body: `begin()` starts it, and every
 *   request of that fetch (redirects, a discovery document and its key set)
 *   is aborted when it passes, so a trickling body cannot hold a fetch;
 * - at most 1 MiB of body (the Agent's `maxResponseSize`), and no encoded
 *   body at all: fetch inflates gzip/deflate/br after the dispatcher, where
 *   no cap applies, so `identity` is asked for and anything else refused;
 * - what the last response said (status, `Retry-After`, body), since
 *   get-jwks parses a body as JSON before looking at the status, so an HTML
 *   502 reaches it as a bare SyntaxError.
 */
import { Agent, type Dispatcher } from 'undici'

export const maxBodyBytes = 1024 * 1024

/** Headers of every request under get-jwks. */
export const requestHeaders = Object.freeze({ accept: 'application/json', 'accept-encoding': 'identity' })

/** A failure the wire decided itself; `message` is the short reason logged. */
export class WireError extends Error {}

/** One HTTP exchange as the wire saw it. */
export interface Exchange {
  status: number | undefined
  /** Seconds the server asked to wait, when it did. */
  retryAfter: number | undefined
  /** The body received so far (at most `maxBodyBytes`). */
  readonly chunks: Buffer[]
  /** Why the request failed (network, deadline, size, encoding), when it did. */
  failure: string | undefined
}

/** `Retry-After` in seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP date), when positive. */
export function retryAfterSeconds (value: string): number | undefined {
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000
  return Number.isFinite(seconds) && seconds > 0 ? seconds : undefined
}

/** The reason logged for an error undici (or the Wire itself) reported for a request. */
function reasonOf (err: Error, timeoutMs: number): string {
  if (err instanceof WireError) return err.message
  const code = (err as { code?: unknown }).code
  switch (code) {
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
      return `body larger than ${maxBodyBytes} bytes`
    /* c8 ignore start -- undici's own timeouts are a second lock: they equal jwksTimeout and start no
       earlier than the Wire's deadline, which fires first */
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `no answer within ${timeoutMs} ms`
    /* c8 ignore stop */
    default:
      return `network error (${typeof code === 'string' ? code : err.name})`
  }
}

/** The plugin's Agent: every timeout of undici set to `timeoutMs` (0: none, as for Node's own), bodies capped. */
export function createKeyAgent (timeoutMs: number): Agent {
  return new Agent({
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    ...(timeoutMs > 0 ? { connect: { timeout: timeoutMs } } : {}),
    maxResponseSize: maxBodyBytes
  })
}

/** The dispatcher of one key set: the shared Agent, plus the deadline and the record of what was answered. */
export class Wire {
  readonly dispatcher: Dispatcher
  /** The last exchange of the current fetch; undefined until a request is dispatched. */
  last: Exchange | undefined
  private deadline = Infinity

  constructor (agent: Agent, readonly timeoutMs: number) {
    this.dispatcher = agent.compose((dispatch) => (options, handler) => dispatch(options, new Observer(handler, timeoutMs, this)))
  }

  /** Starts a fetch: a fresh deadline, nothing recorded yet. */
  begin (): void {
    this.deadline = this.timeoutMs > 0 ? Date.now() + this.timeoutMs : Infinity
    this.last = undefined
  }

  /** Milliseconds left before the current fetch's deadline (Infinity without one). */
  remaining (): number {
    return this.deadline - Date.now()
  }
}

type Handler = Dispatcher.DispatchHandlers

/** Wraps fetch's own handler: records the exchange, enforces the deadline and refuses encoded bodies. */
class Observer implements Handler {
  private readonly exchange: Exchange = { status: undefined, retryAfter: undefined, chunks: [], failure: undefined }
  private abort: ((err: Error) => void) | undefined
  private expired: WireError | undefined
  private readonly timer: NodeJS.Timeout | undefined

  constructor (private readonly handler: Handler, private readonly timeoutMs: number, wire: Wire) {
    wire.last = this.exchange
    const remaining = wire.remaining()
    if (remaining !== Infinity) {
      this.timer = setTimeout(() => this.expire(), Math.max(0, remaining))
      this.timer.unref()
    }
  }

  private expire (): void {
    this.expired = new WireError(`no answer within ${this.timeoutMs} ms`)
    // Before undici calls onConnect (still connecting) there is nothing to abort yet: onConnect does it.
    this.abort?.(this.expired)
  }

  onConnect (abort: (err?: Error) => void): void {
    this.abort = abort
    this.handler.onConnect?.(abort)
    if (this.expired !== undefined) abort(this.expired)
  }

  onResponseStarted (): void {
    this.handler.onResponseStarted?.()
  }

  onHeaders (status: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    if (status >= 200) {
      let encoding: string | undefined
      for (let i = 0; i < headers.length; i += 2) {
        const name = String(headers[i]).toLowerCase()
        if (name === 'retry-after') this.exchange.retryAfter = retryAfterSeconds(String(headers[i + 1]))
        else if (name === 'content-encoding') encoding = String(headers[i + 1]).trim().toLowerCase()
      }
      this.exchange.status = status
      if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
        // onConnect always comes first: undici writes the request, and only then reads an answer.
        (this.abort as (err: Error) => void)(new WireError(`encoded body refused (content-encoding ${encoding.slice(0, 20)})`))
        return false
      }
    }
    return this.handler.onHeaders?.(status, headers, resume, statusText) ?? true
  }

  onData (chunk: Buffer): boolean {
    // A copy: undici may hand out views of buffers it reuses. At most maxBodyBytes in all (the Agent's cap).
    this.exchange.chunks.push(Buffer.from(chunk))
    return this.handler.onData?.(chunk) ?? true
  }

  onComplete (trailers: string[] | null): void {
    clearTimeout(this.timer)
    this.handler.onComplete?.(trailers)
  }

  onError (err: Error): void {
    clearTimeout(this.timer)
    this.exchange.failure ??= reasonOf(err, this.timeoutMs)
    this.handler.onError?.(err)
  }

  /* c8 ignore start -- fetch never sends a body nor upgrades for a GET; forwarded for completeness */
  onBodySent (chunkSize: number, totalBytesSent: number): void {
    this.handler.onBodySent?.(chunkSize, totalBytesSent)
  }

  onUpgrade (statusCode: number, headers: Buffer[] | string[] | null, socket: import('node:stream').Duplex): void {
    this.handler.onUpgrade?.(statusCode, headers, socket)
  }
  /* c8 ignore stop */
}
