/**
 * Honest outcomes (issue 13, outcome 7): what the command line and the pipeline say when a load
 * cannot do what was asked — all of it output a user reads through a pipe, exit codes, the ledger.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PipelineInput } from '../../contract/definition.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { getPool } from '../../functions/common/db.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { datasetLoads, describeReport } from '../../functions/common/report.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

/** Run the real command with stdout and stderr on pipes, as `civic-etl … | jq` does. */
function civicEtl(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/civic-etl.mjs', ...args], {
    encoding: 'utf8',
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'civic-etl-outcomes-'));
const file = (name: string, body: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
};

/** A fresh project with one uploaded dataset, its bucket, and what the stage step needs. */
async function project(name: string, dataset: string) {
  const definition: PipelineInput = { project: name, suppliers: [{ name: 'city' }], datasets: [{ name: dataset, source: { type: 'upload', supplier: 'city' } }] };
  const { pipeline, pool } = await freshProject(definition);
  const bucket = await freshBucket(name.replace(/_/g, '-'));
  const stageDeps: StageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  return { pipeline, pool, bucket, stageDeps };
}

/** A CSV of `columns` columns named c1…, with `rows` rows of distinct words. */
const wideCsv = (columns: number, rows: number) =>
  [Array.from({ length: columns }, (_, i) => `c${i + 1}`).join(','), ...Array.from({ length: rows }, (_, r) => Array.from({ length: columns }, (_, i) => `w${r}x${i}`).join(','))].join('\n') + '\n';

describe('piped output', () => {
  it('profile --json through a pipe is the whole document, far past 64 KiB', () => {
    const wide = file('wide.csv', wideCsv(400, 30));

    const r = civicEtl('profile', '--json', wide);

    expect(r.code, r.stderr).toBe(0);
    expect(Buffer.byteLength(r.stdout)).toBeGreaterThan(4 * 64 * 1024);
    const profile = JSON.parse(r.stdout) as { columns: { name: string }[]; rowCount: number };
    expect(profile.columns).toHaveLength(400);
    expect(profile.columns.at(-1)!.name).toBe('c400');
    expect(profile.rowCount).toBe(30);
  });
});

/** Coordinates no locale reads as a place: latitudes beyond the pole. */
const NOWHERE = 'name,lat,lon\nQuay,95.5,4.9\nGate,-120,4.8\nDam,200,4.89\n';

describe('a load that keeps no row is a failure', () => {
  beforeAll(async () => {
    await (await getPool()).query('DROP SCHEMA IF EXISTS it_outcomes CASCADE');
  });

  it('civic-etl load: every coordinate out of range — exit 1, the reason with its line, no table and no rejects left', async () => {
    const path = file('nowhere.csv', NOWHERE);

    const r = civicEtl('load', path, '--table', 'it_outcomes.nowhere');

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^civic-etl: ${path}: no row loaded — all 3 rows were rejected \\(geom: 3 rows, first line 2: `));
    expect(r.stderr).toMatch(/latitude out of range/);
    const left = await rows(await getPool(), `SELECT to_regclass('it_outcomes.nowhere') AS t, to_regclass('it_outcomes.nowhere_rejects') AS r`);
    expect(left).toEqual([{ t: null, r: null }]);
    const ledger = await rows(await getPool(), `SELECT status, error, error_line::int AS line FROM etl.loads WHERE object_key = $1 ORDER BY id DESC LIMIT 1`, [path]);
    expect(ledger).toEqual([{ status: 'failed', error: expect.stringContaining('no row loaded'), line: 2 }]);
  });

  it('civic-etl load: replacing the rows of a table with a file none of whose rows fit keeps the table as it was', async () => {
    const good = file('counts.csv', 'site,visitors\nA,12\nB,30\n');
    const bad = file('counts-bad.csv', 'site,visitors\nA,twelve\nB,thirty\n');
    expect(civicEtl('load', good, '--table', 'it_outcomes.counts').code).toBe(0);

    const r = civicEtl('load', bad, '--table', 'it_outcomes.counts');

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no row loaded — all 2 rows were rejected \(visitors: 2 rows, first line 2: not a valid integer: twelve\)/);
    expect(await rows(await getPool(), 'SELECT site, visitors FROM it_outcomes.counts ORDER BY site')).toEqual([
      { site: 'A', visitors: 12 },
      { site: 'B', visitors: 30 },
    ]);
    expect(await rows(await getPool(), 'SELECT count(*)::int AS n FROM it_outcomes.counts_rejects')).toEqual([{ n: 0 }]);
  });

  it('civic-etl load: a file with a header and no records is not a failure (an empty table with its columns)', async () => {
    const r = civicEtl('load', file('header-only.csv', 'site,visitors\n'), '--table', 'it_outcomes.empty');

    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rows read 0, loaded 0, rejected 0/);
  });

  it('the pipeline: the ledger says failed with the reason, status tells it, the clean table is not made', async () => {
    const { pipeline, pool, bucket, stageDeps } = await project('it_outcomes_p', 'stops');
    const cleanDeps: CleanDeps = { pool, pipeline };
    const staged = await stageObject(stageDeps, await put(bucket, 'incoming/city/stops/nowhere.csv', NOWHERE));
    if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);

    const outcome = await cleanLoad(cleanDeps, staged.loadId);

    expect(outcome).toMatchObject({ status: 'failed', error: expect.stringMatching(/^incoming\/city\/stops\/nowhere\.csv: no row loaded — all 3 rows were rejected \(geom: 3 rows, first line 2: /) });
    expect(await rows(pool, 'SELECT status, rows_loaded, error_line::int AS line FROM etl.loads WHERE id = $1', [staged.loadId])).toEqual([{ status: 'failed', rows_loaded: null, line: 2 }]);
    expect(await rows(pool, `SELECT to_regclass('it_outcomes_p.stops') AS t`)).toEqual([{ t: null }]);
    const [latest] = await datasetLoads(pool, 'it_outcomes_p', 'stops', 1);
    expect(latest!.status).toBe('failed');
    expect(describeReport(latest!.report!).join('\n')).toMatch(/no row loaded — all 3 rows were rejected/);
    // what `civic-etl status` prints for the dataset
    const definitionFile = file('pipeline.yaml', 'project: it_outcomes_p\nsuppliers:\n  - name: city\ndatasets:\n  - name: stops\n    source: { type: upload, supplier: city }\n');
    const status = civicEtl('status', 'stops', '--pipeline', definitionFile);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/load \d+ · incoming\/city\/stops\/nowhere\.csv .*· failed/);
    expect(status.stdout).toContain('no row loaded — all 3 rows were rejected (geom: 3 rows, first line 2: ');
  });
});

/** `columns` columns, one row with a value in the first and last only (a narrow row, however wide the table). */
const sparseCsv = (columns: number) => `${Array.from({ length: columns }, (_, i) => `c${i + 1}`).join(',')}\nfirst${','.repeat(columns - 1)}last\n`;

describe('more columns than PostgreSQL allows in a table', () => {
  // PostgreSQL: at most 1600 columns per table. `load` adds _source_line to staging (or geom to
  // the table): a file may have 1599. The pipeline's staging adds _source_line, _load_id, _s3_key
  // and _s3_version: 1596.
  it('civic-etl load: a 1600-column CSV fails at once, naming the file, its columns and the limit; nothing is left', async () => {
    const path = file('wide-1600.csv', sparseCsv(1600));

    const r = civicEtl('load', path, '--table', 'it_outcomes.too_wide');

    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `civic-etl: ${path}: 1600 columns, more than the 1599 a file can have here (PostgreSQL allows 1600 columns in a table, and 1 are taken by civic-etl's own columns); split the file, or keep fewer columns\n`,
    );
    expect(await rows(await getPool(), `SELECT to_regclass('it_outcomes.too_wide') AS t`)).toEqual([{ t: null }]);
    expect(await rows(await getPool(), `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'it_outcomes' AND tablename LIKE '\\_civic\\_etl\\_load\\_%'`)).toEqual([{ n: 0 }]);
  });

  it('civic-etl load: JSON records with 1600 keys fail the same way', async () => {
    const record = Object.fromEntries(Array.from({ length: 1600 }, (_, i) => [`k${i + 1}`, i]));
    const path = file('wide.ndjson', `${JSON.stringify(record)}\n`);

    const r = civicEtl('load', path, '--table', 'it_outcomes.too_wide_json');

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/: 1600 columns, more than the 1599 a file can have here/);
  });

  it('civic-etl profile: still profiles a 1600-column file, and warns that it cannot be loaded', () => {
    const r = civicEtl('profile', '--json', file('wide-profile.csv', sparseCsv(1600)));

    expect(r.code, r.stderr).toBe(0);
    const profile = JSON.parse(r.stdout) as { columns: unknown[]; warnings: string[] };
    expect(profile.columns).toHaveLength(1600);
    expect(profile.warnings).toContain('1600 columns: civic-etl load takes at most 1599, the pipeline 1596 (1595 in mode history); PostgreSQL allows 1600 in a table');
  });

  it('the pipeline: 1597 columns fail the stage step with the limit in the ledger; 1596 stage and clean', async () => {
    const { pipeline, pool, bucket, stageDeps } = await project('it_outcomes_w', 'survey');

    const tooWide = await stageObject(stageDeps, await put(bucket, 'incoming/city/survey/wide.csv', sparseCsv(1597)));

    expect(tooWide).toMatchObject({ status: 'failed', error: expect.stringContaining('incoming/city/survey/wide.csv: 1597 columns, more than the 1596 a file can have here') });
    expect(await rows(pool, 'SELECT status, error_line::int AS line FROM etl.loads WHERE id = $1', [(tooWide as { loadId: number }).loadId])).toEqual([{ status: 'failed', line: 1 }]);

    const widest = await stageObject(stageDeps, await put(bucket, 'incoming/city/survey/widest.csv', sparseCsv(1596)));
    expect(widest).toMatchObject({ status: 'staged', rows: 1 });
    const cleaned = await cleanLoad({ pool, pipeline }, (widest as { loadId: number }).loadId);
    expect(cleaned).toMatchObject({ status: 'loaded', rowsLoaded: 1 });
    expect(await rows(pool, 'SELECT c1, c1596 FROM it_outcomes_w.survey')).toEqual([{ c1: 'first', c1596: 'last' }]);
  });
});
