// The Redis of the "sessions" server: Debian's redis-server, started by the
// bench on a free 127.0.0.1 port in a temporary directory, nothing persisted,
// pinned with the load generator (it is idle while requests are measured:
// the plugin never asks Redis on the request path), stopped at the end.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pinned, sleep, which } from './common.mjs'

async function freePort () {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

function accepts (port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/** Starts redis-server; resolves { url, stop } or null when it is not installed. */
export async function startRedis (cpus) {
  const binary = process.env.REDIS_SERVER ?? which('redis-server')
  if (binary === null) return null
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'griddy-bench-redis-'))
  const [cmd, args] = pinned(cpus, binary, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'])
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] })
  let exited = false
  child.once('exit', () => { exited = true })
  const deadline = Date.now() + 10_000
  while (!await accepts(port)) {
    if (exited || Date.now() > deadline) throw new Error('bench: redis-server did not start')
    await sleep(20)
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => {
      const done = () => {
        rmSync(dir, { recursive: true, force: true })
        resolve()
      }
      if (exited) return done()
      child.once('exit', done)
      child.kill('SIGTERM')
    })
  }
}
