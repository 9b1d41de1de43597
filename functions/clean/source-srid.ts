/**
 * The SRID of a file's coordinates when the file names its coordinate system in words only — a
 * `.prj` as ESRI writes it (`PROJCS["NAD_1983_StatePlane_Massachusetts_Mainland_FIPS_2001", …]`,
 * no authority code), a GeoPackage system of another organisation — and the checks that keep
 * coordinates of unknown or wrong system out of a column labelled EPSG:4326.
 *
 * The WKT's projection parameters (method, parallels, meridian, false easting/northing in metres,
 * scale, ellipsoid, prime meridian, unit) are compared with those of every system PostGIS knows
 * (spatial_ref_sys.proj4text, thousands of EPSG and ESRI systems): the systems that place every
 * coordinate where the WKT does. Among several (NAD83 and its later realisations share every
 * parameter) the one whose datum name shares most words with the WKT's (ESRI abbreviations
 * spelled out) is chosen, then EPSG before ESRI, then the closest CRS name, then the lowest code.
 * The other matches are named in the warning. A hand list of names (prj.ts) is kept for
 * speed and for readers without a database; this covers the rest.
 */
import { ident, type Queryable } from '../common/db.ts';
import { PermanentError } from '../common/errors.ts';
import { describePrj, nameWords, sameShape, shapeFromProj4, shapeFromWkt } from '../read/prj.ts';
import type { SourceGeometry } from '../read/types.ts';

/** A pool or a client: all this module does is query. */

export interface IdentifiedSrid {
  srid: number;
  /** The system's own name in spatial_ref_sys (`NAD83 / Massachusetts Mainland`). */
  name: string;
  /** Other systems with the same parameters (other datum realisations), best first. */
  alternatives: number[];
}

/**
 * The EPSG (or ESRI) code of the system a WKT text describes, by its parameters, or `undefined`
 * when PostGIS knows none with the same ones (or the text uses a projection method prj.ts does not map).
 */
export async function identifySrid(client: Queryable, wkt: string): Promise<IdentifiedSrid | undefined> {
  const shape = shapeFromWkt(wkt);
  if (!shape) return undefined;
  const pattern = shape.proj === 'tmerc' ? '\\+proj=(tmerc|utm) ' : shape.proj === 'longlat' ? '\\+proj=(longlat|latlong) ' : `\\+proj=${shape.proj} `;
  const { rows } = await client.query<{ srid: number; auth_name: string; srtext: string; proj4text: string }>(
    `SELECT srid, auth_name, srtext, proj4text FROM spatial_ref_sys WHERE auth_name IN ('EPSG', 'ESRI') AND proj4text ~ $1`,
    [pattern],
  );
  const info = describePrj(wkt);
  const datumWords = nameWords(shape.datum ?? '');
  const crsWords = nameWords(info.name ?? '');
  const ranked: { srid: number; name: string; score: number[] }[] = [];
  for (const row of rows) {
    const candidate = shapeFromProj4(row.proj4text);
    if (!candidate || !sameShape(shape, candidate)) continue;
    // a compound (horizontal + vertical) system is not what a 2D .prj names
    if (/^\s*COMPD_CS/i.test(row.srtext)) continue;
    const theirs = describeSrtext(row.srtext);
    ranked.push({
      srid: row.srid,
      name: theirs.name ?? `EPSG:${row.srid}`,
      score: [
        overlap(datumWords, nameWords(theirs.datum ?? '')),
        row.auth_name === 'EPSG' ? 1 : 0,
        overlap(crsWords, nameWords(theirs.name ?? '')),
        /deprecated/i.test(theirs.name ?? '') ? 0 : 1,
        -row.srid,
      ],
    });
  }
  if (ranked.length === 0) return undefined;
  ranked.sort((x, y) => compareScores(y.score, x.score));
  const best = ranked[0]!;
  // a geographic system recognised by its ellipsoid alone could be any datum on it: its datum's name must agree
  if (shape.proj === 'longlat' && best.score[0]! < 0.5) return undefined;
  return { srid: best.srid, name: best.name, alternatives: ranked.slice(1, 6).map((r) => r.srid) };
}

function describeSrtext(srtext: string): { name?: string; datum?: string } {
  const name = /^\s*\w+\["([^"]*)"/.exec(srtext)?.[1];
  const datum = /DATUM\["([^"]*)"/i.exec(srtext)?.[1];
  return { ...(name !== undefined ? { name } : {}), ...(datum !== undefined ? { datum } : {}) };
}

/** Share of words in common (Jaccard), 0 when either is empty. */
function overlap(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 || b.size === 0) return 0;
  let common = 0;
  for (const w of a) if (b.has(w)) common++;
  return common / (a.size + b.size - common);
}

function compareScores(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (Math.abs(d) > 1e-12) return d;
  }
  return 0;
}

/** The extent of a set of geometries, or `undefined` when there are none. */
export interface Extent {
  xmin: number;
  ymin: number;
  xmax: number;
  ymax: number;
}

/** Within ±180/±90, give or take a micro-degree (world layers reach 180.00000000000006). */
export const withinLonLat = (e: Extent) => e.xmin >= -180 - 1e-6 && e.xmax <= 180 + 1e-6 && e.ymin >= -90 - 1e-6 && e.ymax <= 90 + 1e-6;
export const showExtent = (e: Extent) => `x from ${round(e.xmin)} to ${round(e.xmax)}, y from ${round(e.ymin)} to ${round(e.ymax)}`;
const round = (v: number) => String(Math.abs(v) >= 1000 ? Math.round(v) : Number(v.toPrecision(8)));

/** The extent of the staged geometries of `column` (hex WKB, GeoJSON or WKT text); unreadable values are passed over. */
export async function stagedExtent(client: Queryable, staging: string, column: string, encoding: string): Promise<Extent | undefined> {
  const { rows } = await client.query<{ xmin: number | null; ymin: number; xmax: number; ymax: number }>(
    `SELECT ST_XMin(e) AS xmin, ST_YMin(e) AS ymin, ST_XMax(e) AS xmax, ST_YMax(e) AS ymax
       FROM (SELECT ST_Extent(etl.try_geometry(${ident(column)}, $1)) AS e FROM ${staging}) s`,
    [encoding === 'geojson' ? 'geojson' : 'wkb'],
  );
  const r = rows[0];
  return r && r.xmin !== null ? { xmin: Number(r.xmin), ymin: Number(r.ymin), xmax: Number(r.xmax), ymax: Number(r.ymax) } : undefined;
}

/**
 * Settles `geometry.srid` before the geometry is planned, when the file named its coordinate
 * system in words this reader did not know (`geometry.crs`) and no SRID was given: identified by
 * its parameters (a warning says as what), else — coordinates that are all longitudes and
 * latitudes are read as EPSG:4326, with a warning; any others fail the load, naming the file and
 * the system, and saying how to give the SRID. Never a projected system's metres labelled 4326.
 */
export async function settleSourceSrid(
  client: Queryable,
  opts: { geometry: SourceGeometry | undefined; file: string; given: number | undefined; staging: string; warnings: string[]; option: string },
): Promise<void> {
  const g = opts.geometry;
  if (!g || g.srid !== undefined || opts.given !== undefined || !g.crs) return;
  const what = g.crs.name !== undefined ? `"${g.crs.name}"` : JSON.stringify(g.crs.wkt.slice(0, 80));
  const found = await identifySrid(client, g.crs.wkt);
  if (found) {
    g.srid = found.srid;
    const others = found.alternatives.length
      ? `; the same parameters are also ${found.alternatives.map((s) => `EPSG:${s}`).join(', ')}, which differ by datum realisation only: set ${opts.option} to choose one`
      : '';
    opts.warnings.push(`${opts.file}: its coordinate system ${what} is recognised by its parameters as EPSG:${found.srid} (${found.name})${others}`);
    return;
  }
  const extent = await stagedExtent(client, opts.staging, g.column, g.encoding);
  if (extent && withinLonLat(extent)) {
    // a system that is not longitude/latitude on the Earth (a projection, another planet's datum) is never guessed as 4326
    const shape = shapeFromWkt(g.crs.wkt);
    const earthLonLat = shape?.proj === 'longlat' && shape.pm === 0 && shape.a !== undefined && shape.a > 6_350_000 && shape.a < 6_400_000;
    if (!earthLonLat) {
      throw new PermanentError(
        `${opts.file}: ${g.crs.from ? `${g.crs.from} names` : 'its'} coordinate system ${what}, which is not one PostGIS knows by its parameters, nor longitude/latitude on the Earth, so its coordinates (${showExtent(extent)}) are not taken as EPSG:4326: give the source's EPSG code with ${opts.option}`,
        { file: opts.file },
      );
    }
    g.srid = 4326;
    opts.warnings.push(
      `${opts.file}: its coordinate system ${what} is not one PostGIS knows by its parameters; its coordinates (${showExtent(extent)}) are all longitudes and latitudes, so they are read as EPSG:4326 — set ${opts.option} if they are not`,
    );
    return;
  }
  throw new PermanentError(
    `${opts.file}: its coordinate system ${what} is not one PostGIS knows by its parameters, and its coordinates (${extent ? showExtent(extent) : 'none readable'}) are not longitudes and latitudes: give the source's EPSG code with ${opts.option}`,
    { file: opts.file },
  );
}

/**
 * Coordinates stored as EPSG:4326 must be longitudes and latitudes: the extent of `column` in
 * `table` (restricted by `where`) beyond ±180/±90 is an error naming the file, the extent and how
 * the SRID came to be 4326. With `staged`, the extent is that of the staged text (hex WKB, WKT
 * or GeoJSON, values whose EWKT names another SRID left out), read before the cast: coordinates
 * labelled 4326 and transformed to another SRID must be checked before `ST_Transform`, which
 * otherwise fails on metres with PostGIS's bare `transform: Invalid coordinate`.
 */
export async function checkLonLat(
  client: Queryable,
  opts: {
    table: string;
    column: string;
    file: string;
    how: string;
    option: string;
    where?: string;
    staged?: { encoding: string };
    /** What `_source_line` counts in this file (a reader's unit: `feature`, `row`…; default `line`). */
    unit?: string;
  },
): Promise<void> {
  const g = opts.staged ? `etl.try_geometry(${ident(opts.column)}, $1)` : ident(opts.column);
  const where = opts.staged ? `ST_SRID(${g}) IN (0, 4326)` : (opts.where ?? 'true');
  const { rows } = await client.query<{ xmin: number | null; ymin: number; xmax: number; ymax: number }>(
    `SELECT ST_XMin(e) AS xmin, ST_YMin(e) AS ymin, ST_XMax(e) AS xmax, ST_YMax(e) AS ymax
       FROM (SELECT ST_Extent(${g}) AS e FROM ${opts.table} WHERE ${where}) s`,
    opts.staged ? [opts.staged.encoding === 'geojson' ? 'geojson' : 'wkb'] : [],
  );
  const r = rows[0];
  if (!r || r.xmin === null) return;
  const e = { xmin: Number(r.xmin), ymin: Number(r.ymin), xmax: Number(r.xmax), ymax: Number(r.ymax) };
  if (withinLonLat(e)) return;
  // the first record beyond them, as the extent judged it (same bounds), for the message and the ledger's line
  const lines = await client.query(`SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = '_source_line' AND NOT attisdropped`, [opts.table]);
  const first =
    lines.rows.length === 0
      ? { rows: [] }
      : await client.query<{ at: string }>(
          `SELECT _source_line AS at FROM ${opts.table}
      WHERE ${where} AND ${g} IS NOT NULL
        AND NOT (ST_XMin(${g}) >= -180 - 1e-6 AND ST_XMax(${g}) <= 180 + 1e-6 AND ST_YMin(${g}) >= -90 - 1e-6 AND ST_YMax(${g}) <= 90 + 1e-6)
      ORDER BY _source_line LIMIT 1`,
          opts.staged ? [opts.staged.encoding === 'geojson' ? 'geojson' : 'wkb'] : [],
        );
  const at = first.rows[0] ? Number(first.rows[0].at) : undefined;
  throw new PermanentError(
    `${opts.file}: coordinates ${showExtent(e)} are not longitudes and latitudes, yet ${opts.how} EPSG:4326: give the source's EPSG code with ${opts.option}${at !== undefined ? ` (the first beyond them: ${opts.unit ?? 'line'} ${at})` : ''}`,
    { file: opts.file, ...(at !== undefined ? { line: at } : {}) },
  );
}

/**
 * SRIDs given by an option (`--srid`, `read.srid`…) must be systems PostGIS knows: one missing
 * from spatial_ref_sys is an error naming the file and the option, before anything is read,
 * instead of PostGIS's `Cannot find SRID (99999) in spatial_ref_sys` halfway through the cast.
 */
export async function checkSridsKnown(
  client: Queryable,
  file: string,
  given: ReadonlyArray<readonly [number | undefined, string]>,
  /** What to do instead, when not "give an EPSG code" in the same option (a file's `crs`: set read.srid). */
  fix?: string,
): Promise<void> {
  const wanted = given.filter((g): g is readonly [number, string] => g[0] !== undefined);
  if (wanted.length === 0) return;
  const { rows } = await client.query<{ srid: number }>('SELECT srid FROM spatial_ref_sys WHERE srid = ANY($1::int[])', [wanted.map(([srid]) => srid)]);
  const known = new Set(rows.map((r) => Number(r.srid)));
  const unknown = wanted.filter(([srid]) => !known.has(srid));
  if (unknown.length === 0) return;
  throw new PermanentError(
    `${file}: ${unknown.map(([srid, option]) => `${option} ${srid}`).join(' and ')}: no such SRID in PostGIS's spatial_ref_sys; ${fix ?? 'give'} an EPSG code PostGIS knows (4326 for longitude/latitude, 2154 for Lambert-93, 28992 for RD New…)`,
    { file },
  );
}
