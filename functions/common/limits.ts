/**
 * How many columns a file may have. PostgreSQL allows at most 1600 columns in a table
 * (MaxHeapAttributeNumber, dropped columns included); the tables civic-etl makes from a file add
 * columns of their own, so a file may have fewer:
 *
 * | where                          | the table                                         | extra | a file may have |
 * | ------------------------------ | ------------------------------------------------- | ----- | --------------- |
 * | `civic-etl load`               | staging: `_source_line`; the table: `geom` (lat/lon) | 1   | 1599            |
 * | the pipeline's stage step      | staging: `_source_line`, `_load_id`, `_s3_key`, `_s3_version` | 4 | 1596   |
 * | the pipeline's clean step      | `_load_id`, `_source_line`, `geom`, history's `valid_from`/`valid_to` | ≤ 5 | 1595 in mode history, else 1596 |
 *
 * A file with more fails before anything is made, naming the file, its column count and the
 * limit, instead of PostgreSQL's bare "tables can have at most 1600 columns".
 */
import { PermanentError } from './errors.ts';

/** PostgreSQL's limit on the columns of one table. */
export const PG_MAX_COLUMNS = 1600;

/** Columns the pipeline's staging table adds to a file's: `_source_line`, `_load_id`, `_s3_key`, `_s3_version`. */
export const PIPELINE_STAGING_EXTRA = 4;

/** Columns `civic-etl load` adds: `_source_line` in staging, or a `geom` made from lat/lon in the table. */
export const LOAD_EXTRA = 1;

/** Columns a clean table adds to a file's: lineage, a geometry made from lat/lon, history's validity. */
export function cleanExtra(history: boolean): number {
  return 2 + 1 + (history ? 2 : 0);
}

/** The most columns a file may have in `civic-etl load`, or in a dataset of the pipeline. */
export function maxFileColumns(where: 'load' | { history: boolean }): number {
  if (where === 'load') return PG_MAX_COLUMNS - LOAD_EXTRA;
  return PG_MAX_COLUMNS - Math.max(PIPELINE_STAGING_EXTRA, cleanExtra(where.history));
}

/** The error for a file with more columns than `limit`. */
export function tooManyColumns(file: string, columns: number, limit: number): PermanentError {
  return new PermanentError(
    `${file}: ${columns} columns, more than the ${limit} a file can have here (PostgreSQL allows ${PG_MAX_COLUMNS} columns in a table, and ${PG_MAX_COLUMNS - limit} are taken by civic-etl's own columns); split the file, or keep fewer columns`,
    { file, line: 1 },
  );
}

/** PostgreSQL's "tables can have at most 1600 columns" (54011). */
export function isTooManyColumns(error: unknown): boolean {
  return (error as { code?: string }).code === '54011';
}

/**
 * What a reader takes from one file before it gives up with a permanent error naming the file,
 * the limit and the position: a small hostile file (a cell at column ZZZZZZZ, a row repeated a
 * billion times, a gzip bomb) then fails in bounded memory, disk and time instead of killing the
 * process. A dataset may change them (`read.limits`); every one has a default that fits the
 * stage function (1 GiB of memory, 8 GiB of /tmp).
 */
export interface ReadLimits {
  /**
   * Columns a reader makes (a sheet's cells, JSON and GeoJSON keys): a cell right of this column, a
   * key that would add one more, is refused (default 1,600, what PostgreSQL holds in a table;
   * at most 16,384, column XFD, the width of a sheet in Excel and LibreOffice).
   */
  maxColumns: number;
  /** Rows of a sheet: a row below this one is refused (default 1,048,576, the height of a sheet in Excel and LibreOffice). */
  maxRows: number;
  /** Cells a sheet's repeated rows may expand to (ODS `table:number-rows-repeated` on a row with values; default 16,777,216). */
  maxRepeatedCells: number;
  /**
   * Characters of one cell or shared string (default 1,048,576; Excel holds 32,767); a GeoPackage
   * value too, a blob counting two per byte (its hex text).
   */
  maxCellChars: number;
  /**
   * Records a file declares before they are read — a Parquet footer's rows, a DBF header's
   * records, a GeoPackage layer's rows (default 100,000,000: past what a stage function stages in
   * its 10 minutes).
   */
  maxRecords: number;
  /**
   * Cells (rows × columns) of one Parquet row group, which the reader decodes whole (default
   * 16,777,216, as `maxRepeatedCells`: some 500 MB of decoded values at most; a 5 KB file can
   * declare a million rows of 17 constant columns).
   */
  maxGroupCells: number;
  /** Bytes expanded from gzip and zip, every nesting level together (default 4 GiB). */
  maxExpandedBytes: number;
  /** Largest expansion of a compressed stream (gzip, a zip member) over its compressed size (default 1,000×; the first MiB is exempt). */
  maxRatio: number;
  /** Members of an archive, nested ones included (default 10,000). */
  maxMembers: number;
  /**
   * Tables one file may bring — an archive's data files, a GeoPackage's layers, a JSON file's
   * exploded arrays — each staged and cleaned as a load of its own, all in one clean transaction
   * (default 1,000: each costs a ledger row, a staging table, a catalogue entry, a quality report
   * and a lock in that transaction, some 30 ms together; 5,000 took 130 s).
   */
  maxTables: number;
  /** gzip and zip layers inside the outermost one, counted by their content whatever their names (default 1: a zip in a zip, a .gz in a zip). */
  maxDepth: number;
  /**
   * Seconds one pass over a table's rows may take (default 480: a stage function has 10 minutes,
   * and the failure must still be recorded). CSV, passed to COPY as it streams, is not timed.
   */
  maxSeconds: number;
}

export const DEFAULT_READ_LIMITS: Readonly<ReadLimits> = Object.freeze({
  maxColumns: PG_MAX_COLUMNS,
  maxRows: 1_048_576,
  maxRepeatedCells: 16_777_216,
  maxCellChars: 1_048_576,
  maxRecords: 100_000_000,
  maxGroupCells: 16_777_216,
  maxExpandedBytes: 4 * 1024 ** 3,
  maxRatio: 1000,
  maxMembers: 10_000,
  maxTables: 1_000,
  maxDepth: 1,
  maxSeconds: 480,
});

/** The limits in force: the defaults, with what a dataset sets. */
export function readLimits(overrides: Partial<ReadLimits> | undefined): ReadLimits {
  return { ...DEFAULT_READ_LIMITS, ...overrides };
}
