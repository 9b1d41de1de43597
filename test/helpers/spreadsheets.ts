/**
 * Workbooks built inside the tests: .xlsx through exceljs's writer (as most producers write them),
 * .xlsx from raw parts (the XML forms other producers write that exceljs never does), and .ods
 * from a content.xml assembled with the cell helpers below. Everything goes through yazl.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll } from 'vitest';
import yazl from 'yazl';

/** A temporary folder for one test file's workbooks. */
export async function scratchDir(prefix = 'sheets-'): Promise<{ path: (file: string) => string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { path: (file) => join(dir, file), remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A scratch folder for the whole test file: made before its tests, removed after them.
 * `path(file)` names a file in it (call it inside a test or hook).
 */
export function useScratchDir(prefix = 'sheets-'): { path: (file: string) => string } {
  let dir: Awaited<ReturnType<typeof scratchDir>> | undefined;
  beforeAll(async () => {
    dir = await scratchDir(prefix);
  });
  afterAll(async () => {
    await dir?.remove();
  });
  return {
    path: (file) => {
      if (!dir) throw new Error('useScratchDir: path() called before the scratch folder was made');
      return dir.path(file);
    },
  };
}

/** Write a zip; `mimetype` (when given) goes first and stored, as ODF requires. */
export async function writeZip(path: string, members: Record<string, string | Buffer>): Promise<void> {
  const zip = new yazl.ZipFile();
  const out = createWriteStream(path);
  zip.outputStream.pipe(out);
  const names = Object.keys(members).sort((a, b) => (a === 'mimetype' ? -1 : b === 'mimetype' ? 1 : 0));
  for (const name of names) {
    const body = members[name]!;
    // a fixed time, so the same members make the same bytes (the fuzz corpus is reproducible)
    zip.addBuffer(Buffer.isBuffer(body) ? body : Buffer.from(body), name, { compress: name !== 'mimetype', mtime: new Date(2026, 0, 1) });
  }
  zip.end();
  await once(out, 'close');
}

/** Build a workbook with exceljs and write it to `path`. */
export async function writeXlsx(path: string, build: (workbook: ExcelJS.Workbook) => void): Promise<void> {
  const workbook = new ExcelJS.Workbook();
  build(workbook);
  await workbook.xlsx.writeFile(path);
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export interface RawXlsxSheet {
  name: string;
  /** What goes inside `<sheetData>`. */
  rows: string;
  /** Zip member name (default `xl/worksheets/sheetN.xml`). */
  part?: string;
  /** What follows `</sheetData>` (e.g. `<mergeCells>…</mergeCells>`). */
  after?: string;
}

/**
 * An .xlsx from raw parts. `styles` lists number format codes: cell style `s="i"` uses the i-th
 * (style 0 is always General). Shared strings are stored after the sheets, as exceljs does.
 */
export async function writeRawXlsx(path: string, opts: { sheets: RawXlsxSheet[]; sharedStrings?: string[]; numberFormats?: string[]; date1904?: boolean }): Promise<void> {
  const sheets = opts.sheets.map((s, i) => ({ ...s, part: s.part ?? `xl/worksheets/sheet${i + 1}.xml` }));
  const formats = opts.numberFormats ?? [];
  const members: Record<string, string> = {
    '[Content_Types].xml':
      '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
      '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/></Types>',
    '_rels/.rels':
      '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
      '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    'xl/workbook.xml':
      '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">' +
      `<workbookPr${opts.date1904 ? ' date1904="1"' : ''}/><sheets>` +
      sheets.map((s, i) => `<sheet name="${xmlEscape(s.name)}" sheetId="${i + 1}" r:id="rIdS${i + 1}"/>`).join('') +
      '</sheets></workbook>',
    'xl/_rels/workbook.xml.rels':
      '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
      sheets.map((s, i) => `<Relationship Id="rIdS${i + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="/${s.part}"/>`).join('') +
      '<Relationship Id="rIdT" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>' +
      '<Relationship Id="rIdY" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>' +
      '</Relationships>',
    'xl/styles.xml':
      '<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">' +
      `<numFmts count="${formats.length}">${formats.map((f, i) => `<numFmt numFmtId="${164 + i}" formatCode="${xmlEscape(f)}"/>`).join('')}</numFmts>` +
      '<cellStyleXfs count="1"><xf numFmtId="0"/></cellStyleXfs>' +
      `<cellXfs count="${formats.length + 1}"><xf numFmtId="0" xfId="0"/>${formats.map((_, i) => `<xf numFmtId="${164 + i}" xfId="0" applyNumberFormat="1"/>`).join('')}</cellXfs>` +
      '</styleSheet>',
  };
  for (const s of sheets) {
    members[s.part] = '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">' + `<sheetData>${s.rows}</sheetData>${s.after ?? ''}</worksheet>`;
  }
  const strings = opts.sharedStrings ?? [];
  members['xl/sharedStrings.xml'] =
    `<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="${strings.length}" uniqueCount="${strings.length}">` +
    strings.map((s) => (s.startsWith('<') ? `<si>${s}</si>` : `<si><t xml:space="preserve">${xmlEscape(s)}</t></si>`)).join('') +
    '</sst>';
  await writeZip(path, members);
}

// ---------------------------------------------------------------------------------------------
// OpenDocument

const ODS_NS =
  'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" ' +
  'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0" ' +
  'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"';

/** Cells of an ODS row, as content.xml writes them. */
export const ods = {
  text: (s: string, attrs = '') => `<table:table-cell office:value-type="string"${attrs}><text:p>${xmlEscape(s)}</text:p></table:table-cell>`,
  /** Raw paragraph XML (`text:s`, `text:line-break`…) inside a string cell. */
  rich: (paragraphs: string[]) => `<table:table-cell office:value-type="string">${paragraphs.map((p) => `<text:p>${p}</text:p>`).join('')}</table:table-cell>`,
  float: (n: number, shown = String(n), repeat = 1) =>
    `<table:table-cell office:value-type="float" office:value="${n}"${repeat > 1 ? ` table:number-columns-repeated="${repeat}"` : ''}><text:p>${shown}</text:p></table:table-cell>`,
  percentage: (n: number) => `<table:table-cell office:value-type="percentage" office:value="${n}"><text:p>${n * 100}%</text:p></table:table-cell>`,
  currency: (n: number, code = 'EUR') => `<table:table-cell office:value-type="currency" office:currency="${code}" office:value="${n}"><text:p>${n} €</text:p></table:table-cell>`,
  date: (iso: string) => `<table:table-cell office:value-type="date" office:date-value="${iso}"><text:p>${iso}</text:p></table:table-cell>`,
  time: (duration: string) => `<table:table-cell office:value-type="time" office:time-value="${duration}"><text:p>${duration}</text:p></table:table-cell>`,
  bool: (b: boolean) => `<table:table-cell office:value-type="boolean" office:boolean-value="${b}"><text:p>${b ? 'TRUE' : 'FALSE'}</text:p></table:table-cell>`,
  error: (code: string) => `<table:table-cell table:formula="of:=1/0" office:value-type="string" office:string-value="" calcext:value-type="error"><text:p>${code}</text:p></table:table-cell>`,
  empty: (repeat = 1) => (repeat > 1 ? `<table:table-cell table:number-columns-repeated="${repeat}"/>` : '<table:table-cell/>'),
  /** A merged cell: `across` columns, `down` rows (the covered cells follow separately). */
  span: (s: string, across: number, down = 1) =>
    `<table:table-cell office:value-type="string" table:number-columns-spanned="${across}" table:number-rows-spanned="${down}"><text:p>${xmlEscape(s)}</text:p></table:table-cell>`,
  covered: (repeat = 1, hidden?: string) =>
    `<table:covered-table-cell${repeat > 1 ? ` table:number-columns-repeated="${repeat}"` : ''}${hidden ? ` office:value-type="string"><text:p>${xmlEscape(hidden)}</text:p></table:covered-table-cell>` : '/>'}`,
  row: (cells: string[], repeat = 1) => `<table:table-row${repeat > 1 ? ` table:number-rows-repeated="${repeat}"` : ''}>${cells.join('')}</table:table-row>`,
  /** A blank row repeated `repeat` times, the way spreadsheet programs pad a sheet to its last row. */
  blankRows: (repeat: number) => `<table:table-row table:number-rows-repeated="${repeat}"><table:table-cell table:number-columns-repeated="16384"/></table:table-row>`,
};

/**
 * Write an .ods whose sheets hold the given rows (each from `ods.row`). A `hidden` sheet gets a
 * table style with `table:display="false"`, the others one with `"true"`, as LibreOffice writes them.
 */
export async function writeOds(path: string, sheets: { name: string; rows: string[]; hidden?: boolean }[], opts: { mimetype?: string } = {}): Promise<void> {
  const styled = sheets.some((s) => s.hidden);
  const content =
    `<?xml version="1.0" encoding="UTF-8"?><office:document-content ${ODS_NS} office:version="1.3">` +
    (styled
      ? '<office:automatic-styles><style:style style:name="ta1" style:family="table"><style:table-properties table:display="true"/></style:style>' +
        '<style:style style:name="ta2" style:family="table"><style:table-properties table:display="false"/></style:style></office:automatic-styles>'
      : '') +
    '<office:body><office:spreadsheet>' +
    sheets
      .map(
        (s) =>
          `<table:table table:name="${xmlEscape(s.name)}"${styled ? ` table:style-name="${s.hidden ? 'ta2' : 'ta1'}"` : ''}><table:table-column table:number-columns-repeated="16384"/>${s.rows.join('')}</table:table>`,
      )
      .join('') +
    '</office:spreadsheet></office:body></office:document-content>';
  await writeZip(path, {
    mimetype: opts.mimetype ?? 'application/vnd.oasis.opendocument.spreadsheet',
    'META-INF/manifest.xml':
      '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">' +
      '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>' +
      '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>',
    'content.xml': content,
  });
}

// ---------------------------------------------------------------------------------------------
// Excel 97–2003 (.xls): BIFF8 records in the Workbook stream of an OLE2 compound file

/** A cell value as an .xls stores it. */
export type XlsValue = string | number | boolean | { error: number } | { label: string } | { rk: number; x100?: boolean } | { mulrk: number[] } | { formula: number | boolean | string | { error: number } };

export interface XlsCell {
  r: number;
  c: number;
  v: XlsValue;
  /** XF index: 0 General, 1 the built-in date format 14, 2+i the i-th of `formats`. */
  xf?: number;
}

export interface XlsSheetSpec {
  name: string;
  cells: XlsCell[];
  /** [firstRow, lastRow, firstCol, lastCol], 0-based. */
  merges?: [number, number, number, number][];
  hidden?: boolean;
  /** Put a chart's own BOF…EOF substream (with a stray NUMBER) among the cells. */
  embeddedChart?: boolean;
}

/** Excel's error codes in BOOLERR and FORMULA records. */
export const XLS_ERROR = { na: 0x2a, div0: 0x07, value: 0x0f } as const;

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const f64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(n);
  return b;
};
const record = (type: number, ...payload: Buffer[]) => {
  const data = Buffer.concat(payload);
  return Buffer.concat([u16(type), u16(data.length), data]);
};
const isWide = (s: string) => [...s].some((ch) => ch.charCodeAt(0) > 0xff);
const charBytes = (s: string, wide: boolean) => Buffer.from(s, wide ? 'utf16le' : 'latin1');
/** XLUnicodeString (16-bit count) or ShortXLUnicodeString (8-bit count). */
const unicodeString = (s: string, countBytes: 1 | 2 = 2) => {
  const wide = isWide(s);
  return Buffer.concat([countBytes === 1 ? Buffer.from([s.length]) : u16(s.length), Buffer.from([wide ? 1 : 0]), charBytes(s, wide)]);
};

/** RK encoding of an integer (30 bits), optionally stored ×100. */
function rk(n: number, x100 = false): number {
  const stored = x100 ? Math.round(n * 100) : n;
  if (!Number.isInteger(stored) || Math.abs(stored) >= 2 ** 29) throw new Error(`${n} is not an RK integer`);
  return ((stored << 2) | 0x02 | (x100 ? 0x01 : 0)) >>> 0;
}

/** The SST and its CONTINUE records, split every `max` bytes the way Excel splits them. */
function sstRecords(strings: string[], max: number): Buffer[] {
  const out: Buffer[] = [];
  let current: Buffer[] = [u32(strings.length), u32(strings.length)];
  let size = 8;
  let first = true;
  const flush = () => {
    out.push(record(first ? 0x00fc : 0x003c, ...current));
    first = false;
    current = [];
    size = 0;
  };
  const push = (b: Buffer) => {
    current.push(b);
    size += b.length;
  };
  for (const s of strings) {
    const wide = isWide(s);
    if (size + 3 > max) flush();
    push(u16(s.length));
    push(Buffer.from([wide ? 1 : 0]));
    let rest = s;
    while (rest.length > 0) {
      const fit = Math.floor((max - size) / (wide ? 2 : 1));
      if (fit === 0) {
        flush();
        push(Buffer.from([wide ? 1 : 0]));
        continue;
      }
      push(charBytes(rest.slice(0, fit), wide));
      rest = rest.slice(fit);
    }
  }
  flush();
  return out;
}

const NO_STREAM = 0xffffffff;
const END_OF_CHAIN = 0xfffffffe;

function directoryEntry(name: string, type: number, child: number, start: number, size: number): Buffer {
  const e = Buffer.alloc(128);
  if (type !== 0) {
    e.write(name, 0, 'utf16le');
    e.writeUInt16LE((name.length + 1) * 2, 64);
  }
  e[66] = type;
  e[67] = 1;
  e.writeUInt32LE(NO_STREAM, 68);
  e.writeUInt32LE(NO_STREAM, 72);
  e.writeUInt32LE(child, 76);
  e.writeUInt32LE(start, 116);
  e.writeUInt32LE(size, 120);
  return e;
}

/** An OLE2 compound file (version 3, 512-byte sectors) holding one stream; small streams go in the mini stream. */
export function compoundFile(streamName: string, data: Buffer): Buffer {
  const small = data.length < 4096;
  const payload = small ? Buffer.concat([data, Buffer.alloc((64 - (data.length % 64)) % 64)]) : data;
  const dataSectors = Math.ceil(payload.length / 512);
  const extra = 1 + (small ? 1 : 0); // directory, mini FAT
  let fatSectors = 1;
  while (fatSectors * 128 < fatSectors + extra + dataSectors) fatSectors++;
  const dirSector = fatSectors;
  const miniFatSector = small ? fatSectors + 1 : END_OF_CHAIN;
  const dataStart = fatSectors + extra;
  const fat = Buffer.alloc(fatSectors * 512, 0xff);
  for (let i = 0; i < fatSectors; i++) fat.writeUInt32LE(0xfffffffd, i * 4);
  fat.writeUInt32LE(END_OF_CHAIN, dirSector * 4);
  if (small) fat.writeUInt32LE(END_OF_CHAIN, miniFatSector * 4);
  for (let i = 0; i < dataSectors; i++) fat.writeUInt32LE(i === dataSectors - 1 ? END_OF_CHAIN : dataStart + i + 1, (dataStart + i) * 4);

  const header = Buffer.alloc(512);
  Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]).copy(header, 0);
  header.writeUInt16LE(0x003e, 24);
  header.writeUInt16LE(0x0003, 26);
  header.writeUInt16LE(0xfffe, 28);
  header.writeUInt16LE(9, 30);
  header.writeUInt16LE(6, 32);
  header.writeUInt32LE(fatSectors, 44);
  header.writeUInt32LE(dirSector, 48);
  header.writeUInt32LE(4096, 56);
  header.writeUInt32LE(miniFatSector, 60);
  header.writeUInt32LE(small ? 1 : 0, 64);
  header.writeUInt32LE(END_OF_CHAIN, 68);
  for (let i = 0; i < 109; i++) header.writeUInt32LE(i < fatSectors ? i : NO_STREAM, 76 + i * 4);

  const directory = Buffer.concat([
    directoryEntry('Root Entry', 5, 1, small ? dataStart : END_OF_CHAIN, small ? payload.length : 0),
    directoryEntry(streamName, 2, NO_STREAM, small ? 0 : dataStart, data.length),
    directoryEntry('', 0, NO_STREAM, 0, 0),
    directoryEntry('', 0, NO_STREAM, 0, 0),
  ]);
  const parts: Buffer[] = [header, fat, directory];
  if (small) {
    const miniFat = Buffer.alloc(512, 0xff);
    const miniSectors = payload.length / 64;
    for (let i = 0; i < miniSectors; i++) miniFat.writeUInt32LE(i === miniSectors - 1 ? END_OF_CHAIN : i + 1, i * 4);
    parts.push(miniFat);
  }
  parts.push(payload, Buffer.alloc(dataSectors * 512 - payload.length));
  return Buffer.concat(parts);
}

/**
 * The BIFF8 Workbook stream of an .xls. `sstRecordBytes` splits the shared-string table into
 * CONTINUE records that small; `biffVersion` and `password` make the files Excel 5.0 or
 * encryption would. Padded past 4,096 bytes (as Excel does) unless `small`.
 */
export function xlsWorkbookStream(opts: { sheets: XlsSheetSpec[]; formats?: string[]; date1904?: boolean; sstRecordBytes?: number; biffVersion?: number; password?: boolean; small?: boolean }): Buffer {
  const formats = opts.formats ?? [];
  const strings: string[] = [];
  const stringIndex = new Map<string, number>();
  const sst = (s: string) => {
    if (!stringIndex.has(s)) {
      stringIndex.set(s, strings.length);
      strings.push(s);
    }
    return stringIndex.get(s)!;
  };
  const bof = (dt: number) => record(0x0809, u16(opts.biffVersion ?? 0x0600), u16(dt), u16(0x0dbb), u16(0x07cc), u32(0), u32(0x06));
  const eof = () => record(0x000a);

  const sheetStreams = opts.sheets.map((sheet) => {
    const out: Buffer[] = [bof(0x0010)];
    const cells = [...sheet.cells].sort((a, b) => a.r - b.r || a.c - b.c);
    cells.forEach((cell, i) => {
      const head = [u16(cell.r), u16(cell.c), u16(cell.xf ?? 0)];
      const v = cell.v;
      if (typeof v === 'string') out.push(record(0x00fd, ...head, u32(sst(v))));
      else if (typeof v === 'number') out.push(record(0x0203, ...head, f64(v)));
      else if (typeof v === 'boolean') out.push(record(0x0205, ...head, Buffer.from([v ? 1 : 0, 0])));
      else if ('error' in v) out.push(record(0x0205, ...head, Buffer.from([v.error, 1])));
      else if ('label' in v) out.push(record(0x0204, ...head, unicodeString(v.label)));
      else if ('rk' in v) out.push(record(0x027e, ...head, u32(rk(v.rk, v.x100))));
      else if ('mulrk' in v) {
        out.push(record(0x00bd, u16(cell.r), u16(cell.c), ...v.mulrk.flatMap((n) => [u16(cell.xf ?? 0), u32(rk(n))]), u16(cell.c + v.mulrk.length - 1)));
      } else {
        const result = v.formula;
        let value: Buffer;
        if (typeof result === 'number') value = f64(result);
        else if (typeof result === 'boolean') value = Buffer.from([1, 0, result ? 1 : 0, 0, 0, 0, 0xff, 0xff]);
        else if (typeof result === 'string') value = Buffer.from([0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        else value = Buffer.from([2, 0, result.error, 0, 0, 0, 0xff, 0xff]);
        // The formula itself (a constant 1: ptgInt) is never read back.
        out.push(record(0x0006, ...head, value, u16(0), u32(0), u16(3), Buffer.from([0x1e, 1, 0])));
        if (typeof result === 'string') out.push(record(0x0207, unicodeString(result)));
      }
      if (sheet.embeddedChart && i === 0) out.push(bof(0x0020), record(0x0203, u16(0), u16(0), u16(0), f64(666)), eof());
    });
    if (sheet.merges?.length) out.push(record(0x00e5, u16(sheet.merges.length), ...sheet.merges.flatMap((m) => m.map(u16))));
    out.push(eof());
    return Buffer.concat(out);
  });

  const xfs = [0, 14, ...formats.map((_, i) => 164 + i)].map((ifmt) => record(0x00e0, u16(0), u16(ifmt), Buffer.alloc(16)));
  const globalsBefore = Buffer.concat([
    bof(0x0005),
    ...(opts.password ? [record(0x002f, Buffer.alloc(54))] : []),
    record(0x0042, u16(1200)),
    ...(opts.date1904 ? [record(0x0022, u16(1))] : []),
    ...formats.map((code, i) => record(0x041e, u16(164 + i), unicodeString(code))),
    ...xfs,
  ]);
  const boundSheetSize = (s: XlsSheetSpec) => 4 + 6 + unicodeString(s.name, 1).length;
  const globalsAfter = Buffer.concat([...sstRecords(strings, opts.sstRecordBytes ?? 8224), eof()]);
  let offset = globalsBefore.length + opts.sheets.reduce((n, s) => n + boundSheetSize(s), 0) + globalsAfter.length;
  const boundSheets = opts.sheets.map((s, i) => {
    const r = record(0x0085, u32(offset), Buffer.from([s.hidden ? 1 : 0, 0]), unicodeString(s.name, 1));
    offset += sheetStreams[i]!.length;
    return r;
  });
  const stream = Buffer.concat([globalsBefore, ...boundSheets, globalsAfter, ...sheetStreams]);
  return opts.small || stream.length >= 4096 ? stream : Buffer.concat([stream, Buffer.alloc(4096 - stream.length)]);
}

/** Write an .xls built by `xlsWorkbookStream`. */
export async function writeXls(path: string, opts: Parameters<typeof xlsWorkbookStream>[0]): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path, compoundFile('Workbook', xlsWorkbookStream(opts)));
}
