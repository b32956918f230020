// tap `coverage-map` module (see .taprc): whatever the test file, only
// lib/**/*.ts counts towards coverage. Test helpers, fixtures and examples
// are never measured, and tap's 100% requirement applies to lib/ alone.
export default function coverageMap (_testFile) {
  return 'lib/**/*.ts'
}
