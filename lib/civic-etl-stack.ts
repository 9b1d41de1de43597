/**
 * One civic-etl project on AWS, wired in the order data flows:
 *
 *   get      schedules → fetch λ (outside the VPC) → raw/ ; suppliers → incoming/<supplier>/<dataset>/
 *   stage    landing bucket ObjectCreated → stage queue → stage λ (VPC) → staging tables
 *   clean    stage λ → clean queue → clean λ (VPC) → clean tables, quarantine, views
 *   store    RDS PostgreSQL + PostGIS, schema migrations on every deploy
 *   watch    alarms on every dead-letter queue, queue age and function errors
 */
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CfnOutput, Duration, Size, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { fetchedInVpc, sourceSecrets, type DatasetDefinition, type EdfiApiDefinition, type PipelineDefinition } from '../contract/definition.ts';
import { BATCH_SIZE, ENV } from '../contract/names.ts';
import { Alarms } from './alarms.ts';
import { Database } from './database.ts';
import { FetchSchedules } from './fetch-schedules.ts';
import { LandingBucket } from './landing-bucket.ts';
import { Migration } from './migration.ts';
import { acknowledge } from './nag.ts';
import { Network } from './network.ts';
import { PipelineFunction, serviceNameOf } from './pipeline-function.ts';
import { resolveSettings, type OperationalSettings } from './settings.ts';
import { describeUploads, SupplierAccess } from './supplier-access.ts';
import { pascalCase } from './util.ts';
import { WorkQueue } from './work-queue.ts';

/** The steps that run as Lambda functions. */
export type PipelineStep = 'fetch' | 'stage' | 'clean' | 'migrate';

/** The repository root: `lib/..`. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Handler module of each step, relative to the project root. */
export const DEFAULT_HANDLERS: Readonly<Record<PipelineStep, string>> = {
  fetch: 'functions/get/handler.ts',
  stage: 'functions/stage/handler.ts',
  clean: 'functions/clean/handler.ts',
  migrate: 'functions/migrate/handler.ts',
};

export const DEFAULT_MIGRATIONS_FILE = 'functions/migrate/migrations.ts';

export interface CivicEtlStackProps extends StackProps {
  /** The validated pipeline definition (see `loadPipeline`). */
  readonly pipeline: PipelineDefinition;
  /**
   * Operational settings; each one left out takes its default.
   * @default DEFAULT_SETTINGS
   */
  readonly settings?: Partial<OperationalSettings>;
  /**
   * The project root: holds `package-lock.json`, and relative handler paths start there.
   * @default the repository this file belongs to
   */
  readonly projectRoot?: string;
  /**
   * Handler module of a step (absolute, or relative to `projectRoot`).
   * @default DEFAULT_HANDLERS
   */
  readonly handlers?: Partial<Record<PipelineStep, string>>;
  /**
   * The migrations file whose hash decides when migrations run.
   * @default DEFAULT_MIGRATIONS_FILE
   */
  readonly migrationsFile?: string;
}

/**
 * Connections each invocation of a step may open. Stage and clean handle a batch's records one at
 * a time, so two suffice (one working, one spare); with `maxConcurrency` this bounds the
 * connections a queue can open. Migrate keeps the runtime's default.
 */
const DB_POOL_SIZE: Readonly<Partial<Record<PipelineStep, number>>> = { stage: 2, clean: 2 };

/** Timeouts and memory of the step functions. */
const FUNCTION_SIZING: Readonly<Record<PipelineStep, { timeout: Duration; memorySize: number; description: string; ephemeralStorageSize?: Size }>> = {
  fetch: { timeout: Duration.minutes(10), memorySize: 512, description: 'get: fetch a dataset over HTTP(S) into raw/' },
  // /tmp holds an archive and what it expands to (4 GiB by default, read.limits.maxExpandedBytes at most 6 GiB: functions/common/limits.ts)
  stage: {
    timeout: Duration.minutes(10),
    memorySize: 1024,
    ephemeralStorageSize: Size.gibibytes(8),
    description: 'stage: detect and COPY new objects into staging tables',
  },
  clean: { timeout: Duration.minutes(10), memorySize: 512, description: 'clean + combine: typed clean tables, quarantine, views' },
  migrate: { timeout: Duration.minutes(5), memorySize: 256, description: 'migrate: schema migrations on deploy' },
};

export class CivicEtlStack extends Stack {
  public readonly pipeline: PipelineDefinition;
  public readonly settings: OperationalSettings;
  public readonly landing: LandingBucket;
  public readonly suppliers: ReadonlyMap<string, SupplierAccess>;
  public readonly network: Network;
  public readonly database: Database;
  public readonly fetchFunction: PipelineFunction;
  /** The fetch function inside the VPC, when a SQL source says `network: vpc`. */
  public readonly vpcFetchFunction?: PipelineFunction;
  public readonly stageFunction: PipelineFunction;
  public readonly cleanFunction: PipelineFunction;
  public readonly migrateFunction: PipelineFunction;
  public readonly stageQueue: WorkQueue;
  public readonly cleanQueue: WorkQueue;
  public readonly migration: Migration;
  public readonly schedules: FetchSchedules;
  public readonly alarms: Alarms;
  /** Where the steps' metrics go (functions/common/metrics.ts): one namespace per stack, so two stacks' alarms never mix. */
  public readonly metricsNamespace: string;

  constructor(scope: Construct, id: string, props: CivicEtlStackProps) {
    super(scope, id, { description: `civic-etl: ${props.pipeline.title ?? props.pipeline.project}`, ...props });
    const { pipeline } = props;
    const settings = resolveSettings(props.settings);
    this.metricsNamespace = `civic-etl/${this.stackName}`;
    const projectRoot = props.projectRoot ?? PROJECT_ROOT;
    const fromRoot = (file: string) => (isAbsolute(file) ? file : join(projectRoot, file));
    const handlers = { ...DEFAULT_HANDLERS, ...props.handlers };
    const logRetention = settings.logRetentionDays as logs.RetentionDays;
    this.pipeline = pipeline;
    this.settings = settings;

    // get: the landing bucket, the suppliers' way in
    this.landing = new LandingBucket(this, 'Landing', {
      encryption: settings.bucketEncryption,
      noncurrentVersionExpiration: Duration.days(settings.noncurrentVersionExpirationDays),
    });
    this.suppliers = new Map(
      pipeline.suppliers.map((supplier) => [
        supplier.name,
        new SupplierAccess(this, `Supplier-${supplier.name}`, {
          supplier,
          landing: this.landing,
          datasets: pipeline.datasets,
          credentialsSecretName: supplier.assumedBy ? undefined : `civic-etl/${pipeline.project}/suppliers/${supplier.name}`,
        }),
      ]),
    );

    // the private network and the database
    this.network = new Network(this, 'Network', { flowLogRetention: logRetention });
    this.database = new Database(this, 'Database', {
      vpc: this.network.vpc,
      subnets: this.network.subnets,
      instanceType: new ec2.InstanceType(settings.dbInstanceType),
      deletionProtection: settings.deletionProtection,
      multiAz: settings.dbMultiAz,
      backupRetention: Duration.days(settings.dbBackupRetentionDays),
      allocatedStorageGiB: settings.dbAllocatedStorageGiB,
      maxAllocatedStorageGiB: settings.dbMaxAllocatedStorageGiB,
      logRetention,
    });

    // the step functions
    const fn = (step: PipelineStep, inVpc: boolean) =>
      new PipelineFunction(this, pascalCase(step), {
        entry: fromRoot(handlers[step]),
        projectRoot,
        pipeline,
        step,
        ...FUNCTION_SIZING[step],
        logRetention,
        ...(DB_POOL_SIZE[step] !== undefined ? { environment: { [ENV.dbPoolSize]: String(DB_POOL_SIZE[step]) } } : {}),
        ...(inVpc ? { vpc: this.network.vpc, vpcSubnets: this.network.subnets } : {}),
      });
    this.fetchFunction = fn('fetch', false);
    // SQL sources with network: vpc are read from inside the VPC, by a fetch function of their own
    const vpcFetched = pipeline.datasets.filter(fetchedInVpc);
    this.vpcFetchFunction = vpcFetched.length
      ? new PipelineFunction(this, 'FetchInVpc', {
          entry: fromRoot(handlers.fetch),
          projectRoot,
          pipeline,
          step: 'fetch',
          ...FUNCTION_SIZING.fetch,
          description: 'get: run the SQL queries of datamarts reachable inside the VPC into raw/',
          logRetention,
          vpc: this.network.vpc,
          vpcSubnets: this.network.subnets,
        })
      : undefined;
    this.stageFunction = fn('stage', true);
    this.cleanFunction = fn('clean', true);
    this.migrateFunction = fn('migrate', true);

    // get: fetch writes raw/, reads its header secrets; schedules drive it
    this.landing.bindFetcher(this.fetchFunction.function);
    this.grantSourceSecrets(
      this.fetchFunction,
      pipeline.datasets.filter((d) => !fetchedInVpc(d)),
      pipeline.edfi,
    );
    this.allowContinuation(this.fetchFunction);
    if (this.vpcFetchFunction) {
      this.landing.bindFetcher(this.vpcFetchFunction.function);
      this.grantSourceSecrets(this.vpcFetchFunction, vpcFetched, [], 'InVpc');
      // a datamart may live in the project's own database (with credentials of its own)
      this.database.instance.connections.allowFrom(this.vpcFetchFunction.function, ec2.Port.tcp(5432), 'SQL sources read from inside the VPC');
    }
    this.schedules = new FetchSchedules(this, 'Schedules', {
      fetchFunction: this.fetchFunction.function,
      vpcFetchFunction: this.vpcFetchFunction?.function,
      datasets: pipeline.datasets,
      edfi: pipeline.edfi,
      project: pipeline.project,
    });

    // stage: ObjectCreated → stage queue → stage λ → clean queue → clean λ
    // Batch sizes are shared with the local runner (contract/names.ts), so a batch looks the same in both.
    this.stageQueue = new WorkQueue(this, 'StageQueue', {
      consumer: this.stageFunction.function,
      maxReceiveCount: settings.maxReceiveCount,
      batchSize: BATCH_SIZE.stage,
    });
    this.landing.notifyStagedObjects(this.stageQueue.queue);
    this.landing.bindStager(this.stageFunction.function);
    // clean writes each supplier upload's quality report back under reports/<supplier>/<dataset>/
    this.landing.bindReporter(this.cleanFunction.function);
    // the stage step writes the report of a file it rejects
    this.landing.bindReporter(this.stageFunction.function);
    // clean exports the views marked `export` to curated/<project>/ after each refresh
    if (pipeline.views.some((v) => v.export)) this.landing.bindExporter(this.cleanFunction.function, pipeline.project);
    this.cleanQueue = new WorkQueue(this, 'CleanQueue', {
      consumer: this.cleanFunction.function,
      maxReceiveCount: settings.maxReceiveCount,
      batchSize: BATCH_SIZE.clean,
      maxConcurrency: 2,
    });
    // the one error model (functions/common/batch.ts): "attempt n of N", and the metrics' namespace
    for (const f of [this.stageFunction, this.cleanFunction]) {
      f.function.addEnvironment(ENV.maxReceives, String(settings.maxReceiveCount));
      f.function.addEnvironment('POWERTOOLS_METRICS_NAMESPACE', this.metricsNamespace);
    }
    this.cleanQueue.bindProducer(this.stageFunction.function, ENV.cleanQueueUrl);
    // the stage function sends the parts of big files back to its own queue
    this.stageQueue.bindProducer(this.stageFunction.function, ENV.stageQueueUrl);

    for (const step of [this.stageFunction, this.cleanFunction, this.migrateFunction]) {
      this.database.allowConnectionsFrom(step.function, `${step.node.id} function`);
      this.network.allowEndpointsFrom(step.function, `${step.node.id} function`);
    }
    this.network.allowEndpointsFrom(this.database.rotationConnections, 'password rotation');

    // store: migrations on deploy, once the database and the endpoints exist
    this.migration = new Migration(this, 'Migration', {
      handler: this.migrateFunction.function,
      project: pipeline.project,
      migrationsFile: fromRoot(props.migrationsFile ?? DEFAULT_MIGRATIONS_FILE),
      databaseAddress: this.database.instance.dbInstanceEndpointAddress,
      runOnEveryDeploy: settings.migrateOnEveryDeploy,
      nonce: settings.migrationNonce,
      logRetention,
    });
    // The database, its security group rules and the endpoints the migrate function needs.
    this.migration.resource.node.addDependency(this.database, this.network);

    // watch
    this.alarms = new Alarms(this, 'Alarms', {
      email: settings.alarmEmail,
      queueAgeThreshold: Duration.minutes(settings.queueAgeAlarmMinutes),
      namePrefix: this.stackName,
    });
    this.alarms.watchDeadLetterQueue('StageDeadLetters', this.stageQueue.deadLetterQueue, 'the stage dead-letter queue');
    this.alarms.watchDeadLetterQueue('CleanDeadLetters', this.cleanQueue.deadLetterQueue, 'the clean dead-letter queue');
    this.alarms.watchDeadLetterQueue('FetchDeadLetters', this.schedules.deadLetterQueue, 'the failed-fetch queue');
    this.alarms.watchQueueAge('StageQueueAge', this.stageQueue.queue, 'the stage queue');
    this.alarms.watchQueueAge('CleanQueueAge', this.cleanQueue.queue, 'the clean queue');
    for (const [step, f] of [
      ['fetch', this.fetchFunction],
      ...(this.vpcFetchFunction ? [['fetchInVpc', this.vpcFetchFunction] as const] : []),
      ['stage', this.stageFunction],
      ['clean', this.cleanFunction],
      ['migrate', this.migrateFunction],
    ] as const) {
      this.alarms.watchFunctionErrors(`${pascalCase(step)}Errors`, f.function, step);
    }
    // partial batch failures are not function errors: the steps count them (EMF) for these alarms
    for (const step of ['stage', 'clean'] as const) {
      this.alarms.watchFailedMessages(`${pascalCase(step)}FailedMessages`, { namespace: this.metricsNamespace, service: serviceNameOf(step), step }, step);
      this.alarms.watchUnreadableMessages(`${pascalCase(step)}UnreadableMessages`, { namespace: this.metricsNamespace, service: serviceNameOf(step), step }, step);
    }

    this.acknowledgeFrameworkResources();
    this.addOutputs();
  }

  /**
   * A fetch that checkpoints before its time limit invokes itself (asynchronously) to continue.
   * A policy of its own, not the role's default policy: the function waits for that one, and this
   * one names the function — a cycle otherwise.
   */
  private allowContinuation(fetch: PipelineFunction): void {
    new iam.Policy(this, 'FetchContinues', {
      roles: [fetch.function.role!],
      statements: [new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [fetch.function.functionArn] })],
    });
  }

  /** A fetch function may read exactly the secrets its sources name (`sourceSecrets`, `edfi[].secret`). */
  private grantSourceSecrets(fetch: PipelineFunction, datasets: readonly DatasetDefinition[], apis: readonly EdfiApiDefinition[], idSuffix = ''): void {
    const names = new Set([...datasets.flatMap((d) => sourceSecrets(d.source)), ...apis.map((a) => a.secret)]);
    for (const name of names) {
      // fromSecretNameV2 matches the name plus Secrets Manager's random 6-character suffix.
      Secret.fromSecretNameV2(this, `HeadersSecret-${pascalCase(name)}${idSuffix}`, name).grantRead(fetch.function);
    }
  }

  /** Resources aws-cdk-lib adds on its own, at stack level, outside any construct of ours. */
  private acknowledgeFrameworkResources(): void {
    for (const child of this.node.children) {
      if (child.node.id.startsWith('BucketNotificationsHandler')) {
        acknowledge(
          child,
          'AwsSolutions-IAM4',
          "aws-cdk-lib's bucket-notifications handler only writes its own logs with AWSLambdaBasicExecutionRole.",
          'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
        );
      }
      if (child.node.id.startsWith('LogRetention')) {
        acknowledge(
          child,
          'AwsSolutions-IAM4',
          "aws-cdk-lib's log-retention function (sets retention on the RDS log groups RDS creates itself) only writes its own logs with AWSLambdaBasicExecutionRole.",
          'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
        );
        acknowledge(child, 'AwsSolutions-IAM5', "aws-cdk-lib's log-retention function must act on log groups RDS names at creation time, unknown at synth.", 'Resource::*');
      }
    }
  }

  private addOutputs(): void {
    new CfnOutput(this, 'LandingBucketName', { value: this.landing.bucket.bucketName, description: 'Landing bucket (incoming/<supplier>/<dataset>/…, raw/<dataset>/…)' });
    for (const [name, access] of this.suppliers) {
      if (access.role) {
        new CfnOutput(this, `Supplier${pascalCase(name)}RoleArn`, {
          value: access.role.roleArn,
          description: `Role supplier ${name} assumes (with its external id); it ${describeUploads(name, access.uploadPrefixes)}`,
        });
      }
      if (access.credentialsSecretName) {
        new CfnOutput(this, `Supplier${pascalCase(name)}CredentialsSecret`, {
          value: access.credentialsSecretName,
          description: `Secret with the access key of supplier ${name}, who ${describeUploads(name, access.uploadPrefixes)}`,
        });
      }
    }
    new CfnOutput(this, 'DatabaseEndpoint', { value: this.database.instance.dbInstanceEndpointAddress, description: 'PostgreSQL host (private)' });
    new CfnOutput(this, 'DatabaseSecretArn', { value: this.database.secret.secretArn, description: 'Master credentials (rotated)' });
    new CfnOutput(this, 'StageQueueUrl', { value: this.stageQueue.queue.queueUrl });
    new CfnOutput(this, 'StageDeadLetterQueueUrl', { value: this.stageQueue.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'CleanQueueUrl', { value: this.cleanQueue.queue.queueUrl });
    new CfnOutput(this, 'CleanDeadLetterQueueUrl', { value: this.cleanQueue.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'FetchDeadLetterQueueUrl', { value: this.schedules.deadLetterQueue.queueUrl });
    // ARNs for redrive: `aws sqs start-message-move-task --source-arn <…DeadLetterQueueArn>` and `civic-etl dlq --outputs`
    new CfnOutput(this, 'StageQueueArn', { value: this.stageQueue.queue.queueArn });
    new CfnOutput(this, 'StageDeadLetterQueueArn', { value: this.stageQueue.deadLetterQueue.queueArn, description: 'Redrive: aws sqs start-message-move-task --source-arn <this>' });
    new CfnOutput(this, 'CleanQueueArn', { value: this.cleanQueue.queue.queueArn });
    new CfnOutput(this, 'CleanDeadLetterQueueArn', { value: this.cleanQueue.deadLetterQueue.queueArn, description: 'Redrive: aws sqs start-message-move-task --source-arn <this>' });
    new CfnOutput(this, 'FetchDeadLetterQueueArn', {
      value: this.schedules.deadLetterQueue.queueArn,
      description: 'Failed fetches; redrive with civic-etl dlq redrive fetch (re-invokes the fetch function)',
    });
    new CfnOutput(this, 'FetchFunctionName', { value: this.fetchFunction.function.functionName, description: 'Invoke with {"dataset": "<name>"} to fetch now' });
    if (this.vpcFetchFunction) {
      new CfnOutput(this, 'FetchInVpcFunctionName', { value: this.vpcFetchFunction.function.functionName, description: 'Invoke with {"dataset": "<name>"} to fetch a network: vpc SQL source now' });
    }
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarms.topic.topicArn });
  }
}
