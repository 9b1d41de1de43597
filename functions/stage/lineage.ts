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
 * without building rows or strings, so it runs near memory speed.
 *
 * @example
 *   for await (const out of withSourceLines(chunks, { file, delimiter: ',', fields: 2, firstLine: 2 })) copy.write(out);
 */
export async function* withSourceLines(
  source: AsyncIterable<Buffer>,
  opts: LineageOptions,
  stats: LineageStats = { records: 0, blankLines: 0, bytes: 0 },
): AsyncGenerator<Buffer> {
  const delim = opts.delimiter.charCodeAt(0);
  const QUOTE = (opts.quote ?? '"').charCodeAt(0);
  let inQuotes = false;
  let line = opts.firstLine; // physical line at the scan position
  let recordLine = line; // line the current record started on
  let fields = 1;
  let recordBytes = 0; // bytes of the current record so far (excluding CR/LF)
  let heldCr = false; // a CR ended the previous chunk, outside quotes
  let carry: Buffer | undefined; // incomplete UTF-8 sequence at the end of the previous chunk

  const suffixRoom = 24;
  let out = Buffer.allocUnsafe(256 * 1024);
  let pos = 0;
  const ensure = (n: number) => {
    if (pos + n <= out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, pos + n));
    out.copy(bigger, 0, 0, pos);
    out = bigger;
  };
  const endRecord = () => {
    if (recordBytes === 0 && fields === 1) {
      stats.blankLines++;
    } else {
      if (fields !== opts.fields) {
        throw new PermanentError(
          `${opts.file} line ${recordLine}: the record has ${fields} field${fields === 1 ? '' : 's'}, the header has ${opts.fields}`,
          { file: opts.file, line: recordLine },
        );
      }
      ensure(suffixRoom);
      out[pos++] = delim;
      pos += out.write(String(recordLine), pos, 'latin1');
      out[pos++] = LF;
      stats.records++;
    }
    fields = 1;
    recordBytes = 0;
  };

  for await (const chunk of source) {
    stats.bytes += chunk.length;
    checkUtf8(chunk);
    pos = 0;
    ensure(chunk.length + 1);
    let seg = 0;
    if (heldCr) {
      heldCr = false;
      if (chunk[0] !== LF) {
        // a lone CR is data, not a line end
        out[pos++] = CR;
        recordBytes++;
      }
    }
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (inQuotes) {
        if (b === QUOTE) inQuotes = false;
        else if (b === LF) line++;
        continue;
      }
      if (b === QUOTE) inQuotes = true;
      else if (b === delim) fields++;
      else if (b === LF) {
        const end = i > seg && chunk[i - 1] === CR ? i - 1 : i;
        ensure(end - seg + suffixRoom);
        chunk.copy(out, pos, seg, end);
        pos += end - seg;
        recordBytes += end - seg;
        endRecord();
        seg = i + 1;
        line++;
        recordLine = line;
      }
    }
    let end = chunk.length;
    if (!inQuotes && end > seg && chunk[end - 1] === CR) {
      heldCr = true;
      end--;
    }
    ensure(end - seg);
    chunk.copy(out, pos, seg, end);
    pos += end - seg;
    recordBytes += end - seg;
    if (pos > 0) yield Buffer.from(out.subarray(0, pos));
  }
  if (carry) throw invalidUtf8(carry, 0);
  if (inQuotes) {
    throw new PermanentError(`${opts.file} line ${recordLine}: a quoted field is never closed (the file ends inside quotes)`, {
      file: opts.file,
      line: recordLine,
    });
  }
  pos = 0;
  if (heldCr) {
    heldCr = false; // a trailing CR ends the last record
  }
  if (recordBytes > 0 || fields > 1) {
    endRecord();
    yield Buffer.from(out.subarray(0, pos));
  }

  function checkUtf8(chunk: Buffer): void {
    let start = 0;
    if (carry) {
      // finish the character split across chunks (it may span more than two of them)
      const need = carry[0]! >= 0xf0 ? 4 : carry[0]! >= 0xe0 ? 3 : 2;
      const joined = Buffer.concat([carry, chunk.subarray(0, need - carry.length)]);
      start = joined.length - carry.length;
      if (joined.length < need) {
        carry = joined;
        return;
      }
      if (!isUtf8(joined)) throw invalidUtf8(joined, firstInvalidUtf8(joined));
      carry = undefined;
    }
    const body = chunk.subarray(start);
    const complete = completeUtf8Length(body);
    const judged = body.subarray(0, complete);
    if (!isUtf8(judged)) throw invalidUtf8(judged, firstInvalidUtf8(judged));
    if (complete < body.length) carry = Buffer.from(body.subarray(complete));
    const nul = chunk.indexOf(0);
    if (nul >= 0) {
      throw new PermanentError(`${opts.file} line ${lineOf(chunk, nul)}: a NUL byte (binary content) in a text file`, { file: opts.file, line: lineOf(chunk, nul) });
    }
  }

  /** Physical line of an offset in the chunk being scanned. */
  function lineOf(buf: Buffer, offset: number): number {
    let at = line;
    for (let i = buf.indexOf(LF); i >= 0 && i < offset; i = buf.indexOf(LF, i + 1)) at++;
    return at;
  }

  function invalidUtf8(buf: Buffer, offset: number): PermanentError {
    // lines are counted up to the scan position of the previous chunk, plus the newlines before the bad byte
    const at = lineOf(buf, offset);
    const byte = buf[offset] ?? 0;
    return new PermanentError(
      `${opts.file} line ${at}: invalid UTF-8 byte 0x${byte.toString(16).padStart(2, '0')}; the file must be UTF-8 (re-save it as UTF-8)`,
      { file: opts.file, line: at },
    );
  }
}
