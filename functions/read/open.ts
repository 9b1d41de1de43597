/**
 * What is in a file, and how to read it: content first (magic bytes, the shape of the first
 * bytes), the name's extension second, the dataset's `read.format` hint above both. A file gives
 * one or more *entries*: CSV text (staged byte for byte with COPY) or a `ReadTable` from one of the
 * readers. Archives give one entry per loadable member (a shapefile's parts count as one).
 *
 * Formats that need random access (zip, spreadsheets, GeoPackage, Parquet) are first copied to a temporary
 * folder; `dispose()` removes it, whatever happened. An archive's members are extracted there too,
 * except a shapefile's parts: the shapefile reader streams them from the archive as it reads.
 *
 * Each reader but CSV's and JSON's is imported when a file of its format comes (GeoPackage's
 * SQLite, Parquet's decompressors, the spreadsheet and shapefile readers are most of the stage
 * function's code: a cold start of the bundle reads only what its object needs; lib/bundle.ts).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { pipeline as streamPipeline, Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { messageOf } from '../common/errors.ts';
import { readLimits, type ReadLimits } from '../common/limits.ts';
import { logger } from '../common/logger.ts';
import { prepend, readHead } from '../common/streams.ts';
import type { ArchiveLimits, ArchivedMember, ExtractedMember, TempDir } from './archive.ts';
import { isZip } from './zip-magic.ts';
import { readJson, sniffJson } from './json.ts';
import type { ShapefilePart } from './shapefile.ts';
import { PARQUET_ENCRYPTED_MAGIC, PARQUET_MAGIC } from './parquet-magic.ts';
import { beyondLimit, ReadError, type ReadOptions, type ReadRow, type ReadTable, type SourceFormat } from './types.ts';

/** Formats a dataset may name in `read.format` (`zip`: an archive whose members are read by content). */
export const FORMAT_HINTS = ['csv', 'xlsx', 'xls', 'ods', 'json', 'ndjson', 'geojson', 'shapefile', 'gpkg', 'parquet', 'zip'] as const;
export type FormatHint = (typeof FORMAT_HINTS)[number];

export interface OpenOptions extends ReadOptions {
  format?: FormatHint;
  /** Archive members to read: a glob on the member's path (`*.shp`, `data/*.csv`); default every loadable member. */
  member?: string;
}

/** Something that can be read from the start as often as needed (an S3 object, a local file). */
export interface Source {
  /** How messages name it: the S3 key or the path. */
  name: string;
  /** The bytes from the start; `signal` aborts the open and the stream it gave (an opening that ran out of time). */
  open(signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
  /** Where it already is on local disk, if it is: formats that need random access read it there instead of copying it. */
  path?: string;
}

export type Entry = { kind: 'csv'; name: string; format: 'csv'; open(): Promise<AsyncIterable<Uint8Array>> } | { kind: 'table'; name: string; format: SourceFormat; table: ReadTable };

export interface Opened {
  entries: Entry[];
  /** Members and sheets that were not read, with why (readme.pdf, a .dbf without its .shp…). */
  skipped: string[];
  dispose(): Promise<void>;
}

const HEAD = 64 * 1024;
const SQLITE = Buffer.from('SQLite format 3\0', 'latin1');
const OLE2 = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
const SHAPEFILE_PARTS = ['shp', 'dbf', 'shx', 'prj', 'cpg'] as const;

/**
 * The entries of a file. Throws a `ReadError` (a permanent error) for input it cannot take,
 * naming the file (and member).
 */
/** The zip reader (yauzl) and temporary folders, imported for a file that needs them (a CSV streams without). */
const archive = () => import('./archive.ts');

export async function openSource(source: Source, opts: OpenOptions = {}): Promise<Opened> {
  let temp: TempDir | undefined;
  const tempDir = async () => (temp ??= await (await archive()).makeTempDir());
  const skipped: string[] = [];
  let opening: Promise<Entry[]> | undefined;
  try {
    const limits = readLimits(opts.limits);
    const level: Level = { budget: { limits, archive: archiveLimits(limits), spent: { left: limits.maxExpandedBytes, files: 0 } }, depth: 0 };
    // a reader stuck before its table is open (a stalled stream, a sample never complete) is timed
    // too; when the time runs out, what the opening is waiting on (an S3 GET, a file) is aborted
    const stop = new AbortController();
    opening = classifyStream({ ...source, open: () => source.open(stop.signal) }, opts, tempDir, skipped, level);
    const entries = await withinSeconds(
      opening,
      limits.maxSeconds,
      () => beyondLimit(source.name, `opening it took more than ${limits.maxSeconds} s (reading its first bytes and rows)`, 'maxSeconds', limits.maxSeconds),
      stop,
    );
    if (entries.length > limits.maxTables) throw tooManyTables(source.name, entries.length, limits.maxTables);
    for (const entry of entries) if (entry.kind === 'table') timeRows(entry.table, limits.maxSeconds);
    return { entries, skipped, dispose: async () => temp?.dispose() };
  } catch (error) {
    await temp?.dispose();
    // timed out while still opening: what that work writes after now (an extraction going on until
    // it next yields) is removed when it ends, so a warm function keeps no temporary files
    const late = () => temp?.dispose().catch((cause: unknown) => logger.warn('could not remove a temporary folder after a timed-out read', { file: source.name, error: messageOf(cause) }));
    opening?.then(late, late);
    throw error;
  }
}

/**
 * What every level of one file shares: its limits, and the expanded bytes and archive members
 * still allowed (`spent`: what zip members and spooled gzip output wrote to disk, every level
 * together). A gzip stream read front to back may expand to what is left when it starts.
 */
interface Budget {
  limits: ReadLimits;
  archive: ArchiveLimits;
  spent: { left: number; files: number };
}

/** Where a stream or file sits: the budget of the whole file, and how many gzip or zip layers (by content) are around it. */
interface Level {
  budget: Budget;
  depth: number;
}

/**
 * A gzip stream or zip archive about to be opened at `level`: refused past `maxDepth` layers,
 * counted by content (magic bytes), whatever the names say.
 */
function enterContainer(level: Level, name: string, what: 'a gzip stream' | 'a zip archive'): Level {
  const { maxDepth } = level.budget.limits;
  if (level.depth > maxDepth) {
    throw beyondLimit(name, `${what} inside ${level.depth} layers of archives or gzip (by content, whatever the names), more than ${maxDepth} deep`, 'maxDepth', maxDepth);
  }
  return { ...level, depth: level.depth + 1 };
}

async function classifyStream(source: Source & { expanded?: boolean }, opts: OpenOptions, tempDir: () => Promise<TempDir>, skipped: string[], level: Level, name = source.name): Promise<Entry[]> {
  if (await isGzipSource(source)) {
    // gzip in gzip is one more layer: the content is classified again, as deep as maxDepth allows
    const inner = enterContainer(level, source.name, 'a gzip stream');
    const plain = { name: source.name, expanded: true, open: async () => gunzipBounded(await source.open(), source.name, level.budget) };
    return classifyStream(plain, opts, tempDir, skipped, inner, name.replace(/\.gz$/i, ''));
  }
  const plain = source;
  const { head, rest, complete } = await readHead(await plain.open(), HEAD);
  const format = opts.format ?? sniff(head, name);
  if (format === 'csv' || format === 'json' || format === 'ndjson' || format === 'geojson') {
    await closeIterator(rest, complete);
    return streamEntries(plain, format, opts);
  }
  if (format === 'shapefile' && !isZip(head)) {
    await closeIterator(rest, complete);
    throw new ReadError(`${source.name}: a shapefile comes as several files (.shp, .dbf, .shx, .prj): upload them together in one .zip`, { file: source.name });
  }
  // random access: spool to a temporary file first (unless it is a plain file on disk already)
  const dir = await tempDir();
  if (source.path) {
    await closeIterator(rest, complete);
    return classifyFile(source.path, source.name, format, opts, dir, skipped, level);
  }
  const path = join(dir.path, `source-${Date.now()}${posix.extname(name).replace(/[^A-Za-z0-9.]/g, '') || '.bin'}`);
  const bytes = Readable.from(prepend(head, rest));
  // what a gzip stream expands to counts against the file's budget once it is on disk
  if (source.expanded) await pipeline(bytes, spend(level.budget, source.name), createWriteStream(path));
  else await pipeline(bytes, createWriteStream(path));
  return classifyFile(path, source.name, format, opts, dir, skipped, level);
}

/** One file on disk (a spooled object or an archive member). */
async function classifyFile(path: string, name: string, format: FormatHint, opts: OpenOptions, dir: TempDir, skipped: string[], level: Level): Promise<Entry[]> {
  switch (format) {
    case 'gpkg':
      return (await (await import('./gpkg.ts')).readGeoPackage(path, name, opts)).map(asEntry);
    case 'xls':
      return [asEntry(await (await import('./xls.ts')).readXls(path, name, opts))];
    case 'xlsx':
      return [asEntry(await (await import('./xlsx.ts')).readXlsx(path, name, opts))];
    case 'ods':
      return [asEntry(await (await import('./ods.ts')).readOds(path, name, opts))];
    case 'parquet':
      return [asEntry(await (await import('./parquet.ts')).readParquet(path, name, opts))];
    case 'csv':
    case 'json':
    case 'ndjson':
    case 'geojson':
      return streamEntries({ name, open: async () => createReadStream(path, { highWaterMark: 256 * 1024 }) }, format, opts);
    case 'shapefile':
    case 'zip':
      break;
  }
  const kind = await zipKind(path, name);
  if (kind === 'xlsx') return [asEntry(await (await import('./xlsx.ts')).readXlsx(path, name, opts))];
  if (kind === 'ods') return [asEntry(await (await import('./ods.ts')).readOds(path, name, opts))];
  // a shapefile's parts are read front to back: straight from the archive, not extracted first
  enterContainer(level, name, 'a zip archive');
  const unpacked = await (await archive()).unpackZip(path, name, dir.path, level.budget.archive, (member) => isShapefilePart(member), { budget: level.budget.spent, depth: level.depth });
  dir.defer(unpacked.close);
  return membersToEntries(unpacked.members, name, opts, dir, skipped, level);
}

function archiveLimits(limits: ReadLimits): ArchiveLimits {
  return { maxTotalBytes: limits.maxExpandedBytes, maxRatio: limits.maxRatio, maxEntries: limits.maxMembers, maxDepth: limits.maxDepth };
}

const isShapefilePart = (member: string) => (SHAPEFILE_PARTS as readonly string[]).includes(posix.extname(member).slice(1).toLowerCase());

async function membersToEntries(members: (ExtractedMember | ArchivedMember)[], archive: string, opts: OpenOptions, dir: TempDir, skipped: string[], level: Level): Promise<Entry[]> {
  const wanted = opts.member ? globToRegExp(opts.member) : undefined;
  const entries: Entry[] = [];
  // a shapefile's parts travel together: group them by path without extension
  const shapefiles = new Map<string, Partial<Record<(typeof SHAPEFILE_PARTS)[number], ShapefilePart>>>();
  for (const m of members) {
    const ext = posix.extname(m.name).slice(1).toLowerCase();
    if ((SHAPEFILE_PARTS as readonly string[]).includes(ext)) {
      const base = m.name.slice(0, -ext.length - 1);
      const parts = shapefiles.get(base.toLowerCase()) ?? {};
      parts[ext as (typeof SHAPEFILE_PARTS)[number]] = 'path' in m ? m.path : m;
      shapefiles.set(base.toLowerCase(), parts);
    }
  }
  // each data member is a load of its own: too many is refused before any is read
  const data = members.filter((m) => {
    const ext = posix.extname(m.name).slice(1).toLowerCase();
    return (!wanted || wanted.test(m.name)) && (ext === 'shp' || (!(SHAPEFILE_PARTS as readonly string[]).includes(ext) && memberFormat(ext) !== undefined));
  }).length;
  if (data > level.budget.limits.maxTables) throw tooManyTables(archive, data, level.budget.limits.maxTables);
  for (const m of members) {
    const label = `${archive}!${m.name}`;
    const ext = posix.extname(m.name).slice(1).toLowerCase();
    if (wanted && !wanted.test(m.name)) {
      skipped.push(`${m.name}: not matched by read.member`);
      continue;
    }
    if (ext === 'shp') {
      const parts = shapefiles.get(m.name.slice(0, -4).toLowerCase())!;
      if (!parts.dbf) throw new ReadError(`${label}: the .dbf that goes with ${posix.basename(m.name)} is missing from the archive`, { file: label });
      const { readShapefile } = await import('./shapefile.ts');
      entries.push(asEntry(await readShapefile({ shp: 'path' in m ? m.path : m, dbf: parts.dbf, shx: parts.shx, prj: parts.prj, cpg: parts.cpg }, label, opts)));
      continue;
    }
    if ((SHAPEFILE_PARTS as readonly string[]).includes(ext)) {
      if (!shapefiles.get(m.name.slice(0, -ext.length - 1).toLowerCase())?.shp) skipped.push(`${m.name}: a shapefile part without its .shp`);
      continue;
    }
    const format = memberFormat(ext);
    if (!format || !('path' in m)) {
      skipped.push(`${m.name}: not a data file (by its extension)`);
      continue;
    }
    const head = await readFileHead(m.path);
    // the member sits inside the archive's layers and its own: its depth counts what it is, not what it is named
    const inside: Level = { ...level, depth: m.depth + 1 };
    if (ext === 'gz' || isGzip(head)) {
      entries.push(...(await classifyStream({ name: label, open: async () => createReadStream(m.path) }, opts, async () => dir, skipped, inside)));
      continue;
    }
    entries.push(...(await classifyFile(m.path, label, sniff(head, m.name), opts, dir, skipped, inside)));
  }
  if (entries.length === 0) {
    throw new ReadError(`${archive}: no data file in the archive${skipped.length ? ` (${skipped.join('; ')})` : ' (it is empty)'}`, { file: archive });
  }
  return entries;
}

function memberFormat(ext: string): FormatHint | undefined {
  const byExtension: Record<string, FormatHint> = {
    csv: 'csv',
    tsv: 'csv',
    tab: 'csv',
    txt: 'csv',
    psv: 'csv',
    json: 'json',
    ndjson: 'ndjson',
    jsonl: 'ndjson',
    geojson: 'geojson',
    geojsonl: 'ndjson',
    xlsx: 'xlsx',
    xlsm: 'xlsx',
    xls: 'xls',
    ods: 'ods',
    gpkg: 'gpkg',
    parquet: 'parquet',
    geoparquet: 'parquet',
    pq: 'parquet',
    gz: 'csv',
  };
  return byExtension[ext];
}

function streamEntries(source: Source, format: 'csv' | 'json' | 'ndjson' | 'geojson', opts: OpenOptions): Promise<Entry[]> | Entry[] {
  if (format === 'csv') return [{ kind: 'csv', name: source.name, format: 'csv', open: source.open }];
  if (format === 'geojson') return import('./geojson.ts').then(({ readGeoJson }) => readGeoJson(source.open, source.name, opts)).then((t) => [asEntry(t)]);
  return readJson(source.open, source.name, { ...opts, lines: format === 'ndjson' }).then((tables) => tables.map(asEntry));
}

/** A file bringing more tables (data members, layers) than `max`, each of which would be a load of its own. */
function tooManyTables(file: string, tables: number, max: number) {
  return beyondLimit(file, `${tables.toLocaleString('en-US')} tables (data files, layers), each a load of its own to stage and clean`, 'maxTables', max);
}

/**
 * Each pass over `table`'s rows fails past `seconds`, naming the table, the position reached and
 * the limit — when a row comes late, and by a timer when none comes (a reader waiting on a stalled
 * stream). A reader busy in one synchronous stretch cannot be interrupted, only failed when it
 * next yields; every reader here yields between chunks of its input.
 */
export function timeRows(table: ReadTable, seconds: number): void {
  table.rows = timed(table, table.rows.bind(table), seconds);
  // a shapefile's rows as WKB (the direct load, local/load-direct.ts) are the same pass: the same limit
  const withWkb = table as ReadTable & { binaryBatches?: () => AsyncIterable<ReadRow[]> };
  if (typeof withWkb.binaryBatches === 'function') withWkb.binaryBatches = timed(table, withWkb.binaryBatches.bind(table), seconds, (batch) => batch.at(-1)?.position);
}

/** `rows` failing past `seconds`; `positionOf` tells which row an item reached (a row's own position, or a batch's last). */
function timed<R>(table: ReadTable, rows: () => AsyncIterable<R>, seconds: number, positionOf: (item: R) => number | undefined = (row) => (row as ReadRow).position): () => AsyncGenerator<R> {
  return async function* timed() {
    const deadline = performance.now() + seconds * 1000;
    let last = 0;
    const over = () =>
      beyondLimit(table.name, `reading took more than ${seconds} s (${last ? `at ${table.unit} ${last}` : `before its first ${table.unit}`})`, 'maxSeconds', seconds, last ? { line: last } : {});
    const it = rows()[Symbol.asyncIterator]();
    // the timer fails the row being waited for; one promise per row, settled and dropped (racing
    // each row against one long-lived promise piled a reaction per row on it: 450 MB for 10⁶ rows)
    let expired: Error | undefined;
    let abort: ((error: Error) => void) | undefined;
    const timer = setTimeout(() => {
      expired = over();
      abort?.(expired);
    }, seconds * 1000);
    try {
      for (;;) {
        if (expired) throw expired;
        const next = await new Promise<IteratorResult<R>>((resolve, reject) => {
          abort = reject;
          it.next().then(resolve, reject);
        });
        abort = undefined;
        if (next.done) return;
        last = positionOf(next.value) ?? last;
        if (performance.now() > deadline) throw over();
        yield next.value;
      }
    } finally {
      clearTimeout(timer);
      // the reader is closed (its files, its statement) as a for-await would; one still waiting
      // for its input when the clock ran out is told to stop, without waiting for it
      if (abort === undefined) await it.return?.();
      else void Promise.resolve(it.return?.()).catch(() => undefined);
    }
  };
}

/**
 * `work`, or the error `over()` makes if it is not done within `seconds`; then `stop` is aborted
 * (with that error), which cancels what the work waits on — the request or file its source opened.
 */
async function withinSeconds<T>(work: Promise<T>, seconds: number, over: () => Error, stop: AbortController): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = over();
      reject(error);
      stop.abort(error);
    }, seconds * 1000);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function asEntry(table: ReadTable): Entry {
  return { kind: 'table', name: table.name, format: table.format, table };
}

/**
 * The format the first bytes show; the extension decides only what content cannot (a `.json`
 * file that does not start like JSON is still read as JSON, to get the JSON error and position).
 */
export function sniff(head: Buffer, name: string): FormatHint {
  if (head.subarray(0, 16).equals(SQLITE)) return 'gpkg';
  if (head.subarray(0, 8).equals(OLE2)) return 'xls';
  if (head.subarray(0, 4).equals(PARQUET_MAGIC) || head.subarray(0, 4).equals(PARQUET_ENCRYPTED_MAGIC)) return 'parquet';
  if (isZip(head)) return 'zip';
  if (head.length >= 4 && head.readUInt32BE(0) === 9994) return 'shapefile';
  const json = sniffJson(head);
  const ext = posix.extname(name.replace(/\.gz$/i, '')).slice(1).toLowerCase();
  // one object in a .ndjson file (an Ed-Fi part with one changed record) is one record, not an object whose array holds the rows
  if (
    json === 'json' &&
    (ext === 'ndjson' || ext === 'jsonl') &&
    head
      .toString('latin1', 0, 64)
      .replace(/^\u00EF\u00BB\u00BF/, '')
      .trimStart()
      .startsWith('{')
  )
    return 'ndjson';
  if (json) return json;
  if (ext === 'geojson') return 'geojson';
  if (ext === 'json') return 'json';
  if (ext === 'ndjson' || ext === 'jsonl') return 'ndjson';
  return 'csv';
}

async function zipKind(path: string, name: string): Promise<'xlsx' | 'ods' | 'archive'> {
  const names = await (await archive()).listZip(path, name);
  if (names.includes('xl/workbook.xml') || (names.includes('[Content_Types].xml') && names.some((n) => n.startsWith('xl/')))) return 'xlsx';
  if (names.includes('content.xml') && names.includes('mimetype')) return 'ods';
  return 'archive';
}

async function isGzipSource(source: Source): Promise<boolean> {
  const { head, rest, complete } = await readHead(await source.open(), 2);
  await closeIterator(rest, complete);
  return isGzip(head);
}

const isGzip = (head: Uint8Array) => head[0] === 0x1f && head[1] === 0x8b;

/** Expansions up to this size are not judged by their ratio (as for zip members). */
const RATIO_EXEMPT_BYTES = 1024 * 1024;

/**
 * A gzip stream inflated, its output counted as it comes: past what is left of the file's
 * expanded-bytes budget when it starts, or past `maxRatio` times the compressed bytes inflated so
 * far (after the first MiB), the read fails naming the file and the limit. zlib's own errors (a
 * damaged or truncated stream) pass through; `classify` makes them permanent.
 */
async function* gunzipBounded(source: AsyncIterable<Uint8Array>, name: string, budget: Budget): AsyncGenerator<Buffer> {
  const { maxExpandedBytes, maxRatio } = budget.limits;
  const allowed = budget.spent.left;
  const gunzip = createGunzip({ chunkSize: 64 * 1024 });
  const stream = streamPipeline(Readable.from(source), gunzip, () => undefined);
  let expanded = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      expanded += chunk.length;
      if (expanded > allowed) {
        throw beyondLimit(
          name,
          `the gzip stream expands past ${allowed} bytes, what is left of the ${maxExpandedBytes} allowed for the file (every archive and gzip stream in it together)`,
          'maxExpandedBytes',
          maxExpandedBytes,
        );
      }
      // bytesWritten: compressed bytes handed to zlib, at most one chunk ahead of what it inflated
      if (expanded > RATIO_EXEMPT_BYTES && expanded > maxRatio * gunzip.bytesWritten) {
        throw beyondLimit(name, `the gzip stream expands from ${gunzip.bytesWritten} to more than ${expanded} bytes (over ${maxRatio}× its compressed size), a likely gzip bomb`, 'maxRatio', maxRatio);
      }
      yield chunk;
    }
  } finally {
    stream.destroy();
  }
}

/** Bytes written to disk, taken from the file's expanded-bytes budget as they pass. */
function spend(budget: Budget, name: string): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      budget.spent.left -= chunk.length;
      if (budget.spent.left < 0) {
        const max = budget.limits.maxExpandedBytes;
        return done(beyondLimit(name, `expands past the ${max} bytes allowed for the file (every archive and gzip stream in it together)`, 'maxExpandedBytes', max));
      }
      done(null, chunk);
    },
  });
}

async function readFileHead(path: string): Promise<Buffer> {
  const size = (await stat(path)).size;
  // an empty file has no byte to read: a stream from 0 to -1 is a RangeError, not an empty head
  if (size === 0) return Buffer.alloc(0);
  const { head, rest, complete } = await readHead(createReadStream(path, { start: 0, end: Math.min(size, HEAD) - 1 }), HEAD);
  await closeIterator(rest, complete);
  return head;
}

async function closeIterator(it: AsyncIterator<unknown>, complete: boolean): Promise<void> {
  if (!complete) await it.return?.();
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*\*/g, '\u0000')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]')
    .replace(/\u0000/g, '.*');
  return new RegExp(`^(?:.*/)?${body}$`, 'i');
}
