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
