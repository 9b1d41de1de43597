import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { COLUMN_TYPES, type ColumnDefinition, type DatasetDefinition, type PipelineDefinition } from '../../contract/definition.ts';
import type { ExportSettings } from '../combine/exports.ts';
import { recreateViews, type CombineResult } from '../combine/views.ts';
import { analystRole } from '../migrate/migrations.ts';
import type { Replaces } from '../../contract/objects.ts';
import { ident, inTransaction, literal } from '../common/db.ts';
import { PermanentError, classify, messageOf } from '../common/errors.ts';
import { isTooManyColumns, PG_MAX_COLUMNS } from '../common/limits.ts';
import { getLoad, markFailed, markLoaded, markSkipped, ORDER, recordAttempt, type LoadRow } from '../common/ledger.ts';
import { logger } from '../common/logger.ts';
import { castIntoFitting, identitySql, NEWER, nothingLoaded, quarantineTableSql, type CastColumn, type LoadMode } from './cast.ts';
import { checkChildLoads, childLoadsOf, childPathOf, childTableName, childTablesOf, followRemovedParents, inheritParent, type FileTable } from './children.ts';
import { launder, normaliseHeader, profiledDecimals, resolveColumns } from './columns.ts';
import { alterColumnTypes, geometryMisfit, reconcileSchema, recordSchemaChanges, SchemaDriftError, sourceDrift } from './drift.ts';
import type { SchemaChange } from '../common/schema-change.ts';
import { geometryType, narrowGeometryColumn, planGeometry, repairSummary, sharedGeometryType, watchRepairs, withCoordinateFormat, type GeometryPlan } from './geometry.ts';
import { checkLonLat, checkSridsKnown, settleSourceSrid } from './source-srid.ts';
import { waitForReferences } from './order.ts';
import { planRules } from './rules.ts';
import { applyValueMaps } from './value-maps.ts';
import { rememberRemoved, tombstonesFor } from './tombstones.ts';
import { publishSupplierReport, storeLoadReport, type RejectedGeometries } from '../common/report.ts';
import { rejectedGeometries } from './rejected-geometries.ts';
import { emptiedParts } from '../common/part-tables.ts';
import type { SourceGeometry } from '../read/types.ts';

export interface CleanDeps {
  pool: pg.Pool;
  pipeline: PipelineDefinition;
  /** With it, a supplier upload's quality report is written back beside the upload (report.ts). */
  s3?: S3Client;
  /** With it, the views marked `export` that read the dataset are exported after the commit (combine/exports.ts). */
  exports?: ExportSettings;
  /**
   * With it, the exports wait: the load is handed to it instead, and the caller exports once for
   * several loads (the clean handler, after its batch: combine/exports.ts exportAfterBatch).
   */
  deferExports?: (loadId: number) => void;
  /** The largest file whose members are cleaned in one transaction (default MEMBERS_IN_ONE_TRANSACTION members, MEMBER_ROWS_IN_ONE_TRANSACTION rows). */
  oneTransaction?: { members: number; rows: number };
}

export type CleanOutcome =
  | { status: 'loaded'; loadId: number; dataset: string; rowsLoaded: number; rowsQuarantined: number; rowsDeleted?: number; combine: CombineResult }
  | { status: 'duplicate'; loadId: number }
  | { status: 'skipped'; loadId: number; reason: string }
  | { status: 'failed'; loadId: number; error: string };

/**
 * Clean one staged load: cast every declared column to its type in one set-based pass in
 * PostgreSQL; each value that fails (bad type, missing required value, repeated key) goes to
 * `<project>.<dataset>_quarantine` with the column, raw value, rule, reason and source line; the
 * rest replace the clean table `<project>.<dataset>`, and the views are recreated — all in one
 * transaction, so readers see the old state or the new one, never half. A load whose columns
 * differ from the clean table's is met by the dataset's drift policy first (drift.ts). Every
 * finished load gets its quality report in the ledger (report.ts), committed with it; a supplier's
 * copy is written after the commit and can never fail the load.
 *
 * The members of one file (an archive's data files, a GeoPackage's layers: loads with the same
 * `parent_id`) are cleaned together, in one transaction, whichever member's message comes first:
 * a member that fails is rolled back to its savepoint and recorded, the others apply, and readers
 * see the table before the file or after all of it but its failed members — a run killed half-way
 * changes nothing. (A file too large for one transaction is cleaned member by member: membersFitOneTransaction.)
 */
export async function cleanLoad(deps: CleanDeps, loadId: number): Promise<CleanOutcome & { othersFailed?: number }> {
  const outcomes = await cleanAndRecord(deps, loadId);
  const othersFailed = outcomes.slice(1).filter((o) => o.status === 'failed').length;
  const outcome = othersFailed ? { ...outcomes[0]!, othersFailed } : outcomes[0]!;
  // a redelivered message (the function died after the commit) writes a copy still missing
  // (a file's members each get theirs, a few at a time: one S3 request after another took 30 ms each)
  const s3 = deps.s3;
  if (s3) {
    const left = [...outcomes];
    const publish = async () => {
      for (let o = left.shift(); o; o = left.shift()) await publishSupplierReport({ pool: deps.pool, s3, pipeline: deps.pipeline }, o.loadId, { unlessWritten: o.status === 'duplicate' });
    };
    await Promise.all(Array.from({ length: Math.min(REPORTS_AT_ONCE, left.length) }, publish));
  }
  // exports after the commit, never failing the load; a duplicate of a loaded load resumes unfinished ones
  // (a file's members are one dataset: the views are exported once, after the newest of them)
  const trigger = outcome.status === 'duplicate' ? outcome : outcomes.filter((o) => o.status === 'loaded').at(-1);
  if (deps.exports && trigger) {
    if (deps.deferExports) deps.deferExports(trigger.loadId);
    else await (await import('../combine/exports.ts')).exportLoad({ ...deps.exports, pool: deps.pool, pipeline: deps.pipeline }, trigger.loadId);
  }
  return outcome;
}

/** Supplier reports written at the same time after a file's members are cleaned (S3 requests; each report holds a pool connection, of 2–4). */
const REPORTS_AT_ONCE = 4;

/** The outcome of `loadId` first, then those of the other members of its file cleaned with it. */
async function cleanAndRecord(deps: CleanDeps, loadId: number): Promise<CleanOutcome[]> {
  const { pool } = deps;
  const load = await getLoad(pool, loadId);
  if (!load || load.status !== 'staged') {
    logger.info('load not waiting for clean: nothing to do', { loadId, status: load?.status });
    return [{ status: 'duplicate', loadId }];
  }
  if (load.owner_id !== null) {
    // a nested table is cleaned in the same transaction as the table it hangs from (children.ts)
    logger.info('nested table: cleaned with the load of its parent table', { loadId, owner: load.owner_id });
    return [{ status: 'duplicate', loadId }];
  }
  if (load.parent_id !== null && (await membersFitOneTransaction(pool, load, deps.oneTransaction))) return cleanMembers(deps, load);
  const started = performance.now();
  let group: LoadRow[] = [load];
  try {
    const applied = await inTransaction(pool, async (client) => {
      // One clean of a dataset at a time: a second waits here, then sees the first one's rows.
      await lockDataset(client, deps.pipeline, load);
      return cleanOne(client, deps.pipeline, loadId, started, (g) => (group = g));
    });
    return [outcomeOf(loadId, applied, started)];
  } catch (error) {
    const rejected = await permanentOrRethrow(deps, load, error);
    // a file's tables are one object: they fail together
    for (const l of group) {
      await recordFailure(pool, l, loadId, rejected);
      await dropStaging(pool, l);
    }
    return [{ status: 'failed', loadId, error: rejected.message }];
  }
}

/**
 * The members of a file are cleaned in one transaction only while that fits one clean: at most
 * MEMBERS_IN_ONE_TRANSACTION tables (each holds a lock until the commit, and PostgreSQL's lock table
 * is shared and bounded) and MEMBER_ROWS_IN_ONE_TRANSACTION staged rows (the clean function has
 * 10 minutes; a group that never fits would be retried whole into the DLQ). A larger file is cleaned
 * member by member, each in its own transaction, as its messages come — said in the log.
 */
export const MEMBERS_IN_ONE_TRANSACTION = 1_000;
export const MEMBER_ROWS_IN_ONE_TRANSACTION = 5_000_000;

async function membersFitOneTransaction(pool: pg.Pool, load: LoadRow, most = { members: MEMBERS_IN_ONE_TRANSACTION, rows: MEMBER_ROWS_IN_ONE_TRANSACTION }): Promise<boolean> {
  const { rows } = await pool.query<{ members: number; rows: string | null }>(
    `SELECT count(*)::int AS members, sum(rows_read)::text AS rows FROM etl.loads WHERE parent_id = $1 AND owner_id IS NULL AND status = 'staged'`,
    [load.parent_id],
  );
  const members = rows[0]?.members ?? 0;
  const staged = Number(rows[0]?.rows ?? 0);
  if (members <= most.members && staged <= most.rows) return true;
  logger.warn(
    `${load.object_key}: its file has ${members} members staged with ${staged} rows, more than one transaction takes (${most.members} members, ${most.rows} rows): each member is cleaned on its own, and readers may see part of the file meanwhile`,
    { loadId: load.id, parent: load.parent_id },
  );
  return false;
}

/**
 * Every staged member of `first`'s file (its siblings under the same `parent_id`), in one
 * transaction and in member order (of two members with the same key, the later wins), each in a
 * savepoint: a member that fails is rolled back to it, recorded as failed, and the others go on.
 * The staging tables are dropped after the commit — dropping hundreds in one transaction would
 * take as many locks (PostgreSQL's lock table is shared and bounded: max_locks_per_transaction);
 * one left behind by a kill between the commit and the drops is only unused space.
 */
async function cleanMembers(deps: CleanDeps, first: LoadRow): Promise<CleanOutcome[]> {
  const { pool, pipeline } = deps;
  const outcomes: CleanOutcome[] = [];
  const spent: LoadRow[] = [];
  try {
    await inTransaction(pool, async (client) => {
      await lockDataset(client, pipeline, first);
      const { rows } = await client.query<{ id: string }>(`SELECT id FROM etl.loads WHERE parent_id = $1 AND owner_id IS NULL AND status = 'staged' ORDER BY id`, [first.parent_id]);
      const order = rows.map((r) => Number(r.id));
      const byId = new Map<number, CleanOutcome>();
      for (const id of order) {
        const started = performance.now();
        let group: LoadRow[] = [];
        await client.query('SAVEPOINT civic_etl_member');
        try {
          const applied = await cleanOne(client, pipeline, id, started, (g) => (group = g), spent);
          await client.query('RELEASE SAVEPOINT civic_etl_member');
          byId.set(id, outcomeOf(id, applied, started));
        } catch (error) {
          const rejected = asFailure(pipeline, group[0] ?? first, error);
          if (rejected.kind !== 'permanent') throw error;
          await client.query('ROLLBACK TO SAVEPOINT civic_etl_member');
          for (const l of group.length ? group : [(await getLoad(client, id))!]) {
            await recordFailure(client, l, id, rejected.error);
            spent.push(l);
          }
          byId.set(id, { status: 'failed', loadId: id, error: rejected.error.message });
        }
      }
      const mine = byId.get(first.id) ?? { status: 'duplicate', loadId: first.id };
      outcomes.push(mine, ...[...byId.values()].filter((o) => o !== mine));
    });
  } catch (error) {
    // nothing of the file was applied: retried whole (a permanent error was handled per member)
    await permanentOrRethrow(deps, first, error, true);
  }
  // committed: the staging tables of the members applied, skipped or failed are spent
  for (const l of spent) await dropStaging(pool, l);
  logger.info('members of a file cleaned together', {
    loadId: first.id,
    parent: first.parent_id,
    loaded: outcomes.filter((o) => o.status === 'loaded').length,
    failed: outcomes.filter((o) => o.status === 'failed').length,
  });
  return outcomes;
}

/** One clean of a dataset at a time: a second waits here, then sees the first one's rows. */
async function lockDataset(client: pg.PoolClient, pipeline: PipelineDefinition, load: LoadRow): Promise<void> {
  await client.query(`SELECT pg_advisory_xact_lock(hashtext('civic-etl:clean'), hashtext($1))`, [`${pipeline.project}.${load.dataset}`]);
}

type Cleaned = { skipped: string } | (Awaited<ReturnType<typeof cleanObject>> & { dataset: string }) | undefined;

/**
 * One load (with its nested tables' loads) in the caller's transaction: skipped when a newer
 * object already replaced it, else applied. `onGroup` learns the loads that stand or fall with it;
 * `spent`, when given, collects the staging tables to drop after the commit instead of now.
 */
async function cleanOne(client: pg.PoolClient, pipeline: PipelineDefinition, loadId: number, started: number, onGroup: (group: LoadRow[]) => void, spent?: LoadRow[]): Promise<Cleaned> {
  const current = await getLoad(client, loadId, true);
  if (current) onGroup([current]);
  if (current?.status !== 'staged') return undefined;
  const dataset = pipeline.datasets.find((d) => d.name === current.dataset);
  if (!dataset) throw new PermanentError(`load ${loadId}: dataset "${current.dataset}" is no longer in the pipeline definition`);
  if (current.replaces === null || childPathOf(current) !== undefined) {
    // staged by a version before the connector contract: what it replaces is not known, and it is not guessed
    throw new PermanentError(
      `${current.object_key}: staged before the connector contract was recorded (what it replaces and holds is unknown), so it is not applied; ` +
        `an upload: stage it again with civic-etl replay ${dataset.name} --version ${current.object_version}; a fetched object: fetch the dataset again (README: Upgrading)`,
      { file: current.object_key },
    );
  }
  const all = await childLoadsOf(client, current);
  const children = all.filter((l) => l.status === 'staged');
  const group = [current, ...children];
  onGroup(group);
  checkChildLoads(current, all);
  for (const l of group) await refuseEmptiedStaging(client, l);
  const newer = await supersededBy(client, dataset, current);
  if (newer) {
    // An older snapshot arriving after a newer one was applied must not overwrite it.
    const reason = `superseded: load ${newer} of a newer object was already applied`;
    for (const l of group) {
      await markSkipped(client, l.id, reason);
      await storeLoadReport(client, l.id);
      if (spent) spent.push(l);
      else await client.query(`DROP TABLE IF EXISTS ${l.staging_table}`);
    }
    return { skipped: reason };
  }
  // a referenced dataset's load that came with this one is cleaned first: this one is retried after it
  await waitForReferences(client, pipeline, dataset, current.id);
  return { ...(await cleanObject(client, pipeline, dataset, current, children, started, spent)), dataset: dataset.name };
}

function outcomeOf(loadId: number, applied: Cleaned, started: number): CleanOutcome {
  if (!applied) return { status: 'duplicate', loadId };
  if ('skipped' in applied) {
    logger.info('load skipped', { loadId, reason: applied.skipped });
    return { status: 'skipped', loadId, reason: applied.skipped };
  }
  logger.info('cleaned', { loadId, ...applied, ms: Math.round(performance.now() - started) });
  return { status: 'loaded', loadId, ...applied };
}

/** The one error model (common/errors.ts) for a clean: PostgreSQL's column limit named as such. */
function asFailure(pipeline: PipelineDefinition, load: LoadRow, error: unknown): ReturnType<typeof classify> {
  if (isTooManyColumns(error)) {
    // a table that gained columns load after load (drift policy evolve) until PostgreSQL's limit
    error = new PermanentError(
      `${load.object_key}: the clean table ${pipeline.project}.${load.dataset} would have more than ${PG_MAX_COLUMNS} columns, PostgreSQL's limit (${messageOf(error)}); ` +
        `drop the columns no longer needed, or set the dataset's drift policy to quarantine`,
      { file: load.object_key },
    );
  }
  return classify(error, { file: load.object_key });
}

/**
 * Bad input fails the load (returned, for the caller to record); a retryable or blocked failure (a
 * view to fix) keeps it staged, is noted in the ledger and thrown, for the handler to retry.
 * `always`: rethrow even a permanent error (one the caller has no load to record it on).
 */
async function permanentOrRethrow(deps: CleanDeps, load: LoadRow, error: unknown, always = false): Promise<PermanentError> {
  const failure = asFailure(deps.pipeline, load, error);
  if (failure.kind === 'permanent' && always) throw error;
  if (failure.kind !== 'permanent') {
    // noted here for any caller (a replay too); the handler adds the attempt number
    await recordAttempt(deps.pool, { loadId: load.id }, { kind: failure.kind, step: 'clean', message: failure.message }).catch((e: unknown) =>
      logger.error('failure not recorded in the ledger', { loadId: load.id, error: failure.message, ledgerError: messageOf(e) }),
    );
    throw error;
  }
  return failure.error;
}

/**
 * A staging table that crash recovery emptied fails its load, visibly, instead of being applied
 * as an empty file (in mode replace, that would empty the dataset). PostgreSQL empties every
 * UNLOGGED table when it recovers from a crash; the local stage step stages big files into
 * unlogged part tables (parts.ts), so a load marked staged before a crash may have lost its rows.
 * Found by the ledger's counts: a part (or a whole table) that staged rows and holds none.
 */
export async function refuseEmptiedStaging(client: pg.PoolClient, load: LoadRow): Promise<void> {
  if (!load.staging_table || !(Number(load.rows_read) > 0)) return;
  const [rel] = (await client.query<{ relkind: string; unlogged: boolean }>(`SELECT relkind, relpersistence = 'u' AS unlogged FROM pg_class WHERE oid = to_regclass($1)`, [load.staging_table])).rows;
  if (!rel) return;
  let emptied: string | undefined;
  if (rel.relkind === 'p') {
    const parts = (await client.query<{ part: number; status: string; rows: string | null }>(`SELECT part, status, rows FROM etl.load_parts WHERE load_id = $1 ORDER BY part`, [load.id])).rows;
    const lost = await emptiedParts(client, load.staging_table, parts);
    if (lost.length > 0) emptied = `part${lost.length === 1 ? '' : 's'} ${lost.join(', ')} of its ${parts.length}`;
  } else if (rel.unlogged) {
    const [row] = (await client.query<{ empty: boolean }>(`SELECT NOT EXISTS (SELECT 1 FROM ${load.staging_table}) AS empty`)).rows;
    if (row?.empty) emptied = 'its table';
  }
  if (emptied === undefined) return;
  throw new PermanentError(
    `${load.object_key}: ${emptied} staged, then emptied by PostgreSQL's crash recovery (unlogged staging tables are): ${load.rows_read} rows were staged, and none of this load is applied; ` +
      `stage it again with civic-etl replay ${load.dataset} --version ${load.object_version}`,
    { file: load.object_key },
  );
}

/** A permanent failure of load `l` (of the object `loadId`): in the ledger, with its drift and report. */
async function recordFailure(db: pg.Pool | pg.PoolClient, l: LoadRow, loadId: number, rejected: PermanentError): Promise<void> {
  await markFailed(db, l.id, rejected);
  if (rejected instanceof SchemaDriftError && l.id === loadId) await recordSchemaChanges(db, l.id, rejected.changes);
  await storeLoadReport(db, l.id);
  if (l.id === loadId) {
    logger.warn('load rejected by clean', { step: 'clean', kind: 'permanent', loadId, dataset: l.dataset, object: l.object_key, error: rejected.message });
  }
}

/** SQL over `l` (a load) and `me` (this one): `l`'s rows are among those `me` replaces when older. */
function scopeSql(replaces: Replaces): string {
  switch (replaces) {
    case 'dataset':
      return 'true';
    case 'run':
      // a run of one resource (a year of a year-specific ODS) replaces that resource only
      return 'l.run IS DISTINCT FROM me.run AND (me.resource IS NULL OR l.resource IS NOT DISTINCT FROM me.resource)';
    case 'resource':
      return 'l.resource IS NOT DISTINCT FROM me.resource';
    case 'nothing':
      return 'false';
  }
}

/** The loads whose rows this load's object replaces: older, within its declared scope (`$1`: this load). */
function replacedLoadsSql(replaces: Replaces): string {
  return `SELECT l.id FROM etl.loads l, etl.loads me
           WHERE me.id = $1 AND l.project = me.project AND l.dataset = me.dataset AND l.owner_id IS NULL AND l.status = 'loaded'
             AND ${ORDER('l')} < ${ORDER('me')} AND ${scopeSql(replaces)}`;
}

/**
 * In modes replace and history, a snapshot removes the rows of older objects: a newer snapshot
 * already applied whose scope covers all of this object's (of the dataset, of another run, or of
 * the same resource) means that, applied in order, this object's rows would have been replaced
 * or removed by it — so the object is skipped whole, a snapshot as much as changes (an older
 * change would otherwise bring back a row the newer snapshot no longer has). Modes upsert and
 * append never remove rows by snapshot: there every object applies, key by key. Deletions apply
 * whatever their age (they only remove rows older than themselves).
 */
async function supersededBy(client: pg.PoolClient, dataset: DatasetDefinition, load: LoadRow): Promise<number | undefined> {
  const mode = dataset.clean.mode ?? 'replace';
  if ((load.holds ?? 'rows') !== 'rows' || (mode !== 'replace' && mode !== 'history')) return undefined;
  const { rows } = await client.query<{ id: string }>(
    `SELECT l.id FROM etl.loads l, etl.loads me
      WHERE me.id = $1 AND l.project = me.project AND l.dataset = me.dataset AND l.status = 'loaded' AND l.owner_id IS NULL
        AND coalesce(l.holds, 'rows') = 'rows' AND coalesce(l.replaces, 'dataset') <> 'nothing' AND ${ORDER('l')} > ${ORDER('me')}
        AND NOT (l.replaces = 'run' AND l.run IS NOT DISTINCT FROM me.run)
        AND (l.resource IS NULL OR l.resource IS NOT DISTINCT FROM me.resource)
      ORDER BY l.id DESC LIMIT 1`,
    [load.id],
  );
  return rows[0] ? Number(rows[0].id) : undefined;
}

interface Applied {
  rowsLoaded: number;
  rowsQuarantined: number;
  rowsDeleted?: number;
  changes: SchemaChange[];
  quarantine?: string;
  /** A geometry dataset's set-aside rows with a readable location, for the report's map. */
  rejectedGeometries?: RejectedGeometries;
}

/**
 * Apply one object — the load of a dataset's own table and the loads of its nested tables — in
 * the caller's transaction, by what the object holds and replaces (contract/objects.ts); then
 * the views, the ledger and the quality reports, committed with it.
 */
async function cleanObject(
  client: pg.PoolClient,
  pipeline: PipelineDefinition,
  dataset: DatasetDefinition,
  load: LoadRow,
  children: readonly LoadRow[],
  started: number,
  /** When given, the staging tables to drop after the commit (else dropped here). */
  spent?: LoadRow[],
): Promise<{ rowsLoaded: number; rowsQuarantined: number; rowsDeleted?: number; combine: CombineResult }> {
  const schema = ident(pipeline.project);
  const results = new Map<number, Applied>();
  const tables = new Map<number, FileTable>();
  const hasChildren = dataset.read.arrays === 'explode' && (children.length > 0 || (await childTablesOf(client, pipeline, dataset)).length > 0);
  // parent rows that leave (removed, replaced, deleted): their children leave with them
  const removed = hasChildren ? await removedTable(client, dataset) : undefined;
  let rebuilt = false;
  if ((load.holds ?? 'rows') === 'deletions') {
    results.set(load.id, await applyDeletions(client, pipeline, dataset, load, removed));
  } else if (load.holds === 'keyChanges') {
    results.set(load.id, await applyKeyChanges(client, pipeline, dataset, load, removed));
  } else {
    await refuseEmptying(client, pipeline, dataset, load);
    const applied = await applyRows(client, pipeline, dataset, load, { removed });
    // every row of a file that has some rejected: the load fails (rolled back), saying why
    const none = await nothingLoaded(client, {
      quarantine: applied.result.quarantine!,
      loadId: load.id,
      file: load.object_key,
      rowsRead: load.rows_read ?? 0,
      rowsLoaded: applied.result.rowsLoaded,
    });
    if (none) throw none;
    results.set(load.id, applied.result);
    tables.set(load.id, { load, name: dataset.name, identity: applied.identity });
    rebuilt = applied.rebuilt;
    if (rebuilt && hasChildren) {
      // the dataset's table was rebuilt (its rows all replaced): no earlier nested row has a parent left
      for (const name of await childTablesOf(client, pipeline, dataset)) await client.query(`DELETE FROM ${schema}.${ident(name)}`);
    }
  }
  if (removed && !rebuilt) await followRemovedParents(client, pipeline, dataset, removed);
  for (const child of children) {
    const owner = tables.get(child.owner_id!);
    if (!owner) {
      // the nested table of a deletions object: nothing to apply
      results.set(child.id, { rowsLoaded: 0, rowsQuarantined: 0, changes: [] });
      continue;
    }
    const name = childTableName(dataset, childPathOf(child)!);
    const quarantine = `${schema}.${ident(`${name}_quarantine`)}`;
    await client.query(quarantineTableSql(quarantine, `${name}_quarantine_load`));
    const inherited = await inheritParent(client, {
      schema,
      child,
      owner,
      staging: child.staging_table!,
      quarantine,
      ownerQuarantine: `${schema}.${ident(`${owner.name}_quarantine`)}`,
    });
    const childDataset: DatasetDefinition = {
      ...dataset,
      name,
      title: dataset.title && `${dataset.title} (${childPathOf(child)})`,
      clean: {
        key: inherited.identity.map((c) => c.name),
        mode: inherited.identity.length > 0 ? 'upsert' : 'append',
        maps: childMaps(
          dataset,
          childPathOf(child)!,
          children.map((c) => childPathOf(c)!),
        ),
      },
      geometry: { ...dataset.geometry, enabled: false },
    };
    const applied = await applyRows(client, pipeline, childDataset, child, {
      inherited: inherited.inherited,
      dropped: inherited.dropped,
      identity: inherited.identity,
      rebuild: { ...rebuildFor(dataset, load), file: child.object_key },
    });
    results.set(child.id, applied.result);
    tables.set(child.id, { load: child, name, identity: inherited.identity });
  }
  // 4. Combine: the views see the new tables at the same commit.
  const combine = await recreateViews(client, pipeline, dataset.name);
  for (const l of [load, ...children]) {
    const r = results.get(l.id)!;
    await markLoaded(client, l.id, { rowsLoaded: r.rowsLoaded, rowsQuarantined: r.rowsQuarantined, ms: performance.now() - started });
    if (r.rowsDeleted !== undefined) {
      await client.query(`UPDATE etl.loads SET detected = coalesce(detected, '{}'::jsonb) || jsonb_build_object('deleted', $2::int) WHERE id = $1`, [l.id, r.rowsDeleted]);
    }
    if (l.id !== load.id) {
      await client.query(`UPDATE etl.loads SET detected = coalesce(detected, '{}'::jsonb) || jsonb_build_object('table', $2::text) WHERE id = $1`, [l.id, tables.get(l.id)?.name ?? null]);
    }
    await recordSchemaChanges(client, l.id, r.changes);
    await storeLoadReport(client, l.id, { ...(r.quarantine ? { quarantine: r.quarantine } : {}), ...(r.rejectedGeometries ? { rejectedGeometries: r.rejectedGeometries } : {}) });
    if (spent) spent.push(l);
    else await client.query(`DROP TABLE ${l.staging_table}`);
  }
  const root = results.get(load.id)!;
  return { rowsLoaded: root.rowsLoaded, rowsQuarantined: root.rowsQuarantined, ...(root.rowsDeleted !== undefined ? { rowsDeleted: root.rowsDeleted } : {}), combine };
}

/**
 * A temporary table for the parent rows a load removes: the dataset's key columns (as text: a
 * drift may widen the key's type in this very transaction), then `_load_id`.
 */
async function removedTable(client: pg.PoolClient, dataset: DatasetDefinition): Promise<string> {
  const name = 'civic_etl_removed';
  await client.query(`DROP TABLE IF EXISTS pg_temp.${name}`);
  const keys = dataset.clean.key.map((k) => `${ident(k)} text, `).join('');
  await client.query(`CREATE TEMPORARY TABLE ${name} (${keys}_load_id bigint) ON COMMIT DROP`);
  return `pg_temp.${name}`;
}

/** Whether a newer object of the load's dataset was already applied (rows, deletions or key changes). */
async function newerApplied(client: pg.PoolClient, load: LoadRow): Promise<boolean> {
  const { rows } = await client.query(
    `SELECT 1 FROM etl.loads l, etl.loads me WHERE me.id = $1 AND l.project = me.project AND l.dataset = me.dataset
        AND l.status = 'loaded' AND ${ORDER('l')} > ${ORDER('me')} LIMIT 1`,
    [load.id],
  );
  return rows.length > 0;
}

/**
 * A file with no data rows that would empty a table holding rows (a snapshot of the whole dataset
 * in mode replace or history) is refused, the table kept — an empty or one-byte file is far more
 * often a broken export than a dataset that has ended — unless the dataset says it may be empty
 * (`clean.allowEmpty`).
 */
async function refuseEmptying(client: pg.PoolClient, pipeline: PipelineDefinition, dataset: DatasetDefinition, load: LoadRow): Promise<void> {
  if ((load.rows_read ?? 0) > 0 || dataset.clean.allowEmpty || !rebuildFor(dataset, load).allowed) return;
  const table = `${ident(pipeline.project)}.${ident(dataset.name)}`;
  const present = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
  if (!present.rows[0]?.t) return;
  const { rows } = await client.query<{ held: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${table}) AS held`);
  if (!rows[0]?.held) return;
  throw new PermanentError(
    `${load.object_key}: no data rows — loading it would empty ${pipeline.project}.${dataset.name} (mode ${modeFor(dataset, load)}); the table is kept. A dataset that may be empty says so with clean.allowEmpty: true`,
    { file: load.object_key },
  );
}

/** Whether a load may rebuild a clean table whose definition changed, and what to tell when it may not. */
interface Rebuild {
  allowed: boolean;
  file: string;
  replaces: Replaces;
  /** The dataset to replay (a nested table's: its parent dataset). */
  dataset: string;
}

/**
 * Rebuilding a clean table loses its rows: only a load that replaces them all may do it — a
 * snapshot of the whole dataset in mode replace or history. A nested table follows its parent's load.
 */
function rebuildFor(dataset: DatasetDefinition, load: LoadRow): Rebuild {
  const mode = modeFor(dataset, load);
  const replaces = load.replaces ?? 'dataset';
  return { allowed: replaces === 'dataset' && (mode === 'replace' || mode === 'history'), file: load.object_key, replaces, dataset: dataset.name };
}

/**
 * The effective mode of a load: the dataset's, except that an object that replaces nothing
 * (changes only) can never replace a table — in mode replace its rows are upserted by the key,
 * or appended without one. (In mode upsert every object is upserted, whatever it replaces.)
 */
function modeFor(dataset: DatasetDefinition, load: LoadRow): LoadMode {
  const mode = dataset.clean.mode ?? 'replace';
  if ((load.replaces ?? 'dataset') !== 'nothing') return mode;
  if (mode === 'replace') return dataset.clean.key.length > 0 ? 'upsert' : 'append';
  return mode;
}

/**
 * Rows of one load into the dataset's clean table (or a nested table's): drift, value maps,
 * rules, geometry and the set-based cast, by the load's mode and declared scope.
 */
async function applyRows(
  client: pg.PoolClient,
  pipeline: PipelineDefinition,
  dataset: DatasetDefinition,
  load: LoadRow,
  opts: { removed?: string; inherited?: CastColumn[]; dropped?: string[]; identity?: FileTable['identity']; rebuild?: Rebuild },
): Promise<{ result: Applied; identity: FileTable['identity']; rebuilt: boolean }> {
  const staging = load.staging_table!;
  const detected = load.detected as (LoadRow['detected'] & { geometry?: SourceGeometry }) | null;
  // a coordinate system the file names in words only: identified by its parameters, never assumed 4326
  const notes: string[] = [];
  if (dataset.geometry.enabled) {
    await checkSridsKnown(client, load.object_key, [
      [dataset.read.srid, `read.srid (dataset ${dataset.name})`],
      [dataset.geometry.srid, `geometry.srid (dataset ${dataset.name})`],
    ]);
    // the SRID a file's crs names (read.srid overrides it): else PostGIS's "Invalid reserved SRID" in the cast, retried as if passing
    if (dataset.read.srid === undefined && !dataset.geometry.from) {
      await checkSridsKnown(client, load.object_key, [[detected?.geometry?.srid, `${detected?.geometry?.sridFrom ?? 'the file'} names SRID`]], `set read.srid (dataset ${dataset.name}) to`);
    }
  }
  if (dataset.geometry.enabled && !dataset.geometry.from) {
    await settleSourceSrid(client, { geometry: detected?.geometry, file: load.object_key, given: dataset.read.srid, staging, warnings: notes, option: `read.srid (dataset ${dataset.name})` });
  }
  let planned = planGeometry(dataset.geometry, detected, load.header ?? [], detected?.columns ?? [], load.object_key, dataset.read.srid);
  // metres (or feet) labelled as degrees: stored as 4326 they make a wrong map that looks loaded
  // (checked on the loaded rows below); transformed to another SRID they fail the transform, so
  // they are checked here, before the cast
  const lonLat = {
    file: load.object_key,
    how: dataset.read.srid === 4326 ? 'read.srid says they are' : detected?.geometry?.srid === 4326 && !detected.geometry.crs ? 'the file says they are' : 'they would be read as',
    option: `read.srid (dataset ${dataset.name})`,
    unit: (detected as { unit?: string } | null)?.unit,
  };
  if (planned && planned.source.kind === 'text' && planned.source.srid === 4326 && planned.srid !== 4326) {
    await checkLonLat(client, { ...lonLat, table: staging, column: planned.source.from, staged: { encoding: planned.source.encoding } });
  }

  // declared columns fix the clean table: drift is then a change in the file's header
  const sourceChanges = dataset.clean.columns ? await sourceDrift(client, dataset, load) : [];
  const resolved = await resolveColumns(client, dataset, load, [...(planned?.consumed ?? []), ...(opts.dropped ?? [])], pipeline.profile.locales).catch((error: unknown) => {
    // a declared column the file lost: the usual message, with the header's changes for the ledger
    if (error instanceof PermanentError && sourceChanges.length > 0) throw new SchemaDriftError(error.message, sourceChanges, error.position);
    throw error;
  });
  // latitude/longitude written with a decimal comma, as the type inference found them
  const profiled = planned?.source.kind === 'latlon' && dataset.clean.columns ? await profiledDecimals(client, load) : undefined;
  planned = withCoordinateFormat(planned, (from) => resolved.find((c) => c.from === from)?.parse?.number?.decimal ?? profiled?.get(from));
  const loadColumns = [...(opts.inherited ?? []), ...resolved.map((c) => (planned && c.name === planned.column ? { ...c, name: `${c.name}_attribute` } : c))];
  const schema = ident(pipeline.project);
  const table = `${schema}.${ident(dataset.name)}`;
  const quarantine = `${schema}.${ident(`${dataset.name}_quarantine`)}`;
  const mode = modeFor(dataset, load);
  const replaces = load.replaces ?? 'dataset';
  if (mode === 'history' && replaces !== 'dataset') {
    throw new PermanentError(
      `${load.object_key}: mode history needs every object to be a whole snapshot of dataset ${dataset.name}, and this one replaces ${replaces === 'nothing' ? 'nothing (it holds changes only)' : `only its ${replaces}`}; use mode upsert`,
      { file: load.object_key },
    );
  }
  const rebuild = opts.rebuild ?? rebuildFor(dataset, load);

  await client.query(quarantineTableSql(quarantine, `${dataset.name}_quarantine_load`));
  // detected columns: the dataset's drift policy decides how the clean table meets this load
  const reconciled = dataset.clean.columns
    ? undefined
    : await reconcileSchema({ client, pipeline, dataset, loadId: load.id, staging, quarantine, file: load.object_key, columns: loadColumns, geometry: planned });
  const made = reconciled ? 'kept' : await ensureCleanTable(client, pipeline.project, dataset, loadColumns, planned, rebuild);
  const rebuilt = made === 'rebuilt';
  // value maps: mapped columns hold the map's constants, unmapped values are counted in the ledger
  const mapped = await applyValueMaps(client, { pipeline, dataset, staging, quarantine, loadId: load.id, columns: reconciled?.columns ?? loadColumns });
  const columns = mapped.columns;
  const geometry = reconciled ? reconciled.geometry : planned;
  const changes: SchemaChange[] = reconciled?.changes ?? sourceChanges;
  const missingKey = dataset.clean.key.filter((k) => !columns.some((c) => c.name === k));
  if (missingKey.length) {
    throw new PermanentError(
      `${load.object_key}: key column${missingKey.length > 1 ? 's' : ''} ${missingKey.map((k) => `"${k}"`).join(', ')} not among its columns (${columns.map((c) => c.name).join(', ')})`,
      { file: load.object_key },
    );
  }
  // invalid shapes are repaired in the cast; what the repair changed is said (in the load's detected warnings), never silently
  const repairs = watchRepairs(client);
  const cast = await castIntoFitting(
    client,
    {
      staging,
      target: table,
      quarantine,
      columns,
      key: dataset.clean.key,
      loadId: load.id,
      lineage: true,
      mode,
      // only mode replace removes the rows a snapshot no longer has; upsert keeps every key it was given
      ...(mode === 'replace' ? { replacedLoads: replacedLoadsSql(replaces) } : {}),
      tombstones: await tombstonesFor(client, pipeline, dataset, load, columns, legacyIdentity(dataset)),
      newerApplied: await newerApplied(client, load),
      ...(opts.removed ? { removedInto: opts.removed } : {}),
      geometry,
      rules: await planRules(client, { pipeline, dataset, columns }),
    },
    (misfit) => geometryMisfit({ client, pipeline, dataset, loadId: load.id, staging, quarantine, file: load.object_key, columns, geometry }, misfit, changes),
  ).finally(repairs.stop);
  if (geometry && geometry.source.kind === 'text' && geometry.source.srid === 4326 && geometry.srid === 4326) {
    await checkLonLat(client, { ...lonLat, table, column: geometry.column, where: `_load_id = ${Number(load.id)}` });
  }
  const repaired = geometry && repairs.seen() ? await repairSummary(client, staging, geometry, typeof detected?.unit === 'string' ? detected.unit : 'line') : undefined;
  if (repaired) notes.push(`${load.object_key}: ${repaired}`);
  if (notes.length > 0) {
    await client.query(`UPDATE etl.loads SET detected = jsonb_set(coalesce(detected, '{}'::jsonb), '{warnings}', coalesce(detected->'warnings', '[]'::jsonb) || $2::jsonb) WHERE id = $1`, [
      load.id,
      JSON.stringify(notes),
    ]);
  }
  if (geometry) {
    // a geometry column this load made takes the type its geometries share; one an earlier load made keeps its type
    const added = changes.find((c) => c.change === 'added' && c.column === geometry.column);
    if (made === 'created' || made === 'rebuilt' || added) {
      const narrowed = await narrowGeometryColumn(client, table, geometry.column, geometry.srid, (type) => alterColumnTypes(client, pipeline.project, dataset.name, new Map([[geometry.column, type]])));
      if (added && narrowed) Object.assign(added, { to: narrowed, type: narrowed });
    }
    const widened = changes.find((c) => c.change === 'retyped' && c.column === geometry.column && c.action === 'widened');
    // the type this load's geometries have, now that they are in
    if (widened) widened.to = (await sharedGeometryType(client, table, geometry.column, geometry.srid, `_load_id = ${Number(load.id)}`)) ?? widened.to;
  }
  // rows the drift policy or a value map quarantined are not in staging any more: count every quarantined line
  const rowsQuarantined =
    reconciled?.quarantinedRows || mapped.rowsQuarantined || opts.inherited || changes.some((c) => c.action === 'quarantined' && c.column === geometry?.column)
      ? Number((await client.query<{ n: string }>(`SELECT count(DISTINCT source_line) AS n FROM ${quarantine} WHERE load_id = $1`, [load.id])).rows[0]!.n)
      : cast.rowsQuarantined;
  const identity = opts.identity ?? dataset.clean.key.map((k) => ({ name: k, type: columns.find((c) => c.name === k)!.type }));
  // where the set-aside rows were, read while their staged rows exist (the report's map)
  const rejected = geometry && rowsQuarantined > 0 ? await rejectedGeometries(client, { staging, quarantine, loadId: load.id, geometry }) : undefined;
  return { result: { rowsLoaded: cast.rowsLoaded, rowsQuarantined, changes, quarantine, ...(rejected ? { rejectedGeometries: rejected } : {}) }, identity, rebuilt };
}

/** The column whose ids tombstone tables from before the contract hold: the one holding Ed-Fi's `id`. */
function legacyIdentity(dataset: DatasetDefinition): string[] {
  return [identityColumns(dataset, ['id'])[0] ?? 'id'];
}

/**
 * The clean columns that hold the fields naming a row (`identifiedBy`, or the dataset's key): a
 * declared column whose source (or name) is the field, or the detected column the field becomes.
 */
function identityColumns(dataset: DatasetDefinition, fields: readonly string[]): (string | undefined)[] {
  return fields.map((field) => {
    if (dataset.clean.columns) return dataset.clean.columns.find((c) => normaliseHeader(c.source ?? c.name) === normaliseHeader(field))?.name;
    return launder([field])[0];
  });
}

/**
 * A deletions object: each record names a row (by `identifiedBy`, or the dataset's key) that is
 * gone at the source. Rows so named leave the clean table unless a newer object brought them;
 * the names are remembered (`<dataset>_deleted`), so that an older object cleaned later cannot
 * bring a deleted record back.
 */
async function applyDeletions(client: pg.PoolClient, pipeline: PipelineDefinition, dataset: DatasetDefinition, load: LoadRow, removed: string | undefined): Promise<Applied> {
  const staging = load.staging_table!;
  const { staged: stagingColumns, targets, table, tableHasThem } = await identifyRows(client, pipeline, dataset, load, 'deletions');
  // the names typed as the clean columns are, so that `007` names the integer 7 and a composite
  // name compares value by value; a name that is not of its column's type names no row
  const types = tableHasThem ? await columnTypes(client, table, targets) : [];
  const raw = (i: number) => `NULLIF(btrim(s.${ident(stagingColumns[i]!)}), '')`;
  const typeOf = (i: number) => types.find((t) => t.name === targets[i])?.type ?? 'text';
  const staged = identitySql(stagingColumns.map((_, i) => `${raw(i)}::${typeOf(i)}`));
  const ids = `SELECT ${staged} FROM ${staging} s WHERE ${stagingColumns.map((_, i) => `${raw(i)} IS NOT NULL AND etl.is_valid_as(${raw(i)}, ${literal(typeOf(i))})`).join(' AND ')}`;
  return removeNamed(client, pipeline, dataset, load, { table, targets, ids, tableHasThem, removed });
}

/** The types of these columns of a table (those it has; none when there is no table). */
async function columnTypes(client: pg.PoolClient, table: string, columns: readonly string[]): Promise<{ name: string; type: string }[]> {
  const { rows } = await client.query<{ name: string; type: string }>(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = ANY($2::text[]) AND NOT attisdropped`,
    [table, columns],
  );
  return rows;
}

/**
 * Rows named by `ids` (SQL giving each name as identitySql makes it from the `targets` columns)
 * leave the clean table unless a newer object brought them — noted in `removed` for their nested
 * rows — and the names are remembered as removed by this load (tombstones.ts).
 */
async function removeNamed(
  client: pg.PoolClient,
  pipeline: PipelineDefinition,
  dataset: DatasetDefinition,
  load: LoadRow,
  r: { table: string; targets: string[]; ids: string; tableHasThem: boolean; removed: string | undefined },
): Promise<Applied> {
  let rowsDeleted = 0;
  if (r.tableHasThem) {
    const identity = identitySql(r.targets.map((t) => `t.${ident(t)}`));
    // an object of one resource (a year of a year-specific ODS) removes that resource's rows only
    const sql = `DELETE FROM ${r.table} t USING etl.loads l WHERE l.id = t._load_id AND NOT ${NEWER('l')} AND ${identity} IN (${r.ids})
                   AND ($2::text IS NULL OR l.resource IS NOT DISTINCT FROM $2)`;
    const returning = [...dataset.clean.key.map((k) => `t.${ident(k)}`), 't._load_id'].join(', ');
    const result = r.removed
      ? await client.query(`WITH gone AS (${sql} RETURNING ${returning}) INSERT INTO ${r.removed} SELECT * FROM gone`, [load.id, load.resource])
      : await client.query(sql, [load.id, load.resource]);
    rowsDeleted = result.rowCount ?? 0;
  }
  await rememberRemoved(client, pipeline, dataset, load, r.ids, r.targets, legacyIdentity(dataset));
  return { rowsLoaded: 0, rowsQuarantined: 0, rowsDeleted, changes: [] };
}

/** Where a key changes record has the key before and after (Ed-Fi's `oldKeyValues`, `newKeyValues`), as the read step flattens them. */
const KEY_VALUES = { old: 'oldKeyValues.', new: 'newKeyValues.' } as const;

/**
 * A key changes object: each record names a row by `identifiedBy` (Ed-Fi: the resource `id`, which
 * a key change keeps) and gives the record's natural key before and after, `oldKeyValues` and
 * `newKeyValues` (objects of fields). What a key change does to the clean table follows the dataset's key:
 * - keyed by fields a key change keeps (`id`, with `odsSchoolYear` on a year-specific ODS): the row
 *   keeps its key; its new key values come with the record's own rows of the same run, which are
 *   newer (the fetcher numbers a run's key changes first) — nothing to change, the object is counted;
 * - keyed by the natural key (each key column named by one key field — `studentUniqueId` names a
 *   column whose source is `studentReference.studentUniqueId` — or by a field kept, as above): the
 *   row under an old key, of an object not
 *   newer than this one, leaves with its nested rows (counted as deleted) and the old key is
 *   remembered (tombstones.ts), so that an older object cleaned later cannot bring it back (its row
 *   goes to quarantine, rule `superseded`); the record comes back under its new key with its rows;
 * - keyed otherwise: the object fails whole, saying why, and nothing is applied.
 */
async function applyKeyChanges(client: pg.PoolClient, pipeline: PipelineDefinition, dataset: DatasetDefinition, load: LoadRow, removed: string | undefined): Promise<Applied> {
  const header = load.header ?? [];
  const staged = load.detected?.columns ?? [];
  const fieldsOf = (prefix: string) => header.flatMap((h, i) => (h.toLowerCase().startsWith(prefix.toLowerCase()) && staged[i] ? [{ field: h.slice(prefix.length), staged: staged[i] }] : []));
  const olds = fieldsOf(KEY_VALUES.old);
  const news = fieldsOf(KEY_VALUES.new);
  if (olds.length === 0 || news.length === 0) {
    throw new PermanentError(
      `${load.object_key}: key changes without ${olds.length ? '' : '"oldKeyValues"'}${olds.length || news.length ? '' : ' and '}${news.length ? '' : '"newKeyValues"'} (fields: ${header.join(', ')}); nothing is applied`,
      {
        file: load.object_key,
      },
    );
  }
  const key = dataset.clean.key;
  const inKeyValues = (h: string) => Object.values(KEY_VALUES).some((prefix) => h.toLowerCase().startsWith(prefix.toLowerCase()));
  const own = header.flatMap((h, i) => (!inKeyValues(h) && staged[i] ? [{ field: h, staged: staged[i] }] : []));
  // each key column: a key field (its value may change), or a field of the record itself, the
  // same before and after (`id`, which names the record; `odsSchoolYear` of a year-specific ODS)
  const fields = key.map((column) => {
    const found = olds.filter((o) => keyFieldNames(dataset, column, o.field));
    if (found.length === 1) return { column, moves: true, old: found[0], new: news.find((n) => normaliseHeader(n.field) === normaliseHeader(found[0]!.field)) };
    const same = found.length === 0 ? own.find((o) => identityColumns(dataset, [o.field])[0] === column) : undefined;
    return { column, moves: false, old: same, new: same };
  });
  const unnamed = fields.filter((f) => !f.old || !f.new);
  if (key.length === 0 || unnamed.length > 0) {
    throw new PermanentError(
      `${load.object_key}: dataset ${dataset.name} is keyed by ${key.length ? key.join(', ') : 'nothing'}; ` +
        (key.length ? `no single field of its key changes names ${unnamed.map((f) => f.column).join(', ')} ` : '') +
        `(their key fields: ${olds.map((o) => o.field).join(', ')}; the record's: ${own.map((o) => o.field).join(', ')}), ` +
        `so the key changes cannot be applied safely and nothing is applied; key the dataset by the resource id (clean.key: [id]) or by the natural key's fields`,
      { file: load.object_key },
    );
  }
  // a key of fields a key change keeps (`id`, with `odsSchoolYear`): each row keeps its key, and the run's rows bring its new values
  if (!fields.some((f) => f.moves)) return { rowsLoaded: 0, rowsQuarantined: 0, rowsDeleted: 0, changes: [] };
  const table = `${ident(pipeline.project)}.${ident(dataset.name)}`;
  const types = await columnTypes(client, table, key);
  const tableHasThem = types.length === key.length;
  // the key values typed as the clean columns are, so that `007` names the integer 7; a value not of its column's type names no row
  const raw = (column: string) => `NULLIF(btrim(s.${ident(column)}), '')`;
  const typeOf = (i: number) => types.find((t) => t.name === key[i])?.type ?? 'text';
  const valid = (which: 'old' | 'new') => fields.map((f, i) => `${raw(f[which]!.staged)} IS NOT NULL AND etl.is_valid_as(${raw(f[which]!.staged)}, ${literal(typeOf(i))})`).join(' AND ');
  const identity = (which: 'old' | 'new') => identitySql(fields.map((f, i) => `${raw(f[which]!.staged)}::${typeOf(i)}`));
  // a change that leaves the dataset's key as it was (another key field changed) names no row to move
  // (CASE, not AND: a value is cast only once it is known to be of its type)
  const ids = `SELECT k.o FROM (SELECT CASE WHEN ${valid('old')} THEN ${identity('old')} END AS o, CASE WHEN ${valid('new')} THEN ${identity('new')} END AS n
                                   FROM ${load.staging_table!} s) k
                WHERE k.o IS NOT NULL AND k.o IS DISTINCT FROM k.n`;
  return removeNamed(client, pipeline, dataset, load, { table, targets: [...key], ids, tableHasThem, removed });
}

/**
 * Whether a key field of a key change (`studentUniqueId`: Ed-Fi flattens the natural key to the
 * fields' own names) names a key column: a declared column whose source (or name) is the field, or
 * whose source ends with it (`studentReference.studentUniqueId`); a detected column that the field
 * becomes, or that ends with it (`studentreference_studentuniqueid`).
 */
function keyFieldNames(dataset: DatasetDefinition, column: string, field: string): boolean {
  const f = normaliseHeader(field);
  const declared = dataset.clean.columns?.find((c) => c.name === column);
  if (declared) {
    const source = declared.source ?? declared.name;
    return normaliseHeader(source) === f || normaliseHeader(source.split('.').at(-1)!) === f;
  }
  const laundered = launder([field])[0]!;
  return column === laundered || column.endsWith(`_${laundered}`);
}

/**
 * The fields that name a row in a deletions object (`identifiedBy`, or the dataset's key), the
 * staging columns that hold them, the clean columns they name, and whether the clean table has
 * those columns.
 */
async function identifyRows(
  client: pg.PoolClient,
  pipeline: PipelineDefinition,
  dataset: DatasetDefinition,
  load: LoadRow,
  what: string,
): Promise<{ fields: string[]; staged: string[]; targets: string[]; table: string; tableHasThem: boolean }> {
  const fields = load.identified_by ?? dataset.clean.key.map((k) => dataset.clean.columns?.find((c) => c.name === k)?.source ?? k);
  if (fields.length === 0) throw new PermanentError(`${load.object_key}: ${what} name no field, and dataset ${dataset.name} has no key to name rows by`, { file: load.object_key });
  const header = load.header ?? [];
  const columnOf = (name: string) => (load.detected?.columns ?? [])[header.findIndex((h) => normaliseHeader(h) === normaliseHeader(name))];
  const lacking = fields.filter((n) => !columnOf(n));
  if (lacking.length)
    throw new PermanentError(`${load.object_key}: ${what} without the field${lacking.length > 1 ? 's' : ''} ${lacking.map((f) => `"${f}"`).join(', ')} that name the rows (fields: ${header.join(', ')})`, {
      file: load.object_key,
    });
  const targets = identityColumns(dataset, fields);
  const unmatched = fields.filter((_, i) => !targets[i]);
  if (unmatched.length) {
    throw new PermanentError(
      `dataset ${dataset.name}: no column holds ${unmatched.map((f) => `"${f}"`).join(', ')} (declare one with source: ${unmatched[0]}), so the ${what} in ${load.object_key} cannot be applied`,
      {
        file: load.object_key,
      },
    );
  }
  const table = `${ident(pipeline.project)}.${ident(dataset.name)}`;
  const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = ANY($2::text[]) AND NOT attisdropped`, [table, targets]);
  return { fields, staged: fields.map((f) => columnOf(f)!), targets: targets as string[], table, tableHasThem: Number(rows[0]!.n) === targets.length };
}

/** How pg_catalog spells the types whose short names differ. */
const CATALOG_TYPES: Partial<Record<ColumnDefinition['type'], string>> = {
  timestamp: 'timestamp without time zone',
  timestamptz: 'timestamp with time zone',
};

/**
 * The clean table has these columns (plus lineage) and this key. Declared columns that are new
 * are added in place. Any other change of the definition (a key, a type, a column gone, the
 * geometry) rebuilds the table — inside the transaction, so dependent views are recreated before
 * anyone sees — but only when this load replaces every row (`rebuild.allowed`) or the table is
 * empty: otherwise the load fails, saying why, and the table keeps its rows. Used for declared
 * columns, for a dataset's first load, and when a detected dataset's table no longer matches its
 * definition (reconcileSchema deals with drift between loads).
 */
async function ensureCleanTable(
  client: pg.PoolClient,
  project: string,
  dataset: DatasetDefinition,
  columns: readonly CastColumn[],
  geometry: GeometryPlan | undefined,
  rebuild: Rebuild,
): Promise<'kept' | 'added' | 'created' | 'rebuilt'> {
  const wanted = [
    ...columns.map((c) => `${c.name} ${CATALOG_TYPES[c.type] ?? COLUMN_TYPES[c.type]}`),
    ...(geometry ? [`${geometry.column} ${geometryType(geometry)}`] : []),
    '_load_id bigint',
    '_source_line bigint',
  ];
  const history = dataset.clean.mode === 'history';
  if (history) wanted.push('valid_from timestamp with time zone', 'valid_to timestamp with time zone');
  // history keeps every version of a key: the key and the version's start identify a row
  const keyColumns = history ? [...dataset.clean.key, 'valid_from'] : dataset.clean.key;
  if (keyColumns.length > 0) wanted.push(`PRIMARY KEY (${keyColumns.join(', ')})`);
  const { rows } = await client.query<{ col: string }>(
    `SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) AS col
       FROM pg_attribute a WHERE a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text))
        AND a.attnum > 0 AND NOT a.attisdropped
     UNION ALL
     SELECT 'PRIMARY KEY (' || string_agg(a.attname, ', ' ORDER BY k.ord) || ')'
       FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND i.indisprimary
     HAVING count(*) > 0`,
    [project, dataset.name],
  );
  const table = `${ident(project)}.${ident(dataset.name)}`;
  // the geometry column's type follows the data (narrowed by its first load, widened by a later one): only its SRID is the definition's
  const sameGeometry = (col: string) => geometry !== undefined && (col === `${geometry.column} geometry` || (col.startsWith(`${geometry.column} geometry(`) && col.endsWith(`,${geometry.srid})`)));
  const has = new Set(rows.map((r) => (sameGeometry(r.col) ? `${geometry!.column} ${geometryType(geometry!)}` : r.col)));
  const lacking = wanted.filter((w) => !has.has(w));
  if (rows.length > 0 && lacking.length === 0 && has.size === wanted.length) {
    await ensureCurrentView(client, project, dataset);
    return 'kept';
  }
  if (rows.length > 0) {
    // only new columns (a column added to the definition): added in place, no row is touched
    const onlyAdded = [...has].every((c) => wanted.includes(c)) && lacking.every((w) => !w.startsWith('PRIMARY KEY') && columns.some((c) => w.startsWith(`${c.name} `)));
    if (onlyAdded) {
      for (const w of lacking) {
        const c = columns.find((col) => w.startsWith(`${col.name} `))!;
        await client.query(`ALTER TABLE ${table} ADD COLUMN ${ident(c.name)} ${COLUMN_TYPES[c.type]}`);
      }
      logger.info('clean table: columns added', { table, added: lacking });
      await ensureCurrentView(client, project, dataset);
      return 'added';
    }
    const kept = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);
    if (kept > 0 && !rebuild.allowed) {
      const was = [...has].filter((c) => !wanted.includes(c));
      throw new PermanentError(
        `${rebuild.file}: the clean table ${table} no longer matches dataset ${dataset.name}'s definition (it has ${was.join(', ') || 'other columns'}; the definition makes ${lacking.join(', ')}). ` +
          `Rebuilding it would lose ${kept} rows that earlier loads brought and this load does not replace (it replaces ${rebuild.replaces === 'nothing' ? 'nothing: it holds changes' : `its ${rebuild.replaces}`}). ` +
          `The table is left as it is: drop it (DROP TABLE ${table} CASCADE${rebuild.dataset !== dataset.name ? `, with dataset ${rebuild.dataset}'s table and its other nested tables` : ''}) and load the dataset again in full — ` +
          `an uploaded one with civic-etl replay ${rebuild.dataset}, a fetched one with a full fetch (README: Upgrading)`,
        { file: rebuild.file },
      );
    }
    logger.info('clean table shape changed: rebuilding', { table, was: rows.map((r) => r.col), now: wanted, rows: kept });
    await client.query(`DROP TABLE ${table} CASCADE`);
  }
  const key = keyColumns.length > 0 ? `, PRIMARY KEY (${keyColumns.map(ident).join(', ')})` : '';
  const geometryColumn = geometry ? `, ${ident(geometry.column)} ${geometryType(geometry)}` : '';
  const versions = history ? ', valid_from timestamptz NOT NULL, valid_to timestamptz' : '';
  await client.query(
    `CREATE TABLE ${table} (${columns.map((c) => `${ident(c.name)} ${COLUMN_TYPES[c.type]}`).join(', ')}${geometryColumn},
       _load_id bigint NOT NULL, _source_line bigint NOT NULL${versions}${key})`,
  );
  await ensureCurrentView(client, project, dataset);
  if (geometry) {
    await client.query(`CREATE INDEX ${ident(`${dataset.name}_${geometry.column}_gist`)} ON ${table} USING gist (${ident(geometry.column)})`);
  }
  const comment = [dataset.title, dataset.reference ? '(reference data)' : undefined].filter(Boolean).join(' ');
  if (comment) await client.query(`COMMENT ON TABLE ${table} IS '${comment.replace(/'/g, "''")}'`);
  // reference data is for everyone who combines with it: the analyst role reads it directly
  if (dataset.reference) await client.query(`GRANT SELECT ON ${table} TO ${ident(analystRole(project))}`);
  return rows.length > 0 ? 'rebuilt' : 'created';
}

/** Mode history: `<dataset>_current`, the rows whose version is current — made once. */
async function ensureCurrentView(client: pg.PoolClient, project: string, dataset: DatasetDefinition): Promise<void> {
  if (dataset.clean.mode !== 'history') return;
  const view = `${ident(project)}.${ident(`${dataset.name}_current`)}`;
  const { rows } = await client.query<{ v: string | null }>(`SELECT to_regclass($1) AS v`, [view]);
  if (rows[0]?.v) return;
  await client.query(`CREATE VIEW ${view} AS SELECT * FROM ${ident(project)}.${ident(dataset.name)} WHERE valid_to IS NULL`);
  await client.query(`COMMENT ON VIEW ${view} IS 'current rows of ${dataset.name} (mode history)'`);
}

async function dropStaging(pool: pg.Pool, load: LoadRow): Promise<void> {
  if (load.staging_table) await pool.query(`DROP TABLE IF EXISTS ${load.staging_table}`).catch(() => undefined);
}

/**
 * The dataset's `clean.maps` that belong to the nested table at `path`, their `column` narrowed to
 * the field: `addresses.addressTypeDescriptor` is the field `addressTypeDescriptor` of the table
 * `addresses`, not of `addresses.periods` (the longest array path of the file that prefixes it wins).
 */
function childMaps(dataset: DatasetDefinition, path: string, paths: readonly string[]): NonNullable<DatasetDefinition['clean']['maps']> {
  return (dataset.clean.maps ?? []).flatMap((m) => {
    const owner = paths.filter((p) => m.column.startsWith(`${p}.`)).sort((a, b) => b.length - a.length)[0];
    return owner === path ? [{ ...m, column: m.column.slice(path.length + 1) }] : [];
  });
}
