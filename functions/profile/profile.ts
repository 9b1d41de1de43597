import { detectStructureLoadingCodecs, DetectError } from './detect.ts';
import { baseTypeOf, dateReadings, numberOfType } from './formats/base-types.ts';
import { formatsFor, headerMatches } from './formats/index.ts';
import { readRecords } from './read.ts';
import { notesWarning } from '../read/csv.ts';
import { gunzipIfNeeded, prepend, readHead } from '../common/streams.ts';
import type { BaseType, ColumnProfile, FormatDefinition, Locale, Structure } from './types.ts';
import type { DeclaredType, ReadTable } from '../read/types.ts';
import { DEFAULT_TYPE_THRESHOLD, missingWarning, TypeEvidence } from './column-type.ts';
import { Worker } from 'node:worker_threads';

export interface ProfileOptions {
  /** Named in messages and in the result. */
  file: string;
  /** Locale packs of semantic formats to switch on (the international formats are always on). */
  locales?: readonly Locale[];
  /** Profile only the first N records (a sample); default: every record. */
  sample?: number;
  /** Most frequent values kept per column (default 10). */
  top?: number;
  /** Distinct values counted per column before counting stops (default 10,000): bounds memory. */
  distinctCap?: number;
  /** Bytes read to detect the structure (default 256 KiB). */
  headBytes?: number;
  /** Structure hints (a dataset's read hints): they win over detection. */
  hints?: Partial<Pick<Structure, 'encoding' | 'delimiter' | 'encodingDeclared'>>;
  /**
   * Share of a column's non-empty values that must fit a clean type for the column to get it
   * (`clean` of each column; default 0.99, as `civic-etl load`; the pipeline's stage step uses 1).
   */
  typeThreshold?: number;
  /**
   * Threads besides this one that profile columns (0 or 1; default 0): one pays on a large file
   * with a core to spare, and costs more CPU and memory than it saves on busy cores —
   * `civic-etl profile` asks for one on files over 32 MB on machines of 4 cores or more. A column
   * is profiled by one thread only, in file order: the profile is the same either way.
   */
  workers?: number;
}

export interface FileProfile extends Structure {
  file: string;
  /** Data records profiled (all of them unless `sampled`). */
  rowCount: number;
  /** Records identical to an earlier record. */
  duplicateRows: number;
  /**
   * False past the first 2,000,000 distinct records: later records are checked against those
   * only (memory stays bounded), so `duplicateRows` is then a lower bound.
   */
  duplicatesExact: boolean;
  /** Lines whose field count differs from the header's: reported, not fatal. */
  raggedLines: { line: number; fields: number; expected: number }[];
  raggedCount: number;
  /** Only the first `sample` records were profiled. */
  sampled: boolean;
  columns: ColumnProfile[];
  warnings: string[];
}

/** Bytes read to detect the structure; the stage step reads the same, so both see one structure. */
export const HEAD_BYTES = 256 * 1024;

/** Share of non-empty values that must fit a base type for the column to get it. */
export const TYPE_THRESHOLD = 0.95;
/** A format that fails on more than this share of the first values is not tested further. */
const PRUNE_AFTER = 1_000;
const PRUNE_MARGIN = 0.1;
/** Header words that make a column of four-digit integers a year rather than a number. */
const YEAR_HINTS = ['year', 'annee', 'jaar', 'an', 'millesime', 'jahr', 'anno', 'ano'];
const RAGGED_KEPT = 100;
const PLAIN_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const COORDINATE_PAIR = /^-?\d+(\.\d+)?\s*[,;]\s*-?\d+(\.\d+)?$/;
const WKT_START = /^[A-Z]+\s*\(/i;
/** The formats whose profile has the bounding box of the column's geometry values. */
const BOXED_FORMATS: ReadonlySet<string> = new Set(['geojson', 'wkt', 'latlon_wgs84', 'lonlat_wgs84']);
/** Distinct records remembered for duplicate counting (32 MB of hashes at most). */
const MAX_ROW_HASHES = 2_000_000;
/** Values are counted by their first characters: a column of long texts cannot fill memory. */
const MAX_KEY_CHARS = 100;

/** Which value types a column type accepts (integer values fit a number column, …). */
const ACCEPTS: Record<BaseType, readonly BaseType[]> = {
  boolean: ['boolean'],
  year: ['year'],
  integer: ['integer', 'year'],
  number: ['number', 'integer', 'year'],
  date: ['date'],
  datetime: ['datetime', 'date'],
  datetime_tz: ['datetime_tz'],
  time: ['time'],
  json: ['json'],
  string: [],
};
const TYPE_ORDER: readonly BaseType[] = ['boolean', 'year', 'integer', 'number', 'date', 'datetime', 'datetime_tz', 'time', 'json'];

/**
 * Detect and profile a CSV-like byte stream (gzip too) in one streaming pass (or over a sample): structure,
 * per-column base type and semantic format with a confidence score, and a profile (missing,
 * distinct, top values, numeric and date ranges, lengths, bounding boxes). Memory is bounded by
 * `distinctCap` per column plus one hash per record for duplicate counting.
 *
 * @example
 *   const p = await profileStream(createReadStream('a.csv'), { file: 'a.csv', locales: ['fr'] });
 *   p.columns.map((c) => [c.name, c.type, c.format]);
 */
export async function profileStream(source: AsyncIterable<Uint8Array>, opts: ProfileOptions): Promise<FileProfile> {
  const { head, rest, complete } = await readHead(await gunzipIfNeeded(source), opts.headBytes ?? HEAD_BYTES);
  const { structure, warnings } = await detectStructureLoadingCodecs(head, { complete, file: opts.file, hints: opts.hints });
  const formats = formatsFor(opts.locales ?? []);
  const columns = structure.header.map((name) => new ColumnAccumulator(name, formats, opts.distinctCap ?? 10_000, structure.decimalComma));
  // with a worker: it takes two columns in three (reading, decoding and hashing the records stay here)
  const helper =
    (opts.workers ?? 0) > 0 && columns.length > 1
      ? new ColumnsHelper(
          columns.map((_, i) => i).filter((i) => i % 3 !== 0),
          { locales: [...(opts.locales ?? [])], distinctCap: opts.distinctCap ?? 10_000, decimalComma: structure.decimalComma },
          structure.header,
        )
      : undefined;
  const local = columns.map((_, i) => i).filter((i) => !helper?.indices.includes(i));
  const ragged: FileProfile['raggedLines'] = [];
  let raggedCount = 0;
  const seen = new RecordHashes(MAX_ROW_HASHES);
  let duplicates = 0;
  let rows = 0;

  let repeatedHeaders = 0;
  let firstRepeatedHeader: number | undefined;
  /** The text read so far holds U+FFFD: only then are the fields searched for it. */
  let replacementChar = false;
  const records = readRecords(prepend(head, rest), structure, {
    file: opts.file,
    // one record more than the sample tells a sampled file from one that has exactly that many
    maxRecords: opts.sample === undefined ? undefined : opts.sample + 1,
    onRagged: (line, fields, expected) => {
      raggedCount++;
      if (ragged.length < RAGGED_KEPT) ragged.push({ line, fields, expected });
    },
    onRepeatedHeader: (line) => {
      repeatedHeaders++;
      firstRepeatedHeader ??= line;
    },
    onReplacementChar: () => (replacementChar = true),
    onNotes: (notes) =>
      warnings.push(
        notesWarning(
          opts.file,
          notes.map((r) => ({ line: r.line, text: r.fields[0]! })),
        ),
      ),
  });
  let more = false;
  let undecodable = 0; // records holding U+FFFD: bytes the encoding could not decode
  let undecodableLine: number | undefined;
  try {
    for await (const record of records) {
      if (opts.sample !== undefined && rows === opts.sample) {
        more = true;
        break;
      }
      rows++;
      if (replacementChar && record.fields.some((f) => f.includes('\uFFFD'))) {
        undecodable++;
        undecodableLine ??= record.line;
      }
      if (seen.check(record.fields)) duplicates++;
      if (helper) {
        for (let j = 0; j < local.length; j++) {
          const i = local[j]!;
          columns[i]!.add(record.fields[i] ?? '');
        }
        if (helper.take(record.fields)) await helper.send();
      } else for (let i = 0; i < columns.length; i++) columns[i]!.add(record.fields[i] ?? '');
    }
    const profiles = columns.map((c) => c.finish(opts.top ?? 10, opts.typeThreshold, structure.decimalComma));
    const numbers = columns.map((c) => c.num);
    if (helper) {
      const done = await helper.finish({ top: opts.top ?? 10, typeThreshold: opts.typeThreshold });
      helper.indices.forEach((i, j) => {
        profiles[i] = done.profiles[j]!;
        numbers[i] = done.numbers[j]!;
      });
    }
    addPairedBoundingBoxes(profiles, numbers);
    if (undecodable > 0) {
      warnings.push(`${undecodable} record${undecodable === 1 ? '' : 's'} with bytes that are not ${structure.encoding} (shown as U+FFFD), first on line ${undecodableLine}`);
    }
    if (repeatedHeaders > 0) warnings.push(`${repeatedHeaders} line${repeatedHeaders === 1 ? '' : 's'} repeating the header skipped (first on line ${firstRepeatedHeader})`);
    if (raggedCount > 0) warnings.push(`${raggedCount} line${raggedCount === 1 ? '' : 's'} with a field count different from the header's (first on line ${ragged[0]!.line})`);
    const missing = missingWarning(profiles.map((p) => p.clean));
    if (missing) warnings.push(missing);
    return {
      file: opts.file,
      ...structure,
      rowCount: rows,
      duplicateRows: duplicates,
      raggedLines: ragged,
      raggedCount,
      sampled: more,
      duplicatesExact: !seen.full,
      columns: profiles,
      warnings,
    };
  } finally {
    await helper?.close();
  }
}

export { DetectError };

/** What the worker is started with (profile-worker.ts). */
export interface ColumnsInit {
  names: string[];
  locales: Locale[];
  distinctCap: number;
  decimalComma: boolean;
}
/** Records for the worker: the fields of its columns, record by record, in one string, and their lengths. */
export interface ColumnsBatch {
  text: string;
  lengths: Uint32Array;
  records: number;
}
export interface ColumnsFinish {
  finish: { top: number; typeThreshold: number | undefined };
}
/** The worker's columns, profiled, with their number ranges (a latitude/longitude pair's box). */
export interface ColumnsResult {
  profiles: ColumnProfile[];
  numbers: NumberStats[];
}

/** Records per batch sent to the worker, and batches in flight before the reader waits. */
const BATCH_RECORDS = 4096;
const MAX_IN_FLIGHT = 3;

/** The main thread's side of the worker: batches out (a few in flight at most), the profiles back. */
class ColumnsHelper {
  private readonly worker: Worker;
  private parts: string[] = [];
  private lengths: Uint32Array;
  private k = 0;
  private records = 0;
  private inFlight = 0;
  private failure: Error | undefined;
  private result: ColumnsResult | undefined;
  private wake: (() => void) | undefined;

  constructor(
    readonly indices: number[],
    init: Omit<ColumnsInit, 'names'>,
    header: readonly string[],
  ) {
    this.lengths = new Uint32Array(BATCH_RECORDS * indices.length);
    const data: ColumnsInit = { ...init, names: indices.map((i) => header[i]!) };
    // run from the TypeScript sources (the CLI runs under tsx): the thread compiles them the same way
    const execArgv = import.meta.url.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : undefined;
    this.worker = new Worker(new URL('./profile-worker.ts', import.meta.url), { workerData: data, execArgv });
    this.worker.on('message', (m: { done: number } | ColumnsResult) => {
      if ('done' in m) this.inFlight--;
      else this.result = m;
      this.wake?.();
    });
    this.worker.on('error', (error) => {
      this.failure = new Error(`the profiler's worker thread failed: ${error.message}`, { cause: error });
      this.wake?.();
    });
    this.worker.on('exit', (code) => {
      this.failure ??= this.result ? undefined : new Error(`the profiler's worker thread stopped (exit code ${code}) before it answered`);
      this.wake?.();
    });
  }

  /** Takes a record's fields of the worker's columns; true when a batch is full (then `send`). */
  take(fields: readonly string[]): boolean {
    for (let j = 0; j < this.indices.length; j++) {
      const f = fields[this.indices[j]!] ?? '';
      this.parts.push(f);
      this.lengths[this.k++] = f.length;
    }
    return ++this.records === BATCH_RECORDS;
  }

  /** Sends the records taken; waits while MAX_IN_FLIGHT batches are unanswered. */
  async send(): Promise<void> {
    if (this.records > 0) {
      const batch: ColumnsBatch = { text: this.parts.join(''), lengths: this.lengths, records: this.records };
      this.worker.postMessage(batch, [this.lengths.buffer as ArrayBuffer]);
      this.inFlight++;
      this.parts = [];
      this.lengths = new Uint32Array(BATCH_RECORDS * this.indices.length);
      this.k = 0;
      this.records = 0;
    }
    while (this.inFlight >= MAX_IN_FLIGHT) await this.next();
  }

  /** The worker's columns, profiled, once every record is sent. */
  async finish(finish: ColumnsFinish['finish']): Promise<ColumnsResult> {
    await this.send();
    this.worker.postMessage({ finish } satisfies ColumnsFinish);
    while (!this.result) await this.next();
    return this.result;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }

  /** Until the worker answers (or fails: then its error). */
  private async next(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = undefined;
    if (this.failure) throw this.failure;
  }
}

/** What a column keeps of one distinct value (up to `distinctCap` of them). */
interface Distinct {
  /** Times seen. */
  count: number;
  /** Times seen whose verdicts (type, formats, type evidence) `flush` has still to add up. */
  pending: number;
  /** Its number (numeric values), added to the running mean at each sighting in file order; NaN if none. */
  x: number;
  /** The key is the whole value, not the first characters of a long one: the verdicts on it hold for every sighting. */
  exact: boolean;
}

/**
 * A set of strings fixed once built, that answers "surely not in it" or "maybe": one bit per
 * hash (FNV-1a) in a table of 16 bits or more per string, so a string not in the set is taken
 * for one about 1 time in 16 or less. Tells a column's values that are none of its kept distinct
 * values apart for the cost of hashing them, without a Map look-up.
 */
export class KeyFilter {
  private readonly bits: Int32Array;
  private readonly shift: number;

  constructor(keys: Iterable<string>, count: number) {
    let log = 10;
    while (1 << log < count * 16 && log < 26) log++;
    this.bits = new Int32Array(1 << (log - 5));
    this.shift = 32 - log;
    for (const k of keys) {
      const h = this.slot(k);
      this.bits[h >>> 5]! |= 1 << (h & 31);
    }
  }

  /** False: the string is not in the set. True: it may be. */
  has(s: string): boolean {
    const h = this.slot(s);
    return (this.bits[h >>> 5]! & (1 << (h & 31))) !== 0;
  }

  private slot(s: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    return Math.imul(h, 0x9e3779b1) >>> this.shift;
  }
}

/** Counts per base type, one field each. */
type TypeCounts = Record<BaseType, number>;

/** A column's numbers so far: count, running mean and sum of squares (Welford), range. */
export interface NumberStats {
  n: number;
  mean: number;
  m2: number;
  min: number;
  max: number;
}

export class ColumnAccumulator {
  missing = 0;
  nonEmpty = 0;
  readonly types: TypeCounts = { boolean: 0, integer: 0, number: 0, year: 0, date: 0, datetime: 0, datetime_tz: 0, time: 0, json: 0, string: 0 };
  /**
   * The distinct values (the first `distinctCap` of them), each with its count — and the cache of
   * verdicts: a value seen before is not classified or tested against the formats again (see `add`).
   */
  readonly counts = new Map<string, Distinct>();
  distinctCapped = false;
  /** Once `counts` is full (it only loses keys after that): which keys it may hold. */
  private kept: KeyFilter | undefined;
  /** Formats still in the running, with their passes and failures. */
  candidates: { format: FormatDefinition; pass: number; fail: number; hinted: boolean }[];
  num: NumberStats = { n: 0, mean: 0, m2: 0, min: Infinity, max: -Infinity };
  /** Date ranges under both readings of `a/b/yyyy`; the column's evidence picks one at the end. */
  dates = {
    dmy: { min: undefined as string | undefined, max: undefined as string | undefined },
    mdy: { min: undefined as string | undefined, max: undefined as string | undefined },
    onlyDmy: 0,
    onlyMdy: 0,
    allIso: true,
  };
  /** Every number is written as PostgreSQL reads it (no grouping separators, no decimal comma). */
  plainNumbers = true;
  minLength = Infinity;
  maxLength = 0;
  /** Coordinates seen in geometry values: [minX, minY, maxX, maxY]. */
  geoBox: [number, number, number, number] | undefined;
  /** A format that has a bounding box is still in the running: geometry values are scanned. */
  private boxed: boolean;
  /** What the type inference (column-type.ts) gathers: the clean type and how to read it. */
  readonly evidence = new TypeEvidence();

  constructor(
    readonly name: string,
    formats: readonly FormatDefinition[],
    private readonly distinctCap: number,
    /** The file's decimal mark: part of every value's verdict, so one per column. */
    private readonly decimalComma: boolean,
  ) {
    this.candidates = formats.map((format) => ({ format, pass: 0, fail: 0, hinted: headerMatches(format, name) })).filter((c) => c.hinted || !c.format.requiresHeaderHint);
    this.boxed = this.candidates.length > 0;
  }

  /**
   * One value of the column. A value met before (one of the distinct values kept) is only
   * counted: what it is does not change, so its type, type evidence and format verdicts are added
   * up once per distinct value by `flush` (times its count), and only its number goes into the
   * running mean at once, to keep the file's order. The first PRUNE_AFTER values are always
   * classified one by one, as the formats are pruned on them. A value past the cap of distinct
   * values, or longer than the key kept for it, is classified every time.
   */
  add(raw: string): void {
    // most values have nothing to trim: printable ASCII or Latin-1 at both ends (every character
    // `trim` removes is below 0x21 or from U+00A0 up) — and trim is costlier than that check
    const first = raw.charCodeAt(0);
    const last = raw.charCodeAt(raw.length - 1);
    const value = first > 0x20 && first < 0xa0 && last > 0x20 && last < 0xa0 ? raw : raw.trim();
    if (value === '') {
      this.missing++;
      return;
    }
    this.nonEmpty++;
    const key = value.length > MAX_KEY_CHARS ? `${value.slice(0, MAX_KEY_CHARS)}…` : value;
    // once the distinct values are all kept, most values of a column of identifiers are none of
    // them: a filter tells most of those apart without the costlier look-up
    let entry = this.kept !== undefined && !this.kept.has(key) ? undefined : this.counts.get(key);
    if (entry !== undefined) {
      entry.count++;
      if (entry.exact && this.nonEmpty > PRUNE_AFTER) {
        entry.pending++;
        if (entry.x === entry.x) this.addNumber(entry.x);
        return;
      }
      entry = undefined; // counted; classified again below
    } else if (this.counts.size < this.distinctCap) {
      // a copy, not the value itself: the reader's strings are slices of a 64 KiB piece of text,
      // which a kept slice would keep alive
      entry = { count: 1, pending: 0, x: NaN, exact: key === value };
      this.counts.set(Buffer.from(key, 'utf8').toString('utf8'), entry);
      if (this.counts.size === this.distinctCap) this.kept = new KeyFilter(this.counts.keys(), this.distinctCap);
    } else this.distinctCapped = true;

    const x = this.classify(value, 1);
    if (x === x) this.addNumber(x);
    if (entry) entry.x = x;
    if (this.nonEmpty === PRUNE_AFTER) {
      this.candidates = this.candidates.filter((c) => c.pass / this.nonEmpty >= c.format.threshold - PRUNE_MARGIN);
      // the bounding box serves only these formats
      this.boxed = this.candidates.some((c) => BOXED_FORMATS.has(c.format.name));
    }
    if (this.boxed && geometryLike(value)) this.addGeometry(value);
  }

  /** The repeats `add` only counted, added up: each distinct value's verdicts, times its pending count. */
  private flush(): void {
    for (const [value, entry] of this.counts) {
      if (entry.pending === 0) continue;
      this.classify(value, entry.pending);
      entry.pending = 0;
    }
  }

  /**
   * The verdicts on one value seen `times` times: its type evidence, base type, length, date
   * range and formats. Returns its number (numeric values; NaN otherwise), which the caller adds
   * to the running mean.
   */
  private classify(value: string, times: number): number {
    this.evidence.addTrimmed(value, times);
    const type = baseTypeOf(value, { decimalComma: this.decimalComma });
    this.types[type] += times;
    if (value.length < this.minLength) this.minLength = value.length;
    if (value.length > this.maxLength) this.maxLength = value.length;
    let x = NaN;
    if (type === 'integer' || type === 'number' || type === 'year') {
      if (this.plainNumbers && !PLAIN_NUMBER.test(value)) this.plainNumbers = false;
      x = numberOfType(value, type, this.decimalComma) ?? NaN;
    } else if (type === 'date' || type === 'datetime' || type === 'datetime_tz') {
      const readings = dateReadings(value);
      const order = readings?.order;
      if (order === 'dmy') this.dates.onlyDmy += times;
      else if (order === 'mdy') this.dates.onlyMdy += times;
      for (const reading of ['dmy', 'mdy'] as const) {
        const d = readings?.[reading];
        if (d === undefined) continue;
        const range = this.dates[reading];
        if (range.min === undefined || d < range.min) range.min = d;
        if (range.max === undefined || d > range.max) range.max = d;
      }
      if (order !== 'ymd') this.dates.allIso = false;
    }
    for (const c of this.candidates) {
      if (c.format.test(value)) c.pass += times;
      else c.fail += times;
    }
    return x;
  }

  private addNumber(x: number): void {
    const s = this.num;
    s.n++;
    const d = x - s.mean;
    s.mean += d / s.n;
    s.m2 += d * (x - s.mean);
    if (x < s.min) s.min = x;
    if (x > s.max) s.max = x;
  }

  /** Bounding box of the coordinates in a GeoJSON or WKT value. */
  private addGeometry(value: string): void {
    const numbers = value.match(/-?\d+(?:\.\d+)?(?:e-?\d+)?/gi);
    if (!numbers || numbers.length < 2) return;
    const start = value.includes('SRID=') ? 1 : 0; // skip the SRID number
    for (let i = start; i + 1 < numbers.length; i += 2) {
      const x = Number(numbers[i]);
      const y = Number(numbers[i + 1]);
      const b = (this.geoBox ??= [x, y, x, y]);
      if (x < b[0]) b[0] = x;
      if (y < b[1]) b[1] = y;
      if (x > b[2]) b[2] = x;
      if (y > b[3]) b[3] = y;
    }
  }

  finish(top: number, typeThreshold = DEFAULT_TYPE_THRESHOLD, decimalComma?: boolean): ColumnProfile {
    // the clean type first: a number or date column's missing-value markers (`NA`, `...`) are missing values
    this.flush();
    let clean = this.evidence.decide(typeThreshold, decimalComma === undefined ? {} : { decimalComma });
    for (const { value, count } of clean.missing ?? []) {
      this.missing += count;
      this.nonEmpty -= count;
      const t = baseTypeOf(value, { decimalComma: decimalComma ?? false });
      this.types[t] -= count;
      this.counts.delete(value);
      // nor evidence of a format (`NA` is Namibia's ISO code)
      for (const c of this.candidates) {
        if (c.format.test(value)) c.pass -= count;
        else c.fail -= count;
      }
    }
    const n = this.nonEmpty;
    const share = (t: BaseType) => ACCEPTS[t].reduce((sum, a) => sum + this.types[a], 0) / n;
    let type: BaseType = 'string';
    let typeScore = 1;
    if (n > 0) {
      for (const t of TYPE_ORDER) {
        if (t === 'year' && !YEAR_HINTS.some((w) => words(this.name).includes(w))) continue;
        const s = share(t);
        if (s >= TYPE_THRESHOLD) {
          type = t;
          typeScore = s;
          break;
        }
      }
    }
    let format: string | null = null;
    let score = n > 0 ? typeScore : 0;
    if (n > 0) {
      const ranked = this.candidates
        .map((c) => ({ c, share: c.pass / n }))
        .filter(({ c, share }) => share >= c.format.threshold)
        .map(({ c, share }) => ({ c, share, score: Math.min(1, share * 0.85 + (c.hinted ? 0.15 : 0)) }))
        .sort((a, b) => b.score - a.score || Number(Boolean(b.c.format.locale)) - Number(Boolean(a.c.format.locale)));
      const best = ranked[0];
      if (best) {
        format = best.c.format.name;
        score = Number(best.score.toFixed(4));
      }
    }
    const topValues = [...this.counts.entries()]
      .map(([value, d]) => [value, d.count] as const)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, top)
      .map(([value, count]) => ({ value, count }));
    const distinct = this.counts.size;
    const profile: ColumnProfile['profile'] = {
      missing: this.missing,
      distinct,
      distinctCapped: this.distinctCapped,
      top: topValues,
      categorical: n > 0 && distinct <= 25 && distinct / n <= 0.05,
    };
    if (n > 0) {
      profile.minLength = this.minLength;
      profile.maxLength = this.maxLength;
    }
    profile.typeShare = Number((n > 0 ? (type === 'string' ? 1 : share(type)) : 0).toFixed(4));
    if (type === 'integer' || type === 'number' || type === 'year') profile.plainNumbers = this.plainNumbers;
    if ((type === 'integer' || type === 'number' || type === 'year') && this.num.n > 0) {
      profile.min = this.num.min;
      profile.max = this.num.max;
      profile.mean = round(this.num.mean);
      profile.std = round(this.num.n > 1 ? Math.sqrt(this.num.m2 / (this.num.n - 1)) : 0);
    }
    // month-first only when the values say so (a 13th or later in the second place, never in the first)
    const dates = this.dates.onlyMdy > this.dates.onlyDmy ? this.dates.mdy : this.dates.dmy;
    if ((type === 'date' || type === 'datetime' || type === 'datetime_tz') && dates.min !== undefined) {
      profile.min = dates.min;
      profile.max = dates.max;
      profile.dateOrder = this.dates.allIso ? 'ymd' : this.dates.onlyMdy > this.dates.onlyDmy ? 'mdy' : 'dmy';
    }
    if (this.geoBox && format !== null && BOXED_FORMATS.has(format)) {
      const [a, b, c, d] = this.geoBox;
      // a latitude-first pair lists y before x
      profile.bbox = format === 'latlon_wgs84' ? [b, a, d, c] : [a, b, c, d];
    }
    // a code (a format stored as text: postcodes, SIRENs, phone numbers) stays text
    const code = format !== null && this.candidates.find((c) => c.format.name === format)?.format.baseType === 'string';
    if (code && clean.type !== 'text') clean = { type: 'text', share: 1, note: `a code (${format}), kept as written` };
    return { name: this.name, type, format, score: Number(score.toFixed(4)), clean, profile };
  }
}

/**
 * Profile rows already split into fields (a sample of a staging table, say) with the same column
 * accumulators as a file: what `civic-etl load` and the clean step run on the staged values, so
 * that their types are the profile's. `decimalComma`: the file's decimal mark, when known.
 */
export function profileRows(
  header: readonly string[],
  rows: Iterable<readonly (string | null | undefined)[]>,
  opts: { locales?: readonly Locale[]; typeThreshold?: number; decimalComma?: boolean; top?: number; distinctCap?: number } = {},
): ColumnProfile[] {
  const formats = formatsFor(opts.locales ?? []);
  // no distinct values kept (the top values and counts are not what is asked here): a third of the time
  const columns = header.map((name) => new ColumnAccumulator(name, formats, opts.distinctCap ?? 0, opts.decimalComma ?? false));
  for (const row of rows) for (let i = 0; i < columns.length; i++) columns[i]!.add(row[i] ?? '');
  const profiles = columns.map((c) => c.finish(opts.top ?? 10, opts.typeThreshold, opts.decimalComma));
  addPairedBoundingBoxes(
    profiles,
    columns.map((c) => c.num),
  );
  return profiles;
}

/** A latitude column and a longitude column of the same file make one bounding box, on both. */
function addPairedBoundingBoxes(profiles: ColumnProfile[], numbers: readonly NumberStats[]): void {
  const lat = profiles.findIndex((p) => p.format === 'latitude_wgs84');
  const lon = profiles.findIndex((p) => p.format === 'longitude_wgs84');
  if (lat < 0 || lon < 0) return;
  const y = numbers[lat]!;
  const x = numbers[lon]!;
  if (y.n === 0 || x.n === 0) return;
  const bbox: [number, number, number, number] = [x.min, y.min, x.max, y.max];
  profiles[lat]!.profile.bbox = bbox;
  profiles[lon]!.profile.bbox = bbox;
}

/**
 * A value that may hold coordinates (GeoJSON, WKT, EWKT, a `lat,lon` pair): what is worth a
 * bounding-box scan. The cheap tests on characters come first, the expressions only where they can match.
 */
function geometryLike(value: string): boolean {
  const c0 = value.charCodeAt(0);
  if (c0 === 123 /* { */ || c0 === 91 /* [ */) return true;
  if (value.indexOf('(') > 0 && WKT_START.test(value)) return true;
  if (value.includes('SRID=')) return true;
  return (value.includes(',') || value.includes(';')) && COORDINATE_PAIR.test(value);
}

function words(header: string): string[] {
  return header
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

function round(x: number): number {
  return Number(x.toPrecision(12));
}

/**
 * The records seen, as 52-bit FNV-1a-style hashes of their fields (two 32-bit lanes), for
 * duplicate counting: an open-addressing table over two typed arrays rather than a Set of
 * numbers — no boxed number per record, mostly one memory access per look-up. Keeps at most
 * `cap` hashes; past that, new records are only checked against those (`full`).
 */
export class RecordHashes {
  size = 0;
  /** A record was not remembered: the table was full. */
  full = false;
  /** High lane of each slot's hash. */
  private hi = new Uint32Array(1 << 16);
  /** Low 20 bits of the other lane, plus 1 (0: an empty slot). */
  private lo = new Uint32Array(1 << 16);

  constructor(private readonly cap: number) {}

  /** Whether a record with these fields was seen before; remembers it if not (and there is room). */
  check(fields: readonly string[]): boolean {
    let h1 = 0x811c9dc5;
    let h2 = 0x01000193;
    for (let f = 0; f < fields.length; f++) {
      const s = fields[f]!;
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        h1 = Math.imul(h1 ^ c, 0x01000193);
        h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      }
      h1 = Math.imul(h1 ^ 0x1f, 0x01000193); // field separator
      h2 = Math.imul(h2 ^ 0x1f, 0x5bd1e995);
    }
    const hi = h1 >>> 0;
    const lo = ((h2 >>> 0) & 0xfffff) + 1;
    let slot = this.find(hi, lo);
    if (this.lo[slot] === lo) return true;
    if (this.size >= this.cap) {
      this.full = true;
      return false;
    }
    if (2 * (this.size + 1) > this.hi.length) {
      this.grow();
      slot = this.find(hi, lo);
    }
    this.hi[slot] = hi;
    this.lo[slot] = lo;
    this.size++;
    return false;
  }

  /** The slot holding the hash, or the empty slot where it goes (linear probing; the table is at most half full). */
  private find(hi: number, lo: number): number {
    const mask = this.hi.length - 1;
    let slot = Math.imul(hi ^ Math.imul(lo, 0x9e3779b1), 0x85ebca6b) & mask;
    for (;;) {
      const l = this.lo[slot]!;
      if (l === 0 || (l === lo && this.hi[slot] === hi)) return slot;
      slot = (slot + 1) & mask;
    }
  }

  private grow(): void {
    const { hi, lo } = this;
    this.hi = new Uint32Array(hi.length * 2);
    this.lo = new Uint32Array(lo.length * 2);
    for (let i = 0; i < hi.length; i++) {
      if (lo[i] === 0) continue;
      const slot = this.find(hi[i]!, lo[i]!);
      this.hi[slot] = hi[i]!;
      this.lo[slot] = lo[i]!;
    }
  }
}

/**
 * Profile the rows of a reader's table (a sheet, a JSON or GeoJSON file, a shapefile, a layer) with
 * the same column accumulators as a CSV: types, formats, missing, distinct, ranges, duplicates.
 * A missing value (NULL) counts as an empty cell. The structure fields that describe CSV text are
 * filled neutrally (UTF-8, no delimiter, header on the first row); `format` says what was read.
 */
export async function profileTable(table: ReadTable, opts: Omit<ProfileOptions, 'headBytes' | 'hints'>): Promise<FileProfile & { format: string }> {
  const formats = formatsFor(opts.locales ?? []);
  const columns: ColumnAccumulator[] = [];
  const grow = () => {
    while (columns.length < table.columns.length) columns.push(new ColumnAccumulator(table.columns[columns.length]!, formats, opts.distinctCap ?? 10_000, false));
  };
  const seen = new RecordHashes(MAX_ROW_HASHES);
  let duplicates = 0;
  let rows = 0;
  let more = false;
  for await (const row of table.rows()) {
    if (opts.sample !== undefined && rows === opts.sample) {
      more = true;
      break;
    }
    rows++;
    grow();
    const fields = columns.map((_, i) => row.values[i] ?? '');
    if (seen.check(fields)) duplicates++;
    for (let i = 0; i < columns.length; i++) columns[i]!.add(fields[i]!);
  }
  grow();
  const profiles = columns.map((c) => c.finish(opts.top ?? 10, opts.typeThreshold));
  addPairedBoundingBoxes(
    profiles,
    columns.map((c) => c.num),
  );
  // the types the file declares, where every value fits them (DBF fields, GeoPackage columns, a
  // Parquet schema), as `civic-etl load` keeps them: a DBF character field of digits stays text,
  // a REAL column of whole numbers a number; known once every row is read
  if (!more) {
    const declared = table.declaredTypes?.() ?? [];
    profiles.forEach((p, i) => {
      const type = declared[i];
      if (type) p.clean = { type, share: 1, declared: true };
    });
  }
  const missing = missingWarning(profiles.map((p) => p.clean));
  return {
    file: opts.file,
    format: table.format,
    encoding: 'utf-8',
    bom: false,
    lineEnding: '\n',
    delimiter: '',
    quote: '',
    headerRow: 0,
    preamble: [],
    header: [...table.columns],
    blankHeaders: [],
    decimalComma: false,
    firstDataLine: 2,
    rowCount: rows,
    duplicateRows: duplicates,
    raggedLines: [],
    raggedCount: 0,
    sampled: more,
    duplicatesExact: !seen.full,
    columns: more ? profiles : withDeclaredTypes(profiles, table.declaredTypes?.()),
    warnings: [...table.warnings, ...(missing ? [missing] : [])],
  };
}

const DECLARED_BASE: Record<DeclaredType, BaseType> = {
  text: 'string',
  integer: 'integer',
  bigint: 'integer',
  numeric: 'number',
  double: 'number',
  date: 'date',
  timestamp: 'datetime',
  timestamptz: 'datetime_tz',
  boolean: 'boolean',
};

/**
 * The types a file declares (a shapefile's DBF fields, a Parquet schema) where every value fits
 * them, over the types read from the values — as `civic-etl load` takes them, so that profile and
 * load agree: a DBF character field of codes (`19499`) is text in both. Only once every row was
 * read (the reader knows a declared type holds only then). The column's `clean` decision (the type
 * `load` gives it) is the declared type.
 */
function withDeclaredTypes(profiles: ColumnProfile[], declared: (DeclaredType | undefined)[] | undefined): ColumnProfile[] {
  if (!declared) return profiles;
  return profiles.map((p, i) => {
    const type = declared[i];
    if (type === undefined) return p;
    // the type `load` gives the column is the declared one too (a GeoPackage REAL of whole numbers is a number)
    const clean = p.clean.type === type ? p.clean : { type, share: 1, note: 'declared by the file' };
    return DECLARED_BASE[type] === p.type && clean === p.clean ? p : { ...p, type: DECLARED_BASE[type], clean };
  });
}
