import { isUtf8 } from 'node:buffer';
import { PermanentError } from '../common/errors.ts';
import { completeUtf8Length, firstInvalidUtf8 } from './utf8.ts';

const LF = 0x0a;
const CR = 0x0d;

export interface LineageOptions {
  file: string;
  delimiter: string;
  /** The quote character (default `"`). */
  quote?: string;
  /** Number of fields in the header; every record must have as many. */
  fields: number;
  /** Physical line (1-based) on which the first record starts. */
  firstLine: number;
}

export interface LineageStats {
  records: number;
  /** Blank lines skipped (they carry no record). */
  blankLines: number;
  bytes: number;
}

/**
 * Pass CSV bytes through to COPY while appending one field to each record: the physical line the
 * record starts on. Quote-aware, so quoted line breaks count as lines but do not end records.
 * Records are re-terminated with `\n`; blank lines are dropped. Along the way it checks, at the
 * exact line, that the bytes are UTF-8 and that each record has as many fields as the header —
 * without building rows or strings: it jumps from delimiter to quote to line feed with
 * `indexOf` (memchr), so it runs near memory speed.
 *
 * @example
 *   for await (const out of withSourceLines(chunks, { file, delimiter: ',', fields: 2, firstLine: 2 })) copy.write(out);
 */
export async function* withSourceLines(
  source: AsyncIterable<Buffer>,
  opts: LineageOptions,
  stats: LineageStats = { records: 0, blankLines: 0, bytes: 0 },
): AsyncGenerator<Buffer> {
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
  private readonly quote: number;
  private inQuotes = false;
  /** Physical line at the scan position. */
  private line: number;
  /** Line the current record started on. */
  private recordLine: number;
  private fields = 1;
  /** Bytes of the current record so far (excluding CR/LF). */
  private recordBytes = 0;
  /** A CR ended the previous chunk, outside quotes. */
  private heldCr = false;
  /** An incomplete UTF-8 sequence at the end of the previous chunk. */
  private carry: Buffer | undefined;
  private out = Buffer.allocUnsafe(0);
  private pos = 0;

  constructor(
    private readonly opts: LineageOptions,
    private readonly stats: LineageStats,
  ) {
    this.delim = opts.delimiter.charCodeAt(0);
    this.quote = (opts.quote ?? '"').charCodeAt(0);
    this.line = opts.firstLine;
    this.recordLine = opts.firstLine;
  }

  /** The records completed by this chunk (and the start of the next), with their line fields. */
  push(chunk: Buffer): Buffer {
    this.stats.bytes += chunk.length;
    this.checkUtf8(chunk);
    // room for the chunk and the line fields of typical records; grown if short records need more
    this.out = Buffer.allocUnsafe(chunk.length + (chunk.length >> 3) + SUFFIX_ROOM + 1);
    this.pos = 0;
    const { delim, quote } = this;
    const n = chunk.length;
    let seg = 0; // start of the bytes not yet copied out
    let i = 0;
    if (this.heldCr) {
      this.heldCr = false;
      if (chunk[0] !== LF) {
        this.ensure(1);
        this.out[this.pos++] = CR; // a lone CR is data, not a line end
        this.recordBytes++;
      }
    }
    let nextQuote = -2; // cached position of the next quote at or after i (-1: none in this chunk)
    while (i < n) {
      if (this.inQuotes) {
        const q = chunk.indexOf(quote, i);
        const stop = q < 0 ? n : q;
        for (let lf = chunk.indexOf(LF, i); lf >= 0 && lf < stop; lf = chunk.indexOf(LF, lf + 1)) this.line++;
        if (q < 0) break;
        this.inQuotes = false;
        i = q + 1;
        continue;
      }
      if (nextQuote !== -1 && nextQuote < i) nextQuote = chunk.indexOf(quote, i);
      let lf = chunk.indexOf(LF, i);
      if (lf < 0) lf = n;
      const stop = nextQuote >= 0 && nextQuote < lf ? nextQuote : lf;
      for (let d = chunk.indexOf(delim, i); d >= 0 && d < stop; d = chunk.indexOf(delim, d + 1)) this.fields++;
      if (stop === n) break;
      if (stop === nextQuote) {
        this.inQuotes = true;
        i = stop + 1;
        continue;
      }
      // a line feed outside quotes ends the record
      const end = stop > seg && chunk[stop - 1] === CR ? stop - 1 : stop;
      this.emit(chunk, seg, end);
      this.endRecord();
      seg = stop + 1;
      i = stop + 1;
      this.line++;
      this.recordLine = this.line;
    }
    let end = n;
    if (!this.inQuotes && end > seg && chunk[end - 1] === CR) {
      this.heldCr = true;
      end--;
    }
    this.emit(chunk, seg, end);
    return this.out.subarray(0, this.pos);
  }

  /** What is left when the input ends: the last record, if it had no line end. */
  end(): Buffer {
    if (this.carry) throw this.invalidUtf8(this.carry, 0);
    if (this.inQuotes) {
      throw new PermanentError(`${this.opts.file} line ${this.recordLine}: a quoted field is never closed (the file ends inside quotes)`, {
        file: this.opts.file,
        line: this.recordLine,
      });
    }
    this.out = Buffer.allocUnsafe(SUFFIX_ROOM);
    this.pos = 0;
    this.heldCr = false; // a trailing CR ends the last record
    if (this.recordBytes > 0 || this.fields > 1) this.endRecord();
    return this.out.subarray(0, this.pos);
  }

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.pos + bytes));
    this.out.copy(bigger, 0, 0, this.pos);
    this.out = bigger;
  }

  private emit(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    this.ensure(to - from);
    chunk.copy(this.out, this.pos, from, to);
    this.pos += to - from;
    this.recordBytes += to - from;
  }

  private endRecord(): void {
    if (this.recordBytes === 0 && this.fields === 1) {
      this.stats.blankLines++;
    } else {
      if (this.fields !== this.opts.fields) {
        throw new PermanentError(
          `${this.opts.file} line ${this.recordLine}: the record has ${this.fields} field${this.fields === 1 ? '' : 's'}, the header has ${this.opts.fields}`,
          { file: this.opts.file, line: this.recordLine },
        );
      }
      this.ensure(SUFFIX_ROOM);
      this.out[this.pos++] = this.delim;
      this.pos += this.out.write(String(this.recordLine), this.pos, 'latin1');
      this.out[this.pos++] = LF;
      this.stats.records++;
    }
    this.fields = 1;
    this.recordBytes = 0;
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
    for (let i = buf.indexOf(LF); i >= 0 && i < offset; i = buf.indexOf(LF, i + 1)) at++;
    return at;
  }

  private invalidUtf8(buf: Buffer, offset: number): PermanentError {
    const at = this.lineOf(buf, offset);
    const byte = buf[offset] ?? 0;
    return new PermanentError(
      `${this.opts.file} line ${at}: invalid UTF-8 byte 0x${byte.toString(16).padStart(2, '0')}; the file must be UTF-8 (re-save it as UTF-8)`,
      { file: this.opts.file, line: at },
    );
  }
}
