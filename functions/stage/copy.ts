import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ident, literal } from '../common/db.ts';

/** Staging column names for a header: as written (trimmed, ≤ 63 bytes), blanks and repeats made unique. */
export function stagingColumns(header: readonly string[]): string[] {
  const seen = new Set<string>();
  return header.map((raw, i) => {
    let base = raw.trim() || `column_${i + 1}`;
    if (base.startsWith('_')) base = `c${base}`; // _ prefix is for lineage columns
    base = truncateBytes(base, 56);
    let name = base;
    for (let n = 2; seen.has(name.toLowerCase()); n++) name = `${base}_${n}`;
    seen.add(name.toLowerCase());
    return name;
  });
}

function truncateBytes(s: string, max: number): string {
  while (Buffer.byteLength(s) > max) s = s.slice(0, -1);
  return s;
}

/**
 * Stream CSV records (each already ending in its source-line field) into `table` with COPY.
 * Every empty field, quoted (`""`) or not, is NULL.
 * Bytes go to the server as they come: nothing is parsed into rows in Node.
 */
export async function copyCsv(client: pg.PoolClient, table: string, columns: readonly string[], delimiter: string, quote: string, records: AsyncIterable<Buffer>): Promise<number> {
  const list = [...columns, '_source_line'].map(ident).join(', ');
  // FORCE_NULL: a quoted empty field ("") is NULL, as an empty one is (README, "Empty values")
  const forceNull = columns.length > 0 ? `, FORCE_NULL (${columns.map(ident).join(', ')})` : '';
  const sql = `COPY ${table} (${list}) FROM STDIN WITH (FORMAT csv, DELIMITER ${literal(delimiter)}, QUOTE ${literal(quote)}, ENCODING 'UTF8'${forceNull})`;
  const sink = client.query(copyFrom(sql));
  await pipeline(Readable.from(records, { objectMode: false }), sink);
  return Number(sink.rowCount ?? 0);
}
