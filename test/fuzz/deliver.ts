/**
 * One fuzz file through the real path: uploaded as a supplier's object (moto), staged by
 * stageObject, cleaned by cleanLoad (PostgreSQL), into a dataset whose clean table holds a
 * previous load. What a user would notice is measured: the verdict and the ledger's error, the
 * previous clean table (unchanged unless the file loaded), the raw object (same bytes, same ETag,
 * still the latest version). Used by the child process (child.ts) and, after the child was killed,
 * by the parent (run.ts) to judge what the killed attempt left.
 */
import { createHash } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { parsePipeline } from '../../contract/load.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { stageObject } from '../../functions/stage/stage-object.ts';

export const FUZZ_PROJECT = 'fuzz';
export const FUZZ_DATASET = 'rows';
export const FUZZ_INPUT: PipelineInput = {
  project: FUZZ_PROJECT,
  suppliers: [{ name: 'fuzzer' }],
  datasets: [{ name: FUZZ_DATASET, source: { type: 'upload', supplier: 'fuzzer' } }],
};
export const FUZZ_PIPELINE = parsePipeline(FUZZ_INPUT);

/** The previous load every fuzz file meets: two rows, so emptying the table shows. */
export const BASELINE = 'id,name\n1,baseline one\n2,baseline two\n';

export const keyFor = (id: string, name: string) => `incoming/fuzzer/${FUZZ_DATASET}/${id}/${name}`;

export interface Uploaded {
  key: string;
  versionId?: string;
  etag?: string;
  sha256: string;
}

export type Verdict = 'loaded' | 'quarantined' | 'failed' | 'skipped' | 'threw' | 'crashed' | 'timeout' | 'memory' | 'disk';

export interface Judged {
  verdict: Verdict;
  /** The ledger's status after the attempt (`received`/`staged` left = hanging). */
  status: string | null;
  error: string | null;
  errorLine: number | null;
  errorColumn: string | null;
  rowsLoaded: number | null;
  rowsQuarantined: number | null;
  tableUnchanged: boolean;
  tableRowsBefore: number;
  tableRowsAfter: number;
  rawUnchanged: boolean;
  rawProblem?: string;
}

export async function upload(id: string, name: string, body: Buffer): Promise<Uploaded> {
  const key = keyFor(id, name);
  const out = await s3Client().send(new PutObjectCommand({ Bucket: bucketName(), Key: key, Body: body }));
  return { key, versionId: out.VersionId, etag: out.ETag?.replace(/"/g, ''), sha256: createHash('sha256').update(body).digest('hex') };
}

export const bucketName = () => {
  const bucket = process.env.FUZZ_BUCKET;
  if (!bucket) throw new Error('FUZZ_BUCKET is not set');
  return bucket;
};

/** The clean table's content: row count and a digest of every row (column order included). */
export async function fingerprint(pool: pg.Pool): Promise<{ rows: number; digest: string }> {
  const exists = (await pool.query(`SELECT to_regclass($1) AS t`, [`"${FUZZ_PROJECT}"."${FUZZ_DATASET}"`])).rows[0].t;
  if (!exists) return { rows: 0, digest: 'absent' };
  const cols = (
    await pool.query(`SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position) AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, [
      FUZZ_PROJECT,
      FUZZ_DATASET,
    ])
  ).rows[0].c as string;
  const r = (await pool.query(`SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS h FROM "${FUZZ_PROJECT}"."${FUZZ_DATASET}" t`)).rows[0];
  return { rows: r.n as number, digest: `${cols}|${r.h as string}` };
}

/** Stage and clean one uploaded object; never throws for what the file holds. */
export async function deliver(pool: pg.Pool, up: Uploaded): Promise<{ outcome: string; thrown?: string }> {
  const pipeline = FUZZ_PIPELINE;
  try {
    // as on AWS: the stage step hands each staged load (an archive's members one by one) to clean
    const handed: number[] = [];
    const staged = await stageObject(
      { pool, s3: s3Client(), pipeline, notifyClean: async (m) => void handed.push(m.loadId) },
      { bucket: bucketName(), key: up.key, versionId: up.versionId, etag: up.etag },
    );
    if (staged.status !== 'staged') return { outcome: staged.status };
    const outcomes: string[] = [];
    for (const id of handed) outcomes.push((await cleanLoad({ pool, pipeline, s3: s3Client() }, id)).status);
    return { outcome: outcomes.join(',') || 'staged, not handed to clean' };
  } catch (error) {
    return { outcome: 'threw', thrown: error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 500) : String(error) };
  }
}

/** What the attempt left: the ledger, the raw object and the clean table against `before`. */
export async function judge(pool: pg.Pool, up: Uploaded, before: { rows: number; digest: string }, forced?: Verdict, thrown?: string): Promise<Judged> {
  type Row = { status: string; error: string | null; error_line: number | null; error_column: string | null; rows_loaded: number | null; rows_quarantined: number | null };
  const top = (
    await pool.query(
      `SELECT id, status, error, error_line, error_column, rows_loaded::int, rows_quarantined::int FROM etl.loads WHERE project = $1 AND bucket = $2 AND object_key = $3 ORDER BY id DESC LIMIT 1`,
      [FUZZ_PROJECT, bucketName(), up.key],
    )
  ).rows[0] as (Row & { id: string }) | undefined;
  // an archive's members are loads of their own under it: the file's verdict is theirs together
  const members = top
    ? ((await pool.query(`SELECT status, error, error_line, error_column, rows_loaded::int, rows_quarantined::int FROM etl.loads WHERE parent_id = $1 ORDER BY id`, [top.id])).rows as Row[])
    : [];
  let ledger: Row | undefined = top;
  if (top && members.length > 0) {
    const worst = ['received', 'staged', 'failed', 'skipped', 'loaded'];
    const status = members.map((m) => m.status).sort((a, b) => worst.indexOf(a) - worst.indexOf(b))[0]!;
    const failing = members.find((m) => m.error) ?? top;
    ledger = {
      status: top.status === 'failed' ? 'failed' : status,
      error: top.error ?? failing.error,
      error_line: top.error_line ?? failing.error_line,
      error_column: top.error_column ?? failing.error_column,
      rows_loaded: members.reduce((n, m) => n + (m.rows_loaded ?? 0), 0),
      rows_quarantined: members.reduce((n, m) => n + (m.rows_quarantined ?? 0), 0),
    };
  }
  const after = await fingerprint(pool);
  let verdict: Verdict;
  if (forced) verdict = forced;
  else if (thrown) verdict = 'threw';
  else if (ledger?.status === 'loaded') verdict = (ledger.rows_quarantined ?? 0) > 0 ? 'quarantined' : 'loaded';
  else if (ledger?.status === 'failed') verdict = 'failed';
  else if (ledger?.status === 'skipped' || ledger === undefined) verdict = 'skipped';
  else verdict = 'threw';
  const raw = await rawCheck(up);
  return {
    verdict,
    status: ledger?.status ?? null,
    error: ledger?.error ?? thrown ?? null,
    errorLine: ledger?.error_line ?? null,
    errorColumn: ledger?.error_column ?? null,
    rowsLoaded: ledger?.rows_loaded ?? null,
    rowsQuarantined: ledger?.rows_quarantined ?? null,
    tableUnchanged: after.digest === before.digest && after.rows === before.rows,
    tableRowsBefore: before.rows,
    tableRowsAfter: after.rows,
    rawUnchanged: raw === undefined,
    rawProblem: raw,
  };
}

/** The upload is still the latest version of its key, with the same ETag and the same bytes. */
async function rawCheck(up: Uploaded): Promise<string | undefined> {
  const s3 = s3Client();
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucketName(), Key: up.key }));
  if (head.VersionId !== up.versionId) return `a new version ${head.VersionId} was written over ${up.versionId}`;
  if (head.ETag?.replace(/"/g, '') !== up.etag) return `ETag ${head.ETag} instead of ${up.etag}`;
  const got = await s3.send(new GetObjectCommand({ Bucket: bucketName(), Key: up.key, VersionId: up.versionId }));
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  const sha = createHash('sha256').update(bytes).digest('hex');
  return sha === up.sha256 ? undefined : `sha256 ${sha} instead of ${up.sha256}`;
}

let seeds = 0;
/**
 * Put the previous load back: the clean table dropped (so columns a loaded fuzz file added do not
 * pile up) and the baseline staged and cleaned as an upload of its own.
 */
export async function reseed(pool: pg.Pool): Promise<void> {
  await pool.query(`DROP TABLE IF EXISTS "${FUZZ_PROJECT}"."${FUZZ_DATASET}" CASCADE`);
  const up = await upload(`baseline-${process.pid}-${++seeds}-${Date.now()}`, 'baseline.csv', Buffer.from(BASELINE));
  const { outcome, thrown } = await deliver(pool, up);
  if (outcome !== 'loaded') throw new Error(`the baseline did not load: ${outcome} ${thrown ?? ''}`);
}

/** Bytes under `dir`, recursively (what a reader left in the temp folder). */
export function bytesUnder(dir: string, top = true): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (top && name.startsWith('tsx-')) continue; // tsx's compile cache, not the reader's
    const path = join(dir, name);
    try {
      const s = statSync(path);
      total += s.isDirectory() ? bytesUnder(path, false) : s.size;
    } catch {
      // removed while we looked
    }
  }
  return total;
}

export function emptyDir(dir: string): void {
  for (const name of readdirSync(dir)) if (!name.startsWith('tsx-')) rmSync(join(dir, name), { recursive: true, force: true });
}
