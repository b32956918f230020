/**
 * `discovery: true` (SPEC §9): an issuer's keys are at the `jwks_uri` of its
 * OpenID Connect discovery document, `<issuer>/.well-known/openid-configuration`.
 *
 * Both are fetched through get-jwks (`getJwksUri`, then `getJwk` with the
 * discovered URL), inside one deadline of the key set's Wire, so the
 * document is under the same deadline, size cap, cooldown, back-off and
 * health as the keys: it is part of the fetch. Not get-jwks'
 * `providerDiscovery`, for two of its gaps: it re-reads the document on
 * every miss, and it fetches whatever `jwks_uri` says, `data:` URLs
 * included (fetch answers those itself, from the URL: keys an attacker
 * could write into a document). Here a `jwks_uri` must be an http(s) URL
 * or the fetch fails, and the document is re-read once per `jwksCacheTtl`,
 * or after a failed fetch (the keys may have moved).
 */
import buildGetJwks from 'get-jwks'
import { isHttpUrl } from '../options'
import { getJwksOptions, JwksSource, wireFailure, type FetchOutcome, type Failure, type KeySource } from './source'
import type { Wire } from './wire'

/** The discovery document URL of an issuer, without doubling a trailing slash. */
export function discoveryUrl (issuer: string): string {
  return issuer.replace(/\/$/, '') + '/.well-known/openid-configuration'
}

export class DiscoverySource implements KeySource {
  private readonly url: string
  private readonly domain: string
  private readonly getJwks: buildGetJwks.GetJwks
  private keys: JwksSource | undefined
  private discoveredAt = -Infinity
  private failed = false

  constructor (issuer: string, private readonly wire: Wire, private readonly ttl: number) {
    this.url = discoveryUrl(issuer)
    // get-jwks reads `${domain}.well-known/openid-configuration`.
    this.domain = this.url.slice(0, -'.well-known/openid-configuration'.length)
    this.getJwks = buildGetJwks(getJwksOptions(wire))
  }

  get where (): Readonly<Record<string, string>> {
    return this.keys === undefined ? { discoveryUrl: this.url } : { discoveryUrl: this.url, jwksUrl: this.keys.url }
  }

  async fetchKey (kid: string): Promise<FetchOutcome> {
    this.wire.begin()
    if (this.keys === undefined || this.failed || Date.now() - this.discoveredAt >= this.ttl) {
      const failure = await this.discover()
      this.failed = failure !== undefined
      if (failure !== undefined) return failure
    }
    const outcome = await (this.keys as JwksSource).fetchWithin(kid)
    this.failed = 'failed' in outcome
    return outcome
  }

  /** Reads the document; on success `keys` fetches from its `jwks_uri`. */
  private async discover (): Promise<Failure | undefined> {
    let uri: unknown
    try {
      uri = await this.getJwks.getJwksUri(this.domain)
    } catch (err) {
      const failure = wireFailure(err, this.wire.last) ?? { failed: err instanceof SyntaxError ? 'body is not JSON' : 'no jwks_uri' }
      return { ...failure, failed: `discovery document: ${failure.failed}` }
    }
    if (typeof uri !== 'string' || !isHttpUrl(uri)) return { failed: 'discovery document: jwks_uri is not an http(s) URL' }
    if (this.keys?.url !== uri) this.keys = new JwksSource(uri, this.wire)
    this.discoveredAt = Date.now()
    return undefined
  }
}
