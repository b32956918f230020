/**
 * Token shape (SPEC §6, first steps): three base64url segments, a header and
 * a payload that are JSON objects. Nothing decoded here is trusted: the
 * header only chooses the key, and the payload's `iss` only chooses which
 * configured issuer's key set to look in.
 */

/** Tokens larger than this are refused before any decoding (a Node request header is at most 16 KiB anyway). */
export const maxTokenLength = 16 * 1024

const segment = /^[A-Za-z0-9_-]+$/
const signatureSegment = /^[A-Za-z0-9_-]*$/

export interface UnverifiedToken {
  readonly header: Readonly<Record<string, unknown>>
  readonly payload: Readonly<Record<string, unknown>>
  readonly hasSignature: boolean
}

function parseObject (part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

/** The decoded, unverified token, or undefined when it is malformed. */
export function decodeUnverified (token: string): UnverifiedToken | undefined {
  if (token.length > maxTokenLength) return undefined
  const first = token.indexOf('.')
  const second = token.indexOf('.', first + 1)
  if (first < 0 || second < 0 || token.indexOf('.', second + 1) >= 0) return undefined

  const headerPart = token.slice(0, first)
  const payloadPart = token.slice(first + 1, second)
  const signaturePart = token.slice(second + 1)
  if (!segment.test(headerPart) || !segment.test(payloadPart) || !signatureSegment.test(signaturePart)) return undefined

  const header = parseObject(headerPart)
  const payload = header === undefined ? undefined : parseObject(payloadPart)
  if (header === undefined || payload === undefined) return undefined
  return { header, payload, hasSignature: signaturePart.length > 0 }
}
