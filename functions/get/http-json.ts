/**
 * JSON over HTTP for the fetchers: authentication, retries with backoff and jitter, `Retry-After`,
 * and errors that name the (redacted) URL, the status and what came back instead of JSON.
 */
import { PermanentError, redactCredentials } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
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

/** What one client went through: every retry and token renewal is also logged as a warning. */
export interface HttpStats {
  /** Requests sent (retries and renewals included). */
  requests: number;
  /** Requests sent again after a 429, a 5xx, a network error or a stalled answer. */
  retries: number;
  /** Of those, after a 429 (too many requests). */
  throttled: number;
  /** Of those, after a 5xx. */
  serverErrors: number;
  /** Of those, after a network error, a timeout or an answer that did not finish. */
  networkErrors: number;
  /** Tokens asked for again after a 401 (the token expired or was revoked early). */
  tokenRenewals: number;
}

export const noHttpStats = (): HttpStats => ({ requests: 0, retries: 0, throttled: 0, serverErrors: 0, networkErrors: 0, tokenRenewals: 0 });

/** `3 retries (2 after 429, 1 after 5xx), 1 token renewal`, or '' when there were none. */
export function describeHttpStats(s: HttpStats): string {
  const why = [s.throttled && `${s.throttled} after 429`, s.serverErrors && `${s.serverErrors} after 5xx`, s.networkErrors && `${s.networkErrors} after network errors`].filter(Boolean);
  return [
    s.retries ? `${s.retries} ${s.retries === 1 ? 'retry' : 'retries'}${why.length ? ` (${why.join(', ')})` : ''}` : '',
    s.tokenRenewals ? `${s.tokenRenewals} token renewal${s.tokenRenewals === 1 ? '' : 's'}` : '',
  ]
    .filter(Boolean)
    .join(', ');
}

/** An HTTP answer that ends a request: its status, for callers that treat some (a 404) apart. */
export function httpStatusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown })?.status;
  return typeof status === 'number' ? status : undefined;
}

/** GETs JSON with authentication, retries and clear errors. */
export class JsonClient {
  /** Counted over the client's life (one run); see `counts()`. */
  private readonly stats: HttpStats = noHttpStats();

  /** Requests, retries and token renewals so far (renewals as the auth counts them, when it does). */
  counts(): HttpStats {
    return { ...this.stats, tokenRenewals: this.auth.renewals?.() ?? this.stats.tokenRenewals };
  }

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
      this.stats.requests++;
      try {
        res = await fetchFollowing(target, { headers, signal, ...tlsOptions(this.options.verifyTls, this.options.source ?? url.origin) }, redactUrl);
      } catch (cause) {
        if (attempt < retries && !this.signal.aborted) {
          await this.retry(shown, 'network', signal.aborted ? `no answer within ${timeoutMs / 1000} s` : describeFailure(cause), attempt, this.backoff(attempt), sleep);
          continue;
        }
        const reason = signal.aborted && !this.signal.aborted ? `no answer within ${timeoutMs / 1000} s` : describeFailure(cause);
        throw new Error(`GET ${shown} failed after ${attempt + 1} attempts: ${reason}`);
      }
      if (res.status === 401 && !refreshed && this.auth.refresh()) {
        await res.body?.cancel();
        refreshed = true;
        attempt--;
        this.stats.tokenRenewals++; // the auth logs the renewal
        continue;
      }
      if ((res.status === 429 || res.status >= 500) && attempt < retries) {
        await res.body?.cancel();
        const wait = (res.status === 429 ? this.retryAfter(res.headers.get('retry-after')) : undefined) ?? this.backoff(attempt);
        await this.retry(shown, res.status, `${res.status} ${res.statusText}`, attempt, wait, sleep);
        continue;
      }
      const contentType = res.headers.get('content-type') ?? '';
      if (!res.ok) {
        await res.body?.cancel();
        const error = `GET ${shown} answered ${res.status} ${res.statusText}${attempt ? ` after ${attempt + 1} attempts` : ''}`;
        throw Object.assign(res.status >= 500 || res.status === 429 ? new Error(error) : new PermanentError(error), { status: res.status });
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
          await this.retry(shown, 'network', `the answer did not finish (${(cause as Error).message})`, attempt, this.backoff(attempt), sleep);
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

  /**
   * For requests this client does not send itself (file downloads of the same run): count one
   * request, so the run's figures hold every request it made.
   */
  countRequest(): void {
    this.stats.requests++;
  }

  /**
   * For requests this client does not send itself: count, log and wait out one retry the same
   * way as its own — after a 429 its `Retry-After` (capped), otherwise backoff with jitter.
   * `attempt` is the one that failed, from 0.
   */
  async retryOther(shown: string, cause: number | 'network', reason: string, attempt: number, retryAfterHeader?: string | null): Promise<void> {
    const wait = (cause === 429 ? this.retryAfter(retryAfterHeader ?? null) : undefined) ?? this.backoff(attempt);
    await this.retry(shown, cause, reason, attempt, wait, this.deps.sleep ?? ((ms) => new Promise<void>((resolve) => setTimeout(resolve, ms))));
  }

  /** Count and log one retry (`attempt` is the one that failed, from 0), then wait. */
  private async retry(shown: string, cause: number | 'network', reason: string, attempt: number, waitMs: number, sleep: (ms: number) => Promise<void>): Promise<void> {
    this.stats.retries++;
    if (cause === 429) this.stats.throttled++;
    else if (cause === 'network') this.stats.networkErrors++;
    else this.stats.serverErrors++;
    const waitS = Math.round(waitMs / 100) / 10;
    logger.warn(`${this.options.source ?? new URL(shown).origin}: GET ${shown} got ${reason} on attempt ${attempt + 1}; trying again in ${waitS} s`, {
      url: shown,
      ...(typeof cause === 'number' ? { status: cause } : {}),
      attempt: attempt + 1,
      waitMs: Math.round(waitMs),
    });
    await sleep(waitMs);
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
  return redactCredentials(why && why !== message ? `${message} (${why})` : message);
}
