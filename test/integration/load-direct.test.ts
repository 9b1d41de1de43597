/**
 * `civic-etl load` of a shapefile into a new table straight from the file (local/load-direct.ts):
 * what a user sees must be what the staged load gives them (CIVIC_ETL_LOAD_DIRECT=0) — the same
 * rows, types, geometries, repairs and warnings — and a load that cannot be done so gives way to
 * the staged one instead of losing a row.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPool } from '../../functions/common/db.ts';
import { BinaryRows } from '../../local/load-direct.ts';
import { loadFile, type LoadFileOptions } from '../../local/load-file.ts';
import { POLYGON, PRJ_WGS84_ESRI, square, writeShapefile, type TestRecord, type TestShapefile } from '../helpers/shapefile-writer.ts';
import { makeZip } from '../helpers/zip.ts';
import { rows } from './support.ts';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'load-direct-test-'));
  await (await getPool()).query('DROP SCHEMA IF EXISTS it_direct CASCADE');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function zipped(base: string, spec: TestShapefile): Promise<string> {
  const parts = writeShapefile(dir, base, spec);
  const zip = join(dir, `${base}.zip`);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(zip, await makeZip(Object.fromEntries(Object.entries(parts).map(([ext, p]) => [`${base}.${ext}`, readFileSync(p)]))));
  return zip;
}

/** Loads `file` into `table` once straight and once staged; the phases each run went through. */
async function bothWays(file: string, table: string, opts: Partial<LoadFileOptions> = {}) {
  const pool = await getPool();
  const directPhases: string[] = [];
  const stagedPhases: string[] = [];
  const direct = await loadFile(pool, file, { table: `it_direct.${table}_direct`, recreate: true, ...opts, onPhase: (p) => directPhases.push(p) });
  process.env.CIVIC_ETL_LOAD_DIRECT = '0';
  const staged = await loadFile(pool, file, { table: `it_direct.${table}_staged`, recreate: true, ...opts, onPhase: (p) => stagedPhases.push(p) }).finally(() => delete process.env.CIVIC_ETL_LOAD_DIRECT);
  return { direct, staged, directPhases, stagedPhases };
}

/** Columns as a user's `\d` shows them (dropped ones are not shown). */
const columnsOf = async (table: string) =>
  rows<{ name: string; type: string }>(
    await getPool(),
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table],
  );

/** Rows of `a` not in `b`, compared as text and EWKB (exact bytes). */
const rowsNotIn = async (a: string, b: string) => rows(await getPool(), `SELECT * FROM (SELECT t::text FROM (SELECT * FROM ${a}) t EXCEPT ALL SELECT t::text FROM (SELECT * FROM ${b}) t) d`);

describe('civic-etl load of a shapefile straight into a new table', () => {
  /** A spike: ST_MakeValid leaves the square and a line, which the load drops (clockwise, as a shapefile's outer ring). */
  const spike = [
    [10, 0],
    [11, 0],
    [11, 1],
    [11, 2],
    [11, 1],
    [10, 1],
    [10, 0],
  ].reverse();
  /** A ring that crosses itself: invalid. */
  const bowtie = [
    [0, 0],
    [1, 1],
    [1, 0],
    [0, 1],
    [0, 0],
  ];
  const fields = [
    { name: 'id', type: 'N', length: 9 },
    { name: 'name', type: 'C', length: 20 },
    { name: 'area', type: 'N', length: 14, decimals: 3 },
    { name: 'opened', type: 'D', length: 8 },
    { name: 'free', type: 'L', length: 1 },
    { name: 'big', type: 'N', length: 15 },
    { name: 'ratio', type: 'F', length: 19, decimals: 11 },
  ];
  const records: TestRecord[] = [
    { shape: { parts: [square(2, 2, 1, true)] }, values: [1, 'Vondelpark', '1234.500', '20240229', 'T', '123456789012345', '4.63355654586e+007'] },
    { shape: { parts: [bowtie] }, values: [2, 'Crossed', '-0.004', '00010101', 'F', '-9', '-0.00001500000'] },
    { shape: { parts: [square(0, 0, 1, true)] }, values: [3, 'gone'], deleted: true },
    { shape: { parts: [square(4, 4, 1, true), square(6, 4, 1, true)] }, values: [4, 'Twin ponds', '0.000', '19991231', '?', null, '0.00000000000'] },
    { shape: { parts: [spike] }, values: [5, 'Spiky', null, null, null, '0', '1e-3'] },
    { shape: null, values: [6, 'No shape', '99999999.999', '20000101', 'T', '1', '12.5'] },
    { shape: { parts: [square(8, 8, 0.5, true)] }, values: [7, 'Café "Été"', '1e2', '20991231', 'F', '-1', '+3.25'] },
  ];

  it('gives the rows, types, repaired shapes and warnings the staged load gives, without staging', async () => {
    const file = await zipped('parks', { shapeType: POLYGON, fields, records, prj: PRJ_WGS84_ESRI, cpg: 'UTF-8' });
    const { direct, staged, directPhases, stagedPhases } = await bothWays(file, 'parks');
    // the features GDAL reads, listed one by one (its header count includes the deleted record)
    const ogr = execFileSync('ogrinfo', ['-ro', '-al', '-q', `/vsizip/${file}`], { encoding: 'utf8' });
    const features = ogr.match(/^OGRFeature\(/gm)?.length;
    // what PostGIS makes of each shape on its own: valid ones as they are, invalid ones ST_MakeValid's polygons
    const expected = await rows<{ id: number; wkt: string | null }>(
      await getPool(),
      `SELECT id, ST_AsText(CASE WHEN g IS NULL THEN NULL WHEN ST_IsValid(g) THEN ST_Multi(g) ELSE ST_Multi(ST_CollectionExtract(ST_MakeValid(g), 3)) END) AS wkt
         FROM (VALUES (1, 'POLYGON((2 2,2 3,3 3,3 2,2 2))'), (2, 'POLYGON((0 0,1 1,1 0,0 1,0 0))'), (4, 'MULTIPOLYGON(((4 4,4 5,5 5,5 4,4 4)),((6 4,6 5,7 5,7 4,6 4)))'),
                      (5, 'POLYGON((10 0,10 1,11 1,11 2,11 1,11 0,10 0))'), (6, NULL), (7, 'POLYGON((8 8,8 8.5,8.5 8.5,8.5 8,8 8))')) v(id, w),
              LATERAL (SELECT ST_GeomFromText(w) AS g) p ORDER BY id`,
    );
    const loaded = await rows<{ id: number; same: boolean | null }>(
      await getPool(),
      `SELECT t.id, ST_Equals(t.geom, ST_GeomFromText(e.wkt, 4326)) AS same FROM it_direct.parks_direct t JOIN unnest($1::int[], $2::text[]) AS e(id, wkt) USING (id) ORDER BY t.id`,
      [expected.map((e) => e.id), expected.map((e) => e.wkt)],
    );
    const index = await rows(await getPool(), `SELECT indexdef FROM pg_indexes WHERE schemaname = 'it_direct' AND tablename = 'parks_direct'`);

    expect(directPhases.some((p) => /straight into the table/.test(p))).toBe(true);
    expect(stagedPhases.some((p) => /straight into the table/.test(p))).toBe(false);
    expect(direct).toMatchObject({ rowsRead: features, rowsLoaded: features, rowsRejected: 0, created: true });
    expect({ ...direct, table: undefined, rejectsTable: undefined }).toEqual({ ...staged, table: undefined, rejectsTable: undefined });
    expect(await columnsOf('it_direct.parks_direct')).toEqual(await columnsOf('it_direct.parks_staged'));
    expect(await rowsNotIn('it_direct.parks_direct', 'it_direct.parks_staged')).toEqual([]);
    expect(await rowsNotIn('it_direct.parks_staged', 'it_direct.parks_direct')).toEqual([]);
    expect(loaded).toEqual([1, 2, 4, 5, 6, 7].map((id) => ({ id, same: id === 6 ? null : true })));
    // the spike is the 5th record of the file, the deleted 3rd one counted
    expect(direct.warnings.join('\n')).toMatch(/2 invalid geometries repaired \(ST_MakeValid\); in 1 of them \(feature 5\) the repair also left 1 line/);
    expect(index).toEqual([{ indexdef: expect.stringMatching(/USING gist \(geom\)/) }]);
  });

  it("gives the staged load's rows and repairs for a file of many batches, invalid shapes among valid ones", async () => {
    // 1,500 records (the reader hands them over in batches of 512): squares of varying sizes, every
    // 7th a bowtie, every 11th two touching squares (valid, but not provable without PostGIS),
    // every 13th a Null shape, every 17th deleted
    const bowtie = (x: number, y: number) => [
      [x, y],
      [x + 1, y + 1],
      [x + 1, y],
      [x, y + 1],
      [x, y],
    ];
    const records: TestRecord[] = [];
    for (let i = 1; i <= 1500; i++) {
      const x = (i % 50) * 3;
      const y = Math.floor(i / 50) * 2;
      const shape =
        i % 13 === 0
          ? null
          : i % 7 === 0
            ? { parts: [bowtie(x, y)] }
            : i % 11 === 0
              ? { parts: [square(x, y, 1, true), square(x + 1, y + 1, 1, true)] }
              : { parts: [square(x, y, 0.5 + (i % 5) / 10, true)] };
      records.push({ shape, values: [i, `feature ${i}`], ...(i % 17 === 0 ? { deleted: true } : {}) });
    }
    const file = await zipped('many', {
      shapeType: POLYGON,
      fields: [
        { name: 'id', type: 'N', length: 9 },
        { name: 'name', type: 'C', length: 20 },
      ],
      records,
      prj: PRJ_WGS84_ESRI,
    });
    const { direct, staged, directPhases } = await bothWays(file, 'many');
    // what PostGIS says of the table's shapes, and of the shapes as written (a bowtie's two squares' count)
    const [check] = await rows<{ invalid: number; bowties: number }>(
      await getPool(),
      `SELECT count(*) FILTER (WHERE NOT ST_IsValid(geom))::int AS invalid, count(*) FILTER (WHERE id % 7 = 0 AND id % 13 <> 0)::int AS bowties FROM it_direct.many_direct`,
    );
    const kept = records.filter((r) => !r.deleted).length;

    expect(directPhases.some((p) => /straight into the table/.test(p))).toBe(true);
    expect(direct).toMatchObject({ rowsRead: kept, rowsLoaded: kept, rowsRejected: 0 });
    expect({ ...direct, table: undefined, rejectsTable: undefined }).toEqual({ ...staged, table: undefined, rejectsTable: undefined });
    expect(await rowsNotIn('it_direct.many_direct', 'it_direct.many_staged')).toEqual([]);
    expect(await rowsNotIn('it_direct.many_staged', 'it_direct.many_direct')).toEqual([]);
    expect(check).toEqual({ invalid: 0, bowties: records.filter((r, i) => !r.deleted && (i + 1) % 7 === 0 && (i + 1) % 13 !== 0).length });
    expect(direct.warnings.join('\n')).toMatch(new RegExp(`${check!.bowties} invalid geometries repaired`));
  });

  it('gives way to the staged load when a value does not fit its field, and keeps every row', async () => {
    // `0012` is not how an integer is written: the staged load infers the column's type instead
    const file = await zipped('beds', {
      shapeType: POLYGON,
      fields: [
        { name: 'id', type: 'N', length: 5 },
        { name: 'beds', type: 'N', length: 5 },
      ],
      records: [
        { shape: { parts: [square(1, 1, 1, true)] }, values: [1, '12'] },
        { shape: { parts: [square(3, 1, 1, true)] }, values: [2, '0012'] },
      ],
      prj: PRJ_WGS84_ESRI,
    });
    const { direct, staged, directPhases } = await bothWays(file, 'beds');
    const beds = await rows(await getPool(), 'SELECT id, beds FROM it_direct.beds_direct ORDER BY id');

    expect(directPhases.some((p) => /given up \(column beds: its values are not all integer\)/.test(p))).toBe(true);
    expect({ ...direct, table: undefined, rejectsTable: undefined }).toEqual({ ...staged, table: undefined, rejectsTable: undefined });
    expect(direct.rowsLoaded + direct.rowsRejected).toBe(2);
    expect(beds).toEqual(await rows(await getPool(), 'SELECT id, beds FROM it_direct.beds_staged ORDER BY id'));
  });

  it('leaves no table and records the failure when the load fails after its rows are in', async () => {
    // metres labelled as degrees: found once the rows are in the table
    const file = await zipped('metres', {
      shapeType: POLYGON,
      fields: [{ name: 'id', type: 'N', length: 5 }],
      records: [{ shape: { parts: [square(121_400, 487_400, 100, true)] }, values: [1] }],
      prj: PRJ_WGS84_ESRI,
    });
    const error = await loadFile(await getPool(), file, { table: 'it_direct.metres' }).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );
    const left = await rows(await getPool(), `SELECT to_regclass('it_direct.metres') AS t, to_regclass('it_direct.metres_rejects') AS r`);
    const ledger = await rows(await getPool(), `SELECT status FROM etl.loads WHERE dataset = 'metres' AND project = 'it_direct' ORDER BY id DESC LIMIT 1`);

    expect(error.message).toMatch(/metres\.zip: coordinates .* are not longitudes and latitudes/);
    expect(left).toEqual([{ t: null, r: null }]);
    expect(ledger).toEqual([{ status: 'failed' }]);
  });

  it('fails on a .shp cut off in its second record, naming the feature, and leaves no table', async () => {
    const parts = writeShapefile(dir, 'cut', {
      shapeType: POLYGON,
      fields: [{ name: 'id', type: 'N', length: 5 }],
      records: [
        { shape: { parts: [square(1, 1, 1, true)] }, values: [1] },
        { shape: { parts: [square(3, 1, 1, true)] }, values: [2] },
      ],
      prj: PRJ_WGS84_ESRI,
    });
    const shp = readFileSync(parts.shp);
    const members = Object.fromEntries(Object.entries(parts).map(([ext, p]) => [`cut.${ext}`, ext === 'shp' ? shp.subarray(0, shp.length - 20) : readFileSync(p)]));
    const { writeFileSync } = await import('node:fs');
    const zip = join(dir, 'cut.zip');
    writeFileSync(zip, await makeZip(members));

    const error = await loadFile(await getPool(), zip, { table: 'it_direct.cut' }).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );
    const left = await rows(await getPool(), `SELECT to_regclass('it_direct.cut') AS t`);
    const ledger = await rows(await getPool(), `SELECT status, error_line FROM etl.loads WHERE dataset = 'cut' AND project = 'it_direct' ORDER BY id DESC LIMIT 1`);

    expect(error.message).toMatch(/cut off in feature 2/);
    expect(left).toEqual([{ t: null }]);
    expect(ledger).toEqual([{ status: 'failed', error_line: '2' }]);
  });

  it('writes numbers, dates and integers in binary as PostgreSQL reads them written out', async () => {
    const values: Record<'numeric' | 'date' | 'integer' | 'bigint', string[]> = {
      numeric: [
        '0',
        '-0',
        '0.000',
        '1234.5',
        '-1234.500',
        '0.0015',
        '4.63355654586e+007',
        '1e-3',
        '1.5E+2',
        '+3.25',
        '99999999.999',
        '123456789012345678901234567890.123456789',
        '.5',
        '7.',
        '1e999',
        '-0.00001500000',
      ],
      date: ['0001-01-01', '1999-12-31', '2000-01-01', '2024-02-29', '2099-12-31', '1582-10-10', '9999-12-31'],
      integer: ['0', '-1', '+42', '2147483647', '-2147483648'],
      bigint: ['0', '-9', '123456789012345', '1234567890123456', '-999999999999999999', '9223372036854775807', '-9223372036854775808'],
    };
    // and 500 more decimals of every shape: digits around a point, zeros on either side, exponents
    let seed = 19;
    const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let k = 0; k < 500; k++) {
      const digits = Array.from({ length: 1 + next(24) }, () => (next(3) === 0 ? '0' : String(next(10)))).join('');
      const at = next(digits.length + 1);
      const exponent = next(4) === 0 ? `e${['', '+', '-'][next(3)]}${next(40)}` : '';
      values.numeric.push(`${['', '-', '+'][next(3)]}${digits.slice(0, at)}${next(2) || at < digits.length ? '.' : ''}${digits.slice(at)}${exponent}`);
    }
    const pool = await getPool();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      for (const [type, list] of Object.entries(values)) {
        await client.query(`CREATE TEMPORARY TABLE binary_${type} (v ${type}, t text) ON COMMIT DROP`);
        const out = new BinaryRows();
        out.header();
        for (const v of list) {
          out.row(2);
          expect(out.value(type as keyof typeof values, v)).toBe(true);
          out.value('text', v);
        }
        out.trailer();
        await pipeline(Readable.from([out.take()]), client.query(copyFrom(`COPY binary_${type} FROM STDIN WITH (FORMAT binary)`)));
      }
      // PostgreSQL's own reading of the text is the oracle: value and display scale (numeric::text keeps it)
      const differ = await client.query(
        `SELECT 'numeric' AS type, t, v::text FROM binary_numeric WHERE v::text IS DISTINCT FROM t::numeric::text
         UNION ALL SELECT 'date', t, v::text FROM binary_date WHERE v IS DISTINCT FROM t::date
         UNION ALL SELECT 'integer', t, v::text FROM binary_integer WHERE v IS DISTINCT FROM t::integer
         UNION ALL SELECT 'bigint', t, v::text FROM binary_bigint WHERE v IS DISTINCT FROM t::bigint`,
      );
      expect(differ.rows).toEqual([]);
      const out = new BinaryRows();
      // not the type as written: refused, so the load gives way instead of writing something else
      expect([
        out.value('integer', '2147483648'),
        out.value('integer', '1.0'),
        out.value('date', '2023-02-30'),
        out.value('date', '0000-01-01'),
        out.value('boolean', 'T'),
        out.value('numeric', '1,5'),
      ]).toEqual([false, false, false, false, false, false]);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});
