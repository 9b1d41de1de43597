/**
 * Schema migrations on deploy: a custom resource whose onEvent handler is the migrate function
 * (in the VPC, next to the database). CloudFormation updates it — and the migrations, which are
 * idempotent, run — whenever one of its properties changes:
 *
 * - `SynthTime`, the time of synthesis: on every deploy (unless `runOnEveryDeploy` is false);
 * - `DatabaseAddress`, the instance's endpoint: when the instance is replaced or restored into a
 *   new one, even with `runOnEveryDeploy` false;
 * - `MigrationsSha256` and `Project`: when the migrations or the project change;
 * - `Nonce`: when the operator changes it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CustomResource, Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { acknowledge, managedPolicy, nagReference, wildcardResource } from './nag.ts';
import { definedProps } from './util.ts';

export interface MigrationProps {
  /** The migrate function (the Provider's onEvent handler). */
  readonly handler: lambda.Function;
  /** The project: its schemas are created by the migrations. */
  readonly project: string;
  /** The file that lists the migrations; its content hash triggers a run. */
  readonly migrationsFile: string;
  /**
   * The database instance's endpoint address (`dbInstanceEndpointAddress`): a new address (a
   * replaced or restored instance) triggers a run.
   */
  readonly databaseAddress: string;
  /**
   * Run the migrations on every deploy: a property set to the synthesis time changes each synth.
   * With false they run only when a property above (or the nonce) changes, and `cdk deploy` of an
   * unchanged app is a no-op.
   * @default true
   */
  readonly runOnEveryDeploy?: boolean;
  /**
   * Change it to run the migrations again although nothing else changed.
   * @default - no nonce
   */
  readonly nonce?: string;
  /**
   * Retention of the Provider framework's log group.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
}

const defaults = { logRetention: logs.RetentionDays.THREE_MONTHS, runOnEveryDeploy: true };

/** The custom resource type, as shown in CloudFormation. */
export const MIGRATION_RESOURCE_TYPE = 'Custom::CivicEtlMigrations';

export class Migration extends Construct {
  public readonly provider: cr.Provider;
  public readonly resource: CustomResource;
  /** sha256 of the migrations file at synth time. */
  public readonly migrationsHash: string;
  /** When this construct was synthesized (ISO 8601), if `runOnEveryDeploy`; it makes every deploy run the migrations. */
  public readonly synthTime?: string;

  constructor(scope: Construct, id: string, props: MigrationProps) {
    super(scope, id);
    const p = { ...defaults, ...definedProps(props) };
    let source: Buffer;
    try {
      source = readFileSync(p.migrationsFile);
    } catch (cause) {
      throw new Error(
        `Migration ${this.node.path}: cannot read the migrations file ${p.migrationsFile} (${(cause as Error).message}); ` +
          'its hash decides when migrations run, so point migrationsFile at functions/migrate/migrations.ts',
        { cause },
      );
    }
    this.migrationsHash = createHash('sha256').update(source).digest('hex');
    this.synthTime = p.runOnEveryDeploy ? new Date().toISOString() : undefined;

    this.provider = new cr.Provider(this, 'Provider', {
      onEventHandler: p.handler,
      logGroup: new logs.LogGroup(this, 'ProviderLogs', { retention: p.logRetention }),
    });
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: this.provider.serviceToken,
      resourceType: MIGRATION_RESOURCE_TYPE,
      serviceTimeout: Duration.minutes(20),
      properties: {
        Project: p.project,
        MigrationsSha256: this.migrationsHash,
        DatabaseAddress: p.databaseAddress,
        ...(this.synthTime ? { SynthTime: this.synthTime } : {}),
        ...(p.nonce ? { Nonce: p.nonce } : {}),
      },
    });

    const framework = this.provider.node.findChild('framework-onEvent');
    acknowledge(
      framework,
      'AwsSolutions-IAM4',
      'The CDK Provider framework function only needs to write its own logs; AWSLambdaBasicExecutionRole is the AWS-maintained minimum.',
      managedPolicy('service-role/AWSLambdaBasicExecutionRole'),
    );
    acknowledge(
      framework,
      'AwsSolutions-IAM5',
      'The Provider framework may invoke any version of the one migrate function (<arn>:*); the wildcard is confined to that function.',
      wildcardResource(`${nagReference(p.handler, 'Arn')}:*`),
    );
  }
}
