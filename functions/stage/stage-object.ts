import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import type { PipelineDefinition } from '../../contract/definition.ts';
import { MANIFEST_SUFFIX, routeObjectKey } from '../../contract/names.ts';
import { ident, inTransaction } from '../common/db.ts';
import { PermanentError, classify } from '../common/errors.ts';
import { contractOf, getLoad, markExpanded, markFailed, markStaged, objectRefOf, objectVersion, receiveObject, recordContract, type LoadContract, type ObjectRef } from '../common/ledger.ts';
import { logger } from '../common/logger.ts';
import { copyCsv, stagingColumns } from './copy.ts';
import { detectStructureLoadingCodecs } from '../profile/detect.ts';
import type { Encoding, Structure } from '../profile/types.ts';
import { notesWarning, skipByteLines } from '../read/csv.ts';
import { toUtf8, withoutUtf8Bom } from './bytes.ts';
import { withSourceLines, type LineageStats } from './lineage.ts';
import { closeSource, gunzipIfNeeded, prepend, readHead } from '../common/streams.ts';
import { hasCatalog, writeCatalog, writeCatalogError } from '../profile/catalog.ts';
import { datasetForResource, type StagedDataset } from './resource-read.ts';
import { DetectError, HEAD_BYTES, profileStream, profileTable } from '../profile/profile.ts';
import { openSource, sniff, type Entry, type Opened, type Source } from '../read/open.ts';
import { createStagingTable, detectedCsvLayout, objectLineage, readHints, stageTable, type StagingLineage } from './stage-table.ts';
import { isTooManyColumns, maxFileColumns, PG_MAX_COLUMNS, PIPELINE_STAGING_EXTRA, tooManyColumns } from '../common/limits.ts';
import { describeObject, type ObjectContract } from './object-order.ts';
import {
  completeLoad,
  hasParts,
  objectSize,
  openRange,
  pendingPartMessages,
  planLoad,
  stagePart,
  stagePartsConcurrently,
  wantsParts,
  type HeldPart,
  type PartMessage,
  type PartOutcome,
  type RangeOpener,
} from './parts.ts';
import { DEFAULT_PART_BYTES } from '../common/config.ts';
import type { DatasetDefinition } from '../../contract/definition.ts';

/** What the clean queue carries: the ledger id of a staged load. */
export interface CleanMessage {
  loadId: number;
}

export interface StageDeps {
  pool: pg.Pool;
  s3: S3Client;
  pipeline: PipelineDefinition;
  /** Hand a staged load to the clean step (the clean queue on AWS and locally). */
  notifyClean(message: CleanMessage): Promise<void>;
  /**
   * Send part messages back to the stage queue. Without it, every file is staged whole in the
   * invocation that received it; with it, a CSV larger than `partBytes` is staged in
   * parts by parallel invocations (parts.ts).
   */
  enqueueParts?(messages: PartMessage[]): Promise<void>;
  /** Objects larger than this are staged in parts of about this size (`CIVIC_ETL_PART_BYTES`; default 1 GiB). */
  partBytes?: number;
  /**
   * Stage the parts here, concurrently over up to `connections` connections of the pool, instead of
   * sending part messages (the local stage step: local/pipeline.ts). A file larger than `partBytes`
   * is then cut into `connections` parts of equal size, or of `partSize` bytes when given (tests).
   */
  partsInProcess?: { connections: number; partSize?: number };
}

export type StageOutcome =
  | { status: 'staged'; loadId: number; rows: number; dataset: string; parts?: number }
  | { status: 'duplicate'; loadId: number }
  | { status: 'failed'; loadId: number; error: string }
  | { status: 'ignored'; reason: string }
  /** Planned in parts; each part message stages one, the last completes the load. */
  | { status: 'split'; loadId: number; parts: number };

/**
 * Stage one S3 object version: route its key to a dataset, record it in the ledger once, and
 * stream it with COPY into a fresh staging table `<project>_staging.<dataset>__<loadId>` with
 * lineage columns (`_load_id`, `_s3_key`, `_s3_version`, `_source_line`), all in one transaction.
 *
 * Bad input (unknown prefix, empty, not CSV, ragged) is a permanent failure: recorded in the
 * ledger with file and line, and returned — never thrown — so the message is acknowledged.
 * Anything else (database or S3 unreachable) is thrown, so the message is retried.
 * A redelivered event for the same object version changes nothing.
 */
export async function stageObject(deps: StageDeps, event: ObjectRef): Promise<StageOutcome> {
  const { pool, pipeline } = deps;
  const route = routeObjectKey(event.key);
  if (route?.zone === 'raw' && event.key.endsWith(MANIFEST_SUFFIX)) {
    return { status: 'ignored', reason: 'fetch manifest' };
  }
  let dataset: StagedDataset | undefined = route ? pipeline.datasets.find((d) => d.name === route.dataset) : undefined;
  // what the object declares and where it stands in its dataset's order (object-order.ts)
  let described: Awaited<ReturnType<typeof describeObject>> | undefined;
  let unreadable: PermanentError | undefined;
  try {
    described = await describeObject(deps.s3, event, route?.zone);
    // a catalogue resource: its own read options (the source's `resources` rules) and its portal metadata
    if (dataset) dataset = datasetForResource(dataset, described.portal, described.contract.resource);
    if (route?.zone === 'raw' && dataset && dataset.source.type !== 'upload' && !described.contract.declared) {
      // a connector's object always declares itself: one without a declaration was written before
      // the contract or by hand, and what it replaces cannot be known
      unreadable = new PermanentError(
        `${event.key}: an object under raw/ of fetched dataset ${dataset.name} without a declaration (x-amz-meta-civic-etl): written before the connector contract or by hand, so what it replaces and holds cannot be known and it is not applied; fetch the dataset again (civic-etl fetch ${dataset.name})`,
        { file: event.key },
      );
    }
  } catch (error) {
    // an object it may not read (S3's 403, a KMS key it may not use) is as permanent as a bad declaration
    const failure = classify(error, { file: event.key });
    if (failure.kind !== 'permanent') throw error;
    unreadable = failure.error;
  }
  const ref = described?.ref ?? event;
  const { load } = await receiveObject(pool, pipeline.project, dataset?.name ?? null, ref);
  // what every log line of this object names (the failures' fields, as common/batch.ts logs them)
  const log = { step: 'stage', loadId: load.id, dataset: dataset?.name ?? null, object: ref.key, key: ref.key, version: load.object_version };
  // recorded once; a load staged by a version before the contract gets it when its event comes again
  if ((load.status === 'received' || load.status === 'staged') && load.replaces === null && described && !unreadable) {
    await recordContract(pool, load.id, contractFor(described.contract, dataset));
  }
  if (load.status === 'received' && unreadable) {
    await markFailed(pool, load.id, unreadable);
    logger.warn('object not staged', { ...log, kind: 'permanent', error: unreadable.message });
    return { status: 'failed', loadId: load.id, error: unreadable.message };
  }

  if (load.status !== 'received') {
    if (load.status === 'staged') {
      // the earlier profile or hand-over may not have happened
      const format = (load.detected as { format?: string } | null)?.format;
      if (format === undefined || format === 'csv') await ensureProfiled(deps, ref, load.id, dataset!, load.rows_read ?? 0);
      await deps.notifyClean({ loadId: load.id });
    }
    logger.info('object version already seen: nothing to do', { ...log, status: load.status });
    return { status: 'duplicate', loadId: load.id };
  }

  const misrouted = routingProblem(pipeline, ref.key, route, dataset !== undefined);
  if (misrouted) {
    await markFailed(pool, load.id, misrouted);
    logger.warn('object not staged', { ...log, kind: 'permanent', error: misrouted.message });
    return { status: 'failed', loadId: load.id, error: misrouted.message };
  }

  const started = performance.now();
  if ((deps.enqueueParts || deps.partsInProcess) && (dataset!.read.format === undefined || dataset!.read.format === 'csv')) {
    const split = await maybeStageInParts(deps, ref, load.id, dataset!, log);
    if (split) return split;
  }
  let opened: Opened;
  try {
    opened = await openSource(objectSource(deps.s3, ref), { ...dataset!.read, format: dataset!.read.format });
  } catch (error) {
    return rejectObject(deps, ref, load.id, dataset!, error, log);
  }
  try {
    if (opened.entries.length === 1) return await stageEntry(deps, ref, load.id, dataset!, opened.entries[0]!, started, log);
    return await stageMembers(deps, ref, load.id, dataset!, opened, started, log);
  } finally {
    await opened.dispose();
  }
}

/**
 * A plain CSV bigger than one invocation should stage: plan its parts (once — a redelivered event
 * finds them planned) and send one message per part not staged yet. `undefined`: stage it whole.
 */
async function maybeStageInParts(deps: StageDeps, ref: ObjectRef, loadId: number, dataset: DatasetDefinition, log: Record<string, unknown>): Promise<StageOutcome | undefined> {
  const inProcess = deps.partsInProcess;
  const enqueue = deps.enqueueParts;
  if (!inProcess && !enqueue) return undefined;
  const limit = deps.partBytes ?? DEFAULT_PART_BYTES;
  const size = await objectSize(deps.s3, ref).catch(() => undefined);
  if (size === undefined || size <= limit) return undefined;
  // one read of the object from its first byte: its head decides, and the plan goes on reading it
  const { head, rest } = await readHead(await openObject(deps.s3, ref), HEAD_BYTES);
  if (!wantsParts(head, size, limit) || sniff(head, ref.key) !== 'csv') {
    await rest.return?.();
    return undefined;
  }
  // in process, the first part's read is opened now, while the plan reads: it waits for the plan (S3 answers meanwhile)
  const first = inProcess ? waitingRead(openObject(deps.s3, ref)) : undefined;
  let planned: number | undefined;
  // in process, the plan's read goes on as the last part's bytes (one read of the object fewer)
  let held: HeldPart | undefined;
  try {
    planned = await inTransaction(deps.pool, async (client) => {
      const current = await getLoad(client, loadId, true);
      if (current?.status !== 'received') return undefined;
      if (await hasParts(client, loadId)) return -1;
      // in process: one part a connection, so that each does an equal share
      const partSize = inProcess ? (inProcess.partSize ?? Math.ceil(size / Math.max(1, inProcess.connections))) : limit;
      const planned = await planLoad(client, { s3: deps.s3, project: deps.pipeline.project }, { ...ref, size }, loadId, dataset.name, {
        size: partSize,
        // one part a connection: the plan stops reading at the last cut
        ...(inProcess && inProcess.partSize === undefined ? { maxParts: inProcess.connections } : {}),
        delimiter: dataset.read.delimiter,
        encoding: dataset.read.encoding,
        opened: { head, rest },
        // staged here, the part tables are unlogged (no WAL): crash recovery empties such a table; a part found so is
        // staged again before the load completes (completeLoad), and a staged load found so fails visibly (the clean step)
        ...(inProcess ? { unlogged: true, keepLast: true } : {}),
      });
      held = planned.last;
      return planned.parts.length;
    });
  } catch (error) {
    await held?.source.close();
    await first?.close();
    return rejectObject(deps, ref, loadId, dataset, error, log);
  } finally {
    if (!held) await rest.return?.();
  }
  if (planned === undefined) {
    await first?.close();
    return { status: 'duplicate', loadId };
  }
  // from here every way out (a ledger query that fails too) releases the reads opened ahead
  const release = async () => {
    await held?.source.close();
    await first?.close();
  };
  let messages: PartMessage[];
  try {
    messages = await pendingPartMessages(deps.pool, loadId);
    if (messages.length === 0) {
      // every part staged before, not attached: the process that staged the last one died first
      const complete = await completeLoad(deps.pool, loadId);
      if (complete) {
        await release();
        logger.info('every part was staged before, not attached: the load is completed now', { ...log, rows: complete.rows });
        await partsComplete(deps, loadId, complete.rows);
        const { rows } = await deps.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM etl.load_parts WHERE load_id = $1`, [loadId]);
        return { status: 'staged', loadId, rows: complete.rows, dataset: dataset.name, parts: rows[0]?.n ?? 0 };
      }
    }
    logger.info('staging in parts', {
      ...log,
      bytes: size,
      partBytes: limit,
      parts: planned < 0 ? 'planned before' : planned,
      ...(inProcess ? { connections: Math.min(inProcess.connections, messages.length) } : { sent: messages.length }),
    });
    await (inProcess ? stagePartsHere(deps, messages, inProcess.connections, { first, last: held }) : enqueue!(messages));
  } finally {
    await release();
  }
  if (inProcess) {
    // staged here: the load is complete (or failed) now, as a whole file's would be
    const [after] = (await deps.pool.query<{ status: string; rows_read: string | null; error: string | null }>(`SELECT status, rows_read, error FROM etl.loads WHERE id = $1`, [loadId])).rows;
    if (after?.status === 'failed') return { status: 'failed', loadId, error: after.error ?? 'a part failed' };
    if (after?.status === 'staged' || after?.status === 'loaded')
      return { status: 'staged', loadId, rows: Number(after.rows_read ?? 0), dataset: dataset.name, parts: planned < 0 ? messages.length : planned };
  }
  return { status: 'split', loadId, parts: messages.length };
}

/** The parts of a load staged in this process, each as its part message would be (stageObjectPart). */
async function stagePartsHere(deps: StageDeps, messages: PartMessage[], connections: number, reads: { first?: WaitingRead; last?: HeldPart } = {}): Promise<void> {
  // the part that starts where the plan's read stopped reads on from it, the first part from the read opened
  // beside the plan (up to its end); any other by a range GET. Only the first part (it starts within the head,
  // after the header) takes that read: another would read and drop every byte before its own (a load whose
  // first part was staged before, redelivered)
  let { first, last: spare } = reads;
  const open: RangeOpener = async (ref, from, to) => {
    if (spare && from === spare.start) {
      const source = spare.source;
      spare = undefined;
      return source;
    }
    if (first && from !== undefined && to !== undefined && from <= HEAD_BYTES && first.unused()) {
      const read = first;
      first = undefined;
      return read.range(from, to);
    }
    return openRange(deps.s3, ref, from, to);
  };
  await stagePartsConcurrently(deps.pool, messages, connections, (m) => stageObjectPart(deps, m, open));
}

/** A read of the whole object opened ahead, for the bytes of one range of it (or closed unread). */
interface WaitingRead {
  unused(): boolean;
  range(first: number, last: number): Promise<AsyncIterable<Uint8Array>>;
  close(): Promise<void>;
}

function waitingRead(opening: Promise<AsyncIterable<Uint8Array>>): WaitingRead {
  // an error opening it is the range's reader's to meet (a part retried), never an unhandled rejection
  opening.catch(() => undefined);
  let used = false;
  return {
    unused: () => !used,
    async range(first, last) {
      used = true;
      return bytesBetween(await opening, first, last);
    },
    async close() {
      if (used) return;
      used = true;
      // destroyed: returning a fresh iterator of a stream never read does not run its clean-up, and left the response open
      const body = await opening.catch(() => undefined);
      if (body) await closeSource(body);
    },
  };
}

/**
 * Bytes [first, last] (inclusive) of a stream of the whole object; the stream is closed at `last`,
 * or by `close()` (the part failed, perhaps before its first read: the generator never started).
 */
function bytesBetween(source: AsyncIterable<Uint8Array>, first: number, last: number): AsyncIterable<Buffer> & { close(): Promise<void> } {
  const bytes = (async function* () {
    let at = 0;
    for await (const raw of source) {
      const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      const from = Math.max(0, first - at);
      const to = Math.min(chunk.length, last + 1 - at);
      at += chunk.length;
      if (to > from) yield chunk.subarray(from, to);
      if (at > last) break;
    }
  })();
  return {
    [Symbol.asyncIterator]: () => bytes,
    close: async () => {
      // the source first: a read still waiting on it then ends, and the generator with it
      await closeSource(source);
      await bytes.return(undefined);
    },
  };
}

/**
 * One part of a load staged in parts (a stage-queue message). The part that completes the load
 * profiles it and hands it to the clean step, as a whole-file load does.
 */
export async function stageObjectPart(deps: StageDeps, message: PartMessage, open?: RangeOpener): Promise<PartOutcome> {
  return stagePart({ pool: deps.pool, s3: deps.s3, project: deps.pipeline.project, enqueueParts: async () => undefined, ...(open ? { open } : {}) }, message, (loadId, rows) =>
    partsComplete(deps, loadId, rows),
  );
}

/** A load staged in parts is complete: profile it and hand it to the clean step, as a whole-file load. */
async function partsComplete(deps: StageDeps, loadId: number, rows: number): Promise<void> {
  const load = await getLoad(deps.pool, loadId);
  let dataset: StagedDataset | undefined = deps.pipeline.datasets.find((d) => d.name === load?.dataset);
  if (load && dataset) {
    const ref = objectRefOf(load);
    if (dataset.source.type === 'catalog') {
      // a catalogue resource: its portal metadata goes into the catalog too
      const described = await describeObject(deps.s3, ref, 'raw');
      dataset = datasetForResource(dataset, described.portal, described.contract.resource);
    }
    await ensureProfiled(deps, ref, loadId, dataset, rows);
  }
  await deps.notifyClean({ loadId });
}

/** Stage one entry (the object itself, or its only member/sheet/layer) as the object's load. */
async function stageEntry(deps: StageDeps, ref: ObjectRef, loadId: number, dataset: DatasetDefinition, entry: Entry, started: number, log: Record<string, unknown>, notify = true): Promise<StageOutcome> {
  let staged: { rows: number; table: string };
  try {
    const result = await inTransaction(deps.pool, async (client) => {
      // Two workers with the same object: the second waits here, then finds it staged.
      const current = await getLoad(client, loadId, true);
      if (current?.status !== 'received') return undefined;
      return copyEntry(deps, client, ref, loadId, dataset, entry, started);
    });
    if (!result) return { status: 'duplicate', loadId };
    staged = result;
  } catch (error) {
    return rejectObject(deps, ref, loadId, dataset, error, log, entry);
  }
  // the load is committed: what follows may be retried, but never fails it
  await ensureProfiled(deps, ref, loadId, dataset, staged.rows, entry);
  if (notify) await deps.notifyClean({ loadId });
  logger.info('staged', { ...log, entry: entry.name, rows: staged.rows, table: staged.table, ms: Math.round(performance.now() - started) });
  return { status: 'staged', loadId, rows: staged.rows, dataset: dataset.name };
}

/**
 * An archive with several data files, a GeoPackage with several layers: one load per member,
 * each in its own transaction, each pointing to the object's load, which ends 'expanded'. A
 * redelivered event skips the members already staged and goes on with the rest.
 */
async function stageMembers(deps: StageDeps, ref: ObjectRef, loadId: number, dataset: DatasetDefinition, opened: Opened, started: number, log: Record<string, unknown>): Promise<StageOutcome> {
  let rows = 0;
  const failures: string[] = [];
  // every member shares the object's contract and order; a nested table's load names its owner
  const object = await getLoad(deps.pool, loadId);
  const contract = contractOf(object!);
  const loadOf = new Map<string, number>();
  const staged: number[] = [];
  for (const entry of opened.entries) {
    // a member's own name; the main table of a JSON file with child tables is the file itself
    const key = entry.name === ref.key ? `${ref.key}#root` : entry.name;
    const { load: member } = await receiveObject(deps.pool, deps.pipeline.project, dataset.name, { ...ref, key }, loadId);
    loadOf.set(entry.name, member.id);
    const parent = entry.kind === 'table' ? entry.table.parent : undefined;
    const owner = parent === undefined ? undefined : loadOf.get(parent);
    if (member.status === 'received') await recordContract(deps.pool, member.id, contract, owner);
    if (member.status === 'received') {
      const outcome = await stageEntry(deps, { ...ref, key }, member.id, dataset, entry, started, { ...log, memberLoadId: member.id }, false);
      if (outcome.status === 'staged') {
        rows += outcome.rows;
        staged.push(member.id);
      }
      if (outcome.status === 'failed') failures.push(outcome.error);
    } else if (member.status === 'staged') {
      await ensureProfiled(deps, { ...ref, key }, member.id, dataset, member.rows_read ?? 0, entry);
      staged.push(member.id);
    }
  }
  await markExpanded(deps.pool, loadId, { members: opened.entries.length, rowsRead: rows, skipped: opened.skipped, failures });
  // the members go to the clean step once all are staged: a file's tables are cleaned together
  for (const id of staged) await deps.notifyClean({ loadId: id });
  logger.info('archive expanded', { ...log, members: opened.entries.length, failed: failures.length, ms: Math.round(performance.now() - started) });
  return { status: 'staged', loadId, rows, dataset: dataset.name };
}

/** Record a permanent failure of the object (or its member), or rethrow a transient one. */
async function rejectObject(deps: StageDeps, ref: ObjectRef, loadId: number, dataset: DatasetDefinition, error: unknown, log: Record<string, unknown>, entry?: Entry): Promise<StageOutcome> {
  const permanent = asPermanent(error, entry?.name ?? ref.key);
  if (!permanent) throw error;
  await markFailed(deps.pool, loadId, permanent);
  logger.warn('object rejected', { ...log, kind: 'permanent', error: permanent.message, line: permanent.position.line });
  // the catalog describes every object seen, loaded or not: best effort, never in the way
  await ensureProfiled(deps, ref, loadId, dataset, 0, entry).catch((e: unknown) => logger.warn('object not profiled', { ...log, error: String(e) }));
  return { status: 'failed', loadId, error: permanent.message };
}

async function copyEntry(deps: StageDeps, client: pg.PoolClient, ref: ObjectRef, loadId: number, dataset: DatasetDefinition, entry: Entry, started: number): Promise<{ rows: number; table: string }> {
  // ≤ 63 bytes whatever the dataset name: PostgreSQL would silently truncate a longer one
  const table = `${ident(`${deps.pipeline.project}_staging`)}.${ident(`${dataset.name.slice(0, 40)}__${loadId}`)}`;
  const lineage = objectLineage(loadId, ref);
  let rows: number;
  let header: string[];
  let detected: object;
  const maxColumns = maxFileColumns({ history: dataset.clean.mode === 'history' });
  if (entry.kind === 'csv') {
    const staged = await stageCsv(client, { file: entry.name, source: await entry.open(), table, delimiter: dataset.read.delimiter, encoding: dataset.read.encoding, lineage, maxColumns });
    ({ rows, detected } = staged);
    header = staged.structure.header;
  } else {
    const staged = await stageTable(client, entry.table, { table, lineage, maxColumns });
    ({ rows, header, detected } = staged);
  }
  await markStaged(client, loadId, { rowsRead: rows, stagingTable: table, header, detected: { ...detected, entry: entry.name }, ms: performance.now() - started });
  return { rows, table };
}

export interface StagedCsv {
  rows: number;
  structure: Structure;
  /** Staging column names, one per header field. */
  columns: string[];
  /** What was detected, as recorded in the ledger. */
  detected: {
    encoding: string;
    bom: boolean;
    delimiter: string;
    quote: string;
    lineEnding: string;
    headerRow: number;
    blankLines: number;
    /** Lines repeating the header, skipped. */
    repeatedHeaders: number;
    columns: string[];
    warnings: string[];
  };
}

/**
 * Detect how a CSV byte stream is written (the profiler's detector: encoding, delimiter, quote,
 * title lines above the header…), create `table` (every header field a text column, plus
 * `_source_line` and the given constant lineage columns) and COPY the records into it — as UTF-8,
 * transcoded on the way if the file is in another encoding. Runs on the caller's client, so the
 * caller's transaction decides whether any of it is seen.
 */
export async function stageCsv(
  client: pg.PoolClient,
  opts: {
    file: string;
    source: AsyncIterable<Uint8Array>;
    table: string;
    delimiter?: string;
    /** The pipeline's declared encoding (read.encoding): it wins over the guess. */
    encoding?: Encoding;
    /** Extra lineage columns: name → type and SQL constant (already quoted). */
    lineage?: StagingLineage;
    /** A session's temporary table, or an unlogged one (readable by parallel workers); default a plain table. */
    persistence?: 'temporary' | 'unlogged';
    /** The most columns the file may have (common/limits.ts): more fails before any table is made. */
    maxColumns?: number;
  },
): Promise<StagedCsv> {
  const { file } = opts;
  const { head, rest, complete } = await readHead(await gunzipIfNeeded(opts.source), HEAD_BYTES);
  const { structure, warnings } = await detectStructureLoadingCodecs(head, { complete, file, hints: readHints(opts) });

  const columns = stagingColumns(structure.header);
  if (opts.maxColumns !== undefined && columns.length > opts.maxColumns) throw tooManyColumns(file, columns.length, opts.maxColumns);
  await createStagingTable(client, { ...opts, columns });
  const stats: LineageStats = { records: 0, blankLines: 0, bytes: 0 };
  const bytes = prepend(head, rest);
  const utf8 = structure.encoding === 'utf-8' ? withoutUtf8Bom(bytes) : toUtf8(bytes, structure.encoding, file);
  // a file that quotes nothing gets a quote character no text contains, so a stray " is just text
  const quote = structure.quote || '\u0001';
  const records = withSourceLines(
    skipByteLines(utf8, structure.firstDataLine - 1),
    { file, delimiter: structure.delimiter, quote, fields: columns.length, firstLine: structure.firstDataLine, header: structure.header },
    stats,
  );
  const rows = await copyCsv(client, opts.table, columns, structure.delimiter, quote, records);
  return {
    rows,
    structure,
    columns,
    detected: {
      ...detectedCsvLayout(structure),
      blankLines: stats.blankLines,
      repeatedHeaders: stats.repeatedHeaders ?? 0,
      columns,
      warnings: [
        ...warnings,
        ...(stats.repeatedHeaders ? [`${file}: ${stats.repeatedHeaders} line${stats.repeatedHeaders === 1 ? '' : 's'} repeating the header skipped (first on line ${stats.firstRepeatedHeader})`] : []),
        ...(stats.notes?.length ? [notesWarning(file, stats.notes)] : []),
      ],
    },
  };
}

/**
 * Profile the staged object into the catalog (once per load): structure, column types and
 * formats, and a profile of each column, over the first `profile.sample` records. Done after the
 * COPY commits so that staging runs at COPY speed; a file the profiler cannot read still gets a
 * catalog row with the reason, and the load goes on.
 */
async function ensureProfiled(deps: StageDeps, ref: ObjectRef, loadId: number, dataset: StagedDataset, rowCount: number, member?: Entry): Promise<void> {
  if (await hasCatalog(deps.pool, loadId)) return;
  const entry = {
    loadId,
    project: deps.pipeline.project,
    dataset: dataset.name,
    title: dataset.title,
    objectKey: ref.key,
    objectVersion: objectVersion(ref),
    rowCount,
    portal: dataset.portal,
  };
  let body: AsyncIterable<Uint8Array> | undefined;
  try {
    // the clean step casts a detected column only when every profiled value fits its type
    const settings = { file: ref.key, locales: deps.pipeline.profile.locales, sample: deps.pipeline.profile.sample, typeThreshold: 1 };
    if (member?.kind === 'table') {
      // a sheet, JSON, GeoJSON, a shapefile or a layer: its reader's rows, read once more
      await writeCatalog(deps.pool, entry, await profileTable(member.table, settings));
      return;
    }
    body = member?.kind === 'csv' ? await member.open() : await openObject(deps.s3, ref);
    const profile = await profileStream(body, {
      ...settings,
      // what staging detected, so the profile's columns line up with the staging table's
      hints: await stagedLayout(deps.pool, loadId, dataset.read),
    });
    await writeCatalog(deps.pool, entry, profile);
  } catch (error) {
    // a database or network failure is retried (the message comes back); anything else about the
    // file — unreadable, replaced since, beyond a limit — is recorded, and the load goes on
    if (isInfrastructureError(error)) throw error;
    const message = error instanceof Error ? error.message : String(error);
    await writeCatalogError(deps.pool, entry, message);
    logger.warn('object not profiled', { loadId, key: ref.key, error: message });
  } finally {
    (body as { destroy?: () => void } | undefined)?.destroy?.();
  }
}

/** The encoding (and whether it was declared) and delimiter the COPY used (the dataset's hints when the load never staged). */
async function stagedLayout(pool: pg.Pool, loadId: number, read: { delimiter?: string; encoding?: Encoding }): Promise<Partial<Pick<Structure, 'encoding' | 'delimiter' | 'encodingDeclared'>> | undefined> {
  const detected = (await getLoad(pool, loadId))?.detected as { encoding?: Structure['encoding']; delimiter?: string; encodingDeclared?: true } | null | undefined;
  if (detected?.encoding && detected.delimiter) return { encoding: detected.encoding, delimiter: detected.delimiter, ...(detected.encodingDeclared ? { encodingDeclared: true } : {}) };
  return readHints(read);
}

/** Unreachable services (retry) as opposed to problems with the file (record and go on). */
function isInfrastructureError(error: unknown): boolean {
  const e = error as { code?: string; name?: string; $metadata?: { httpStatusCode?: number } };
  if (e instanceof DetectError) return false;
  if (typeof e.code === 'string' && /^(ECONN|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|08|53|57P)/.test(e.code)) return true;
  const status = e.$metadata?.httpStatusCode;
  return status !== undefined && (status >= 500 || status === 429 || status === 403);
}

/** An object version as a source to open (read/open.ts): each open is one S3 GET. */
export function objectSource(s3: S3Client, ref: ObjectRef): Source {
  return { name: ref.key, open: (signal) => openObject(s3, ref, signal) };
}

/** One S3 GET of the object version; `signal` aborts the request and its body. */
async function openObject(s3: S3Client, ref: ObjectRef, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
  const out = await s3.send(
    new GetObjectCommand({
      Bucket: ref.bucket,
      Key: ref.key,
      ...(ref.versionId && ref.versionId !== 'null' ? { VersionId: ref.versionId } : ref.etag ? { IfMatch: ref.etag } : {}),
    }),
    signal ? { abortSignal: signal } : {},
  );
  if (!out.Body) throw new Error(`s3://${ref.bucket}/${ref.key}: empty response body`);
  return out.Body as AsyncIterable<Uint8Array>;
}

function routingProblem(pipeline: PipelineDefinition, key: string, route: ReturnType<typeof routeObjectKey>, known: boolean): PermanentError | undefined {
  if (!route) {
    return new PermanentError(`${key}: not a dataset path; uploads go to incoming/<supplier>/<dataset>/<file>, fetched files to raw/<dataset>/<run>/<file>`, { file: key });
  }
  if (!known) {
    const names = pipeline.datasets.map((d) => d.name).join(', ');
    return new PermanentError(`${key}: unknown dataset "${route.dataset}" in project ${pipeline.project} (known: ${names})`, { file: key });
  }
  const dataset = pipeline.datasets.find((d) => d.name === route.dataset)!;
  if (route.zone === 'incoming' && (dataset.source.type !== 'upload' || dataset.source.supplier !== route.supplier)) {
    const expected = dataset.source.type === 'upload' ? `incoming/${dataset.source.supplier}/${dataset.name}/` : `raw/${dataset.name}/ (it is fetched)`;
    return new PermanentError(`${key}: supplier "${route.supplier}" does not deliver dataset "${dataset.name}"; expected ${expected}`, { file: key });
  }
  return undefined;
}

/**
 * The error as a permanent failure of the file, or `undefined` for one a retry may cure (the one
 * classifier, common/errors.ts: PostgreSQL's data, naming and limit errors, damaged compression,
 * a vanished version). A staging table beyond PostgreSQL's column limit is named as such.
 */
function asPermanent(error: unknown, file: string): PermanentError | undefined {
  if (isTooManyColumns(error)) {
    // a check before staging names the count; this is for a table made elsewhere (a part of a large file)
    return new PermanentError(
      `${file}: more columns than PostgreSQL allows in a table (${PG_MAX_COLUMNS}, of which the staging table takes ${PIPELINE_STAGING_EXTRA} for lineage): a file may have at most ${maxFileColumns({ history: false })}`,
      { file, line: 1 },
    );
  }
  const failure = classify(error, { file });
  return failure.kind === 'permanent' ? failure.error : undefined;
}

/**
 * The contract the ledger records: the object's declaration, or — for an object that declares
 * none (a supplier upload) — the dataset's mode decides: in mode replace or history a file is the
 * whole dataset, in mode upsert or append it brings changes and replaces nothing.
 */
function contractFor(c: ObjectContract, dataset: DatasetDefinition | undefined): LoadContract {
  const changesOnly = !c.declared && (dataset?.clean.mode === 'upsert' || dataset?.clean.mode === 'append');
  return { ...c, replaces: changesOnly ? 'nothing' : c.replaces };
}
