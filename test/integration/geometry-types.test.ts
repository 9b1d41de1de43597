/**
 * Geometry columns typed as clients read them (issue 13, outcome 6): `geometry(<type>,<srid>)`
 * in geometry_columns — what QGIS lists a layer by — for `civic-etl load` and for the pipeline's
 * clean tables, and what a later load of another geometry type does to a typed column.
 *
 * The facts about ogr2ogr's tables were read from GDAL 3.6's `ogr2ogr -f PostgreSQL` on the same
 * files (geometry_columns afterwards); when ogr2ogr is on the machine, the last test runs it again.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PipelineInput } from '../../contract/definition.ts';
import { parsePipeline } from '../../contract/load.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { getPool } from '../../functions/common/db.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { geometryExpr, predictedGeometryType, sharedGeometryType, type GeometryPlan } from '../../functions/clean/geometry.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import { loadFile } from '../../local/load-file.ts';
import { POINTZ, POLYGON, PRJ_WGS84_ESRI, square, writeShapefile, type TestShapefile } from '../helpers/shapefile-writer.ts';
import { makeZip } from '../helpers/zip.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';
import { deliver as deliverObject } from '../helpers/deliver.ts';

const dir = mkdtempSync(join(tmpdir(), 'geometry-types-'));
const file = (name: string, content: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const box = (x: number, y: number, s: number) => [
  [
    [x, y],
    [x + s, y],
    [x + s, y + s],
    [x, y + s],
    [x, y],
  ],
];
const collection = (geometries: unknown[]) => JSON.stringify({ type: 'FeatureCollection', features: geometries.map((geometry, i) => ({ type: 'Feature', properties: { id: i + 1 }, geometry })) });

const FILES = {
  points: collection([
    { type: 'Point', coordinates: [4.89, 52.37] },
    { type: 'Point', coordinates: [4.9, 52.38] },
  ]),
  pointsZ: collection([
    { type: 'Point', coordinates: [4.89, 52.37, 3.5] },
    { type: 'Point', coordinates: [4.9, 52.38, -1.25] },
  ]),
  mixedPolygons: collection([
    { type: 'Polygon', coordinates: box(4.8, 52.3, 0.01) },
    { type: 'MultiPolygon', coordinates: [box(4.9, 52.3, 0.01), box(4.95, 52.3, 0.01)] },
  ]),
  pointAndLine: collection([
    { type: 'Point', coordinates: [4.89, 52.37] },
    {
      type: 'LineString',
      coordinates: [
        [4.9, 52.38],
        [4.91, 52.39],
      ],
    },
  ]),
};

/** What QGIS reads: the geometry_columns row of a table. */
async function layer(schema: string, table: string) {
  const found = await rows<{ column: string; type: string; srid: number; dims: number }>(
    await getPool(),
    `SELECT f_geometry_column AS column, type, srid, coord_dimension AS dims FROM geometry_columns WHERE f_table_schema = $1 AND f_table_name = $2`,
    [schema, table],
  );
  return found.length === 1 ? found[0] : found;
}

beforeAll(async () => {
  await (await getPool()).query('DROP SCHEMA IF EXISTS it_geomtype CASCADE');
});

describe('civic-etl load: the geometry column has the type its geometries share', () => {
  it('points: geometry(Point,4326), as ogr2ogr writes', async () => {
    const r = await loadFile(await getPool(), file('points.geojson', FILES.points), { table: 'it_geomtype.points' });

    expect(await layer('it_geomtype', 'points')).toEqual({ column: 'geom', type: 'POINT', srid: 4326, dims: 2 });
    expect(r.geometry).toMatch(/→ EPSG:4326, geometry\(Point,4326\)$/);
  });

  it('3D points keep their Z: geometry(PointZ,4326), coordinate dimension 3', async () => {
    await loadFile(await getPool(), file('points-z.geojson', FILES.pointsZ), { table: 'it_geomtype.points_z' });

    // ogr2ogr: POINT, dimension 3, in EPSG:4979 (WGS 84 3D); civic-etl lands in the target SRID, 4326
    expect(await layer('it_geomtype', 'points_z')).toEqual({ column: 'geom', type: 'POINT', srid: 4326, dims: 3 });
    expect(await rows(await getPool(), 'SELECT ST_Z(geom) AS z FROM it_geomtype.points_z ORDER BY id')).toEqual([{ z: 3.5 }, { z: -1.25 }]);
  });

  it('polygons and multipolygons: promoted, so the layer is MULTIPOLYGON (ogr2ogr leaves it GEOMETRY)', async () => {
    await loadFile(await getPool(), file('mixed.geojson', FILES.mixedPolygons), { table: 'it_geomtype.mixed' });

    expect(await layer('it_geomtype', 'mixed')).toEqual({ column: 'geom', type: 'MULTIPOLYGON', srid: 4326, dims: 2 });
  });

  it('a point and a line: any geometry, still in its SRID — geometry(Geometry,4326), as ogr2ogr writes', async () => {
    await loadFile(await getPool(), file('point-line.geojson', FILES.pointAndLine), { table: 'it_geomtype.point_line' });

    expect(await layer('it_geomtype', 'point_line')).toEqual({ column: 'geom', type: 'GEOMETRY', srid: 4326, dims: 2 });
  });

  it('a polygon that repair turns into a multipolygon: still loads, the layer any geometry', async () => {
    const bowtie = {
      type: 'Polygon',
      coordinates: [
        [
          [4.8, 52.3],
          [4.81, 52.31],
          [4.81, 52.3],
          [4.8, 52.31],
          [4.8, 52.3],
        ],
      ],
    };
    const path = file('bowtie.geojson', collection([{ type: 'Polygon', coordinates: box(4.9, 52.3, 0.01) }, bowtie]));

    const r = await loadFile(await getPool(), path, { table: 'it_geomtype.bowtie' });

    expect(r.rowsLoaded).toBe(2);
    expect(await rows(await getPool(), 'SELECT GeometryType(geom) AS t, ST_IsValid(geom) AS valid FROM it_geomtype.bowtie ORDER BY id')).toEqual([
      { t: 'POLYGON', valid: true },
      { t: 'MULTIPOLYGON', valid: true },
    ]);
    expect(await layer('it_geomtype', 'bowtie')).toEqual({ column: 'geom', type: 'GEOMETRY', srid: 4326, dims: 2 });
  });

  it('points from latitude/longitude in another target SRID: geometry(Point,28992)', async () => {
    await loadFile(await getPool(), file('stops.csv', 'name,lat,lon\nDam,52.373446,4.893804\n'), { table: 'it_geomtype.stops', srid: 28992 });

    expect(await layer('it_geomtype', 'stops')).toEqual({ column: 'geom', type: 'POINT', srid: 28992, dims: 2 });
  });

  it('appending other types to a typed table widens its column instead of failing, and says so', async () => {
    await loadFile(await getPool(), file('more-points.geojson', FILES.points), { table: 'it_geomtype.widened' });
    const r = await loadFile(await getPool(), file('polygons.geojson', FILES.mixedPolygons), { table: 'it_geomtype.widened', append: true });

    expect(r.rowsLoaded).toBe(2);
    expect(await layer('it_geomtype', 'widened')).toEqual({ column: 'geom', type: 'GEOMETRY', srid: 4326, dims: 2 });
    expect(r.warnings.join('\n')).toMatch(/column geom widened from geometry\(Point,4326\) to geometry\(Geometry,4326\)/);
    expect(await rows(await getPool(), 'SELECT GeometryType(geom) AS t, count(*)::int AS n FROM it_geomtype.widened GROUP BY 1 ORDER BY 1')).toEqual([
      { t: 'MULTIPOLYGON', n: 2 },
      { t: 'POINT', n: 2 },
    ]);
  });

  it('appending 3D points to a 2D point table: widened twice, to plain geometry', async () => {
    await loadFile(await getPool(), file('flat.geojson', FILES.points), { table: 'it_geomtype.dims' });
    await loadFile(await getPool(), file('lines.geojson', FILES.pointAndLine), { table: 'it_geomtype.dims', append: true });
    const r = await loadFile(await getPool(), file('high.geojson', FILES.pointsZ), { table: 'it_geomtype.dims', append: true });

    expect(r.rowsLoaded).toBe(2);
    expect(r.warnings.join('\n')).toMatch(/widened from geometry\(Geometry,4326\) to geometry:/);
    expect(await rows(await getPool(), 'SELECT count(*)::int AS n, count(*) FILTER (WHERE ST_Zmflag(geom) = 2)::int AS z FROM it_geomtype.dims')).toEqual([{ n: 6, z: 2 }]);
  });

  /** A zipped shapefile in WGS 84. */
  const zippedShapefile = async (base: string, spec: Omit<TestShapefile, 'prj'>) => {
    const parts = writeShapefile(mkdtempSync(join(dir, `${base}-`)), base, { ...spec, prj: PRJ_WGS84_ESRI });
    return file(`${base}.zip`, await makeZip(Object.fromEntries(Object.entries(parts).map(([ext, p]) => [`${base}.${ext}`, readFileSync(p)]))));
  };

  it("a shapefile's polygons, one of them in two parts: MULTIPOLYGON (ogr2ogr makes a Polygon column, and fails on the two-part one)", async () => {
    const path = await zippedShapefile('wards', {
      shapeType: POLYGON,
      fields: [{ name: 'id', type: 'N', length: 5 }],
      records: [
        { shape: { parts: [square(4.8, 52.3, 0.01, true)] }, values: [1] },
        { shape: { parts: [square(4.9, 52.3, 0.01, true), square(4.95, 52.3, 0.01, true)] }, values: [2] },
      ],
    });

    await loadFile(await getPool(), path, { table: 'it_geomtype.wards' });

    expect(await layer('it_geomtype', 'wards')).toEqual({ column: 'geom', type: 'MULTIPOLYGON', srid: 4326, dims: 2 });
    expect(await rows(await getPool(), 'SELECT id, ST_NumGeometries(geom) AS parts FROM it_geomtype.wards ORDER BY id')).toEqual([
      { id: 1, parts: 1 },
      { id: 2, parts: 2 },
    ]);
  });

  it('a PointZ shapefile: geometry(PointZ,4326)', async () => {
    const path = await zippedShapefile('wells', {
      shapeType: POINTZ,
      fields: [{ name: 'id', type: 'N', length: 5 }],
      records: [{ shape: { parts: [[[4.89, 52.37, -12.5]]] }, values: [1] }],
    });

    await loadFile(await getPool(), path, { table: 'it_geomtype.wells' });

    expect(await layer('it_geomtype', 'wells')).toEqual({ column: 'geom', type: 'POINT', srid: 4326, dims: 3 });
  });

  const ogr2ogr = spawnSync('ogr2ogr', ['--version'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!ogr2ogr)('agrees with ogr2ogr, run now, where ogr2ogr types the layer (points, mixed types)', async () => {
    const url = new URL(process.env.DATABASE_URL!);
    const pg = `PG:host=${url.hostname} port=${url.port} user=${decodeURIComponent(url.username)} dbname=${url.pathname.slice(1)}${url.password ? ` password=${decodeURIComponent(url.password)}` : ''}`;
    for (const [name, table] of [
      ['points.geojson', 'points'],
      ['point-line.geojson', 'point_line'],
    ] as const) {
      const r = spawnSync('ogr2ogr', ['-f', 'PostgreSQL', pg, join(dir, name), '-nln', `it_geomtype.ogr_${table}`, '-overwrite'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const theirs = (await layer('it_geomtype', `ogr_${table}`)) as { type: string; srid: number; dims: number };
      expect(await layer('it_geomtype', table)).toMatchObject({ type: theirs.type, srid: theirs.srid, dims: theirs.dims });
    }
  });
});

describe('the type read from staged WKB headers', () => {
  // every spelling PostGIS and the readers write: EWKB (flags), ISO codes (+1000 Z…), big-endian
  const cases: [string, string[]][] = [
    ['EWKB, little-endian, with SRID', [`encode(ST_AsEWKB(ST_GeomFromText('POINT Z (1 2 3)', 4326)), 'hex')`, `encode(ST_AsEWKB(ST_GeomFromText('POINT Z (4 5 6)', 4326)), 'hex')`]],
    ['ISO, big-endian', [`encode(ST_AsBinary(ST_GeomFromText('POLYGON M ((0 0 1, 1 0 1, 1 1 1, 0 0 1))'), 'XDR'), 'hex')`]],
    ['ISO ZM and 2D mixed', [`encode(ST_AsBinary(ST_GeomFromText('POINT ZM (1 2 3 4)')), 'hex')`, `encode(ST_AsBinary(ST_GeomFromText('POINT (1 2)')), 'hex')`]],
    [
      'polygons with multipolygons, promoted',
      [`encode(ST_AsBinary(ST_GeomFromText('POLYGON ((0 0, 1 0, 1 1, 0 0))')), 'hex')`, `encode(ST_AsBinary(ST_GeomFromText('MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)))')), 'hex')`],
    ],
    ['a line and a point', [`encode(ST_AsBinary(ST_GeomFromText('LINESTRING (0 0, 1 1)')), 'hex')`, `encode(ST_AsBinary(ST_GeomFromText('POINT (1 2)')), 'hex')`]],
  ];
  it.each(cases)('%s: the type PostGIS finds once they are parsed', async (_, values) => {
    const pool = await getPool();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`CREATE TEMPORARY TABLE staged ON COMMIT DROP AS SELECT * FROM (VALUES ${values.map((v) => `(${v})`).join(', ')}) AS v(g)`);
      const plan: GeometryPlan = { column: 'geom', srid: 4326, source: { kind: 'text', from: 'g', encoding: 'wkb', srid: 4326 }, invalid: 'repair', promote: true, consumed: ['g'], note: '' };
      await client.query(`CREATE TEMPORARY TABLE parsed ON COMMIT DROP AS SELECT ${geometryExpr(plan)} AS geom FROM staged s`);

      const predicted = await predictedGeometryType(client, 'staged', plan);
      const found = await sharedGeometryType(client, 'parsed', 'geom', 4326);

      expect(predicted ?? 'geometry').toBe(found);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

const definition: PipelineInput = {
  project: 'it_geomtype_p',
  suppliers: [{ name: 'city' }],
  datasets: [
    { name: 'parcels', source: { type: 'upload', supplier: 'city' } }, // drift: evolve
    { name: 'frozen', source: { type: 'upload', supplier: 'city' }, drift: 'freeze' },
    { name: 'held', source: { type: 'upload', supplier: 'city' }, drift: 'quarantine' },
    { name: 'moved', source: { type: 'upload', supplier: 'city' } },
  ],
  views: [{ name: 'parcel_shapes', datasets: ['parcels'], sql: 'SELECT id, geom FROM {{schema}}.parcels' }],
};

describe('the pipeline: clean tables typed by their first load, widened by a later one', () => {
  let stageDeps: StageDeps;
  let cleanDeps: CleanDeps;
  let bucket: string;
  const deliver = (dataset: string, name: string, body: string) => deliverObject({ stage: stageDeps, clean: cleanDeps }, bucket, `incoming/city/${dataset}/${name}`, body);
  const ledger = async (loadId: number) =>
    (await rows<{ status: string; error: string | null; schema_changes: unknown }>(cleanDeps.pool, 'SELECT status, error, schema_changes FROM etl.loads WHERE id = $1', [loadId]))[0]!;

  beforeAll(async () => {
    const { pipeline, pool } = await freshProject(definition);
    bucket = await freshBucket('it-geomtype');
    stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
    cleanDeps = { pool, pipeline };
  });

  it('evolve: the first load makes MULTIPOLYGON; points later widen it to GEOMETRY, recorded, the view still there', async () => {
    const first = await deliver('parcels', 'p1.geojson', FILES.mixedPolygons);
    expect(first).toMatchObject({ status: 'loaded', rowsLoaded: 2 });
    expect(await layer('it_geomtype_p', 'parcels')).toEqual({ column: 'geom', type: 'MULTIPOLYGON', srid: 4326, dims: 2 });

    const again = await deliver('parcels', 'p2.geojson', FILES.mixedPolygons);
    expect(again).toMatchObject({ status: 'loaded', rowsLoaded: 2 });
    expect((await ledger((again as { loadId: number }).loadId)).schema_changes).toBeNull();

    const later = await deliver('parcels', 'p3.geojson', FILES.points);
    expect(later).toMatchObject({ status: 'loaded', rowsLoaded: 2, rowsQuarantined: 0 });
    expect(await layer('it_geomtype_p', 'parcels')).toEqual({ column: 'geom', type: 'GEOMETRY', srid: 4326, dims: 2 });
    expect((await ledger((later as { loadId: number }).loadId)).schema_changes).toEqual([
      { change: 'retyped', column: 'geom', from: 'geometry(MultiPolygon,4326)', to: 'geometry(Point,4326)', policy: 'evolve', action: 'widened', type: 'geometry(Geometry,4326)' },
    ]);
    expect(await rows(cleanDeps.pool, 'SELECT GeometryType(geom) AS t FROM it_geomtype_p.parcel_shapes ORDER BY id')).toEqual([{ t: 'POINT' }, { t: 'POINT' }]);
  });

  it('a definition that changes the SRID still rebuilds the table, typed in the new SRID', async () => {
    await deliver('moved', 'm1.geojson', FILES.mixedPolygons);
    expect(await layer('it_geomtype_p', 'moved')).toEqual({ column: 'geom', type: 'MULTIPOLYGON', srid: 4326, dims: 2 });
    const inRd = parsePipeline({ ...definition, datasets: definition.datasets.map((d) => (d.name === 'moved' ? { ...d, geometry: { srid: 28992 } } : d)) });
    const staged = await stageObject({ ...stageDeps, pipeline: inRd }, await put(bucket, 'incoming/city/moved/m2.geojson', FILES.mixedPolygons));

    const outcome = await cleanLoad({ ...cleanDeps, pipeline: inRd }, (staged as { loadId: number }).loadId);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2 });
    expect(await layer('it_geomtype_p', 'moved')).toEqual({ column: 'geom', type: 'MULTIPOLYGON', srid: 28992, dims: 2 });
  });

  it('freeze: a load of another geometry type is rejected with the change, and the table keeps its type and rows', async () => {
    await deliver('frozen', 'f1.geojson', FILES.points);
    const later = await deliver('frozen', 'f2.geojson', FILES.mixedPolygons);

    expect(later).toMatchObject({ status: 'failed', error: expect.stringMatching(/column "geom" re-typed from geometry\(Point,4326\) to geometry\(MultiPolygon,4326\).*drift policy "freeze" rejects/) });
    const recorded = await ledger((later as { loadId: number }).loadId);
    expect(recorded.status).toBe('failed');
    expect(recorded.schema_changes).toEqual([expect.objectContaining({ change: 'retyped', column: 'geom', action: 'rejected' })]);
    expect(await layer('it_geomtype_p', 'frozen')).toEqual({ column: 'geom', type: 'POINT', srid: 4326, dims: 2 });
    expect(await rows(cleanDeps.pool, 'SELECT count(*)::int AS n FROM it_geomtype_p.frozen')).toEqual([{ n: 2 }]);
  });

  it('quarantine: the rows whose geometry does not fit the column are held back, the others load', async () => {
    await deliver('held', 'h1.geojson', FILES.points);
    const later = await deliver('held', 'h2.geojson', FILES.pointAndLine);

    expect(later).toMatchObject({ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 1 });
    expect(await layer('it_geomtype_p', 'held')).toEqual({ column: 'geom', type: 'POINT', srid: 4326, dims: 2 });
    expect(await rows(cleanDeps.pool, 'SELECT source_line::int AS line, rule, reason FROM it_geomtype_p.held_quarantine WHERE load_id = $1', [(later as { loadId: number }).loadId])).toEqual([
      { line: 2, rule: 'schema', reason: 'geometry column "geom" is geometry(Point,4326) in the clean table; this geometry is a MultiLineString (drift policy quarantine)' },
    ]);
  });
});
