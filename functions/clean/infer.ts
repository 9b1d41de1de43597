import type pg from 'pg';
import type { ColumnType } from '../../contract/definition.ts';
import { ident } from '../common/db.ts';

/**
 * The narrowest type that at least `threshold` (a share, 1 = all) of each column's non-empty
 * values are written as, decided in one scan: integer, bigint, numeric, date, timestamp(tz),
 * boolean, else text. Values count by their written form (patterns, no exception per value);
 * dates and timestamps must also name a real day. Values that then fail the cast become rejects,
 * with line and reason. Numbers written with a leading zero (postcodes, codes) stay text so no
 * digit is lost.
 */
export async function inferTypes(client: pg.PoolClient, staging: string, columns: readonly string[], threshold = 1): Promise<ColumnType[]> {
  if (columns.length === 0) return [];
  const candidates: [ColumnType, (v: string) => string][] = [
    ['integer', (v) => `${v} ~ '^[+-]?[0-9]{1,9}$'`],
    ['bigint', (v) => `${v} ~ '^[+-]?[0-9]{1,18}$'`],
    ['numeric', (v) => `${v} ~ '^[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]{1,2})?$'`],
    ['date', (v) => `${v} ~ '^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}/[0-9]{1,2}/[0-9]{4})$' AND etl.is_valid_as(${v}, 'date')`],
    [
      'timestamp',
      (v) => `${v} ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}' AND etl.is_valid_as(${v}, 'timestamp')`,
    ],
    ['boolean', (v) => `lower(${v}) IN ('true', 'false', 't', 'f', 'yes', 'no', 'y', 'n')`],
  ];
  const parts = columns.map((c, i) => {
    const v = `NULLIF(btrim(${ident(c)}), '')`;
    return [
      ...candidates.map(([, test], j) => `count(*) FILTER (WHERE ${test(v)}) AS c${i}_${j}`),
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
