import { isUtf8 } from 'node:buffer';
import { PermanentError } from '../common/errors.ts';
import {
  CsvByteScanner,
  HeaderRepeatProbe,
  MAX_NOTE_LINES,
  UnclosedQuoteError,
  copyRecord,
  isBlankBytes,
  isNoteMark,
  isNoteRecord,
  isRepeatedHeader,
  mayBeNoteBytes,
  recordBytes,
  tokenizeRecord,
} from '../read/csv.ts';
import { completeUtf8Length, firstInvalidUtf8 } from '../common/utf8.ts';

const LF = 0x0a;

export interface LineageOptions {
  file: string;
  delimiter: string;
  /** The quote character (default `"`). */
  quote?: string;
  /** Number of fields in the header; every record must have as many. */
  fields: number;
  /** Physical line (1-based) on which the first record starts. */
  firstLine: number;
  /** The header's values: a record repeating them is skipped and counted (`stats.repeatedHeaders`). */
  header?: readonly string[];
  /**
   * The bytes end where the file ends (default true; false for a part other than the last): a
   * run of notes padded to the header's width that ends them is not rows (`stats.notes`), as the
   * profile reads it (csv.ts, `isNoteRecord`).
   */
  atFileEnd?: boolean;
}

export interface LineageStats {
  records: number;
  /** Blank lines skipped (they carry no record). */
  blankLines: number;
  bytes: number;
  /** Lines repeating the header, skipped; and the first of them. */
  repeatedHeaders?: number;
  firstRepeatedHeader?: number;
  /** Notes under the table, not staged: their lines and first fields. */
  notes?: { line: number; text: string }[];
}

/**
 * Pass CSV bytes through to COPY while appending one field to each record: the physical line the
 * record starts on. Records are found by `CsvByteScanner` (functions/read/csv.ts, the one CSV
 * rule): quoted line breaks count as lines but do not end records; `\r\n`, `\n` and a lone `\r`
 * end one. Records are re-terminated with `\n`; blank lines are dropped. A record COPY would read
 * differently from the rule (a quote that is data, text after a closing quote, a BOM at its start)
 * is written again (`copyRecord`), so that PostgreSQL gets the same characters the profile reads.
 * A line repeating the header (`opts.header`) is skipped and counted, as the profile skips it. Along the way it checks, at the
 * exact line, that the bytes are UTF-8 and that each record has as many fields as the header —
 * without building rows or strings: it jumps from delimiter to quote to line feed with
 * `indexOf` (memchr), so it runs near memory speed.
 *
 * @example
 *   for await (const out of withSourceLines(chunks, { file, delimiter: ',', fields: 2, firstLine: 2 })) copy.write(out);
 */
export async function* withSourceLines(source: AsyncIterable<Buffer>, opts: LineageOptions, stats: LineageStats = { records: 0, blankLines: 0, bytes: 0 }): AsyncGenerator<Buffer> {
  const scanner = new LineageScanner(opts, stats);
  for await (const chunk of source) {
    const out = scanner.push(chunk);
    if (out.length > 0) yield out;
  }
  const last = scanner.end();
  if (last.length > 0) yield last;
}

/** Room for `<delimiter><line number>\n` after a record. */
const SUFFIX_ROOM = 24;

class LineageScanner {
  private readonly delim: number;
  private readonly scanner: CsvByteScanner;
  private readonly probe: HeaderRepeatProbe | undefined;
  /** Physical line at the start of the chunk being checked (for messages about bytes). */
  private line: number;
  /** An incomplete UTF-8 sequence at the end of the previous chunk. */
  private carry: Buffer | undefined;
  private out = Buffer.allocUnsafe(0);
  private pos = 0;
  /** Note-shaped records held back (copies of their bytes): notes if the input ends after them, rows if data follows. */
  private held: { rec: Buffer; line: number; rewrite: boolean; text: string }[] = [];
  private run = 0;

  constructor(
    private readonly opts: LineageOptions,
    private readonly stats: LineageStats,
  ) {
    this.delim = opts.delimiter.charCodeAt(0);
    this.line = opts.firstLine;
    this.probe = opts.header && opts.header.length === opts.fields ? new HeaderRepeatProbe(opts.header, opts.delimiter, opts.quote ?? '"') : undefined;
    this.scanner = new CsvByteScanner({ delimiter: opts.delimiter, quote: opts.quote ?? '"', firstLine: opts.firstLine }, (held, chunk, start, end, _next, fields, line, rewrite) =>
      this.record(held, chunk, start, end, fields, line, rewrite),
    );
  }

  /** The records completed by this chunk, with their line fields. */
  push(chunk: Buffer): Buffer {
    this.stats.bytes += chunk.length;
    this.line = this.scanner.line;
    this.checkUtf8(chunk);
    // room for the chunk and the line fields of typical records; grown if short records need more
    this.out = Buffer.allocUnsafe(chunk.length + (chunk.length >> 3) + SUFFIX_ROOM + 1);
    this.pos = 0;
    this.scanner.push(chunk);
    return this.out.subarray(0, this.pos);
  }

  /** What is left when the input ends: the last record, if it had no line end. */
  end(): Buffer {
    if (this.carry) throw this.invalidUtf8(this.carry, 0);
    this.out = Buffer.allocUnsafe(SUFFIX_ROOM);
    this.pos = 0;
    try {
      this.scanner.end();
    } catch (error) {
      if (!(error instanceof UnclosedQuoteError)) throw error;
      const { line, field } = error.opened;
      const name = field > 0 ? this.opts.header?.[field - 1] : undefined;
      const column = field > 0 ? `field ${field}${name !== undefined ? ` (${JSON.stringify(name)})` : ''}` : undefined;
      const record = line !== error.line ? ` (in the record starting on line ${error.line})` : '';
      // position.line is the record's first line, as the profile reports it
      throw new PermanentError(`${this.opts.file} line ${line}${column ? `, ${column}` : ''}: a quote opens a field there that is never closed (the file ends inside quotes)${record}`, {
        file: this.opts.file,
        line: error.line,
        ...(name !== undefined ? { column: name } : field > 0 ? { column: String(field) } : {}),
      });
    }
    if (this.held.length > 0) {
      if (this.opts.atFileEnd === false || !this.held.some((h) => isNoteMark(h.text))) this.flushHeld();
      else this.stats.notes = this.held.map(({ line, text }) => ({ line, text }));
      this.held = [];
    }
    return this.out.subarray(0, this.pos);
  }

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.pos + bytes));
    this.out.copy(bigger, 0, 0, this.pos);
    this.out = bigger;
  }

  private record(held: Buffer | undefined, chunk: Buffer, start: number, end: number, fields: number, line: number, rewrite: boolean): void {
    const { opts } = this;
    const quote = opts.quote ?? '"';
    if (fields === 1 && isBlankBytes(recordBytes(held, chunk, start, end), fields, opts.fields, opts.delimiter, quote)) {
      this.stats.blankLines++;
      return;
    }
    if (fields !== opts.fields) {
      throw new PermanentError(`${opts.file} line ${line}: the record has ${fields} field${fields === 1 ? '' : 's'}, the header has ${opts.fields}`, {
        file: opts.file,
        line,
      });
    }
    if (this.probe && this.probe.worthLooking(held ? held[0] : chunk[start], (held ? held.length : 0) + end - start)) {
      const rec = recordBytes(held, chunk, start, end);
      if (this.probe.maybe(rec) && isRepeatedHeader(tokenizeRecord(rec.toString('utf8'), opts.delimiter, quote), this.probe.header)) {
        this.stats.repeatedHeaders = (this.stats.repeatedHeaders ?? 0) + 1;
        this.stats.firstRepeatedHeader ??= line;
        return;
      }
    }
    // a note under the table (csv.ts, isNoteRecord), decoded only when its bytes end in empty
    // fields; most records end otherwise, told by their last byte without slicing them
    const last = end > start ? chunk[end - 1] : held?.[held.length - 1];
    const bytes = opts.fields > 1 && (last === this.delim || last === 0x0d || last === 0x20) ? recordBytes(held, chunk, start, end) : undefined;
    const values = bytes && mayBeNoteBytes(bytes, opts.fields, this.delim) ? tokenizeRecord(bytes.toString('utf8'), opts.delimiter, quote) : undefined;
    if (values && isNoteRecord(values, opts.fields)) {
      if (++this.run <= MAX_NOTE_LINES) {
        this.held.push({ rec: Buffer.from(bytes as Uint8Array), line, rewrite, text: values[0]! });
        return;
      }
    } else this.run = 0;
    this.flushHeld();
    this.write(held, chunk, start, end, line, rewrite);
  }

  /** Held note-shaped records that data followed: rows after all. */
  private flushHeld(): void {
    for (const h of this.held) this.write(undefined, h.rec, 0, h.rec.length, h.line, h.rewrite);
    this.held = [];
  }

  private write(held: Buffer | undefined, chunk: Buffer, start: number, end: number, line: number, rewrite: boolean): void {
    const { opts } = this;
    const quote = opts.quote ?? '"';
    if (rewrite) {
      // a quote that is data, text after a closing quote, a BOM: written again as COPY reads it
      const text = copyRecord(tokenizeRecord(recordBytes(held, chunk, start, end).toString('utf8'), opts.delimiter, quote), opts.delimiter, quote);
      const len = Buffer.byteLength(text);
      this.ensure(len);
      this.pos += this.out.write(text, this.pos, 'utf8');
    } else {
      if (held) {
        this.ensure(held.length);
        held.copy(this.out, this.pos);
        this.pos += held.length;
      }
      if (end > start) {
        this.ensure(end - start);
        chunk.copy(this.out, this.pos, start, end);
        this.pos += end - start;
      }
    }
    this.ensure(SUFFIX_ROOM);
    this.out[this.pos++] = this.delim;
    this.pos += this.out.write(String(line), this.pos, 'latin1');
    this.out[this.pos++] = LF;
    this.stats.records++;
  }

  private checkUtf8(chunk: Buffer): void {
    let start = 0;
    if (this.carry) {
      // finish the character split across chunks (it may span more than two of them)
      const need = this.carry[0]! >= 0xf0 ? 4 : this.carry[0]! >= 0xe0 ? 3 : 2;
      const joined = Buffer.concat([this.carry, chunk.subarray(0, need - this.carry.length)]);
      start = joined.length - this.carry.length;
      if (joined.length < need) {
        this.carry = joined;
        return;
      }
      if (!isUtf8(joined)) throw this.invalidUtf8(joined, firstInvalidUtf8(joined));
      this.carry = undefined;
    }
    const body = chunk.subarray(start);
    const complete = completeUtf8Length(body);
    const judged = body.subarray(0, complete);
    if (!isUtf8(judged)) throw this.invalidUtf8(judged, firstInvalidUtf8(judged));
    if (complete < body.length) this.carry = Buffer.from(body.subarray(complete));
    const nul = chunk.indexOf(0);
    if (nul >= 0) {
      const at = this.lineOf(chunk, nul);
      throw new PermanentError(`${this.opts.file} line ${at}: a NUL byte (binary content) in a text file`, { file: this.opts.file, line: at });
    }
  }

  /** Physical line of an offset in the chunk about to be scanned. */
  private lineOf(buf: Buffer, offset: number): number {
    let at = this.line;
    for (let i = 0; i < offset && i < buf.length; i++) if (buf[i] === LF || (buf[i] === 0x0d && buf[i + 1] !== LF)) at++;
    return at;
  }

  private invalidUtf8(buf: Buffer, offset: number): PermanentError {
    const at = this.lineOf(buf, offset);
    const byte = buf[offset] ?? 0;
    return new PermanentError(`${this.opts.file} line ${at}: invalid UTF-8 byte 0x${byte.toString(16).padStart(2, '0')}; the file must be UTF-8 (re-save it as UTF-8)`, { file: this.opts.file, line: at });
  }
}
