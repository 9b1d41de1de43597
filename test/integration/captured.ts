/** What tests that drive the local runner share: a fresh pipeline, emptying a queue, and the log lines a step writes. */
import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, beforeEach, vi } from 'vitest';
import { sqsClient } from '../../functions/common/aws.ts';
import { closePool, ident } from '../../functions/common/db.ts';
import { openLocalPipeline, type LocalPipeline } from '../../local/pipeline.ts';
import { purgeLocalResources } from '../../local/resources.ts';

/** Receive and delete what a queue holds; returns the bodies. */
export async function drain(queueUrl: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const out = await sqsClient().send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const messages = out.Messages ?? [];
    if (messages.length === 0) return bodies;
    await sqsClient().send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    bodies.push(...messages.map((m) => m.Body!));
  }
}

/**
 * What the process writes while each test runs (call at the top of a test file): Powertools' JSON
 * log lines (INFO on stdout, WARN and ERROR on stderr) and EMF metric lines, as CloudWatch would receive them.
 */
export function captureLines(): { logLines: () => Record<string, unknown>[]; metricLines: () => Record<string, unknown>[] } {
  let written: string[] = [];
  beforeEach(() => {
    written = [];
    for (const stream of [process.stdout, process.stderr]) {
      const write = stream.write.bind(stream) as (c: string | Uint8Array, ...r: unknown[]) => boolean;
      vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
        written.push(String(chunk));
        return write(chunk, ...rest);
      });
    }
  });
  afterEach(() => vi.restoreAllMocks());
  const jsonLines = () =>
    written
      .flatMap((w) => w.split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logLines: () => jsonLines().filter((l) => !('_aws' in l)), metricLines: () => jsonLines().filter((l) => '_aws' in l) };
}

/**
 * A pipeline on the local runner with nothing left of earlier runs (call at the top of a test
 * file): its queues and DLQs emptied, its schemas recreated empty, its ledger rows removed.
 */
export function freshLocalPipeline(file: string, opts: { visibilityTimeoutSeconds: number; maxReceiveCount: number }): () => LocalPipeline {
  let local: LocalPipeline | undefined;
  beforeAll(async () => {
    local = await openLocalPipeline(file, opts);
    const { resources, pool, pipeline } = local;
    await purgeLocalResources(resources);
    for (const q of [resources.stageDlqUrl, resources.cleanDlqUrl, resources.stageQueueUrl, resources.cleanQueueUrl]) await drain(q);
    const [schema, staging] = [ident(pipeline.project), ident(`${pipeline.project}_staging`)];
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; DROP SCHEMA IF EXISTS ${staging} CASCADE; CREATE SCHEMA ${schema}; CREATE SCHEMA ${staging}`);
    await pool.query('DELETE FROM etl.loads WHERE project = $1', [pipeline.project]);
    await pool.query('DELETE FROM etl.rejected_messages WHERE project = $1', [pipeline.project]);
  });
  afterAll(async () => {
    await closePool();
  });
  return () => local!;
}
