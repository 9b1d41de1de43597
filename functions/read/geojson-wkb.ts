/**
 * A GeoJSON geometry as hex WKB, made in Node while the file streams by.
 *
 * Why: PostGIS reads hex WKB about five times faster than GeoJSON (measured on 20,000 polygons of
 * 20–40 vertices: 94 ms against 536 ms for `ST_GeomFromGeoJSON`), and the clean step parses every
 * geometry once. Numbers are parsed by V8's JSON.parse, which rounds decimal text to the nearest
 * double exactly as PostGIS's own parser does, so the geometry is the same bit for bit.
 *
 * Anything this encoder does not take on (mixed dimensions, empty or malformed coordinates) comes
 * back `undefined`: the caller keeps the GeoJSON text, which PostGIS's geometry input also reads
 * (or refuses, and the row is quarantined with the reason) — nothing is decided here silently.
 */

const TYPE_CODES: Record<string, number> = {
  Point: 1,
  LineString: 2,
  Polygon: 3,
  MultiPoint: 4,
  MultiLineString: 5,
  MultiPolygon: 6,
  GeometryCollection: 7,
};

/** Nesting depth of `coordinates` for each type: 0 = a position. */
const DEPTH: Record<string, number> = { Point: 0, LineString: 1, MultiPoint: 1, Polygon: 2, MultiLineString: 2, MultiPolygon: 3 };

interface Geometry {
  type: string;
  coordinates?: unknown;
  geometries?: unknown;
}

/**
 * The value to stage for a GeoJSON geometry: hex WKB, else the text for PostGIS to judge — except
 * positions that are not numbers, which PostGIS would read as 0 without a word: those get a text
 * that PostGIS refuses, so the row is quarantined with the reason.
 */
export function stagedGeometry(text: string): string {
  const hex = geoJsonToHexWkb(text);
  if (hex !== undefined) return hex;
  return NON_NUMBER_POSITION.test(text) ? `invalid GeoJSON geometry (a position is not numbers): ${text}` : text;
}

/** A string, true/false/null, or an object inside the innermost brackets of `coordinates`. */
const NON_NUMBER_POSITION = /"coordinates"\s*:[\s[\]\d.,eE+-]*\[[^\][]*["a-zA-Z{]/;

export function geoJsonToHexWkb(text: string): string | undefined {
  let geometry: unknown;
  try {
    geometry = JSON.parse(text);
  } catch {
    return undefined;
  }
  const dims = dimensionsOf(geometry);
  if (dims === undefined) return undefined;
  const size = sizeOf(geometry as Geometry, dims);
  if (size === undefined) return undefined;
  const out = Buffer.allocUnsafe(size);
  const end = write(out, 0, geometry as Geometry, dims);
  return end === size ? out.toString('hex') : undefined;
}

/** 2 or 3 when every position has that many numbers; undefined when they differ or are not numbers. */
function dimensionsOf(geometry: unknown): 2 | 3 | undefined {
  let dims: number | undefined;
  const visit = (value: unknown, depth: number): boolean => {
    if (!Array.isArray(value)) return false;
    if (depth === 0) {
      if (value.length !== 2 && value.length !== 3) return false;
      for (const n of value) if (typeof n !== 'number') return false;
      dims ??= value.length;
      return dims === value.length;
    }
    for (const v of value) if (!visit(v, depth - 1)) return false;
    return true;
  };
  const walk = (g: unknown, nested: number): boolean => {
    if (typeof g !== 'object' || g === null || nested > 8) return false;
    const { type, coordinates, geometries } = g as Geometry;
    if (type === 'GeometryCollection') return Array.isArray(geometries) && geometries.every((x) => walk(x, nested + 1));
    const depth = DEPTH[type];
    if (depth === undefined) return false;
    if (depth > 0 && Array.isArray(coordinates) && coordinates.length === 0) return true; // EMPTY
    return visit(coordinates, depth);
  };
  if (!walk(geometry, 0)) return undefined;
  return (dims ?? 2) as 2 | 3;
}

const HEADER = 5; // byte order + type

function sizeOf(g: Geometry, dims: number): number | undefined {
  const position = 8 * dims;
  const c = g.coordinates as number[][][][] & number[][][] & number[][] & number[];
  switch (g.type) {
    case 'Point':
      return HEADER + position;
    case 'LineString':
    case 'MultiPoint':
      return g.type === 'LineString' ? HEADER + 4 + c.length * position : HEADER + 4 + c.length * (HEADER + position);
    case 'Polygon':
      return HEADER + 4 + ringsSize(c as unknown as number[][][], position);
    case 'MultiLineString':
      return HEADER + 4 + (c as unknown as number[][][]).reduce((n, line) => n + HEADER + 4 + line.length * position, 0);
    case 'MultiPolygon':
      return HEADER + 4 + (c as unknown as number[][][][]).reduce((n, poly) => n + HEADER + 4 + ringsSize(poly, position), 0);
    case 'GeometryCollection': {
      let n = HEADER + 4;
      for (const part of g.geometries as Geometry[]) {
        const s = sizeOf(part, dims);
        if (s === undefined) return undefined;
        n += s;
      }
      return n;
    }
    default:
      return undefined;
  }
}

function ringsSize(rings: number[][][], position: number): number {
  let n = 0;
  for (const ring of rings) n += 4 + ring.length * position;
  return n;
}

function write(out: Buffer, at: number, g: Geometry, dims: number): number {
  at = header(out, at, g.type, dims);
  const c = g.coordinates;
  switch (g.type) {
    case 'Point':
      return positionAt(out, at, c as number[], dims);
    case 'LineString':
      return positions(out, at, c as number[][], dims);
    case 'Polygon':
      return rings(out, at, c as number[][][], dims);
    case 'MultiPoint':
      at = out.writeUInt32LE((c as number[][]).length, at);
      for (const p of c as number[][]) at = positionAt(out, header(out, at, 'Point', dims), p, dims);
      return at;
    case 'MultiLineString':
      at = out.writeUInt32LE((c as number[][][]).length, at);
      for (const line of c as number[][][]) at = positions(out, header(out, at, 'LineString', dims), line, dims);
      return at;
    case 'MultiPolygon':
      at = out.writeUInt32LE((c as number[][][][]).length, at);
      for (const poly of c as number[][][][]) at = rings(out, header(out, at, 'Polygon', dims), poly, dims);
      return at;
    case 'GeometryCollection':
      at = out.writeUInt32LE((g.geometries as Geometry[]).length, at);
      for (const part of g.geometries as Geometry[]) at = write(out, at, part, dims);
      return at;
    default:
      return -1;
  }
}

function header(out: Buffer, at: number, type: string, dims: number): number {
  out[at] = 1; // little-endian
  return out.writeUInt32LE(TYPE_CODES[type]! + (dims === 3 ? 1000 : 0), at + 1);
}

function positionAt(out: Buffer, at: number, p: number[], dims: number): number {
  at = out.writeDoubleLE(p[0]!, at);
  at = out.writeDoubleLE(p[1]!, at);
  return dims === 3 ? out.writeDoubleLE(p[2]!, at) : at;
}

function positions(out: Buffer, at: number, ps: number[][], dims: number): number {
  at = out.writeUInt32LE(ps.length, at);
  for (const p of ps) at = positionAt(out, at, p, dims);
  return at;
}

function rings(out: Buffer, at: number, rs: number[][][], dims: number): number {
  at = out.writeUInt32LE(rs.length, at);
  for (const r of rs) at = positions(out, at, r, dims);
  return at;
}
