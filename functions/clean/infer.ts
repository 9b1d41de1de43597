import type pg from 'pg';
import { ident, literal } from '../common/db.ts';
import { settleDateOrder, type TypeDecision } from '../profile/column-type.ts';
import { profileRows } from '../profile/profile.ts';
import type { Locale } from '../profile/types.ts';

/** Records looked at to choose the types. */
export const SAMPLE_ROWS = 20_000;

/**
 * The type of each staged column, by the one type inference the profiler uses
 * (functions/profile/column-type.ts), over a sample of about 20,000 records spread over the
 * file (every k-th line; all of them in a smaller file): the narrowest type that at least
 * `threshold` (a share, 1 = all) of the non-empty values fit, with how to read them (decimal
 * comma, thousands separators, date order). A column whose dates read both day-first and
 * month-first in the sample is settled by the whole column: one scan of those columns counts the
 * days above 12 in the first and in the second place. The cast that follows checks every value: those that fail become rejects, with
 * line and reason. `rowCount`: the staging table's rows, when the caller knows it.
 * `decimalComma`: the file writes numbers with a decimal comma (CSV detection), for columns that
 * read both ways (`1,234`).
 */
export async function inferTypes(
  client: pg.PoolClient,
  staging: string,
  columns: readonly string[],
  threshold = 1,
  rowCount?: number,
  opts: { decimalComma?: boolean; headers?: readonly string[]; locales?: readonly Locale[] } = {},
): Promise<TypeDecision[]> {
  if (columns.length === 0) return [];
  const size = rowCount ?? Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${staging}`)).rows[0]!.n);
  const every = Math.max(1, Math.ceil(size / SAMPLE_ROWS));
  const where = every === 1 ? '' : `WHERE _source_line % ${every} = 0`;
  const { rows } = await client.query<(string | null)[]>({ text: `SELECT ${columns.map(ident).join(', ')} FROM ${staging} ${where}`, rowMode: 'array' });
  // the profiler's column accumulators: the same types, formats (codes stay text) and recipes
  const profiles = profileRows(opts.headers ?? columns, rows, { typeThreshold: threshold, decimalComma: opts.decimalComma, locales: opts.locales });
  const decisions = profiles.map((p) => p.clean);
  // dates that read both ways in the sample: the whole column's values that read one way only settle the order
  const ambiguous = every > 1 ? decisions.flatMap((d, i) => (d.ambiguous ? [{ i, ...d.ambiguous }] : [])) : [];
  if (ambiguous.length > 0) {
    const parts = ambiguous.map(({ i, sep, yearDigits }) => {
      const v = `btrim(${ident(columns[i]!)})`;
      const s = `[${sep}]`;
      const dated = `${v} ~ ${literal(`^[0-9]{1,2}${s}[0-9]{1,2}${s}[0-9]{${yearDigits}}([ T]|$)`)}`;
      // CASE, not AND: only a value of the date's shape reaches the ::int
      const over = (part: number) => `count(*) FILTER (WHERE CASE WHEN ${dated} THEN split_part(${v}, ${literal(sep)}, ${part})::int > 12 END)`;
      return `${over(1)} AS f${i}, ${over(2)} AS s${i}`;
    });
    const { rows: found } = await client.query<Record<string, string>>(`SELECT ${parts.join(', ')} FROM ${staging}`);
    for (const { i } of ambiguous) decisions[i] = settleDateOrder(decisions[i]!, Number(found[0]![`f${i}`]), Number(found[0]![`s${i}`]));
  }
  return decisions;
}
