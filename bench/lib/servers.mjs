// Starting benchmark servers (bench/server.mjs), each in its own process,
// pinned to the server core, talking to run.mjs over an IPC channel.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { AUDIENCE, ISSUER, PERMISSION, PUBLIC_ROUTE, ROUTE, benchDir, pinned } from './common.mjs'

/**
 * Starts a server of `kind` ('bare' | 'plugin' | 'jwks' | 'sessions' | 'baseline' | 'ideal').
 * `options`: { cpus, jwksUrl, pluginPath, baselinePath, nodeArgs, cwd, redisUrl, keyFile }.
 * Resolves once it listens.
 */
export function startServer (kind, options) {
  const config = JSON.stringify({
    kind,
    issuer: ISSUER,
    audience: AUDIENCE,
    route: ROUTE,
    publicRoute: PUBLIC_ROUTE,
    permission: PERMISSION,
    jwksUrl: options.jwksUrl,
    pluginPath: kind === 'baseline' ? options.baselinePath : options.pluginPath,
    redisUrl: options.redisUrl,
    keyFile: options.keyFile
  })
  const nodeArgs = [...(options.nodeArgs ?? []), join(benchDir, 'server.mjs'), config]
  const [cmd, argv] = pinned(options.cpus, process.execPath, nodeArgs)
  const child = spawn(cmd, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: options.cwd })
  const waiting = []
  let exited = false

  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code, signal) => {
      exited = true
      const err = new Error(`${kind} server exited (${signal ?? code})`)
      reject(err)
      for (const w of waiting.splice(0)) w.reject(err)
    })
    child.on('message', (msg) => {
      if (msg.type === 'ready') {
        resolve({
          kind,
          port: msg.port,
          pid: child.pid,
          stats: () => ask({ type: 'stats' }),
          gc: () => ask({ type: 'gc' }),
          stop: () => stop()
        })
      } else if (msg.type === 'stats') {
        waiting.shift()?.resolve(msg)
      }
    })
  })

  function ask (msg) {
    if (exited) return Promise.reject(new Error(`${kind} server is gone`))
    return new Promise((resolve, reject) => {
      waiting.push({ resolve, reject })
      child.send(msg)
    })
  }

  function stop () {
    if (exited) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000)
      child.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      child.send({ type: 'exit' })
    })
  }
}

/** CPU seconds, wall seconds, requests and RSA verifications between two stats messages. */
export function delta (before, after) {
  return {
    cpuSec: (after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system) / 1e6,
    userSec: (after.cpu.user - before.cpu.user) / 1e6,
    wallSec: Number(BigInt(after.wallNs) - BigInt(before.wallNs)) / 1e9,
    verifications: after.verifications - before.verifications,
    requests: after.requests - before.requests
  }
}
