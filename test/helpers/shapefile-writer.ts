/**
 * A small ESRI shapefile writer for tests: .shp, .shx, .dbf and optional .prj/.cpg, written
 * exactly as given (rings keep the orientation the test chose, attributes the bytes the test
 * chose), so that tests can also build the malformed files a reader must refuse.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import type { ShapefileParts } from '../../functions/read/shapefile.ts';

/** A vertex: [x, y], [x, y, z] or [x, y, z, m] (M-only types take [x, y, m]). */
export type Vertex = number[];

/**
 * The shape of one record: null, or its parts (one part of one vertex for a point). Multipatches
 * also give each part's type (0 triangle strip, 1 fan, 2 outer ring, 3 inner ring, 4 first ring, 5 ring).
 */
export type TestShape = null | { parts: Vertex[][]; partTypes?: number[] };

export interface TestField {
  name: string;
  type: 'C' | 'N' | 'F' | 'D' | 'L' | string;
  length: number;
  decimals?: number;
}

/** An attribute value: text/number/boolean written as dBASE writes them, `null` as blanks, a Buffer verbatim. */
export type TestValue = string | number | boolean | null | Buffer;

export interface TestRecord {
  shape: TestShape;
  values?: TestValue[];
  deleted?: boolean;
}

export interface TestShapefile {
  /** Shapefile shape type: 1 point, 3 polyline, 5 polygon, 8 multipoint, +10 Z, +20 M. */
  shapeType: number;
  fields?: TestField[];
  records: TestRecord[];
  prj?: string;
  cpg?: string;
  /** How text attributes are encoded (iconv-lite name, default utf-8). */
  encoding?: string;
  /** DBF language driver id (byte 29), default 0. */
  ldid?: number;
  /** Number of records the DBF header claims (default: as many as written). */
  dbfRecordCount?: number;
}

export const POINT = 1;
export const POLYLINE = 3;
export const POLYGON = 5;
export const MULTIPOINT = 8;
export const POINTZ = 11;
export const POLYLINEZ = 13;
export const POLYGONZ = 15;
export const MULTIPOINTZ = 18;
export const POINTM = 21;
export const POLYGONM = 25;
export const MULTIPATCH = 31;

/** A shapefile's parts as files on disk (what `readShapefile` takes, all of them paths). */
export type ShapefilePaths = { [K in 'shp' | 'dbf' | 'shx']: string } & { [K in 'prj' | 'cpg']?: string } & ShapefileParts;

/** Write `<dir>/<base>.shp/.shx/.dbf` (and .prj/.cpg when given); returns the paths. */
export function writeShapefile(dir: string, base: string, spec: TestShapefile): ShapefilePaths {
  const { shp, shx, dbf } = shapefileBytes(spec);
  const parts: ShapefilePaths = {
    shp: join(dir, `${base}.shp`),
    shx: join(dir, `${base}.shx`),
    dbf: join(dir, `${base}.dbf`),
  };
  writeFileSync(parts.shp, shp);
  writeFileSync(parts.shx, shx);
  writeFileSync(parts.dbf, dbf);
  if (spec.prj !== undefined) writeFileSync((parts.prj = join(dir, `${base}.prj`)), spec.prj);
  if (spec.cpg !== undefined) writeFileSync((parts.cpg = join(dir, `${base}.cpg`)), spec.cpg);
  return parts;
}

export function shapefileBytes(spec: TestShapefile): { shp: Buffer; shx: Buffer; dbf: Buffer } {
  const contents = spec.records.map((r) => shapeContent(r.shape === null ? 0 : spec.shapeType, r.shape));
  const shpRecords: Buffer[] = [];
  const shxEntries: Buffer[] = [];
  let offset = 100;
  contents.forEach((content, i) => {
    const header = Buffer.alloc(8);
    header.writeInt32BE(i + 1, 0);
    header.writeInt32BE(content.length / 2, 4);
    shpRecords.push(header, content);
    const entry = Buffer.alloc(8);
    entry.writeInt32BE(offset / 2, 0);
    entry.writeInt32BE(content.length / 2, 4);
    shxEntries.push(entry);
    offset += 8 + content.length;
  });
  const box = bbox(spec.records.flatMap((r) => r.shape?.parts.flat() ?? []));
  const shp = Buffer.concat([fileHeader(offset, spec.shapeType, box), ...shpRecords]);
  const shx = Buffer.concat([fileHeader(100 + 8 * contents.length, spec.shapeType, box), ...shxEntries]);
  return { shp, shx, dbf: dbfBytes(spec) };
}

function fileHeader(length: number, shapeType: number, box: number[]): Buffer {
  const h = Buffer.alloc(100);
  h.writeInt32BE(9994, 0);
  h.writeInt32BE(length / 2, 24);
  h.writeInt32LE(1000, 28);
  h.writeInt32LE(shapeType, 32);
  box.forEach((v, i) => h.writeDoubleLE(v, 36 + 8 * i));
  return h;
}

function bbox(vertices: Vertex[]): number[] {
  if (vertices.length === 0) return [0, 0, 0, 0];
  const xs = vertices.map((v) => v[0]!);
  const ys = vertices.map((v) => v[1]!);
  return [min(xs), min(ys), max(xs), max(ys)];
}

/** Math.min without spreading (which overflows the stack on long arrays). */
function min(values: number[]): number {
  return values.reduce((a, b) => (b < a ? b : a), Infinity);
}

function max(values: number[]): number {
  return values.reduce((a, b) => (b > a ? b : a), -Infinity);
}

/** Record content (after the 8-byte record header) for one shape. */
export function shapeContent(shapeType: number, shape: TestShape): Buffer {
  const out = new Writer();
  out.i32(shapeType);
  if (shapeType === 0 || shape === null) return out.done();
  const base = shapeType === MULTIPATCH ? 3 : shapeType % 10;
  const hasZ = (shapeType > 10 && shapeType < 20) || shapeType === MULTIPATCH;
  const hasM = shapeType > 10 && shapeType !== MULTIPATCH;
  const all = shape.parts.flat();
  const zOf = (v: Vertex) => (hasZ ? (v[2] ?? 0) : 0);
  const mOf = (v: Vertex) => (hasZ ? (v[3] ?? 0) : (v[2] ?? 0));
  if (base === 1) {
    const v = all[0]!;
    out.f64(v[0]!, v[1]!);
    if (hasZ) out.f64(zOf(v));
    if (hasM) out.f64(mOf(v));
    return out.done();
  }
  out.f64(...bbox(all));
  if (base === 8) {
    out.i32(all.length);
  } else {
    out.i32(shape.parts.length, all.length);
    let start = 0;
    for (const part of shape.parts) {
      out.i32(start);
      start += part.length;
    }
    if (shapeType === MULTIPATCH) out.i32(...shape.parts.map((_, i) => shape.partTypes?.[i] ?? 5));
  }
  for (const v of all) out.f64(v[0]!, v[1]!);
  if (hasZ) {
    const zs = all.map(zOf);
    out.f64(min(zs), max(zs));
    out.f64s(zs);
  }
  if (hasM) {
    const ms = all.map(mOf);
    out.f64(min(ms), max(ms));
    out.f64s(ms);
  }
  return out.done();
}

function dbfBytes(spec: TestShapefile): Buffer {
  const fields = spec.fields ?? [];
  const encoding = spec.encoding ?? 'utf-8';
  const recordBytes = 1 + fields.reduce((n, f) => n + f.length, 0);
  const headerBytes = 32 + 32 * fields.length + 1;
  const header = Buffer.alloc(headerBytes);
  header[0] = 0x03;
  header[1] = 124;
  header[2] = 1;
  header[3] = 1;
  header.writeUInt32LE(spec.dbfRecordCount ?? spec.records.length, 4);
  header.writeUInt16LE(headerBytes, 8);
  header.writeUInt16LE(recordBytes, 10);
  header[29] = spec.ldid ?? 0;
  fields.forEach((f, i) => {
    const p = 32 + 32 * i;
    iconv.encode(f.name, encoding).copy(header, p, 0, 10);
    header.write(f.type, p + 11, 'latin1');
    header[p + 16] = f.length;
    header[p + 17] = f.decimals ?? 0;
  });
  header[headerBytes - 1] = 0x0d;
  const records = spec.records.map((r) => {
    const rec = Buffer.alloc(recordBytes, 0x20);
    rec[0] = r.deleted ? 0x2a : 0x20;
    let p = 1;
    fields.forEach((f, i) => {
      fieldBytes(f, r.values?.[i] ?? null, encoding).copy(rec, p, 0, f.length);
      p += f.length;
    });
    return rec;
  });
  return Buffer.concat([header, ...records, Buffer.from([0x1a])]);
}

function fieldBytes(f: TestField, value: TestValue, encoding: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value === null) return Buffer.alloc(f.length, 0x20);
  if (typeof value === 'boolean') return Buffer.from(value ? 'T' : 'F');
  if (typeof value === 'number') {
    const text = f.decimals ? value.toFixed(f.decimals) : String(value);
    return Buffer.from(text.padStart(f.length, ' '), 'latin1');
  }
  return f.type === 'N' || f.type === 'F' ? Buffer.from(value.padStart(f.length, ' '), 'latin1') : iconv.encode(value, encoding);
}

class Writer {
  private chunks: Buffer[] = [];
  i32(...values: number[]): void {
    for (const v of values) {
      const b = Buffer.alloc(4);
      b.writeInt32LE(v, 0);
      this.chunks.push(b);
    }
  }
  f64(...values: number[]): void {
    this.f64s(values);
  }
  f64s(values: number[]): void {
    for (const v of values) {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(v, 0);
      this.chunks.push(b);
    }
  }
  done(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** A closed square ring with its lower-left corner at (x, y): clockwise (an outer ring) or not (a hole). */
export function square(x: number, y: number, size: number, clockwise: boolean): Vertex[] {
  const ccw = [
    [x, y],
    [x + size, y],
    [x + size, y + size],
    [x, y + size],
    [x, y],
  ];
  return clockwise ? ccw.reverse() : ccw;
}

/** WKT of a square ring as PostGIS prints it, in the order `square` wrote it. */
export function squareWkt(x: number, y: number, size: number, clockwise: boolean): string {
  return `(${square(x, y, size, clockwise)
    .map((v) => v.join(' '))
    .join(',')})`;
}

export const PRJ_RD_NEW_ESRI =
  'PROJCS["RD_New",GEOGCS["GCS_Amersfoort",DATUM["D_Amersfoort",SPHEROID["Bessel_1841",6377397.155,299.1528128]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Double_Stereographic"],PARAMETER["False_Easting",155000.0],PARAMETER["False_Northing",463000.0],PARAMETER["Central_Meridian",5.38763888888889],PARAMETER["Scale_Factor",0.9999079],PARAMETER["Latitude_Of_Origin",52.15616055555555],UNIT["Meter",1.0]]';

export const PRJ_LAMBERT93_ESRI =
  'PROJCS["RGF_1993_Lambert_93",GEOGCS["GCS_RGF_1993",DATUM["D_RGF_1993",SPHEROID["GRS_1980",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Lambert_Conformal_Conic"],PARAMETER["False_Easting",700000.0],PARAMETER["False_Northing",6600000.0],PARAMETER["Central_Meridian",3.0],PARAMETER["Standard_Parallel_1",44.0],PARAMETER["Standard_Parallel_2",49.0],PARAMETER["Latitude_Of_Origin",46.5],UNIT["Meter",1.0]]';

export const PRJ_WGS84_ESRI = 'GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]';
