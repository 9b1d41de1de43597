import { beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { parsePipeline } from '../../contract/load.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';
import { deliver as deliverObject } from '../helpers/deliver.ts';

const definition: PipelineInput = {
  project: 'it_clean',
  suppliers: [{ name: 'city' }],
  datasets: [
    {
      name: 'sites',
      source: { type: 'upload', supplier: 'city' },
      clean: {
        columns: [
          { name: 'site_id', source: 'Site ID', type: 'integer' },
          { name: 'name', source: 'Site Name', required: true },
          { name: 'area', source: 'Area' },
          { name: 'opened', source: 'Opened', type: 'date' },
          { name: 'visitors', source: 'Visitors', type: 'bigint' },
          { name: 'free', source: 'Free?', type: 'boolean' },
        ],
        key: ['site_id'],
      },
    },
    {
      name: 'areas',
      source: { type: 'upload', supplier: 'city' },
      clean: { columns: [{ name: 'area' }, { name: 'population', type: 'integer' }], key: ['area'] },
    },
  ],
  views: [
    {
      name: 'sites_with_area',
      datasets: ['sites', 'areas'],
      sql: 'SELECT s.site_id, s.name, a.population FROM {{schema}}.sites s LEFT JOIN {{schema}}.areas a ON lower(a.area) = lower(s.area)',
    },
  ],
};

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;

/** Upload, stage and clean one file; returns the clean outcome. */
const deliver = (dataset: string, file: string, body: string, deps = cleanDeps) => deliverObject({ stage: stageDeps, clean: deps }, bucket, `incoming/city/${dataset}/${file}`, body);

const SITES = [
  'Site ID,Site Name,Area,Opened,Visitors,Free?',
  '1,Harbour Park,North,2021-04-01,1200,yes',
  '2,Old Mill,south,2019-13-01,300,no', // bad date: line 3
  '3,,North,2020-01-01,50,yes', // missing required name: line 4
  '4,Library,South,2018-06-30,lots,true', // not a number: line 5
  '1,Harbour Park again,North,2021-04-01,1,yes', // repeats key 1: line 6
  '5,"Museum, ""Modern""",Centre,,,',
  '',
].join('\n');

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-clean');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline };
});

describe('clean', () => {
  it('casts to the declared types and quarantines each failing value with column, raw value, reason and line', async () => {
    const outcome = await deliver('sites', 'sites.csv', SITES);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2, rowsQuarantined: 4 });
    const clean = await rows(cleanDeps.pool, 'SELECT site_id, name, area, opened, visitors, free, _source_line::int AS line FROM it_clean.sites ORDER BY site_id');
    expect(clean).toEqual([
      { site_id: 1, name: 'Harbour Park', area: 'North', opened: new Date('2021-04-01T00:00:00'), visitors: '1200', free: true, line: 2 },
      { site_id: 5, name: 'Museum, "Modern"', area: 'Centre', opened: null, visitors: null, free: null, line: 7 },
    ]);
    const quarantine = await rows(cleanDeps.pool, 'SELECT source_line::int AS line, column_name, raw_value, rule, reason FROM it_clean.sites_quarantine WHERE load_id = $1 ORDER BY 1', [
      (outcome as { loadId: number }).loadId,
    ]);
    expect(quarantine).toEqual([
      { line: 3, column_name: 'opened', raw_value: '2019-13-01', rule: 'type', reason: 'not a valid date: 2019-13-01' },
      { line: 4, column_name: 'name', raw_value: null, rule: 'required', reason: 'required value is missing' },
      { line: 5, column_name: 'visitors', raw_value: 'lots', rule: 'type', reason: 'not a valid bigint: lots' },
      { line: 6, column_name: 'site_id', raw_value: '1', rule: 'unique', reason: 'duplicate key: same site_id as line 2' },
    ]);
    const [ledger] = await rows(cleanDeps.pool, 'SELECT status, rows_read::int, rows_loaded::int, rows_quarantined::int FROM etl.loads WHERE id = $1', [(outcome as { loadId: number }).loadId]);
    expect(ledger).toEqual({ status: 'loaded', rows_read: 6, rows_loaded: 2, rows_quarantined: 4 });
  });

  it('creates a view only once every dataset it reads has been loaded', async () => {
    const before = await rows(cleanDeps.pool, `SELECT to_regclass('it_clean.sites_with_area') IS NOT NULL AS exists`);
    expect(before).toEqual([{ exists: false }]);

    const outcome = await deliver('areas', 'areas.csv', 'area,population\nNorth,1000\nCentre,250\n');

    expect(outcome).toMatchObject({ status: 'loaded', combine: { created: ['sites_with_area'], unchanged: [], waiting: [] } });
    const view = await rows(cleanDeps.pool, 'SELECT site_id, name, population FROM it_clean.sites_with_area ORDER BY site_id');
    expect(view).toEqual([
      { site_id: 1, name: 'Harbour Park', population: 1000 },
      { site_id: 5, name: 'Museum, "Modern"', population: 250 },
    ]);
  });

  it('changes nothing when a clean message is delivered again', async () => {
    const [last] = await rows<{ id: string }>(cleanDeps.pool, `SELECT id FROM etl.loads WHERE project = 'it_clean' AND status = 'loaded' ORDER BY id DESC LIMIT 1`);

    expect(await cleanLoad(cleanDeps, Number(last!.id))).toEqual({ status: 'duplicate', loadId: Number(last!.id) });
  });

  it('replaces the clean table atomically: a reader sees the old rows or the new rows, never a mix', async () => {
    const big = (n: number, offset: number) => ['Site ID,Site Name,Area,Opened,Visitors,Free?', ...Array.from({ length: n }, (_, i) => `${offset + i},S${i},North,2020-01-01,${i},no`), ''].join('\n');
    await deliver('sites', 'big1.csv', big(20_000, 0));
    const reader = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await reader.connect();
    const seen = new Set<number>();
    let reading = true;
    const readLoop = (async () => {
      while (reading) seen.add(Number((await reader.query('SELECT count(*) AS n FROM it_clean.sites_with_area')).rows[0].n));
    })();

    const outcome = await deliver('sites', 'big2.csv', big(30_000, 100_000));
    reading = false;
    await readLoop;
    await reader.end();

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 30_000 });
    expect([...seen].every((n) => n === 20_000 || n === 30_000)).toBe(true);
    expect(seen.has(20_000)).toBe(true);
  });

  it('rejects a file without a declared column, naming it, and keeps the previous table', async () => {
    const outcome = await deliver('areas', 'no-population.csv', 'area,people\nNorth,1\n');

    expect(outcome).toMatchObject({ status: 'failed', error: expect.stringMatching(/column "population" of dataset areas is not in the file's header \("area", "people"\)/) });
    expect(await rows(cleanDeps.pool, 'SELECT area, population FROM it_clean.areas ORDER BY area')).toEqual([
      { area: 'Centre', population: 250 },
      { area: 'North', population: 1000 },
    ]);
    expect(await rows(cleanDeps.pool, `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'it_clean_staging'`)).toEqual([{ n: 0 }]);
  });

  it('keeps a load waiting, with the error noted, while a view cannot be created, and applies it once the view is fixed', async () => {
    const broken = parsePipeline({
      ...definition,
      views: [{ name: 'sites_with_area', datasets: ['sites', 'areas'], sql: 'SELECT no_such_column FROM {{schema}}.areas' }],
    });
    const ref = await put(bucket, 'incoming/city/areas/areas-v3.csv', 'area,population\nNorth,5\n');
    const staged = await stageObject({ ...stageDeps, pipeline: broken }, ref);
    const loadId = (staged as { loadId: number }).loadId;

    await expect(cleanLoad({ ...cleanDeps, pipeline: broken }, loadId)).rejects.toThrow(/view "sites_with_area" cannot be created: column "no_such_column" does not exist/);

    expect(await rows(cleanDeps.pool, 'SELECT status, error FROM etl.loads WHERE id = $1', [loadId])).toEqual([
      { status: 'staged', error: expect.stringMatching(/view "sites_with_area" cannot be created/) },
    ]);
    expect(await rows(cleanDeps.pool, `SELECT population FROM it_clean.areas WHERE area = 'North'`)).toEqual([{ population: 1000 }]);
    expect(await rows(cleanDeps.pool, 'SELECT count(*)::int AS n FROM it_clean.sites_with_area')).toEqual([{ n: 30_000 }]);

    // the definition is fixed (and deployed): the retried message applies the load
    expect(await cleanLoad(cleanDeps, loadId)).toMatchObject({ status: 'loaded', rowsLoaded: 1 });
    expect(await rows(cleanDeps.pool, `SELECT population FROM it_clean.areas`)).toEqual([{ population: 5 }]);
  });

  it('applies one clean of a dataset at a time, and never lets an older file overwrite a newer one', async () => {
    const stageOnly = async (file: string, body: string) => {
      const staged = await stageObject(stageDeps, await put(bucket, `incoming/city/areas/${file}`, body));
      return (staged as { loadId: number }).loadId;
    };
    const older = await stageOnly('older.csv', 'area,population\nOld,1\n');
    const newer = await stageOnly('newer.csv', 'area,population\nNew,2\nNewer,3\n');

    const outcomes = await Promise.all([cleanLoad(cleanDeps, newer), cleanLoad(cleanDeps, older)]);

    expect(outcomes.map((o) => o.status)).toEqual(['loaded', 'skipped']);
    expect(outcomes[1]).toMatchObject({ reason: `superseded: load ${newer} of a newer object was already applied` });
    expect(await rows(cleanDeps.pool, 'SELECT area FROM it_clean.areas ORDER BY area')).toEqual([{ area: 'New' }, { area: 'Newer' }]);
    expect(await rows(cleanDeps.pool, 'SELECT status FROM etl.loads WHERE id = $1', [older])).toEqual([{ status: 'skipped' }]);
  });

  it('rebuilds the clean table when the key changes', async () => {
    const rekeyed = parsePipeline({
      ...definition,
      datasets: [definition.datasets[0]!, { ...definition.datasets[1]!, clean: { columns: [{ name: 'area' }, { name: 'population', type: 'integer' }], key: ['population'] } }],
    });

    const outcome = await deliver('areas', 'rekeyed.csv', 'area,population\nNorth,7\nNorth,8\n', { ...cleanDeps, pipeline: rekeyed });

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2, rowsQuarantined: 0 });
    expect(await rows(cleanDeps.pool, `SELECT count(*)::int AS n FROM it_clean.areas WHERE area = 'North'`)).toEqual([{ n: 2 }]);
  });

  it('counts a blank text value as missing where a value is required', async () => {
    const outcome = await deliver('sites', 'blank-name.csv', 'Site ID,Site Name,Area,Opened,Visitors,Free?\n9,"   ",North,,,\n10,Pier,North,,,\n');

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 1 });
  });
});
