import type pg from 'pg';
import { COLUMN_TYPES, type ColumnType } from '../../contract/definition.ts';
import type { NumberFormat } from '../../contract/rules.ts';
import { ident, literal } from '../common/db.ts';
import { PermanentError } from '../common/errors.ts';
import { ORDER, ORDER_COLUMNS } from '../common/ledger.ts';
import { geometryChecks, geometryExpr, isGeometryMisfit, withInvalidLines, type GeometryPlan } from './geometry.ts';
import { compileRows, dedupeOrder, passedSql, quarantineReferences, quarantineRepeatedValues, rulesNeedChecks, type RowMode, type RulePlan } from './rules.ts';

export type LoadMode = 'replace' | 'append' | 'upsert' | 'history';

/** A target column and the staging column (text) it is cast from. */
export interface CastColumn {
  name: string;
  type: ColumnType;
  required: boolean;
  /** Staging column name. */
  from: string;
  /** How the values are written, when the type inference found PostgreSQL cannot read them as they are (functions/profile/column-type.ts). */
  /** `missing`: the missing-value markers (`NA`, `...`) the inference found in a number or date column, which load as NULL. */
  parse?: { number?: NumberFormat; date?: string; missing?: readonly string[] };
}

export interface CastPlan {
  /** Qualified, quoted staging table (text columns + `_source_line`). */
  staging: string;
  /** Qualified, quoted target table; its rows are replaced unless `append`. */
  target: string;
  /** Qualified, quoted quarantine table (created if missing). */
  quarantine: string;
  columns: readonly CastColumn[];
  /** Target columns whose combined value must not repeat; later repeats are quarantined. */
  key: readonly string[];
  loadId: number;
  /** Also write `_load_id` and `_source_line` into the target. */
  lineage: boolean;
  append?: boolean;
  /**
   * How the load meets the rows already there (default `replace`, or `append` when `append`):
   * `append` adds (a key already in the table is quarantined), `upsert` replaces the rows of the
   * keys it brings, `history` keeps every version: changed and vanished keys get `valid_to`, new
   * versions `valid_from` (the target then has both columns). Modes other than replace and
   * append need `key`.
   */
  mode?: LoadMode;
  /**
   * Mode replace: the rows this load's object replaces go — SQL for the ids of the loads whose
   * rows go (`$1` is this load): those older than it within its declared scope
   * (contract/objects.ts). Without it: every row goes.
   */
  replacedLoads?: string;
  /**
   * Tombstones (`<dataset>_deleted`: records a deletions object removed): a row whose identity a
   * newer load deleted is quarantined (rule `deleted`), not revived. `columns`: the clean columns
   * whose values, as text, make the identity.
   */
  tombstones?: { table: string; columns: readonly string[]; prefix: string }[];
  /**
   * A (temporary) table to note every row this load removes or replaces — its key columns, then
   * `_load_id` — so that the rows of child tables can follow their parent (children.ts).
   */
  removedInto?: string;
  /**
   * `false` when no newer object of the dataset has been applied (loads cleaned in their own
   * order, the usual case): the per-key order and tombstone checks are then skipped.
   */
  newerApplied?: boolean;
  /** The geometry column, when the load has one. */
  geometry?: GeometryPlan;
  /** `false`: go straight to the row-by-row checks (the caller already saw the one-statement cast fail). */
  optimistic?: boolean;
  /** Cleaning rules (rules.ts: planRules): normalisation, locale casts, constraints, de-duplication. */
  rules?: RulePlan;
}

/** SQL for a quarantine table: one row per failing value, with the rule that failed and the source line. */
export function quarantineTableSql(quarantine: string, indexName: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quarantine} (
      load_id bigint NOT NULL, source_line bigint NOT NULL, column_name text NOT NULL, raw_value text,
      rule text NOT NULL, reason text NOT NULL, quarantined_at timestamptz NOT NULL DEFAULT now());
    CREATE INDEX IF NOT EXISTS ${ident(indexName)} ON ${quarantine} (load_id, source_line)`;
}

/**
 * Cast staged text rows into typed rows, set-based, in a few statements on the caller's
 * transaction: (1) every value that does not cast to its column's type, is missing where
 * required, or fails a rule of its column (rules.ts) is written to quarantine; (2) values not in
 * a referenced dataset are; (3) rows whose key repeats an earlier row are (the first one wins, or
 * the one the dataset's `dedupe` keeps), then repeated values of unique columns; (4) the remaining
 * rows replace (or are appended to) the target.
 * Nothing is dropped or coerced silently: a row is either in the target or in quarantine.
 */
export async function castInto(client: pg.PoolClient, plan: CastPlan): Promise<{ rowsLoaded: number; rowsQuarantined: number }> {
  const { staging, target, quarantine, loadId } = plan;
  const raw = (c: CastColumn) => `s.${ident(c.from)}`;
  // key values cannot be empty
  const compiled = (mode: RowMode, columns = plan.columns, checksOnly = false) => compileRows(columns, plan.rules, mode, (c) => c.required || plan.key.includes(c.name), checksOnly);
  // for rows that passed their checks: each column's clean value, and the subqueries it reads —
  // of all columns (history), or only of those a statement compares (keys, de-duplication order)
  const keyColumns = plan.key.map((k) => plan.columns.find((c) => c.name === k)!);
  const orderColumns = (plan.rules?.dedupe?.orderBy ?? []).map((o) => plan.columns.find((c) => c.name === o)!);
  const identityColumns = (plan.tombstones ?? []).flatMap((t) => t.columns.map((name) => plan.columns.find((c) => c.name === name)!));
  const keyed = compiled('trusted', [...new Set([...keyColumns, ...orderColumns, ...identityColumns])]);
  const cast = (c: CastColumn) => keyed.value(c);
  const from = `${staging} s${keyed.joins}`;

  await client.query(`SET LOCAL datestyle = 'ISO, MDY'`);
  // Optimistic first: a clean file is one INSERT whose casts are the checks. Only if one fails
  // (or the plan needs row-by-row rules: required values, keys, invalid geometry quarantined,
  // constraints of cleaning rules) are the failing values looked for and quarantined one by one, as below.
  const simple = oneStatementWillDo(plan);
  if (simple && plan.optimistic !== false) {
    await client.query('SAVEPOINT civic_etl_cast');
    try {
      if (modeOf(plan) === 'replace') await deleteReplaced(client, plan);
      const inserted = await withoutMemoize(client, plan, () => client.query(insertSql(plan, false), [loadId]));
      await client.query('RELEASE SAVEPOINT civic_etl_cast');
      return { rowsLoaded: inserted.rowCount ?? 0, rowsQuarantined: 0 };
    } catch (error) {
      // a geometry of another type than the column's: the column's business (castIntoFitting), not a row's
      if (!isDataError(error) || isGeometryMisfit(error)) throw error;
      await client.query('ROLLBACK TO SAVEPOINT civic_etl_cast');
    }
  }
  const checked = compiled('check', plan.columns, true);
  const checks = [...checked.checks];
  // after a failed optimistic insert, the geometry may be what failed: look for unreadable ones too
  if (plan.geometry) checks.push(...geometryChecks(plan.geometry, simple).map(withoutReasons));
  await quarantineFailing(client, plan, checks, checked.joins);
  await quarantineReferences(client, plan);
  const passed = passedSql(quarantine);

  if (keyColumns.length > 0) {
    // the first line of a key stays — or, with `dedupe`, the first (or last) in its order
    const byName = (name: string) => cast(plan.columns.find((c) => c.name === name)!);
    const dedupe = dedupeOrder(plan.rules, byName);
    const reason = dedupe.kept ? `format('duplicate key: same %s as line %s, which is kept (%s)', $2::text, d.first_line, $3::text)` : `format('duplicate key: same %s as line %s', $2::text, d.first_line)`;
    await client.query(
      `INSERT INTO ${quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
       SELECT $1, d._source_line, $2, d.raw_key, '${dedupe.rule}', ${reason}
         FROM (SELECT s._source_line, concat_ws(', ', ${keyColumns.map(raw).join(', ')}) AS raw_key,
                      row_number() OVER w AS n, first_value(s._source_line) OVER w AS first_line
                 FROM ${from} WHERE ${passed}
               WINDOW w AS (PARTITION BY ${keyColumns.map(cast).join(', ')} ORDER BY ${dedupe.order})) d
        WHERE d.n > 1`,
      dedupe.kept ? [loadId, plan.key.join(', '), dedupe.kept] : [loadId, plan.key.join(', ')],
    );
  }

  const mode = modeOf(plan);
  if (mode === 'history') {
    await quarantineRepeatedValues(client, plan, mode);
    const all = compiled('trusted');
    return applyHistory(client, plan, all.value, passed, `${staging} s${all.joins}`);
  }
  if (plan.lineage && plan.newerApplied !== false) {
    for (const tomb of plan.tombstones ?? []) {
      // a record a newer object deleted, or moved to another key, does not come back with an older one (in every mode, with a key or not)
      const identity = `${literal(tomb.prefix)} || ${identitySql(tomb.columns.map((name) => cast(plan.columns.find((c) => c.name === name)!)))}`;
      await client.query(
        `INSERT INTO ${quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
         SELECT $1, s._source_line, $2, d.id, CASE WHEN dl.holds = 'keyChanges' THEN 'superseded' ELSE 'deleted' END,
                format(CASE WHEN dl.holds = 'keyChanges' THEN 'a newer object (load %s) changed this record''s key' ELSE 'a newer object (load %s) deleted this record' END, d.load_id)
           FROM ${from} JOIN ${tomb.table} d ON d.id = ${identity} AND d.columns = $3::text[] JOIN etl.loads dl ON dl.id = d.load_id
          WHERE ${NEWER('dl')} AND ${passed}`,
        [loadId, tomb.columns.join(', '), tomb.columns],
      );
    }
  }
  if (mode === 'append' && keyColumns.length > 0) {
    // a key that an earlier load brought: the table keeps its row, this one is quarantined
    await client.query(
      `INSERT INTO ${quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
       SELECT $1, s._source_line, $2, concat_ws(', ', ${keyColumns.map(raw).join(', ')}), 'unique',
              format('key already in the table (load %s, line %s)', t._load_id, t._source_line)
         FROM ${from} JOIN ${target} t ON ${keyColumns.map((c) => `t.${ident(c.name)} = ${cast(c)}`).join(' AND ')}
        WHERE ${passed}`,
      [loadId, plan.key.join(', ')],
    );
  }
  await quarantineRepeatedValues(client, plan, mode);
  if ((mode === 'upsert' || mode === 'replace') && keyColumns.length > 0) {
    const match = keyColumns.map((c) => `t.${ident(c.name)} = ${cast(c)}`).join(' AND ');
    if (plan.lineage && plan.newerApplied !== false) {
      // objects applied out of order (events arrive in any order, parts are cleaned in parallel):
      // per key, the row of the newer object stays — newer in the objects' own order, never by
      // arrival (etl.loads.order_at, order_seq); this older one is set aside, saying so
      await client.query(
        `INSERT INTO ${quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
         SELECT $1, s._source_line, $2, concat_ws(', ', ${keyColumns.map(raw).join(', ')}), 'superseded',
                format('a newer object (load %s) already brought this key', t._load_id)
           FROM ${from} JOIN ${target} t ON ${match} JOIN etl.loads ol ON ol.id = t._load_id
          WHERE ${NEWER('ol')} AND ${passed}`,
        [loadId, plan.key.join(', ')],
      );
    }
    await removeRows(client, plan, `DELETE FROM ${target} t USING ${from} WHERE ${match} AND ${passed}`);
  }
  if (mode === 'replace') await deleteReplaced(client, plan);
  const geometry = plan.geometry;
  const insert = () => client.query(insertSql(plan, true), [loadId]);
  let inserted: pg.QueryResult;
  if (simple || !geometry || geometry.source.kind === 'latlon') {
    inserted = await insert();
  } else {
    // Good files parse every geometry once. Only when PostGIS refuses one are the unreadable ones
    // found (row by row, in PostgreSQL) and quarantined, and the insert redone.
    await client.query('SAVEPOINT civic_etl_geometry');
    try {
      inserted = await insert();
      await client.query('RELEASE SAVEPOINT civic_etl_geometry');
    } catch (error) {
      if (!isDataError(error) || isGeometryMisfit(error)) throw error;
      await client.query('ROLLBACK TO SAVEPOINT civic_etl_geometry');
      await quarantineFailing(client, plan, geometryChecks(geometry, true));
      inserted = await insert();
    }
  }
  const { rows } = await client.query<{ n: string }>(`SELECT count(DISTINCT source_line) AS n FROM ${quarantine} WHERE load_id = $1`, [loadId]);
  return { rowsLoaded: inserted.rowCount ?? 0, rowsQuarantined: Number(rows[0]!.n) };
}

/**
 * castInto a target whose geometry column is typed (`geometry(MultiPolygon,4326)`): a geometry of
 * this load of another type or dimension makes PostGIS refuse the insert. `misfit` is then told —
 * it widens the column, sets the misfits aside, or throws (the load fails) — and the cast is done
 * again from the start (a second misfit, of dimension, widens once more). Nothing of a refused attempt stays.
 */
export async function castIntoFitting(client: pg.PoolClient, plan: CastPlan, misfit: (error: Error) => Promise<void>): Promise<{ rowsLoaded: number; rowsQuarantined: number }> {
  if (!plan.geometry) return castInto(client, plan);
  // at most twice: another type (→ any geometry of the column's dimension), then another dimension (→ plain geometry)
  for (let attempt = 0; ; attempt++) {
    await client.query('SAVEPOINT civic_etl_geometry_fit');
    try {
      const result = await castInto(client, plan);
      await client.query('RELEASE SAVEPOINT civic_etl_geometry_fit');
      return result;
    } catch (error) {
      if (!isGeometryMisfit(error) || attempt >= 2) throw error;
      await client.query('ROLLBACK TO SAVEPOINT civic_etl_geometry_fit');
      await misfit(error as Error);
    }
  }
}

/**
 * A load that kept no row of a file that has some — every row rejected for its values (every
 * latitude unreadable, every date in another format): a failure, not an empty table. The error
 * names the commonest reasons, each with its count and first line; the caller rolls back (no
 * new table, no rejects, an existing table keeps its rows). `undefined` when a row loaded or the
 * file had none. Rows set aside because of other loads — a newer object had the key or deleted
 * the record, the key is already in the table — are not the file's fault and do not count.
 */
export async function nothingLoaded(client: pg.PoolClient, r: { quarantine: string; loadId: number; file: string; rowsRead: number; rowsLoaded: number }): Promise<PermanentError | undefined> {
  if (r.rowsRead === 0 || r.rowsLoaded > 0) return undefined;
  const { rows } = await client.query<{ column_name: string; reason: string; n: string; line: string; lines: string }>(
    `SELECT column_name, (array_agg(reason ORDER BY source_line))[1] AS reason, count(DISTINCT source_line) AS n, min(source_line) AS line,
            (SELECT count(DISTINCT source_line) FROM ${r.quarantine} WHERE load_id = $1 AND rule NOT IN ('superseded', 'deleted', 'unique')) AS lines
       FROM ${r.quarantine} WHERE load_id = $1 AND rule NOT IN ('superseded', 'deleted', 'unique')
      GROUP BY column_name, rule ORDER BY count(DISTINCT source_line) DESC, min(source_line) LIMIT 3`,
    [r.loadId],
  );
  if (rows.length === 0 || Number(rows[0]!.lines) < r.rowsRead) return undefined;
  const reasons = rows.map((q) => `${q.column_name}: ${q.n} row${q.n === '1' ? '' : 's'}, first line ${q.line}: ${q.reason}`).join('; ');
  return new PermanentError(`${r.file}: no row loaded — all ${r.rowsRead} row${r.rowsRead === 1 ? ' was' : 's were'} rejected (${reasons})`, {
    file: r.file,
    line: Number(rows[0]!.line),
    column: rows[0]!.column_name,
  });
}

/**
 * Write one quarantine row per failing check: `(column, raw value, rule or NULL when the value is
 * fine, type, reasons)` — `reasons` (jsonb, from rules.ts) maps a rule to its message, with `%s`
 * for the raw value; without one, the generic message of the rule. `joins`: the subqueries the checks read.
 */
async function quarantineFailing(client: pg.PoolClient, plan: CastPlan, checks: readonly string[], joins = ''): Promise<void> {
  if (checks.length === 0) return;
  await client.query(
    `INSERT INTO ${plan.quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
     SELECT $1, s._source_line, v.col, v.raw, v.rule, coalesce(format(v.reasons ->> v.rule, left(v.raw, 80)),
            CASE v.rule WHEN 'required' THEN 'required value is missing'
                        WHEN 'range' THEN format('%s out of range: %s', v.type, left(v.raw, 80))
                        WHEN 'valid' THEN 'invalid geometry: ' || coalesce(ST_IsValidReason(etl.try_geometry(v.raw, '${plan.geometry?.source.kind === 'text' ? plan.geometry.source.encoding : 'wkt'}')), 'unreadable')
                        ELSE format('not a valid %s: %s', v.type, left(v.raw, 80)) END)
       FROM ${plan.staging} s${joins} CROSS JOIN LATERAL (VALUES ${checks.join(', ')}) AS v(col, raw, rule, type, reasons)
      WHERE v.rule IS NOT NULL`,
    [plan.loadId],
  );
}

/** A check in geometry.ts's form `(column, raw, rule, type)`, with no reasons of its own. */
function withoutReasons(check: string): string {
  return check.replace(/\)\s*$/, ', NULL::jsonb)');
}

/**
 * The rows replaced by this load go: all of them, or — for a member of an archive — all but its
 * siblings'. DELETE, not TRUNCATE: readers keep reading the old rows (MVCC) until the commit and
 * are never blocked — a TRUNCATE's exclusive lock could deadlock with a reader of a view.
 */
async function deleteReplaced(client: pg.PoolClient, plan: CastPlan): Promise<void> {
  if (plan.replacedLoads) await removeRows(client, plan, `DELETE FROM ${plan.target} t WHERE t._load_id IN (${plan.replacedLoads})`);
  else await removeRows(client, plan, `DELETE FROM ${plan.target} t WHERE $1::bigint IS NOT NULL`);
}

/** A DELETE of target rows (alias `t`), noting what it removed in `removedInto` when asked to. */
async function removeRows(client: pg.PoolClient, plan: CastPlan, sql: string, params: unknown[] = [plan.loadId]): Promise<void> {
  if (!plan.removedInto) {
    await client.query(sql, params);
    return;
  }
  const returning = [...plan.key.map((k) => `t.${ident(k)}`), 't._load_id'].join(', ');
  await client.query(`WITH gone AS (${sql} RETURNING ${returning}) INSERT INTO ${plan.removedInto} SELECT * FROM gone`, params);
}

/** SQL: the load aliased `l` is newer than this one (`$1`), in the objects' own order. */
export const NEWER = (l: string) => `${ORDER(l)} > (SELECT ${ORDER_COLUMNS('me')} FROM etl.loads me WHERE me.id = $1)`;

/** SQL: a record's identity as tombstones keep it — the value as text, or a JSON array of several. */
export function identitySql(values: readonly string[]): string {
  return values.length === 1 ? `(${values[0]})::text` : `jsonb_build_array(${values.join(', ')})::text`;
}

/**
 * A new target made in one statement, `CREATE TABLE … AS SELECT` the cast rows: PostgreSQL writes
 * it in bulk and may cast with parallel workers (the staging table must then not be temporary).
 * `undefined` when a value does not cast — nothing is left behind, and castInto takes over. A
 * geometry that does not fit `geometryType` throws PostGIS's error, also leaving nothing behind.
 */
export async function createAsCast(client: pg.PoolClient, plan: CastPlan, geometryType?: string): Promise<number | undefined> {
  if (!oneStatementWillDo(plan)) return undefined;
  const rows = compileRows(plan.columns, plan.rules, 'optimistic');
  const cast = (c: CastColumn) => `(${rows.value(c)})::${COLUMN_TYPES[c.type]} AS ${ident(c.name)}`;
  // the shapes to repair, found first by a parallel pass: the cast then checks no shape again
  const geometry = plan.geometry && process.env.CIVIC_ETL_REPAIR_ALL !== '1' ? await withInvalidLines(client, plan.staging, plan.geometry) : plan.geometry;
  const values = [...plan.columns.map(cast), ...(geometry ? [`(${geometryExpr(geometry, 's', true)})::${geometryType} AS ${ident(geometry.column)}`] : [])];
  await client.query(`SET LOCAL datestyle = 'ISO, MDY'`);
  await client.query('SAVEPOINT civic_etl_create');
  try {
    const created = await withoutMemoize(client, plan, () => client.query(`CREATE TABLE ${plan.target} AS SELECT ${values.join(', ')} FROM ${plan.staging} s${rows.joins}`));
    await client.query('RELEASE SAVEPOINT civic_etl_create');
    return created.rowCount ?? 0;
  } catch (error) {
    if (!isDataError(error)) throw error;
    await client.query('ROLLBACK TO SAVEPOINT civic_etl_create');
    // the geometry type the caller gave does not fit: its business (nothing is left behind)
    if (isGeometryMisfit(error)) throw error;
    return undefined;
  }
}

/**
 * Run a one-statement cast with PostgreSQL's Memoize off when values are parsed in LATERAL
 * subqueries (cleaning rules, inferred number formats and date patterns): it would cache each
 * row's subquery by its (mostly distinct) values — all misses — and took a 1M-row cast of two
 * parsed columns from about 3 s to 5 s. Set back on for the statements that follow.
 */
async function withoutMemoize<T>(client: pg.PoolClient, plan: CastPlan, run: () => Promise<T>): Promise<T> {
  const parsed = plan.rules !== undefined || plan.columns.some((c) => c.parse);
  if (!parsed) return run();
  await client.query('SET LOCAL enable_memoize = off');
  // on a failure the caller rolls back to its savepoint, which undoes the SET as well
  const result = await run();
  await client.query('SET LOCAL enable_memoize = on');
  return result;
}

function modeOf(plan: CastPlan): LoadMode {
  return plan.mode ?? (plan.append ? 'append' : 'replace');
}

/**
 * History (type 2), each load a full snapshot: the current version of a key whose values changed,
 * or that the load no longer has, is closed (`valid_to` = the load's time); changed and new keys
 * get a new current version (`valid_from` = the load's time, `valid_to` NULL); unchanged keys keep
 * theirs. Returns the versions written.
 */
async function applyHistory(client: pg.PoolClient, plan: CastPlan, cast: (c: CastColumn) => string, passed: string, from: string): Promise<{ rowsLoaded: number; rowsQuarantined: number }> {
  const { target, quarantine, loadId } = plan;
  const keyColumns = plan.key.map((k) => plan.columns.find((c) => c.name === k)!);
  const keyMatch = keyColumns.map((c) => `t.${ident(c.name)} = n.${ident(c.name)}`).join(' AND ');
  const names = plan.columns.map((c) => ident(c.name));
  const geometry = plan.geometry ? [ident(plan.geometry.column)] : [];
  const incoming = `SELECT ${[...plan.columns.map((c) => `${cast(c)} AS ${ident(c.name)}`), ...(plan.geometry ? [`${geometryExpr(plan.geometry)} AS ${ident(plan.geometry.column)}`] : [])].join(', ')},
                           s._source_line FROM ${from} WHERE ${passed}`;
  await client.query(`CREATE TEMPORARY TABLE civic_etl_incoming ON COMMIT DROP AS ${incoming}`, [loadId]);
  const all = [...names, ...geometry];
  // closed: current versions whose key is gone, or whose values differ
  await client.query(
    `UPDATE ${target} t SET valid_to = now()
      WHERE t.valid_to IS NULL
        AND NOT EXISTS (SELECT 1 FROM civic_etl_incoming n WHERE ${keyMatch}
                          AND (${all.map((c) => `t.${c}`).join(', ')}) IS NOT DISTINCT FROM (${all.map((c) => `n.${c}`).join(', ')}))`,
  );
  const inserted = await client.query(
    `INSERT INTO ${target} (${all.join(', ')}, _load_id, _source_line, valid_from)
     SELECT ${all.map((c) => `n.${c}`).join(', ')}, $1, n._source_line, now() FROM civic_etl_incoming n
      WHERE NOT EXISTS (SELECT 1 FROM ${target} t WHERE t.valid_to IS NULL AND ${keyMatch})`,
    [loadId],
  );
  await client.query('DROP TABLE civic_etl_incoming');
  const { rows } = await client.query<{ n: string }>(`SELECT count(DISTINCT source_line) AS n FROM ${quarantine} WHERE load_id = $1`, [loadId]);
  return { rowsLoaded: inserted.rowCount ?? 0, rowsQuarantined: Number(rows[0]!.n) };
}

/**
 * No rule that needs row-by-row checks: required values, keys, invalid geometry quarantined,
 * constraints of cleaning rules, records a newer object deleted. (Normalising and casting with a locale format raise on a bad
 * value in the one statement, like plain casts.)
 */
function oneStatementWillDo(plan: CastPlan): boolean {
  const tombstoned = plan.lineage && plan.newerApplied !== false && (plan.tombstones?.length ?? 0) > 0;
  return plan.key.length === 0 && !tombstoned && plan.columns.every((c) => !c.required) && plan.geometry?.invalid !== 'quarantine' && !rulesNeedChecks(plan.rules);
}

/** INSERT … SELECT of the cast rows; `filtered` leaves out the rows in quarantine for this load. */
function insertSql(plan: CastPlan, filtered: boolean): string {
  const rows = compileRows(plan.columns, plan.rules, filtered ? 'trusted' : 'optimistic');
  const geometry = plan.geometry;
  const names = [...plan.columns.map((c) => ident(c.name)), ...(geometry ? [ident(geometry.column)] : [])].join(', ');
  const values = [...plan.columns.map((c) => rows.value(c)), ...(geometry ? [geometryExpr(geometry, 's', !filtered)] : [])].join(', ');
  const where = filtered ? passedSql(plan.quarantine) : 'true';
  const from = `${plan.staging} s${rows.joins}`;
  return plan.lineage
    ? `INSERT INTO ${plan.target} (${names}, _load_id, _source_line) SELECT ${values}, $1, s._source_line FROM ${from} WHERE ${where}`
    : `INSERT INTO ${plan.target} (${names}) SELECT ${values} FROM ${from} WHERE ${where} AND $1::bigint IS NOT NULL`;
}

/** What a bad value makes PostgreSQL or PostGIS raise: data exceptions (22…) and PostGIS's parse errors (XX000). */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'XX000' || (typeof code === 'string' && code.startsWith('22'));
}
