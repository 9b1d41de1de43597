import { beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { parsePipeline } from '../../contract/load.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';
import { deliver as deliverObject } from '../helpers/deliver.ts';
import { renderedReasons } from '../helpers/reasons.ts';

const columns = [{ name: 'id', type: 'integer' as const }, { name: 'name' }, { name: 'seats', type: 'integer' as const }];
const definition: PipelineInput = {
  project: 'it_modes',
  suppliers: [{ name: 'city' }],
  datasets: [
    { name: 'added', source: { type: 'upload', supplier: 'city' }, clean: { columns, key: ['id'], mode: 'append' } },
    { name: 'merged', source: { type: 'upload', supplier: 'city' }, clean: { columns, key: ['id'], mode: 'upsert' } },
    { name: 'versioned', source: { type: 'upload', supplier: 'city' }, clean: { columns, key: ['id'], mode: 'history' } },
  ],
};

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;
let n = 0;

const deliver = (dataset: string, body: string) => deliverObject({ stage: stageDeps, clean: cleanDeps }, bucket, `incoming/city/${dataset}/file-${++n}.csv`, body);

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-modes');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline };
});

describe('load modes', () => {
  it('append adds the rows of each load, and quarantines a key an earlier load brought', async () => {
    await deliver('added', 'id,name,seats\n1,Oak,10\n2,Elm,20\n');
    const second = await deliver('added', 'id,name,seats\n3,Ash,30\n1,Oak again,99\n');

    expect(second).toMatchObject({ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 1 });
    expect(await rows(cleanDeps.pool, 'SELECT id, name, seats FROM it_modes.added ORDER BY id')).toEqual([
      { id: 1, name: 'Oak', seats: 10 },
      { id: 2, name: 'Elm', seats: 20 },
      { id: 3, name: 'Ash', seats: 30 },
    ]);
    expect(await rows(cleanDeps.pool, 'SELECT source_line::int, rule, reason FROM it_modes.added_quarantine')).toEqual([
      { source_line: 3, rule: 'unique', reason: expect.stringMatching(/^key already in the table \(load \d+, line 2\)$/) },
    ]);
  });

  it('upsert replaces the rows of the keys a load brings and keeps the others', async () => {
    await deliver('merged', 'id,name,seats\n1,Oak,10\n2,Elm,20\n');
    const second = await deliver('merged', 'id,name,seats\n2,Elm (renovated),25\n3,Ash,30\n');

    expect(second).toMatchObject({ status: 'loaded', rowsLoaded: 2, rowsQuarantined: 0 });
    expect(await rows(cleanDeps.pool, 'SELECT id, name, seats FROM it_modes.merged ORDER BY id')).toEqual([
      { id: 1, name: 'Oak', seats: 10 },
      { id: 2, name: 'Elm (renovated)', seats: 25 },
      { id: 3, name: 'Ash', seats: 30 },
    ]);
  });

  it('upsert applies loads cleaned out of order (parts of one fetch): each key keeps its newest row', async () => {
    const definitionOf = { ...definition, datasets: [{ name: 'parts', source: { type: 'upload' as const, supplier: 'city' }, clean: { columns, key: ['id'], mode: 'upsert' as const } }] };
    const { pipeline, pool } = await freshProject({ ...definitionOf, project: 'it_modes_parts' });
    const deps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
    const stage = async (body: string) => {
      const staged = await stageObject(deps, await put(bucket, `incoming/city/parts/part-${++n}.csv`, body));
      return (staged as { loadId: number }).loadId;
    };
    const older = await stage('id,name,seats\n1,Oak,10\n2,Elm,20\n');
    const newer = await stage('id,name,seats\n2,Elm (renovated),25\n3,Ash,30\n');

    expect(await cleanLoad({ pool, pipeline }, newer)).toMatchObject({ status: 'loaded', rowsLoaded: 2 });
    // the older part still brings key 1; its key 2 is older than the row there
    expect(await cleanLoad({ pool, pipeline }, older)).toMatchObject({ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 1 });
    expect(await rows(pool, 'SELECT id, name, seats FROM it_modes_parts.parts ORDER BY id')).toEqual([
      { id: 1, name: 'Oak', seats: 10 },
      { id: 2, name: 'Elm (renovated)', seats: 25 },
      { id: 3, name: 'Ash', seats: 30 },
    ]);
    expect(await rows(pool, 'SELECT source_line::int, rule, reason FROM it_modes_parts.parts_quarantine')).toEqual([
      { source_line: 3, rule: 'superseded', reason: `a newer object (load ${newer}) already brought this key` },
    ]);
  });

  it('history keeps every version: changed and vanished keys are closed, new versions open, unchanged rows stay', async () => {
    await deliver('versioned', 'id,name,seats\n1,Oak,10\n2,Elm,20\n3,Ash,30\n');
    const second = await deliver('versioned', 'id,name,seats\n1,Oak,10\n2,Elm,25\n4,Yew,40\n');

    expect(second).toMatchObject({ status: 'loaded', rowsLoaded: 2 }); // new versions: 2 changed, 4 new
    const all = await rows<{ id: number; seats: number; current: boolean }>(cleanDeps.pool, 'SELECT id, seats, valid_to IS NULL AS current FROM it_modes.versioned ORDER BY id, valid_from');
    expect(all).toEqual([
      { id: 1, seats: 10, current: true },
      { id: 2, seats: 20, current: false },
      { id: 2, seats: 25, current: true },
      { id: 3, seats: 30, current: false },
      { id: 4, seats: 40, current: true },
    ]);
    expect(await rows(cleanDeps.pool, 'SELECT id, seats FROM it_modes.versioned_current ORDER BY id')).toEqual([
      { id: 1, seats: 10 },
      { id: 2, seats: 25 },
      { id: 4, seats: 40 },
    ]);
    const closed = await rows<{ ok: boolean }>(
      cleanDeps.pool,
      `SELECT bool_and(o.valid_to = n.valid_from) AS ok FROM it_modes.versioned o JOIN it_modes.versioned n ON n.id = o.id AND n.valid_to IS NULL WHERE o.valid_to IS NOT NULL`,
    );
    expect(closed).toEqual([{ ok: true }]); // a version ends when the next begins
  });

  it('refuses upsert or history without a key, at validation', () => {
    const bad = { ...definition, datasets: [{ name: 'x', source: { type: 'upload' as const, supplier: 'city' }, clean: { columns, mode: 'upsert' as const } }] };

    expect(() => parsePipeline(bad)).toThrow(/dataset "x" → clean.mode: mode upsert needs a key \(clean.key\)/);
  });
});

describe('the reasons of the rows this file set aside, in a French or Dutch report', () => {
  it('are each rendered in French and in Dutch: a key already in the table, a key a newer object brought', async () => {
    const rendered = [await renderedReasons(cleanDeps.pool, 'it_modes'), await renderedReasons(cleanDeps.pool, 'it_modes_parts')];
    expect(rendered.flatMap((r) => r.rules).sort()).toEqual(['superseded', 'unique']);
    expect(rendered.flatMap((r) => r.untranslated)).toEqual([]);
  });
});
