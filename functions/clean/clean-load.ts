import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { COLUMN_TYPES, type ColumnDefinition, type DatasetDefinition, type PipelineDefinition } from '../../contract/definition.ts';
import { exportLoad, type ExportSettings } from '../combine/exports.ts';
import { recreateViews, ViewError, type CombineResult } from '../combine/views.ts';
import { analystRole } from '../migrate/migrations.ts';
import { ident, inTransaction } from '../common/db.ts';
import { PermanentError, isPermanent } from '../common/errors.ts';
import { getLoad, markFailed, markLoaded, markSkipped, noteRetryableError, type LoadRow } from '../common/ledger.ts';
import { logger } from '../common/logger.ts';
import { castInto, quarantineTableSql, type CastColumn } from './cast.ts';
import { launder, resolveColumns } from './columns.ts';
import { reconcileSchema, recordSchemaChanges, SchemaDriftError, sourceDrift, type SchemaChange } from './drift.ts';
import { geometryType, planGeometry, type GeometryPlan } from './geometry.ts';
import { planRules } from './rules.ts';
import { applyValueMaps } from './value-maps.ts';
import { publishSupplierReport, storeLoadReport } from './report.ts';
import type { SourceGeometry } from '../read/types.ts';

export interface CleanDeps {
  pool: pg.Pool;
  pipeline: PipelineDefinition;
  /** With it, a supplier upload's quality report is written back beside the upload (report.ts). */
  s3?: S3Client;
  /** With it, the views marked `export` that read the dataset are exported after the commit (combine/exports.ts). */
  exports?: ExportSettings;
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
 */
export async function cleanLoad(deps: CleanDeps, loadId: number): Promise<CleanOutcome> {
  const outcome = await cleanAndRecord(deps, loadId);
  // a redelivered message (the function died after the commit) writes a copy still missing
  if (deps.s3) await publishSupplierReport({ pool: deps.pool, s3: deps.s3 }, loadId, { unlessWritten: outcome.status === 'duplicate' });
  // exports after the commit, never failing the load; a duplicate of a loaded load resumes unfinished ones
  if (deps.exports && (outcome.status === 'loaded' || outcome.status === 'duplicate')) await exportLoad({ ...deps.exports, pool: deps.pool, pipeline: deps.pipeline }, loadId);
  return outcome;
}

async function cleanAndRecord(deps: CleanDeps, loadId: number): Promise<CleanOutcome> {
  const { pool, pipeline } = deps;
  const started = performance.now();
  const load = await getLoad(pool, loadId);
  if (!load || load.status !== 'staged') {
    logger.info('load not waiting for clean: nothing to do', { loadId, status: load?.status });
    return { status: 'duplicate', loadId };
  }
  const dataset = pipeline.datasets.find((d) => d.name === load.dataset);
  try {
    if (!dataset) throw new PermanentError(`load ${loadId}: dataset "${load.dataset}" is no longer in the pipeline definition`);
    const outcome = await inTransaction(pool, async (client) => {
      // One clean of a dataset at a time: a second waits here, then sees the first one's rows.
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('civic-etl:clean'), hashtext($1))`, [`${pipeline.project}.${dataset.name}`]);
      const current = await getLoad(client, loadId, true);
      if (current?.status !== 'staged') return undefined;
      // objects are ordered by their own load (an archive's members share their archive's)
      // a catalogue dataset's resources each replace only their own rows: newer means of the same resource
      const resource = dataset.source.type === 'catalog' ? await partOf(client, current, RESOURCE_OF) : undefined;
      // the parts of one fetch run (REST checkpoints, Ed-Fi parts) together are the newer object
      const run = fetchedInParts(dataset) ? await partOf(client, current, RUN_OF) : undefined;
      const newer = await client.query<{ id: string }>(
        `SELECT id FROM etl.loads l WHERE project = $1 AND dataset = $2 AND coalesce(parent_id, id) > $3 AND status = 'loaded'
            AND ($4::text IS NULL OR ${RESOURCE_OF} = $4) AND ($5::text IS NULL OR ${RUN_OF} <> $5)
          ORDER BY id DESC LIMIT 1`,
        [pipeline.project, dataset.name, current.parent_id ?? loadId, resource ?? null, run ?? null],
      );
      // upsert and append loads each bring some rows: an older one still applies (per key, an
      // older row never replaces a newer one: cast.ts); a replace or history load is the whole table
      const snapshot = (tableOf(dataset, current).clean.mode ?? 'replace') === 'replace' || dataset.clean.mode === 'history';
      if (newer.rows[0] && snapshot) {
        // An older file arriving after a newer one was applied must not overwrite it.
        const reason = `superseded: load ${newer.rows[0].id} of a newer object was already applied`;
        await markSkipped(client, loadId, reason);
        await storeLoadReport(client, loadId);
        await client.query(`DROP TABLE IF EXISTS ${current.staging_table}`);
        return { skipped: reason };
      }
      return cleanInTransaction(client, pipeline, tableOf(dataset, current), current, started);
    });
    if (!outcome) return { status: 'duplicate', loadId };
    if ('skipped' in outcome) {
      logger.info('load skipped', { loadId, reason: outcome.skipped });
      return { status: 'skipped', loadId, reason: outcome.skipped };
    }
    logger.info('cleaned', { loadId, dataset: dataset.name, ...outcome, ms: Math.round(performance.now() - started) });
    return { status: 'loaded', loadId, dataset: dataset.name, ...outcome };
  } catch (error) {
    if (error instanceof ViewError) {
      // Keep the load staged: once the definition is fixed, a retry (or a DLQ redrive) applies it.
      await noteRetryableError(pool, loadId, error.message);
      logger.error('load waits for a view to be fixed', { loadId, error: error.message });
      throw error;
    }
    if (!isPermanent(error)) throw error;
    await markFailed(pool, loadId, error);
    if (error instanceof SchemaDriftError) await recordSchemaChanges(pool, loadId, error.changes);
    await storeLoadReport(pool, loadId);
    await dropStaging(pool, load);
    logger.warn('load rejected by clean', { loadId, error: error.message });
    return { status: 'failed', loadId, error: error.message };
  }
}

/**
 * The dataset a load is cleaned as: the dataset itself, or — for a child table of exploded JSON
 * arrays (`read.arrays: explode`) — a table of its own, `<dataset>_<path>`, typed from its values.
 */
function tableOf(dataset: DatasetDefinition, load: LoadRow): DatasetDefinition {
  const child = (load.detected as { child?: string } | null)?.child;
  if (!child) return dataset;
  const name = `${dataset.name}_${launder([child])[0]!}`.slice(0, 52).replace(/_+$/, '');
  return { ...dataset, name, title: dataset.title && `${dataset.title} (${child})`, clean: { key: [] }, geometry: { ...dataset.geometry, enabled: false } };
}

async function cleanInTransaction(
  client: pg.PoolClient,
  pipeline: PipelineDefinition,
  dataset: DatasetDefinition,
  load: LoadRow,
  started: number,
): Promise<{ rowsLoaded: number; rowsQuarantined: number; rowsDeleted?: number; combine: CombineResult }> {
  if (dataset.source.type === 'edfi' && EDFI_DELETES.test(load.object_key)) return applyEdfiDeletes(client, pipeline, dataset, load, started);
  const staging = load.staging_table!;
  const detected = load.detected as (LoadRow['detected'] & { geometry?: SourceGeometry }) | null;
  const planned = planGeometry(dataset.geometry, detected, load.header ?? [], detected?.columns ?? [], load.object_key, dataset.read.srid);
  // declared columns fix the clean table: drift is then a change in the file's header
  const sourceChanges = dataset.clean.columns ? await sourceDrift(client, dataset, load) : [];
  const resolved = await resolveColumns(client, dataset, load, planned?.consumed ?? []).catch((error: unknown) => {
    // a declared column the file lost: the usual message, with the header's changes for the ledger
    if (error instanceof PermanentError && sourceChanges.length > 0) throw new SchemaDriftError(error.message, sourceChanges, error.position);
    throw error;
  });
  const loadColumns = resolved.map((c) => (planned && c.name === planned.column ? { ...c, name: `${c.name}_attribute` } : c));
  const schema = ident(pipeline.project);
  const table = `${schema}.${ident(dataset.name)}`;
  const quarantine = `${schema}.${ident(`${dataset.name}_quarantine`)}`;

  await client.query(quarantineTableSql(quarantine, `${dataset.name}_quarantine_load`));
  // detected columns: the dataset's drift policy decides how the clean table meets this load
  const reconciled = dataset.clean.columns
    ? undefined
    : await reconcileSchema({ client, pipeline, dataset, loadId: load.id, staging, quarantine, file: load.object_key, columns: loadColumns, geometry: planned });
  if (!reconciled) await ensureCleanTable(client, pipeline.project, dataset, loadColumns, planned);
  // value maps: mapped columns hold the map's constants, unmapped values are counted in the ledger
  const mapped = await applyValueMaps(client, { pipeline, dataset, staging, quarantine, loadId: load.id, columns: reconciled?.columns ?? loadColumns });
  const columns = mapped.columns;
  const geometry = reconciled ? reconciled.geometry : planned;
  const changes: SchemaChange[] = reconciled?.changes ?? sourceChanges;
  // members of one archive together make the dataset: a member replaces only its own rows
  let siblings = load.parent_id
    ? (await client.query<{ id: string }>(`SELECT id FROM etl.loads WHERE parent_id = $1 AND status = 'loaded'`, [load.parent_id])).rows.map((r) => Number(r.id))
    : undefined;
  // a catalogue resource replaces its own rows: the other resources' loads stay
  if (dataset.source.type === 'catalog') {
    const others = await client.query<{ id: string }>(
      `SELECT id FROM etl.loads l WHERE project = $1 AND dataset = $2 AND status = 'loaded' AND ${RESOURCE_OF} <> $3`,
      [pipeline.project, dataset.name, await partOf(client, load, RESOURCE_OF)],
    );
    siblings = [...(siblings ?? []), ...others.rows.map((r) => Number(r.id))];
  }
  // the parts of one fetch run replace the table together: a part keeps its run's other parts
  if (fetchedInParts(dataset)) {
    const sameRun = await client.query<{ id: string }>(
      `SELECT id FROM etl.loads l WHERE project = $1 AND dataset = $2 AND status = 'loaded' AND ${RUN_OF} = $3`,
      [pipeline.project, dataset.name, await partOf(client, load, RUN_OF)],
    );
    siblings = [...(siblings ?? []), ...sameRun.rows.map((r) => Number(r.id))];
  }
  const missingKey = dataset.clean.key.filter((k) => !columns.some((c) => c.name === k));
  if (missingKey.length) {
    throw new PermanentError(
      `${load.object_key}: key column${missingKey.length > 1 ? 's' : ''} ${missingKey.map((k) => `"${k}"`).join(', ')} not among its columns (${columns.map((c) => c.name).join(', ')})`,
      { file: load.object_key },
    );
  }
  const cast = await castInto(client, {
    staging,
    target: table,
    quarantine,
    columns,
    key: dataset.clean.key,
    loadId: load.id,
    lineage: true,
    keepLoads: siblings && [...siblings, -1],
    geometry,
    mode: dataset.clean.mode ?? 'replace',
    rules: await planRules(client, { pipeline, dataset, columns }),
  });
  let { rowsLoaded } = cast;
  if (dataset.source.type === 'edfi' && edfiIdColumn(dataset)) {
    // a part older than a deletion already applied must not bring the deleted records back
    const tombstones = edfiTombstones(pipeline, dataset);
    const known = (await client.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [tombstones])).rows[0]!.t;
    if (known) {
      const revived = await client.query(`DELETE FROM ${table} t USING ${tombstones} d WHERE t.${ident(edfiIdColumn(dataset)!)}::text = d.id AND d.load_id > t._load_id`);
      rowsLoaded -= revived.rowCount ?? 0;
    }
  }
  // rows the drift policy or a value map quarantined are not in staging any more: count every quarantined line
  const rowsQuarantined = reconciled?.quarantinedRows || mapped.rowsQuarantined
    ? Number((await client.query<{ n: string }>(`SELECT count(DISTINCT source_line) AS n FROM ${quarantine} WHERE load_id = $1`, [load.id])).rows[0]!.n)
    : cast.rowsQuarantined;

  // 4. Combine: the views see the new table at the same commit.
  const combine = await recreateViews(client, pipeline, dataset.name);
  await markLoaded(client, load.id, { rowsLoaded, rowsQuarantined, ms: performance.now() - started });
  await recordSchemaChanges(client, load.id, changes);
  await storeLoadReport(client, load.id, { quarantine });
  await client.query(`DROP TABLE ${staging}`);
  return { rowsLoaded, rowsQuarantined, combine };
}

/** `raw/<dataset>/<run>/[<year>-]deletes-00001.ndjson.gz` of an Ed-Fi resource: ids the ODS deleted, not rows. */
const EDFI_DELETES = /\/(?:\d{4}-)?deletes-\d{5}\.ndjson\.gz$/;

/**
 * Apply an Ed-Fi deletes part (functions/get/fetch-edfi.ts): the rows of those resource ids leave
 * the clean table. The column holding the resource id
 * is `id`, or the declared column whose source is `id`.
 */
async function applyEdfiDeletes(
  client: pg.PoolClient,
  pipeline: PipelineDefinition,
  dataset: DatasetDefinition,
  load: LoadRow,
  started: number,
): Promise<{ rowsLoaded: number; rowsQuarantined: number; rowsDeleted: number; combine: CombineResult }> {
  const staging = load.staging_table!;
  const norm = (t: string) => t.toLowerCase().replace(/[^a-z0-9]/g, '');
  const at = (load.header ?? []).findIndex((h) => norm(h) === 'id');
  const from = (load.detected?.columns ?? [])[at];
  if (at < 0 || !from) throw new PermanentError(`${load.object_key}: an Ed-Fi deletes part without an "id" field`, { file: load.object_key });
  const target = edfiIdColumn(dataset);
  if (!target) {
    throw new PermanentError(`dataset ${dataset.name}: no column holds the Ed-Fi resource id (declare one with source: id), so the deletions in ${load.object_key} cannot be applied`, {
      file: load.object_key,
    });
  }
  const table = `${ident(pipeline.project)}.${ident(dataset.name)}`;
  const exists = (await client.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [table])).rows[0]!.t;
  let rowsDeleted = 0;
  const ids = `SELECT s.${ident(from)} FROM ${staging} s WHERE s.${ident(from)} IS NOT NULL`;
  if (exists) {
    const result = await client.query(`DELETE FROM ${table} WHERE ${ident(target)}::text IN (${ids})`);
    rowsDeleted = result.rowCount ?? 0;
  }
  // remembered, so that an older part cleaned after this one cannot bring a deleted record back
  const tombstones = edfiTombstones(pipeline, dataset);
  await client.query(`CREATE TABLE IF NOT EXISTS ${tombstones} (id text PRIMARY KEY, load_id bigint NOT NULL)`);
  await client.query(
    `INSERT INTO ${tombstones} (id, load_id) SELECT DISTINCT i.id::text, $1::bigint FROM (${ids}) i(id)
     ON CONFLICT (id) DO UPDATE SET load_id = greatest(${tombstones}.load_id, excluded.load_id)`,
    [load.id],
  );
  const combine = await recreateViews(client, pipeline, dataset.name);
  await markLoaded(client, load.id, { rowsLoaded: 0, rowsQuarantined: 0, ms: performance.now() - started });
  await client.query(`UPDATE etl.loads SET detected = coalesce(detected, '{}'::jsonb) || jsonb_build_object('edfiDeleted', $2::int) WHERE id = $1`, [load.id, rowsDeleted]);
  await storeLoadReport(client, load.id);
  await client.query(`DROP TABLE ${staging}`);
  return { rowsLoaded: 0, rowsQuarantined: 0, rowsDeleted, combine };
}

/**
 * The resource of a catalogue load (`raw/<dataset>/<run>/<resource>/<file>`, see fetch-catalog.ts),
 * as SQL over `etl.loads l`: an archive member's is its archive's.
 */
const RESOURCE_OF = `split_part(coalesce((SELECT p.object_key FROM etl.loads p WHERE p.id = l.parent_id), l.object_key), '/', 4)`;
/** The fetch run of a load under `raw/<dataset>/<run>/…`, as SQL over `etl.loads l`. */
const RUN_OF = `split_part(coalesce((SELECT p.object_key FROM etl.loads p WHERE p.id = l.parent_id), l.object_key), '/', 3)`;

/** The column of an Ed-Fi dataset that holds the resource id: `id`, or the declared column whose source is `id`. */
function edfiIdColumn(dataset: DatasetDefinition): string | undefined {
  const norm = (t: string) => t.toLowerCase().replace(/[^a-z0-9]/g, '');
  return dataset.clean.columns ? dataset.clean.columns.find((c) => norm(c.source ?? c.name) === 'id')?.name : 'id';
}

/** Ids an Ed-Fi deletes part removed, with the load that removed them. */
function edfiTombstones(pipeline: PipelineDefinition, dataset: DatasetDefinition): string {
  return `${ident(pipeline.project)}.${ident(`${dataset.name}_deleted`)}`;
}

/** REST and Ed-Fi runs may land in several parts (checkpoints, `partRecords`): together they are one object. */
function fetchedInParts(dataset: DatasetDefinition): boolean {
  return dataset.source.type === 'rest' || dataset.source.type === 'edfi';
}

async function partOf(client: pg.PoolClient, load: LoadRow, sql: string): Promise<string> {
  const { rows } = await client.query<{ r: string }>(`SELECT ${sql} AS r FROM etl.loads l WHERE l.id = $1`, [load.id]);
  return rows[0]!.r;
}

/** How pg_catalog spells the types whose short names differ. */
const CATALOG_TYPES: Partial<Record<ColumnDefinition['type'], string>> = {
  timestamp: 'timestamp without time zone',
  timestamptz: 'timestamp with time zone',
};

/**
 * The clean table has exactly these columns (plus lineage). If the definition changed, it is
 * rebuilt — inside the transaction, so dependent views are recreated before anyone sees. Used
 * for declared columns, for a dataset's first load, and when a detected dataset's table no longer
 * matches its definition (reconcileSchema deals with drift between loads).
 */
async function ensureCleanTable(
  client: pg.PoolClient,
  project: string,
  dataset: DatasetDefinition,
  columns: readonly CastColumn[],
  geometry: GeometryPlan | undefined,
): Promise<void> {
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
  if (rows.length > 0 && rows.map((r) => r.col).join(',') === wanted.join(',')) return ensureCurrentView(client, project, dataset);
  if (rows.length > 0) {
    logger.info('clean table shape changed: rebuilding', { table, was: rows.map((r) => r.col), now: wanted });
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
