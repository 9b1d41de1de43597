import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { amount, seconds, startProgress } from '../../local/progress.ts';

/** A stream that keeps what is written, as a terminal (isTTY) or a pipe would receive it. */
function fakeStream(tty: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY: tty, columns: 100, write: (s: string) => (writes.push(s), true) } };
}

describe('progress on the command line', () => {
  beforeEach(() => vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  it('redraws one line on a terminal with the amount, the rate and the time left, and clears it at the end', () => {
    const { writes, stream } = fakeStream(true);
    const p = startProgress('load', { unit: 'bytes', total: 10_000_000, stream });
    let read = 0;
    p.sample(() => read);
    read = 2_000_000;
    vi.advanceTimersByTime(1000); // 2 MB in 1 s: 8 MB left at 2 MB/s
    const last = writes.at(-1)!;
    expect(last.startsWith('\r\x1b[2K')).toBe(true);
    expect(last).toContain('load: 2.0 MB of 10.0 MB (20%) · 2.0 MB/s · 4 s left');
    expect(writes.every((w) => !w.includes('\n'))).toBe(true);
    p.end();
    expect(writes.at(-1)).toBe('\r\x1b[2K');
    const count = writes.length;
    vi.advanceTimersByTime(5000);
    expect(writes.length).toBe(count); // stopped
  });

  it('prints a plain line every few seconds elsewhere, and nothing when silent (--json)', () => {
    const pipe = fakeStream(false);
    const p = startProgress('run', { unit: 'messages', stream: pipe.stream, plainEveryMs: 5000 });
    p.set(3);
    p.step('last: clean');
    vi.advanceTimersByTime(4999);
    expect(pipe.writes).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(pipe.writes).toEqual(['run: 3 messages · 0.6 messages/s · 5 s elapsed · last: clean\n']);
    p.end();

    const quiet = fakeStream(false);
    const q = startProgress('run', { unit: 'messages', stream: quiet.stream, silent: true });
    q.set(10);
    vi.advanceTimersByTime(60_000);
    q.end();
    expect(quiet.writes).toEqual([]);
  });

  it('writes amounts and durations as people read them', () => {
    expect(amount(999, 'bytes')).toBe('999 B');
    expect(amount(1_234_567, 'bytes')).toBe('1.2 MB');
    expect(amount(1_234_567, 'rows')).toBe('1,234,567 rows');
    expect(amount(1, 'versions')).toBe('1 version');
    expect(seconds(42)).toBe('42 s');
    expect(seconds(125)).toBe('2 min 05 s');
    expect(seconds(7300)).toBe('2 h 01 min');
  });
});
