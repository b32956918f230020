/**
 * Which key verifies a token. The key location comes from configuration
 * only (SPEC §9): a static set, `jwksUrl`, the well-known JWKS URL of a
 * configured issuer, or (`discovery`) the `jwks_uri` of its discovery
 * document. Headers that point elsewhere (`jku`, `x5u`, `jwk`, `x5c`) are
 * never read, and a `kid` is only ever a map key.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Rejection } from '../errors'
import type { ResolvedOptions } from '../options'
import { toKeyMap, type SigningKey } from './jwk'
import { RemoteKeySet, type KeyLookup } from './key-set'
import { JwksSource, type KeySource } from './source'
import { DiscoverySource, discoveryUrl } from './discovery'
import { createKeyAgent, Wire } from './wire'

export interface KeyResolver {
  /**
   * The key for `kid`: synchronous for a key already known. `unverifiedIss`
   * only selects an issuer's key set when no `jwksUrl`/`jwks` is configured.
   */
  lookup (kid: string, unverifiedIss: unknown): KeyLookup | Promise<KeyLookup>
  /** Ends the fetches in flight and closes the connections to the providers. */
  close (): Promise<void>
}

const unknownKey: Rejection = Object.freeze({ code: 'GRIDDY_AUTH_UNKNOWN_KEY' })
const badIssuer: Rejection = Object.freeze({ code: 'GRIDDY_AUTH_ISSUER' })

/** The JWKS URL of an issuer: its well-known path, without doubling a trailing slash. */
export function wellKnownJwksUrl (issuer: string): string {
  return issuer.replace(/\/$/, '') + '/.well-known/jwks.json'
}

export function createKeyResolver (options: ResolvedOptions, log: FastifyBaseLogger): KeyResolver {
  const timings = { ttl: options.jwksCacheTtl, cooldown: options.jwksCooldown }

  if (options.jwks !== undefined) {
    const keys = toKeyMap(options.jwks) as Map<string, SigningKey>
    if (keys.size === 0) {
      throw new TypeError('fastify-griddy-auth: option "jwks" holds no usable key (RSA, use "sig", alg RS256, a kid, at least 2048 bits)')
    }
    return { lookup: (kid) => keys.get(kid) ?? unknownKey, close: async () => {} }
  }

  // One Agent (connection pool) for the plugin; one Wire (deadline, record of answers) per key set.
  const agent = createKeyAgent(options.jwksTimeout)
  const remote = (source: (wire: Wire) => KeySource): RemoteKeySet =>
    new RemoteKeySet(source(new Wire(agent, options.jwksTimeout)), timings, log)
  const close = async (): Promise<void> => { await agent.destroy() }

  if (options.jwksUrl !== undefined) {
    const set = remote((wire) => new JwksSource(options.jwksUrl as string, wire))
    return { lookup: (kid) => set.lookup(kid), close }
  }

  // One key set per URL (SPEC §9: cooldown, back-off and health are per key set),
  // even when two configured issuers differ only by a trailing slash.
  const byUrl = new Map<string, RemoteKeySet>()
  const byIssuer = new Map<string, RemoteKeySet>()
  for (const issuer of options.issuers) {
    const url = options.discovery ? discoveryUrl(issuer) : wellKnownJwksUrl(issuer)
    const set = byUrl.get(url) ?? remote((wire) => options.discovery
      ? new DiscoverySource(issuer, wire, options.jwksCacheTtl)
      : new JwksSource(url, wire))
    byUrl.set(url, set)
    byIssuer.set(issuer, set)
  }
  return {
    lookup (kid, unverifiedIss) {
      // Only configured issuers have a key set: nothing is fetched for any other.
      const set = typeof unverifiedIss === 'string' ? byIssuer.get(unverifiedIss) : undefined
      return set === undefined ? badIssuer : set.lookup(kid)
    },
    close
  }
}
