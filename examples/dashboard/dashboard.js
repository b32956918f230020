// The Griddy dashboard: a browser frontend on its own origin, calling the
// example API as a Clerk frontend does. Plain JavaScript, no build step.
//
// getToken() stands in for Clerk's: it fetches a fresh ~60 s session token
// (here from the dashboard's own dev endpoint, with Clerk from Clerk) before
// EACH call and never caches one, so a token never goes stale in the page.
// The API's answers, refusals included, are readable here only because the
// API answers CORS for this origin and exposes WWW-Authenticate.

const $ = (id) => document.getElementById(id)

const config = await (await fetch('/config.json')).json()
let session = null
let minted = 0
let completed = 0

/** Clerk's `await getToken()`, stood in for: a fresh token for the signed-in user, never a cached one. */
async function getToken (variant = 'fresh') {
  const response = await fetch('/dev/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: session.id, variant })
  })
  if (!response.ok) throw new Error(`getToken(): the dev token endpoint answered ${response.status}`)
  minted += 1
  return (await response.json()).token
}

const variantLabels = {
  fresh: 'a fresh 60 s token',
  expired: 'a stale token (expired a minute ago)',
  'other-frontend': 'another frontend\'s token'
}

/** One API call with `Authorization: Bearer <token>`: what the page can read of the answer. */
async function callApi (method, path, { variant = 'fresh', body } = {}) {
  const token = await getToken(variant)
  const headers = { authorization: `Bearer ${token}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const entry = `${method} ${path} with ${variantLabels[variant]} (#${minted})`
  try {
    const response = await fetch(`${config.api}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const json = await response.json()
    // Readable only if the API exposes it (Access-Control-Expose-Headers).
    const challenge = response.headers.get('www-authenticate')
    log(`${entry} → ${response.status}${json.code === undefined ? '' : ` ${json.code}`}`)
    return { status: response.status, json, challenge }
  } catch (err) {
    // No CORS headers on the answer (or no answer at all): the page cannot tell which.
    log(`${entry} → ${err.message}`)
    return { failed: err.message }
  }
}

function log (text) {
  const item = document.createElement('li')
  item.textContent = text
  $('calls').append(item)
}

function show (result, leagues = []) {
  const status = $('status')
  $('leagues').replaceChildren()
  $('challenge').textContent = ''
  if (result.failed !== undefined) {
    status.className = 'refused'
    status.textContent = result.failed
    $('message').textContent = 'The browser hid the answer: the API sent no CORS headers for this origin, or could not be reached. See docs/browser-frontends.md.'
    return
  }
  const ok = result.status < 400
  status.className = ok ? 'ok' : 'refused'
  status.textContent = ok ? `${result.status} OK` : `${result.status} ${result.json.code}`
  $('message').textContent = ok ? '' : result.json.message
  if (result.challenge !== null) $('challenge').textContent = `WWW-Authenticate: ${result.challenge}`
  for (const league of leagues) {
    const item = document.createElement('li')
    item.textContent = `${league.name} (${league.id}, ${league.private ? 'private' : 'public'}, owner ${league.ownerId})`
    $('leagues').append(item)
  }
}

async function listLeagues (variant) {
  const result = await callApi('GET', '/api/v1/leagues', { variant })
  show(result, result.status === 200 ? result.json.leagues : [])
}

async function createLeague () {
  show(await callApi('POST', '/api/v1/leagues', { body: { name: `${session.name}'s league` } }))
}

function render () {
  $('signed-out').hidden = session !== null
  $('signed-in').hidden = session === null
  for (const id of ['list-leagues', 'create-league', 'stale-token', 'other-frontend']) $(id).disabled = session === null
  if (session !== null) {
    $('who').textContent = `${session.name} (${session.id})`
    $('permissions').textContent = `permissions: ${session.permissions.join(', ') || 'none'}`
  }
}

/**
 * Runs `action` with every button disabled, so calls never overlap; errors
 * are shown, not thrown. `data-completed` on <body> counts finished actions
 * (what an end-to-end test waits for).
 */
function guarded (action) {
  return async () => {
    const buttons = [...document.querySelectorAll('button')]
    const enabled = buttons.filter((button) => !button.disabled)
    for (const button of enabled) button.disabled = true
    try {
      await action()
    } catch (err) {
      show({ failed: err.message })
    } finally {
      for (const button of enabled) button.disabled = false
      completed += 1
      document.body.dataset.completed = String(completed)
    }
  }
}

for (const user of config.users) {
  const option = document.createElement('option')
  option.value = user.id
  option.textContent = `${user.name} (${user.permissions.join(', ')})`
  $('user').append(option)
}
$('api').textContent = config.api
$('origin').textContent = window.location.origin

$('sign-in').addEventListener('click', () => {
  session = config.users.find((user) => user.id === $('user').value) ?? null
  render()
})
$('sign-out').addEventListener('click', () => {
  session = null
  render()
})
$('list-leagues').addEventListener('click', guarded(() => listLeagues('fresh')))
$('create-league').addEventListener('click', guarded(createLeague))
$('stale-token').addEventListener('click', guarded(() => listLeagues('expired')))
$('other-frontend').addEventListener('click', guarded(() => listLeagues('other-frontend')))

render()
$('sign-in').disabled = false
document.body.dataset.ready = 'true'
