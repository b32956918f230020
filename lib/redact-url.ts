/**
 * A URL as it may appear in a log line or an error message: scheme, host and
 * path only. Credentials, query and fragment may hold secrets (`?api_key=`).
 */
export function redactUrl (value: string): string {
  try {
    const url = new URL(value)
    return `${url.protocol}//${url.host}${url.pathname}`
  } catch {
    return '(not a URL)'
  }
}
