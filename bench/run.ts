/**
 * `npm run bench -- <name>`: run one benchmark. Each measures ours and a named baseline
 * alternately BENCH_RUNS times (default 3; bench/interleave.ts) and ends with one line carrying
 * the medians:
 *   RESULT <name> ours=<v> baseline=<v> ratio=<x> unit=<u>
 * where ratio > 1 means ours wins (`coldstart` compares with a fixed target, not a tool). Benchmarks write their generated inputs under .local/bench/.
 */
const BENCHMARKS: Record<string, () => Promise<unknown>> = {
  coldstart: async () => (await import('./coldstart.ts')).main(),
  fetch: async () => (await import('./fetch.ts')).main(),
  geo: async () => (await import('./geo.ts')).main(),
  profile: async () => (await import('./profile.ts')).main(),
  report: async () => (await import('./report.ts')).main(),
  stage: async () => (await import('./stage.ts')).main(),
  upsert: async () => (await import('./upsert.ts')).main(),
  ui: async () => (await import('./ui.ts')).main(),
};

const name = process.argv[2];
const run = name ? BENCHMARKS[name] : undefined;
if (!run) {
  console.error(`usage: npm run bench -- <${Object.keys(BENCHMARKS).join('|')}>`);
  // not process.exit: the usage line is written before the process ends
  process.exitCode = 2;
} else {
  await run();
}
