/**
 * What the spreadsheet readers (xlsx.ts, ods.ts, xls.ts) share: the zip and XML plumbing, turning
 * cell values into text, and turning a sheet's first rows into a header — skipping title rows,
 * naming columns under merged or two-row headings — and the rest into `ReadRow`s.
 *
 * A format reader only has to say, as a `SheetSource`, which cells each non-empty row holds (with a
 * kind per cell, so that a heading can be told from data) and which merged ranges sit near the
 * top. Everything a user sees of the table's shape is decided here, the same way for every format.
 */
import { open as openFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { SaxesParser } from 'saxes';
import yauzl from 'yauzl';
import { isMissingMarker } from '../profile/column-type.ts';
import { DEFAULT_READ_LIMITS, type ReadLimits } from '../common/limits.ts';
import { beyondLimit, ReadError, type ReadRow, type ReadTable, type SourceFormat } from './types.ts';

// ---------------------------------------------------------------------------------------------
// Cells and rows as the format readers hand them over

/** What a cell held, as far as telling a heading from data is concerned. */
export const Kind = {
  Empty: 0,
  Text: 1,
  Number: 2,
  Date: 3,
  Boolean: 4,
  /** An error value (`#N/A`, `#DIV/0!`…): `values` holds the code, the table reads it as NULL. */
  Error: 5,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

/** One row of a sheet that has at least one value. Columns are 0-based (A = 0). */
export interface SheetRow {
  /** The row number the spreadsheet shows (1-based). */
  position: number;
  /** Cell text by column; `null` for an empty cell. Error cells hold their code (`#N/A`). */
  values: (string | null)[];
  kinds: Kind[];
  /** Whether any cell is `Kind.Error` (saves a scan of every row). */
  hasError: boolean;
}

/** A merged range, 1-based rows (as shown) and 0-based columns, inclusive. */
/** Put a cell's text in its row, padding the columns before it as empty; a row with an error cell is flagged. */
export function putCell(row: SheetRow, col: number, text: string, kind: Kind): void {
  const { values, kinds } = row;
  while (values.length < col) {
    values.push(null);
    kinds.push(Kind.Empty);
  }
  values[col] = text;
  kinds[col] = kind;
  if (kind === Kind.Error) row.hasError = true;
}

export interface Merge {
  top: number;
  left: number;
  bottom: number;
  right: number;
}

/** A sheet as a format reader offers it. */
export interface SheetSource {
  /** `file#sheet`, for messages and `ReadTable.name`. */
  file: string;
  format: SourceFormat;
  /**
   * The sheet's non-empty rows, in order, in batches (one per chunk of the file parsed). Each call
   * opens the file anew and closes it when the iteration ends or is abandoned.
   */
  rows(): AsyncIterable<SheetRow[]>;
  /** Merged ranges that start in the first rows (at least those up to `throughRow`). */
  merges(throughRow: number): Promise<Merge[]>;
  /** Things the format reader learnt while reading rows (formulas without a cached result…), asked once `rows()` is done. */
  notes?(): string[];
  /** Release what the source keeps between passes (a spilled string table); called when the table's rows are done. */
  close?(): void;
}

// ---------------------------------------------------------------------------------------------
// Values as text

/**
 * A number as a person reads it in the sheet: at most 15 significant digits, the precision a
 * spreadsheet displays, so binary noise (`0.30000000000000004`) goes; integers without `.0`.
 */
export function numberText(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return String(n === 0 ? 0 : n);
  return String(Number(n.toPrecision(15)));
}

/** What a number format shows a serial number as. */
export type DateStyle = 'date' | 'datetime' | 'time' | 'duration';

/**
 * What an Excel-style number format code shows: a date, a date with a time, a time of day, an
 * elapsed time (`[h]:mm`), or `undefined` for a plain number. Quoted text, escapes and
 * bracketed colours/locales are ignored; only the first section (positive numbers) counts.
 */
export function dateStyleOfFormat(code: string): DateStyle | undefined {
  let plain = '';
  let elapsed = false;
  for (let i = 0; i < code.length; i++) {
    const ch = code[i]!;
    if (ch === ';') break;
    if (ch === '"') {
      const end = code.indexOf('"', i + 1);
      i = end < 0 ? code.length : end;
    } else if (ch === '\\' || ch === '_' || ch === '*') {
      i++;
    } else if (ch === '[') {
      const end = code.indexOf(']', i + 1);
      if (/^\[(h+|m+|s+)\]/i.test(code.slice(i))) elapsed = true;
      i = end < 0 ? code.length : end;
    } else {
      plain += ch;
    }
  }
  if (elapsed) return 'duration';
  plain = plain.toLowerCase().replace(/am\/pm|a\/p/g, ' ');
  const tokens = plain.match(/[a-z]+/g) ?? [];
  let date = false;
  let time = false;
  tokens.forEach((token, i) => {
    const c = token[0];
    if (c === 'y' || c === 'd' || c === 'b') date = true;
    else if (c === 'h' || c === 's') time = true;
    else if (c === 'm') {
      // `m` is minutes right after an hour or before seconds, the month otherwise.
      if (tokens[i - 1]?.[0] === 'h' || tokens[i + 1]?.[0] === 's') time = true;
      else date = true;
    }
  });
  if (date && time) return 'datetime';
  if (date) return 'date';
  if (time) return 'time';
  return undefined;
}

const MS_PER_DAY = 86_400_000;
/** Day 0 of the 1900 date system, as the serial numbers from 61 on count it. */
const EPOCH_1900 = Date.UTC(1899, 11, 30);
/** Serial 0 of the 1904 date system (old Mac workbooks). */
const EPOCH_1904 = Date.UTC(1904, 0, 1);

const pad2 = (n: number) => String(n).padStart(2, '0');

/** Seconds as `HH:MM:SS` (hours may pass 24 for an elapsed time). */
export function clockText(totalSeconds: number): string {
  const sign = totalSeconds < 0 ? '-' : '';
  const s = Math.abs(totalSeconds);
  return `${sign}${pad2(Math.floor(s / 3600))}:${pad2(Math.floor((s % 3600) / 60))}:${pad2(s % 60)}`;
}

/**
 * A spreadsheet serial number as ISO text: `YYYY-MM-DD`, with `THH:MM:SS` when the format shows a
 * time or the value has one, `HH:MM:SS` for a time of day or an elapsed time. The 1900 system
 * keeps Lotus's phantom 29 February 1900 (serial 60), which reads as the 28th. `undefined` for a
 * serial no date can have (negative, past year 9999).
 */
export function serialDateText(serial: number, style: DateStyle, date1904: boolean): string | undefined {
  if (!Number.isFinite(serial)) return undefined;
  if (style === 'duration') return clockText(Math.round(serial * 86_400));
  if (serial < 0 || serial >= 2_958_466) return undefined;
  let days = Math.floor(serial);
  let seconds = Math.round((serial - days) * 86_400);
  if (seconds === 86_400) {
    days += 1;
    seconds = 0;
  }
  if (style === 'time') return clockText(seconds);
  let ms: number;
  if (date1904) ms = EPOCH_1904 + days * MS_PER_DAY;
  else if (days >= 61) ms = EPOCH_1900 + days * MS_PER_DAY;
  else ms = EPOCH_1900 + (days === 60 ? 60 : days + 1) * MS_PER_DAY;
  const day = new Date(ms).toISOString().slice(0, 10);
  return style === 'datetime' || seconds > 0 ? `${day}T${clockText(seconds)}` : day;
}

/** Built-in number formats that show dates or times (ECMA-376 §18.8.30, and the East Asian ones). */
export function builtInDateStyle(id: number): DateStyle | undefined {
  if ((id >= 14 && id <= 17) || (id >= 27 && id <= 31) || (id >= 34 && id <= 36) || (id >= 50 && id <= 58)) return 'date';
  if ((id >= 18 && id <= 21) || id === 32 || id === 33 || id === 45 || id === 47) return 'time';
  if (id === 22) return 'datetime';
  if (id === 46) return 'duration';
  // Thai built-ins
  if ((id >= 71 && id <= 74) || id === 81) return 'date';
  if (id === 75 || id === 76 || id === 78 || id === 80) return 'time';
  if (id === 77) return 'datetime';
  if (id === 79) return 'duration';
  return undefined;
}

/** A number cell as text and kind: a date when its format shows one, the number otherwise. */
export function numberCell(n: number, style: DateStyle | undefined, date1904: boolean): [string, Kind] {
  const asDate = style ? serialDateText(n, style, date1904) : undefined;
  return asDate === undefined ? [numberText(n), Kind.Number] : [asDate, Kind.Date];
}

/** `A` for 0, `AA` for 26. */
export function columnLetters(col: number): string {
  let s = '';
  for (let n = col + 1; n > 0; n = Math.floor((n - 1) / 26)) s = String.fromCharCode(65 + ((n - 1) % 26)) + s;
  return s;
}

/** A cell reference such as `B3`. */
export const cellRef = (row: number, col: number) => `${columnLetters(col)}${row}`;

// ---------------------------------------------------------------------------------------------
// Zip and XML plumbing

/** The first bytes of an OLE2 compound file: Excel 97–2003 workbooks and password-protected .xlsx. */
const OLE2_MAGIC = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);

/** Whether the file is an OLE2 compound file (it cannot then be a zip). */
export async function isOle2(path: string): Promise<boolean> {
  const handle = await openFile(path, 'r');
  try {
    const head = Buffer.alloc(8);
    const { bytesRead } = await handle.read(head, 0, 8, 0);
    return bytesRead === 8 && head.equals(OLE2_MAGIC);
  } finally {
    await handle.close();
  }
}

/** An open zip whose members are looked up by name; `close()` releases the file. */
export interface Zip {
  has(member: string): boolean;
  /** A member's size once inflated, as the zip's directory says (0 when absent). */
  size(member: string): number;
  /** A member's whole text (for the small parts: workbook, relationships, styles). */
  text(member: string): Promise<string>;
  /** A member's text in chunks, as it inflates. */
  chunks(member: string): AsyncIterable<string>;
  close(): void;
}

/**
 * Open a zip by its central directory (random access: a part needed first may sit anywhere in
 * the file). A damaged or truncated file is a ReadError naming the file.
 */
export async function openZip(path: string, name: string, what: string, limits: ReadLimits = DEFAULT_READ_LIMITS): Promise<Zip> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(path, { lazyEntries: true, autoClose: false, strictFileNames: false });
  } catch (error) {
    throw new ReadError(`${name}: not a readable ${what} (the zip is damaged or truncated: ${(error as Error).message})`, { file: name }, { cause: error });
  }
  const entries = new Map<string, yauzl.Entry>();
  try {
    for await (const entry of zip.eachEntry()) entries.set(entry.fileName.replace(/^\//, ''), entry);
  } catch (error) {
    zip.close();
    throw new ReadError(`${name}: not a readable ${what} (the zip's directory is damaged: ${(error as Error).message})`, { file: name }, { cause: error });
  }
  const entryOf = (member: string) => {
    const entry = entries.get(member);
    if (!entry) throw new ReadError(`${name}: not a readable ${what} (${member} is missing)`, { file: name });
    return entry;
  };
  const open = async (member: string): Promise<Readable> => {
    try {
      const stream = await zip.openReadStreamPromise(entryOf(member));
      stream.setEncoding('utf8');
      return stream;
    } catch (error) {
      if (error instanceof ReadError) throw error;
      throw new ReadError(`${name}: cannot read ${member} in the zip (${(error as Error).message})`, { file: name }, { cause: error });
    }
  };
  async function* chunks(member: string): AsyncGenerator<string> {
    const entry = entryOf(member);
    const label = `${name}!${member}`;
    if (entry.uncompressedSize > limits.maxExpandedBytes) {
      throw beyondLimit(label, `declares ${entry.uncompressedSize} bytes once inflated`, 'maxExpandedBytes', limits.maxExpandedBytes);
    }
    if (entry.uncompressedSize > RATIO_EXEMPT_CHARS && entry.uncompressedSize > limits.maxRatio * entry.compressedSize) {
      throw beyondLimit(label, `expands from ${entry.compressedSize} to ${entry.uncompressedSize} bytes (over ${limits.maxRatio}× its compressed size), a likely zip bomb`, 'maxRatio', limits.maxRatio);
    }
    const stream = await open(member);
    // what the header declares is checked by yauzl as it inflates; characters are never more than bytes
    let inflated = 0;
    try {
      for await (const chunk of stream) {
        inflated += (chunk as string).length;
        if (inflated > RATIO_EXEMPT_CHARS && inflated > limits.maxRatio * entry.compressedSize) {
          throw beyondLimit(label, `expands from ${entry.compressedSize} to more than ${inflated} bytes (over ${limits.maxRatio}× its compressed size), a likely zip bomb`, 'maxRatio', limits.maxRatio);
        }
        yield chunk as string;
      }
    } catch (error) {
      if (error instanceof ReadError) throw error;
      throw new ReadError(`${name}: ${member} is damaged in the zip (${(error as Error).message})`, { file: name }, { cause: error });
    } finally {
      stream.destroy();
    }
  }
  return {
    has: (member) => entries.has(member),
    size: (member) => entries.get(member)?.uncompressedSize ?? 0,
    async text(member) {
      let text = '';
      for await (const chunk of chunks(member)) text += chunk;
      return text;
    },
    chunks,
    close: () => zip.close(),
  };
}

/** Parts inflating to this many characters are not judged by their ratio. */
const RATIO_EXEMPT_CHARS = 1024 * 1024;

/** Handlers for `parseXml`; names are as written (with their prefix). */
export interface XmlHandlers {
  open?(tag: XmlTag): void;
  close?(tag: XmlTag): void;
  text?(text: string): void;
}

/** An element as the SAX parser reports it: qualified name, attributes by qualified name. */
export interface XmlTag {
  name: string;
  attributes: Record<string, string>;
}

/**
 * Feed XML chunks to a SAX parser. After each chunk, `drain()` is yielded to: it hands over what
 * the handlers collected, so a caller's memory holds one chunk's worth of rows at a time. A
 * malformed document is a ReadError naming `where` and what `describe()` says of the position.
 */
export async function* parseXml<T>(
  chunks: AsyncIterable<string>,
  handlers: XmlHandlers,
  drain: () => T | undefined,
  where: { file: string; describe?: () => string; limits?: ReadLimits },
): AsyncGenerator<T> {
  /** Characters since the last `<`: what the parser holds whole before it calls a handler. */
  let run = 0;
  const maxRun = where.limits ? maxRunChars(where.limits) : Infinity;
  const tooLong = () => {
    const at = where.describe?.();
    return beyondLimit(where.file, `a text or tag of more than ${maxRun} characters of XML${at ? ` ${at}` : ''}`, 'maxCellChars', where.limits!.maxCellChars);
  };
  const parser = new SaxesParser<{ xmlns: false; position: false }>({ xmlns: false, position: false });
  let failure: Error | undefined;
  parser.on('error', (error) => {
    failure ??= error;
  });
  if (handlers.open) parser.on('opentag', handlers.open);
  if (handlers.close) parser.on('closetag', handlers.close);
  if (handlers.text) {
    parser.on('text', handlers.text);
    parser.on('cdata', handlers.text);
  }
  const fail = (error: Error): never => {
    const at = where.describe?.();
    throw new ReadError(`${where.file}: malformed XML${at ? ` ${at}` : ''} (${error.message})`, { file: where.file }, { cause: error });
  };
  for await (const chunk of chunks) {
    const first = chunk.indexOf('<');
    if (first < 0) run += chunk.length;
    else {
      if (run + first > maxRun || (chunk.length > maxRun && longestRun(chunk) > maxRun)) throw tooLong();
      run = chunk.length - chunk.lastIndexOf('<') - 1;
    }
    if (run > maxRun) throw tooLong();
    try {
      parser.write(chunk);
    } catch (error) {
      if (error instanceof ReadError) throw error;
      fail(error as Error);
    }
    if (failure) fail(failure);
    const out = drain();
    if (out !== undefined) yield out;
  }
  try {
    parser.close();
  } catch (error) {
    failure ??= error as Error;
  }
  if (failure) {
    // what the end of the bytes brings up (an element left open): a document cut off
    const at = where.describe?.();
    throw new ReadError(`${where.file}: the XML ends before the document does${at ? ` (${at})` : ''}: ${failure.message}; the file is cut off or damaged`, { file: where.file }, { cause: failure });
  }
  const out = drain();
  if (out !== undefined) yield out;
}

/**
 * The longest stretch of XML between two `<` a part may hold: a text (a cell's value, a shared
 * string) or a tag with its attributes. The SAX parser holds such a stretch whole before it hands
 * it over, so it is bounded before it is parsed: `maxCellChars` characters, written with entities
 * (`&amp;`, `&#x1F600;`) at up to 10 characters each, and room for a tag's other attributes.
 */
const maxRunChars = (limits: ReadLimits) => limits.maxCellChars * 10 + 64 * 1024;

/** The longest stretch of `chunk` between two `<` (a chunk holds tens of kB: a run inside it is only as long as the chunk). */
function longestRun(chunk: string): number {
  let longest = 0;
  for (let from = 0, lt = chunk.indexOf('<'); lt >= 0; from = lt + 1, lt = chunk.indexOf('<', from)) longest = Math.max(longest, lt - from);
  return longest;
}

/** An element or attribute name without its namespace prefix. */
export const localName = (qualified: string) => qualified.slice(qualified.indexOf(':') + 1);

// ---------------------------------------------------------------------------------------------
// Choosing a sheet

/**
 * The sheet `wanted` names among `sheets`, or a ReadError that lists them. A number is a 0-based
 * index; a string is a sheet's name (exactly, else ignoring case and edge spaces), and when no
 * sheet is named so, a string of digits is a 0-based index: `--sheet 1` reads the sheet named
 * "1" when there is one (statistical offices name sheets 1, 2a, …), else the second sheet.
 */
export function pickSheet<T extends { name: string }>(sheets: readonly T[], wanted: string | number | undefined, name: string): T {
  const list = sheets.map((s) => `"${s.name}"`).join(', ');
  if (sheets.length === 0) throw new ReadError(`${name}: the workbook has no sheets`, { file: name });
  if (wanted === undefined) return sheets[0]!;
  if (typeof wanted === 'string') {
    const named = sheets.find((s) => s.name === wanted) ?? sheets.find((s) => s.name.trim().toLowerCase() === wanted.trim().toLowerCase());
    if (named) return named;
    if (!/^\s*[0-9]+\s*$/.test(wanted)) throw new ReadError(`${name}: there is no sheet "${wanted}"; the sheets are ${list}`, { file: name });
  }
  const index = Number(wanted);
  const sheet = Number.isInteger(index) ? sheets[index] : undefined;
  if (!sheet) {
    const what = typeof wanted === 'string' ? `no sheet named "${wanted}" nor sheet ${index} (0-based)` : `no sheet ${wanted} (0-based)`;
    throw new ReadError(`${name}: there is ${what}; the workbook has ${sheets.length}: ${list}`, { file: name });
  }
  return sheet;
}

// ---------------------------------------------------------------------------------------------
// Finding the header

/** Non-empty rows read before the header is chosen. */
const WINDOW_ROWS = 40;
/** The header is looked for among the first rows of the window. */
const HEADER_CANDIDATES = 20;
/** How many rows below a candidate say how wide the data is. */
const DATA_SAMPLE = 10;

/** Where the table is in the sheet, and its column names. */
export interface HeaderLayout {
  /** Position of the header row (the sub-heading row's position when the header has two rows). */
  lastHeaderRow: number;
  firstHeaderRow: number;
  /** First sheet column (0-based) of the table. */
  left: number;
  columns: string[];
  warnings: string[];
}

function isNumericText(text: string): boolean {
  return /^[-+]?(\d[\d ,.]*)?\d(e[-+]?\d+)?%?$/i.test(text.trim());
}

const isYear = (row: SheetRow, c: number) => (row.kinds[c] === Kind.Number || row.kinds[c] === Kind.Text) && /^(1[89]|2[01])\d\d$/.test(row.values[c]!.trim());

/**
 * A cell a heading could be: text that is not a number, a year or a date (`Country | 2019 | 2020`,
 * a month per column). A header row must also hold some real text (`looksLikeHeader`).
 */
function isHeadingCell(row: SheetRow, c: number): boolean {
  const kind = row.kinds[c];
  if (kind === Kind.Text) return !isNumericText(row.values[c]!) || isYear(row, c);
  return kind === Kind.Date || (kind === Kind.Number && isYear(row, c));
}

/** A cell only data could be: a number that is not a year, a date, a boolean. */
const isDataCell = (row: SheetRow, c: number) =>
  row.kinds[c] === Kind.Date || row.kinds[c] === Kind.Boolean || (row.kinds[c] === Kind.Number && !isYear(row, c)) || (row.kinds[c] === Kind.Text && isNumericText(row.values[c]!) && !isYear(row, c));

const isTextCell = (row: SheetRow, c: number) => row.kinds[c] === Kind.Text && !isNumericText(row.values[c]!);

function lastFilled(row: SheetRow): number {
  for (let c = row.values.length - 1; c >= 0; c--) if (row.values[c] !== null && row.values[c] !== undefined) return c;
  return -1;
}

function firstFilled(row: SheetRow): number {
  for (let c = 0; c < row.values.length; c++) if (row.values[c] !== null && row.values[c] !== undefined) return c;
  return -1;
}

const filled = (row: SheetRow, c: number) => row.values[c] !== null && row.values[c] !== undefined;

/** Columns of `row` a merge covers without being its top-left cell. */
function coveredColumns(row: SheetRow, merges: readonly Merge[]): Set<number> {
  const out = new Set<number>();
  for (const m of merges) {
    if (m.top > row.position || m.bottom < row.position) continue;
    for (let c = m.left; c <= m.right; c++) if (!(m.top === row.position && c === m.left)) out.add(c);
  }
  return out;
}

/**
 * Whether `row` looks like a header for the rows `below` it: at least two cells (one when the data
 * is one column wide), mostly headings (text, or years beside some text), and spanning — counting
 * merged cells — at least half of the width the data has.
 */
function looksLikeHeader(row: SheetRow, below: readonly SheetRow[], merges: readonly Merge[]): boolean {
  let count = 0;
  let headings = 0;
  let texts = 0;
  for (let c = 0; c < row.values.length; c++) {
    if (!filled(row, c)) continue;
    count++;
    if (isHeadingCell(row, c)) headings++;
    if (isTextCell(row, c)) texts++;
  }
  if (texts === 0 || headings < count * 0.75) return false;
  const dataRight = below.length > 0 ? Math.max(...below.map(lastFilled)) : lastFilled(row);
  const dataLeft = below.length > 0 ? Math.min(...below.map(firstFilled)) : firstFilled(row);
  const dataWidth = Math.max(dataRight - Math.min(dataLeft, firstFilled(row)) + 1, 1);
  if (count < Math.min(2, dataWidth)) return false;
  const covered = coveredColumns(row, merges);
  let span = 0;
  for (let c = Math.min(dataLeft, firstFilled(row)); c <= Math.max(dataRight, lastFilled(row)); c++) if (filled(row, c) || covered.has(c)) span++;
  return span >= dataWidth * 0.5;
}

/**
 * Whether the row under the header holds sub-headings (a two-row header). It does when a merge
 * in the header row reaches down into it; or when its values are all headings and all sit under
 * a group: a header cell merged across several columns, or one followed by blank header cells
 * (a heading centred across the columns, `Population |      ` over `2020 | 2021`). Under blank
 * groups of that second kind, the row after must read as data (numbers, dates, booleans) for the row to
 * count as sub-headings; a value under a single-column heading always makes it data. A heading
 * under a blank header cell outside any group (the first column's name on the lower row) goes with
 * the sub-headings, as long as some sub-heading sits under a group.
 */
function hasSubHeadings(header: SheetRow, next: SheetRow | undefined, after: SheetRow | undefined, merges: readonly Merge[]): boolean {
  if (!next || next.position !== header.position + 1) return false;
  const own = merges.filter((m) => m.top <= header.position && m.bottom >= header.position);
  if (own.some((m) => m.top === header.position && m.bottom >= next.position)) return true;
  const width = Math.max(next.values.length, after?.values.length ?? 0, header.values.length);
  const coveredAt = (c: number) => own.find((m) => m.left <= c && m.right >= c);
  /** The group each column is in: `merged` for a merge, `blank` for blanks after a heading. */
  const group: ('merged' | 'blank' | undefined)[] = [];
  for (let c = 0; c < width; c++) {
    const merge = coveredAt(c);
    if (merge) {
      group[c] = merge.right > merge.left ? 'merged' : undefined;
    } else if (filled(header, c)) {
      let end = c;
      while (end + 1 < width && !filled(header, end + 1) && !coveredAt(end + 1)) end++;
      for (let k = c; k <= end; k++) group[k] = end > c ? 'blank' : undefined;
      c = end;
    }
  }
  let merged = false;
  let any = false;
  for (let c = 0; c < next.values.length; c++) {
    if (!filled(next, c)) continue;
    if (!isHeadingCell(next, c)) return false;
    // A heading under a blank header cell outside any group is the column's only name (`Region`
    // on the lower row, left of the groups); under a heading of its own column it would be data.
    if (!group[c] && (filled(header, c) || coveredAt(c))) return false;
    if (group[c]) any = true;
    if (group[c] === 'merged') merged = true;
  }
  if (!any) return false;
  if (merged) return true;
  if (!after) return false;
  for (let c = 0; c < next.values.length; c++) if (filled(next, c) && filled(after, c) && isDataCell(after, c)) return true;
  return false;
}

/**
 * Whether `above`, the row right over the header found, is the upper row of a two-row header: all
 * headings (years count), not a title (two cells or more, or one that does not sit over the
 * table's first column), and the header row below reads as its sub-headings — or a row of years
 * or dates only, which no header is without the row below.
 */
function isGroupRowAbove(above: SheetRow, header: SheetRow, after: SheetRow | undefined, merges: readonly Merge[]): boolean {
  if (above.position !== header.position - 1) return false;
  let count = 0;
  for (let c = 0; c < above.values.length; c++) {
    if (!filled(above, c)) continue;
    if (!isHeadingCell(above, c)) return false;
    count++;
  }
  if (count === 0 || lastFilled(above) > lastFilled(header)) return false;
  if (count < 2 && firstFilled(above) <= firstFilled(header)) return false;
  // Years or dates alone cannot be a header row by themselves (`2018 2018 2019` over `Q3 Q4 Q1`):
  // right above the header, they are its upper row even without groups.
  let text = false;
  for (let c = 0; c < above.values.length; c++) if (filled(above, c) && isTextCell(above, c)) text = true;
  if (!text && count >= 2) return true;
  return hasSubHeadings(above, header, after, merges);
}

/** Header rows at most, the header row included. */
const MAX_HEADER_ROWS = 8;

/**
 * The rows that continue a header written over several lines (`Vollendetes` / `Alter` /
 * `in Jahren`, a symbol row `x | q x | p x`), from `window[from]` on: consecutive rows of text
 * only, each value over a column whose first rows below hold data (numbers, dates) and no text —
 * where text can only be a heading; under group headings (a two-row header), also a row naming
 * the columns themselves — text over text columns too — when most of its names sit over figures
 * and none is a missing-value marker. Stops at the first row that could be data.
 */
function stackedRows(window: readonly SheetRow[], from: number, underGroups: boolean): SheetRow[] {
  const candidates: SheetRow[] = [];
  for (let i = from; i < window.length && candidates.length + (from > 0 ? 1 : 0) < MAX_HEADER_ROWS; i++) {
    const row = window[i]!;
    const previous = window[i - 1]!;
    if (row.position !== previous.position + 1) break;
    let any = false;
    let textOnly = true;
    for (let c = 0; c < row.values.length; c++) {
      if (!filled(row, c)) continue;
      any = true;
      if (!isTextCell(row, c)) textOnly = false;
    }
    if (!any || !textOnly) break;
    candidates.push(row);
  }
  if (candidates.length === 0) return [];
  const body = window.slice(from + candidates.length, from + candidates.length + DATA_SAMPLE);
  if (body.length === 0) return [];
  const dataOnly = (c: number) => body.some((r) => filled(r, c)) && body.every((r) => !filled(r, c) || isDataCell(r, c));
  const out: SheetRow[] = [];
  for (const row of candidates) {
    let overData = 0;
    let overText = 0;
    let marker = false;
    for (let c = 0; c < row.values.length; c++) {
      if (!filled(row, c)) continue;
      if (dataOnly(c)) overData++;
      else overText++;
      if (isMissingMarker(headingText(row.values[c]))) marker = true;
    }
    // every value over figures; or, under group headings, a row naming every column (`Country`
    // over names, `#` and `%` over figures) with most of its names over figures — a data row has
    // figures there, or missing-value markers (`n/a`, `...`)
    const naming = underGroups && !marker && overData >= 2 && overData >= overText;
    if (overText > 0 && !naming) return out;
    out.push(row);
  }
  return out;
}

/** Heading parts top to bottom as one name; a word broken with a hyphen at a line end is joined (`Sterbe-` `wahrscheinlichkeit`). */
function joinHeadingParts(parts: readonly string[]): string {
  let out = '';
  for (const part of parts) {
    if (!part) continue;
    if (out && /\p{L}-$/u.test(out) && /^\p{Ll}{3,}/u.test(part)) out = out.slice(0, -1) + part;
    else out = out ? `${out} ${part}` : part;
  }
  return out;
}

/** Heading text on one line: runs of spaces and line breaks become one space. */
const headingText = (text: string | null | undefined) => (text ?? '').replace(/\s+/g, ' ').trim();

/** Names unique without regard to case, as staging needs them: a repeat gets `_2`, `_3`… */
function distinct(names: readonly string[]): { names: string[]; renamed: [string, string][] } {
  const seen = new Set<string>();
  const renamed: [string, string][] = [];
  const out = names.map((base) => {
    let name = base;
    for (let n = 2; seen.has(name.toLowerCase()); n++) name = `${base}_${n}`;
    seen.add(name.toLowerCase());
    if (name !== base) renamed.push([base, name]);
    return name;
  });
  return { names: out, renamed };
}

const quoteList = (names: readonly string[]) => names.map((n) => `"${n}"`).join(', ');

function rowRange(first: number, last: number): string {
  return first === last ? `row ${first}` : `rows ${first}–${last}`;
}

/**
 * Choose the header among the first rows of a sheet and name the columns. `window` holds the
 * sheet's first non-empty rows; `merges` the merged ranges among them.
 */
export function layoutHeader(file: string, window: readonly SheetRow[], merges: readonly Merge[]): HeaderLayout {
  if (window.length === 0) throw new ReadError(`${file}: the sheet is empty`, { file });
  let index = -1;
  for (let i = 0; i < Math.min(window.length, HEADER_CANDIDATES); i++) {
    if (looksLikeHeader(window[i]!, window.slice(i + 1, i + 1 + DATA_SAMPLE), merges)) {
      index = i;
      break;
    }
  }
  if (index < 0) {
    const first = window[0]!.position;
    throw new ReadError(
      `${file}: no header row found (looked at rows ${first}–${window[Math.min(window.length, HEADER_CANDIDATES) - 1]!.position} for a row of column names; the sheet seems to hold only data)`,
      { file, line: first },
    );
  }
  // Group headings of years only (`2019`, `2020` above `Men`, `Women`) have no text: the row with
  // the text was found; the row right above it may still be its upper half.
  const above = window[index - 1];
  if (above && isGroupRowAbove(above, window[index]!, window[index + 1], merges)) index--;
  const header = window[index]!;
  const next = window[index + 1];
  const twoRows = hasSubHeadings(header, next, window[index + 2], merges);
  const sub = twoRows ? next : undefined;
  const stacked = stackedRows(window, index + (sub ? 2 : 1), sub !== undefined);
  const headerRows = [header, ...(sub ? [sub] : []), ...stacked];
  const body = window.slice(index + headerRows.length);

  const coveredByMerge = (row: number, c: number) => merges.find((m) => m.top <= row && m.bottom >= row && m.left <= c && m.right >= c);
  const mergeRight = Math.max(-1, ...merges.filter((m) => m.top <= header.position && m.bottom >= header.position).map((m) => m.right));
  const left = Math.min(...[...headerRows, ...body].map(firstFilled).filter((c) => c >= 0));
  const right = Math.max(...[...headerRows, ...body].map(lastFilled), mergeRight);

  const warnings: string[] = [];
  const raw: string[] = [];
  const mergedSpans: string[] = [];
  const blanks: number[] = [];
  let groupFill = '';
  for (let c = left; c <= right; c++) {
    let top = headingText(header.values[c]);
    const merge = coveredByMerge(header.position, c);
    if (!top && merge && merge.top <= header.position) {
      top = headingText(window.find((r) => r.position === merge.top)?.values[merge.left]);
    }
    let name: string;
    if (sub) {
      // Without a merge, a blank group cell belongs to the group on its left (what "center across
      // selection" or a forgotten merge shows), as long as the sub-row names the column.
      let subText = merge && merge.top === header.position && merge.bottom >= sub.position ? '' : headingText(sub.values[c]);
      // a sub-heading merged across its columns names each of them (`Phase 1` over `#` and `%`)
      const subMerge = !subText && stacked.length > 0 ? coveredByMerge(sub.position, c) : undefined;
      if (subMerge && subMerge.top === sub.position) subText = headingText(sub.values[subMerge.left]);
      if (top) groupFill = top;
      else if (!merge && subText && c > left) top = groupFill;
      else groupFill = '';
      name = top && subText && top !== subText ? `${top} ${subText}` : top || subText;
    } else {
      name = top;
    }
    if (stacked.length > 0) name = joinHeadingParts([name, ...stacked.map((r) => headingText(r.values[c]))]);
    if (!name) {
      blanks.push(raw.length + 1);
      name = `column_${raw.length + 1}`;
    }
    raw.push(name);
  }
  for (const m of merges) {
    if (m.top !== header.position || m.right <= m.left || m.left < left) continue;
    mergedSpans.push(`${cellRef(m.top, m.left)}:${cellRef(m.bottom, m.right)}`);
  }
  const { names, renamed } = distinct(raw);

  const skipped = window.slice(0, index);
  if (skipped.length > 0) {
    const texts = skipped.flatMap((r) => r.values.filter((v): v is string => v !== null && v !== undefined)).slice(0, 3);
    warnings.push(
      `${file}: ${rowRange(window[0]!.position, header.position - 1)} above the header (row ${header.position}) skipped as a title${texts.length ? ` (${quoteList(texts.map((t) => headingText(t).slice(0, 60)))})` : ''}`,
    );
  }
  const lastHeader = headerRows[headerRows.length - 1]!;
  if (stacked.length > 0) {
    warnings.push(`${file}: the header spans rows ${header.position}–${lastHeader.position} (headings written over several lines); columns named ${quoteList(names)}`);
  } else if (sub) {
    warnings.push(`${file}: the header spans rows ${header.position}–${sub.position} (group headings above sub-headings); columns named ${quoteList(names)}`);
  } else if (mergedSpans.length > 0) {
    warnings.push(`${file}: merged header cells ${mergedSpans.join(', ')}; columns named ${quoteList(names)}`);
  }
  if (blanks.length > 0) warnings.push(`${file}: blank heading in ${blanks.map((n) => `column ${n}`).join(', ')} (row ${header.position}); named ${quoteList(blanks.map((n) => names[n - 1]!))}`);
  const mergedTexts = new Set(merges.filter((m) => m.top === header.position).map((m) => headingText(header.values[m.left])));
  const repeats = renamed.filter(([from]) => !mergedTexts.has(from));
  if (repeats.length > 0) warnings.push(`${file}: repeated headings renamed: ${repeats.map(([from, to]) => `"${from}" → "${to}"`).join(', ')}`);
  return { firstHeaderRow: header.position, lastHeaderRow: lastHeader.position, left, columns: names, warnings };
}

// ---------------------------------------------------------------------------------------------
// The table

/**
 * Whether merged cells could change the layout found without them: a merge leaves blanks in the
 * cells it covers, so it can only matter where a row down to the one under the header has a gap
 * between values, or a header row stops short of the table's last column. (Finding an .xlsx
 * sheet's merges means inflating the whole sheet once more: skipped when they cannot matter.)
 */
function mergesMayMatter(window: readonly SheetRow[], layout: HeaderLayout): boolean {
  const right = layout.left + layout.columns.length - 1;
  const below = window.find((r) => r.position > layout.lastHeaderRow)?.position ?? Infinity;
  for (const row of window) {
    if (row.position > below) break;
    const first = firstFilled(row);
    const last = lastFilled(row);
    for (let c = first + 1; c < last; c++) if (!filled(row, c)) return true;
    if (row.position >= layout.firstHeaderRow && row.position <= layout.lastHeaderRow && last < right) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Notes under the table

/**
 * How a note under a table starts: `Source: …`, `Note:`, `(1) …`, `1. …`, `* …`, `©…`, in the
 * languages of the portals the project reads (English, French, Dutch, German, Spanish).
 */
const NOTE_START =
  /^\s*(?:sources?|notes?|nb|n\.b\.|footnotes?|remarques?|champ|lecture|quellen?|anmerkungen?|fu(?:ß|ss)noten?|hinweise?|bronn?(?:en)?|opmerkingen?|toelichting|fuentes?|notas?|\*+|©|\(\s*[0-9a-z]{1,3}\s*\)|\[\s*[0-9a-z]{1,3}\s*\]|[0-9]{1,2}[.)]\s|[a-z]\)\s)/i;

/** A footnote's mark in a cell of its own: `1`, `(2)`, `[3]`, `a`, `*`, `†`. */
const FOOTNOTE_MARK = /^(?:\d{1,2}|\(\s*\w{1,2}\s*\)|\[\s*\w{1,2}\s*\]|[a-z]|\*{1,3}|[†‡§])$/i;

/** Rows held back as notes at most; past this the rows were data after all. */
const MAX_HELD_NOTES = 10_000;
const NOTHING_HELD: readonly SheetRow[] = [];

/**
 * Tells the notes under a table (sources, footnotes, a licence) from its rows. A note is a row of
 * text only, in the table's first column (or left of it), in one cell — or two when it starts like
 * a note (`Source:` | `INSEE`), or a footnote's mark and its text (`1` | `…`) unless rows of data
 * above are so shaped (a code and a name: then such rows are data). The first note of a run comes after a blank row, or starts like a
 * note; the rows after it that look the same join the run. A run is held back: when a row of data
 * follows, the run was rows after all (a section heading, a name with no values) and is handed
 * back; a run that reaches the end of the sheet is the notes, not rows. Tables of one column have
 * no notes (every row is one cell of text).
 */
export class NotesBelow {
  private held: SheetRow[] = [];
  private previous = -1;
  /** Kinds of mark (see `markKind`) that begin rows of data: rows so shaped are never notes. */
  private readonly bodyMarks = new Set<string>();

  constructor(
    private readonly left: number,
    private readonly width: number,
  ) {}

  /**
   * Whether the row is text only, at the table's left edge (or one column in), one cell — or two:
   * a note's first words and the rest (`Source:` | `INSEE`), or a footnote's mark and its text
   * (`1` | `When downloading…`). Cells of spaces only count as empty.
   */
  private noteShaped(row: SheetRow): boolean {
    let count = 0;
    let first = -1;
    let second = -1;
    for (let c = 0; c < row.values.length; c++) {
      if (!filled(row, c) || row.values[c]!.trim() === '') continue;
      if (++count > 2) return false;
      if (first < 0) first = c;
      else second = c;
    }
    if (first < 0 || first > this.left + 1) return false;
    const text = (c: number) => row.kinds[c] === Kind.Text && !isNumericText(row.values[c]!);
    if (count === 1) return text(first);
    const mark = this.markKind(row);
    // A mark and its text are a footnote only when the table's rows are not themselves shaped so
    // (codes 1, 2… or A, B… and a name): then such a row below a gap is one more row of data.
    if (mark !== undefined) return !this.bodyMarks.has(mark) && text(second);
    return text(first) && text(second) && NOTE_START.test(row.values[first]!);
  }

  /**
   * When the row's first value is a footnote mark (`1`, `(a)`, `*`) followed by a text: the mark's
   * kind (`n` a number, `d` digits as text, `t` other text); otherwise undefined.
   */
  private markKind(row: SheetRow): string | undefined {
    let first = -1;
    for (let c = 0; c < row.values.length; c++) {
      if (!filled(row, c) || row.values[c]!.trim() === '') continue;
      if (first >= 0) return row.kinds[c] === Kind.Text && !isNumericText(row.values[c]!) ? this.kindOfMark(row, first) : undefined;
      first = c;
    }
    return undefined;
  }

  private kindOfMark(row: SheetRow, c: number): string | undefined {
    const value = row.values[c]!.trim();
    if (!FOOTNOTE_MARK.test(value)) return undefined;
    if (row.kinds[c] === Kind.Number) return 'n';
    if (row.kinds[c] !== Kind.Text) return undefined;
    return /^\d+$/.test(value) ? 'd' : 't';
  }

  /** Remembers the shape of a row of data: a mark-like first value and a text (`1` | `North`). */
  private learn(row: SheetRow): void {
    const mark = this.markKind(row);
    if (mark !== undefined) this.bodyMarks.add(mark);
  }

  /** `'held'` when the row may be a note; otherwise the rows held before it, which were data (the row itself is data). */
  take(row: SheetRow): 'held' | readonly SheetRow[] {
    const gap = this.previous >= 0 && row.position > this.previous + 1;
    this.previous = row.position;
    if (this.width >= 2 && this.noteShaped(row)) {
      const first = row.values.find((v) => v !== null && v !== undefined && v.trim() !== '')!;
      if (this.held.length > 0 || gap || NOTE_START.test(first)) {
        if (this.held.length < MAX_HELD_NOTES) {
          this.held.push(row);
          return 'held';
        }
      }
    }
    this.learn(row);
    if (this.held.length === 0) return NOTHING_HELD;
    const out = this.held;
    this.held = [];
    for (const earlier of out) this.learn(earlier);
    return out;
  }

  /** The notes: the rows still held at the end of the sheet. */
  end(): SheetRow[] {
    const out = this.held;
    this.held = [];
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Which sheet holds the table

/**
 * Sheet names that say the sheet is about the data, not the data: only a tie-breaker, a sheet is
 * judged by what it holds first.
 */
const NOTICE_NAME =
  /^\s*(?:notes?|notice|read ?me|metadata|meta|about|info(?:rmation)?|contents?|table of contents|toc|index|cover(?: ?sheet| ?page)?|title|definitions?|glossary|methodology|sources?|licen[cs]e|documentation|explanatory notes|sommaire|avertissement|lisez[- ]moi|m[ée]tadonn[ée]es|d[ée]finitions?|m[ée]thodologie|pr[ée]sentation|inhalt|inhaltsverzeichnis|hinweise|erl[äa]uterungen|impressum|toelichting|inhoud|inleiding|verklaring)\s*$/i;

/** What reading a sheet's first rows showed of it. */
export interface SheetAssessment {
  /**
   * 3: a table (a header, then rows of one shape, numbers or three columns or more); 2: such a
   * table in a sheet whose name says notes or contents; 1: something like a table; 0: nothing.
   */
  rank: 0 | 1 | 2 | 3;
  /** Why, in a few words, for the note that says which sheet was read. */
  why: string;
}

/** Judge a sheet by its first rows: does it hold a table, or a notice, a list of contents, a cover? */
export async function assessSheet(source: SheetSource, sheetName: string): Promise<SheetAssessment> {
  const window = await readWindow(source);
  if (window.length === 0) return { rank: 0, why: 'empty' };
  let layout: HeaderLayout;
  try {
    layout = await layoutOf(source, window);
  } catch (error) {
    if (error instanceof ReadError) return { rank: 0, why: 'no header row' };
    throw error;
  }
  const width = layout.columns.length;
  const right = layout.left + width - 1;
  const notes = new NotesBelow(layout.left, width);
  const body: SheetRow[] = [];
  for (const row of window) {
    if (row.position <= layout.lastHeaderRow) continue;
    const held = notes.take(row);
    if (held !== 'held') body.push(...held, row);
  }
  const need = Math.max(2, Math.ceil(width / 3));
  let shaped = 0;
  let data = false;
  for (const row of body) {
    let count = 0;
    for (let c = layout.left; c <= right; c++) {
      if (!filled(row, c)) continue;
      count++;
      if (isDataCell(row, c)) data = true;
    }
    if (count >= need) shaped++;
  }
  const what = `header in row ${layout.firstHeaderRow}, ${width} column${width === 1 ? '' : 's'}, ${shaped} row${shaped === 1 ? '' : 's'} of that shape in the first ${body.length}`;
  if (width < 2 || body.length === 0) return { rank: 1, why: width < 2 ? 'text in one column' : 'a header without rows' };
  if (shaped < Math.min(3, body.length) || shaped < body.length / 2) return { rank: 1, why: `no rows of one shape: ${what}` };
  if (!data && width < 3) return { rank: 1, why: `two columns of text, no figures: ${what}` };
  if (NOTICE_NAME.test(sheetName)) return { rank: 2, why: `a table, but its name says notes or contents: ${what}` };
  return { rank: 3, why: what };
}

/** A sheet the choice may fall on. */
export interface SheetCandidate {
  name: string;
  source(): SheetSource;
}

/**
 * With no sheet named: the sheet that holds the table. The sheets are judged in tab order by their
 * first rows, and the first that holds a table (`assessSheet` rank 3) is read — the first sheet in
 * the common case, where nothing more is read. When none does, the first of the best rank. Returns
 * the chosen index and, for a workbook of several sheets, a note saying which and why. `known`
 * holds the assessments of the first candidates when the caller has made them already.
 */
export async function chooseSheet(file: string, candidates: readonly SheetCandidate[], known: readonly SheetAssessment[] = []): Promise<{ index: number; note?: string }> {
  if (candidates.length <= 1) return { index: 0 };
  const seen: { name: string; assessment: SheetAssessment }[] = [];
  let best = 0;
  for (let i = 0; i < candidates.length; i++) {
    const candidate = candidates[i]!;
    const assessment = known[i] ?? (await assessSheet(candidate.source(), candidate.name));
    seen.push({ name: candidate.name, assessment });
    if (assessment.rank > seen[best]!.assessment.rank) best = i;
    if (assessment.rank === 3) break;
  }
  const chosen = seen[best]!;
  const passed = seen.filter((_, i) => i !== best && i < best);
  const others = candidates.length - 1 - passed.length;
  const reason =
    chosen.assessment.rank === 3
      ? best === 0
        ? `the first sheet holds a table (${chosen.assessment.why})`
        : `the first sheet that holds a table (${chosen.assessment.why}); passed over ${passed.map((s) => `"${s.name}" (${s.assessment.why})`).join(', ')}`
      : `no sheet holds a clear table; read the first that comes closest (${chosen.assessment.why})`;
  return {
    index: best,
    note: `${file}: no sheet named: read sheet "${chosen.name}" of ${candidates.length}: ${reason}${others > 0 && chosen.assessment.rank === 3 ? `; name another with read.sheet or --sheet` : ''}`,
  };
}

/** The first non-empty rows of a sheet (up to `WINDOW_ROWS`). */
async function readWindow(source: SheetSource): Promise<SheetRow[]> {
  const window: SheetRow[] = [];
  outer: for await (const batch of source.rows()) {
    for (const row of batch) {
      window.push(row);
      if (window.length >= WINDOW_ROWS) break outer;
    }
  }
  return window;
}

/** The header of a sheet from its first rows, asking the source for merged ranges only when they could change it. */
async function layoutOf(source: SheetSource, window: readonly SheetRow[]): Promise<HeaderLayout> {
  let layout: HeaderLayout | undefined;
  try {
    layout = layoutHeader(source.file, window, []);
  } catch (error) {
    if (window.length === 0) throw error; // without a header, merged cells may still make one
  }
  if (!layout || mergesMayMatter(window, layout)) layout = layoutHeader(source.file, window, await source.merges(window[window.length - 1]!.position));
  return layout;
}

/**
 * Read the first rows of a sheet, lay out its header, and return the `ReadTable` whose `rows()`
 * reads the sheet again from the start (no file stays open between the two) and yields the rows
 * below the header. Empty rows are left out; positions stay the sheet's row numbers; the notes
 * under the table (`NotesBelow`) are left out with a warning. `notes` go first in the warnings
 * (which sheet was chosen, and why).
 */
export async function sheetTable(source: SheetSource, notes: readonly string[] = []): Promise<ReadTable> {
  const window = await readWindow(source);
  const layout = await layoutOf(source, window);
  const { left, lastHeaderRow } = layout;
  const columns = [...layout.columns];
  const warnings = [...notes, ...layout.warnings];
  const { file } = source;
  /** Per column: its values are all text cells (`text`), some of them digits (`digits`), or not (`other`). */
  const textCells: ('text' | 'digits' | 'other' | undefined)[] = [];
  let complete = false;

  async function* rows(): AsyncGenerator<ReadRow> {
    let errors = 0;
    let firstError: string | undefined;
    let outside = 0;
    let firstOutside: string | undefined;
    const added: string[] = [];
    const notesBelow = new NotesBelow(left, columns.length);
    textCells.length = 0;
    complete = false;
    for await (const batch of source.rows()) {
      for (const row of batch) {
        if (row.position <= lastHeaderRow) continue;
        const held = notesBelow.take(row);
        if (held === 'held') continue;
        for (const earlier of held) {
          const out = shape(earlier);
          if (out) yield out;
        }
        const out = shape(row);
        if (out) yield out;
      }
    }
    complete = true;
    const dropped = notesBelow.end();
    if (dropped.length > 0) {
      const texts = dropped.slice(0, 3).map((r) => headingText(r.values.filter((v) => v !== null && v !== undefined).join(' ')).slice(0, 60));
      warnings.push(
        `${file}: ${rowRange(dropped[0]!.position, dropped[dropped.length - 1]!.position)} below the table read as notes, not rows (${dropped.length} line${dropped.length === 1 ? '' : 's'} of text after the data: ${quoteList(texts)}${dropped.length > 3 ? ', …' : ''})`,
      );
    }
    if (errors > 0) warnings.push(`${file}: ${errors} cell${errors === 1 ? '' : 's'} with an error value read as empty (first: ${firstError})`);
    if (added.length > 0) warnings.push(`${file}: values right of the header; added column${added.length === 1 ? '' : 's'} ${added.join(', ')}`);
    if (outside > 0) warnings.push(`${file}: ${outside} value${outside === 1 ? '' : 's'} left of the table's first column ignored (first in ${firstOutside})`);
    for (const note of source.notes?.() ?? []) warnings.push(note);

    function shape(row: SheetRow): ReadRow | undefined {
      const { values } = row;
      if (row.hasError) {
        for (let c = 0; c < values.length; c++) {
          if (row.kinds[c] !== Kind.Error) continue;
          if (c >= left) {
            errors++;
            firstError ??= `${values[c]} in ${cellRef(row.position, c)}`;
          }
          values[c] = null;
        }
        while (values.length > 0 && values[values.length - 1] === null) values.pop();
      }
      for (let c = left; c < values.length; c++) {
        const v = values[c];
        if (v === null || v === undefined || v.trim() === '') continue;
        const seen = textCells[c - left];
        if (row.kinds[c] !== Kind.Text) textCells[c - left] = 'other';
        else if (seen !== 'other' && isNumericText(v)) textCells[c - left] = 'digits';
        else textCells[c - left] ??= 'text';
      }
      let out = values;
      if (left > 0) {
        for (let c = 0; c < left && c < values.length; c++) {
          if (values[c] === null || values[c] === undefined) continue;
          outside++;
          firstOutside ??= cellRef(row.position, c);
        }
        out = values.slice(left);
      }
      if (out.length > columns.length) {
        // named in one pass: one by one, a row reaching column XFD took seconds per thousand columns
        const from = columns.length;
        const names = distinct([...columns, ...Array.from({ length: out.length - from }, (_, i) => `column_${from + i + 1}`)]).names;
        for (const name of names.slice(from)) {
          columns.push(name);
          added.push(`${name} (first in row ${row.position})`);
        }
      }
      let any = false;
      for (let c = 0; c < out.length; c++) {
        if (out[c] === undefined) out[c] = null;
        else if (out[c] !== null && !any && out[c]!.trim() !== '') any = true;
      }
      // A row whose only values were errors, spaces, or lay left of the table, holds nothing to load.
      return any ? { values: out, position: row.position } : undefined;
    }
  }

  async function* rowsThenClose(): AsyncGenerator<ReadRow> {
    try {
      yield* rows();
    } finally {
      source.close?.();
    }
  }

  // a column whose every value is a text cell, digits included, is declared text by the file (as
  // ogr2ogr and pandas read the cell types): `24380613` stored as text stays a code
  const declaredTypes = () => columns.map((_, c) => (complete && textCells[c] === 'digits' ? ('text' as const) : undefined));
  return { name: file, format: source.format, columns, unit: 'row', warnings, rows: rowsThenClose, declaredTypes };
}

/** The sheet names of a workbook, in tab order (hidden sheets included). */
export async function listSheets(path: string, format: 'xlsx' | 'xls' | 'ods', name: string = path): Promise<string[]> {
  if (format === 'xls' || (format === 'xlsx' && (await isOle2(path)))) return (await import('./xls.ts')).listXlsSheets(path, name);
  if (format === 'xlsx') return (await import('./xlsx.ts')).listXlsxSheets(path, name);
  return (await import('./ods.ts')).listOdsSheets(path, name);
}
