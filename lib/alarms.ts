/**
 * Alarms, all sent to one encrypted, TLS-only SNS topic (optionally with an e-mail subscription):
 * - a dead-letter queue holds any message (something failed for good and waits for a redrive);
 * - a work queue's oldest message is older than a threshold (the pipeline is stuck or too slow);
 * - a function reports errors;
 * - a step reports messages as failed in its partial batch response (a metric the function writes
 *   as Embedded Metric Format log lines, functions/common/metrics.ts): Lambda counts those as
 *   successful invocations, so the Errors alarm never sees them.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { definedProps } from './util.ts';

export interface AlarmsProps {
  /**
   * E-mail address subscribed to the topic.
   * @default - no subscription
   */
  readonly email?: string;
  /**
   * Default age of the oldest message above which a work queue alarms.
   * @default Duration.hours(1)
   */
  readonly queueAgeThreshold?: Duration;
  /**
   * Prefix of alarm names and descriptions, e.g. the stack name.
   * @default 'civic-etl'
   */
  readonly namePrefix?: string;
}

const defaults = { queueAgeThreshold: Duration.hours(1), namePrefix: 'civic-etl' };

export class Alarms extends Construct {
  /** Where every alarm (and its return to OK) is published. */
  public readonly topic: sns.Topic;
  /** The key encrypting the topic; CloudWatch may use it to publish. */
  public readonly key: kms.Key;
  /** Every alarm created through this construct. */
  public readonly alarms: cloudwatch.Alarm[] = [];
  private readonly action: actions.SnsAction;
  private readonly queueAgeThreshold: Duration;
  private readonly namePrefix: string;

  constructor(scope: Construct, id: string, props: AlarmsProps = {}) {
    super(scope, id);
    const p = { ...defaults, ...definedProps(props) };
    if (p.queueAgeThreshold.toSeconds() < 60) {
      throw new Error(`Alarms ${this.node.path}: queueAgeThreshold must be at least one minute (got ${p.queueAgeThreshold.toHumanString()})`);
    }
    this.queueAgeThreshold = p.queueAgeThreshold;
    this.namePrefix = p.namePrefix;

    // CloudWatch cannot publish to a topic encrypted with the AWS managed SNS key: a
    // customer-managed key with CloudWatch allowed in its policy.
    this.key = new kms.Key(this, 'Key', { description: `Encrypts the ${p.namePrefix} alarm topic`, enableKeyRotation: true });
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    this.topic = new sns.Topic(this, 'Topic', { displayName: `${p.namePrefix} alarms`, masterKey: this.key, enforceSSL: true });
    if (p.email) this.topic.addSubscription(new subscriptions.EmailSubscription(p.email));
    this.action = new actions.SnsAction(this.topic);
  }

  /** Alarm as soon as `queue` (a dead-letter queue) holds a message. */
  public watchDeadLetterQueue(id: string, queue: sqs.IQueue, what: string): cloudwatch.Alarm {
    return this.add(id, {
      metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      alarmDescription: `${this.namePrefix}: ${what} holds failed messages; inspect them, fix the cause, then redrive.`,
    });
  }

  /** Alarm when the oldest message of `queue` is older than `threshold`. */
  public watchQueueAge(id: string, queue: sqs.IQueue, what: string, threshold: Duration = this.queueAgeThreshold): cloudwatch.Alarm {
    return this.add(id, {
      metric: queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: threshold.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      alarmDescription: `${this.namePrefix}: ${what} has messages older than ${threshold.toHumanString()}; its consumer is failing or too slow.`,
    });
  }

  /** Alarm when `fn` reports any error. */
  public watchFunctionErrors(id: string, fn: lambda.IFunction, what: string): cloudwatch.Alarm {
    return this.add(id, {
      metric: fn.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      alarmDescription: `${this.namePrefix}: the ${what} function reported errors; see its log group.`,
    });
  }

  /**
   * Alarm when a step's function reports any failed message (retried, then dead-lettered): the
   * `FailedMessages` count its EMF lines carry, in `namespace`, with the function's `service` and
   * the `step` as dimensions — exactly the dimension set the function publishes.
   */
  public watchFailedMessages(id: string, m: { namespace: string; service: string; step: string }, what: string): cloudwatch.Alarm {
    return this.stepCount(
      id,
      m,
      'FailedMessages',
      `${this.namePrefix}: the ${what} step failed messages (retried, then sent to its DLQ); its log group names each load, file, error and attempt, and \`civic-etl status\` the ledger's.`,
    );
  }

  /**
   * Alarm when a step reads a message it cannot read (not an S3 event notification, not JSON…):
   * acknowledged without retries, such a message never reaches a DLQ, so the DLQ alarms never see
   * it; the step counts it as `UnreadableMessages` (EMF, same namespace and dimensions as above).
   */
  public watchUnreadableMessages(id: string, m: { namespace: string; service: string; step: string }, what: string): cloudwatch.Alarm {
    return this.stepCount(
      id,
      m,
      'UnreadableMessages',
      `${this.namePrefix}: the ${what} step got messages it cannot read (not an S3 event notification, not JSON); they are not retried: each is logged with its message id and kept in etl.rejected_messages (\`civic-etl status\`, \`civic-etl dlq list\`).`,
    );
  }

  /** Alarm when a step's EMF count `metricName` (its `service` and `step` dimensions) is above 0 in a 5-minute period. */
  private stepCount(id: string, m: { namespace: string; service: string; step: string }, metricName: string, alarmDescription: string): cloudwatch.Alarm {
    return this.add(id, {
      metric: new cloudwatch.Metric({
        namespace: m.namespace,
        metricName,
        dimensionsMap: { service: m.service, step: m.step },
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.SUM,
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      alarmDescription,
    });
  }

  private add(id: string, props: Omit<cloudwatch.AlarmProps, 'treatMissingData' | 'actionsEnabled'>): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, { ...props, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING });
    alarm.addAlarmAction(this.action);
    alarm.addOkAction(this.action);
    this.alarms.push(alarm);
    return alarm;
  }
}
