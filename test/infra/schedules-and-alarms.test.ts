import { App, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { loadPipeline } from '../../contract/load.ts';
import { FetchSchedules } from '../../lib/fetch-schedules.ts';
import { FIXTURE_PIPELINE, logicalId, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

describe('the fetch schedules', () => {
  let f: Fixture;
  let schedules: Array<{ Properties: { ScheduleExpression: string; Target: Record<string, unknown> } }>;
  beforeAll(() => {
    f = synthFixture();
    schedules = Object.values(f.template.findResources('AWS::Scheduler::Schedule')) as typeof schedules;
  }, SYNTH_TIMEOUT);

  it('are one per dataset that has a schedule, invoking fetch with {"dataset": name}', () => {
    const byInput = Object.fromEntries(schedules.map((s) => [s.Properties.Target.Input as string, s.Properties.ScheduleExpression]));
    expect(byInput).toEqual({
      '{"dataset":"inspections"}': 'rate(1 day)',
      '{"dataset":"wards"}': 'cron(0 6 ? * MON *)',
    });
    for (const s of schedules) expect(s.Properties.Target.Arn).toEqual({ 'Fn::GetAtt': [logicalId(f.stack.fetchFunction.function), 'Arn'] });
  });

  it('retry a failed invoke for an hour at most, then send it to the failed-fetch queue', () => {
    const dlq = { 'Fn::GetAtt': [logicalId(f.stack.schedules.deadLetterQueue), 'Arn'] };
    for (const s of schedules) {
      expect(s.Properties.Target).toMatchObject({
        RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 3 },
        DeadLetterConfig: { Arn: dlq },
      });
    }
  });

  it("send a fetch that threw, after Lambda's retries, to the same failed-fetch queue", () => {
    f.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: logicalId(f.stack.fetchFunction.function) },
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(f.stack.schedules.deadLetterQueue), 'Arn'] } } },
    });
  });

  it('run as a role only EventBridge Scheduler of this account can assume', () => {
    f.template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Effect: 'Allow',
            Action: 'sts:AssumeRole',
            Principal: { Service: 'scheduler.amazonaws.com' },
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          },
        ],
      },
    });
  });
});

describe('FetchSchedules props', () => {
  it('reject a schedule on a dataset that is not fetched, saying what to remove', () => {
    const stack = new Stack(new App(), 'Schedules');
    const fetchFunction = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('export const handler = async () => ({})'),
    });
    const pipeline = loadPipeline(FIXTURE_PIPELINE);
    const datasets = pipeline.datasets.map((d) => (d.name === 'permits' ? { ...d, schedule: 'rate(1 hour)' } : d));
    expect(() => new FetchSchedules(stack, 'S', { fetchFunction, datasets, project: 'springfield' })).toThrow(
      'datasets permits are uploaded by suppliers; only fetched datasets can be scheduled — remove their schedule',
    );
  });
});

describe('the alarms', () => {
  let f: Fixture;
  beforeAll(() => {
    f = synthFixture({ settings: { alarmEmail: 'ops@example.org', queueAgeAlarmMinutes: 30 } });
  }, SYNTH_TIMEOUT);

  const topic = () => ({ Ref: logicalId(f.stack.alarms.topic) });

  it("go to an SNS topic encrypted with a rotating key CloudWatch may use, and to the operator's e-mail", () => {
    const keyId = logicalId(f.stack.alarms.key);
    f.template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    f.template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Allow', Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'] })]),
      },
    });
    f.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.org', TopicArn: topic() });
    f.template.hasOutput('AlarmTopicArn', { Value: topic() });
  });

  it('refuse publishing to the topic without TLS', () => {
    f.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [topic()],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });

  it('fire as soon as any dead-letter queue holds a message', () => {
    for (const dlq of [f.stack.stageQueue.deadLetterQueue, f.stack.cleanQueue.deadLetterQueue, f.stack.schedules.deadLetterQueue]) {
      f.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(dlq), 'QueueName'] } }],
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
        AlarmActions: [topic()],
      });
    }
  });

  it("fire when a work queue's oldest message is older than the threshold", () => {
    for (const queue of [f.stack.stageQueue.queue, f.stack.cleanQueue.queue]) {
      f.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(queue), 'QueueName'] } }],
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 30 * 60,
        AlarmActions: [topic()],
      });
    }
  });

  it('fire when any function reports an error', () => {
    for (const fn of [f.stack.fetchFunction, f.stack.stageFunction, f.stack.cleanFunction, f.stack.migrateFunction]) {
      f.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(fn.function) } }],
        Statistic: 'Sum',
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
        AlarmActions: [topic()],
      });
    }
  });

  it('fire when the stage or clean step reports a failed message, on the metric that step publishes', () => {
    const env = (fn: { function: object }) => (f.template.toJSON().Resources[logicalId(fn.function as never)].Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
    for (const [step, fn] of [
      ['stage', f.stack.stageFunction],
      ['clean', f.stack.cleanFunction],
    ] as const) {
      // what the function publishes: its EMF namespace and service (functions/common/metrics.ts) come from its environment
      const vars = env(fn);
      expect(vars).toMatchObject({ POWERTOOLS_METRICS_NAMESPACE: f.stack.metricsNamespace, POWERTOOLS_SERVICE_NAME: `civic-etl-${step}`, CIVIC_ETL_MAX_RECEIVES: '5' });
      // failed messages (retried, then its DLQ), and messages it cannot read (acknowledged, never in a DLQ: their own count, their own alarm)
      for (const metric of ['FailedMessages', 'UnreadableMessages']) {
        f.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          Namespace: vars.POWERTOOLS_METRICS_NAMESPACE,
          MetricName: metric,
          Dimensions: Match.arrayEquals([
            { Name: 'service', Value: vars.POWERTOOLS_SERVICE_NAME },
            { Name: 'step', Value: step },
          ]),
          Statistic: 'Sum',
          ComparisonOperator: 'GreaterThanThreshold',
          Threshold: 0,
          EvaluationPeriods: 1,
          AlarmActions: [topic()],
        });
      }
    }
    expect(f.stack.metricsNamespace).toBe(`civic-etl/${f.stack.stackName}`);
  });

  it("watch the very metric a step's code writes: its EMF line has the alarm's namespace, name and dimension set", async () => {
    const vars = (f.template.toJSON().Resources[logicalId(f.stack.cleanFunction.function)].Properties as { Environment: { Variables: Record<string, string> } }).Environment.Variables;
    const saved = { ...process.env };
    const lines: string[] = [];
    Object.assign(process.env, { POWERTOOLS_METRICS_NAMESPACE: vars.POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME: vars.POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_DISABLED: 'false' });
    vi.resetModules();
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    try {
      const { publishBatchCounts } = await import('../../functions/common/metrics.ts');
      publishBatchCounts('clean', { failed: 2, rejected: 1, unreadable: 3 });
    } finally {
      spy.mockRestore();
      process.env = saved;
    }
    const emf = JSON.parse(lines.join('').trim()) as { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] } } & Record<string, unknown>;
    const [directive] = emf._aws.CloudWatchMetrics;
    const alarm = Object.values(f.template.findResources('AWS::CloudWatch::Alarm')).find(
      (a) =>
        (a as { Properties: { MetricName: string; Dimensions: { Name: string; Value: unknown }[] } }).Properties.MetricName === 'FailedMessages' &&
        (a as { Properties: { Dimensions: { Name: string; Value: unknown }[] } }).Properties.Dimensions.some((d) => d.Name === 'step' && d.Value === 'clean'),
    ) as { Properties: { Namespace: string; MetricName: string; Dimensions: { Name: string; Value: unknown }[] } };
    expect(directive!.Namespace).toBe(alarm.Properties.Namespace);
    expect(directive!.Metrics.map((m) => m.Name)).toContain(alarm.Properties.MetricName);
    // CloudWatch matches a metric by its whole dimension set: the line's set is the alarm's
    expect([...directive!.Dimensions[0]!].sort()).toEqual(alarm.Properties.Dimensions.map((d) => d.Name).sort());
    for (const d of alarm.Properties.Dimensions) expect(emf[d.Name]).toBe(d.Value);
    expect(emf[alarm.Properties.MetricName]).toBe(2);
    expect(emf.UnreadableMessages).toBe(3);
  });

  it('treat missing data as fine and announce the return to OK', () => {
    expect(f.stack.alarms.alarms.length).toBeGreaterThan(0);
    for (const alarm of f.stack.alarms.alarms) {
      expect(f.template.toJSON().Resources[logicalId(alarm)].Properties).toMatchObject({ TreatMissingData: 'notBreaching', OKActions: [topic()] });
    }
  });
});
