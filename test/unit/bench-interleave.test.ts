import { describe, expect, it } from 'vitest';
import { benchRuns, interleave, median, quantile, ratioOf, resultLine, summarize } from '../../bench/interleave.ts';

describe('the benchmark statistics', () => {
  it('take the middle value of an odd count and the mean of the two middle values of an even one, whatever the order', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([10, 40, 20, 30])).toBe(25);
    expect(median([7])).toBe(7);
    expect(median([])).toBeNaN();
  });

  it('give quartiles by linear interpolation between ranks, as numpy does by default', () => {
    // numpy.percentile([1, 2, 3, 4], [25, 75]) → [1.75, 3.25]
    expect(quantile([4, 3, 2, 1], 0.25)).toBe(1.75);
    expect(quantile([1, 2, 3, 4], 0.75)).toBe(3.25);
    expect(summarize([5, 1, 9])).toEqual({ values: [5, 1, 9], median: 5, min: 1, max: 9, q1: 3, q3: 7 });
  });

  it('make the ratio > 1 when ours wins, for times (lower is better) and for rates (higher is better)', () => {
    expect(ratioOf(2, 6, 'lower')).toBe(3);
    expect(ratioOf(6, 2, 'lower')).toBeCloseTo(1 / 3);
    expect(ratioOf(500_000, 400_000, 'higher')).toBe(1.25);
    expect(ratioOf(400_000, 500_000, 'higher')).toBe(0.8);
  });

  it('read BENCH_RUNS, default 3, and refuse what is not a whole number ≥ 1', () => {
    expect(benchRuns({})).toBe(3);
    expect(benchRuns({ BENCH_RUNS: '5' })).toBe(5);
    expect(() => benchRuns({ BENCH_RUNS: '0' })).toThrow(/BENCH_RUNS/);
    expect(() => benchRuns({ BENCH_RUNS: '2.5' })).toThrow(/BENCH_RUNS/);
  });

  it('alternate who goes first, and put the medians and their ratio on the RESULT line', async () => {
    const order: string[] = [];
    const oursTimes = [2, 10, 4, 3];
    const baselineTimes = [6, 5, 7, 8];
    const lines: string[] = [];
    const out = await interleave({
      name: 'demo',
      unit: 's',
      better: 'lower',
      runs: 4,
      ours: async (run) => (order.push(`o${run}`), oursTimes[run]!),
      baseline: async (run) => (order.push(`b${run}`), baselineTimes[run]!),
      print: (line) => lines.push(line),
    });
    expect(order).toEqual(['o0', 'b0', 'b1', 'o1', 'o2', 'b2', 'b3', 'o3']);
    // medians: ours (3 + 4) / 2 = 3.5, baseline (6 + 7) / 2 = 6.5; ratio 6.5 / 3.5
    expect(out.ours.median).toBe(3.5);
    expect(out.baseline.median).toBe(6.5);
    expect(out.ratio).toBeCloseTo(6.5 / 3.5);
    expect(out.result).toBe('RESULT demo ours=3.50 baseline=6.50 ratio=1.86 unit=s');
    expect(lines.at(-1)).toBe(out.result);
    expect(lines).toContain('run 2/4: ours 10.00 s, baseline 5.00 s, ratio 0.50');
    expect(lines.some((l) => l.startsWith('ours: median 3.50 s (min–max 2.00–10.00'))).toBe(true);
  });

  it('write whole numbers for large figures on the RESULT line', () => {
    expect(resultLine('stage', 412_345.6, 467_511.2, 412_345.6 / 467_511.2, 'rows/s')).toBe('RESULT stage ours=412346 baseline=467511 ratio=0.88 unit=rows/s');
  });
});
