import type { Holds, Replaces } from '../../contract/objects.ts';
import type { FailureKind, PermanentError } from './errors.ts';
import type { Queryable } from './db.ts';
import type { SchemaChange } from './schema-change.ts';

/** An S3 object version, as the stage step sees it. */
export interface ObjectRef {
  readonly bucket: string;
  readonly key: string;
  /** S3 version id; `undefined` for unversioned buckets (then the ETag identifies the content). */
  readonly versionId?: string;
  readonly etag?: string;
  readonly size?: number;
  /**
   * Stage this version again as a new load (`civic-etl replay`) instead of claiming its delivery:
   * see {@link receiveObject}. Kept by `{ ...ref, key: member }`, so an archive's members are
   * replayed too.
   */
  readonly replay?: boolean;
}

export type LoadErrorKind = FailureKind | 'exhausted';

export type LoadStatus = 'received' | 'staged' | 'loaded' | 'failed' | 'skipped' | 'expanded';

/** A row of `etl.loads`, the ledger: one load of one object version (or of an archive's member). */
export interface LoadRow {
  id: number;
  project: string;
  dataset: string | null;
  bucket: string;
  object_key: string;
  object_version: string;
  status: LoadStatus;
  rows_read: number | null;
  rows_loaded: number | null;
  rows_quarantined: number | null;
  staging_table: string | null;
  header: string[] | null;
  detected: { columns: string[]; [k: string]: unknown } | null;
  error: string | null;
  error_line: number | null;
  error_column: string | null;
  /** The kind of the last failure (common/errors.ts), `exhausted` once a retryable one used its last attempt; NULL when none or once loaded. */
  error_kind: LoadErrorKind | null;
  /** The step whose attempt failed last (stage, clean). */
  error_step: string | null;
  /** When the last failed attempt ended. */
  last_attempt_at: Date | null;
  /** Receives of the object's event (stage), raised to the attempt number of a step's failed attempt. */
  attempts: number;
  /** The archive's (or GeoPackage's) load, for a load of one of its members. */
  parent_id: number | null;
  /** 0 for a delivery; n for the n-th replay of this object version. */
  replay_number: number;
  /** For a replay: the delivery load of the same object version (or member), if there was one. */
  replay_of: number | null;
  /** The connector contract (contract/objects.ts): what the object replaces and holds. */
  replaces: Replaces | null;
  holds: Holds | null;
  /** The fetch run the object belongs to; the catalogue resource it is of. */
  run: string | null;
  resource: string | null;
  /** Deletions and key changes: the source fields that name a row. */
  identified_by: string[] | null;
  /** The object's place in its dataset's order (stage/object-order.ts): newer is greater (order_at, order_seq). */
  order_at: Date | null;
  order_seq: number | null;
  /** A child table's load (exploded JSON arrays): the load of the table its rows hang from. */
  owner_id: number | null;
  received_at: Date;
  finished_at: Date | null;
  /** What schema drift the clean step found and did (clean/drift.ts). */
  schema_changes: SchemaChange[] | null;
  /** Values the value maps lacked, per column (clean/value-maps.ts); the report reads what it knows of it. */
  unmapped: unknown;
  /** The quality report (common/report.ts), once the load finished. */
  report: unknown;
}

/** A ledger row as `to_jsonb(l)` gives it: timestamps are ISO strings. */
export type LoadRowJson = { [K in keyof LoadRow]: JsonOf<LoadRow[K]> };
type JsonOf<T> = T extends Date ? string : T;

/**
 * SQL: the place of load `a` (an alias of etl.loads) in its dataset's order, to compare with `<`
 * and `>`: the object's own order (order_at, order_seq), then — only for different keys uploaded
 * in the same second, which S3 does not order — the object's first load id. The members and
 * nested tables of one object share their object's place.
 */
export const ORDER = (a: string) => `(${ORDER_COLUMNS(a)})`;
/** The same, as the three columns of a row subquery: `ORDER('l') > (SELECT ORDER_COLUMNS('me') FROM …)`. */
export const ORDER_COLUMNS = (a: string) =>
  // a load recorded by a version before the contract (a deploy in progress): where it arrived
  `coalesce(${a}.order_at, ${a}.received_at), coalesce(${a}.order_seq, ${a}.id), coalesce(${a}.parent_id, ${a}.id)`;

/** What the stage step records of an object's contract (functions/stage/object-order.ts). */
export interface LoadContract {
  replaces: Replaces;
  holds: Holds;
  run: string | null;
  resource: string | null;
  identifiedBy: string[] | null;
  orderAt: Date;
  orderSeq: number;
}

/**
 * Record an object's contract on its load, once: a redelivery finds it recorded and changes
 * nothing; a replay's own order (the time it was replayed) is kept.
 */
export async function recordContract(db: Queryable, id: number, c: LoadContract, ownerId?: number): Promise<void> {
  await db.query(
    `UPDATE etl.loads SET replaces = $2, holds = $3, run = $4, resource = $5, identified_by = $6::jsonb,
            order_at = coalesce(order_at, $7), order_seq = coalesce(order_seq, $8), owner_id = coalesce(owner_id, $9)
      WHERE id = $1 AND replaces IS NULL`,
    [id, c.replaces, c.holds, c.run, c.resource, c.identifiedBy ? JSON.stringify(c.identifiedBy) : null, c.orderAt, c.orderSeq, ownerId ?? null],
  );
}

/** The contract a load's row records (for its archive's members, its children). */
export function contractOf(load: LoadRow): LoadContract {
  return {
    replaces: load.replaces ?? 'dataset',
    holds: load.holds ?? 'rows',
    run: load.run,
    resource: load.resource,
    identifiedBy: load.identified_by,
    orderAt: load.order_at ?? new Date(),
    orderSeq: load.order_seq ?? 0,
  };
}

/** The ledger identity of an object version: its version id, or its ETag when unversioned. */
export function objectVersion(ref: ObjectRef): string {
  if (ref.versionId && ref.versionId !== 'null') return ref.versionId;
  if (ref.etag) return `etag:${ref.etag.replace(/"/g, '')}`;
  throw new Error(`object ${ref.key} has neither a version id nor an ETag`);
}

/** The object version a load is about, as S3 needs it to read it again (the inverse of objectVersion). */
export function objectRefOf(load: Pick<LoadRow, 'bucket' | 'object_key' | 'object_version'>): ObjectRef {
  const byEtag = load.object_version.startsWith('etag:');
  return { bucket: load.bucket, key: load.object_key, ...(byEtag ? { etag: load.object_version.slice(5) } : { versionId: load.object_version }) };
}

/**
 * Record that an object version arrived, once. A redelivered event finds the existing row (and
 * bumps `attempts`); `inserted` tells the two apart. The unique constraint, not timing, makes
 * two concurrent deliveries share one row. A replay (`ref.replay`) is always a new row instead:
 * see {@link receiveReplay}.
 */
export async function receiveObject(db: Queryable, project: string, dataset: string | null, ref: ObjectRef, parentId?: number): Promise<{ load: LoadRow; inserted: boolean }> {
  if (ref.replay) return { load: await receiveReplay(db, project, dataset, ref, parentId), inserted: true };
  const { rows } = await db.query<LoadRow & { inserted: boolean }>(
    `INSERT INTO etl.loads (project, dataset, bucket, object_key, object_version, etag, size_bytes, parent_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT ON CONSTRAINT loads_object_once
       DO UPDATE SET attempts = etl.loads.attempts + 1
     RETURNING *, (xmax = 0) AS inserted`,
    [project, dataset, ref.bucket, ref.key, objectVersion(ref), ref.etag?.replace(/"/g, '') ?? null, ref.size ?? null, parentId ?? null],
  );
  const { inserted, ...load } = rows[0]!;
  return { load: normalise(load), inserted };
}

/**
 * A new load for an object version that may already have one: the next `replay_number` of that
 * version, pointing (`replay_of`) to its delivery. Deliveries stay `replay_number` 0, so their
 * exactly-once claim is untouched. Two replays of one version at the same moment compete for
 * the same number: the loser takes the next one.
 */
async function receiveReplay(db: Queryable, project: string, dataset: string | null, ref: ObjectRef, parentId: number | undefined): Promise<LoadRow> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const { rows } = await db.query<LoadRow>(
      `INSERT INTO etl.loads (project, dataset, bucket, object_key, object_version, etag, size_bytes, parent_id, replay_number, replay_of, order_at, order_seq)
       SELECT $1, $2, $3, $4, $5, $6, $7, $8, coalesce(max(l.replay_number), 0) + 1, min(l.id) FILTER (WHERE l.replay_number = 0),
              coalesce((SELECT p.order_at FROM etl.loads p WHERE p.id = $8), clock_timestamp()), coalesce((SELECT p.order_seq FROM etl.loads p WHERE p.id = $8), 0)
         FROM etl.loads l WHERE l.bucket = $3 AND l.object_key = $4 AND l.object_version = $5
       ON CONFLICT ON CONSTRAINT loads_object_once DO NOTHING
       RETURNING *`,
      [project, dataset, ref.bucket, ref.key, objectVersion(ref), ref.etag?.replace(/"/g, '') ?? null, ref.size ?? null, parentId ?? null],
    );
    if (rows[0]) return normalise(rows[0]);
  }
  throw new Error(`could not record a replay of ${ref.key} (${objectVersion(ref)}): other replays of it keep taking the number`);
}

export async function getLoad(db: Queryable, id: number, lock = false): Promise<LoadRow | undefined> {
  const { rows } = await db.query<LoadRow>(`SELECT * FROM etl.loads WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] && normalise(rows[0]);
}

export async function markStaged(db: Queryable, id: number, r: { rowsRead: number; stagingTable: string; header: string[]; detected: object; ms: number }): Promise<void> {
  await db.query(
    `UPDATE etl.loads SET status = 'staged', rows_read = $2, staging_table = $3, header = $4, detected = $5,
       staged_at = now(), stage_ms = $6, error = NULL, error_line = NULL, error_column = NULL, error_kind = NULL
     WHERE id = $1`,
    [id, r.rowsRead, r.stagingTable, JSON.stringify(r.header), JSON.stringify(r.detected), Math.round(r.ms)],
  );
}

export async function markLoaded(db: Queryable, id: number, r: { rowsLoaded: number; rowsQuarantined: number; ms: number }): Promise<void> {
  await db.query(
    // an earlier attempt's error is cured: attempts, error_step and last_attempt_at stay as its trace
    `UPDATE etl.loads SET status = 'loaded', rows_loaded = $2, rows_quarantined = $3, finished_at = now(), clean_ms = $4,
            error = NULL, error_kind = NULL, error_line = NULL, error_column = NULL
     WHERE id = $1`,
    [id, r.rowsLoaded, r.rowsQuarantined, Math.round(r.ms)],
  );
}

/**
 * An object whose members are loads of their own (an archive, a GeoPackage): what was found is
 * kept in `detected`; each member's load has `parent_id` = this load.
 */
export async function markExpanded(db: Queryable, id: number, r: { members: number; rowsRead: number; skipped: string[]; failures: string[] }): Promise<void> {
  await db.query(
    `UPDATE etl.loads SET status = 'expanded', rows_read = $2, detected = $3, finished_at = now(),
       error = $4 WHERE id = $1`,
    [id, r.rowsRead, JSON.stringify({ members: r.members, skipped: r.skipped }), r.failures.length ? `${r.failures.length} of ${r.members} members failed: ${r.failures.join('; ')}` : null],
  );
}

/**
 * A permanent failure: recorded with file position, and final (the message is acknowledged). Only
 * a load not finished yet: a load another worker applied meanwhile keeps its status.
 */
export async function markFailed(db: Queryable, id: number, error: PermanentError): Promise<void> {
  await db.query(
    `UPDATE etl.loads SET status = 'failed', error = $2, error_line = $3, error_column = $4, finished_at = now(),
            error_kind = 'permanent', last_attempt_at = now()
     WHERE id = $1 AND status IN ('received', 'staged')`,
    [id, error.message, error.position.line ?? null, error.position.column ?? null],
  );
}

/** A load that will not be applied (e.g. superseded by a newer one) is recorded as skipped, with the reason. */
export async function markSkipped(db: Queryable, id: number, reason: string): Promise<void> {
  await db.query(`UPDATE etl.loads SET status = 'skipped', error = $2, finished_at = now() WHERE id = $1 AND status IN ('received', 'staged')`, [id, reason]);
}

export interface LedgerSummaryRow {
  id: number;
  dataset: string | null;
  object_key: string;
  status: LoadStatus;
  rows_read: number | null;
  rows_loaded: number | null;
  rows_quarantined: number | null;
  error: string | null;
  /** When the stage step received the object (the load's start). */
  received_at: Date;
  finished_at: Date | null;
  /** finished_at − received_at, seconds; null while the load is under way. */
  seconds: number | null;
  /** The kind of the last failure (common/errors.ts); NULL when none. */
  error_kind: LoadErrorKind | null;
  attempts: number;
}

/** One failed attempt of a step on a load, as {@link recordAttempt} records it. */
export interface FailedAttempt {
  kind: 'retryable' | 'blocked';
  step: string;
  message: string;
  /** 1-based: the queue's receive count of the message; unknown to a step called directly (replay, tests). */
  attempt?: number;
  /** The queue's maxReceiveCount, when known: the last attempt is `exhausted` (the message goes to the DLQ). */
  of?: number;
}

/**
 * Record a failed attempt on a load not finished yet, without ending it (the message will be
 * retried, or waits in the DLQ): error, kind, step, attempt number and time. The load is named by
 * id, or — for a stage attempt that failed before it knew one — by its object version (the
 * delivery, not a replay). Returns the load it recorded on, if any.
 */
export async function recordAttempt(
  db: Queryable,
  target: { loadId: number } | { bucket: string; key: string; version?: string; etag?: string },
  a: FailedAttempt,
): Promise<{ id: number; dataset: string | null; object_key: string; status: LoadStatus } | undefined> {
  const kind: LoadErrorKind = a.kind === 'retryable' && a.of !== undefined && a.attempt !== undefined && a.attempt >= a.of ? 'exhausted' : a.kind;
  // an event may name the version by ETag only, while the ledger recorded the version id HEAD found
  const where =
    'loadId' in target ? 'id = $1' : `id = (SELECT id FROM etl.loads WHERE bucket = $1 AND object_key = $6 AND replay_number = 0 AND (object_version = $7 OR etag = $8) ORDER BY id DESC LIMIT 1)`;
  const params = 'loadId' in target ? [target.loadId] : [target.bucket];
  const { rows } = await db.query<{ id: string; dataset: string | null; object_key: string; status: LoadStatus }>(
    `UPDATE etl.loads SET error = $2, error_kind = $3, error_step = $4, attempts = greatest(attempts, coalesce($5::int, attempts)), last_attempt_at = now(),
            error_line = NULL, error_column = NULL
      WHERE ${where} AND status IN ('received', 'staged')
      RETURNING id, dataset, object_key, status`,
    [...params, a.message, kind, a.step, a.attempt ?? null, ...('loadId' in target ? [] : [target.key, target.version ?? null, target.etag?.replace(/"/g, '') ?? null])],
  );
  const row = rows[0];
  return row && { ...row, id: Number(row.id) };
}

/** A step's attempt `n` on a load succeeded: the ledger keeps the highest attempt number. */
export async function noteAttempts(db: Queryable, id: number, n: number): Promise<void> {
  await db.query('UPDATE etl.loads SET attempts = greatest(attempts, $2) WHERE id = $1', [id, n]);
}

/** The latest loads of a project, newest first. */
export async function ledgerSummary(db: Queryable, project: string, limit = 20): Promise<LedgerSummaryRow[]> {
  const { rows } = await db.query<LedgerSummaryRow>(
    `SELECT id::int, dataset, object_key, status, rows_read::int, rows_loaded::int, rows_quarantined::int, error, error_kind, attempts, received_at, finished_at,
            round(extract(epoch FROM finished_at - received_at)::numeric, 3)::float8 AS seconds
       FROM etl.loads WHERE project = $1 ORDER BY id DESC LIMIT $2`,
    [project, limit],
  );
  return rows;
}

function normalise(row: LoadRow): LoadRow {
  // bigint columns arrive as strings from node-postgres
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    ...row,
    id: Number(row.id),
    rows_read: num(row.rows_read),
    rows_loaded: num(row.rows_loaded),
    rows_quarantined: num(row.rows_quarantined),
    error_line: num(row.error_line),
    parent_id: num(row.parent_id),
    replay_number: Number(row.replay_number ?? 0),
    replay_of: num(row.replay_of),
    order_seq: num(row.order_seq),
    owner_id: num(row.owner_id),
  };
}
