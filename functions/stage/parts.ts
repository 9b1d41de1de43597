/**
 * Files too big for one invocation: staged in parts, in parallel, committed as one load.
 *
 * 1. Plan (in the object's own stage invocation, holding its ledger row): detect the layout from
 *    the head, then read the object once — quote-aware, `indexOf` fast — to cut it into byte
 *    ranges that end at record boundaries (a line feed outside quotes), each with the physical
 *    line its first record starts on. The ranges go to `etl.load_parts`; one SQS message per part
 *    goes back to the stage queue.
 * 2. Each part (any worker, any order, any number of times): an S3 range GET, the same lineage
 *    scanner and COPY as a whole file, into its own table `<staging>__p<k>` with a CHECK on its
 *    line range — committed with its ledger row, once (the row is locked; a repeat finds it done).
 * 3. The part that completes the set attaches every part table to the load's staging table (a
 *    table partitioned by `_source_line`; the CHECKs make attaching instant) and marks the load
 *    staged, in one transaction. Until then the load is `received`: the clean step, and so every
 *    reader, never sees a partial load. A part that fails for good fails the whole load.
 * 4. A process that dies after the last part commits but before the attach leaves every part
 *    staged and the load `received`: the message it was handling comes back (it was never
 *    acknowledged), and its repeat — the part's, or the object's — attaches them then. One that
 *    fails after the attach, before the hand-over to clean, leaves the load `staged`: a repeat of
 *    a part message hands it over (as a repeat of the object's message does).
 */
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { ident, inTransaction } from '../common/db.ts';
import { PermanentError, UnreadableMessageError, classify } from '../common/errors.ts';
import { getLoad, markFailed, markStaged, objectRefOf, type ObjectRef } from '../common/ledger.ts';
import { logger } from '../common/logger.ts';
import { emptiedParts, partTable } from '../common/part-tables.ts';
import { closeSource, prepend, readHead } from '../common/streams.ts';
import { detectStructureLoadingCodecs } from '../profile/detect.ts';
import { HEAD_BYTES } from '../profile/profile.ts';
import type { Encoding, Structure } from '../profile/types.ts';
import { toUtf8 } from './bytes.ts';
import { copyCsv, stagingColumns } from './copy.ts';
import { withSourceLines, type LineageStats } from './lineage.ts';
import { createStagingTable, detectedCsvLayout, objectLineage, readHints } from './stage-table.ts';
import { CsvByteScanner, notesWarning } from '../read/csv.ts';

const LF = 0x0a;

/**
 * Where a test stands in for a crash: `beforeAttach` runs once every part of a load is staged
 * (committed), before they are attached; throwing there is the process dying at that point.
 */
export const partHooks: { beforeAttach?: (loadId: number) => void | Promise<void> } = {};

/** A part: bytes [start, end) of the object, whose first record starts on physical line `firstLine`. */
export interface PartPlan {
  index: number;
  start: number;
  end: number;
  firstLine: number;
}

/** What the stage queue carries for a part. */
export interface PartMessage {
  civicEtlPart: { loadId: number; part: number };
}

export function isPartMessage(json: unknown): json is PartMessage {
  const p = (json as PartMessage | null)?.civicEtlPart;
  return typeof p === 'object' && p !== null && Number.isInteger(p.loadId) && Number.isInteger(p.part);
}

/** The layout every part is read with, decided once from the object's head. */
interface PartsLayout {
  format: 'csv';
  encoding: Structure['encoding'];
  bom: boolean;
  delimiter: string;
  quote: string;
  lineEnding: string;
  headerRow: number;
  columns: string[];
  parts: number;
  warnings: string[];
  /** Part tables made UNLOGGED (no WAL): for a staging table the load drops itself (`civic-etl load`), never for the pipeline's. */
  unlogged?: boolean;
}

/**
 * Where the records of CSV bytes may be cut: after about every `size` bytes, at the end of a
 * record, as `CsvByteScanner` (functions/read/csv.ts, the rule staging reads by) finds records.
 * `start` is the byte where the first record starts (after the header), `firstLine` its physical
 * line. A cut is never made between the CR and the LF of a CRLF.
 */
export async function planParts(
  source: AsyncIterable<Uint8Array>,
  opts: {
    start: number;
    firstLine: number;
    size: number;
    quote: string;
    total: number;
    delimiter?: string;
    maxParts?: number;
    /** When the plan stops at its last cut (`maxParts`), it gives here the bytes it read past the cut (the last part's first bytes). */
    past?: (bytes: Buffer) => void;
  },
): Promise<PartPlan[]> {
  const parts: PartPlan[] = [];
  let partStart = opts.start;
  let partLine = opts.firstLine;
  let offset = 0; // of the bytes being scanned, in the object
  let pushed: Buffer | undefined; // the bytes being scanned, from `offset`
  let past: Buffer | undefined; // what was read past the last cut
  const scanner: CsvByteScanner = new CsvByteScanner({ delimiter: opts.delimiter ?? ',', quote: opts.quote, firstLine: opts.firstLine }, (_held, _chunk, _s, _e, next) => {
    if (next < 0) return; // a CR ends the chunk: a LF may follow, cut after a later record
    const end = offset + next;
    if (end - partStart >= opts.size && end < opts.total && !enough()) {
      parts.push({ index: parts.length, start: partStart, end, firstLine: partLine });
      partStart = end;
      partLine = scanner.line + 1; // the record ends on the scanner's line; the next starts below
      if (enough()) past = pushed!.subarray(end - offset);
    }
  });
  // at most `maxParts`: once the last cut is found, the rest of the object need not be read
  const enough = () => opts.maxParts !== undefined && parts.length >= opts.maxParts - 1;
  let at = 0; // of the chunk in the object
  if (!enough()) {
    // the loop stops in the chunk of the last cut: no chunk past it is taken from the source
    for await (const raw of source) {
      const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      const skip = Math.max(0, opts.start - at);
      if (skip < chunk.length) {
        offset = at + skip;
        pushed = skip > 0 ? chunk.subarray(skip) : chunk;
        scanner.push(pushed);
      }
      at += chunk.length;
      if (enough()) break;
    }
  }
  if (past) opts.past?.(past);
  if (partStart < opts.total) parts.push({ index: parts.length, start: partStart, end: opts.total, firstLine: partLine });
  return parts;
}

/** Bytes [first, last] (inclusive) of an object, or all of it. */
export type RangeOpener = (ref: ObjectRef, first?: number, last?: number) => Promise<AsyncIterable<Uint8Array>>;

export interface PartsDeps {
  pool: pg.Pool;
  /** The object's store; not needed when `open` is given. */
  s3?: S3Client;
  project: string;
  /** Where the bytes come from: S3 range GETs unless given (`civic-etl load` reads a local file by ranges). */
  open?: RangeOpener;
  /** Send part messages to the stage queue. */
  enqueueParts(messages: PartMessage[]): Promise<void>;
}

/** Can this object be staged in parts? Plain CSV in UTF-8 or a single-byte encoding, bigger than the part size. */
export function wantsParts(head: Buffer, size: number | undefined, limit: number): boolean {
  if (size === undefined || size <= limit) return false;
  if (head[0] === 0x1f && head[1] === 0x8b) return false; // gzip cannot be cut
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) return false; // UTF-16
  return true;
}

/**
 * Plan the parts of a received load, on the caller's transaction (which holds the load's row):
 * create the partitioned staging table, record the layout and the parts. Returns the parts; the
 * caller enqueues them after the commit.
 */
export async function planLoad(
  client: pg.PoolClient,
  deps: Pick<PartsDeps, 's3' | 'project' | 'open'>,
  ref: ObjectRef & { size: number },
  loadId: number,
  dataset: string,
  opts: {
    size: number;
    delimiter?: string;
    encoding?: Encoding;
    maxParts?: number;
    table?: string;
    unlogged?: boolean;
    /**
     * The object's bytes from its first, already opened, with its first `HEAD_BYTES` (or all, when
     * shorter) read: the head is detected from, and the same read goes on to find the cuts (one
     * read of the object for the whole plan). Without it the object is opened here.
     */
    opened?: { head: Buffer; rest: AsyncIterator<Uint8Array> };
    /**
     * With `maxParts`: the read the plan stopped at its last cut goes on as the last part's bytes
     * (`last`, the caller's to read or close), so that the last part needs no read of its own.
     */
    keepLast?: boolean;
  },
): Promise<{ parts: PartPlan[]; structure: Structure; columns: string[]; warnings: string[]; table: string; last?: HeldPart }> {
  const open = deps.open ?? ((r: ObjectRef, first?: number, last?: number) => openRange(deps.s3!, r, first, last));
  const { head, rest } = opts.opened ?? (await readHead(await open(ref), HEAD_BYTES));
  let parts: PartPlan[];
  let structure: Structure;
  let warnings: string[];
  let past: Buffer | undefined;
  let last: HeldPart | undefined;
  try {
    ({ structure, warnings } = await detectStructureLoadingCodecs(head, { complete: false, file: ref.key, hints: readHints(opts) }));
    if (structure.encoding === 'utf-16le' || structure.encoding === 'utf-16be') {
      throw new PermanentError(`${ref.key}: files in UTF-16 are staged whole, not in parts; this one is larger than one invocation can stage`, { file: ref.key });
    }
    const start = byteOfLine(head, structure.firstDataLine);
    if (start === undefined) throw new PermanentError(`${ref.key}: the header is longer than ${HEAD_BYTES} bytes`, { file: ref.key });
    parts = await planParts(prepend(head, rest), {
      start,
      firstLine: structure.firstDataLine,
      size: opts.size,
      quote: structure.quote || '',
      delimiter: structure.delimiter,
      total: ref.size,
      maxParts: opts.maxParts,
      past: (bytes) => (past = bytes),
    });
    const lastPart = parts.at(-1);
    if (opts.keepLast && past !== undefined && parts.length > 1 && lastPart) last = { start: lastPart.start, source: heldSource(past, rest) };
  } finally {
    // the plan stops reading at its last cut: the rest of the object is not read (unless it is the last part's)
    if (!last) await rest.return?.();
  }

  const columns = stagingColumns(structure.header);
  const table = opts.table ?? stagingTable(deps.project, dataset, loadId);
  await createStagingTable(client, { table, columns, lineage: objectLineage(loadId, ref), partitioned: true });
  const layout: PartsLayout = {
    format: 'csv',
    ...detectedCsvLayout(structure),
    columns,
    parts: parts.length,
    warnings,
    ...(opts.unlogged ? { unlogged: true } : {}),
  };
  await client.query(`UPDATE etl.loads SET header = $2, detected = $3, staging_table = $4 WHERE id = $1`, [loadId, JSON.stringify(structure.header), JSON.stringify(layout), table]);
  for (const p of parts) {
    await client.query(`INSERT INTO etl.load_parts (load_id, part, start_byte, end_byte, first_line) VALUES ($1, $2, $3, $4, $5)`, [loadId, p.index, p.start, p.end, p.firstLine]);
  }
  return { parts, structure, columns, warnings, table, ...(last ? { last } : {}) };
}

/** The last part's bytes, already being read (planLoad's `keepLast`): to be read once, or closed. */
export interface HeldPart {
  start: number;
  source: AsyncIterable<Uint8Array> & { close(): Promise<void> };
}

function heldSource(first: Buffer, rest: AsyncIterator<Uint8Array>): HeldPart['source'] {
  const bytes = prepend(first, rest);
  return {
    [Symbol.asyncIterator]: () => bytes,
    // the read's connection is released (a part not started, the load failed)
    close: async () => void (await rest.return?.()),
  };
}

/** The parts of a load not staged yet, as messages (for a redelivered object whose parts were planned). */
export async function pendingPartMessages(pool: pg.Pool, loadId: number): Promise<PartMessage[]> {
  const { rows } = await pool.query<{ part: number }>(`SELECT part FROM etl.load_parts WHERE load_id = $1 AND status <> 'staged' ORDER BY part`, [loadId]);
  return rows.map((r) => ({ civicEtlPart: { loadId, part: r.part } }));
}

export async function hasParts(db: Pick<pg.Pool, 'query'>, loadId: number): Promise<boolean> {
  const { rows } = await db.query(`SELECT 1 FROM etl.load_parts WHERE load_id = $1 LIMIT 1`, [loadId]);
  return rows.length > 0;
}

export type PartOutcome =
  | { status: 'staged'; loadId: number; part: number; rows: number; complete: boolean }
  /** `complete`: this repeat found every part staged but not attached (the last part's process died first) and completed the load. */
  | { status: 'duplicate'; loadId: number; part: number; complete?: true }
  | { status: 'failed'; loadId: number; part: number; error: string };

/**
 * Stage one part: exactly once (its ledger row is locked for the COPY; a repeat finds it done).
 * Bad input fails the whole load. The part that completes the set completes the load (see
 * `completeLoad`), and `onComplete` hands it to the clean step.
 */
export async function stagePart(deps: PartsDeps, message: PartMessage, onComplete: (loadId: number, rows: number) => Promise<void>): Promise<PartOutcome> {
  const { loadId, part } = message.civicEtlPart;
  const load = await getLoad(deps.pool, loadId);
  if (load?.status === 'staged') {
    // complete, not cleaned yet: the repeat of a message whose hand-over failed after the attach
    // (the clean queue unreachable, the process gone) hands it over; the clean step takes a repeat
    await onComplete(loadId, Number(load.rows_read ?? 0));
    return { status: 'duplicate', loadId, part };
  }
  // a part of a load the ledger does not hold (a purged ledger, another project's queue): nothing to stage, kept and shown as bad input
  if (!load) throw new UnreadableMessageError(`a part message for load ${loadId} (part ${part}), which the ledger does not hold: nothing to stage`);
  // a load failed or loaded already: the rest of its part messages have nothing to do
  if (load.status !== 'received') return { status: 'duplicate', loadId, part };
  const layout = load.detected as unknown as PartsLayout;
  const ref = objectRefOf(load);
  let rows: number | undefined;
  try {
    rows = await inTransaction(deps.pool, async (client) => {
      const { rows: found } = await client.query<{ start_byte: string; end_byte: string; first_line: string; status: string; next_line: string | null }>(
        `SELECT start_byte, end_byte, first_line, status,
                (SELECT first_line FROM etl.load_parts n WHERE n.load_id = p.load_id AND n.part = p.part + 1) AS next_line
           FROM etl.load_parts p WHERE load_id = $1 AND part = $2 FOR UPDATE`,
        [loadId, part],
      );
      const row = found[0];
      if (!row || row.status === 'staged') return undefined;
      const table = partTable(load.staging_table!, part);
      const upper = row.next_line === null ? '' : ` AND _source_line < ${Number(row.next_line)}`;
      await client.query(`DROP TABLE IF EXISTS ${table}`);
      await client.query(
        `CREATE ${layout.unlogged ? 'UNLOGGED ' : ''}TABLE ${table} (LIKE ${load.staging_table!} INCLUDING DEFAULTS,
           CHECK (_source_line >= ${Number(row.first_line)}${upper}))`,
      );
      const bytes = deps.open ? await deps.open(ref, Number(row.start_byte), Number(row.end_byte) - 1) : await openRange(deps.s3!, ref, Number(row.start_byte), Number(row.end_byte) - 1);
      const stats: LineageStats = { records: 0, blankLines: 0, bytes: 0 };
      let n: number;
      try {
        const utf8 = layout.encoding === 'utf-8' ? bytes : toUtf8(bytes as AsyncIterable<Buffer>, layout.encoding);
        const quote = layout.quote || '\u0001';
        const records = withSourceLines(
          utf8 as AsyncIterable<Buffer>,
          {
            file: `${load.object_key} (bytes ${row.start_byte}–${Number(row.end_byte) - 1})`,
            delimiter: layout.delimiter,
            quote,
            fields: layout.columns.length,
            firstLine: Number(row.first_line),
            header: load.header ?? undefined,
            // notes under the table end the last part only; elsewhere such lines are rows
            atFileEnd: row.next_line === null,
          },
          stats,
        );
        n = await copyCsv(client, table, layout.columns, layout.delimiter, quote, records);
      } finally {
        // every way out releases the GET: a failure before the first read (a decoder that cannot be made, a layout
        // this process cannot use) never iterates the body, so nothing else would close it
        await closeSource(bytes);
      }
      // lines this part skipped (repeating the header, notes under the table): said among the load's warnings, as a whole file's are
      const skipped = [
        ...(stats.repeatedHeaders
          ? [`${load.object_key}: ${stats.repeatedHeaders} line${stats.repeatedHeaders === 1 ? '' : 's'} repeating the header skipped (first on line ${stats.firstRepeatedHeader})`]
          : []),
        ...(stats.notes?.length ? [notesWarning(load.object_key, stats.notes)] : []),
      ];
      if (skipped.length > 0) {
        // a part staged again (its table emptied by crash recovery) skips the same lines: said once. A warning names
        // the part's own lines, so two parts never say the same words
        await client.query(
          `UPDATE etl.loads SET detected = jsonb_set(coalesce(detected, '{}'::jsonb), '{warnings}', coalesce(detected->'warnings', '[]'::jsonb) ||
             coalesce((SELECT jsonb_agg(w) FROM jsonb_array_elements($2::jsonb) AS w WHERE NOT coalesce(detected->'warnings', '[]'::jsonb) @> jsonb_build_array(w)), '[]'::jsonb))
            WHERE id = $1`,
          [loadId, JSON.stringify(skipped)],
        );
      }
      await client.query(`UPDATE etl.load_parts SET status = 'staged', rows = $3, staged_at = now() WHERE load_id = $1 AND part = $2`, [loadId, part, n]);
      return n;
    });
  } catch (error) {
    const failure = classify(error, { file: load.object_key });
    if (failure.kind !== 'permanent') throw error;
    const permanent = failure.error;
    await failLoad(deps.pool, loadId, permanent);
    logger.warn('part rejected: the load fails', { step: 'stage', kind: 'permanent', loadId, object: load.object_key, part, error: permanent.message });
    return { status: 'failed', loadId, part, error: permanent.message };
  }
  // a repeat of a part staged already may still complete the load: the process that staged the
  // last part may have died before attaching them (a no-op when the load is complete, or parts wait)
  const complete = await completeLoad(deps.pool, loadId);
  if (complete) await onComplete(loadId, complete.rows);
  if (rows === undefined) return complete ? { status: 'duplicate', loadId, part, complete: true } : { status: 'duplicate', loadId, part };
  return { status: 'staged', loadId, part, rows, complete: complete !== undefined };
}

/**
 * If every part is staged: attach them to the load's staging table and mark the load staged, in
 * one transaction (the load's row locked, so two last parts cannot both complete it).
 */
export async function completeLoad(pool: pg.Pool, loadId: number): Promise<{ rows: number } | undefined> {
  const outcome = await inTransaction(pool, async (client) => {
    const load = await getLoad(client, loadId, true);
    if (load?.status !== 'received') return undefined;
    const { rows } = await client.query<{ part: number; status: string; rows: string | null; first_line: string }>(
      `SELECT part, status, rows, first_line FROM etl.load_parts WHERE load_id = $1 ORDER BY part`,
      [loadId],
    );
    if (rows.length === 0 || rows.some((r) => r.status !== 'staged')) return undefined;
    await partHooks.beforeAttach?.(loadId);
    const table = load.staging_table!;
    // an unlogged part table is emptied by crash recovery: a part staged before a crash is staged again, never attached empty
    const emptied = await emptiedParts(client, table, rows);
    if (emptied.length > 0) {
      await client.query(`UPDATE etl.load_parts SET status = 'planned', rows = NULL, staged_at = NULL WHERE load_id = $1 AND part = ANY($2::int[])`, [loadId, emptied]);
      return { emptied };
    }
    for (const [i, r] of rows.entries()) {
      const next = rows[i + 1];
      const bound = next ? `TO (${Number(next.first_line)})` : 'TO (MAXVALUE)';
      await client.query(`ALTER TABLE ${table} ATTACH PARTITION ${partTable(table, r.part)} FOR VALUES FROM (${Number(r.first_line)}) ${bound}`);
    }
    const total = rows.reduce((n, r) => n + Number(r.rows ?? 0), 0);
    const started = await client.query<{ ms: number }>(`SELECT extract(epoch FROM now() - received_at) * 1000 AS ms FROM etl.loads WHERE id = $1`, [loadId]);
    await markStaged(client, loadId, {
      rowsRead: total,
      stagingTable: table,
      header: load.header ?? [],
      detected: load.detected ?? {},
      ms: Number(started.rows[0]?.ms ?? 0),
    });
    logger.info('all parts staged: load complete', { loadId, parts: rows.length, rows: total });
    return { rows: total };
  });
  if (outcome && 'emptied' in outcome && outcome.emptied) {
    logger.warn('part tables emptied by crash recovery (unlogged): staged again on retry', { loadId, parts: outcome.emptied });
    throw new PartsEmptiedError(loadId, outcome.emptied);
  }
  return outcome;
}

/**
 * Staged parts found empty (crash recovery): marked to be staged again, and the attempt fails so
 * that its message comes back (a redelivered object stages the parts not staged: pendingPartMessages).
 */
export class PartsEmptiedError extends Error {
  constructor(
    readonly loadId: number,
    readonly parts: number[],
  ) {
    super(`load ${loadId}: the table of part${parts.length === 1 ? '' : 's'} ${parts.join(', ')} was emptied by PostgreSQL's crash recovery (unlogged); staged again on retry`);
    this.name = 'PartsEmptiedError';
  }
}

/** A part failed for good: the load fails, its tables go. */
async function failLoad(pool: pg.Pool, loadId: number, error: PermanentError): Promise<void> {
  await inTransaction(pool, async (client) => {
    const load = await getLoad(client, loadId, true);
    if (load?.status !== 'received') return;
    await markFailed(client, loadId, error);
    await dropLoadTables(client, loadId, load.staging_table!);
  });
}

/** Drop a load's staging table and every part table of it (a load that will not be retried: `civic-etl load`). */
export async function dropLoadTables(client: pg.PoolClient, loadId: number, staging: string): Promise<void> {
  const { rows } = await client.query<{ part: number }>(`SELECT part FROM etl.load_parts WHERE load_id = $1`, [loadId]);
  for (const r of rows) await client.query(`DROP TABLE IF EXISTS ${partTable(staging, r.part)}`);
  await client.query(`DROP TABLE IF EXISTS ${staging}`);
}

/**
 * Stage the parts of one load concurrently in this process, over up to `connections` connections
 * at a time, each part by `stage` (the same `stagePart` a part message runs): the local stage step
 * and `civic-etl load` do this instead of sending part messages. The first part that fails for
 * good stops the parts not started; once the ones running settle, the tables a part committed
 * after the load failed are dropped too, so a failed load leaves no table. An error that is not
 * the input's (the database gone) is thrown once every running part has settled: the caller
 * retries, and the parts staged already are not staged again.
 */
export async function stagePartsConcurrently(pool: pg.Pool, messages: readonly PartMessage[], connections: number, stage: (message: PartMessage) => Promise<PartOutcome>): Promise<PartOutcome[]> {
  const outcomes: PartOutcome[] = [];
  let next = 0;
  let stop = false;
  let thrown: unknown;
  const worker = async () => {
    while (!stop && next < messages.length) {
      const message = messages[next++]!;
      try {
        const outcome = await stage(message);
        outcomes.push(outcome);
        if (outcome.status === 'failed') stop = true;
      } catch (error) {
        stop = true;
        thrown ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(connections, messages.length)) }, worker));
  const failed = new Set(outcomes.filter((o) => o.status === 'failed').map((o) => o.loadId));
  for (const loadId of failed) {
    // a part committed while another failed the load: its table goes too
    await inTransaction(pool, async (client) => {
      const load = await getLoad(client, loadId, true);
      if (load?.status === 'failed' && load.staging_table) await dropLoadTables(client, loadId, load.staging_table);
    });
  }
  if (thrown !== undefined) throw thrown;
  return outcomes;
}

/** Same naming as a whole-file load: ≤ 63 bytes whatever the dataset name. */
export function stagingTable(project: string, dataset: string, loadId: number): string {
  return `${ident(`${project}_staging`)}.${ident(`${dataset.slice(0, 40)}__${loadId}`)}`;
}

/** Byte offset where physical line `line` (1-based; `\r\n`, `\n` or a lone `\r` end one) starts in `head`, or undefined past it. */
function byteOfLine(head: Buffer, line: number): number | undefined {
  let at = 0;
  for (let l = 1; l < line; l++) {
    const lf = head.indexOf(LF, at);
    const cr = head.indexOf(0x0d, at);
    const e = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
    if (e < 0) return undefined;
    at = head[e] === 0x0d && head[e + 1] === LF ? e + 2 : e + 1;
  }
  return at;
}

export async function openRange(s3: S3Client, ref: ObjectRef, first?: number, last?: number): Promise<AsyncIterable<Uint8Array>> {
  const out = await s3.send(
    new GetObjectCommand({
      Bucket: ref.bucket,
      Key: ref.key,
      ...(ref.versionId && ref.versionId !== 'null' ? { VersionId: ref.versionId } : ref.etag ? { IfMatch: ref.etag } : {}),
      ...(first !== undefined ? { Range: `bytes=${first}-${last}` } : {}),
    }),
  );
  if (!out.Body) throw new Error(`s3://${ref.bucket}/${ref.key}: empty response body`);
  return out.Body as AsyncIterable<Uint8Array>;
}

/** The object's size, when the event did not say. */
export async function objectSize(s3: S3Client, ref: ObjectRef): Promise<number | undefined> {
  if (ref.size !== undefined) return ref.size;
  const head = await s3.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key, ...(ref.versionId ? { VersionId: ref.versionId } : {}) }));
  return head.ContentLength;
}
