/**
 * readShapefile's geometries as PostGIS reads them: each test cross-checks the WKB the reader hands
 * over against PostGIS's own reading (ST_AsText, ST_IsValid), so it needs the database. The reader's
 * other behaviour (attributes, encodings, coordinate systems, bad input) is in test/unit/read-shapefile.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgisClient } from '../helpers/postgis.ts';
import { readShapefile } from '../../functions/read/shapefile.ts';
import type { ReadRow } from '../../functions/read/types.ts';
import { MULTIPATCH, MULTIPOINT, POINT, POINTZ, POLYGON, POLYGONM, POLYGONZ, POLYLINE, square, squareWkt, writeShapefile, type TestShapefile } from '../helpers/shapefile-writer.ts';
import { rowsOf } from '../helpers/read-table.ts';

let dir: string;
let db: pg.Client;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'read-shp-geo-'));
  db = await postgisClient();
});

afterAll(async () => {
  await db?.end();
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
function shapefile(spec: TestShapefile) {
  return writeShapefile(dir, `f${++seq}`, spec);
}

/** What PostGIS makes of each geometry value: WKT and validity. */
async function postgis(hex: (string | null)[]): Promise<{ wkt: string | null; valid: boolean | null }[]> {
  const { rows } = await db.query<{ wkt: string | null; valid: boolean | null }>(
    'SELECT ST_AsText(g::geometry) AS wkt, ST_IsValid(g::geometry) AS valid FROM unnest($1::text[]) WITH ORDINALITY AS u(g, n) ORDER BY n',
    [hex],
  );
  return rows;
}

const geometryOf = (rows: ReadRow[]) => rows.map((r) => r.values.at(-1) ?? null);

describe('readShapefile geometry', () => {
  it('writes points, multipoints and lines as hex WKB that PostGIS reads as the same shapes', async () => {
    const points = shapefile({ shapeType: POINT, records: [{ shape: { parts: [[[2.35, 48.85]]] } }, { shape: null }] });
    const multi = shapefile({
      shapeType: MULTIPOINT,
      records: [
        {
          shape: {
            parts: [
              [
                [1, 2],
                [3, 4],
              ],
            ],
          },
        },
      ],
    });
    const lines = shapefile({
      shapeType: POLYLINE,
      records: [
        {
          shape: {
            parts: [
              [
                [0, 0],
                [1, 1],
                [2, 0],
              ],
            ],
          },
        },
        {
          shape: {
            parts: [
              [
                [0, 0],
                [1, 1],
              ],
              [
                [5, 5],
                [6, 6],
                [7, 5],
              ],
            ],
          },
        },
      ],
    });

    const got = [];
    for (const p of [points, multi, lines]) got.push(await postgis(geometryOf(await rowsOf(await readShapefile(p, 'x.shp')))));

    expect(got.flat().map((g) => g.wkt)).toEqual(['POINT(2.35 48.85)', null, 'MULTIPOINT((1 2),(3 4))', 'LINESTRING(0 0,1 1,2 0)', 'MULTILINESTRING((0 0,1 1),(5 5,6 6,7 5))']);
  });

  it('gives a polygon its hole, as a valid polygon', async () => {
    const parts = shapefile({ shapeType: POLYGON, records: [{ shape: { parts: [square(0, 0, 10, true), square(2, 2, 2, false)] } }] });

    const [g] = await postgis(geometryOf(await rowsOf(await readShapefile(parts, 'parks.shp'))));

    expect(g).toEqual({ wkt: `POLYGON(${squareWkt(0, 0, 10, true)},${squareWkt(2, 2, 2, false)})`, valid: true });
  });

  it('makes a multipolygon of several outer rings and puts each hole in the ring that contains it, whatever the order', async () => {
    // holes listed after both outers, the second outer's hole first; an island inside a hole of the third
    const parts = shapefile({
      shapeType: POLYGON,
      records: [
        {
          shape: {
            parts: [square(0, 0, 10, true), square(20, 0, 10, true), square(22, 2, 2, false), square(2, 2, 6, false), square(4, 4, 2, true)],
          },
        },
      ],
    });

    const [g] = await postgis(geometryOf(await rowsOf(await readShapefile(parts, 'parks.shp'))));

    expect(g!.valid).toBe(true);
    expect(g!.wkt).toBe(`MULTIPOLYGON((${squareWkt(0, 0, 10, true)},${squareWkt(2, 2, 6, false)}),` + `(${squareWkt(20, 0, 10, true)},${squareWkt(22, 2, 2, false)}),` + `(${squareWkt(4, 4, 2, true)}))`);
  });

  it('puts a hole in the outer ring that contains it, not in another whose bounding box also does', async () => {
    // an L-shaped outer ring whose box covers a second outer ring and that ring's hole
    const ell = [
      [0, 0],
      [10, 0],
      [10, 2],
      [2, 2],
      [2, 10],
      [0, 10],
      [0, 0],
    ].reverse();
    const parts = shapefile({ shapeType: POLYGON, records: [{ shape: { parts: [ell, square(5, 5, 4, true), square(6, 6, 1, false)] } }] });

    const [g] = await postgis(geometryOf(await rowsOf(await readShapefile(parts, 'ell.shp'))));

    expect(g!.valid).toBe(true);
    expect(g!.wkt).toBe(`MULTIPOLYGON(((0 0,0 10,2 10,2 2,10 2,10 0,0 0)),(${squareWkt(5, 5, 4, true)},${squareWkt(6, 6, 1, false)}))`);
  });

  it('keeps Z and drops M', async () => {
    const z = shapefile({
      shapeType: POLYGONZ,
      records: [{ shape: { parts: [square(0, 0, 1, true).map(([x, y]) => [x!, y!, 7, 99])] } }],
    });
    const pz = shapefile({ shapeType: POINTZ, records: [{ shape: { parts: [[[1, 2, 3, 4]]] } }] });
    const m = shapefile({ shapeType: POLYGONM, records: [{ shape: { parts: [square(0, 0, 1, true).map(([x, y]) => [x!, y!, 99])] } }] });

    const tables = await Promise.all([z, pz, m].map((p) => readShapefile(p, 'z.shp')));
    const got = [];
    for (const t of tables) got.push((await postgis(geometryOf(await rowsOf(t))))[0]!.wkt);

    expect(got).toEqual(['POLYGON Z ((0 0 7,0 1 7,1 1 7,1 0 7,0 0 7))', 'POINT Z (1 2 3)', 'POLYGON((0 0,0 1,1 1,1 0,0 0))']);
    expect(tables.map((t) => t.geometry?.type)).toEqual(['MultiPolygonZ', 'PointZ', 'MultiPolygon']);
  });

  it('turns a multipatch into a 3D multipolygon: a triangle per strip step, rings with their holes', async () => {
    const at = (z: number) => (v: number[]) => [v[0]!, v[1]!, z];
    const parts = shapefile({
      shapeType: MULTIPATCH,
      records: [
        {
          shape: {
            parts: [
              [
                [0, 0, 1],
                [1, 0, 1],
                [0, 1, 2],
                [1, 1, 2],
              ],
              square(10, 0, 10, true).map(at(5)),
              square(12, 2, 2, false).map(at(5)),
            ],
            partTypes: [0, 2, 3],
          },
        },
      ],
    });
    const table = await readShapefile(parts, 'roof.shp');

    const [g] = await postgis(geometryOf(await rowsOf(table)));

    expect(table.geometry?.type).toBe('MultiPolygonZ');
    expect(g!.wkt).toBe('MULTIPOLYGON Z (((0 0 1,1 0 1,0 1 2,0 0 1)),((1 0 1,0 1 2,1 1 2,1 0 1)),' + '((10 0 5,10 10 5,20 10 5,20 0 5,10 0 5),(12 2 5,14 2 5,14 4 5,12 4 5,12 2 5)))');
  });

  it('stages a shape with a NaN or infinite coordinate (2D, Z or multipoint) as a text PostGIS refuses, saying why', async () => {
    const bad = (x: number, y: number) => square(x, y, 10, true);
    const parts = shapefile({ shapeType: POLYGON, records: [{ shape: { parts: [bad(0, 0)] } }, { shape: { parts: [bad(0, 0).map(([x, y], i) => [i === 2 ? NaN : x, y] as [number, number])] } }] });
    const z = shapefile({ shapeType: POLYGONZ, records: [{ shape: { parts: [bad(0, 0).map(([x, y], i) => [x, y, i === 1 ? -Infinity : 3] as [number, number, number])] } }] });
    const multi = shapefile({ shapeType: MULTIPOINT, records: [{ shape: { parts: [[[1, 2]], [[Infinity, 2]]] } }] });

    const values = [...(await rowsOf(await readShapefile(parts, 'p.shp'))), ...(await rowsOf(await readShapefile(z, 'z.shp'))), ...(await rowsOf(await readShapefile(multi, 'm.shp')))].map((r) =>
      r.values.at(-1),
    );

    expect(values.slice(1)).toEqual(Array(3).fill('invalid shape (a coordinate is NaN or infinite)'));
    expect(values[0]).toMatch(/^01/); // the finite square: WKB
  });

  it('closes an unclosed ring and drops a ring too short to be one, with a warning naming the feature', async () => {
    const open = square(0, 0, 10, true).slice(0, 4);
    const parts = shapefile({
      shapeType: POLYGON,
      records: [
        { shape: { parts: [open] } },
        {
          shape: {
            parts: [
              square(0, 0, 10, true),
              [
                [1, 1],
                [2, 2],
                [1, 1],
              ],
            ],
          },
        },
      ],
    });
    const table = await readShapefile(parts, 'parks.shp');

    const got = await postgis(geometryOf(await rowsOf(table)));

    expect(got.map((g) => g.wkt)).toEqual([`POLYGON(${squareWkt(0, 0, 10, true)})`, `POLYGON(${squareWkt(0, 0, 10, true)})`]);
    expect(table.warnings).toContain('parks.shp: 1 polygon ring with fewer than 4 points dropped (first in feature 2)');
  });

  it('keeps a polygon written counter-clockwise (as a hole would be) as a polygon, with a warning', async () => {
    const parts = shapefile({ shapeType: POLYGON, records: [{ shape: { parts: [square(0, 0, 10, false)] } }] });
    const table = await readShapefile(parts, 'ccw.shp');

    const [g] = await postgis(geometryOf(await rowsOf(table)));

    expect(g).toEqual({ wkt: `POLYGON(${squareWkt(0, 0, 10, false)})`, valid: true });
    expect(table.warnings).toEqual(['ccw.shp: 1 ring oriented as a hole but inside no outer ring kept as polygons of their own (first in feature 1)']);
  });

  it('reads a record larger than its 1 MiB read buffer, and many records across buffer boundaries', async () => {
    const big = Array.from({ length: 100_000 }, (_, i) => {
      const a = (-2 * Math.PI * i) / 100_000;
      return [Math.cos(a), Math.sin(a)];
    });
    big.push(big[0]!);
    const small = Array.from({ length: 6000 }, (_, i) => ({ shape: { parts: [square(i, 0, 1, true)] } }));
    const parts = shapefile({ shapeType: POLYGON, records: [...small.slice(0, 3000), { shape: { parts: [big] } }, ...small.slice(3000)] });

    const rows = await rowsOf(await readShapefile(parts, 'big.shp'));

    expect(rows).toHaveLength(6001);
    const [huge] = await db.query('SELECT ST_NPoints($1::geometry) AS n, ST_IsValid($1::geometry) AS valid', [rows[3000]!.values.at(-1)]).then((r) => r.rows);
    expect(huge).toEqual({ n: 100_001, valid: true });
    const last = await postgis([rows[6000]!.values.at(-1)!]);
    expect(last[0]!.wkt).toBe(`POLYGON(${squareWkt(5999, 0, 1, true)})`);
    expect(rows.map((r) => r.position)).toEqual(Array.from({ length: 6001 }, (_, i) => i + 1));
  });
});
