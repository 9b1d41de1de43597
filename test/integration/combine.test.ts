import { beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import type { CleanDeps } from '../../functions/clean/clean-load.ts';
import type { StageDeps } from '../../functions/stage/stage-object.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { parsePipeline } from '../../contract/load.ts';
import { recreateViews } from '../../functions/combine/views.ts';
import { freshBucket, freshProject, rows } from './support.ts';
import { deliver as deliverObject } from '../helpers/deliver.ts';

/** Two square areas side by side near the Dam (WGS 84), and one more with nobody in it. */
const square = (x: number, y: number, s: number) => [
  [
    [x, y],
    [x + s, y],
    [x + s, y + s],
    [x, y + s],
    [x, y],
  ],
];
const AREAS = {
  type: 'FeatureCollection',
  features: [
    { type: 'Feature', properties: { code: 'A', name: 'Burgwallen-Oude Zijde', population: 5000 }, geometry: { type: 'Polygon', coordinates: square(4.88, 52.36, 0.01) } },
    { type: 'Feature', properties: { code: 'B', name: 'Grachtengordel-West', population: 20000 }, geometry: { type: 'Polygon', coordinates: square(4.89, 52.36, 0.01) } },
    { type: 'Feature', properties: { code: 'C', name: 'Empty quarter', population: 0 }, geometry: { type: 'Polygon', coordinates: square(4.95, 52.36, 0.01) } },
  ],
};
// sites: two in A, one in B, one in no area; names written as suppliers write them
const SITES = ['site,area,lat,lon', 'Library,BURGWALLEN - OUDE ZIJDE,52.365,4.885', 'School,burgwallen oude zijde,52.366,4.886', 'Pool,Grachtengordel-West ,52.365,4.895', 'Farm,Nowhere,52.300,4.700'].join(
  '\n',
);

const definition: PipelineInput = {
  project: 'it_combine',
  suppliers: [{ name: 'city' }],
  datasets: [
    { name: 'areas', reference: true, source: { type: 'upload', supplier: 'city' }, geometry: { srid: 28992 } },
    { name: 'sites', source: { type: 'upload', supplier: 'city' } },
  ],
  views: [
    { name: 'sites_by_name', combine: { from: 'sites', join: 'areas', how: 'attribute', on: { from: 'area', join: 'name' }, columns: ['code'] } },
    { name: 'sites_in_areas', combine: { from: 'sites', join: 'areas', how: 'contains', columns: ['code'] } },
    { name: 'sites_near_areas', combine: { from: 'sites', join: 'areas', how: 'nearest', within: 5000, columns: ['code'] } },
    {
      name: 'sites_per_area',
      materialized: true,
      combine: { from: 'sites', join: 'areas', how: 'contains', per: 'join', perCapita: { column: 'population', per: 10000 } },
    },
  ],
};

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;
let n = 0;

const deliver = (dataset: string, file: string, body: string) => deliverObject({ stage: stageDeps, clean: cleanDeps }, bucket, `incoming/city/${dataset}/${++n}-${file}`, body);

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-combine');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline };
  await deliver('areas', 'areas.geojson', JSON.stringify(AREAS));
  await deliver('sites', 'sites.csv', SITES);
});

describe('combines', () => {
  it('join by name ignoring case, accents, punctuation and spaces', async () => {
    expect(await rows(cleanDeps.pool, 'SELECT site, areas_code AS code FROM it_combine.sites_by_name ORDER BY site')).toEqual([
      { site: 'Farm', code: null },
      { site: 'Library', code: 'A' },
      { site: 'Pool', code: 'B' },
      { site: 'School', code: 'A' },
    ]);
  });

  it('put each point in the polygon that contains it, across SRIDs (points in 4326, areas in RD New)', async () => {
    expect(await rows(cleanDeps.pool, 'SELECT site, areas_code AS code FROM it_combine.sites_in_areas ORDER BY site')).toEqual([
      { site: 'Farm', code: null },
      { site: 'Library', code: 'A' },
      { site: 'Pool', code: 'B' },
      { site: 'School', code: 'A' },
    ]);
  });

  it('find the nearest area within a distance, with the distance in metres', async () => {
    const near = await rows<{ site: string; code: string | null; d: number | null }>(
      cleanDeps.pool,
      'SELECT site, areas_code AS code, areas_distance_m::float AS d FROM it_combine.sites_near_areas ORDER BY site',
    );

    expect(near.find((r) => r.site === 'Library')).toEqual({ site: 'Library', code: 'A', d: 0 });
    expect(near.find((r) => r.site === 'Farm')).toEqual({ site: 'Farm', code: null, d: null }); // > 5 km from every area
  });

  it('count per area, every area, with programs per 10,000 residents, in a materialized view refreshed by each clean', async () => {
    const per = () => rows(cleanDeps.pool, 'SELECT code, sites_count AS count, sites_per_10000::float AS per10k FROM it_combine.sites_per_area ORDER BY code');

    expect(await per()).toEqual([
      { code: 'A', count: 2, per10k: 4 },
      { code: 'B', count: 1, per10k: 0.5 },
      { code: 'C', count: 0, per10k: null },
    ]);
    await deliver('sites', 'sites.csv', `${SITES}\nMuseum,Grachtengordel West,52.366,4.896\n`);
    expect((await per())[1]).toEqual({ code: 'B', count: 2, per10k: 1 });
  });

  it('grant the analyst role the views and the reference data, and not the other tables', async () => {
    const client = await cleanDeps.pool.connect();
    try {
      await client.query('BEGIN; SET LOCAL ROLE it_combine_analyst');
      const view = await client.query('SELECT count(*)::int AS n FROM it_combine.sites_in_areas');
      const reference = await client.query('SELECT count(*)::int AS n FROM it_combine.areas');
      await client.query('SAVEPOINT before_denied');
      const table = await client.query('SELECT 1 FROM it_combine.sites').catch((e: Error) => e);
      expect(view.rows).toEqual([{ n: 5 }]);
      expect(reference.rows).toEqual([{ n: 3 }]);
      expect((table as Error).message).toMatch(/permission denied for table sites/);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('check combines at validation: unknown datasets, missing options', () => {
    const bad = (combine: object) => parsePipeline({ ...definition, views: [{ name: 'v', combine } as never] });

    expect(() => bad({ from: 'sites', join: 'nope', how: 'contains' })).toThrow(/views\[0\] → combine.join|unknown dataset "nope"/);
    expect(() => bad({ from: 'sites', join: 'areas', how: 'attribute' })).toThrow(/how: attribute needs on/);
    expect(() => bad({ from: 'sites', join: 'areas', how: 'nearest' })).toThrow(/how: nearest needs within/);
  });
});

describe('a view whose SQL is two statements', () => {
  it('is refused before the database runs any of it, naming the view, and the tables stay', async () => {
    const sneaky = parsePipeline({ ...definition, views: [{ name: 'sneaky', datasets: ['sites'], sql: 'SELECT site FROM {{schema}}.sites; DROP TABLE {{schema}}.sites' }] });
    const client = await cleanDeps.pool.connect();
    try {
      await client.query('BEGIN');
      await expect(recreateViews(client, sneaky)).rejects.toThrow(
        'view "sneaky" cannot be created: the SQL holds 2 statements, where a view is exactly one SELECT; the second starts with "DROP TABLE "it_combine".sites"',
      );
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    expect(await rows(cleanDeps.pool, `SELECT to_regclass('it_combine.sites') IS NOT NULL AS kept`)).toEqual([{ kept: true }]);
  });
});
