/**
 * Exports ("gold" files): after every clean, each view marked `export` that reads the cleaned
 * dataset is written to the curated zone of the bucket, the way the Ed-Fi data lake publishes
 * parquet:
 *
 *   curated/<project>/<view>/<run>/<view>.parquet   Parquet (GeoParquet 1.1 when the view has geometry)
 *   curated/<project>/<view>/<run>/<view>.csv       RFC 4180: UTF-8, header, CRLF; geometry as WKT
 *   curated/<project>/<view>/<run>/_manifest.json   rows, columns and types, bytes and sha256 of each file, source loads
 *   curated/<project>/<view>/latest.json            the newest complete run (written last)
 *
 * Both files come from one REPEATABLE READ snapshot, so they hold the same rows. Memory stays flat
 * whatever the view's size: the CSV is PostgreSQL's own COPY streamed to S3, and the Parquet is
 * written one row group at a time from a server-side cursor, each group uploaded before the next
 * is fetched.
 *
 * An export never fails the load that triggered it (the load is committed before the export
 * starts): an attempt that fails is retried, and a view whose every attempt failed is recorded
 * in `etl.exports` with its error, logged, and exported again by the next clean.
 */
import { once } from 'node:events';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { PipelineDefinition, ViewDefinition } from '../../contract/definition.ts';
import { MANIFEST_SUFFIX, ZONES } from '../../contract/names.ts';
import { ident, type Queryable } from '../common/db.ts';
import { PermanentError, messageOf } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import { backoffMs, realSleep } from '../common/retry.ts';
import { putJson, uploadStream } from '../common/store.ts';
import { projjson } from './projjson.ts';

export type ExportFormat = 'parquet' | 'csv';

/** Where exports go — the clean function's bucket (`CIVIC_ETL_BUCKET`) — and how. */
export interface ExportSettings {
  s3: S3Client;
  bucket: string;
  limits?: Partial<ExportLimits>;
  /** The Parquet writer; by default hyparquet-writer, loaded when first needed. */
  parquet?: ParquetLibrary;
}

/** Sizes that bound memory and time; tests make them small. */
export interface ExportLimits {
  /** Rows per FETCH from the cursor. */
  fetchRows: number;
  /** A Parquet row group ends at this many rows… */
  rowGroupRows: number;
  /** …or once its values take about this many bytes, whichever comes first. */
  rowGroupBytes: number;
  /** Tries per view before the export is recorded as failed. */
  attempts: number;
  /** Pause before the first retry, doubled for each next one, with jitter (common/retry.ts: between half and all of it). */
  retryDelayMs: number;
}

export const DEFAULT_LIMITS: ExportLimits = {
  fetchRows: 10_000,
  rowGroupRows: 100_000,
  rowGroupBytes: 24 * 1024 * 1024,
  attempts: 3,
  retryDelayMs: 2_000,
};

export interface ExportDeps extends ExportSettings {
  pool: pg.Pool;
  pipeline: PipelineDefinition;
}

/** The clean that asked for the export. */
export interface ExportTrigger {
  loadId: number;
  dataset: string;
}

export type ExportOutcome =
  | { view: string; status: 'exported'; run: string; manifestKey: string; rowCount: number }
  /** This load's export of the view is already done (the clean message came back): nothing to do. */
  | { view: string; status: 'current' }
  /** The view is not created yet (a dataset it reads has no clean table). */
  | { view: string; status: 'waiting' }
  | { view: string; status: 'failed'; run?: string; error: string };

export interface ExportedFile {
  format: ExportFormat;
  key: string;
  contentType: string;
  bytes: number;
  sha256: string;
}

export interface ManifestColumn {
  name: string;
  /** The PostgreSQL type, as `format_type` spells it. */
  type: string;
  /** How the Parquet file stores it: physical type, then logical type. */
  parquet: string;
  /** How the CSV file writes it, when that is not PostgreSQL's text form. */
  csv?: string;
}

export interface GeometrySummary {
  column: string;
  /** SRID of the geometries (`null` when they have several, or none is known). */
  srid: number | null;
  /** The CRS a reader should assume: `OGC:CRS84` for 4326, `EPSG:<srid>`, or `null` (unknown). */
  crs: string | null;
  /** GeoParquet geometry types present (`Point`, `MultiPolygon Z`…); empty when unknown. */
  types: string[];
  /** `[xmin, ymin, xmax, ymax]` of all geometries; absent when there are none. */
  bbox?: [number, number, number, number];
}

export interface SourceLoads {
  dataset: string;
  /** How many loads the dataset's clean table holds rows of. */
  loads: number;
  /** The most recent of them (at most 100), newest first. */
  latest: { loadId: number; objectKey: string; objectVersion: string; loadedAt: string | null }[];
}

export interface ExportManifest {
  project: string;
  view: string;
  description?: string;
  run: string;
  createdAt: string;
  trigger?: ExportTrigger;
  rowCount: number;
  formats: ExportFormat[];
  columns: ManifestColumn[];
  geometry?: GeometrySummary[];
  files: ExportedFile[];
  sourceLoads: SourceLoads[];
}

/** `curated/<project>/<view>/`: every run of a view, and its `latest.json`. */
export function curatedPrefix(project: string, view: string): string {
  return `${ZONES.curated}${project}/${view}/`;
}

/** `curated/<project>/<view>/latest.json`. */
export function latestKey(project: string, view: string): string {
  return `${curatedPrefix(project, view)}latest.json`;
}

/**
 * A run's folder name: the UTC time to the millisecond (sorts as it happened), then the load
 * that triggered it — `20250131T101530123Z-load42`.
 */
export function runId(at: Date, loadId?: number): string {
  const stamp = at.toISOString().replace(/[-:.]/g, '');
  return loadId === undefined ? stamp : `${stamp}-load${loadId}`;
}

/** The views to export after a clean of `dataset`. */
export function viewsToExport(pipeline: PipelineDefinition, dataset: string): ViewDefinition[] {
  return pipeline.views.filter((v) => v.export && v.datasets.includes(dataset));
}

/**
 * The exports a clean message leads to, called by cleanLoad once its transaction is over: those
 * of the load's dataset if the load is loaded — just now, or before (the message came back because
 * the function stopped mid-export). Any other outcome exports nothing. Never throws.
 */
export async function exportLoad(deps: ExportDeps, loadId: number): Promise<ExportOutcome[]> {
  if (!deps.pipeline.views.some((v) => v.export)) return [];
  try {
    const { rows } = await deps.pool.query<{ dataset: string | null; status: string }>('SELECT dataset, status FROM etl.loads WHERE id = $1', [loadId]);
    const load = rows[0];
    if (load?.status !== 'loaded' || !load.dataset) return [];
    return await exportAfterClean(deps, { loadId, dataset: load.dataset });
  } catch (error) {
    logger.error('exports not run', { loadId, error: messageOf(error) });
    return [];
  }
}

/**
 * The exports of a batch of cleans (the clean handler's invocation): each view marked `export` that
 * reads a dataset one of these loads cleaned is exported once, after the last of them, its trigger
 * the newest of those loads — not once per load, since every export reads the whole view. A load
 * not loaded (failed, skipped) exports nothing. Redelivered, the same loads find their exports done.
 * Never throws: failures are recorded (`etl.exports`) and logged as {@link exportAfterClean} does.
 */
export async function exportAfterBatch(deps: ExportDeps, loadIds: readonly number[]): Promise<ExportOutcome[]> {
  if (loadIds.length === 0 || !deps.pipeline.views.some((v) => v.export)) return [];
  let loads: { id: number; dataset: string }[];
  try {
    loads = (
      await deps.pool.query<{ id: number; dataset: string }>(`SELECT id::int AS id, dataset FROM etl.loads WHERE id = ANY($1::bigint[]) AND status = 'loaded' AND dataset IS NOT NULL ORDER BY id`, [
        [...loadIds],
      ])
    ).rows;
  } catch (error) {
    logger.error('exports not run', { loadIds, error: messageOf(error) });
    return [];
  }
  const outcomes: ExportOutcome[] = [];
  for (const view of deps.pipeline.views.filter((v) => v.export)) {
    const newest = loads.filter((l) => view.datasets.includes(l.dataset)).at(-1);
    if (!newest) continue;
    try {
      outcomes.push(await exportWithRetries(deps, view, { loadId: newest.id, dataset: newest.dataset }));
    } catch (error) {
      logger.error('export failed', { view: view.name, loadId: newest.id, error: messageOf(error) });
      outcomes.push({ view: view.name, status: 'failed', error: messageOf(error) });
    }
  }
  return outcomes;
}

/**
 * Export every view marked `export` that reads the cleaned dataset. Never throws: a view whose
 * export fails after its retries is recorded (`etl.exports`, status `failed`) and logged, and
 * the others go on. Called after the clean's transaction has committed, and again when the
 * clean message of an already loaded load comes back (the function stopped mid-export): views
 * already exported for that load are then skipped.
 */
export async function exportAfterClean(deps: ExportDeps, trigger: ExportTrigger): Promise<ExportOutcome[]> {
  const outcomes: ExportOutcome[] = [];
  for (const view of viewsToExport(deps.pipeline, trigger.dataset)) {
    try {
      outcomes.push(await exportWithRetries(deps, view, trigger));
    } catch (error) {
      // the ledger itself could not be reached: nothing more to record
      logger.error('export failed', { view: view.name, loadId: trigger.loadId, error: messageOf(error) });
      outcomes.push({ view: view.name, status: 'failed', error: messageOf(error) });
    }
  }
  return outcomes;
}

/**
 * Export one view now (e.g. by hand, without a trigger), with retries; the outcome says how it
 * went, and a failure is recorded in `etl.exports`.
 */
export async function exportWithRetries(deps: ExportDeps, view: ViewDefinition, trigger?: ExportTrigger): Promise<ExportOutcome> {
  const { pool, pipeline } = deps;
  const limits = { ...DEFAULT_LIMITS, ...deps.limits };
  if (trigger && (await exportedFor(pool, pipeline.project, view.name, trigger.loadId))) return { view: view.name, status: 'current' };
  if (!(await viewExists(pool, pipeline.project, view.name))) return { view: view.name, status: 'waiting' };
  const formats = exportFormats(view);
  const run = runId(new Date(), trigger?.loadId);
  const record = await startRecord(pool, pipeline.project, view.name, trigger?.loadId, run, formats);
  let lastError: unknown;
  for (let attempt = 1; attempt <= limits.attempts; attempt++) {
    await pool.query('UPDATE etl.exports SET attempts = $2 WHERE id = $1', [record, attempt]);
    try {
      const started = performance.now();
      const result = await exportRun(deps, limits, view, formats, run, record, trigger);
      if (result === 'current') {
        // the same load's export, waited for at the lock (a message delivered twice), is done
        await pool.query('DELETE FROM etl.exports WHERE id = $1', [record]);
        return { view: view.name, status: 'current' };
      }
      logger.info('exported', { view: view.name, run, rows: result.manifest.rowCount, formats, ms: Math.round(performance.now() - started) });
      return { view: view.name, status: 'exported', run, manifestKey: result.manifestKey, rowCount: result.manifest.rowCount };
    } catch (error) {
      lastError = error;
      const last = attempt === limits.attempts || error instanceof PermanentError;
      logger.warn('export attempt failed', { view: view.name, run, attempt, error: messageOf(error), retry: !last });
      if (last) break;
      // the one retry policy's schedule (common/retry.ts): exponential backoff with jitter
      await realSleep(backoffMs(attempt - 1, { baseDelayMs: limits.retryDelayMs }));
    }
  }
  const error = messageOf(lastError);
  await pool.query(`UPDATE etl.exports SET status = 'failed', error = $2, finished_at = now() WHERE id = $1`, [record, error]);
  logger.error('export failed: the load stays loaded; the next clean exports again', { view: view.name, run, loadId: trigger?.loadId, error });
  return { view: view.name, status: 'failed', run, error };
}

function exportFormats(view: ViewDefinition): ExportFormat[] {
  return view.export?.formats ?? ['parquet', 'csv'];
}

/**
 * This load's export of the view has completed. (Not "a later load's": load ids do not follow
 * commit order — two datasets of one view can be cleaned at once — so a later load's export may
 * not hold this load's rows.)
 */
async function exportedFor(db: Queryable, project: string, view: string, loadId: number): Promise<boolean> {
  const { rowCount } = await db.query(`SELECT 1 FROM etl.exports WHERE project = $1 AND view = $2 AND status = 'exported' AND load_id = $3 LIMIT 1`, [project, view, loadId]);
  return Boolean(rowCount);
}

async function viewExists(db: Queryable, project: string, view: string): Promise<boolean> {
  const { rows } = await db.query<{ v: string | null }>(`SELECT to_regclass(format('%I.%I', $1::text, $2::text))::text AS v`, [project, view]);
  return Boolean(rows[0]?.v);
}

async function startRecord(db: Queryable, project: string, view: string, loadId: number | undefined, run: string, formats: ExportFormat[]): Promise<number> {
  const { rows } = await db.query<{ id: string }>(`INSERT INTO etl.exports (project, view, load_id, run, formats) VALUES ($1, $2, $3, $4, $5) RETURNING id`, [project, view, loadId ?? null, run, formats]);
  return Number(rows[0]!.id);
}

/**
 * One attempt. Exports of one view are serialised by a session advisory lock taken before the
 * snapshot, so each export sees at least the data of the one before it and `latest.json` only
 * ever moves forward. A failed attempt discards its connection (which also drops the lock and
 * the snapshot): the files it wrote stay in its run folder without a manifest, and the retry
 * overwrites them.
 */
async function exportRun(
  deps: ExportDeps,
  limits: ExportLimits,
  view: ViewDefinition,
  formats: ExportFormat[],
  run: string,
  record: number,
  trigger: ExportTrigger | undefined,
): Promise<'current' | { manifest: ExportManifest; manifestKey: string }> {
  const { pool, pipeline } = deps;
  // the Parquet writer is a dependency loaded on demand: fail before writing anything
  const parquet = formats.includes('parquet') ? (deps.parquet ?? (await parquetLibrary())) : undefined;
  const client = await pool.connect();
  let failure: Error | undefined;
  const lock = ['civic-etl:export', `${pipeline.project}.${view.name}`];
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1), hashtext($2))', lock);
    if (trigger && (await exportedFor(client, pipeline.project, view.name, trigger.loadId))) return 'current';
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    // text forms that read the same everywhere; one scan order for both files
    await client.query(`SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'iso_8601';
      SET LOCAL extra_float_digits = 1; SET LOCAL synchronize_seqscans = off`);
    const columns = await describeView(client, pipeline.project, view.name);
    const createdAt = new Date().toISOString();
    const prefix = `${curatedPrefix(pipeline.project, view.name)}${run}/`;
    const files: ExportedFile[] = [];
    const counts: number[] = [];
    let geometry: GeometrySummary[] | undefined;
    for (const format of formats) {
      const key = `${prefix}${view.name}.${format}`;
      if (format === 'csv') {
        const written = await uploadStream(deps, key, { contentType: CSV_CONTENT_TYPE, ...EXPORT_PARTS }, async (sink) => {
          counts.push(await writeCsv(client, pipeline.project, view.name, columns, sink));
        });
        files.push({ format, key, contentType: CSV_CONTENT_TYPE, ...written });
      } else {
        const written = await uploadStream(deps, key, { contentType: PARQUET_CONTENT_TYPE, ...EXPORT_PARTS }, async (sink) => {
          const out = await writeParquet(parquet!, client, limits, pipeline.project, view.name, columns, sink);
          counts.push(out.rows);
          geometry = out.geometry;
        });
        files.push({ format, key, contentType: PARQUET_CONTENT_TYPE, ...written });
      }
    }
    const sourceLoads = await sourceLoadsOf(client, pipeline.project, view.datasets);
    await client.query('COMMIT');
    if (counts.some((n) => n !== counts[0])) throw new Error(`the export files of ${view.name} hold different row counts (${counts.join(', ')})`);

    const manifest: ExportManifest = {
      project: pipeline.project,
      view: view.name,
      ...(view.description ? { description: view.description } : {}),
      run,
      createdAt,
      ...(trigger ? { trigger } : {}),
      rowCount: counts[0] ?? 0,
      formats,
      columns: columns.map(manifestColumn),
      ...(geometry?.length ? { geometry } : {}),
      files,
      sourceLoads,
    };
    const manifestKey = `${prefix}${MANIFEST_SUFFIX}`;
    await putJson(deps, manifestKey, manifest);
    await putJson(deps, latestKey(pipeline.project, view.name), {
      project: pipeline.project,
      view: view.name,
      run,
      createdAt,
      rowCount: manifest.rowCount,
      manifest: manifestKey,
      files: Object.fromEntries(files.map((f) => [f.format, f.key])),
    });
    await client.query(`UPDATE etl.exports SET status = 'exported', row_count = $2, manifest_key = $3, error = NULL, finished_at = now() WHERE id = $1`, [record, manifest.rowCount, manifestKey]);
    return { manifest, manifestKey };
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    if (failure) {
      // a COPY or cursor cut short leaves the connection in no state to reuse
      client.release(failure);
    } else {
      await client.query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', lock).catch(() => undefined);
      client.release();
    }
  }
}

// ————————————————————————————————————————— the view's columns

/** How a column travels: the SQL that reads it for each format, and its Parquet schema. */
type ColumnKind = 'int32' | 'int64' | 'double' | 'boolean' | 'date' | 'timestamp' | 'timestamptz' | 'geometry' | 'bytes' | 'text';

export interface ViewColumn {
  name: string;
  type: string;
  kind: ColumnKind;
  /** Geometry: the SRID the column's type fixes (0 when it fixes none). */
  srid?: number;
}

const KINDS: Record<string, ColumnKind> = {
  int2: 'int32',
  int4: 'int32',
  int8: 'int64',
  float4: 'double',
  float8: 'double',
  numeric: 'double',
  bool: 'boolean',
  date: 'date',
  timestamp: 'timestamp',
  timestamptz: 'timestamptz',
  geometry: 'geometry',
  bytea: 'bytes',
};

async function describeView(client: pg.PoolClient, project: string, view: string): Promise<ViewColumn[]> {
  const { rows } = await client.query<{ name: string; type: string; base: string; srid: number | null }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, coalesce(b.typname, t.typname) AS base,
            CASE WHEN coalesce(b.typname, t.typname) = 'geometry' THEN postgis_typmod_srid(a.atttypmod) END AS srid
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
      WHERE a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [project, view],
  );
  if (rows.length === 0) throw new Error(`view ${project}.${view} does not exist (any more)`);
  return rows.map((r) => ({ name: r.name, type: r.type, kind: KINDS[r.base] ?? 'text', ...(r.srid !== null ? { srid: Math.max(0, r.srid) } : {}) }));
}

function manifestColumn(c: ViewColumn): ManifestColumn {
  const element = schemaElement(c);
  const logical = element.logical_type
    ? `${element.logical_type.type}${element.logical_type.unit ? `(${element.logical_type.unit}, ${element.logical_type.isAdjustedToUTC ? 'UTC' : 'local'})` : ''}`
    : undefined;
  return {
    name: c.name,
    type: c.type,
    parquet: logical ? `${element.type} ${logical}` : element.type!,
    ...(c.kind === 'geometry' ? { csv: 'WKT' } : c.kind === 'boolean' ? { csv: 'true/false' } : c.kind === 'text' ? { csv: CSV_TEXT } : {}),
  };
}

// ————————————————————————————————————————— CSV

const CSV_CONTENT_TYPE = 'text/csv; charset=utf-8; header=present';

/** How the manifest describes a text column's CSV form. */
const CSV_TEXT = "quoted; a ' before a cell starting with = + - @ tab or CR";

/**
 * COPY the view as CSV into `sink` (which it ends); resolves to the number of rows. Text cells are
 * made safe to open in a spreadsheet ({@link csvExpression}) and always quoted (`FORCE_QUOTE`), as
 * OWASP recommends against CSV injection; a header name is neutralised the same way.
 */
async function writeCsv(client: pg.PoolClient, project: string, view: string, columns: ViewColumn[], sink: Writable): Promise<number> {
  const names = columns.map((c) => ident(csvHeader(c.name)));
  const select = columns.map((c, i) => `${csvExpression(c)} AS ${names[i]}`).join(', ');
  const quoted = names.filter((_, i) => columns[i]!.kind === 'text');
  const forceQuote = quoted.length ? `, FORCE_QUOTE (${quoted.join(', ')})` : '';
  const copy = client.query(copyTo(`COPY (SELECT ${select} FROM ${ident(project)}.${ident(view)}) TO STDOUT WITH (FORMAT csv, HEADER true, ENCODING 'UTF8'${forceQuote})`));
  await pipeline(copy, crlfRecords(), sink);
  return copy.rowCount;
}

/**
 * The first characters that make a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell as a
 * formula or a DDE command — OWASP's list for CSV injection: `=`, `+`, `-`, `@`, tab and CR.
 */
export const FORMULA_START = /^[=+\-@\t\r]/;
/** A plain decimal number (`-3.5`, `+12`, `1e-3`): a spreadsheet reads it as that number, never a formula. */
export const PLAIN_NUMBER = /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/;

/**
 * A text cell as the CSV writes it: one starting with a formula character gets a leading `'`
 * (which spreadsheets take as "this is text" and do not display), unless it is a plain number.
 * The value in the database and in the Parquet file is unchanged. The SQL of
 * {@link csvExpression} does the same in the COPY.
 */
export function neutraliseCell(value: string): string {
  return FORMULA_START.test(value) && !PLAIN_NUMBER.test(value) ? `'${value}` : value;
}

/** A column name as the CSV header writes it (a view's names are the pipeline's, but may come from a supplier's file). */
export function csvHeader(name: string): string {
  return neutraliseCell(name);
}

/**
 * The SQL that reads a column for the CSV. Text-typed columns (text, varchar, and any type written
 * as its text form, such as json or uuid) are neutralised against formula injection; numbers,
 * booleans, dates and timestamps are written as PostgreSQL writes them, so `-3.5` in a numeric
 * column stays a number.
 */
export function csvExpression(c: ViewColumn): string {
  const q = ident(c.name);
  if (c.kind === 'geometry') return `ST_AsText(${q})`;
  if (c.kind === 'boolean') return `CASE WHEN ${q} THEN 'true' WHEN NOT ${q} THEN 'false' END`;
  if (c.kind === 'text') {
    // the cheap first-character test first: the regular expression runs only on the few cells it lets through
    const t = `${q}::text`;
    return `CASE WHEN left(${t}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') AND ${t} !~ '${PLAIN_NUMBER.source}' THEN '''' || ${t} ELSE ${t} END`;
  }
  return q;
}

/**
 * PostgreSQL ends CSV records with LF; RFC 4180 wants CRLF. A line feed outside quotes ends a
 * record and becomes CRLF; inside a quoted field it is data and stays as it is. (Quotes inside a
 * field are doubled, so counting them is enough to know where we are.)
 */
export function crlfRecords(): Transform {
  let quoted = false;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      const parts: Buffer[] = [];
      let from = 0;
      for (let i = 0; i < chunk.length; i++) {
        const byte = chunk[i];
        if (byte === 0x22) quoted = !quoted;
        else if (byte === 0x0a && !quoted) {
          parts.push(chunk.subarray(from, i), CRLF);
          from = i + 1;
        }
      }
      if (from === 0) return done(null, chunk);
      parts.push(chunk.subarray(from));
      done(null, Buffer.concat(parts));
    },
  });
}

const CRLF = Buffer.from('\r\n');

/** Export files go up a few parts at a time: at most 2 × 8 MiB of a file in memory. */
const EXPORT_PARTS = { queueSize: 2, partSize: 8 * 1024 * 1024 };

// ————————————————————————————————————————— Parquet

const PARQUET_CONTENT_TYPE = 'application/vnd.apache.parquet';

/** The package that writes Parquet (pure JavaScript, no native code): hyparquet-writer 0.17.0. */
const PARQUET_PACKAGE = 'hyparquet-writer';

/** A Parquet schema element (hyparquet's `SchemaElement`, the Thrift structure). */
export interface SchemaElement {
  name: string;
  type?: 'BOOLEAN' | 'INT32' | 'INT64' | 'DOUBLE' | 'BYTE_ARRAY';
  repetition_type?: 'REQUIRED' | 'OPTIONAL';
  num_children?: number;
  converted_type?: 'UTF8' | 'DATE' | 'TIMESTAMP_MICROS';
  logical_type?: { type: 'STRING' | 'DATE' | 'TIMESTAMP'; isAdjustedToUTC?: boolean; unit?: 'MICROS' };
}

/** hyparquet-writer's byte sink: an auto-growing buffer that `flush` may empty (`index` back to 0). */
export interface ByteWriter {
  index: number;
  getBytes(): Uint8Array;
  flush?(): void | Promise<void>;
  finish(): void | Promise<void>;
}

/**
 * As much of hyparquet-writer as the export uses: its incremental writer. `write` encodes its
 * rows as row groups then calls the sink's `flush`; `finish` writes the footer then calls `finish`.
 */
export interface ParquetLibrary {
  ByteWriter: new () => ByteWriter;
  ParquetWriter: new (options: {
    writer: ByteWriter;
    schema: SchemaElement[];
    codec?: 'SNAPPY';
    statistics?: boolean;
    /** Read when the footer is written (`finish`), so entries pushed until then are kept. */
    kvMetadata?: { key: string; value: string }[];
    createdBy?: string;
  }) => {
    write(options: { columnData: { name: string; data: unknown[] }[]; rowGroupSize: number }): void | Promise<void>;
    finish(): void | Promise<void>;
  };
}

/** hyparquet-writer, bundled with the function (a literal import, so esbuild includes it). */
async function parquetLibrary(): Promise<ParquetLibrary> {
  return (await import('hyparquet-writer')) as unknown as ParquetLibrary;
}

/** The Parquet schema element of a column: every column OPTIONAL (views say nothing of NOT NULL). */
export function schemaElement(c: ViewColumn): SchemaElement {
  const base = { name: c.name, repetition_type: 'OPTIONAL' as const };
  switch (c.kind) {
    case 'int32':
      return { ...base, type: 'INT32' };
    case 'int64':
      return { ...base, type: 'INT64' };
    case 'double':
      return { ...base, type: 'DOUBLE' };
    case 'boolean':
      return { ...base, type: 'BOOLEAN' };
    case 'date':
      return { ...base, type: 'INT32', converted_type: 'DATE', logical_type: { type: 'DATE' } };
    case 'timestamp':
      // wall-clock time: no converted type, which would claim UTC
      return { ...base, type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'MICROS' } };
    case 'timestamptz':
      return { ...base, type: 'INT64', converted_type: 'TIMESTAMP_MICROS', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' } };
    case 'geometry':
    case 'bytes':
      return { ...base, type: 'BYTE_ARRAY' };
    case 'text':
      return { ...base, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } };
  }
}

/**
 * The SQL that reads a column for Parquet, in the form its physical type wants: days since
 * 1970 for dates, microseconds since 1970 for timestamps (wall clock for `timestamp`), ISO WKB
 * for geometry (an M ordinate dropped: GeoParquet has none), text for anything without a
 * Parquet type of its own. Infinite dates and timestamps become NULL.
 */
export function parquetExpression(c: ViewColumn): string {
  const q = ident(c.name);
  switch (c.kind) {
    case 'date':
      return `CASE WHEN isfinite(${q}) THEN ${q} - DATE '1970-01-01' END`;
    case 'timestamp':
    case 'timestamptz':
      return `CASE WHEN isfinite(${q}) THEN (extract(epoch FROM ${q}) * 1000000)::int8 END`;
    case 'geometry':
      return `ST_AsBinary(CASE ST_Zmflag(${q}) WHEN 1 THEN ST_Force2D(${q}) WHEN 3 THEN ST_Force3DZ(${q}) ELSE ${q} END)`;
    case 'text':
      return `${q}::text`;
    default:
      return q;
  }
}

/** What node-postgres hands back for the expression → the value hyparquet-writer wants. */
function parquetValue(kind: ColumnKind, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (kind) {
    case 'int64':
    case 'timestamp':
    case 'timestamptz':
      return BigInt(v as string);
    case 'double':
      return typeof v === 'number' ? v : Number(v);
    default:
      return v;
  }
}

/**
 * About what a value costs on the V8 heap while its row group is gathered (measured roughly:
 * a small Buffer is an object of its own, a string two bytes a character at worst).
 */
function heapBytes(value: unknown): number {
  if (typeof value === 'string') return 16 + 2 * value.length;
  if (value instanceof Uint8Array) return 96 + value.length;
  return 16;
}

/** Geometry statistics read beside each geometry, for the GeoParquet metadata. */
const GEOMETRY_STATS = 7;
function geometryStatsSql(c: ViewColumn): string {
  const q = ident(c.name);
  return [`ST_GeometryType(${q})`, `ST_Zmflag(${q})`, `ST_XMin(${q}::box3d)`, `ST_YMin(${q}::box3d)`, `ST_XMax(${q}::box3d)`, `ST_YMax(${q}::box3d)`, `ST_SRID(${q})`].join(', ');
}

/** What the geometries of one column have shown so far. */
class GeometryStats {
  readonly types = new Set<string>();
  readonly srids = new Set<number>();
  unknownType = false;
  bbox: [number, number, number, number] | undefined;

  add(row: unknown[], at: number): void {
    const [type, zm, xmin, ymin, xmax, ymax, srid] = row.slice(at, at + GEOMETRY_STATS) as [string | null, number | null, number | null, number | null, number | null, number | null, number | null];
    if (type === null) return;
    const name = GEOPARQUET_TYPES[type];
    if (name) this.types.add(zm === 2 || zm === 3 ? `${name} Z` : name);
    else this.unknownType = true;
    if (srid !== null) this.srids.add(srid);
    if (xmin === null || ymin === null || xmax === null || ymax === null) return;
    const b = this.bbox;
    this.bbox = b ? [Math.min(b[0], xmin), Math.min(b[1], ymin), Math.max(b[2], xmax), Math.max(b[3], ymax)] : [xmin, ymin, xmax, ymax];
  }
}

/** PostGIS `ST_GeometryType` → the GeoParquet name; other types (curves, TINs) are not listed. */
const GEOPARQUET_TYPES: Record<string, string> = {
  ST_Point: 'Point',
  ST_LineString: 'LineString',
  ST_Polygon: 'Polygon',
  ST_MultiPoint: 'MultiPoint',
  ST_MultiLineString: 'MultiLineString',
  ST_MultiPolygon: 'MultiPolygon',
  ST_GeometryCollection: 'GeometryCollection',
};

/** The summary of a geometry column, and its GeoParquet column metadata. */
export function geometryColumn(
  column: ViewColumn,
  stats: { types: Set<string>; srids: Set<number>; unknownType: boolean; bbox?: [number, number, number, number] },
): {
  summary: GeometrySummary;
  geo: Record<string, unknown>;
} {
  const observed = [...stats.srids];
  // one SRID, seen in the rows or (for no rows) fixed by the column's type; 0 means none
  const srid = (observed.length === 1 ? observed[0] : observed.length === 0 ? column.srid : undefined) || null;
  const types = stats.unknownType ? [] : [...stats.types].sort();
  const geo: Record<string, unknown> = { encoding: 'WKB', geometry_types: types };
  if (stats.bbox) geo.bbox = stats.bbox;
  let crs: string | null;
  if (srid === 4326) {
    // GeoParquet's default CRS, OGC:CRS84, is WGS 84 longitude/latitude: PostGIS's 4326 order
    crs = 'OGC:CRS84';
  } else {
    const definition = srid ? projjson(srid) : undefined;
    // null: "unknown", which is honest; a partial PROJJSON would make readers fail
    geo.crs = definition ?? null;
    crs = srid ? `EPSG:${srid}` : null;
    if (!definition) logger.warn('geometry exported without a CRS readers can resolve', { column: column.name, srids: observed, hint: 'add its PROJJSON to functions/combine/projjson.ts' });
  }
  return {
    summary: { column: column.name, srid, crs, types, ...(stats.bbox ? { bbox: stats.bbox } : {}) },
    geo,
  };
}

/**
 * Write the view as Parquet into `sink` (which it ends): a cursor in the export's snapshot,
 * FETCHed in batches into column arrays; a row group is written, and its bytes uploaded, once it
 * holds `rowGroupRows` rows or about `rowGroupBytes` bytes of values — so memory holds one row
 * group, whatever the view's size. Geometry columns get GeoParquet `geo` metadata.
 */
async function writeParquet(
  lib: ParquetLibrary,
  client: pg.PoolClient,
  limits: ExportLimits,
  project: string,
  view: string,
  columns: ViewColumn[],
  sink: Writable,
): Promise<{ rows: number; geometry: GeometrySummary[] }> {
  const geometryColumns = columns.filter((c) => c.kind === 'geometry');
  const select = [...columns.map((c) => `${parquetExpression(c)} AS ${ident(c.name)}`), ...geometryColumns.map(geometryStatsSql)].join(', ');
  const kvMetadata: { key: string; value: string }[] = [];
  const writer = streamingWriter(lib, sink);
  const parquet = new lib.ParquetWriter({
    writer,
    schema: [{ name: 'schema', num_children: columns.length }, ...columns.map(schemaElement)],
    codec: 'SNAPPY',
    statistics: true,
    kvMetadata,
    createdBy: 'civic-etl (hyparquet-writer)',
  });
  const stats = geometryColumns.map(() => new GeometryStats());
  let data: unknown[][] = columns.map(() => []);
  let groupRows = 0;
  let groupBytes = 0;
  let rows = 0;
  const writeGroup = async () => {
    if (groupRows === 0) return;
    await parquet.write({ columnData: columns.map((c, j) => ({ name: c.name, data: data[j]! })), rowGroupSize: groupRows });
    data = columns.map(() => []);
    groupRows = 0;
    groupBytes = 0;
  };

  await client.query(`DECLARE civic_etl_export NO SCROLL CURSOR FOR SELECT ${select} FROM ${ident(project)}.${ident(view)}`);
  for (;;) {
    const batch = await client.query<unknown[]>({ text: `FETCH ${limits.fetchRows} FROM civic_etl_export`, rowMode: 'array' });
    if (batch.rows.length === 0) break;
    for (const row of batch.rows) {
      for (let j = 0; j < columns.length; j++) {
        const value = parquetValue(columns[j]!.kind, row[j]);
        data[j]!.push(value);
        groupBytes += heapBytes(value);
      }
      stats.forEach((s, g) => s.add(row, columns.length + g * GEOMETRY_STATS));
      groupRows++;
      rows++;
      if (groupRows >= limits.rowGroupRows || groupBytes >= limits.rowGroupBytes) await writeGroup();
    }
  }
  await client.query('CLOSE civic_etl_export');
  await writeGroup();

  const geometry = geometryColumns.map((c, g) => geometryColumn(c, stats[g]!));
  if (geometry.length > 0) {
    const geo = {
      version: '1.1.0',
      primary_column: geometryColumns[0]!.name,
      columns: Object.fromEntries(geometry.map((g) => [g.summary.column, g.geo])),
    };
    kvMetadata.push({ key: 'geo', value: JSON.stringify(geo) });
  }
  await parquet.finish();
  return { rows, geometry: geometry.map((g) => g.summary) };
}

/**
 * A hyparquet-writer ByteWriter whose bytes go to `out`: after each row group (`flush`) the
 * buffer is copied out and emptied, waiting for `out` to drain; `finish` ends `out`.
 */
function streamingWriter(lib: ParquetLibrary, out: Writable): ByteWriter {
  const writer = new lib.ByteWriter();
  if (typeof writer.index !== 'number') throw new Error(`${PARQUET_PACKAGE}: ByteWriter has no index to empty; the export needs version 0.17`);
  const drain = async () => {
    if (writer.index === 0) return;
    const chunk = Buffer.from(writer.getBytes());
    writer.index = 0;
    if (!out.write(chunk)) await once(out, 'drain');
  };
  writer.flush = drain;
  writer.finish = async () => {
    await drain();
    out.end();
    await once(out, 'finish');
  };
  return writer;
}

// ————————————————————————————————————————— S3

// ————————————————————————————————————————— lineage

/** The loads whose rows the view's datasets hold, in the export's snapshot. */
async function sourceLoadsOf(client: pg.PoolClient, project: string, datasets: readonly string[]): Promise<SourceLoads[]> {
  const out: SourceLoads[] = [];
  for (const dataset of datasets) {
    const { rowCount: hasLineage } = await client.query(`SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND attname = '_load_id' AND NOT attisdropped`, [
      project,
      dataset,
    ]);
    if (!hasLineage) {
      out.push({ dataset, loads: 0, latest: [] });
      continue;
    }
    const { rows } = await client.query<{ total: string; latest: { id: number; object_key: string; object_version: string; finished_at: string | null }[] }>(
      `WITH ids AS (SELECT DISTINCT _load_id AS id FROM ${ident(project)}.${ident(dataset)})
       SELECT (SELECT count(*) FROM ids) AS total,
              (SELECT coalesce(json_agg(l ORDER BY l.id DESC), '[]')
                 FROM (SELECT id, object_key, object_version, finished_at FROM etl.loads JOIN ids USING (id) ORDER BY id DESC LIMIT 100) l) AS latest`,
    );
    out.push({
      dataset,
      loads: Number(rows[0]!.total),
      latest: rows[0]!.latest.map((l) => ({
        loadId: Number(l.id),
        objectKey: l.object_key,
        objectVersion: l.object_version,
        loadedAt: l.finished_at && new Date(l.finished_at).toISOString(),
      })),
    });
  }
  return out;
}
