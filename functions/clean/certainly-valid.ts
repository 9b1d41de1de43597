/**
 * A sufficient test of OGC validity (what PostGIS's ST_IsValid, i.e. GEOS, says) for a shape's WKB,
 * done in Node while the shape is written: `true` only when the shape is valid for certain, `false`
 * when it may not be — the caller then leaves the shape to ST_IsValid. It never decides that a
 * shape is invalid, so whatever it cannot prove (touching rings, an island in a lake, collinear
 * neighbours, repeated points, a vertex too close to another ring to tell in floating point, other
 * geometry types) simply goes to PostGIS, as every shape did before (issue 19: the load's
 * validity check ran ST_IsValid over the whole table after the COPY).
 *
 * A polygon is proved valid when every ring has at least 4 points, is closed, repeats no point
 * twice in a row, and its segments and the other rings' segments meet nowhere except where two
 * neighbours of one ring share their vertex (and those two are not collinear); every hole lies inside
 * its shell, no hole inside another, and no polygon's shell inside another's. Rings that touch
 * nowhere make a polygon (or a multipolygon) whose interior is connected, and those are all of
 * GEOS's rules for it (orientation does not matter to it). A line is valid with two distinct
 * points per part. Signs of orientation are taken as certain only beyond the floating-point error
 * bound of the determinant (Shewchuk's orient2d filter, with a wide margin): near-degenerate
 * cases go to PostGIS.
 *
 * How, cheaply: a ring whose every edge, seen from its vertices' mean, turns the same way and
 * which crosses a ray from there once is star-shaped, hence simple, in one pass (most rings are);
 * then only the segments of two rings that reach into each other's box are compared. Rings that
 * are not star-shaped, or too many such pairs, go through a sweep along x over all segments.
 * The benchmark's 200,000 polygons (issue 19) take about 0.1 s, all proved.
 */

/** Scratch space, reused from shape to shape (grows for the largest). */
/** The shape's points, x and y interleaved. */
let xy = new Float64Array(2048);
let xyBytes = new Uint8Array(xy.buffer);
/** Per ring: its first point in xy, its number of points (closing point included), its polygon, whether it is a shell. */
let ringStart = new Int32Array(64);
let ringPoints = new Int32Array(64);
let ringPolygon = new Int32Array(64);
/** Per ring: its box (min x, min y, max x, max y). */
let boxes = new Float64Array(4 * 64);
/** Per segment (point i → i + 1 of its ring): its first point, its ring, its box. */
let segPoint = new Int32Array(1024);
let segRing = new Int32Array(1024);
let order = new Int32Array(1024);
let minXs = new Float64Array(1024);
let maxXs = new Float64Array(1024);

const ISO_Z = 1000;
/** Relative error bound of the orientation determinant: Shewchuk's ccwerrboundA is about 3.3e-16; kept far wider. */
const ERROR_BOUND = 1e-12;

/** Whether the WKB (as the shapefile encoder writes it: little-endian ISO, XY or XYZ) is a valid shape for certain. */
export function certainlyValid(wkb: Uint8Array): boolean {
  if (wkb.length < 9 || wkb[0] !== 1) return false;
  const code = u32(wkb, 1);
  const base = code % ISO_Z;
  const dims = Math.floor(code / ISO_Z);
  if (dims !== 0 && dims !== 1) return false;
  const stride = dims === 1 ? 24 : 16;
  switch (base) {
    case 2:
      return lineValid(dataView(wkb), 5, stride) > 0;
    case 5: {
      const view = dataView(wkb);
      const n = view.getUint32(5, true);
      let at = 9;
      if (n === 0) return false;
      for (let i = 0; i < n; i++) {
        if (at + 5 > view.byteLength || view.getUint8(at) !== 1 || view.getUint32(at + 1, true) % ISO_Z !== 2) return false;
        at = lineValid(view, at + 5, stride);
        if (at < 0) return false;
      }
      return true;
    }
    case 3:
      return polygons(wkb, 5, 1, stride, false);
    case 6: {
      const n = u32(wkb, 5);
      return n > 0 && polygons(wkb, 9, n, stride, true);
    }
    default:
      return false;
  }
}

/** A little-endian unsigned 32-bit integer (read without a DataView made per shape). */
function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) + bytes[at + 3]! * 0x1000000;
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A line's end offset when it has two distinct points (else -1). */
function lineValid(view: DataView, at: number, stride: number): number {
  if (at + 4 > view.byteLength) return -1;
  const n = view.getUint32(at, true);
  const start = at + 4;
  const end = start + n * stride;
  if (n < 2 || end > view.byteLength) return -1;
  const x0 = view.getFloat64(start, true);
  const y0 = view.getFloat64(start + 8, true);
  let distinct = false;
  let nonFinite = 0;
  for (let p = start; p < end; p += stride) {
    const x = view.getFloat64(p, true);
    const y = view.getFloat64(p + 8, true);
    nonFinite += x - x + (y - y) + (stride === 24 ? view.getFloat64(p + 16, true) * 0 : 0); // NaN unless every number is finite
    if (x !== x0 || y !== y0) distinct = true;
  }
  return distinct && nonFinite === 0 ? end : -1;
}

/** `count` polygons from `at` (each with its own WKB header when `headed`): valid for certain? */
function polygons(bytes: Uint8Array, at: number, count: number, stride: number, headed: boolean): boolean {
  let rings = 0;
  let points = 0;
  for (let poly = 0; poly < count; poly++) {
    if (headed) {
      if (at + 5 > bytes.length || bytes[at] !== 1 || u32(bytes, at + 1) % ISO_Z !== 3) return false;
      at += 5;
    }
    if (at + 4 > bytes.length) return false;
    const n = u32(bytes, at);
    at += 4;
    if (n === 0) return false;
    for (let r = 0; r < n; r++) {
      if (at + 4 > bytes.length) return false;
      const m = u32(bytes, at);
      at += 4;
      if (m < 4 || at + m * stride > bytes.length) return false;
      if (rings >= ringStart.length) growRings(2 * rings);
      if (2 * (points + m) > xy.length) growPoints(2 * (points + m));
      ringStart[rings] = points;
      ringPoints[rings] = m;
      ringPolygon[rings] = r === 0 ? poly : -1 - poly;
      if (stride === 16) {
        // XY: the ring's bytes copied as they are into the aligned scratch (no DataView read per number)
        if (Buffer.isBuffer(bytes)) bytes.copy(xyBytes, 16 * points, at, at + 16 * m);
        else xyBytes.set(bytes.subarray(at, at + 16 * m), 16 * points);
        at += 16 * m;
      } else {
        const view = dataView(bytes);
        let z = 0;
        for (let i = 0; i < m; i++, at += stride) {
          xy[2 * (points + i)] = view.getFloat64(at, true);
          xy[2 * (points + i) + 1] = view.getFloat64(at + 8, true);
          z += view.getFloat64(at + 16, true) * 0; // NaN for a z that is NaN or infinite
        }
        if (z !== 0) return false;
      }
      // GEOS refuses a coordinate that is NaN or infinite: x − x is 0 only for a finite x
      let nonFinite = 0;
      for (let i = 2 * points; i < 2 * (points + m); i++) nonFinite += xy[i]! - xy[i]!;
      if (nonFinite !== 0) return false;
      // a point repeated in a row (the closing one included) is left to GEOS
      for (let i = points + 1; i < points + m; i++) if (xy[2 * i] === xy[2 * i - 2] && xy[2 * i + 1] === xy[2 * i - 1]) return false;
      // closed, bit for bit (PostGIS compares the bytes: 0 and -0 differ)
      if (!Object.is(xy[2 * points], xy[2 * (points + m - 1)]) || !Object.is(xy[2 * points + 1], xy[2 * (points + m - 1) + 1])) return false;
      points += m;
      rings++;
    }
  }
  // most shapes are one ring, or a few rings apart from each other: each ring proved simple on its
  // own (star-shaped), then the segments of each two rings near the other's box compared
  if (starShaped(rings)) {
    if (rings === 1) return true;
    const apart = ringsApart(rings, points - rings);
    if (apart !== undefined) return apart && nesting(rings);
  }
  return noCrossings(rings) && nesting(rings);
}

/**
 * Whether every ring winds once around its vertices' mean strictly in one direction: each edge
 * seen from that point turns the same way (orientation certain), and the edges cross a ray from
 * it once. Such a ring is simple (star-shaped around that point): its edges meet only where
 * neighbours share a vertex. Also keeps each ring's box.
 */
function starShaped(rings: number): boolean {
  let simple = true;
  for (let r = 0; r < rings; r++) {
    const first = ringStart[r]!;
    const last = first + ringPoints[r]! - 1;
    let sx = 0;
    let sy = 0;
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -Infinity;
    let y1 = -Infinity;
    for (let i = first; i < last; i++) {
      const x = xy[2 * i]!;
      const y = xy[2 * i + 1]!;
      sx += x;
      sy += y;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    boxes[4 * r] = x0;
    boxes[4 * r + 1] = y0;
    boxes[4 * r + 2] = x1;
    boxes[4 * r + 3] = y1;
    if (!simple) continue;
    const cx = sx / (last - first);
    const cy = sy / (last - first);
    // each edge's orientation seen from (cx, cy), written out here: doubles passed to a function
    // V8 does not inline are boxed, an allocation per vertex
    const P = xy;
    let turn = 0;
    let crossings = 0;
    for (let i = first; i < last; i++) {
      const ax = P[2 * i]! - cx;
      const ay = P[2 * i + 1]! - cy;
      const bx = P[2 * i + 2]! - cx;
      const by = P[2 * i + 3]! - cy;
      const left = ax * by;
      const right = ay * bx;
      const det = left - right;
      const bound = ERROR_BOUND * (Math.abs(left) + Math.abs(right));
      const o = det > bound ? 1 : -det > bound ? -1 : 0;
      if (o === 0 || (turn !== 0 && o !== turn)) {
        simple = false;
        break;
      }
      turn = o;
      // half-open in y, in the ring's direction of turning: each passage across the ray counted once
      if (turn > 0 ? ay < 0 && 0 <= by : by < 0 && 0 <= ay) crossings++;
    }
    if (crossings !== 1) simple = false;
  }
  return simple;
}

/** Whether the boxes of rings r and o overlap (or touch). */
function boxesMeet(r: number, o: number): boolean {
  return boxes[4 * r]! <= boxes[4 * o + 2]! && boxes[4 * o]! <= boxes[4 * r + 2]! && boxes[4 * r + 1]! <= boxes[4 * o + 3]! && boxes[4 * o + 1]! <= boxes[4 * r + 3]!;
}

/** Of the pairs of segments compared between two rings, beyond this many the sweep is cheaper. */
const MOST_PAIRS = 4096;

/**
 * With every ring simple on its own: whether no segment of one ring meets a segment of another.
 * Only the segments of each ring that reach into the other's box can; each such pair is compared.
 * `undefined` when there are too many pairs (the sweep is left to decide).
 */
function ringsApart(rings: number, segments: number): boolean | undefined {
  if (segments > segPoint.length) growSegments(2 * segments);
  const near = segPoint;
  const nearOther = order;
  for (let r = 0; r < rings; r++) {
    for (let o = r + 1; o < rings; o++) {
      if (!boxesMeet(r, o)) continue;
      const a = segmentsNear(r, o, near);
      if (a === 0) continue;
      const b = segmentsNear(o, r, nearOther);
      if (b === 0) continue;
      if (a * b > MOST_PAIRS) return undefined;
      for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) if (!apart(near[i]!, nearOther[j]!)) return false;
    }
  }
  return true;
}

/** Into `out`, the first points of ring r's segments whose box meets ring o's box; returns how many. */
function segmentsNear(r: number, o: number, out: Int32Array): number {
  const x0 = boxes[4 * o]!;
  const y0 = boxes[4 * o + 1]!;
  const x1 = boxes[4 * o + 2]!;
  const y1 = boxes[4 * o + 3]!;
  const P = xy;
  const first = ringStart[r]!;
  const last = first + ringPoints[r]! - 1;
  let n = 0;
  for (let p = first; p < last; p++) {
    const ax = P[2 * p]!;
    const ay = P[2 * p + 1]!;
    const bx = P[2 * p + 2]!;
    const by = P[2 * p + 3]!;
    if ((ax < x0 && bx < x0) || (ax > x1 && bx > x1) || (ay < y0 && by < y0) || (ay > y1 && by > y1)) continue;
    out[n++] = p;
  }
  return n;
}

/** Every two segments of these rings are apart, but a ring's neighbouring segments, which share only their vertex. */
function noCrossings(rings: number): boolean {
  let segments = 0;
  for (let r = 0; r < rings; r++) segments += ringPoints[r]! - 1;
  if (segments > segPoint.length) growSegments(2 * segments);
  // the module's arrays as constants here: the loops below read them millions of times
  const P = xy;
  const point = segPoint;
  const ringOf = segRing;
  const sorted = order;
  const lowX = minXs;
  const highX = maxXs;
  let s = 0;
  for (let r = 0; r < rings; r++) {
    const first = ringStart[r]!;
    const last = first + ringPoints[r]! - 1;
    for (let p = first; p < last; p++, s++) {
      point[s] = p;
      ringOf[s] = r;
      sorted[s] = s;
      const x1 = P[2 * p]!;
      const x2 = P[2 * (p + 1)]!;
      lowX[s] = x1 < x2 ? x1 : x2;
      highX[s] = x1 < x2 ? x2 : x1;
    }
  }
  sortByMinX(segments);
  // sweep along x: a segment meets only those starting before it ends (points passed by index:
  // doubles passed to a function V8 does not inline are boxed, an allocation each)
  for (let i = 0; i < segments; i++) {
    const a = sorted[i]!;
    const pa = point[a]!;
    const ay1 = P[2 * pa + 1]!;
    const ay2 = P[2 * (pa + 1) + 1]!;
    const maxX = highX[a]!;
    const minY = ay1 < ay2 ? ay1 : ay2;
    const maxY = ay1 < ay2 ? ay2 : ay1;
    for (let j = i + 1; j < segments; j++) {
      const b = sorted[j]!;
      if (lowX[b]! > maxX) break;
      const pb = point[b]!;
      const by1 = P[2 * pb + 1]!;
      const by2 = P[2 * (pb + 1) + 1]!;
      if ((by1 < minY && by2 < minY) || (by1 > maxY && by2 > maxY)) continue;
      if (ringOf[a] === ringOf[b]) {
        const r = ringOf[a]!;
        const first = ringStart[r]!;
        const lastSeg = first + ringPoints[r]! - 2;
        // neighbours: b follows a, a follows b, or the ring's last and first segments (sharing the closing point)
        const shared = pb === pa + 1 || (pa === lastSeg && pb === first) ? pb : pa === pb + 1 || (pb === lastSeg && pa === first) ? pa : -1;
        if (shared >= 0) {
          // the three points of the two neighbours: the shared vertex between the others, which must not be collinear with it
          if (orientation(shared === first ? lastSeg : shared - 1, shared, shared + 1) === 0) return false;
          continue;
        }
      }
      if (!apart(pa, pb)) return false;
    }
  }
  return true;
}

/** Whether segments `a → a + 1` and `b → b + 1` (point indices) certainly do not meet: the other's two ends strictly on one side of either's line. */
function apart(a: number, b: number): boolean {
  const o1 = orientation(a, a + 1, b);
  if (o1 !== 0 && o1 === orientation(a, a + 1, b + 1)) return true;
  const o3 = orientation(b, b + 1, a);
  return o3 !== 0 && o3 === orientation(b, b + 1, a + 1);
}

/** Of points a, b, c (indices): 1 counter-clockwise, -1 clockwise, 0 collinear or too close to tell in floating point. */
function orientation(a: number, b: number, c: number): number {
  const cx = xy[2 * c]!;
  const cy = xy[2 * c + 1]!;
  const left = (xy[2 * a]! - cx) * (xy[2 * b + 1]! - cy);
  const right = (xy[2 * a + 1]! - cy) * (xy[2 * b]! - cx);
  const det = left - right;
  const bound = ERROR_BOUND * (Math.abs(left) + Math.abs(right));
  if (det > bound) return 1;
  if (-det > bound) return -1;
  return 0;
}

/**
 * With no two rings meeting, one vertex tells where a whole ring lies: every hole inside its
 * shell and outside its polygon's other holes, every shell outside the other shells (a polygon
 * inside another's hole is left to GEOS).
 */
function nesting(rings: number): boolean {
  for (let r = 0; r < rings; r++) {
    const polygon = ringPolygon[r]!;
    const hole = polygon < 0;
    const owner = hole ? -1 - polygon : polygon;
    const p = ringStart[r]!;
    for (let other = 0; other < rings; other++) {
      if (other === r) continue;
      const o = ringPolygon[other]!;
      const otherHole = o < 0;
      const otherOwner = otherHole ? -1 - o : o;
      let want: number;
      if (hole && !otherHole && otherOwner === owner)
        want = 1; // inside its shell
      else if (hole && otherHole && otherOwner === owner)
        want = -1; // outside its siblings
      else if (!hole && !otherHole)
        want = -1; // shells outside each other
      else continue;
      // a ring outside the other's box is outside it
      const where = boxesMeet(r, other) ? inRing(p, other) : -1;
      if (where !== want) return false;
    }
  }
  return true;
}

/** Point `p` (an index): 1 inside the ring, -1 outside, 0 when a crossing is too close to tell (crossing number along +x, half-open in y). */
function inRing(p: number, ring: number): number {
  const x = xy[2 * p]!;
  const y = xy[2 * p + 1]!;
  const first = ringStart[ring]!;
  const last = first + ringPoints[ring]! - 1;
  let inside = false;
  for (let i = first; i < last; i++) {
    const y1 = xy[2 * i + 1]!;
    const y2 = xy[2 * (i + 1) + 1]!;
    if (y1 > y === y2 > y) continue;
    if (xy[2 * i]! < x && xy[2 * (i + 1)]! < x) continue; // wholly on the left: no crossing to the right
    const o = orientation(i, i + 1, p);
    if (o === 0) return 0;
    // the point is left of an upward edge (or right of a downward one): the edge crosses the ray to its right
    if (y2 > y1 ? o > 0 : o < 0) inside = !inside;
  }
  return inside ? 1 : -1;
}

/** `order[0, n)` sorted by minXs: insertion sort for a small shape, the built-in sort for a large one. */
function sortByMinX(n: number): void {
  if (n > 64) {
    const sorted = Array.from(order.subarray(0, n)).sort((a, b) => minXs[a]! - minXs[b]!);
    order.set(sorted);
    return;
  }
  for (let i = 1; i < n; i++) {
    const s = order[i]!;
    const key = minXs[s]!;
    let j = i - 1;
    while (j >= 0 && minXs[order[j]!]! > key) {
      order[j + 1] = order[j]!;
      j--;
    }
    order[j + 1] = s;
  }
}

function growRings(n: number): void {
  const start = new Int32Array(n);
  const points = new Int32Array(n);
  const polygon = new Int32Array(n);
  start.set(ringStart);
  points.set(ringPoints);
  polygon.set(ringPolygon);
  ringStart = start;
  ringPoints = points;
  ringPolygon = polygon;
  boxes = new Float64Array(4 * n);
}

function growPoints(n: number): void {
  const next = new Float64Array(2 * n);
  next.set(xy);
  xy = next;
  xyBytes = new Uint8Array(xy.buffer);
}

function growSegments(n: number): void {
  segPoint = new Int32Array(n);
  segRing = new Int32Array(n);
  order = new Int32Array(n);
  minXs = new Float64Array(n);
  maxXs = new Float64Array(n);
}
