/**
 * The "get" step's clock: one EventBridge Scheduler schedule per dataset that declares a
 * `schedule`, invoking the fetch function with `{ "dataset": "<name>" }`.
 *
 * A fetch that never happens must not go unnoticed. Scheduler invokes the function
 * asynchronously, so failures surface in two places, and both land in one alarmed queue:
 * - the invoke itself fails (throttled, function missing): Scheduler's retry policy, then its DLQ;
 * - the function runs and throws: Lambda's async retries, then the on-failure destination.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { fetchedInVpc, type DatasetDefinition, type EdfiApiDefinition } from '../contract/definition.ts';
import { acknowledge, nagReference, wildcardResource } from './nag.ts';
import { definedProps } from './util.ts';

export interface FetchSchedulesProps {
  /** The fetch function. */
  readonly fetchFunction: lambda.Function;
  /** The fetch function in the VPC, for the datasets `fetchedInVpc` names (SQL sources with `network: vpc`). */
  readonly vpcFetchFunction?: lambda.Function;
  /** The project's datasets; those with a `schedule` get one. */
  readonly datasets: readonly DatasetDefinition[];
  /** The project's Ed-Fi APIs; those with a `schedule` get one, invoking `{ "edfi": "<name>" }`. */
  readonly edfi?: readonly EdfiApiDefinition[];
  /** Project name, for descriptions. */
  readonly project: string;
  /**
   * How long Scheduler keeps retrying an invoke that fails (60 s – 24 h). A fetch that is
   * hours late is rarely worth more than the next scheduled one.
   * @default Duration.hours(1)
   */
  readonly maxEventAge?: Duration;
  /**
   * Retries of a failed invoke by Scheduler (0–185).
   * @default 3
   */
  readonly retryAttempts?: number;
  /**
   * Retries by Lambda of a fetch that threw (0–2).
   * @default 2
   */
  readonly functionRetryAttempts?: number;
}

const defaults = {
  maxEventAge: Duration.hours(1),
  retryAttempts: 3,
  functionRetryAttempts: 2,
};

export class FetchSchedules extends Construct {
  /** One schedule per scheduled dataset, by dataset name (Ed-Fi APIs: `edfi:<name>`). */
  public readonly schedules: ReadonlyMap<string, scheduler.Schedule>;
  /** Failed fetches: invokes Scheduler gave up on, and fetches that threw after Lambda's retries. */
  public readonly deadLetterQueue: sqs.Queue;
  /** The role Scheduler assumes to invoke the fetch function and to write the dead-letter queue (when any dataset is scheduled). */
  public readonly role?: iam.Role;

  constructor(scope: Construct, id: string, props: FetchSchedulesProps) {
    super(scope, id);
    const p = { ...defaults, ...definedProps(props) };
    const where = `FetchSchedules ${this.node.path}`;
    const age = p.maxEventAge.toSeconds();
    if (age < 60 || age > 86_400) throw new Error(`${where}: maxEventAge must be from 60 seconds to 24 hours (got ${p.maxEventAge.toHumanString()})`);
    if (!Number.isInteger(p.retryAttempts) || p.retryAttempts < 0 || p.retryAttempts > 185) {
      throw new Error(`${where}: retryAttempts must be a whole number from 0 to 185 (got ${p.retryAttempts})`);
    }
    if (!Number.isInteger(p.functionRetryAttempts) || p.functionRetryAttempts < 0 || p.functionRetryAttempts > 2) {
      throw new Error(`${where}: functionRetryAttempts must be 0, 1 or 2 (got ${p.functionRetryAttempts})`);
    }
    const unfetchable = p.datasets.filter((d) => d.schedule && d.source.type === 'upload').map((d) => d.name);
    if (unfetchable.length) {
      throw new Error(`${where}: datasets ${unfetchable.join(', ')} are uploaded by suppliers; only fetched datasets can be scheduled — remove their schedule`);
    }

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      this.deadLetterQueue,
      'AwsSolutions-SQS3',
      "This queue is itself the dead-letter target of the fetch schedules and of the fetch function's failed asynchronous invocations; it is alarmed, and a dead-letter queue behind it would only hide failures.",
    );

    const functions = [p.fetchFunction, ...(p.vpcFetchFunction ? [p.vpcFetchFunction] : [])];
    for (const fn of functions) {
      fn.configureAsyncInvoke({
        retryAttempts: p.functionRetryAttempts,
        maxEventAge: p.maxEventAge,
        onFailure: new destinations.SqsDestination(this.deadLetterQueue),
      });
    }
    const inVpc = p.datasets.filter(fetchedInVpc).map((d) => d.name);
    if (inVpc.length && !p.vpcFetchFunction) {
      throw new Error(`${where}: datasets ${inVpc.join(', ')} are fetched from inside the VPC (network: vpc); give vpcFetchFunction`);
    }

    const scheduled: { id: string; name: string; what: string; schedule: string; input: Record<string, string>; fn: lambda.Function }[] = [
      ...p.datasets.flatMap((d) =>
        d.schedule
          ? [{ id: `Fetch-${d.name}`, name: d.name, what: `dataset ${d.name}`, schedule: d.schedule, input: { dataset: d.name }, fn: fetchedInVpc(d) ? p.vpcFetchFunction! : p.fetchFunction }]
          : [],
      ),
      ...(p.edfi ?? []).flatMap((a) =>
        a.schedule ? [{ id: `FetchEdfi-${a.name}`, name: `edfi:${a.name}`, what: `every resource of Ed-Fi API ${a.name}`, schedule: a.schedule, input: { edfi: a.name }, fn: p.fetchFunction }] : [],
      ),
    ];
    const schedules = new Map<string, scheduler.Schedule>();
    if (scheduled.length) {
      // One role for all schedules, assumable by Scheduler on behalf of this account only.
      this.role = new iam.Role(this, 'SchedulerRole', {
        description: `civic-etl ${p.project}: EventBridge Scheduler invokes the fetch function`,
        assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
          conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
        }),
      });
      for (const fn of new Set(scheduled.map((item) => item.fn))) {
        acknowledge(
          this.role,
          'AwsSolutions-IAM5',
          'Scheduler may invoke any version or alias (<arn>:*) of a fetch function it targets; the wildcard is confined to that function.',
          wildcardResource(`${nagReference(fn, 'Arn')}:*`),
        );
      }
    }
    for (const item of scheduled) {
      schedules.set(
        item.name,
        new scheduler.Schedule(this, item.id, {
          description: `civic-etl ${p.project}: fetch ${item.what}`,
          schedule: scheduler.ScheduleExpression.expression(item.schedule),
          timeWindow: scheduler.TimeWindow.off(),
          target: new targets.LambdaInvoke(item.fn, {
            input: scheduler.ScheduleTargetInput.fromObject(item.input),
            maxEventAge: p.maxEventAge,
            retryAttempts: p.retryAttempts,
            deadLetterQueue: this.deadLetterQueue,
            role: this.role,
          }),
        }),
      );
    }
    this.schedules = schedules;
  }
}
