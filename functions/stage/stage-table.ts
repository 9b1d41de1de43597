import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ident } from '../common/db.ts';
import type { ReadRow, ReadTable, SourceGeometry } from '../read/types.ts';
import { stagingColumns } from './copy.ts';

export interface StagedTable {
  rows: number;
  /** Source headings, as the reader named them. */
  header: string[];
  /** Staging column names, one per heading. */
  columns: string[];
  /** What was read, as recorded in the ledger (`detected`). */
  detected: {
    format: ReadTable['format'];
    columns: string[];
    unit: ReadTable['unit'];
    /** The geometry column (its staging name), how it is written, and the source SRID when known. */
    geometry?: SourceGeometry;
    /** For a child table of exploded JSON arrays: the array's path (`lines.parts`); it is cleaned into a table of its own. */
    child?: string;
    warnings: string[];
  };
}

/** Rows are sent to COPY in chunks of about this many bytes. */
const CHUNK = 256 * 1024;

/**
 * Stage the rows of a reader's table with COPY into `table` (text columns plus `_source_line` =
 * the row/feature position, plus the given constant lineage columns), on the caller's client and
 * transaction. A column the reader discovers midway (a JSON key first seen at row 10,000) is
 * added to the table between two COPY statements — a metadata-only change — so one pass suffices.
 */
export async function stageTable(
  client: pg.PoolClient,
  source: ReadTable,
  opts: {
    table: string;
    lineage?: Record<string, { type: 'bigint' | 'text'; value: string }>;
    /** A session's temporary table, or an unlogged one (readable by parallel workers); default a plain table. */
    persistence?: 'temporary' | 'unlogged';
  },
): Promise<StagedTable> {
  let columns = stagingColumns(source.columns);
  const lineage = Object.entries(opts.lineage ?? {}).map(([name, c]) => `, ${ident(name)} ${c.type} NOT NULL DEFAULT ${c.value}`);
  await client.query(`DROP TABLE IF EXISTS ${opts.table}`);
  await client.query(
    `CREATE ${opts.persistence === 'temporary' ? 'TEMPORARY ' : opts.persistence === 'unlogged' ? 'UNLOGGED ' : ''}TABLE ${opts.table} (${columns.map((c) => `${ident(c)} text`).join(', ')}${columns.length ? ',' : ''}
       _source_line bigint NOT NULL${lineage.join('')})`,
  );
  const rows = source.rows()[Symbol.asyncIterator]();
  let carried: ReadRow | undefined;
  let done = false;
  let count = 0;
  while (!done) {
    const width = columns.length;
    const batch = encodeRows(rows, carried, width, () => source.columns.length > width, (row) => (carried = row), () => (done = true));
    carried = undefined;
    const list = [...columns, '_source_line'].map(ident).join(', ');
    const sink = client.query(copyFrom(`COPY ${opts.table} (${list}) FROM STDIN WITH (FORMAT text, ENCODING 'UTF8')`));
    await pipeline(Readable.from(batch, { objectMode: false }), sink);
    count += Number(sink.rowCount ?? 0);
    if (source.columns.length > width) {
      // new columns: name them like the others (unique against the existing ones) and add them
      const all = stagingColumns(source.columns);
      const added = all.slice(width);
      await client.query(`ALTER TABLE ${opts.table} ${added.map((c) => `ADD COLUMN ${ident(c)} text`).join(', ')}`);
      columns = [...columns, ...added];
    }
  }
  const geometry = source.geometry && {
    ...source.geometry,
    column: columns[source.columns.indexOf(source.geometry.column)] ?? source.geometry.column,
  };
  return {
    rows: count,
    header: [...source.columns],
    columns,
    detected: { format: source.format, columns, unit: source.unit, geometry, child: childPath(source), warnings: source.warnings },
  };
}

/**
 * Rows as COPY text-format bytes (see encodeRow).
 * Stops (without consuming the row) when the reader has announced more columns than `width`.
 */
async function* encodeRows(
  rows: AsyncIterator<ReadRow>,
  carried: ReadRow | undefined,
  width: number,
  grew: () => boolean,
  carry: (row: ReadRow) => void,
  finish: () => void,
): AsyncGenerator<Buffer> {
  let out = '';
  let next: ReadRow | undefined = carried;
  for (;;) {
    if (!next) {
      const r = await rows.next();
      if (r.done) {
        finish();
        break;
      }
      next = r.value;
      if (grew()) {
        carry(next);
        break;
      }
    }
    out += encodeRow(next, width);
    next = undefined;
    if (out.length >= CHUNK) {
      yield Buffer.from(out, 'utf8');
      out = '';
    }
  }
  if (out) yield Buffer.from(out, 'utf8');
}

const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * One row in COPY's text format: tab-separated, `\N` for NULL, backslash escapes for backslash,
 * tab, newline and carriage return. Unlike CSV, quotes need no doubling — GeoJSON and JSON text,
 * full of quotes, go through as they are.
 */
export function encodeRow(row: ReadRow, width: number): string {
  let line = '';
  const { values } = row;
  for (let i = 0; i < width; i++) {
    const v = i < values.length ? values[i] : null;
    if (v === null || v === undefined) line += '\\N\t';
    else if (NEEDS_ESCAPE.test(v)) line += `${v.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]!)}\t`;
    else line += `${v}\t`;
  }
  return `${line}${row.position}\n`;
}

/** JSON readers name a child table `<file>#<path>`: the path, for those. */
function childPath(source: ReadTable): string | undefined {
  if (source.format !== 'json' && source.format !== 'ndjson') return undefined;
  const at = source.name.lastIndexOf('#');
  return at < 0 ? undefined : source.name.slice(at + 1);
}
