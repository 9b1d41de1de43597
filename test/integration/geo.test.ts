import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPool } from '../../functions/common/db.ts';
import { withInvalidLines, type GeometryPlan } from '../../functions/clean/geometry.ts';
import { loadFile } from '../../local/load-file.ts';
import { PRJ_LAMBERT93_ESRI, PRJ_RD_NEW_ESRI, POLYGON, square, writeShapefile } from '../helpers/shapefile-writer.ts';
import { gpkgBlob, isoWkb, writeGeoPackage } from '../helpers/gpkg-writer.ts';
import { makeZip } from '../helpers/zip.ts';
import { rows } from './support.ts';
import { renderedReasons } from '../helpers/reasons.ts';

let dir: string;
const file = (name: string, content: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'geo-test-'));
  const pool = await getPool();
  await pool.query('DROP SCHEMA IF EXISTS it_geo CASCADE');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The Dam in Amsterdam, in RD New (EPSG:28992) and in WGS 84. */
const DAM_RD = [121_400, 487_400];
const DAM_WGS84 = { lon: 4.893804, lat: 52.373446 };

const feature = (id: number, geometry: unknown, props: Record<string, unknown> = {}) => ({ type: 'Feature', properties: { id, ...props }, geometry });
const collection = (features: unknown[], crs?: string) => JSON.stringify({ type: 'FeatureCollection', ...(crs ? { crs: { type: 'name', properties: { name: crs } } } : {}), features });
const box = (x: number, y: number, s: number) => [
  [
    [x, y],
    [x + s, y],
    [x + s, y + s],
    [x, y + s],
    [x, y],
  ],
];

/** A polygon whose ring crosses itself: invalid (Self-intersection). */
const BOWTIE = {
  type: 'Polygon',
  coordinates: [
    [
      [0, 0],
      [1, 1],
      [1, 0],
      [0, 1],
      [0, 0],
    ],
  ],
};

async function geomRows(table: string, order = 'id') {
  const pool = await getPool();
  return rows<{ id: number; wkt: string; srid: number; valid: boolean; x: number; y: number; type: string }>(
    pool,
    `SELECT id, ST_AsText(geom) AS wkt, ST_SRID(geom) AS srid, ST_IsValid(geom) AS valid,
            ST_X(ST_Centroid(geom)) AS x, ST_Y(ST_Centroid(geom)) AS y, GeometryType(geom) AS type
       FROM ${table} ORDER BY ${order}`,
  );
}

describe('loading spatial files into PostGIS', () => {
  it('lands a GeoJSON in RD New (crs member) in EPSG:4326 at the right place, with a GiST index', async () => {
    const path = file('dam.geojson', collection([feature(1, { type: 'Point', coordinates: DAM_RD }, { name: 'Dam' })], 'urn:ogc:def:crs:EPSG::28992'));

    const r = await loadFile(await getPool(), path, { table: 'it_geo.dam', recreate: true });
    const [dam] = await geomRows('it_geo.dam');
    const index = await rows(await getPool(), `SELECT indexdef FROM pg_indexes WHERE schemaname = 'it_geo' AND tablename = 'dam'`);

    expect(r).toMatchObject({ rowsRead: 1, rowsLoaded: 1, rowsRejected: 0, format: 'geojson' });
    expect(r.geometry).toMatch(/geom: the file's geometry \(.*EPSG:28992\) → EPSG:4326/);
    expect(dam).toMatchObject({ id: 1, srid: 4326 });
    expect(dam!.x).toBeCloseTo(DAM_WGS84.lon, 3);
    expect(dam!.y).toBeCloseTo(DAM_WGS84.lat, 3);
    expect(index.map((i) => i.indexdef).join()).toMatch(/USING gist \(geom\)/);
  });

  it('keeps another target SRID when asked (28992 for Amsterdam)', async () => {
    const path = file('dam4326.geojson', collection([feature(1, { type: 'Point', coordinates: [DAM_WGS84.lon, DAM_WGS84.lat] })]));

    await loadFile(await getPool(), path, { table: 'it_geo.dam_rd', recreate: true, srid: 28992 });
    const [dam] = await geomRows('it_geo.dam_rd');

    expect(dam!.srid).toBe(28992);
    expect(dam!.x).toBeCloseTo(DAM_RD[0]!, -1);
    expect(dam!.y).toBeCloseTo(DAM_RD[1]!, -1);
  });

  it('promotes polygons to multipolygons when a layer mixes them', async () => {
    const path = file(
      'mixed.geojson',
      collection([feature(1, { type: 'Polygon', coordinates: box(4.8, 52.3, 0.01) }), feature(2, { type: 'MultiPolygon', coordinates: [box(4.9, 52.3, 0.01), box(4.95, 52.3, 0.01)] })]),
    );

    await loadFile(await getPool(), path, { table: 'it_geo.mixed', recreate: true });

    expect((await geomRows('it_geo.mixed')).map((g) => g.type)).toEqual(['MULTIPOLYGON', 'MULTIPOLYGON']);
  });

  it('repairs an invalid polygon by default, and quarantines it when the dataset says so', async () => {
    const path = file('bowtie.geojson', collection([feature(1, BOWTIE), feature(2, { type: 'Polygon', coordinates: box(0, 0, 1) })]));

    const repaired = await loadFile(await getPool(), path, { table: 'it_geo.bowtie', recreate: true });
    const rejected = await loadFile(await getPool(), path, { table: 'it_geo.bowtie_strict', recreate: true, invalid: 'quarantine' });
    const reasons = await rows<{ source_line: number; reason: string }>(await getPool(), 'SELECT source_line::int, reason FROM it_geo.bowtie_strict_rejects');

    expect(repaired).toMatchObject({ rowsLoaded: 2, rowsRejected: 0 });
    expect((await geomRows('it_geo.bowtie')).every((g) => g.valid)).toBe(true);
    expect(rejected).toMatchObject({ rowsLoaded: 1, rowsRejected: 1 });
    expect(reasons).toEqual([{ source_line: 1, reason: expect.stringMatching(/^invalid geometry: Self-intersection/) }]);
  });

  it('quarantines a geometry PostGIS cannot read, with its feature number, and loads the rest', async () => {
    const broken = { type: 'Polygon', coordinates: [[1, 2]] }; // not nested deep enough
    const path = file('broken-geom.geojson', collection([feature(1, { type: 'Point', coordinates: [4.9, 52.37] }), feature(2, broken), feature(3, { type: 'Point', coordinates: [4.8, 52.36] })]));

    const r = await loadFile(await getPool(), path, { table: 'it_geo.broken', recreate: true });
    const reasons = await rows<{ source_line: number; reason: string }>(await getPool(), 'SELECT source_line::int, reason FROM it_geo.broken_rejects');

    expect(r).toMatchObject({ rowsRead: 3, rowsLoaded: 2, rowsRejected: 1 });
    expect(reasons).toEqual([{ source_line: 2, reason: expect.stringMatching(/^not a valid geometry: /) }]);
  });

  it('makes points from latitude/longitude columns and rejects coordinates out of range', async () => {
    const path = file('points.csv', 'id;name;latitude;longitude\n1;Dam;52.373446;4.893804\n2;Nowhere;123.4;4.9\n3;Blank;;\n');

    const r = await loadFile(await getPool(), path, { table: 'it_geo.points', recreate: true });
    const points = await rows<{ id: number; wkt: string | null }>(await getPool(), 'SELECT id, ST_AsText(geom) AS wkt FROM it_geo.points ORDER BY id');
    const reasons = await rows<{ reason: string }>(await getPool(), 'SELECT reason FROM it_geo.points_rejects');

    expect(r).toMatchObject({ rowsRead: 3, rowsLoaded: 2, rowsRejected: 1 });
    expect(r.geometry).toBe('geom: points from latitude/longitude → EPSG:4326, geometry(Point,4326)');
    expect(points).toEqual([
      { id: 1, wkt: 'POINT(4.893804 52.373446)' },
      { id: 3, wkt: null },
    ]);
    expect(reasons).toEqual([{ reason: 'latitude out of range: 123.4' }]);
  });

  it('reads a zipped shapefile in RD New and lands its polygons (with holes) in 4326', async () => {
    const shp = mkdtempSync(join(dir, 'shp-'));
    const [x, y] = DAM_RD as [number, number];
    const parts = writeShapefile(shp, 'buurten', {
      shapeType: POLYGON,
      fields: [
        { name: 'id', type: 'N', length: 5 },
        { name: 'naam', type: 'C', length: 20 },
      ],
      records: [
        { shape: { parts: [square(x, y, 100, true), square(x + 25, y + 25, 50, false)] }, values: [1, 'Centrum'] },
        { shape: { parts: [square(x + 500, y, 100, true)] }, values: [2, 'Oost'] },
      ],
      prj: PRJ_RD_NEW_ESRI,
      cpg: 'UTF-8',
    });
    const zip = file('buurten.zip', await makeZip(Object.fromEntries(Object.entries(parts).map(([ext, p]) => [`buurten.${ext}`, readFileSync(p)]))));

    const r = await loadFile(await getPool(), zip, { table: 'it_geo.buurten', recreate: true });
    const shapes = await rows<{ id: number; naam: string; srid: number; holes: number; valid: boolean; x: number }>(
      await getPool(),
      `SELECT id, naam, ST_SRID(geom) AS srid, ST_NumInteriorRings(ST_GeometryN(geom, 1)) AS holes, ST_IsValid(geom) AS valid, ST_X(ST_Centroid(geom)) AS x
         FROM it_geo.buurten ORDER BY id`,
    );

    expect(r).toMatchObject({ rowsRead: 2, rowsLoaded: 2, format: 'shapefile' });
    expect(shapes).toMatchObject([
      { id: 1, naam: 'Centrum', srid: 4326, holes: 1, valid: true },
      { id: 2, naam: 'Oost', srid: 4326, holes: 0, valid: true },
    ]);
    expect(shapes[0]!.x).toBeCloseTo(DAM_WGS84.lon, 2);
  });

  it("types a zipped shapefile's columns from its DBF fields, blanks as NULL, a field with a stray value by its values", async () => {
    const shp = mkdtempSync(join(dir, 'shp-'));
    const [x, y] = DAM_RD as [number, number];
    const parts = writeShapefile(shp, 'parken', {
      shapeType: POLYGON,
      fields: [
        { name: 'id', type: 'N', length: 9 },
        { name: 'code', type: 'C', length: 10 },
        { name: 'area', type: 'N', length: 12, decimals: 2 },
        { name: 'opened', type: 'D', length: 8 },
        { name: 'free', type: 'L', length: 1 },
        { name: 'beds', type: 'N', length: 5 },
      ],
      records: [
        { shape: { parts: [square(x, y, 100, true)] }, values: [1, '42', 1234.5, '20240229', 'T', '12'] },
        { shape: { parts: [square(x + 500, y, 100, true)] }, values: [2, null, null, null, '?', '0012'] },
      ],
      prj: PRJ_RD_NEW_ESRI,
    });
    const zip = file('parken.zip', await makeZip(Object.fromEntries(Object.entries(parts).map(([ext, p]) => [`parken.${ext}`, readFileSync(p)]))));

    const r = await loadFile(await getPool(), zip, { table: 'it_geo.parken', recreate: true });
    const values = await rows(await getPool(), `SELECT id, code, area, opened::text AS opened, free, beds FROM it_geo.parken ORDER BY id`);

    expect(r.columns.map((c) => [c.name, c.type])).toEqual([
      ['id', 'integer'],
      ['code', 'text'],
      ['area', 'numeric'],
      ['opened', 'date'],
      ['free', 'boolean'],
      ['beds', 'text'],
      ['geom', 'geometry'],
    ]);
    expect(values).toEqual([
      { id: 1, code: '42', area: '1234.50', opened: '2024-02-29', free: true, beds: '12' },
      { id: 2, code: null, area: null, opened: null, free: null, beds: '0012' },
    ]);
  });

  it('lands a Lambert-93 shapefile (France) in 4326', async () => {
    const shp = mkdtempSync(join(dir, 'l93-'));
    // Place de la Concorde, Paris, in Lambert-93
    const parts = writeShapefile(shp, 'places', {
      shapeType: POLYGON,
      fields: [{ name: 'nom', type: 'C', length: 20 }],
      records: [{ shape: { parts: [square(650_500, 6_862_500, 50, true)] }, values: ['Concorde'] }],
      prj: PRJ_LAMBERT93_ESRI,
    });
    const zip = file('places.zip', await makeZip(Object.fromEntries(Object.entries(parts).map(([ext, p]) => [`places.${ext}`, readFileSync(p)]))));

    await loadFile(await getPool(), zip, { table: 'it_geo.places', recreate: true });
    const [place] = await rows<{ x: number; y: number }>(await getPool(), 'SELECT ST_X(ST_Centroid(geom)) AS x, ST_Y(ST_Centroid(geom)) AS y FROM it_geo.places');

    expect(place!.x).toBeCloseTo(2.32, 1);
    expect(place!.y).toBeCloseTo(48.866, 1);
  });

  it('reads a GeoPackage layer, with the SRID it declares', async () => {
    const path = join(dir, 'parks.gpkg');
    await writeGeoPackage(path, {
      layers: [
        {
          table: 'parks',
          columns: [
            { name: 'fid', type: 'INTEGER PRIMARY KEY' },
            { name: 'name', type: 'TEXT' },
            { name: 'geom', type: 'POINT' },
          ],
          geometry: { column: 'geom', type: 'POINT', srsId: 4326 },
          rows: [[1, 'Vondelpark', gpkgBlob(isoWkb('Point', [4.868, 52.358]), { srsId: 4326 })]],
        },
      ],
    });

    const r = await loadFile(await getPool(), path, { table: 'it_geo.parks', recreate: true });
    const parks = await rows(await getPool(), 'SELECT name, ST_AsText(geom) AS wkt, ST_SRID(geom) AS srid FROM it_geo.parks');

    expect(r).toMatchObject({ rowsLoaded: 1, format: 'gpkg' });
    expect(parks).toEqual([{ name: 'Vondelpark', wkt: 'POINT(4.868 52.358)', srid: 4326 }]);
  });

  it('rolls back a GeoJSON with a broken feature in the middle, naming the feature', async () => {
    const text = collection([feature(1, { type: 'Point', coordinates: [1, 2] }), feature(2, { type: 'Point', coordinates: [3, 4] })]);
    const path = file('cut.geojson', text.replace('"coordinates":[3,4]', '"coordinates":[3,4'));

    const error = await loadFile(await getPool(), path, { table: 'it_geo.cut' }).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );
    const exists = await rows(await getPool(), `SELECT to_regclass('it_geo.cut') AS t`);

    expect(error.message).toMatch(/cut\.geojson.*feature 2/);
    expect(exists).toEqual([{ t: null }]);
  });

  it('repairs only the invalid shapes, found first by a separate validity pass, with the same result and warning as checking each one in the cast', async () => {
    // a spike: ST_MakeValid leaves the polygon and a line, which the load drops
    const spike = {
      type: 'Polygon',
      coordinates: [
        [
          [10, 0],
          [11, 0],
          [11, 1],
          [11, 2],
          [11, 1],
          [10, 1],
          [10, 0],
        ],
      ],
    };
    const shapes = [{ type: 'Polygon', coordinates: box(2, 2, 1) }, BOWTIE, { type: 'MultiPolygon', coordinates: [box(4, 4, 1), box(6, 4, 1)] }, spike, { type: 'Polygon', coordinates: box(8, 8, 0.5) }];
    const path = file('some-invalid.geojson', collection(shapes.map((g, i) => feature(i + 1, g))));

    const split = await loadFile(await getPool(), path, { table: 'it_geo.repair_split', recreate: true });
    process.env.CIVIC_ETL_REPAIR_ALL = '1';
    const whole = await loadFile(await getPool(), path, { table: 'it_geo.repair_whole', recreate: true }).finally(() => delete process.env.CIVIC_ETL_REPAIR_ALL);
    // what PostGIS makes of each input on its own: valid shapes as they are, invalid ones ST_MakeValid's polygons
    const expected = await rows<{ id: number; wkt: string }>(
      await getPool(),
      `SELECT i AS id, ST_AsText(CASE WHEN ST_IsValid(g) THEN ST_Multi(g) ELSE ST_Multi(ST_CollectionExtract(ST_MakeValid(g), 3)) END) AS wkt
         FROM unnest($1::text[]) WITH ORDINALITY AS t(j, i), LATERAL (SELECT ST_GeomFromGeoJSON(j) AS g) p ORDER BY i`,
      [shapes.map((g) => JSON.stringify(g))],
    );
    const same = await rows<{ id: number; equal: boolean; wkt: string }>(
      await getPool(),
      `SELECT a.id, ST_AsEWKB(a.geom) = ST_AsEWKB(b.geom) AS equal, ST_AsText(a.geom) AS wkt FROM it_geo.repair_split a JOIN it_geo.repair_whole b USING (id) ORDER BY a.id`,
    );
    const matches = await rows<{ id: number; equal: boolean }>(
      await getPool(),
      `SELECT a.id, ST_Equals(a.geom, ST_GeomFromText(e.wkt, 4326)) AS equal FROM it_geo.repair_split a JOIN unnest($1::text[]) WITH ORDINALITY AS e(wkt, id) USING (id) ORDER BY a.id`,
      [expected.map((e) => e.wkt)],
    );

    expect(split).toMatchObject({ rowsRead: 5, rowsLoaded: 5, rowsRejected: 0 });
    expect(same).toEqual([1, 2, 3, 4, 5].map((id) => ({ id, equal: true, wkt: expect.any(String) })));
    expect(matches).toEqual([1, 2, 3, 4, 5].map((id) => ({ id, equal: true })));
    expect(split.warnings.filter((w) => /repaired/.test(w))).toEqual(whole.warnings.filter((w) => /repaired/.test(w)));
    expect(split.warnings.join('\n')).toMatch(/2 invalid geometries repaired \(ST_MakeValid\); in 1 of them \(feature 4\) the repair also left 1 line/);
  });

  it('finds the invalid shapes with parallel workers, and leaves the plan as it was when a shape cannot be read', async () => {
    const pool = await getPool();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      // workers even for a table this small
      await client.query(`SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0; SET LOCAL min_parallel_table_scan_size = 0`);
      // force_parallel_mode up to PostgreSQL 15, debug_parallel_query from 16
      await client.query(`SELECT set_config(name, 'on', true) FROM pg_settings WHERE name IN ('force_parallel_mode', 'debug_parallel_query')`);
      await client.query('CREATE TABLE it_geo.validity_staging (g text, _source_line bigint NOT NULL)');
      await client.query(
        `INSERT INTO it_geo.validity_staging SELECT encode(ST_AsBinary(ST_GeomFromText(w)), 'hex'), n
           FROM unnest($1::text[]) WITH ORDINALITY AS t(w, n)`,
        [['POLYGON((0 0,1 0,1 1,0 1,0 0))', 'POLYGON((0 0,1 1,1 0,0 1,0 0))', 'POINT(3 3)', 'POLYGON((0 0,2 0,2 2,0 2,0 0),(5 5,6 5,6 6,5 6,5 5))']],
      );
      await client.query(`INSERT INTO it_geo.validity_staging VALUES ('', 5), (NULL, 6)`);
      const plan: GeometryPlan = { column: 'geom', srid: 4326, source: { kind: 'text', from: 'g', encoding: 'wkb', srid: 4326 }, invalid: 'repair', promote: true, consumed: ['g'], note: '' };
      const { rows: explained } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN SELECT _source_line FROM it_geo.validity_staging s WHERE NOT ST_IsValid(s.g::geometry)`);

      const found = await withInvalidLines(client, 'it_geo.validity_staging', plan);
      await client.query(`INSERT INTO it_geo.validity_staging VALUES ('0103not-hex', 7)`);
      const unread = await withInvalidLines(client, 'it_geo.validity_staging', plan);
      const quarantining = await withInvalidLines(client, 'it_geo.validity_staging', { ...plan, invalid: 'quarantine' });

      expect(explained.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/Gather/);
      expect(found.repairOnly).toEqual([2, 4]);
      expect(unread).toBe(plan);
      expect(quarantining.repairOnly).toBeUndefined();
      // the transaction is still usable after the unreadable shape
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

describe('the reasons of the rows this file set aside, in a French or Dutch report', () => {
  it('are each rendered in French and in Dutch: an invalid shape (GEOS saying why), a geometry that cannot be read, a coordinate out of range', async () => {
    const rendered = await renderedReasons(await getPool(), 'it_geo');
    expect(rendered.rules).toEqual(['range', 'type', 'valid']);
    expect(rendered.untranslated).toEqual([]);
  });
});
