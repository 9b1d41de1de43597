import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ident, literal } from '../common/db.ts';
import { objectVersion, type ObjectRef } from '../common/ledger.ts';
import { PermanentError } from '../common/errors.ts';
import { tooManyColumns } from '../common/limits.ts';
import type { Encoding, Structure } from '../profile/types.ts';
import type { DeclaredType, ReadRow, ReadTable, SourceGeometry } from '../read/types.ts';
import { stagingColumns } from './copy.ts';
import { COPY_CHUNK as CHUNK, CopyBinaryBuffer } from './copy-binary.ts';

export interface StagedTable {
  rows: number;
  /** Source headings, as the reader named them. */
  header: string[];
  /** Staging column names, one per heading. */
  columns: string[];
  /** Types the file declares for its columns (one per heading, `undefined` where none), when it declares any (ReadTable.declaredTypes). */
  declaredTypes?: (DeclaredType | undefined)[];
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

/** Constant lineage columns of a staging table: name → type and SQL constant (already quoted). */
export type StagingLineage = Record<string, { type: 'bigint' | 'text'; value: string }>;

/**
 * (Re)create a staging table: one text column per staging column name, `_source_line`, then the
 * constant lineage columns (a DEFAULT each, so COPY need not send them).
 */
export async function createStagingTable(
  client: pg.PoolClient,
  opts: {
    table: string;
    columns: readonly string[];
    lineage?: StagingLineage;
    persistence?: 'temporary' | 'unlogged';
    /** Partitioned by `_source_line`, for a file staged in parts (parts.ts attaches one partition per part). */
    partitioned?: boolean;
  },
): Promise<void> {
  const { table, columns } = opts;
  const lineage = Object.entries(opts.lineage ?? {}).map(([name, c]) => `, ${ident(name)} ${c.type} NOT NULL DEFAULT ${c.value}`);
  await client.query(`DROP TABLE IF EXISTS ${table}`);
  await client.query(
    `CREATE ${opts.persistence === 'temporary' ? 'TEMPORARY ' : opts.persistence === 'unlogged' ? 'UNLOGGED ' : ''}TABLE ${table} (${columns.map((c) => `${ident(c)} text`).join(', ')}${columns.length ? ',' : ''}
       _source_line bigint NOT NULL${lineage.join('')})${opts.partitioned ? ' PARTITION BY RANGE (_source_line)' : ''}`,
  );
}

/** What a staged CSV object's load records of its detected structure (`etl.loads.detected`), whether staged whole or in parts. */
export function detectedCsvLayout(structure: Structure): Pick<Structure, 'encoding' | 'encodingDeclared' | 'bom' | 'delimiter' | 'quote' | 'lineEnding' | 'headerRow'> {
  const { encoding, encodingDeclared, bom, delimiter, quote, lineEnding, headerRow } = structure;
  return { encoding, ...(encodingDeclared ? { encodingDeclared } : {}), bom, delimiter, quote, lineEnding, headerRow };
}

/** The lineage every staged row of an object carries: its load, and the S3 object version it came from. */
export function objectLineage(loadId: number, ref: ObjectRef): StagingLineage {
  return {
    _load_id: { type: 'bigint', value: `${loadId}` },
    _s3_key: { type: 'text', value: literal(ref.key) },
    _s3_version: { type: 'text', value: literal(objectVersion(ref)) },
  };
}

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
    lineage?: StagingLineage;
    /** A session's temporary table, or an unlogged one (readable by parallel workers); default a plain table. */
    persistence?: 'temporary' | 'unlogged';
    /** The most columns the table may have (common/limits.ts): more fails, naming the count. */
    maxColumns?: number;
  },
): Promise<StagedTable> {
  const checkWidth = (n: number) => {
    if (opts.maxColumns !== undefined && n > opts.maxColumns) throw tooManyColumns(source.name, n, opts.maxColumns);
    // PostgreSQL's protocol cannot carry a NUL in a name: say which field, instead of a protocol error
    const nul = source.columns.findIndex((c) => c.includes('\u0000'));
    if (nul >= 0) {
      const shown = JSON.stringify(source.columns[nul]);
      throw new PermanentError(`${source.name}: field ${nul + 1} is named ${shown}, with a NUL character, which no PostgreSQL name can hold`, { file: source.name, column: shown });
    }
  };
  checkWidth(source.columns.length);
  let columns = stagingColumns(source.columns);
  await createStagingTable(client, { ...opts, columns });
  const rows = source.rows()[Symbol.asyncIterator]();
  let carried: ReadRow | undefined;
  let done = false;
  let count = 0;
  while (!done) {
    const width = columns.length;
    const batch = encodeRows(
      rows,
      carried,
      width,
      () => source.columns.length > width,
      (row) => (carried = row),
      () => (done = true),
    );
    carried = undefined;
    const list = [...columns, '_source_line'].map(ident).join(', ');
    const sink = client.query(copyFrom(`COPY ${opts.table} (${list}) FROM STDIN WITH (FORMAT binary)`));
    await pipeline(Readable.from(batch, { objectMode: false }), sink);
    count += Number(sink.rowCount ?? 0);
    if (source.columns.length > width) {
      // new columns: name them like the others (unique against the existing ones) and add them
      checkWidth(source.columns.length);
      const all = stagingColumns(source.columns);
      const added = all.slice(width);
      await client.query(`ALTER TABLE ${opts.table} ${added.map((c) => `ADD COLUMN ${ident(c)} text`).join(', ')}`);
      columns = [...columns, ...added];
    }
  }
  if (columns.length === 0) {
    // nothing a clean table could be made of (the clean step would fail on an empty column list)
    throw new PermanentError(`${source.name}: no fields to load — the file holds no records with fields (an empty JSON array or object, or null?)`, { file: source.name });
  }
  const geometry = source.geometry && {
    ...source.geometry,
    column: columns[source.columns.indexOf(source.geometry.column)] ?? source.geometry.column,
  };
  return {
    rows: count,
    header: [...source.columns],
    columns,
    declaredTypes: source.declaredTypes?.(),
    detected: { format: source.format, columns, unit: source.unit, geometry, child: childPath(source), warnings: source.warnings },
  };
}

/**
 * Rows in COPY's binary format (see CopyBinaryWriter), in buffers of about CHUNK bytes.
 * Stops (without consuming the row) when the reader has announced more columns than `width`.
 */
async function* encodeRows(rows: AsyncIterator<ReadRow>, carried: ReadRow | undefined, width: number, grew: () => boolean, carry: (row: ReadRow) => void, finish: () => void): AsyncGenerator<Buffer> {
  const out = new CopyBinaryWriter();
  out.header();
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
    out.row(next, width);
    next = undefined;
    if (out.length >= CHUNK) yield out.take();
  }
  out.trailer();
  yield out.take();
}

/**
 * COPY's binary format, written value by value straight into buffers: per row the number of
 * fields, then each text value as its length and its UTF-8 bytes (-1 for NULL), and
 * `_source_line` as an 8-byte integer. Nothing is escaped, and PostgreSQL takes each value whole
 * instead of scanning every byte for delimiters and escapes: on a shapefile's or a GeoJSON file's
 * hex WKB, the server spends about half the time it needs for the text format.
 */
class CopyBinaryWriter extends CopyBinaryBuffer {
  row(row: ReadRow, width: number): void {
    const { values } = row;
    this.room(2 + 4 * width + 12);
    this.length = this.buf.writeUInt16BE(width + 1, this.length);
    for (let i = 0; i < width; i++) {
      const v = i < values.length ? values[i] : null;
      if (v === null || v === undefined) {
        this.room(4);
        this.length = this.buf.writeInt32BE(-1, this.length);
      } else {
        this.room(4 + 3 * v.length); // a UTF-16 unit takes at most 3 bytes in UTF-8
        const bytes = this.buf.write(v, this.length + 4, 'utf8');
        this.buf.writeUInt32BE(bytes, this.length);
        this.length += 4 + bytes;
      }
    }
    this.room(12);
    this.length = this.buf.writeUInt32BE(8, this.length);
    this.length = this.buf.writeUInt32BE(Math.floor(row.position / 2 ** 32), this.length);
    this.length = this.buf.writeUInt32BE(row.position >>> 0, this.length);
  }
}

/** JSON readers name a child table `<file>#<path>`: the path, for those. */
function childPath(source: ReadTable): string | undefined {
  if (source.format !== 'json' && source.format !== 'ndjson') return undefined;
  const at = source.name.lastIndexOf('#');
  return at < 0 ? undefined : source.name.slice(at + 1);
}

/** The detector's hints from a dataset's read options: a declared encoding is marked so (it wins, and the report says so). */
export function readHints(read: { delimiter?: string; encoding?: Encoding }): Partial<Pick<Structure, 'encoding' | 'delimiter' | 'encodingDeclared'>> | undefined {
  const hints = { ...(read.delimiter ? { delimiter: read.delimiter } : {}), ...(read.encoding ? { encoding: read.encoding, encodingDeclared: true as const } : {}) };
  return Object.keys(hints).length > 0 ? hints : undefined;
}
