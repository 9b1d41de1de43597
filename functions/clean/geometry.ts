/**
 * Geometry, from whatever the file carries to a PostGIS column in the dataset's SRID: the file's
 * own geometry (GeoJSON, shapefile, GeoPackage — staged as GeoJSON text or hex WKB), WKT/EWKT or
 * GeoJSON text columns, or latitude/longitude columns. All of it runs set-based in PostgreSQL:
 * parse, set the source SRID, repair (ST_MakeValid) or quarantine invalid shapes, promote single
 * parts to multi where a layer mixes them, ST_Transform to the target SRID.
 */
import type { GeometryDefinition } from '../../contract/definition.ts';
import { ident } from '../common/db.ts';
import { PermanentError } from '../common/errors.ts';
import type { SourceGeometry } from '../read/types.ts';
import { normaliseHeader } from './columns.ts';

export interface GeometryPlan {
  /** Column in the clean table. */
  column: string;
  /** SRID of the clean column. */
  srid: number;
  source:
    | { kind: 'text'; from: string; encoding: 'geojson' | 'wkb' | 'wkt'; srid: number }
    | { kind: 'latlon'; lat: string; lon: string; srid: number; decimalComma?: boolean };
  invalid: 'repair' | 'quarantine';
  /** Promote Polygon/LineString to Multi* (the layer mixes single and multi parts, or may). */
  promote: boolean;
  /** Staging columns that hold the geometry and are therefore not attribute columns. */
  consumed: string[];
  /** How the plan was arrived at, for the ledger and messages. */
  note: string;
}

const LAT = new Set(['lat', 'latitude', 'latitud', 'breedtegraad', 'ylat']);
const LON = new Set(['lon', 'lng', 'long', 'longitude', 'longitud', 'lengtegraad', 'xlon']);

/**
 * The geometry of a load: from the dataset's `geometry` definition and what staging detected.
 * `undefined` when there is none (a plain table). A declared source column that the file lacks
 * is a permanent error naming the file and the column.
 */
export function planGeometry(
  def: GeometryDefinition,
  detected: { geometry?: SourceGeometry } | null | undefined,
  header: readonly string[],
  staging: readonly string[],
  file: string,
  defaultSourceSrid?: number,
): GeometryPlan | undefined {
  if (!def.enabled) return undefined;
  const find = (wanted: string) => {
    const i = header.findIndex((h) => normaliseHeader(h) === normaliseHeader(wanted));
    if (i < 0) {
      throw new PermanentError(`${file}: geometry column "${wanted}" is not in the file's header (${header.map((h) => JSON.stringify(h)).join(', ')})`, {
        file,
        line: 1,
        column: wanted,
      });
    }
    return staging[i]!;
  };
  const base = { column: def.column, srid: def.srid, invalid: def.invalid };
  if (def.from && 'lat' in def.from) {
    const lat = find(def.from.lat);
    const lon = find(def.from.lon);
    return { ...base, source: { kind: 'latlon', lat, lon, srid: defaultSourceSrid ?? 4326 }, promote: false, consumed: [], note: `points from ${def.from.lat}/${def.from.lon}` };
  }
  if (def.from && 'x' in def.from) {
    if (defaultSourceSrid === undefined) {
      throw new PermanentError(`${file}: geometry from x/y needs the coordinates' SRID in read.srid (e.g. 28992 for RD New)`, { file });
    }
    // the same points as lat/lon, northing for latitude; no degree range to check in a projection
    const y = find(def.from.y);
    const x = find(def.from.x);
    return { ...base, source: { kind: 'latlon', lat: y, lon: x, srid: defaultSourceSrid }, promote: false, consumed: [], note: `points from ${def.from.x}/${def.from.y} (EPSG:${defaultSourceSrid})` };
  }
  if (def.from) {
    const encoding = 'wkt' in def.from ? 'wkt' : 'geojson';
    const name = 'wkt' in def.from ? def.from.wkt : def.from.geojson;
    const from = find(name);
    return { ...base, source: { kind: 'text', from, encoding, srid: defaultSourceSrid ?? 4326 }, promote: true, consumed: [from], note: `${encoding} in ${name}` };
  }
  const native = detected?.geometry;
  if (native) {
    const srid = native.srid ?? defaultSourceSrid ?? 4326;
    const single = native.type !== undefined && !/^(multi|geometry)/i.test(native.type);
    return {
      ...base,
      source: { kind: 'text', from: native.column, encoding: native.encoding, srid },
      promote: !single,
      consumed: [native.column],
      note: `the file's geometry (${native.type ?? 'any type'}, EPSG:${srid}${native.srid === undefined ? ', assumed' : ''})`,
    };
  }
  const norm = header.map((h) => normaliseHeader(h));
  const lat = norm.findIndex((h) => LAT.has(h));
  const lon = norm.findIndex((h) => LON.has(h));
  if (lat >= 0 && lon >= 0) {
    return {
      ...base,
      source: { kind: 'latlon', lat: staging[lat]!, lon: staging[lon]!, srid: defaultSourceSrid ?? 4326 },
      promote: false,
      consumed: [],
      note: `points from ${header[lat]}/${header[lon]}`,
    };
  }
  return undefined;
}

/**
 * The SQL expression that turns a staging row (alias `s`) into the clean geometry. `strict`: a
 * latitude/longitude out of range raises a data exception (so that an optimistic insert fails and
 * the rows are then checked one by one) instead of relying on an earlier quarantine check.
 */
export function geometryExpr(plan: GeometryPlan, alias = 's', strict = false): string {
  const src = plan.source;
  let g: string;
  if (src.kind === 'latlon') {
    const num = (c: string) => `${coordinate(alias, c, src.decimalComma)}::double precision`;
    g = `ST_SetSRID(ST_MakePoint(${num(src.lon)}, ${num(src.lat)}), ${src.srid})`;
    if (strict && src.srid === 4326) {
      g = `CASE WHEN abs(${num(src.lat)}) <= 90 AND abs(${num(src.lon)}) <= 180 THEN ${g}
                WHEN ${num(src.lat)} IS NOT NULL AND ${num(src.lon)} IS NOT NULL THEN etl.fail_geometry('coordinates out of range') END`;
    }
  } else {
    const raw = `NULLIF(btrim(${alias}.${ident(src.from)}), '')`;
    const parsed = src.encoding === 'geojson' ? `ST_GeomFromGeoJSON(${raw})` : `(${raw})::geometry`;
    // EWKT may name its SRID; everything else takes the file's (or the assumed) one
    g = src.encoding === 'wkt' ? `etl.with_srid(${parsed}, ${src.srid})` : `ST_SetSRID(${parsed}, ${src.srid})`;
    if (plan.invalid === 'repair') g = `etl.repaired(${g})`;
    if (plan.promote) g = `etl.promoted(${g})`;
  }
  if (src.srid !== plan.srid) g = `ST_Transform(${g}, ${plan.srid})`;
  return g;
}

/**
 * Quarantine checks, in the form castInto takes them: `(column, raw value, CASE … END, type)`.
 * `parse` adds the (slower) check that each geometry can be read at all: it runs only after a
 * set-based cast has failed, to find the rows that made it fail.
 */
export function geometryChecks(plan: GeometryPlan, parse: boolean, alias = 's'): string[] {
  const src = plan.source;
  if (src.kind === 'latlon') {
    const v = (c: string) => coordinate(alias, c, src.decimalComma);
    const range = (c: string, limit: number) =>
      src.srid === 4326 ? `WHEN abs(${v(c)}::double precision) > ${limit} THEN 'range' ` : '';
    const check = (c: string, what: string, limit: number) =>
      `('${plan.column}', ${alias}.${ident(c)}, CASE WHEN ${v(c)} IS NULL THEN NULL WHEN NOT etl.is_valid_as(${v(c)}, 'double precision') THEN 'type' ${range(c, limit)}END, '${what}')`;
    return [check(src.lat, 'latitude', 90), check(src.lon, 'longitude', 180)];
  }
  const raw = `${alias}.${ident(src.from)}`;
  const parsed = `etl.try_geometry(${raw}, '${src.encoding}')`;
  const out: string[] = [];
  if (parse) out.push(`('${plan.column}', ${raw}, CASE WHEN NULLIF(btrim(${raw}), '') IS NOT NULL AND ${parsed} IS NULL THEN 'type' END, 'geometry')`);
  if (plan.invalid === 'quarantine') {
    out.push(`('${plan.column}', ${raw}, CASE WHEN NOT ST_IsValid(${parsed}) THEN 'valid' END, 'geometry')`);
  }
  return out;
}

/** SQL: a coordinate as text PostgreSQL reads as a number (NULL when empty); a decimal comma becomes a point. */
function coordinate(alias: string, column: string, decimalComma = false): string {
  const v = `NULLIF(btrim(${alias}.${ident(column)}), '')`;
  return decimalComma ? `replace(${v}, ',', '.')` : v;
}

/**
 * Coordinates written with a decimal comma (`50,84`), as the type inference found them in the
 * latitude and longitude columns (`decisions` by staging column): the plan reads them so.
 */
export function withCoordinateFormat(plan: GeometryPlan | undefined, decimalOf: (column: string) => string | undefined): GeometryPlan | undefined {
  if (plan?.source.kind !== 'latlon') return plan;
  const comma = decimalOf(plan.source.lat) === ',' || decimalOf(plan.source.lon) === ',';
  return comma ? { ...plan, source: { ...plan.source, decimalComma: true }, note: `${plan.note} (decimal comma)` } : plan;
}

/** The clean column's type. */
export function geometryType(plan: GeometryPlan): string {
  return `geometry(Geometry,${plan.srid})`;
}
