/**
 * One JWKS fetch, bounded in time and size. Node's fetch ignores a `timeout`
 * option (get-jwks passes one), so each fetch gets its own AbortSignal, which
 * also covers reading the body. The reason of a failure is short and never
 * contains the upstream body.
 */

export const maxBodyBytes = 1024 * 1024

export class JwksFetchError extends Error {
  /** Seconds the provider asked us to wait (`Retry-After`), when it did. */
  readonly retryAfter: number | undefined
  constructor (reason: string, retryAfter?: number) {
    super(reason)
    this.retryAfter = retryAfter
  }
}

function retryAfterSeconds (value: string | null): number | undefined {
  if (value === null) return undefined
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000
  return Number.isFinite(seconds) && seconds > 0 ? seconds : undefined
}

async function readLimited (body: ReadableStream<Uint8Array>): Promise<Buffer> {
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return Buffer.concat(chunks)
    size += value.byteLength
    if (size > maxBodyBytes) {
      await reader.cancel().catch(() => {})
      throw new JwksFetchError(`body larger than ${maxBodyBytes} bytes`)
    }
    chunks.push(value)
  }
}

/**
 * The parsed JSON body of `url`, or a JwksFetchError saying briefly why not.
 * `timeoutMs` 0 means no timeout, as for Node's own timeouts.
 */
export async function fetchJson (url: string, timeoutMs: number): Promise<unknown> {
  let text: string
  try {
    const response = await fetch(url, {
      signal: timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : null,
      headers: { accept: 'application/json' }
    })
    if (!response.ok) {
      await response.body?.cancel().catch(() => {})
      throw new JwksFetchError(`HTTP ${response.status}`, retryAfterSeconds(response.headers.get('retry-after')))
    }
    if (Number(response.headers.get('content-length')) > maxBodyBytes) {
      await response.body?.cancel().catch(() => {})
      throw new JwksFetchError(`body larger than ${maxBodyBytes} bytes`)
    }
    if (response.body === null) throw new JwksFetchError('empty body')
    text = (await readLimited(response.body)).toString('utf8')
  } catch (err) {
    if (err instanceof JwksFetchError) throw err
    const name = (err as Error)?.name
    throw new JwksFetchError(name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `network error (${(err as { cause?: { code?: string } })?.cause?.code ?? name})`)
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new JwksFetchError('body is not JSON')
  }
}
