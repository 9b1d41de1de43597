/**
 * A view over a nested table (`read.arrays: explode`) that no record has filled yet — an Ed-Fi
 * district whose students have no characteristics — waits for it, as it waits for a dataset's
 * table, instead of failing every load of the datasets it reads. A missing table that nothing
 * will make (a typo) still fails the load, naming the view.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import type { PipelineDefinition, PipelineInput } from '../../contract/definition.ts';
import { parsePipeline } from '../../contract/load.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

const definition: PipelineInput = {
  project: 'it_views_nested_wait',
  suppliers: [{ name: 'district' }],
  datasets: [{ name: 'people', source: { type: 'upload', supplier: 'district' }, read: { arrays: 'explode' }, clean: { key: ['id'], mode: 'upsert' } }],
  views: [
    { name: 'people_named', datasets: ['people'], sql: 'select id, name from {{schema}}.people' },
    { name: 'pets_per_person', datasets: ['people'], sql: 'select parent_id as id, count(*)::int as pets from {{schema}}.people_pets group by 1' },
    { name: 'pets_total', datasets: ['people'], sql: 'select coalesce(sum(pets), 0)::int as pets from {{schema}}.pets_per_person' },
  ],
};

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;

/** Upload, stage and clean one file: the outcome of its records' load (nested tables are cleaned with it). */
async function deliver(file: string, records: unknown[], pipeline: PipelineDefinition = cleanDeps.pipeline) {
  const ref = await put(bucket, `incoming/district/people/${file}`, JSON.stringify(records));
  const notified: number[] = [];
  const staged = await stageObject({ ...stageDeps, pipeline, notifyClean: async ({ loadId }) => void notified.push(loadId) }, ref);
  if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
  return cleanLoad({ ...cleanDeps, pipeline }, notified[0]!);
}

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-views-wait');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline };
});

describe('a view over a nested table not there yet', () => {
  it('waits, with the views over it, and the load goes through', async () => {
    const outcome = await deliver('one.json', [
      { id: 'a', name: 'Ann' },
      { id: 'b', name: 'Bo' },
    ]);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2 });
    if (outcome.status !== 'loaded') return;
    expect(outcome.combine.created).toEqual(['people_named']);
    expect(outcome.combine.waiting).toEqual([
      { view: 'pets_per_person', missing: ['people_pets'] },
      { view: 'pets_total', missing: ['pets_per_person'] },
    ]);
  });

  it('is created once a record brings the nested table', async () => {
    const outcome = await deliver('two.json', [{ id: 'c', name: 'Cy', pets: [{ kind: 'cat' }, { kind: 'dog' }] }]);

    expect(outcome).toMatchObject({ status: 'loaded', combine: { waiting: [] } });
    expect(await rows(cleanDeps.pool, 'SELECT id, pets FROM it_views_nested_wait.pets_per_person')).toEqual([{ id: 'c', pets: 2 }]);
    expect(await rows(cleanDeps.pool, 'SELECT pets FROM it_views_nested_wait.pets_total')).toEqual([{ pets: 2 }]);
  });

  it('still fails the load for a table nothing will make, naming the view', async () => {
    const typo = parsePipeline({ ...definition, views: [{ name: 'typo', datasets: ['people'], sql: 'select * from {{schema}}.peple_pets' }] });

    // a view error is retried (then dead-lettered) until the definition is fixed: the clean throws it
    await expect(deliver('three.json', [{ id: 'd', name: 'Di' }], typo)).rejects.toThrow('view "typo" cannot be created: relation "it_views_nested_wait.peple_pets" does not exist');
    expect(await rows(cleanDeps.pool, `SELECT count(*)::int AS n FROM it_views_nested_wait.people WHERE id = 'd'`)).toEqual([{ n: 0 }]);
  });
});
