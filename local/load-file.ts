import { createReadStream, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type pg from 'pg';
import { COLUMN_TYPES, type ColumnType } from '../contract/definition.ts';
import { castInto, quarantineTableSql, type CastColumn } from '../functions/clean/cast.ts';
import { launder, normaliseHeader } from '../functions/clean/columns.ts';
import { ident, inTransaction } from '../functions/common/db.ts';
import { PermanentError, isPermanent } from '../functions/common/errors.ts';
import { markFailed, markLoaded, markStaged, receiveObject } from '../functions/common/ledger.ts';
import { migrate } from '../functions/migrate/migrate.ts';

import { stageCsv } from '../functions/stage/stage-object.ts';

export interface LoadFileOptions {
  /** `schema.table` (or `table`, in `public`). */
  table: string;
  delimiter?: string;
  /** Append to an existing table instead of replacing its rows. */
  append?: boolean;
  /** Drop and recreate the table with freshly inferred types. */
  recreate?: boolean;
  /**
   * Share of a column's non-empty values that must cast for it to get a type (default 0.99): the
   * few that do not are rejected with their line. 1 keeps a column text unless every value casts.
   */
  typeThreshold?: number;
}

export interface LoadFileResult {
  table: string;
  rejectsTable: string;
  rowsRead: number;
  rowsLoaded: number;
  rowsRejected: number;
  created: boolean;
  columns: { name: string; type: ColumnType; from: string }[];
  delimiter: string;
}

/**
 * One CSV file straight into a table, like csvsql or ogr2ogr: detect how it is written, stage it
 * with COPY, infer column types (when the table is new), cast, and put rows that do not cast into
 * `<table>_rejects` with the line and reason. All in one transaction: a failure leaves no table
 * and no half-loaded rows. Recorded in the ledger like any other load.
 */
export async function loadFile(pool: pg.Pool, file: string, opts: LoadFileOptions): Promise<LoadFileResult> {
  const [schema, name] = opts.table.includes('.') ? (opts.table.split('.', 2) as [string, string]) : ['public', opts.table];
  if (!schema || !name) throw new PermanentError(`--table must be schema.table, got "${opts.table}"`);
  const path = resolve(file);
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat?.isFile()) throw new PermanentError(`${file}: no such file`, { file });
  await migrate(pool, undefined);
  const { load } = await receiveObject(pool, schema, name, {
    bucket: 'local-file',
    key: path,
    versionId: `loaded-${new Date().toISOString()}`,
    size: stat.size,
  });
  const target = `${ident(schema)}.${ident(name)}`;
  const rejectsTable = `${ident(schema)}.${ident(`${name}_rejects`)}`;
  try {
    return await inTransaction(pool, async (client) => {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`);
      const staging = 'pg_temp.civic_etl_load';
      const staged = await stageCsv(client, { file, source: createReadStream(path, { highWaterMark: 256 * 1024 }), table: staging, delimiter: opts.delimiter, temporary: true });
      await markStaged(client, load.id, { rowsRead: staged.rows, stagingTable: staging, header: staged.structure.header, detected: staged.detected, ms: 0 });

      if (opts.recreate) await client.query(`DROP TABLE IF EXISTS ${target}`);
      const existing = await tableColumns(client, schema, name);
      let columns: CastColumn[];
      if (existing.length > 0) {
        const byNorm = new Map(staged.structure.header.map((h, i) => [normaliseHeader(h), staged.columns[i]!]));
        launder(staged.structure.header).forEach((l, i) => { if (!byNorm.has(normaliseHeader(l))) byNorm.set(normaliseHeader(l), staged.columns[i]!); });
        columns = existing.map((c) => {
          const from = byNorm.get(normaliseHeader(c.name));
          if (!from) throw new PermanentError(`${file}: table ${opts.table} has column "${c.name}", which is not in the file's header`, { file, line: 1, column: c.name });
          return { name: c.name, type: c.type, required: false, from };
        });
      } else {
        const types = await inferTypes(client, staging, staged.columns, opts.typeThreshold ?? 0.99);
        const names = launder(staged.columns);
        columns = staged.columns.map((from, i) => ({ name: names[i]!, type: types[i]!, required: false, from }));
        await client.query(`CREATE TABLE ${target} (${columns.map((c) => `${ident(c.name)} ${sqlType(c.type)}`).join(', ')})`);
      }
      await client.query(quarantineTableSql(rejectsTable, `${name}_rejects_load`));
      const { rowsLoaded, rowsQuarantined } = await castInto(client, {
        staging,
        target,
        quarantine: rejectsTable,
        columns,
        key: [],
        loadId: load.id,
        lineage: false,
        append: opts.append,
      });
      await markLoaded(client, load.id, { rowsLoaded, rowsQuarantined, ms: 0 });
      return {
        table: `${schema}.${name}`,
        rejectsTable: `${schema}.${name}_rejects`,
        rowsRead: staged.rows,
        rowsLoaded,
        rowsRejected: rowsQuarantined,
        created: existing.length === 0,
        columns: columns.map(({ name: n, type, from }) => ({ name: n, type, from })),
        delimiter: staged.structure.delimiter,
      };
    });
  } catch (error) {
    if (isPermanent(error)) await markFailed(pool, load.id, error);
    else await markFailed(pool, load.id, new PermanentError((error as Error).message));
    throw error;
  }
}

const sqlType = (t: ColumnType) => COLUMN_TYPES[t];
const FROM_CATALOG: Record<string, ColumnType> = {
  text: 'text',
  'character varying': 'text',
  integer: 'integer',
  smallint: 'integer',
  bigint: 'bigint',
  numeric: 'numeric',
  'double precision': 'double',
  real: 'double',
  boolean: 'boolean',
  date: 'date',
  'timestamp without time zone': 'timestamp',
  'timestamp with time zone': 'timestamptz',
};

async function tableColumns(client: pg.PoolClient, schema: string, name: string): Promise<{ name: string; type: ColumnType }[]> {
  const { rows } = await client.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type FROM pg_attribute a
      WHERE a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [schema, name],
  );
  return rows.map((r) => ({ name: r.name, type: FROM_CATALOG[r.type] ?? 'text' }));
}

/**
 * The narrowest type that at least `threshold` (a share, 1 = all) of each column's non-empty
 * values cast to, decided in one query: integer, bigint, numeric, date, timestamp(tz), boolean,
 * else text. The values that do not cast become rejects, with line and reason. Numbers written
 * with a leading zero (postcodes, codes) stay text so no digit is lost.
 */
export async function inferTypes(client: pg.PoolClient, staging: string, columns: readonly string[], threshold = 1): Promise<ColumnType[]> {
  const candidates: [ColumnType, string][] = [
    ['integer', 'integer'],
    ['bigint', 'bigint'],
    ['numeric', 'numeric'],
    ['date', 'date'],
    ['timestamp', 'timestamp'],
    ['boolean', 'boolean'],
  ];
  const parts = columns.map((c, i) => {
    const v = `NULLIF(btrim(${ident(c)}), '')`;
    const tests = candidates.map(([, t]) => `count(*) FILTER (WHERE ${v} IS NOT NULL AND etl.is_valid_as(${v}, '${t}'))`);
    return [
      ...tests.map((t, j) => `${t} AS c${i}_${j}`),
      `count(${v}) AS c${i}_n`,
      `coalesce(bool_or(${v} ~ '^[+-]?0[0-9]'), false) AS c${i}_zero`,
      `coalesce(bool_or(${v} ~ '(Z|[+-][0-9]{2}(:?[0-9]{2})?)$' AND ${v} ~ '[0-9]{2}:[0-9]{2}'), false) AS c${i}_tz`,
    ].join(', ');
  });
  await client.query(`SET LOCAL datestyle = 'ISO, MDY'`);
  const { rows } = await client.query<Record<string, boolean | string>>(`SELECT ${parts.join(', ')} FROM ${staging}`);
  const r = rows[0]!;
  return columns.map((_, i) => {
    const n = Number(r[`c${i}_n`]);
    if (n === 0) return 'text';
    const fits = (j: number) => Number(r[`c${i}_${j}`]) >= threshold * n;
    const numeric = [0, 1, 2].find(fits);
    if (numeric !== undefined) return r[`c${i}_zero`] === true ? 'text' : candidates[numeric]![0];
    if (fits(3)) return 'date';
    if (fits(4)) return r[`c${i}_tz`] === true ? 'timestamptz' : 'timestamp';
    if (fits(5)) return 'boolean';
    return 'text';
  });
}
