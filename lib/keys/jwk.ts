/**
 * JWK -> signing key. Only keys that can verify RS256 are kept (SPEC §9):
 * `kty: "RSA"`, `use` absent or `"sig"`, `alg` absent or `"RS256"`,
 * `key_ops` absent or including `"verify"`, a `kid`, a modulus of at
 * least 2048 bits (RFC 7518 §3.3) and an odd public exponent of at least 3:
 * weaker or broken keys are ignored, not trusted.
 */
import { createPublicKey } from 'node:crypto'

export const minModulusBits = 2048

export interface SigningKey {
  readonly kid: string
  /** SPKI PEM: the string form lets @fastify/jwt reuse one verifier per key. */
  readonly pem: string
  /** Set when a later fetch no longer finds this key (or finds other material under its kid). */
  revoked: boolean
}

function usable (jwk: Record<string, unknown>): boolean {
  const { kty, use, alg, kid, n, e } = jwk
  const ops = jwk.key_ops
  return kty === 'RSA' &&
    (use === undefined || use === 'sig') &&
    (alg === undefined || alg === 'RS256') &&
    (ops === undefined || (Array.isArray(ops) && ops.includes('verify'))) &&
    typeof kid === 'string' && kid.length > 0 &&
    typeof n === 'string' && typeof e === 'string'
}

export function toSigningKey (jwk: unknown): SigningKey | undefined {
  if (jwk === null || typeof jwk !== 'object' || !usable(jwk as Record<string, unknown>)) return undefined
  const { kid, n, e } = jwk as { kid: string, n: string, e: string }
  try {
    const key = createPublicKey({ key: { kty: 'RSA', n, e }, format: 'jwk' })
    // Always set for an RSA key (Node >= 15.7).
    const { modulusLength, publicExponent } = key.asymmetricKeyDetails as { modulusLength: number, publicExponent: bigint }
    if (modulusLength < minModulusBits) return undefined
    // OpenSSL takes any exponent: with e = 1 anyone forges a signature (s = EM); e = 0 or an even e is no RSA key.
    if (publicExponent < BigInt(3) || publicExponent % BigInt(2) === BigInt(0)) return undefined
    return { kid, pem: key.export({ type: 'spki', format: 'pem' }) as string, revoked: false }
  /* c8 ignore start -- Node 20 builds a key from any base64url strings (garbage decodes to a short or
     zero number, refused above); kept in case a later Node refuses some instead */
  } catch {
    return undefined
  }
  /* c8 ignore stop */
}

/**
 * The usable keys of a JSON key set by `kid` (the first usable key of a
 * duplicated `kid` wins), or undefined when `value` is not a key set at all.
 */
export function toKeyMap (value: unknown): Map<string, SigningKey> | undefined {
  if (value === null || typeof value !== 'object' || !Array.isArray((value as { keys?: unknown }).keys)) return undefined
  const keys = new Map<string, SigningKey>()
  for (const jwk of (value as { keys: unknown[] }).keys) {
    const key = toSigningKey(jwk)
    if (key !== undefined && !keys.has(key.kid)) keys.set(key.kid, key)
  }
  return keys
}
