/**
 * Headless Chromium for the end-to-end tests (docs.e2e.test.ts,
 * dashboard.e2e.test.ts), driven by playwright-core.
 *
 * The browser is the system's Chromium (Debian package `chromium`), never a
 * downloaded one: /usr/bin/chromium, or CHROMIUM_PATH. Without it a browser
 * test is skipped, saying so, unless GRIDDY_E2E=required (as .ci/run sets):
 * then its absence is a failure.
 *
 * Not a test file itself (tap runs only *.test.ts).
 */
import t, { type Test } from 'tap'
import { accessSync, constants } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'

export const chromiumPath = process.env.CHROMIUM_PATH !== undefined && process.env.CHROMIUM_PATH !== ''
  ? process.env.CHROMIUM_PATH
  : '/usr/bin/chromium'

/** Why Chromium cannot be used here, or undefined if it can. */
export function chromiumMissing (): string | undefined {
  try {
    accessSync(chromiumPath, constants.X_OK)
    return undefined
  } catch {
    return `no Chromium at ${chromiumPath} (install Debian's: apt-get install -y chromium; or set CHROMIUM_PATH)`
  }
}

// This machine's network is closed but for 127.0.0.1: no background traffic.
const chromiumArgs = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** A step that hangs fails in seconds, with Playwright's message, well within tap's time per file. */
export const stepTimeout = 10_000

/** Launches the system's Chromium, closed at the end of `t`. */
export async function launchChromium (t: Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs })
  t.teardown(() => browser.close())
  return browser
}

/** A new page (in a context of its own: no cache or storage shared with other pages) with the step timeouts. */
export async function newPage (browser: Browser): Promise<Page> {
  const context = await browser.newContext()
  const page = await context.newPage()
  page.setDefaultTimeout(stepTimeout)
  page.setDefaultNavigationTimeout(stepTimeout)
  return page
}

/**
 * Registers a browser test: run when Chromium is there, skipped (saying why)
 * when it is not, failed instead when GRIDDY_E2E=required.
 */
export function browserTest (name: string, fn: (t: Test) => Promise<void>): void {
  const missing = chromiumMissing()
  if (missing !== undefined && process.env.GRIDDY_E2E === 'required') {
    t.fail(`${name}: ${missing}, and GRIDDY_E2E=required`)
    return
  }
  t.test(name, { skip: missing ?? false }, fn)
}
