/**
 * The one CSV reader: every part of civic-etl that scans CSV (detection, profiling, staging, part
 * splitting) reads records with the rule below, from this module. There are two scanners over the
 * same rule: `CsvTokenizer` turns decoded text into fields (detection, profiling), and
 * `CsvByteScanner` finds record boundaries and field counts in UTF-8 bytes without building
 * strings (staging passes most records to COPY untouched; part splitting cuts between records). A
 * record the byte scanner cannot pass through as it is (see `needsRewrite`) is decoded by
 * `CsvTokenizer` and written again for COPY (`copyRecord`), so the field values are the
 * tokenizer's, always. The differential test (test/integration/csv-read.test.ts) holds the two to it.
 *
 * The rule (quote `"` here; the detected quote, or none):
 * - A record ends at `\r\n`, `\n` or a lone `\r` outside quotes. A line break inside quotes is
 *   kept in the field.
 * - A quote opens a quoted field only as the field's first character; anywhere else it is data
 *   (`5" screen` is the 9 characters it shows).
 * - Inside quotes, a doubled quote is one quote. A quote followed by a delimiter, a line break or
 *   the end of the text closes the field.
 * - A quote inside quotes followed by anything else ends the quoting, and the whole field is then
 *   read as the text it is, quotes included, up to the next delimiter or line break
 *   (`"a"b` → `"a"b`, `"a""b"c` → `"a""b"c`): no character is dropped or added.
 * - U+FEFF (a byte-order mark) at the very start of a record is dropped: a BOM left by
 *   concatenating files, or repeated at the start of the file.
 * - A blank line is a record of one field whose value is empty (quoted or not) or, when the header
 *   has more than one field, only white space (see `isBlankRecord`); readers skip them.
 * - Line numbers: the physical line (1-based) each record starts on; `\r\n`, `\n` and a lone `\r`
 *   are one line each, inside quotes or not.
 * - Quote `''`: no quoting at all.
 *
 * Why our own scanner rather than csv-parse (which the profiler once used): staging must run near
 * memory speed on bytes (`indexOf`, no strings for records that need no change), which no CSV
 * library offers, and the profiler must read exactly what staging loads, so both share this rule.
 *
 * Size limit (text tokenizer): before each byte appended to a field, the completed fields of the
 * record (in UTF-16 code units) plus the bytes of the field so far (in UTF-8) must not exceed
 * `maxRecordChars`.
 *
 * Scanning uses `indexOf` for the next delimiter / line break / quote, caching each position until
 * the scan passes it, and fields are slices of the piece; per-character work happens only in the
 * rare paths.
 */
import type { RecordRow } from '../profile/types.ts';
import { isMissingMarker } from '../profile/column-type.ts';

const LF = 0x0a;
const CR = 0x0d;
const BOM = 0xfeff;

/** Scan states between pieces. */
const START = 0; // at the start of a field (nothing of it read)
const UNQUOTED = 1; // in an unquoted field (or a quoted one read on after a stray closing quote)
const QUOTED = 2; // inside quotes
const QUOTE_PENDING = 3; // inside quotes, right after a quote whose meaning depends on the next character
type State = typeof START | typeof UNQUOTED | typeof QUOTED | typeof QUOTE_PENDING;

export interface TokenizerOptions {
  /** One character. */
  delimiter: string;
  /** One character, or '' for no quoting. */
  quote: string;
  /** Physical line (1-based) where the first record starts. */
  firstLine: number;
  /** See the module comment. 0 = no limit. */
  maxRecordChars: number;
}

/** Why tokenizing stopped: a quoted field that never closes, or a record over the size limit. */
export class TokenizeError extends Error {
  constructor(
    readonly kind: 'unclosed-quote' | 'record-too-long',
    /** Physical line the offending record starts on. */
    readonly line: number,
  ) {
    super(kind === 'unclosed-quote' ? `quote not closed in the record starting on line ${line}` : `record starting on line ${line} is too long`);
    this.name = 'TokenizeError';
  }
}

/**
 * @example
 *   const tok = new CsvTokenizer({ delimiter: ',', quote: '"', firstLine: 2, maxRecordChars: 1 << 24 });
 *   const out: RecordRow[] = [];
 *   tok.write('1,"a\n', out); tok.write('b"\n2,c', out); tok.end(out);
 *   // out: [{ line: 2, fields: ['1', 'a\nb'] }, { line: 4, fields: ['2', 'c'] }]
 */
export class CsvTokenizer {
  private readonly delimiter: string;
  private readonly dc: number;
  private readonly quote: string;
  /** Quote character code, or -1 for no quoting. */
  private readonly qc: number;
  private readonly max: number;

  private state: State = START;
  /** Completed fields of the record being read. */
  private fields: string[] = [];
  /** The field being read, as far as it goes (unescaped), when `state` is not START. */
  private field = '';
  /** Line breaks inside the quoted fields of the record being read, so far. */
  private breaks = 0;
  /** UTF-16 code units of the completed fields of the record being read. */
  private recordChars = 0;
  /** Physical line where the record being read starts. */
  private line: number;
  /** The previous piece ended with a CR that ended a record: a LF first in the next piece belongs to it. */
  private skipLF = false;
  private failed: TokenizeError | undefined;

  constructor(opts: TokenizerOptions) {
    if (opts.delimiter.length !== 1) throw new Error(`delimiter must be one character, got ${JSON.stringify(opts.delimiter)}`);
    if (opts.quote.length > 1) throw new Error(`quote must be one character or none, got ${JSON.stringify(opts.quote)}`);
    this.delimiter = opts.delimiter;
    this.dc = opts.delimiter.charCodeAt(0);
    this.quote = opts.quote;
    this.qc = opts.quote === '' ? -1 : opts.quote.charCodeAt(0);
    this.max = opts.maxRecordChars > 0 ? opts.maxRecordChars : Infinity;
    this.line = opts.firstLine;
  }

  /**
   * Tokenize the next piece of text, appending each record it completes to `out`. On an error,
   * the records before it are in `out` and a TokenizeError is thrown (and thrown again on any
   * later call).
   */
  write(s: string, out: RecordRow[]): void {
    if (this.failed) throw this.failed;
    const n = s.length;
    if (n === 0) return;
    const D = this.delimiter;
    const dc = this.dc;
    const Q = this.quote;
    const qc = this.qc;
    let state = this.state;
    let fields = this.fields;
    let field = this.field;
    let breaks = this.breaks;
    let recordChars = this.recordChars;
    let line = this.line;
    const max = this.max;
    let t = 0;
    // Next delimiter, LF, CR and quote at or after the scan position (n: none), each looked up
    // again only once the scan has passed it. (Looking them all up here, rather than starting
    // from "not looked up", also keeps V8 from a code shape that is ten times slower: it looked
    // up the CR again for every field of a file without any.)
    let nd = (t = s.indexOf(D)) < 0 ? n : t;
    let nl = (t = s.indexOf('\n')) < 0 ? n : t;
    let nr = (t = s.indexOf('\r')) < 0 ? n : t;
    let nq = qc < 0 || (t = s.indexOf(Q)) < 0 ? n : t;
    let i = 0;
    if (this.skipLF) {
      this.skipLF = false;
      if (s.charCodeAt(0) === LF) i = 1;
    }

    try {
      for (;;) {
        /** Where the field being read ends (at a delimiter, CR or LF); set by every path below. */
        let e: number;
        if (state === START) {
          if (i >= n) break;
          if (fields.length === 0 && s.charCodeAt(i) === BOM) {
            // a byte-order mark at the start of a record is not data
            i++;
            continue;
          }
          if (s.charCodeAt(i) === qc) {
            const j = i + 1;
            if (nq < j) nq = (t = s.indexOf(Q, j)) < 0 ? n : t;
            const k = nq;
            const c = k + 1 < n ? s.charCodeAt(k + 1) : -1;
            if (c !== dc && c !== LF && c !== CR) {
              // A doubled quote, a stray closing quote, or the end of the piece: the long way.
              state = QUOTED;
              field = '';
              i = j;
              continue;
            }
            // The common case: "text" followed by a delimiter or line break, within this piece.
            const f = s.slice(j, k);
            e = k + 1;
            if (recordChars + 3 * f.length - 1 > max && this.tooLong(recordChars, f)) throw this.fail('record-too-long', line);
            if (nl < j) nl = (t = s.indexOf('\n', j)) < 0 ? n : t;
            if (nr < j) nr = (t = s.indexOf('\r', j)) < 0 ? n : t;
            if (nl < k || nr < k) breaks += lineBreaksIn(f);
            fields.push(f);
            recordChars += f.length;
          } else {
            if (nd < i) nd = (t = s.indexOf(D, i)) < 0 ? n : t;
            if (nl < i) nl = (t = s.indexOf('\n', i)) < 0 ? n : t;
            if (nr < i) nr = (t = s.indexOf('\r', i)) < 0 ? n : t;
            e = nd < nl ? nd : nl;
            if (nr < e) e = nr;
            if (e === n) {
              field = s.slice(i);
              state = UNQUOTED;
              i = n;
              break;
            }
            const f = s.slice(i, e);
            if (recordChars + 3 * f.length - 1 > max && this.tooLong(recordChars, f)) throw this.fail('record-too-long', line);
            fields.push(f);
            recordChars += f.length;
          }
        } else if (state === QUOTED) {
          if (nq < i) nq = (t = s.indexOf(Q, i)) < 0 ? n : t;
          const k = nq;
          if (k === n) {
            field += s.slice(i);
            i = n;
            break;
          }
          if (k + 1 === n) {
            field += s.slice(i, k);
            state = QUOTE_PENDING;
            i = n;
            break;
          }
          const c = s.charCodeAt(k + 1);
          if (c === qc) {
            field += s.slice(i, k + 1);
            i = k + 2;
            continue;
          }
          if (c === dc || c === LF || c === CR) {
            field += s.slice(i, k);
            e = k + 1;
          } else {
            // A stray closing quote: the field is its raw text, read on unquoted.
            field = rawQuoted(field + s.slice(i, k), Q) + Q;
            state = UNQUOTED;
            i = k + 1;
            continue;
          }
        } else if (state === UNQUOTED) {
          if (nd < i) nd = (t = s.indexOf(D, i)) < 0 ? n : t;
          if (nl < i) nl = (t = s.indexOf('\n', i)) < 0 ? n : t;
          if (nr < i) nr = (t = s.indexOf('\r', i)) < 0 ? n : t;
          e = nd < nl ? nd : nl;
          if (nr < e) e = nr;
          if (e === n) {
            field += s.slice(i);
            i = n;
            break;
          }
          field += s.slice(i, e);
        } else {
          // QUOTE_PENDING: the previous piece ended with a quote inside quotes (i is 0).
          const c = s.charCodeAt(i);
          if (c === qc) {
            field += Q;
            state = QUOTED;
            i++;
            continue;
          }
          if (c === dc || c === LF || c === CR) {
            e = i;
          } else {
            field = rawQuoted(field, Q) + Q;
            state = UNQUOTED;
            continue;
          }
        }
        if (state !== START) {
          // A field read in QUOTED, UNQUOTED or QUOTE_PENDING (so maybe over several pieces) ended
          // at e. Only a field that started quoted has a line break in it.
          if (recordChars + 3 * field.length - 1 > max && this.tooLong(recordChars, field)) throw this.fail('record-too-long', line);
          breaks += lineBreaksIn(field);
          fields.push(field);
          recordChars += field.length;
          field = '';
          state = START;
        }

        // The field ended at e, on a delimiter or a line break.
        const term = s.charCodeAt(e);
        if (term === dc) {
          i = e + 1;
          if (i === n) break; // state START with fields: the record goes on in the next piece
          continue;
        }
        out.push({ line, fields });
        line += 1 + breaks;
        fields = [];
        breaks = 0;
        recordChars = 0;
        if (term === CR) {
          if (e + 1 === n) {
            this.skipLF = true;
            i = n;
            break;
          }
          i = s.charCodeAt(e + 1) === LF ? e + 2 : e + 1;
        } else {
          i = e + 1;
        }
      }
      // The piece ends inside a field: a field that long fails already (its bytes are at least
      // its characters), without waiting for the rest of it.
      if (state !== START && field.length > 0 && recordChars + field.length - 1 > max) throw this.fail('record-too-long', line);
    } finally {
      this.state = state;
      this.fields = fields;
      this.field = field;
      this.breaks = breaks;
      this.recordChars = recordChars;
      this.line = line;
    }
  }

  /** The record not finished yet: the line it starts on, whether the text so far ends inside quotes, and whether anything of it was read. */
  pending(): { line: number; inQuotes: boolean; started: boolean } {
    return {
      line: this.line,
      inQuotes: this.state === QUOTED || this.state === QUOTE_PENDING,
      started: this.state !== START || this.fields.length > 0,
    };
  }

  /** The end of the text: the last record if it has no line break after it, or the error of an unclosed quote. */
  end(out: RecordRow[]): void {
    if (this.failed) throw this.failed;
    const state = this.state;
    if (state === START && this.fields.length === 0) return;
    const field = this.field;
    // csv-parse reads an open quoted field to the end before it notices: the size limit comes first.
    if (this.tooLong(this.recordChars, field)) throw this.fail('record-too-long', this.line);
    if (state === QUOTED) throw this.fail('unclosed-quote', this.line);
    this.fields.push(field);
    out.push({ line: this.line, fields: this.fields });
    this.fields = [];
    this.field = '';
    this.state = START;
  }

  /**
   * The field (after completed fields of `recordChars` code units) breaks the size limit. Callers
   * first check the cheap bound `recordChars + 3 * field.length - 1 > max` (a code unit is at most
   * 3 UTF-8 bytes).
   */
  private tooLong(recordChars: number, field: string): boolean {
    return field.length > 0 && recordChars + Buffer.byteLength(field, 'utf8') - 1 > this.max;
  }

  private fail(kind: TokenizeError['kind'], line: number): TokenizeError {
    return (this.failed = new TokenizeError(kind, line));
  }
}

/** The raw text of a quoted field read so far (`value` unescaped): the opening quote, quotes doubled again. */
function rawQuoted(value: string, Q: string): string {
  return Q + (value.indexOf(Q) < 0 ? value : value.split(Q).join(Q + Q));
}

/** Physical line breaks in a field's text (`\r\n`, `\n`, lone `\r`). */
export function lineBreaksIn(f: string): number {
  const k = f.indexOf('\n');
  const r = f.indexOf('\r');
  if (k < 0 && r < 0) return 0;
  let n = 0;
  for (let i = k < 0 ? r : r < 0 ? k : Math.min(k, r); i < f.length; i++) {
    const c = f.charCodeAt(i);
    if (c === LF) n++;
    else if (c === CR) {
      n++;
      if (f.charCodeAt(i + 1) === LF) i++;
    }
  }
  return n;
}

/**
 * A record that is a blank line, not data: one field, empty (quoted or not), or only white space
 * (as `String.prototype.trim` knows it) when the header has more than one field (in a one-column
 * file, `"  "` is a value).
 */
export function isBlankRecord(fields: readonly string[], expected: number): boolean {
  if (fields.length !== 1) return false;
  const f = fields[0]!;
  if (f === '' || expected <= 1) return f === '';
  return f.trim() === ''; // Unicode white space, line breaks and U+FEFF
}

/**
 * A record that repeats the header (a header line above the data repeated, or files with their
 * headers concatenated): the header's values exactly, BOMs aside. Readers skip them and count them.
 */
export function isRepeatedHeader(fields: readonly string[], header: readonly string[]): boolean {
  if (fields.length !== header.length) return false;
  for (let k = 0; k < fields.length; k++) {
    const f = fields[k]!;
    if (f !== header[k] && (f.indexOf('\uFEFF') < 0 || f.replace(/\uFEFF/g, '') !== header[k])) return false;
  }
  return true;
}

/**
 * Cheap byte tests for "could this record repeat the header?" (so that the byte path decodes only
 * records that might): a byte length the header's values can have when written, and the bytes of
 * the header's longest value somewhere in it.
 */
export class HeaderRepeatProbe {
  private readonly min: number;
  private readonly max: number;
  private readonly needle: Buffer;
  /** The bytes a repeat can start with: the header's first byte, a quote, a BOM's first byte. */
  private readonly first: number;
  private readonly quote: number;
  private readonly delimiterByte: number;
  constructor(
    readonly header: readonly string[],
    delimiter: string,
    quote: string,
  ) {
    this.delimiterByte = delimiter.charCodeAt(0);
    this.first = header[0] === undefined || header[0] === '' ? -1 : Buffer.from(header[0])[0]!;
    this.quote = quote === '' ? -1 : quote.charCodeAt(0);
    let bytes = 0;
    let longest = '';
    for (const h of header) {
      bytes += Buffer.byteLength(h);
      if (h.length > longest.length) longest = h;
    }
    const k = header.length;
    this.min = bytes + k - 1;
    this.max = 2 * bytes + 3 * k + 6; // every value quoted, quotes doubled, BOMs
    this.needle = Buffer.from(longest);
  }

  /** Whether a record of the header's field count, `length` bytes long and starting with byte `b0`, may be the header again. */
  worthLooking(b0: number | undefined, length: number): boolean {
    if (b0 !== this.first && b0 !== this.quote && b0 !== EF && !(this.first === -1 && b0 === this.delimiterByte)) return false;
    return length >= this.min && length <= this.max;
  }

  /** Whether the record's bytes hold the header's longest value (after `worthLooking`). */
  maybe(rec: Buffer): boolean {
    return rec.indexOf(this.needle) >= 0;
  }
}

/** The one record of a text that holds exactly one (the byte scanner's rare path). */
export function tokenizeRecord(text: string, delimiter: string, quote: string): string[] {
  const tok = new CsvTokenizer({ delimiter, quote, firstLine: 1, maxRecordChars: 0 });
  const out: RecordRow[] = [];
  tok.write(text, out);
  tok.end(out);
  if (out.length === 0) return ['']; // nothing but BOMs
  if (out.length !== 1) throw new Error(`internal: expected one record, read ${out.length} from ${JSON.stringify(text.slice(0, 80))}`);
  return out[0]!.fields;
}

/**
 * One record as CSV that PostgreSQL's COPY (FORMAT csv) reads back as exactly these values: a
 * field holding the quote, the delimiter or a line break is quoted, its quotes doubled; an empty
 * field is written empty (NULL, as every empty field is: see README, "Empty values").
 */
export function copyRecord(fields: readonly string[], delimiter: string, quote: string): string {
  let out = '';
  for (let k = 0; k < fields.length; k++) {
    const f = fields[k]!;
    if (k > 0) out += delimiter;
    if (f.indexOf(quote) >= 0) out += quote + f.split(quote).join(quote + quote) + quote;
    else if (f.indexOf(delimiter) >= 0 || f.indexOf('\n') >= 0 || f.indexOf('\r') >= 0 || f === '\\.') out += quote + f + quote;
    else out += f;
  }
  return out;
}

const EF = 0xef;

export interface ByteScannerOptions {
  delimiter: string;
  /** One character, or '' for no quoting. */
  quote: string;
  /** Physical line (1-based) on which the first record starts. */
  firstLine: number;
}

/**
 * Called for each record the byte scanner completes: its bytes are `held` (from earlier chunks,
 * or undefined) followed by `chunk[start, end)`, without the line break; `next` is where the
 * scan goes on in `chunk` (after the line break; -1 when a CR ends the chunk and a LF may follow
 * in the next one). `fields` counts the delimiters outside quotes, plus one. `needsRewrite`: the
 * record cannot go to COPY as it is (a quote that is data, a field read on after its closing
 * quote, a BOM at its start): decode it with `tokenizeRecord`.
 */
export type OnRecord = (held: Buffer | undefined, chunk: Buffer, start: number, end: number, next: number, fields: number, line: number, needsRewrite: boolean) => void;

/**
 * Record boundaries in CSV bytes (UTF-8, or any encoding where the delimiter, the quote, CR and
 * LF are single bytes that never occur inside another character), by the rule of this module.
 * It jumps from delimiter to quote to line break with `indexOf` (memchr) and builds no string.
 *
 * @example
 *   const scanner = new CsvByteScanner({ delimiter: ',', quote: '"', firstLine: 2 }, (held, chunk, s, e, next, fields, line) => …);
 *   for await (const chunk of source) scanner.push(chunk);
 *   scanner.end();
 */
export class CsvByteScanner {
  private readonly delim: number;
  /** Quote byte, or -1 for no quoting. */
  private readonly quote: number;
  private inQuotes = false;
  /** In quotes, the previous chunk ended with a quote whose meaning depends on the next byte. */
  private quotePending = false;
  /** The scan position is at the start of a field. */
  private atFieldStart = true;
  /** In quotes, the previous chunk ended with a CR that was counted as a line: a LF first in this one is the same line break. */
  private quotedCr = false;
  /** Outside quotes, a CR ended the previous chunk and ended a record: a LF first in this one belongs to it. */
  private skipLF = false;
  private needsRewrite = false;
  /** No byte of the current record read yet (BOMs aside). */
  private atRecordStart = true;
  /** Bytes of a BOM matched at the start of the record, at the end of the previous chunk. */
  private bomAt = 0;
  /** Physical line at the scan position. */
  line: number;
  /** Line the current record started on. */
  private recordLine: number;
  private fields = 1;
  /** Where the last quoted field opened: its line and its field (1-based) in the record. */
  private quoteOpened = { line: 0, field: 0 };
  /** Bytes of the current record from earlier chunks. */
  private held: Buffer[] = [];

  constructor(
    opts: ByteScannerOptions,
    private readonly onRecord: OnRecord,
  ) {
    if (opts.delimiter.length !== 1) throw new Error(`delimiter must be one character, got ${JSON.stringify(opts.delimiter)}`);
    this.delim = opts.delimiter.charCodeAt(0);
    this.quote = opts.quote === '' ? -1 : opts.quote.charCodeAt(0);
    this.line = opts.firstLine;
    this.recordLine = opts.firstLine;
  }

  /** Whether the bytes so far end inside quotes (for an error naming the line). */
  get openQuoteLine(): number | undefined {
    return this.inQuotes && !this.quotePending ? this.recordLine : undefined;
  }

  /** The line the record being read starts on. */
  get currentRecordLine(): number {
    return this.recordLine;
  }

  push(chunk: Buffer): void {
    const n = chunk.length;
    if (n === 0) return;
    const { delim, quote } = this;
    let i = 0;
    let recStart = 0;
    if (this.skipLF) {
      this.skipLF = false;
      if (chunk[0] === LF) i = recStart = 1;
    }
    if (this.quotedCr) {
      this.quotedCr = false;
      if (this.inQuotes && !this.quotePending && chunk[0] === LF) i = 1;
    }
    if (this.atRecordStart) i = this.startRecord(chunk, i);
    if (this.quotePending) {
      this.quotePending = false;
      const c = chunk[0];
      if (c === quote) i = 1;
      else {
        this.inQuotes = false;
        this.atFieldStart = false;
        if (c !== delim && c !== LF && c !== CR) this.needsRewrite = true;
      }
    }
    // next delimiter, quote, LF and CR at or after i (n: none), looked up again once passed
    let nd = -1;
    let nq = quote < 0 ? n : -1;
    let nl = -1;
    let nr = -1;
    let t: number;
    while (i < n) {
      if (this.inQuotes) {
        if (nq < i) nq = (t = chunk.indexOf(quote, i)) < 0 ? n : t;
        const stop = nq;
        // line breaks inside quotes: every LF, and every CR not followed by a LF
        if (nl < i) nl = (t = chunk.indexOf(LF, i)) < 0 ? n : t;
        while (nl < stop) {
          this.line++;
          nl = (t = chunk.indexOf(LF, nl + 1)) < 0 ? n : t;
        }
        if (nr < i) nr = (t = chunk.indexOf(CR, i)) < 0 ? n : t;
        while (nr < stop) {
          if (nr + 1 === n) {
            this.line++;
            this.quotedCr = true;
          } else if (chunk[nr + 1] !== LF) this.line++;
          nr = (t = chunk.indexOf(CR, nr + 1)) < 0 ? n : t;
        }
        if (stop === n) {
          i = n;
          break;
        }
        if (stop + 1 === n) {
          this.quotePending = true;
          i = n;
          break;
        }
        const c = chunk[stop + 1];
        if (c === quote) {
          i = stop + 2;
          continue;
        }
        this.inQuotes = false;
        this.atFieldStart = false;
        if (c !== delim && c !== LF && c !== CR) this.needsRewrite = true; // text after the closing quote
        i = stop + 1;
        continue;
      }
      if (nd < i) nd = (t = chunk.indexOf(delim, i)) < 0 ? n : t;
      if (nq < i) nq = (t = chunk.indexOf(quote, i)) < 0 ? n : t;
      if (nl < i) nl = (t = chunk.indexOf(LF, i)) < 0 ? n : t;
      if (nr < i) nr = (t = chunk.indexOf(CR, i)) < 0 ? n : t;
      let stop = nq < nl ? nq : nl;
      if (nr < stop) stop = nr;
      if (nd < stop) {
        // delimiters before the next quote or line break
        let last = nd;
        this.fields++;
        while ((t = chunk.indexOf(delim, last + 1)) >= 0 && t < stop) {
          this.fields++;
          last = t;
        }
        nd = t < 0 ? n : t;
        this.atFieldStart = last + 1 === stop;
      } else if (stop > i) this.atFieldStart = false;
      if (stop === n) {
        i = n;
        break;
      }
      if (stop === nq) {
        if (this.atFieldStart) {
          this.inQuotes = true;
          this.quoteOpened = { line: this.line, field: this.fields };
        } else this.needsRewrite = true; // a quote inside an unquoted field is data
        this.atFieldStart = false;
        i = stop + 1;
        continue;
      }
      // a line break outside quotes ends the record
      let next: number;
      if (stop === nr) next = stop + 1 === n ? -1 : chunk[stop + 1] === LF ? stop + 2 : stop + 1;
      else next = stop + 1;
      this.finish(chunk, recStart, stop, next);
      if (next < 0) {
        this.skipLF = true;
        i = recStart = n;
        break;
      }
      i = recStart = next;
      i = this.startRecord(chunk, i);
    }
    if (recStart < n) this.held.push(chunk.subarray(recStart));
  }

  /** The end of the bytes: the last record, if it had no line break after it. Throws on a quote never closed. */
  end(): void {
    if (this.inQuotes && !this.quotePending) throw new UnclosedQuoteError(this.recordLine, this.quoteOpened);
    this.inQuotes = false;
    this.quotePending = false;
    if (this.held.length > 0 || this.fields > 1) this.finish(EMPTY, 0, 0, 0);
    this.atRecordStart = true;
    this.bomAt = 0;
    this.skipLF = false;
  }

  /** Skip the BOMs a record starts with (the rule drops them; the record is then written again). */
  private startRecord(chunk: Buffer, i: number): number {
    const n = chunk.length;
    for (;;) {
      if (i >= n) return n; // still at the start of the record
      let k = 0;
      const need = 3 - this.bomAt;
      while (k < need && i + k < n && chunk[i + k] === UTF8_BOM[this.bomAt + k]) k++;
      if (k === need) {
        i += k;
        this.bomAt = 0;
        this.needsRewrite = true;
        continue;
      }
      if (i + k === n) {
        this.bomAt += k;
        return n;
      }
      if (this.bomAt > 0) this.atFieldStart = false; // the bytes held were data after all
      this.bomAt = 0;
      this.atRecordStart = false;
      return i;
    }
  }

  private finish(chunk: Buffer, start: number, end: number, next: number): void {
    const held = this.held.length === 0 ? undefined : this.held.length === 1 ? this.held[0] : Buffer.concat(this.held);
    this.held = [];
    this.onRecord(held, chunk, start, end, next, this.fields, this.recordLine, this.needsRewrite);
    this.line++;
    this.recordLine = this.line;
    this.fields = 1;
    this.atFieldStart = true;
    this.needsRewrite = false;
    this.atRecordStart = true;
    this.bomAt = 0;
  }
}

const UTF8_BOM = [0xef, 0xbb, 0xbf];
const EMPTY = Buffer.alloc(0);

/** The bytes end inside a quoted field. */
export class UnclosedQuoteError extends Error {
  constructor(
    readonly line: number,
    /** Where the quote opened: its line, and the field (1-based) of the record it opens. */
    readonly opened: { line: number; field: number } = { line, field: 0 },
  ) {
    super(`a quoted field in the record starting on line ${line} is never closed`);
    this.name = 'UnclosedQuoteError';
  }
}

/** Lines of notes under a table at most: a longer run of such lines is data. */
export const MAX_NOTE_LINES = 10;

/**
 * A record shaped like a note under the table, padded to the header's width (GENESIS exports:
 * `__________;;;;`, `© Statistisches Bundesamt (Destatis), 2022;;;;`, `Stand: 28.07.2022;;;;`):
 * as many fields as the header (two or more), text in the first — not a number, not a
 * missing-value marker — and nothing in the others. Only a run of at most `MAX_NOTE_LINES` of
 * them that ends the file, one of them marked as a note (`isNoteMark`), is notes; readers hold
 * them back until they know, and drop them with a warning. Anywhere else they are rows (`a,,` as
 * the last line of a file is a row with two empty values).
 */
export function isNoteRecord(fields: readonly string[], expected: number): boolean {
  if (expected < 2 || fields.length !== expected) return false;
  for (let i = 1; i < fields.length; i++) if (fields[i]!.trim() !== '') return false;
  const first = fields[0]!.trim();
  return first !== '' && /[^\d\s.,'+\-/:]/.test(first) && !isMissingMarker(first);
}

/**
 * The first field of a line that marks a run of lines under a table as notes: a ruler (`_____`,
 * `-----`, `=====`), a copyright, or the words publishers start notes and sources with
 * (`Source:`, `Quelle:`, `Note`, `Stand:`, `Anmerkung`, `Bron:`, `*`, `(1)`).
 */
export function isNoteMark(text: string): boolean {
  const t = text.trim();
  return /^[_\-=*.\u2013\u2014]{3,}$/.test(t) || NOTE_START.test(t);
}
const NOTE_START =
  /^(?:©|\(c\)\s|copyright\b|sources?\s*:|notes?\s*:|nb\b|n\.b\.|footnotes?\b|quellen?\s*:|stand\s*:|anmerkungen?\b|fu(?:ß|ss)noten?\b|hinweise?\s*:|bronn?(?:en)?\s*:|opmerkingen?\b|toelichting\b|fuentes?\s*:|notas?\s*:|remarques?\s*:|\*+\s|\(\s*[0-9a-z]{1,2}\s*\)\s|\[\s*[0-9a-z]{1,2}\s*\]\s)/i;

/** Whether a record's bytes may be a note (`isNoteRecord`): they end with the header's width of empty fields. */
export function mayBeNoteBytes(rec: Buffer, expected: number, delimiter: number): boolean {
  if (expected < 2) return false;
  let end = rec.length;
  while (end > 0 && (rec[end - 1] === 0x0d || rec[end - 1] === 0x20)) end--;
  if (end < expected) return false;
  for (let i = end - expected + 1; i < end; i++) if (rec[i] !== delimiter) return false;
  return true;
}

/** `3 lines below the table read as notes, not rows (lines 877–879: "__________", "© Statistisches…")`. */
export function notesWarning(file: string, notes: readonly { line: number; text: string }[]): string {
  const n = notes.length;
  const lines = n === 1 ? `line ${notes[0]!.line}` : `lines ${notes[0]!.line}–${notes[n - 1]!.line}`;
  const texts = notes.slice(0, 3).map((x) => JSON.stringify(x.text.trim().slice(0, 60)));
  return `${file}: ${n} line${n === 1 ? '' : 's'} below the table read as notes, not rows (${lines}: ${texts.join(', ')}${n > 3 ? ', …' : ''})`;
}

/** The bytes of a record as the byte scanner hands them over. */
export function recordBytes(held: Buffer | undefined, chunk: Buffer, start: number, end: number): Buffer {
  if (!held) return chunk.subarray(start, end);
  return end > start ? Buffer.concat([held, chunk.subarray(start, end)]) : held;
}

/**
 * Whether a record the byte scanner found is a blank line (see `isBlankRecord`), deciding from
 * its bytes: only a one-field record can be, and it is decoded only when its first byte could
 * start a blank value.
 */
export function isBlankBytes(rec: Buffer, fields: number, expected: number, delimiter: string, quote: string): boolean {
  if (fields !== 1) return false;
  if (rec.length === 0) return true;
  const b = rec[0]!;
  const q = quote === '' ? -1 : quote.charCodeAt(0);
  // the first byte of a quote, a BOM, or (several columns) of any character trim() removes
  if (b !== q && b !== EF && (expected <= 1 || !((b >= 0x09 && b <= 0x0d) || b === 0x20 || b === 0xc2 || b === 0xe1 || b === 0xe2 || b === 0xe3))) return false;
  return isBlankRecord(tokenizeRecord(rec.toString('utf8'), delimiter, quote), expected);
}

/** Drops the first N physical lines (`\r\n`, `\n` or a lone `\r` each) of bytes that arrive in chunks. */
export async function* skipByteLines(source: AsyncIterable<Buffer>, lines: number): AsyncGenerator<Buffer> {
  let left = lines;
  let afterCR = false;
  for await (const chunk of source) {
    if (left === 0 && !afterCR) {
      yield chunk;
      continue;
    }
    let i = 0;
    const n = chunk.length;
    if (afterCR) {
      afterCR = false;
      if (chunk[0] === LF) i = 1;
    }
    while (left > 0 && i < n) {
      const lf = chunk.indexOf(LF, i);
      const cr = chunk.indexOf(CR, i);
      const e = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (e < 0) {
        i = n;
        break;
      }
      left--;
      if (chunk[e] === CR) {
        if (e + 1 === n) afterCR = true;
        else if (chunk[e + 1] === LF) i = e + 2;
        else i = e + 1;
        if (e + 1 === n) i = n;
      } else i = e + 1;
    }
    if (i < n) yield i === 0 ? chunk : chunk.subarray(i);
  }
}

/** Drops the first N physical lines of a text that arrives in pieces (a CRLF may be split). */
export class LineSkipper {
  /** The last piece ended with a CR that ended the last skipped line: a LF right after belongs to it. */
  private afterCR = false;
  constructor(private remaining: number) {}

  /** The rest of the piece once the lines are skipped. */
  pass(piece: string): string {
    if (piece.length === 0 || (this.remaining === 0 && !this.afterCR)) return piece;
    const n = piece.length;
    let i = 0;
    if (this.afterCR) {
      this.afterCR = false;
      if (piece.charCodeAt(0) === LF) i = 1;
    }
    while (this.remaining > 0 && i < n) {
      const c = piece.charCodeAt(i);
      if (c === LF) {
        this.remaining--;
      } else if (c === CR) {
        this.remaining--;
        if (i + 1 === n) this.afterCR = true;
        else if (piece.charCodeAt(i + 1) === LF) i++;
      }
      i++;
    }
    return i === 0 ? piece : piece.slice(i);
  }
}
