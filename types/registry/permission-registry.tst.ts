/**
 * Opt-in typed permission names: once an app declares its names in
 * `PermissionRegistry`, route config and `authorize()` accept only those.
 */
import Fastify from 'fastify'
import { expect, test } from 'tstyche'
import type { Permission } from '../../lib/index'

declare module '../../lib/index' {
  interface PermissionRegistry {
    'leagues:read': true
    'leagues:write': true
  }
}

const app = Fastify()

test('declared names are the only permissions', () => {
  expect<Permission>().type.toBe<'leagues:read' | 'leagues:write'>()
})

test('route config accepts declared names and rejects typos', () => {
  expect(app.get).type.toBeCallableWith('/a', { config: { permissions: 'leagues:read' } }, async () => 'ok')
  expect(app.get).type.toBeCallableWith('/a', { config: { permissions: ['leagues:read', 'leagues:write'] } }, async () => 'ok')
  expect(app.get).type.not.toBeCallableWith('/a', { config: { permissions: 'leagues:raed' } }, async () => 'ok')
  expect(app.get).type.not.toBeCallableWith('/a', { config: { permissions: ['leagues:read', 'teams:read'] } }, async () => 'ok')
})

test('authorize() accepts declared names and rejects typos', () => {
  app.get('/b', async (request) => {
    expect(request.authorize).type.toBeCallableWith('leagues:write')
    expect(request.authorize).type.not.toBeCallableWith('leagues:admin')
    return 'ok'
  })
})
