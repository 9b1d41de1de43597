/**
 * Structure detection: how a CSV-like text file is written, worked out from its first bytes (a
 * "head", e.g. 256 KiB). Pure functions over the head: no I/O, linear in the head's size, no
 * regular expression that can backtrack on long input.
 *
 * What is found, in order:
 * 1. encoding — BOMs (UTF-8, UTF-16LE/BE); UTF-16 without BOM (NULs on one side of each code
 *    unit); valid UTF-8; otherwise a single-byte encoding: windows-1252 (a superset of the printable
 *    Latin-1 range, plus € and curly quotes at 0x80–0x9F) unless byte statistics clearly say
 *    `macintosh` or `cp850`. Mostly-UTF-8 heads with a few stray bytes stay UTF-8 (with a warning).
 * 2. line ending — the most frequent of `\r\n`, `\n`, `\r` (the reader accepts all three anyway).
 * 3. quote — `"` unless the head shows `'` used as a quote (or `"` clearly not used as one).
 * 4. delimiter — among `,` `;` tab `|` `:` `^`, the one under which the most records (quote-aware,
 *    every complete record of the head) share one field count > 1; a tie goes to more fields.
 * 5. header — the first record from which the field count stays consistent with the records below
 *    and whose fields look like names; the lines above it are the preamble.
 * 6. blank headings, decimal comma, and the physical line of the first data record.
 *
 * Physical lines are counted the way an editor does: `\r\n`, `\n` and a lone `\r` each end one,
 * whether or not inside quotes. `readRecords` (read.ts) counts the same way.
 */
import { isUtf8 } from 'node:buffer';
import { PermanentError } from '../common/errors.ts';
import { completeUtf8Length } from '../common/utf8.ts';
import { CsvTokenizer, TokenizeError, lineBreaksIn } from '../read/csv.ts';
import type { Encoding, RecordRow, Structure } from './types.ts';
import { isMissingMarker } from './column-type.ts';
import { CodecsNotLoadedError, loadCodecs, loadedCodecs } from './codecs.ts';

/** Delimiters the detector chooses among, in order of preference when everything else ties. */
export const DELIMITER_CANDIDATES = [';', '\t', ',', '|', '^', ':'] as const;

/** Detection reads at most this much of the head (a caller handing over a whole large file stays fast). */
export const MAX_HEAD_BYTES = 8 * 1024 * 1024;

export interface DetectOptions {
  /** The head is the whole file (its last line is complete even without a line break). */
  complete: boolean;
  /** Name used in messages (key or path). */
  file: string;
  /** What the pipeline declares (`encodingDeclared`: the encoding is its `read.encoding`); a BOM still wins over an encoding hint (with a warning). */
  hints?: Partial<Pick<Structure, 'encoding' | 'delimiter' | 'encodingDeclared'>>;
}

export interface DetectResult {
  structure: Structure;
  /** Things a person should know (guessed encoding, ragged lines in the head, blank headings…). */
  warnings: string[];
}

/**
 * The input cannot be read as CSV-like text (binary, empty, no line break in the head…). A
 * PermanentError: retrying the same object cannot help.
 */
export class DetectError extends PermanentError {
  override name = 'DetectError';
  /** 1-based physical line where the problem was found, when known. */
  readonly line?: number;
  readonly file: string;
  constructor(message: string, where: { file: string; line?: number }, options?: ErrorOptions) {
    super(message, where, options);
    this.file = where.file;
    if (where.line !== undefined) this.line = where.line;
  }
}

/**
 * `detectStructure`, importing iconv-lite first if the head turns out not to be UTF-8 (and it is
 * not yet imported): a UTF-8 file, the usual case, never loads it. Detection is a pure function of
 * the head, so the second attempt, after the import, is the same detection with the decoders.
 */
export async function detectStructureLoadingCodecs(head: Buffer, opts: DetectOptions): Promise<DetectResult> {
  try {
    return detectStructure(head, opts);
  } catch (error) {
    if (!(error instanceof CodecsNotLoadedError)) throw error;
    await loadCodecs();
    return detectStructure(head, opts);
  }
}

const LF = 0x0a;
const CR = 0x0d;
const DQ = 0x22;
const SQ = 0x27;

/**
 * Detect the structure of a CSV-like file from its head.
 *
 * @example
 *   detectStructure(Buffer.from('a;b\n1,5;2\n'), { complete: true, file: 'x.csv' }).structure
 *   // { encoding: 'utf-8', delimiter: ';', header: ['a', 'b'], decimalComma: true, firstDataLine: 2, … }
 *
 * A head that is not UTF-8 is decoded by iconv-lite, imported on first use (codecs.ts): before it
 * is, such a head throws `CodecsNotLoadedError`; `detectStructureLoadingCodecs` imports it then.
 */
export function detectStructure(head: Buffer, opts: DetectOptions): DetectResult {
  const { file } = opts;
  const warnings: string[] = [];
  let complete = opts.complete;
  if (head.length > MAX_HEAD_BYTES) {
    head = head.subarray(0, MAX_HEAD_BYTES);
    complete = false;
  }
  if (head.length === 0) throw new DetectError(`${file} is empty (0 bytes)`, { file });

  const enc = detectEncoding(head, complete, file, opts.hints?.encoding, warnings, opts.hints?.encodingDeclared === true);
  const text = decodeHead(head, enc, complete);
  if (text.length === 0) throw new DetectError(`${file} holds only a byte-order mark, no text`, { file });
  checkText(text, file, enc.encoding, warnings);

  if (!complete && !hasLineBreak(text)) {
    throw new DetectError(`${file}: no line break in the first ${formatBytes(head.length)} — a single line longer than that (not a line-oriented CSV file, or an unusual line ending)`, { file, line: 1 });
  }
  const lineEnding = detectLineEnding(text, warnings, file);
  let quote = detectQuote(text);
  let q = quote === '' ? -1 : quote.charCodeAt(0);

  // Excel's `sep=;` first line names the delimiter; it is then part of the preamble.
  const sep = sepLine(text);
  // Delimiter: judged over every complete record of the head.
  let delimiter: string;
  const hint = opts.hints?.delimiter ?? sep;
  if (hint !== undefined) {
    if (hint.length !== 1 || hint === '\n' || hint === '\r' || hint === quote) {
      throw new DetectError(`${file}: the declared delimiter ${JSON.stringify(hint)} is not a single separator character`, { file });
    }
    delimiter = hint;
  } else {
    delimiter = chooseDelimiter(text, q, complete).delimiter;
  }
  // `"` read as data, yet as a quote it opens a field that never closes (by the end of the file,
  // or of the head): an unclosed quote in a file that quotes nothing else is read as a quote, so
  // that it is reported as one rather than loaded as text. (A quote closed by a stray one, as in
  // `"5;"wide`, leaves `"` data.)
  if (quote === '' && text.includes('"')) {
    const asQuote = tokenize(text, delimiter.charCodeAt(0), DQ, complete, 0);
    if (complete ? asQuote.openQuoteLine !== undefined : asQuote.partialInQuotes) {
      quote = '"';
      q = DQ;
    }
  }

  const tok = tokenize(text, delimiter.charCodeAt(0), q, complete, COLLECT);
  if (tok.openQuoteLine !== undefined) {
    warnings.push(`${file}: a quoted field opened on line ${tok.openQuoteLine} is not closed by the end of the file`);
  }
  const nonBlank = tok.records.filter((r) => !r.blank);
  if (nonBlank.length === 0) {
    if (tok.records.length === 0 && tok.partialInQuotes) {
      throw new DetectError(`${file}: no complete record in the first ${formatBytes(head.length)}: a quoted field opened on line ${tok.partialLine} runs past it (an unclosed quote?)`, {
        file,
        line: tok.partialLine,
      });
    }
    if (tok.records.length === 0) {
      throw new DetectError(`${file}: no complete line in the first ${formatBytes(head.length)}`, { file, line: 1 });
    }
    throw new DetectError(`${file} has no header line: only blank lines`, { file, line: 1 });
  }
  // spaces, tabs and line breaks only (a tab among them splits the lines into "fields" of blanks):
  // no header and no record, not a header and one row of blanks loaded as if whole
  if (complete && text.trim() === '') throw new DetectError(`${file} holds only whitespace (spaces, tabs, line breaks): no header, no data rows`, { file, line: 1 });

  const m = fieldCount(nonBlank);
  if (m <= 1 && hint === undefined && sep === undefined) {
    warnings.push(`${file}: no delimiter found (tried ${DELIMITER_CANDIDATES.map(show).join(' ')}): read as a single column`);
  }
  const h = chooseHeader(tok.records, m, sep === undefined ? 0 : 1);
  if (h < 0) throw new DetectError(`${file} has no header line${sep === undefined ? ` in its first ${COLLECT} lines` : ` after "sep=${sep}"`}`, { file });
  const headerRec = tok.records[h]!;
  // a BOM repeated at the start of the file, or inside the first quoted heading, is not a name
  let header = headerRec.fields!.map((f) => (f.indexOf('\uFEFF') >= 0 ? f.replace(/\uFEFF/g, '') : f));
  // group headings over sub-headings (GENESIS: `;;Geschlecht;Geschlecht` over `;;männlich;weiblich`)
  const sub = subHeadingRow(tok.records, h, header);
  if (sub >= 0) {
    const lower = tok.records[sub]!.fields!;
    header = combineHeadings(header, lower);
    warnings.push(`${file}: the header spans lines ${headerRec.line}–${tok.records[sub]!.line} (group headings above sub-headings); columns named ${header.map((n) => JSON.stringify(n)).join(', ')}`);
  }
  if (headerRec.count !== m && m > 1) {
    warnings.push(`${file}: the header (line ${headerRec.line}) has ${headerRec.count} fields but most data lines have ${m}`);
  }
  if (!looksLikeNames(header, false)) {
    warnings.push(
      `${file}: the header line ${headerRec.line} looks like data (${header
        .slice(0, 4)
        .map((f) => JSON.stringify(f))
        .join(', ')}…); is there a header?`,
    );
  }

  const preamble = physicalLines(text, headerRec.line - 1);
  const lastHeader = tok.records[sub >= 0 ? sub : h]!;
  const data = tok.records.slice((sub >= 0 ? sub : h) + 1);
  const firstData = data.find((r) => !r.blank);
  const firstDataLine = firstData?.line ?? lastHeader.line + lastHeader.lines;
  if (!firstData) warnings.push(`${file}: no complete data line after the header in the first ${formatBytes(head.length)}`);

  const blankHeaders: number[] = [];
  header.forEach((name, i) => {
    if (name.trim() === '') blankHeaders.push(i);
  });
  const sample = data.filter((r) => !r.blank && r.fields !== undefined);
  for (const i of blankHeaders) {
    const filled = sample.some((r) => (r.fields![i] ?? '').trim() !== '');
    warnings.push(`${file}: column ${i + 1} has a blank heading${filled ? '' : i === header.length - 1 ? ' and no values (a trailing delimiter on every line?)' : ' and no values in the head'}`);
  }

  const ragged = data.filter((r) => !r.blank && r.count !== header.length);
  if (ragged.length > 0) {
    warnings.push(
      `${file}: ${ragged.length} of ${data.filter((r) => !r.blank).length} data lines in the head do not have ${header.length} fields (first: line ${ragged[0]!.line} with ${ragged[0]!.count})`,
    );
  }

  const decimal = decimalCommaEvidence(sample);
  // Clear evidence decides; with only ambiguous `1,500`-like values, a `;` file is taken as European.
  const decimalComma = decimal.comma > 0 ? decimal.comma >= 2 * decimal.point : decimal.point === 0 && decimal.weakComma > 0 && delimiter === ';';
  if (decimal.comma > 0 && decimal.point > 0) {
    warnings.push(`${file}: numbers are written both with a decimal comma (${decimal.comma}) and a decimal point (${decimal.point}); decimalComma = ${decimalComma}`);
  }

  return {
    structure: {
      encoding: enc.encoding,
      ...(enc.declared ? { encodingDeclared: true as const } : {}),
      bom: enc.bom,
      lineEnding,
      delimiter,
      quote,
      headerRow: headerRec.line - 1,
      preamble,
      header,
      blankHeaders,
      decimalComma,
      firstDataLine,
    },
    warnings,
  };
}

// ---------------------------------------------------------------------------------------------
// Encoding

interface EncodingFound {
  encoding: Encoding;
  bom: boolean;
  /** Bytes of BOM to skip. */
  bomLength: number;
  /** The pipeline's declared encoding (read.encoding) was used. */
  declared?: true;
}

const SIGNATURES: { bytes: number[]; what: string }[] = [
  { bytes: [0x1f, 0x8b], what: 'a gzip-compressed file (decompress it first)' },
  { bytes: [0x50, 0x4b, 0x03, 0x04], what: 'a ZIP archive (or an XLSX/ODS spreadsheet)' },
  { bytes: [0x50, 0x4b, 0x05, 0x06], what: 'an empty ZIP archive' },
  { bytes: [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1], what: 'an old Office document (XLS?)' },
  { bytes: [0x25, 0x50, 0x44, 0x46, 0x2d], what: 'a PDF document' },
  { bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], what: 'a PNG image' },
  { bytes: [0xff, 0xd8, 0xff], what: 'a JPEG image' },
  { bytes: [0x50, 0x41, 0x52, 0x31], what: 'a Parquet file' },
  { bytes: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], what: 'a 7-Zip archive' },
  { bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], what: 'an XZ-compressed file (decompress it first)' },
  { bytes: [0x28, 0xb5, 0x2f, 0xfd], what: 'a Zstandard-compressed file (decompress it first)' },
  { bytes: [0x42, 0x5a, 0x68], what: 'a bzip2-compressed file (decompress it first)' },
];

/**
 * The encoding of `head`: a byte-order mark decides; else `hint` (the pipeline's `read.encoding`
 * when `declared`, or what staging used) wins over any guess; else it is detected.
 */
function detectEncoding(head: Buffer, complete: boolean, file: string, hint: Encoding | undefined, warnings: string[], declared = false): EncodingFound {
  const b0 = head[0];
  const b1 = head[1];
  let found: EncodingFound | undefined;
  if ((b0 === 0xff && b1 === 0xfe && head[2] === 0 && head[3] === 0) || (b0 === 0 && b1 === 0 && head[2] === 0xfe && head[3] === 0xff)) {
    throw new DetectError(`${file} is UTF-32 text (byte-order mark ${hex(head.subarray(0, 4))}); re-save it as UTF-8`, { file });
  }
  if (b0 === 0xef && b1 === 0xbb && head[2] === 0xbf) found = { encoding: 'utf-8', bom: true, bomLength: 3 };
  else if (b0 === 0xff && b1 === 0xfe) found = { encoding: 'utf-16le', bom: true, bomLength: 2 };
  else if (b0 === 0xfe && b1 === 0xff) found = { encoding: 'utf-16be', bom: true, bomLength: 2 };
  if (found) {
    if (hint && hint !== found.encoding) warnings.push(`${file}: declared ${hint} but the file starts with a ${found.encoding} byte-order mark; read as ${found.encoding}`);
    return found;
  }

  for (const sig of SIGNATURES) {
    if (head.length >= sig.bytes.length && sig.bytes.every((b, i) => head[i] === b)) {
      // bzip2's "BZh" is also a plausible start of text: require its block magic too.
      if (sig.bytes[0] === 0x42 && !(head[3]! >= 0x31 && head[3]! <= 0x39 && head[4] === 0x31 && head[5] === 0x41 && head[6] === 0x59)) continue;
      throw new DetectError(`${file} is not CSV text: it looks like ${sig.what} (starts with ${hex(head.subarray(0, Math.min(8, head.length)))})`, { file });
    }
  }

  if (hint) {
    const found = { encoding: hint, bom: false, bomLength: 0, ...(declared ? { declared: true as const } : {}) };
    // said among the load's notes, where a guess would say "guessed from byte statistics"
    if (declared) warnings.push(`${file}: read as ${hint}, the encoding the pipeline declares (read.encoding)`);
    if (hint === 'utf-16le' || hint === 'utf-16be') return found;
    const nul = head.indexOf(0);
    if (nul >= 0) throw binary(file, head, nul, 'a NUL byte');
    if (hint === 'utf-8') {
      const judged = complete ? head : head.subarray(0, completeUtf8Length(head));
      if (!isUtf8(judged)) {
        const { firstInvalid } = utf8Stats(judged);
        warnings.push(`${file}: declared utf-8 but byte 0x${judged[firstInvalid]!.toString(16)} on line ${lineAtByte(judged, firstInvalid)} is not UTF-8 (read as U+FFFD)`);
      }
    }
    return found;
  }

  const utf16 = utf16WithoutBom(head);
  if (utf16) return { encoding: utf16, bom: false, bomLength: 0 };

  const nul = head.indexOf(0);
  if (nul >= 0) throw binary(file, head, nul, 'a NUL byte');

  // The head may end inside a multi-byte character: judge only the complete part.
  const judged = complete ? head : head.subarray(0, completeUtf8Length(head));
  if (isUtf8(judged)) return { encoding: 'utf-8', bom: false, bomLength: 0 };

  const stats = utf8Stats(judged);
  if (stats.multibyte > stats.invalid) {
    warnings.push(
      `${file}: mixed encodings: mostly UTF-8 (${stats.multibyte} multi-byte characters) but ${stats.invalid} invalid byte(s), the first 0x${judged[stats.firstInvalid]!.toString(16)} on line ${lineAtByte(judged, stats.firstInvalid)}; read as UTF-8 (invalid bytes become U+FFFD)`,
    );
    return { encoding: 'utf-8', bom: false, bomLength: 0 };
  }

  const encoding = guessSingleByte(head);
  const high = countHigh(head);
  warnings.push(`${file} is not UTF-8 (byte 0x${judged[stats.firstInvalid]!.toString(16)} on line ${lineAtByte(judged, stats.firstInvalid)}): read as ${encoding}, guessed from byte statistics`);
  if (stats.multibyte > 0) warnings.push(`${file}: mixed encodings: ${stats.multibyte} byte sequence(s) also look like UTF-8`);
  if (high > head.length * 0.3) {
    warnings.push(`${file}: ${Math.round((100 * high) / head.length)}% of the bytes are non-ASCII; the text may not be in a Western European encoding`);
  }
  return { encoding, bom: false, bomLength: 0 };
}

/** UTF-16 without BOM: ASCII-range text leaves a NUL on one side of most code units. */
function utf16WithoutBom(head: Buffer): 'utf-16le' | 'utf-16be' | undefined {
  const n = Math.min(head.length, 8192) & ~1;
  if (n < 4) return undefined;
  let even = 0;
  let odd = 0;
  for (let i = 0; i < n; i += 2) {
    if (head[i] === 0) even++;
    if (head[i + 1] === 0) odd++;
  }
  const units = n / 2;
  if (odd >= units * 0.4 && even <= odd * 0.05) return 'utf-16le';
  if (even >= units * 0.4 && odd <= even * 0.05) return 'utf-16be';
  return undefined;
}

/** Valid multi-byte sequences and invalid bytes of a buffer that is not entirely UTF-8. */
function utf8Stats(buf: Buffer): { multibyte: number; invalid: number; firstInvalid: number } {
  let multibyte = 0;
  let invalid = 0;
  let firstInvalid = -1;
  for (let i = 0; i < buf.length;) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    const need = b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (need > 0 && i + need <= buf.length && isUtf8(buf.subarray(i, i + need))) {
      multibyte++;
      i += need;
    } else {
      invalid++;
      if (firstInvalid < 0) firstInvalid = i;
      i++;
    }
  }
  return { multibyte, invalid, firstInvalid: Math.max(0, firstInvalid) };
}

function countHigh(buf: Buffer): number {
  let n = 0;
  for (let i = 0; i < buf.length; i++) if (buf[i]! >= 0x80) n++;
  return n;
}

type SingleByte = 'windows-1252' | 'macintosh' | 'cp850';
const SINGLE_BYTE: readonly SingleByte[] = ['windows-1252', 'macintosh', 'cp850'];
/**
 * Each candidate's characters for bytes 0x80–0xFF, decoded on the first guess (not when the
 * module loads: a decode loads iconv-lite's codecs, which a function's cold start need not pay).
 */
let highHalf: Map<SingleByte, string> | undefined;
const highHalfOf = () => (highHalf ??= new Map(SINGLE_BYTE.map((e) => [e, loadedCodecs(e).decode(Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i)), e)])));
/** Letters of Western European languages that a correctly decoded text is full of. */
const COMMON_LETTERS = new Set('àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝŒ');
/** Punctuation and signs that are common in such text. */
const COMMON_MARKS = new Set('’‘“”«»–—…€°·×£§²³µ¿¡\u00a0');
/** Signs that are plausible but say little. */
const NEUTRAL_MARKS = new Set('©®±½¼¾ºª¢¥¬¹¦¨¯´¸');

/**
 * windows-1252 unless `macintosh` or `cp850` explains the high bytes clearly better. Each high
 * byte scores, per candidate: +1 when it decodes to a common accented letter or mark, −1 when it
 * decodes to an unlikely sign (box drawing, maths) or to a capital right after a lower-case letter
 * (mid-word), −2 when the candidate has no character for it.
 */
function guessSingleByte(buf: Buffer): SingleByte {
  const n = Math.min(buf.length, 1 << 20);
  const score = new Map<SingleByte, number>(SINGLE_BYTE.map((e) => [e, 0]));
  const highHalves = highHalfOf();
  let high = 0;
  for (let i = 0; i < n; i++) {
    const b = buf[i]!;
    if (b < 0x80) continue;
    high++;
    const prev = i > 0 ? buf[i - 1]! : 0;
    const prevLower = prev >= 0x61 && prev <= 0x7a;
    for (const e of SINGLE_BYTE) {
      const ch = highHalves.get(e)![b - 0x80]!;
      score.set(e, score.get(e)! + charScore(ch, prevLower));
    }
  }
  const base = score.get('windows-1252')!;
  let best: SingleByte = 'windows-1252';
  for (const e of ['macintosh', 'cp850'] as const) {
    const s = score.get(e)!;
    if (s >= base + Math.max(2, 0.2 * high) && s >= 0.5 * high && s > score.get(best)!) best = e;
  }
  return best;
}

function charScore(ch: string, prevLower: boolean): number {
  const code = ch.charCodeAt(0);
  if (ch === '\ufffd' || (code >= 0x80 && code < 0xa0)) return -2;
  const lower = ch.toLowerCase();
  const upper = ch.toUpperCase();
  if (lower !== upper) {
    if (ch !== lower && prevLower) return -1; // a capital right after a lower-case letter
    return COMMON_LETTERS.has(ch) ? 1 : 0;
  }
  if (COMMON_MARKS.has(ch)) return 1;
  if (NEUTRAL_MARKS.has(ch)) return 0;
  return -1;
}

function decodeHead(head: Buffer, enc: EncodingFound, complete: boolean): string {
  let body = head.subarray(enc.bomLength);
  if (enc.encoding === 'utf-8') {
    if (!complete) body = body.subarray(0, completeUtf8Length(body));
    return body.toString('utf8');
  }
  if (enc.encoding === 'utf-16le' || enc.encoding === 'utf-16be') {
    body = body.subarray(0, body.length & ~1);
    let text = loadedCodecs(enc.encoding).decode(body, enc.encoding, { stripBOM: false });
    // A head cut between the two halves of a surrogate pair.
    const last = text.charCodeAt(text.length - 1);
    if (!complete && last >= 0xd800 && last < 0xdc00) text = text.slice(0, -1);
    return text;
  }
  return loadedCodecs(enc.encoding).decode(body, enc.encoding);
}

/** Binary content that slipped past the byte checks (controls in decoded text). */
function checkText(text: string, file: string, encoding: Encoding, warnings: string[]): void {
  let controls = 0;
  let first = -1;
  let replacement = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== LF && c !== CR && c !== 0x0c && c !== 0x1a) || c === 0x7f) {
      controls++;
      if (first < 0) first = i;
    } else if (c === 0xfffd) replacement++;
  }
  if (controls > Math.max(2, text.length * 0.01)) {
    throw new DetectError(
      `${file} is not CSV text: binary content (${controls} control characters, the first U+${text.charCodeAt(first).toString(16).padStart(4, '0').toUpperCase()} on line ${lineAtChar(text, first)})`,
      { file, line: lineAtChar(text, first) },
    );
  }
  if (controls > 0) warnings.push(`${file}: ${controls} stray control character(s), the first on line ${lineAtChar(text, first)}`);
  if (replacement > Math.max(2, text.length * 0.05) && encoding.startsWith('utf-16')) {
    throw new DetectError(`${file} is not ${encoding} text: ${replacement} undecodable code units`, { file });
  }
}

function binary(file: string, head: Buffer, offset: number, what: string): DetectError {
  const line = lineAtByte(head, offset);
  return new DetectError(`${file} is not CSV text: binary content (${what} at byte ${offset}, line ${line})`, { file, line });
}

// ---------------------------------------------------------------------------------------------
// Lines, quotes, delimiter

function hasLineBreak(text: string): boolean {
  return text.indexOf('\n') >= 0 || text.indexOf('\r') >= 0;
}

function detectLineEnding(text: string, warnings: string[], file: string): Structure['lineEnding'] {
  let crlf = 0;
  let lf = 0;
  let cr = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === LF) lf++;
    else if (c === CR) {
      if (text.charCodeAt(i + 1) === LF) {
        crlf++;
        i++;
      } else if (i + 1 < text.length) cr++;
    }
  }
  const kinds = [crlf, lf, cr].filter((n) => n > 0).length;
  if (kinds > 1) warnings.push(`${file}: mixed line endings (${crlf} CRLF, ${lf} LF, ${cr} CR); all are read as line breaks`);
  if (crlf >= lf && crlf >= cr && crlf > 0) return '\r\n';
  if (cr > lf) return '\r';
  return '\n';
}

const BOUNDARY = new Set([LF, CR, ...DELIMITER_CANDIDATES.map((d) => d.charCodeAt(0))]);

/**
 * `"` unless the head shows `'` quoting fields (and no `"` quoting), or shows `"` only where it
 * cannot be a quote (a field starting with `"` that never closes at a field end). With no quote at
 * all in the head, `"` is still returned: a file quoting only rare values further down reads right.
 */
function detectQuote(text: string): Structure['quote'] {
  const n = Math.min(text.length, 1 << 20);
  const stats = (q: number) => {
    let opens = 0;
    let closes = 0;
    let seen = 0;
    for (let i = 0; i < n; i++) {
      if (text.charCodeAt(i) !== q) continue;
      seen++;
      if (i === 0 || BOUNDARY.has(text.charCodeAt(i - 1))) opens++;
      if (i + 1 >= n || BOUNDARY.has(text.charCodeAt(i + 1))) closes++;
    }
    return { opens, closes, pairs: Math.min(opens, closes), seen };
  };
  const dq = stats(DQ);
  if (dq.pairs > 0) return '"';
  const sq = stats(SQ);
  if (sq.pairs >= 2) {
    let lines = 0;
    for (let i = 0; i < n; i++) if (text.charCodeAt(i) === LF || text.charCodeAt(i) === CR) lines++;
    if (sq.pairs >= Math.max(2, 0.2 * Math.min(lines, 1000))) return "'";
  }
  if (dq.seen > 0 && dq.opens > 0) return '';
  return '"';
}

interface Rec {
  /** 1-based physical line the record starts on. */
  line: number;
  /** Physical lines the record spans (1 + its quoted line breaks). */
  lines: number;
  /** Field count. */
  count: number;
  /** Empty or whitespace-only line. */
  blank: boolean;
  /** Field values (only for the first records, see `collect`). */
  fields?: string[];
}

interface Tokens {
  records: Rec[];
  /** A complete head ended inside a quoted field opened on this line. */
  openQuoteLine?: number;
  /** The incomplete record at the end of a partial head: its line, and whether it is inside quotes. */
  partialLine: number;
  partialInQuotes: boolean;
}

/** Field values are kept for this many records (header search, decimal comma, blank columns). */
const COLLECT = 2000;

/**
 * Split text into records with `CsvTokenizer` (functions/read/csv.ts: the one CSV rule, which
 * profiling and staging read by too). On a partial head the last, incomplete record is left out;
 * on a complete head a quoted field never closed is reported (`openQuoteLine`) and its record
 * left out. Field values are kept for the first `collect` records.
 */
function tokenize(text: string, d: number, q: number, complete: boolean, collect: number): Tokens {
  const tok = new CsvTokenizer({ delimiter: String.fromCharCode(d), quote: q < 0 ? '' : String.fromCharCode(q), firstLine: 1, maxRecordChars: 0 });
  const records: Rec[] = [];
  // fed a slice at a time, each slice's rows made records at once: a head of 256 KB can be 260,000
  // lines (a quoted field of line breaks read with another delimiter), and all their rows and
  // field arrays held together took some 270 MB
  let held: RecordRow | undefined; // the last row: its span is known when the next one starts
  const take = (row: RecordRow, next: number) => {
    const rec: Rec = { line: row.line, lines: Math.max(1, next - row.line), count: row.fields.length, blank: row.fields.length === 1 && row.fields[0]!.trim() === '' };
    // a run of blank lines is one blank record spanning them all: what follows a record is blank
    // or not either way, and 260,000 of them cost 130 MB as records of their own
    const last = records[records.length - 1];
    if (rec.blank && last?.blank) {
      last.lines += rec.lines;
      return;
    }
    if (records.length < collect) rec.fields = row.fields;
    records.push(rec);
  };
  const rows: RecordRow[] = [];
  const drain = () => {
    for (const row of rows) {
      if (held) take(held, row.line);
      held = row;
    }
    rows.length = 0;
  };
  for (let i = 0; i < text.length; i += TOKENIZE_SLICE) {
    tok.write(text.slice(i, i + TOKENIZE_SLICE), rows);
    drain();
  }
  const pending = tok.pending();
  const out: Tokens = { records, partialLine: pending.line, partialInQuotes: false };
  if (complete) {
    try {
      tok.end(rows);
    } catch (error) {
      if (!(error instanceof TokenizeError)) throw error;
      out.openQuoteLine = error.line;
    }
  } else out.partialInQuotes = pending.inQuotes;
  drain();
  if (held) take(held, complete && out.openQuoteLine === undefined ? held.line + 1 + breaksIn(held.fields) : pending.line);
  return out;
}

/** Characters handed to the tokenizer at a time by `tokenize`. */
const TOKENIZE_SLICE = 16 * 1024;

function breaksIn(fields: readonly string[]): number {
  let n = 0;
  for (const f of fields) n += lineBreaksIn(f);
  return n;
}

/** The field count (> 1 if any) shared by the most non-blank records; a tie goes to more fields. */
function modalCount(records: readonly Rec[]): number {
  const freq = new Map<number, number>();
  for (const r of records) freq.set(r.count, (freq.get(r.count) ?? 0) + 1);
  let best = 1;
  let bestFreq = 0;
  for (const [count, f] of freq) {
    if (count <= 1) continue;
    if (f > bestFreq || (f === bestFreq && count > best)) {
      best = count;
      bestFreq = f;
    }
  }
  return best;
}

/**
 * The field count of the table: the modal count, except in a short ragged file where no two lines
 * share a count — then the first line with fields is the header, and reading the lines below it
 * fails, naming the first that does not fit.
 */
function fieldCount(nonBlank: readonly Rec[]): number {
  const m = modalCount(nonBlank);
  if (m > 1 && nonBlank.length >= 2 && nonBlank[0]!.count > 1 && nonBlank.filter((r) => r.count === m).length < 2) return nonBlank[0]!.count;
  return m;
}

/**
 * The delimiter under which the most non-blank records of the head share one field count > 1
 * (records, not just the first line: a title or a header with a stray comma cannot mislead it);
 * a tie goes to the one giving more fields, then to the order of DELIMITER_CANDIDATES.
 * A candidate that splits neither the first line nor any line that looks like a header (names,
 * not numbers) near the top is not a delimiter: colons in a single column of times are not.
 */
function chooseDelimiter(text: string, q: number, complete: boolean): { delimiter: string; fields: number; agreeing: number } {
  let best = { delimiter: ',', fields: 1, agreeing: 0 };
  for (const d of DELIMITER_CANDIDATES) {
    const { records } = tokenize(text, d.charCodeAt(0), q, complete, HEADER_WINDOW);
    const nonBlank = records.filter((r) => !r.blank);
    const m = fieldCount(nonBlank);
    if (m <= 1) continue;
    const named = nonBlank[0]!.count > 1 || nonBlank.some((r) => r.count === m && r.fields !== undefined && looksLikeNames(r.fields, false));
    if (!named) continue;
    let agreeing = 0;
    for (const r of nonBlank) if (r.count === m) agreeing++;
    if (agreeing > best.agreeing || (agreeing === best.agreeing && m > best.fields)) best = { delimiter: d, fields: m, agreeing };
  }
  return best;
}

/** The delimiter named by an Excel `sep=X` first line. */
function sepLine(text: string): string | undefined {
  if (text.length < 5 || text.slice(0, 4).toLowerCase() !== 'sep=') return undefined;
  const d = text[4]!;
  const after = text.charCodeAt(5);
  if (d === '\n' || d === '\r' || !(Number.isNaN(after) || after === LF || after === CR)) return undefined;
  return d;
}

// ---------------------------------------------------------------------------------------------
// Header

/** How far down the header is looked for (records). */
const HEADER_WINDOW = 50;

/**
 * Index (in `records`) of the header: the first record with the data's field count `m`, whose
 * following records keep that count, and whose fields look like names — preferring one not
 * followed by a blank line (a title above a blank line is not a header). Failing that, the first
 * record from which the count stays consistent, or the name-like record just above it (a header
 * with one field less or more than the data, e.g. the data has a trailing delimiter).
 * The first `skip` records are never the header. -1 when no record qualifies (only blank lines
 * among those whose field values were kept).
 */
function chooseHeader(records: readonly Rec[], m: number, skip: number): number {
  const idx: number[] = [];
  records.forEach((r, i) => {
    if (!r.blank && i >= skip && r.fields) idx.push(i);
  });
  if (idx.length === 0) return -1;
  const consistentFrom = (k: number): boolean => {
    const next = idx.slice(k + 1, k + 11);
    if (next.length === 0) return true;
    return next.filter((i) => records[i]!.count === m).length >= next.length * 0.5;
  };
  const window = Math.min(idx.length, HEADER_WINDOW);
  let firstCandidate = -1;
  for (let k = 0; k < window; k++) {
    const i = idx[k]!;
    const r = records[i]!;
    if (r.count !== m || !consistentFrom(k) || !r.fields || !looksLikeNames(r.fields, true)) continue;
    const followedByBlank = records[i + 1]?.blank === true;
    if (!followedByBlank) {
      // a line of names above a blank line, then lines that all read as names too: the first is
      // the header and the others data (`Nom;Prénom`, blank, `Dupont;Jean`…), not a title above
      // a header
      if (firstCandidate >= 0 && !numbersBelow(records, idx, k)) return firstCandidate;
      return i;
    }
    if (firstCandidate < 0) firstCandidate = i;
  }
  if (firstCandidate >= 0) return firstCandidate;

  let s = -1;
  for (let k = 0; k < idx.length && s < 0; k++) if (records[idx[k]!]!.count === m && consistentFrom(k)) s = k;
  if (s < 0)
    s = Math.max(
      0,
      idx.findIndex((i) => records[i]!.count === m),
    );
  const atS = records[idx[s]!]!;
  // a data line (a number among its fields) below a line of names with one field less or more:
  // that line is the header, and the file is ragged (reading it fails, naming the line)
  if (s > 0 && !(atS.fields && looksLikeNames(atS.fields, true))) {
    const p = records[idx[s - 1]!]!;
    if (p.count > 1 && Math.abs(p.count - m) <= 1 && p.fields && looksLikeNames(p.fields, false)) return idx[s - 1]!;
  }
  return idx[s]!;
}

/**
 * The index of the header's second row, or -1: the record right after the header, of its width,
 * all names (no number, no missing-value marker), under a header that groups columns (a blank
 * or repeated heading), with at least two of its names over columns that hold numbers in most
 * of the records below — where a data row would have numbers.
 */
function subHeadingRow(records: readonly Rec[], h: number, header: readonly string[]): number {
  const s = h + 1;
  const next = records[s];
  if (!next?.fields || next.blank || next.count !== header.length) return -1;
  const named = header.filter((x) => x.trim() !== '');
  if (named.length === header.length && new Set(named).size === named.length) return -1;
  if (!looksLikeNames(next.fields, true) || next.fields.some((f) => isMissingMarker(f.trim()))) return -1;
  const below = records.slice(s + 1, s + 21).filter((r) => !r.blank && r.fields);
  if (below.length === 0) return -1;
  let overNumbers = 0;
  next.fields.forEach((f, i) => {
    if (f.trim() === '') return;
    const numbers = below.filter((r) => isNumberLike((r.fields![i] ?? '').trim())).length;
    if (numbers >= below.length * 0.5) overNumbers++;
  });
  return overNumbers >= 2 ? s : -1;
}

/** Group headings carried over the blanks to their right, joined with the sub-heading below: `Geschlecht männlich`. */
function combineHeadings(upper: readonly string[], lower: readonly string[]): string[] {
  let group = '';
  return upper.map((u, i) => {
    let top = u.trim();
    const sub = (lower[i] ?? '').trim();
    if (top) group = top;
    else if (sub && i > 0) top = group;
    else group = '';
    return top && sub && top !== sub ? `${top} ${sub}` : top || sub;
  });
}

/** Whether any of the (up to 10) records after `idx[k]` has a field that is not a name (a number, or empty). */
function numbersBelow(records: readonly Rec[], idx: readonly number[], k: number): boolean {
  const next = idx.slice(k + 1, k + 11);
  return next.some((i) => {
    const f = records[i]!.fields;
    return f !== undefined && !looksLikeNames(f, true);
  });
}

/**
 * Fields that look like column names: mostly non-empty and non-numeric. `strict`: no numeric field
 * at all (used to tell a header from a preamble or a data line that happens to have as many fields).
 */
function looksLikeNames(fields: readonly string[], strict: boolean): boolean {
  let nonEmpty = 0;
  let numeric = 0;
  for (const f of fields) {
    const t = f.trim();
    if (t === '') continue;
    nonEmpty++;
    if (isNumberLike(t)) numeric++;
  }
  if (nonEmpty === 0 || nonEmpty < fields.length * 0.5) return false;
  return strict ? numeric === 0 : numeric <= nonEmpty * 0.5;
}

/** Digits with optional sign, separators (`.` `,` spaces) and a trailing `%`. */
function isNumberLike(t: string): boolean {
  let i = 0;
  let digits = 0;
  const n = t.length;
  if (n > 40) return false;
  if (t[0] === '-' || t[0] === '+') i++;
  for (; i < n; i++) {
    const c = t.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) digits++;
    else if (c === 0x2e || c === 0x2c || c === 0x20 || c === 0xa0 || c === 0x202f) {
      if (digits === 0) return false;
    } else if (c === 0x25 && i === n - 1) {
      // percent sign
    } else return false;
  }
  return digits > 0;
}

/** The first `count` physical lines of the text (for the preamble). */
function physicalLines(text: string, count: number): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length && out.length < count; i++) {
    const c = text.charCodeAt(i);
    if (c === LF || c === CR) {
      out.push(text.slice(start, i));
      if (c === CR && text.charCodeAt(i + 1) === LF) i++;
      start = i + 1;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decimal comma

// Both anchored, with character classes that cannot overlap the separator after them: linear.
const COMMA_NUMBER = /^[-+]?(\d[\d. \u00a0\u202f]*),(\d+)$/;
const POINT_NUMBER = /^[-+]?(\d[\d, \u00a0\u202f]*)\.(\d+)$/;
const PLAIN_GROUPS = /^\d{1,3}$/;

/**
 * Numbers in the sample written with a decimal comma (`12,5`, `1.234,56`, `0,125`) or point.
 * `1,234` alone is ambiguous (a thousands separator?) and counts only as weak evidence.
 */
function decimalCommaEvidence(sample: readonly Rec[]): { comma: number; point: number; weakComma: number } {
  let comma = 0;
  let point = 0;
  let weakComma = 0;
  for (const r of sample) {
    for (const f of r.fields!) {
      if (f.length === 0 || f.length > 40) continue;
      const t = f.trim();
      const c0 = t.charCodeAt(0);
      if (!((c0 >= 0x30 && c0 <= 0x39) || c0 === 0x2d || c0 === 0x2b)) continue;
      let m = COMMA_NUMBER.exec(t);
      if (m) {
        const [, int, frac] = m as unknown as [string, string, string];
        if (frac.length !== 3 || int !== int.replace(/[. \u00a0\u202f]/g, '') || int[0] === '0') comma++;
        else if (PLAIN_GROUPS.test(int)) weakComma++;
        continue;
      }
      m = POINT_NUMBER.exec(t);
      if (m) {
        const [, int, frac] = m as unknown as [string, string, string];
        if (frac.length !== 3 || int.includes(',') || int[0] === '0') point++;
      }
    }
  }
  return { comma, point, weakComma };
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function lineAtByte(buf: Buffer, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < buf.length; i++) {
    const b = buf[i];
    if (b === LF) line++;
    else if (b === CR && buf[i + 1] !== LF) line++;
  }
  return line;
}

function lineAtChar(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === LF) line++;
    else if (c === CR && text.charCodeAt(i + 1) !== LF) line++;
  }
  return line;
}

function hex(buf: Buffer): string {
  return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

function show(d: string): string {
  return d === '\t' ? 'tab' : d;
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(n % (1024 * 1024) === 0 ? 0 : 1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(n % 1024 === 0 ? 0 : 1)} KiB`;
  return `${n} bytes`;
}
