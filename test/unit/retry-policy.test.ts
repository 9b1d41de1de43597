import { describe, expect, it } from 'vitest';
import { backoffMs, retryAfterMs, RetryBudget, sleepUnless } from '../../functions/common/retry.ts';

describe('the one retry policy', () => {
  it('backs off exponentially with equal jitter: between half and all of base × 2^attempt, capped', () => {
    for (let attempt = 0; attempt < 8; attempt++) {
      const ceiling = Math.min(60_000, 1000 * 2 ** attempt);
      for (let i = 0; i < 50; i++) {
        const wait = backoffMs(attempt);
        expect(wait).toBeGreaterThanOrEqual(ceiling / 2);
        expect(wait).toBeLessThanOrEqual(ceiling);
      }
    }
    expect(backoffMs(3, { baseDelayMs: 0 })).toBe(0);
  });

  it('reads Retry-After in seconds or as an HTTP date, capped, and ignores what it cannot read', () => {
    const now = Date.parse('2026-12-07T10:00:00Z');
    expect(retryAfterMs('7')).toBe(7000);
    expect(retryAfterMs('Mon, 07 Dec 2026 10:00:30 GMT', {}, now)).toBe(30_000);
    expect(retryAfterMs('Mon, 07 Dec 2026 09:00:00 GMT', {}, now)).toBe(0);
    expect(retryAfterMs('3600')).toBe(60_000);
    expect(retryAfterMs('3600', { maxRetryAfterMs: 120_000 })).toBe(120_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });

  it('is bounded by a number of retries and by the total wait, and says which bound stopped it', () => {
    const byCount = new RetryBudget({ retries: 2 });
    expect([0, 1, 2].map((attempt) => byCount.allows(attempt, 10))).toEqual([true, true, false]);
    expect(byCount.why()).toBe('');

    const byWait = new RetryBudget({ retries: 10, maxTotalWaitMs: 60_000 });
    expect(byWait.allows(0, 40_000)).toBe(true);
    expect(byWait.allows(1, 40_000)).toBe(false);
    expect(byWait.why()).toBe(' (its retries would have waited more than 60 s in all)');
  });

  it('stops waiting when the run’s time is up', async () => {
    const run = new AbortController();
    const started = performance.now();
    setTimeout(() => run.abort(), 20);
    await sleepUnless(30_000, run.signal);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
