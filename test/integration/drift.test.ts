import { beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import type { CleanDeps } from '../../functions/clean/clean-load.ts';
import { compareSchemas, widerType } from '../../functions/clean/drift.ts';
import type { StageDeps } from '../../functions/stage/stage-object.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { freshBucket, freshProject, rows } from './support.ts';
import { deliver as deliverObject } from '../helpers/deliver.ts';
import { renderedReasons } from '../helpers/reasons.ts';

const definition: PipelineInput = {
  project: 'it_drift',
  suppliers: [{ name: 'city' }],
  datasets: [
    { name: 'grants', source: { type: 'upload', supplier: 'city' } }, // drift: evolve (the default)
    { name: 'permits', source: { type: 'upload', supplier: 'city' }, drift: 'freeze' },
    { name: 'meters', source: { type: 'upload', supplier: 'city' }, drift: 'quarantine' },
    {
      name: 'wards',
      source: { type: 'upload', supplier: 'city' },
      drift: 'freeze',
      clean: { columns: [{ name: 'ward' }, { name: 'population', type: 'integer' }] },
    },
    { name: 'stops', source: { type: 'upload', supplier: 'city' } },
    { name: 'sensors', source: { type: 'upload', supplier: 'city' }, drift: 'quarantine' },
    { name: 'zones', source: { type: 'upload', supplier: 'city' }, clean: { columns: [{ name: 'zone' }, { name: 'area', type: 'numeric' }] } },
  ],
  views: [
    { name: 'grant_totals', datasets: ['grants'], sql: 'SELECT name, amount * 2 AS doubled FROM {{schema}}.grants' },
    { name: 'grants_all', datasets: ['grants'], sql: 'SELECT * FROM {{schema}}.grants' },
    { name: 'permit_scores', datasets: ['permits'], sql: 'SELECT id, score FROM {{schema}}.permits' },
  ],
};

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;

/** Upload, stage and clean one file; returns the clean outcome. */
const deliver = (dataset: string, file: string, lines: string[]) => deliverObject({ stage: stageDeps, clean: cleanDeps }, bucket, `incoming/city/${dataset}/${file}`, `${lines.join('\n')}\n`);

/** The clean table's columns and types, in table order. */
const columnsOf = (table: string) =>
  rows(
    cleanDeps.pool,
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [`it_drift.${table}`],
  );

const ledger = async (loadId: number) =>
  (await rows<{ status: string; error: string | null; schema_changes: unknown }>(cleanDeps.pool, 'SELECT status, error, schema_changes FROM etl.loads WHERE id = $1', [loadId]))[0]!;

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-drift');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline };
});

describe('telling the kinds of drift apart', () => {
  it('pairs columns by name, then by spelling, then by place and type; the rest are added or missing', () => {
    const clean = [
      { name: 'id', type: 'bigint' },
      { name: 'cost_usd', type: 'double' },
      { name: 'name', type: 'text' },
      { name: 'opened', type: 'date' },
      { name: 'ward', type: 'text' },
    ];
    const load = [
      { name: 'id', type: 'bigint' },
      { name: 'costusd', type: 'double' }, // spelling
      { name: 'label', type: 'text' }, // same place, same type: renamed
      { name: 'opened', type: 'date' },
      { name: 'visits', type: 'bigint' }, // in the place of a text column: not a rename
    ];

    const { pairs, added, missing } = compareSchemas(clean, load);

    expect(pairs.map((p) => [p.clean.name, p.load.name, p.renamed ?? 'same'])).toEqual([
      ['id', 'id', 'same'],
      ['opened', 'opened', 'same'],
      ['cost_usd', 'costusd', 'spelling'],
      ['name', 'label', 'position'],
    ]);
    expect(added.map((c) => c.name)).toEqual(['visits']);
    expect(missing.map((c) => c.name)).toEqual(['ward']);
  });

  it('does not guess a rename when two columns changed between the same neighbours', () => {
    const clean = [
      { name: 'a', type: 'text' },
      { name: 'b', type: 'text' },
      { name: 'c', type: 'text' },
    ];
    const load = [
      { name: 'x', type: 'text' },
      { name: 'y', type: 'text' },
      { name: 'c', type: 'text' },
    ];

    const { pairs, added, missing } = compareSchemas(clean, load);

    expect(pairs.map((p) => p.clean.name)).toEqual(['c']);
    expect(added.map((c) => c.name)).toEqual(['x', 'y']);
    expect(missing.map((c) => c.name)).toEqual(['a', 'b']);
  });

  it('widens to the narrowest type that holds both', () => {
    expect(widerType('integer', 'bigint')).toBe('bigint');
    expect(widerType('bigint', 'double')).toBe('numeric');
    expect(widerType('date', 'timestamptz')).toBe('timestamptz');
    expect(widerType('bigint', 'date')).toBe('text');
  });
});

describe('drift policy evolve', () => {
  let firstLoad: number;

  it('records no drift for the first load of a dataset', async () => {
    const outcome = await deliver('grants', 'g1.csv', ['id,name,amount,code', '1,Ann,10,A', '2,Bob,20,B']);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2 });
    firstLoad = (outcome as { loadId: number }).loadId;
    expect((await ledger(firstLoad)).schema_changes).toBeNull();
    expect(await rows(cleanDeps.pool, 'SELECT name, doubled::int FROM it_drift.grant_totals ORDER BY name')).toEqual([
      { name: 'Ann', doubled: 20 },
      { name: 'Bob', doubled: 40 },
    ]);
  });

  it('adds new columns, keeps missing ones, fills a renamed one and widens a re-typed one, without breaking views', async () => {
    // a view the pipeline does not know about, reading the column that will be widened
    await cleanDeps.pool.query(`CREATE VIEW it_drift.big_grants AS SELECT name, amount FROM it_drift.grants WHERE amount > 15;
      COMMENT ON VIEW it_drift.big_grants IS 'made by an analyst'`);

    const outcome = await deliver('grants', 'g2.csv', ['id,full_name,amount,visits', '1,Ann,12.5,3', '2,Bob,20,4', '3,Cy,7.25,']);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 3, rowsQuarantined: 0 });
    expect(await columnsOf('grants')).toEqual([
      { name: 'id', type: 'bigint' },
      { name: 'name', type: 'text' },
      { name: 'amount', type: 'numeric' },
      { name: 'code', type: 'text' },
      { name: '_load_id', type: 'bigint' },
      { name: '_source_line', type: 'bigint' },
      { name: 'visits', type: 'bigint' },
    ]);
    expect(await rows(cleanDeps.pool, 'SELECT id::int, name, amount::text, code, visits::int FROM it_drift.grants ORDER BY id')).toEqual([
      { id: 1, name: 'Ann', amount: '12.5', code: null, visits: 3 },
      { id: 2, name: 'Bob', amount: '20', code: null, visits: 4 },
      { id: 3, name: 'Cy', amount: '7.25', code: null, visits: null },
    ]);
    expect(await rows(cleanDeps.pool, 'SELECT name, doubled::text FROM it_drift.grant_totals ORDER BY name')).toEqual([
      { name: 'Ann', doubled: '25.0' },
      { name: 'Bob', doubled: '40' },
      { name: 'Cy', doubled: '14.50' },
    ]);
    expect(await rows(cleanDeps.pool, 'SELECT name, amount::text FROM it_drift.big_grants')).toEqual([{ name: 'Bob', amount: '20' }]);
    expect(await rows(cleanDeps.pool, `SELECT obj_description('it_drift.big_grants'::regclass, 'pg_class') AS comment`)).toEqual([{ comment: 'made by an analyst' }]);
    // the declared SELECT * view shows the new column
    expect(await rows(cleanDeps.pool, 'SELECT visits FROM it_drift.grants_all WHERE id = 2')).toEqual([{ visits: '4' }]);
  });

  it('records each change in the ledger with what was done', async () => {
    const [last] = await rows<{ id: string }>(cleanDeps.pool, `SELECT max(id) AS id FROM etl.loads WHERE project = 'it_drift' AND dataset = 'grants'`);

    expect((await ledger(Number(last!.id))).schema_changes).toEqual([
      { change: 'added', column: 'visits', from: null, to: 'bigint', policy: 'evolve', action: 'added', type: 'bigint' },
      { change: 'missing', column: 'code', from: 'text', to: null, policy: 'evolve', action: 'kept' },
      { change: 'renamed', column: 'name', from: 'name', to: 'full_name', policy: 'evolve', action: 'mapped', basis: 'position' },
      { change: 'retyped', column: 'amount', from: 'bigint', to: 'double', policy: 'evolve', action: 'widened', type: 'numeric', line: 2 },
    ]);
  });

  it('brings a missing column back, and records nothing when a load fits the evolved table', async () => {
    const outcome = await deliver('grants', 'g3.csv', ['id,name,amount,code,visits', '7,Dora,3,Z,1']);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1 });
    expect((await ledger((outcome as { loadId: number }).loadId)).schema_changes).toBeNull();
    expect(await rows(cleanDeps.pool, 'SELECT id::int, name, amount::text, code, visits::int FROM it_drift.grants')).toEqual([{ id: 7, name: 'Dora', amount: '3', code: 'Z', visits: 1 }]);
  });
});

describe('drift and geometry', () => {
  it('evolve: adds a geometry column when a load brings coordinates', async () => {
    await deliver('stops', 's1.csv', ['id,name', '1,Quay']);

    const outcome = await deliver('stops', 's2.csv', ['id,name,lat,lon', '1,Quay,48.85,2.35', '2,Gate,,']);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2 });
    expect(await columnsOf('stops')).toEqual([
      { name: 'id', type: 'bigint' },
      { name: 'name', type: 'text' },
      { name: '_load_id', type: 'bigint' },
      { name: '_source_line', type: 'bigint' },
      { name: 'lat', type: 'double precision' },
      { name: 'lon', type: 'double precision' },
      { name: 'geom', type: 'geometry(Point,4326)' },
    ]);
    expect(await rows(cleanDeps.pool, 'SELECT id::int, ST_AsText(geom) AS geom FROM it_drift.stops ORDER BY id')).toEqual([
      { id: 1, geom: 'POINT(2.35 48.85)' },
      { id: 2, geom: null },
    ]);
    expect((await ledger((outcome as { loadId: number }).loadId)).schema_changes).toEqual([
      { change: 'added', column: 'lat', from: null, to: 'double', policy: 'evolve', action: 'added', type: 'double' },
      { change: 'added', column: 'lon', from: null, to: 'double', policy: 'evolve', action: 'added', type: 'double' },
      { change: 'added', column: 'geom', from: null, to: 'geometry(Point,4326)', policy: 'evolve', action: 'added', type: 'geometry(Point,4326)' },
    ]);
  });

  it('quarantine: holds back the rows whose new coordinates the table has no place for', async () => {
    await deliver('sensors', 'n1.csv', ['id,name', '1,Quay']);

    const outcome = await deliver('sensors', 'n2.csv', ['id,name,lat,lon', '1,Quay,,', '2,Gate,48.85,2.35']);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 1 });
    expect(await rows(cleanDeps.pool, 'SELECT id::int, name FROM it_drift.sensors')).toEqual([{ id: 1, name: 'Quay' }]);
    expect(
      await rows(cleanDeps.pool, 'SELECT source_line::int AS line, column_name, raw_value FROM it_drift.sensors_quarantine WHERE load_id = $1 ORDER BY column_name', [
        (outcome as { loadId: number }).loadId,
      ]),
    ).toEqual([
      { line: 3, column_name: 'geom', raw_value: '48.85 2.35' },
      { line: 3, column_name: 'lat', raw_value: '48.85' },
      { line: 3, column_name: 'lon', raw_value: '2.35' },
    ]);
  });
});

describe('drift policy freeze', () => {
  it('rejects a load whose columns changed, listing every change, and leaves the table and views as they were', async () => {
    await deliver('permits', 'p1.csv', ['id,name,score,code', '1,a,5,X', '2,b,6,Y']);

    const outcome = await deliver('permits', 'p2.csv', ['id,label,score,rank', '1,a,high,1']);

    expect(outcome).toMatchObject({
      status: 'failed',
      error:
        'dataset permits: column "rank" added, column "code" missing, column "name" renamed to "label", column "score" re-typed from bigint to text (first at line 2)' +
        ' — the drift policy "freeze" rejects incoming/city/permits/p2.csv; the clean table and views are unchanged',
    });
    expect(await columnsOf('permits')).toEqual([
      { name: 'id', type: 'bigint' },
      { name: 'name', type: 'text' },
      { name: 'score', type: 'bigint' },
      { name: 'code', type: 'text' },
      { name: '_load_id', type: 'bigint' },
      { name: '_source_line', type: 'bigint' },
    ]);
    expect(await rows(cleanDeps.pool, 'SELECT id::int, score::int FROM it_drift.permit_scores ORDER BY id')).toEqual([
      { id: 1, score: 5 },
      { id: 2, score: 6 },
    ]);
    const recorded = await ledger((outcome as { loadId: number }).loadId);
    expect(recorded.status).toBe('failed');
    expect(recorded.schema_changes).toEqual([
      { change: 'added', column: 'rank', from: null, to: 'bigint', policy: 'freeze', action: 'rejected' },
      { change: 'missing', column: 'code', from: 'text', to: null, policy: 'freeze', action: 'rejected' },
      { change: 'renamed', column: 'name', from: 'name', to: 'label', policy: 'freeze', action: 'rejected', basis: 'position' },
      { change: 'retyped', column: 'score', from: 'bigint', to: 'text', policy: 'freeze', action: 'rejected', line: 2 },
    ]);
  });

  it('loads a file with the same columns, even when a column holds nothing to tell its type by', async () => {
    // score is empty: detected as text, but no value fails to be a bigint, so nothing changed
    const outcome = await deliver('permits', 'p3.csv', ['id,name,score,code', '3,c,,Z']);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1 });
    expect((await ledger((outcome as { loadId: number }).loadId)).schema_changes).toBeNull();
  });

  it('rejects a declared dataset whose file gained a column, though the definition would ignore it', async () => {
    await deliver('wards', 'w1.csv', ['ward,population', 'North,100']);

    const outcome = await deliver('wards', 'w2.csv', ['ward,population,mayor', 'North,120,Kim']);

    expect(outcome).toMatchObject({ status: 'failed', error: expect.stringMatching(/^dataset wards: column "mayor" added — the drift policy "freeze" rejects/) });
    expect(await rows(cleanDeps.pool, 'SELECT ward, population FROM it_drift.wards')).toEqual([{ ward: 'North', population: 100 }]);
    expect((await ledger((outcome as { loadId: number }).loadId)).schema_changes).toEqual([{ change: 'added', column: 'mayor', from: null, to: null, policy: 'freeze', action: 'rejected' }]);
  });
});

describe('drift policy quarantine', () => {
  it('keeps the table as it is and quarantines each row with a value it has no place for', async () => {
    await deliver('meters', 'm1.csv', ['id,name,qty,code', '1,a,5,X', '2,b,6,Y']);

    const outcome = await deliver('meters', 'm2.csv', [
      'id,label,qty,extra',
      '1,,5,', // fits: loaded, code empty
      '2,,lots,', // qty is not a bigint
      '3,,7,9', // a value in the new column
      '4,Dee,8,', // a value in the renamed column (a guess this policy does not apply)
      '5,,9,', // fits
    ]);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2, rowsQuarantined: 3 });
    expect(await columnsOf('meters')).toEqual([
      { name: 'id', type: 'bigint' },
      { name: 'name', type: 'text' },
      { name: 'qty', type: 'bigint' },
      { name: 'code', type: 'text' },
      { name: '_load_id', type: 'bigint' },
      { name: '_source_line', type: 'bigint' },
    ]);
    expect(await rows(cleanDeps.pool, 'SELECT id::int, name, qty::int, code FROM it_drift.meters ORDER BY id')).toEqual([
      { id: 1, name: null, qty: 5, code: null },
      { id: 5, name: null, qty: 9, code: null },
    ]);
    const loadId = (outcome as { loadId: number }).loadId;
    expect(await rows(cleanDeps.pool, 'SELECT source_line::int AS line, column_name, raw_value, rule, reason FROM it_drift.meters_quarantine WHERE load_id = $1 ORDER BY 1', [loadId])).toEqual([
      { line: 3, column_name: 'qty', raw_value: 'lots', rule: 'schema', reason: 'column "qty" is bigint in the clean table; not a valid bigint: lots' },
      { line: 4, column_name: 'extra', raw_value: '9', rule: 'schema', reason: 'column "extra" is not in the clean table (new in this file; drift policy quarantine)' },
      {
        line: 5,
        column_name: 'label',
        raw_value: 'Dee',
        rule: 'schema',
        reason: 'column "label" is not in the clean table; it looks like a rename of "name" (same place, same type), which the drift policy quarantine does not apply',
      },
    ]);
    expect((await ledger(loadId)).schema_changes).toEqual([
      { change: 'added', column: 'extra', from: null, to: 'bigint', policy: 'quarantine', action: 'quarantined', rows: 1 },
      { change: 'missing', column: 'code', from: 'text', to: null, policy: 'quarantine', action: 'kept' },
      { change: 'renamed', column: 'name', from: 'name', to: 'label', policy: 'quarantine', action: 'quarantined', rows: 1, basis: 'position' },
      { change: 'retyped', column: 'qty', from: 'bigint', to: 'text', policy: 'quarantine', action: 'quarantined', rows: 1, line: 3 },
    ]);
  });
});

describe('declared columns', () => {
  it('records the columns a file gained or lost, and loads the declared ones as before', async () => {
    await deliver('zones', 'z1.csv', ['zone,area,note', 'A,1.5,old']);

    const outcome = await deliver('zones', 'z2.csv', ['zone,area,colour', 'A,2.5,red']);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1 });
    expect(await columnsOf('zones')).toEqual([
      { name: 'zone', type: 'text' },
      { name: 'area', type: 'numeric' },
      { name: '_load_id', type: 'bigint' },
      { name: '_source_line', type: 'bigint' },
    ]);
    expect((await ledger((outcome as { loadId: number }).loadId)).schema_changes).toEqual([
      { change: 'added', column: 'colour', from: null, to: null, policy: 'evolve', action: 'ignored' },
      { change: 'missing', column: 'note', from: null, to: null, policy: 'evolve', action: 'ignored' },
    ]);
  });

  it('still rejects a file without a declared column, and records that it went missing', async () => {
    const outcome = await deliver('zones', 'z3.csv', ['zone,size', 'A,3']);

    expect(outcome).toMatchObject({ status: 'failed', error: expect.stringMatching(/column "area" of dataset zones is not in the file's header/) });
    expect((await ledger((outcome as { loadId: number }).loadId)).schema_changes).toEqual([
      { change: 'added', column: 'size', from: null, to: null, policy: 'evolve', action: 'ignored' },
      { change: 'missing', column: 'area', from: null, to: null, policy: 'evolve', action: 'rejected' },
      { change: 'missing', column: 'colour', from: null, to: null, policy: 'evolve', action: 'ignored' },
    ]);
  });
});

describe('the reasons of the rows this file set aside, in a French or Dutch report', () => {
  it('are each rendered in French and in Dutch: every template the drift policy quarantine wrote is understood', async () => {
    const rendered = await renderedReasons(cleanDeps.pool, 'it_drift');
    expect(rendered.rules).toEqual(['schema']);
    expect(rendered.untranslated).toEqual([]);
  });
});
