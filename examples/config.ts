/**
 * The example's configuration, from environment variables (see
 * `.env.example`). Two modes:
 *
 * - local (no `GRIDDY_*` variable set): an embedded dev issuer signs tokens,
 *   nothing leaves 127.0.0.1, no account needed;
 * - provider (`GRIDDY_ISSUER` and `GRIDDY_AUDIENCE` set): tokens come from
 *   your identity provider (Clerk or any RS256 + JWKS issuer) and the
 *   example never mints anything.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { GriddyAuthOptions } from '../lib'

export interface ListenConfig {
  readonly host: string
  readonly port: number
}

export type ExampleConfig =
  | (ListenConfig & { readonly mode: 'local', readonly devIssuerFile: string, readonly dashboardPort: number })
  | (ListenConfig & { readonly mode: 'provider', readonly auth: GriddyAuthOptions })

/** A configuration mistake: its message is shown as is, on one line. */
export class ConfigError extends Error {
  override get name (): string { return 'ConfigError' }
}

type Env = Readonly<Record<string, string | undefined>>

/** Where the running local server leaves its dev issuer for `npm run token` (gitignored; deleted on stop). */
export const defaultDevIssuerFile = join(__dirname, '.dev-issuer.json')

/** An empty variable counts as unset (so `GRIDDY_ISSUER= npm start` forces local mode). */
function read (env: Env, name: string): string | undefined {
  const value = env[name]?.trim()
  return value === undefined || value === '' ? undefined : value
}

function list (env: Env, name: string): string[] | undefined {
  const value = read(env, name)
  return value?.split(',').map((item) => item.trim()).filter((item) => item !== '')
}

function single (items: string[]): string | string[] {
  const [first] = items
  return items.length === 1 && first !== undefined ? first : items
}

/**
 * Loads `.env` from the working directory if there is one (Node >= 20.12).
 * Variables already set in the environment win, even when empty.
 */
export function loadDotEnv (cwd: string = process.cwd()): boolean {
  const file = join(cwd, '.env')
  if (typeof process.loadEnvFile !== 'function' || !existsSync(file)) return false
  process.loadEnvFile(file)
  return true
}

function portOf (env: Env, name: string, fallback: string): number {
  const raw = read(env, name) ?? fallback
  const port = Number(raw)
  if (!/^\d+$/.test(raw) || port > 65535) {
    throw new ConfigError(`${name} must be a port number (0-65535), got ${JSON.stringify(raw)}`)
  }
  return port
}

export function readConfig (env: Env = process.env): ExampleConfig {
  const host = read(env, 'HOST') ?? '127.0.0.1'
  const port = portOf(env, 'PORT', '3000')

  const issuer = list(env, 'GRIDDY_ISSUER')
  const audience = list(env, 'GRIDDY_AUDIENCE')
  const authorizedParties = list(env, 'GRIDDY_AUTHORIZED_PARTIES')
  const jwksUrl = read(env, 'GRIDDY_JWKS_URL')
  const webhookSecret = read(env, 'GRIDDY_CLERK_WEBHOOK_SECRET')

  if (issuer === undefined && audience === undefined && authorizedParties === undefined && jwksUrl === undefined) {
    return {
      mode: 'local',
      host,
      port,
      // The dashboard's origin: a frontend's usual dev port (Vite's), another origin than the API's.
      dashboardPort: portOf(env, 'DASHBOARD_PORT', '5173'),
      devIssuerFile: read(env, 'GRIDDY_DEV_ISSUER_FILE') ?? defaultDevIssuerFile
    }
  }
  if (issuer === undefined || issuer.length === 0) {
    throw new ConfigError('GRIDDY_ISSUER is required when verifying provider tokens (e.g. https://<your-frontend-api>.clerk.accounts.dev); unset every GRIDDY_* variable for local mode')
  }
  if (audience === undefined || audience.length === 0) {
    throw new ConfigError('GRIDDY_AUDIENCE is required when verifying provider tokens (the "aud" your tokens carry); unset every GRIDDY_* variable for local mode')
  }
  const auth: GriddyAuthOptions = {
    issuer: single(issuer),
    audience: single(audience),
    ...(authorizedParties !== undefined && authorizedParties.length > 0 ? { authorizedParties } : {}),
    ...(jwksUrl !== undefined ? { jwksUrl } : {}),
    // Sign-out: Clerk's webhooks at POST /webhooks/clerk end sessions at once (this process only; add `redis` for several).
    ...(webhookSecret !== undefined ? { sessions: { clerkWebhook: { path: '/webhooks/clerk', secret: webhookSecret } } } : {})
  }
  return { mode: 'provider', host, port, auth }
}
