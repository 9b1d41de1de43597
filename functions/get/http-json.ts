/**
 * JSON over HTTP for the fetchers: authentication, retries with backoff and jitter, `Retry-After`,
 * and errors that name the (redacted) URL, the status and what came back instead of JSON.
 */
import { PermanentError } from '../common/errors.ts';
import { redactUrl } from './fetch-http.ts';
import type { RestAuth } from './rest-auth.ts';
import { fetchFollowing } from './redirects.ts';
import { tlsOptions } from './tls.ts';

export interface RetryOptions {
  /** Waits between retries; injectable so tests need not wait. */
  sleep?: (ms: number) => Promise<void>;
  /** Retries of one request after a 5xx, a 429 or a network error (default 4). */
  retries?: number;
  /** First backoff delay; doubled per retry, with jitter (default 1 s). */
  baseDelayMs?: number;
  /** The longest wait a `Retry-After` can impose (default 60 s). */
  maxRetryAfterMs?: number;
  /** One request (answer and body) that takes longer is abandoned and retried (default 60 s). */
  requestTimeoutMs?: number;
}

/** Per source: TLS verification (see tls.ts) and the name shown in its warnings. */
export interface ClientOptions {
  verifyTls?: boolean;
  source?: string;
}

/** GETs JSON with authentication, retries and clear errors. */
export class JsonClient {
  constructor(
    private readonly deps: RetryOptions,
    private readonly auth: RestAuth,
    private readonly signal: AbortSignal,
    private readonly options: ClientOptions = {},
  ) {}

  async get(url: URL): Promise<{ body: unknown; headers: Headers }> {
    const shown = redactUrl(url.href);
    const retries = this.deps.retries ?? 4;
    const sleep = this.deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const target = new URL(url);
      const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'civic-etl' };
      await this.auth.apply(target, headers);
      let res: Response;
      const timeoutMs = this.deps.requestTimeoutMs ?? 60_000;
      const signal = AbortSignal.any([this.signal, AbortSignal.timeout(timeoutMs)]);
      try {
        res = await fetchFollowing(target, { headers, signal, ...tlsOptions(this.options.verifyTls, this.options.source ?? url.origin) }, redactUrl);
      } catch (cause) {
        if (attempt < retries && !this.signal.aborted) {
          await sleep(this.backoff(attempt));
          continue;
        }
        const reason = signal.aborted && !this.signal.aborted ? `no answer within ${timeoutMs / 1000} s` : describeFailure(cause);
        throw new Error(`GET ${shown} failed after ${attempt + 1} attempts: ${reason}`);
      }
      if (res.status === 401 && !refreshed && this.auth.refresh()) {
        await res.body?.cancel();
        refreshed = true;
        attempt--;
        continue;
      }
      if ((res.status === 429 || res.status >= 500) && attempt < retries) {
        await res.body?.cancel();
        const wait = res.status === 429 ? this.retryAfter(res.headers.get('retry-after')) : undefined;
        await sleep(wait ?? this.backoff(attempt));
        continue;
      }
      const contentType = res.headers.get('content-type') ?? '';
      if (!res.ok) {
        await res.body?.cancel();
        const error = `GET ${shown} answered ${res.status} ${res.statusText}${attempt ? ` after ${attempt + 1} attempts` : ''}`;
        throw res.status >= 500 || res.status === 429 ? new Error(error) : new PermanentError(error);
      }
      if (!/\bjson\b|\+json/i.test(contentType)) {
        await res.body?.cancel();
        throw new PermanentError(`GET ${shown} answered ${res.status} with content type "${contentType || 'none'}", not JSON`);
      }
      let text: string;
      try {
        text = await res.text();
      } catch (cause) {
        // the body stalled or the connection dropped mid-answer: like a network error
        if (attempt < retries && !this.signal.aborted) {
          await sleep(this.backoff(attempt));
          continue;
        }
        const reason = signal.aborted && !this.signal.aborted ? `the answer did not finish within ${timeoutMs / 1000} s` : (cause as Error).message;
        throw new Error(`GET ${shown} failed after ${attempt + 1} attempts: ${reason}`);
      }
      try {
        return { body: JSON.parse(text) as unknown, headers: res.headers };
      } catch (cause) {
        throw new PermanentError(`GET ${shown} answered ${res.status} with invalid JSON (${(cause as Error).message})`);
      }
    }
  }

  /** Exponential backoff with "equal jitter": between half and all of base·2^attempt, at most 60 s. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(60_000, (this.deps.baseDelayMs ?? 1000) * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** `Retry-After` in seconds or as an HTTP date, capped; undefined when absent or unreadable. */
  private retryAfter(header: string | null): number | undefined {
    if (!header) return undefined;
    const seconds = Number(header);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
    if (!Number.isFinite(ms)) return undefined;
    return Math.min(Math.max(0, ms), this.deps.maxRetryAfterMs ?? 60_000);
  }
}

/** `a.b.c` in a parsed JSON value. */
export function pathOf(value: unknown, path: string): unknown {
  let at = value;
  for (const part of path.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

/** The `rel="next"` target of an RFC 8288 Link header. */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel="?([^";]*\s)?next(\s[^";]*)?"?/i.test(m[2]!)) return m[1];
  }
  return undefined;
}


/** `fetch failed (self-signed certificate)`: undici's message with the cause that says why. */
export function describeFailure(error: unknown): string {
  const message = (error as Error)?.message ?? String(error);
  const cause = (error as { cause?: { message?: string; code?: string } })?.cause;
  const why = cause?.message ?? cause?.code;
  return why && why !== message ? `${message} (${why})` : message;
}
