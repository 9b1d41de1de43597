/**
 * The one retry policy (issue 17): how long to wait before attempt n + 1 — exponential backoff
 * with "equal jitter", or what the server asked for in `Retry-After` — and the bounds that make a
 * retrying operation give up: a number of retries and a total wait. Used by the HTTP client of
 * every fetcher (functions/get/http-client.ts) and by the exports' attempts (combine/exports.ts).
 */

export interface RetryPolicy {
  /** Retries after the first attempt (default 4: five attempts in all). */
  retries?: number;
  /** First backoff delay; doubled per retry, with jitter (default 1 s). */
  baseDelayMs?: number;
  /** The longest one backoff wait (default 60 s). */
  maxDelayMs?: number;
  /** The longest wait a `Retry-After` can impose (default 60 s). */
  maxRetryAfterMs?: number;
  /** All the waits of one operation together: a retry that would pass this gives up instead (default 5 min). */
  maxTotalWaitMs?: number;
  /** Waits between retries; injectable so tests need not wait. */
  sleep?: (ms: number) => Promise<void>;
}

export const RETRY_DEFAULTS = {
  retries: 4,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
  maxRetryAfterMs: 60_000,
  maxTotalWaitMs: 300_000,
} as const satisfies Required<Omit<RetryPolicy, 'sleep'>>;

export const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Wait `ms`, or less if `signal` aborts first (a run whose time is up does not wait out a backoff). */
export function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Backoff before the retry that follows failed attempt `attempt` (from 0): between half and all of base·2^attempt, capped. */
export function backoffMs(attempt: number, policy: RetryPolicy = {}): number {
  const ceiling = Math.min(policy.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs, (policy.baseDelayMs ?? RETRY_DEFAULTS.baseDelayMs) * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** `Retry-After` in seconds or as an HTTP date, capped; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null | undefined, policy: RetryPolicy = {}, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(0, ms), policy.maxRetryAfterMs ?? RETRY_DEFAULTS.maxRetryAfterMs);
}

/**
 * The bounds of one operation: `next(wait)` says whether failed attempt `attempt` (from 0) may
 * be retried after `wait` ms, and counts the wait; `why()` says which bound stopped it.
 */
export class RetryBudget {
  private waited = 0;
  private stoppedBy?: 'retries' | 'wait';
  constructor(private readonly policy: RetryPolicy = {}) {}

  allows(attempt: number, waitMs: number): boolean {
    if (attempt >= (this.policy.retries ?? RETRY_DEFAULTS.retries)) {
      this.stoppedBy = 'retries';
      return false;
    }
    if (this.waited + waitMs > (this.policy.maxTotalWaitMs ?? RETRY_DEFAULTS.maxTotalWaitMs)) {
      this.stoppedBy = 'wait';
      return false;
    }
    this.waited += waitMs;
    return true;
  }

  /** ` (the retries would wait more than 300 s in all)` when the total wait stopped it, else ''. */
  why(): string {
    return this.stoppedBy === 'wait' ? ` (its retries would have waited more than ${Math.round((this.policy.maxTotalWaitMs ?? RETRY_DEFAULTS.maxTotalWaitMs) / 1000)} s in all)` : '';
  }
}
