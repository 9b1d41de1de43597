import { beforeAll, describe, expect, it } from 'vitest';
import ExcelJS from 'exceljs';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { stageObject, type StageDeps, type CleanMessage } from '../../functions/stage/stage-object.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { makeZip } from '../helpers/zip.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';
import { localizeReason } from '../../functions/common/report-reasons.ts';
import { renderedReasons } from '../helpers/reasons.ts';

const definition: PipelineInput = {
  project: 'it_formats',
  suppliers: [{ name: 'city' }],
  datasets: [
    { name: 'schools', source: { type: 'upload', supplier: 'city' } },
    { name: 'budget', source: { type: 'upload', supplier: 'city' }, read: { sheet: 'Budget' } },
    {
      name: 'parks',
      source: { type: 'upload', supplier: 'city' },
      geometry: { srid: 28992 },
    },
    { name: 'events', source: { type: 'upload', supplier: 'city' } },
    {
      name: 'monuments',
      source: { type: 'upload', supplier: 'city' },
      read: { srid: 2154 },
      geometry: { from: { wkt: 'Géométrie' } },
    },
    { name: 'layers', source: { type: 'upload', supplier: 'city' } },
    { name: 'orders', source: { type: 'upload', supplier: 'city' }, read: { arrays: 'explode' } },
    {
      name: 'baskets',
      source: { type: 'upload', supplier: 'city' },
      read: { arrays: 'explode' },
      clean: {
        columns: [
          { name: 'id', type: 'integer', required: true },
          { name: 'customer', pattern: '[A-Z][a-z]+' },
        ],
      },
    },
  ],
};

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;
let handed: CleanMessage[];

/** Upload and stage one object, then clean every load it handed over; returns the stage outcome. */
async function deliver(dataset: string, file: string, body: string | Buffer) {
  handed = [];
  const ref = await put(bucket, `incoming/city/${dataset}/${file}`, body);
  const staged = await stageObject(stageDeps, ref);
  const cleaned = [];
  for (const m of handed) cleaned.push(await cleanLoad(cleanDeps, m.loadId));
  return { staged, cleaned };
}

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-formats');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async (m) => void handed.push(m) };
  cleanDeps = { pool, pipeline };
});

describe('an archive with several data files', () => {
  it('is one load per member, and the dataset holds the rows of every member', async () => {
    const zip = await makeZip({ 'north.csv': 'school,pupils\nOak,120\nElm,80\n', 'south.csv': 'school,pupils\nAsh,200\n', 'readme.pdf': '%PDF' });

    const { staged, cleaned } = await deliver('schools', 'schools.zip', zip);
    const loads = await rows(cleanDeps.pool, `SELECT object_key, status, parent_id IS NOT NULL AS member, rows_read::int FROM etl.loads WHERE project = 'it_formats' AND dataset = 'schools' ORDER BY id`);
    const schools = await rows(cleanDeps.pool, 'SELECT school, pupils::int FROM it_formats.schools ORDER BY school');

    expect(staged).toMatchObject({ status: 'staged', rows: 3 });
    // the members are one file: the first message cleans both in one transaction, the second finds its member done
    expect(cleaned.map((c) => c.status)).toEqual(['loaded', 'duplicate']);
    expect(loads).toEqual([
      { object_key: 'incoming/city/schools/schools.zip', status: 'expanded', member: false, rows_read: 3 },
      { object_key: 'incoming/city/schools/schools.zip!north.csv', status: 'loaded', member: true, rows_read: 2 },
      { object_key: 'incoming/city/schools/schools.zip!south.csv', status: 'loaded', member: true, rows_read: 1 },
    ]);
    expect(schools).toEqual([
      { school: 'Ash', pupils: 200 },
      { school: 'Elm', pupils: 80 },
      { school: 'Oak', pupils: 120 },
    ]);
  });

  it('is replaced whole by the next archive', async () => {
    await deliver('schools', 'schools.zip', await makeZip({ 'all.csv': 'school,pupils\nBirch,10\n' }));

    expect(await rows(cleanDeps.pool, 'SELECT school FROM it_formats.schools')).toEqual([{ school: 'Birch' }]);
  });

  it('records a zip bomb as a failed load that names the member, and stages nothing', async () => {
    const zip = await makeZip({ 'huge.csv': Buffer.alloc(40 * 1024 * 1024, 0x30) });

    const { staged } = await deliver('schools', 'bomb.zip', zip);

    expect(staged).toMatchObject({ status: 'failed', error: expect.stringMatching(/bomb\.zip!huge\.csv: expands from \d+ to 41943040 bytes .* zip bomb/) });
    expect(await rows(cleanDeps.pool, 'SELECT school FROM it_formats.schools')).toEqual([{ school: 'Birch' }]);
  });

  it('records an empty (0-byte) member as a failed load naming archive!member, never a crash left received', async () => {
    const zip = await makeZip({ 'empty.csv': '' });

    const { staged } = await deliver('schools', 'empty-member.zip', zip);
    const load = await rows(cleanDeps.pool, `SELECT status, error FROM etl.loads WHERE project = 'it_formats' AND object_key = 'incoming/city/schools/empty-member.zip'`);

    expect(staged).toMatchObject({ status: 'failed', error: 'incoming/city/schools/empty-member.zip!empty.csv is empty (0 bytes)' });
    expect(load).toMatchObject([{ status: 'failed' }]);
    expect(await rows(cleanDeps.pool, 'SELECT school FROM it_formats.schools')).toEqual([{ school: 'Birch' }]);
  });
});

describe('a spreadsheet', () => {
  it('is read from the sheet the dataset names, past its title rows, with dates and numbers typed', async () => {
    const workbook = new ExcelJS.Workbook();
    workbook.addWorksheet('Notes').addRow(['nothing here']);
    const sheet = workbook.addWorksheet('Budget');
    sheet.addRow(['City budget 2026']);
    sheet.addRow([]);
    sheet.addRow(['Department', 'Amount', 'Approved']);
    sheet.addRow(['Parks', 1250000.5, new Date(Date.UTC(2026, 2, 1))]);
    sheet.addRow(['Schools', 9800000, new Date(Date.UTC(2026, 2, 15))]);
    const body = Buffer.from(await workbook.xlsx.writeBuffer());

    const { cleaned } = await deliver('budget', 'budget.xlsx', body);
    const budget = await rows(cleanDeps.pool, 'SELECT department, amount::text, approved::text, _source_line::int AS row FROM it_formats.budget ORDER BY department');

    expect(cleaned).toMatchObject([{ status: 'loaded', rowsLoaded: 2 }]);
    expect(budget).toEqual([
      { department: 'Parks', amount: '1250000.5', approved: '2026-03-01', row: 4 },
      { department: 'Schools', amount: '9800000', approved: '2026-03-15', row: 5 },
    ]);
  });
});

describe('spatial and nested files through the pipeline', () => {
  it('lands GeoJSON geometry in the dataset SRID with a GiST index', async () => {
    const geojson = JSON.stringify({
      type: 'FeatureCollection',
      features: [{ type: 'Feature', properties: { name: 'Vondelpark', area_ha: 47 }, geometry: { type: 'Point', coordinates: [4.868, 52.358] } }],
    });

    const { cleaned } = await deliver('parks', 'parks.geojson', geojson);
    const parks = await rows(cleanDeps.pool, 'SELECT name, area_ha, ST_SRID(geom) AS srid, round(ST_X(geom)) AS x FROM it_formats.parks');
    const index = await rows(cleanDeps.pool, `SELECT indexdef FROM pg_indexes WHERE schemaname = 'it_formats' AND tablename = 'parks' AND indexdef LIKE '%gist%'`);

    const catalog = await rows(
      cleanDeps.pool,
      `SELECT c.structure->>'format' AS format, jsonb_path_query_array(c.columns, '$[*].name') AS columns
       FROM etl.catalog c JOIN etl.loads l ON l.id = c.load_id WHERE l.project = 'it_formats' AND l.dataset = 'parks'`,
    );

    expect(cleaned).toMatchObject([{ status: 'loaded', rowsLoaded: 1 }]);
    expect(parks).toEqual([{ name: 'Vondelpark', area_ha: 47, srid: 28992, x: 119630 }]);
    expect(catalog).toEqual([{ format: 'geojson', columns: ['name', 'area_ha', 'geometry'] }]); // profiled through its reader
    expect(index).toHaveLength(1);
  });

  it('flattens nested JSON into dotted columns, and a key first seen late still gets its column', async () => {
    const events = [
      ...Array.from({ length: 50 }, (_, i) => ({ id: i + 1, venue: { name: `Hall ${i}`, city: 'Lyon' }, tags: ['a', 'b'] })),
      { id: 51, venue: { name: 'Late', city: 'Lyon' }, tags: [], ticket: { price: 12.5 } },
    ];

    const { cleaned } = await deliver('events', 'events.json', JSON.stringify(events));
    const last = await rows(cleanDeps.pool, 'SELECT id, venue_name, venue_city, tags, ticket_price FROM it_formats.events WHERE id IN (1, 51) ORDER BY id');

    expect(cleaned).toMatchObject([{ status: 'loaded', rowsLoaded: 51 }]);
    expect(last).toEqual([
      { id: 1, venue_name: 'Hall 0', venue_city: 'Lyon', tags: '["a","b"]', ticket_price: null },
      { id: 51, venue_name: 'Late', venue_city: 'Lyon', tags: '[]', ticket_price: '12.5' },
    ]);
  });

  it('reads WKT in Lambert-93 from a CSV column the dataset names, and lands it in 4326', async () => {
    const csv = 'nom;Géométrie\nHôtel de Ville;POINT(652470 6862500)\nNowhere;POINT(oops)\n';

    const { cleaned } = await deliver('monuments', 'monuments.csv', csv);
    const monuments = await rows(cleanDeps.pool, 'SELECT nom, round(ST_X(geom)::numeric, 2)::float AS lon, round(ST_Y(geom)::numeric, 2)::float AS lat FROM it_formats.monuments');
    const quarantined = await rows(cleanDeps.pool, 'SELECT source_line::int, column_name, reason FROM it_formats.monuments_quarantine');

    expect(cleaned).toMatchObject([{ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 1 }]);
    expect(monuments).toEqual([{ nom: 'Hôtel de Ville', lon: 2.35, lat: 48.86 }]); // Paris: Lambert-93 went through ST_Transform
    expect(quarantined).toEqual([{ source_line: 3, column_name: 'geom', reason: 'not a valid geometry: POINT(oops)' }]);
  });

  it('makes one load per GeoPackage layer, each in the dataset', async () => {
    const { writeGeoPackage, gpkgBlob, isoWkb } = await import('../helpers/gpkg-writer.ts');
    const { mkdtempSync, readFileSync } = await import('node:fs');
    const path = `${mkdtempSync('/tmp/gpkg-')}/two.gpkg`;
    const layer = (table: string, x: number) => ({
      table,
      columns: [
        { name: 'fid', type: 'INTEGER PRIMARY KEY' },
        { name: 'naam', type: 'TEXT' },
        { name: 'geom', type: 'POINT' },
      ],
      geometry: { column: 'geom', type: 'POINT', srsId: 4326 },
      rows: [[1, table, gpkgBlob(isoWkb('Point', [x, 52.37]), { srsId: 4326 })]],
    });
    await writeGeoPackage(path, { layers: [layer('bomen', 4.9), layer('banken', 4.8)] });

    const { staged, cleaned } = await deliver('layers', 'amsterdam.gpkg', readFileSync(path));
    const members = await rows(cleanDeps.pool, `SELECT object_key FROM etl.loads WHERE project = 'it_formats' AND dataset = 'layers' AND parent_id IS NOT NULL ORDER BY object_key`);

    expect(staged).toMatchObject({ status: 'staged', rows: 2 });
    // the layers are one file: cleaned together by the first message
    expect(cleaned.map((c) => c.status)).toEqual(['loaded', 'duplicate']);
    expect((await rows(cleanDeps.pool, `SELECT status FROM etl.loads WHERE project = 'it_formats' AND dataset = 'layers' AND parent_id IS NOT NULL`)).map((r) => r.status)).toEqual(['loaded', 'loaded']);
    expect(members.map((m) => m.object_key)).toEqual(['incoming/city/layers/amsterdam.gpkg#banken', 'incoming/city/layers/amsterdam.gpkg#bomen']);
    expect(await rows(cleanDeps.pool, 'SELECT naam FROM it_formats.layers ORDER BY naam')).toEqual([{ naam: 'banken' }, { naam: 'bomen' }]);
  });

  it('explodes JSON arrays into a child table of their own, linked by the parent element', async () => {
    const orders = [
      {
        id: 1,
        customer: 'Ann',
        lines: [
          { sku: 'A-1', qty: 2 },
          { sku: 'B-7', qty: 1 },
        ],
      },
      { id: 2, customer: 'Bo', lines: [] },
      { id: 3, customer: 'Cy', lines: [{ sku: 'C-3', qty: 5 }] },
    ];

    const { cleaned } = await deliver('orders', 'orders.json', JSON.stringify(orders));
    const parents = await rows(cleanDeps.pool, 'SELECT id, customer FROM it_formats.orders ORDER BY id');
    const lines = await rows(cleanDeps.pool, 'SELECT parent, index, sku, qty FROM it_formats.orders_lines ORDER BY parent, index');

    // the file's two tables are cleaned together, in one transaction: the child's own message finds it done
    expect(cleaned.map((c) => c.status)).toEqual(['loaded', 'duplicate']);
    expect(await rows(cleanDeps.pool, `SELECT status, rows_loaded::int FROM etl.loads WHERE project = 'it_formats' AND object_key LIKE '%orders.json%' AND parent_id IS NOT NULL ORDER BY id`)).toEqual([
      { status: 'loaded', rows_loaded: 3 },
      { status: 'loaded', rows_loaded: 3 },
    ]);
    expect(parents).toEqual([
      { id: 1, customer: 'Ann' },
      { id: 2, customer: 'Bo' },
      { id: 3, customer: 'Cy' },
    ]);
    expect(lines).toEqual([
      { parent: 1, index: 0, sku: 'A-1', qty: 2 },
      { parent: 1, index: 1, sku: 'B-7', qty: 1 },
      { parent: 3, index: 0, sku: 'C-3', qty: 5 },
    ]);
  });

  it('sets aside the children of a parent row set aside, saying why the parent was — in French too', async () => {
    const pattern = definition.datasets.find((d) => d.name === 'baskets')!.clean!.columns![1]!.pattern!;
    const baskets = [
      { id: 1, customer: 'Ann', lines: [{ sku: 'A-1', qty: 2 }] },
      { id: 2, customer: 'bo', lines: [{ sku: 'B-7', qty: 1 }] }, // line 2: not the customer pattern
      { id: 'three', customer: 'Cy', lines: [{ sku: 'C-3', qty: 5 }] }, // line 3: not an integer
    ];
    await deliver('baskets', 'baskets.json', JSON.stringify(baskets));
    const children = await rows<{ line: number; rule: string; raw_value: string; reason: string }>(
      cleanDeps.pool,
      'SELECT source_line::int AS line, rule, raw_value, reason FROM it_formats.baskets_lines_quarantine ORDER BY source_line',
    );
    expect(children.map((c) => [c.line, c.rule])).toEqual([
      [2, 'parent'],
      [3, 'parent'],
    ]);
    const fr = children.map((c) => localizeReason('fr', { rule: c.rule, value: c.raw_value, reason: c.reason }));
    expect(fr).toEqual([
      `sa ligne parente (baskets 2) n'a pas été chargée\u00a0: ne respecte pas le motif ${pattern}\u00a0: bo`,
      "sa ligne parente (baskets 3) n'a pas été chargée\u00a0: n'est pas un entier valide\u00a0: three",
    ]);
    expect((await renderedReasons(cleanDeps.pool, 'it_formats')).untranslated).toEqual([]);
  });

  it('records a GeoJSON with a broken feature as failed, naming the feature, and leaves the clean table as it was', async () => {
    const broken =
      '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"A"},"geometry":{"type":"Point","coordinates":[4.8,52.3]}},{"type":"Feature","properties":{"name":"B"},"geometry":{"type":"Point","coordinates":[4.9,}}]}';

    const { staged } = await deliver('parks', 'parks.geojson', broken);

    expect(staged).toMatchObject({ status: 'failed', error: expect.stringMatching(/parks\.geojson.*feature 2/) });
    expect(await rows(cleanDeps.pool, 'SELECT name FROM it_formats.parks')).toEqual([{ name: 'Vondelpark' }]);
  });
});
