/**
 * `npm run bench -- stage`: stage a generated 2,000,000-row CSV (about 300 MB) from S3 (moto)
 * into the local PostgreSQL with the real stage step, and in the same run load the same file
 * with `psql -c "\copy … FROM … CSV HEADER"` into an equivalent table; a naïve multi-row INSERT
 * from Node is printed for reference (on the first 200,000 rows, as rows/s).
 *
 * "ours" is the stage step's COPY phase (detection, transcoding check, lineage scanner, COPY into
 * a fresh table with the lineage columns, ledger update), which is what competes with \copy; the
 * catalog profile that follows the commit (a 100,000-record sample) is printed separately.
 * With BENCH_STAGE_SIZES=100,1000,3000 it also stages files of about that many MB and prints the
 * peak RSS of each (the stage step must not grow with the file).
 * Ends with `RESULT stage ours=<rows/s> baseline=<rows/s> ratio=<x> unit=rows/s`.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { CreateBucketCommand, PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pg from 'pg';
import { ensureServices } from '../local/services.ts';
import { measure } from './measure.ts';
import { mulberry32 as rng } from '../scripts/random.ts';

const ROOT = join(import.meta.dirname, '..');
const DIR = join(ROOT, '.local/bench');
const ROWS = 2_000_000;
const HEADER = ['id', 'name', 'category', 'amount', 'created_at', 'latitude', 'longitude', 'note'];


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

export async function main(): Promise<void> {
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

  console.log('\nours: the stage step (S3 → detect → lineage → COPY), in a child process');
  const ours = await measure(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/stage-once.ts'), bucket, key, uploaded.VersionId ?? '', String(bytes)], {
    ...process.env,
    NODE_NO_WARNINGS: '1',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
  });
  if (ours.code !== 0) throw new Error(`stage failed:\n${ours.stderr}`);
  const result = JSON.parse(ours.stdout.trim().split('\n').at(-1)!) as { outcome: { rows: number }; seconds: number; copySeconds: number };
  if (result.outcome.rows !== ROWS) throw new Error(`stage loaded ${result.outcome.rows} rows, expected ${ROWS}`);
  const oursRate = ROWS / result.copySeconds;
  console.log(`  COPY phase ${result.copySeconds.toFixed(1)} s: ${Math.round(oursRate).toLocaleString('en')} rows/s, ${(mb / result.copySeconds).toFixed(1)} MB/s`);
  console.log(`  with the catalog profile: ${result.seconds.toFixed(1)} s; peak RSS ${ours.peakRssMb.toFixed(0)} MB`);

  console.log('\nbaseline: psql \\copy of the same file into an equivalent table');
  await db.query(`DROP TABLE IF EXISTS public.bench_copy; CREATE TABLE public.bench_copy (${HEADER.map((h) => `${h} text`).join(', ')}, _line bigint GENERATED ALWAYS AS IDENTITY)`);
  const copy = await measure('psql', [process.env.DATABASE_URL!, '-v', 'ON_ERROR_STOP=1', '-c', `\\copy public.bench_copy (${HEADER.join(', ')}) FROM '${file}' CSV HEADER`]);
  if (copy.code !== 0) throw new Error(`psql failed: ${copy.stderr}`);
  const copyRate = ROWS / copy.seconds;
  console.log(`  ${copy.seconds.toFixed(1)} s: ${Math.round(copyRate).toLocaleString('en')} rows/s, ${(mb / copy.seconds).toFixed(1)} MB/s; psql peak RSS ${copy.peakRssMb.toFixed(0)} MB`);

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
  await db.query('DROP TABLE IF EXISTS public.bench_copy; DROP TABLE IF EXISTS public.bench_insert');
  await db.end();

  // memory series: BENCH_STAGE_SIZES=100,1000,3000 (MB, approximately) stages larger files too
  const sizes = (process.env.BENCH_STAGE_SIZES ?? '').split(',').map(Number).filter((n) => n > 0);
  for (const size of sizes) {
    const rowCount = Math.round((size * 1e6) / (bytes / ROWS));
    const path = join(DIR, `stage-${size}mb.csv`);
    await generate(path, rowCount);
    const k = `incoming/bench/rows/stage-${size}mb.csv`;
    const up = await new Upload({ client: s3Client(), params: { Bucket: bucket, Key: k, Body: createReadStream(path) }, partSize: 64 * 1024 * 1024 }).done();
    const m = await measure(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/stage-once.ts'), bucket, k, up.VersionId ?? '', String(statSync(path).size)], {
      ...process.env,
      NODE_NO_WARNINGS: '1',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    });
    const r = JSON.parse(m.stdout.trim().split('\n').at(-1)!) as { outcome: { rows: number }; copySeconds: number };
    console.log(`memory: ${(statSync(path).size / 1e6).toFixed(0)} MB, ${r.outcome.rows} rows staged in ${r.copySeconds.toFixed(1)} s, peak RSS ${m.peakRssMb.toFixed(0)} MB (stage + catalog profile, child process)`);
  }

  console.log(`\nours ${(oursRate / copyRate).toFixed(2)}× the \\copy throughput (target ≥ 0.8×); naïve INSERT ${(insertRate / copyRate).toFixed(2)}×`);
  console.log(`RESULT stage ours=${Math.round(oursRate)} baseline=${Math.round(copyRate)} ratio=${(oursRate / copyRate).toFixed(2)} unit=rows/s`);
}
