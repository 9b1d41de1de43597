import type pg from 'pg';
import type { ColumnType } from '../../contract/definition.ts';
import { ident } from '../common/db.ts';

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
