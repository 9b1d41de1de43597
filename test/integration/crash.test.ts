import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { Upload } from '@aws-sdk/lib-storage';
import { s3Client } from '../../functions/common/aws.ts';
import { stageObject } from '../../functions/stage/stage-object.ts';
import { CRASH_PIPELINE } from '../fixtures/crash/stage-child.ts';
import { freshBucket, freshProject, rows } from './support.ts';

/** About 60 MB of CSV, so the COPY lasts long enough to be interrupted. */
function bigCsv(): Buffer {
  const line = (i: number) => `${i},${'lorem ipsum dolor sit amet '.repeat(4)}${i}\n`;
  const parts = ['id,txt\n'];
  for (let i = 0; i < 500_000; i++) parts.push(line(i));
  return Buffer.from(parts.join(''));
}

describe('a crash in the middle of a COPY', () => {
  let bucket: string;
  beforeAll(async () => {
    bucket = await freshBucket('it-crash');
  });

  it('leaves no visible rows, and the redelivered event completes the load', async () => {
    const { pipeline, pool } = await freshProject(CRASH_PIPELINE);
    const key = 'incoming/acme/big/big.csv';
    const body = bigCsv();
    const uploaded = await new Upload({ client: s3Client(), params: { Bucket: bucket, Key: key, Body: body } }).done();
    const ref = { bucket, key, versionId: uploaded.VersionId };

    // prepare: a worker that is killed (SIGKILL: no clean-up of its own) while its COPY runs
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/crash/stage-child.ts', bucket, key, ref.versionId ?? ''], {
      env: { ...process.env, NODE_NO_WARNINGS: '1', POWERTOOLS_LOG_LEVEL: 'SILENT' },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let copying = false;
    for (let i = 0; i < 600 && !copying; i++) {
      const [r] = await rows<{ n: number }>(pool, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'COPY "it_crash_staging".%' AND state <> 'idle'`);
      copying = r!.n > 0;
      if (!copying) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(copying).toBe(true);

    // act: kill it mid-COPY
    child.kill('SIGKILL');
    await exited;
    // the server notices the dropped connection and rolls the transaction back
    for (let i = 0; i < 200; i++) {
      const [r] = await rows<{ n: number }>(pool, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'COPY "it_crash_staging".%'`);
      if (r!.n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    // assess: nothing half-loaded is visible, the ledger still says received
    expect(await rows(pool, `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'it_crash_staging'`)).toEqual([{ n: 0 }]);
    expect(await rows(pool, `SELECT status FROM etl.loads WHERE project = 'it_crash'`)).toEqual([{ status: 'received' }]);

    // the retry (SQS redelivers the message) completes the load, exactly once
    const outcome = await stageObject({ pool, s3: s3Client(), pipeline, notifyClean: async () => undefined }, ref);
    expect(outcome).toMatchObject({ status: 'staged', rows: 500_000 });
    expect(await rows(pool, `SELECT status, attempts FROM etl.loads WHERE project = 'it_crash'`)).toEqual([{ status: 'staged', attempts: 2 }]);
    const table = (await rows<{ t: string }>(pool, `SELECT staging_table AS t FROM etl.loads WHERE project = 'it_crash'`))[0]!.t;
    expect(await rows(pool, `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM ${table}`)).toEqual([{ n: 500_000, ids: 500_000 }]);
  });
});
