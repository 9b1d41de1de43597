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
  return fastHexWkb(text) ?? slowHexWkb(text);
}

/** Through JSON.parse: any geometry, including collections and mixed cases the fast path leaves. */
export function slowHexWkb(text: string): string | undefined {
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

// ---------------------------------------------------------------------------------------------
// The fast path: the common geometries (Point … MultiPolygon, 2D or 3D) read straight from the
// text into WKB, without building JavaScript arrays. Anything unusual returns undefined and the
// JSON.parse path above decides. Measured on 50,000 polygons of 20–40 vertices: about 3× faster.

const DEPTH_CODE: Record<string, [depth: number, code: number]> = {
  Point: [0, 1],
  LineString: [1, 2],
  Polygon: [2, 3],
  MultiPoint: [1, 4],
  MultiLineString: [2, 5],
  MultiPolygon: [3, 6],
};

/** Exact powers of ten: m / 10^k is correctly rounded when m < 2^53 and k ≤ 22. */
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

let scratch = new DataView(new ArrayBuffer(64 * 1024));

class Writer {
  at = 0;
  view = scratch;
  ensure(bytes: number): void {
    if (this.at + bytes <= this.view.byteLength) return;
    const bigger = new DataView(new ArrayBuffer(Math.max(this.view.byteLength * 2, this.at + bytes)));
    new Uint8Array(bigger.buffer).set(new Uint8Array(this.view.buffer, 0, this.at));
    this.view = scratch = bigger;
  }
  header(code: number): void {
    this.ensure(5);
    this.view.setUint8(this.at, 1);
    this.view.setUint32(this.at + 1, code, true);
    this.at += 5;
  }
  reserveCount(): number {
    this.ensure(4);
    const at = this.at;
    this.at += 4;
    return at;
  }
  setCount(at: number, n: number): void {
    this.view.setUint32(at, n, true);
  }
  double(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.at, v, true);
    this.at += 8;
  }
}

/** Parses the text of one geometry; `undefined` leaves it to the slow path. */
class FastGeometry {
  i = 0;
  dims = 0;
  constructor(readonly s: string) {}

  ws(): void {
    const s = this.s;
    let c = s.charCodeAt(this.i);
    while (c === 32 || c === 10 || c === 13 || c === 9) c = s.charCodeAt(++this.i);
  }

  /** A string without escapes (keys and type names): its text, or undefined. */
  str(): string | undefined {
    const s = this.s;
    if (s.charCodeAt(this.i) !== 34) return undefined;
    const end = s.indexOf('"', this.i + 1);
    if (end < 0) return undefined;
    const text = s.slice(this.i + 1, end);
    if (text.includes('\\')) return undefined;
    this.i = end + 1;
    return text;
  }

  /** Skip one JSON value of any kind (brackets balanced, strings respected). */
  skip(): boolean {
    const s = this.s;
    let depth = 0;
    for (; this.i < s.length; this.i++) {
      const c = s.charCodeAt(this.i);
      if (c === 34) {
        for (this.i++; this.i < s.length && s.charCodeAt(this.i) !== 34; this.i++) if (s.charCodeAt(this.i) === 92) this.i++;
      } else if (c === 91 || c === 123) depth++;
      else if (c === 93 || c === 125) {
        if (depth === 0) return true;
        if (--depth === 0) {
          this.i++;
          return true;
        }
      } else if (depth === 0 && c === 44) return true;
    }
    return depth === 0;
  }

  number(): number | undefined {
    const s = this.s;
    const start = this.i;
    let i = start;
    let c = s.charCodeAt(i);
    let negative = false;
    if (c === 45) {
      negative = true;
      c = s.charCodeAt(++i);
    }
    let m = 0;
    let digits = 0;
    let frac = 0;
    while (c >= 48 && c <= 57) {
      m = m * 10 + (c - 48);
      digits++;
      c = s.charCodeAt(++i);
    }
    if (c === 46) {
      c = s.charCodeAt(++i);
      while (c >= 48 && c <= 57) {
        m = m * 10 + (c - 48);
        digits++;
        frac++;
        c = s.charCodeAt(++i);
      }
    }
    if (digits === 0) return undefined;
    if (c === 101 || c === 69 || digits > 15 || frac > 22) {
      // exponents and long numbers: the engine's own correctly rounded conversion
      while (i < s.length && /[0-9eE+.-]/.test(s[i]!)) i++;
      const v = Number(s.slice(start, i));
      if (!Number.isFinite(v)) return undefined;
      this.i = i;
      return v;
    }
    this.i = i;
    const v = m / POW10[frac]!;
    return negative ? -v : v;
  }

  /** `[x, y]` or `[x, y, z]`, all positions of one geometry with the same count. */
  position(w: Writer): boolean {
    const s = this.s;
    if (s.charCodeAt(this.i) !== 91) return false;
    this.i++;
    let n = 0;
    const values = [0, 0, 0];
    for (;;) {
      this.ws();
      if (n > 0) {
        const c = s.charCodeAt(this.i);
        if (c === 93) break;
        if (c !== 44) return false;
        this.i++;
        this.ws();
      } else if (s.charCodeAt(this.i) === 93) return false;
      const v = this.number();
      if (v === undefined || n === 3) return false;
      values[n++] = v;
    }
    this.i++;
    if (n < 2) return false;
    if (this.dims === 0) this.dims = n;
    else if (this.dims !== n) return false;
    for (let k = 0; k < n; k++) w.double(values[k]!);
    return true;
  }

  /** An array of items at `depth` (0: positions); writes the count, then each item. */
  list(w: Writer, depth: number, itemHeader: number): boolean {
    const s = this.s;
    if (s.charCodeAt(this.i) !== 91) return false;
    this.i++;
    const count = w.reserveCount();
    let n = 0;
    for (;;) {
      this.ws();
      const c = s.charCodeAt(this.i);
      if (c === 93) break;
      if (n > 0) {
        if (c !== 44) return false;
        this.i++;
        this.ws();
      }
      if (itemHeader) w.header(itemHeader);
      const ok = depth === 0 ? this.position(w) : this.list(w, depth - 1, 0);
      if (!ok) return false;
      n++;
    }
    this.i++;
    w.setCount(count, n);
    return n > 0;
  }
}

/** Exported for the differential test against the JSON.parse path. */
export function fastHexWkb(text: string): string | undefined {
  const g = new FastGeometry(text);
  g.ws();
  if (text.charCodeAt(g.i) !== 123) return undefined;
  g.i++;
  let type: string | undefined;
  let coordinates = -1;
  for (;;) {
    g.ws();
    const key = g.str();
    if (key === undefined) return undefined;
    g.ws();
    if (text.charCodeAt(g.i) !== 58) return undefined;
    g.i++;
    g.ws();
    if (key === 'type') {
      type = g.str();
      if (type === undefined) return undefined;
    } else {
      if (key === 'coordinates') coordinates = g.i;
      if (!g.skip()) return undefined;
    }
    g.ws();
    const c = text.charCodeAt(g.i);
    if (c === 125) break;
    if (c !== 44) return undefined;
    g.i++;
  }
  const shape = type === undefined ? undefined : DEPTH_CODE[type];
  if (!shape || coordinates < 0) return undefined;
  const [depth, code] = shape;
  // the dimension is known only after the first position: write as 2D, patch the codes if 3D
  const w = new Writer();
  g.i = coordinates;
  w.header(code);
  let ok: boolean;
  if (depth === 0) ok = g.position(w);
  else if (code === 4) ok = g.list(w, 0, 1); // MultiPoint: each point has its own header
  else if (code === 5 || code === 6) ok = multi(g, w, code === 5 ? 2 : 3);
  else ok = g.list(w, depth - 1, 0);
  if (!ok) return undefined;
  if (g.dims === 3) patchZ(w);
  return Buffer.from(w.view.buffer, 0, w.at).toString('hex');
}

/** MultiLineString / MultiPolygon: a list of parts, each with its own header. */
function multi(g: FastGeometry, w: Writer, partCode: number): boolean {
  const s = g.s;
  if (s.charCodeAt(g.i) !== 91) return false;
  g.i++;
  const count = w.reserveCount();
  let n = 0;
  for (;;) {
    g.ws();
    const c = s.charCodeAt(g.i);
    if (c === 93) break;
    if (n > 0) {
      if (c !== 44) return false;
      g.i++;
      g.ws();
    }
    w.header(partCode);
    if (!g.list(w, partCode === 2 ? 0 : 1, 0)) return false;
    n++;
  }
  g.i++;
  w.setCount(count, n);
  return n > 0;
}

/** Rewrite every header's type code as its ISO Z variant (code + 1000) once the geometry is known to be 3D. */
function patchZ(w: Writer): void {
  const v = w.view;
  const walk = (at: number): number => {
    const code = v.getUint32(at + 1, true);
    v.setUint32(at + 1, code + 1000, true);
    at += 5;
    const positions = (n: number, p: number) => p + n * 24;
    switch (code) {
      case 1:
        return at + 24;
      case 2:
        return positions(v.getUint32(at, true), at + 4);
      case 3: {
        const rings = v.getUint32(at, true);
        at += 4;
        for (let r = 0; r < rings; r++) at = positions(v.getUint32(at, true), at + 4);
        return at;
      }
      default: {
        const parts = v.getUint32(at, true);
        at += 4;
        for (let p = 0; p < parts; p++) at = walk(at);
        return at;
      }
    }
  };
  walk(0);
}
