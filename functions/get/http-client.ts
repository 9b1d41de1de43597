/**
 * The one HTTP client of the fetchers (REST, Ed-Fi, catalogue listings and file downloads): every
 * request goes through {@link HttpClient.send}, which applies the one retry policy
 * (common/retry.ts) — a 5xx, a 429 (waiting what its `Retry-After` says, capped) or a network
 * error (no connection, no answer within `requestTimeoutMs`, an answer cut off) is retried with
 * exponential backoff and jitter, bounded by a number of retries and a total wait — and keeps what
 * every fetcher needs: credentials (refreshed once after a 401), redirects followed by hand
 * (redirects.ts), TLS options (tls.ts), the run's abort signal, counts for `describeHttpStats`,
 * and errors that name the (redacted) URL.
 *
 * A JSON answer is read within the attempt, so an answer cut off mid-body is asked for again. A
 * file download is retried until its answer arrives (status and headers); its body then streams to
 * S3 and is never replayed mid-stream: a download that breaks off fails the run (or, in a
 * catalogue, the resource), and the next run fetches it.
 */
import { PermanentError, redactCredentials } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import { backoffMs, retryAfterMs, RetryBudget, sleepUnless, type RetryPolicy } from '../common/retry.ts';
import { redactUrl } from '../common/urls.ts';
import type { RestAuth } from './rest-auth.ts';
import { fetchFollowing } from './redirects.ts';
import { tlsOptions } from './tls.ts';

export interface RetryOptions extends RetryPolicy {
  /** One request that gets no answer within this is abandoned and retried (default 60 s); for JSON, answer and body. */
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

/** Answers worth asking again: too many requests, and server errors. */
const retryable = (status: number) => status === 429 || status >= 500;

/** A request that got no usable answer in all its attempts (no connection, no answer in time, an answer cut off). */
export class RequestFailedError extends Error {
  override name = 'RequestFailedError';
  constructor(
    message: string,
    /** What went wrong the last time, for people. */
    readonly reason: string,
    readonly attempts: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Thrown by a `read` of {@link HttpClient.send} when the answer broke off mid-body: the attempt is retried. */
export class AnswerCutOffError extends Error {
  override name = 'AnswerCutOffError';
}

/** What `read` is told of the attempt that brought the answer. */
export interface Attempt {
  /** Attempts made, this one included. */
  attempts: number;
  /** ` after 3 attempts` for a retried request ('' for the first), and why it gave up when the total wait stopped it. */
  after: string;
}

export interface SendOptions {
  /** GET (default), or POST with `body` (an OAuth 2 token request). */
  method?: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
  /** Add the client's credentials (default true); a download from another host goes without. */
  authenticate?: boolean;
  /** The request timeout covers `read` too (JSON), not only the arrival of the answer (a streamed file). */
  timeoutCoversRead?: boolean;
}

/** A request as logs and errors show it: its method and redacted URL. */
interface RequestShown {
  method: string;
  shown: string;
}

/** Sends GETs with authentication, the one retry policy, counts and clear errors. */
export class HttpClient {
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

  /**
   * GET `url`, retrying a 5xx, a 429 and network errors within the policy's bounds; then `read`
   * the answer — the last one, whatever its status, once the retries are spent. A `read` that
   * throws {@link AnswerCutOffError} has its attempt retried like a network error. After the last
   * attempt without an answer, throws {@link RequestFailedError} naming the redacted URL.
   */
  async send<T>(url: URL, how: SendOptions, read: (res: Response, attempt: Attempt) => Promise<T>): Promise<T> {
    const shown = redactUrl(url.href);
    const method = how.method ?? 'GET';
    const budget = new RetryBudget(this.deps);
    const timeoutMs = this.deps.requestTimeoutMs ?? 60_000;
    const authenticate = how.authenticate !== false;
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const target = new URL(url);
      const headers: Record<string, string> = { 'user-agent': 'civic-etl', ...how.headers };
      if (authenticate) await this.auth.apply(target, headers);
      const answer = new AbortController();
      const timer = setTimeout(() => answer.abort(), timeoutMs);
      const late = () => answer.signal.aborted && !this.signal.aborted;
      const failed = (reason: string, cause: unknown) => new RequestFailedError(`${method} ${shown} failed after ${attempt + 1} attempts: ${reason}${budget.why()}`, reason, attempt + 1, { cause });
      this.stats.requests++;
      let res: Response;
      try {
        res = await fetchFollowing(
          target,
          { method, body: how.body, headers, signal: AbortSignal.any([this.signal, answer.signal]), ...tlsOptions(this.options.verifyTls, this.options.source ?? url.origin) },
          redactUrl,
        );
      } catch (cause) {
        clearTimeout(timer);
        // ours (too many redirects, a URL carrying credentials) already names the URL, and asking again cannot help
        if (cause instanceof PermanentError) throw cause;
        const reason = late() ? `no answer within ${timeoutMs / 1000} s` : describeFailure(cause);
        if (!this.signal.aborted && (await this.retry({ method, shown }, 'network', reason, attempt, backoffMs(attempt, this.deps), budget))) continue;
        throw failed(reason, cause);
      }
      if (res.status === 401 && authenticate && !refreshed && this.auth.refresh()) {
        clearTimeout(timer);
        await res.body?.cancel();
        refreshed = true;
        attempt--;
        this.stats.tokenRenewals++; // the auth logs the renewal
        continue;
      }
      if (retryable(res.status)) {
        const wait = (res.status === 429 || res.status === 503 ? retryAfterMs(res.headers.get('retry-after'), this.deps) : undefined) ?? backoffMs(attempt, this.deps);
        if (!this.signal.aborted && budget.allows(attempt, wait)) {
          clearTimeout(timer);
          await res.body?.cancel();
          await this.wait({ method, shown }, res.status, `${res.status} ${res.statusText}`.trim(), attempt, wait);
          continue;
        }
      }
      if (!how.timeoutCoversRead) clearTimeout(timer);
      try {
        return await read(res, { attempts: attempt + 1, after: `${attempt ? ` after ${attempt + 1} attempts` : ''}${budget.why()}` });
      } catch (error) {
        if (!(error instanceof AnswerCutOffError)) throw error;
        // the body stalled or the connection dropped mid-answer: like a network error
        if (!this.signal.aborted && (await this.retry({ method, shown }, 'network', `the answer did not finish (${error.message})`, attempt, backoffMs(attempt, this.deps), budget))) continue;
        throw failed(late() ? `the answer did not finish within ${timeoutMs / 1000} s` : error.message, error.cause ?? error);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** GET JSON: the parsed body and the headers; a 4xx, another content type or invalid JSON is a permanent error. */
  async get(url: URL): Promise<{ body: unknown; headers: Headers }> {
    const shown = redactUrl(url.href);
    return this.send(url, { headers: { accept: 'application/json' }, timeoutCoversRead: true }, async (res, { after }) => {
      const contentType = res.headers.get('content-type') ?? '';
      if (!res.ok) {
        await res.body?.cancel();
        const error = `GET ${shown} answered ${res.status} ${res.statusText}${after}`;
        throw Object.assign(retryable(res.status) ? new Error(error) : new PermanentError(error), { status: res.status });
      }
      if (!/\bjson\b|\+json/i.test(contentType)) {
        await res.body?.cancel();
        throw new PermanentError(`GET ${shown} answered ${res.status} with content type "${contentType || 'none'}", not JSON`);
      }
      let text: string;
      try {
        text = await res.text();
      } catch (cause) {
        throw new AnswerCutOffError((cause as Error).message, { cause });
      }
      try {
        return { body: JSON.parse(text) as unknown, headers: res.headers };
      } catch (cause) {
        throw new PermanentError(`GET ${shown} answered ${res.status} with invalid JSON (${(cause as Error).message})`);
      }
    });
  }

  /**
   * GET a file: its answer, once it is not one to retry (or the retries are spent), its body not
   * yet read — the caller streams it. The request timeout covers the arrival of the answer only;
   * the body may take the run's time. `headers` go as they are: without the client's credentials.
   */
  async download(url: URL, headers: Record<string, string>): Promise<{ res: Response } & Attempt> {
    return this.send(url, { headers, authenticate: false }, async (res, attempt) => ({ res, ...attempt }));
  }

  /** Count one retry of `request` (its method and redacted URL; `attempt` is the one that failed, from 0) and wait, if the bounds allow it. */
  private async retry(request: RequestShown, cause: number | 'network', reason: string, attempt: number, waitMs: number, budget: RetryBudget): Promise<boolean> {
    if (!budget.allows(attempt, waitMs)) return false;
    await this.wait(request, cause, reason, attempt, waitMs);
    return true;
  }

  /** Count and log one retry, then wait. */
  private async wait({ method, shown }: RequestShown, cause: number | 'network', reason: string, attempt: number, waitMs: number): Promise<void> {
    this.stats.retries++;
    if (cause === 429) this.stats.throttled++;
    else if (cause === 'network') this.stats.networkErrors++;
    else this.stats.serverErrors++;
    const waitS = Math.round(waitMs / 100) / 10;
    logger.warn(`${this.options.source ?? new URL(shown).origin}: ${method} ${shown} got ${reason} on attempt ${attempt + 1}; trying again in ${waitS} s`, {
      url: shown,
      ...(typeof cause === 'number' ? { status: cause } : {}),
      attempt: attempt + 1,
      waitMs: Math.round(waitMs),
    });
    // the run's time running out ends the wait: the next attempt then fails at once, naming the URL
    await (this.deps.sleep ? this.deps.sleep(waitMs) : sleepUnless(waitMs, this.signal));
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
