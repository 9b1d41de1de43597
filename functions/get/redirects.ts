/**
 * Redirects followed by hand, so that credentials never leave the host they were meant for: a
 * redirect to another origin is followed without the request's headers other than `accept`,
 * `user-agent` and the conditional-GET validators (fetch itself would forward an `x-api-key`).
 * A request with a body (an OAuth 2 token request, whose body holds the client secret) is
 * redirected as fetch does — a 303, or a 301/302 of a POST, becomes a GET without the body; a
 * 307/308 sends the body again — except that a 307/308 to another origin is refused.
 */
import { PermanentError } from '../common/errors.ts';

const KEPT_ACROSS_ORIGINS = new Set(['accept', 'user-agent', 'if-none-match', 'if-modified-since']);
const MAX_REDIRECTS = 10;

export async function fetchFollowing(url: URL | string, init: RequestInit & { headers?: Record<string, string> }, shown: (url: string) => string): Promise<Response> {
  let target = new URL(url);
  const origin = target.origin;
  let headers = { ...init.headers };
  const asked = init.method ?? 'GET';
  let method = asked;
  let body = init.body;
  for (let hops = 0; ; hops++) {
    // a password in a URL would be sent to whichever host it names and printed in fetch's own error
    if (target.username || target.password) {
      throw new PermanentError(
        `${asked} ${shown(String(url))}: ${hops === 0 ? 'the URL' : `redirected to ${shown(target.href)}, a URL that`} carries a user name or password; credentials belong in a secret`,
      );
    }
    const res = await fetch(target, { ...init, method, body, headers, redirect: 'manual' });
    const location = res.headers.get('location');
    if (![301, 302, 303, 307, 308].includes(res.status) || !location) return res;
    await res.body?.cancel();
    if (hops >= MAX_REDIRECTS) throw new PermanentError(`${asked} ${shown(String(url))}: more than ${MAX_REDIRECTS} redirects`);
    target = new URL(location, target);
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new PermanentError(`${asked} ${shown(String(url))}: redirected to a ${target.protocol} URL`);
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      method = 'GET';
      body = undefined;
      headers = Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'content-type'));
    }
    if (body !== undefined && body !== null && target.origin !== origin) {
      throw new PermanentError(`${asked} ${shown(String(url))}: redirected to ${shown(target.href)}, another host; what the request carries is not sent there`);
    }
    if (target.origin !== origin) headers = Object.fromEntries(Object.entries(headers).filter(([name]) => KEPT_ACROSS_ORIGINS.has(name.toLowerCase())));
  }
}
