/**
 * The pipeline's stage step meets the hostile files of issue 16 (built here, each a few kB): each
 * ends as a failed load in the ledger, naming the file, the position and the limit, and the clean
 * table keeps the rows of the last good load. The same files are read in a capped child process,
 * with their figures, in test/unit/read-bounds.test.ts.
 */
import { gzipSync } from 'node:zlib';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { stageObject, type StageDeps, type CleanMessage } from '../../functions/stage/stage-object.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { ods, writeOds, writeRawXlsx } from '../helpers/spreadsheets.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

const definition: PipelineInput = {
  project: 'it_bounds',
  suppliers: [{ name: 'city' }],
  datasets: [
    { name: 'visits', source: { type: 'upload', supplier: 'city' } },
    { name: 'small', source: { type: 'upload', supplier: 'city' }, read: { limits: { maxRows: 3 } } },
  ],
};

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;
let dir: string;

async function deliver(dataset: string, file: string, body: Buffer) {
  const handed: CleanMessage[] = [];
  const ref = await put(bucket, `incoming/city/${dataset}/${file}`, body);
  const staged = await stageObject({ ...stageDeps, notifyClean: async (m) => void handed.push(m) }, ref);
  for (const m of handed) await cleanLoad(cleanDeps, m.loadId);
  return staged;
}

async function xlsx(file: string, rowsXml: string): Promise<Buffer> {
  await writeRawXlsx(join(dir, file), { sheets: [{ name: 'Data', rows: rowsXml }] });
  return readFile(join(dir, file));
}

const header = '<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c><c r="B1" t="inlineStr"><is><t>visitors</t></is></c></row>';
const row = (r: number, id: number, n: number) => `<row r="${r}"><c r="A${r}"><v>${id}</v></c><c r="B${r}"><v>${n}</v></c></row>`;

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-bounds');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline };
  dir = await mkdtemp(join(tmpdir(), 'it-bounds-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('hostile files in the pipeline', () => {
  it('a cell at column ZZZZZZZ is a failed load naming sheet, cell and limit; the clean table keeps its rows', async () => {
    expect(await deliver('visits', 'good.xlsx', await xlsx('good.xlsx', `${header}${row(2, 1, 120)}${row(3, 2, 340)}`))).toMatchObject({ status: 'staged' });

    const staged = await deliver('visits', 'far.xlsx', await xlsx('far.xlsx', `${header}${row(2, 1, 120)}<row r="3"><c r="ZZZZZZZ3"><v>1</v></c></row>`));

    expect(staged).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^incoming\/city\/visits\/far\.xlsx#Data: cell ZZZZZZZ3 is right of column BIN, the last one read, .*\(read\.limits\.maxColumns\): refused/),
    });
    const [load] = await rows<{ status: string; error: string }>(cleanDeps.pool, `SELECT status, error FROM etl.loads WHERE project = 'it_bounds' AND object_key LIKE '%far.xlsx'`);
    expect(load).toMatchObject({ status: 'failed', error: expect.stringContaining('read.limits.maxColumns') });
    expect(await rows(cleanDeps.pool, 'SELECT id::int FROM it_bounds.visits ORDER BY 1')).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('a gzip bomb is a failed load naming the limit', async () => {
    const bomb = gzipSync(Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(64 << 20)]), { level: 9 });

    const staged = await deliver('visits', 'bomb.xlsx.gz', bomb);

    expect(staged).toMatchObject({ status: 'failed', error: expect.stringMatching(/bomb\.xlsx\.gz: the gzip stream expands .*\(read\.limits\.maxRatio\): refused/) });
  });

  it("a dataset's own read.limits apply to its files", async () => {
    const path = join(dir, 'small.ods');
    await writeOds(path, [{ name: 'Data', rows: [ods.row([ods.text('id'), ods.text('visitors')]), ...[1, 2, 3].map((i) => ods.row([ods.float(i), ods.float(i * 10)]))] }]);

    const staged = await deliver('small', 'small.ods', await readFile(path));

    expect(staged).toMatchObject({ status: 'failed', error: expect.stringMatching(/small\.ods#Data: row 4 is below the sheet's last row, beyond the limit of 3 \(read\.limits\.maxRows\): refused/) });
  });
});
