/**
 * Streaming record reader for a file whose structure `detectStructure` found: bytes in, one
 * `{ line, fields }` per data record out, memory flat whatever the file size.
 *
 * - Decoding: a streaming TextDecoder for UTF-8 (invalid bytes become U+FFFD), iconv-lite's
 *   streaming decoder for every other encoding. A BOM is skipped.
 * - The preamble and header are skipped as physical lines (`structure.firstDataLine - 1` of them),
 *   so a title line with a stray quote cannot confuse the parser.
 * - Parsing: `CsvTokenizer` (functions/read/csv.ts: the one CSV rule, which staging reads by too)
 *   with the detected delimiter and quote; `\r\n`, `\n` and a lone `\r` all end a record (files with
 *   mixed line endings read right).
 * - Line numbers: the physical line (1-based) each record starts on, counting line breaks inside
 *   quoted fields, the same way the detector counts them.
 * - Blank lines are skipped, and so are lines repeating the header (reported through
 *   `onRepeatedHeader`). Ragged records (a field count other than the header's) are yielded
 *   AND reported through `onRagged`; they are never fatal.
 * - Quotes: stray quotes inside an unquoted field (`5" screen`) and text after a closing quote
 *   (`"a"b`) are kept as text, silently, exactly as staging loads them. A quoted field that never closes is an error naming the
 *   line the record starts on: at the end of the file, or as soon as the record grows past
 *   `maxRecordChars`, so a runaway quote cannot eat memory.
 */
import { DetectError } from './detect.ts';
import { CsvTokenizer, LineSkipper, MAX_NOTE_LINES, TokenizeError, isBlankRecord, isNoteMark, isNoteRecord, isRepeatedHeader } from '../read/csv.ts';
import type { RecordRow, Structure } from './types.ts';
import { loadCodecs } from './codecs.ts';

export interface ReadOptions {
  /** Name used in messages. */
  file: string;
  /** Called for each data record whose field count differs from the header's. */
  onRagged?: (line: number, fields: number, expected: number) => void;
  /** Called for each line that repeats the header (skipped, as staging skips it). */
  onRepeatedHeader?: (line: number) => void;
  /** Stop after this many records (sampling). */
  maxRecords?: number;
  /**
   * Called at the end with the notes under the table that were not read as rows (`isNoteRecord`:
   * a run of text-only lines padded to the header's width that ends the file).
   */
  onNotes?: (notes: RecordRow[]) => void;
  /**
   * A record longer than about this many characters is an error: almost surely an unclosed quote.
   * (Counted as csv-parse counts it: the completed fields in characters, the field being read in
   * UTF-8 bytes; see functions/read/csv.ts.) 0 = no limit. Default 16 Mi.
   */
  maxRecordChars?: number;
  /**
   * Called once, before the first record holding U+FFFD is yielded: the decoded text holds one
   * (bytes the encoding could not decode, or the character itself). A caller looking for it in
   * the fields need not look before.
   */
  onReplacementChar?: () => void;
}

export const DEFAULT_MAX_RECORD_CHARS = 16 * 1024 * 1024;

/**
 * The data records of a CSV-like byte stream, streaming.
 *
 * @example
 *   const { structure } = detectStructure(head, { complete: false, file });
 *   for await (const { line, fields } of readRecords(createReadStream(file), structure, { file })) …
 */
export async function* readRecords(source: AsyncIterable<Uint8Array>, structure: Structure, opts: ReadOptions): AsyncGenerator<RecordRow> {
  const { file, onRagged, maxRecords } = opts;
  if (maxRecords !== undefined && maxRecords <= 0) return;
  const maxChars = opts.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS;
  if (!Number.isInteger(maxChars) || maxChars < 0) throw new Error(`maxRecordChars must be a whole number ≥ 0, got ${maxChars}`);
  const expected = structure.header.length;
  const tokenizer = new CsvTokenizer({
    delimiter: structure.delimiter,
    quote: structure.quote,
    firstLine: Math.max(1, structure.firstDataLine),
    maxRecordChars: maxChars,
  });
  const skipper = new LineSkipper(Math.max(0, structure.firstDataLine - 1));
  /** Records of the last piece of text, yielded before reading on. */
  const out: RecordRow[] = [];
  let yielded = 0;
  /** Note-shaped records held back: notes if the file ends after them, rows if data follows. */
  const held: RecordRow[] = [];
  let run = 0;
  let replacement = false;
  for await (const text of textFrom(source, structure.encoding)) {
    if (!replacement && text !== null && text.includes('\uFFFD')) {
      replacement = true;
      opts.onReplacementChar?.();
    }
    let failure: unknown;
    try {
      if (text === null) tokenizer.end(out);
      else tokenizer.write(skipper.pass(text), out);
    } catch (error) {
      // The records before the error come out first.
      failure = error;
    }
    for (let r = 0; r < out.length; r++) {
      const row = out[r]!;
      const n = row.fields.length;
      if (n === 1 && isBlankRecord(row.fields, expected)) continue;
      if (n === expected && isRepeatedHeader(row.fields, structure.header)) {
        opts.onRepeatedHeader?.(row.line);
        continue;
      }
      // a record past the last one asked for (the held notes come first) is never read: not ragged either
      if (n !== expected && (maxRecords === undefined || yielded + held.length < maxRecords)) onRagged?.(row.line, n, expected);
      if (isNoteRecord(row.fields, expected) && ++run <= MAX_NOTE_LINES) {
        held.push(row);
        continue;
      }
      if (!isNoteRecord(row.fields, expected)) run = 0;
      for (const earlier of held.splice(0)) {
        yield earlier;
        if (maxRecords !== undefined && ++yielded >= maxRecords) return;
      }
      yield row;
      if (maxRecords !== undefined && ++yielded >= maxRecords) return;
    }
    out.length = 0;
    if (failure !== undefined) {
      // the file does not end after the held records: they are rows, and come out before the error
      for (const row of held.splice(0)) {
        yield row;
        if (maxRecords !== undefined && ++yielded >= maxRecords) return;
      }
      throw failure instanceof TokenizeError ? readError(failure, file, maxChars) : failure;
    }
  }
  if (held.some((r) => isNoteMark(r.fields[0]!))) opts.onNotes?.(held);
  else {
    for (const row of held) {
      yield row;
      if (maxRecords !== undefined && ++yielded >= maxRecords) return;
    }
  }
}

/**
 * The text after the BOM, piece by piece, then `null` at the end. Pieces never end between the
 * halves of a surrogate pair, and hold no lone surrogate (each becomes U+FFFD).
 */
function textFrom(source: AsyncIterable<Uint8Array>, encoding: Structure['encoding']): AsyncGenerator<string | null> {
  return encoding === 'utf-8' ? utf8From(source) : decodeFrom(source, encoding);
}

/**
 * Chunks are decoded at most this many bytes at a time: a string over ~128 KiB is allocated in
 * V8's large-object space, which makes decoding (and collecting) it several times slower, and
 * every field sliced from a piece keeps the whole piece alive.
 */
const PIECE_BYTES = 64 * 1024;

async function* utf8From(source: AsyncIterable<Uint8Array>): AsyncGenerator<string | null> {
  // Streaming: a character split between chunks waits for its end; invalid bytes become U+FFFD;
  // a BOM at the start is dropped.
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of source) {
    for (let i = 0; i < chunk.length; i += PIECE_BYTES) {
      const text = decoder.decode(chunk.subarray(i, i + PIECE_BYTES), { stream: true });
      if (text.length > 0) yield text;
    }
  }
  const rest = decoder.decode();
  if (rest.length > 0) yield rest;
  yield null;
}

async function* decodeFrom(source: AsyncIterable<Uint8Array>, encoding: Structure['encoding']): AsyncGenerator<string | null> {
  const decoder = (await loadCodecs()).getDecoder(encoding, { stripBOM: true });
  // A piece may end between the two halves of a surrogate pair (UTF-16): the high half waits for
  // the next piece, so that only a surrogate that is really alone becomes U+FFFD.
  let carry = '';
  for await (const chunk of source) {
    for (let i = 0; i < chunk.length; i += PIECE_BYTES) {
      let s = carry + decoder.write(toBuffer(chunk.subarray(i, i + PIECE_BYTES)));
      carry = '';
      const last = s.charCodeAt(s.length - 1);
      if (last >= 0xd800 && last < 0xdc00) {
        carry = s.slice(-1);
        s = s.slice(0, -1);
      }
      if (s.length > 0) yield wellFormed(s);
    }
  }
  const rest = carry + (decoder.end() ?? '');
  if (rest.length > 0) yield wellFormed(rest);
  yield null;
}

/** The text with each lone surrogate replaced by U+FFFD (what encoding it to UTF-8 and back gives). */
function wellFormed(s: string): string {
  const t = s as string & { isWellFormed(): boolean; toWellFormed(): string }; // ES2024, in Node 20
  return t.isWellFormed() ? s : t.toWellFormed();
}

function toBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function readError(error: TokenizeError, file: string, maxChars: number): DetectError {
  const { line } = error;
  return error.kind === 'unclosed-quote'
    ? new DetectError(`${file}: the quoted field in the record starting on line ${line} is never closed (reached the end of the file)`, { file, line }, { cause: error })
    : new DetectError(`${file}: the record starting on line ${line} is longer than ${maxChars} characters — probably a quote that is never closed`, { file, line }, { cause: error });
}
