/**
 * The one type inference, end to end: `civic-etl load` and the pipeline's clean step give typed
 * columns with the right values for locale numbers and dates, and `profile` says the type `load`
 * gives. Every expected value below was worked out from the input by hand and checked with
 * Python's standard library (float() after removing the separators, datetime.strptime with
 * %d/%m/%Y, %m/%d/%Y, %d.%m.%y, %d-%m-%Y %H:%M) — never by running civic-etl.
 */
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { getPool } from '../../functions/common/db.ts';
import { pipelineType } from '../../functions/profile/column-type.ts';
import { profileStream, profileTable } from '../../functions/profile/profile.ts';
import { readShapefile } from '../../functions/read/shapefile.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import { loadFile } from '../../local/load-file.ts';
import { profileAndLoadTypes } from '../helpers/agreement.ts';
import { POINT, writeShapefile } from '../helpers/shapefile-writer.ts';
import { makeZip } from '../helpers/zip.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

let dir: string;
let deps: StageDeps;
let bucket: string;
const file = (name: string, content: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'types-test-'));
  await (await getPool()).query('DROP SCHEMA IF EXISTS it_types_load CASCADE');
  const { pipeline, pool } = await freshProject({
    project: 'it_types',
    suppliers: [{ name: 'city' }],
    datasets: [
      { name: 'locale', source: { type: 'upload', supplier: 'city' } },
      { name: 'points', source: { type: 'upload', supplier: 'city' } },
      { name: 'visits', source: { type: 'upload', supplier: 'city' } },
      { name: 'events', source: { type: 'upload', supplier: 'city' } },
      { name: 'counts', source: { type: 'upload', supplier: 'city' } },
      { name: 'districts', source: { type: 'upload', supplier: 'city' } },
      { name: 'stops', source: { type: 'upload', supplier: 'city' }, clean: { columns: [{ name: 'naam' }] } },
    ],
  });
  bucket = await freshBucket('it-types');
  deps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every class of the issue in one semicolon file: decimal comma, grouped thousands, exponents, dates of each writing. */
const LOCALE = [
  'id;comma;grouped_dot;grouped_space;exponent;day_first;unpadded;dotted;month_first;stamp;code',
  '1;3,5;1.234,56;1 234,56;4.63355654586e+007;13/01/2021;15/1/2021;23.04.13;01/13/2021;13-01-2021 08:30;01000',
  '2;-0,25;12.345.678,9;12\u00a0345,1;1.5E-3;02/03/2021;3/2/2021;01.02.99;12/31/2020;1-2-2021 23:59;75001',
  '3;;;;;;;;;;',
  '',
].join('\n');

const EXPECTED = [
  {
    id: 1,
    comma: 3.5,
    grouped_dot: 1234.56,
    grouped_space: 1234.56,
    exponent: 46335565.4586,
    day_first: '2021-01-13',
    unpadded: '2021-01-15',
    dotted: '2013-04-23',
    month_first: '2021-01-13',
    stamp: '2021-01-13 08:30:00',
    code: '01000',
  },
  {
    id: 2,
    comma: -0.25,
    grouped_dot: 12345678.9,
    grouped_space: 12345.1,
    exponent: 0.0015,
    day_first: '2021-03-02',
    unpadded: '2021-02-03',
    dotted: '1999-02-01',
    month_first: '2020-12-31',
    stamp: '2021-02-01 23:59:00',
    code: '75001',
  },
  { id: 3, comma: null, grouped_dot: null, grouped_space: null, exponent: null, day_first: null, unpadded: null, dotted: null, month_first: null, stamp: null, code: null },
];

const LOAD_TYPES = [
  ['id', 'integer'],
  ['comma', 'numeric'],
  ['grouped_dot', 'numeric'],
  ['grouped_space', 'numeric'],
  ['exponent', 'numeric'],
  ['day_first', 'date'],
  ['unpadded', 'date'],
  ['dotted', 'date'],
  ['month_first', 'date'],
  ['stamp', 'timestamp'],
  ['code', 'text'],
];

/** The table's values with numbers as numbers and dates as ISO text, in line order. */
const valuesOf = (table: string, order: string) =>
  rows(
    deps.pool,
    `SELECT id::int AS id, comma::float8 AS comma, grouped_dot::float8 AS grouped_dot, grouped_space::float8 AS grouped_space, exponent::float8 AS exponent,
            day_first::text AS day_first, unpadded::text AS unpadded, dotted::text AS dotted, month_first::text AS month_first, stamp::text AS stamp, code
       FROM ${table} ORDER BY ${order}`,
  );

const typesOf = (schema: string, table: string) =>
  rows<{ column_name: string; data_type: string }>(
    deps.pool,
    `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name NOT LIKE '\\_%' ORDER BY ordinal_position`,
    [schema, table],
  );

describe('civic-etl load types what the profile found', () => {
  it('loads decimal-comma, grouped and exponent numbers, and day-first, unpadded, dotted, two-digit-year and month-first dates typed', async () => {
    const r = await loadFile(await getPool(), file('locale.csv', LOCALE), { table: 'it_types_load.locale', recreate: true });

    expect(r).toMatchObject({ rowsRead: 3, rowsLoaded: 3, rowsRejected: 0 });
    expect(r.columns.map((c) => [c.name, c.type])).toEqual(LOAD_TYPES);
    expect(await valuesOf('it_types_load.locale', 'id')).toEqual(EXPECTED);
  });

  it('reads numbers and dates padded with no-break spaces, as the inference trims them', async () => {
    const path = file('padded.csv', 'n;day\n1\u00a0;\u202f2021-01-13\n\u00a02;2021-01-14\u00a0\n');

    const r = await loadFile(await getPool(), path, { table: 'it_types_load.padded', recreate: true });

    expect(r).toMatchObject({ rowsLoaded: 2, rowsRejected: 0 });
    expect(r.columns.map((c) => c.type)).toEqual(['integer', 'date']);
    expect(await rows(deps.pool, 'SELECT n, day::text AS day FROM it_types_load.padded ORDER BY n')).toEqual([
      { n: 1, day: '2021-01-13' },
      { n: 2, day: '2021-01-14' },
    ]);
  });

  it('turns decimal-comma latitude and longitude into points', async () => {
    const path = file('points.csv', 'naam;lat;lon\nGrote Markt;50,8466;4,3528\nNotre-Dame;48,853;2,3499\n');

    const r = await loadFile(await getPool(), path, { table: 'it_types_load.points', recreate: true });
    const points = await rows(deps.pool, 'SELECT naam, lat::float8 AS lat, ST_X(geom) AS x, ST_Y(geom) AS y, ST_SRID(geom) AS srid FROM it_types_load.points ORDER BY naam');

    expect(r).toMatchObject({ rowsLoaded: 2, rowsRejected: 0 });
    expect(points).toEqual([
      { naam: 'Grote Markt', lat: 50.8466, x: 4.3528, y: 50.8466, srid: 4326 },
      { naam: 'Notre-Dame', lat: 48.853, x: 2.3499, y: 48.853, srid: 4326 },
    ]);
  });

  it('rejects, with line and reason, a value the column’s way of writing does not read', async () => {
    // 99 real day-first dates and one 31 February, 99 decimal-comma numbers and one "some": typed (99 % ≥ 0.99), the odd ones rejected
    const lines = Array.from({ length: 99 }, (_, i) => `${i + 1};${(i % 28) + 1}/${(i % 12) + 1}/2021;${i},5`);
    const path = file('rejects.csv', ['n;day;amount', ...lines, '100;31/02/2021;some', ''].join('\n'));

    const r = await loadFile(await getPool(), path, { table: 'it_types_load.rejects', recreate: true });
    const rejects = await rows(deps.pool, 'SELECT source_line, column_name, raw_value, reason FROM it_types_load.rejects_rejects ORDER BY column_name');

    expect(r.columns.map((c) => [c.name, c.type])).toEqual([
      ['n', 'integer'],
      ['day', 'date'],
      ['amount', 'numeric'],
    ]);
    expect(r).toMatchObject({ rowsRead: 100, rowsLoaded: 99, rowsRejected: 1 });
    expect(rejects).toEqual([
      { source_line: '101', column_name: 'amount', raw_value: 'some', reason: 'not a number in the form 1234,5: some' },
      { source_line: '101', column_name: 'day', raw_value: '31/02/2021', reason: 'not a date in d/m/yyyy: 31/02/2021' },
    ]);
    // line 2 is 1/1/2021, line 50 is (48 % 28) + 1 = 21 / (48 % 12) + 1 = 1 → 21 January
    expect(await rows(deps.pool, `SELECT day::text AS day, amount::float8 AS amount FROM it_types_load.rejects WHERE n IN (1, 49) ORDER BY n`)).toEqual([
      { day: '2021-01-01', amount: 0.5 },
      { day: '2021-01-21', amount: 48.5 },
    ]);
  });

  it('loads missing-value markers of number and date columns as NULL, says so, and keeps them in a text column', async () => {
    // R's NA, a statistics office's "..." (not yet available) and "-" (nothing); `NA` is also a country code
    const csv = 'day;cases;births;country\n13/01/2021;12;1234;FR\nNA;NA;...;NA\n14/01/2021;  NA ;-;DE\n15/01/2021;7;2001;\n';
    const path = file('markers.csv', csv);

    const r = await loadFile(await getPool(), path, { table: 'it_types_load.markers', recreate: true });
    const profile = await profileStream(createReadStream(path), { file: path });

    expect(r).toMatchObject({ rowsRead: 4, rowsLoaded: 4, rowsRejected: 0 });
    expect(r.columns.map((c) => [c.name, c.type])).toEqual([
      ['day', 'date'],
      ['cases', 'integer'],
      ['births', 'integer'],
      ['country', 'text'],
    ]);
    expect(r.warnings).toContain('NA, -, ... read as missing in 3 columns (5 values)');
    expect(await rows(deps.pool, 'SELECT day::text AS day, cases, births, country FROM it_types_load.markers ORDER BY day NULLS LAST')).toEqual([
      { day: '2021-01-13', cases: 12, births: 1234, country: 'FR' },
      { day: '2021-01-14', cases: null, births: null, country: 'DE' },
      { day: '2021-01-15', cases: 7, births: 2001, country: null },
      { day: null, cases: null, births: null, country: 'NA' },
    ]);
    // the profile counts them missing, and says the same
    expect(profile.columns.map((c) => [c.name, c.clean.type, c.profile.missing])).toEqual([
      ['day', 'date', 1],
      ['cases', 'integer', 2],
      ['births', 'integer', 2],
      ['country', 'text', 1],
    ]);
    expect(profile.warnings).toContain('NA, -, ... read as missing in 3 columns (5 values)');
  });

  it('settles a day/month order from a value outside the sample, and keeps a column no value settles text', async () => {
    // 30,000 records: the sample reads every 2nd line (even lines); the one day above 12 is on line 3
    const lines = ['id,when,undecided'];
    for (let i = 1; i <= 30_000; i++) lines.push(`${i},${i === 2 ? '25/02/2021' : '01/02/2021'},03/04/2021`);
    const path = file('order.csv', `${lines.join('\n')}\n`);

    const r = await loadFile(await getPool(), path, { table: 'it_types_load.order', recreate: true });
    const profiled = await profileStream(createReadStream(path), { file: path });

    expect(r.columns.map((c) => [c.name, c.type])).toEqual([
      ['id', 'integer'],
      ['when', 'date'],
      ['undecided', 'text'],
    ]);
    expect(profiled.columns.map((c) => c.clean.type)).toEqual(['integer', 'date', 'text']);
    expect(await rows(deps.pool, `SELECT "when"::text AS d, count(*)::int AS n FROM it_types_load.order GROUP BY 1 ORDER BY 1`)).toEqual([
      { d: '2021-02-01', n: 29_999 },
      { d: '2021-02-25', n: 1 },
    ]);
  });

  it('appends to a date column without reading dates that go both ways month-first by guess', async () => {
    await loadFile(await getPool(), file('first.csv', 'id,day\n1,25/12/2023\n'), { table: 'it_types_load.appended', recreate: true });

    const r = await loadFile(await getPool(), file('second.csv', 'id,day\n2,03/04/2024\n3,2024-05-06\n'), { table: 'it_types_load.appended', append: true });
    const rejects = await rows(deps.pool, 'SELECT source_line, raw_value, reason FROM it_types_load.appended_rejects');

    expect(r).toMatchObject({ rowsLoaded: 1, rowsRejected: 1 });
    expect(await rows(deps.pool, 'SELECT id, day::text AS day FROM it_types_load.appended ORDER BY id')).toEqual([
      { id: 1, day: '2023-12-25' },
      { id: 3, day: '2024-05-06' },
    ]);
    expect(rejects).toEqual([{ source_line: '2', raw_value: '03/04/2024', reason: 'not a date in yyyy-m-d: 03/04/2024' }]);
  });

  it("types a shapefile's DBF numbers written with a three-digit exponent", async () => {
    const shp = mkdtempSync(join(dir, 'shp-'));
    const parts = writeShapefile(shp, 'areas', {
      shapeType: POINT,
      fields: [
        { name: 'id', type: 'N', length: 5 },
        { name: 'surface', type: 'N', length: 19, decimals: 11 },
        { name: 'perim', type: 'F', length: 19 },
      ],
      records: [
        { shape: { parts: [[[2.35, 48.85]]] }, values: [1, '4.63355654586e+007', '1.2e+003'] },
        { shape: { parts: [[[4.35, 50.85]]] }, values: [2, '1.50000000000e-002', '7'] },
      ],
    });
    const zip = file('areas.zip', await makeZip(Object.fromEntries(Object.entries(parts).map(([ext, p]) => [`areas.${ext}`, readFileSync(p)]))));

    const r = await loadFile(await getPool(), zip, { table: 'it_types_load.areas', recreate: true });
    const table = await readShapefile(parts, 'areas.shp');
    const profiled = await profileTable(table, { file: 'areas.shp' });

    expect(r.columns.map((c) => [c.name, c.type])).toEqual([
      ['id', 'integer'],
      ['surface', 'numeric'],
      ['perim', 'numeric'],
      ['geom', 'geometry'],
    ]);
    expect(profiled.columns.slice(0, 3).map((c) => c.clean.type)).toEqual(['integer', 'numeric', 'numeric']);
    expect(await rows(deps.pool, 'SELECT id, surface::float8 AS surface, perim::float8 AS perim FROM it_types_load.areas ORDER BY id')).toEqual([
      { id: 1, surface: 46335565.4586, perim: 1200 },
      { id: 2, surface: 0.015, perim: 7 },
    ]);
  });
});

describe('the pipeline clean step types what the profile found', () => {
  it('lands the same values typed, in the pipeline widths, and the catalog says those types', async () => {
    const staged = await stageObject(deps, await put(bucket, 'incoming/city/locale/locale.csv', LOCALE));
    const loadId = (staged as { loadId: number }).loadId;

    const outcome = await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, loadId);
    const [catalog] = await rows<{ columns: { name: string; clean: { type: string } }[] }>(deps.pool, 'SELECT columns FROM etl.catalog WHERE load_id = $1', [loadId]);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 3, rowsQuarantined: 0 });
    const pipelineTypes = LOAD_TYPES.map(([name, type]) => [name, { integer: 'bigint', numeric: 'double precision', timestamp: 'timestamp without time zone' }[type!] ?? type]);
    expect((await typesOf('it_types', 'locale')).map((c) => [c.column_name, c.data_type])).toEqual(pipelineTypes);
    expect(catalog!.columns.map((c) => [c.name, pipelineType(c.clean.type as never)])).toEqual(LOAD_TYPES.map(([n, t]) => [n, pipelineType(t as never)]));
    expect(await valuesOf('it_types.locale', '_source_line')).toEqual(EXPECTED);
  });

  it('lands missing-value markers of number and date columns as NULL, and the catalog says so', async () => {
    const csv = 'day,cases,country\n2021-01-13,12,FR\nNA,NA,NA\n2021-01-14,N/A,DE\n';
    const staged = await stageObject(deps, await put(bucket, 'incoming/city/counts/c1.csv', csv));
    const loadId = (staged as { loadId: number }).loadId;

    const outcome = await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, loadId);
    const [catalog] = await rows<{ warnings: string[] }>(deps.pool, `SELECT structure->'warnings' AS warnings FROM etl.catalog WHERE load_id = $1`, [loadId]);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 3, rowsQuarantined: 0 });
    expect((await typesOf('it_types', 'counts')).map((c) => [c.column_name, c.data_type])).toEqual([
      ['day', 'date'],
      ['cases', 'bigint'],
      ['country', 'text'],
    ]);
    expect(await rows(deps.pool, 'SELECT day::text AS day, cases::int AS cases, country FROM it_types.counts ORDER BY _source_line')).toEqual([
      { day: '2021-01-13', cases: 12, country: 'FR' },
      { day: null, cases: null, country: 'NA' },
      { day: '2021-01-14', cases: null, country: 'DE' },
    ]);
    expect(catalog!.warnings).toContain('NA, N/A read as missing in 2 columns (3 values)');
  });

  it("keeps the types a shapefile's DBF declares, as profile and load do: codes of digits and Y/N flags in character fields stay text", async () => {
    const shp = mkdtempSync(join(dir, 'districts-'));
    const parts = writeShapefile(shp, 'districts', {
      shapeType: POINT,
      fields: [
        { name: 'code', type: 'C', length: 5 },
        { name: 'amtrak', type: 'C', length: 1 },
        { name: 'area', type: 'N', length: 10, decimals: 2 },
      ],
      records: [
        { shape: { parts: [[[2.35, 48.85]]] }, values: ['19499', 'Y', '12.50'] },
        { shape: { parts: [[[4.35, 50.85]]] }, values: ['10050', 'N', '3.00'] },
      ],
    });
    const zip = await makeZip(Object.fromEntries(Object.entries(parts).map(([ext, p]) => [`districts.${ext}`, readFileSync(p)])));
    const staged = await stageObject(deps, await put(bucket, 'incoming/city/districts/districts.zip', zip));

    const outcome = await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, (staged as { loadId: number }).loadId);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2 });
    expect((await typesOf('it_types', 'districts')).filter((c) => c.column_name !== 'geom').map((c) => [c.column_name, c.data_type])).toEqual([
      ['code', 'text'],
      ['amtrak', 'text'],
      ['area', 'numeric'],
    ]);
    expect(await rows(deps.pool, 'SELECT code, amtrak FROM it_types.districts ORDER BY code')).toEqual([
      { code: '10050', amtrak: 'N' },
      { code: '19499', amtrak: 'Y' },
    ]);
  });

  it('turns decimal-comma latitude and longitude into points', async () => {
    const staged = await stageObject(deps, await put(bucket, 'incoming/city/points/points.csv', 'naam;breedtegraad;lengtegraad\nGrote Markt;50,8466;4,3528\n'));

    const outcome = await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, (staged as { loadId: number }).loadId);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 0 });
    expect(await rows(deps.pool, 'SELECT naam, ST_X(geom) AS x, ST_Y(geom) AS y FROM it_types.points')).toEqual([{ naam: 'Grote Markt', x: 4.3528, y: 50.8466 }]);
  });
});

describe('the pipeline keeps a dataset’s day/month order', () => {
  it('reads a later file whose dates read both ways in the order an earlier file showed', async () => {
    const first = await stageObject(deps, await put(bucket, 'incoming/city/visits/v1.csv', 'id,day\n1,25/12/2023\n'));
    await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, (first as { loadId: number }).loadId);
    // 03/04/2024 alone is 3 April or 4 March: the dataset's earlier file was day-first
    const second = await stageObject(deps, await put(bucket, 'incoming/city/visits/v2.csv', 'id,day\n2,03/04/2024\n'));

    const outcome = await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, (second as { loadId: number }).loadId);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 0 });
    expect(await rows(deps.pool, 'SELECT id::int AS id, day::text AS day FROM it_types.visits ORDER BY id')).toEqual([{ id: 2, day: '2024-04-03' }]);
  });

  it('does not read month-first by guess a later file whose dates go both ways, after ISO dates', async () => {
    const first = await stageObject(deps, await put(bucket, 'incoming/city/events/e1.csv', 'id,day\n1,2023-12-25\n'));
    await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, (first as { loadId: number }).loadId);
    const second = await stageObject(deps, await put(bucket, 'incoming/city/events/e2.csv', 'id,day\n2,03/04/2024\n'));

    const outcome = await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, (second as { loadId: number }).loadId);
    const days = await rows<{ day: string }>(deps.pool, 'SELECT day::text AS day FROM it_types.events');

    // the drift policy (evolve) widens the column to text: the value stays as written, not 4 March
    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1 });
    expect(days).toEqual([{ day: '03/04/2024' }]);
    expect(await typesOf('it_types', 'events')).toEqual([
      { column_name: 'id', data_type: 'bigint' },
      { column_name: 'day', data_type: 'text' },
    ]);
  });

  it('turns decimal-comma coordinates of a dataset that declares its columns into points', async () => {
    const staged = await stageObject(deps, await put(bucket, 'incoming/city/stops/s.csv', 'naam;lat;lon\nDam;52,373446;4,893804\n'));

    const outcome = await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, (staged as { loadId: number }).loadId);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 0 });
    expect(await rows(deps.pool, 'SELECT naam, ST_X(geom) AS x, ST_Y(geom) AS y FROM it_types.stops')).toEqual([{ naam: 'Dam', x: 4.893804, y: 52.373446 }]);
  });
});

/** Files of many kinds of columns: `profile`'s type for each column must be the type `load` gives it. */
const AGREEMENT: Record<string, string> = {
  'locale.csv': LOCALE,
  'us.csv': 'id,amount,when,flag,zip\n1,"1,234.50",1/13/2021,yes,02134\n2,12.5,12/1/2020,no,10001\n3,-7,2/28/2021,Y,94105\n',
  'iso.csv': 'id,at,day,ratio,big\n1,2021-01-13T10:00:00Z,2021-01-13,0.5,12345678901\n2,2021-01-14T11:30:00+01:00,2020-02-29,1e-3,-98765432109\n',
  'ambiguous.csv': 'a;b;c\n01/02/2021;1,234;1 000\n03/04/2021;5,678;2 500\n',
  'mixed.csv': 'id,maybe\n1,12\n2,n/a\n3,14\n',
  // csv-detective's tests/data/b_test_file.csv (github.com/datagouv/csv-detective, commit 0afd835, MIT licence)
  'csv-detective-b.csv': 'code_departement,code_region,partly_empty\r\n01,01,10\r\n23,84,100\r\n44,32,76\r\n31,32,\r\n28,84,\r\n59,24,\r\n',
};

describe('profile and load agree', () => {
  it.each(Object.keys(AGREEMENT))('gives every column of %s the type load gives it', async (name) => {
    const path = file(`agree-${name}`, AGREEMENT[name]!);

    const { profile, load } = await profileAndLoadTypes(await getPool(), path, `it_types_load.${name.replace(/\W/g, '_')}`);

    expect(load).toEqual(profile);
    expect(profile.length).toBe(AGREEMENT[name]!.split(/\r?\n/)[0]!.split(/[,;]/).length);
  });

  it('gives every property of a GeoJSON file and every key of a JSON file the type load gives it', async () => {
    const geojson = file(
      'agree.geojson',
      JSON.stringify({
        type: 'FeatureCollection',
        features: [
          { type: 'Feature', properties: { id: 1, naam: 'A', opened: '13/01/2021', surface: '1.234,5', code: '0123' }, geometry: { type: 'Point', coordinates: [4.9, 52.4] } },
          { type: 'Feature', properties: { id: 2, naam: 'B', opened: '2/3/2021', surface: '12,5', code: '0456' }, geometry: { type: 'Point', coordinates: [4.8, 52.3] } },
        ],
      }),
    );
    const json = file(
      'agree.json',
      JSON.stringify([
        { n: 1, ratio: 0.5, day: '2021-01-13', ok: true },
        { n: 2, ratio: 1e-7, day: '2021-02-28', ok: false },
      ]),
    );

    const fromGeojson = await profileAndLoadTypes(await getPool(), geojson, 'it_types_load.agree_geojson');
    const fromJson = await profileAndLoadTypes(await getPool(), json, 'it_types_load.agree_json');

    expect(fromGeojson.load).toEqual(fromGeojson.profile);
    expect(fromGeojson.profile).toEqual(['integer', 'text', 'date', 'numeric', 'text']);
    expect(fromJson.load).toEqual(fromJson.profile);
    expect(fromJson.profile).toEqual(['integer', 'numeric', 'date', 'boolean']);
  });

  it('on the real file, types as Python reads it: codes with leading zeros text, the counts integers', async () => {
    const path = file('b_test_file.csv', AGREEMENT['csv-detective-b.csv']!);

    const loaded = await loadFile(await getPool(), path, { table: 'it_types_load.csv_detective_b', recreate: true });

    // Python: every code_* value has 2 digits and some start with 0; partly_empty: int() of each non-empty value
    expect(loaded.columns.map((c) => [c.name, c.type])).toEqual([
      ['code_departement', 'text'],
      ['code_region', 'text'],
      ['partly_empty', 'integer'],
    ]);
    expect(await rows(deps.pool, 'SELECT partly_empty FROM it_types_load.csv_detective_b ORDER BY code_departement')).toEqual([
      { partly_empty: 10 },
      { partly_empty: 100 },
      { partly_empty: null },
      { partly_empty: null },
      { partly_empty: 76 },
      { partly_empty: null },
    ]);
  });
});
