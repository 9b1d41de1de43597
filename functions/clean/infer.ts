import type pg from 'pg';
import type { ColumnType } from '../../contract/definition.ts';
import { ident } from '../common/db.ts';

/** Records looked at to choose the types. */
export const SAMPLE_ROWS = 20_000;

/**
 * The narrowest type that at least `threshold` (a share, 1 = all) of each column's non-empty
 * values are written as, decided on a sample of about 20,000 records spread over the file:
 * integer, bigint, numeric, date, timestamp(tz), boolean, else text. Values count by their
 * written form (patterns, no exception per value); dates and timestamps must also name a real
 * day. The cast that follows checks every value: those that fail become rejects, with line and
 * reason. Numbers written with a leading zero (postcodes, codes) stay text so no digit is lost.
 * `rowCount`: the staging table's rows, when the caller knows it (saves counting them).
 */
export async function inferTypes(client: pg.PoolClient, staging: string, columns: readonly string[], threshold = 1, rowCount?: number): Promise<ColumnType[]> {
  if (columns.length === 0) return [];
  // each value's class, by the first pattern it matches: 1 integer, 2 bigint, 3 numeric, 4 date,
  // 5 timestamp, 6 boolean, 0 anything else — most values are settled by one or two patterns
  const classOf = (v: string) => `CASE WHEN ${v} IS NULL THEN NULL
      WHEN ${v} ~ '^[+-]?[0-9]{1,9}$' THEN 1
      WHEN ${v} ~ '^[+-]?[0-9]{1,18}$' THEN 2
      WHEN ${v} ~ '^[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]{1,2})?$' THEN 3
      WHEN ${v} ~ '^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}/[0-9]{1,2}/[0-9]{4})$' THEN CASE WHEN etl.is_valid_as(${v}, 'date') THEN 4 ELSE 0 END
      WHEN ${v} ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}' THEN CASE WHEN etl.is_valid_as(${v}, 'timestamp') THEN 5 ELSE 0 END
      WHEN lower(${v}) IN ('true', 'false', 't', 'f', 'yes', 'no', 'y', 'n') THEN 6
      ELSE 0 END`;
  const inner = columns.map((c, i) => {
    const v = `NULLIF(btrim(${ident(c)}), '')`;
    return `${classOf(v)} AS k${i}, ${v} AS v${i}`;
  });
  const parts = columns.map((_, i) =>
    [
      `count(*) FILTER (WHERE k${i} = 1) AS c${i}_0`,
      `count(*) FILTER (WHERE k${i} BETWEEN 1 AND 2) AS c${i}_1`,
      `count(*) FILTER (WHERE k${i} BETWEEN 1 AND 3) AS c${i}_2`,
      `count(*) FILTER (WHERE k${i} = 4) AS c${i}_3`,
      `count(*) FILTER (WHERE k${i} = 5) AS c${i}_4`,
      `count(*) FILTER (WHERE k${i} = 6) AS c${i}_5`,
      `count(k${i}) AS c${i}_n`,
      `coalesce(bool_or(k${i} BETWEEN 1 AND 3 AND v${i} ~ '^[+-]?0[0-9]'), false) AS c${i}_zero`,
      `coalesce(bool_or(k${i} = 5 AND v${i} ~ '(Z|[+-][0-9]{2}(:?[0-9]{2})?)$'), false) AS c${i}_tz`,
    ].join(', '),
  );
  const candidates: ColumnType[] = ['integer', 'bigint', 'numeric', 'date', 'timestamp', 'boolean'];
  await client.query(`SET LOCAL datestyle = 'ISO, MDY'`);
  // a sample spread over the whole file (every k-th record): enough to decide a type
  const size = rowCount ?? Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${staging}`)).rows[0]!.n);
  const every = Math.max(1, Math.ceil(size / SAMPLE_ROWS));
  const where = every === 1 ? '' : `WHERE _source_line % ${every} = 0`;
  const { rows } = await client.query<Record<string, boolean | string>>(
    // OFFSET 0 keeps the subquery whole: each class is computed once per value, not once per use
    `SELECT ${parts.join(', ')} FROM (SELECT ${inner.join(', ')} FROM ${staging} ${where} OFFSET 0) AS sample`,
  );
  const r = rows[0]!;
  return columns.map((_, i) => {
    const n = Number(r[`c${i}_n`]);
    if (n === 0) return 'text';
    const fits = (j: number) => Number(r[`c${i}_${j}`]) >= threshold * n;
    const numeric = [0, 1, 2].find(fits);
    if (numeric !== undefined) return r[`c${i}_zero`] === true ? 'text' : candidates[numeric]!;
    if (fits(3)) return 'date';
    if (fits(4)) return r[`c${i}_tz`] === true ? 'timestamptz' : 'timestamp';
    if (fits(5)) return 'boolean';
    return 'text';
  });
}
