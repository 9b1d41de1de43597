/**
 * URLs as they may be shown — in errors, logs, manifests and state: without the user name and
 * password, and with query values removed (they may carry tokens). Shared by every step that
 * prints a URL (the fetchers, their HTTP client, the OAuth 2 token request).
 */

/** `https://bob:pw@host/path?token=abc` → `https://host/path?token=…`. */
export function redactUrl(url: string): string {
  const u = new URL(url);
  const names = [...new Set(u.searchParams.keys())];
  u.username = '';
  u.password = '';
  return `${u.origin}${u.pathname}${names.length ? `?${names.map((n) => `${n}=…`).join('&')}` : ''}`;
}
