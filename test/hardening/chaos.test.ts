/**
 * Identity-provider chaos under continuous traffic (SPEC §9), beyond
 * test/keys: connections reset mid-body, 429 with Retry-After, keys changing
 * between two fetches and during a slow fetch, a key dropped, a provider
 * flapping between success and failure on every request. For each: what
 * users see (status, code, latency), what the provider sees (request counts
 * bounded by back-off and cooldown), and recovery without a restart.
 *
 * The back-off of a key set after a failed fetch is min(jwksCooldown,
 * max(1 s * 2^(failures-1), Retry-After)): with jwksCooldown 500 ms it is
 * 500 ms, so a provider failing for D ms sees at most 1 + D/500 requests.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { TestIssuer, TestKey } from '../../lib/testing/index'
import { call, captureLog, codeOf, poolKey, retryAfterOf, setupRemote, sleep, type FakeIdp } from '../fixtures/fake-idp'

/** How much later than its bound a timer-driven event may come on a loaded CI machine. */
const slack = 400

// The scenarios are independent (each has its own provider and app) and mostly wait on timers: they
// run three at a time, so the file stays well inside tap's per-file timeout on a busy machine.
t.jobs = 3

interface Answer {
  kind: string
  status: number
  code: string | undefined
  retryAfter: number
  latency: number
  /** ms since the traffic started. */
  at: number
}

/**
 * Sends `batch()` every `everyMs` for `durationMs`, without waiting for
 * earlier answers (requests overlap, as real traffic does); resolves with
 * every answer once all are in.
 */
async function traffic (app: FastifyInstance, durationMs: number, batch: () => Array<[string, string]>, everyMs = 25): Promise<Answer[]> {
  const started = Date.now()
  const pending: Array<Promise<Answer>> = []
  while (Date.now() - started < durationMs) {
    for (const [kind, token] of batch()) {
      const sent = Date.now()
      pending.push(call(app, token).then((res) => ({
        kind,
        status: res.statusCode,
        code: codeOf(res),
        retryAfter: retryAfterOf(res),
        latency: Date.now() - sent,
        at: sent - started
      })))
    }
    await sleep(everyMs)
  }
  return Promise.all(pending)
}

/** "200 x12, GRIDDY_AUTH_UNAVAILABLE x4" for the answers of one kind. */
function summary (answers: Answer[], kind: string): string {
  const counts = new Map<string, number>()
  for (const a of answers.filter((x) => x.kind === kind)) {
    const key = a.status === 200 ? '200' : `${a.status} ${String(a.code)}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts].map(([k, n]) => `${k} x${n}`).join(', ')
}

/**
 * A cycle through `count` tokens made up front: signing (1-2 ms of CPU each) stays out of the traffic
 * loops, whose timing is what these tests measure. Distinct strings, so with `cache: false` (or
 * enough of them) each request is verified, not answered from the verified-token cache.
 */
function cycle (count: number, make: (i: number) => string): () => string {
  const tokens = Array.from({ length: count }, (_, i) => make(i))
  let i = 0
  return () => tokens[i++ % count] as string
}

const maxLatency = (answers: Answer[], kind?: string): number => Math.max(0, ...answers.filter((a) => kind === undefined || a.kind === kind).map((a) => a.latency))
const unknownKid = (issuer: TestIssuer): string => issuer.sign({ sub: 'probe' }, { kid: randomUUID() })
const unknownKids = (issuer: TestIssuer): () => string => cycle(40, () => unknownKid(issuer))

const failures: Array<[string, (idp: FakeIdp) => void, number, number]> = [
  ['connections reset mid-body', (idp) => idp.set('reset-mid-body', { resetAfterBytes: 40 }), 1000, 2000],
  ['no answer, jwksTimeout 300 ms', (idp) => idp.set('hang'), 300, 1500]
]

for (const [name, fail, timeout, duration] of failures) {
  t.test(`a ${duration / 1000} s outage (${name}) with jwksCooldown 500 ms: known keys verify, unknown kids get 503 fast, at most 1 + ${duration}/500 fetches, recovery without restart`, async (t) => {
    const cooldown = 500
    const log = captureLog()
    const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: cooldown, jwksCacheTtl: 200, jwksTimeout: timeout, cache: false }, log)
    t.equal((await call(app, issuer.sign({ sub: 'warm' }))).statusCode, 200, 'keys fetched while healthy')
    const before = idp.hits()

    const known = cycle(4, (i) => issuer.sign({ sub: `known-${i}` }))
    const unknown = unknownKids(issuer)
    fail(idp)
    const answers = await traffic(app, duration, () => [['known', known()], ['known', known()], ['unknown', unknown()]])
    const fetches = idp.hits() - before
    t.comment(`users: known ${summary(answers, 'known')}; unknown ${summary(answers, 'unknown')}; max latency ${maxLatency(answers)} ms; provider: ${fetches} requests in ${duration} ms`)

    t.ok(answers.filter((a) => a.kind === 'known').every((a) => a.status === 200), 'every request under a known key: 200 (stale-if-error)')
    const refused = answers.filter((a) => a.kind === 'unknown')
    t.ok(refused.length >= 20, `${refused.length} unknown-kid requests`)
    t.ok(refused.every((a) => a.status === 503 && a.code === 'GRIDDY_AUTH_UNAVAILABLE'), 'every unknown kid: 503 GRIDDY_AUTH_UNAVAILABLE')
    t.ok(refused.every((a) => a.retryAfter >= 1 && a.retryAfter <= Math.ceil(cooldown / 1000)), 'with Retry-After within the back-off')
    t.ok(maxLatency(answers, 'known') <= timeout + slack, `known keys never wait for the provider (max ${maxLatency(answers, 'known')} ms)`)
    t.ok(maxLatency(answers, 'unknown') <= timeout + slack, `an unknown kid waits at most jwksTimeout plus a little (max ${maxLatency(answers, 'unknown')} ms)`)
    t.ok(fetches >= 2, `the provider was retried (${fetches})`)
    t.ok(fetches <= 1 + duration / cooldown, `the provider saw ${fetches} requests, at most 1 + ${duration}/${cooldown}`)
    t.ok(answers.every((a) => a.status !== 500), 'never a 500')

    const next = await poolKey(0)
    idp.jwks.keys.push(next.jwk)
    idp.set('ok')
    await sleep(cooldown + 50)
    t.equal((await call(app, issuer.sign({ sub: 'rotated' }, { key: next }))).statusCode, 200, 'a key published during the outage is picked up once it ends, no restart')
    const recovered = await call(app, unknownKid(issuer))
    t.equal(codeOf(recovered), 'GRIDDY_AUTH_UNKNOWN_KEY', 'healthy again: an unknown kid is UNKNOWN_KEY (inside the cooldown), not 503')
    t.same(log.alerts().map((line) => line.level), [50, 40], 'one error line when the outage began, one warn when it ended')
  })
}

t.test('429 with Retry-After under sustained traffic: the provider is not asked again before its Retry-After; users get 503 with a matching Retry-After', async (t) => {
  const cooldown = 1500
  const duration = 1500
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: cooldown, jwksCacheTtl: 100, jwksTimeout: 1000, cache: false })
  t.equal((await call(app, issuer.sign({ sub: 'warm' }))).statusCode, 200)
  const before = idp.hits()
  idp.set('status', { status: 429, body: 'slow down', headers: { 'retry-after': '1' } })

  const known = cycle(4, (i) => issuer.sign({ sub: `k-${i}` }))
  const unknown429 = unknownKids(issuer)
  const answers = await traffic(app, duration, () => [['known', known()], ['unknown', unknown429()]])
  const times = idp.arrivals.slice(before)
  const gaps = times.slice(1).map((time, i) => time - (times[i] as number))
  t.comment(`users: known ${summary(answers, 'known')}; unknown ${summary(answers, 'unknown')}; provider: ${times.length} requests, gaps ${gaps.join(', ')} ms`)

  t.ok(answers.filter((a) => a.kind === 'known').every((a) => a.status === 200), 'known keys: 200 throughout')
  const unknown = answers.filter((a) => a.kind === 'unknown')
  t.ok(unknown.every((a) => a.code === 'GRIDDY_AUTH_UNAVAILABLE'), 'unknown kids: 503')
  t.ok(unknown.every((a) => a.retryAfter >= 1 && a.retryAfter <= Math.ceil(cooldown / 1000)), 'Retry-After between 1 s and the cooldown')
  t.ok(gaps.every((gap) => gap >= 1000 - 20), 'never asked again before the provider\'s Retry-After (1 s)')
  t.ok(times.length >= 1 && times.length <= 1 + duration / 1000, `${times.length} requests in ${duration} ms: at most 1 + ${duration}/1000`)
  t.ok(maxLatency(answers) <= slack + 100, `no user waited on the throttled provider (max ${maxLatency(answers)} ms)`)

  idp.set('ok')
  await sleep(cooldown + 50)
  t.equal(codeOf(await call(app, unknownKid(issuer))), 'GRIDDY_AUTH_UNKNOWN_KEY', 'recovered: the provider answers again')
})

t.test('a gzip bomb from the provider (64 MiB inflating from ~70 kB): a failed fetch, refused within the 1 MiB body limit, memory untouched, known keys unaffected', async (t) => {
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 300, jwksCacheTtl: 0, jwksTimeout: 2000, cache: false })
  t.equal((await call(app, issuer.sign({ sub: 'warm' }))).statusCode, 200)
  idp.set('gzip-bomb', { hugeBytes: 64 * 1024 * 1024 })
  const rss = process.memoryUsage().rss
  const started = Date.now()
  const res = await call(app, unknownKid(issuer))
  t.equal(codeOf(res), 'GRIDDY_AUTH_UNAVAILABLE', 'an unknown kid: 503, the bomb counts as a failed fetch')
  t.ok(Date.now() - started < 1000 + slack, `answered in ${Date.now() - started} ms, without inflating it all`)
  t.ok(process.memoryUsage().rss - rss < 32 * 1024 * 1024, `RSS grew by ${((process.memoryUsage().rss - rss) / 1048576).toFixed(1)} MiB`)
  t.equal((await call(app, issuer.sign({ sub: 'known' }))).statusCode, 200, 'the known key still verifies')
  idp.set('ok')
  await sleep(300 + 50)
  t.equal(codeOf(await call(app, unknownKid(issuer))), 'GRIDDY_AUTH_UNKNOWN_KEY', 'recovered')
})

t.test('keys change between two fetches: 60 concurrent requests under the old and the new key, one refetch, all 200', async (t) => {
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: 60_000 })
  t.equal((await call(app, issuer.sign({ sub: 'old' }))).statusCode, 200)
  t.equal(idp.hits(), 1)
  const next = await poolKey(1)
  idp.jwks.keys.push(next.jwk)
  const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => call(app, i % 2 === 0 ? issuer.sign({ sub: `old-${i}` }) : issuer.sign({ sub: `new-${i}` }, { key: next }))))
  t.same(answers.map((res) => res.statusCode), answers.map(() => 200), 'every request, old key or new, 200')
  t.same(answers.map((res) => res.json().userId), answers.map((_, i) => `${i % 2 === 0 ? 'old' : 'new'}-${i}`))
  t.equal(idp.hits(), 2, 'the new kid cost one refetch, shared by all 30 requests under it')
})

t.test('keys change during a slow fetch: a request under a new key waits for the fetch in flight, then fetches its own; a fetch whose answer predates the key misses, and the cooldown holds the key', async (t) => {
  const cooldown = 800
  const delay = 300
  const { issuer, idp, app } = await setupRemote(t, { jwksCooldown: cooldown, jwksTimeout: 2000 })
  const [b, c] = await Promise.all([poolKey(0), poolKey(1)])
  idp.set('slow-snapshot', { delayMs: delay })

  // 1. the first fetch (for A) is in flight when B is published and a request under B comes
  let started = Date.now()
  const first = call(app, issuer.sign({ sub: 'a' }))
  await idp.waitForHits(1)
  idp.jwks.keys.push(b.jwk)
  const underB = await call(app, issuer.sign({ sub: 'b' }, { key: b }))
  t.equal((await first).statusCode, 200, 'the old key, from the slow answer')
  t.equal(underB.statusCode, 200, 'B waited for the fetch in flight (one at a time per key set), then was fetched: its answer has B')
  t.ok(Date.now() - started <= 2 * (delay + slack), `two slow fetches, one after the other (${Date.now() - started} ms)`)
  t.equal(idp.hits(), 2)

  // 2. a request under C comes before the provider's key set has C (its answer is taken when the request arrives)
  const early = call(app, issuer.sign({ sub: 'c' }, { key: c }))
  await idp.waitForHits(3)
  idp.jwks.keys.push(c.jwk)
  t.equal(codeOf(await early), 'GRIDDY_AUTH_UNKNOWN_KEY', 'that fetch found no C: a miss')
  started = Date.now() // the cooldown began when the miss was known
  const quick = Date.now()
  t.equal(codeOf(await call(app, issuer.sign({ sub: 'c' }, { key: c }))), 'GRIDDY_AUTH_UNKNOWN_KEY', 'inside the cooldown: UNKNOWN_KEY...')
  t.ok(Date.now() - quick < slack, `...at once (${Date.now() - quick} ms), without a fetch`)
  t.equal(idp.hits(), 3)
  t.equal((await call(app, issuer.sign({ sub: 'b' }, { key: b }))).statusCode, 200, 'keys already known never wait for the cooldown')

  // 3. past the cooldown, C is fetched
  await sleep(Math.max(0, cooldown - (Date.now() - started)) + 50)
  t.equal((await call(app, issuer.sign({ sub: 'c' }, { key: c }))).statusCode, 200, 'C accepted once the cooldown has passed')
  t.equal(idp.hits(), 4, 'four fetches in all')
})

t.test('a key dropped mid-traffic: its tokens (cached ones too) are refused from the first refetch on, never accepted again; other keys unaffected', async (t) => {
  const ttl = 300
  const { issuer, idp, app } = await setupRemote(t, { jwksCacheTtl: ttl, jwksCooldown: 60_000 })
  const dropped: TestKey = await poolKey(2)
  idp.jwks.keys.push(dropped.jwk)
  const keep = issuer.sign({ sub: 'keep' })
  const lose = issuer.sign({ sub: 'lose' }, { key: dropped })
  t.equal((await call(app, keep)).statusCode, 200)
  t.equal((await call(app, lose)).statusCode, 200, 'cached')
  idp.jwks.keys = idp.jwks.keys.filter((jwk) => jwk.kid !== dropped.kid)

  // 1. Only cached tokens: none needs a key, so nothing looks at the (stale) set and nothing refetches it.
  //    The dropped key's cached token keeps working until some request needs a key lookup, at most until
  //    its exp + clockTolerance (SPEC §8). Documented in docs/attack-catalogue.md.
  const cachedOnly = await traffic(app, ttl + 200, () => [['keep', keep], ['lose', lose]])
  t.ok(cachedOnly.every((a) => a.status === 200), `cached-only traffic past jwksCacheTtl: still 200 (${summary(cachedOnly, 'lose')})`)
  t.equal(idp.hits(), 2, 'and no refetch (get-jwks fetched each key once)')

  // 2. Traffic that needs keys (new tokens): the stale set is refetched at the first lookup, and the drop is seen.
  const fresh = cycle(60, (n) => issuer.sign({ sub: 'new', n }))
  const freshDropped = cycle(60, (n) => issuer.sign({ sub: 'nd', n }, { key: dropped }))
  const answers = await traffic(app, 800, () => [['keep', keep], ['lose', lose], ['new', fresh()], ['new-dropped', freshDropped()]])
  t.comment(`keep ${summary(answers, 'keep')}; lose (cached) ${summary(answers, 'lose')}; new ${summary(answers, 'new')}; new under the dropped key ${summary(answers, 'new-dropped')}; provider ${idp.hits()} requests`)
  t.ok(answers.filter((a) => a.kind === 'keep' || a.kind === 'new').every((a) => a.status === 200), 'the remaining key: 200 throughout')
  for (const kind of ['lose', 'new-dropped']) {
    const seq = answers.filter((a) => a.kind === kind).sort((x, y) => x.at - y.at)
    const firstRefusal = seq.findIndex((a) => a.status !== 200)
    t.ok(firstRefusal >= 0 && (seq[firstRefusal]?.at ?? Infinity) <= slack, `${kind}: refused from the first refetch on (after ${seq[firstRefusal]?.at} ms)`)
    t.ok(seq.slice(Math.max(0, firstRefusal)).every((a) => a.code === 'GRIDDY_AUTH_UNKNOWN_KEY'), `${kind}: once refused, UNKNOWN_KEY ever after`)
  }
  const bound = 2 + Math.ceil(800 / ttl) + 1 + 1
  t.ok(idp.hits() <= bound, `the provider saw ${idp.hits()} requests: the first fetch of each key, a refetch of the kept key per jwksCacheTtl, ` +
    `one of the dropped key, and one miss for it once its removal is forgotten after jwksCacheTtl: at most ${bound}`)
})

t.test('a provider that flaps on every request: known keys always verify, new keys are learnt, nothing is a 500, requests stay bounded', async (t) => {
  // A ttl longer than the back-off: with a shorter one the known key, stale again after every back-off, would
  // always be refetched first and take the provider's every success, and the rotated key its every failure.
  const ttl = 600
  const cooldown = 400
  const duration = 1600
  const { issuer, idp, app } = await setupRemote(t, { jwksCacheTtl: ttl, jwksCooldown: cooldown, jwksTimeout: 1000, cache: false })
  t.equal((await call(app, issuer.sign({ sub: 'warm' }))).statusCode, 200)
  const before = idp.hits()
  idp.set('flap', { status: 500, body: 'down' })
  const next = await poolKey(3)
  idp.jwks.keys.push(next.jwk)

  const known = cycle(4, (i) => issuer.sign({ sub: `k-${i}` }))
  const rotatedTokens = cycle(4, (i) => issuer.sign({ sub: `r-${i}` }, { key: next }))
  const unknown = unknownKids(issuer)
  const answers = await traffic(app, duration, () => [['known', known()], ['rotated', rotatedTokens()], ['unknown', unknown()]])
  const fetches = idp.hits() - before
  t.comment(`known ${summary(answers, 'known')}; rotated ${summary(answers, 'rotated')}; unknown ${summary(answers, 'unknown')}; provider ${fetches} requests in ${duration} ms`)
  t.ok(answers.filter((a) => a.kind === 'known').every((a) => a.status === 200), 'known key: 200 on every request')
  t.ok(answers.every((a) => a.status === 200 || (a.status === 401 && a.code === 'GRIDDY_AUTH_UNKNOWN_KEY') || (a.status === 503 && a.code === 'GRIDDY_AUTH_UNAVAILABLE')),
    'every answer is a 200, an UNKNOWN_KEY (provider healthy) or an UNAVAILABLE (provider failing)')
  const rotated = answers.filter((a) => a.kind === 'rotated').sort((x, y) => x.at - y.at)
  const learnt = rotated.findIndex((a) => a.status === 200)
  t.ok(learnt >= 0, `the rotated key was learnt after ${rotated[learnt]?.at} ms`)
  t.ok(rotated.slice(learnt).every((a) => a.status === 200), 'and stays known through later failures')
  // The provider alternates, and each failure is followed by a back-off of min(cooldown, 1 s) = cooldown without a
  // fetch: at most 1 + duration / cooldown failures, each with at most one success before it (plus one at the end).
  const bound = 2 * (1 + duration / cooldown) + 1
  t.ok(fetches <= bound, `the provider saw ${fetches} requests, at most ${bound}`)
  t.ok(maxLatency(answers) <= slack + 100, `nobody waited long (max ${maxLatency(answers)} ms)`)

  idp.set('ok')
  await sleep(cooldown + 50)
  t.equal(codeOf(await call(app, unknownKid(issuer))), 'GRIDDY_AUTH_UNKNOWN_KEY', 'steady again')
})
