/**
 * ESRI shapefile reader: `.shp` geometry as hex WKB plus `.dbf` attributes, one row per record.
 *
 * Own reader rather than the `shapefile` package, for both parts:
 * - geometry: the package builds a GeoJSON object per record (an array per vertex); here the
 *   record bytes become WKB directly (`ShapeEncoder`, wkb.ts), which is several times faster
 *   and allocates one string per record;
 * - attributes: the package has no answer for the things staging must get right — deleted records
 *   (skipped, with the positions of the others kept), blank numbers and dates as NULL, logical
 *   `?`, encodings from the `.cpg` or the language driver byte through iconv-lite, and errors that
 *   name the record and byte offset.
 *
 * Both files are read front to back in 1 MiB chunks, in step, record by record: memory is bounded
 * by the chunk and the largest record whatever the file size. The `.shx` index is not needed for
 * that and is not read (a `.shp` with gaps between records, which only the index could skip, is
 * reported as malformed at the gap). Each part is a file on disk or a member still in its zip
 * (archive.ts, `ArchivedMember`), inflated as it is read: a zipped shapefile is never extracted.
 *
 * Types: each field's declared type (`declaredTypes`, once the records are read): C text; N/F
 * without decimals integer (bigint, numeric for more digits), with decimals numeric; D date; L
 * boolean — as long as every value read fits it (a number written with a leading zero, a date
 * that names no real day, a `?`-less odd logical: no declared type, the load infers one).
 *
 * Values: C text with its padding trimmed on both sides (all blank → NULL; both as GDAL reads it); N/F as written,
 * trimmed (blank or `***` overflow → NULL); D `YYYYMMDD` → `YYYY-MM-DD` (blank/zeros → NULL,
 * anything else as written); L T/Y → `true`, F/N → `false`, `?`/blank → NULL. Other field types
 * (memo, binary) are read as text, with a warning.
 *
 * Text encoding: `opts.encoding`, else the `.cpg`, else the DBF language driver byte, else
 * detected at the first record with a non-ASCII byte: valid UTF-8 → UTF-8, otherwise
 * windows-1252. Bytes that are not UTF-8 later in a file read as UTF-8 become U+FFFD, with a
 * warning naming the first feature.
 */
import { isUtf8 } from 'node:buffer';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { basename, posix } from 'node:path';
import iconv from 'iconv-lite';
import type { ArchivedMember } from './archive.ts';
import { describePrj } from './prj.ts';
import { readLimits, type ReadLimits } from '../common/limits.ts';
import { beyondLimit, ReadError, type DeclaredType, type ReadOptions, type ReadRow, type ReadTable, type SourceGeometry } from './types.ts';
import { SHAPE_TYPES, ShapeEncoder, ShapeFormatError, type ShapeRepairs } from './wkb.ts';

/** A part of a shapefile: its path on local disk, or the member of a zip archive it still is. */
export type ShapefilePart = string | ArchivedMember;

/** A shapefile's parts. */
export interface ShapefileParts {
  shp: ShapefilePart;
  dbf?: ShapefilePart;
  shx?: ShapefilePart;
  prj?: ShapefilePart;
  cpg?: ShapefilePart;
}

/** Bytes read from disk at a time, per file. */
const CHUNK_BYTES = 1024 * 1024;
/** Records per batch of `binaryBatches`. */
const BATCH_ROWS = 512;
const SHP_HEADER_BYTES = 100;
const SHP_FILE_CODE = 9994;

/**
 * The shapefile as a table: the DBF fields, then the geometry column (`geometry`, or
 * `geometry_2`… when a field already has that name) as hex WKB. Headers are read here (a wrong
 * file fails now, not at the first row); the records are read by `rows()`.
 *
 * @param name how messages name the file, e.g. `incoming/acme/parks.zip!parks.shp`
 */
export async function readShapefile(parts: ShapefileParts, name: string, opts: ReadOptions = {}): Promise<ShapefileTable> {
  const shpFile = partName(parts.shp);
  if (!parts.dbf) throw new ReadError(`${name}: the .dbf that goes with ${shpFile} is missing`, { file: name });
  const warnings: string[] = [];
  const shp = await readShpHeader(parts.shp, name);
  const encoding = await chooseEncoding(parts, name, opts, warnings);
  const dbf = await readDbfHeader(parts.dbf, name, encoding, warnings, readLimits(opts.limits));
  const { srid, crs } = await sridOf(parts.prj, name, opts, warnings);

  const column = geometryColumnName(dbf.fields.map((f) => f.name));
  const declared = SHAPE_TYPES[shp.shapeType]?.declared;
  const fits = dbf.fields.map((f) => new FieldFit(f));
  return {
    name,
    format: 'shapefile',
    columns: [...dbf.fields.map((f) => f.name), column],
    geometry: { column, encoding: 'wkb', ...(srid !== undefined ? { srid } : {}), ...(crs ? { crs } : {}), ...(declared ? { type: declared } : {}) },
    unit: 'feature',
    warnings,
    rows: () => readRecords(parts.shp, parts.dbf!, shp, dbf, name, warnings, fits, false) as AsyncGenerator<ReadRow>,
    declaredTypes: () => [...fits.map((f) => f.type()), undefined],
    expectedTypes: () => [...fits.map((f) => f.expected()), undefined],
    binaryBatches: () => readRecords(parts.shp, parts.dbf!, shp, dbf, name, warnings, fits, true) as AsyncGenerator<WkbRow[]>,
  };
}

/**
 * A record of a shapefile read for a load that writes the final rows itself (local/load-direct.ts):
 * the attribute values as `rows()` gives them (the geometry's slot left NULL) and the shape's WKB
 * bytes — a view of the encoder's buffer, valid only until the next batch of records is asked
 * for — or `null` for a Null shape, or NON_FINITE_SHAPE (wkb.ts) for a shape with a NaN or infinite coordinate.
 */
export interface WkbRow extends ReadRow {
  wkb: Buffer | string | null;
}

/** A shapefile's table, with what a direct load needs beyond ReadTable. */
export interface ShapefileTable extends ReadTable {
  /** The type `declaredTypes` will give each column if every value fits the field's declaration (from the .dbf header alone). */
  expectedTypes: () => (DeclaredType | undefined)[];
  /**
   * The records with their shapes as WKB bytes (WkbRow), once, in batches of up to BATCH_ROWS: a
   * batch is read without waiting on anything but the files, so the rows cost no promise each.
   */
  binaryBatches: () => AsyncIterable<WkbRow[]>;
}

/** Whether `table` is a shapefile's, read by this reader. */
export function isShapefileTable(table: ReadTable): table is ShapefileTable {
  return table.format === 'shapefile' && 'binaryBatches' in table;
}

// ---------------------------------------------------------------------------------------------
// .shp

interface ShpHeader {
  shapeType: number;
  /** Bytes of the file on disk. */
  size: number;
  /** Bytes the header declares (its length field is in 16-bit words). */
  declared: number;
}

async function readShpHeader(path: ShapefilePart, name: string): Promise<ShpHeader> {
  const size = await partSize(path);
  const head = await readAt(path, 0, SHP_HEADER_BYTES);
  const code = head.length >= 4 ? head.readInt32BE(0) : undefined;
  if (code !== SHP_FILE_CODE) {
    throw new ReadError(`${name}: not a shapefile: a .shp starts with the file code ${SHP_FILE_CODE}, this one ${code === undefined ? 'is too short to have one' : `with ${code}`}`, {
      file: name,
      offset: 0,
    });
  }
  if (head.length < SHP_HEADER_BYTES) {
    throw new ReadError(`${name}: the .shp is cut off in its 100-byte header (the file has ${size} bytes)`, { file: name, offset: head.length });
  }
  const shapeType = head.readInt32LE(32);
  if (!(shapeType in SHAPE_TYPES)) {
    throw new ReadError(`${name}: the .shp header declares shape type ${shapeType}, which is not a shapefile shape type`, { file: name, offset: 32 });
  }
  return { shapeType, size, declared: head.readInt32BE(24) * 2 };
}

// ---------------------------------------------------------------------------------------------
// .dbf

type FieldKind = 'text' | 'number' | 'date' | 'logical';

interface DbfField {
  name: string;
  type: string;
  kind: FieldKind;
  /** Decimal places (N and F fields). */
  decimals: number;
  /** Offset in the record (the deletion flag is byte 0). */
  offset: number;
  length: number;
}

interface DbfHeader {
  file: string;
  records: number;
  headerBytes: number;
  recordBytes: number;
  fields: DbfField[];
  text: DbfText;
}

const KIND: Record<string, FieldKind> = { C: 'text', N: 'number', F: 'number', D: 'date', L: 'logical' };

async function readDbfHeader(path: ShapefilePart, name: string, encoding: EncodingChoice, warnings: string[], limits: ReadLimits): Promise<DbfHeader> {
  const file = partName(path);
  const bad = (what: string, offset: number) => new ReadError(`${name}: its .dbf (${file}) is not a dBASE table: ${what}`, { file: name, offset });
  const size = await partSize(path);
  const fixed = await readAt(path, 0, 32);
  if (fixed.length < 32) throw bad(`it has ${size} bytes, fewer than a dBASE header's 32`, 0);
  const records = fixed.readUInt32LE(4);
  const headerBytes = fixed.readUInt16LE(8);
  const recordBytes = fixed.readUInt16LE(10);
  if (headerBytes < 33 || recordBytes < 1) throw bad(`its header says ${headerBytes} header bytes and ${recordBytes} bytes per record`, 8);
  // a count the file cannot hold (2³¹ records in a few hundred bytes): damaged, not a short table
  if (headerBytes + records * recordBytes > size) {
    throw new ReadError(
      `${name}: its .dbf (${file}) says it holds ${records} records of ${recordBytes} bytes after a ${headerBytes}-byte header (${headerBytes + records * recordBytes} bytes), but the file has ${size} bytes: it is cut off or its header is damaged`,
      { file: name, offset: 4 },
    );
  }
  if (records > limits.maxRecords) throw beyondLimit(name, `its .dbf (${file}) declares ${records.toLocaleString('en-US')} records`, 'maxRecords', limits.maxRecords);
  const header = await readAt(path, 0, headerBytes);
  if (header.length < headerBytes) throw bad(`the file ends at byte ${header.length}, inside its ${headerBytes}-byte header`, header.length);

  const text = new DbfText(encoding.encoding ?? ldidEncoding(header[29]!));
  const fields: DbfField[] = [];
  let offset = 1;
  for (let p = 32; p + 32 <= headerBytes && header[p] !== 0x0d; p += 32) {
    const type = String.fromCharCode(header[p + 11]!).toUpperCase();
    const length = header[p + 16]!;
    const nul = header.indexOf(0, p);
    const fieldName = text.name(header, p, nul >= 0 && nul < p + 11 ? nul : p + 11);
    fields.push({ name: fieldName, type, kind: KIND[type] ?? 'text', decimals: header[p + 17]!, offset, length });
    offset += length;
  }
  // each field is a column, and the geometry one more: refused from the header, before a record is read
  // (a record is at most 65,535 bytes, the header's 16-bit length, and its fields must fit in it)
  if (fields.length + 1 > limits.maxColumns) {
    throw beyondLimit(
      name,
      `its .dbf (${file}) declares ${fields.length.toLocaleString('en-US')} fields, ${(fields.length + 1).toLocaleString('en-US')} columns with the geometry`,
      'maxColumns',
      limits.maxColumns,
      { line: 1 },
    );
  }
  if (offset > recordBytes) throw bad(`its fields add up to ${offset} bytes per record, more than the ${recordBytes} its header says`, 10);
  const unusual = fields.filter((f) => !(f.type in KIND));
  if (unusual.length > 0) {
    warnings.push(`${name}: ${unusual.map((f) => `field ${f.name} (dBASE type ${f.type})`).join(', ')} read as text: shapefiles normally hold only C, N, F, D and L fields`);
  }
  return { file, records, headerBytes, recordBytes, fields, text };
}

/**
 * Decodes DBF text. With a known encoding: UTF-8 natively, single-byte encodings through
 * iconv-lite (ASCII-only fields, the vast majority, natively). Without one: UTF-8 until the first
 * record with a non-ASCII byte decides between UTF-8 and windows-1252 for the rest of the file.
 */
class DbfText {
  /** Records with bytes that are not UTF-8 while reading as UTF-8. */
  invalid = 0;
  firstInvalid?: number;
  /** Set when detection settled on an encoding, for a warning. */
  detected?: string;

  constructor(public encoding: string | undefined) {}

  /** A field name: ASCII in practice; decoded like values otherwise. */
  name(buf: Buffer, start: number, end: number): string {
    return this.decode(buf, start, trimEnd(buf, start, end), undefined).trim();
  }

  /**
   * `buf[start, end)`; `record` is the record's byte range, used once to detect the encoding.
   * @param feature for the warning about invalid UTF-8
   */
  decode(buf: Buffer, start: number, end: number, record: [number, number] | undefined, feature?: number): string {
    if (isAscii(buf, start, end)) return buf.toString('latin1', start, end);
    if (this.encoding === undefined) {
      const bytes = record ? buf.subarray(record[0], record[1]) : buf.subarray(start, end);
      this.encoding = isUtf8(bytes) ? 'utf-8' : 'windows-1252';
      this.detected = this.encoding;
    }
    if (this.encoding === 'utf-8') {
      const s = buf.toString('utf8', start, end);
      if (feature !== undefined && s.includes('\uFFFD') && !isUtf8(buf.subarray(start, end))) {
        this.invalid++;
        this.firstInvalid ??= feature;
      }
      return s;
    }
    return iconv.decode(buf.subarray(start, end), this.encoding);
  }
}

function isAscii(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return false;
  return true;
}

/** End of `buf[start, end)` without trailing spaces and NULs. */
function trimEnd(buf: Buffer, start: number, end: number): number {
  while (end > start && (buf[end - 1] === 0x20 || buf[end - 1] === 0)) end--;
  return end;
}

function trimStart(buf: Buffer, start: number, end: number): number {
  while (start < end && (buf[start] === 0x20 || buf[start] === 0)) start++;
  return start;
}

function fieldValue(buf: Buffer, base: number, field: DbfField, text: DbfText, recordEnd: number, feature: number): string | null {
  const s = base + field.offset;
  const end = trimEnd(buf, s, s + field.length);
  if (end === s) return null;
  switch (field.kind) {
    case 'text': {
      const start = trimStart(buf, s, end);
      return text.decode(buf, start, end, [base, recordEnd], feature);
    }
    case 'number': {
      const start = trimStart(buf, s, end);
      if (buf[start] === 0x2a /* * */ && isOverflow(buf, start, end)) return null;
      return buf.toString('latin1', start, end);
    }
    case 'date': {
      const raw = buf.toString('latin1', trimStart(buf, s, end), end);
      if (raw === '00000000') return null;
      return /^\d{8}$/.test(raw) ? `${raw.slice(0, 4)}-${raw.slice(4, 6)}-${raw.slice(6, 8)}` : raw;
    }
    case 'logical': {
      const c = buf[trimStart(buf, s, end)]!;
      if (c === 0x54 || c === 0x74 || c === 0x59 || c === 0x79) return 'true'; // T t Y y
      if (c === 0x46 || c === 0x66 || c === 0x4e || c === 0x6e) return 'false'; // F f N n
      if (c === 0x3f) return null; // ?
      return buf.toString('latin1', trimStart(buf, s, end), end);
    }
  }
}

/**
 * Whether a field's values, as read, fit the type its descriptor declares; for N/F fields without
 * decimals, also how many digits the widest has (integer, bigint or numeric). The same written
 * forms as the type inference of other files takes (profile/column-type.ts): a number with a leading zero
 * is a code, not a number, and makes the type undeclared.
 */
class FieldFit {
  private fits = true;
  private digits = 0;
  private complete = false;

  constructor(private readonly field: DbfField) {}

  reset(): void {
    this.fits = true;
    this.digits = 0;
    this.complete = false;
  }

  see(v: string): void {
    if (!this.fits) return;
    switch (this.field.kind) {
      case 'text':
        return;
      case 'number':
        if (this.field.decimals === 0) {
          const digits = integerDigits(v);
          if (digits < 0) this.fits = false;
          else if (digits > this.digits) this.digits = digits;
        } else if (!isDecimal(v)) this.fits = false;
        return;
      case 'date':
        if (!isIsoDay(v)) this.fits = false;
        return;
      case 'logical':
        if (v !== 'true' && v !== 'false') this.fits = false;
        return;
    }
  }

  /** The type `type()` gives if every value fits: from the field's declaration alone (an integer field's width stands for its values' digits). */
  expected(): DeclaredType | undefined {
    switch (this.field.kind) {
      case 'text':
        return this.field.type === 'C' ? 'text' : undefined;
      case 'number':
        if (this.field.decimals > 0) return 'numeric';
        return this.field.length <= 10 ? 'integer' : this.field.length <= 19 ? 'bigint' : 'numeric';
      case 'date':
        return 'date';
      case 'logical':
        return 'boolean';
    }
  }

  /** Called by readRecords once the last record is read: types are known from then on. */
  done(): void {
    this.complete = true;
  }

  type(): DeclaredType | undefined {
    if (!this.complete || !this.fits) return undefined;
    switch (this.field.kind) {
      case 'text':
        return this.field.type === 'C' ? 'text' : undefined;
      case 'number':
        if (this.field.decimals > 0) return 'numeric';
        return this.digits <= 9 ? 'integer' : this.digits <= 18 ? 'bigint' : 'numeric';
      case 'date':
        return 'date';
      case 'logical':
        return 'boolean';
    }
  }
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** Digits of an integer written `[+-]digits` without a leading zero (`0` itself is one); -1 for anything else. */
function integerDigits(v: string): number {
  let i = v.charCodeAt(0) === 0x2b || v.charCodeAt(0) === 0x2d ? 1 : 0;
  const first = i;
  if (i >= v.length || (v.charCodeAt(i) === 0x30 && v.length > i + 1)) return -1;
  for (; i < v.length; i++) if (!isDigit(v.charCodeAt(i))) return -1;
  return v.length - first;
}

/** `[+-]digits[.digits][e±ddd]` (or `.digits`), without a leading zero before another digit: what casts to numeric. */
function isDecimal(v: string): boolean {
  let i = v.charCodeAt(0) === 0x2b || v.charCodeAt(0) === 0x2d ? 1 : 0;
  if (v.charCodeAt(i) === 0x30 && isDigit(v.charCodeAt(i + 1))) return false;
  let digits = 0;
  for (; isDigit(v.charCodeAt(i)); i++) digits++;
  if (v.charCodeAt(i) === 0x2e) {
    i++;
    for (; isDigit(v.charCodeAt(i)); i++) digits++;
  }
  if (digits === 0) return false;
  if (v.charCodeAt(i) === 0x65 || v.charCodeAt(i) === 0x45) {
    i++;
    if (v.charCodeAt(i) === 0x2b || v.charCodeAt(i) === 0x2d) i++;
    const start = i;
    while (isDigit(v.charCodeAt(i))) i++;
    // dBASE writers pad the exponent to three digits (4.63355654586e+007); numeric reads up to 1000
    if (i === start || i - start > 3) return false;
  }
  return i === v.length;
}

/** `YYYY-MM-DD` naming a real day of a year from 1 on. */
function isIsoDay(v: string): boolean {
  if (v.length !== 10 || v.charCodeAt(4) !== 0x2d || v.charCodeAt(7) !== 0x2d) return false;
  // digit by digit: no substrings or arrays made for each of a file's dates
  const year = digitsAt(v, 0, 4);
  const month = digitsAt(v, 5, 2);
  const day = digitsAt(v, 8, 2);
  if (year < 0 || month < 0 || day < 0) return false;
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return day <= (month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31);
}

/** The `n` digits at `v[at]` as a number, -1 if one is not a digit. */
function digitsAt(v: string, at: number, n: number): number {
  let value = 0;
  for (let i = at; i < at + n; i++) {
    const c = v.charCodeAt(i);
    if (!isDigit(c)) return -1;
    value = 10 * value + (c - 0x30);
  }
  return value;
}

function isOverflow(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0x2a) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// encoding

interface EncodingChoice {
  /** An iconv-lite name; undefined: the language driver byte, else detection. */
  encoding?: string;
}

async function chooseEncoding(parts: ShapefileParts, name: string, opts: ReadOptions, warnings: string[]): Promise<EncodingChoice> {
  if (opts.encoding) {
    const encoding = normaliseEncoding(opts.encoding);
    if (!encoding) throw new ReadError(`${name}: read.encoding "${opts.encoding}" is not an encoding this reader knows`, { file: name });
    return { encoding };
  }
  if (parts.cpg) {
    const declared = (await readAt(parts.cpg, 0, 256))
      .toString('latin1')
      .replace(/^\uFEFF|^\u00EF\u00BB\u00BF/, '')
      .trim();
    const encoding = encodingFromCpg(declared);
    if (encoding) return { encoding };
    if (declared) warnings.push(`${name}: the .cpg names the encoding "${declared}", which this reader does not know: the attributes' encoding was detected instead`);
  }
  return {};
}

/**
 * The iconv-lite name for what a `.cpg` says: `UTF-8`, `65001`, `1252`, `ANSI 1252`,
 * `ISO-8859-1`, `88591`, `850`, `OEM`… `undefined` for text naming no encoding we know.
 */
export function encodingFromCpg(text: string): string | undefined {
  const key = text
    .trim()
    .toLowerCase()
    .replace(/^ansi\s*/, '')
    .replace(/\s+/g, '');
  if (!key || key === 'system') return undefined;
  if (key === '65001' || key === 'utf8' || key === 'utf-8') return 'utf-8';
  if (key === 'oem') return 'cp437';
  const iso = /^(?:iso[-_]?)?8859[-_]?(\d{1,2})$/.exec(key);
  if (iso) return normaliseEncoding(`iso-8859-${iso[1]}`);
  if (/^88591\d?$/.test(key)) return normaliseEncoding(`iso-8859-${key.slice(4)}`);
  const codePage = /^(?:cp|windows-?)?(\d{3,5})$/.exec(key);
  if (codePage) {
    const n = Number(codePage[1]);
    const byNumber: Record<number, string> = { 932: 'shift_jis', 936: 'gbk', 949: 'cp949', 950: 'big5', 20866: 'koi8-r', 28591: 'iso-8859-1', 28605: 'iso-8859-15' };
    return normaliseEncoding(byNumber[n] ?? (n >= 1250 && n <= 1258 ? `windows-${n}` : `cp${n}`));
  }
  return normaliseEncoding(key);
}

function normaliseEncoding(name: string): string | undefined {
  const key = name.trim().toLowerCase();
  if (key === 'utf-8' || key === 'utf8') return 'utf-8';
  return iconv.encodingExists(key) ? key : undefined;
}

/**
 * Code page of a DBF language driver id (byte 29), after the dBASE/ArcGIS tables. 0 and
 * unknown ids: `undefined` (detect).
 */
function ldidEncoding(ldid: number): string | undefined {
  const table: Record<number, string> = {
    0x01: 'cp437',
    0x02: 'cp850',
    0x03: 'windows-1252',
    0x04: 'macintosh',
    0x08: 'cp865',
    0x09: 'cp437',
    0x0a: 'cp850',
    0x0b: 'cp437',
    0x0d: 'cp437',
    0x0e: 'cp850',
    0x0f: 'cp437',
    0x10: 'cp850',
    0x11: 'cp437',
    0x12: 'cp850',
    0x13: 'shift_jis',
    0x14: 'cp850',
    0x15: 'cp437',
    0x16: 'cp850',
    0x17: 'cp865',
    0x18: 'cp437',
    0x19: 'cp437',
    0x1a: 'cp850',
    0x1b: 'cp437',
    0x1c: 'cp863',
    0x1d: 'cp850',
    0x1f: 'cp852',
    0x22: 'cp852',
    0x23: 'cp852',
    0x24: 'cp860',
    0x25: 'cp850',
    0x26: 'cp866',
    0x37: 'cp850',
    0x40: 'cp852',
    0x4d: 'gbk',
    0x4e: 'cp949',
    0x4f: 'big5',
    0x50: 'cp874',
    0x57: 'windows-1252',
    0x58: 'windows-1252',
    0x59: 'windows-1252',
    0x64: 'cp852',
    0x65: 'cp866',
    0x66: 'cp865',
    0x67: 'cp861',
    0x6a: 'cp737',
    0x6b: 'cp857',
    0x78: 'big5',
    0x79: 'cp949',
    0x7a: 'gbk',
    0x7b: 'shift_jis',
    0x7c: 'cp874',
    0x86: 'cp737',
    0x87: 'cp852',
    0x88: 'cp857',
    0xc8: 'windows-1250',
    0xc9: 'windows-1251',
    0xca: 'windows-1254',
    0xcb: 'windows-1253',
    0xcc: 'windows-1257',
  };
  return table[ldid];
}

// ---------------------------------------------------------------------------------------------
// .prj

/**
 * The SRID the .prj names, or `read.srid` when there is no .prj. A .prj naming a system this
 * reader does not know by authority or name is handed on as `crs`: the load identifies it by its
 * parameters (clean/source-srid.ts) unless `read.srid` is given. A .prj that is not WKT fails,
 * unless `read.srid` is given: it says nothing the load could identify or check.
 */
async function sridOf(prj: ShapefilePart | undefined, name: string, opts: ReadOptions, warnings: string[]): Promise<{ srid?: number; crs?: SourceGeometry['crs'] }> {
  if (!prj) return opts.srid !== undefined ? { srid: opts.srid } : {};
  const wkt = (await readAt(prj, 0, 64 * 1024)).toString('utf8').trim();
  if (!wkt) return opts.srid !== undefined ? { srid: opts.srid } : {}; // an empty .prj says as much as none
  const info = describePrj(wkt);
  if (info.srid === undefined) {
    if (opts.srid !== undefined) return { srid: opts.srid };
    // not WKT at all: a damaged .prj says nothing we may guess from (the coordinates would be taken as 4326)
    if (info.keyword === undefined) {
      throw new ReadError(
        `${name}: its .prj is not a coordinate system in WKT (it begins ${JSON.stringify(wkt.slice(0, 40))}): give the source's EPSG code with read.srid (--source-srid for civic-etl load)`,
        { file: name },
      );
    }
    return { crs: { wkt, from: 'its .prj', ...(info.name !== undefined ? { name: info.name } : {}) } };
  }
  if (opts.srid !== undefined && opts.srid !== info.srid) {
    warnings.push(`${name}: the .prj says EPSG:${info.srid}, read.srid says ${opts.srid}: the .prj's SRID is used`);
  }
  return { srid: info.srid };
}

// ---------------------------------------------------------------------------------------------
// records

/**
 * The rows, reading .shp and .dbf in step. Deleted DBF records are skipped; positions stay the
 * record numbers. Warnings about repairs and encodings are added when the last record is read.
 */
async function* readRecords(
  shpPath: ShapefilePart,
  dbfPath: ShapefilePart,
  shp: ShpHeader,
  dbf: DbfHeader,
  name: string,
  warnings: string[],
  fits: FieldFit[],
  binary: boolean,
): AsyncGenerator<ReadRow | WkbRow[]> {
  for (const fit of fits) fit.reset();
  const shpIn = await ChunkedFile.open(shpPath, SHP_HEADER_BYTES);
  let dbfIn: ChunkedFile | undefined;
  try {
    dbfIn = await ChunkedFile.open(dbfPath, dbf.headerBytes);
    const encoder = new ShapeEncoder();
    // a header declaring more than the file holds: the file was cut; less: ignore what follows
    const end = Math.min(shp.size, shp.declared >= SHP_HEADER_BYTES ? shp.declared : shp.size);
    const { fields, text, recordBytes } = dbf;
    let feature = 0;
    let batch: WkbRow[] = [];
    while (shpIn.offset < end) {
      const offset = shpIn.offset;
      feature++;
      // awaited only when a chunk is used up: an await per record is a turn of the event loop each
      if (end - offset < 8 || (shpIn.ready(8) ? 8 : await shpIn.fill(8)) < 8) throw cutOff(name, feature, offset, 8, end - offset);
      const contentBytes = shpIn.buf.readInt32BE(shpIn.start + 4) * 2;
      if (contentBytes < 4) {
        throw new ReadError(`${name}: feature ${feature} (record at byte offset ${offset} of the .shp) declares ${contentBytes} bytes of content, fewer than a shape type's 4`, {
          file: name,
          line: feature,
          offset,
        });
      }
      if (offset + 8 + contentBytes > end || (shpIn.ready(8 + contentBytes) ? 8 + contentBytes : await shpIn.fill(8 + contentBytes)) < 8 + contentBytes) {
        throw cutOff(name, feature, offset, 8 + contentBytes, end - offset);
      }
      if ((dbfIn.ready(recordBytes) ? recordBytes : await dbfIn.fill(recordBytes)) < recordBytes || feature > dbf.records) {
        throw new ReadError(
          feature > dbf.records
            ? `${name}: its .dbf (${dbf.file}) has ${dbf.records} records, fewer than the .shp: feature ${feature} (byte offset ${offset} of the .shp) has no attributes`
            : `${name}: its .dbf (${dbf.file}) is cut off in record ${feature} (byte offset ${dbfIn.offset}), though its header promises ${dbf.records} records`,
          { file: name, line: feature, offset },
        );
      }
      const base = dbfIn.start;
      const deleted = dbfIn.buf[base] === 0x2a;
      let row: ReadRow | WkbRow | undefined;
      if (!deleted) {
        const values: (string | null)[] = new Array(fields.length + 1);
        const recordEnd = base + recordBytes;
        for (let i = 0; i < fields.length; i++) {
          const value = (values[i] = fieldValue(dbfIn.buf, base, fields[i]!, text, recordEnd, feature));
          if (value !== null) fits[i]!.see(value);
        }
        let wkb: Buffer | string | null = null;
        try {
          if (binary) {
            // appended to the batch's WKB (the encoder's buffer, rewound for the next batch)
            wkb = encoder.encodeBytes(shpIn.buf, shpIn.start + 8, contentBytes, feature, true);
            values[fields.length] = null;
          } else values[fields.length] = encoder.encode(shpIn.buf, shpIn.start + 8, contentBytes, feature);
        } catch (error) {
          if (!(error instanceof ShapeFormatError)) throw error;
          throw new ReadError(`${name}: feature ${feature} (record at byte offset ${offset} of the .shp) ${error.message}`, { file: name, line: feature, offset }, { cause: error });
        }
        row = binary ? { values, position: feature, wkb } : { values, position: feature };
      }
      shpIn.skip(8 + contentBytes);
      dbfIn.skip(recordBytes);
      if (row && binary) {
        batch.push(row as WkbRow);
        if (batch.length >= BATCH_ROWS) {
          yield batch;
          batch = [];
          encoder.rewind();
        }
      } else if (row) yield row;
    }
    if (batch.length > 0) yield batch;
    if (shp.declared > shp.size) {
      throw new ReadError(`${name}: the .shp is cut off: its header says ${shp.declared} bytes, the file ends after ${shp.size}, after feature ${feature}`, { file: name, line: feature, offset: shp.size });
    }
    warnings.push(...closingWarnings(name, dbf, feature, encoder.repairs));
    for (const fit of fits) fit.done();
  } finally {
    await shpIn.close();
    await dbfIn?.close();
  }
}

function cutOff(name: string, feature: number, offset: number, need: number, left: number): ReadError {
  return new ReadError(`${name}: the .shp is cut off in feature ${feature}: its record at byte offset ${offset} needs ${need} bytes, the file has ${left} left`, { file: name, line: feature, offset });
}

function closingWarnings(name: string, dbf: DbfHeader, features: number, repairs: ShapeRepairs): string[] {
  const out: string[] = [];
  const first = (r: { firstFeature?: number }) => `first in feature ${r.firstFeature}`;
  if (dbf.records > features) {
    out.push(`${name}: its .dbf has ${dbf.records} records, the .shp ${features}: the last ${dbf.records - features} attribute records have no shape and were not read`);
  }
  if (repairs.shortRings.count) out.push(`${name}: ${plural(repairs.shortRings.count, 'polygon ring')} with fewer than 4 points dropped (${first(repairs.shortRings)})`);
  if (repairs.shortParts.count) out.push(`${name}: ${plural(repairs.shortParts.count, 'line part')} with fewer than 2 points dropped (${first(repairs.shortParts)})`);
  if (repairs.orphanHoles.count) {
    out.push(`${name}: ${plural(repairs.orphanHoles.count, 'ring')} oriented as a hole but inside no outer ring kept as polygons of their own (${first(repairs.orphanHoles)})`);
  }
  if (repairs.emptied.count) out.push(`${name}: ${plural(repairs.emptied.count, 'shape')} with nothing left to draw read as NULL geometry (${first(repairs.emptied)})`);
  if (dbf.text.detected === 'windows-1252') out.push(`${name}: the .dbf declares no encoding (no .cpg) and its text is not UTF-8: read as windows-1252`);
  if (dbf.text.invalid) {
    out.push(`${name}: ${plural(dbf.text.invalid, 'text value')} with bytes that are not utf-8 (shown as U+FFFD), first in feature ${dbf.text.firstInvalid}`);
  }
  return out;
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** `geometry`, or `geometry_2`, `geometry_3`… when a field already has the name (any case). */
function geometryColumnName(fields: string[]): string {
  const taken = new Set(fields.map((f) => f.toLowerCase()));
  if (!taken.has('geometry')) return 'geometry';
  let n = 2;
  while (taken.has(`geometry_${n}`)) n++;
  return `geometry_${n}`;
}

// ---------------------------------------------------------------------------------------------
// file access

/** Where a part's bytes come from, in order: `read` fills `buf[offset, offset + length)` as far as it can (0: the end). */
interface ByteSource {
  read(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

/** A file on disk, read at the positions asked for. */
class FileSource implements ByteSource {
  constructor(private readonly handle: FileHandle) {}

  async read(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    return (await this.handle.read(buf, offset, length, position)).bytesRead;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** A zip member, inflated from its start as it is read; the positions asked for follow on (skipped bytes are read and dropped). */
class MemberSource implements ByteSource {
  private readonly chunks: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  private position = 0;

  constructor(member: ArchivedMember) {
    this.chunks = member.open()[Symbol.asyncIterator]();
  }

  async read(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    while (this.position < position || this.pending.length === 0) {
      if (this.pending.length === 0) {
        const next = await this.chunks.next();
        if (next.done) return 0;
        this.pending = next.value;
      }
      const drop = Math.min(position - this.position, this.pending.length);
      if (drop > 0) {
        this.pending = this.pending.subarray(drop);
        this.position += drop;
      }
    }
    const n = Math.min(length, this.pending.length);
    this.pending.copy(buf, offset, 0, n);
    this.pending = this.pending.subarray(n);
    this.position += n;
    return n;
  }

  async close(): Promise<void> {
    await this.chunks.return?.();
  }
}

function openPart(part: ShapefilePart): Promise<ByteSource> | ByteSource {
  return typeof part === 'string' ? open(part, 'r').then((handle) => new FileSource(handle)) : new MemberSource(part);
}

/** The part's file name, for messages. */
function partName(part: ShapefilePart): string {
  return typeof part === 'string' ? basename(part) : posix.basename(part.name);
}

/** Its size on disk, or the size the archive declares for it. */
async function partSize(part: ShapefilePart): Promise<number> {
  return typeof part === 'string' ? (await stat(part)).size : part.size;
}

/**
 * Sequential reading of a part in chunks: `fill(n)` makes `n` bytes available at `buf[start…]`
 * (fewer only at the end of the file), `skip(n)` consumes them. The buffer grows only for a
 * record larger than a chunk.
 */
class ChunkedFile {
  buf: Buffer;
  start = 0;
  private end = 0;
  /** File offset of `buf[end]`. */
  private filePos: number;

  private constructor(
    private readonly handle: ByteSource,
    from: number,
  ) {
    this.buf = Buffer.allocUnsafe(CHUNK_BYTES);
    this.filePos = from;
  }

  static async open(part: ShapefilePart, from: number): Promise<ChunkedFile> {
    return new ChunkedFile(await openPart(part), from);
  }

  /** File offset of `buf[start]`, the next unread byte. */
  get offset(): number {
    return this.filePos - (this.end - this.start);
  }

  /** Whether `n` bytes are available at `buf[start…]` without reading. */
  ready(n: number): boolean {
    return this.end - this.start >= n;
  }

  async fill(n: number): Promise<number> {
    if (this.end - this.start >= n) return n;
    const pending = this.end - this.start;
    if (n > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(n, 2 * this.buf.length));
      this.buf.copy(bigger, 0, this.start, this.end);
      this.buf = bigger;
    } else {
      this.buf.copy(this.buf, 0, this.start, this.end);
    }
    this.start = 0;
    this.end = pending;
    while (this.end < n) {
      const bytesRead = await this.handle.read(this.buf, this.end, this.buf.length - this.end, this.filePos);
      if (bytesRead === 0) break;
      this.end += bytesRead;
      this.filePos += bytesRead;
    }
    return Math.min(n, this.end);
  }

  skip(n: number): void {
    this.start += n;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** Up to `length` bytes from `offset` (fewer at the end of the file): headers and side files. */
async function readAt(path: ShapefilePart, offset: number, length: number): Promise<Buffer> {
  const handle = await openPart(path);
  try {
    const buf = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const bytesRead = await handle.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await handle.close();
  }
}
