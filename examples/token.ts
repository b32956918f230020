/**
 * `npm run token -- --sub user_1 --permissions leagues:read,leagues:write [--expires-in 3600] [--sid sess_1]`
 * `npm run token -- --end-session sess_1`
 *
 * Mints a dev token for the example server running in local mode (`npm
 * start` in another terminal) and prints only the token, so that
 * `TOKEN=$(npm run -s token -- ...)` works. It signs with the running
 * server's dev key, which the server shares in examples/.dev-issuer.json
 * while it runs (see local-issuer.ts).
 */
import { parseArgs } from 'node:util'
import { ConfigError, loadDotEnv, readConfig } from './config'
import { connectToLocalIssuer, LocalIssuerUnavailable } from './local-issuer'

const usage = `Usage: npm run -s token -- [--sub <user id>] [--permissions <a:read,b:write>] [--sid <session id>] [--expires-in <seconds>]
       npm run -s token -- --end-session <session id>

Mints a token for the example server running in local mode (npm start) and prints it.
  --sub          the user id (sub); default user_1
  --permissions  comma-separated permissions; default none
  --sid          the session id (sid); default none
  --expires-in   lifetime in seconds, default 3600; negative for an expired token (--expires-in=-60)
  --end-session  instead of minting: sign that session out, as Clerk's session.ended webhook does;
                 its tokens then get 401 "Session has ended."

Example:
  TOKEN=$(npm run -s token -- --sub user_1 --permissions leagues:read,leagues:write)
  curl -i http://127.0.0.1:3000/api/v1/me -H "Authorization: Bearer $TOKEN"
`

class UsageError extends Error {}

async function main (): Promise<void> {
  const { values } = (() => {
    try {
      return parseArgs({
        options: {
          sub: { type: 'string', default: 'user_1' },
          permissions: { type: 'string', default: '' },
          sid: { type: 'string' },
          'expires-in': { type: 'string', default: '3600' },
          'end-session': { type: 'string' },
          help: { type: 'boolean', short: 'h', default: false }
        }
      })
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err))
    }
  })()
  if (values.help) {
    process.stdout.write(usage)
    return
  }
  const expiresIn = Number(values['expires-in'])
  if (!/^-?\d+$/.test(values['expires-in']) || !Number.isSafeInteger(expiresIn)) {
    throw new UsageError(`--expires-in must be a whole number of seconds, got ${JSON.stringify(values['expires-in'])}`)
  }
  if (values.sub.trim() === '') throw new UsageError('--sub must not be empty')

  loadDotEnv()
  const config = readConfig()
  if (config.mode !== 'local') {
    throw new ConfigError('GRIDDY_ISSUER/GRIDDY_AUDIENCE are set: the server verifies your identity provider\'s tokens, so this tool cannot mint any. Get a token from your frontend (Clerk: await getToken()), or unset the GRIDDY_* variables for local mode.')
  }
  const issuer = await connectToLocalIssuer(config.devIssuerFile)
  const ended = values['end-session']
  if (ended !== undefined) {
    if (ended.trim() === '') throw new UsageError('--end-session needs a session id')
    await issuer.endSession(ended)
    process.stdout.write(`Session ${ended} ended: its tokens now get 401 "Session has ended."\n`)
    return
  }
  const token = issuer.mint({
    sub: values.sub,
    permissions: values.permissions.split(/[\s,]+/).filter((permission) => permission !== ''),
    expiresIn,
    ...(values.sid !== undefined ? { sessionId: values.sid } : {})
  })
  process.stdout.write(`${token}\n`)
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) console.error(`Error: ${err.message}\n\n${usage}`)
  else if (err instanceof ConfigError || err instanceof LocalIssuerUnavailable) console.error(`Error: ${err.message}`)
  else console.error(err)
  process.exitCode = 1
})
