/**
 * Spreadsheets and Parquet as a user meets them: `civic-etl profile` and `civic-etl load` (the real
 * command), and a Parquet object staged and cleaned by the pipeline. Real files come from
 * test/fixtures/spreadsheets and test/fixtures/parquet (see ORIGIN.md there) with facts computed
 * by Python from the files or what their publishers ship with them.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PipelineInput } from '../../contract/definition.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { getPool } from '../../functions/common/db.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { stageObject, type CleanMessage, type StageDeps } from '../../functions/stage/stage-object.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

function civicEtl(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/civic-etl.mjs', ...args], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'civic-etl-sheets-parquet-'));
const sheets = 'test/fixtures/spreadsheets';
const parquet = 'test/fixtures/parquet';
const sheetFacts = JSON.parse(readFileSync(join(sheets, 'facts.json'), 'utf8'));
const parquetFacts = JSON.parse(readFileSync(join(parquet, 'facts.json'), 'utf8'));

/** A Parquet file with a column of each type, written by hyparquet-writer. */
function typedParquet(): Buffer {
  return Buffer.from(
    parquetWriteBuffer({
      columnData: [
        { name: 'id', data: [1n, 9_007_199_254_740_993n] },
        { name: 'code', data: ['007', '042'] },
        { name: 'price', data: [12.3, 0.05] },
        { name: 'share', data: [0.125, 1e-7] },
        { name: 'open', data: [true, false] },
        { name: 'day', data: [new Date(Date.UTC(2024, 1, 29)), new Date(Date.UTC(2001, 0, 1))] },
        { name: 'at', data: [1_700_000_000_123_456n, 0n] },
      ],
      schema: [
        { name: 'root', num_children: 7 },
        { name: 'id', type: 'INT64', repetition_type: 'REQUIRED' },
        { name: 'code', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
        { name: 'price', type: 'INT32', converted_type: 'DECIMAL', scale: 2, precision: 9, repetition_type: 'REQUIRED' },
        { name: 'share', type: 'DOUBLE', repetition_type: 'REQUIRED' },
        { name: 'open', type: 'BOOLEAN', repetition_type: 'REQUIRED' },
        { name: 'day', type: 'INT32', converted_type: 'DATE', repetition_type: 'REQUIRED' },
        { name: 'at', type: 'INT64', converted_type: 'TIMESTAMP_MICROS', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' }, repetition_type: 'REQUIRED' },
      ],
    }),
  );
}

beforeAll(async () => {
  await (await getPool()).query('DROP SCHEMA IF EXISTS it_sheets_parquet CASCADE');
});

describe('civic-etl profile on a statistics-office workbook', () => {
  it('profiles the sheet that holds the table and says which, and --sheet profiles another', () => {
    const byDefault = civicEtl('profile', join(sheets, 'ons-itis-2018.xlsx'));
    const named = civicEtl('profile', join(sheets, 'ons-itis-2018.xlsx'), '--sheet', sheetFacts.ons.table2.sheet, '--json');

    expect(byDefault.code, byDefault.stderr).toBe(0);
    expect(byDefault.stdout).toContain(`ons-itis-2018.xlsx#${sheetFacts.ons.defaultSheet}: xlsx`);
    expect(byDefault.stdout).toContain(`${sheetFacts.ons.table1.rowCount} records`);
    expect(byDefault.stdout).toContain(`read sheet "${sheetFacts.ons.defaultSheet}" of 11`);
    expect(named.code, named.stderr).toBe(0);
    const profile = JSON.parse(named.stdout);
    expect(profile.header).toEqual(sheetFacts.ons.table2.columns);
    expect(profile.rowCount).toBe(sheetFacts.ons.table2.rowCount);
  });

  it('loads the Destatis life table from its table sheet: one row per age, the footnote left out', async () => {
    const r = civicEtl('load', join(sheets, 'destatis-sterbetafel-2017-2019.xlsx'), '--table', 'it_sheets_parquet.sterbetafel');

    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`rows read ${sheetFacts.destatis.table.rowCount}, loaded ${sheetFacts.destatis.table.rowCount}, rejected 0`);
    const ages = await rows<{ n: number; first: string; last: string }>(
      await getPool(),
      'SELECT count(*)::int AS n, min(vollendetes_alter_in_jahren_x)::text AS first, max(vollendetes_alter_in_jahren_x)::text AS last FROM it_sheets_parquet.sterbetafel',
    );
    expect(ages).toEqual([{ n: sheetFacts.destatis.table.rowCount, first: sheetFacts.destatis.table.first[0], last: sheetFacts.destatis.table.last[0] }]);
  });
});

describe('civic-etl load of Parquet', () => {
  it('makes the columns the types the file declares, a string of digits staying text', async () => {
    const path = join(dir, 'typed.parquet');
    writeFileSync(path, typedParquet());

    const r = civicEtl('load', path, '--table', 'it_sheets_parquet.typed');

    expect(r.code, r.stderr).toBe(0);
    const pool = await getPool();
    const types = await rows(pool, "SELECT column_name AS c, data_type AS t FROM information_schema.columns WHERE table_schema = 'it_sheets_parquet' AND table_name = 'typed' ORDER BY ordinal_position");
    expect(types).toEqual([
      { c: 'id', t: 'bigint' },
      { c: 'code', t: 'text' },
      { c: 'price', t: 'numeric' },
      { c: 'share', t: 'double precision' },
      { c: 'open', t: 'boolean' },
      { c: 'day', t: 'date' },
      { c: 'at', t: 'timestamp with time zone' },
    ]);
    expect(
      await rows(pool, "SELECT id::text, code, price::text, share, open, day::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS at FROM it_sheets_parquet.typed ORDER BY id"),
    ).toEqual([
      { id: '1', code: '007', price: '12.30', share: 0.125, open: true, day: '2024-02-29', at: '2023-11-14 22:13:20.123456' },
      { id: '9007199254740993', code: '042', price: '0.05', share: 1e-7, open: false, day: '2001-01-01', at: '1970-01-01 00:00:00.000000' },
    ]);
  });

  it('loads a real parquet-mr file with its nulls where the repository expects them', async () => {
    const r = civicEtl('load', join(parquet, 'delta_encoding_optional_column.parquet'), '--table', 'it_sheets_parquet.delta');

    expect(r.code, r.stderr).toBe(0);
    const counts = (
      await rows<Record<string, number>>(
        await getPool(),
        `SELECT ${parquetFacts.delta.columns.map((c: string) => `count(*) FILTER (WHERE ${c} IS NULL)::int AS ${c}`).join(', ')} FROM it_sheets_parquet.delta`,
      )
    )[0];
    const reviewType = await rows(
      await getPool(),
      "SELECT data_type FROM information_schema.columns WHERE table_schema = 'it_sheets_parquet' AND table_name = 'delta' AND column_name = 'c_last_review_date'",
    );

    expect(r.stdout).toContain('rows read 100, loaded 100, rejected 0');
    expect(counts).toEqual(parquetFacts.delta.nulls);
    expect(reviewType).toEqual([{ data_type: 'text' }]);
  });

  it('lands a GEOMETRY column in its SRID from PROJJSON, the same shape as the WKT beside it', async () => {
    const r = civicEtl('load', join(parquet, 'crs-projjson.parquet'), '--table', 'it_sheets_parquet.crs', '--srid', '5070');

    expect(r.code, r.stderr).toBe(0);
    expect(await rows(await getPool(), 'SELECT ST_SRID(geom) AS srid, ST_Equals(geom, ST_GeomFromText(wkt, 5070)) AS same FROM it_sheets_parquet.crs')).toEqual([
      { srid: parquetFacts.crs['crs-projjson.parquet'].srid, same: true },
    ]);
  });
});

describe('Parquet through the pipeline', () => {
  const definition: PipelineInput = {
    project: 'it_parquet',
    suppliers: [{ name: 'city' }],
    datasets: [{ name: 'prices', source: { type: 'upload', supplier: 'city' } }],
  };

  it('is staged, profiled into the catalog and cleaned like any other format, found by its content', async () => {
    const { pipeline, pool } = await freshProject(definition);
    const bucket = await freshBucket('it-parquet');
    const handed: CleanMessage[] = [];
    const stageDeps: StageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async (m) => void handed.push(m) };
    const cleanDeps: CleanDeps = { pool, pipeline };

    const staged = await stageObject(stageDeps, await put(bucket, 'incoming/city/prices/prices-2024.parquet', typedParquet()));
    const cleaned = [];
    for (const m of handed) cleaned.push(await cleanLoad(cleanDeps, m.loadId));

    const catalog = await rows(pool, "SELECT structure->'header' AS header, structure->>'format' AS format, row_count::int AS n FROM etl.catalog WHERE project = 'it_parquet'");

    expect(staged).toMatchObject({ status: 'staged', rows: 2 });
    expect(catalog).toEqual([{ header: ['id', 'code', 'price', 'share', 'open', 'day', 'at'], format: 'parquet', n: 2 }]);
    expect(cleaned).toMatchObject([{ status: 'loaded', rowsLoaded: 2 }]);
    expect(await rows(pool, 'SELECT id::text, code, price::text, day::text, _source_line::int AS row FROM it_parquet.prices ORDER BY _source_line')).toEqual([
      { id: '1', code: '007', price: '12.30', day: '2024-02-29', row: 1 },
      { id: '9007199254740993', code: '042', price: '0.05', day: '2001-01-01', row: 2 },
    ]);
  });
});
