/**
 * A work queue and the one function that consumes it: an encrypted, TLS-only SQS queue with a
 * dead-letter queue, polled by the function with partial batch failures.
 *
 * The queue's visibility timeout is derived from the consumer's timeout (at least 6×, plus the
 * batching window, as Lambda's SQS guidance asks) so a message is never redelivered while a
 * slow invocation still works on it; a smaller explicit value is rejected.
 */
import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { definedProps } from './util.ts';

export interface WorkQueueProps {
  /** The function that processes the messages. Its timeout must be set. */
  readonly consumer: lambda.Function;
  /**
   * Messages per invocation.
   * @default 5
   */
  readonly batchSize?: number;
  /**
   * How long to gather messages before invoking.
   * @default Duration.seconds(10)
   */
  readonly maxBatchingWindow?: Duration;
  /**
   * Most concurrent invocations the queue drives (2–1000); bounds the database connections.
   * @default 5
   */
  readonly maxConcurrency?: number;
  /**
   * Receives of a message before it moves to the dead-letter queue.
   * @default 5
   */
  readonly maxReceiveCount?: number;
  /**
   * Visibility timeout of the queue; at least 6× the consumer's timeout plus the batching window.
   * @default - exactly that minimum
   */
  readonly visibilityTimeout?: Duration;
  /**
   * How long the dead-letter queue keeps a message (the longest SQS allows, to leave time to redrive).
   * @default Duration.days(14)
   */
  readonly deadLetterRetention?: Duration;
}

const defaults = {
  batchSize: 5,
  maxBatchingWindow: Duration.seconds(10),
  maxConcurrency: 5,
  maxReceiveCount: 5,
  deadLetterRetention: Duration.days(14),
};

/** Lambda's guidance: visibility timeout at least six times the function timeout. */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

export class WorkQueue extends Construct {
  /** The queue the producer sends to and the consumer polls. */
  public readonly queue: sqs.Queue;
  /** Where a message goes after `maxReceiveCount` failed receives; alarmed, redrivable. */
  public readonly deadLetterQueue: sqs.Queue;
  /** The event source mapping that feeds the consumer. */
  public readonly eventSource: SqsEventSource;
  /** The consumer function. */
  public readonly consumer: lambda.Function;

  constructor(scope: Construct, id: string, props: WorkQueueProps) {
    super(scope, id);
    const p = { ...defaults, ...definedProps(props) };
    const where = `WorkQueue ${this.node.path}`;
    const timeout = p.consumer.timeout;
    if (!timeout) throw new Error(`${where}: the consumer ${p.consumer.node.path} has no timeout; set its timeout so the queue's visibility timeout can be derived`);
    if (!Number.isInteger(p.batchSize) || p.batchSize < 1 || p.batchSize > 10_000) {
      throw new Error(`${where}: batchSize must be a whole number from 1 to 10000 (got ${p.batchSize})`);
    }
    if (p.batchSize > 10 && p.maxBatchingWindow.toSeconds() === 0) {
      throw new Error(`${where}: batchSize ${p.batchSize} needs a maxBatchingWindow of at least 1 second; set one or use batchSize ≤ 10`);
    }
    if (p.maxBatchingWindow.toSeconds() > 300) {
      throw new Error(`${where}: maxBatchingWindow must be at most 5 minutes (got ${p.maxBatchingWindow.toHumanString()})`);
    }
    if (!Number.isInteger(p.maxConcurrency) || p.maxConcurrency < 2 || p.maxConcurrency > 1000) {
      throw new Error(`${where}: maxConcurrency must be a whole number from 2 to 1000 (got ${p.maxConcurrency})`);
    }
    if (!Number.isInteger(p.maxReceiveCount) || p.maxReceiveCount < 1) {
      throw new Error(`${where}: maxReceiveCount must be a whole number, at least 1 (got ${p.maxReceiveCount})`);
    }
    const minimum = Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * timeout.toSeconds() + p.maxBatchingWindow.toSeconds());
    const visibilityTimeout = p.visibilityTimeout ?? minimum;
    if (visibilityTimeout.toSeconds() < minimum.toSeconds()) {
      throw new Error(
        `${where}: visibilityTimeout ${visibilityTimeout.toSeconds()}s is shorter than ${VISIBILITY_TIMEOUT_FACTOR}× the consumer's timeout ` +
          `(${timeout.toSeconds()}s) plus the batching window (${p.maxBatchingWindow.toSeconds()}s) = ${minimum.toSeconds()}s; ` +
          `raise visibilityTimeout or leave it unset`,
      );
    }
    if (visibilityTimeout.toSeconds() > Duration.hours(12).toSeconds()) {
      throw new Error(`${where}: visibilityTimeout ${visibilityTimeout.toSeconds()}s exceeds SQS's 12 hours; shorten the consumer's timeout`);
    }

    this.consumer = p.consumer;
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: p.deadLetterRetention,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout,
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: p.maxReceiveCount },
    });
    this.eventSource = new SqsEventSource(this.queue, {
      batchSize: p.batchSize,
      maxBatchingWindow: p.maxBatchingWindow,
      maxConcurrency: p.maxConcurrency,
      reportBatchItemFailures: true,
    });
    p.consumer.addEventSource(this.eventSource);
  }

  /** Let `fn` send messages to this queue and tell it the queue URL in `envName`. */
  public bindProducer(fn: lambda.Function, envName: string): void {
    this.queue.grantSendMessages(fn);
    fn.addEnvironment(envName, this.queue.queueUrl);
  }
}
