/**
 * `npm start`: runs the example API.
 *
 * - With no GRIDDY_* variable: local mode. An embedded dev issuer signs
 *   tokens; the API fetches its keys over HTTP on 127.0.0.1, like it would
 *   from Clerk. Prints curl commands with ready-made tokens.
 * - With GRIDDY_ISSUER and GRIDDY_AUDIENCE (see .env.example): verifies your
 *   identity provider's tokens, and mints nothing.
 *
 * PORT (default 3000) and HOST (default 127.0.0.1) choose where it listens;
 * LOG_LEVEL (default info) the log level of the JSON logs, written to stderr.
 */
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app'
import { ConfigError, loadDotEnv, readConfig, type ExampleConfig } from './config'
import { startLocalIssuer, type LocalIssuer } from './local-issuer'

/** A start-up failure worth one line, not a stack. */
function explain (err: unknown, config: ExampleConfig | undefined): string | undefined {
  if (err instanceof ConfigError) return err.message
  if (!(err instanceof Error)) return undefined
  const where = config === undefined ? '' : `${config.host}:${config.port}`
  const code = 'code' in err ? err.code : undefined
  if (code === 'EADDRINUSE') return `Port ${config?.port ?? ''} is already in use on ${config?.host ?? ''}: stop the other server or choose another port (PORT=3001 npm start).`
  if (code === 'EACCES') return `Not allowed to listen on ${where}: choose a port above 1023.`
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return `Cannot listen on ${where}: HOST is not an address of this machine.`
  // Invalid plugin options (a GRIDDY_* value) stop start-up with a message naming the option.
  if (err.message.startsWith('fastify-griddy-auth:')) return err.message
  return undefined
}

function urlOf (host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`
}

const bearer = (token: string): string => `-H 'Authorization: Bearer ${token}'`

/** Swagger UI (public, outside the guarded scope; see app.ts) sends the token it is given in its Authorize dialog. */
const docsLine = (api: string): string => `Swagger UI: ${api}/docs — click Authorize and paste a token`

function localBanner (api: string, issuer: LocalIssuer): string {
  const reader = issuer.mint({ sub: 'user_1', sessionId: 'sess_1', permissions: ['leagues:read', 'teams:read'] })
  const expired = issuer.mint({ sub: 'user_1', sessionId: 'sess_1', permissions: ['leagues:read', 'teams:read'], expiresIn: -60 })
  return `
Griddy example API listening on ${api}  (local mode: embedded dev issuer, no account needed)
  issuer    ${issuer.info.issuer}
  audience  ${issuer.info.audience}
  azp       ${issuer.info.authorizedParties.join(', ')}
  JWKS      ${issuer.info.jwksUrl}  (fetched by the plugin over HTTP)

Try it. The first token is user_1's, with leagues:read and teams:read, valid for 1 hour:

# 200 OK: list leagues
curl -i ${api}/api/v1/leagues ${bearer(reader)}

# 403 GRIDDY_AUTH_FORBIDDEN: the same token cannot create a league (that needs leagues:write)
curl -i -X POST ${api}/api/v1/leagues ${bearer(reader)} -H 'Content-Type: application/json' -d '{"name":"Sunday League"}'

# 401 GRIDDY_AUTH_EXPIRED "Token has expired": the same claims, expired a minute ago
curl -i ${api}/api/v1/leagues ${bearer(expired)}

# 200 OK: the public health check needs no token
curl -i ${api}/healthz

${docsLine(api)} (the first one above lists leagues)

Mint your own tokens (in another terminal, while this server runs):
  TOKEN=$(npm run -s token -- --sub user_2 --permissions leagues:read,teams:read --sid sess_2)
  curl -i ${api}/api/v1/leagues/lg_2 -H "Authorization: Bearer $TOKEN"

Sign out session sess_1 (a signed session.ended webhook, as Clerk sends it); the first curl above then answers 401 "Session has ended.":
  npm run -s token -- --end-session sess_1

Press Ctrl-C to stop.
`
}

function providerBanner (api: string, config: Extract<ExampleConfig, { mode: 'provider' }>): string {
  const { issuer, audience, authorizedParties, jwksUrl } = config.auth
  const list = (value: string | readonly string[]): string => (typeof value === 'string' ? [value] : value).join(', ')
  return `
Griddy example API listening on ${api}  (provider mode: verifying your identity provider's tokens)
  issuer    ${list(issuer)}
  audience  ${list(audience)}
  azp       ${authorizedParties === undefined ? '(not checked: GRIDDY_AUTHORIZED_PARTIES is unset)' : list(authorizedParties)}
  JWKS      ${jwksUrl ?? '<issuer>/.well-known/jwks.json'}

Try it, with TOKEN set to a session token from your frontend (Clerk: await getToken()):
  curl -i ${api}/healthz
  curl -i ${api}/api/v1/me -H "Authorization: Bearer $TOKEN"

${docsLine(api)} from your frontend

Press Ctrl-C to stop.
`
}

async function main (): Promise<void> {
  let config: ExampleConfig | undefined
  let app: FastifyInstance | undefined
  try {
    loadDotEnv()
    config = readConfig()
    const server = { logger: { level: process.env.LOG_LEVEL ?? 'info', stream: process.stderr } }
    let banner: (api: string) => string
    let afterListen: (api: string) => Promise<void> = async () => {}
    if (config.mode === 'local') {
      const issuer = await startLocalIssuer()
      const devIssuerFile = config.devIssuerFile
      app = buildApp({ auth: issuer.pluginOptions, server })
      app.addHook('onClose', async () => { await issuer.close() })
      // Shared only once listening: a second server that fails to start must not take it over.
      afterListen = async (api) => { await issuer.share(devIssuerFile, api) }
      banner = (api) => localBanner(api, issuer)
    } else {
      const providerConfig = config
      app = buildApp({ auth: config.auth, server })
      banner = (api) => providerBanner(api, providerConfig)
    }
    await app.listen({ host: config.host, port: config.port })
    const address = app.server.address()
    const api = urlOf(config.host, typeof address === 'object' && address !== null ? address.port : config.port)
    await afterListen(api)
    process.stdout.write(banner(api))
  } catch (err) {
    await app?.close().catch(() => {})
    const reason = explain(err, config)
    if (reason === undefined) console.error(err)
    else console.error(`Error: ${reason}`)
    process.exitCode = 1
    return
  }

  const running = app
  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      console.error(`${signal} again: exiting without waiting.`)
      process.exit(1)
    }
    stopping = true
    console.error(`${signal}: closing the server...`)
    running.close().then(
      () => { process.exitCode = 0 },
      (err: unknown) => {
        console.error(err)
        process.exitCode = 1
      }
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
