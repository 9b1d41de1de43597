import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PipelineInput } from '../../contract/definition.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { gatherReportPage } from '../../functions/common/report-page.ts';
import { renderReportPage } from '../../functions/common/report-html.ts';
import { describeReport, reportStageFailures, supplierCopy, supplierReportKeys, supplierReportPage, type LoadReport, type SupplierReport } from '../../functions/common/report.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';
import { deliver as deliverObject } from '../helpers/deliver.ts';

const definition: PipelineInput = {
  project: 'it_report',
  suppliers: [{ name: 'city' }, { name: 'parks' }, { name: 'ville', language: 'fr' }],
  valueMaps: [
    {
      name: 'site_status',
      entries: [
        { source: 'O', constant: 'Open' },
        { source: 'C', constant: 'Closed' },
      ],
    },
  ],
  datasets: [
    {
      name: 'sites',
      source: { type: 'upload', supplier: 'city' },
      clean: {
        columns: [
          { name: 'site_id', source: 'Site ID', type: 'integer' },
          { name: 'name', source: 'Site Name', required: true },
          { name: 'opened', source: 'Opened', type: 'date' },
          { name: 'visitors', source: 'Visitors', type: 'bigint' },
          { name: 'status', source: 'Status', map: 'site_status', unmapped: 'quarantine' },
        ],
        key: ['site_id'],
      },
    },
    {
      name: 'visits',
      source: { type: 'upload', supplier: 'city' },
      clean: {
        columns: [
          { name: 'visit_day', source: 'Day', type: 'date' },
          { name: 'people', source: 'People', type: 'integer' },
          { name: 'spent', source: 'Spent (EUR)', type: 'numeric' },
        ],
      },
    },
    { name: 'parcels', source: { type: 'upload', supplier: 'city' }, geometry: { invalid: 'quarantine' } },
    {
      name: 'trees',
      source: { type: 'upload', supplier: 'parks' },
      clean: {
        columns: [
          { name: 'tree_id', source: 'Tree ID', type: 'integer', required: true },
          { name: 'species', source: 'Species' },
        ],
      },
    },
    {
      name: 'releves',
      source: { type: 'upload', supplier: 'ville' },
      clean: {
        columns: [
          { name: 'code', source: 'Code', type: 'integer', required: true },
          { name: 'cp', source: 'CP', case: 'upper', pattern: '[0-9]{4} ?[A-Z]{2}' },
          { name: 'statut', source: 'Statut', trim: true, case: 'lower', values: ['ouvert', 'fermé'] },
          { name: 'note', source: 'Note', type: 'integer', min: 0, max: 10 },
          { name: 'depuis', source: 'Depuis', type: 'date', min: '2000-01-01' },
          { name: 'jour', source: 'Jour', type: 'date', format: 'dd/mm/yyyy' },
          { name: 'montant', source: 'Montant', type: 'numeric', format: { decimal: ',', thousands: '.' } },
          { name: 'nom', source: 'Nom', required: true, nullTokens: ['N/A'] },
          { name: 'email', source: 'Email', unique: true },
          { name: 'etat', source: 'Etat', map: 'site_status', unmapped: 'quarantine' },
        ],
        key: ['code'],
      },
    },
  ],
};

const LONG = `9${'x'.repeat(5000)}`;
const SITES = [
  'Site ID,Site Name,Opened,Visitors,Status',
  '1,Harbour Park,2021-04-01,1200,O',
  '2,Old Mill,2019-13-01,300,O', // line 3: not a date
  '3,,2020-01-01,50,C', // line 4: required name missing
  '4,Library,2018-06-30,lots,O', // line 5: not a number
  '1,Harbour Park again,2021-04-01,1,O', // line 6: repeats key 1
  '6,Town Hall,2020-02-02,10,Closed??', // line 7: not in the value map
  `7,Museum,2020-02-02,${LONG},C`, // line 8: a huge bad value
  '8,Pier,2022-05-05,,c', // line 9: fine (the map ignores case)
  '',
].join('\n');

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;

async function stage(supplier: string, dataset: string, file: string, body: string) {
  const ref = await put(bucket, `incoming/${supplier}/${dataset}/${file}`, body);
  return stageObject(stageDeps, ref);
}

/** Upload, stage and clean one file as its supplier would; returns the clean outcome. */
const deliver = (supplier: string, dataset: string, file: string, body: string, deps: CleanDeps = cleanDeps) =>
  deliverObject({ stage: stageDeps, clean: deps }, bucket, `incoming/${supplier}/${dataset}/${file}`, body);

async function ledgerReport(loadId: number): Promise<LoadReport> {
  const [row] = await rows<{ report: LoadReport }>(cleanDeps.pool, 'SELECT report FROM etl.loads WHERE id = $1', [loadId]);
  return row!.report;
}

async function read(key: string): Promise<string> {
  const out = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return out.Body!.transformToString();
}

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-report');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline, s3: s3Client() };
});

describe('the quality report of a load with quarantined rows', () => {
  let loadId: number;
  let report: LoadReport;
  beforeAll(async () => {
    const outcome = await deliver('city', 'sites', '2024/sites.csv', SITES);
    if (outcome.status !== 'loaded') throw new Error(`not loaded: ${JSON.stringify(outcome)}`);
    loadId = outcome.loadId;
    report = await ledgerReport(loadId);
  });

  it('is kept in the ledger with the rows read, loaded and quarantined', () => {
    expect(report).toMatchObject({
      loadId,
      project: 'it_report',
      dataset: 'sites',
      objectKey: 'incoming/city/sites/2024/sites.csv',
      status: 'loaded',
      rows: { read: 8, loaded: 2, quarantined: 6 },
    });
    expect(Date.parse(report.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(report.receivedAt));
  });

  it('counts the quarantined values by rule and column, with the first example lines of each in file order', () => {
    expect(report.byRule.map((r) => ({ rule: r.rule, values: r.values, rows: r.rows, columns: r.columns }))).toEqual([
      {
        rule: 'type',
        values: 3,
        rows: 3,
        columns: [
          { column: 'visitors', values: 2 },
          { column: 'opened', values: 1 },
        ],
      },
      { rule: 'map', values: 1, rows: 1, columns: [{ column: 'status', values: 1 }] },
      { rule: 'required', values: 1, rows: 1, columns: [{ column: 'name', values: 1 }] },
      { rule: 'unique', values: 1, rows: 1, columns: [{ column: 'site_id', values: 1 }] },
    ]);
    const type = report.byRule.find((r) => r.rule === 'type')!;
    expect(type.examples.map((e) => [e.line, e.column])).toEqual([
      [3, 'opened'],
      [5, 'visitors'],
      [8, 'visitors'],
    ]);
    expect(type.examples[0]).toEqual({ line: 3, column: 'opened', value: '2019-13-01', reason: 'not a valid date: 2019-13-01' });
    expect(report.byRule.find((r) => r.rule === 'required')!.examples).toEqual([{ line: 4, column: 'name', value: null, reason: 'required value is missing' }]);
    expect(report.byRule.find((r) => r.rule === 'unique')!.examples[0]).toMatchObject({ line: 6, value: '1', reason: 'duplicate key: same site_id as line 2' });
  });

  it('cuts a huge raw value to 200 characters', () => {
    const huge = report.byRule.find((r) => r.rule === 'type')!.examples.find((e) => e.line === 8)!;
    expect([...huge.value!]).toHaveLength(200);
    expect(huge.value!.startsWith('9xxx')).toBe(true);
    expect(huge.value!.endsWith('…')).toBe(true);
    expect(JSON.stringify(report).length).toBeLessThan(5000);
  });

  it('lists the values the value map lacked', () => {
    expect(report.unmapped).toEqual([{ column: 'status', map: 'site_status', policy: 'quarantine', rows: 1, distinct: 1, values: [{ value: 'Closed??', rows: 1 }] }]);
    expect(report.byRule.find((r) => r.rule === 'map')!.examples[0]).toMatchObject({ line: 7, column: 'status', value: 'Closed??' });
  });

  it('is written back beside the upload as JSON, with the same counts and examples and nothing only the operator needs', async () => {
    const keys = supplierReportKeys('incoming/city/sites/2024/sites.csv')!;
    expect(keys.json).toBe('reports/city/sites/2024/sites.csv.report.json');

    const copy = JSON.parse(await read(keys.json)) as SupplierReport;

    expect(copy).toMatchObject({ report: 'civic-etl load quality report', version: 1, loadId, status: 'loaded', rows: { read: 8, loaded: 2, quarantined: 6 } });
    expect(copy.byRule).toEqual(report.byRule);
    expect(copy.unmapped).toEqual(report.unmapped);
    expect(copy).not.toHaveProperty('project');
    expect(copy).not.toHaveProperty('bucket');
    expect(JSON.stringify(copy)).not.toContain(bucket);
    expect((await ledgerReport(loadId)).supplierCopy).toBe(keys.json);
  });

  it('is summarised in a few plain lines beside it', async () => {
    const text = await read('reports/city/sites/2024/sites.csv.report.txt');

    expect(text).toContain('Quality report for incoming/city/sites/2024/sites.csv');
    expect(text).toContain('Loaded 2 of 8 rows read; 6 rows were set aside (quarantined), not loaded.');
    expect(text).toContain("type (not a value of the column's type): 3 values in 3 rows — visitors 2, opened 1");
    expect(text).toContain('line 3, opened = "2019-13-01": not a valid date: 2019-13-01');
    expect(text).toContain('Not in value map "site_status": column status, 1 row, 1 distinct value (rows set aside): "Closed??" (1 row)');
    expect(text).toContain('sites.csv.report.json');
    expect(text.split('\n').length).toBeLessThan(25);
  });
});

describe('the supplier copy', () => {
  it("holds only that supplier's own load: another supplier's rejected values stay in its own report", async () => {
    const outcome = await deliver('parks', 'trees', 'trees.csv', 'Tree ID,Species\n1,Oak\nPARKS-ONLY-VALUE,Elm\n');
    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 1 });

    const parks = await read('reports/parks/trees/trees.csv.report.json');
    const city = await read('reports/city/sites/2024/sites.csv.report.json');

    expect(parks).toContain('PARKS-ONLY-VALUE');
    expect(city).not.toContain('PARKS-ONLY-VALUE');
    // the HTML pages likewise: each shows its own load's values, not the other supplier's, nor the project or bucket
    const parksPage = await read('reports/parks/trees/trees.csv.report.html');
    const cityPage = await read('reports/city/sites/2024/sites.csv.report.html');
    expect(parksPage).toContain('PARKS-ONLY-VALUE');
    expect(cityPage).not.toContain('PARKS-ONLY-VALUE');
    for (const page of [parksPage, cityPage]) {
      expect(page).not.toContain(bucket);
      expect(page).not.toContain('it_report');
    }
    const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'reports/' }));
    expect(listed.Contents!.map((o) => o.Key).sort()).toEqual([
      'reports/city/sites/2024/sites.csv.report.html',
      'reports/city/sites/2024/sites.csv.report.json',
      'reports/city/sites/2024/sites.csv.report.txt',
      'reports/parks/trees/trees.csv.report.html',
      'reports/parks/trees/trees.csv.report.json',
      'reports/parks/trees/trees.csv.report.txt',
    ]);
  });

  it('never carries a credential an error message might quote', () => {
    const failed: LoadReport = {
      loadId: 1,
      project: 'p',
      dataset: 'sites',
      bucket: 'landing-123',
      objectKey: 'incoming/city/sites/a.csv',
      objectVersion: 'v1',
      receivedAt: '2024-05-01T10:00:00.000Z',
      finishedAt: '2024-05-01T10:00:01.000Z',
      status: 'failed',
      rows: { read: null, loaded: null, quarantined: null },
      byRule: [],
      error: { message: 'could not reach postgres://etl:hunter2@db.internal:5432/civic (password=hunter2)', file: 'incoming/city/sites/a.csv', line: null, column: null },
    };

    const copy = JSON.stringify(supplierCopy(failed));

    expect(copy).not.toContain('hunter2');
    expect(copy).not.toContain('landing-123');
    expect(copy).toContain('could not reach postgres://***@db.internal:5432/civic (password=***');
  });

  it('is not written for fetched data, which has no supplier', () => {
    expect(supplierReportKeys('raw/sites/2024-05-01T10-00-00Z/sites.csv')).toBeUndefined();
  });

  it('that cannot be written never fails the committed load', async () => {
    const failing = { send: async () => Promise.reject(new Error('AccessDenied')) } as unknown as S3Client;

    const outcome = await deliver('parks', 'trees', 'trees-2.csv', 'Tree ID,Species\n2,Ash\n', { ...cleanDeps, s3: failing });

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1 });
    const report = await ledgerReport(outcome.loadId);
    expect(report).toMatchObject({ status: 'loaded', rows: { read: 1, loaded: 1, quarantined: 0 }, byRule: [] });
    expect(report.supplierCopy).toBeUndefined();
  });

  it('keeps in the ledger why its HTML page could not be written, while the JSON and text copies stand', async () => {
    const real = s3Client();
    // the bucket refuses the page only (a policy, a size limit…): the two other copies go through
    const pageRefused = {
      send: async (command: { input?: { Key?: string } }) => (command.input?.Key?.endsWith('.report.html') ? Promise.reject(new Error('AccessDenied: not allowed')) : real.send(command as never)),
    } as unknown as S3Client;

    const outcome = await deliver('parks', 'trees', 'trees-3.csv', 'Tree ID,Species\n3,Oak\n', { ...cleanDeps, s3: pageRefused });

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1 });
    const report = await ledgerReport(outcome.loadId);
    expect(report.supplierCopy).toBe('reports/parks/trees/trees-3.csv.report.json');
    expect(report.supplierPage).toEqual({ key: 'reports/parks/trees/trees-3.csv.report.html', error: 'AccessDenied: not allowed' });
    expect(JSON.parse(await read('reports/parks/trees/trees-3.csv.report.json'))).toMatchObject({ loadId: outcome.loadId, rows: { loaded: 1 } });
  });

  it('still missing when the clean message is delivered again is written then, once', async () => {
    const [load] = await rows<{ id: string }>(cleanDeps.pool, `SELECT id FROM etl.loads WHERE object_key = 'incoming/parks/trees/trees-2.csv'`);
    const loadId = Number(load!.id);

    const again = await cleanLoad(cleanDeps, loadId);

    expect(again).toEqual({ status: 'duplicate', loadId });
    expect(JSON.parse(await read('reports/parks/trees/trees-2.csv.report.json'))).toMatchObject({ loadId, rows: { read: 1, loaded: 1, quarantined: 0 } });
    expect((await ledgerReport(loadId)).supplierCopy).toBe('reports/parks/trees/trees-2.csv.report.json');
    const versions = async () => (await s3Client().send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'reports/parks/trees/trees-2.csv.report.json' }))).Versions!.length;
    expect(await versions()).toBe(1);
    await cleanLoad(cleanDeps, loadId);
    expect(await versions()).toBe(1);
  });
});

describe('the quality report of a failed load', () => {
  it('names the error with its line and column when the clean step rejects the file', async () => {
    const outcome = await deliver('city', 'sites', 'no-name.csv', 'Site ID,Opened,Visitors,Status\n9,2020-01-01,1,O\n');
    expect(outcome.status).toBe('failed');

    const report = await ledgerReport(outcome.loadId);
    expect(report).toMatchObject({
      status: 'failed',
      rows: { read: 1, loaded: null, quarantined: null },
      error: { file: 'incoming/city/sites/no-name.csv', line: 1, column: 'Site Name', message: expect.stringContaining('column "Site Name" of dataset sites is not in the file\'s header') },
    });
    const copy = JSON.parse(await read('reports/city/sites/no-name.csv.report.json')) as SupplierReport;
    expect(copy.error).toEqual(report.error);
    const text = await read('reports/city/sites/no-name.csv.report.txt');
    expect(text).toContain('Rejected: nothing from this file was loaded; the data loaded before stays as it was.');
    expect(text).toContain('Error (line 1, column "Site Name"): incoming/city/sites/no-name.csv: column "Site Name"');
  });

  it('names the error with its line when the stage step rejects the file (the stage hook)', async () => {
    const staged = await stage('city', 'sites', 'ragged.csv', 'Site ID,Site Name,Opened,Visitors,Status\n1,A,2020-01-01,1,O\n2,B,2020-01-01,1,O,extra\n');
    expect(staged.status).toBe('failed');
    const loadId = (staged as { loadId: number }).loadId;

    const written = await reportStageFailures({ pool: cleanDeps.pool, s3: s3Client() }, loadId);

    expect(written).toEqual(['reports/city/sites/ragged.csv.report.json']);
    const report = await ledgerReport(loadId);
    expect(report).toMatchObject({ status: 'failed', error: { line: 3, message: expect.stringMatching(/ragged\.csv line 3: the record has 6 fields, the header has 5/) } });
    expect(await read('reports/city/sites/ragged.csv.report.txt')).toMatch(/Error \(line 3\): .*the record has 6 fields/);
    // a second call finds the report there and writes nothing again
    expect(await reportStageFailures({ pool: cleanDeps.pool, s3: s3Client() }, loadId)).toEqual([]);
  });
});

describe('the quality report of a load that is not applied', () => {
  it('tells the supplier a newer file was already loaded', async () => {
    const older = await stage('parks', 'trees', 'monday.csv', 'Tree ID,Species\n10,Oak\n');
    const newer = await stage('parks', 'trees', 'tuesday.csv', 'Tree ID,Species\n11,Elm\n');
    if (older.status !== 'staged' || newer.status !== 'staged') throw new Error('not staged');
    await cleanLoad(cleanDeps, newer.loadId);

    const outcome = await cleanLoad(cleanDeps, older.loadId);

    expect(outcome.status).toBe('skipped');
    expect(await ledgerReport(older.loadId)).toMatchObject({ status: 'skipped', error: { message: expect.stringContaining(`superseded: load ${newer.loadId}`), line: null } });
    expect(await read('reports/parks/trees/monday.csv.report.txt')).toContain('Not applied: a newer file of this dataset had already been loaded.');
  });
});

describe('civic-etl status DATASET', () => {
  const dir = mkdtempSync(join(tmpdir(), 'civic-etl-report-'));
  const pipelineFile = join(dir, 'pipeline.json');
  writeFileSync(pipelineFile, JSON.stringify(definition));
  const civicEtl = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['bin/civic-etl.mjs', ...args], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' }, timeout: 120_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('prints the latest loads of the dataset with counts by rule, example lines, unmapped values and errors', () => {
    const r = civicEtl('status', 'sites', '--pipeline', pipelineFile);

    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('dataset it_report.sites: latest 3 loads, newest first');
    expect(r.stdout).toMatch(/load \d+ · incoming\/city\/sites\/2024\/sites\.csv \(version [^)]+\) · loaded · received/);
    expect(r.stdout).toContain('Loaded 2 of 8 rows read; 6 rows were set aside (quarantined), not loaded.');
    expect(r.stdout).toContain("type (not a value of the column's type): 3 values in 3 rows — visitors 2, opened 1");
    expect(r.stdout).toContain('line 5, visitors = "lots": not a valid bigint: lots');
    expect(r.stdout).toContain('required (a required value is missing): 1 value in 1 row — name 1');
    expect(r.stdout).toContain('Not in value map "site_status": column status');
    expect(r.stdout).toContain('Error (line 3): ');
    expect(r.stdout).toContain('Written back to the supplier: reports/city/sites/2024/sites.csv.report.json, reports/city/sites/2024/sites.csv.report.txt');
    expect(r.stdout).not.toContain('trees.csv');
  });

  it('prints the loads and their reports as JSON with --json, building the report of a load that has none stored', async () => {
    // rejected by the stage step, with no hook to store its report
    const staged = await stage('parks', 'trees', 'broken.csv', 'Tree ID,Species\n3,Yew\n4,Fir,extra\n');
    expect(staged.status).toBe('failed');

    const r = civicEtl('status', 'trees', '--pipeline', pipelineFile, '--json', '--limit', '2');

    expect(r.code, r.stderr).toBe(0);
    const loads = JSON.parse(r.stdout) as { objectKey: string; report: LoadReport }[];
    expect(loads.map((l) => l.objectKey)).toEqual(['incoming/parks/trees/broken.csv', 'incoming/parks/trees/tuesday.csv']);
    expect(loads[0]!.report).toMatchObject({ status: 'failed', error: { line: 3, file: 'incoming/parks/trees/broken.csv' } });
    expect(loads[1]!.report).toMatchObject({ status: 'loaded', rows: { read: 1, loaded: 1, quarantined: 0 } });
  });

  it('refuses a dataset the definition does not have, naming the ones it has', () => {
    const r = civicEtl('status', 'benches', '--pipeline', pipelineFile);

    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown dataset "benches" (datasets: sites, visits, parcels, trees, releves)');
  });
});

describe('the quality report of a file read with decisions', () => {
  it('says what reading the file skipped: a second export appended under the first keeps its header line out of the rows, and the report says so', async () => {
    // prepare: two exports of the same table concatenated, the second with its header line
    const body = ['Tree ID,Species', '1,Oak', '2,Elm', 'Tree ID,Species', '3,Ash', ''].join('\n');
    // act
    const outcome = await deliver('parks', 'trees', 'appended.csv', body);
    // assess
    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 3 });
    const report = await ledgerReport(outcome.loadId);
    expect(report.readNotes).toEqual(['incoming/parks/trees/appended.csv: 1 line repeating the header skipped (first on line 4)']);
    const lines = describeReport(report);
    expect(lines).toContain('How the file was read:');
    expect(lines).toContain('  incoming/parks/trees/appended.csv: 1 line repeating the header skipped (first on line 4)');
    expect(supplierCopy(report).readNotes).toEqual(report.readNotes);
  });
});

describe('the HTML report page of a load', () => {
  it('has a histogram of each number and date column of the rows loaded, binned as SQL over the clean table counts them', async () => {
    // 300 days four days apart from 2021-01-01 (over three years), 0–6 people, spent growing by 1.50; one row refused
    const lines = ['Day,People,Spent (EUR)'];
    for (let i = 0; i < 300; i++) lines.push(`${new Date(Date.UTC(2021, 0, 1 + i * 4)).toISOString().slice(0, 10)},${i === 10 ? 'many' : i % 7},${(i * 1.5).toFixed(2)}`);
    const outcome = await deliver('city', 'visits', 'visits.csv', `${lines.join('\n')}\n`);
    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 299, rowsQuarantined: 1 });
    const report = await ledgerReport(outcome.loadId);
    const data = await gatherReportPage(cleanDeps.pool, report, 'en', { cleanNames: { Day: 'visit_day', People: 'people', 'Spent (EUR)': 'spent' } });
    const column = (name: string) => data.columns.find((c) => c.name === name)!;

    const years = await rows<{ y: string; n: string }>(
      cleanDeps.pool,
      'SELECT extract(year FROM visit_day)::int::text AS y, count(*)::text AS n FROM it_report.visits WHERE _load_id = $1 GROUP BY 1 ORDER BY 1',
      [outcome.loadId],
    );
    expect(column('Day').histogram).toEqual(years.map((r) => ({ from: r.y, to: r.y, count: Number(r.n) })));
    // integers over a short range: one bin per value
    const people = await rows<{ v: number; n: string }>(cleanDeps.pool, 'SELECT people AS v, count(*)::text AS n FROM it_report.visits WHERE _load_id = $1 GROUP BY 1 ORDER BY 1', [outcome.loadId]);
    expect(column('People').histogram).toEqual(people.map((r) => ({ from: r.v, to: r.v, count: Number(r.n) })));
    // numbers: 12 equal bins from the smallest to the largest, every loaded value in one
    const [spent] = await rows<{ lo: string; hi: string; n: string }>(
      cleanDeps.pool,
      'SELECT min(spent)::text AS lo, max(spent)::text AS hi, count(spent)::text AS n FROM it_report.visits WHERE _load_id = $1',
      [outcome.loadId],
    );
    const bins = column('Spent (EUR)').histogram!;
    expect(bins).toHaveLength(12);
    expect(bins[0]!.from).toBe(Number(spent!.lo));
    expect(bins.at(-1)!.to).toBe(Number(spent!.hi));
    expect(bins.reduce((n, b) => n + b.count, 0)).toBe(Number(spent!.n));
    // and the page draws them, with the refused line
    const page = renderReportPage(data);
    expect(page.match(/<svg class="chart histogram"/g)).toHaveLength(3);
    expect(page).toContain('data-line="12"');
    expect(await read('reports/city/visits/visits.csv.report.html')).toMatch(/<svg class="chart histogram"[^]*<svg class="chart histogram"[^]*<svg class="chart histogram"/);
  });

  it('bins dates by day over a few days and by month over a few months', async () => {
    for (const [file, step, unit] of [
      ['days.csv', 1, 'day'],
      ['months.csv', 25, 'month'],
    ] as const) {
      // 10 rows, one day (or 25 days) apart
      const lines = ['Day,People,Spent (EUR)', ...Array.from({ length: 10 }, (_, i) => `${new Date(Date.UTC(2024, 1, 20 + i * step)).toISOString().slice(0, 10)},1,1`)];
      const outcome = await deliver('city', 'visits', file, `${lines.join('\n')}\n`);
      expect(outcome.status).toBe('loaded');
      const data = await gatherReportPage(cleanDeps.pool, await ledgerReport(outcome.loadId), 'en', { cleanNames: { Day: 'visit_day' } });
      const expected = await rows<{ bin: string; n: string }>(
        cleanDeps.pool,
        `SELECT to_char(g, $2) AS bin, count(v.visit_day)::text AS n
           FROM (SELECT min(visit_day) AS lo, max(visit_day) AS hi FROM it_report.visits WHERE _load_id = $1) r,
                generate_series(date_trunc('${unit}', r.lo), date_trunc('${unit}', r.hi), interval '1 ${unit}') g
           LEFT JOIN it_report.visits v ON v._load_id = $1 AND date_trunc('${unit}', v.visit_day) = g
          GROUP BY g ORDER BY g`,
        [outcome.loadId, unit === 'day' ? 'YYYY-MM-DD' : 'YYYY-MM'],
      );
      expect(data.columns.find((c) => c.name === 'Day')!.histogram).toEqual(expected.map((r) => ({ from: r.bin, to: r.bin, count: Number(r.n) })));
    }
  });

  it('maps the set-aside shapes of a geometry file where they are, read from the staged rows during the clean', async () => {
    const square = (x: number, y: number) => [
      [
        [x, y],
        [x + 0.01, y],
        [x + 0.01, y + 0.01],
        [x, y + 0.01],
        [x, y],
      ],
    ];
    // the second parcel is a bow-tie (its ring crosses itself): invalid, set aside by `invalid: quarantine`
    const bowTie = [
      [
        [4.9, 52.3],
        [4.91, 52.31],
        [4.91, 52.3],
        [4.9, 52.31],
        [4.9, 52.3],
      ],
    ];
    const features = [square(4.88, 52.36), bowTie, square(4.95, 52.36)].map((coordinates, i) => ({ type: 'Feature', properties: { code: `P${i + 1}` }, geometry: { type: 'Polygon', coordinates } }));
    const outcome = await deliver('city', 'parcels', 'parcels.geojson', JSON.stringify({ type: 'FeatureCollection', features }));
    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 2, rowsQuarantined: 1 });
    const report = await ledgerReport(outcome.loadId);
    const [refused] = await rows<{ line: string }>(cleanDeps.pool, 'SELECT DISTINCT source_line::text AS line FROM it_report.parcels_quarantine WHERE load_id = $1', [outcome.loadId]);
    expect(report.rejectedGeometries).toEqual({ readable: 1, sample: [{ line: Number(refused!.line), geometry: { type: 'Polygon', coordinates: bowTie } }] });
    const data = await gatherReportPage(cleanDeps.pool, report, 'en');
    expect(data.map).toMatchObject({ loadedTotal: 2, rejectedReadable: 1 });
    expect(data.map!.loaded.map((g) => g.type)).toEqual(['Polygon', 'Polygon']);
    const page = await read('reports/city/parcels/parcels.geojson.report.html');
    expect(page.match(/data-layer="rejected" data-count="1"/g)).toHaveLength(1);
    expect(page).toContain(`<title>Line ${refused!.line}</title>`);
  });
});

/** The example lines of a report page: line, column, value, rule and reason as the reader sees them (markup and escapes undone). */
function exampleLines(page: string): { line: number; column: string; rule: string; reason: string }[] {
  const text = (s: string) =>
    s
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
  return [
    ...page.matchAll(/<tr class="example" data-line="(\d+)"><td class="num line">[^<]*<\/td><td>([^<]*)<\/td><td[^>]*>[^<]*<\/td><td><code>([^<]*)<\/code><\/td><td class="reason">([^<]*)<\/td><\/tr>/g),
  ].map((m) => ({
    line: Number(m[1]),
    column: text(m[2]!),
    rule: text(m[3]!),
    reason: text(m[4]!),
  }));
}

describe('the HTML report of a supplier whose language is French', () => {
  // one refused value per line, each failing one rule of the definition (`releves`)
  const columns = definition.datasets.find((d) => d.name === 'releves')!.clean!.columns!;
  const declared = (name: string) => columns.find((c) => c.name === name)!;
  const good = { Code: '', CP: '1234 AB', Statut: 'ouvert', Note: '5', Depuis: '2001-02-03', Jour: '31/12/2020', Montant: '"1.234,5"', Nom: 'Alpha', Email: '', Etat: 'O' };
  const refused: [Partial<typeof good>, string, string][] = [
    [{ CP: '12 AB' }, 'cp', 'pattern'],
    [{ Statut: 'peut-être' }, 'statut', 'enum'],
    [{ Note: '11' }, 'note', 'range'],
    [{ Depuis: '1999-12-31' }, 'depuis', 'range'],
    [{ Nom: '' }, 'nom', 'required'],
    [{ Nom: 'N/A' }, 'nom', 'null'],
    [{ Code: '1' }, 'code', 'unique'],
    [{ Note: 'beaucoup' }, 'note', 'type'],
    [{ Etat: 'X' }, 'etat', 'map'],
    [{ Jour: '2020-12-31' }, 'jour', 'type'],
    [{ Montant: 'abc' }, 'montant', 'type'],
    [{ Email: 'r1@ville.be' }, 'email', 'unique'],
  ];
  const lines = [Object.keys(good).join(',')];
  lines.push(Object.values({ ...good, Code: '1', Email: 'r1@ville.be' }).join(',')); // line 2: loads
  refused.forEach(([over], i) => lines.push(Object.values({ ...good, Code: String(i + 2), Email: `r${i + 2}@ville.be`, ...over }).join(',')));
  const lineOf = (column: string, rule: string) => 3 + refused.findIndex(([, c, r]) => c === column && r === rule);
  const valueOf = (column: string, rule: string) => Object.values(refused.find(([, c, r]) => c === column && r === rule)![0])[0]!;

  let loadId: number;
  let page: string;
  let stored: Map<number, { rule: string; reason: string }>;
  beforeAll(async () => {
    const outcome = await deliver('ville', 'releves', 'releves.csv', `${lines.join('\n')}\n`);
    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 1, rowsQuarantined: refused.length });
    loadId = outcome.loadId;
    page = await read('reports/ville/releves/releves.csv.report.html');
    const q = await rows<{ source_line: string; rule: string; reason: string }>(cleanDeps.pool, 'SELECT source_line::text, rule, reason FROM it_report.releves_quarantine WHERE load_id = $1', [loadId]);
    stored = new Map(q.map((r) => [Number(r.source_line), { rule: r.rule, reason: r.reason }]));
  });

  it('is in French, every example reason with it, each with the facts of its rule: value, pattern, allowed values, bounds, form, line', () => {
    expect(page).toContain('<html lang="fr">');
    const shown = new Map(exampleLines(page).map((e) => [e.line, e]));
    expect(shown.size).toBe(refused.length);
    const reason = (column: string, rule: string) => shown.get(lineOf(column, rule))!.reason;
    const cp = declared('cp');
    expect(reason('cp', 'pattern')).toBe(`ne respecte pas le motif ${cp.pattern}\u00a0: ${valueOf('cp', 'pattern')}`);
    const allowed = declared('statut')
      .values!.map((v) => JSON.stringify(v))
      .join(', ');
    expect(reason('statut', 'enum')).toBe(`ne fait pas partie des valeurs autorisées (${allowed})\u00a0: peut-être`);
    const note = declared('note');
    expect(reason('note', 'range')).toBe(`n'est pas entre ${note.min} et ${note.max}\u00a0: 11`);
    expect(reason('depuis', 'range')).toBe(`inférieur au minimum ${declared('depuis').min}\u00a0: 1999-12-31`);
    expect(reason('nom', 'required')).toBe('une valeur obligatoire manque');
    expect(reason('nom', 'null')).toBe('une valeur obligatoire manque (N/A compte comme vide)');
    expect(reason('code', 'unique')).toBe("clé en double\u00a0: même code qu'à la ligne 2");
    expect(reason('note', 'type')).toBe("n'est pas un entier valide\u00a0: beaucoup");
    expect(reason('etat', 'map')).toBe('absente de la table de correspondance «\u00a0site_status\u00a0»\u00a0: X');
    expect(reason('jour', 'type')).toBe(`n'est pas une date au format ${declared('jour').format}\u00a0: 2020-12-31`);
    expect(reason('montant', 'type')).toBe("n'est pas un nombre de la forme 1.234,5\u00a0: abc");
    expect(reason('email', 'unique')).toBe("valeur en double\u00a0: même email qu'à la ligne 2");
    // every one translated: none is the English the quarantine keeps, which stays as it was written
    for (const [line, e] of shown) {
      expect(e.rule).toBe(stored.get(line)!.rule);
      expect(e.reason).not.toBe(stored.get(line)!.reason);
    }
    expect(stored.get(lineOf('cp', 'pattern'))!.reason).toBe(`does not match the pattern ${cp.pattern}: 12 AB`);
  });

  it('is unchanged in English: each reason is the one the quarantine keeps; in Dutch, the reasons are Dutch', async () => {
    const report = await ledgerReport(loadId);
    const english = exampleLines(await supplierReportPage(cleanDeps.pool, report, cleanDeps.pipeline, 'en'));
    expect(english.map((e) => [e.line, e.rule, e.reason])).toEqual([...stored].sort((a, b) => a[0] - b[0]).map(([line, q]) => [line, q.rule, q.reason]));
    const dutch = new Map(exampleLines(await supplierReportPage(cleanDeps.pool, report, cleanDeps.pipeline, 'nl')).map((e) => [e.line, e.reason]));
    expect(dutch.get(lineOf('note', 'range'))).toBe('niet tussen 0 en 10: 11');
    expect(dutch.get(lineOf('cp', 'pattern'))).toBe(`voldoet niet aan het patroon ${declared('cp').pattern}: 12 AB`);
    expect(dutch.get(lineOf('code', 'unique'))).toBe('dubbele sleutel: zelfde code als regel 2');
  });
});
