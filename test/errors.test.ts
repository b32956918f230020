/**
 * errors.ts beyond the error table: the error objects themselves.
 */
import t from 'tap'
import { authError } from '../lib/errors'
import { GriddyAuthError } from '../lib/index'

t.test('errors carry no stack frames, and leave the global stack limit as it was', async (t) => {
  const before = Error.stackTraceLimit
  const err = authError('GRIDDY_AUTH_SIGNATURE', undefined)
  t.ok(err instanceof GriddyAuthError)
  t.ok(err instanceof Error)
  t.equal(err.stack, 'GriddyAuthError: Invalid token signature.', 'the first line only, no "at ..." frames')
  t.equal(Error.stackTraceLimit, before)
  t.match(new Error('x').stack, /\n\s+at /, 'other errors keep their stacks')
})
