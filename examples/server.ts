/**
 * `npm start`: runs the example API.
 *
 * - With no GRIDDY_* variable: local mode. An embedded dev issuer signs
 *   tokens; the API fetches its keys over HTTP on 127.0.0.1, like it would
 *   from Clerk. Prints curl commands with ready-made tokens, and serves the
 *   dashboard (examples/dashboard/) on a second origin, DASHBOARD_PORT
 *   (default 5173): a browser frontend calling the API through CORS.
 * - With GRIDDY_ISSUER and GRIDDY_AUDIENCE (see .env.example): verifies your
 *   identity provider's tokens, and mints nothing. CORS is answered for the
 *   origins in GRIDDY_AUTHORIZED_PARTIES (your frontends).
 *
 * PORT (default 3000) and HOST (default 127.0.0.1) choose where it listens;
 * LOG_LEVEL (default info) the log level of the JSON logs, written to stderr.
 */
import { buildApp } from './app'
import { ConfigError, loadDotEnv, readConfig, type ExampleConfig } from './config'
import type { LocalIssuer } from './local-issuer'
import { DashboardListenError, startLocalMode, urlOf } from './local-mode'

/** A start-up failure worth one line, not a stack. */
function explain (err: unknown, config: ExampleConfig | undefined): string | undefined {
  if (err instanceof ConfigError) return err.message
  if (!(err instanceof Error)) return undefined
  if (err instanceof DashboardListenError && config?.mode === 'local') {
    return explainListen(err.cause, config.host, config.dashboardPort, 'DASHBOARD_PORT=5174', 'The dashboard\'s port')
  }
  if (config !== undefined) {
    const listen = explainListen(err, config.host, config.port, 'PORT=3001', 'Port')
    if (listen !== undefined) return listen
  }
  // Invalid plugin options (a GRIDDY_* value) stop start-up with a message naming the option.
  if (err.message.startsWith('fastify-griddy-auth:')) return err.message
  return undefined
}

/** Why listening on host:port failed, in one line, or undefined if it is not a listening error. */
function explainListen (err: unknown, host: string, port: number, otherPort: string, what: string): string | undefined {
  const code = err instanceof Error && 'code' in err ? err.code : undefined
  const where = `${host}:${port}`
  if (code === 'EADDRINUSE') return `${what} ${port} is already in use on ${host}: stop the other server or choose another port (${otherPort} npm start).`
  if (code === 'EACCES') return `Not allowed to listen on ${where}: choose a port above 1023.`
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return `Cannot listen on ${where}: HOST is not an address of this machine.`
  return undefined
}

const bearer = (token: string): string => `-H 'Authorization: Bearer ${token}'`

/** Swagger UI (public, outside the guarded scope; see app.ts) sends the token it is given in its Authorize dialog. */
const docsLine = (api: string): string => `Swagger UI: ${api}/docs — click Authorize and paste a token`

function localBanner (api: string, dashboard: string, issuer: LocalIssuer): string {
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

Dashboard: ${dashboard} — a browser frontend on another origin: sign in, list leagues, see the 401s and 403s

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
  CORS      ${authorizedParties === undefined ? '(none: set GRIDDY_AUTHORIZED_PARTIES to your frontends\' origins)' : `answered for ${list(authorizedParties)}`}
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
  let running: { close: () => Promise<void> } | undefined
  try {
    loadDotEnv()
    config = readConfig()
    const server = { logger: { level: process.env.LOG_LEVEL ?? 'info', stream: process.stderr } }
    if (config.mode === 'local') {
      const local = await startLocalMode({ host: config.host, port: config.port, dashboardPort: config.dashboardPort, server })
      running = local
      // Shared only once listening: a second server that fails to start must not take it over.
      await local.issuer.share(config.devIssuerFile, local.apiUrl)
      process.stdout.write(localBanner(local.apiUrl, local.dashboardUrl, local.issuer))
    } else {
      // Your frontends' origins: the tokens' azp, and the origins CORS is answered for.
      const app = buildApp({ auth: config.auth, server, frontends: config.auth.authorizedParties ?? [] })
      running = { close: async () => { await app.close() } }
      await app.listen({ host: config.host, port: config.port })
      const address = app.server.address()
      process.stdout.write(providerBanner(urlOf(config.host, typeof address === 'object' && address !== null ? address.port : config.port), config))
    }
  } catch (err) {
    await running?.close().catch(() => {})
    const reason = explain(err, config)
    if (reason === undefined) console.error(err)
    else console.error(`Error: ${reason}`)
    process.exitCode = 1
    return
  }

  const stack = running
  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      console.error(`${signal} again: exiting without waiting.`)
      process.exit(1)
    }
    stopping = true
    console.error(`${signal}: closing the server...`)
    stack.close().then(
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
