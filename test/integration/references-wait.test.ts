/**
 * A `references` rule between datasets that arrive together (functions/clean/order.ts), through
 * the local runner (real PostgreSQL, moto's S3 and SQS): the referenced dataset's load is cleaned
 * first within a batch; across batches the referencing load waits (retried) for it; it never waits
 * forever; and with nothing to wait for the rule fails the load as before, naming the dataset.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChangeMessageVisibilityCommand, CreateQueueCommand, DeleteMessageCommand, DeleteQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { sqsClient } from '../../functions/common/aws.ts';
import { WaitingError } from '../../functions/common/errors.ts';
import { logger } from '../../functions/common/logger.ts';
import { sqsStep } from '../../functions/common/batch.ts';
import { waitSeconds } from '../../functions/common/retry-soon.ts';
import type { LocalPipeline } from '../../local/pipeline.ts';
import { pollOnce, type BindingStats } from '../../local/runner.ts';
import { captureLines, drain, freshLocalPipeline } from './captured.ts';
import { rows } from './support.ts';

// the steps' log lines and EMF metric lines, as CloudWatch would receive them
process.env.POWERTOOLS_METRICS_DISABLED = 'false';
logger.setLogLevel('INFO');

const PIPELINE = 'test/fixtures/references-wait-pipeline.yaml';
const MAX_RECEIVES = 5;
const opened = freshLocalPipeline(PIPELINE, { visibilityTimeoutSeconds: 1, maxReceiveCount: MAX_RECEIVES });
let local: LocalPipeline;
beforeAll(() => {
  local = opened();
});
const dir = mkdtempSync(join(tmpdir(), 'civic-etl-refs-'));
const file = (name: string, body: string) => {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
};

const { logLines, metricLines } = captureLines();
const counted = (metric: string) =>
  metricLines()
    .filter((l) => l.step === 'clean')
    .reduce((n, l) => n + Number(l[metric] ?? 0), 0);

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/civic-etl.mjs', ...args, '--pipeline', PIPELINE], { encoding: 'utf8', env: process.env, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

type Load = { id: number; status: string; error: string | null; error_kind: string | null; error_step: string | null; attempts: number; rows_loaded: number | null; rows_quarantined: number | null };
const loadOf = async (name: string) =>
  (
    await rows<Load>(
      local.pool,
      `SELECT id::int, status, error, error_kind, error_step, attempts, rows_loaded::int, rows_quarantined::int
         FROM etl.loads WHERE project = 'it_refs' AND object_key LIKE '%/' || $1 ORDER BY id DESC LIMIT 1`,
      [name],
    )
  )[0]!;
const binding = (name: string) => local.bindings.find((b) => b.name === name)!;
const stats = (): BindingStats => ({ invocations: 0, messages: 0, failures: 0 });

/** Stage what was uploaded, then take the clean messages off the queue (hidden for `seconds`): the loads stay staged. */
async function stageAndHold(seconds: number): Promise<{ body: string; receipt: string }[]> {
  expect(await pollOnce(binding('stage'), stats(), { waitSeconds: 1 })).toBeGreaterThan(0);
  const out = await sqsClient().send(new ReceiveMessageCommand({ QueueUrl: local.resources.cleanQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: seconds }));
  return (out.Messages ?? []).map((m) => ({ body: m.Body!, receipt: m.ReceiptHandle! }));
}

describe('references between datasets that arrive together', () => {
  it('one batch, the referencing file first: the referenced dataset is cleaned first, nothing quarantined, no retry', async () => {
    await local.uploadAsSupplier('programs', file('programs-1.csv', 'id,area\n1,N\n2,S\n3,N\n'));
    await local.uploadAsSupplier('areas', file('areas-1.csv', 'code,name\nN,North\nS,South\n'));
    const run = await local.run({ maxMs: 120_000 });

    const [programs, areas] = [await loadOf('programs-1.csv'), await loadOf('areas-1.csv')];
    expect(programs.id).toBeLessThan(areas.id); // programs arrived first
    expect(areas).toMatchObject({ status: 'loaded', rows_loaded: 2, rows_quarantined: 0 });
    expect(programs).toMatchObject({ status: 'loaded', rows_loaded: 3, rows_quarantined: 0, error: null });
    expect(run.clean!.failures).toBe(0);
    // one batch, cleaned in the order areas, programs
    expect(logLines()).toContainEqual(expect.objectContaining({ message: 'batch reordered: referenced datasets first', loads: [areas.id, programs.id] }));
    const cleaned = logLines()
      .filter((l) => l.message === 'cleaned')
      .map((l) => l.loadId);
    expect(cleaned).toEqual([areas.id, programs.id]);
    expect(await rows(local.pool, 'SELECT id, area FROM it_refs.programs ORDER BY id')).toEqual([
      { id: 1, area: 'N' },
      { id: 2, area: 'S' },
      { id: 3, area: 'N' },
    ]);
    expect(await rows(local.pool, 'SELECT * FROM it_refs.programs_quarantine')).toEqual([]);
  });

  it('another batch: with the referenced load still staged, the referencing load waits (retried, recorded), then loads', async () => {
    await local.uploadAsSupplier('areas', file('areas-2.csv', 'code,name\nN,North\nS,South\nE,East\n'));
    const held = await stageAndHold(60);
    expect(held).toHaveLength(1);
    const areas = await loadOf('areas-2.csv');
    expect(areas.status).toBe('staged');

    // E is only in the areas file still waiting: checked now, it would be quarantined
    await local.uploadAsSupplier('programs', file('programs-2.csv', 'id,area\n1,N\n2,E\n'));
    expect(await pollOnce(binding('stage'), stats(), { waitSeconds: 1 })).toBe(1);
    const first = stats();
    expect(await pollOnce(binding('clean'), first, { waitSeconds: 1 })).toBe(1);
    expect(first.failures).toBe(1);

    let programs = await loadOf('programs-2.csv');
    const reason = `waiting for areas load ${areas.id} (staged)`;
    expect(programs).toMatchObject({ status: 'staged', error_kind: 'retryable', error_step: 'clean', attempts: 1, error: expect.stringContaining(reason) });
    expect(programs.error).toContain('column "area" references areas.code');
    // a wait, not a failure: logged at INFO, counted as a waiting message, not as an (alarmed) failed one
    expect(logLines()).toContainEqual(
      expect.objectContaining({
        level: 'INFO',
        loadId: programs.id,
        kind: 'retryable',
        attempt: 1,
        of: MAX_RECEIVES,
        error: expect.stringContaining(reason),
        message: expect.stringMatching(/waits, attempt 1 of 5: retried in 1 s/),
      }),
    );
    expect([counted('WaitingMessages'), counted('FailedMessages')]).toEqual([1, 0]);
    const status = cli('status', 'programs');
    expect(status.status).toBe(0);
    expect(status.stdout).toContain(`load ${programs.id} · incoming/acme/programs/programs-2.csv`);
    expect(status.stdout).toMatch(/Waiting for another load, will be retried \(staged\): clean attempt 1 at .* UTC/);
    expect(status.stdout).toContain(reason);
    expect(await rows(local.pool, 'SELECT id FROM it_refs.programs ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]); // the first file's rows, untouched

    // the areas load comes back: cleaned, then the programs load goes ahead
    await sqsClient().send(new ChangeMessageVisibilityCommand({ QueueUrl: local.resources.cleanQueueUrl, ReceiptHandle: held[0]!.receipt, VisibilityTimeout: 0 }));
    await local.run({ maxMs: 120_000 });
    expect(await loadOf('areas-2.csv')).toMatchObject({ status: 'loaded', rows_loaded: 3 });
    programs = await loadOf('programs-2.csv');
    expect(programs).toMatchObject({ status: 'loaded', rows_loaded: 2, rows_quarantined: 0, error: null, error_kind: null });
    expect(programs.attempts).toBeGreaterThanOrEqual(2);
    expect(await rows(local.pool, 'SELECT id, area FROM it_refs.programs ORDER BY id')).toEqual([
      { id: 1, area: 'N' },
      { id: 2, area: 'E' },
    ]);
    expect(await drain(local.resources.cleanDlqUrl)).toEqual([]);
  });

  it('nothing to wait for and no clean table: the load fails, naming the referenced dataset', async () => {
    await local.uploadAsSupplier('sites', file('sites-1.csv', 'id,region\n1,R1\n'));
    const run = await local.run({ maxMs: 120_000 });
    const sites = await loadOf('sites-1.csv');
    expect(sites).toMatchObject({
      status: 'failed',
      error_kind: 'permanent',
      error: 'dataset sites: column "region" references regions.code, but dataset regions has no clean table yet: load regions first, then load this file again (or replay it)',
    });
    expect(run.clean!.failures).toBe(0);
    expect(await drain(local.resources.cleanDlqUrl)).toEqual([]);
  });

  it('no areas load pending: a value the areas table lacks is quarantined, as before', async () => {
    await local.uploadAsSupplier('programs', file('programs-3.csv', 'id,area\n1,N\n2,W\n'));
    const run = await local.run({ maxMs: 120_000 });
    expect(run.clean!.failures).toBe(0);
    expect(await loadOf('programs-3.csv')).toMatchObject({ status: 'loaded', rows_loaded: 1, rows_quarantined: 1 });
    expect(await rows(local.pool, `SELECT column_name, raw_value, rule FROM it_refs.programs_quarantine q JOIN etl.loads l ON l.id = q.load_id WHERE l.object_key LIKE '%programs-3.csv'`)).toEqual([
      { column_name: 'area', raw_value: 'W', rule: 'reference' },
    ]);
  });

  it('never forever: a referenced load that is never cleaned sends the waiting one to the DLQ with the reason; once a newer one is cleaned, it is not waited for', async () => {
    await local.uploadAsSupplier('areas', file('areas-3.csv', 'code,name\nN,North\n'));
    const held = await stageAndHold(60);
    expect(held).toHaveLength(1);
    // its message is lost: the load stays staged, nothing will clean it
    await sqsClient().send(new DeleteMessageCommand({ QueueUrl: local.resources.cleanQueueUrl, ReceiptHandle: held[0]!.receipt }));
    const areas = await loadOf('areas-3.csv');
    try {
      await local.uploadAsSupplier('programs', file('programs-4.csv', 'id,area\n1,N\n'));
      const started = Date.now();
      const run = await local.run({ maxMs: 120_000 });
      expect((Date.now() - started) / 1000).toBeLessThan(60);
      expect(run.clean!.failures).toBe(MAX_RECEIVES);
      const programs = await loadOf('programs-4.csv');
      expect(programs).toMatchObject({ status: 'staged', error_kind: 'exhausted', attempts: MAX_RECEIVES, error: expect.stringContaining(`waiting for areas load ${areas.id} (staged)`) });
      expect(await drain(local.resources.cleanDlqUrl)).toEqual([JSON.stringify({ loadId: programs.id })]);
      // the waits are not alarmed; the last attempt, which sends the message to the DLQ, is
      expect([counted('WaitingMessages'), counted('FailedMessages')]).toEqual([MAX_RECEIVES - 1, 1]);
      expect(logLines()).toContainEqual(expect.objectContaining({ level: 'ERROR', loadId: programs.id, attempt: MAX_RECEIVES, message: expect.stringMatching(/the last: the message goes to the DLQ/) }));

      // a newer areas file is cleaned: the load left behind is no longer waited for
      await local.uploadAsSupplier('areas', file('areas-4.csv', 'code,name\nN,North\nW,West\n'));
      await local.run({ maxMs: 120_000 });
      expect(await loadOf('areas-4.csv')).toMatchObject({ status: 'loaded' });
      await local.uploadAsSupplier('programs', file('programs-5.csv', 'id,area\n1,W\n'));
      const next = await local.run({ maxMs: 120_000 });
      expect(next.clean!.failures).toBe(0);
      expect(await loadOf('programs-5.csv')).toMatchObject({ status: 'loaded', rows_loaded: 1, rows_quarantined: 0 });
      expect(await loadOf('areas-3.csv')).toMatchObject({ status: 'staged' });
    } finally {
      await local.pool.query(`UPDATE etl.loads SET status = 'failed', error = 'test: message deleted' WHERE id = $1`, [areas.id]);
    }
  });
});

describe('datasets that reference each other', () => {
  it('only the newer load waits, for the older one: the two never wait for each other', async () => {
    await local.uploadAsSupplier('zones', file('zones-1.csv', 'code,region\nZ1,\n'));
    const held = await stageAndHold(60);
    expect(held).toHaveLength(1);
    const zones = await loadOf('zones-1.csv');
    await local.uploadAsSupplier('regions', file('regions-1.csv', 'code,zone\nR1,Z1\n'));
    expect(await pollOnce(binding('stage'), stats(), { waitSeconds: 1 })).toBe(1);
    expect(await pollOnce(binding('clean'), stats(), { waitSeconds: 1 })).toBe(1);
    const regions = await loadOf('regions-1.csv');
    expect(regions).toMatchObject({ status: 'staged', error_kind: 'retryable', error: expect.stringContaining(`waiting for zones load ${zones.id} (staged)`) });

    // the older zones load does not wait for the newer regions one: it is checked (and, with no
    // regions table yet, fails naming it); then regions has nothing left to wait for
    await sqsClient().send(new ChangeMessageVisibilityCommand({ QueueUrl: local.resources.cleanQueueUrl, ReceiptHandle: held[0]!.receipt, VisibilityTimeout: 0 }));
    const run = await local.run({ maxMs: 120_000 });
    expect(await loadOf('zones-1.csv')).toMatchObject({ status: 'failed', error: expect.stringContaining('but dataset regions has no clean table yet') });
    expect(await loadOf('regions-1.csv')).toMatchObject({ status: 'failed', error: expect.stringContaining('but dataset zones has no clean table yet') });
    expect(run.clean!.failures).toBe(0);
    expect(await drain(local.resources.cleanDlqUrl)).toEqual([]);
  });
});

describe('a waiting message is retried sooner than a failed one', () => {
  it('waits 15 s, then 1, 4, 16 minutes', () => {
    expect([1, 2, 3, 4].map(waitSeconds)).toEqual([15, 60, 240, 960]);
  });

  it('the handler times its next attempt below the queue visibility timeout, and the runner keeps that time, as Lambda does', async () => {
    // a queue whose visibility timeout (60 s) is longer than the first wait (15 s): only the handler's timing brings the message back within 30 s
    const name = `it-refs-wait-${Date.now()}`;
    const { QueueUrl } = await sqsClient().send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '60' } }));
    try {
      const arn = (await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
      let calls = 0;
      const handler = sqsStep(
        'clean',
        async () => {
          calls++;
          if (calls === 1) throw new WaitingError('waiting for areas load 1 (staged)');
        },
        { pool: async () => local.pool, project: () => local.pipeline.project, maxReceives: local.config.clean.maxReceives },
      );
      const b = { name: 'clean', queueUrl: QueueUrl!, queueArn: arn, handler: (e: SQSEvent, c: import('aws-lambda').Context) => handler(e, c), timeoutMs: 60_000 };
      await sqsClient().send(new SendMessageCommand({ QueueUrl, MessageBody: '{}' }));
      const s = stats();
      expect(await pollOnce(b, s, { waitSeconds: 1 })).toBe(1);
      expect(s.failures).toBe(1);
      expect(logLines()).toContainEqual(expect.objectContaining({ level: 'INFO', retryInSeconds: 15, message: expect.stringMatching(/waits, attempt 1 of 5: retried in 15 s/) }));
      const started = Date.now();
      let received = 0;
      while (received === 0 && Date.now() - started < 30_000) received = await pollOnce(b, s, { waitSeconds: 1 });
      expect(received).toBe(1);
      expect(calls).toBe(2);
      const waited = (Date.now() - started) / 1000;
      expect(waited).toBeGreaterThan(10);
      expect(waited).toBeLessThan(30);
    } finally {
      await sqsClient().send(new DeleteQueueCommand({ QueueUrl }));
    }
  });
});
