import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { routeObjectKey, ZONES } from '../../contract/names.ts';
import { ident, type Queryable } from './db.ts';
import { messageOf } from './errors.ts';
import type { LoadRowJson, LoadStatus } from './ledger.ts';
import { logger } from './logger.ts';
import { REPORT_TEXT, reportLanguage } from './report-text.ts';
import { describeChange, type SchemaChange } from './schema-change.ts';
import type { Geometry } from './svg.ts';

/** Example lines kept per rule: enough to see the pattern, few enough to read. */
export const REPORT_EXAMPLES = 5;
/** Columns listed per rule (the most affected first). */
export const REPORT_COLUMNS = 10;
/** Raw values and reasons are cut to this many characters: one bad cell must not make a huge report. */
export const REPORT_VALUE_CHARS = 200;
/** Unmapped values listed per column in a report (value-maps.ts keeps up to 20 in the ledger). */
export const REPORT_UNMAPPED_VALUES = 10;

/** One quarantined value, as a supplier can find it in the file. */
export interface ReportExample {
  /** Line of the file (1-based, header included) — for spreadsheets the row, for JSON the record. */
  line: number;
  column: string;
  /** The value as it was in the file, cut to {@link REPORT_VALUE_CHARS}; null when empty. */
  value: string | null;
  reason: string;
}

/** What one rule (type, required, unique, map, schema, range, …) set aside. */
export interface RuleReport {
  rule: string;
  /** Values that failed the rule (a row can fail it in several columns). */
  values: number;
  /** Distinct rows with at least one such value. */
  rows: number;
  /** Values per column, the most affected first (at most {@link REPORT_COLUMNS}). */
  columns: { column: string; values: number }[];
  /** The first few, in file order (at most {@link REPORT_EXAMPLES}). */
  examples: ReportExample[];
}

/** A mapped column's values that its value map lacked (from `etl.loads.unmapped`). */
export interface UnmappedColumn {
  column: string;
  map?: string;
  /** keep, null or quarantine: what happened to the rows. */
  policy?: string;
  rows?: number;
  distinct?: number;
  values: { value: string; rows: number }[];
}

/** The quality report of one finished load: what the ledger keeps in `etl.loads.report`. */
export interface LoadReport {
  loadId: number;
  project: string;
  dataset: string | null;
  bucket: string;
  objectKey: string;
  objectVersion: string;
  /** ISO 8601. */
  receivedAt: string;
  finishedAt: string | null;
  status: LoadStatus;
  rows: { read: number | null; loaded: number | null; quarantined: number | null };
  /** Per rule, the rule that set aside the most rows first; empty when nothing was quarantined. */
  byRule: RuleReport[];
  unmapped?: UnmappedColumn[];
  schemaChanges?: SchemaChange[];
  /**
   * What reading the file noticed and decided (the stage step's warnings): lines repeating the
   * header or notes under the table skipped, the sheet chosen, missing-value markers read as empty…
   */
  readNotes?: string[];
  /** A failed load's error, where it is in the file; a skipped load's reason (no position). */
  error?: { message: string; file: string; line: number | null; column: string | null };
  /**
   * A load not finished whose last attempt failed (common/errors.ts): retryable (it will be
   * retried), exhausted (its message went to the DLQ: redrive it) or blocked (the definition must
   * change first). The error itself is in `error`.
   */
  waiting?: { kind: 'retryable' | 'exhausted' | 'blocked'; step: string | null; attempts: number; lastAttemptAt: string | null };
  /** A replay: the load it replays. */
  replayOf?: number;
  /** What the object declared (contract/objects.ts), or what an upload is taken for; rows a deletions object removed. */
  contract?: { replaces: string; holds: string; run?: string; resource?: string; deleted?: number };
  /** Where the supplier's copy was written (`reports/<supplier>/<dataset>/<file>.report.json`), once it was. */
  supplierCopy?: string;
  /**
   * The HTML page beside it (`….report.html`) once it was written; or why it could not be (the
   * JSON and text copies stand): `civic-etl status` shows either.
   */
  supplierPage?: { key: string; error?: string };
  /**
   * A geometry dataset's set-aside rows whose location could be read, gathered by the clean step
   * while their staged rows still existed (clean/rejected-geometries.ts), for the HTML report's
   * map: how many, and a sample in lon/lat with their lines. Not in the JSON copy.
   */
  rejectedGeometries?: RejectedGeometries;
}

/** Set-aside rows with a readable location: how many, and a sample (lon/lat, 5 decimals) with their lines. */
export interface RejectedGeometries {
  readable: number;
  sample: { line: number; geometry: Geometry }[];
}

/**
 * The copy a supplier reads: its own file's report without what only the operator needs (the
 * project, the bucket, where copies go). Everything in it comes from this one load of this one
 * supplier's upload: the examples and unmapped values are its own data.
 */
export type SupplierReport = Omit<LoadReport, 'project' | 'bucket' | 'supplierCopy' | 'supplierPage'> & { report: 'civic-etl load quality report'; version: 1 };

/** The ledger row a report is made of, read as JSON. */
type LedgerFields = Omit<LoadRowJson, 'report'> & { report: LoadReport | null };

async function ledgerFields(db: Queryable, loadId: number): Promise<LedgerFields | undefined> {
  const { rows } = await db.query<{ row: LedgerFields }>('SELECT to_jsonb(l) AS row FROM etl.loads l WHERE l.id = $1', [loadId]);
  return rows[0]?.row;
}

/**
 * Build the report of a load from the ledger and, when the load quarantined rows, from its
 * quarantine table (`<project>.<dataset>_quarantine`, or the one given). Counts and examples are
 * computed in PostgreSQL: a load with a million quarantined values costs one grouped scan of
 * them and one short index scan per rule for the examples. Works on any load; a load still in
 * progress gets a report of what is known so far.
 */
export async function buildLoadReport(db: Queryable, loadId: number, opts: { quarantine?: string } = {}): Promise<LoadReport | undefined> {
  const row = await ledgerFields(db, loadId);
  if (!row) return undefined;
  const report: LoadReport = {
    loadId: Number(row.id),
    project: row.project,
    dataset: row.dataset,
    bucket: row.bucket,
    objectKey: row.object_key,
    objectVersion: row.object_version,
    receivedAt: isoTime(row.received_at)!,
    finishedAt: isoTime(row.finished_at),
    status: row.status,
    rows: { read: numberOrNull(row.rows_read), loaded: numberOrNull(row.rows_loaded), quarantined: numberOrNull(row.rows_quarantined) },
    byRule: [],
  };
  const quarantine = opts.quarantine ?? (row.dataset ? `${ident(row.project)}.${ident(`${row.dataset}_quarantine`)}` : undefined);
  if (quarantine && row.status !== 'failed' && Number(row.rows_quarantined ?? 0) > 0) report.byRule = await quarantinedByRule(db, quarantine, report.loadId);
  const unmapped = unmappedColumns(row.unmapped);
  if (unmapped.length > 0) report.unmapped = unmapped;
  if (row.schema_changes?.length) report.schemaChanges = row.schema_changes;
  const warnings = row.detected?.warnings;
  if (Array.isArray(warnings) && warnings.length > 0) report.readNotes = warnings.filter((w): w is string => typeof w === 'string').map((w) => cut(w, 500)!);
  if (row.error && (row.status === 'failed' || row.status === 'skipped')) {
    report.error = {
      message: cut(row.error, 2000)!,
      file: row.object_key,
      line: row.status === 'failed' ? numberOrNull(row.error_line) : null,
      column: row.status === 'failed' ? row.error_column : null,
    };
  }
  if (row.error && (row.status === 'received' || row.status === 'staged') && row.error_kind && row.error_kind !== 'permanent') {
    report.waiting = { kind: row.error_kind, step: row.error_step ?? null, attempts: Number(row.attempts ?? 1), lastAttemptAt: isoTime(row.last_attempt_at) };
    report.error = { message: cut(row.error, 2000)!, file: row.object_key, line: null, column: null };
  }
  if (row.replay_of !== null && row.replay_of !== undefined) report.replayOf = Number(row.replay_of);
  if (row.replaces && row.holds) {
    const deleted = row.detected?.deleted;
    report.contract = {
      replaces: row.replaces,
      holds: row.holds,
      ...(row.run ? { run: row.run } : {}),
      ...(row.resource ? { resource: row.resource } : {}),
      ...(typeof deleted === 'number' ? { deleted } : {}),
    };
  }
  return report;
}

/**
 * Build the report and keep it in the ledger (`etl.loads.report`), on the caller's transaction:
 * the clean step calls it just before its commit, so the report and the load it describes are
 * committed together.
 */
export async function storeLoadReport(db: Queryable, loadId: number, opts: { quarantine?: string; rejectedGeometries?: RejectedGeometries } = {}): Promise<LoadReport | undefined> {
  const report = await buildLoadReport(db, loadId, opts);
  if (report && opts.rejectedGeometries) report.rejectedGeometries = opts.rejectedGeometries;
  if (report) await db.query('UPDATE etl.loads SET report = $2::jsonb WHERE id = $1', [loadId, JSON.stringify(report)]);
  return report;
}

/** The stored report of a load, or one built now (loads finished before reports existed, loads in progress). */
export async function reportOf(db: Queryable, loadId: number): Promise<LoadReport | undefined> {
  const row = await ledgerFields(db, loadId);
  if (row?.report) return row.report;
  return row ? buildLoadReport(db, loadId) : undefined;
}

async function quarantinedByRule(db: Queryable, quarantine: string, loadId: number): Promise<RuleReport[]> {
  const exists = await db.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [quarantine]);
  if (!exists.rows[0]?.ok) return [];
  // one pass: totals per rule (column_name NULL) and per rule and column
  const counts = await db.query<{ rule: string; column_name: string | null; values: string; rows: string; whole: boolean }>(
    `SELECT rule, column_name, count(*) AS values, count(DISTINCT source_line) AS rows, GROUPING(column_name) = 1 AS whole
       FROM ${quarantine} WHERE load_id = $1
      GROUP BY GROUPING SETS ((rule), (rule, column_name))`,
    [loadId],
  );
  // the first few of each rule in file order: the (load_id, source_line) index stops each early
  const examples = await db.query<{ rule: string; line: string; column_name: string; value: string | null; reason: string }>(
    `SELECT r.rule, e.source_line AS line, e.column_name, e.value, e.reason
       FROM (SELECT DISTINCT rule FROM ${quarantine} WHERE load_id = $1) r
       CROSS JOIN LATERAL (
         SELECT q.source_line, q.column_name, left(q.raw_value, ${REPORT_VALUE_CHARS + 1}) AS value, left(q.reason, ${REPORT_VALUE_CHARS * 2 + 1}) AS reason
           FROM ${quarantine} q WHERE q.load_id = $1 AND q.rule = r.rule
          ORDER BY q.source_line, q.column_name LIMIT ${REPORT_EXAMPLES}) e
      ORDER BY r.rule, e.source_line, e.column_name`,
    [loadId],
  );
  const rules = new Map<string, RuleReport>();
  for (const c of counts.rows.filter((c) => c.whole)) rules.set(c.rule, { rule: c.rule, values: Number(c.values), rows: Number(c.rows), columns: [], examples: [] });
  for (const c of counts.rows.filter((c) => !c.whole)) rules.get(c.rule)?.columns.push({ column: c.column_name ?? '', values: Number(c.values) });
  for (const e of examples.rows) {
    rules.get(e.rule)?.examples.push({ line: Number(e.line), column: e.column_name, value: cut(e.value, REPORT_VALUE_CHARS), reason: cut(e.reason, REPORT_VALUE_CHARS * 2)! });
  }
  for (const r of rules.values()) r.columns = r.columns.sort((a, b) => b.values - a.values || a.column.localeCompare(b.column)).slice(0, REPORT_COLUMNS);
  return [...rules.values()].sort((a, b) => b.rows - a.rows || b.values - a.values || a.rule.localeCompare(b.rule));
}

/** `etl.loads.unmapped` (value maps) as the report lists it, whatever shape details it grows; values cut. */
function unmappedColumns(json: unknown): UnmappedColumn[] {
  if (!Array.isArray(json)) return [];
  return json
    .filter((u): u is Record<string, unknown> => typeof u === 'object' && u !== null && typeof (u as { column?: unknown }).column === 'string')
    .map((u) => ({
      column: String(u.column),
      ...(typeof u.map === 'string' ? { map: u.map } : {}),
      ...(typeof u.policy === 'string' ? { policy: u.policy } : {}),
      ...(typeof u.rows === 'number' ? { rows: u.rows } : {}),
      ...(typeof u.distinct === 'number' ? { distinct: u.distinct } : {}),
      values: (Array.isArray(u.values) ? (u.values as { value?: unknown; rows?: unknown }[]) : [])
        .slice(0, REPORT_UNMAPPED_VALUES)
        .map((v) => ({ value: cut(String(v.value ?? ''), REPORT_VALUE_CHARS)!, rows: Number(v.rows ?? 0) })),
    }));
}

// ---------------------------------------------------------------------------------------------
// The supplier's copy

/**
 * Where a supplier finds the report of its upload `incoming/<supplier>/<dataset>/<file>`:
 * `reports/<supplier>/<dataset>/<file>.report.json`, `.report.txt` and `.report.html`, under a prefix only that
 * supplier may read (lib/landing-bucket.ts). Outside `reports/`, so writing it stages nothing.
 * `undefined` for fetched data (`raw/…`): it has no supplier to tell.
 */
export function supplierReportKeys(objectKey: string): { json: string; text: string; html: string; supplier: string; dataset: string } | undefined {
  const route = routeObjectKey(objectKey);
  if (route?.zone !== 'incoming') return undefined;
  const file = objectKey.slice(`${ZONES.incoming}${route.supplier}/${route.dataset}/`.length);
  const base = `${ZONES.reports}${route.supplier}/${route.dataset}/${file}`;
  return { json: `${base}.report.json`, text: `${base}.report.txt`, html: `${base}.report.html`, supplier: route.supplier, dataset: route.dataset };
}

/**
 * The supplier's copy of a report: field by field (a field added to LoadReport later stays out
 * until it is added here), in reading order, without what only the operator needs (project,
 * bucket, where copies go), the error message without credentials.
 */
export function supplierCopy(report: LoadReport): SupplierReport {
  return {
    report: 'civic-etl load quality report',
    version: 1,
    loadId: report.loadId,
    dataset: report.dataset,
    objectKey: report.objectKey,
    objectVersion: report.objectVersion,
    receivedAt: report.receivedAt,
    finishedAt: report.finishedAt,
    status: report.status,
    rows: report.rows,
    byRule: report.byRule,
    ...(report.unmapped ? { unmapped: report.unmapped } : {}),
    ...(report.schemaChanges ? { schemaChanges: report.schemaChanges } : {}),
    ...(report.readNotes ? { readNotes: report.readNotes.map(withoutCredentials) } : {}),
    ...(report.error ? { error: { ...report.error, message: withoutCredentials(report.error.message) } } : {}),
    ...(report.replayOf !== undefined ? { replayOf: report.replayOf } : {}),
  };
}

/**
 * A message as a supplier may read it: connection strings lose their user and password, and
 * `password=…`/`secret=…`/`token=…` settings their value. Error messages name files and lines,
 * not credentials, but a driver error could quote a connection string; this is the last guard.
 */
export function withoutCredentials(message: string): string {
  return message
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+(?::[^\s/@]*)?@/gi, '$1***@')
    .replace(/\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key(?:[_-]?id)?|secret[_-]?access[_-]?key)(\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi, '$1$2***');
}

export interface PublishDeps {
  pool: pg.Pool;
  s3: S3Client;
  /**
   * The pipeline: the HTML report is in the supplier's `language` (English when none), and a
   * declared column's histogram is found by its `source` header.
   */
  pipeline?: {
    suppliers?: readonly { name: string; language?: string | undefined }[];
    datasets?: readonly { name: string; clean?: { columns?: readonly { name: string; source?: string | undefined }[] } | undefined }[];
  };
}

/**
 * Write the supplier's copy of a load's report (JSON, a short text, and the HTML page in the
 * supplier's language: report-html.ts) beside its upload, and
 * note where in the ledger's report. Called after the load's transaction committed: it never
 * throws — a report that cannot be written is logged and the load stays as committed.
 * With `unlessWritten`, a copy already written is not written again (a redelivered message).
 * Returns the JSON key, or undefined (no supplier upload, no report, already written, or the write failed).
 */
export async function publishSupplierReport(deps: PublishDeps, loadId: number, opts: { unlessWritten?: boolean } = {}): Promise<string | undefined> {
  try {
    const report = await reportOf(deps.pool, loadId);
    if (!report || !['loaded', 'failed', 'skipped'].includes(report.status)) return undefined;
    if (opts.unlessWritten && report.supplierCopy) return undefined;
    const keys = supplierReportKeys(report.objectKey);
    if (!keys) return undefined;
    const copy = supplierCopy(report);
    const file = report.objectKey.split('/').at(-1)!;
    await deps.s3.send(new PutObjectCommand({ Bucket: report.bucket, Key: keys.json, Body: `${JSON.stringify(copy, null, 2)}\n`, ContentType: 'application/json' }));
    await deps.s3.send(new PutObjectCommand({ Bucket: report.bucket, Key: keys.text, Body: reportSummary(copy, `${file}.report.json`), ContentType: 'text/plain; charset=utf-8' }));
    const htmlError = await publishHtmlReport(deps, report, keys);
    const supplierPage = { key: keys.html, ...(htmlError ? { error: htmlError } : {}) };
    await deps.pool.query(`UPDATE etl.loads SET report = jsonb_set(jsonb_set(report, '{supplierCopy}', to_jsonb($2::text)), '{supplierPage}', $3::jsonb) WHERE id = $1 AND report IS NOT NULL`, [
      loadId,
      keys.json,
      JSON.stringify(supplierPage),
    ]);
    return keys.json;
  } catch (error) {
    logger.warn('quality report not written back to the supplier', { loadId, error: messageOf(error) });
    return undefined;
  }
}

/**
 * The HTML page of a load's report (report-page.ts gathers it, report-html.ts draws it) as its
 * supplier reads it: in the supplier's `language` unless `language` names another, a declared
 * column's histogram found by its `source` header. What `….report.html` holds, and what the
 * console shows for a load.
 */
export async function supplierReportPage(db: Queryable, report: LoadReport, pipeline: PublishDeps['pipeline'], language?: string | null): Promise<string> {
  const supplier = supplierReportKeys(report.objectKey)?.supplier;
  const lang = reportLanguage(language ?? pipeline?.suppliers?.find((s) => s.name === supplier)?.language);
  const declared = pipeline?.datasets?.find((d) => d.name === report.dataset)?.clean?.columns ?? [];
  const cleanNames = Object.fromEntries(declared.map((c) => [c.source ?? c.name, c.name]));
  // loaded when a page is made, not at every cold start: fetched data (no supplier) never needs it
  const [{ gatherReportPage }, { renderReportPage }] = await Promise.all([import('./report-page.ts'), import('./report-html.ts')]);
  return renderReportPage(await gatherReportPage(db, report, lang, { cleanNames }));
}

/**
 * The HTML page of the report, written beside the upload. A page that cannot be
 * made or written is logged and its error returned (the ledger keeps it); the JSON and text copies stand.
 */
async function publishHtmlReport(deps: PublishDeps, report: LoadReport, keys: { html: string }): Promise<string | undefined> {
  try {
    const page = await supplierReportPage(deps.pool, report, deps.pipeline);
    await deps.s3.send(new PutObjectCommand({ Bucket: report.bucket, Key: keys.html, Body: page, ContentType: 'text/html; charset=utf-8' }));
    return undefined;
  } catch (error) {
    logger.warn('HTML quality report not written back to the supplier', { loadId: report.loadId, key: keys.html, error: messageOf(error) });
    return withoutCredentials(messageOf(error)).slice(0, 500);
  }
}

/**
 * For the stage step: a load (or an archive's members) that failed there gets its report too —
 * in the ledger, and beside the upload. Call after stageObject; loads that did not fail (or
 * already have a report) are left alone. Never throws.
 */
export async function reportStageFailures(deps: PublishDeps, loadId: number): Promise<string[]> {
  const written: string[] = [];
  try {
    const { rows } = await deps.pool.query<{ id: string }>(`SELECT id FROM etl.loads WHERE (id = $1 OR parent_id = $1) AND status = 'failed' AND report IS NULL ORDER BY id`, [loadId]);
    for (const { id } of rows) {
      await storeLoadReport(deps.pool, Number(id));
      const key = await publishSupplierReport(deps, Number(id));
      if (key) written.push(key);
    }
  } catch (error) {
    logger.warn('quality report of a failed stage not recorded', { loadId, error: messageOf(error) });
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// In words

/** What each rule means, for people who have not read the pipeline definition (the HTML report's English). */
const RULE_MEANING: Record<string, string> = REPORT_TEXT.en.rule_;

const plural = (n: number, word: string, words = `${word}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? word : words}`;
/** A value in a sentence: quoted, and short (the JSON report has it at full report length). */
const quoted = (value: string | null) => (value === null ? 'empty' : JSON.stringify(cut(value, 60)));

/** The lines of a report for people: counts by rule with example lines, unmapped values, schema changes, the error. */
export function describeReport(report: LoadReport | SupplierReport, opts: { examples?: number } = {}): string[] {
  const examples = opts.examples ?? 3;
  const lines: string[] = [];
  const { read, loaded, quarantined } = report.rows;
  if (report.status === 'loaded') {
    lines.push(
      `Loaded ${(loaded ?? 0).toLocaleString('en-US')} of ${plural(read ?? 0, 'row')} read` +
        (quarantined ? `; ${plural(quarantined, 'row was', 'rows were')} set aside (quarantined), not loaded.` : '; nothing was set aside.'),
    );
  } else if (report.status === 'failed') {
    lines.push('Rejected: nothing from this file was loaded; the data loaded before stays as it was.');
  } else if (report.status === 'skipped') {
    lines.push('Not applied: a newer file of this dataset had already been loaded.');
  } else if (report.waiting) {
    const w = report.waiting;
    const at = w.lastAttemptAt ? ` at ${w.lastAttemptAt.slice(0, 19).replace('T', ' ')} UTC` : '';
    const step = w.step ? `${w.step} ` : '';
    const attempts = `${step}attempt ${w.attempts}${at}`;
    if (w.kind === 'exhausted') {
      lines.push(
        `Failed, in the ${step}dead-letter queue (${report.status}): all ${w.attempts} ${step}attempts failed, the last${at}. Fix the cause, then redrive the DLQ; nothing from this file was loaded yet.`,
      );
    } else if (w.kind === 'blocked') {
      lines.push(
        `Blocked (${report.status}): the definition must change (${attempts} failed). Once it is fixed the load is retried (redrive the DLQ if its message got there); nothing from this file was loaded yet.`,
      );
    } else if (report.error?.message.startsWith('waiting for ')) {
      // a `references` rule waiting for the referenced dataset's load (order.ts)
      lines.push(`Waiting for another load, will be retried (${report.status}): ${attempts} waited; after the queue's last attempt the message goes to the DLQ.`);
    } else {
      lines.push(`Failing, will be retried (${report.status}): ${attempts} failed; after the queue's last attempt the message goes to the DLQ.`);
    }
  } else {
    lines.push(`In progress (${report.status}).`);
  }
  const c = report.contract;
  if (c && c.holds === 'deletions') lines.push(`Deletions: ${plural(c.deleted ?? 0, 'row was', 'rows were')} removed${c.run ? ` (run ${c.run})` : ''}.`);
  else if (c && c.holds === 'keyChanges')
    lines.push(`Key changes: ${plural(c.deleted ?? 0, 'row was', 'rows were')} removed from under an old key${c.run ? ` (run ${c.run})` : ''}; the records come back under their new keys with their rows.`);
  else if (c) {
    const scope = { dataset: 'the whole dataset', run: `the whole dataset with the other parts of run ${c.run ?? '?'}`, resource: `resource ${c.resource ?? '?'}`, nothing: 'nothing: it brings changes' }[
      c.replaces
    ];
    lines.push(`This file replaces ${scope ?? c.replaces}${c.replaces === 'run' && c.resource ? ` (resource ${c.resource})` : ''}.`);
  }
  if (report.error) {
    const where = [report.error.line !== null ? `line ${report.error.line}` : '', report.error.column ? `column "${report.error.column}"` : ''].filter(Boolean).join(', ');
    lines.push(`${report.status === 'skipped' ? 'Reason' : 'Error'}${where ? ` (${where})` : ''}: ${report.error.message}`);
  }
  if (report.byRule.length > 0) {
    lines.push('Why rows were set aside:');
    for (const r of report.byRule) {
      const meaning = RULE_MEANING[r.rule];
      const columns = r.columns.map((c) => `${c.column} ${c.values.toLocaleString('en-US')}`).join(', ');
      lines.push(`  ${r.rule}${meaning ? ` (${meaning})` : ''}: ${plural(r.values, 'value')} in ${plural(r.rows, 'row')}${columns ? ` — ${columns}` : ''}`);
      for (const e of r.examples.slice(0, examples)) lines.push(`    line ${e.line}, ${e.column} = ${quoted(e.value)}: ${cut(e.reason, 120)}`);
    }
  }
  for (const u of report.unmapped ?? []) {
    const values = u.values.map((v) => `${quoted(v.value)} (${plural(v.rows, 'row')})`).join(', ');
    const policy = u.policy === 'quarantine' ? 'rows set aside' : u.policy === 'null' ? 'loaded as empty' : u.policy === 'keep' ? 'loaded as they are' : undefined;
    lines.push(
      `Not in value map${u.map ? ` "${u.map}"` : ''}: column ${u.column}${u.rows !== undefined ? `, ${plural(u.rows, 'row')}` : ''}` +
        `${u.distinct !== undefined ? `, ${plural(u.distinct, 'distinct value')}` : ''}${policy ? ` (${policy})` : ''}${values ? `: ${values}` : ''}`,
    );
  }
  if (report.readNotes?.length) {
    lines.push('How the file was read:');
    for (const w of report.readNotes) lines.push(`  ${w}`);
  }
  if (report.schemaChanges?.length) {
    lines.push('Columns that changed since the previous file:');
    for (const c of report.schemaChanges) lines.push(`  ${describeChange(c, 'report')}`);
  }
  return lines;
}

/**
 * The short text a supplier reads first (`<file>.report.txt`): which file, when, what happened,
 * why rows were set aside with an example line or two each, and what to do about it.
 */
export function reportSummary(report: LoadReport | SupplierReport, jsonName: string): string {
  const when = (iso: string | null) => (iso ? `${iso.slice(0, 16).replace('T', ' ')} UTC` : 'not yet');
  const lines = [
    `Quality report for ${report.objectKey} (version ${report.objectVersion}), dataset ${report.dataset ?? '—'}, load ${report.loadId}`,
    `Received ${when(report.receivedAt)}, finished ${when(report.finishedAt)}.`,
    ...describeReport(report, { examples: 2 }),
  ];
  if (report.status === 'failed') lines.push('Fix the file at the place named above and upload it again.');
  else if (report.byRule.length > 0 || report.unmapped?.length)
    lines.push(`Fix these rows in the source and upload the file again; every count and up to ${REPORT_EXAMPLES} example lines per rule are in ${jsonName}.`);
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// For civic-etl status

export interface DatasetLoad {
  loadId: number;
  objectKey: string;
  status: LoadStatus;
  receivedAt: string;
  report?: LoadReport;
}

/**
 * The latest loads of one dataset (archives' own rows left out: their members are the loads),
 * newest first, each with its report — stored, or built now for a load that has none.
 */
export async function datasetLoads(db: Queryable, project: string, dataset: string, limit = 5): Promise<DatasetLoad[]> {
  const { rows } = await db.query<{ id: string; object_key: string; status: LoadStatus; received_at: Date; report: LoadReport | null }>(
    `SELECT id, object_key, status, received_at, to_jsonb(l) -> 'report' AS report
       FROM etl.loads l WHERE project = $1 AND dataset = $2 AND status <> 'expanded'
      ORDER BY id DESC LIMIT $3`,
    [project, dataset, limit],
  );
  const loads: DatasetLoad[] = [];
  for (const r of rows) {
    const stored = r.report && typeof r.report === 'object' ? r.report : await buildLoadReport(db, Number(r.id));
    // the map's sample of set-aside shapes is for the HTML page, not for status
    const { rejectedGeometries: _map, ...report } = stored ?? ({} as LoadReport);
    loads.push({ loadId: Number(r.id), objectKey: r.object_key, status: r.status, receivedAt: new Date(r.received_at).toISOString(), ...(stored ? { report: report as LoadReport } : {}) });
  }
  return loads;
}

function isoTime(value: string | null | undefined): string | null {
  return value ? new Date(value).toISOString() : null;
}

function numberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** At most `max` characters, with an ellipsis when cut. */
function cut(value: string | null, max: number): string | null {
  if (value === null || value.length <= max) return value;
  // by code point (as PostgreSQL's left() counts), so a character outside the BMP is never split in half
  const chars = Array.from(value);
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : value;
}
