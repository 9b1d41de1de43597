import { createReadStream } from 'node:fs';
import type pg from 'pg';
import { ident, inTransaction } from '../functions/common/db.ts';
import { PermanentError } from '../functions/common/errors.ts';
import { getLoad, type ObjectRef } from '../functions/common/ledger.ts';
import { tooManyColumns } from '../functions/common/limits.ts';
import { readHead } from '../functions/common/streams.ts';
import { dropLoadTables, planLoad, stagePart, stagePartsConcurrently, wantsParts, type PartsDeps, type RangeOpener } from '../functions/stage/parts.ts';
import type { StagedCsv } from '../functions/stage/stage-object.ts';
import { detectedCsvLayout } from '../functions/stage/stage-table.ts';

/**
 * `civic-etl load` of a plain CSV larger than `bytes`: staged over up to `connections` connections
 * at once, by byte ranges of the file cut at record boundaries — the parts machinery the stage
 * step uses for big objects (functions/stage/parts.ts), reading the file itself instead of S3.
 * Each part is COPYed into its own table with a CHECK on its line range and committed once; the
 * last attaches them to `table` (partitioned by `_source_line`) and marks the load staged. A part
 * that fails fails the load and drops every table of it (then this throws the load's error).
 * Returns undefined for a file to stage whole (small, gzip, UTF-16).
 */
export async function stageFileInParts(
  pool: pg.Pool,
  opts: {
    file: string;
    path: string;
    ref: ObjectRef & { size: number };
    loadId: number;
    schema: string;
    table: string;
    delimiter?: string;
    maxColumns: number;
    bytes: number;
    connections: number;
    /** How a range of the file is read (tests: one that fails). */
    open?: RangeOpener;
  },
): Promise<StagedCsv | undefined> {
  if (opts.connections < 2 || opts.ref.size <= opts.bytes) return undefined;
  const { head, rest, complete } = await readHead(createReadStream(opts.path, { end: 4095 }), 4096);
  if (!complete) await rest.return?.();
  if (!wantsParts(head, opts.ref.size, opts.bytes)) return undefined;
  // the bytes of the file, by ranges (end inclusive, as an HTTP range)
  const open = opts.open ?? (async (_ref: ObjectRef, first?: number, last?: number) => createReadStream(opts.path, { start: first, end: last, highWaterMark: 256 * 1024 }));
  const deps: PartsDeps = { pool, project: opts.schema, open, enqueueParts: async () => undefined };
  const plan = await inTransaction(pool, async (client) => {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident(opts.schema)}`);
    const planned = await planLoad(client, deps, opts.ref, opts.loadId, opts.table, {
      size: Math.ceil(opts.ref.size / opts.connections),
      maxParts: opts.connections,
      delimiter: opts.delimiter,
      table: opts.table,
      // as the whole file's staging table: unlogged (no WAL), since the load drops it when it ends, and a crashed load fails
      unlogged: true,
    });
    if (planned.columns.length > opts.maxColumns) throw tooManyColumns(opts.file, planned.columns.length, opts.maxColumns);
    return planned;
  });
  const messages = plan.parts.map((p) => ({ civicEtlPart: { loadId: opts.loadId, part: p.index } }));
  try {
    await stagePartsConcurrently(pool, messages, opts.connections, (m) => stagePart(deps, m, async () => undefined));
  } catch (error) {
    // not the input's fault (the database or the disk): nothing retries a load, so its parts go now
    await inTransaction(pool, (client) => dropLoadTables(client, opts.loadId, opts.table)).catch((cleanup: unknown) => {
      throw new AggregateError([error, cleanup], `${opts.file}: staging in parts failed, and so did dropping its tables`);
    });
    throw error;
  }
  const load = await getLoad(pool, opts.loadId);
  if (load?.status !== 'staged') {
    throw new PermanentError(load?.error ?? `${opts.file}: not every part was staged`, { file: opts.file, ...(load?.error_line ? { line: Number(load.error_line) } : {}) });
  }
  const detected = (load.detected ?? {}) as { warnings?: string[] };
  return {
    rows: load.rows_read ?? 0,
    structure: plan.structure,
    columns: plan.columns,
    detected: {
      ...detectedCsvLayout(plan.structure),
      blankLines: 0,
      repeatedHeaders: 0,
      columns: plan.columns,
      warnings: detected.warnings ?? plan.warnings,
    },
  };
}
