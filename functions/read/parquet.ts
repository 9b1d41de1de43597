/**
 * Parquet files as a `ReadTable`, read with hyparquet (pure JavaScript, the reader sibling of the
 * hyparquet-writer the exports use) one row group at a time: memory holds one row group's values,
 * whatever the number of row groups. Snappy is hyparquet's; the other codecs Parquet writers use
 * (gzip, Brotli, Zstandard, LZ4) are decompressed by hyparquet-compressors, from the same authors.
 *
 * Values become the text PostgreSQL reads for the column's type, exactly: integers (INT64 as
 * BigInt, never through a double), doubles in their shortest round-trip form, decimals with their
 * scale (`12.30`), booleans `true`/`false`, dates `YYYY-MM-DD`, timestamps to the microsecond
 * (`+00` when the file says they are UTC), times of day, UUIDs, bytes not annotated as text as hex
 * (`\xdeadbeef`); nested columns (lists, structs,
 * maps) as JSON text. A GeoParquet geometry column (WKB, or Parquet's own GEOMETRY type) becomes
 * the table's geometry, as hex WKB, with the SRID its metadata gives (CRS84 when it gives none).
 * The file's column types are the table's `declaredTypes`: a column of digits stored as a string
 * stays text.
 */
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { PARQUET_ENCRYPTED_MAGIC } from './parquet-magic.ts';
import { parquetMetadataAsync, parquetRead, parquetSchema, type FileMetaData, type SchemaElement } from 'hyparquet';
import { compressors as allCompressors } from 'hyparquet-compressors';
import { readLimits, type ReadLimits } from '../common/limits.ts';
import { beyondLimit, ReadError, type DeclaredType, type ReadOptions, type ReadRow, type ReadTable, type SourceGeometry } from './types.ts';

/**
 * Decompressors for the codecs hyparquet leaves out (gzip, Brotli, Zstandard, LZ4). Snappy stays
 * hyparquet's own: hyparquet-compressors' WebAssembly Snappy refuses an empty data page
 * (apache/parquet-testing's datapage_v2_empty_datapage.snappy.parquet) that hyparquet reads.
 */
const { SNAPPY: _snappy, ...compressors } = allCompressors;

/** hyparquet's view of a file: its length and slices of it. */
interface AsyncBuffer {
  byteLength: number;
  slice(start: number, end?: number): Promise<ArrayBuffer>;
}

/** A file on disk as hyparquet reads it, through one handle. */
async function fileBuffer(path: string): Promise<{ buffer: AsyncBuffer; close(): Promise<void> }> {
  const handle: FileHandle = await openFile(path, 'r');
  const { size } = await handle.stat();
  return {
    buffer: {
      byteLength: size,
      async slice(start, end = size) {
        const length = Math.max(0, Math.min(end, size) - start);
        const out = new Uint8Array(length);
        for (let done = 0; done < length;) {
          const { bytesRead } = await handle.read(out, done, length - done, start + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return out.buffer;
      },
    },
    close: () => handle.close(),
  };
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** How one top-level column's values become text, and the type the file gives it. */
interface ColumnPlan {
  name: string;
  text: (value: unknown) => string | null;
  declared?: DeclaredType;
  /** Decimal columns: whether a value had more digits than a double keeps. */
  lossy?: boolean;
}

const pad = (n: number | bigint, width = 2) => String(n).padStart(width, '0');

/** Floor division of BigInts (towards minus infinity), with the remainder ≥ 0. */
function floorDivMod(a: bigint, b: bigint): [bigint, bigint] {
  let q = a / b;
  let r = a % b;
  if (r < 0n) {
    q -= 1n;
    r += b;
  }
  return [q, r];
}

/** Days since 1970-01-01 as `YYYY-MM-DD` (years before 1 or after 9999 as Date prints them). */
function dayText(days: number): string {
  const d = new Date(days * 86_400_000);
  const y = d.getUTCFullYear();
  const year = y >= 0 && y <= 9999 ? pad(y, 4) : `${y < 0 ? '-' : '+'}${pad(Math.abs(y), 6)}`;
  return `${year}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** A count of `unit`s since the epoch as `YYYY-MM-DD HH:MM:SS[.ffffff…]`, the fraction as long as the unit needs. */
function timestampText(value: bigint, perSecond: bigint): string {
  const [seconds, fraction] = floorDivMod(value, perSecond);
  const [days, secondOfDay] = floorDivMod(seconds, 86_400n);
  const s = Number(secondOfDay);
  const clock = `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  const digits = perSecond === 1000n ? 3 : perSecond === 1_000_000n ? 6 : 9;
  const frac = fraction === 0n ? '' : `.${pad(fraction, digits).replace(/0+$/, '')}`;
  return `${dayText(Number(days))} ${clock}${frac}`;
}

/** The shortest decimal text that reads back as the same 32-bit float. */
export function float32Text(v: number): string {
  for (let digits = 1; digits <= 9; digits++) {
    const text = String(Number(v.toPrecision(digits)));
    if (Math.fround(Number(text)) === v) return text;
  }
  return String(v);
}

const PER_SECOND = { MILLIS: 1000n, MICROS: 1_000_000n, NANOS: 1_000_000_000n } as const;

/** Text of a JSON-able value with BigInts as numbers, bytes as hex. */
function jsonText(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => {
    if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
    if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
    if (v instanceof Date) return v.toISOString();
    return v;
  });
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

/** UTF-8 text of a column annotated as text (hyparquet, told `utf8: false`, leaves ENUM and some JSON columns as bytes). */
const utf8Text = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');

/**
 * The hyparquet parsers whose results we keep: raw counts for timestamps (turned into text by the
 * column's plan, which knows the unit and zone), day counts for dates, hex for geometry and bytes.
 */
const PARSERS = {
  timestampFromMilliseconds: (v: bigint) => ({ ts: BigInt(v), per: 1000n }),
  timestampFromMicroseconds: (v: bigint) => ({ ts: BigInt(v), per: 1_000_000n }),
  timestampFromNanoseconds: (v: bigint) => ({ ts: BigInt(v), per: 1_000_000_000n }),
  dateFromDays: (days: number) => dayText(days),
  geometryFromBytes: (bytes: Uint8Array) => (bytes ? hex(bytes) : bytes),
  geographyFromBytes: (bytes: Uint8Array) => (bytes ? hex(bytes) : bytes),
};

function isTimestamp(v: unknown): v is { ts: bigint; per: bigint } {
  return typeof v === 'object' && v !== null && 'ts' in v && 'per' in v;
}

/** How a top-level column of the schema is read. */
function planColumn(element: SchemaElement, nested: boolean): ColumnPlan {
  const { name } = element;
  if (nested) return { name, text: (v) => (v === null || v === undefined ? null : jsonText(v)) };
  const type = element.type;
  const converted = element.converted_type;
  const logical = element.logical_type;
  const plain = (declared?: DeclaredType): ColumnPlan => ({
    name,
    declared,
    text: (v) => {
      if (v === null || v === undefined) return null;
      if (typeof v === 'string') return v;
      if (typeof v === 'number') return Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
      if (typeof v === 'bigint' || typeof v === 'boolean') return String(v);
      if (v instanceof Uint8Array) return `\\x${hex(v)}`;
      if (isTimestamp(v)) return timestampText(v.ts, v.per);
      return jsonText(v);
    },
  });
  if (converted === 'DECIMAL' || logical?.type === 'DECIMAL') {
    const scale = element.scale ?? (logical?.type === 'DECIMAL' ? logical.scale : 0) ?? 0;
    const plan: ColumnPlan = {
      name,
      declared: 'numeric',
      text: (v) => {
        if (v === null || v === undefined) return null;
        const n = Number(v);
        if (Math.abs(n) * 10 ** scale >= 2 ** 53) plan.lossy = true;
        return scale > 0 && scale <= 100 ? n.toFixed(scale) : String(n);
      },
    };
    return plan;
  }
  if (converted === 'DATE' || logical?.type === 'DATE') return plain('date');
  if (logical?.type === 'TIMESTAMP' || converted === 'TIMESTAMP_MILLIS' || converted === 'TIMESTAMP_MICROS' || type === 'INT96') {
    const utc = logical?.type === 'TIMESTAMP' ? logical.isAdjustedToUTC : type !== 'INT96';
    return {
      name,
      declared: utc ? 'timestamptz' : 'timestamp',
      text: (v) => {
        if (v === null || v === undefined) return null;
        const text = isTimestamp(v) ? timestampText(v.ts, v.per) : v instanceof Date ? v.toISOString() : String(v);
        return utc ? `${text}+00` : text;
      },
    };
  }
  if (logical?.type === 'TIME' || converted === 'TIME_MILLIS' || converted === 'TIME_MICROS') {
    const per = logical?.type === 'TIME' ? PER_SECOND[logical.unit] : converted === 'TIME_MILLIS' ? 1000n : 1_000_000n;
    return { name, text: (v) => (v === null || v === undefined ? null : timestampText(BigInt(v as number | bigint), per).slice(11)) };
  }
  if (logical?.type === 'INTEGER') {
    const { bitWidth, isSigned } = logical;
    return plain(bitWidth <= 16 || (bitWidth === 32 && isSigned) ? 'integer' : bitWidth === 32 || isSigned ? 'bigint' : 'numeric');
  }
  if (converted === 'UINT_64') return plain('numeric');
  if (converted === 'UINT_32') return plain('bigint');
  if (logical?.type === 'STRING' || logical?.type === 'ENUM' || logical?.type === 'UUID' || converted === 'UTF8' || converted === 'ENUM') {
    // annotated text: bytes hyparquet left undecoded (ENUM) are UTF-8
    const { text } = plain('text');
    return { name, declared: 'text', text: (v) => (v instanceof Uint8Array ? utf8Text(v) : text(v)) };
  }
  if (logical?.type === 'JSON' || converted === 'JSON') return { name, text: (v) => (v === null || v === undefined ? null : v instanceof Uint8Array ? utf8Text(v) : jsonText(v)) };
  switch (type) {
    case 'BOOLEAN':
      return plain('boolean');
    case 'INT32':
      return plain('integer');
    case 'INT64':
      return plain('bigint');
    case 'FLOAT': {
      // a 32-bit float as the shortest decimal that reads back as the same float (1.1, not 1.100000023841858)
      const { text } = plain('double');
      return { name, declared: 'double', text: (v) => (typeof v === 'number' && Number.isFinite(v) ? float32Text(v) : text(v)) };
    }
    case 'DOUBLE':
      return plain('double');
    case 'BYTE_ARRAY':
      // unannotated bytes (a hash, an image): read with `utf8: false`, they come as bytes and are
      // written as hex text (`\\xdeadbeef`, PostgreSQL's bytea form), never decoded as UTF-8
      return plain('text');
    default:
      return plain();
  }
}

/** The SRID a CRS names: `EPSG:2154`, PROJJSON with an EPSG id, CRS84 (4326); `undefined` when it names none we know. */
function sridOf(crs: unknown, metadata: FileMetaData): number | undefined {
  if (crs === undefined) return 4326; // GeoParquet and Parquet GEOMETRY: no CRS means OGC:CRS84
  if (crs === null) return undefined; // GeoParquet: an undefined CRS
  if (typeof crs === 'string') {
    // `projjson:KEY`: the PROJJSON is the file metadata's value for KEY; a CRS may also be PROJJSON text
    const key = /^projjson:(.+)$/i.exec(crs.trim())?.[1];
    const json = key ? metadata.key_value_metadata?.find((kv) => kv.key === key)?.value : crs.trim().startsWith('{') ? crs : undefined;
    if (json !== undefined) {
      try {
        return sridOf(JSON.parse(json) as unknown, metadata);
      } catch {
        return undefined; // not JSON: a CRS we cannot name, which the caller says
      }
    }
    if (/^(OGC:)?CRS:?84$/i.test(crs) || /^(srid:)?4326$/i.test(crs)) return 4326;
    const m = /^(?:EPSG|srid):(\d+)$/i.exec(crs.trim());
    return m ? Number(m[1]) : undefined;
  }
  if (typeof crs === 'object') {
    const id = (crs as { id?: { authority?: string; code?: number | string } }).id;
    if (id?.authority?.toUpperCase() === 'EPSG' && Number.isInteger(Number(id.code))) return Number(id.code);
    if (id?.authority?.toUpperCase() === 'OGC' && String(id.code).toUpperCase() === 'CRS84') return 4326;
  }
  return undefined;
}

/** The geometry column: GeoParquet's primary column, or the first of Parquet's GEOMETRY type. */
function geometryOf(metadata: FileMetaData, top: SchemaElement[], name: string, warnings: string[]): SourceGeometry | undefined {
  const geo = metadata.key_value_metadata?.find((kv) => kv.key === 'geo')?.value;
  if (geo) {
    let parsed: { primary_column?: string; columns?: Record<string, { encoding?: string; geometry_types?: string[]; crs?: unknown }> };
    try {
      parsed = JSON.parse(geo);
    } catch (error) {
      warnings.push(`${name}: the GeoParquet metadata is not JSON (${messageOf(error)}); geometry columns read as text`);
      return undefined;
    }
    const column = parsed.primary_column ?? Object.keys(parsed.columns ?? {})[0];
    const spec = column ? parsed.columns?.[column] : undefined;
    if (column && spec && top.some((e) => e.name === column)) {
      if (spec.encoding && spec.encoding.toUpperCase() !== 'WKB') {
        warnings.push(`${name}: the geometry column "${column}" is encoded as ${spec.encoding}, not WKB; read as text`);
        return undefined;
      }
      const srid = sridOf(spec.crs, metadata);
      if (srid === undefined) warnings.push(`${name}: the CRS of geometry column "${column}" is not an EPSG code; set the source SRID (read.srid, --source-srid)`);
      const types = (spec.geometry_types ?? []).map((t) => t.replace(/ Z$/i, ''));
      const type = types.length === 1 ? types[0] : undefined;
      return { column, encoding: 'wkb', ...(srid !== undefined ? { srid } : {}), ...(type ? { type } : {}) };
    }
  }
  const native = top.find((e) => e.logical_type?.type === 'GEOMETRY' || e.logical_type?.type === 'GEOGRAPHY');
  if (!native) return undefined;
  const crs = native.logical_type && 'crs' in native.logical_type ? native.logical_type.crs : undefined;
  const srid = sridOf(crs, metadata);
  if (srid === undefined) warnings.push(`${name}: the CRS of geometry column "${native.name}" (${String(crs).slice(0, 80)}) is not an EPSG code; set the source SRID (read.srid, --source-srid)`);
  return { column: native.name, encoding: 'wkb', ...(srid !== undefined ? { srid } : {}) };
}

/**
 * What the footer declares, against the limits, before any row group is decoded (each is decoded
 * whole): its columns, its rows, and the cells of each row group.
 */
function checkDeclaredSize(name: string, groups: number[], columns: number, limits: ReadLimits): void {
  if (columns > limits.maxColumns) throw beyondLimit(name, `the Parquet file has ${columns.toLocaleString('en-US')} columns`, 'maxColumns', limits.maxColumns, { line: 1 });
  const rows = groups.reduce((a, b) => a + b, 0);
  if (rows > limits.maxRecords) throw beyondLimit(name, `its footer declares ${rows.toLocaleString('en-US')} rows`, 'maxRecords', limits.maxRecords);
  let start = 0;
  for (let g = 0; g < groups.length; g++) {
    const cells = groups[g]! * columns;
    if (cells > limits.maxGroupCells) {
      throw beyondLimit(
        name,
        `row group ${g + 1} of ${groups.length} (rows ${(start + 1).toLocaleString('en-US')}–${(start + groups[g]!).toLocaleString('en-US')}) holds ${groups[g]!.toLocaleString('en-US')} rows × ${columns} columns = ${cells.toLocaleString('en-US')} cells, decoded at once`,
        'maxGroupCells',
        limits.maxGroupCells,
        { line: start + 1 },
      );
    }
    start += groups[g]!;
  }
}

/** Read a Parquet file on disk as one table. */
export async function readParquet(path: string, name: string, opts: ReadOptions = {}): Promise<ReadTable> {
  const file = await fileBuffer(path);
  let metadata: FileMetaData;
  try {
    const tail = Buffer.from(await file.buffer.slice(Math.max(0, file.buffer.byteLength - 4)));
    if (tail.equals(PARQUET_ENCRYPTED_MAGIC)) throw new ReadError(`${name}: an encrypted Parquet file (its footer is encrypted); decrypt it before loading`, { file: name });
    metadata = await parquetMetadataAsync(file.buffer);
  } catch (error) {
    if (error instanceof ReadError) throw error;
    throw new ReadError(`${name}: not a readable Parquet file (${messageOf(error)})`, { file: name }, { cause: error });
  } finally {
    await file.close();
  }
  const tree = parquetSchema(metadata);
  const top = tree.children.map((child) => child.element);
  const plans = tree.children.map((child) => planColumn(child.element, child.children.length > 0));
  const warnings: string[] = [];
  const geometry = geometryOf(metadata, top, name, warnings);
  if (geometry) {
    const at = plans.findIndex((p) => p.name === geometry.column);
    plans[at] = { name: geometry.column, text: (v) => (v === null || v === undefined ? null : typeof v === 'string' ? v : v instanceof Uint8Array ? hex(v) : jsonText(v)) };
  }
  const columns = plans.map((p) => p.name);
  if (columns.length === 0) throw new ReadError(`${name}: the Parquet file has no columns`, { file: name });
  const groups = metadata.row_groups.map((g) => Number(g.num_rows));
  checkDeclaredSize(name, groups, columns.length, readLimits(opts.limits));

  async function* rows(): AsyncGenerator<ReadRow> {
    const source = await fileBuffer(path);
    try {
      let start = 0;
      for (let g = 0; g < groups.length; g++) {
        const end = start + groups[g]!;
        let batch: unknown[][] = [];
        try {
          await parquetRead({
            file: source.buffer,
            metadata,
            columns,
            rowStart: start,
            rowEnd: end,
            rowFormat: 'array',
            parsers: PARSERS,
            // only columns annotated as text are decoded as UTF-8; hyparquet's default (`utf8: true`)
            // decodes every BYTE_ARRAY, turning bytes that are not UTF-8 into U+FFFD
            utf8: false,
            compressors,
            onComplete: (rows: unknown[][]) => {
              batch = rows;
            },
          });
        } catch (error) {
          throw new ReadError(`${name}: row group ${g + 1} of ${groups.length} (rows ${start + 1}–${end}) cannot be read: ${messageOf(error)}`, { file: name, line: start + 1 }, { cause: error });
        }
        for (let r = 0; r < batch.length; r++) {
          const raw = batch[r]!;
          const values = new Array<string | null>(plans.length);
          for (let c = 0; c < plans.length; c++) values[c] = plans[c]!.text(raw[c]);
          yield { values, position: start + r + 1 };
        }
        batch = [];
        start = end;
      }
    } finally {
      await source.close();
      const lossy = plans.filter((p) => p.lossy).map((p) => `"${p.name}"`);
      if (lossy.length > 0)
        warnings.push(
          `${name}: decimal column${lossy.length === 1 ? '' : 's'} ${lossy.join(', ')} hold${lossy.length === 1 ? 's' : ''} values of more than 15 significant digits, read to a double's precision`,
        );
    }
  }

  return {
    name,
    format: 'parquet',
    columns,
    ...(geometry ? { geometry } : {}),
    unit: 'row',
    warnings,
    declaredTypes: () => plans.map((p) => (p.lossy ? undefined : p.declared)),
    rows,
  };
}
