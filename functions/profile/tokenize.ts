/**
 * A streaming CSV tokenizer over decoded text: text pieces in, `{ line, fields }` records out, in
 * linear time whatever the piece sizes (1 character or 1 MiB). It reads exactly what csv-parse
 * reads with the options `readRecords` used to give it (`relax_quotes`, `relax_column_count`,
 * `escape` = `quote`, record delimiters `\r\n` `\n` `\r`, empty lines kept, `max_record_size`):
 *
 * - A record ends at `\r\n`, `\n` or a lone `\r` outside quotes. A line break inside quotes is
 *   kept in the field. Every empty line is a record of one empty field (the caller skips them).
 * - A quote opens a quoted field only as the field's first character; elsewhere it is text.
 * - Inside quotes, a doubled quote is one quote. A quote followed by a delimiter, a line break or
 *   the end of the text closes the field; followed by anything else it closes it anyway and the
 *   field is read on as unquoted text, keeping both quotes (`"a"b` → `"a"b`, `"a""b"c` → `"a"b"c`).
 * - Quote `''`: no quoting at all.
 * - Line numbers: the physical line (1-based, counted from `firstLine`) each record starts on;
 *   `\r\n`, `\n` and a lone `\r` are one line each, inside quotes or not.
 * - Size limit, as csv-parse counts it: before each byte appended to a field, the completed fields
 *   of the record (in UTF-16 code units) plus the bytes of the field so far (in UTF-8) must not
 *   exceed `maxRecordChars`. A field of B bytes (B ≥ 1) after fields of R code units thus fails
 *   when R + B − 1 > max. (csv-parse counts the file's own bytes; the UTF-8 bytes of the decoded
 *   text are the same unless the file has invalid UTF-8.)
 *
 * Scanning uses `indexOf` for the next delimiter / line break / quote, caching each position until
 * the scan passes it, and fields are slices of the piece; per-character work happens only in the
 * rare paths.
 */
import type { RecordRow } from './types.ts';

const LF = 0x0a;
const CR = 0x0d;

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
            if (recordChars + 3 * field.length - 1 > max && this.tooLong(recordChars, field)) throw this.fail('record-too-long', line);
            breaks += lineBreaksIn(field);
            fields.push(field);
            recordChars += field.length;
            field = '';
            state = START;
          } else {
            // A stray closing quote: the field goes on unquoted, both quotes kept as text.
            field = Q + field + s.slice(i, k) + Q;
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
          if (recordChars + 3 * field.length - 1 > max && this.tooLong(recordChars, field)) throw this.fail('record-too-long', line);
          // Only a field that started quoted reaches UNQUOTED with a line break in it.
          breaks += lineBreaksIn(field);
          fields.push(field);
          recordChars += field.length;
          field = '';
          state = START;
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
            if (recordChars + 3 * field.length - 1 > max && this.tooLong(recordChars, field)) throw this.fail('record-too-long', line);
            breaks += lineBreaksIn(field);
            fields.push(field);
            recordChars += field.length;
            field = '';
            state = START;
          } else {
            field = Q + field + Q;
            state = UNQUOTED;
            continue;
          }
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

/** Physical line breaks in a field's text (`\r\n`, `\n`, lone `\r`). */
export function lineBreaksIn(f: string): number {
  let k = f.indexOf('\n');
  let r = f.indexOf('\r');
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
