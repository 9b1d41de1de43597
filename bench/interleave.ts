/**
 * Benchmarks that hold under noise: ours and the baseline run alternately N times (`BENCH_RUNS`,
 * default 3; run 1 ours first, run 2 the baseline first, …), each run printed, then each side's
 * median and spread (min–max and the interquartile range) and the ratio of the medians. The
 * RESULT line carries the medians:
 *
 *   RESULT <name> ours=<median> baseline=<median> ratio=<x> unit=<u>
 *
 * where ratio > 1 means ours wins: baseline ÷ ours for a time (lower is better), ours ÷ baseline
 * for a rate (higher is better). One slow run of one side (another job on the machine) moves a
 * median of three much less than it moves a single figure.
 *
 * Every benchmark uses this: `interleave` for a benchmark whose sides are one measurement each;
 * `summarize`, `ratioOf` and `resultLine` for one that combines several (bench/geo.ts).
 */

/** Which way is better for a unit: `lower` for seconds, `higher` for rows/s. */
export type Better = 'lower' | 'higher';

/** One side's runs and what sums them up. */
export interface Stats {
  /** In run order. */
  values: number[];
  median: number;
  min: number;
  max: number;
  /** First and third quartiles (linear interpolation between the sorted values, as numpy's default). */
  q1: number;
  q3: number;
}

/** The median: the middle value of an odd count, the mean of the two middle values of an even one. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/**
 * The q-quantile (0 ≤ q ≤ 1) by linear interpolation between the closest ranks of the sorted
 * values (numpy's default, R's type 7). NaN for no values.
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export function summarize(values: readonly number[]): Stats {
  return {
    values: [...values],
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    q1: quantile(values, 0.25),
    q3: quantile(values, 0.75),
  };
}

/** The ratio that is > 1 when ours wins: baseline ÷ ours for `lower`, ours ÷ baseline for `higher`. */
export function ratioOf(ours: number, baseline: number, better: Better): number {
  return better === 'lower' ? baseline / ours : ours / baseline;
}

/** How many runs a side gets: `BENCH_RUNS` (a whole number ≥ 1), else `fallback`. */
export function benchRuns(env: NodeJS.ProcessEnv = process.env, fallback = 3): number {
  const raw = env.BENCH_RUNS;
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_RUNS must be a whole number ≥ 1, got "${raw}"`);
  return n;
}

/** Enough digits for a figure of this size: 12,345 / 123.4 / 1.23 / 0.012. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return String(Math.round(v));
  if (a >= 100) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

/** `median 1.23 s (min–max 1.10–1.40, IQR 1.15–1.31, 3 runs)`. */
export function describe(s: Stats, unit: string): string {
  const f = formatValue;
  const spread = s.values.length > 1 ? `min–max ${f(s.min)}–${f(s.max)}, IQR ${f(s.q1)}–${f(s.q3)}, ` : '';
  return `median ${f(s.median)} ${unit} (${spread}${s.values.length} run${s.values.length === 1 ? '' : 's'})`;
}

/** The line every benchmark ends with. */
export function resultLine(name: string, ours: number, baseline: number, ratio: number, unit: string): string {
  return `RESULT ${name} ours=${formatValue(ours)} baseline=${formatValue(baseline)} ratio=${ratio.toFixed(2)} unit=${unit}`;
}

export interface InterleaveOptions {
  /** The benchmark's name, first word of the RESULT line. */
  name: string;
  unit: string;
  better: Better;
  /** @default benchRuns() — BENCH_RUNS, else 3 */
  runs?: number;
  /** One measurement of ours (run counts from 0); print details here if wanted. */
  ours: (run: number) => Promise<number>;
  /** One measurement of the baseline. */
  baseline: (run: number) => Promise<number>;
  /** Labels in the per-run lines. @default 'ours', 'baseline' */
  labels?: { ours?: string; baseline?: string };
  /** Where lines go. @default console.log */
  print?: (line: string) => void;
  /** Print the RESULT line (off for a benchmark that prints its own after more checks). @default true */
  printResult?: boolean;
}

export interface Interleaved {
  ours: Stats;
  baseline: Stats;
  /** Of the medians; > 1: ours wins. */
  ratio: number;
  result: string;
}

/**
 * Run ours and the baseline alternately (even runs ours first, odd runs the baseline first),
 * print each run, then each side's median and spread, the ratio of medians and the RESULT line.
 */
export async function interleave(o: InterleaveOptions): Promise<Interleaved> {
  const runs = o.runs ?? benchRuns();
  const print = o.print ?? ((line: string) => console.log(line));
  const label = { ours: o.labels?.ours ?? 'ours', baseline: o.labels?.baseline ?? 'baseline' };
  const ours: number[] = [];
  const baseline: number[] = [];
  for (let run = 0; run < runs; run++) {
    const oursFirst = run % 2 === 0;
    print('');
    print(`run ${run + 1}/${runs} (${oursFirst ? label.ours : label.baseline} first)`);
    if (oursFirst) {
      ours.push(await o.ours(run));
      baseline.push(await o.baseline(run));
    } else {
      baseline.push(await o.baseline(run));
      ours.push(await o.ours(run));
    }
    const r = ratioOf(ours.at(-1)!, baseline.at(-1)!, o.better);
    print(`run ${run + 1}/${runs}: ${label.ours} ${formatValue(ours.at(-1)!)} ${o.unit}, ${label.baseline} ${formatValue(baseline.at(-1)!)} ${o.unit}, ratio ${r.toFixed(2)}`);
  }
  return report(o.name, o.unit, o.better, ours, baseline, { print, labels: label, printResult: o.printResult ?? true });
}

/** The summary of runs already made: medians, spreads, ratio of medians, RESULT line (printed unless told not to). */
export function report(
  name: string,
  unit: string,
  better: Better,
  oursValues: readonly number[],
  baselineValues: readonly number[],
  options: { print?: (line: string) => void; labels?: { ours?: string; baseline?: string }; printResult?: boolean } = {},
): Interleaved {
  const print = options.print ?? ((line: string) => console.log(line));
  const ours = summarize(oursValues);
  const baseline = summarize(baselineValues);
  const ratio = ratioOf(ours.median, baseline.median, better);
  print('');
  print(`${options.labels?.ours ?? 'ours'}: ${describe(ours, unit)}`);
  print(`${options.labels?.baseline ?? 'baseline'}: ${describe(baseline, unit)}`);
  print(`ratio of medians ${ratio.toFixed(2)} (${better === 'lower' ? 'baseline ÷ ours' : 'ours ÷ baseline'}; > 1: ours wins)`);
  const result = resultLine(name, ours.median, baseline.median, ratio, unit);
  if (options.printResult ?? true) print(result);
  return { ours, baseline, ratio, result };
}
