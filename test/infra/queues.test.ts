import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { BATCH_SIZE } from '../../contract/names.ts';
import { VISIBILITY_TIMEOUT_FACTOR, WorkQueue } from '../../lib/work-queue.ts';
import { actionsOf, logicalId, statementsOf, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

// The shared batch sizes, set apart from each other and from WorkQueue's default (5) here, so the
// assertions below show the stack takes each queue's batch size from contract/names.ts.
vi.mock('../../contract/names.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../contract/names.ts')>()),
  BATCH_SIZE: { stage: 3, clean: 7 },
}));

describe('the stage and clean work queues', () => {
  let f: Fixture;
  beforeAll(() => {
    f = synthFixture({ settings: { maxReceiveCount: 7 } });
  }, SYNTH_TIMEOUT);

  const queues = () =>
    [
      ['stage', f.stack.stageQueue, f.stack.stageFunction.function],
      ['clean', f.stack.cleanQueue, f.stack.cleanFunction.function],
    ] as const;

  it("hide a received message for at least six times the consumer's timeout", () => {
    for (const [, queue, fn] of queues()) {
      const visibility = f.template.toJSON().Resources[logicalId(queue.queue)].Properties.VisibilityTimeout as number;
      const timeout = f.template.toJSON().Resources[logicalId(fn)].Properties.Timeout as number;
      expect(timeout).toBeGreaterThan(0);
      expect(visibility).toBeGreaterThanOrEqual(VISIBILITY_TIMEOUT_FACTOR * timeout);
    }
  });

  it('move a message to their dead-letter queue after the configured number of receives', () => {
    for (const [, queue] of queues()) {
      f.template.hasResourceProperties('AWS::SQS::Queue', {
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [logicalId(queue.deadLetterQueue), 'Arn'] }, maxReceiveCount: 7 },
      });
    }
  });

  it('are encrypted and refuse requests without TLS, dead-letter queues included', () => {
    for (const [, queue] of queues()) {
      for (const q of [queue.queue, queue.deadLetterQueue]) {
        expect(f.template.toJSON().Resources[logicalId(q)].Properties.SqsManagedSseEnabled).toBe(true);
        f.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
          Queues: [{ Ref: logicalId(q) }],
          PolicyDocument: {
            Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Action: 'sqs:*', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
          },
        });
      }
    }
  });

  it('feed their consumer in batches of the shared size (contract BATCH_SIZE) and report partial batch failures', () => {
    expect(BATCH_SIZE).toEqual({ stage: 3, clean: 7 });
    for (const [step, queue, fn] of queues()) {
      f.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [logicalId(queue.queue), 'Arn'] },
        FunctionName: { Ref: logicalId(fn) },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BatchSize: BATCH_SIZE[step],
        MaximumBatchingWindowInSeconds: 10,
        ScalingConfig: { MaximumConcurrency: Match.anyValue() },
      });
    }
  });

  it('drive at most 5 concurrent stage and 2 concurrent clean invocations', () => {
    const concurrency = (queue: typeof f.stack.stageQueue) =>
      f.template.findResources('AWS::Lambda::EventSourceMapping', { Properties: { EventSourceArn: { 'Fn::GetAtt': [logicalId(queue.queue), 'Arn'] } } });
    expect(Object.values(concurrency(f.stack.stageQueue)).map((r) => r.Properties.ScalingConfig)).toEqual([{ MaximumConcurrency: 5 }]);
    expect(Object.values(concurrency(f.stack.cleanQueue)).map((r) => r.Properties.ScalingConfig)).toEqual([{ MaximumConcurrency: 2 }]);
  });

  it("let S3 (and only S3, from this account's bucket) send to the stage queue", () => {
    f.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: logicalId(f.stack.stageQueue.queue) }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 's3.amazonaws.com' },
            Condition: { ArnLike: { 'aws:SourceArn': { 'Fn::GetAtt': [logicalId(f.stack.landing.bucket), 'Arn'] } } },
          }),
        ]),
      },
    });
  });

  it('give the stage function sqs:SendMessage on the clean queue and on its own queue (parts of big files), with their URLs', () => {
    const stage = f.stack.stageFunction.function;
    const cleanQueueId = logicalId(f.stack.cleanQueue.queue);
    const stageQueueId = logicalId(f.stack.stageQueue.queue);
    const statements = statementsOf(f.template, { Roles: [{ Ref: logicalId(stage.role!.node.defaultChild!) }] });
    const send = statements.filter((s) => actionsOf([s]).includes('sqs:SendMessage'));
    expect(send).toHaveLength(2);
    expect(send).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Effect: 'Allow', Resource: { 'Fn::GetAtt': [cleanQueueId, 'Arn'] } }),
        expect.objectContaining({ Effect: 'Allow', Resource: { 'Fn::GetAtt': [stageQueueId, 'Arn'] } }),
      ]),
    );
    expect(f.template.toJSON().Resources[logicalId(stage)].Properties.Environment.Variables).toMatchObject({
      CIVIC_ETL_CLEAN_QUEUE_URL: { Ref: cleanQueueId },
      CIVIC_ETL_STAGE_QUEUE_URL: { Ref: stageQueueId },
    });
  });

  it('are published as stack outputs with their dead-letter queues', () => {
    for (const id of ['StageQueueUrl', 'StageDeadLetterQueueUrl', 'CleanQueueUrl', 'CleanDeadLetterQueueUrl', 'FetchDeadLetterQueueUrl']) {
      f.template.hasOutput(id, { Value: { Ref: Match.anyValue() } });
    }
  });

  it('publish the ARNs a redrive needs: each dead-letter queue and the queue it returns to', () => {
    const arnOf = (q: import('aws-cdk-lib/aws-sqs').IQueue) => ({ 'Fn::GetAtt': [logicalId(q), 'Arn'] });
    f.template.hasOutput('StageQueueArn', { Value: arnOf(f.stack.stageQueue.queue) });
    f.template.hasOutput('StageDeadLetterQueueArn', { Value: arnOf(f.stack.stageQueue.deadLetterQueue) });
    f.template.hasOutput('CleanQueueArn', { Value: arnOf(f.stack.cleanQueue.queue) });
    f.template.hasOutput('CleanDeadLetterQueueArn', { Value: arnOf(f.stack.cleanQueue.deadLetterQueue) });
    f.template.hasOutput('FetchDeadLetterQueueArn', { Value: arnOf(f.stack.schedules.deadLetterQueue) });
    // the DLQ named by the output is the one the work queue's redrive policy sends to
    const policy = f.template.toJSON().Resources[logicalId(f.stack.cleanQueue.queue)].Properties.RedrivePolicy;
    expect(policy.deadLetterTargetArn).toEqual(arnOf(f.stack.cleanQueue.deadLetterQueue));
  });
});

describe('WorkQueue props', () => {
  const consumer = (timeout?: Duration) => {
    const stack = new Stack(new App(), 'Queues');
    const fn = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('export const handler = async () => {}'),
      timeout,
    });
    return { stack, fn };
  };

  it('derive the visibility timeout from the consumer: 6 × timeout + batching window', () => {
    const { stack, fn } = consumer(Duration.minutes(2));
    const q = new WorkQueue(stack, 'Q', { consumer: fn, maxBatchingWindow: Duration.seconds(20) });
    expect(Template.fromStack(stack).toJSON().Resources[logicalId(q.queue)].Properties.VisibilityTimeout).toBe(6 * 120 + 20);
  });

  it("reject a visibility timeout below six times the consumer's timeout, saying what to do", () => {
    const { stack, fn } = consumer(Duration.minutes(10));
    expect(() => new WorkQueue(stack, 'Q', { consumer: fn, visibilityTimeout: Duration.minutes(30) })).toThrow(
      "visibilityTimeout 1800s is shorter than 6× the consumer's timeout (600s) plus the batching window (10s) = 3610s; raise visibilityTimeout or leave it unset",
    );
  });

  it('reject a consumer without an explicit timeout', () => {
    const { stack, fn } = consumer(undefined);
    expect(() => new WorkQueue(stack, 'Q', { consumer: fn })).toThrow(/has no timeout; set its timeout/);
  });

  it('reject a maxConcurrency Lambda does not accept', () => {
    const { stack, fn } = consumer(Duration.minutes(1));
    expect(() => new WorkQueue(stack, 'Q', { consumer: fn, maxConcurrency: 1 })).toThrow(/maxConcurrency must be a whole number from 2 to 1000/);
  });
});
