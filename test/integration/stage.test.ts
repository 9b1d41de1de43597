import { GetObjectCommand, ListObjectVersionsCommand, PutBucketPolicyCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import type { ObjectRef } from '../../functions/common/ledger.ts';
import { stageObject, type CleanMessage, type StageDeps } from '../../functions/stage/stage-object.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

const definition = {
  project: 'it_stage',
  suppliers: [{ name: 'acme' }, { name: 'other' }],
  datasets: [
    {
      name: 'people',
      source: { type: 'upload' as const, supplier: 'acme' },
      clean: { columns: [{ name: 'id', type: 'integer' as const }, { name: 'name' }] },
    },
  ],
};

let deps: StageDeps;
let bucket: string;
const notified: CleanMessage[] = [];

async function ledger(ref: ObjectRef) {
  const [row] = await rows<{ id: string; status: string; error: string | null; error_line: string | null; attempts: number; rows_read: string | null; staging_table: string | null }>(
    deps.pool,
    'SELECT * FROM etl.loads WHERE bucket = $1 AND object_key = $2 AND object_version = $3',
    [ref.bucket, ref.key, ref.versionId],
  );
  return row;
}

async function stagingTables(): Promise<string[]> {
  return (await rows<{ t: string }>(deps.pool, `SELECT tablename AS t FROM pg_tables WHERE schemaname = 'it_stage_staging' ORDER BY 1`)).map((r) => r.t);
}

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-stage');
  deps = { pool, s3: s3Client(), pipeline, notifyClean: async (m) => void notified.push(m) };
});

describe('stage', () => {
  it('streams a CSV into a staging table with lineage columns and hands it to clean', async () => {
    const ref = await put(bucket, 'incoming/acme/people/2024/people.csv', 'id,name\n1,Ann\n2,"Bo\nBo"\n3,Cy\n');

    const outcome = await stageObject(deps, ref);

    expect(outcome).toMatchObject({ status: 'staged', rows: 3, dataset: 'people' });
    const loadId = (outcome as { loadId: number }).loadId;
    const staged = await rows(deps.pool, `SELECT id, name, _source_line::int AS line, _load_id::int AS load, _s3_key AS key, _s3_version AS version FROM it_stage_staging."people__${loadId}" ORDER BY 3`);
    expect(staged).toEqual([
      { id: '1', name: 'Ann', line: 2, load: loadId, key: ref.key, version: ref.versionId },
      { id: '2', name: 'Bo\nBo', line: 3, load: loadId, key: ref.key, version: ref.versionId },
      { id: '3', name: 'Cy', line: 5, load: loadId, key: ref.key, version: ref.versionId },
    ]);
    expect(await ledger(ref)).toMatchObject({ status: 'staged', rows_read: '3', attempts: 1 });
    expect(notified).toContainEqual({ loadId });
  });

  it('changes nothing when the same object version is delivered again', async () => {
    const ref = await put(bucket, 'incoming/acme/people/again.csv', 'id,name\n1,Ann\n');
    const first = await stageObject(deps, ref);
    const tablesBefore = await stagingTables();

    const second = await stageObject(deps, ref);

    expect(second).toEqual({ status: 'duplicate', loadId: (first as { loadId: number }).loadId });
    expect(await stagingTables()).toEqual(tablesBefore);
    expect(await ledger(ref)).toMatchObject({ status: 'staged', attempts: 2 });
  });

  it('stages once when two workers get the same object version at the same moment', async () => {
    const ref = await put(bucket, 'incoming/acme/people/race.csv', `id,name\n${Array.from({ length: 5000 }, (_, i) => `${i},n${i}`).join('\n')}\n`);

    const outcomes = await Promise.all([stageObject(deps, ref), stageObject(deps, ref), stageObject(deps, ref)]);

    expect(outcomes.map((o) => o.status).sort()).toEqual(['duplicate', 'duplicate', 'staged']);
    const row = await ledger(ref);
    expect(row).toMatchObject({ status: 'staged', rows_read: '5000', attempts: 3 });
    const [count] = await rows<{ n: number }>(deps.pool, `SELECT count(*)::int AS n FROM ${row!.staging_table}`);
    expect(count!.n).toBe(5000);
  });

  it('treats a new version of the same key as a new load', async () => {
    const v1 = await put(bucket, 'incoming/acme/people/daily.csv', 'id,name\n1,Ann\n');
    const v2 = await put(bucket, 'incoming/acme/people/daily.csv', 'id,name\n1,Ann\n2,Bo\n');

    const [o1, o2] = [await stageObject(deps, v1), await stageObject(deps, v2)];

    expect(o1).toMatchObject({ status: 'staged', rows: 1 });
    expect(o2).toMatchObject({ status: 'staged', rows: 2 });
  });

  describe('bad input is recorded with file and line, acknowledged, and leaves no staging table', () => {
    const cases: { what: string; key: string; body: string | Buffer; error: RegExp; line?: number }[] = [
      { what: 'a key outside the dataset zones', key: 'misc/people.csv', body: 'id,name\n1,a\n', error: /misc\/people\.csv: not a dataset path/ },
      { what: 'an unknown dataset', key: 'incoming/acme/pets/p.csv', body: 'id,name\n1,a\n', error: /unknown dataset "pets" in project it_stage \(known: people\)/ },
      { what: 'another supplier’s dataset', key: 'incoming/other/people/p.csv', body: 'id,name\n1,a\n', error: /supplier "other" does not deliver dataset "people"; expected incoming\/acme\/people\// },
      { what: 'an empty file', key: 'incoming/acme/people/empty.csv', body: '', error: /empty\.csv is empty/ },
      {
        what: 'bytes that are not CSV',
        key: 'incoming/acme/people/logo.csv',
        body: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]),
        error: /logo\.csv is not CSV text: it looks like a PNG image/,
      },
      { what: 'a ragged row', key: 'incoming/acme/people/ragged.csv', body: 'id,name\n1,a\n2,b,extra\n3,c\n', error: /ragged\.csv line 3: the record has 3 fields, the header has 2/, line: 3 },
      {
        what: 'UTF-8 text with a byte that is not UTF-8',
        key: 'incoming/acme/people/mixed.csv',
        body: Buffer.concat([Buffer.from(`id,name\n${Array.from({ length: 50 }, (_, i) => `${i},Zoë Ørsted`).join('\n')}\n51,`), Buffer.from([0xfc]), Buffer.from('rich\n')]),
        error: /mixed\.csv line 52: invalid UTF-8 byte 0xfc/,
        line: 52,
      },
    ];
    for (const c of cases) {
      it(`rejects ${c.what}`, async () => {
        const tablesBefore = await stagingTables();
        const ref = await put(bucket, c.key, c.body);

        const outcome = await stageObject(deps, ref);

        expect(outcome).toMatchObject({ status: 'failed', error: expect.stringMatching(c.error) });
        const row = await ledger(ref);
        expect(row).toMatchObject({ status: 'failed', error: expect.stringMatching(c.error) });
        if (c.line) expect(Number(row!.error_line)).toBe(c.line);
        expect(await stagingTables()).toEqual(tablesBefore);
        // a redelivery does not try again
        expect(await stageObject(deps, ref)).toMatchObject({ status: 'duplicate' });
      });
    }
  });

  it('stages text in another encoding (Windows-1252), transcoded to UTF-8', async () => {
    // "Zürich" and "Crème brûlé – 5 €" as a Windows-1252 spreadsheet export writes them
    const bytes = Buffer.concat([
      Buffer.from('id;name\n1;Z'),
      Buffer.from([0xfc]),
      Buffer.from('rich\n2;Cr'),
      Buffer.from([0xe8]),
      Buffer.from('me br'),
      Buffer.from([0xfb]),
      Buffer.from('l'),
      Buffer.from([0xe9]),
      Buffer.from(' '),
      Buffer.from([0x96]),
      Buffer.from(' 5 '),
      Buffer.from([0x80]),
      Buffer.from('\n'),
    ]);
    const exact = await put(bucket, 'incoming/acme/people/cp1252.csv', bytes);

    const outcome = await stageObject(deps, exact);

    expect(outcome).toMatchObject({ status: 'staged', rows: 2 });
    const table = (await ledger(exact))!.staging_table!;
    expect(await rows(deps.pool, `SELECT id, name, _source_line::int AS line FROM ${table} ORDER BY 3`)).toEqual([
      { id: '1', name: 'Zürich', line: 2 },
      { id: '2', name: 'Crème brûlé – 5 €', line: 3 },
    ]);
  });

  it('stages a gzip-compressed file', async () => {
    const ref = await put(bucket, 'incoming/acme/people/people.csv.gz', gzipSync('id,name\n1,Ann\n2,Bo\n'));

    expect(await stageObject(deps, ref)).toMatchObject({ status: 'staged', rows: 2 });
  });

  it('skips title lines above the header, keeping the true source lines', async () => {
    const ref = await put(bucket, 'incoming/acme/people/titled.csv', 'People of ACME\nExported 2024-01-05\n\nid,name\n1,Ann\n2,Bo\n');

    const outcome = await stageObject(deps, ref);

    expect(outcome).toMatchObject({ status: 'staged', rows: 2 });
    expect(await rows(deps.pool, `SELECT id, _source_line::int AS line FROM ${(await ledger(ref))!.staging_table} ORDER BY 2`)).toEqual([
      { id: '1', line: 5 },
      { id: '2', line: 6 },
    ]);
  });

  it('throws (so the message is retried) when the database is unreachable, and leaves the object as it was', async () => {
    const ref = await put(bucket, 'incoming/acme/people/later.csv', 'id,name\n1,Ann\n');
    const unreachable = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', connectionTimeoutMillis: 2000 });
    unreachable.on('error', () => undefined);

    await expect(stageObject({ ...deps, pool: unreachable }, ref)).rejects.toThrow(/ECONNREFUSED/);

    await unreachable.end();
    expect(await ledger(ref)).toBeUndefined();
    const again = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: ref.key, VersionId: ref.versionId }));
    expect(await again.Body!.transformToString()).toBe('id,name\n1,Ann\n');
    // once the database is back, the retry stages it
    expect(await stageObject(deps, ref)).toMatchObject({ status: 'staged', rows: 1 });
  });

  it('never modifies or deletes the objects it reads', async () => {
    const versions = await s3Client().send(new ListObjectVersionsCommand({ Bucket: bucket }));
    expect(versions.DeleteMarkers ?? []).toEqual([]);
    expect((versions.Versions ?? []).length).toBe(16);
  });
});

describe('an object the stage step may not read', () => {
  it('is a recorded permanent failure naming the cause (S3 answers 403: moto with a bucket policy denying the read), not retried', async () => {
    const ref = await put(bucket, 'incoming/acme/people/denied.csv', 'id,name\n1,Ann\n');
    const Policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/${ref.key}` }] });
    await deps.s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy }));

    const outcome = await stageObject(deps, ref);

    expect(outcome).toMatchObject({ status: 'failed', error: expect.stringMatching(/^incoming\/acme\/people\/denied\.csv: the stage step may not read this object \(/) });
    expect(await ledger(ref)).toMatchObject({ status: 'failed', error: expect.stringContaining('may not read this object') });
    // the message comes again: nothing more is tried
    expect(await stageObject(deps, ref)).toMatchObject({ status: 'duplicate' });
  });
});
