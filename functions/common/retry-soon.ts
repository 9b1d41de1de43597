/**
 * A message that waits for another load (errors.ts WaitingError) is retried sooner than the
 * queue's visibility timeout, which is sized for a function that fails (6× its timeout: an hour
 * for the clean step): after 15 s, then 1, 4, 16 minutes — never later than the queue would
 * retry it anyway. The handler sets the message's visibility itself, as Lambda leaves a failed
 * message's visibility as it is; the local runner leaves it too ({@link timedRetries}).
 */
import { ChangeMessageVisibilityCommand, GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { sqsClient } from './aws.ts';

/** Receipt handles of messages whose next attempt the handler timed itself; the local runner (local/runner.ts) takes them out and leaves their visibility as set. */
export const timedRetries = new Set<string>();

/** Seconds before attempt `n + 1` of a waiting message: 15 s × 4^(n−1). */
export function waitSeconds(n: number): number {
  return 15 * 4 ** Math.max(0, Math.min(n - 1, 6));
}

const queues = new Map<string, Promise<{ url: string; visibility: number }>>();

/** The queue of a record (from its ARN, `arn:aws:sqs:<region>:<account>:<name>`): its URL and visibility timeout. */
function queueOf(arn: string): Promise<{ url: string; visibility: number }> {
  let found = queues.get(arn);
  if (!found) {
    const [, , , , account, name] = arn.split(':');
    found = (async () => {
      const { QueueUrl } = await sqsClient().send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }));
      const out = await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['VisibilityTimeout'] }));
      return { url: QueueUrl!, visibility: Number(out.Attributes?.VisibilityTimeout ?? 30) };
    })();
    found.catch(() => queues.delete(arn));
    queues.set(arn, found);
  }
  return found;
}

/**
 * Make the record's message visible again after `seconds` (at most the queue's visibility
 * timeout); returns when its next attempt comes, in seconds. Throws when SQS refuses: the caller
 * logs it, and the queue's own timeout applies.
 */
export async function retrySoon(record: SQSRecord, seconds: number): Promise<number> {
  const queue = await queueOf(record.eventSourceARN);
  const delay = Math.min(seconds, queue.visibility);
  if (delay >= queue.visibility) return queue.visibility;
  await sqsClient().send(new ChangeMessageVisibilityCommand({ QueueUrl: queue.url, ReceiptHandle: record.receiptHandle, VisibilityTimeout: delay }));
  timedRetries.add(record.receiptHandle);
  return delay;
}
