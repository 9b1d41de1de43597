import type pg from 'pg';

/**
 * The tables of a load staged in parts (functions/stage/parts.ts), as the stage and clean steps
 * both name and check them. Kept apart from parts.ts so that the clean function does not bundle
 * the stage step's reading code.
 */

/** The table of part `part` of the staging table `staging`: "<schema>"."<name>" → "<schema>"."<name>__p<k>". */
export function partTable(staging: string, part: number): string {
  return staging.replace(/"$/, `__p${part}"`);
}

/**
 * Parts marked staged whose unlogged table holds none of the rows the ledger counted for it:
 * PostgreSQL's crash recovery empties every unlogged table (its WAL-less data cannot be trusted).
 */
export async function emptiedParts(client: Pick<pg.PoolClient, 'query'>, staging: string, parts: readonly { part: number; status: string; rows: string | number | null }[]): Promise<number[]> {
  const emptied: number[] = [];
  for (const p of parts) {
    if (p.status !== 'staged' || !(Number(p.rows) > 0)) continue;
    const table = partTable(staging, p.part);
    const { rows } = await client.query<{ unlogged: boolean; empty: boolean }>(
      `SELECT relpersistence = 'u' AS unlogged, NOT EXISTS (SELECT 1 FROM ${table}) AS empty FROM pg_class WHERE oid = $1::regclass`,
      [table],
    );
    if (rows[0]?.unlogged && rows[0].empty) emptied.push(p.part);
  }
  return emptied;
}
