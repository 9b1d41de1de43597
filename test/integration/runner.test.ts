import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSEvent } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { sqsClient } from '../../functions/common/aws.ts';
import { SUGGESTED_PARALLEL_CONNECTIONS } from '../../functions/common/config.ts';
import { closePool } from '../../functions/common/db.ts';
import { openLocalPipeline, type LocalPipeline } from '../../local/pipeline.ts';
import { purgeLocalResources } from '../../local/resources.ts';
import { pollOnce, runUntilIdle, type BindingStats } from '../../local/runner.ts';
import { rows } from './support.ts';

let local: LocalPipeline;
const dir = mkdtempSync(join(tmpdir(), 'civic-etl-runner-'));
const file = (name: string, body: string) => {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
};

/** Receive and delete what a queue holds (deleted, so nothing comes back in a later test or run). */
async function drain(queueUrl: string): Promise<string[]> {
  const out = await sqsClient().send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  const messages = out.Messages ?? [];
  if (messages.length > 0) {
    await sqsClient().send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
  }
  return messages.map((m) => m.Body!);
}

beforeAll(async () => {
  local = await openLocalPipeline('test/fixtures/runner-pipeline.yaml', { visibilityTimeoutSeconds: 1, maxReceiveCount: 2 });
  await purgeLocalResources(local.resources);
  // messages a previous run received but did not delete may still be in flight: drain those too
  await drain(local.resources.stageDlqUrl);
  await drain(local.resources.cleanDlqUrl);
  await local.pool.query('DROP SCHEMA IF EXISTS it_runner CASCADE; DROP SCHEMA IF EXISTS it_runner_staging CASCADE; CREATE SCHEMA it_runner; CREATE SCHEMA it_runner_staging');
  await local.pool.query(`DELETE FROM etl.loads WHERE project = 'it_runner'`);
});

describe('the local runner, wired like AWS', () => {
  it('carries an upload from S3 through the stage and clean queues into the clean table', async () => {
    await local.uploadAsSupplier('people', file('people.csv', 'id,name\n1,Ann\n2,Bo\n'));

    const stats = await local.run({ maxMs: 60_000 });

    expect(stats.stage!.messages).toBeGreaterThanOrEqual(1);
    expect(stats.clean!.messages).toBe(1);
    expect(await rows(local.pool, 'SELECT id, name FROM it_runner.people ORDER BY id')).toEqual([
      { id: 1, name: 'Ann' },
      { id: 2, name: 'Bo' },
    ]);
    expect(await rows(local.pool, `SELECT status, rows_loaded::int FROM etl.loads WHERE project = 'it_runner'`)).toEqual([{ status: 'loaded', rows_loaded: 2 }]);
  });

  it('records bad input and acknowledges it instead of retrying it into the DLQ', async () => {
    await local.uploadAsSupplier('people', file('ragged.csv', 'id,name\n1,Ann\n2,Bo,extra\n3,Cy\n'));

    const stats = await local.run({ maxMs: 60_000 });

    expect(stats.stage!.failures).toBe(0);
    expect(await rows(local.pool, `SELECT status, error_line::int FROM etl.loads WHERE project = 'it_runner' AND object_key LIKE '%ragged.csv'`)).toEqual([{ status: 'failed', error_line: 3 }]);
    expect(await drain(local.resources.stageDlqUrl)).toEqual([]);
  });

  it('changes nothing when S3 delivers the same notification again', async () => {
    const [load] = await rows<{ object_key: string; etag: string }>(local.pool, `SELECT object_key, etag FROM etl.loads WHERE project = 'it_runner' AND object_key LIKE '%people.csv'`);
    const body = JSON.stringify({
      Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: local.resources.bucket }, object: { key: load!.object_key, eTag: load!.etag, size: 18 } } }],
    });
    await sqsClient().send(new SendMessageCommand({ QueueUrl: local.resources.stageQueueUrl, MessageBody: body }));

    const stats = await local.run({ maxMs: 60_000 });

    expect(stats.stage!.messages).toBe(1);
    expect(stats.clean!.messages).toBe(0);
    expect(await rows(local.pool, `SELECT count(*)::int AS loads, sum(attempts)::int AS attempts FROM etl.loads WHERE project = 'it_runner' AND object_key LIKE '%people.csv'`)).toEqual([
      { loads: 1, attempts: 2 },
    ]);
    expect(await rows(local.pool, 'SELECT count(*)::int AS n FROM it_runner.people')).toEqual([{ n: 2 }]);
  });

  // after the tests that count the people table's first rows: this replaces them
  it('stages a file beyond the part size in parts through the stage queue, and cleans it once', async () => {
    local.configure({ partBytes: 40, parallel: { connections: 1 } });
    try {
      const body = ['id,name', ...Array.from({ length: 30 }, (_, i) => `${100 + i},"Name ${i}\nsecond line"`)].join('\n');
      await local.uploadAsSupplier('people', file('many.csv', `${body}\n`));

      const stats = await local.run({ maxMs: 60_000 });
      const load = await rows(local.pool, `SELECT status, rows_read::int, rows_loaded::int FROM etl.loads WHERE project = 'it_runner' AND object_key LIKE '%many.csv'`);
      const parts = await rows(local.pool, `SELECT count(*)::int AS n FROM etl.load_parts p JOIN etl.loads l ON l.id = p.load_id WHERE l.object_key LIKE '%many.csv' AND p.status = 'staged'`);

      expect(stats.stage!.messages).toBeGreaterThan(10); // the object's event, then one message per part
      expect(stats.clean!.messages).toBe(1);
      expect(load).toEqual([{ status: 'loaded', rows_read: 30, rows_loaded: 30 }]);
      expect(parts[0]!.n).toBeGreaterThan(10);
      expect(await rows(local.pool, 'SELECT count(*)::int AS n, min(id) AS first, max(id) AS last FROM it_runner.people')).toEqual([{ n: 30, first: 100, last: 129 }]);
    } finally {
      local.configure();
    }
  });

  it('stages a file beyond the local threshold over two connections at once, in the one stage invocation, and cleans it once', async () => {
    local.configure({ parallel: { bytes: 40, connections: 2 } });
    try {
      const body = ['id,name', ...Array.from({ length: 30 }, (_, i) => `${200 + i},"Name ${i}\r\nsecond line"`)].join('\r\n');
      await local.uploadAsSupplier('people', file('parallel.csv', `${body}\r\n`));

      const stats = await local.run({ maxMs: 60_000 });
      const load = await rows(local.pool, `SELECT status, rows_read::int, rows_loaded::int FROM etl.loads WHERE project = 'it_runner' AND object_key LIKE '%parallel.csv'`);
      const parts = await rows(local.pool, `SELECT count(*)::int AS n FROM etl.load_parts p JOIN etl.loads l ON l.id = p.load_id WHERE l.object_key LIKE '%parallel.csv' AND p.status = 'staged'`);

      expect(stats.stage!.messages).toBe(1); // the object's event only: no part messages
      expect(stats.clean!.messages).toBe(1);
      expect(parts).toEqual([{ n: 2 }]);
      expect(load).toEqual([{ status: 'loaded', rows_read: 30, rows_loaded: 30 }]);
      expect(await rows(local.pool, 'SELECT count(*)::int AS n, min(id) AS first, max(id) AS last FROM it_runner.people')).toEqual([{ n: 30, first: 200, last: 229 }]);
    } finally {
      local.configure();
    }
  });

  // the local stage step's default: a file above the threshold is staged in process, one connection a core (a one-core machine stages it whole)
  it.runIf(SUGGESTED_PARALLEL_CONNECTIONS > 1)('stages a file beyond the local threshold over parallel connections by default, and cleans it once', async () => {
    local.configure({ parallel: { bytes: 40 } });
    try {
      const body = ['id,name', ...Array.from({ length: 30 }, (_, i) => `${300 + i},"Name ${i}\nsecond line"`)].join('\n');
      await local.uploadAsSupplier('people', file('by-default.csv', `${body}\n`));

      const stats = await local.run({ maxMs: 60_000 });
      const load = await rows(local.pool, `SELECT status, rows_read::int, rows_loaded::int FROM etl.loads WHERE project = 'it_runner' AND object_key LIKE '%by-default.csv'`);
      const parts = await rows(local.pool, `SELECT count(*)::int AS n FROM etl.load_parts p JOIN etl.loads l ON l.id = p.load_id WHERE l.object_key LIKE '%by-default.csv' AND p.status = 'staged'`);

      expect(stats.stage!.messages).toBe(1); // in process: no part messages
      expect(parts[0]!.n).toBeGreaterThan(1);
      expect(load).toEqual([{ status: 'loaded', rows_read: 30, rows_loaded: 30 }]);
      expect(await rows(local.pool, 'SELECT count(*)::int AS n, min(id) AS first, max(id) AS last FROM it_runner.people')).toEqual([{ n: 30, first: 300, last: 329 }]);
    } finally {
      local.configure();
    }
  });

  it('retries a transient failure (database down) and moves the message to the DLQ after maxReceiveCount', async () => {
    const url = process.env.DATABASE_URL;
    await closePool();
    process.env.DATABASE_URL = 'postgres://nobody@127.0.0.1:1/none';
    let stats: Record<string, BindingStats>;
    try {
      await local.uploadAsSupplier('people', file('while-down.csv', 'id,name\n3,Cy\n'));
      stats = await runUntilIdle(local.bindings, { maxMs: 60_000 });
    } finally {
      await closePool();
      process.env.DATABASE_URL = url;
    }

    expect(stats.stage!.failures).toBe(2);
    const dead = await drain(local.resources.stageDlqUrl);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toContain('while-down.csv');
  });

  it('deletes the messages a batch handled and leaves only the failed ones to come back', async () => {
    const seen: string[] = [];
    const binding = {
      name: 'probe',
      queueUrl: local.resources.stageQueueUrl,
      queueArn: local.resources.stageQueueArn,
      handler: async (event: SQSEvent) => {
        seen.push(...event.Records.map((r) => r.body));
        return { batchItemFailures: event.Records.filter((r) => r.body === 'fail').map((r) => ({ itemIdentifier: r.messageId })) };
      },
    };
    for (const body of ['ok-1', 'fail', 'ok-2']) {
      await sqsClient().send(new SendMessageCommand({ QueueUrl: local.resources.stageQueueUrl, MessageBody: body }));
    }
    const stats: BindingStats = { invocations: 0, messages: 0, failures: 0 };

    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && seen.filter((b) => b === 'fail').length < 2) await pollOnce(binding, stats);
    await runUntilIdle([binding], { maxMs: 30_000 });

    expect(seen.filter((b) => b === 'ok-1')).toHaveLength(1);
    expect(seen.filter((b) => b === 'ok-2')).toHaveLength(1);
    expect(seen.filter((b) => b === 'fail')).toHaveLength(2);
    expect(await drain(local.resources.stageDlqUrl)).toEqual(['fail']);
  });
});
