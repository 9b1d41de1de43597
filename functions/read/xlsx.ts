/**
 * Excel workbooks (.xlsx, Office Open XML): one sheet as a `ReadTable`.
 *
 * Read with a SAX parser (saxes) over the zip members (yauzl), not with exceljs's streaming
 * `WorkbookReader`, because that reader, in exceljs 4.4:
 * - reads the zip front to back, so a sheet stored before `sharedStrings.xml` (exceljs itself
 *   writes them in that order) is first copied to a temporary file; on a 200,000-row × 10-column
 *   sheet its RSS reached 276 MB (151 MB at 50,000 rows): memory grew with the sheet;
 * - skips `<mergeCell>` entirely, so merged header cells cannot be named;
 * - turns boolean and error results of formulas into numbers (`1`, `NaN`), keeps only the last run
 *   of a rich inline string, and only finds sheets named `xl/worksheets/sheetN.xml`.
 * yauzl opens members by the zip's central directory, so the small parts (workbook, relationships,
 * styles, shared strings) are read first wherever they sit, and the sheet streams once.
 *
 * Memory: one chunk of sheet XML and the rows parsed from it, plus the shared-string table (a
 * cell refers to it by index, so it must be at hand): in memory when small, otherwise written to
 * an unlinked temporary file and read back by offset through a small cache (`SpilledStrings`).
 */
import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type DateStyle,
  Kind,
  type Merge,
  type SheetRow,
  type SheetSource,
  type XmlTag,
  type Zip,
  cellRef,
  chooseSheet,
  columnLetters,
  putCell,
  builtInDateStyle,
  dateStyleOfFormat,
  isOle2,
  localName,
  numberCell,
  openZip,
  parseXml,
  pickSheet,
  sheetTable,
} from './sheet.ts';
import { readLimits, type ReadLimits } from '../common/limits.ts';
import { beyondLimit, ReadError, type ReadOptions, type ReadTable } from './types.ts';
import { readXls } from './xls.ts';

const REL_OFFICE_DOCUMENT = /\/officeDocument$/;
const REL_WORKSHEET = /\/(worksheet|macrosheet|dialogsheet)$/;
const REL_CHARTSHEET = /\/chartsheet$/;
const REL_SHARED_STRINGS = /\/sharedStrings$/;
const REL_STYLES = /\/styles$/;

interface XlsxSheet {
  name: string;
  /** Zip member of the sheet's XML; `undefined` for a chart sheet. */
  part?: string;
  hidden: boolean;
}

/** What every sheet of the workbook needs to turn cells into text. */
interface XlsxBook {
  sheets: XlsxSheet[];
  /** Rebuilt by `rows()` after `close()` (a spilled table is gone once the table's rows are read). */
  sharedStrings: SharedStrings;
  sharedStringsPart?: string;
  /** Date style of each cell style (`s` attribute), `undefined` for a number. */
  dateStyles: (DateStyle | undefined)[];
  date1904: boolean;
  limits: ReadLimits;
}

/**
 * Read one sheet of an .xlsx workbook (default: the first visible sheet that holds a table, see
 * `chooseSheet`). An Excel 97–2003 file
 * named .xlsx (an OLE2 compound file, not a zip) is read as the .xls it is.
 */
export async function readXlsx(path: string, name: string, opts: ReadOptions = {}): Promise<ReadTable> {
  if (await isOle2(path)) return readXls(path, name, opts);
  const book = await readBook(path, name, readLimits(opts.limits));
  try {
    const tables = book.sheets.filter((s): s is XlsxSheet & { part: string } => !s.hidden && s.part !== undefined);
    let sheet: XlsxSheet;
    let note: string | undefined;
    if (opts.sheet === undefined && tables.length > 0) {
      const choice = await chooseSheet(
        name,
        tables.map((s) => ({ name: s.name, source: () => xlsxSource(path, name, `${name}#${s.name}`, s.part, book) })),
      );
      sheet = tables[choice.index]!;
      note = choice.note;
    } else {
      const visible = book.sheets.find((s) => !s.hidden);
      sheet = opts.sheet === undefined && visible ? visible : pickSheet(book.sheets, opts.sheet, name);
    }
    const file = `${name}#${sheet.name}`;
    if (!sheet.part) throw new ReadError(`${file}: a chart sheet, not a table`, { file });
    return await sheetTable(xlsxSource(path, name, file, sheet.part, book), note ? [note] : []);
  } catch (error) {
    book.sharedStrings.close();
    throw error;
  }
}

/** The names of an .xlsx workbook's sheets, in tab order (hidden ones included). */
export async function listXlsxSheets(path: string, name: string = path): Promise<string[]> {
  const zip = await openXlsx(path, name);
  try {
    return (await readStructure(zip, name)).sheets.map((s) => s.name);
  } finally {
    zip.close();
  }
}

async function openXlsx(path: string, name: string, limits?: ReadLimits): Promise<Zip> {
  if (await isOle2(path)) {
    throw new ReadError(`${name}: an Excel 97–2003 or password-protected workbook, not an .xlsx one`, { file: name });
  }
  return openZip(path, name, '.xlsx workbook', limits);
}

async function readBook(path: string, name: string, limits: ReadLimits): Promise<XlsxBook> {
  const zip = await openXlsx(path, name, limits);
  try {
    const structure = await readStructure(zip, name);
    const part = structure.sharedStringsPart && zip.has(structure.sharedStringsPart) ? structure.sharedStringsPart : undefined;
    const sharedStrings = part ? await readSharedStrings(zip, part, name, limits) : new MemoryStrings([]);
    const dateStyles = structure.stylesPart && zip.has(structure.stylesPart) ? await readDateStyles(zip, structure.stylesPart, name) : [];
    return { sheets: structure.sheets, sharedStrings, ...(part ? { sharedStringsPart: part } : {}), dateStyles, date1904: structure.date1904, limits };
  } finally {
    zip.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Workbook structure: sheets, and where the shared strings and styles are

interface Relationship {
  type: string;
  /** Zip member the relationship points to. */
  part: string;
}

/** Resolve a relationship target against the folder of the part that declares it. */
function resolvePart(fromPart: string, target: string): string {
  if (target.startsWith('/')) return target.slice(1);
  const parts = fromPart.split('/').slice(0, -1);
  for (const piece of target.split('/')) {
    if (piece === '..') parts.pop();
    else if (piece !== '.' && piece !== '') parts.push(piece);
  }
  return parts.join('/');
}

/** The relationships of `part` (from `folder/_rels/name.rels`), by id. */
async function readRelationships(zip: Zip, part: string, name: string): Promise<Map<string, Relationship>> {
  const slash = part.lastIndexOf('/');
  const relsPart = `${part.slice(0, slash + 1)}_rels/${part.slice(slash + 1)}.rels`;
  const out = new Map<string, Relationship>();
  if (!zip.has(relsPart)) return out;
  for await (const _ of parseXml(
    zip.chunks(relsPart),
    {
      open(tag) {
        if (localName(tag.name) !== 'Relationship') return;
        const a = tag.attributes;
        if (a.Id && a.Target && a.TargetMode !== 'External') out.set(a.Id, { type: a.Type ?? '', part: resolvePart(part, a.Target) });
      },
    },
    () => undefined,
    { file: `${name}!${relsPart}` },
  ));
  return out;
}

async function readStructure(zip: Zip, name: string) {
  const root = await readRelationships(zip, '', name);
  const workbookPart = [...root.values()].find((r) => REL_OFFICE_DOCUMENT.test(r.type))?.part ?? 'xl/workbook.xml';
  if (!zip.has(workbookPart)) throw new ReadError(`${name}: not an .xlsx workbook (the zip has no ${workbookPart})`, { file: name });
  const rels = await readRelationships(zip, workbookPart, name);
  const sheets: XlsxSheet[] = [];
  let date1904 = false;
  for await (const _ of parseXml(
    zip.chunks(workbookPart),
    {
      open(tag) {
        const a = tag.attributes;
        const local = localName(tag.name);
        if (local === 'workbookPr') date1904 = a.date1904 === '1' || a.date1904 === 'true';
        if (local !== 'sheet') return;
        const id = Object.entries(a).find(([k]) => localName(k) === 'id')?.[1];
        const rel = id ? rels.get(id) : undefined;
        const part = rel && !REL_CHARTSHEET.test(rel.type) && (REL_WORKSHEET.test(rel.type) || rel.type === '') ? rel.part : undefined;
        sheets.push({ name: a.name ?? `Sheet${sheets.length + 1}`, ...(part ? { part } : {}), hidden: a.state === 'hidden' || a.state === 'veryHidden' });
      },
    },
    () => undefined,
    { file: `${name}!${workbookPart}` },
  ));
  const relList = [...rels.values()];
  return {
    sheets,
    date1904,
    sharedStringsPart: relList.find((r) => REL_SHARED_STRINGS.test(r.type))?.part,
    stylesPart: relList.find((r) => REL_STYLES.test(r.type))?.part,
  };
}

/** OOXML escapes characters XML cannot carry as `_xHHHH_` (`_x000D_` for a carriage return). */
function unescapeOoxml(text: string): string {
  if (!text.includes('_x')) return text;
  return text.replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Limits, exported so that tests can lower them. */
export const xlsxLimits = {
  /** A shared-string part larger than this (inflated XML) is spilled to a temporary file. */
  sharedStringsInMemoryBytes: 16 * 1024 * 1024,
};

/** The shared-string table, by index. */
interface SharedStrings {
  get(index: number): string | undefined;
  readonly closed: boolean;
  close(): void;
}

class MemoryStrings implements SharedStrings {
  constructor(private readonly list: string[]) {}
  readonly closed = false;
  get(index: number) {
    return this.list[index];
  }
  close() {}
}

/**
 * A spilled table is read back in blocks, the last few kept: the table lists strings in the order
 * of their first use, so a sheet read top to bottom mostly asks for strings near the last ones,
 * or for the early ones that repeat (a city, a category).
 */
const SPILL_BLOCK_BYTES = 64 * 1024;
const SPILL_CACHED_BLOCKS = 64;
const SPILL_FLUSH_BYTES = 1 << 20;

/** Closes the temporary file of a spilled table nobody closed (a table whose rows were never read). */
const spillFiles = new FinalizationRegistry<{ fd: number; open: boolean }>((handle) => {
  if (handle.open) closeSync(handle.fd);
});

/**
 * A shared-string table too large to hold: the strings' UTF-8 bytes in a temporary file that is
 * unlinked as soon as it is open (nothing is left behind, whatever happens), 8 bytes of offset per
 * string in memory.
 */
class SpilledStrings implements SharedStrings {
  private readonly handle: { fd: number; open: boolean };
  private offsets = new Float64Array(1 << 16);
  private count = 0;
  private written = 0;
  private readonly pending = Buffer.allocUnsafe(SPILL_FLUSH_BYTES);
  private pendingBytes = 0;
  private readonly blocks = new Map<number, Buffer>();

  constructor() {
    const path = join(tmpdir(), `civic-etl-strings-${randomUUID()}`);
    const fd = openSync(path, 'w+', 0o600);
    unlinkSync(path);
    this.handle = { fd, open: true };
    spillFiles.register(this, this.handle, this);
  }

  get closed() {
    return !this.handle.open;
  }

  push(text: string) {
    if (this.count + 1 >= this.offsets.length) {
      const grown = new Float64Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    // At most 3 bytes of UTF-8 per UTF-16 code unit.
    const big = text.length * 3 > this.pending.length;
    if (big || this.pendingBytes + text.length * 3 > this.pending.length) this.flush();
    let length: number;
    if (big) {
      length = this.writeNow(Buffer.from(text, 'utf8'));
    } else {
      length = this.pending.write(text, this.pendingBytes, 'utf8');
      this.pendingBytes += length;
    }
    this.offsets[this.count + 1] = this.offsets[this.count]! + length;
    this.count++;
  }

  flush() {
    if (this.pendingBytes === 0) return;
    this.writeNow(this.pending.subarray(0, this.pendingBytes));
    this.pendingBytes = 0;
  }

  /** Write bytes at the end of the file (after what is pending, which the caller flushed). */
  private writeNow(bytes: Buffer): number {
    for (let done = 0; done < bytes.length;) done += writeSync(this.handle.fd, bytes, done, bytes.length - done, this.written + done);
    this.written += bytes.length;
    return bytes.length;
  }

  get(index: number): string | undefined {
    if (!(index >= 0 && index < this.count)) return undefined;
    const start = this.offsets[index]!;
    const end = this.offsets[index + 1]!;
    const first = Math.floor(start / SPILL_BLOCK_BYTES);
    if (Math.floor((end - 1) / SPILL_BLOCK_BYTES) > first) return this.read(start, end - start).toString('utf8');
    const block = this.block(first);
    return block.toString('utf8', start - first * SPILL_BLOCK_BYTES, end - first * SPILL_BLOCK_BYTES);
  }

  private block(n: number): Buffer {
    let block = this.blocks.get(n);
    if (block) {
      this.blocks.delete(n); // most recently used last
    } else {
      block = this.read(n * SPILL_BLOCK_BYTES, Math.min(SPILL_BLOCK_BYTES, this.written - n * SPILL_BLOCK_BYTES));
      if (this.blocks.size >= SPILL_CACHED_BLOCKS) this.blocks.delete(this.blocks.keys().next().value!);
    }
    this.blocks.set(n, block);
    return block;
  }

  private read(position: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    for (let done = 0; done < length;) {
      const n = readSync(this.handle.fd, out, done, length - done, position + done);
      if (n === 0) return out.subarray(0, done);
      done += n;
    }
    return out;
  }

  close() {
    if (!this.handle.open) return;
    this.handle.open = false;
    spillFiles.unregister(this);
    closeSync(this.handle.fd);
    this.blocks.clear();
  }
}

/**
 * The shared-string table: each `<si>` as plain text (rich-text runs joined, phonetic guides left
 * out). Spilled to a temporary file when its XML is larger than `xlsxLimits.sharedStringsInMemoryBytes`.
 */
async function readSharedStrings(zip: Zip, part: string, name: string, limits: ReadLimits): Promise<SharedStrings> {
  const file = `${name}!${part}`;
  const spill = zip.size(part) > xlsxLimits.sharedStringsInMemoryBytes ? new SpilledStrings() : undefined;
  const strings: string[] = [];
  const add = spill ? (text: string) => spill.push(text) : (text: string) => void strings.push(text);
  let current = '';
  let inT = false;
  let phonetic = 0;
  let count = 0;
  try {
    for await (const _ of parseXml(
      zip.chunks(part),
      {
        open(tag) {
          const local = localName(tag.name);
          if (local === 't') inT = phonetic === 0;
          else if (local === 'rPh') phonetic++;
          else if (local === 'si') current = '';
        },
        close(tag) {
          const local = localName(tag.name);
          if (local === 't') inT = false;
          else if (local === 'rPh') phonetic--;
          else if (local === 'si') {
            add(unescapeOoxml(current));
            count++;
          }
        },
        text(text) {
          if (!inT) return;
          current += text;
          if (current.length > limits.maxCellChars)
            throw beyondLimit(file, `shared string ${count} (0-based, as cells refer to it) is longer than ${limits.maxCellChars} characters`, 'maxCellChars', limits.maxCellChars);
        },
      },
      () => undefined,
      { file, limits },
    ));
    spill?.flush();
  } catch (error) {
    spill?.close();
    throw error;
  }
  return spill ?? new MemoryStrings(strings);
}

/** Date style of each cell format (`<cellXfs>` entry), from its number format. */
async function readDateStyles(zip: Zip, part: string, name: string): Promise<(DateStyle | undefined)[]> {
  const custom = new Map<number, DateStyle | undefined>();
  const formatIds: number[] = [];
  let inCellXfs = false;
  for await (const _ of parseXml(
    zip.chunks(part),
    {
      open(tag) {
        const local = localName(tag.name);
        const a = tag.attributes;
        if (local === 'numFmt') custom.set(Number(a.numFmtId), dateStyleOfFormat(a.formatCode ?? ''));
        else if (local === 'cellXfs') inCellXfs = true;
        else if (local === 'xf' && inCellXfs) formatIds.push(Number(a.numFmtId ?? 0));
      },
      close(tag) {
        if (localName(tag.name) === 'cellXfs') inCellXfs = false;
      },
    },
    () => undefined,
    { file: `${name}!${part}` },
  ));
  return formatIds.map((id) => (custom.has(id) ? custom.get(id) : builtInDateStyle(id)));
}

// ---------------------------------------------------------------------------------------------
// The sheet

/** 0-based column of a cell reference (`C12` → 2), or -1 when it has no letters. */
function columnOfRef(ref: string): number {
  let col = 0;
  let i = 0;
  for (; i < ref.length; i++) {
    const code = ref.charCodeAt(i) | 0x20;
    if (code < 97 || code > 122) break;
    col = col * 26 + (code - 96);
  }
  return i === 0 ? -1 : col - 1;
}

function rowOfRef(ref: string): number {
  const digits = ref.replace(/^[A-Za-z$]+/, '').replace(/\$/g, '');
  return Number(digits);
}

/** An ISO date cell (`t="d"`): to seconds, and without the time when it is midnight under a date-only style. */
function isoCellText(text: string, style: DateStyle | undefined): string {
  const trimmed = text.trim().replace(/(\.\d+)?(Z|[+-]\d\d:\d\d)?$/, '');
  if (style === 'date' && trimmed.endsWith('T00:00:00')) return trimmed.slice(0, 10);
  return trimmed;
}

function xlsxSource(path: string, name: string, file: string, part: string, book: XlsxBook): SheetSource {
  let notes: string[] = [];
  return {
    file,
    format: 'xlsx',
    notes: () => notes,
    close: () => book.sharedStrings.close(),
    async *rows() {
      const zip = await openXlsx(path, name, book.limits);
      notes = [];
      if (book.sharedStrings.closed && book.sharedStringsPart) {
        try {
          book.sharedStrings = await readSharedStrings(zip, book.sharedStringsPart, name, book.limits);
        } catch (error) {
          zip.close();
          throw error;
        }
      }
      const strings = book.sharedStrings;
      const { limits } = book;
      let uncached = 0;
      let firstUncached = '';
      let badIndex = 0;
      try {
        let batch: SheetRow[] = [];
        let inData = false;
        let row: SheetRow | undefined;
        let position = 0;
        let col = -1;
        let cellType = '';
        let cellStyle = 0;
        let hasFormula = false;
        let value: string | undefined;
        let collecting = false;
        let phonetic = 0;
        const finishCell = () => {
          if (!row) return;
          let text: string | null = null;
          let kind: Kind = Kind.Empty;
          const style = book.dateStyles[cellStyle];
          switch (cellType) {
            case 's': {
              if (value === undefined) break;
              const s = strings.get(Number(value));
              if (s === undefined) badIndex++;
              else if (s !== '') [text, kind] = [s, Kind.Text];
              break;
            }
            case 'inlineStr':
            case 'str':
              if (value !== undefined && value !== '') [text, kind] = [unescapeOoxml(value), Kind.Text];
              break;
            case 'b':
              if (value !== undefined && value.trim() !== '') [text, kind] = [value.trim() === '0' || value.trim() === 'false' ? 'false' : 'true', Kind.Boolean];
              break;
            case 'e':
              if (value !== undefined) [text, kind] = [value.trim(), Kind.Error];
              break;
            case 'd':
              if (value !== undefined && value.trim() !== '') [text, kind] = [isoCellText(value, style), Kind.Date];
              break;
            default: {
              if (value === undefined || value.trim() === '') break;
              const n = Number(value);
              if (Number.isFinite(n)) [text, kind] = numberCell(n, style, book.date1904);
              else [text, kind] = [value.trim(), Kind.Text];
            }
          }
          if (hasFormula && value === undefined) {
            uncached++;
            if (uncached === 1) firstUncached = cellRef(position, col);
          }
          if (text === null) return;
          putCell(row, col, text, kind);
        };
        const handlers = {
          open(tag: XmlTag) {
            switch (localName(tag.name)) {
              case 'sheetData':
                inData = true;
                break;
              case 'row': {
                if (!inData) break;
                const r = Number(tag.attributes.r);
                position = Number.isInteger(r) && r > 0 ? r : position + 1;
                if (position > limits.maxRows) throw beyondLimit(file, `row ${tag.attributes.r ?? position} is below the sheet's last row`, 'maxRows', limits.maxRows, { line: position });
                row = { position, values: [], kinds: [], hasError: false };
                col = -1;
                break;
              }
              case 'c': {
                if (!row) break;
                const ref = tag.attributes.r;
                const c = ref ? columnOfRef(ref) : -1;
                col = c >= 0 ? c : col + 1;
                // a reference such as ZZZZZZZ1 would pad the row towards billions of empty cells
                if (col >= limits.maxColumns) {
                  throw beyondLimit(file, `cell ${ref ?? cellRef(position, col)} is right of column ${columnLetters(limits.maxColumns - 1)}, the last one read`, 'maxColumns', limits.maxColumns, {
                    line: position,
                    column: ref ?? cellRef(position, col),
                  });
                }
                cellType = tag.attributes.t ?? '';
                cellStyle = Number(tag.attributes.s ?? 0);
                hasFormula = false;
                value = undefined;
                break;
              }
              case 'f':
                hasFormula = true;
                break;
              case 'v':
                if (row) {
                  value = '';
                  collecting = true;
                }
                break;
              case 'is':
                if (row) value = '';
                break;
              case 'rPh':
                phonetic++;
                break;
              case 't':
                if (row && value !== undefined && phonetic === 0) collecting = true;
                break;
            }
          },
          close(tag: XmlTag) {
            switch (localName(tag.name)) {
              case 'v':
              case 't':
                collecting = false;
                break;
              case 'rPh':
                phonetic--;
                break;
              case 'c':
                finishCell();
                break;
              case 'row':
                if (row && row.values.length > 0) batch.push(row);
                row = undefined;
                break;
              case 'sheetData':
                inData = false;
                break;
            }
          },
          text(text: string) {
            if (!collecting) return;
            value += text;
            if (value!.length > limits.maxCellChars) {
              throw beyondLimit(file, `cell ${cellRef(position, col)} holds more than ${limits.maxCellChars} characters`, 'maxCellChars', limits.maxCellChars, {
                line: position,
                column: cellRef(position, col),
              });
            }
          },
        };
        yield* parseXml(
          zip.chunks(part),
          handlers,
          () => {
            if (batch.length === 0) return undefined;
            const out = batch;
            batch = [];
            return out;
          },
          { file, describe: () => (position > 0 ? `near row ${position}` : ''), limits },
        );
      } finally {
        zip.close();
        if (uncached > 0)
          notes.push(
            `${file}: ${uncached} formula cell${uncached === 1 ? '' : 's'} without a saved result read as empty (first: ${firstUncached}); open and save the workbook in a spreadsheet program to compute them`,
          );
        if (badIndex > 0) notes.push(`${file}: ${badIndex} cell${badIndex === 1 ? '' : 's'} pointing past the shared-string table read as empty`);
      }
    },
    merges: (throughRow) => readMerges(path, name, file, part, throughRow),
  };
}

/** Text kept after `</sheetData>` while looking for `<mergeCells>` (the rest of a sheet part is small). */
const MAX_TAIL_CHARS = 32 * 1024 * 1024;
const SHEET_DATA_END = /<\/(?:[A-Za-z_][\w.-]*:)?sheetData\s*>/;
const MERGE_CELL = /<(?:[A-Za-z_][\w.-]*:)?mergeCell\b[^>]*?\bref\s*=\s*["']([^"']+)["']/g;

/**
 * Merged ranges of a sheet that start at or above `throughRow`. `<mergeCells>` follows the cell
 * data in the sheet part, so this inflates the part a second time, matching text only after
 * `</sheetData>` (no XML parsing of the rows: about a tenth of the cost of reading them).
 */
async function readMerges(path: string, name: string, file: string, part: string, throughRow: number): Promise<Merge[]> {
  const zip = await openXlsx(path, name);
  let tail = '';
  let carry = '';
  let after = false;
  try {
    for await (const chunk of zip.chunks(part)) {
      if (!after) {
        const text = carry + chunk;
        const end = SHEET_DATA_END.exec(text);
        if (!end) {
          carry = text.slice(-32);
          continue;
        }
        after = true;
        tail = text.slice(end.index);
      } else {
        tail += chunk;
        if (tail.length > MAX_TAIL_CHARS) break;
      }
    }
  } finally {
    zip.close();
  }
  const merges: Merge[] = [];
  for (const match of tail.matchAll(MERGE_CELL)) {
    const [from, to = from] = match[1]!.split(':') as [string, string?];
    const top = rowOfRef(from);
    if (!(top > 0) || top > throughRow) continue;
    const bottom = rowOfRef(to);
    merges.push({ top, left: columnOfRef(from), bottom: bottom > 0 ? bottom : top, right: columnOfRef(to) });
  }
  if (merges.some((m) => m.left < 0 || m.right < m.left)) throw new ReadError(`${file}: a merged range is not a cell range`, { file });
  return merges;
}
