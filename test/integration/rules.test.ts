import { beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import { castInto, quarantineTableSql, type CastColumn } from '../../functions/clean/cast.ts';
import type { CleanDeps } from '../../functions/clean/clean-load.ts';
import { resolveRules } from '../../functions/clean/rules.ts';
import { literal } from '../../functions/common/db.ts';
import type { StageDeps } from '../../functions/stage/stage-object.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { datasetSchema } from '../../contract/schema.ts';
import { parsePipeline } from '../../contract/load.ts';
import { freshBucket, freshProject, rows } from './support.ts';
import { deliver as deliverObject } from '../helpers/deliver.ts';
import { renderedReasons } from '../helpers/reasons.ts';

const upload = { type: 'upload', supplier: 'city' } as const;

const definition: PipelineInput = {
  project: 'it_rules',
  suppliers: [{ name: 'city' }],
  datasets: [
    {
      name: 'people',
      source: upload,
      clean: {
        nullTokens: true,
        columns: [{ name: 'name', trim: 'collapse', case: 'title', required: true }, { name: 'code', trim: true, case: 'upper', nullTokens: false }, { name: 'note' }, { name: 'age', type: 'integer' }],
      },
    },
    {
      name: 'amounts',
      source: upload,
      clean: {
        columns: [
          { name: 'eu', type: 'numeric', format: { decimal: ',', thousands: '.' } },
          { name: 'us', type: 'numeric', format: { decimal: '.', thousands: ',' } },
          { name: 'fr', type: 'integer', format: { thousands: ' ' } },
        ],
      },
    },
    {
      name: 'events',
      source: upload,
      clean: {
        columns: [
          { name: 'day', type: 'date', format: 'dd-mm-yyyy' },
          { name: 'us_day', type: 'date', format: 'mm/dd/yyyy' },
          { name: 'at', type: 'timestamp', format: 'dd-mm-yyyy hh:mi' },
          { name: 'sheet_day', type: 'date', excelDates: true },
        ],
      },
    },
    {
      name: 'checks',
      source: upload,
      clean: {
        columns: [
          { name: 'postcode', case: 'upper', pattern: '[0-9]{4} ?[A-Z]{2}' },
          { name: 'status', trim: true, case: 'lower', values: ['open', 'closed'] },
          { name: 'score', type: 'integer', min: 0, max: 10 },
          { name: 'since', type: 'date', min: '2000-01-01' },
        ],
      },
    },
    { name: 'areas', source: upload, clean: { columns: [{ name: 'code' }, { name: 'title' }], key: ['code'] } },
    {
      name: 'programs',
      source: upload,
      clean: { columns: [{ name: 'title' }, { name: 'area', trim: true, case: 'upper', references: { dataset: 'areas', column: 'code' } }] },
    },
    {
      name: 'versions',
      source: upload,
      clean: {
        columns: [{ name: 'id', type: 'integer' }, { name: 'label' }, { name: 'updated', type: 'date', format: 'dd-mm-yyyy' }],
        key: ['id'],
        dedupe: { orderBy: ['updated'], keep: 'last' },
      },
    },
    {
      name: 'members',
      source: upload,
      clean: {
        columns: [
          { name: 'id', type: 'integer' },
          { name: 'email', trim: true, case: 'lower', unique: true },
        ],
        key: ['id'],
        mode: 'append',
      },
    },
    {
      name: 'statuses',
      source: upload,
      clean: { columns: [{ name: 'code' }, { name: 'status', source: 'code', map: 'status_codes', values: ['open', 'closed'] }] },
    },
  ],
  valueMaps: [
    {
      name: 'status_codes',
      entries: [
        { source: 'O', constant: 'open' },
        { source: 'C', constant: 'closed' },
        { source: 'P', constant: 'pending' },
      ],
    },
  ],
};

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;
let n = 0;

/** Upload, stage and clean one CSV file; returns the clean outcome. */
const deliver = (dataset: string, body: string, deps = cleanDeps) => deliverObject({ stage: stageDeps, clean: deps }, bucket, `incoming/city/${dataset}/file-${++n}.csv`, body);

/** The quarantine rows of a load, by line and column. */
async function quarantined(dataset: string, outcome: { loadId: number }) {
  return rows(cleanDeps.pool, `SELECT source_line::int AS line, column_name AS column, raw_value AS raw, rule, reason FROM it_rules.${dataset}_quarantine WHERE load_id = $1 ORDER BY 1, 2`, [
    outcome.loadId,
  ]);
}

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-rules');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline };
});

describe('cleaning rules', () => {
  it('trims and collapses white space, folds case and turns null tokens into empty values', async () => {
    const outcome = await deliver('people', ['name,code,note,age', '"  anna   de\u00a0vries ",  ab12 ,n/a,NA', 'BOB,x,-,42', 'NULL,y,fine,7', ''].join('\n'));

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2, rowsQuarantined: 1 });
    expect(await rows(cleanDeps.pool, 'SELECT name, code, note, age, _source_line::int AS line FROM it_rules.people ORDER BY line')).toEqual([
      { name: 'Anna De Vries', code: 'AB12', note: null, age: null, line: 2 },
      { name: 'Bob', code: 'X', note: null, age: 42, line: 3 },
    ]);
    expect(await quarantined('people', outcome as { loadId: number })).toEqual([{ line: 4, column: 'name', raw: 'NULL', rule: 'null', reason: 'required value is missing (null token NULL)' }]);
  });

  it('reads numbers with the declared separators only, and quarantines the ones written otherwise', async () => {
    const outcome = await deliver('amounts', ['eu;us;fr', '1.234,5;"1,234.5";1 234 567', '-0,25;.5;12', '1.5;1234;7', '2,5;"1,23,4";3', '7;8;12 34', ''].join('\n'));

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2, rowsQuarantined: 3 });
    expect(await rows(cleanDeps.pool, 'SELECT eu::text, us::text, fr FROM it_rules.amounts ORDER BY _source_line')).toEqual([
      { eu: '1234.5', us: '1234.5', fr: 1234567 },
      { eu: '-0.25', us: '0.5', fr: 12 },
    ]);
    expect(await quarantined('amounts', outcome as { loadId: number })).toEqual([
      { line: 4, column: 'eu', raw: '1.5', rule: 'type', reason: 'not a number in the form 1.234,5: 1.5' },
      { line: 5, column: 'us', raw: '1,23,4', rule: 'type', reason: 'not a number in the form 1,234.5: 1,23,4' },
      { line: 6, column: 'fr', raw: '12 34', rule: 'type', reason: 'not an integer in the form 1 234 (or out of range): 12 34' },
    ]);
  });

  it('reads dates with their pattern, quarantining days that do not exist, and Excel serial dates', async () => {
    const outcome = await deliver(
      'events',
      [
        'day,us_day,at,sheet_day',
        '05-01-2024,01/05/2024,05-01-2024 09:30,45292',
        '29-02-2024,12/31/1999,31-12-2023 23:59,2024-03-01',
        '31-02-2024,01/05/2024,05-01-2024 09:30,1',
        '2024-01-05,13/01/2024,05-01-2024 24:00,60',
        '',
      ].join('\n'),
    );

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2, rowsQuarantined: 2 });
    expect(await rows(cleanDeps.pool, `SELECT day::text, us_day::text, "at"::text, sheet_day::text FROM it_rules.events ORDER BY _source_line`)).toEqual([
      { day: '2024-01-05', us_day: '2024-01-05', at: '2024-01-05 09:30:00', sheet_day: '2024-01-01' },
      { day: '2024-02-29', us_day: '1999-12-31', at: '2023-12-31 23:59:00', sheet_day: '2024-03-01' },
    ]);
    expect(await quarantined('events', outcome as { loadId: number })).toEqual([
      { line: 4, column: 'day', raw: '31-02-2024', rule: 'type', reason: 'not a date in dd-mm-yyyy: 31-02-2024' },
      { line: 5, column: 'at', raw: '05-01-2024 24:00', rule: 'type', reason: 'not a timestamp in dd-mm-yyyy hh:mi: 05-01-2024 24:00' },
      { line: 5, column: 'day', raw: '2024-01-05', rule: 'type', reason: 'not a date in dd-mm-yyyy: 2024-01-05' },
      { line: 5, column: 'sheet_day', raw: '60', rule: 'type', reason: 'not a date (yyyy-mm-dd) or an Excel serial date: 60' },
      { line: 5, column: 'us_day', raw: '13/01/2024', rule: 'type', reason: 'not a date in mm/dd/yyyy: 13/01/2024' },
    ]);
  });

  it('checks patterns, enumerations and ranges after normalising, and leaves empty optional values alone', async () => {
    const outcome = await deliver(
      'checks',
      ['postcode,status,score,since', '1234 ab,OPEN,0,2000-01-01', '1234AB, Closed ,10,', '12345,open,5,2020-01-01', ',pending,5,', ',,11,', ',,,1999-12-31', ''].join('\n'),
    );

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2, rowsQuarantined: 4 });
    expect(await rows(cleanDeps.pool, `SELECT postcode, status, score, since::text FROM it_rules.checks ORDER BY _source_line`)).toEqual([
      { postcode: '1234 AB', status: 'open', score: 0, since: '2000-01-01' },
      { postcode: '1234AB', status: 'closed', score: 10, since: null },
    ]);
    expect(await quarantined('checks', outcome as { loadId: number })).toEqual([
      { line: 4, column: 'postcode', raw: '12345', rule: 'pattern', reason: 'does not match the pattern [0-9]{4} ?[A-Z]{2}: 12345' },
      { line: 5, column: 'status', raw: 'pending', rule: 'enum', reason: 'not one of "open", "closed": pending' },
      { line: 6, column: 'score', raw: '11', rule: 'range', reason: 'not between 0 and 10: 11' },
      { line: 7, column: 'since', raw: '1999-12-31', rule: 'range', reason: 'below the minimum 2000-01-01: 1999-12-31' },
    ]);
  });
});

describe('value maps and rules', () => {
  it("checks a mapped column's constants, not the codes of the file", async () => {
    const outcome = await deliver('statuses', 'code\no\nC\nP\nX\n');

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2, rowsQuarantined: 2 });
    expect(await rows(cleanDeps.pool, 'SELECT code, status FROM it_rules.statuses ORDER BY _source_line')).toEqual([
      { code: 'o', status: 'open' },
      { code: 'C', status: 'closed' },
    ]);
    expect(await quarantined('statuses', outcome as { loadId: number })).toEqual([
      { line: 4, column: 'status', raw: 'pending', rule: 'enum', reason: 'not one of "open", "closed": pending' },
      { line: 5, column: 'status', raw: 'X', rule: 'enum', reason: 'not one of "open", "closed": X' },
    ]);
  });
});

describe('references', () => {
  it('fails the load with a recorded error while the referenced dataset has no clean table, leaving the previous table as it was', async () => {
    const unreferenced = parsePipeline({
      ...definition,
      datasets: definition.datasets.map((d) => (d.name === 'programs' ? { ...d, clean: { columns: [{ name: 'title' }, { name: 'area' }] } } : d)),
    });
    await deliver('programs', 'title,area\nEarlier,N\n', { ...cleanDeps, pipeline: unreferenced });

    const outcome = await deliver('programs', 'title,area\nSwim,N\n');

    expect(outcome).toMatchObject({
      status: 'failed',
      error: 'dataset programs: column "area" references areas.code, but dataset areas has no clean table yet: load areas first, then load this file again (or replay it)',
    });
    expect(await rows(cleanDeps.pool, 'SELECT status, error_column FROM etl.loads WHERE id = $1', [(outcome as { loadId: number }).loadId])).toEqual([{ status: 'failed', error_column: 'area' }]);
    expect(await rows(cleanDeps.pool, 'SELECT title, area FROM it_rules.programs')).toEqual([{ title: 'Earlier', area: 'N' }]);
  });

  it('quarantines a value that is not in the referenced clean table', async () => {
    await deliver('areas', 'code,title\nN,North\nS,South\n');

    const outcome = await deliver('programs', 'title,area\nSwim,n\nChess, s \nDance,X\nYoga,\n');

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 3, rowsQuarantined: 1 });
    expect(await rows(cleanDeps.pool, 'SELECT title, area FROM it_rules.programs ORDER BY _source_line')).toEqual([
      { title: 'Swim', area: 'N' },
      { title: 'Chess', area: 'S' },
      { title: 'Yoga', area: null },
    ]);
    expect(await quarantined('programs', outcome as { loadId: number })).toEqual([{ line: 4, column: 'area', raw: 'X', rule: 'reference', reason: 'not in areas.code: X' }]);
  });
});

describe('rules the database refuses', () => {
  it('fails the load with a recorded error when PostgreSQL cannot compile a pattern that skipped validation', async () => {
    const pipeline = parsePipeline(definition);
    const checks = pipeline.datasets.find((d) => d.name === 'checks')!;
    checks.clean.columns![0]!.pattern = '(?<code>[0-9]+)'; // validation refuses named groups; a hand-built definition may not have been validated
    const before = await rows(cleanDeps.pool, 'SELECT count(*)::int AS n FROM it_rules.checks');

    const outcome = await deliver('checks', 'postcode,status,score,since\n1234AB,open,1,\n', { ...cleanDeps, pipeline });

    expect(outcome).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^dataset checks: the pattern of column "postcode" is not a PostgreSQL regular expression: invalid regular expression/),
    });
    expect(await rows(cleanDeps.pool, 'SELECT count(*)::int AS n FROM it_rules.checks')).toEqual(before);
  });
});

describe('duplicates', () => {
  it('keeps the last version of each key by the ordering column and quarantines the others as dedupe', async () => {
    const outcome = await deliver('versions', ['id,label,updated', '1,first,01-01-2024', '1,newest,03-01-2024', '2,only,01-01-2024', '1,middle,02-01-2024', '1,undated,', ''].join('\n'));

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2, rowsQuarantined: 3 });
    expect(await rows(cleanDeps.pool, 'SELECT id, label FROM it_rules.versions ORDER BY id')).toEqual([
      { id: 1, label: 'newest' },
      { id: 2, label: 'only' },
    ]);
    const kept = 'duplicate key: same id as line 3, which is kept (the last by updated)';
    expect(await quarantined('versions', outcome as { loadId: number })).toEqual([
      { line: 2, column: 'id', raw: '1', rule: 'dedupe', reason: kept },
      { line: 5, column: 'id', raw: '1', rule: 'dedupe', reason: kept },
      { line: 6, column: 'id', raw: '1', rule: 'dedupe', reason: kept },
    ]);
  });

  it('quarantines a repeated value of a unique column (the first line keeps it), and in append mode one the table already has', async () => {
    await deliver('members', 'id,email\n1,ann@example.org\n');

    const outcome = await deliver('members', 'id,email\n2, Bob@Example.org\n3,bob@example.org\n4,ANN@example.org\n5,\n6,\n');

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 3, rowsQuarantined: 2 });
    expect(await rows(cleanDeps.pool, 'SELECT id, email FROM it_rules.members ORDER BY id')).toEqual([
      { id: 1, email: 'ann@example.org' },
      { id: 2, email: 'bob@example.org' },
      { id: 5, email: null },
      { id: 6, email: null },
    ]);
    expect(await quarantined('members', outcome as { loadId: number })).toEqual([
      { line: 3, column: 'email', raw: 'bob@example.org', rule: 'unique', reason: 'duplicate value: same email as line 2' },
      { line: 4, column: 'email', raw: 'ANN@example.org', rule: 'unique', reason: expect.stringMatching(/^value already in the table \(load \d+, line 2\)$/) },
    ]);
  });
});

describe('the one-statement cast', () => {
  /** castInto on a scratch staging table, recording the statements it runs. */
  async function castScratch(values: string[][]) {
    const dataset = datasetSchema.parse({
      name: 'scratch',
      source: upload,
      clean: {
        nullTokens: true,
        columns: [
          { name: 'amount', type: 'numeric', format: { decimal: ',', thousands: '.' } },
          { name: 'day', type: 'date', format: 'dd-mm-yyyy' },
        ],
      },
    });
    const columns: CastColumn[] = [
      { name: 'amount', type: 'numeric', required: false, from: 'a' },
      { name: 'day', type: 'date', required: false, from: 'b' },
    ];
    const client = await cleanDeps.pool.connect();
    const statements: string[] = [];
    const recording = new Proxy(client, {
      get: (target, property) => (property === 'query' ? (sql: string, params?: unknown[]) => (statements.push(sql), target.query(sql, params)) : Reflect.get(target, property)),
    });
    try {
      await client.query('BEGIN');
      await client.query('CREATE TEMPORARY TABLE scratch_staging (a text, b text, _source_line bigint) ON COMMIT DROP');
      await client.query(`INSERT INTO scratch_staging VALUES ${values.map((v, i) => `(${v.map(literal).join(', ')}, ${i + 2})`).join(', ')}`);
      await client.query('CREATE TEMPORARY TABLE scratch (amount numeric, day date) ON COMMIT DROP');
      await client.query(quarantineTableSql('scratch_quarantine', 'scratch_quarantine_load').replace('CREATE TABLE', 'CREATE TEMPORARY TABLE'));
      const plan = { staging: 'scratch_staging', target: 'scratch', quarantine: 'scratch_quarantine', columns, key: [], loadId: 1, lineage: false, rules: resolveRules(dataset, columns) };
      const result = await castInto(recording, plan);
      const clean = (await client.query('SELECT amount::text, day::text FROM scratch ORDER BY day')).rows;
      const quarantine = (await client.query('SELECT source_line::int AS line, column_name, rule, reason FROM scratch_quarantine')).rows;
      return { result, clean, quarantine, inserts: statements.filter((s) => /^\s*INSERT INTO/.test(s)).length };
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  }

  it('casts a file whose rules only normalise and read locale formats in one INSERT', async () => {
    const outcome = await castScratch([
      [' 1.234,5 ', '31-12-2024'],
      ['n/a', '01-01-2024'],
    ]);

    expect(outcome).toEqual({
      result: { rowsLoaded: 2, rowsQuarantined: 0 },
      clean: [
        { amount: null, day: '2024-01-01' },
        { amount: '1234.5', day: '2024-12-31' },
      ],
      quarantine: [],
      inserts: 1,
    });
  });

  it('falls back to the checks when a value is not in its format, and quarantines only that value', async () => {
    const outcome = await castScratch([
      ['1.234,5', '31-12-2024'],
      ['2', '2024-01-01'],
    ]);

    expect(outcome).toMatchObject({
      result: { rowsLoaded: 1, rowsQuarantined: 1 },
      clean: [{ amount: '1234.5', day: '2024-12-31' }],
      quarantine: [{ line: 3, column_name: 'day', rule: 'type', reason: 'not a date in dd-mm-yyyy: 2024-01-01' }],
    });
  });
});

describe('the reasons of the rows this file set aside, in a French or Dutch report', () => {
  it('are each rendered in French and in Dutch: every template the clean step wrote for its rules is understood', async () => {
    const rendered = await renderedReasons(cleanDeps.pool, 'it_rules');
    expect(rendered.rules).toEqual(['dedupe', 'enum', 'null', 'pattern', 'range', 'reference', 'type', 'unique']);
    expect(rendered.untranslated).toEqual([]);
  });
});
