import type pg from 'pg';
import { COLUMN_TYPES, type ColumnType } from '../../contract/definition.ts';
import { ident } from '../common/db.ts';

/** A target column and the staging column (text) it is cast from. */
export interface CastColumn {
  name: string;
  type: ColumnType;
  required: boolean;
  /** Staging column name. */
  from: string;
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
}

/** SQL for a quarantine table: one row per failing value, with the rule that failed and the source line. */
export function quarantineTableSql(quarantine: string, indexName: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quarantine} (
      load_id bigint NOT NULL, source_line bigint NOT NULL, column_name text NOT NULL, raw_value text,
      rule text NOT NULL, reason text NOT NULL, quarantined_at timestamptz NOT NULL DEFAULT now());
    CREATE INDEX IF NOT EXISTS ${ident(indexName)} ON ${quarantine} (load_id, source_line)`;
}

/**
 * Cast staged text rows into typed rows, set-based, in three statements on the caller's
 * transaction: (1) every value that does not cast to its column's type, or is missing where
 * required, is written to quarantine; (2) rows whose key repeats an earlier row are quarantined
 * (the first one wins); (3) the remaining rows replace (or are appended to) the target.
 * Nothing is dropped or coerced silently: a row is either in the target or in quarantine.
 */
export async function castInto(client: pg.PoolClient, plan: CastPlan): Promise<{ rowsLoaded: number; rowsQuarantined: number }> {
  const { staging, target, quarantine, loadId } = plan;
  const raw = (c: CastColumn) => `s.${ident(c.from)}`;
  const value = (c: CastColumn) => (c.type === 'text' ? raw(c) : `NULLIF(btrim(${raw(c)}), '')`);
  const cast = (c: CastColumn) => (c.type === 'text' ? raw(c) : `${value(c)}::${COLUMN_TYPES[c.type]}`);

  await client.query(`SET LOCAL datestyle = 'ISO, MDY'`);
  const checks = plan.columns
    .map((c) => {
      const required = c.required || plan.key.includes(c.name); // key values cannot be empty
      const missing = required ? `WHEN NULLIF(btrim(${raw(c)}), '') IS NULL THEN 'required'` : ''; // blank text is missing too
      const badType = c.type === 'text' ? '' : `WHEN NOT etl.is_valid_as(${value(c)}, '${COLUMN_TYPES[c.type]}') THEN 'type'`;
      if (!missing && !badType) return undefined;
      const skipEmpty = required ? '' : `WHEN ${value(c)} IS NULL THEN NULL `;
      return `('${c.name}', ${raw(c)}, CASE ${missing} ${skipEmpty}${badType} END, '${c.type}')`;
    })
    .filter(Boolean);
  if (checks.length > 0) {
    await client.query(
      `INSERT INTO ${quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
       SELECT $1, s._source_line, v.col, v.raw, v.rule,
              CASE v.rule WHEN 'required' THEN 'required value is missing'
                          ELSE format('not a valid %s: %s', v.type, left(v.raw, 80)) END
         FROM ${staging} s CROSS JOIN LATERAL (VALUES ${checks.join(', ')}) AS v(col, raw, rule, type)
        WHERE v.rule IS NOT NULL`,
      [loadId],
    );
  }
  const passed = `NOT EXISTS (SELECT 1 FROM ${quarantine} q WHERE q.load_id = $1 AND q.source_line = s._source_line)`;

  const keyColumns = plan.key.map((k) => plan.columns.find((c) => c.name === k)!);
  if (keyColumns.length > 0) {
    await client.query(
      `INSERT INTO ${quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
       SELECT $1, d._source_line, $2, d.raw_key, 'unique', format('duplicate key: same %s as line %s', $2::text, d.first_line)
         FROM (SELECT s._source_line, concat_ws(', ', ${keyColumns.map(raw).join(', ')}) AS raw_key,
                      row_number() OVER w AS n, first_value(s._source_line) OVER w AS first_line
                 FROM ${staging} s WHERE ${passed}
               WINDOW w AS (PARTITION BY ${keyColumns.map(cast).join(', ')} ORDER BY s._source_line)) d
        WHERE d.n > 1`,
      [loadId, plan.key.join(', ')],
    );
  }

  // DELETE, not TRUNCATE: readers keep reading the old rows (MVCC) until the commit and are
  // never blocked — a TRUNCATE's exclusive lock could deadlock with a reader of a view.
  if (!plan.append) await client.query(`DELETE FROM ${target}`);
  const names = plan.columns.map((c) => ident(c.name)).join(', ');
  const inserted = await client.query(
    plan.lineage
      ? `INSERT INTO ${target} (${names}, _load_id, _source_line)
         SELECT ${plan.columns.map(cast).join(', ')}, $1, s._source_line FROM ${staging} s WHERE ${passed}`
      : `INSERT INTO ${target} (${names})
         SELECT ${plan.columns.map(cast).join(', ')} FROM ${staging} s WHERE ${passed} AND $1::bigint IS NOT NULL`,
    [loadId],
  );
  const { rows } = await client.query<{ n: string }>(`SELECT count(DISTINCT source_line) AS n FROM ${quarantine} WHERE load_id = $1`, [loadId]);
  return { rowsLoaded: inserted.rowCount ?? 0, rowsQuarantined: Number(rows[0]!.n) };
}
