/**
 * The route policy, documented. When the app uses @fastify/swagger (an
 * optional peer: nothing here loads it), the OpenAPI document it generates
 * shows, for every route this plugin guards, the requirement the hook
 * enforces: the same compiled policy, so the two cannot drift.
 *
 * How, without changing what the app serves:
 * - After Fastify has compiled its schemas (`onReady`), each guarded route's
 *   schema as @fastify/swagger holds it gets a copy with one `x-griddy-auth`
 *   key, which the generator carries onto the operation verbatim. Fastify
 *   never sees it: had 401/403 schemas been added where Fastify compiles
 *   response serializers, an app's own error handler would see its error
 *   bodies stripped to our shape.
 * - The `swagger()` decorator is wrapped to turn those keys into `security`,
 *   the error responses and the bearer scheme, on the finished document. This
 *   runs after the app's own `transform`; the scheme could not go in earlier,
 *   as @fastify/swagger throws on a `security` naming a scheme it lacks.
 * Nothing the app wrote is replaced: its `security`, responses, schemes and
 * schemas win; a description only gets a line appended.
 */
import { createRequire } from 'node:module'
import { STATUS_CODES } from 'node:http'
import type { FastifyInstance, RouteOptions } from 'fastify'
import { authError, errorCodes, type GriddyAuthErrorCode } from './errors'
import type { RoutePolicy } from './route-policy'

/** The security scheme's name in `components.securitySchemes`. */
const securitySchemeName = 'griddyAuth'
/** The error body's name in `components.schemas`. */
const errorSchemaName = 'GriddyAuthError'

const marker = 'x-griddy-auth'
const kDocumented = Symbol('griddyAuth.documented')
const methods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace', 'query']

type Json = Record<string, any>
type SwaggerFunction = ((this: unknown, opts?: { yaml?: boolean }) => unknown) & { [kDocumented]?: true }
type Stringify = (document: unknown) => string

const securityScheme = Object.freeze({
  type: 'http',
  scheme: 'bearer',
  bearerFormat: 'JWT',
  description: 'A session token (RS256 JWT) from the identity provider, sent as `Authorization: Bearer <token>`. ' +
    'An operation that needs permissions lists them; the token must carry all of them.'
})

const errorSchema = Object.freeze({
  type: 'object',
  description: 'What fastify-griddy-auth answers with Fastify\'s default error handler. Switch on `code`, never on `message`.',
  required: ['statusCode', 'code', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer', enum: [401, 403, 503] },
    code: { type: 'string', enum: [...errorCodes] },
    error: { type: 'string' },
    message: { type: 'string' }
  }
})

function example (code: GriddyAuthErrorCode): Json {
  const err = authError(code, undefined)
  return { statusCode: err.statusCode, code, error: STATUS_CODES[err.statusCode], message: err.message }
}

function errorResponse (description: string, code: GriddyAuthErrorCode, headers: Json): Json {
  return {
    description,
    headers,
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${errorSchemaName}` }, example: example(code) } }
  }
}

const stringHeader = (description: string): Json => ({ description, schema: { type: 'string' } })

function unauthorized (): Json {
  return errorResponse(
    'No valid session token: missing, malformed, forged, expired, for another issuer, audience or party, or of an ended session. `code` says which.',
    'GRIDDY_AUTH_NO_TOKEN',
    { 'WWW-Authenticate': stringHeader('The RFC 6750 challenge: `Bearer`, with `error` and `error_description` when a token was sent.') }
  )
}

function forbidden (permissions: readonly string[]): Json {
  return errorResponse(
    `The token lacks a required permission (needs all of: ${permissions.join(', ')}).`,
    'GRIDDY_AUTH_FORBIDDEN',
    { 'WWW-Authenticate': stringHeader('`Bearer error="insufficient_scope"`, with the required permissions in `scope`.') }
  )
}

function unavailable (): Json {
  return errorResponse(
    'The identity provider\'s signing keys could not be fetched; retry after `Retry-After` seconds.',
    'GRIDDY_AUTH_UNAVAILABLE',
    { 'Retry-After': { description: 'Seconds until the keys are asked for again.', schema: { type: 'integer', minimum: 1 } } }
  )
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)

/** Is `status` (or the range holding it, `4XX`) documented already? */
function declares (responses: Json, status: string): boolean {
  return status in responses || `${status[0]}XX` in responses
}

/**
 * One operation: its marker becomes what it stands for. Returns whether the
 * operation refers to the scheme and the error schema.
 */
function documentOperation (operation: Json, policy: RoutePolicy, rolesAllowed: boolean): boolean {
  if (policy.public) {
    operation.security ??= []
    return false
  }
  const permissions = policy.required
  // OpenAPI 3.0 wants an empty list for a non-OAuth scheme; 3.1 allows role names there.
  operation.security ??= [{ [securitySchemeName]: rolesAllowed ? [...permissions] : [] }]
  const responses: Json = isObject(operation.responses) ? operation.responses : (operation.responses = {})
  if (!declares(responses, '401')) responses['401'] = unauthorized()
  if (!declares(responses, '503')) responses['503'] = unavailable()
  if (permissions.length > 0) {
    if (!declares(responses, '403')) responses['403'] = forbidden(permissions)
    operation['x-permissions'] ??= [...permissions]
    // Swagger UI shows the description, and neither the extension nor (for a bearer scheme) the roles.
    const line = `**Requires permissions:** ${permissions.map((name) => `\`${name}\``).join(', ')}`
    operation.description = typeof operation.description === 'string' && operation.description.length > 0
      ? `${operation.description}\n\n${line}`
      : line
  }
  return true
}

/** The finished document, with every marker turned into what it stands for. Idempotent. */
export function documentPolicy (document: unknown): void {
  if (!isObject(document) || !isObject(document.paths)) return
  const version = typeof document.openapi === 'string' ? document.openapi : undefined
  const rolesAllowed = version !== undefined && !version.startsWith('3.0')
  let referenced = false
  for (const item of Object.values(document.paths)) {
    if (!isObject(item)) continue
    for (const method of methods) {
      const operation = item[method]
      if (!isObject(operation) || !isObject(operation[marker])) continue
      const policy = operation[marker] as RoutePolicy
      delete operation[marker]
      // Swagger 2.0 (no `openapi` option) has another shape for all of this: left as generated.
      if (version === undefined) continue
      if (documentOperation(operation, policy, rolesAllowed)) referenced = true
    }
  }
  if (!referenced) return
  const components: Json = isObject(document.components) ? document.components : (document.components = {})
  const schemes: Json = isObject(components.securitySchemes) ? components.securitySchemes : (components.securitySchemes = {})
  const schemas: Json = isObject(components.schemas) ? components.schemas : (components.schemas = {})
  schemes[securitySchemeName] ??= structuredClone(securityScheme)
  schemas[errorSchemaName] ??= structuredClone(errorSchema)
}

/**
 * YAML as @fastify/swagger writes it, with its own `yaml` package. Should that
 * not resolve from here, JSON: every JSON text is a YAML 1.2 document.
 */
export function yamlStringifier (resolve: (id: string) => string = require.resolve): Stringify {
  try {
    const swaggerRequire = createRequire(resolve('@fastify/swagger'))
    const yaml = swaggerRequire('yaml') as { stringify: (value: unknown, options: object) => string }
    return (document) => yaml.stringify(document, { strict: false })
  } catch {
    return (document) => JSON.stringify(document, null, 2)
  }
}

/** `fastify.swagger()` that returns the documented policy, as an object or as YAML. */
function wrapSwagger (original: SwaggerFunction): SwaggerFunction {
  let stringify: Stringify | undefined
  const yamlCache = new WeakMap<object, string>()
  const documented: SwaggerFunction = function (this: unknown, opts) {
    // Always the object: the YAML is written from it once the policy is in.
    const document = original.call(this, opts?.yaml === true ? { ...opts, yaml: false } : opts)
    documentPolicy(document)
    if (opts?.yaml !== true || !isObject(document)) return document
    let text = yamlCache.get(document)
    if (text === undefined) {
      stringify ??= yamlStringifier()
      text = stringify(document)
      yamlCache.set(document, text)
    }
    return text
  }
  documented[kDocumented] = true
  return documented
}

/** The instance that owns the `swagger` decorator `instance` sees, if any. */
function ownerOfSwagger (instance: object): Record<string, unknown> | undefined {
  for (let owner: object | null = instance; owner !== null; owner = Object.getPrototypeOf(owner) as object | null) {
    if (Object.hasOwn(owner, 'swagger')) return owner as Record<string, unknown>
  }
  return undefined
}

/**
 * For `onReady`, once per guarded route: marks the route for the document,
 * if @fastify/swagger is there to document it.
 */
export function documentRoute (instance: FastifyInstance, route: RouteOptions, policy: RoutePolicy): void {
  const owner = ownerOfSwagger(instance)
  const swagger = owner?.swagger as SwaggerFunction | undefined
  if (typeof swagger !== 'function') return
  // A copy: one schema object may serve several routes with different policies.
  route.schema = { ...route.schema, [marker]: policy } as RouteOptions['schema']
  if (swagger[kDocumented] !== true) owner!.swagger = wrapSwagger(swagger)
}
