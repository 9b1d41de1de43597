/**
 * Streaming record reader for a file whose structure `detectStructure` found: bytes in, one
 * `{ line, fields }` per data record out, memory flat whatever the file size.
 *
 * - Decoding: iconv-lite's streaming decoder for `structure.encoding` (a BOM is skipped); UTF-8
 *   bytes go straight to csv-parse, which decodes UTF-8 itself.
 * - The preamble and header are skipped as physical lines (`structure.firstDataLine - 1` of them),
 *   so a title line with a stray quote cannot confuse the parser.
 * - Parsing: csv-parse's streaming parser with the detected delimiter and quote; `\r\n`, `\n` and a
 *   lone `\r` all end a record (files with mixed line endings read right).
 * - Line numbers: the physical line (1-based) each record starts on, counting line breaks inside
 *   quoted fields, the same way the detector counts them.
 * - Blank lines are skipped. Ragged records (a field count other than the header's) are yielded
 *   AND reported through `onRagged`; they are never fatal.
 * - Quotes: stray quotes inside an unquoted field (`5" screen`) and text after a closing quote
 *   (`"a"b`) are kept as text (csv-parse `relax_quotes`), silently. A quoted field that never closes
 *   is an error naming the line the record starts on: at the end of the file, or as soon as the
 *   record grows past `maxRecordChars`, so a runaway quote cannot eat memory.
 */
import { Readable, pipeline, type TransformCallback } from 'node:stream';
import { CsvError, Parser } from 'csv-parse';
import iconv from 'iconv-lite';
import { DetectError } from './detect.ts';
import type { RecordRow, Structure } from './types.ts';

export interface ReadOptions {
  /** Name used in messages. */
  file: string;
  /** Called for each data record whose field count differs from the header's. */
  onRagged?: (line: number, fields: number, expected: number) => void;
  /** Stop after this many records (sampling). */
  maxRecords?: number;
  /**
   * A record longer than about this many characters (csv-parse counts the field being read in
   * UTF-8 bytes) is an error: almost surely an unclosed quote. Default 16 Mi.
   */
  maxRecordChars?: number;
}

export const DEFAULT_MAX_RECORD_CHARS = 16 * 1024 * 1024;

/**
 * The data records of a CSV-like byte stream, streaming.
 *
 * @example
 *   const { structure } = detectStructure(head, { complete: false, file });
 *   for await (const { line, fields } of readRecords(createReadStream(file), structure, { file })) …
 */
export async function* readRecords(
  source: AsyncIterable<Uint8Array>,
  structure: Structure,
  opts: ReadOptions,
): AsyncGenerator<RecordRow> {
  const { file, onRagged, maxRecords } = opts;
  if (maxRecords !== undefined && maxRecords <= 0) return;
  const expected = structure.header.length;
  const quote = structure.quote === '' ? false : structure.quote;
  const parser = new OrderlyParser({
    delimiter: structure.delimiter,
    quote,
    escape: quote,
    record_delimiter: ['\r\n', '\n', '\r'],
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: false,
    bom: false,
    max_record_size: opts.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS,
  });
  const text = Readable.from(textFrom(source, structure.encoding, Math.max(0, structure.firstDataLine - 1)));
  // Errors on either side reach the loop below through the parser; the callback only keeps
  // pipeline from reporting them a second time.
  pipeline(text, parser, () => {});

  /** Physical line where the next record starts. */
  let line = Math.max(1, structure.firstDataLine);
  /** csv-parse's `info.lines` at the previous record (it counts each CR and LF inside quotes). */
  let parserLines = 0;
  let yielded = 0;
  try {
    for await (const item of parser as AsyncIterable<Parsed>) {
      if (item.error) throw item.error;
      const { record, lines } = item;
      const start = line;
      const delta = lines - parserLines;
      parserLines = lines;
      // delta is 1 for a record without line breaks inside quotes: skip the scan then.
      line += delta === 1 ? 1 : 1 + lineBreaksIn(record);
      if (isBlankRecord(record, expected)) continue;
      if (record.length !== expected) onRagged?.(start, record.length, expected);
      yield { line: start, fields: record };
      if (maxRecords !== undefined && ++yielded >= maxRecords) return;
    }
  } catch (error) {
    if (error instanceof CsvError) throw csvError(error, file, line, opts.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS);
    throw error;
  } finally {
    parser.destroy();
  }
}

/** A record with csv-parse's `info.lines` when it was parsed, or the error that stopped parsing. */
type Parsed = { record: string[]; lines: number; error?: undefined } | { error: Error; record?: undefined; lines?: undefined };

/**
 * csv-parse, with two changes to what comes out:
 * - each record comes with `info.lines` as it was when the record was parsed (what `info: true`
 *   gives, without copying the whole info object for every record, which costs a quarter of the
 *   parse time);
 * - a parse error is queued behind the records parsed before it, as `{ error }`, and the readable
 *   side ends. (Failing the chunk would destroy the stream and drop those records.)
 */
class OrderlyParser extends Parser {
  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (Array.isArray(chunk)) return super.push({ record: chunk as string[], lines: this.info.lines } satisfies Parsed);
    return super.push(chunk, encoding);
  }
  override _transform(chunk: unknown, encoding: BufferEncoding, callback: TransformCallback): void {
    super._transform(chunk, encoding, (error?: Error | null) => this.queue(error, callback));
  }
  override _flush(callback: TransformCallback): void {
    super._flush((error?: Error | null) => this.queue(error, callback));
  }
  private queue(error: Error | null | undefined, callback: TransformCallback): void {
    if (error) {
      super.push({ error } satisfies Parsed);
      this.push(null);
    }
    callback();
  }
}

/**
 * The text after the BOM and the first `skip` physical lines (preamble and header). UTF-8 bytes go
 * to csv-parse as they are (it decodes fields as UTF-8 itself, invalid bytes becoming U+FFFD like
 * iconv-lite's): decoding to a string only for the parser to encode it back would cost time for
 * nothing. Every other encoding is decoded with iconv-lite's streaming decoder.
 */
function textFrom(source: AsyncIterable<Uint8Array>, encoding: Structure['encoding'], skip: number): AsyncGenerator<string | Buffer> {
  return encoding === 'utf-8' ? utf8From(source, skip) : decodeFrom(source, encoding, skip);
}

async function* decodeFrom(source: AsyncIterable<Uint8Array>, encoding: Structure['encoding'], skip: number): AsyncGenerator<string> {
  const decoder = iconv.getDecoder(encoding, { stripBOM: true });
  const skipper = new LineSkipper(skip);
  // A piece may end between the two halves of a surrogate pair (UTF-16): csv-parse encodes each
  // piece to UTF-8 on its own, so the high half waits for the next piece.
  let carry = '';
  for await (const chunk of source) {
    let s = carry + decoder.write(toBuffer(chunk));
    carry = '';
    const last = s.charCodeAt(s.length - 1);
    if (last >= 0xd800 && last < 0xdc00) {
      carry = s.slice(-1);
      s = s.slice(0, -1);
    }
    s = skipper.pass(s);
    if (s.length > 0) yield s;
  }
  const rest = skipper.pass(carry + (decoder.end() ?? ''));
  if (rest.length > 0) yield rest;
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

async function* utf8From(source: AsyncIterable<Uint8Array>, skip: number): AsyncGenerator<Buffer> {
  const skipper = new LineSkipper(skip);
  /** The first bytes, until it is known whether they start with a BOM. */
  let start: Buffer | undefined = Buffer.alloc(0);
  for await (const chunk of source) {
    let bytes = toBuffer(chunk);
    if (start) {
      start = Buffer.concat([start, bytes]);
      if (start.length < UTF8_BOM.length && UTF8_BOM.subarray(0, start.length).equals(start)) continue;
      bytes = withoutBom(start);
      start = undefined;
    }
    const out = skipper.pass(bytes);
    if (out.length > 0) yield out;
  }
  if (start && start.length > 0) {
    const out = skipper.pass(withoutBom(start));
    if (out.length > 0) yield out;
  }
}

function withoutBom(bytes: Buffer): Buffer {
  return bytes.subarray(0, 3).equals(UTF8_BOM) ? bytes.subarray(3) : bytes;
}

function toBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** Drops the first N physical lines of a text that arrives in pieces (a CRLF may be split). */
class LineSkipper {
  /** The last piece ended with a CR that ended the last skipped line: a LF right after belongs to it. */
  private afterCR = false;
  constructor(private remaining: number) {}

  /** The rest of the piece once the lines are skipped (text, or UTF-8 bytes: CR and LF are single bytes). */
  pass<T extends string | Buffer>(piece: T): T {
    if (piece.length === 0 || (this.remaining === 0 && !this.afterCR)) return piece;
    const code = typeof piece === 'string' ? (i: number) => piece.charCodeAt(i) : (i: number) => (piece as Buffer)[i]!;
    const n = piece.length;
    let i = 0;
    if (this.afterCR) {
      this.afterCR = false;
      if (code(0) === 0x0a) i = 1;
    }
    while (this.remaining > 0 && i < n) {
      const c = code(i);
      if (c === 0x0a) {
        this.remaining--;
      } else if (c === 0x0d) {
        this.remaining--;
        if (i + 1 === n) this.afterCR = true;
        else if (code(i + 1) === 0x0a) i++;
      }
      i++;
    }
    if (i === 0) return piece;
    return (typeof piece === 'string' ? piece.slice(i) : (piece as Buffer).subarray(i)) as T;
  }
}

/** Physical line breaks inside a record's fields (`\r\n`, `\n`, lone `\r`). */
function lineBreaksIn(record: readonly string[]): number {
  let n = 0;
  for (const f of record) {
    if (f.indexOf('\n') < 0 && f.indexOf('\r') < 0) continue;
    for (let i = 0; i < f.length; i++) {
      const c = f.charCodeAt(i);
      if (c === 0x0a) n++;
      else if (c === 0x0d) {
        n++;
        if (f.charCodeAt(i + 1) === 0x0a) i++;
      }
    }
  }
  return n;
}

/** An empty line (or, when more than one column is expected, a whitespace-only line). */
function isBlankRecord(record: readonly string[], expected: number): boolean {
  if (record.length !== 1) return false;
  const f = record[0]!;
  return f === '' || (expected > 1 && f.trim() === '');
}

function csvError(error: CsvError, file: string, line: number, maxChars: number): DetectError {
  switch (error.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return new DetectError(`${file}: the quoted field in the record starting on line ${line} is never closed (reached the end of the file)`, { file, line }, { cause: error });
    case 'CSV_MAX_RECORD_SIZE':
      return new DetectError(
        `${file}: the record starting on line ${line} is longer than ${maxChars} characters — probably a quote that is never closed`,
        { file, line },
        { cause: error },
      );
    default:
      return new DetectError(`${file}: cannot read the record starting on line ${line}: ${error.message}`, { file, line }, { cause: error });
  }
}
