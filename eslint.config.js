'use strict'

const neostandard = require('neostandard')

module.exports = neostandard({
  ts: true,
  ignores: [
    ...neostandard.resolveIgnoresFromGitignore(),
    'dist/**',
    'coverage/**',
    '.tap/**',
    'node_modules/**'
  ]
})
