import { randomUUID } from 'node:crypto';
import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { sqsClient } from '../functions/common/aws.ts';
import { timedRetries } from '../functions/common/retry-soon.ts';

/** A Lambda handler for SQS events, as the stage and clean functions export. */
export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

/** One queue → function wiring, as an event source mapping does it on AWS. */
export interface QueueBinding {
  name: string;
  queueUrl: string;
  queueArn: string;
  handler: SqsHandler;
  /** Messages per invocation (the mapping's batchSize); default 10. */
  batchSize?: number;
  /** The function's timeout, reported by `getRemainingTimeInMillis`; default 5 minutes. */
  timeoutMs?: number;
}

export interface BindingStats {
  invocations: number;
  messages: number;
  /** Messages reported as failed (left on the queue to be received again, then the DLQ). */
  failures: number;
}

export interface RunOptions {
  /** Long-poll wait per receive, seconds (default 1). */
  waitSeconds?: number;
  /** Stop after this long even if work remains (default 10 minutes). */
  maxMs?: number;
  /** Called after each invocation, for progress output. */
  onBatch?: (binding: string, received: number, failed: number) => void;
}

/**
 * Poll each queue and invoke its handler the way Lambda's SQS event source mapping does: a batch
 * of real SQS messages becomes one SQSEvent; the messages not named in `batchItemFailures` are
 * deleted; the failed ones stay, become visible again after the visibility timeout and, after
 * the queue's maxReceiveCount, are moved to its DLQ by the queue itself. A handler that throws
 * fails the whole batch. Returns once every queue is empty (none visible, none in flight).
 */
export async function runUntilIdle(bindings: readonly QueueBinding[], opts: RunOptions = {}): Promise<Record<string, BindingStats>> {
  const stats = Object.fromEntries(bindings.map((b) => [b.name, { invocations: 0, messages: 0, failures: 0 }]));
  const deadline = Date.now() + (opts.maxMs ?? 600_000);
  while (Date.now() < deadline) {
    let received = 0;
    for (const binding of bindings) {
      const n = await pollOnce(binding, stats[binding.name]!, opts);
      received += n;
    }
    if (received === 0 && (await allEmpty(bindings))) return stats;
  }
  throw new Error(`the pipeline did not become idle within ${Math.round((opts.maxMs ?? 600_000) / 1000)} s`);
}

/** Receive one batch from the binding's queue and invoke its handler; returns messages received. */
export async function pollOnce(binding: QueueBinding, stats: BindingStats, opts: RunOptions = {}): Promise<number> {
  const sqs = sqsClient();
  const retryAfter = await visibilityTimeoutOf(binding.queueUrl);
  const out = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: binding.queueUrl,
      MaxNumberOfMessages: Math.min(binding.batchSize ?? 10, 10),
      WaitTimeSeconds: opts.waitSeconds ?? 1,
      // hidden for as long as the handler may run, as Lambda's visibility timeout (6× the function's)
      // does: a long clean is not received again, and counted as another attempt, while it runs
      VisibilityTimeout: Math.ceil((binding.timeoutMs ?? 300_000) / 1000),
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    }),
  );
  const messages = out.Messages ?? [];
  if (messages.length === 0) return 0;
  const event: SQSEvent = { Records: messages.map((m) => toRecord(m, binding.queueArn)) };
  let failed: Set<string>;
  try {
    const response = await binding.handler(event, lambdaContext(binding));
    failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
  } catch (error) {
    // the whole batch is retried; the runner itself goes on
    console.error(`civic-etl runner: the ${binding.name} handler failed the whole batch of ${messages.length}: ${error instanceof Error ? error.message : String(error)}`);
    failed = new Set(messages.map((m) => m.MessageId!));
  }
  // a message whose next attempt the handler timed itself keeps that time, as on AWS
  const retry = messages.filter((m) => failed.has(m.MessageId!) && !timedRetries.delete(m.ReceiptHandle!));
  if (retry.length > 0) {
    // visible again after the queue's own visibility timeout, as on AWS after a failed batch
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: binding.queueUrl,
        Entries: retry.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: retryAfter })),
      }),
    );
  }
  const done = messages.filter((m) => !failed.has(m.MessageId!));
  if (done.length > 0) {
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: binding.queueUrl,
        Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
  }
  stats.invocations++;
  stats.messages += messages.length;
  stats.failures += failed.size;
  opts.onBatch?.(binding.name, messages.length, failed.size);
  return messages.length;
}

/** The queue's configured visibility timeout, seconds: how long a failed message waits before its next attempt. */
async function visibilityTimeoutOf(queueUrl: string): Promise<number> {
  const out = await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['VisibilityTimeout'] }));
  return Number(out.Attributes?.VisibilityTimeout ?? 30);
}

/** Messages waiting in a queue (visible ones): e.g. how many sit in a DLQ. */
export async function queueDepth(queueUrl: string): Promise<number> {
  const out = await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
}

async function allEmpty(bindings: readonly QueueBinding[]): Promise<boolean> {
  for (const b of bindings) {
    const out = await sqsClient().send(
      new GetQueueAttributesCommand({
        QueueUrl: b.queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
      }),
    );
    const a = out.Attributes ?? {};
    const pending = Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
    if (pending > 0) return false;
  }
  return true;
}

function toRecord(m: Message, queueArn: string): SQSRecord {
  const attrs = m.Attributes ?? {};
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attrs.ApproximateReceiveCount ?? '1',
      SentTimestamp: attrs.SentTimestamp ?? String(Date.now()),
      SenderId: attrs.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attrs.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: process.env.AWS_REGION ?? 'us-east-1',
  };
}

function lambdaContext(binding: QueueBinding): Context {
  const deadline = Date.now() + (binding.timeoutMs ?? 300_000);
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: `local-${binding.name}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:local-${binding.name}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/local-${binding.name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
