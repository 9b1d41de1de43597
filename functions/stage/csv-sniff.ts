import { isUtf8 } from 'node:buffer';
import { parse } from 'csv-parse/sync';
import { PermanentError } from '../common/errors.ts';

export const DELIMITERS = [',', ';', '\t', '|'] as const;
export type Delimiter = (typeof DELIMITERS)[number];

export interface CsvLayout {
  encoding: 'utf-8';
  bom: boolean;
  delimiter: Delimiter;
  quote: '"';
  lineEnding: '\n' | '\r\n' | '\r';
  /** The header fields as written in the file. */
  header: string[];
  /** Byte offset in the head where the first data record starts (after BOM, header and its line end). */
  dataOffset: number;
  /** Physical line (1-based) on which the first data record starts. */
  firstDataLine: number;
}

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

/**
 * Work out how a CSV file is written from its first bytes (a "head", e.g. 64 KiB): BOM, encoding,
 * line ending, delimiter (judged over every complete line of the head, not just the first) and the
 * header. `complete` says the head is the whole file.
 *
 * @example
 *   sniffCsv(Buffer.from('a;b\n1;2\n'), { file: 'x.csv', complete: true }).delimiter // ';'
 */
export function sniffCsv(head: Buffer, opts: { file: string; complete: boolean; delimiter?: Delimiter }): CsvLayout {
  const { file } = opts;
  if (head.length === 0) throw new PermanentError(`${file} is empty`, { file });
  const bom = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf;
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    throw new PermanentError(`${file} is UTF-16 text; only UTF-8 CSV is staged so far (re-save it as UTF-8)`, { file });
  }
  const body = bom ? head.subarray(3) : head;
  const nul = body.indexOf(0);
  if (nul >= 0) {
    throw new PermanentError(`${file} is not a CSV text file: binary content (a NUL byte at byte ${nul + (bom ? 3 : 0)})`, {
      file,
      line: lineAt(body, nul),
    });
  }
  // The head may end inside a multi-byte character: only judge the complete part.
  const judged = opts.complete ? body : body.subarray(0, completeUtf8Length(body));
  if (!isUtf8(judged)) {
    const offset = firstInvalidUtf8(judged);
    throw new PermanentError(
      `${file} is not UTF-8 text: invalid byte 0x${judged[offset]!.toString(16).padStart(2, '0')} on line ${lineAt(judged, offset)} (byte ${offset + (bom ? 3 : 0)}); re-save it as UTF-8`,
      { file, line: lineAt(judged, offset) },
    );
  }

  const records = splitRecords(judged, opts.complete);
  const first = records[0];
  if (!first || first.text.trim() === '') throw new PermanentError(`${file} has no header line`, { file, line: 1 });
  const delimiter = opts.delimiter ?? guessDelimiter(records.map((r) => r.text));
  let header: string[];
  try {
    header = (parse(first.text, { delimiter, relax_quotes: false, bom: false }) as string[][])[0] ?? [];
  } catch (cause) {
    throw new PermanentError(`${file}: the header line cannot be read as CSV: ${(cause as Error).message}`, { file, line: 1 }, { cause });
  }
  if (header.length === 0) throw new PermanentError(`${file} has an empty header line`, { file, line: 1 });
  return {
    encoding: 'utf-8',
    bom,
    delimiter,
    quote: '"',
    lineEnding: first.ending ?? '\n',
    header,
    dataOffset: (bom ? 3 : 0) + first.end,
    firstDataLine: 1 + first.newlines,
  };
}

interface RawRecord {
  text: string;
  /** Offset just past the record's line ending. */
  end: number;
  ending?: '\n' | '\r\n' | '\r';
  /** Physical lines the record and its ending span. */
  newlines: number;
}

/** Records (quote-aware) of the head; the last one only if the head is the whole file. */
function splitRecords(buf: Buffer, complete: boolean): RawRecord[] {
  const out: RawRecord[] = [];
  let inQuotes = false;
  let start = 0;
  let newlines = 0;
  for (let i = 0; i < buf.length && out.length < 200; i++) {
    const b = buf[i];
    if (b === QUOTE) inQuotes = !inQuotes;
    else if (b === LF || b === CR) {
      if (inQuotes) {
        if (b === LF) newlines++;
        continue;
      }
      const crlf = b === CR && buf[i + 1] === LF;
      if (b === CR && !crlf && i + 1 === buf.length && !complete) break; // might be half a CRLF
      const end = i + (crlf ? 2 : 1);
      out.push({ text: buf.toString('utf8', start, i), end, ending: crlf ? '\r\n' : b === CR ? '\r' : '\n', newlines: newlines + 1 });
      newlines = 0;
      start = end;
      i = end - 1;
    }
  }
  if (complete && start < buf.length && out.length < 200) out.push({ text: buf.toString('utf8', start), end: buf.length, newlines: 1 });
  return out;
}

/**
 * The delimiter that splits the sampled lines into the same number of fields most consistently;
 * ties go to the one giving more fields. A file with no candidate at all is one column (`,`).
 */
export function guessDelimiter(lines: readonly string[]): Delimiter {
  const sample = lines.filter((l) => l.trim() !== '');
  let best: { d: Delimiter; score: number; fields: number } = { d: ',', score: 0, fields: 1 };
  for (const d of DELIMITERS) {
    const counts = sample.map((l) => countOutsideQuotes(l, d));
    const headerCount = counts[0] ?? 0;
    if (headerCount === 0) continue;
    const agreeing = counts.filter((c) => c === headerCount).length;
    const score = agreeing / counts.length;
    if (score > best.score || (score === best.score && headerCount + 1 > best.fields)) best = { d, score, fields: headerCount + 1 };
  }
  return best.d;
}

function countOutsideQuotes(line: string, d: string): number {
  let n = 0;
  let q = false;
  for (const ch of line) {
    if (ch === '"') q = !q;
    else if (ch === d && !q) n++;
  }
  return n;
}

/** Length of the longest prefix that does not end inside a multi-byte UTF-8 sequence. */
export function completeUtf8Length(buf: Buffer): number {
  const n = buf.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = buf[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

/** Offset of the first byte that breaks UTF-8 (only called once `isUtf8` said no). */
export function firstInvalidUtf8(buf: Buffer): number {
  for (let i = 0; i < buf.length; ) {
    const b = buf[i]!;
    const need = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (need === 0) return i;
    if (need > 1 && !isUtf8(buf.subarray(i, i + need))) return i;
    i += need;
  }
  return buf.length;
}

/** 1-based physical line of a byte offset. */
export function lineAt(buf: Buffer, offset: number): number {
  let line = 1;
  for (let i = buf.indexOf(LF); i >= 0 && i < offset; i = buf.indexOf(LF, i + 1)) line++;
  return line;
}
