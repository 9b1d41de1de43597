/**
 * `npm run bench -- ui`: how fast the local console (`civic-etl ui`) answers each page on the
 * example pipeline. Runs the Chicago example as `npm run demo` does (`civic-etl run
 * --upload-examples`, into the local services or DATABASE_URL), starts the console on a free
 * loopback port, requests every page once to warm it, then BENCH_RUNS (default 3) × 10 times in a
 * row, and prints each page's median, p95 and slowest time (request sent to last byte read, over
 * HTTP on loopback) and its size.
 *
 * The baseline is the issue's budget, not another tool: each page must answer in under 200 ms.
 * Ends with `RESULT ui ours=<median of the slowest page, ms> baseline=200 ratio=<200/ours> unit=ms`
 * (ratio > 1: within budget). Exit status 1 if a page answered other than 200.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { loadPipeline } from '../contract/load.ts';
import { sqsClient } from '../functions/common/aws.ts';
import { closePool, getPool } from '../functions/common/db.ts';
import { startConsole } from '../local/console/server.ts';
import { ensureServices } from '../local/services.ts';

const ROOT = join(import.meta.dirname, '..');
const PIPELINE = join(ROOT, 'pipelines/chicago/pipeline.yaml');
/** The issue's budget per page, ms. */
const BUDGET_MS = 200;
const REQUESTS_PER_RUN = 10;

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  return sorted[lo]! + (sorted[Math.ceil(i)]! - sorted[lo]!) * (i - lo);
}

export async function main(): Promise<void> {
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  await ensureServices();
  console.log('running the example pipeline (civic-etl run --upload-examples)…');
  const demo = spawnSync(process.execPath, [join(ROOT, 'bin/civic-etl.mjs'), 'run', '--upload-examples', '--pipeline', PIPELINE], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  if (demo.status !== 0) throw new Error(`the example pipeline failed (exit ${demo.status}): ${demo.stderr}${demo.stdout.slice(-2000)}`);
  const pipeline = loadPipeline(PIPELINE);
  const pool = await getPool();
  const latest = async (dataset: string) =>
    Number((await pool.query(`SELECT max(id) AS id FROM etl.loads WHERE project = $1 AND dataset = $2 AND status = 'loaded'`, [pipeline.project, dataset])).rows[0].id);
  const programs = await latest('programs');
  const areas = await latest('community_areas');
  const ledger = (await pool.query(`SELECT count(*)::int AS n FROM etl.loads WHERE project = $1`, [pipeline.project])).rows[0].n as number;
  const running = await startConsole({ pool, pipeline, sqs: sqsClient() });
  const pages = [
    '/loads',
    '/loads?dataset=programs&status=loaded',
    `/loads/${programs}`,
    `/loads/${programs}/report`,
    '/queues',
    '/quarantine',
    '/quarantine?dataset=programs',
    '/quarantine?dataset=programs&rule=type',
    '/catalog',
    '/catalog?q=latitude',
    `/catalog/${programs}`,
    `/catalog/${areas}`,
    '/views',
    ...pipeline.views.map((v) => `/views/${v.name}`),
  ];
  console.log(`console on ${running.url} over project ${pipeline.project} (${ledger} loads in the ledger); ${pages.length} pages, ${runs} × ${REQUESTS_PER_RUN} requests each`);
  let failures = 0;
  const times = new Map<string, number[]>(pages.map((p) => [p, []]));
  const sizes = new Map<string, number>();
  const get = async (path: string) => {
    const started = performance.now();
    const res = await fetch(new URL(path, running.url));
    const body = await res.arrayBuffer();
    const ms = performance.now() - started;
    if (res.status !== 200) {
      failures++;
      console.error(`${path}: HTTP ${res.status}`);
    }
    sizes.set(path, body.byteLength);
    return ms;
  };
  try {
    for (const p of pages) await get(p); // warm: the modules, the pool's connections, the query plans
    for (let run = 0; run < runs; run++) for (const p of pages) for (let i = 0; i < REQUESTS_PER_RUN; i++) times.get(p)!.push(await get(p));
  } finally {
    await running.close();
    await closePool();
  }
  console.log(`\n${'page'.padEnd(44)} ${'median'.padStart(9)} ${'p95'.padStart(9)} ${'slowest'.padStart(9)} ${'size'.padStart(10)}`);
  let slowest = { page: '', median: 0 };
  for (const p of pages) {
    const t = [...times.get(p)!].sort((a, b) => a - b);
    const median = quantile(t, 0.5);
    if (median > slowest.median) slowest = { page: p, median };
    console.log(
      `${p.padEnd(44)} ${median.toFixed(1).padStart(6)} ms ${quantile(t, 0.95).toFixed(1).padStart(6)} ms ${t.at(-1)!.toFixed(1).padStart(6)} ms ${`${(sizes.get(p)! / 1024).toFixed(1)} KB`.padStart(10)}`,
    );
  }
  console.log(`\nslowest page by median: ${slowest.page} (${slowest.median.toFixed(1)} ms); the budget (baseline) is ${BUDGET_MS} ms a page`);
  console.log(`RESULT ui ours=${slowest.median.toFixed(1)} baseline=${BUDGET_MS} ratio=${(BUDGET_MS / slowest.median).toFixed(2)} unit=ms`);
  if (failures > 0) process.exitCode = 1;
}
