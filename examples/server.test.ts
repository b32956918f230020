/**
 * `npm start` as a newcomer uses it: start examples/server.ts with no
 * configuration, run the curl commands it prints (with fetch), open the
 * Swagger UI link it prints (public: no token), the dashboard link (its dev
 * token endpoint, CORS from its origin; dashboard.e2e.test.ts drives the page
 * in a browser), mint a token with examples/token.ts, stop it with Ctrl-C.
 * The same links in provider mode. And a port already in use.
 */
import t, { type Test } from 'tap'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { connectToLocalIssuer, LocalIssuerUnavailable, startLocalIssuer } from './local-issuer'

/**
 * tsx when the project has it, else the TypeScript loader tap itself uses.
 * Both hook `import` as well as `require`: under tap, every child node gets
 * an ESM loader (coverage), which makes node load the entry point as ESM.
 */
function typescriptRunner (): string[] {
  let loader: string
  try {
    loader = require.resolve('tsx')
  } catch {
    loader = require.resolve('@isaacs/ts-node-temp-fork-for-pr-2009/import')
  }
  return ['--import', pathToFileURL(loader).href]
}

// The two cases are independent child processes: run them side by side.
t.jobs = 2

const dir = mkdtempSync(join(tmpdir(), 'griddy-example-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** Local mode whatever the developer's shell or .env says (an empty variable counts as unset and wins over .env). */
function env (port: number, devIssuerFile: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PORT: String(port),
    DASHBOARD_PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    GRIDDY_ISSUER: '',
    GRIDDY_AUDIENCE: '',
    GRIDDY_AUTHORIZED_PARTIES: '',
    GRIDDY_JWKS_URL: '',
    GRIDDY_CLERK_WEBHOOK_SECRET: '',
    GRIDDY_DEV_ISSUER_FILE: devIssuerFile,
    TS_NODE_TRANSPILE_ONLY: '1'
  }
}

/** Runs examples/<script> as `npm start` / `npm run token` would, with the dev issuer file of one test case. */
function run (script: string, args: string[], port: number, devIssuerFile: string, extraEnv: NodeJS.ProcessEnv = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [...typescriptRunner(), join(__dirname, script), ...args], { env: { ...env(port, devIssuerFile), ...extraEnv } })
}

interface Exit { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

function collect (child: ChildProcessWithoutNullStreams): { output: () => { stdout: string, stderr: string }, exited: Promise<Exit> } {
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { output: () => ({ stdout, stderr }), exited }
}

function within<T> (ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function listening (port = 0): Promise<Server> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  return server
}

async function freePort (): Promise<number> {
  const server = await listening()
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A printed example: `# <status> <code> "<message>": ...` followed by a `curl` line. */
interface Example { status: number, code?: string, message?: string, curl: string }

function examplesIn (banner: string): Example[] {
  const lines = banner.split('\n')
  const examples: Example[] = []
  lines.forEach((line, i) => {
    const match = /^# (\d{3}) (?:OK|(GRIDDY_[A-Z_]+))(?: "([^"]*)")?/.exec(line)
    const curl = lines[i + 1]
    if (match === null || curl === undefined || !curl.startsWith('curl ')) return
    examples.push({
      status: Number(match[1]),
      ...(match[2] === undefined ? {} : { code: match[2] }),
      ...(match[3] === undefined ? {} : { message: match[3] }),
      curl
    })
  })
  return examples
}

/** Runs a printed curl command (`-i`, `-X`, `-H`, `-d`, single-quoted words) with fetch. */
async function perform (curl: string): Promise<Response> {
  const words = [...curl.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '')
  const headers = new Headers()
  let method = 'GET'
  let body: string | undefined
  let url: string | undefined
  for (let i = 1; i < words.length; i++) {
    const word = words[i] ?? ''
    if (word === '-i') continue
    else if (word === '-X') method = words[++i] ?? ''
    else if (word === '-d') body = words[++i]
    else if (word === '-H') {
      const header = words[++i] ?? ''
      const colon = header.indexOf(':')
      headers.append(header.slice(0, colon), header.slice(colon + 1).trim())
    } else if (!word.startsWith('-')) url = word
    else throw new Error(`unexpected curl option ${word}`)
  }
  if (url === undefined) throw new Error(`no URL in ${curl}`)
  return await fetch(url, { method, headers, ...(body === undefined ? {} : { body }) })
}

/** Starts examples/server.ts (killed at the end of `t` if still running) and waits for its banner. */
async function start (t: Test, port: number, devIssuerFile: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<{ server: ChildProcessWithoutNullStreams, exited: Promise<Exit>, banner: string }> {
  const server = run('server.ts', [], port, devIssuerFile, extraEnv)
  const { output, exited } = collect(server)
  t.teardown(() => { if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL') })

  const banner = await within(15_000, new Promise<string>((resolve, reject) => {
    server.stdout.on('data', () => { if (output().stdout.includes('Press Ctrl-C to stop.')) resolve(output().stdout) })
    exited.then((exit) => reject(new Error(`server exited (${String(exit.code)}): ${exit.stderr}`))).catch(reject)
  }), 'server start')
  return { server, exited, banner }
}

/** The banner points to Swagger UI, which answers without a token (docs.e2e.test.ts drives it in a browser). */
async function docsArePublic (t: Test, banner: string, port: number): Promise<void> {
  const docs = `http://127.0.0.1:${port}/docs`
  t.match(banner, `\nSwagger UI: ${docs} — click Authorize and paste a token`, 'the banner shows the docs URL')
  const page = await fetch(docs)
  t.equal(page.status, 200, 'GET /docs answers 200 without a token')
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.match(await page.text(), /swagger-ui/i)
  const openapi = await fetch(`${docs}/json`)
  t.equal(openapi.status, 200, 'GET /docs/json answers 200 without a token')
  t.match(await openapi.json(), { openapi: /^3\./, components: { securitySchemes: { griddyAuth: { type: 'http', scheme: 'bearer' } } } })
}

/** The banner's dashboard: its page, its getToken() stand-in (for its own page only), CORS from its origin. */
async function dashboardWorks (t: Test, banner: string, port: number): Promise<void> {
  const dashboard = /\nDashboard: (http:\/\/127\.0\.0\.1:\d+) — a browser frontend on another origin/.exec(banner)?.[1] ?? ''
  t.not(dashboard, '', 'the banner shows the dashboard URL')
  t.not(dashboard, `http://127.0.0.1:${port}`, 'on another origin than the API')
  t.match(banner, `\n  azp       ${dashboard}\n`, 'the API accepts tokens minted for the dashboard\'s origin')
  const page = await fetch(dashboard)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.match(await page.text(), /<title>Griddy dashboard/)

  const getToken = (origin: string | undefined): Promise<Response> => fetch(`${dashboard}/dev/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(origin === undefined ? {} : { origin }) },
    body: JSON.stringify({ user: 'user_1' })
  })
  const minted = await getToken(dashboard)
  t.equal(minted.status, 200, 'POST /dev/token from the dashboard\'s own origin: a token')
  t.equal(minted.headers.get('cache-control'), 'no-store')
  const { token } = await minted.json() as { token: string }
  const leagues = await fetch(`http://127.0.0.1:${port}/api/v1/leagues`, { headers: { origin: dashboard, authorization: `Bearer ${token}` } })
  t.equal(leagues.status, 200, 'which the API accepts')
  t.equal(leagues.headers.get('access-control-allow-origin'), dashboard, 'with CORS for the dashboard')
  for (const origin of [undefined, 'http://evil.example', `http://127.0.0.1:${port}`]) {
    t.equal((await getToken(origin)).status, 403, `no token for a request from ${origin ?? 'no origin'}`)
  }
  const preflight = await fetch(`http://127.0.0.1:${port}/api/v1/leagues`, {
    method: 'OPTIONS',
    headers: { origin: dashboard, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' }
  })
  t.equal(preflight.status, 204, 'the API answers the dashboard\'s preflight')
  t.equal(preflight.headers.get('access-control-allow-origin'), dashboard)
}

t.test('npm start with no configuration: prints working curl commands, token CLI, Ctrl-C', { buffered: true }, async (t) => {
  const port = await freePort()
  const devIssuerFile = join(dir, 'started.json')
  const { server, exited, banner } = await start(t, port, devIssuerFile)

  t.match(banner, `Griddy example API listening on http://127.0.0.1:${port}`)
  await docsArePublic(t, banner, port)
  const examples = examplesIn(banner)
  t.same(examples.map((e) => e.status), [200, 403, 401, 200], 'the four printed examples')
  for (const example of examples) {
    t.match(example.curl, `http://127.0.0.1:${port}/`)
    const res = await perform(example.curl)
    t.equal(res.status, example.status, example.curl.replace(/Bearer [\w.-]+/, 'Bearer <token>'))
    const json = await res.json() as { code?: string, message?: string }
    if (example.code !== undefined) t.equal(json.code, example.code)
    if (example.message !== undefined) t.equal(json.message, example.message)
  }
  t.ok(examples.some((e) => e.code === 'GRIDDY_AUTH_EXPIRED' && e.message === 'Token has expired'))
  await dashboardWorks(t, banner, port)

  // npm run -s token -- ...: only the token on stdout.
  const cli = collect(run('token.ts', ['--sub', 'user_2', '--permissions', 'leagues:read,teams:read', '--sid', 'sess_2'], port, devIssuerFile))
  const minted = await within(10_000, cli.exited, 'token CLI')
  t.equal(minted.code, 0, minted.stderr)
  t.match(minted.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'just the token')
  const authorization = `Bearer ${minted.stdout.trim()}`
  const me = await fetch(`http://127.0.0.1:${port}/api/v1/me`, { headers: { authorization } })
  t.same(await me.json(), { userId: 'user_2', sessionId: 'sess_2', permissions: ['leagues:read', 'teams:read'] })
  const privateLeague = await fetch(`http://127.0.0.1:${port}/api/v1/leagues/lg_2`, { headers: { authorization } })
  t.equal(privateLeague.status, 200, 'user_2 owns the private league')

  // Sign-out: npm run -s token -- --end-session sess_1, as the banner says; the first curl then answers 401.
  t.match(banner, '\n  npm run -s token -- --end-session sess_1\n', 'the banner shows how to sign out')
  const signOut = await within(10_000, collect(run('token.ts', ['--end-session', 'sess_1'], port, devIssuerFile)).exited, 'token CLI --end-session')
  t.equal(signOut.code, 0, signOut.stderr)
  t.equal(signOut.stdout, 'Session sess_1 ended: its tokens now get 401 "Session has ended."\n')
  const [first] = examples
  const afterSignOut = await perform(first?.curl ?? '')
  t.equal(afterSignOut.status, 401, 'the first printed curl (sess_1) after the sign-out')
  t.match(await afterSignOut.json(), { code: 'GRIDDY_AUTH_SESSION_ENDED', message: 'Session has ended.' })
  t.match(afterSignOut.headers.get('www-authenticate'), 'error="invalid_token", error_description="Session has ended."')
  t.equal((await fetch(`http://127.0.0.1:${port}/api/v1/me`, { headers: { authorization } })).status, 200, 'sess_2 is not signed out')

  // Ctrl-C: closes cleanly and promptly, and withdraws the dev key.
  server.kill('SIGINT')
  const exit = await within(5_000, exited, 'exit after SIGINT')
  t.equal(exit.code, 0, 'exit code 0')
  t.equal(exit.signal, null, 'no signal')
  t.notOk(existsSync(devIssuerFile), 'the dev issuer file is deleted')
})

t.test('npm start with GRIDDY_ISSUER and GRIDDY_AUDIENCE: provider mode, the same public docs', { buffered: true }, async (t) => {
  const port = await freePort()
  const devIssuerFile = join(dir, 'provider.json')
  const { server, exited, banner } = await start(t, port, devIssuerFile, {
    GRIDDY_ISSUER: 'https://issuer.griddy.invalid',
    GRIDDY_AUDIENCE: 'https://api.griddy.invalid',
    GRIDDY_CLERK_WEBHOOK_SECRET: `whsec_${Buffer.from('provider mode webhook secret').toString('base64')}`
  })
  t.match(banner, `Griddy example API listening on http://127.0.0.1:${port}  (provider mode`)
  t.match(banner, '\n  CORS      (none: set GRIDDY_AUTHORIZED_PARTIES to your frontends\' origins)\n')
  t.notMatch(banner, 'Dashboard:', 'no dashboard: it needs the local dev issuer')
  await docsArePublic(t, banner, port)
  // No token, so no key is fetched: the closed network is never asked.
  const me = await fetch(`http://127.0.0.1:${port}/api/v1/me`)
  t.equal(me.status, 401)
  t.match(await me.json(), { code: 'GRIDDY_AUTH_NO_TOKEN' })
  t.notOk(existsSync(devIssuerFile), 'provider mode shares no dev key')
  const unsigned = await fetch(`http://127.0.0.1:${port}/webhooks/clerk`, { method: 'POST', body: '{"type":"session.ended","data":{"id":"sess_1"}}', headers: { 'content-type': 'application/json' } })
  t.equal(unsigned.status, 400, 'GRIDDY_CLERK_WEBHOOK_SECRET set: the webhook route refuses an unsigned delivery')

  server.kill('SIGINT')
  const exit = await within(5_000, exited, 'exit after SIGINT')
  t.equal(exit.code, 0, 'exit code 0')
})

t.test('npm run token: a clear error when the local issuer is not running', { buffered: true }, async (t) => {
  const file = join(dir, 'stale.json')
  await t.rejects(connectToLocalIssuer(file), new LocalIssuerUnavailable(
    `The local dev issuer is not running (no ${file}): start the example server first, in another terminal: npm start`))

  // A file left behind by a server that was killed: its JWKS no longer answers.
  const issuer = await startLocalIssuer()
  await issuer.share(file, 'http://127.0.0.1:3000')
  const left = readFileSync(file, 'utf8')
  t.ok(await connectToLocalIssuer(file), 'accepted while the issuer runs')
  await issuer.close()
  t.notOk(existsSync(file), 'close() deletes the file')
  writeFileSync(file, left)
  await t.rejects(connectToLocalIssuer(file), { name: 'LocalIssuerUnavailable', message: /is not answering \(its server was stopped\?\)/ })

  writeFileSync(file, '{"not": "a dev issuer"}')
  await t.rejects(connectToLocalIssuer(file), { name: 'LocalIssuerUnavailable', message: /^Cannot read .*: delete it and start/ })
})

t.test('a port already in use: one line, exit code 1', { buffered: true }, async (t) => {
  const blocker = await listening()
  t.teardown(() => new Promise((resolve) => blocker.close(resolve)))
  const { port } = blocker.address() as AddressInfo

  const devIssuerFile = join(dir, 'port-in-use.json')
  const exit = await within(15_000, collect(run('server.ts', [], port, devIssuerFile)).exited, 'server exit')
  t.equal(exit.code, 1)
  t.equal(exit.stdout, '')
  t.equal(exit.stderr, `Error: Port ${port} is already in use on 127.0.0.1: stop the other server or choose another port (PORT=3001 npm start).\n`)
  t.notOk(existsSync(devIssuerFile), 'a server that did not start shares no key')

  const dashboardBlocked = await within(15_000, collect(run('server.ts', [], await freePort(), devIssuerFile, { DASHBOARD_PORT: String(port) })).exited, 'server exit')
  t.equal(dashboardBlocked.code, 1)
  t.equal(dashboardBlocked.stderr, `Error: The dashboard's port ${port} is already in use on 127.0.0.1: stop the other server or choose another port (DASHBOARD_PORT=5174 npm start).\n`)
  t.notOk(existsSync(devIssuerFile))
})
