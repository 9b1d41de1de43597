/**
 * `civic-etl demo edfi`: the Ed-Fi example end to end on this machine. A stand-in ODS / API
 * (local/edfi-stand-in.ts) on loopback serves a generated district (local/edfi-district.ts); the
 * client's key and secret go into the local Secrets Manager (moto) under the pipeline's secret
 * name; the pipeline's `edfi` source is pointed at the stand-in; then fetch → stage → clean → views
 * → exports run twice: a full run, and — after the district's next school day — an incremental
 * run (change queries from the saved change version, deletions through `/deletes`).
 */
import { parseArgs } from 'node:util';
import { relative } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { CreateSecretCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type pg from 'pg';
import { childTableName } from '../functions/clean/children.ts';
import { ident } from '../functions/common/db.ts';
import { readJsonSecret, s3Client, secretsClient } from '../functions/common/aws.ts';
import type { EdfiOutcome } from '../functions/get/fetch-edfi.ts';
import { generateDistrict, serveDay, serveDistrict, type DistrictDay, type EdfiDistrict } from './edfi-district.ts';
import { EDFI_CLIENT, startEdfiServer } from './edfi-stand-in.ts';
import type { LocalPipeline } from './pipeline.ts';

export const EDFI_EXAMPLE = 'pipelines/edfi/pipeline.yaml';

export const DEMO_HELP = `Usage:
  civic-etl demo edfi [--students N] [--days N] [--pipeline FILE] [--verbose]
      The Ed-Fi example end to end: a stand-in ODS / API on loopback serving a generated district,
      its client secret in the local Secrets Manager; fetch → stage → clean → views → exports, a full
      run, then the next school day incrementally; prints what each run fetched, loaded, deleted and
      exported. Starts the project afresh (its schema, ledger rows and local bucket). --verbose also
      prints the functions' log lines.`;

export interface EdfiDemoOptions {
  /** The pipeline definition (default the shipped example); its first `edfi` API is served. */
  pipelineFile?: string;
  /** District size (default 600 students) and instructional days so far (default 170). */
  students?: number;
  instructionalDays?: number;
  seed?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Give up on a run after this long (default 10 minutes). */
  maxMs?: number;
  /**
   * The next day corrects one studentSchoolAssociation's key (its entryDate), served at
   * `<resource>/keyChanges` (default true).
   */
  keyChange?: boolean;
  /** Called after each run, before the next day is served (the tests look at the tables here); `day` is the day the incremental run fetched. */
  onRun?: (run: EdfiDemoRun, day?: DistrictDay) => Promise<void> | void;
}

/** What one run (full or incremental) did. */
export interface EdfiDemoRun {
  label: 'full' | 'incremental';
  seconds: number;
  /** Per dataset: records, key changes and deletions fetched. */
  fetched: { dataset: string; records: number; deleted: number; keyChanges: number }[];
  /** Per table (a dataset or one of its nested tables): the run's loads, rows loaded, quarantined, deleted. */
  loaded: { table: string; loads: number; rows: number; quarantined: number; deleted: number; failed: number }[];
  /** Per exported view: rows and the Parquet object of the run's last export. */
  exported: { view: string; rows: number; parquet: string; exports: number }[];
  /** Rows of every clean table (parents and nested) after the run. */
  tables: Record<string, number>;
  /** Messages left in a dead-letter queue by the run. */
  dead: number;
}

export interface EdfiDemoResult {
  project: string;
  district: EdfiDistrict;
  day: DistrictDay;
  runs: EdfiDemoRun[];
}

/** Run the demo: services must be running (ensureServices). Starts the project afresh (schema, ledger, bucket). */
export async function runEdfiDemo(opts: EdfiDemoOptions = {}): Promise<EdfiDemoResult> {
  const log = opts.log ?? (() => undefined);
  const file = opts.pipelineFile ?? EDFI_EXAMPLE;
  const { openLocalPipeline } = await import('./pipeline.ts');
  const { purgeLocalResources } = await import('./resources.ts');
  const local = await openLocalPipeline(file);
  const { pipeline, pool } = local;
  const api = pipeline.edfi[0];
  if (!api) throw new Error(`${file} declares no Ed-Fi API (edfi:): nothing to serve`);

  // a fresh start: the demo is a full run, then an incremental one
  log(`resetting project ${pipeline.project}: schema, ledger and bucket s3://${local.resources.bucket}`);
  await resetProject(pool, pipeline.project);
  await purgeLocalResources(local.resources);
  const { migrate } = await import('../functions/migrate/migrate.ts');
  await migrate(pool, pipeline.project);

  const started = performance.now();
  const district = generateDistrict({ students: opts.students, instructionalDays: opts.instructionalDays, seed: opts.seed });
  const ods = await startEdfiServer();
  ods.servesPageTokens = true; // as ODS / API 7.3+: the fetch pages by cursor
  try {
    const served = serveDistrict(ods, district);
    log(
      `stand-in Ed-Fi ODS / API at ${ods.base}: ${district.records('students').length} students, ${district.schoolDays().length} school days to ${district.today}, ${served} records (${((performance.now() - started) / 1000).toFixed(1)} s)`,
    );
    await putSecret(api.secret, EDFI_CLIENT);
    log(`client key and secret stored in Secrets Manager as ${api.secret}`);
    // the source, pointed at the stand-in (the stage and clean handlers never read the url)
    const source = { ...pipeline, edfi: pipeline.edfi.map((a) => (a.name === api.name ? { ...a, url: ods.base } : a)) };

    const runs: EdfiDemoRun[] = [];
    runs.push(await oneRun('full', local, source, api.name, opts, log));
    await opts.onRun?.(runs[0]!);
    const keyChange = opts.keyChange ?? true;
    const day = district.advance({ keyChange });
    const applied = serveDay(ods, day);
    log(
      `next school day ${day.date}: ${day.newEvents.school} school and ${day.newEvents.section} section attendance events, event ${day.corrected.id} corrected, ` +
        `event ${day.deleted.id} deleted, student ${day.withdrawn.studentUniqueId} withdrawn, student ${day.enrolled.studentUniqueId} enrolled, ` +
        `incident ${day.incident.incidentIdentifier}${day.keyChanges.length ? `, ${day.keyChanges.length} key change` : ''} — ${applied.written} records written, ${applied.deleted} deleted in the ODS`,
    );
    runs.push(await oneRun('incremental', local, source, api.name, opts, log));
    await opts.onRun?.(runs[1]!, day);
    return { project: pipeline.project, district, day, runs };
  } finally {
    await ods.close();
  }
}

async function oneRun(label: EdfiDemoRun['label'], local: LocalPipeline, pipeline: LocalPipeline['pipeline'], apiName: string, opts: EdfiDemoOptions, log: (line: string) => void): Promise<EdfiDemoRun> {
  const { fetchEdfiApi } = await import('../functions/get/fetch-dataset.ts');
  const { queueDepth } = await import('./runner.ts');
  const { pool, resources } = local;
  const project = pipeline.project;
  const started = performance.now();
  const since = Number((await pool.query<{ n: string | null }>('SELECT max(id) AS n FROM etl.loads')).rows[0]!.n ?? 0);
  const exportsSince = Number((await pool.query<{ n: string | null }>('SELECT max(id) AS n FROM etl.exports')).rows[0]!.n ?? 0);
  const dlqs = [resources.stageDlqUrl, resources.cleanDlqUrl];
  const deadBefore = await Promise.all(dlqs.map(queueDepth));

  log(`${label} run: fetching Ed-Fi API ${apiName}`);
  const deps = { s3: s3Client(), bucket: resources.bucket, readSecret: readJsonSecret };
  const fetched = new Map<string, { records: number; deleted: number; keyChanges: number }>();
  for (;;) {
    const result = await fetchEdfiApi(deps, pipeline, apiName);
    const outcome = result.outcome as EdfiOutcome;
    if (outcome.status === 'busy') throw new Error(outcome.message);
    for (const r of outcome.results) fetched.set(r.dataset, { records: r.records, deleted: r.deleted, keyChanges: r.keyChanges });
    log(`  fetch: ${result.summary}`);
    if (result.status !== 'checkpointed') break;
  }
  log(`${label} run: stage → clean → views → exports`);
  let messages = 0;
  await local.run({
    maxMs: opts.maxMs ?? 600_000,
    onBatch: (name, received, failed) => {
      messages += received;
      log(`  ${name}: ${received} message${received === 1 ? '' : 's'}${failed ? `, ${failed} failed (retried, then DLQ)` : ''} (${messages} so far)`);
    },
  });
  const deadAfter = await Promise.all(dlqs.map(queueDepth));

  const loads = await pool.query<{ dataset: string; child: string | null; loads: number; rows: number; quarantined: number; deleted: number; failed: number }>(
    `SELECT dataset, detected->>'child' AS child, count(*)::int AS loads, coalesce(sum(rows_loaded), 0)::int AS rows,
            coalesce(sum(rows_quarantined), 0)::int AS quarantined, coalesce(sum((detected->>'deleted')::int), 0)::int AS deleted,
            count(*) FILTER (WHERE status = 'failed')::int AS failed
       FROM etl.loads WHERE project = $1 AND id > $2 AND dataset IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2 NULLS FIRST`,
    [project, since],
  );
  const exports = await pool.query<{ view: string; exports: number; rows: number; manifest_key: string }>(
    `SELECT DISTINCT ON (view) view, count(*) OVER (PARTITION BY view)::int AS exports, row_count::int AS rows, manifest_key
       FROM etl.exports WHERE project = $1 AND id > $2 AND status = 'exported' ORDER BY view, id DESC`,
    [project, exportsSince],
  );
  const tableOf = (dataset: string, child: string | null) => {
    const definition = pipeline.datasets.find((d) => d.name === dataset);
    return child && definition ? childTableName(definition, child) : dataset;
  };
  const exported: EdfiDemoRun['exported'] = [];
  for (const e of exports.rows) {
    const parquet = e.manifest_key.replace(/_manifest\.json$/, `${e.view}.parquet`);
    await s3Client().send(new HeadObjectCommand({ Bucket: resources.bucket, Key: parquet })); // it is there
    exported.push({ view: e.view, rows: e.rows, parquet: `s3://${resources.bucket}/${parquet}`, exports: e.exports });
  }
  const run: EdfiDemoRun = {
    label,
    seconds: (performance.now() - started) / 1000,
    fetched: [...fetched].map(([dataset, f]) => ({ dataset, ...f })),
    loaded: loads.rows.map((l) => ({ table: tableOf(l.dataset, l.child), loads: l.loads, rows: l.rows, quarantined: l.quarantined, deleted: l.deleted, failed: l.failed })),
    exported,
    tables: await tableCounts(pool, project),
    dead: deadAfter.reduce((n, x, i) => n + x - deadBefore[i]!, 0),
  };
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  log(
    `${label} run done in ${run.seconds.toFixed(1)} s: fetched ${plural(sum(run.fetched.map((f) => f.records)), 'record')}, ${plural(sum(run.fetched.map((f) => f.keyChanges)), 'key change')} and ${plural(sum(run.fetched.map((f) => f.deleted)), 'deletion')}; ` +
      `loaded ${sum(run.loaded.map((l) => l.rows))} rows in ${sum(run.loaded.map((l) => l.loads))} loads (${sum(run.loaded.map((l) => l.quarantined))} quarantined, ` +
      `${sum(run.loaded.map((l) => l.deleted))} deleted, ${sum(run.loaded.map((l) => l.failed))} failed); exported ${run.exported.length} view${run.exported.length === 1 ? '' : 's'}`,
  );
  return run;
}

/** Rows of every clean table of the project (not quarantine, tombstone or staging tables, nor `_value_maps`: no dataset's name starts with `_`). */
async function tableCounts(pool: pg.Pool, project: string): Promise<Record<string, number>> {
  const tables = await pool.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' AND table_name !~ '_(quarantine|deleted)$' AND table_name !~ '^_' ORDER BY 1`,
    [project],
  );
  const out: Record<string, number> = {};
  for (const t of tables.rows) out[t.name] = Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(project)}.${ident(t.name)}`)).rows[0]!.n);
  return out;
}

/** Forget the project: its schemas, its ledger rows (exports and catalog go with them), its view registry and tombstone columns. */
async function resetProject(pool: pg.Pool, project: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS ${ident(project)} CASCADE; DROP SCHEMA IF EXISTS ${ident(`${project}_staging`)} CASCADE`);
  for (const table of ['etl.exports', 'etl.catalog', 'etl.views', 'etl.tombstone_columns', 'etl.loads']) await pool.query(`DELETE FROM ${table} WHERE project = $1`, [project]);
}

async function putSecret(name: string, value: { key: string; secret: string }): Promise<void> {
  const SecretString = JSON.stringify(value);
  try {
    await secretsClient().send(new CreateSecretCommand({ Name: name, SecretString }));
  } catch (error) {
    if ((error as { name?: string }).name !== 'ResourceExistsException') throw error;
    await secretsClient().send(new PutSecretValueCommand({ SecretId: name, SecretString }));
  }
}

/** `civic-etl demo edfi [--students N] [--days N] [--pipeline FILE]`: run the demo and print what each run did. */
export async function demoCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { pipeline: { type: 'string' }, students: { type: 'string' }, days: { type: 'string' }, verbose: { type: 'boolean', short: 'v' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new DemoUsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || positionals[0] !== 'edfi') throw new DemoUsageError('demo takes one example: edfi');
  const whole = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    if (!/^[1-9][0-9]*$/.test(v)) throw new DemoUsageError(`${flag} must be a positive whole number`);
    return Number(v);
  };
  const students = whole('--students', values.students);
  const instructionalDays = whole('--days', values.days);
  process.env.POWERTOOLS_LOG_LEVEL ??= values.verbose ? 'INFO' : 'ERROR';
  await (await import('./services.ts')).ensureServices();
  const { closePool } = await import('../functions/common/db.ts');
  const file = values.pipeline ?? EDFI_EXAMPLE;
  console.log(`Ed-Fi example (${relative(process.cwd(), file) || file}): a stand-in ODS / API on loopback, a full run, then the next school day incrementally`);
  try {
    const result = await runEdfiDemo({ pipelineFile: file, students, instructionalDays, log: (line) => console.log(line) });
    for (const run of result.runs) printRun(run);
    const bad = result.runs.reduce((n, r) => n + r.dead + r.loaded.reduce((m, l) => m + l.failed, 0), 0);
    if (bad > 0) console.log(`\n${bad} failed load${bad === 1 ? '' : 's'} or dead-lettered message${bad === 1 ? '' : 's'}: see \`civic-etl status --pipeline ${file}\``);
    return bad > 0 ? 1 : 0;
  } finally {
    await closePool();
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export class DemoUsageError extends Error {}

function printRun(run: EdfiDemoRun): void {
  console.log(`\n${run.label} run (${run.seconds.toFixed(1)} s) — per dataset: fetched (records, key changes, deletions), loaded (rows, deleted, quarantined), rows now`);
  const fetched = new Map(run.fetched.map((f) => [f.dataset, f]));
  const names = [...new Set([...run.fetched.map((f) => f.dataset), ...Object.keys(run.tables)])].sort();
  const rows = names.map((name) => {
    const f = fetched.get(name);
    const own = run.loaded.find((l) => l.table === name);
    return {
      table: name,
      fetched: f ? `${f.records}${f.keyChanges ? ` (${f.keyChanges} key change${f.keyChanges === 1 ? '' : 's'})` : ''}${f.deleted ? ` (−${f.deleted})` : ''}` : '',
      loaded: own ? String(own.rows) : '',
      deleted: own?.deleted ? String(own.deleted) : '',
      quarantined: own?.quarantined ? String(own.quarantined) : '',
      rows: String(run.tables[name] ?? ''),
    };
  });
  const widths = Object.keys(rows[0] ?? { table: '' }).map((c) => Math.max(c.length, ...rows.map((r) => (r as Record<string, string>)[c]!.length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' │ ')}`.trimEnd();
  if (rows.length) console.log(line(Object.keys(rows[0]!)));
  for (const r of rows) console.log(line(Object.values(r)));
  for (const e of run.exported) console.log(`  exported ${e.view}: ${e.rows} rows → ${e.parquet}`);
  if (run.exported.length === 0) console.log('  (no view with export in the pipeline yet)');
}
