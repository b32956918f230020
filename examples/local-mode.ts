/**
 * Local mode, assembled: the dev issuer, the dashboard on its own origin, and
 * the API, which accepts tokens minted for the dashboard's origin
 * (`authorizedParties`) and answers CORS for it. Started by `npm start`
 * (server.ts) and, in process, by dashboard.e2e.test.ts.
 *
 * Order matters: the dashboard listens first, since its origin (with the
 * port it got) is what the API must list; it is handed the API's URL and the
 * token minter once the API listens.
 */
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { buildApp } from './app'
import { buildDashboard } from './dashboard-server'
import { startLocalIssuer, type LocalIssuer } from './local-issuer'

export interface LocalModeOptions {
  host: string
  /** The API's port (0: a free one). */
  port: number
  /** The dashboard's port (0: a free one). */
  dashboardPort: number
  /** Fastify's options, for both servers. */
  server?: FastifyServerOptions
  /** Where @fastify/cors is registered relative to the plugin (both work); `'none'` leaves CORS out, to see what a browser then shows. */
  cors?: 'before' | 'after' | 'none'
}

export interface LocalMode {
  readonly issuer: LocalIssuer
  readonly api: FastifyInstance
  readonly dashboard: FastifyInstance
  /** e.g. `http://127.0.0.1:3000` */
  readonly apiUrl: string
  /** e.g. `http://127.0.0.1:5173`: the page's origin, the tokens' `azp`. */
  readonly dashboardUrl: string
  close (): Promise<void>
}

/** Listening on the dashboard's port failed (its port is in use...): `cause` says why. */
export class DashboardListenError extends Error {
  override get name (): string { return 'DashboardListenError' }
}

/** The URL a browser on this machine uses for a server listening on `host`:`port`. */
export function urlOf (host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`
}

function portOf (app: FastifyInstance, fallback: number): number {
  const address = app.server.address()
  return typeof address === 'object' && address !== null ? address.port : fallback
}

export async function startLocalMode (options: LocalModeOptions): Promise<LocalMode> {
  const dashboard = buildDashboard(options.server)
  try {
    await dashboard.app.listen({ host: options.host, port: options.dashboardPort })
  } catch (err) {
    await dashboard.app.close()
    throw new DashboardListenError(`the dashboard cannot listen on ${options.host}:${options.dashboardPort}`, { cause: err })
  }
  const dashboardUrl = urlOf(options.host, portOf(dashboard.app, options.dashboardPort))

  let issuer: LocalIssuer | undefined
  let api: FastifyInstance | undefined
  try {
    issuer = await startLocalIssuer({ authorizedParties: [dashboardUrl] })
    const started = issuer
    const cors = options.cors ?? 'after'
    api = buildApp({
      auth: issuer.pluginOptions,
      ...(options.server === undefined ? {} : { server: options.server }),
      ...(cors === 'none' ? {} : { frontends: [dashboardUrl], corsOrder: cors })
    })
    api.addHook('onClose', async () => { await started.close() })
    await api.listen({ host: options.host, port: options.port })
  } catch (err) {
    // The API's own close closes the issuer (onClose); without an API, close it here.
    await (api === undefined ? issuer?.close() : api.close())?.catch(() => {})
    await dashboard.app.close()
    throw err
  }
  const apiUrl = urlOf(options.host, portOf(api, options.port))
  const minter = issuer
  dashboard.connect({ apiUrl, mint: (request) => minter.mint(request) })

  const running = api
  return {
    issuer,
    api,
    dashboard: dashboard.app,
    apiUrl,
    dashboardUrl,
    async close () {
      await Promise.all([running.close(), dashboard.app.close()])
    }
  }
}
