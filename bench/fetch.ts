/**
 * `npm run bench -- fetch`: 200,000 records from a paged JSON API that answers each page after
 * 20 ms, fetched by the real REST fetcher (functions/get/fetch-rest.ts) into S3 (moto) — once with
 * `concurrency: 1` (sequential, the baseline) and once with `concurrency: 8` (ours), in the same
 * run, from the same server, the same data. Issue 5's target: the concurrent run reaches at least
 * 0.8 of the ideal speed-up over the sequential one (8×, so a ratio ≥ 6.4), with bounded memory.
 *
 * The API (bench/fetch-server.ts) is a child process on loopback, so its CPU does not share the
 * fetch's event loop: Ed-Fi-like student records (ten fields, about 330 bytes of JSON each) under
 * offset/limit pagination, each page held 20 ms (a timer) before it is answered. The page size is
 * 100: Ed-Fi's API pages with `limit` between its default of 25 and its maximum of 500, and 100 is
 * a common choice in that range — 2,000 pages here, enough that the per-page cost, not the start,
 * decides the figures.
 *
 * Each fetch runs alone in a child process (bench/fetch-once.ts, bundled with esbuild as the
 * Lambda is, plain node, a 512 MB function's heap limit) under GNU time, so its peak RSS is its
 * own. The time compared is that of the fetchRest call (taking the lease, every page, the gzip
 * upload, the manifest), not node's start. Each stored object is then read back, gunzipped and
 * compared line by line with the records the server holds (count, order, content).
 *
 * The two run alternately BENCH_RUNS times (default 3; bench/interleave.ts), each run printed,
 * then each side's median and spread; the RESULT line carries the medians. Each run stores a
 * gzip object of a few MB in moto (kept until moto stops).
 *
 * Knobs: BENCH_FETCH_RECORDS (200000), BENCH_FETCH_PAGE (100), BENCH_FETCH_DELAY_MS (20),
 * BENCH_FETCH_CONCURRENCY (8).
 * Ends with `RESULT fetch ours=<median s> baseline=<median s> ratio=<baseline/ours> unit=s`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { ensureServices } from '../local/services.ts';
import type { FetchOnce } from './fetch-once.ts';
import { STUDENTS_PATH, student } from './fetch-server.ts';
import { bundleLikeLambda } from './lambda-like.ts';
import { interleave, type Interleaved } from './interleave.ts';
import { measure, type Measured } from './measure.ts';

const ROOT = join(import.meta.dirname, '..');
const DIR = join(ROOT, '.local/bench');
const BUNDLE_DIR = join(DIR, 'fetch-once');
const BUNDLE = join(BUNDLE_DIR, 'index.mjs');
/** The heap limit of a 512 MB function (see bench/stage.ts: V8 sizes its heap by it). */
const LAMBDA_HEAP_MB = 512;
/** Issue 5: at least this share of the ideal speed-up. */
const TARGET_SHARE = 0.8;

const knob = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number, got "${raw}"`);
  return value;
};

interface ServerStats {
  requests: number;
  pages: number;
  records: number;
  maxInFlight: number;
  minHoldMs: number | null;
  bytes: number;
  connections: number;
}

/** Start the API in a child process; resolves with its base URL once it listens. */
async function startServer(records: number, delayMs: number, pageSize: number): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/fetch-server.ts'), String(records), String(delayMs), String(pageSize)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the benchmark API exited (code ${code}) before listening`)));
    lines.once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
  return { child, base: `http://127.0.0.1:${port}` };
}

async function bundleFetchOnce(): Promise<void> {
  bundleLikeLambda(join(ROOT, 'bench/fetch-once.ts'), BUNDLE_DIR);
}

interface Run {
  concurrency: number;
  measured: Measured;
  result: FetchOnce;
  server: ServerStats;
}

async function fetchOnce(base: string, bucket: string, pageSize: number, concurrency: number, maxPages: number): Promise<Run> {
  await fetch(`${base}/_reset`, { method: 'POST' });
  const measured = await measure(
    process.execPath,
    [`--max-old-space-size=${LAMBDA_HEAP_MB}`, BUNDLE, bucket, `students_c${concurrency}`, `${base}${STUDENTS_PATH}`, String(pageSize), String(concurrency), String(maxPages)],
    { ...process.env, NODE_NO_WARNINGS: '1' },
  );
  if (measured.code !== 0) throw new Error(`the fetch with concurrency ${concurrency} failed:\n${measured.stderr}`);
  const result = JSON.parse(measured.stdout.trim().split('\n').at(-1)!) as FetchOnce;
  if (result.outcome.status !== 'fetched') throw new Error(`the fetch with concurrency ${concurrency} did not fetch: ${JSON.stringify(result.outcome)}`);
  const server = (await (await fetch(`${base}/_stats`)).json()) as ServerStats;
  return { concurrency, measured, result, server };
}

/** Read the stored object back and compare it line by line with the server's records. */
async function verify(bucket: string, key: string, records: number): Promise<{ count: number; first?: string; last?: string }> {
  const { s3Client } = await import('../functions/common/aws.ts');
  const out = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const lines = createInterface({ input: (out.Body as Readable).pipe(createGunzip()), crlfDelay: Infinity });
  let count = 0;
  let first: string | undefined;
  let last: string | undefined;
  for await (const line of lines) {
    if (count < records && line !== JSON.stringify(student(count))) {
      throw new Error(`s3://${bucket}/${key}: line ${count + 1} is not record ${count} of the API:\n  ${line.slice(0, 200)}`);
    }
    const id = (JSON.parse(line) as { studentUniqueId: string }).studentUniqueId;
    first ??= id;
    last = id;
    count++;
  }
  if (count !== records) throw new Error(`s3://${bucket}/${key} holds ${count} records, expected ${records}`);
  return { count, first, last };
}

export async function main(): Promise<void> {
  const records = knob('BENCH_FETCH_RECORDS', 200_000);
  const pageSize = knob('BENCH_FETCH_PAGE', 100);
  const delayMs = knob('BENCH_FETCH_DELAY_MS', 20);
  const concurrency = knob('BENCH_FETCH_CONCURRENCY', 8);
  if (records < 1 || pageSize < 1 || concurrency < 2) throw new Error('BENCH_FETCH_RECORDS and BENCH_FETCH_PAGE must be ≥ 1, BENCH_FETCH_CONCURRENCY ≥ 2');
  // a last page exactly full is followed by one empty page
  const requests = Math.floor(records / pageSize) + 1;
  if (!(await import('node:fs')).existsSync('/usr/bin/time')) throw new Error('this benchmark measures with GNU time: apt-get install time');

  mkdirSync(DIR, { recursive: true });
  await ensureServices();
  const { s3Client } = await import('../functions/common/aws.ts');
  const bucket = `bench-fetch-${Date.now()}`;
  await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
  await s3Client().send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  await bundleFetchOnce();

  console.log(`API: ${records.toLocaleString('en')} records, ${pageSize} a page (${requests.toLocaleString('en')} requests), each answered after ${delayMs} ms; serializing its pages (not timed)…`);
  const { child, base } = await startServer(records, delayMs, pageSize);
  const seen: Run[] = [];
  /** One fetch at concurrency c, checked record by record against the API, printed; returns fetchRest's seconds. */
  const once = async (c: number): Promise<number> => {
    const run = await fetchOnce(base, bucket, pageSize, c, requests + 1);
    const { manifest } = run.result.outcome as Extract<FetchOnce['outcome'], { status: 'fetched' }>;
    const check = await verify(bucket, manifest.key, records);
    const r = run.result;
    const floor = (requests * delayMs) / c / 1000;
    console.log(`  ${c === 1 ? 'baseline: concurrency 1 (sequential)' : `ours: concurrency ${c}`}`);
    console.log(
      `    fetchRest ${r.seconds.toFixed(2)} s (the process ${run.measured.seconds.toFixed(2)} s): ${Math.round(records / r.seconds).toLocaleString('en')} records/s, ${manifest.pages} pages, ${(manifest.bytes / 1e6).toFixed(1)} MB gzip stored`,
    );
    console.log(`    floor of ${requests} requests × ${delayMs} ms / ${c}: ${floor.toFixed(2)} s; event loop busy ${(r.eventLoopBusy * 100).toFixed(0)} % of the run`);
    console.log(
      `    peak RSS ${run.measured.peakRssMb.toFixed(0)} MB (${r.startupMb.toFixed(0)} MB after start; at the peak V8 heap ${r.atPeak.heapTotal.toFixed(0)} MB, Buffers ${r.atPeak.external.toFixed(0)} MB)`,
    );
    console.log(
      `    server: ${run.server.requests} requests on ${run.server.connections} connection(s), at most ${run.server.maxInFlight} in flight, each held ≥ ${(run.server.minHoldMs ?? NaN).toFixed(1)} ms`,
    );
    console.log(`    stored: ${check.count.toLocaleString('en')} records in order, studentUniqueId ${check.first} … ${check.last}, identical to the API's`);
    seen.push(run);
    return r.seconds;
  };
  let runs: Interleaved;
  try {
    runs = await interleave({
      name: 'fetch',
      unit: 's',
      better: 'lower',
      ours: () => once(concurrency),
      baseline: () => once(1),
      labels: { ours: `ours (concurrency ${concurrency})`, baseline: 'baseline (concurrency 1)' },
      printResult: false,
    });
  } finally {
    child.stdin!.end();
    child.kill();
  }

  const speedUp = runs.ratio;
  const share = speedUp / concurrency;
  const target = TARGET_SHARE * concurrency;
  const floor = (requests * delayMs) / concurrency / 1000;
  const peak = (c: number) => Math.max(...seen.filter((r) => r.concurrency === c).map((r) => r.measured.peakRssMb));
  console.log(
    `\nspeed-up ${speedUp.toFixed(2)}× of an ideal ${concurrency}× (${(share * 100).toFixed(0)} % of ideal; medians); largest peak RSS ${peak(concurrency).toFixed(0)} MB against ${peak(1).toFixed(0)} MB sequential`,
  );
  console.log(`  (stricter: the server's waits alone take ${floor.toFixed(2)} s at concurrency ${concurrency}; ours is ${((floor / runs.ours.median) * 100).toFixed(0)} % of that speed)`);
  console.log(runs.result);
  console.log(`target ${TARGET_SHARE} of ideal (ratio ≥ ${target.toFixed(1)}): ${speedUp >= target ? 'met' : 'NOT met'}`);
}
