/**
 * GeoPackage reader: one `ReadTable` per feature or attribute table listed in `gpkg_contents`
 * (tile tables are not data), geometry as hex WKB.
 *
 * A GeoPackage is an SQLite database, read here with sql.js (SQLite compiled to WebAssembly: no
 * native module to build for Lambda). sql.js cannot read a file piecewise: the whole file is
 * loaded into memory, so files over `GPKG_MAX_BYTES` (400 MiB, or `maxBytes`: peak memory is about 1.75× the file, and the stage function has 1 GiB) are refused with a
 * `ReadError` before anything is loaded. Plan the stage function's memory for about twice the
 * largest GeoPackage: the file's bytes plus SQLite's working memory and the rows in flight. Rows
 * themselves are stepped through a prepared statement, one at a time, so they are never all
 * materialised in JS.
 *
 * The database is opened once to list the layers and once per `rows()` call, and closed when
 * that iteration ends (or is abandoned): nothing stays loaded between layers.
 *
 * The build used is sql.js's `sql-wasm-inline.js`, which carries its WebAssembly inside the
 * JavaScript: the Lambda bundle then needs no `.wasm` file beside it.
 *
 * Values: INTEGER as exact decimal text (64-bit safe), REAL as JS prints it (shortest text that
 * reads back the same), TEXT as is, BOOLEAN-declared 0/1 as `false`/`true`, other BLOBs as
 * `\x…` hex (PostgreSQL's bytea text form). Geometry blobs lose their GeoPackage header; the WKB
 * behind it goes out unchanged (ISO Z/M codes included, which PostGIS reads).
 *
 * Types (`declaredTypes`, once every row is read): a column's declared type where every value
 * stored fits it — INTEGER (and its narrower spellings) integer or bigint by the widest value,
 * REAL/FLOAT/DOUBLE double precision (a REAL column of whole numbers stays a number, as ogr2ogr
 * keeps it), TEXT text, BOOLEAN boolean, DATE date; SQLite lets any column hold any value, so a
 * value of another storage class (text in a REAL column) leaves the type undeclared and inferred.
 */
import { open, readFile, stat } from 'node:fs/promises';
import type { Database, SqlJsStatic, SqlValue, Statement } from 'sql.js';
// @ts-expect-error: sql.js publishes types for its main entry only; this build has the same API
import initSqlJs from 'sql.js/dist/sql-wasm-inline.js';
import { messageOf } from '../common/errors.ts';
import { describePrj } from './prj.ts';
import { readLimits, type ReadLimits } from '../common/limits.ts';
import { beyondLimit, ReadError, type DeclaredType, type ReadOptions, type ReadRow, type ReadTable } from './types.ts';
import { hexFromGpkgBlob, ShapeFormatError } from './wkb.ts';

/** Largest GeoPackage loaded by default (sql.js holds the whole file in memory). */
export const GPKG_MAX_BYTES = 400 * 1024 ** 2;

export interface GeoPackageOptions extends ReadOptions {
  /** Refuse files larger than this many bytes (default `GPKG_MAX_BYTES`). */
  maxBytes?: number;
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

let sqlJs: Promise<SqlJsStatic> | undefined;
function loadSqlJs(): Promise<SqlJsStatic> {
  sqlJs ??= (initSqlJs as () => Promise<SqlJsStatic>)();
  return sqlJs;
}

interface Layer {
  table: string;
  dataType: 'features' | 'attributes';
  columns: { name: string; type: string }[];
  geometry?: { column: string; srid?: number; crs?: { wkt: string; name?: string }; type?: string };
  warnings: string[];
}

/**
 * The layers of a GeoPackage (all feature and attribute tables, or only `opts.layer`), as tables
 * named `<name>#<layer>`.
 */
export async function readGeoPackage(path: string, name: string, opts: GeoPackageOptions = {}): Promise<ReadTable[]> {
  const size = (await stat(path)).size;
  await checkMagic(path, name, size);
  const max = opts.maxBytes ?? GPKG_MAX_BYTES;
  if (size > max) {
    throw new ReadError(`${name}: the GeoPackage is ${mib(size)}, more than the ${mib(max)} this reader loads into memory (SQLite is read whole); export the layers to smaller files`, { file: name });
  }
  let layers = await withDatabase(path, name, (db) => listLayers(db, name, opts));
  if (opts.layer !== undefined) {
    const wanted = layers.find((l) => l.table === opts.layer) ?? layers.find((l) => l.table.toLowerCase() === opts.layer!.toLowerCase());
    if (!wanted) {
      throw new ReadError(`${name}: there is no layer "${opts.layer}"; the layers are ${layers.map((l) => `"${l.table}"`).join(', ') || 'none'}`, { file: name });
    }
    layers = [wanted];
  }
  if (layers.length === 0) throw new ReadError(`${name}: the GeoPackage has no feature or attribute table (gpkg_contents lists none)`, { file: name });
  const limits = readLimits(opts.limits);
  return layers.map((layer) => asTable(path, name, layer, limits));
}

function asTable(path: string, name: string, layer: Layer, limits: ReadLimits): ReadTable {
  const tableName = `${name}#${layer.table}`;
  const g = layer.geometry;
  const fits = layer.columns.map((c) => new DeclaredFit(c.name === g?.column ? '' : c.type));
  return {
    name: tableName,
    format: 'gpkg',
    columns: layer.columns.map((c) => c.name),
    ...(g ? { geometry: { column: g.column, encoding: 'wkb', ...(g.srid !== undefined ? { srid: g.srid } : {}), ...(g.crs ? { crs: g.crs } : {}), ...(g.type ? { type: g.type } : {}) } } : {}),
    unit: 'feature',
    warnings: layer.warnings,
    rows: () => readRows(path, tableName, layer, fits, limits),
    declaredTypes: () => fits.map((f) => f.type()),
  };
}

/**
 * The clean type a GeoPackage column declares (the spec's BOOLEAN, TINYINT…INTEGER, FLOAT, DOUBLE,
 * REAL, TEXT, DATE, DATETIME), once every value read has been of that type: SQLite stores any
 * value in any column, so a declaration holds only when the values keep it. A REAL column of
 * whole numbers stays a number (as `civic-etl load` would otherwise make it integer); BLOBs and
 * other names declare nothing.
 */
class DeclaredFit {
  private readonly kind: 'integer' | 'small' | 'real' | 'text' | 'date' | 'datetime' | 'boolean' | undefined;
  private fits = true;
  private complete = false;
  private digits = 0;

  constructor(declared: string) {
    const t = declared.trim().toUpperCase();
    this.kind = /^(INT|INTEGER)$/.test(t)
      ? 'integer'
      : /^(TINYINT|SMALLINT|MEDIUMINT)$/.test(t)
        ? 'small'
        : /^(FLOAT|DOUBLE|REAL)$/.test(t)
          ? 'real'
          : /^TEXT(\(\d+\))?$/.test(t)
            ? 'text'
            : t === 'DATE'
              ? 'date'
              : t === 'DATETIME'
                ? 'datetime'
                : t === 'BOOLEAN'
                  ? 'boolean'
                  : undefined;
  }

  reset(): void {
    this.fits = true;
    this.complete = false;
    this.digits = 0;
  }

  finish(): void {
    this.complete = true;
  }

  add(v: SqlValue | bigint): void {
    if (v === null || !this.fits || this.kind === undefined) return;
    switch (this.kind) {
      case 'integer':
      case 'small':
        if (typeof v !== 'bigint') this.fits = false;
        else this.digits = Math.max(this.digits, (v < 0n ? -v : v).toString().length);
        return;
      case 'real':
        // SQLite hands back a REAL that holds a whole number as an integer
        if (typeof v !== 'number' && typeof v !== 'bigint') this.fits = false;
        return;
      case 'boolean':
        if (v !== 0n && v !== 1n) this.fits = false;
        return;
      case 'text':
        if (typeof v !== 'string') this.fits = false;
        return;
      case 'date':
        if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(v)) this.fits = false;
        return;
      case 'datetime':
        if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(v)) this.fits = false;
        return;
    }
  }

  type(): DeclaredType | undefined {
    if (!this.complete || !this.fits || this.kind === undefined) return undefined;
    switch (this.kind) {
      case 'integer':
        return this.digits <= 9 ? 'integer' : this.digits <= 18 ? 'bigint' : 'numeric';
      case 'small':
        return 'integer';
      case 'real':
        return 'double';
      case 'text':
        return 'text';
      case 'date':
        return 'date';
      case 'datetime':
        return 'timestamptz';
      case 'boolean':
        return 'boolean';
    }
  }
}

async function* readRows(path: string, name: string, layer: Layer, fits: DeclaredFit[], limits: ReadLimits): AsyncGenerator<ReadRow> {
  for (const fit of fits) fit.reset();
  const db = await openDatabase(path, name);
  let statement: Statement | undefined;
  let position = 0;
  try {
    statement = db.prepare(`SELECT ${layer.columns.map((c) => quoteIdent(c.name)).join(', ')} FROM ${quoteIdent(layer.table)}`);
    const convert = layer.columns.map((c) => converter(c, c.name === layer.geometry?.column));
    for (;;) {
      let raw: SqlValue[] | (SqlValue | bigint)[];
      try {
        if (!statement.step()) break;
        position++;
        raw = (statement.get as (p: null, c: { useBigInt: boolean }) => (SqlValue | bigint)[])(null, { useBigInt: true });
      } catch (error) {
        throw new ReadError(`${name}: SQLite cannot read feature ${position + 1}: ${messageOf(error)}`, { file: name, line: position + 1 }, { cause: error });
      }
      const values = new Array<string | null>(raw.length);
      for (let i = 0; i < raw.length; i++) {
        // a value becomes text (a blob hex, two characters a byte): one past maxCellChars is refused before it is
        const v = raw[i]!;
        const chars = v instanceof Uint8Array ? v.length * 2 : typeof v === 'string' ? v.length : 0;
        if (chars > limits.maxCellChars) {
          const what = v instanceof Uint8Array ? `a ${v.length.toLocaleString('en-US')}-byte blob (${chars.toLocaleString('en-US')} hex characters)` : `${chars.toLocaleString('en-US')} characters`;
          throw beyondLimit(name, `feature ${position}: its ${layer.columns[i]!.name} value is ${what}`, 'maxCellChars', limits.maxCellChars, { line: position, column: layer.columns[i]!.name });
        }
        fits[i]!.add(v);
        try {
          values[i] = convert[i]!(raw[i]!);
        } catch (error) {
          if (!(error instanceof ShapeFormatError)) throw error;
          throw new ReadError(`${name}: feature ${position}: the geometry ${error.message}`, { file: name, line: position, column: layer.columns[i]!.name }, { cause: error });
        }
      }
      yield { values, position };
    }
    for (const fit of fits) fit.finish();
  } finally {
    statement?.free();
    db.close();
  }
}

type Convert = (v: SqlValue | bigint) => string | null;

function converter(column: { type: string }, isGeometry: boolean): Convert {
  if (isGeometry) {
    return (v) => {
      if (v === null) return null;
      if (v instanceof Uint8Array) return hexFromGpkgBlob(v);
      throw new ShapeFormatError(`is stored as ${typeof v === 'string' ? 'text' : 'a number'}, not as a GeoPackage geometry blob`);
    };
  }
  const boolean = /^BOOL/i.test(column.type);
  return (v) => {
    if (v === null) return null;
    if (v instanceof Uint8Array) return `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
    if (boolean && (v === 0n || v === 1n)) return v === 1n ? 'true' : 'false';
    return typeof v === 'string' ? v : String(v);
  };
}

// ---------------------------------------------------------------------------------------------
// metadata

function listLayers(db: Database, name: string, opts: ReadOptions): Layer[] {
  if (rowsOf(db, `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gpkg_contents'`).length === 0) {
    throw new ReadError(`${name}: an SQLite database but not a GeoPackage: it has no gpkg_contents table`, { file: name });
  }
  const contents = rowsOf(db, `SELECT table_name, lower(data_type), srs_id FROM gpkg_contents WHERE lower(data_type) IN ('features', 'attributes') ORDER BY rowid`);
  const hasGeometryColumns = rowsOf(db, `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gpkg_geometry_columns'`).length > 0;
  return contents.map(([table, dataType, contentsSrs]) => {
    const tableName = String(table);
    const columns = rowsOf(db, `PRAGMA table_info(${quoteIdent(tableName)})`).map((r) => ({ name: String(r[1]), type: String(r[2] ?? '') }));
    if (columns.length === 0) throw new ReadError(`${name}: gpkg_contents lists the layer "${tableName}", but the file has no such table`, { file: name });
    const limits = readLimits(opts.limits);
    if (columns.length > limits.maxColumns) throw beyondLimit(`${name}#${tableName}`, `the layer has ${columns.length.toLocaleString('en-US')} columns`, 'maxColumns', limits.maxColumns, { line: 1 });
    const count = Number(rowsOf(db, `SELECT count(*) FROM ${quoteIdent(tableName)}`)[0]?.[0] ?? 0);
    if (count > limits.maxRecords) throw beyondLimit(`${name}#${tableName}`, `the layer holds ${count.toLocaleString('en-US')} rows`, 'maxRecords', limits.maxRecords);
    const layer: Layer = { table: tableName, dataType: dataType === 'features' ? 'features' : 'attributes', columns, warnings: [] };
    const geom = hasGeometryColumns ? rowsOf(db, `SELECT column_name, geometry_type_name, srs_id, z, m FROM gpkg_geometry_columns WHERE table_name = ?`, [tableName])[0] : undefined;
    if (geom) {
      const srsId = geom[2] ?? contentsSrs;
      const { srid, crs } = sridOf(db, srsId === null || srsId === undefined ? undefined : Number(srsId), `${name}#${tableName}`, opts, layer.warnings);
      const type = declaredType(String(geom[1] ?? ''), Number(geom[3]), Number(geom[4]));
      layer.geometry = { column: String(geom[0]), ...(srid !== undefined ? { srid } : {}), ...(crs ? { crs } : {}), ...(type ? { type } : {}) };
    } else if (layer.dataType === 'features') {
      layer.warnings.push(`${name}#${tableName}: a feature table without a row in gpkg_geometry_columns: read without geometry`);
    }
    return layer;
  });
}

/**
 * EPSG code of a GeoPackage srs_id: `organization` EPSG gives `organization_coordsys_id`; other
 * organisations are looked up through their WKT `definition`. 0 and -1 (the spec's undefined
 * geographic and Cartesian systems) and unknown systems: `opts.srid`.
 */
function sridOf(db: Database, srsId: number | undefined, name: string, opts: ReadOptions, warnings: string[]): { srid?: number; crs?: { wkt: string; name?: string } } {
  const given = opts.srid !== undefined ? { srid: opts.srid } : {};
  if (srsId === undefined || srsId === 0 || srsId === -1) return given;
  const row = rowsOf(db, `SELECT organization, organization_coordsys_id, definition FROM gpkg_spatial_ref_sys WHERE srs_id = ?`, [srsId])[0];
  if (row && String(row[0]).toUpperCase() === 'EPSG' && Number(row[1]) > 0) return { srid: Number(row[1]) };
  const wkt = row ? String(row[2] ?? '').trim() : '';
  const info = wkt ? describePrj(wkt) : {};
  if (info.srid !== undefined) return { srid: info.srid };
  if (opts.srid !== undefined) return given;
  // a definition in words: the load identifies it by its parameters (clean/source-srid.ts)
  if (wkt && wkt.toLowerCase() !== 'undefined') return { crs: { wkt, ...(info.name !== undefined ? { name: info.name } : {}) } };
  const what = row ? `${String(row[0])}:${String(row[1])}` : 'missing from gpkg_spatial_ref_sys';
  warnings.push(`${name}: its spatial reference system (srs_id ${srsId}, ${what}) has no EPSG code and no definition: its coordinates must be longitudes and latitudes, or read.srid set`);
  return {};
}

const TYPE_NAMES: Record<string, string> = {
  GEOMETRY: 'Geometry',
  POINT: 'Point',
  LINESTRING: 'LineString',
  POLYGON: 'Polygon',
  MULTIPOINT: 'MultiPoint',
  MULTILINESTRING: 'MultiLineString',
  MULTIPOLYGON: 'MultiPolygon',
  GEOMETRYCOLLECTION: 'GeometryCollection',
  CIRCULARSTRING: 'CircularString',
  COMPOUNDCURVE: 'CompoundCurve',
  CURVEPOLYGON: 'CurvePolygon',
  MULTICURVE: 'MultiCurve',
  MULTISURFACE: 'MultiSurface',
  CURVE: 'Curve',
  SURFACE: 'Surface',
};

/** `MULTIPOLYGON` with z = 1 → `MultiPolygonZ` (PostGIS's type modifier spelling). */
function declaredType(name: string, z: number, m: number): string | undefined {
  const base = TYPE_NAMES[name.toUpperCase()];
  if (!base) return undefined;
  return `${base}${z === 1 ? 'Z' : ''}${m === 1 ? 'M' : ''}`;
}

// ---------------------------------------------------------------------------------------------
// SQLite access

async function checkMagic(path: string, name: string, size: number): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(16);
    const { bytesRead } = await handle.read(head, 0, 16, 0);
    if (bytesRead < 16 || !head.equals(SQLITE_MAGIC)) {
      throw new ReadError(`${name}: not a GeoPackage: a GeoPackage is an SQLite database, and this file (${size} bytes) does not start like one`, { file: name, offset: 0 });
    }
  } finally {
    await handle.close();
  }
}

async function openDatabase(path: string, name: string): Promise<Database> {
  const SQL = await loadSqlJs();
  let db: Database;
  try {
    db = new SQL.Database(await readFile(path));
  } catch (error) {
    throw new ReadError(`${name}: SQLite cannot open the GeoPackage: ${messageOf(error)}`, { file: name }, { cause: error });
  }
  return db;
}

async function withDatabase<T>(path: string, name: string, use: (db: Database) => T): Promise<T> {
  const db = await openDatabase(path, name);
  try {
    return use(db);
  } catch (error) {
    if (error instanceof ReadError) throw error;
    throw new ReadError(`${name}: SQLite cannot read the GeoPackage's tables: ${messageOf(error)}`, { file: name }, { cause: error });
  } finally {
    db.close();
  }
}

function rowsOf(db: Database, sql: string, params: SqlValue[] = []): SqlValue[][] {
  const statement = db.prepare(sql, params);
  try {
    const out: SqlValue[][] = [];
    while (statement.step()) out.push(statement.get());
    return out;
  } finally {
    statement.free();
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function mib(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}
