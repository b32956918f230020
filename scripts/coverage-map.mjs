// tap `coverage-map` module (see .taprc): whatever the test file, only
// lib/**/*.ts counts towards coverage. Test helpers, fixtures and examples
// are never measured, and tap's 100% requirement applies to lib/ alone.
//
// examples/server.test.ts runs the example as a black box in child processes
// started with tsx: their coverage of lib/ (compiled by esbuild, not by tap's
// ts-node) would be merged with the suite's and corrupt it, so it counts none.
export default function coverageMap (testFile) {
  return testFile.replaceAll('\\', '/').endsWith('examples/server.test.ts') ? null : 'lib/**/*.ts'
}
