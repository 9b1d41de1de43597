/**
 * Excel 97–2003 workbooks (.xls: BIFF8 records in the `Workbook` stream of an OLE2 compound
 * file): one sheet as a `ReadTable`.
 *
 * Our own reader, because the npm `xlsx` package is an old registry copy with known flaws on
 * untrusted input. It reads what a table needs and no more:
 * - the compound file: header, FAT (through the DIFAT), directory, mini stream for a small
 *   workbook; sectors are read from the file as needed, runs of consecutive sectors at once;
 * - the workbook globals: sheets (BOUNDSHEET8), the shared-string table (SST with its CONTINUE
 *   records), number formats (FORMAT, XF) to tell dates, the 1904 date system (DATEMODE);
 * - a sheet's cells (LABELSST, LABEL, RSTRING, NUMBER, RK, MULRK, BOOLERR, FORMULA with its cached
 *   result and STRING) and merged ranges (MERGECELLS).
 * Encrypted workbooks (FILEPASS) and Excel 5.0/95 ones (BIFF5) are refused with a message saying
 * what to save them as. A sheet holds at most 65,536 rows, so the string table and the format
 * list are bounded by the format; rows stream, one 64 KiB block of records at a time.
 */
import { open as openFile, type FileHandle } from 'node:fs/promises';
import {
  type DateStyle,
  Kind,
  type Merge,
  type SheetRow,
  type SheetSource,
  builtInDateStyle,
  cellRef,
  columnLetters,
  putCell,
  dateStyleOfFormat,
  numberCell,
  chooseSheet,
  pickSheet,
  sheetTable,
} from './sheet.ts';
import { readLimits, type ReadLimits } from '../common/limits.ts';
import { beyondLimit, ReadError, type ReadOptions, type ReadTable } from './types.ts';

// ---------------------------------------------------------------------------------------------
// The compound file

const OLE2_MAGIC = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
const END_OF_CHAIN = 0xfffffffe;
const MAX_REGULAR_SECTOR = 0xfffffffa;

interface DirectoryEntry {
  name: string;
  type: number;
  start: number;
  size: number;
}

/** A stream of the compound file, read by offset. */
interface CfbStream {
  size: number;
  read(position: number, length: number): Promise<Buffer>;
}

/** An open compound file: its directory, and its streams by name. */
interface Cfb {
  entries: DirectoryEntry[];
  stream(name: string): Promise<CfbStream | undefined>;
  close(): Promise<void>;
}

async function readExactly(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? out : out.subarray(0, done);
}

/** Open an OLE2 compound file; anything malformed is a ReadError naming the file. */
async function openCfb(path: string, name: string): Promise<Cfb> {
  const handle = await openFile(path, 'r');
  const fail = (why: string): never => {
    throw new ReadError(`${name}: not a readable .xls workbook (${why})`, { file: name });
  };
  try {
    const fileSize = (await handle.stat()).size;
    const header = await readExactly(handle, 0, 512);
    if (header.length < 512 || !header.subarray(0, 8).equals(OLE2_MAGIC)) fail('not an OLE2 compound file');
    const sectorSize = 1 << header.readUInt16LE(30);
    const miniSectorSize = 1 << header.readUInt16LE(32);
    if (sectorSize !== 512 && sectorSize !== 4096) fail(`sector size ${sectorSize}`);
    const fatSectorCount = header.readUInt32LE(44);
    const firstDirectorySector = header.readUInt32LE(48);
    const miniCutoff = header.readUInt32LE(56);
    const firstMiniFatSector = header.readUInt32LE(60);
    let difatSector = header.readUInt32LE(68);
    const sectorCount = Math.ceil(fileSize / sectorSize) - 1;
    const sectorOffset = (sector: number) => (sector + 1) * sectorSize;
    const readSector = async (sector: number) => {
      if (sector >= sectorCount) fail(`sector ${sector} lies past the end: the file is truncated`);
      const bytes = await readExactly(handle, sectorOffset(sector), sectorSize);
      if (bytes.length < sectorSize) fail(`sector ${sector} is cut short: the file is truncated`);
      return bytes;
    };

    // The FAT: its sectors are listed by the DIFAT (109 in the header, then a chain of DIFAT sectors).
    const fatSectors: number[] = [];
    for (let i = 0; i < 109 && fatSectors.length < fatSectorCount; i++) fatSectors.push(header.readUInt32LE(76 + i * 4));
    for (let hops = 0; fatSectors.length < fatSectorCount && difatSector <= MAX_REGULAR_SECTOR; hops++) {
      if (hops > sectorCount) fail('the DIFAT loops');
      const bytes = await readSector(difatSector);
      for (let i = 0; i < sectorSize / 4 - 1 && fatSectors.length < fatSectorCount; i++) fatSectors.push(bytes.readUInt32LE(i * 4));
      difatSector = bytes.readUInt32LE(sectorSize - 4);
    }
    const perSector = sectorSize / 4;
    const fat = new Uint32Array(fatSectors.length * perSector);
    for (let i = 0; i < fatSectors.length; i++) {
      const bytes = await readSector(fatSectors[i]!);
      for (let k = 0; k < perSector; k++) fat[i * perSector + k] = bytes.readUInt32LE(k * 4);
    }
    const chain = (start: number): number[] => {
      const out: number[] = [];
      for (let sector = start; sector !== END_OF_CHAIN; sector = fat[sector]!) {
        if (sector > MAX_REGULAR_SECTOR || sector >= fat.length || out.length > sectorCount) fail('a sector chain is broken or loops');
        out.push(sector);
      }
      return out;
    };

    const entries: DirectoryEntry[] = [];
    for (const sector of chain(firstDirectorySector)) {
      const bytes = await readSector(sector);
      for (let at = 0; at < sectorSize; at += 128) {
        const nameLength = Math.min(bytes.readUInt16LE(at + 64), 64);
        entries.push({
          name: bytes.toString('utf16le', at, at + Math.max(0, nameLength - 2)),
          type: bytes[at + 66]!,
          start: bytes.readUInt32LE(at + 116),
          size: bytes.readUInt32LE(at + 120) + (sectorSize === 4096 ? bytes.readUInt32LE(at + 124) * 2 ** 32 : 0),
        });
      }
    }
    const root = entries.find((e) => e.type === 5);

    /** A stream in regular sectors, read through runs of consecutive sectors. */
    const regular = (entry: DirectoryEntry): CfbStream => {
      const sectors = chain(entry.start);
      if (sectors.length * sectorSize < entry.size) fail(`stream ${entry.name} is shorter than its directory entry says`);
      return {
        size: entry.size,
        async read(position, length) {
          const end = Math.min(position + length, entry.size);
          const parts: Buffer[] = [];
          for (let at = position; at < end;) {
            const index = Math.floor(at / sectorSize);
            let run = 1;
            while (index + run < sectors.length && sectors[index + run] === sectors[index]! + run && (index + run) * sectorSize < end) run++;
            const within = at - index * sectorSize;
            const take = Math.min(run * sectorSize - within, end - at);
            if (sectors[index]! + run > sectorCount) fail(`stream ${entry.name} runs past the end: the file is truncated`);
            const bytes = await readExactly(handle, sectorOffset(sectors[index]!) + within, take);
            if (bytes.length < take) fail(`stream ${entry.name} is cut short: the file is truncated`);
            parts.push(bytes);
            at += take;
          }
          return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
        },
      };
    };

    return {
      entries,
      async stream(streamName) {
        const entry = entries.find((e) => e.type === 2 && e.name.toLowerCase() === streamName.toLowerCase());
        if (!entry) return undefined;
        if (entry.size >= miniCutoff || !root) return regular(entry);
        // A small stream lives in the mini stream (the root entry's data), in 64-byte sectors.
        const miniFat: number[] = [];
        if (firstMiniFatSector <= MAX_REGULAR_SECTOR) {
          for (const sector of chain(firstMiniFatSector)) {
            const bytes = await readSector(sector);
            for (let k = 0; k < perSector; k++) miniFat.push(bytes.readUInt32LE(k * 4));
          }
        }
        const container = await regular(root).read(0, root.size);
        const parts: Buffer[] = [];
        for (let sector = entry.start, n = 0; sector !== END_OF_CHAIN && n * miniSectorSize < entry.size; sector = miniFat[sector] ?? END_OF_CHAIN, n++) {
          if (sector > MAX_REGULAR_SECTOR || (sector + 1) * miniSectorSize > container.length || n > miniFat.length) fail('a mini sector chain is broken');
          parts.push(container.subarray(sector * miniSectorSize, (sector + 1) * miniSectorSize));
        }
        const bytes = Buffer.concat(parts).subarray(0, entry.size);
        if (bytes.length < entry.size) fail(`stream ${entry.name} is shorter than its directory entry says`);
        return { size: entry.size, read: async (position, length) => bytes.subarray(position, Math.min(position + length, entry.size)) };
      },
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// BIFF8 records

const BOF = 0x0809;
const EOF = 0x000a;
const CONTINUE = 0x003c;
const FILEPASS = 0x002f;
const DATEMODE = 0x0022;
const FORMAT = 0x041e;
const XF = 0x00e0;
const BOUNDSHEET = 0x0085;
const SST = 0x00fc;
const LABELSST = 0x00fd;
const LABEL = 0x0204;
const RSTRING = 0x00d6;
const NUMBER = 0x0203;
const RK = 0x027e;
const MULRK = 0x00bd;
const BOOLERR = 0x0205;
const FORMULA = 0x0006;
const STRING = 0x0207;
const MERGECELLS = 0x00e5;

const BLOCK_BYTES = 64 * 1024;

interface BiffRecord {
  type: number;
  data: Buffer;
  /** Offset of the record in the stream. */
  offset: number;
}

/** The records of a stream from `start`, read a block at a time. */
async function* records(stream: CfbStream, start: number, file: string): AsyncGenerator<BiffRecord> {
  let buffer = Buffer.alloc(0);
  let base = start; // stream offset of buffer[0]
  let at = 0;
  const fill = async (needed: number) => {
    if (buffer.length - at >= needed) return true;
    const next = base + buffer.length;
    if (next >= stream.size) return false;
    const more = await stream.read(next, Math.max(BLOCK_BYTES, needed));
    buffer = Buffer.concat([buffer.subarray(at), more]);
    base += at;
    at = 0;
    return buffer.length >= needed;
  };
  while (await fill(4)) {
    const type = buffer.readUInt16LE(at);
    const length = buffer.readUInt16LE(at + 2);
    if (!(await fill(4 + length))) throw new ReadError(`${file}: the workbook stream ends inside a record (at byte ${base + at})`, { file, offset: base + at });
    yield { type, data: buffer.subarray(at + 4, at + 4 + length), offset: base + at };
    at += 4 + length;
  }
}

/**
 * Reads across a record and its CONTINUE records. A string's characters that cross into a
 * CONTINUE start again with an option byte (8-bit or 16-bit characters), other fields do not.
 */
class Fragments {
  private index = 0;
  private at = 0;
  constructor(private readonly parts: Buffer[]) {}

  private available(): number {
    while (this.index < this.parts.length && this.at >= this.parts[this.index]!.length) {
      this.index++;
      this.at = 0;
    }
    return this.index < this.parts.length ? this.parts[this.index]!.length - this.at : 0;
  }

  get done() {
    return this.available() === 0;
  }

  bytes(n: number): Buffer {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const have = this.available();
      if (have === 0) throw new RangeError('record ends early');
      const take = Math.min(have, left);
      out.push(this.parts[this.index]!.subarray(this.at, this.at + take));
      this.at += take;
      left -= take;
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  u8 = () => this.bytes(1)[0]!;
  u16 = () => this.bytes(2).readUInt16LE(0);
  u32 = () => this.bytes(4).readUInt32LE(0);

  skip(n: number) {
    if (n > 0) this.bytes(n);
  }

  /**
   * `count` characters, 16-bit when `wide`. Characters that continue in the next record start
   * with an option byte there (also when none fitted before the boundary).
   */
  chars(count: number, wide: boolean): string {
    let out = '';
    let left = count;
    let part = this.index;
    while (left > 0) {
      let have = this.available();
      if (have === 0) throw new RangeError('string ends early');
      if (this.index !== part) {
        wide = (this.u8() & 0x01) !== 0;
        part = this.index;
        have = this.available();
      }
      const take = Math.min(left, wide ? Math.floor(have / 2) : have);
      if (take === 0) throw new RangeError('string splits a character');
      const bytes = this.parts[this.index]!;
      out += wide ? bytes.toString('utf16le', this.at, this.at + take * 2) : bytes.toString('latin1', this.at, this.at + take);
      this.at += wide ? take * 2 : take;
      left -= take;
    }
    return out;
  }

  /** An XLUnicodeRichExtendedString (SST entry) or an XLUnicodeString (`rich` false, 16-bit count). */
  unicodeString(countBytes: 1 | 2 = 2): string {
    const count = countBytes === 1 ? this.u8() : this.u16();
    const flags = this.u8();
    const runs = flags & 0x08 ? this.u16() : 0;
    const ext = flags & 0x04 ? this.u32() : 0;
    const text = this.chars(count, (flags & 0x01) !== 0);
    this.skip(runs * 4);
    this.skip(ext);
    return text;
  }
}

/** Gather a record's CONTINUE records (the caller gets the record after them). */
async function withContinues(first: BiffRecord, iterator: AsyncIterator<BiffRecord>): Promise<{ parts: Buffer[]; next: BiffRecord | undefined }> {
  const parts = [first.data];
  for (;;) {
    const step = await iterator.next();
    if (step.done) return { parts, next: undefined };
    if (step.value.type !== CONTINUE) return { parts, next: step.value };
    parts.push(step.value.data);
  }
}

// ---------------------------------------------------------------------------------------------
// The workbook

interface XlsSheet {
  name: string;
  /** Stream offset of the sheet's BOF record. */
  offset: number;
  hidden: boolean;
  /** 0 worksheet, 1 macro sheet, 2 chart, 6 VBA module. */
  kind: number;
}

interface XlsBook {
  sheets: XlsSheet[];
  strings: string[];
  /** Date style of each XF record's number format, by XF index. */
  dateStyles: (DateStyle | undefined)[];
  date1904: boolean;
}

async function openWorkbook(path: string, name: string): Promise<{ cfb: Cfb; stream: CfbStream }> {
  const cfb = await openCfb(path, name);
  try {
    const stream = await cfb.stream('Workbook');
    if (stream) return { cfb, stream };
    if (cfb.entries.some((e) => e.type === 2 && e.name === 'EncryptedPackage')) {
      throw new ReadError(`${name}: a password-protected .xlsx workbook; remove the password and save it as .xlsx, .ods or .csv`, { file: name });
    }
    if (await cfb.stream('Book')) throw new ReadError(`${name}: an Excel 5.0/95 workbook, which is not read; save the sheet as .xlsx, .ods or .csv`, { file: name });
    throw new ReadError(`${name}: not an Excel workbook (the compound file has no Workbook stream)`, { file: name });
  } catch (error) {
    await cfb.close();
    throw error;
  }
}

/** Read the workbook globals: sheets, strings, formats, date system. */
async function readGlobals(stream: CfbStream, name: string): Promise<XlsBook> {
  const sheets: XlsSheet[] = [];
  let strings: string[] = [];
  const formats = new Map<number, DateStyle | undefined>();
  const xfFormats: number[] = [];
  let date1904 = false;
  const iterator = records(stream, 0, name)[Symbol.asyncIterator]();
  let step = await iterator.next();
  if (step.done || step.value.type !== BOF) throw new ReadError(`${name}: not a readable .xls workbook (the Workbook stream does not start with a BOF record)`, { file: name });
  const version = step.value.data.readUInt16LE(0);
  if (version !== 0x0600)
    throw new ReadError(`${name}: an Excel 5.0/95 or older workbook (BIFF version 0x${version.toString(16)}), which is not read; save the sheet as .xlsx, .ods or .csv`, { file: name });
  step = await iterator.next();
  try {
    while (!step.done && step.value.type !== EOF) {
      const record = step.value;
      const { data } = record;
      switch (record.type) {
        case FILEPASS:
          throw new ReadError(`${name}: a password-protected workbook; remove the password and save it as .xlsx, .ods or .csv`, { file: name });
        case DATEMODE:
          date1904 = data.readUInt16LE(0) === 1;
          break;
        case FORMAT: {
          const reader = new Fragments([data]);
          const id = reader.u16();
          formats.set(id, dateStyleOfFormat(reader.unicodeString()));
          break;
        }
        case XF:
          xfFormats.push(data.readUInt16LE(2));
          break;
        case BOUNDSHEET: {
          const reader = new Fragments([data.subarray(6)]);
          sheets.push({ name: reader.unicodeString(1), offset: data.readUInt32LE(0), hidden: (data[4]! & 0x03) !== 0, kind: data[5]! });
          break;
        }
        case SST: {
          const { parts, next } = await withContinues(record, iterator);
          strings = readSst(parts);
          step = next ? { done: false, value: next } : { done: true, value: undefined };
          continue;
        }
      }
      step = await iterator.next();
    }
  } catch (error) {
    if (error instanceof RangeError) throw new ReadError(`${name}: not a readable .xls workbook (a record of the workbook globals is cut short)`, { file: name }, { cause: error });
    throw error;
  } finally {
    await iterator.return?.(undefined);
  }
  const dateStyles = xfFormats.map((id) => (formats.has(id) ? formats.get(id) : builtInDateStyle(id)));
  return { sheets, strings, dateStyles, date1904 };
}

function readSst(parts: Buffer[]): string[] {
  const reader = new Fragments(parts);
  reader.skip(4); // total references
  const unique = reader.u32();
  const strings: string[] = [];
  for (let i = 0; i < unique && !reader.done; i++) strings.push(reader.unicodeString());
  return strings;
}

/** Read one sheet of an .xls workbook (default: the first visible worksheet that holds a table, see `chooseSheet`). */
export async function readXls(path: string, name: string, opts: ReadOptions = {}): Promise<ReadTable> {
  const limits = readLimits(opts.limits);
  const { cfb, stream } = await openWorkbook(path, name);
  let book: XlsBook;
  try {
    book = await readGlobals(stream, name);
  } finally {
    await cfb.close();
  }
  const worksheets = book.sheets.filter((s) => !s.hidden && s.kind === 0);
  let sheet: XlsSheet;
  let note: string | undefined;
  if (opts.sheet === undefined && worksheets.length > 0) {
    const choice = await chooseSheet(
      name,
      worksheets.map((s) => ({ name: s.name, source: () => xlsSource(path, name, `${name}#${s.name}`, s, book, limits) })),
    );
    sheet = worksheets[choice.index]!;
    note = choice.note;
  } else {
    sheet = pickSheet(book.sheets, opts.sheet, name);
  }
  const file = `${name}#${sheet.name}`;
  if (sheet.kind !== 0 && sheet.kind !== 1) throw new ReadError(`${file}: a ${sheet.kind === 2 ? 'chart sheet' : 'macro module'}, not a table`, { file });
  return sheetTable(xlsSource(path, name, file, sheet, book, limits), note ? [note] : []);
}

/** The names of an .xls workbook's sheets, in tab order (hidden ones included). */
export async function listXlsSheets(path: string, name: string = path): Promise<string[]> {
  const { cfb, stream } = await openWorkbook(path, name);
  try {
    return (await readGlobals(stream, name)).sheets.map((s) => s.name);
  } finally {
    await cfb.close();
  }
}

// ---------------------------------------------------------------------------------------------
// A sheet

const ERROR_CODES: Record<number, string> = { 0x00: '#NULL!', 0x07: '#DIV/0!', 0x0f: '#VALUE!', 0x17: '#REF!', 0x1d: '#NAME?', 0x24: '#NUM!', 0x2a: '#N/A', 0x2b: '#GETTING_DATA' };

/** An RK number: a 30-bit integer or the top 30 bits of a double, maybe divided by 100. */
function rkNumber(rk: number): number {
  let n: number;
  if (rk & 0x02) {
    n = (rk | 0) >> 2;
  } else {
    const bytes = Buffer.alloc(8);
    bytes.writeUInt32LE((rk & 0xfffffffc) >>> 0, 4);
    n = bytes.readDoubleLE(0);
  }
  return rk & 0x01 ? n / 100 : n;
}

function xlsSource(path: string, name: string, file: string, sheet: XlsSheet, book: XlsBook, limits: ReadLimits): SheetSource {
  let notes: string[] = [];

  /** The records of the sheet's substream (charts embedded in it are skipped). */
  async function* sheetRecords(stream: CfbStream): AsyncGenerator<BiffRecord> {
    let depth = 0;
    for await (const record of records(stream, sheet.offset, file)) {
      if (record.type === BOF) {
        depth++;
        continue;
      }
      if (record.type === EOF) {
        if (--depth <= 0) return;
        continue;
      }
      if (depth === 1) yield record;
    }
  }

  return {
    file,
    format: 'xls',
    notes: () => notes,
    async *rows() {
      const { cfb, stream } = await openWorkbook(path, name);
      notes = [];
      let badIndex = 0;
      let row: SheetRow | undefined;
      let batch: SheetRow[] = [];
      /** A formula whose text result follows in a STRING record. */
      let pendingString: { row: SheetRow; col: number } | undefined;
      const put = (r: number, col: number, text: string | null, kind: Kind) => {
        if (!row || row.position !== r + 1) {
          if (row && row.values.length > 0) batch.push(row);
          row = { position: r + 1, values: [], kinds: [], hasError: false };
        }
        if (text === null || text === '') return;
        if (col >= limits.maxColumns) {
          const ref = cellRef(r + 1, col);
          throw beyondLimit(file, `cell ${ref} is right of column ${columnLetters(limits.maxColumns - 1)}, the last one read`, 'maxColumns', limits.maxColumns, { line: r + 1, column: ref });
        }
        putCell(row, col, text, kind);
      };
      const numberAt = (r: number, col: number, xf: number, n: number) => put(r, col, ...numberCell(n, book.dateStyles[xf], book.date1904));
      const iterator = sheetRecords(stream);
      try {
        let step = await iterator.next();
        while (!step.done) {
          const { type, data } = step.value;
          let next: IteratorResult<BiffRecord> | undefined;
          switch (type) {
            case LABELSST: {
              const s = book.strings[data.readUInt32LE(6)];
              if (s === undefined) badIndex++;
              put(data.readUInt16LE(0), data.readUInt16LE(2), s ?? null, Kind.Text);
              break;
            }
            case LABEL:
            case RSTRING: {
              const { parts, next: after } = await withContinues(step.value, iterator);
              const reader = new Fragments(parts);
              reader.skip(6);
              put(data.readUInt16LE(0), data.readUInt16LE(2), reader.unicodeString(), Kind.Text);
              next = after ? { done: false, value: after } : { done: true, value: undefined };
              break;
            }
            case NUMBER:
              numberAt(data.readUInt16LE(0), data.readUInt16LE(2), data.readUInt16LE(4), data.readDoubleLE(6));
              break;
            case RK:
              numberAt(data.readUInt16LE(0), data.readUInt16LE(2), data.readUInt16LE(4), rkNumber(data.readUInt32LE(6)));
              break;
            case MULRK: {
              const r = data.readUInt16LE(0);
              const first = data.readUInt16LE(2);
              const count = (data.length - 6) / 6;
              for (let i = 0; i < count; i++) numberAt(r, first + i, data.readUInt16LE(4 + i * 6), rkNumber(data.readUInt32LE(6 + i * 6)));
              break;
            }
            case BOOLERR: {
              const value = data[6]!;
              if (data[7]) put(data.readUInt16LE(0), data.readUInt16LE(2), ERROR_CODES[value] ?? '#ERROR', Kind.Error);
              else put(data.readUInt16LE(0), data.readUInt16LE(2), value ? 'true' : 'false', Kind.Boolean);
              break;
            }
            case FORMULA: {
              const r = data.readUInt16LE(0);
              const col = data.readUInt16LE(2);
              if (data.readUInt16LE(12) !== 0xffff) {
                numberAt(r, col, data.readUInt16LE(4), data.readDoubleLE(6));
                break;
              }
              const resultType = data[6]!;
              if (resultType === 1) put(r, col, data[8] ? 'true' : 'false', Kind.Boolean);
              else if (resultType === 2) put(r, col, ERROR_CODES[data[8]!] ?? '#ERROR', Kind.Error);
              else put(r, col, null, Kind.Empty);
              if (resultType === 0) pendingString = { row: row!, col };
              break;
            }
            case STRING: {
              const { parts, next: after } = await withContinues(step.value, iterator);
              if (pendingString && pendingString.row === row) put(row.position - 1, pendingString.col, new Fragments(parts).unicodeString(), Kind.Text);
              pendingString = undefined;
              next = after ? { done: false, value: after } : { done: true, value: undefined };
              break;
            }
          }
          step = next ?? (await iterator.next());
          if (batch.length >= 1_000) {
            yield batch;
            batch = [];
          }
        }
        if (row && row.values.length > 0) batch.push(row);
        if (batch.length > 0) yield batch;
      } catch (error) {
        if (error instanceof RangeError) {
          const at = row ? ` near row ${row.position}` : '';
          throw new ReadError(`${file}: a cell record${at} is cut short (the file is damaged)`, { file, ...(row ? { line: row.position } : {}) }, { cause: error });
        }
        throw error;
      } finally {
        await iterator.return?.(undefined);
        await cfb.close();
        if (badIndex > 0) notes.push(`${file}: ${badIndex} cell${badIndex === 1 ? '' : 's'} pointing past the shared-string table read as empty`);
      }
    },
    async merges(throughRow) {
      const { cfb, stream } = await openWorkbook(path, name);
      const merges: Merge[] = [];
      try {
        for await (const { type, data } of sheetRecords(stream)) {
          if (type !== MERGECELLS) continue;
          const count = Math.min(data.readUInt16LE(0), Math.floor((data.length - 2) / 8));
          for (let i = 0; i < count; i++) {
            const at = 2 + i * 8;
            const top = data.readUInt16LE(at) + 1;
            if (top > throughRow) continue;
            merges.push({ top, bottom: data.readUInt16LE(at + 2) + 1, left: data.readUInt16LE(at + 4), right: data.readUInt16LE(at + 6) });
          }
        }
      } finally {
        await cfb.close();
      }
      if (merges.some((m) => m.right < m.left || m.bottom < m.top)) throw new ReadError(`${file}: a merged range is not a cell range (${cellRef(merges[0]!.top, merges[0]!.left)})`, { file });
      return merges;
    },
  };
}
