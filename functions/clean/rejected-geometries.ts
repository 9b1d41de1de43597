/**
 * Where the rows a load set aside were, for the map of the supplier's HTML report: their staged
 * rows still exist during the clean transaction (the staging table is dropped at its end, and the
 * quarantine keeps only the failing values), so their locations are read there — lat/lon or the
 * file's geometry, whichever could be read, whatever made the row fail.
 */
import type pg from 'pg';
import { ident, type Queryable } from '../common/db.ts';
import { messageOf } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import type { RejectedGeometries } from '../common/report.ts';
import type { Geometry } from '../common/svg.ts';
import { coordinate, type GeometryPlan } from './geometry.ts';

/** Set-aside locations kept for the map at most (a spread sample; the count stays exact). */
export const REJECTED_FEATURES = 1000;

/** The geometry of a staged row, or NULL when it cannot be read: never an error. */
function readableGeometry(plan: GeometryPlan, alias = 's'): string {
  const src = plan.source;
  if (src.kind === 'latlon') {
    const v = (c: string) => coordinate(alias, c, src.decimalComma);
    const num = (c: string) => `CASE WHEN etl.is_valid_as(${v(c)}, 'double precision') THEN ${v(c)}::double precision END`;
    // in degrees the world's bounds; in a projection, finite numbers (NaN compares above every number)
    const ok = (c: string, limit: number) => `abs(${num(c)}) <= ${src.srid === 4326 ? limit : 1e9}`;
    return `CASE WHEN ${ok(src.lat, 90)} AND ${ok(src.lon, 180)} THEN ST_SetSRID(ST_MakePoint(${num(src.lon)}, ${num(src.lat)}), ${src.srid}) END`;
  }
  const parsed = `etl.try_geometry(${alias}.${ident(src.from)}, '${src.encoding}')`;
  return src.encoding === 'wkt' ? `etl.with_srid(${parsed}, ${src.srid})` : `ST_SetSRID(${parsed}, ${src.srid})`;
}

/**
 * The locations of a load's set-aside rows that can be read, in lon/lat: how many, and a spread
 * sample (the same at each run) simplified to about a pixel of a map of them all, 5 decimals.
 * Runs in a savepoint of the caller's transaction: a location PostGIS cannot transform is
 * logged and the map goes without set-aside rows; the load is never failed by it.
 */
export async function rejectedGeometries(client: pg.PoolClient, r: { staging: string; quarantine: string; loadId: number; geometry: GeometryPlan }): Promise<RejectedGeometries | undefined> {
  await client.query('SAVEPOINT rejected_geometries');
  try {
    const found = await readRejected(client, r);
    await client.query('RELEASE SAVEPOINT rejected_geometries');
    return found;
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT rejected_geometries');
    logger.warn('locations of set-aside rows not read for the report map', { loadId: r.loadId, error: messageOf(error) });
    return undefined;
  }
}

async function readRejected(db: Queryable, r: { staging: string; quarantine: string; loadId: number; geometry: GeometryPlan }): Promise<RejectedGeometries> {
  const located = `SELECT s._source_line AS line, ST_Transform(g.g, 4326) AS g
                     FROM ${r.staging} s
                     CROSS JOIN LATERAL (SELECT ${readableGeometry(r.geometry)} AS g) g
                    WHERE s._source_line IN (SELECT source_line FROM ${r.quarantine} WHERE load_id = $1) AND g.g IS NOT NULL AND NOT ST_IsEmpty(g.g)`;
  const { rows: all } = await db.query<{ n: string; w: number | null; h: number | null }>(
    `SELECT count(*) AS n, ST_XMax(ST_Extent(g)) - ST_XMin(ST_Extent(g)) AS w, ST_YMax(ST_Extent(g)) - ST_YMin(ST_Extent(g)) AS h FROM (${located}) x`,
    [r.loadId],
  );
  const readable = Number(all[0]?.n ?? 0);
  if (readable === 0) return { readable, sample: [] };
  const tolerance = Math.max(Number(all[0]?.w ?? 0), Number(all[0]?.h ?? 0)) / 1500;
  const { rows } = await db.query<{ line: string; geojson: string }>(
    `SELECT line, ST_AsGeoJSON(${tolerance > 0 ? `ST_SimplifyPreserveTopology(g, ${tolerance})` : 'g'}, 5) AS geojson
       FROM (${located}) x ORDER BY md5(line::text) LIMIT ${REJECTED_FEATURES}`,
    [r.loadId],
  );
  return { readable, sample: rows.map((x) => ({ line: Number(x.line), geometry: JSON.parse(x.geojson) as Geometry })).sort((a, b) => a.line - b.line) };
}
