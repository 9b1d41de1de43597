/**
 * A pipeline Lambda: one handler bundled with esbuild as an ES module, with the validated
 * pipeline definition shipped beside it as `pipeline.json`, its own log group, and the settings
 * every handler expects (source maps, the Lambda CA bundle for RDS TLS, the Powertools service name).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { Duration, type Size } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { PipelineDefinition } from '../contract/definition.ts';
import { BUNDLED_PIPELINE_FILE, ENV } from '../contract/names.ts';
import { acknowledge, managedPolicy } from './nag.ts';
import { definedProps } from './util.ts';

/** The Lambda runtime of every pipeline function. */
export const PIPELINE_RUNTIME = lambda.Runtime.NODEJS_22_X;

/** ES module bundles have no `require`; some dependencies (CommonJS inside) still call it. */
export const ESM_REQUIRE_BANNER = "import { createRequire } from 'module';const require = createRequire(import.meta.url);";

/** The `service` of a step's logs and metrics (Powertools): what its metric alarms select on. */
export function serviceNameOf(step: string): string {
  return `civic-etl-${step}`;
}

export interface PipelineFunctionProps {
  /** Path of the handler module (exports `handler`), absolute or relative to `projectRoot`. */
  readonly entry: string;
  /** Root of the project: holds `package-lock.json` and `tsconfig.json`. */
  readonly projectRoot: string;
  /** The validated pipeline definition, shipped beside the handler. */
  readonly pipeline: PipelineDefinition;
  /** Which step this is (`fetch`, `stage`, …): the Powertools service name ends with it. */
  readonly step: string;
  /** What the function does, for the console. */
  readonly description: string;
  /**
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /**
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * Size of the function's /tmp, where archives, spreadsheets and GeoPackages are unpacked.
   * @default Size.mebibytes(512)
   */
  readonly ephemeralStorageSize?: Size;
  /**
   * VPC to run in; without it the function runs outside any VPC (and can reach the internet).
   * @default - not in a VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets, with `vpc`.
   * @default - the VPC's isolated subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Retention of the function's log group.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * More environment variables; they win over the defaults.
   * @default - none
   */
  readonly environment?: Record<string, string>;
}

const defaults = {
  timeout: Duration.minutes(5),
  memorySize: 512,
  logRetention: logs.RetentionDays.THREE_MONTHS,
  environment: {} as Record<string, string>,
};

export class PipelineFunction extends Construct {
  public readonly function: NodejsFunction;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    super(scope, id);
    const p = { ...defaults, ...definedProps(props) };
    if (p.vpcSubnets && !p.vpc) {
      throw new Error(`PipelineFunction ${this.node.path}: vpcSubnets is set without vpc; give vpc as well, or drop vpcSubnets to run outside a VPC`);
    }
    const entry = isAbsolute(p.entry) ? p.entry : join(p.projectRoot, p.entry);
    if (!existsSync(entry)) {
      throw new Error(`PipelineFunction ${this.node.path}: the ${p.step} handler ${entry} does not exist; write it (exporting handler) or point entry at it`);
    }
    const definitionFile = writeDefinitionForBundling(p.pipeline);

    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: p.logRetention });
    this.function = new NodejsFunction(this, 'Function', {
      entry,
      projectRoot: p.projectRoot,
      depsLockFilePath: join(p.projectRoot, 'package-lock.json'),
      handler: 'handler',
      description: p.description,
      runtime: PIPELINE_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      timeout: p.timeout,
      memorySize: p.memorySize,
      ...(p.ephemeralStorageSize ? { ephemeralStorageSize: p.ephemeralStorageSize } : {}),
      logGroup: this.logGroup,
      ...(p.vpc ? { vpc: p.vpc, vpcSubnets: p.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } } : {}),
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
        POWERTOOLS_SERVICE_NAME: serviceNameOf(p.step),
        [ENV.pipelineFile]: BUNDLED_PIPELINE_FILE,
        ...p.environment,
      },
      bundling: {
        minify: true,
        sourceMap: true,
        // Stack traces need the mappings, not a copy of every source file: a third of the size.
        sourcesContent: false,
        format: OutputFormat.ESM,
        forceDockerBundling: false,
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        // The AWS SDK is bundled at the versions package-lock.json pins, not taken from the
        // runtime; pg's optional native binding is never used.
        bundleAwsSDK: true,
        externalModules: ['pg-native'],
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_inputDir: string, outputDir: string) => [`cp ${shellQuote(definitionFile)} ${shellQuote(join(outputDir, BUNDLED_PIPELINE_FILE))}`],
        },
      },
    });

    acknowledge(
      this.function,
      'AwsSolutions-IAM4',
      'AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch logs; it is the AWS-maintained minimum for any Lambda function.',
      managedPolicy('service-role/AWSLambdaBasicExecutionRole'),
    );
    if (p.vpc) {
      acknowledge(
        this.function,
        'AwsSolutions-IAM4',
        'AWSLambdaVPCAccessExecutionRole only manages the network interfaces Lambda needs to place the function in the VPC; it is the AWS-maintained minimum for that.',
        managedPolicy('service-role/AWSLambdaVPCAccessExecutionRole'),
      );
    }
    acknowledge(
      this.function,
      'AwsSolutions-L1',
      'The runtime is pinned on purpose to nodejs22.x, the Node major the handlers are built and tested for; moving to a newer runtime is a reviewed change of the whole pipeline, not drift.',
    );
  }
}

/**
 * Write the validated definition as JSON to a temporary file, named by its content, and return
 * its path; the bundling hook copies it beside each handler.
 */
export function writeDefinitionForBundling(pipeline: PipelineDefinition): string {
  const json = `${JSON.stringify(pipeline, null, 2)}\n`;
  const digest = createHash('sha256').update(json).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'civic-etl-bundling');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `pipeline-${digest}.json`);
  writeFileSync(file, json);
  return file;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
