/**
 * Geometry as hex WKB, the text PostGIS casts fastest (`'0103000000…'::geometry`).
 *
 * - `ShapeEncoder` turns the content of one shapefile record into WKB straight from the record
 *   bytes: no JS object per vertex. Shapefile doubles are little-endian, like the WKB written here,
 *   so 2D coordinates are copied as whole byte ranges; Z values are interleaved. M values are
 *   dropped (PostGIS columns rarely carry them and the shapefile "no data" M is a huge negative
 *   number). Z geometries use the ISO codes (1001…1006), which PostGIS reads.
 * - `hexFromGpkgBlob` strips the GeoPackage header (`GP`, version, flags, srs_id, envelope) and
 *   returns the standard WKB behind it as hex, unchanged: PostGIS reads its ISO Z/M/ZM codes and
 *   curve types as they are.
 *
 * The few repairs the encoder makes so that PostGIS can read every value (it refuses unclosed
 * rings, rings under 4 points and lines under 2 points) are counted in `ShapeEncoder.repairs`,
 * which the shapefile reader turns into warnings.
 */

/** A record whose bytes contradict themselves; the caller adds the file, feature and offset. */
export class ShapeFormatError extends Error {
  override name = 'ShapeFormatError';
}

const WKB_POINT = 1;
const WKB_LINESTRING = 2;
const WKB_POLYGON = 3;
const WKB_MULTIPOINT = 4;
const WKB_MULTILINESTRING = 5;
const WKB_MULTIPOLYGON = 6;
/** ISO WKB: + 1000 for a Z geometry. */
const ISO_Z = 1000;

/** Shapefile shape types (ESRI Shapefile Technical Description, 1998). */
export const SHAPE_TYPES: Record<number, { name: string; declared: string | undefined }> = {
  0: { name: 'Null', declared: undefined },
  1: { name: 'Point', declared: 'Point' },
  3: { name: 'PolyLine', declared: 'MultiLineString' },
  5: { name: 'Polygon', declared: 'MultiPolygon' },
  8: { name: 'MultiPoint', declared: 'MultiPoint' },
  11: { name: 'PointZ', declared: 'PointZ' },
  13: { name: 'PolyLineZ', declared: 'MultiLineStringZ' },
  15: { name: 'PolygonZ', declared: 'MultiPolygonZ' },
  18: { name: 'MultiPointZ', declared: 'MultiPointZ' },
  21: { name: 'PointM', declared: 'Point' },
  23: { name: 'PolyLineM', declared: 'MultiLineString' },
  25: { name: 'PolygonM', declared: 'MultiPolygon' },
  28: { name: 'MultiPointM', declared: 'MultiPoint' },
  31: { name: 'MultiPatch', declared: 'MultiPolygonZ' },
};

const HAS_Z = new Set([11, 13, 15, 18, 31]);

/** What the encoder changed so PostGIS can read the value: counts, and the first feature of each. */
export interface ShapeRepairs {
  /** Polygon rings under 4 points (closed), dropped with their holes. */
  shortRings: Repair;
  /** Line parts under 2 points, dropped. */
  shortParts: Repair;
  /** Rings oriented as holes that lie in no outer ring: each kept as a polygon of its own. */
  orphanHoles: Repair;
  /** Shapes left with nothing drawable after the drops above: written as NULL. */
  emptied: Repair;
}
export interface Repair {
  count: number;
  firstFeature?: number;
}

/** What a shape with a NaN or infinite coordinate is staged as: text PostGIS refuses, with the reason. */
export const NON_FINITE_SHAPE = 'invalid shape (a coordinate is NaN or infinite)';

/** One polygon of the output: ring indices into the record's rings. */
interface PolygonRings {
  outer: number;
  holes: number[];
}

/**
 * Turns shapefile record contents into hex WKB, reusing its buffers from record to record
 * (memory is bounded by the largest record, not the file).
 */
export class ShapeEncoder {
  readonly repairs: ShapeRepairs = {
    shortRings: { count: 0 },
    shortParts: { count: 0 },
    orphanHoles: { count: 0 },
    emptied: { count: 0 },
  };
  private out = Buffer.allocUnsafe(64 * 1024);
  private o = 0;
  /** XY of the current record, aligned for fast reading. */
  private xy = new Float64Array(4096);
  private xyBytes = new Uint8Array(this.xy.buffer);
  private z = new Float64Array(2048);
  private zBytes = new Uint8Array(this.z.buffer);
  /** Each part's first point of the current record, then its number of points. */
  private starts = new Int32Array(64);
  private feature = 0;
  /** The current record has a coordinate that is NaN or infinite. */
  private nonFinite = false;

  /**
   * Hex WKB of the record content `buf[p, p + len)`, or `null` for a Null shape.
   * @param feature 1-based record number, for `repairs`.
   */
  encode(buf: Buffer, p: number, len: number, feature: number): string | null {
    const wkb = this.encodeBytes(buf, p, len, feature);
    return wkb === null || typeof wkb === 'string' ? wkb : wkb.toString('hex');
  }

  /**
   * The same as `encode`, as the WKB bytes themselves: a view of the encoder's buffer, valid until
   * the next call (the caller copies what it keeps). `null` for a Null shape, NON_FINITE_SHAPE for a
   * shape with a NaN or infinite coordinate.
   */
  encodeBytes(buf: Buffer, p: number, len: number, feature: number, append = false): Buffer | string | null {
    if (len < 4) throw new ShapeFormatError(`holds ${len} bytes, too few for a shape type`);
    this.feature = feature;
    const type = buf.readInt32LE(p);
    // appended: after the shapes encoded since the last rewind(), which stay as they are
    const from = append ? this.o : 0;
    this.o = from;
    this.nonFinite = false;
    switch (type) {
      case 0:
        return null;
      case 1:
      case 11:
      case 21:
        this.point(buf, p, len, HAS_Z.has(type));
        break;
      case 8:
      case 18:
      case 28:
        this.multiPoint(buf, p, len, HAS_Z.has(type));
        break;
      case 3:
      case 13:
      case 23:
        if (!this.polyLine(buf, p, len, HAS_Z.has(type))) {
          this.o = from;
          return null;
        }
        break;
      case 5:
      case 15:
      case 25:
        if (!this.polygon(buf, p, len, HAS_Z.has(type))) {
          this.o = from;
          return null;
        }
        break;
      case 31:
        if (!this.multiPatch(buf, p, len)) {
          this.o = from;
          return null;
        }
        break;
      default:
        throw new ShapeFormatError(`has shape type ${type}, which is not a shapefile shape type`);
    }
    // PostGIS would read NaN as an empty point and keep infinities: a text it refuses instead, so
    // the feature is quarantined with the reason
    if (this.nonFinite) {
      this.o = from;
      return NON_FINITE_SHAPE;
    }
    return this.out.subarray(from, this.o);
  }

  /** The next shape appended starts the buffer again: the shapes appended so far are no longer used. */
  rewind(): void {
    this.o = 0;
  }

  // ---- shapes ----

  private point(buf: Buffer, p: number, len: number, zType: boolean): void {
    if (len < 20) throw new ShapeFormatError(`is a point of ${len} bytes; a point needs 20`);
    const hasZ = zType && len >= 28;
    this.reserve(hasZ ? 29 : 21);
    this.header(WKB_POINT, hasZ);
    this.checkXY(buf, p + 4);
    this.copy(buf, p + 4, 16);
    if (hasZ) this.double(buf.readDoubleLE(p + 20));
  }

  private multiPoint(buf: Buffer, p: number, len: number, zType: boolean): void {
    if (len < 40) throw new ShapeFormatError(`is a multipoint of ${len} bytes; its header alone needs 40`);
    const n = buf.readInt32LE(p + 36);
    const need = 40 + 16 * n;
    if (n < 0 || need > len) throw new ShapeFormatError(`claims ${count(n, 'point')}, which need ${need} bytes; the record holds ${len}`);
    const zOff = p + need + 16;
    const hasZ = zType && len >= need + 16 + 8 * n;
    const each = hasZ ? 29 : 21;
    this.reserve(9 + each * n);
    this.header(WKB_MULTIPOINT, hasZ);
    this.u32(n);
    for (let i = 0; i < n; i++) {
      this.header(WKB_POINT, hasZ);
      this.checkXY(buf, p + 40 + 16 * i);
      this.copy(buf, p + 40 + 16 * i, 16);
      if (hasZ) this.double(buf.readDoubleLE(zOff + 8 * i));
    }
  }

  private polyLine(buf: Buffer, p: number, len: number, zType: boolean): boolean {
    const shape = this.parts(buf, p, len, zType);
    const kept: number[] = [];
    for (let part = 0; part < shape.numParts; part++) {
      if (shape.count(part) >= 2) kept.push(part);
      else this.note(this.repairs.shortParts);
    }
    if (kept.length === 0) return this.emptied();
    const vertexBytes = shape.hasZ ? 24 : 16;
    let size = kept.length > 1 ? 9 : 0;
    for (const part of kept) size += 9 + vertexBytes * shape.count(part);
    this.reserve(size);
    if (kept.length > 1) {
      this.header(WKB_MULTILINESTRING, shape.hasZ);
      this.u32(kept.length);
    }
    for (const part of kept) {
      this.header(WKB_LINESTRING, shape.hasZ);
      this.u32(shape.count(part));
      this.vertices(buf, shape, shape.start(part), shape.count(part));
    }
    return true;
  }

  /**
   * Outer rings are clockwise and holes counter-clockwise (shapefile rule). With one outer ring
   * every hole is its; with several, each hole goes to the smallest outer ring whose box holds
   * it and that contains one of its vertices.
   */
  private polygon(buf: Buffer, p: number, len: number, zType: boolean): boolean {
    const shape = this.parts(buf, p, len, zType);
    const rings = ringFacts(shape, this.xy);
    const outers: number[] = [];
    const holes: number[] = [];
    for (let r = 0; r < rings.length; r++) {
      const ring = rings[r]!;
      if (ring.points < 4) {
        this.note(this.repairs.shortRings);
        continue;
      }
      (ring.area <= 0 ? outers : holes).push(r);
    }
    const polygons: PolygonRings[] = outers.map((outer) => ({ outer, holes: [] }));
    for (const hole of holes) {
      const owner = polygons.length === 1 && outers.length === 1 ? polygons[0] : this.ownerOf(hole, polygons, rings);
      if (owner) owner.holes.push(hole);
      else {
        this.note(this.repairs.orphanHoles);
        polygons.push({ outer: hole, holes: [] });
      }
    }
    if (polygons.length === 0) return this.emptied();
    this.writePolygons(buf, shape, polygons, rings);
    return true;
  }

  /**
   * Multipatch parts: triangle strips and fans become one triangle polygon each; outer/first
   * rings start a polygon and inner/plain rings after them are its holes.
   */
  private multiPatch(buf: Buffer, p: number, len: number): boolean {
    const shape = this.parts(buf, p, len, true, true);
    const polygons: number[][][] = [];
    let current: number[][] | undefined;
    for (let part = 0; part < shape.numParts; part++) {
      const start = shape.start(part);
      const count = shape.count(part);
      const partType = buf.readInt32LE(shape.partTypesOff + 4 * part);
      if (partType === 0 || partType === 1) {
        for (let k = 0; k + 2 < count; k++) {
          const a = partType === 0 ? start + k : start;
          polygons.push([[a, start + k + 1, start + k + 2, a]]);
        }
        current = undefined;
        continue;
      }
      const ring = closedRing(this.xy, start, count);
      if (ring.length < 4) {
        this.note(this.repairs.shortRings);
        continue;
      }
      if (partType === 2 || partType === 4 || !current) {
        current = [ring];
        polygons.push(current);
      } else current.push(ring);
    }
    if (polygons.length === 0) return this.emptied();
    const vertexBytes = shape.hasZ ? 24 : 16;
    let size = polygons.length > 1 ? 9 : 0;
    for (const poly of polygons) {
      size += 9;
      for (const ring of poly) size += 4 + vertexBytes * ring.length;
    }
    this.reserve(size);
    if (polygons.length > 1) {
      this.header(WKB_MULTIPOLYGON, shape.hasZ);
      this.u32(polygons.length);
    }
    for (const poly of polygons) {
      this.header(WKB_POLYGON, shape.hasZ);
      this.u32(poly.length);
      for (const ring of poly) {
        this.u32(ring.length);
        for (const v of ring) {
          this.double(this.xy[2 * v]!);
          this.double(this.xy[2 * v + 1]!);
          if (shape.hasZ) this.double(this.z[v]!);
        }
      }
    }
    return true;
  }

  // ---- parts and rings ----

  /**
   * The part/point layout shared by polylines, polygons and multipatches, checked against the
   * record length; loads XY (and Z) into the aligned scratch arrays.
   */
  private parts(buf: Buffer, p: number, len: number, zType: boolean, partTypes = false): Parts {
    if (len < 44) throw new ShapeFormatError(`holds ${len} bytes; a shape with parts needs at least 44`);
    const numParts = buf.readInt32LE(p + 36);
    const numPoints = buf.readInt32LE(p + 40);
    const partsOff = p + 44;
    const partTypesOff = partsOff + 4 * numParts;
    const pointsOff = partTypesOff + (partTypes ? 4 * numParts : 0);
    const need = pointsOff - p + 16 * numPoints;
    if (numParts < 0 || numPoints < 0 || need > len) {
      throw new ShapeFormatError(`claims ${count(numParts, 'part')} and ${count(numPoints, 'point')}, which need ${need} bytes; the record holds ${len}`);
    }
    const hasZ = zType && len >= need + 16 + 8 * numPoints;
    if (this.starts.length < numParts + 1) this.starts = new Int32Array(2 * (numParts + 1));
    const starts = this.starts;
    for (let i = 0; i < numParts; i++) {
      const s = buf.readInt32LE(partsOff + 4 * i);
      if (s < 0 || s > numPoints || (i > 0 && s < starts[i - 1]!)) {
        throw new ShapeFormatError(`has part ${i + 1} starting at point ${s}, outside its ${numPoints} points or before the previous part`);
      }
      starts[i] = s;
    }
    starts[numParts] = numPoints;
    if (this.xy.length < 2 * numPoints) {
      this.xy = new Float64Array(3 * numPoints);
      this.xyBytes = new Uint8Array(this.xy.buffer);
    }
    // copied through a byte view kept with the array: no view made per record
    buf.copy(this.xyBytes, 0, pointsOff, pointsOff + 16 * numPoints);
    this.checkFinite(this.xy, 2 * numPoints);
    if (hasZ) {
      if (this.z.length < numPoints) {
        this.z = new Float64Array(Math.ceil(numPoints * 1.5));
        this.zBytes = new Uint8Array(this.z.buffer);
      }
      const zOff = pointsOff + 16 * numPoints + 16;
      buf.copy(this.zBytes, 0, zOff, zOff + 8 * numPoints);
      this.checkFinite(this.z, numPoints);
    }
    // a class, not closures: a closure made per record costs more than the record's decoding (tsx names each one)
    return new Parts(numParts, numPoints, pointsOff, partTypesOff, hasZ, starts);
  }

  /** Smallest outer ring (by area) whose box holds the hole's and that contains a vertex of it. */
  private ownerOf(hole: number, polygons: PolygonRings[], rings: RingFacts[]): PolygonRings | undefined {
    const h = rings[hole]!;
    let best: PolygonRings | undefined;
    let bestArea = Infinity;
    let boxOnly: PolygonRings | undefined;
    for (const poly of polygons) {
      const o = rings[poly.outer]!;
      if (o.area > 0 || h.minX < o.minX || h.maxX > o.maxX || h.minY < o.minY || h.maxY > o.maxY) continue;
      boxOnly ??= poly;
      if (-o.area < bestArea && holeInside(this.xy, h, o)) {
        best = poly;
        bestArea = -o.area;
      }
    }
    // a hole whose tested vertices all sit on the outer's edge: the box is the best evidence left
    return best ?? boxOnly;
  }

  private writePolygons(buf: Buffer, shape: Parts, polygons: PolygonRings[], rings: RingFacts[]): void {
    const vertexBytes = shape.hasZ ? 24 : 16;
    const multi = polygons.length > 1;
    let size = multi ? 9 : 0;
    for (const poly of polygons) {
      size += 9 + 4 + vertexBytes * rings[poly.outer]!.points;
      for (const hole of poly.holes) size += 4 + vertexBytes * rings[hole]!.points;
    }
    this.reserve(size);
    if (multi) {
      this.header(WKB_MULTIPOLYGON, shape.hasZ);
      this.u32(polygons.length);
    }
    for (const poly of polygons) {
      this.header(WKB_POLYGON, shape.hasZ);
      this.u32(1 + poly.holes.length);
      this.ring(buf, shape, rings[poly.outer]!);
      for (const hole of poly.holes) this.ring(buf, shape, rings[hole]!);
    }
  }

  private ring(buf: Buffer, shape: Parts, ring: RingFacts): void {
    this.u32(ring.points);
    this.vertices(buf, shape, ring.start, ring.count);
    if (ring.points > ring.count) this.vertices(buf, shape, ring.start, 1);
  }

  /** Vertices `start … start + count - 1`: a byte copy in 2D, XYZ interleaved in 3D. */
  private vertices(buf: Buffer, shape: Parts, start: number, count: number): void {
    if (!shape.hasZ) {
      this.copy(buf, shape.pointsOff + 16 * start, 16 * count);
      return;
    }
    const xy = this.xy;
    const z = this.z;
    for (let i = start; i < start + count; i++) {
      this.double(xy[2 * i]!);
      this.double(xy[2 * i + 1]!);
      this.double(z[i]!);
    }
  }

  // ---- output ----

  private reserve(size: number): void {
    if (this.out.length < this.o + size) {
      const next = Buffer.allocUnsafe(Math.max(this.o + size, this.out.length * 2));
      this.out.copy(next, 0, 0, this.o);
      this.out = next;
    }
  }

  private header(type: number, hasZ: boolean): void {
    this.out[this.o] = 1; // little-endian
    this.out.writeUInt32LE(hasZ ? type + ISO_Z : type, this.o + 1);
    this.o += 5;
  }

  private u32(n: number): void {
    this.out.writeUInt32LE(n, this.o);
    this.o += 4;
  }

  private double(v: number): void {
    if (v - v !== 0) this.nonFinite = true; // NaN or ±Infinity
    this.out.writeDoubleLE(v, this.o);
    this.o += 8;
  }

  private copy(buf: Buffer, from: number, bytes: number): void {
    buf.copy(this.out, this.o, from, from + bytes);
    this.o += bytes;
  }

  /** Notes a NaN or infinity among the first `n` numbers of `values`. */
  private checkFinite(values: Float64Array, n: number): void {
    let bad = 0;
    for (let i = 0; i < n; i++) bad += values[i]! - values[i]!; // 0 for every finite number
    if (bad !== 0) this.nonFinite = true;
  }

  /** Notes a NaN or infinity in the x, y at `buf[at]`. */
  private checkXY(buf: Buffer, at: number): void {
    const x = buf.readDoubleLE(at);
    const y = buf.readDoubleLE(at + 8);
    if (x - x !== 0 || y - y !== 0) this.nonFinite = true;
  }

  private note(repair: Repair): void {
    repair.count++;
    repair.firstFeature ??= this.feature;
  }

  private emptied(): false {
    this.note(this.repairs.emptied);
    return false;
  }
}

/** A record's parts: `starts` holds each part's first point, then the number of points (the encoder's scratch, valid for one record). */
class Parts {
  constructor(
    readonly numParts: number,
    readonly numPoints: number,
    readonly pointsOff: number,
    readonly partTypesOff: number,
    readonly hasZ: boolean,
    private readonly starts: Int32Array,
  ) {}

  start(part: number): number {
    return this.starts[part]!;
  }

  count(part: number): number {
    return this.starts[part + 1]! - this.starts[part]!;
  }
}

interface RingFacts {
  start: number;
  /** Vertices stored in the file. */
  count: number;
  /** Vertices written: `count`, plus one when the file's ring is not closed. */
  points: number;
  /** Signed area (shoelace): negative for clockwise, i.e. an outer ring. */
  area: number;
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

function ringFacts(shape: Parts, xy: Float64Array): RingFacts[] {
  const rings: RingFacts[] = [];
  for (let part = 0; part < shape.numParts; part++) {
    const start = shape.start(part);
    const count = shape.count(part);
    if (count === 0) {
      rings.push({ start, count, points: 0, area: 0, minX: 0, minY: 0, maxX: 0, maxY: 0 });
      continue;
    }
    let minX = Infinity;
    let minY = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    let twiceArea = 0;
    const x0 = xy[2 * start]!;
    const y0 = xy[2 * start + 1]!;
    // relative to the first vertex: keeps precision for projected coordinates in the millions
    let px = 0;
    let py = 0;
    for (let i = start; i < start + count; i++) {
      const x = xy[2 * i]!;
      const y = xy[2 * i + 1]!;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
      const rx = x - x0;
      const ry = y - y0;
      twiceArea += px * ry - rx * py;
      px = rx;
      py = ry;
    }
    const end = start + count - 1;
    const closed = xy[2 * end] === x0 && xy[2 * end + 1] === y0;
    rings.push({ start, count, points: closed ? count : count + 1, area: twiceArea / 2, minX, minY, maxX, maxY });
  }
  return rings;
}

/**
 * Whether the hole lies inside the outer ring, judged by its first vertex that is not on the
 * outer ring's edge (crossing-number test). Holes touching their outer ring at a vertex are
 * common, hence more than one vertex when needed.
 */
function holeInside(xy: Float64Array, hole: RingFacts, outer: RingFacts): boolean {
  const tries = Math.min(hole.count, 4);
  for (let k = 0; k < tries; k++) {
    const v = hole.start + k;
    const where = pointInRing(xy, xy[2 * v]!, xy[2 * v + 1]!, outer.start, outer.count);
    if (where !== 0) return where > 0;
  }
  return false;
}

/** 1 inside, -1 outside, 0 on the edge. The ring may or may not repeat its first vertex. */
function pointInRing(xy: Float64Array, x: number, y: number, start: number, count: number): number {
  let inside = false;
  for (let i = start, j = start + count - 1; i < start + count; j = i++) {
    const xi = xy[2 * i]!;
    const yi = xy[2 * i + 1]!;
    const xj = xy[2 * j]!;
    const yj = xy[2 * j + 1]!;
    if ((xi === x && yi === y) || onSegment(x, y, xi, yi, xj, yj)) return 0;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside ? 1 : -1;
}

function onSegment(x: number, y: number, x1: number, y1: number, x2: number, y2: number): boolean {
  if (x < Math.min(x1, x2) || x > Math.max(x1, x2) || y < Math.min(y1, y2) || y > Math.max(y1, y2)) return false;
  return (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1) === 0;
}

/** Vertex indices of a ring, closed. */
function closedRing(xy: Float64Array, start: number, count: number): number[] {
  const ring: number[] = [];
  for (let i = start; i < start + count; i++) ring.push(i);
  if (count > 0 && (xy[2 * start] !== xy[2 * (start + count - 1)] || xy[2 * start + 1] !== xy[2 * (start + count - 1) + 1])) ring.push(start);
  return ring;
}

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** Bytes of the envelope after the 8-byte GeoPackage header, by the flags' envelope indicator. */
const ENVELOPE_BYTES = [0, 32, 48, 48, 64];

/**
 * The standard WKB inside a GeoPackage geometry blob, as hex. A blob without the `GP` magic that
 * starts like WKB (byte order 0 or 1) is taken as plain WKB, as some writers store it.
 * Throws a `ShapeFormatError` for anything else.
 */
export function hexFromGpkgBlob(blob: Uint8Array): string {
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (bytes.length >= 8 && bytes[0] === 0x47 && bytes[1] === 0x50) {
    const flags = bytes[3]!;
    const envelope = ENVELOPE_BYTES[(flags >> 1) & 0x07];
    if (envelope === undefined) throw new ShapeFormatError(`has an invalid envelope code ${(flags >> 1) & 0x07} in its GeoPackage header`);
    const start = 8 + envelope;
    if (bytes.length < start + 5) throw new ShapeFormatError(`is a GeoPackage geometry of ${bytes.length} bytes, too short for its header and any WKB`);
    return bytes.toString('hex', start);
  }
  if (bytes.length >= 5 && (bytes[0] === 0 || bytes[0] === 1)) return bytes.toString('hex');
  throw new ShapeFormatError(`is neither a GeoPackage geometry (no "GP" header) nor WKB`);
}
