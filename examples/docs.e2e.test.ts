/**
 * Swagger UI at /docs, used as a person would, in headless Chromium driven by
 * playwright-core: the page loads without a token (the docs are public),
 * "Authorize" takes a token in the `griddyAuth` bearer field, and "Try it
 * out" / "Execute" on GET /api/v1/leagues sends it: 200 with `leagues:read`,
 * then, after "Logout" and a token without it, 403 `GRIDDY_AUTH_FORBIDDEN`.
 * It checks what the OpenAPI document written by lib/openapi.ts makes the UI
 * do, which no JSON assertion can.
 *
 * The example runs in this process, as examples/server.ts assembles it in
 * local mode (startLocalIssuer() + buildApp() + listen on 127.0.0.1, port 0):
 * no child process to start or reap, no fixed port, the JWKS still fetched
 * over HTTP, and tap's coverage of lib/ stays valid (see
 * scripts/coverage-map.mjs). `npm start` itself is covered by server.test.ts.
 *
 * The browser is the system's Chromium, launched by ./browser.ts: without it
 * the test is skipped, saying so, unless GRIDDY_E2E=required (as .ci/run
 * sets). `npm run test:e2e` runs the browser tests alone.
 *
 * Tokens are compared, never printed: assertions on them are t.ok(a === b).
 */
import type { AddressInfo } from 'node:net'
import type { Request } from 'playwright-core'
import { buildApp } from './app'
import { browserTest, launchChromium, newPage } from './browser'
import { startLocalIssuer } from './local-issuer'

browserTest('Swagger UI at /docs: authorize with a bearer token, try GET /api/v1/leagues', async (t) => {
  // Teardowns run last registered first: the browser, then the API, then the issuer.
  const issuer = await startLocalIssuer()
  t.teardown(() => issuer.close())
  const app = buildApp({ auth: issuer.pluginOptions })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const reader = issuer.mint({ sub: 'user_1', sessionId: 'sess_1', permissions: ['leagues:read'] })
  const teamsOnly = issuer.mint({ sub: 'user_1', sessionId: 'sess_1', permissions: ['teams:read'] })

  const page = await newPage(await launchChromium(t))

  // Every request the page makes to the example API, with what it sent.
  const sent: Array<{ path: string, authorization: string | undefined }> = []
  page.on('request', (request: Request) => {
    const url = new URL(request.url())
    if (url.origin === origin) sent.push({ path: url.pathname, authorization: request.headers().authorization })
  })
  const pageErrors: string[] = []
  page.on('pageerror', (err) => { pageErrors.push(err.message) })

  const operation = page.locator('#operations-leagues-get_api_v1_leagues')
  // The "Authorize" button above the operations; the dialog, rendered beside
  // it in .auth-wrapper, has a submit button with the same classes.
  const authorizeButton = page.locator('.auth-wrapper > .btn.authorize')
  const dialog = page.locator('.auth-wrapper .modal-ux')
  const griddyAuth = dialog.locator('.auth-container form').filter({ has: page.locator('h4 code', { hasText: /^griddyAuth$/ }) })
  const liveResponse = operation.locator('.live-responses-table tbody tr.response')

  await t.test('the page loads without a token, with its Authorize button and lock icons', async (t) => {
    const response = await page.goto(`${origin}/docs`)
    t.equal(response?.status(), 200, 'GET /docs answers 200 without a token')
    await operation.waitFor()
    t.ok(sent.some((r) => r.path === '/docs/json'), 'the UI fetched the OpenAPI document')
    t.same(sent.filter((r) => r.authorization !== undefined).map((r) => r.path), [], 'no request carried a token')

    t.equal(await authorizeButton.count(), 1, 'an "Authorize" button')
    t.match(await authorizeButton.getAttribute('class'), /\bunlocked\b/, 'shown unlocked')
    t.equal(await authorizeButton.locator('span').textContent(), 'Authorize')
    t.equal(await operation.locator('.authorization__btn').getAttribute('aria-label'), 'authorization button unlocked',
      'GET /api/v1/leagues has a lock icon: it needs a token')
    t.equal(await page.locator('#operations-health-get_healthz .authorization__btn').count(), 0,
      'the public GET /healthz has none')
  })

  const authorized = griddyAuth.locator('h6', { hasText: /^Authorized$/ })

  /**
   * Opens the Authorize dialog, clicks Logout first if `replacing` a token,
   * pastes `token` in the griddyAuth field, authorizes, closes the dialog.
   */
  async function authorize (token: string, replacing: boolean): Promise<void> {
    await authorizeButton.click()
    await griddyAuth.waitFor()
    if (replacing) {
      await authorized.waitFor()
      await griddyAuth.locator('button', { hasText: /^Logout$/ }).click()
      await authorized.waitFor({ state: 'detached' })
    }
    await griddyAuth.locator('input#auth-bearer-value').fill(token)
    await griddyAuth.locator('button[type=submit]', { hasText: /^Authorize$/ }).click()
    await authorized.waitFor()
    await griddyAuth.locator('.btn-done').click()
    await dialog.waitFor({ state: 'detached' })
  }

  /** Clicks "Execute" and returns the request the page sent, with the status and body Swagger UI shows. */
  async function execute (): Promise<{ request: Request, status: string | null, body: string | null }> {
    if (await liveResponse.count() > 0) {
      await operation.locator('.btn-clear').click()
      await liveResponse.waitFor({ state: 'detached' })
    }
    const [response] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/leagues'),
      operation.locator('.btn.execute').click()
    ])
    await liveResponse.waitFor()
    return {
      request: response.request(),
      status: await liveResponse.locator('.response-col_status').textContent(),
      body: await liveResponse.locator('.response-col_description .microlight').first().textContent()
    }
  }

  /** The Authorization header that `request` carried was `Bearer <token>` (compared, not printed). */
  async function carried (request: Request, token: string): Promise<boolean> {
    return (await request.allHeaders()).authorization === `Bearer ${token}`
  }

  await t.test('a token with leagues:read: Execute shows 200', async (t) => {
    await authorize(reader, false)
    t.match(await authorizeButton.getAttribute('class'), /\blocked\b/, 'the Authorize button is shown locked')
    t.equal(await operation.locator('.authorization__btn').getAttribute('aria-label'), 'authorization button locked')

    await operation.locator('.opblock-summary-control').click()
    t.match(await operation.locator('.opblock-body').textContent(), /leagues:read/, 'the operation names the permission it needs')
    await operation.locator('.try-out__btn').click()
    const { request, status, body } = await execute()
    t.equal(status, '200', 'Swagger UI shows 200')
    t.ok(await carried(request, reader), 'the request carried Authorization: Bearer <the leagues:read token>')
    t.match(body, /"lg_1"/, 'the response body lists the public league')
  })

  await t.test('after Logout, a token without leagues:read: Execute shows 403 GRIDDY_AUTH_FORBIDDEN', async (t) => {
    await authorize(teamsOnly, true)
    const { request, status, body } = await execute()
    t.equal(status, '403', 'Swagger UI shows 403')
    t.ok(await carried(request, teamsOnly), 'the request carried Authorization: Bearer <the teams:read token>')
    t.match(body, /"GRIDDY_AUTH_FORBIDDEN"/, 'the response body has the error code')
  })

  t.same(sent.filter((r) => r.path.startsWith('/api/')).map((r) => r.path), ['/api/v1/leagues', '/api/v1/leagues'],
    'the page called the API twice, on Execute only')
  t.same(pageErrors, [], 'no uncaught error in the page')
})
