/**
 * The dashboard of `npm start` (examples/dashboard/), used as a person
 * would, in headless Chromium driven by playwright-core: a browser frontend
 * on its own origin calling the example API on another (two loopback
 * ports), as a Clerk frontend does. Sign in, list leagues (200), create a
 * league without `leagues:write` (403), send a stale token (401 `Token has
 * expired`) and another frontend's token (401 `Invalid authorized party.`),
 * sign in as a user without `leagues:read` (403); each time the page must
 * show the API's code, message and `WWW-Authenticate`, which it can read only
 * if CORS works. Once with @fastify/cors registered after the plugin, once
 * before; and once without CORS, where all the page can show is
 * "Failed to fetch".
 *
 * Also checked: `getToken()` fetched a fresh 60 s token before each call and
 * the call carried exactly that one (never a cached one); the API answered
 * the browser's preflights itself (its logs), without authenticating them.
 *
 * Local mode runs in this process (startLocalMode(), as `npm start` does),
 * so tap's coverage of lib/ stays valid. Chromium comes from ./browser.ts:
 * without it the test is skipped, saying so, unless GRIDDY_E2E=required.
 * Tokens are compared, never printed.
 */
import type { Test } from 'tap'
import type { Browser, Page } from 'playwright-core'
import { browserTest, launchChromium, newPage } from './browser'
import { startLocalMode, type LocalMode } from './local-mode'

interface LogLine { reqId?: string, msg?: string, req?: { method: string, url: string, host: string }, res?: { statusCode: number }, code?: string }

/** Both servers' JSON logs, with request ids unique across them. */
function captureLogs (): { lines: LogLine[], server: { logger: { level: string, stream: { write: (line: string) => void } }, genReqId: () => string } } {
  const lines: LogLine[] = []
  let next = 0
  return {
    lines,
    server: {
      logger: { level: 'info', stream: { write: (line) => { lines.push(JSON.parse(line) as LogLine) } } },
      genReqId: () => `r${++next}`
    }
  }
}

/** What the API answered, per request, from its own logs: method, path, status, and whether the plugin refused it. */
function answersOf (lines: LogLine[], apiUrl: string): Array<{ method: string, url: string, status: number | undefined }> {
  const host = new URL(apiUrl).host
  return lines.filter((line) => line.msg === 'incoming request' && line.req?.host === host).map((incoming) => ({
    method: incoming.req?.method ?? '',
    url: incoming.req?.url ?? '',
    status: lines.find((line) => line.reqId === incoming.reqId && line.msg === 'request completed')?.res?.statusCode
  }))
}

/** The claims of a JWT (not verified: the API did that). */
function claimsOf (token: string): { exp: number, iat: number, azp: string, sub: string } {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'))
}

/** What the page shows in its Result panel. */
interface Shown { status: string, message: string, challenge: string, leagues: string[] }

interface Traffic {
  /** In order: each token `getToken()` received, and each API call with the token it carried. */
  events: Array<{ kind: 'token', token: string } | { kind: 'call', method: string, path: string, token: string | undefined }>
}

/** Records what the page fetched: tokens from /dev/token (its responses), API calls (their requests). */
function watch (page: Page, local: LocalMode): Traffic {
  const traffic: Traffic = { events: [] }
  const api = new URL(local.apiUrl).origin
  page.on('request', (request) => {
    const url = new URL(request.url())
    if (url.origin !== api) return
    const authorization = request.headers().authorization
    traffic.events.push({ kind: 'call', method: request.method(), path: url.pathname, token: authorization?.replace(/^Bearer /, '') })
  })
  page.on('response', (response) => {
    if (new URL(response.url()).pathname !== '/dev/token') return
    // Pushed synchronously, before the page can use the token: the order of events is the page's.
    const index = traffic.events.push({ kind: 'token', token: '' }) - 1
    response.json().then((body: { token: string }) => { (traffic.events[index] as { token: string }).token = body.token }, () => {})
  })
  return traffic
}

async function openDashboard (t: Test, browser: Browser, local: LocalMode): Promise<{ page: Page, act: (button: string) => Promise<Shown>, signIn: (user: string) => Promise<void>, errors: string[] }> {
  const page = await newPage(browser)
  t.teardown(() => page.context().close())
  const errors: string[] = []
  page.on('pageerror', (err) => { errors.push(err.message) })
  const response = await page.goto(local.dashboardUrl)
  t.equal(response?.status(), 200, 'the dashboard page loads')
  await page.locator('body[data-ready="true"]').waitFor()

  let completed = 0
  /** Clicks a call's button, waits until the page has shown its result, and reads it. */
  async function act (button: string): Promise<Shown> {
    completed += 1
    await page.locator(`#${button}`).click()
    await page.locator(`body[data-completed="${completed}"]`).waitFor()
    return {
      status: await page.locator('#status').innerText(),
      message: await page.locator('#message').innerText(),
      challenge: await page.locator('#challenge').innerText(),
      leagues: await page.locator('#leagues li').allInnerTexts()
    }
  }
  async function signIn (user: string): Promise<void> {
    if (await page.locator('#sign-out').isVisible()) await page.locator('#sign-out').click()
    await page.locator('#user').selectOption(user)
    await page.locator('#sign-in').click()
    await page.locator('#signed-in').waitFor()
  }
  return { page, act, signIn, errors }
}

browserTest('the dashboard on a second origin: sign in, leagues, 403, stale token, another frontend\'s token', async (t) => {
  const browser = await launchChromium(t)

  for (const cors of ['after', 'before'] as const) {
    await t.test(`@fastify/cors registered ${cors} the plugin`, async (t) => {
      const logs = captureLogs()
      const local = await startLocalMode({ host: '127.0.0.1', port: 0, dashboardPort: 0, cors, server: logs.server })
      t.teardown(() => local.close())
      t.not(new URL(local.dashboardUrl).origin, new URL(local.apiUrl).origin, 'the page and the API are two origins')
      const { page, act, signIn, errors } = await openDashboard(t, browser, local)
      const traffic = watch(page, local)
      t.equal(await page.locator('#origin').innerText(), local.dashboardUrl, 'the page shows its origin')
      t.equal(await page.locator('#api').innerText(), local.apiUrl, 'and the API it calls')

      await signIn('user_1')
      t.equal(await page.locator('#who').innerText(), 'Alex (user_1)', 'signed in as Alex')

      t.same(await act('list-leagues'), {
        status: '200 OK',
        message: '',
        challenge: '',
        leagues: ['Griddy Premier (lg_1, public, owner user_1)']
      }, 'List leagues: 200 and the public league (the private one is not Alex\'s)')

      t.same(await act('create-league'), {
        status: '403 GRIDDY_AUTH_FORBIDDEN',
        message: 'Insufficient permissions.',
        challenge: 'WWW-Authenticate: Bearer error="insufficient_scope", scope="leagues:write"',
        leagues: []
      }, 'Create a league without leagues:write: the 403, its message and its challenge')

      t.same(await act('stale-token'), {
        status: '401 GRIDDY_AUTH_EXPIRED',
        message: 'Token has expired',
        challenge: 'WWW-Authenticate: Bearer error="invalid_token", error_description="Token has expired"',
        leagues: []
      }, 'a stale token: Token has expired')

      t.same(await act('other-frontend'), {
        status: '401 GRIDDY_AUTH_AUTHORIZED_PARTY',
        message: 'Invalid authorized party.',
        challenge: 'WWW-Authenticate: Bearer error="invalid_token", error_description="Invalid authorized party."',
        leagues: []
      }, 'another frontend\'s token: Invalid authorized party.')

      await signIn('user_4')
      t.same(await act('list-leagues'), {
        status: '403 GRIDDY_AUTH_FORBIDDEN',
        message: 'Insufficient permissions.',
        challenge: 'WWW-Authenticate: Bearer error="insufficient_scope", scope="leagues:read"',
        leagues: []
      }, 'Sam, without leagues:read: the 403')

      t.equal(await page.locator('#calls li').count(), 5, 'the page logged five calls')
      t.same(errors, [], 'no uncaught error in the page')

      // getToken() before each call, and the call carried that very token.
      const kinds = traffic.events.map((event) => event.kind)
      t.same(kinds, ['token', 'call', 'token', 'call', 'token', 'call', 'token', 'call', 'token', 'call'],
        'a token fetched before each call, one per call')
      const calls = traffic.events.filter((event) => event.kind === 'call')
      t.same(calls.map((call) => `${call.method} ${call.path}`), [
        'GET /api/v1/leagues', 'POST /api/v1/leagues', 'GET /api/v1/leagues', 'GET /api/v1/leagues', 'GET /api/v1/leagues'
      ], 'the API calls, in order (preflights are not page requests)')
      traffic.events.forEach((event, i) => {
        if (event.kind !== 'call') return
        const fetched = traffic.events[i - 1]
        t.ok(fetched?.kind === 'token' && event.token !== undefined && event.token === fetched.token, `call ${i / 2 + 1} carried the token fetched just before it`)
      })
      const tokens = calls.map((call) => call.token ?? '')
      t.equal(new Set(tokens).size, 5, 'five different tokens: none reused')
      const fresh = [tokens[0], tokens[1], tokens[4]].map((token) => claimsOf(token ?? ''))
      t.same(fresh.map((claims) => claims.exp - claims.iat), [60, 60, 60], 'fresh tokens live 60 s')
      t.same(fresh.map((claims) => claims.azp), [local.dashboardUrl, local.dashboardUrl, local.dashboardUrl], 'minted for this page\'s origin (azp)')
      t.ok(claimsOf(tokens[2] ?? '').exp < Date.now() / 1000, 'the stale token had expired')

      // The API's side: preflights answered 204, never a 401 (they carry no token); then the calls.
      const answers = answersOf(logs.lines, local.apiUrl)
      const preflights = answers.filter((answer) => answer.method === 'OPTIONS')
      // One per URL at least: a preflight's answer is cached (maxAge) for the methods and headers it allowed.
      t.ok(preflights.length >= 1, `the browser sent preflights (${preflights.length}), for calls with Authorization`)
      t.same([...new Set(preflights.map((answer) => answer.status))], [204], 'every preflight answered 204 by @fastify/cors')
      t.same(answers.filter((answer) => answer.method !== 'OPTIONS').map((answer) => answer.status), [200, 403, 401, 401, 403],
        'and the five calls, as the page showed them')
    })
  }

  await t.test('without CORS on the API: the page can only show "Failed to fetch"', async (t) => {
    const local = await startLocalMode({ host: '127.0.0.1', port: 0, dashboardPort: 0, cors: 'none' })
    t.teardown(() => local.close())
    const { act, signIn, errors } = await openDashboard(t, browser, local)
    await signIn('user_1')
    const shown = await act('list-leagues')
    t.equal(shown.status, 'Failed to fetch', 'the browser hides the answer from the page')
    t.match(shown.message, /no CORS headers for this origin.*docs\/browser-frontends\.md/, 'the page points to the fix')
    t.same(errors, [], 'no uncaught error in the page')
  })
})
