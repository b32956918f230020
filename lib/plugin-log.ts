/**
 * The plugin's own log lines, under the `logLevel` and `logSerializers` it
 * was registered with. Fastify applies those two register options to an
 * encapsulated plugin's routes only; this one is wrapped with
 * fastify-plugin, so it applies them to its own lines itself: start-up
 * warnings and JWKS outages (`log`), and the one line per refused request
 * (`refusals`), written through the request's logger to keep its `reqId`.
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { ResolvedOptions } from './options'

export interface PluginLog {
  /** For lines that belong to no request. */
  readonly log: FastifyBaseLogger
  /** The logger for a refusal of `request`, or undefined when the plugin's level hides `info`. */
  refusals (request: FastifyRequest): FastifyBaseLogger | undefined
}

const infoLevel = 30

export function createPluginLog (appLog: FastifyBaseLogger, options: Pick<ResolvedOptions, 'logLevel' | 'logSerializers'>): PluginLog {
  const { logLevel, logSerializers } = options
  if (logLevel === undefined && logSerializers === undefined) {
    return { log: appLog, refusals: (request) => request.log }
  }
  // A pino logger knows its levels; a custom one (or none: `logger: false`) is taken on trust, as Fastify does.
  const levels = (appLog as { levels?: { values?: Record<string, number> } }).levels?.values
  let levelValue = infoLevel
  if (logLevel !== undefined && levels !== undefined) {
    if (logLevel !== 'silent' && levels[logLevel] === undefined) {
      throw new TypeError(`fastify-griddy-auth: option "logLevel" must be one of ${[...Object.keys(levels), 'silent'].join(', ')}, got ${JSON.stringify(logLevel)}`)
    }
    // pino knows 'silent' (Infinity) but does not list it among its levels' names.
    levelValue = logLevel === 'silent' ? Infinity : levels[logLevel] as number
  }
  const childOptions = { ...(logLevel === undefined ? {} : { level: logLevel }), ...(logSerializers === undefined ? {} : { serializers: logSerializers }) }
  return {
    log: appLog.child({}, childOptions),
    refusals: levelValue > infoLevel ? () => undefined : (request) => request.log.child({}, childOptions)
  }
}
