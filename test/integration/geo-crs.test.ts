import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineInput } from '../../contract/definition.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { getPool } from '../../functions/common/db.ts';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { identifySrid } from '../../functions/clean/source-srid.ts';
import { stageObject, type CleanMessage } from '../../functions/stage/stage-object.ts';
import { migrate } from '../../functions/migrate/migrate.ts';
import { profileTable } from '../../functions/profile/profile.ts';
import { openSource } from '../../functions/read/open.ts';
import { loadFile } from '../../local/load-file.ts';
import { POLYGON, square, writeShapefile } from '../helpers/shapefile-writer.ts';
import { makeZip } from '../helpers/zip.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

// real texts: what GDAL writes as a .prj for these EPSG codes, and MassGIS's own (test/fixtures/prj/README.md)
const PRJ = join(import.meta.dirname, '..', 'fixtures', 'prj');
const ACCEPTANCE = join(import.meta.dirname, '..', 'acceptance', 'files');
const withoutAuthority = (wkt: string) => wkt.replace(/,\s*AUTHORITY\["[^"]*","[^"]*"\]/g, '');
const texts = readdirSync(PRJ)
  .flatMap((f) => {
    const m = /^(esri|ogc|massgis-senate)-(\d+)\.prj$/.exec(f);
    return m ? [{ file: f, code: Number(m[2]), wkt: withoutAuthority(readFileSync(join(PRJ, f), 'utf8')) }] : [];
  })
  .sort((a, b) => a.file.localeCompare(b.file));

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'geo-crs-'));
  const pool = await getPool();
  await migrate(pool, undefined);
  await pool.query('DROP SCHEMA IF EXISTS it_crs CASCADE');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function extent(table: string) {
  const [e] = await rows<{ xmin: number; ymin: number; xmax: number; ymax: number; srid: number }>(
    await getPool(),
    `SELECT ST_XMin(e) AS xmin, ST_YMin(e) AS ymin, ST_XMax(e) AS xmax, ST_YMax(e) AS ymax, (SELECT DISTINCT ST_SRID(geom) FROM ${table}) AS srid
       FROM (SELECT ST_Extent(geom) AS e FROM ${table}) s`,
  );
  return e!;
}

/** A zipped one-polygon shapefile with the given .prj, a square of `size` units at (x, y). */
async function zippedSquare(name: string, prj: string, x: number, y: number, size = 100): Promise<string> {
  const sub = mkdtempSync(join(dir, 'shp-'));
  const parts = writeShapefile(sub, name, {
    shapeType: POLYGON,
    fields: [{ name: 'id', type: 'N', length: 5 }],
    records: [{ shape: { parts: [square(x, y, size, true)] }, values: [1] }],
    prj,
  });
  const path = join(dir, `${name}.zip`);
  writeFileSync(path, await makeZip(Object.fromEntries(Object.entries(parts).map(([ext, p]) => [`${name}.${ext}`, readFileSync(p)]))));
  return path;
}

describe('a coordinate system named in words only is identified by its parameters against spatial_ref_sys', () => {
  it.each(texts.map((t) => [t.file, t] as const))('%s', async (_file, t) => {
    const found = await identifySrid(await getPool(), t.wkt);

    expect(found?.srid).toBe(t.code);
  });

  it('says which other systems share the parameters (NAD83 realisations), and finds none for a made-up projection', async () => {
    const massgis = texts.find((t) => t.file.startsWith('massgis'))!;
    const found = await identifySrid(await getPool(), massgis.wkt);
    const nowhere = massgis.wkt.replace('PARAMETER["False_Easting",200000.0]', 'PARAMETER["False_Easting",123456.0]');

    // NAD83(HARN), NAD83(NSRS2007), NAD83(2011) / Massachusetts Mainland: EPSG 2805, 3585, 6491
    expect(found?.alternatives).toEqual(expect.arrayContaining([2805, 3585, 6491]));
    expect(await identifySrid(await getPool(), nowhere)).toBeUndefined();
  });
});

describe('loading files whose coordinates are not longitudes and latitudes', () => {
  it("MassGIS's senate districts (ESRI .prj, State Plane metres) land in 4326 where GDAL puts them, saying as what the .prj was read", async () => {
    const r = await loadFile(await getPool(), join(ACCEPTANCE, 'us-massgis-senate-districts.zip'), { table: 'it_crs.senate', recreate: true });
    const e = await extent('it_crs.senate');

    expect(r.rowsLoaded).toBe(40);
    expect(r.geometry).toMatch(/EPSG:26986\) → EPSG:4326/);
    expect(r.warnings.join('\n')).toMatch(/"NAD_1983_StatePlane_Massachusetts_Mainland_FIPS_2001" is recognised by its parameters as EPSG:26986 \(NAD83 \/ Massachusetts Mainland\)/);
    // ogr2ogr -t_srs EPSG:4326 of the same file: (-73.508240, 41.237962) - (-69.927802, 42.886818)
    expect(e.srid).toBe(4326);
    expect(e.xmin).toBeCloseTo(-73.50824, 4);
    expect(e.ymin).toBeCloseTo(41.237962, 4);
    expect(e.xmax).toBeCloseTo(-69.927802, 4);
    expect(e.ymax).toBeCloseTo(42.886818, 4);
  });

  it('a .prj no system matches fails the load naming the file and the system, and loads with --source-srid', async () => {
    const prj = readFileSync(join(PRJ, 'esri-28992.prj'), 'utf8').replace('RD_New', 'Gemeente_Grid').replace('155000.0', '155123.0');
    const path = await zippedSquare('grid', prj, 121_400, 487_400);

    await expect(loadFile(await getPool(), path, { table: 'it_crs.grid', recreate: true })).rejects.toThrow(
      /grid\.zip: its coordinate system "Gemeente_Grid" is not one PostGIS knows by its parameters, and its coordinates \(x from 121400 to 121500, y from 487400 to 487500\) are not longitudes and latitudes: give the source's EPSG code with --source-srid/,
    );
    const exists = await rows(await getPool(), `SELECT to_regclass('it_crs.grid') AS t`);
    expect(exists).toEqual([{ t: null }]);

    const r = await loadFile(await getPool(), path, { table: 'it_crs.grid', recreate: true, sourceSrid: 28992 });
    expect(r.rowsLoaded).toBe(1);
    expect((await extent('it_crs.grid')).xmin).toBeCloseTo(4.89, 1);
  });

  it('an unidentified .prj over longitudes and latitudes loads as 4326, with a warning saying so', async () => {
    const prj = 'GEOGCS["Some_Local_Lon_Lat",DATUM["D_Somewhere",SPHEROID["Sphere_Of_Nowhere",6371000.0,0.0]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]';
    const path = await zippedSquare('lonlat', prj, 4.8, 52.3, 0.5);

    const r = await loadFile(await getPool(), path, { table: 'it_crs.lonlat', recreate: true });

    expect(r.rowsLoaded).toBe(1);
    expect(r.warnings.join('\n')).toMatch(
      /"Some_Local_Lon_Lat" is not one PostGIS knows by its parameters; its coordinates \(x from 4\.8 to 5\.3, y from 52\.3 to 52\.8\) are all longitudes and latitudes, so they are read as EPSG:4326 — set --source-srid if they are not/,
    );
    expect((await extent('it_crs.lonlat')).xmin).toBeCloseTo(4.8, 6);
  });

  it('a GeoJSON without a crs member whose coordinates are metres fails instead of landing as 4326', async () => {
    const path = join(dir, 'metres.geojson');
    writeFileSync(path, JSON.stringify({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: { id: 1 }, geometry: { type: 'Point', coordinates: [652_000, 6_862_000] } }] }));

    await expect(loadFile(await getPool(), path, { table: 'it_crs.metres', recreate: true })).rejects.toThrow(
      /metres\.geojson: coordinates x from 652000 to 652000, y from 6862000 to 6862000 are not longitudes and latitudes, yet the file names no coordinate system, so they would be read as EPSG:4326: give the source's EPSG code with --source-srid/,
    );
    const r = await loadFile(await getPool(), path, { table: 'it_crs.metres', recreate: true, sourceSrid: 2154 });
    expect(r.rowsLoaded).toBe(1);
  });
});

describe('SRIDs PostGIS does not know, and degrees checked before a transform', () => {
  const metres = () => {
    const path = join(dir, 'metres-l93.geojson');
    writeFileSync(path, JSON.stringify({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: { id: 1 }, geometry: { type: 'Point', coordinates: [652_000, 6_862_000] } }] }));
    return path;
  };

  it('--source-srid or --srid not in spatial_ref_sys fails naming the file and the option, before any table is made', async () => {
    const path = metres();
    const known = await rows(await getPool(), `SELECT count(*)::int AS n FROM spatial_ref_sys WHERE srid = 99999`);

    expect(known).toEqual([{ n: 0 }]);
    await expect(loadFile(await getPool(), path, { table: 'it_crs.unknown_source', recreate: true, sourceSrid: 99999 })).rejects.toThrow(
      /metres-l93\.geojson: --source-srid 99999: no such SRID in PostGIS's spatial_ref_sys/,
    );
    await expect(loadFile(await getPool(), path, { table: 'it_crs.unknown_target', recreate: true, sourceSrid: 2154, srid: 99999 })).rejects.toThrow(/metres-l93\.geojson: --srid 99999: no such SRID/);
    expect(await rows(await getPool(), `SELECT to_regclass('it_crs.unknown_source') AS a, to_regclass('it_crs.unknown_target') AS b`)).toEqual([{ a: null, b: null }]);
  });

  it('metres in a GeoJSON without crs, loaded with --srid 2154, fail naming the file and --source-srid instead of a bare transform error', async () => {
    const path = metres();

    await expect(loadFile(await getPool(), path, { table: 'it_crs.l93', recreate: true, srid: 2154 })).rejects.toThrow(
      /metres-l93\.geojson: coordinates x from 652000 to 652000, y from 6862000 to 6862000 are not longitudes and latitudes, yet the file names no coordinate system, so they would be read as EPSG:4326: give the source's EPSG code with --source-srid/,
    );
    const r = await loadFile(await getPool(), path, { table: 'it_crs.l93', recreate: true, srid: 2154, sourceSrid: 2154 });
    const [point] = await rows<{ x: number; y: number; srid: number }>(await getPool(), `SELECT ST_X(geom) AS x, ST_Y(geom) AS y, ST_SRID(geom) AS srid FROM it_crs.l93`);
    expect(r.rowsLoaded).toBe(1);
    expect(point).toEqual({ x: 652_000, y: 6_862_000, srid: 2154 });
  });
});

describe('repairing invalid polygons keeps a polygon layer polygons', () => {
  it("Vaterstetten's voting districts: the one invalid district (feature 13, as GDAL finds) is repaired to polygons, the point its spike collapses to dropped and said", async () => {
    const r = await loadFile(await getPool(), join(ACCEPTANCE, 'de-vaterstetten-stimmbezirke-2021.geojson'), { table: 'it_crs.bezirke', recreate: true });
    const types = await rows(await getPool(), `SELECT GeometryType(geom) AS type, count(*)::int AS n FROM it_crs.bezirke GROUP BY 1`);
    const column = await rows(await getPool(), `SELECT type, srid FROM geometry_columns WHERE f_table_schema = 'it_crs' AND f_table_name = 'bezirke'`);

    expect(types).toEqual([{ type: 'MULTIPOLYGON', n: 14 }]);
    expect(column).toEqual([{ type: 'MULTIPOLYGON', srid: 4326 }]);
    expect(r.warnings.join('\n')).toMatch(/1 invalid geometry repaired \(ST_MakeValid\); in 1 of them \(feature 13\) the repair also left 1 point — a collapsed spike or sliver — dropped/);
  });

  it('a Polygon layer with one spiked polygon stays geometry(Polygon): the repaired polygon is a Polygon, its spike dropped', async () => {
    const path = join(dir, 'spike.geojson');
    // a 2 × 2 square with a line spike from (1,2) up to (1,3) and back
    const spike = {
      type: 'Polygon',
      coordinates: [
        [
          [0, 0],
          [2, 0],
          [2, 2],
          [1, 2],
          [1, 3],
          [1, 2],
          [0, 2],
          [0, 0],
        ],
      ],
    };
    const fine = {
      type: 'Polygon',
      coordinates: [
        [
          [5, 5],
          [6, 5],
          [6, 6],
          [5, 6],
          [5, 5],
        ],
      ],
    };
    writeFileSync(path, JSON.stringify({ type: 'FeatureCollection', features: [fine, spike].map((geometry, i) => ({ type: 'Feature', properties: { id: i + 1 }, geometry })) }));

    const r = await loadFile(await getPool(), path, { table: 'it_crs.spike', recreate: true });
    const got = await rows(await getPool(), `SELECT id, GeometryType(geom) AS type, ST_Area(geom) AS area FROM it_crs.spike ORDER BY id`);
    const column = await rows(await getPool(), `SELECT type, srid FROM geometry_columns WHERE f_table_schema = 'it_crs' AND f_table_name = 'spike'`);

    expect(column).toEqual([{ type: 'POLYGON', srid: 4326 }]);
    expect(got).toEqual([
      { id: 1, type: 'POLYGON', area: 1 },
      { id: 2, type: 'POLYGON', area: 4 },
    ]);
    expect(r.warnings.join('\n')).toMatch(/1 invalid geometry repaired .*\(feature 2\).*1 line/);
  });

  it('a polygon that collapses whole to a line loads with no geometry, said; a valid layer gets no repair warning', async () => {
    const path = join(dir, 'flat.geojson');
    const flat = {
      type: 'Polygon',
      coordinates: [
        [
          [0, 0],
          [1, 1],
          [2, 2],
          [0, 0],
        ],
      ],
    };
    const fine = {
      type: 'Polygon',
      coordinates: [
        [
          [0, 0],
          [1, 0],
          [1, 1],
          [0, 1],
          [0, 0],
        ],
      ],
    };
    writeFileSync(path, JSON.stringify({ type: 'FeatureCollection', features: [fine, flat].map((geometry, i) => ({ type: 'Feature', properties: { id: i + 1 }, geometry })) }));
    const good = join(dir, 'good.geojson');
    writeFileSync(good, JSON.stringify({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: { id: 1 }, geometry: fine }] }));

    const r = await loadFile(await getPool(), path, { table: 'it_crs.flat', recreate: true });
    const got = await rows(await getPool(), `SELECT id, GeometryType(geom) AS type FROM it_crs.flat ORDER BY id`);
    const clean = await loadFile(await getPool(), good, { table: 'it_crs.good', recreate: true });

    expect(got).toEqual([
      { id: 1, type: 'POLYGON' },
      { id: 2, type: null },
    ]);
    expect(r.warnings.join('\n')).toMatch(/1 invalid geometry repaired .*feature 2.*1 had nothing of their dimension left: their geometry is NULL/);
    expect(clean.warnings.join('\n')).not.toMatch(/repaired/);
  });
});

describe('the same in the pipeline (stage, then clean)', () => {
  const definition: PipelineInput = {
    project: 'it_geocrs',
    suppliers: [{ name: 'state' }],
    datasets: [
      { name: 'senate', source: { type: 'upload', supplier: 'state' } },
      { name: 'bezirke', source: { type: 'upload', supplier: 'state' } },
      { name: 'grid', source: { type: 'upload', supplier: 'state' } },
      { name: 'metres', source: { type: 'upload', supplier: 'state' } },
      { name: 'lambert', source: { type: 'upload', supplier: 'state' }, geometry: { srid: 2154 } },
      { name: 'nowhere', source: { type: 'upload', supplier: 'state' }, read: { srid: 99999 } },
    ],
  };

  async function deliver(dataset: string, file: string, body: Buffer) {
    const { pipeline, pool } = await freshProject(definition);
    const bucket = await freshBucket('it-geocrs');
    const handed: CleanMessage[] = [];
    const ref = await put(bucket, `incoming/state/${dataset}/${file}`, body);
    await stageObject({ pool, s3: s3Client(), pipeline, notifyClean: async (m) => void handed.push(m) }, ref);
    const cleaned = [];
    for (const m of handed) cleaned.push(await cleanLoad({ pool, pipeline }, m.loadId));
    const [load] = await rows<{ warnings: string[] }>(
      pool,
      `SELECT detected->'warnings' AS warnings FROM etl.loads WHERE project = 'it_geocrs' AND dataset = $1 AND staging_table IS NOT NULL ORDER BY id DESC LIMIT 1`,
      [dataset],
    );
    return { cleaned, warnings: (load?.warnings ?? []).join('\n') };
  }

  it("identifies MassGIS's ESRI .prj and lands the districts where GDAL puts them; says so in the load's warnings", async () => {
    const { cleaned, warnings } = await deliver('senate', 'senate.zip', readFileSync(join(ACCEPTANCE, 'us-massgis-senate-districts.zip')));
    const e = await extent('it_geocrs.senate');

    expect(cleaned).toMatchObject([{ status: 'loaded', rowsLoaded: 40 }]);
    expect(e.srid).toBe(4326);
    expect(e.xmin).toBeCloseTo(-73.50824, 4);
    expect(e.ymax).toBeCloseTo(42.886818, 4);
    expect(warnings).toMatch(/recognised by its parameters as EPSG:26986/);
  });

  it('keeps repaired districts polygons and notes the dropped point', async () => {
    const { cleaned, warnings } = await deliver('bezirke', 'bezirke.geojson', readFileSync(join(ACCEPTANCE, 'de-vaterstetten-stimmbezirke-2021.geojson')));
    const types = await rows(await getPool(), `SELECT DISTINCT GeometryType(geom) AS type FROM it_geocrs.bezirke`);

    expect(cleaned).toMatchObject([{ status: 'loaded', rowsLoaded: 14 }]);
    expect(types).toEqual([{ type: 'MULTIPOLYGON' }]);
    expect(warnings).toMatch(/1 invalid geometry repaired .*\(feature 13\) the repair also left 1 point/);
  });

  it('fails a load whose .prj no system matches, naming the system and read.srid', async () => {
    const prj = readFileSync(join(PRJ, 'esri-28992.prj'), 'utf8').replace('RD_New', 'Gemeente_Grid').replace('155000.0', '155123.0');
    const zip = await zippedSquare('pgrid', prj, 121_400, 487_400);

    const { cleaned } = await deliver('grid', 'grid.zip', readFileSync(zip));

    expect(cleaned).toMatchObject([{ status: 'failed' }]);
    expect((cleaned[0] as { error?: string }).error).toMatch(/"Gemeente_Grid" is not one PostGIS knows by its parameters.*read\.srid \(dataset grid\)/);
  });

  it('fails a GeoJSON without crs whose coordinates are metres, instead of storing them as degrees', async () => {
    const body = Buffer.from(JSON.stringify({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: { id: 1 }, geometry: { type: 'Point', coordinates: [652_000, 6_862_000] } }] }));

    const { cleaned } = await deliver('metres', 'metres.geojson', body);
    const table = await rows(await getPool(), `SELECT count(*)::int AS n FROM it_geocrs.metres`).catch(() => [{ n: 0 }]);

    expect(cleaned).toMatchObject([{ status: 'failed' }]);
    expect((cleaned[0] as { error?: string }).error).toMatch(
      /metres\.geojson: coordinates x from 652000 to 652000, y from 6862000 to 6862000 are not longitudes and latitudes, yet they would be read as EPSG:4326: give the source's EPSG code with read\.srid \(dataset metres\)/,
    );
    expect(table).toEqual([{ n: 0 }]);
  });

  it('names the first feature whose coordinates are not degrees, in the message and as the ledger line', async () => {
    const point = (id: number, coordinates: number[]) => ({ type: 'Feature', properties: { id }, geometry: { type: 'Point', coordinates } });
    const body = Buffer.from(JSON.stringify({ type: 'FeatureCollection', features: [point(1, [4.9, 52.37]), point(2, [4.91, 52.38]), point(3, [500, 200]), point(4, [600, 52])] }));

    const { cleaned } = await deliver('metres', 'mixed.geojson', body);
    const [load] = await rows<{ error_line: number }>(await getPool(), `SELECT error_line::int FROM etl.loads WHERE project = 'it_geocrs' AND object_key LIKE '%/mixed.geojson'`);

    expect(cleaned).toMatchObject([{ status: 'failed' }]);
    expect((cleaned[0] as { error?: string }).error).toMatch(/mixed\.geojson: coordinates x from 4\.9 to 600, y from 52 to 200 are not longitudes and latitudes, .* \(the first beyond them: feature 3\)$/);
    expect(load).toEqual({ error_line: 3 });
  });

  it('checks degrees before the transform: metres without crs for a dataset stored in 2154 fail naming the file and read.srid', async () => {
    const body = Buffer.from(JSON.stringify({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: { id: 1 }, geometry: { type: 'Point', coordinates: [652_000, 6_862_000] } }] }));

    const { cleaned } = await deliver('lambert', 'lambert.geojson', body);

    expect(cleaned).toMatchObject([{ status: 'failed' }]);
    expect((cleaned[0] as { error?: string }).error).toMatch(
      /lambert\.geojson: coordinates x from 652000 to 652000, y from 6862000 to 6862000 are not longitudes and latitudes, yet they would be read as EPSG:4326: give the source's EPSG code with read\.srid \(dataset lambert\)/,
    );
  });

  it('fails a dataset whose read.srid PostGIS does not know, naming the file and the option', async () => {
    const body = Buffer.from(JSON.stringify({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: { id: 1 }, geometry: { type: 'Point', coordinates: [652_000, 6_862_000] } }] }));

    const { cleaned } = await deliver('nowhere', 'nowhere.geojson', body);

    expect(cleaned).toMatchObject([{ status: 'failed' }]);
    expect((cleaned[0] as { error?: string }).error).toMatch(/nowhere\.geojson: read\.srid \(dataset nowhere\) 99999: no such SRID in PostGIS's spatial_ref_sys/);
  });
});

describe("a shapefile's declared field types", () => {
  it('ABS local government areas: codes in DBF character fields (19499) are text in the profile, as in the load', async () => {
    const path = join(ACCEPTANCE, 'au-abs-lga-2013.zip');
    const opened = await openSource({ name: path, path, open: async () => createReadStream(path) }, {});
    const entry = opened.entries[0]!;
    const profile = entry.kind === 'table' ? await profileTable(entry.table, { file: entry.name }) : undefined;
    await opened.dispose();
    const r = await loadFile(await getPool(), path, { table: 'it_crs.lga', recreate: true });
    const type = (name: string) => ({ profile: profile?.columns.find((c) => c.name === name)?.type, load: r.columns.find((c) => c.from === name)?.type });

    // the DBF declares LGA_CODE13 and STE_CODE11 as C (character) fields; AREA_SQKM as N with decimals
    expect(type('LGA_CODE13')).toEqual({ profile: 'string', load: 'text' });
    expect(type('STE_CODE11')).toEqual({ profile: 'string', load: 'text' });
    expect(type('AREA_SQKM')).toEqual({ profile: 'number', load: 'numeric' });
  });
});
