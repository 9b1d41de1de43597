/**
 * Geometry, from whatever the file carries to a PostGIS column in the dataset's SRID: the file's
 * own geometry (GeoJSON, shapefile, GeoPackage — staged as GeoJSON text or hex WKB), WKT/EWKT or
 * GeoJSON text columns, or latitude/longitude columns. All of it runs set-based in PostgreSQL:
 * parse, set the source SRID, repair (ST_MakeValid) or quarantine invalid shapes, promote single
 * parts to multi where a layer mixes them, ST_Transform to the target SRID.
 */
import type pg from 'pg';
import type { GeometryDefinition } from '../../contract/definition.ts';
import { ident, type Queryable } from '../common/db.ts';
import { PermanentError } from '../common/errors.ts';
import type { SourceGeometry } from '../read/types.ts';
import { normaliseHeader } from './columns.ts';

export interface GeometryPlan {
  /** Column in the clean table. */
  column: string;
  /** SRID of the clean column. */
  srid: number;
  source: { kind: 'text'; from: string; encoding: 'geojson' | 'wkb' | 'wkt'; srid: number } | { kind: 'latlon'; lat: string; lon: string; srid: number; decimalComma?: boolean };
  invalid: 'repair' | 'quarantine';
  /**
   * With `invalid: 'repair'`: the source lines of the only shapes that need it, found before the
   * cast by withInvalidLines (the others are valid: etl.repaired would return them as they are,
   * after an ST_IsValid each). Unset: every shape is checked as it is cast.
   */
  repairOnly?: readonly number[];
  /** Promote Polygon/LineString to Multi* (the layer mixes single and multi parts, or may). */
  promote: boolean;
  /** Staging columns that hold the geometry and are therefore not attribute columns. */
  consumed: string[];
  /** How the plan was arrived at, for the ledger and messages. */
  note: string;
}

/**
 * Column names taken for latitude and longitude (normalised: accents, case and separators
 * dropped), in the languages of the portals we read. Words that also mean something else are
 * left out: German `Breite`/`Länge` are width and length as often as coordinates (name them with
 * `--lat/--lon` or `geometry.from`).
 */
const LAT = new Set(['lat', 'latitude', 'latitud', 'latitudine', 'breedtegraad', 'breitengrad', 'breddegrad', 'leveysaste', 'ylat', 'latwgs84', 'wgs84lat', 'latitudewgs84', 'ylatitude']);
const LON = new Set([
  'lon',
  'lng',
  'long',
  'longitude',
  'longitud',
  'longitudine',
  'lengtegraad',
  'langengrad',
  'laengengrad',
  'laengdegrad',
  'langdegrad',
  'pituusaste',
  'xlon',
  'lonwgs84',
  'wgs84lon',
  'longitudewgs84',
  'xlongitude',
]);

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
    const parsed = parsedGeometry(src, alias);
    // EWKT may name its SRID; everything else takes the file's (or the assumed) one
    g = src.encoding === 'wkt' ? `etl.with_srid(${parsed}, ${src.srid})` : `ST_SetSRID(${parsed}, ${src.srid})`;
    if (plan.invalid === 'repair' && !plan.repairOnly) g = `etl.repaired(${g})`;
    else if (plan.invalid === 'repair' && plan.repairOnly!.length > 0) g = `CASE WHEN ${alias}._source_line = ANY('{${plan.repairOnly!.join(',')}}'::bigint[]) THEN etl.repaired(${g}) ELSE ${g} END`;
    if (plan.promote) g = `etl.promoted(${g})`;
  }
  if (src.srid !== plan.srid) g = `ST_Transform(${g}, ${plan.srid})`;
  return g;
}

/** SQL: a staged geometry read as PostGIS reads it (NULL when empty), before any SRID is set. */
function parsedGeometry(src: { from: string; encoding: 'geojson' | 'wkb' | 'wkt' }, alias: string): string {
  const raw = `NULLIF(btrim(${alias}.${ident(src.from)}), '')`;
  return src.encoding === 'geojson' ? `ST_GeomFromGeoJSON(${raw})` : `(${raw})::geometry`;
}

/** Above this many invalid shapes, the cast checks every shape again rather than carry their lines in its SQL. */
const REPAIR_ONLY_LIMIT = 1_000;

/**
 * The staged shapes a repairing cast must repair, found before it in one set-based pass: the
 * source lines of the geometries that are not ST_IsValid. The pass only filters, so PostgreSQL
 * splits it among parallel workers (the staging table is not temporary and the functions are
 * PARALLEL SAFE), where the cast itself writes every geometry from one process; the cast then
 * repairs these lines with etl.repaired, exactly as it would have, and takes the others as they
 * are instead of checking each one again. Validity does not depend on the SRID, so the check
 * reads the shapes as the cast does before setting it. Returns the plan with `repairOnly` set, or
 * the plan unchanged when this does not apply (no repair, points from coordinates) or does not
 * pay (more than REPAIR_ONLY_LIMIT invalid shapes), or when a shape cannot be read at all: the
 * cast then fails on it as before, and the row-by-row path finds it.
 */
export async function withInvalidLines(client: pg.PoolClient, staging: string, plan: GeometryPlan): Promise<GeometryPlan> {
  const src = plan.source;
  if (plan.invalid !== 'repair' || src.kind !== 'text' || plan.repairOnly) return plan;
  await client.query('SAVEPOINT civic_etl_validity');
  try {
    // ST_IsValid is costed high (PostGIS), so the planner gives a large table's scan its workers
    const { rows } = await withoutJit(client, () =>
      client.query<{ line: string }>(`SELECT s._source_line AS line FROM ${staging} s WHERE NOT ST_IsValid(${parsedGeometry(src, 's')}) LIMIT ${REPAIR_ONLY_LIMIT + 1}`),
    );
    await client.query('RELEASE SAVEPOINT civic_etl_validity');
    if (rows.length > REPAIR_ONLY_LIMIT) return plan;
    return { ...plan, repairOnly: rows.map((r) => Number(r.line)).sort((a, b) => a - b) };
  } catch (error) {
    // a shape PostgreSQL cannot read (22…, or PostGIS's XX000): the cast meets it as it did before
    const code = (error as { code?: string }).code ?? '';
    if (code !== 'XX000' && !code.startsWith('22')) throw error;
    await client.query('ROLLBACK TO SAVEPOINT civic_etl_validity');
    return plan;
  }
}

/**
 * A validity check without PostgreSQL's JIT compiler: ST_IsValid's high cost makes the planner
 * compile the scan (0.5–1.1 s for 200,000 polygons, jit_above_cost), and the time is spent in
 * GEOS, which compiled code does not make faster. Set back to the session's setting after.
 */
export async function withoutJit<T>(client: Queryable, run: () => Promise<T>): Promise<T> {
  await client.query('SET LOCAL jit = off');
  try {
    return await run();
  } finally {
    await client.query('SET LOCAL jit TO DEFAULT').catch(() => undefined);
  }
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
    const range = (c: string, limit: number) => (src.srid === 4326 ? `WHEN abs(${v(c)}::double precision) > ${limit} THEN 'range' ` : '');
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
export function coordinate(alias: string, column: string, decimalComma = false): string {
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

/**
 * The clean column's type when it is made: points made from latitude/longitude (or x/y) are 2D
 * points; any other geometry starts as plain `geometry` — a typmod such as geometry(Geometry,4326)
 * would refuse 3D and measured shapes — and is narrowed to the type its rows share once they are
 * in (narrowGeometryColumn).
 */
export function geometryType(plan: GeometryPlan): string {
  return plan.source.kind === 'latlon' ? `geometry(Point,${plan.srid})` : 'geometry';
}

/**
 * The column type the geometries of `column` share, as PostGIS spells it in a table definition
 * (format_type): `geometry(MultiPolygon,4326)`, `geometry(PointZ,2154)` when every one is of one
 * type and dimension (after promotion to multi); `geometry(Geometry,4326)` (or `GeometryZ`…) when
 * types mix in one dimension; plain `geometry` when dimensions mix (no typmod holds 2D and 3D).
 * `undefined` when no row has a geometry. `where` narrows the rows looked at (SQL over the table).
 */
export async function sharedGeometryType(client: pg.PoolClient, table: string, column: string, srid: number, where = 'true'): Promise<string | undefined> {
  const { rows } = await client.query<{ types: string[] | null; zm: number[] | null }>(
    `SELECT array_agg(DISTINCT substr(ST_GeometryType(${ident(column)}), 4)) AS types, array_agg(DISTINCT ST_Zmflag(${ident(column)}))::int[] AS zm
       FROM ${table} WHERE ${ident(column)} IS NOT NULL AND ${where}`,
  );
  const types = rows[0]?.types ?? [];
  const zm = rows[0]?.zm ?? [];
  if (types.length === 0) return undefined;
  if (zm.length !== 1) return 'geometry';
  return `geometry(${types.length === 1 ? types[0] : 'Geometry'}${['', 'M', 'Z', 'ZM'][zm[0]!] ?? ''},${srid})`;
}

/**
 * A geometry column made by this load (a new table, a column this load added) takes the type its
 * rows share, so that QGIS and other clients read the layer's type and SRID from
 * geometry_columns, as they do for ogr2ogr's tables: ALTER … TYPE geometry(MultiPolygon,4326).
 * `alter` changes the column (the caller knows which views read it). Returns the new type, or
 * `undefined` when the column stays as it is (no geometry at all, or already that type).
 */
export async function narrowGeometryColumn(
  client: pg.PoolClient,
  table: string,
  column: string,
  srid: number,
  alter: (type: string) => Promise<void> = (type) => client.query(`ALTER TABLE ${table} ALTER COLUMN ${ident(column)} TYPE ${type}`).then(() => undefined),
): Promise<string | undefined> {
  const shared = await sharedGeometryType(client, table, column, srid);
  if (!shared) return undefined;
  const { rows } = await client.query<{ type: string }>(`SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped`, [
    table,
    column,
  ]);
  if (rows[0]?.type === shared) return undefined;
  await alter(shared);
  return shared;
}

/** WKB geometry type codes (1–7) and their PostGIS names; curves, surfaces and TINs are not predicted. */
const WKB_TYPES = ['', 'Point', 'LineString', 'Polygon', 'MultiPoint', 'MultiLineString', 'MultiPolygon', 'GeometryCollection'];

/**
 * The column type a load's geometries will have, read before the cast where it is cheap and
 * sure: points from latitude/longitude are 2D points; hex WKB (every spatial file is staged so)
 * names its type and Z/M in its first bytes — one scan of those, promoted to multi as the cast
 * will. `undefined` (decide after the cast) for text encodings, other types, mixed dimensions or
 * no geometry at all. A shape that ST_MakeValid repairs can change type: the cast then fails
 * with a misfit (isGeometryMisfit) and the caller falls back.
 */
export async function predictedGeometryType(client: pg.PoolClient, staging: string, plan: GeometryPlan): Promise<string | undefined> {
  if (plan.source.kind === 'latlon') return `geometry(Point,${plan.srid})`;
  if (plan.source.encoding !== 'wkb') return undefined;
  const column = ident(plan.source.from);
  // the first bytes only: trimming whole values would copy each one
  const { rows } = await client.query<{ head: string }>(`SELECT DISTINCT upper(left(btrim(left(${column}, 32)), 10)) AS head FROM ${staging} WHERE ${column} IS NOT NULL`);
  const types = new Set<string>();
  const dims = new Set<string>();
  for (const { head } of rows) {
    if (head === '') continue;
    if (!/^0[01][0-9A-F]{8}$/.test(head)) return undefined;
    const bytes = head.slice(2).match(/../g)!;
    let code = parseInt((head.startsWith('01') ? bytes.reverse() : bytes).join(''), 16) >>> 0;
    // EWKB flags (Z 0x80000000, M 0x40000000, SRID 0x20000000), or ISO codes (+1000 Z, +2000 M, +3000 ZM)
    let z = (code & 0x80000000) !== 0;
    let m = (code & 0x40000000) !== 0;
    code &= 0x0fffffff;
    if (code >= 1000) {
      const iso = Math.floor(code / 1000);
      z ||= iso === 1 || iso === 3;
      m ||= iso === 2 || iso === 3;
      code %= 1000;
    }
    let name = WKB_TYPES[code];
    if (!name) return undefined;
    // as etl.promoted does: by GeometryType(), which names a measured polygon POLYGONM, left as it is
    if (plan.promote && !m && (name === 'Polygon' || name === 'LineString')) name = `Multi${name}`;
    types.add(name);
    dims.add(`${z ? 'Z' : ''}${m ? 'M' : ''}`);
  }
  if (types.size === 0 || dims.size !== 1) return undefined;
  return `geometry(${types.size === 1 ? [...types][0] : 'Geometry'}${[...dims][0]},${plan.srid})`;
}

/**
 * The next wider type for a typed geometry column a load's geometries do not fit: a single type
 * becomes any geometry of its dimension (`geometry(Point,4326)` → `geometry(Geometry,4326)`,
 * `geometry(PointZ,4326)` → `geometry(GeometryZ,4326)`); any geometry of one dimension becomes
 * plain `geometry` (then the geometries differ in dimension). `undefined`: nothing wider.
 */
export function widerGeometryType(type: string): string | undefined {
  const m = /^geometry\((\w+?)(ZM|Z|M)?,(-?\d+)\)$/i.exec(type);
  if (!m) return undefined;
  return m[1]!.toLowerCase() === 'geometry' ? 'geometry' : `geometry(Geometry${m[2] ?? ''},${m[3]})`;
}

/**
 * The error PostGIS raises when a geometry does not fit a typed column: another type, or another
 * dimension (`Geometry type (Point) does not match column type (MultiPolygon)`, `Column has Z
 * dimension but geometry does not`).
 */
export function isGeometryMisfit(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return e.code === '22023' && /^Geometry type \(.*\) does not match column type|^(Column|Geometry) has [ZM] dimension but (geometry|column) does not/.test(e.message ?? '');
}

/** The notice etl.repaired raises for each shape it repairs (migration 0013). */
const REPAIR_NOTICE = 'civic-etl: geometry repaired';

/**
 * Listens on `client` for the notices etl.repaired raises while a cast runs: `seen` says whether
 * any shape was repaired, so that repairSummary's pass over the staged shapes runs only then.
 * ST_IsValid's own notices (why a shape is invalid) are not counted.
 */
export function watchRepairs(client: pg.PoolClient): { seen: () => boolean; stop: () => void } {
  let seen = false;
  const listener = (notice: { message?: string }) => {
    if (notice.message === REPAIR_NOTICE) seen = true;
  };
  client.on('notice', listener);
  return { seen: () => seen, stop: () => void client.off('notice', listener) };
}

/**
 * What repairing a load's invalid shapes did, for the load's warnings: how many were repaired
 * (ST_MakeValid), and in how many the repair also left parts of a lower dimension — the point a
 * spike collapses to, the line of a zero-width sliver — which etl.repaired drops so that a
 * polygon layer stays polygons (named by their source line, the first five), or left nothing of
 * the shape's dimension (its geometry is then NULL). `undefined` when nothing needed repair. One
 * pass over the staged geometries, so only when repair is on and shapes can be invalid at all.
 */
export async function repairSummary(client: Queryable, staging: string, plan: GeometryPlan, unit = 'feature', shapes?: { sql: string; params: unknown[] }): Promise<string | undefined> {
  const src = plan.source;
  if (plan.invalid !== 'repair' || src.kind !== 'text') return undefined;
  // `shapes`: the shapes as read, `(line, g)`, from elsewhere than a staging table (a direct load's table: local/load-direct.ts)
  const from = shapes ?? { sql: `SELECT _source_line AS line, etl.try_geometry(${ident(src.from)}, $1) AS g FROM ${staging}`, params: [src.encoding === 'geojson' ? 'geojson' : 'wkb'] };
  const { rows } = await client.query<{ repaired: number; emptied: number; trimmed: number; lines: string[] | null; points: number | null; segments: number | null; length: number | null }>(
    `WITH bad AS (
       SELECT line, g, ST_MakeValid(g) AS made
         FROM (${from.sql}) p
        WHERE g IS NOT NULL AND NOT ST_IsValid(g)
     ), kept AS (SELECT line, made, etl.kept_dimension(made, g) AS k FROM bad)
     SELECT count(*)::int AS repaired,
            count(*) FILTER (WHERE k IS NULL OR ST_IsEmpty(k))::int AS emptied,
            count(*) FILTER (WHERE k IS DISTINCT FROM made)::int AS trimmed,
            ((array_agg(line::text ORDER BY line) FILTER (WHERE k IS DISTINCT FROM made))[1:5]) AS lines,
            sum(ST_NumGeometries(ST_CollectionExtract(made, 1))) FILTER (WHERE k IS DISTINCT FROM made)::int AS points,
            sum(ST_NumGeometries(ST_CollectionExtract(made, 2))) FILTER (WHERE k IS DISTINCT FROM made)::int AS segments,
            sum(ST_Length(ST_CollectionExtract(made, 2))) FILTER (WHERE k IS DISTINCT FROM made)::float8 AS length
       FROM kept`,
    from.params,
  );
  const r = rows[0];
  if (!r || r.repaired === 0) return undefined;
  let text = `${r.repaired} invalid geometr${r.repaired === 1 ? 'y' : 'ies'} repaired (ST_MakeValid)`;
  if (r.trimmed > 0) {
    const parts = [
      r.points ? `${r.points} point${r.points === 1 ? '' : 's'}` : '',
      r.segments ? `${r.segments} line${r.segments === 1 ? '' : 's'} (${Number((r.length ?? 0).toPrecision(4))} units long in all)` : '',
    ]
      .filter(Boolean)
      .join(' and ');
    text += `; in ${r.trimmed} of them (${unit}${r.trimmed === 1 ? '' : 's'} ${(r.lines ?? []).join(', ')}${r.trimmed > 5 ? ', …' : ''}) the repair also left ${parts || 'parts of a lower dimension'} — a collapsed spike or sliver — dropped to keep each shape's own dimension`;
    if (r.emptied > 0) text += `; ${r.emptied} had nothing of their dimension left: their geometry is NULL`;
  }
  return text;
}
