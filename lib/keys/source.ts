/**
 * get-jwks, wired for one JWKS URL: where a key set's fetches happen. The
 * plugin has no fetch of its own for keys: get-jwks builds the URL, fetches
 * (through the key set's Wire), parses and picks the key by `kid`.
 *
 * Its answers are read with care, because they blur what the plugin must
 * tell apart (SPEC §9):
 * - on *any* error it answers a stale key if it has one, so a key the
 *   provider removed would keep verifying: before each fetch the cached and
 *   stale entries for that kid are dropped (the plugin keeps its own keys);
 * - `NO_JWKS` covers both a valid empty set (a successful fetch) and a body
 *   that is no key set at all (a failed one): the body the Wire saw decides;
 * - an error status may reach it as a SyntaxError (an HTML 502): the status
 *   and `Retry-After` the Wire saw decide.
 */
import buildGetJwks from 'get-jwks'
import { requestHeaders, type Exchange, type Wire } from './wire'

/** The result of one fetch for one `kid`. Never an exception. */
export type FetchOutcome =
  | { readonly jwk: unknown }
  | { readonly missing: true }
  | Failure

/** A failed fetch: a short reason (never upstream content) and the wait the provider asked for. */
export interface Failure {
  readonly failed: string
  readonly retryAfter?: number
}

/** Where a key set's keys come from, as the key set sees it. */
export interface KeySource {
  /** For log lines: the URL(s) fetched. */
  readonly where: Readonly<Record<string, string>>
  /** Fetches `kid`'s JWK under a fresh deadline. Never rejects. */
  fetchKey (kid: string): Promise<FetchOutcome>
}

export const missing: FetchOutcome = Object.freeze({ missing: true })

/** get-jwks' options for a fetch through `wire`, besides the URL's. */
export function getJwksOptions (wire: Wire): buildGetJwks.GetJwksOptions {
  // get-jwks spreads these once, at build time: the Wire's dispatcher reads its deadline per request.
  return { fetchOptions: { dispatcher: wire.dispatcher as never, headers: requestHeaders, redirect: 'follow' } }
}

function errorCode (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/**
 * The failure of a fetch as the Wire saw it: a request error (network,
 * deadline, size, encoding), or an answer whose status is not 2xx. Undefined
 * when the last answer was a 2xx received whole: then get-jwks' error says
 * what was wrong with the body.
 */
export function wireFailure (err: unknown, exchange: Exchange | undefined): Failure | undefined {
  if (exchange === undefined) {
    // No request was dispatched: fetch refused the URL (a TypeError), or get-jwks failed before fetching.
    return { failed: err instanceof TypeError ? 'network error (TypeError)' : 'unexpected error' }
  }
  if (exchange.failure !== undefined) return { failed: exchange.failure }
  const { status, retryAfter } = exchange
  if (status !== undefined && (status < 200 || status > 299)) {
    return retryAfter === undefined ? { failed: `HTTP ${status}` } : { failed: `HTTP ${status}`, retryAfter }
  }
  return undefined
}

/** True when the body of `exchange` is a JSON object with a `keys` array. */
function isKeySet (exchange: Exchange): boolean {
  try {
    // Decoded as fetch's json() decodes it (UTF-8, a BOM dropped), so this reads what get-jwks read.
    const value = JSON.parse(new TextDecoder().decode(Buffer.concat(exchange.chunks))) as { keys?: unknown }
    return Array.isArray(value.keys)
  /* c8 ignore start -- get-jwks parsed this very body, and read its keys, before saying NO_JWKS */
  } catch {
    return false
  }
  /* c8 ignore stop */
}

/** What one get-jwks error means for a key-set fetch. */
export function outcomeOf (err: unknown, exchange: Exchange | undefined): FetchOutcome {
  const code = errorCode(err)
  if (code === 'JWK_NOT_FOUND') return missing // said only of a 2xx key set get-jwks read whole
  const failure = wireFailure(err, exchange)
  if (failure !== undefined) return failure
  if (code === 'NO_JWKS' && isKeySet(exchange as Exchange)) return missing // `{ "keys": [] }`: a valid, empty set
  if (err instanceof SyntaxError) return { failed: 'body is not JSON' }
  // NO_JWKS for anything else, or a TypeError from reading `keys` of null or an object that is no array.
  return { failed: 'body is not a JSON key set' }
}

/**
 * The JWKS at `url`, through get-jwks. get-jwks fetches `domain + jwksPath`:
 * the URL's root as the domain and the rest as the path makes it fetch
 * exactly `url`.
 */
export class JwksSource implements KeySource {
  readonly where: Readonly<Record<string, string>>
  private readonly getJwks: buildGetJwks.GetJwks
  private readonly domain: string

  constructor (readonly url: string, private readonly wire: Wire) {
    const root = new URL(url)
    // '.' for a key set at the root: get-jwks ignores an empty jwksPath, and '<root>/.' is the root itself.
    const jwksPath = root.pathname.slice(1) + root.search || '.'
    root.pathname = '/'
    root.search = ''
    root.hash = ''
    this.domain = root.href
    this.getJwks = buildGetJwks({ ...getJwksOptions(wire), jwksPath })
    this.where = Object.freeze({ jwksUrl: url })
  }

  fetchKey (kid: string): Promise<FetchOutcome> {
    this.wire.begin()
    return this.fetchWithin(kid)
  }

  /** The same inside a deadline already begun (after a discovery document). */
  async fetchWithin (kid: string): Promise<FetchOutcome> {
    const { getJwks, domain } = this
    const cacheKey = getJwks.generateCacheKey('RS256', kid, domain)
    getJwks.cache.delete(cacheKey)
    getJwks.staleCache.delete(cacheKey)
    try {
      return { jwk: await getJwks.getJwk({ domain, alg: 'RS256', kid }) }
    } catch (err) {
      return outcomeOf(err, this.wire.last)
    }
  }
}
