import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import initSqlJs from 'sql.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgisClient } from '../helpers/postgis.ts';
import { readGeoPackage } from '../../functions/read/gpkg.ts';
import { profileTable } from '../../functions/profile/profile.ts';
import { gpkgBlob, isoWkb, writeGeoPackage, type GpkgLayer } from '../helpers/gpkg-writer.ts';
import { readError, rowsOf } from '../helpers/read-table.ts';

let dir: string;
let db: pg.Client;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'read-gpkg-'));
  db = await postgisClient();
});

afterAll(async () => {
  await db?.end();
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
async function geoPackage(layers: GpkgLayer[], srs?: Parameters<typeof writeGeoPackage>[1]['srs']): Promise<string> {
  const path = join(dir, `g${++seq}.gpkg`);
  await writeGeoPackage(path, { layers, srs });
  return path;
}

async function asText(hex: string | null): Promise<string | null> {
  const { rows } = await db.query<{ wkt: string | null }>('SELECT ST_AsText($1::geometry) AS wkt', [hex]);
  return rows[0]!.wkt;
}

const square = [
  [0, 0],
  [10, 0],
  [10, 10],
  [0, 10],
  [0, 0],
];
const hole = [
  [2, 2],
  [2, 4],
  [4, 4],
  [4, 2],
  [2, 2],
];

const parks: GpkgLayer = {
  table: 'parks',
  columns: [
    { name: 'fid', type: 'INTEGER PRIMARY KEY AUTOINCREMENT' },
    { name: 'geom', type: 'MULTIPOLYGON' },
    { name: 'name', type: 'TEXT' },
    { name: 'area', type: 'REAL' },
    { name: 'open', type: 'BOOLEAN' },
  ],
  geometry: { column: 'geom', type: 'MULTIPOLYGON', srsId: 2154 },
  rows: [
    [1, gpkgBlob(isoWkb('MultiPolygon', [[square, hole]]), { srsId: 2154, envelope: [0, 10, 0, 10] }), 'Montsouris', 15.5, 1],
    [2, null, 'Sans forme', null, 0],
  ],
};

const lambert93 = {
  srsId: 2154,
  name: 'RGF93 v1 / Lambert-93',
  organization: 'EPSG',
  coordsysId: 2154,
  definition: 'PROJCS["RGF93 v1 / Lambert-93",AUTHORITY["EPSG","2154"]]',
};

describe('readGeoPackage', () => {
  it('gives one table per feature and attribute layer, named after the file and the layer', async () => {
    const path = await geoPackage(
      [
        parks,
        {
          table: 'visits',
          columns: [
            { name: 'park', type: 'INTEGER' },
            { name: 'day', type: 'DATE' },
          ],
          rows: [[1, '2024-05-01']],
        },
        { table: 'tiles', dataType: 'tiles', columns: [{ name: 'id', type: 'INTEGER' }], rows: [] },
      ],
      [lambert93],
    );

    const tables = await readGeoPackage(path, 'incoming/acme/parks.gpkg');

    expect(tables.map((t) => t.name)).toEqual(['incoming/acme/parks.gpkg#parks', 'incoming/acme/parks.gpkg#visits']);
    expect(tables[0]).toMatchObject({
      format: 'gpkg',
      unit: 'feature',
      columns: ['fid', 'geom', 'name', 'area', 'open'],
      geometry: { column: 'geom', encoding: 'wkb', srid: 2154, type: 'MultiPolygon' },
    });
    expect(tables[1]!.geometry).toBeUndefined();
    expect((await rowsOf(tables[1]!)).map((r) => r.values)).toEqual([['1', '2024-05-01']]);
  });

  it('reads rows in order with their feature positions, geometry as WKB PostGIS reads, booleans as true/false', async () => {
    const [table] = await readGeoPackage(await geoPackage([parks], [lambert93]), 'parks.gpkg');

    const rows = await rowsOf(table!);

    expect(rows.map((r) => r.position)).toEqual([1, 2]);
    expect(rows.map((r) => [r.values[0], r.values[2], r.values[3], r.values[4]])).toEqual([
      ['1', 'Montsouris', '15.5', 'true'],
      ['2', 'Sans forme', null, 'false'],
    ]);
    expect(await asText(rows[0]!.values[1]!)).toBe('MULTIPOLYGON(((0 0,10 0,10 10,0 10,0 0),(2 2,2 4,4 4,4 2,2 2)))');
    expect(rows[1]!.values[1]).toBeNull();
  });

  it('hands over Z, M and ZM geometries (ISO WKB codes) in a form PostGIS reads, whatever the envelope', async () => {
    const layer: GpkgLayer = {
      table: 'shapes',
      columns: [
        { name: 'id', type: 'INTEGER PRIMARY KEY' },
        { name: 'shape', type: 'GEOMETRY' },
      ],
      geometry: { column: 'shape', type: 'GEOMETRY', srsId: 4326, z: 2, m: 2 },
      rows: [
        [1, gpkgBlob(isoWkb('Polygon', [square.map(([x, y]) => [x!, y!, 5])], 'xyz'), { envelope: [0, 10, 0, 10, 5, 5] })],
        [2, gpkgBlob(isoWkb('Point', [1, 2, 3], 'xym'), { envelope: [1, 1, 2, 2, 3, 3], envelopeIndicator: 3 })],
        [
          3,
          gpkgBlob(
            isoWkb(
              'LineString',
              [
                [0, 0, 1, 2],
                [1, 1, 3, 4],
              ],
              'xyzm',
            ),
            { envelope: [0, 1, 0, 1, 1, 3, 2, 4] },
          ),
        ],
        [4, gpkgBlob(isoWkb('Point', [NaN, NaN]), { empty: true })],
      ],
    };
    const [table] = await readGeoPackage(await geoPackage([layer]), 'shapes.gpkg');

    const rows = await rowsOf(table!);
    const wkt: (string | null)[] = [];
    for (const r of rows) wkt.push(await asText(r.values[1]!));

    expect(wkt).toEqual(['POLYGON Z ((0 0 5,10 0 5,10 10 5,0 10 5,0 0 5))', 'POINT M (1 2 3)', 'LINESTRING ZM (0 0 1 2,1 1 3 4)', 'POINT EMPTY']);
    expect(table!.geometry).toMatchObject({ srid: 4326, type: 'Geometry' });
  });

  it('keeps 64-bit integers exact and shows other blobs as bytea hex', async () => {
    const layer: GpkgLayer = {
      table: 'codes',
      columns: [
        { name: 'big', type: 'INTEGER' },
        { name: 'raw', type: 'BLOB' },
      ],
      rows: [[9007199254740993n as unknown as number, new Uint8Array([0xde, 0xad])]],
    };
    const [table] = await readGeoPackage(await geoPackage([layer]), 'codes.gpkg');

    expect((await rowsOf(table!))[0]!.values).toEqual(['9007199254740993', '\\xdead']);
  });

  it('declares the types its columns declare where every stored value fits them, once the rows are read', async () => {
    const layer: GpkgLayer = {
      table: 'countries',
      columns: [
        { name: 'fid', type: 'INTEGER' },
        { name: 'name', type: 'TEXT(40)' },
        { name: 'area', type: 'REAL' }, // whole numbers, still numbers (as ogr2ogr keeps REAL)
        { name: 'pop', type: 'INTEGER' },
        { name: 'share', type: 'REAL' }, // SQLite stores text in a REAL column: not a number column then
        { name: 'open', type: 'BOOLEAN' },
        { name: 'since', type: 'DATE' },
        { name: 'raw', type: 'BLOB' },
      ],
      rows: [
        [1, 'Andorra', 468, 77000, 0.5, 1, '1993-07-28', null],
        [2, 'Vatican', 1, 12345678901, 'n/a', 0, null, null],
      ],
    };
    const [table] = await readGeoPackage(await geoPackage([layer]), 'countries.gpkg');

    expect(table!.declaredTypes!()).toEqual([undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined]);
    await rowsOf(table!);
    expect(table!.declaredTypes!()).toEqual(['integer', 'text', 'double', 'bigint', undefined, 'boolean', 'date', undefined]);
    // the profile says the types `civic-etl load` keeps: declared where declared, else inferred
    const profile = await profileTable(table!, { file: 'countries.gpkg' });
    expect(profile.columns.map((c) => [c.name, c.clean.type, c.clean.declared ?? false])).toEqual([
      ['fid', 'integer', true],
      ['name', 'text', true],
      ['area', 'double', true],
      ['pop', 'bigint', true],
      ['share', 'numeric', false], // 0.5 and n/a: a number, n/a missing
      ['open', 'boolean', true],
      ['since', 'date', true],
      ['raw', 'text', false],
    ]);
  });

  it('reads only the layer asked for, and lists the layers when it does not exist', async () => {
    const path = await geoPackage([parks, { table: 'visits', columns: [{ name: 'n', type: 'INTEGER' }], rows: [] }], [lambert93]);

    const only = await readGeoPackage(path, 'parks.gpkg', { layer: 'visits' });
    const error = await readError(readGeoPackage(path, 'parks.gpkg', { layer: 'lakes' }));

    expect(only.map((t) => t.name)).toEqual(['parks.gpkg#visits']);
    expect(error.message).toBe('parks.gpkg: there is no layer "lakes"; the layers are "parks", "visits"');
  });

  it('takes the EPSG code from a non-EPSG system whose WKT carries one, and warns about a system it cannot name', async () => {
    const layer = (table: string, srsId: number): GpkgLayer => ({ ...parks, table, geometry: { ...parks.geometry!, srsId }, rows: [] });
    const path = await geoPackage(
      [layer('rd', 100), layer('local', 101)],
      [
        { srsId: 100, name: 'rd', organization: 'NONE', coordsysId: 100, definition: 'PROJCS["Amersfoort / RD New",AUTHORITY["EPSG","28992"]]' },
        { srsId: 101, name: 'local', organization: 'city', coordsysId: 7, definition: 'LOCAL_CS["Site grid"]' },
      ],
    );

    const [rd, local] = await readGeoPackage(path, 'city.gpkg');

    expect(rd!.geometry?.srid).toBe(28992);
    expect(local!.geometry?.srid).toBeUndefined();
    // the definition in words goes on to the load, which identifies it by its parameters or fails
    expect(local!.geometry?.crs).toEqual({ wkt: 'LOCAL_CS["Site grid"]', name: 'Site grid' });
  });

  it('declares the types of its columns once every value read keeps them; a REAL of whole numbers stays a number', async () => {
    const path = await geoPackage([
      {
        table: 'districts',
        dataType: 'attributes',
        columns: [
          { name: 'code', type: 'TEXT' },
          { name: 'area', type: 'REAL' },
          { name: 'pop', type: 'INTEGER' },
          { name: 'big', type: 'INTEGER' },
          { name: 'mixed', type: 'REAL' },
          { name: 'day', type: 'DATE' },
          { name: 'at', type: 'DATETIME' },
          { name: 'ok', type: 'BOOLEAN' },
          { name: 'raw', type: 'BLOB' },
        ],
        rows: [
          ['01', 244820, 12, 12_345_678_901, 1.5, '2024-05-01', '2024-05-01T10:00:00.000Z', 1, null],
          ['02', 1000.5, null, 1, 'n/a', null, null, 0, null],
        ],
      },
    ]);
    const [table] = await readGeoPackage(path, 'd.gpkg');

    expect(table!.declaredTypes?.()).toEqual([undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined]); // nothing read yet
    const rows = await rowsOf(table!);
    expect(rows[0]!.values.slice(0, 3)).toEqual(['01', '244820', '12']);
    // a REAL column that SQLite let hold text ('n/a') declares nothing; nor does a BLOB
    expect(table!.declaredTypes?.()).toEqual(['text', 'double', 'integer', 'bigint', undefined, 'date', 'timestamptz', 'boolean', undefined]);
  });

  it('refuses a file that is not SQLite, an SQLite file that is not a GeoPackage, and a file over the size limit', async () => {
    const text = join(dir, 'fake.gpkg');
    writeFileSync(text, 'this is not a database');
    const sqlite = join(dir, 'plain.sqlite');
    const SQL = await initSqlJs();
    const plain = new SQL.Database();
    plain.run('CREATE TABLE t (a INTEGER)');
    writeFileSync(sqlite, plain.export());
    plain.close();
    const real = await geoPackage([parks], [lambert93]);

    const errors = [
      await readError(readGeoPackage(text, 'up/fake.gpkg')),
      await readError(readGeoPackage(sqlite, 'up/plain.sqlite')),
      await readError(readGeoPackage(real, 'up/big.gpkg', { maxBytes: 1024 })),
    ];

    expect(errors.map((e) => e.message)).toEqual([
      'up/fake.gpkg: not a GeoPackage: a GeoPackage is an SQLite database, and this file (22 bytes) does not start like one',
      'up/plain.sqlite: an SQLite database but not a GeoPackage: it has no gpkg_contents table',
      expect.stringMatching(/^up\/big\.gpkg: the GeoPackage is [\d.]+ MiB, more than the 0\.0 MiB this reader loads into memory/),
    ]);
  });

  it('names the layer and feature whose geometry is not a geometry blob', async () => {
    const layer: GpkgLayer = {
      ...parks,
      rows: [
        [1, null, 'ok', 1, 1],
        [2, new Uint8Array([9, 9, 9, 9, 9, 9]), 'bad', 1, 1],
      ],
    };
    const [table] = await readGeoPackage(await geoPackage([layer], [lambert93]), 'parks.gpkg');

    const error = await readError(rowsOf(table!));

    expect(error.message).toBe('parks.gpkg#parks: feature 2: the geometry is neither a GeoPackage geometry (no "GP" header) nor WKB');
    expect(error.position).toMatchObject({ file: 'parks.gpkg#parks', line: 2, column: 'geom' });
  });
});
