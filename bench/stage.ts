/**
 * `npm run bench -- stage`: stage a generated 2,000,000-row CSV (about 300 MB) from S3 (moto)
 * into the local PostgreSQL with the real stage step, and in the same run load the same file
 * with `psql -c "\copy … FROM … CSV HEADER"` into an equivalent table; a naïve multi-row INSERT
 * from Node is printed for reference (on the first 200,000 rows, as rows/s).
 *
 * Ours and \copy run alternately BENCH_RUNS times (default 3; bench/interleave.ts): each run printed,
 * then each side's median and spread; the RESULT line carries the medians. The object is uploaded
 * once and the same version staged by every run (its staging table and ledger row dropped after
 * each): moto keeps every object version until it stops, so no run uploads again.
 *
 * "ours" is the stage step's COPY phase as it runs locally (detection, transcoding check, lineage
 * scanner, COPY into a fresh table with the lineage columns, ledger update), which is what competes
 * with \copy; the catalog profile that follows the commit (a 100,000-record sample) is printed
 * separately. Parallel staging (off by default for the local stage step) is turned on with one connection a core unless
 * CIVIC_ETL_PARALLEL_CONNECTIONS says otherwise (1: the file staged whole, by one COPY): the file,
 * above CIVIC_ETL_PARALLEL_BYTES, is staged in parts over that many connections, and each run
 * prints the parts and connections it used. With BENCH_STAGE_LOAD=1, `civic-etl load` of the same
 * file (its "read and staged" phase, bench/load-once.ts) is interleaved with \copy too: a second
 * RESULT line, `stage-load`.
 * The stage step runs in a child process (bench/stage-once.ts) bundled with esbuild as the Lambda
 * is, and run with plain node and a 512 MB function's heap limit: its peak RSS is that of the code
 * the Lambda runs. The same file is staged once more under tsx, for reference (tsx alone adds
 * about 40 MB at start).
 * With BENCH_STAGE_SIZES=100,1000,3000 it also stages files of about that many MB and prints the
 * peak RSS of each, by phase (the stage step must not grow with the file; target < 200 MB).
 * Ends with `RESULT stage ours=<median rows/s> baseline=<median rows/s> ratio=<x> unit=rows/s`.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { CreateBucketCommand, PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pg from 'pg';
import { ensureServices } from '../local/services.ts';
import { SUGGESTED_PARALLEL_CONNECTIONS } from '../functions/common/config.ts';
import { bundleLikeLambda } from './lambda-like.ts';
import { interleave } from './interleave.ts';
import { measure, type Measured } from './measure.ts';
import type { PhaseMemory } from './stage-once.ts';
import { mulberry32 as rng } from '../scripts/random.ts';

const ROOT = join(import.meta.dirname, '..');
const DIR = join(ROOT, '.local/bench');
const ROWS = 2_000_000;
const HEADER = ['id', 'name', 'category', 'amount', 'created_at', 'latitude', 'longitude', 'note'];
/** The stage child, bundled as the Lambda is. */
const BUNDLE_DIR = join(DIR, 'stage-once');
const BUNDLE = join(BUNDLE_DIR, 'index.mjs');
/** The issue's target for the stage step's peak RSS (it must fit a 512 MB Lambda). */
const TARGET_RSS_MB = 200;
/**
 * The V8 heap limit of a 512 MB function (the Lambda runtime derives it from the function's
 * memory). It matters: after each full GC, V8 lets the heap grow to up to 4× the live data under
 * this machine's default limit (about 4 GB), and to about 1.4× under a 512 MB limit (V8 scales
 * the factor down for small limits; `--trace-gc-verbose` prints it). Without it the child
 * measures this machine's garbage collector, not the Lambda's.
 */
const LAMBDA_HEAP_MB = 512;

async function generate(path: string, rowCount = ROWS): Promise<void> {
  if (existsSync(path)) return;
  const r = rng(2024);
  const out = createWriteStream(`${path}.part`);
  const cats = ['Education', 'Sports', 'Arts', 'Health', 'Employment', 'Food'];
  out.write(`${HEADER.join(',')}\n`);
  let buf = '';
  for (let i = 0; i < rowCount; i++) {
    const note = r() < 0.1 ? `"note with a comma, and ""quotes"" ${i}"` : `plain note number ${i} about the programme`;
    buf += `${i},Programme ${Math.floor(r() * 1e6)} in ward ${i % 50},${cats[i % 6]},${(r() * 10000).toFixed(2)},2024-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}T10:${String(i % 60).padStart(2, '0')}:00Z,${(41.6 + r() * 0.4).toFixed(6)},${(-87.9 + r() * 0.4).toFixed(6)},${note}\n`;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
  execFileSync('mv', [`${path}.part`, path]);
}

/**
 * Bundle bench/stage-once.ts as NodejsFunction bundles the stage Lambda (lib/pipeline-function.ts:
 * ESM, minified, the runtime's Node target, source maps without the sources, the `require`
 * banner, pg-native left out), so that the memory measured is that of the code the Lambda runs.
 */
async function bundleStageOnce(): Promise<void> {
  bundleLikeLambda(join(ROOT, 'bench/stage-once.ts'), BUNDLE_DIR);
}

interface StageOnce {
  measured: Measured;
  rows: number;
  loadId: number;
  seconds: number;
  copySeconds: number;
  memory: PhaseMemory;
  parts: number;
  connections: number;
}

/**
 * Stage one object in a child process: `bundle` runs the esbuild bundle with plain node, with
 * Node's defaults (as the Lambda's environment: no NODE_OPTIONS) and a 512 MB function's heap limit;
 * `tsx` runs the TypeScript source under tsx with this machine's defaults, as this benchmark
 * did before it measured the bundle.
 */
async function stageOnce(runner: 'bundle' | 'tsx', bucket: string, key: string, versionId: string, size: number): Promise<StageOnce> {
  const args = runner === 'bundle' ? [`--max-old-space-size=${LAMBDA_HEAP_MB}`, BUNDLE] : ['--import', 'tsx', join(ROOT, 'bench/stage-once.ts')];
  const measured = await measure(process.execPath, [...args, bucket, key, versionId, String(size)], {
    ...process.env,
    NODE_NO_WARNINGS: '1',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
  });
  if (measured.code !== 0) throw new Error(`stage (${runner}) failed:\n${measured.stderr}`);
  const r = JSON.parse(measured.stdout.trim().split('\n').at(-1)!) as {
    outcome: { status: string; rows: number; loadId: number };
    seconds: number;
    copySeconds: number;
    memory: PhaseMemory;
    parts: number;
    connections: number;
  };
  if (r.outcome.status !== 'staged') throw new Error(`stage (${runner}) of ${key}: ${JSON.stringify(r.outcome)}`);
  return { measured, rows: r.outcome.rows, loadId: r.outcome.loadId, seconds: r.seconds, copySeconds: r.copySeconds, memory: r.memory, parts: r.parts, connections: r.connections };
}

/** Peak RSS by phase, as stage-once.ts measured it. */
function phases(m: PhaseMemory): string {
  const mb = (x: number) => `${Number.isFinite(x) ? x.toFixed(0) : '?'} MB`;
  return `startup ${mb(m.startup)}, COPY ${mb(m.copy)}, catalog profile ${mb(m.profile)}; at the peak V8 heap ${mb(m.atPeak.heapTotal)}, Buffers ${mb(m.atPeak.external)}`;
}

/** Drop a load's staging table and its ledger row, so that the same object version can be staged again. */
async function forget(db: pg.Client, loadId: number): Promise<void> {
  const [load] = (await db.query<{ staging_table: string | null }>('SELECT staging_table FROM etl.loads WHERE id = $1', [loadId])).rows;
  if (load?.staging_table) await db.query(`DROP TABLE IF EXISTS ${load.staging_table}`);
  await db.query('DELETE FROM etl.loads WHERE id = $1', [loadId]);
}

export async function main(): Promise<void> {
  // the path the outcome names: parallel staging on (the local stage step's default is off), one connection a core unless told
  process.env.CIVIC_ETL_PARALLEL_CONNECTIONS ??= String(SUGGESTED_PARALLEL_CONNECTIONS);
  console.log(`CIVIC_ETL_PARALLEL_CONNECTIONS=${process.env.CIVIC_ETL_PARALLEL_CONNECTIONS}, CIVIC_ETL_PARALLEL_BYTES=${process.env.CIVIC_ETL_PARALLEL_BYTES ?? 'default (64 MiB)'}`);
  if (!existsSync('/usr/bin/time')) throw new Error('this benchmark measures with GNU time: apt-get install time');
  mkdirSync(DIR, { recursive: true });
  const file = join(DIR, 'stage-2m.csv');
  console.log('generating input (once; kept in .local/bench)…');
  await generate(file);
  const bytes = statSync(file).size;
  const mb = bytes / 1e6;
  await ensureServices();
  const { s3Client } = await import('../functions/common/aws.ts');

  const bucket = `bench-stage-${Date.now()}`;
  await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
  await s3Client().send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  const key = 'incoming/bench/rows/stage-2m.csv';
  console.log(`uploading ${mb.toFixed(0)} MB to moto (not timed)…`);
  const uploaded = await new Upload({ client: s3Client(), params: { Bucket: bucket, Key: key, Body: createReadStream(file) }, partSize: 16 * 1024 * 1024 }).done();

  const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
  await db.query('DROP SCHEMA IF EXISTS bench_stage CASCADE; DROP SCHEMA IF EXISTS bench_stage_staging CASCADE');
  await db.query(`DELETE FROM etl.loads WHERE project = 'bench_stage'`).catch(() => undefined);

  await bundleStageOnce();
  await db.query(`DROP TABLE IF EXISTS public.bench_copy`);
  console.log(
    `\nours: the stage step as it runs locally (S3 → detect → lineage → COPY; above CIVIC_ETL_PARALLEL_BYTES in parts over parallel connections, into unlogged part tables), in a child process bundled with esbuild as the Lambda is`,
  );
  console.log(`baseline: psql \\copy of the same file into an equivalent table (dropped and made again before each run)`);
  const runs = await interleave({
    name: 'stage',
    unit: 'rows/s',
    better: 'higher',
    ours: async () => {
      const ours = await stageOnce('bundle', bucket, key, uploaded.VersionId ?? '', bytes);
      if (ours.rows !== ROWS) throw new Error(`stage loaded ${ours.rows} rows, expected ${ROWS}`);
      const rate = ROWS / ours.copySeconds;
      console.log(
        `  ours: COPY phase ${ours.copySeconds.toFixed(1)} s: ${Math.round(rate).toLocaleString('en')} rows/s, ${(mb / ours.copySeconds).toFixed(1)} MB/s; ${ours.parts} part${ours.parts === 1 ? '' : 's'} over ${ours.connections} connection${ours.connections === 1 ? '' : 's'}`,
      );
      console.log(`    with the catalog profile: ${ours.seconds.toFixed(1)} s; peak RSS ${ours.measured.peakRssMb.toFixed(0)} MB (${phases(ours.memory)})`);
      // the same object version is staged again by the next run: its table and ledger row go (no new upload: moto keeps every version)
      await forget(db, ours.loadId);
      return rate;
    },
    baseline: async () => {
      await db.query(`DROP TABLE IF EXISTS public.bench_copy; CREATE TABLE public.bench_copy (${HEADER.map((h) => `${h} text`).join(', ')}, _line bigint GENERATED ALWAYS AS IDENTITY)`);
      const copy = await measure('psql', [process.env.DATABASE_URL!, '-v', 'ON_ERROR_STOP=1', '-c', `\\copy public.bench_copy (${HEADER.join(', ')}) FROM '${file}' CSV HEADER`]);
      if (copy.code !== 0) throw new Error(`psql failed: ${copy.stderr}`);
      const rate = ROWS / copy.seconds;
      console.log(`  baseline: ${copy.seconds.toFixed(1)} s: ${Math.round(rate).toLocaleString('en')} rows/s, ${(mb / copy.seconds).toFixed(1)} MB/s; psql peak RSS ${copy.peakRssMb.toFixed(0)} MB`);
      await db.query('DROP TABLE IF EXISTS public.bench_copy');
      return rate;
    },
    labels: { ours: 'ours (stage step)', baseline: 'baseline (psql \\copy)' },
    printResult: false,
  });
  const copyRate = runs.baseline.median;
  // the same object once more under tsx, as `npm run bench` ran it before: tsx is not in the Lambda (for reference, once, not timed against \copy)
  const underTsx = await stageOnce('tsx', bucket, key, uploaded.VersionId ?? '', bytes);
  console.log(`\nthe same under tsx, default heap limit (as measured before; the Lambda runs the bundle): peak RSS ${underTsx.measured.peakRssMb.toFixed(0)} MB (${phases(underTsx.memory)})`);
  await forget(db, underTsx.loadId);

  console.log('\nreference: naïve multi-row INSERT from Node (1,000 rows a statement), first 200,000 rows');
  await db.query(`DROP TABLE IF EXISTS public.bench_insert; CREATE TABLE public.bench_insert (${HEADER.map((h) => `${h} text`).join(', ')})`);
  const { parse } = await import('csv-parse');
  const parser = createReadStream(file).pipe(parse({ from_line: 2, to_line: 200_001 }));
  const started = performance.now();
  let batch: string[][] = [];
  let inserted = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const params = batch.flat();
    const tuples = batch.map((_, i) => `(${HEADER.map((__, j) => `$${i * HEADER.length + j + 1}`).join(',')})`).join(',');
    await db.query(`INSERT INTO public.bench_insert VALUES ${tuples}`, params);
    inserted += batch.length;
    batch = [];
  };
  for await (const record of parser as AsyncIterable<string[]>) {
    batch.push(record);
    if (batch.length === 1000) await flush();
  }
  await flush();
  const insertRate = inserted / ((performance.now() - started) / 1000);
  console.log(`  ${Math.round(insertRate).toLocaleString('en')} rows/s`);
  await db.query('DROP TABLE IF EXISTS public.bench_insert');

  // civic-etl load of the same file: its staging phase against \copy, interleaved (BENCH_STAGE_LOAD=1; each load also infers types and casts, not timed here)
  let loadResult: string | undefined;
  if (process.env.BENCH_STAGE_LOAD === '1') {
    console.log(`\nours: civic-etl load ${file} --table bench_stage_load.rows, its "read and staged" phase (a child process under tsx); baseline: psql \\copy as above`);
    const loadRuns = await interleave({
      name: 'stage-load',
      unit: 'rows/s',
      better: 'higher',
      ours: async () => {
        const run = await measure(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/load-once.ts'), file, 'bench_stage_load.rows'], {
          ...process.env,
          NODE_NO_WARNINGS: '1',
          POWERTOOLS_LOG_LEVEL: 'ERROR',
        });
        if (run.code !== 0) throw new Error(`civic-etl load failed:\n${run.stderr}`);
        const r = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { rows: number; stagedSeconds: number; seconds: number; parts: number };
        if (r.rows !== ROWS) throw new Error(`civic-etl load loaded ${r.rows} rows, expected ${ROWS}`);
        const rate = ROWS / r.stagedSeconds;
        console.log(
          `  ours: read and staged in ${r.stagedSeconds.toFixed(1)} s: ${Math.round(rate).toLocaleString('en')} rows/s; ${r.parts} part${r.parts === 1 ? '' : 's'}; whole load ${r.seconds.toFixed(1)} s; peak RSS ${run.peakRssMb.toFixed(0)} MB`,
        );
        await db.query('DROP SCHEMA IF EXISTS bench_stage_load CASCADE');
        return rate;
      },
      baseline: async () => {
        await db.query(`DROP TABLE IF EXISTS public.bench_copy; CREATE TABLE public.bench_copy (${HEADER.map((h) => `${h} text`).join(', ')}, _line bigint GENERATED ALWAYS AS IDENTITY)`);
        const copy = await measure('psql', [process.env.DATABASE_URL!, '-v', 'ON_ERROR_STOP=1', '-c', `\\copy public.bench_copy (${HEADER.join(', ')}) FROM '${file}' CSV HEADER`]);
        if (copy.code !== 0) throw new Error(`psql failed: ${copy.stderr}`);
        console.log(`  baseline: ${copy.seconds.toFixed(1)} s: ${Math.round(ROWS / copy.seconds).toLocaleString('en')} rows/s`);
        await db.query('DROP TABLE IF EXISTS public.bench_copy');
        return ROWS / copy.seconds;
      },
      labels: { ours: 'ours (civic-etl load, staging)', baseline: 'baseline (psql \\copy)' },
      printResult: false,
    });
    loadResult = loadRuns.result;
  }

  // memory series: BENCH_STAGE_SIZES=100,1000,3000 (MB, approximately) stages larger files too
  const sizes = (process.env.BENCH_STAGE_SIZES ?? '')
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
  const peaks: number[] = [];
  if (sizes.length > 0) console.log(`\nmemory: the bundled stage step (stage + catalog profile, one child process, plain node, --max-old-space-size=${LAMBDA_HEAP_MB}) on larger files`);
  for (const size of sizes) {
    const rowCount = Math.round((size * 1e6) / (bytes / ROWS));
    const path = join(DIR, `stage-${size}mb.csv`);
    await generate(path, rowCount);
    const fileBytes = statSync(path).size;
    const k = `incoming/bench/rows/stage-${size}mb.csv`;
    const up = await new Upload({ client: s3Client(), params: { Bucket: bucket, Key: k, Body: createReadStream(path) }, partSize: 64 * 1024 * 1024 }).done();
    const run = await stageOnce('bundle', bucket, k, up.VersionId ?? '', fileBytes);
    if (run.rows !== rowCount) throw new Error(`stage loaded ${run.rows} rows of ${k}, expected ${rowCount}`);
    peaks.push(run.measured.peakRssMb);
    console.log(`memory: ${(fileBytes / 1e6).toFixed(0)} MB, ${run.rows} rows staged in ${run.copySeconds.toFixed(1)} s, peak RSS ${run.measured.peakRssMb.toFixed(0)} MB (${phases(run.memory)})`);
    // the staged copy of a 3 GB file is bigger than the file: not kept
    await forget(db, run.loadId);
  }
  if (peaks.length > 0) {
    const worst = Math.max(...peaks);
    console.log(`memory: highest peak RSS ${worst.toFixed(0)} MB (target < ${TARGET_RSS_MB} MB)${worst < TARGET_RSS_MB ? '' : ' !!! over the target'}`);
  }
  await db.end();

  console.log(`\nours ${runs.ratio.toFixed(2)}× the \\copy throughput (medians; target ≥ 0.9×); naïve INSERT ${(insertRate / copyRate).toFixed(2)}× (on the first 200,000 rows, once)`);
  console.log(runs.result);
  if (loadResult) console.log(loadResult);
}
