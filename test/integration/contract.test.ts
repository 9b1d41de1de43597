import { PutObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { declarationMetadata, type ObjectDeclaration } from '../../contract/objects.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { datasetLoads, describeReport } from '../../functions/common/report.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import { parsePipeline } from '../../contract/load.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

const definition: PipelineInput = {
  project: 'it_contract',
  suppliers: [{ name: 'city' }],
  datasets: [
    // the Ed-Fi preset's shape: columns from detection, a key, mode upsert
    { name: 'students', source: { type: 'upload', supplier: 'city' }, clean: { key: ['id'], mode: 'upsert' } },
    { name: 'rooms', source: { type: 'upload', supplier: 'city' }, clean: { columns: [{ name: 'id', type: 'integer' }, { name: 'name' }], key: ['id'], mode: 'upsert' } },
    { name: 'parks', source: { type: 'upload', supplier: 'city' }, clean: { key: ['id'] } },
    { name: 'orders', source: { type: 'upload', supplier: 'city' }, read: { arrays: 'explode' }, clean: {} },
    { name: 'fetched', source: { type: 'http', url: 'http://127.0.0.1:9/fetched.csv' }, clean: { key: ['id'], mode: 'upsert' } },
    { name: 'codes', source: { type: 'http', url: 'http://127.0.0.1:9/codes.json' }, read: { arrays: 'explode' }, clean: { key: ['code'], mode: 'upsert' } },
    { name: 'visits', source: { type: 'http', url: 'http://127.0.0.1:9/visits.json' }, clean: { key: ['code', 'yr'], mode: 'append' } },
    { name: 'albums', source: { type: 'upload', supplier: 'city' }, read: { arrays: 'explode' }, clean: { key: ['id'] } },
  ],
};

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;
let n = 0;

const toClean: number[] = [];

/** Upload, stage, and clean what the stage step hands on (the first clean's outcome: the object's own table). */
async function deliver(dataset: string, body: string, name = `file-${++n}.csv`) {
  const staged = await stageObject(stageDeps, await put(bucket, `incoming/city/${dataset}/${name}`, body));
  if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
  const outcomes = [];
  for (const id of toClean.splice(0)) outcomes.push(await cleanLoad(cleanDeps, id));
  return outcomes[0]!;
}

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-contract');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async (m) => void toClean.push(m.loadId) };
  cleanDeps = { pool, pipeline };
});

describe('no silent loss', () => {
  it('keeps every row of a keyed dataset when a later file lacks one of its columns, and says so', async () => {
    // prepare: three students, then an update of one whose file has no middle_name column at all
    await deliver('students', 'id,first_name,middle_name\n1,Ann,Marie\n2,Bo,\n3,Cy,Lee\n');

    // act
    const update = await deliver('students', 'id,first_name\n3,Cyrus\n');

    // assess: the other rows keep their values; the updated record is the record as sent
    expect(update).toMatchObject({ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 0 });
    expect(await rows(cleanDeps.pool, 'SELECT id::int, first_name, middle_name FROM it_contract.students ORDER BY id')).toEqual([
      { id: 1, first_name: 'Ann', middle_name: 'Marie' },
      { id: 2, first_name: 'Bo', middle_name: null },
      { id: 3, first_name: 'Cyrus', middle_name: null },
    ]);
    const [latest] = await datasetLoads(cleanDeps.pool, 'it_contract', 'students', 1);
    expect(latest!.report!.schemaChanges).toEqual([{ change: 'missing', column: 'middle_name', from: 'text', to: null, policy: 'evolve', action: 'kept' }]);
    // what `civic-etl status students` prints
    expect(describeReport(latest!.report!)).toContain(`  column "middle_name" is missing from the file: the column stays, empty in this file's rows; rows of earlier files keep their values`);
    expect(describeReport(latest!.report!)).toContain('This file replaces nothing: it brings changes.');
  });

  it('refuses to rebuild a table whose definition changed when the load does not replace its rows, and keeps them', async () => {
    // prepare: two rooms under key id
    await deliver('rooms', 'id,name\n1,Hall\n2,Gym\n');
    const rekeyed = parsePipeline({ ...definition, datasets: definition.datasets.map((d) => (d.name === 'rooms' ? { ...d, clean: { ...d.clean, key: ['name'] } } : d)) });
    const deps = { ...cleanDeps, pipeline: rekeyed };

    // act: an upsert file arrives under the new key
    await stageObject({ ...stageDeps, pipeline: rekeyed }, await put(bucket, 'incoming/city/rooms/more.csv', 'id,name\n3,Lab\n'));
    const cleaned = await cleanLoad(deps, toClean.pop()!);

    // assess: a clear failure that names the way out; the table is as it was
    expect(cleaned).toMatchObject({ status: 'failed', error: expect.stringMatching(/no longer matches.*would lose 2 rows.*replaces nothing.*civic-etl replay rooms/s) });
    expect(await rows(cleanDeps.pool, 'SELECT id, name FROM it_contract.rooms ORDER BY id')).toEqual([
      { id: 1, name: 'Hall' },
      { id: 2, name: 'Gym' },
    ]);
  });

  it('applies a supplier upload by the dataset’s mode, whatever metadata the supplier sets', async () => {
    // prepare: a supplier "declares" that its snapshot replaces nothing
    await deliver('parks', 'id,name\n1,Oak\n2,Elm\n');
    const metadata = declarationMetadata({ contract: 1, replaces: 'nothing', holds: 'rows', run: 'r', runStartedAt: '2030-01-01T00:00:00.000Z', part: 1 });
    const out = await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: 'incoming/city/parks/next.csv', Body: 'id,name\n3,Ash\n', Metadata: metadata }));

    // act
    await stageObject(stageDeps, { bucket, key: 'incoming/city/parks/next.csv', versionId: out.VersionId });
    await cleanLoad(cleanDeps, toClean.pop()!);

    // assess: mode replace, so the upload is the whole dataset
    expect(await rows(cleanDeps.pool, 'SELECT id::int, name FROM it_contract.parks ORDER BY id')).toEqual([{ id: 3, name: 'Ash' }]);
  });

  it('ends with the newest version of a file when two workers stage and clean its versions at the same moment', async () => {
    // prepare: two versions of one key; the workers get the events newest first
    const v1 = await put(bucket, 'incoming/city/parks/parks.csv', 'id,name\n10,First\n');
    const v2 = await put(bucket, 'incoming/city/parks/parks.csv', 'id,name\n20,Second\n');

    // act: two workers at once, each with its own connection from the pool
    await Promise.all([stageObject(stageDeps, v2), stageObject(stageDeps, v1)]);
    await Promise.all(toClean.splice(0).map((id) => cleanLoad(cleanDeps, id)));

    // assess: whichever took the dataset's lock first, the newer version is what the table holds
    expect(await rows(cleanDeps.pool, 'SELECT id::int, name FROM it_contract.parks')).toEqual([{ id: 20, name: 'Second' }]);
    expect(
      await rows(cleanDeps.pool, `SELECT object_version = $1 AS newest, status FROM etl.loads WHERE project = 'it_contract' AND object_key = 'incoming/city/parks/parks.csv' ORDER BY id`, [v2.versionId]),
    ).toEqual(expect.arrayContaining([{ newest: true, status: 'loaded' }]));
  });

  it('fails an object whose declaration cannot be read, naming it, and changes nothing', async () => {
    const key = 'raw/fetched/20261207T060000Z/part-00001.csv';
    const out = await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'id,name\n1,x\n', Metadata: { 'civic-etl': '%7B%22contract%22%3A2%7D' } }));

    const staged = await stageObject(stageDeps, { bucket, key, versionId: out.VersionId });

    expect(staged).toMatchObject({ status: 'failed', error: expect.stringMatching(/part-00001\.csv: its x-amz-meta-civic-etl declaration is not valid: contract: .*cannot be applied safely/) });
    expect(await rows(cleanDeps.pool, `SELECT status FROM etl.loads WHERE project = 'it_contract' AND object_key = $1`, [key])).toEqual([{ status: 'failed' }]);
    expect(await rows(cleanDeps.pool, `SELECT to_regclass('it_contract.fetched') AS t`)).toEqual([{ t: null }]);
  });

  it('keeps the nested rows of a dataset without a key with the file they came from', async () => {
    // prepare
    const first = [{ id: 1, lines: [{ sku: 'A' }, { sku: 'B' }] }];
    const second = [{ id: 2, lines: [{ sku: 'C' }] }];

    // act: each file is cleaned as one object, its two tables in one transaction
    await deliver('orders', JSON.stringify(first), 'first.json');
    await deliver('orders', JSON.stringify(second), 'second.json');

    // assess: mode replace — the second file replaced the first, nested rows included
    expect(await rows(cleanDeps.pool, 'SELECT id::int FROM it_contract.orders')).toEqual([{ id: 2 }]);
    expect(await rows(cleanDeps.pool, 'SELECT parent::int, index::int, sku FROM it_contract.orders_lines')).toEqual([{ parent: 1, index: 0, sku: 'C' }]);
  });

  /** Put a connector's object (with its declaration) into the bucket, stage it and clean what the stage step hands on. */
  async function fetched(key: string, records: unknown[], declaration: Omit<ObjectDeclaration, 'contract' | 'run'> & { run?: string }) {
    const run = declaration.run ?? key.split('/')[2]!;
    const out = await s3Client().send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: records.map((r) => JSON.stringify(r)).join('\n'), Metadata: declarationMetadata({ contract: 1, ...declaration, run }) }),
    );
    await stageObject(stageDeps, { bucket, key, versionId: out.VersionId });
    const outcomes = [];
    for (const id of toClean.splice(0)) outcomes.push(await cleanLoad(cleanDeps, id));
    return outcomes;
  }

  it('applies key changes to a table keyed by the natural key: the old key leaves with its nested rows and stays gone; an object not in their shape is refused whole', async () => {
    await fetched(
      'raw/codes/r1/part-1.ndjson',
      [
        { code: 'A', name: 'Ash', tags: ['old'] },
        { code: 'B', name: 'Birch' },
      ],
      {
        replaces: 'run',
        holds: 'rows',
        runStartedAt: '2026-12-01T00:00:00.000Z',
        part: 1,
      },
    );

    // without oldKeyValues and newKeyValues: refused whole, the table as it was
    const [refused] = await fetched('raw/codes/r2/changes-1.ndjson', [{ old: { code: 'A' }, new: { code: 'C' } }], {
      replaces: 'nothing',
      holds: 'keyChanges',
      identifiedBy: ['rid'],
      runStartedAt: '2026-12-02T00:00:00.000Z',
      part: 1,
    });
    expect(refused).toMatchObject({ status: 'failed', error: expect.stringMatching(/key changes without "oldKeyValues" and "newKeyValues" .*nothing is applied/) });
    expect(await rows(cleanDeps.pool, 'SELECT code, name FROM it_contract.codes ORDER BY code')).toEqual([
      { code: 'A', name: 'Ash' },
      { code: 'B', name: 'Birch' },
    ]);

    // as Ed-Fi's /keyChanges has them: A becomes C, and the run's rows (a later part) bring C
    const [moved] = await fetched('raw/codes/r3/keychanges-1.ndjson', [{ rid: 'x1', changeVersion: 7, oldKeyValues: { code: 'A' }, newKeyValues: { code: 'C' } }], {
      replaces: 'nothing',
      holds: 'keyChanges',
      identifiedBy: ['rid'],
      runStartedAt: '2026-12-03T00:00:00.000Z',
      part: 1,
    });
    expect(moved).toMatchObject({ status: 'loaded', rowsDeleted: 1 });
    expect(await rows(cleanDeps.pool, 'SELECT parent_code, value FROM it_contract.codes_tags ORDER BY 1')).toEqual([]);
    await fetched('raw/codes/r3/part-2.ndjson', [{ code: 'C', name: 'Ash', tags: ['new'] }], { replaces: 'nothing', holds: 'rows', runStartedAt: '2026-12-03T00:00:00.000Z', part: 2 });
    // an object older than the key change, cleaned after it, still has A: set aside, nested rows too
    const [late] = await fetched('raw/codes/r2b/part-1.ndjson', [{ code: 'A', name: 'Ash (late)', tags: ['late'] }], {
      replaces: 'nothing',
      holds: 'rows',
      runStartedAt: '2026-12-02T12:00:00.000Z',
      part: 1,
    });

    expect(late).toMatchObject({ status: 'loaded', rowsLoaded: 0, rowsQuarantined: 1 });
    expect(await rows(cleanDeps.pool, 'SELECT code, name FROM it_contract.codes ORDER BY code')).toEqual([
      { code: 'B', name: 'Birch' },
      { code: 'C', name: 'Ash' },
    ]);
    expect(await rows(cleanDeps.pool, 'SELECT parent_code, value FROM it_contract.codes_tags ORDER BY 1')).toEqual([{ parent_code: 'C', value: 'new' }]);
    expect(await rows(cleanDeps.pool, 'SELECT rule, reason FROM it_contract.codes_quarantine WHERE load_id = $1', [late!.loadId])).toEqual([
      { rule: 'superseded', reason: expect.stringMatching(/^a newer object \(load \d+\) changed this record's key$/) },
    ]);
  });

  it('names deleted rows by their typed values, also by several columns, and keeps them deleted in every mode', async () => {
    // prepare: an append dataset named by (code, yr) — yr an integer column
    await fetched(
      'raw/visits/r1/part-1.ndjson',
      [
        { code: 'A', yr: 2024, n: 1 },
        { code: 'A', yr: 2025, n: 2 },
        { code: 'B', yr: 2024, n: 3 },
      ],
      {
        replaces: 'nothing',
        holds: 'rows',
        runStartedAt: '2026-12-01T00:00:00.000Z',
        part: 1,
      },
    );

    // act: a deletion of (A, 2024), written as text as a source sends it (`02024` is the same year)
    const [deleted] = await fetched('raw/visits/r3/deletes-1.ndjson', [{ code: 'A', yr: '02024' }], {
      replaces: 'nothing',
      holds: 'deletions',
      identifiedBy: ['code', 'yr'],
      runStartedAt: '2026-12-03T00:00:00.000Z',
      part: 1,
    });
    // then an object older than the deletion, cleaned after it, that still has (A, 2024)
    const [late] = await fetched(
      'raw/visits/r2/part-1.ndjson',
      [
        { code: 'A', yr: 2024, n: 9 },
        { code: 'C', yr: 2024, n: 4 },
      ],
      {
        replaces: 'nothing',
        holds: 'rows',
        runStartedAt: '2026-12-02T00:00:00.000Z',
        part: 1,
      },
    );

    // assess
    expect(deleted).toMatchObject({ status: 'loaded', rowsDeleted: 1 });
    expect(late).toMatchObject({ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 1 });
    expect(await rows(cleanDeps.pool, 'SELECT code, yr::int, n::int FROM it_contract.visits ORDER BY code, yr')).toEqual([
      { code: 'A', yr: 2025, n: 2 },
      { code: 'B', yr: 2024, n: 3 },
      { code: 'C', yr: 2024, n: 4 },
    ]);
    expect(await rows(cleanDeps.pool, 'SELECT rule FROM it_contract.visits_quarantine')).toEqual([{ rule: 'deleted' }]);
  });

  it('empties the nested tables when the dataset’s table is rebuilt by a snapshot', async () => {
    // prepare: a snapshot with nested rows, then the definition's key changes
    await deliver(
      'albums',
      JSON.stringify([
        { id: 1, tracks: ['x', 'y'] },
        { id: 2, tracks: ['z'] },
      ]),
      'a.json',
    );
    const rekeyed = parsePipeline({ ...definition, datasets: definition.datasets.map((d) => (d.name === 'albums' ? { ...d, clean: { key: ['id', 'title'] } } : d)) });

    // act: the next snapshot, under the new key
    await stageObject({ ...stageDeps, pipeline: rekeyed }, await put(bucket, 'incoming/city/albums/b.json', JSON.stringify([{ id: 1, title: 'One', tracks: ['x'] }])));
    for (const id of toClean.splice(0)) await cleanLoad({ ...cleanDeps, pipeline: rekeyed }, id);

    // assess: only the new snapshot's nested rows
    expect(await rows(cleanDeps.pool, 'SELECT id::int, title FROM it_contract.albums')).toEqual([{ id: 1, title: 'One' }]);
    expect(await rows(cleanDeps.pool, 'SELECT parent_id::int, parent_title, index::int, value FROM it_contract.albums_tracks')).toEqual([{ parent_id: 1, parent_title: 'One', index: 0, value: 'x' }]);
  });
});
