/**
 * A pipeline Lambda: one handler bundled with esbuild as an ES module, with the validated
 * pipeline definition shipped beside it as `pipeline.json`, its own log group, and the settings
 * every handler expects (source maps, the Lambda CA bundle for RDS TLS, the Powertools service name).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { AssetHashType, DockerImage, Duration, type ILocalBundling, type Size } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { PipelineDefinition } from '../contract/definition.ts';
import { BUNDLED_PIPELINE_FILE, ENV } from '../contract/names.ts';
import { validatePipeline } from '../contract/validate.ts';
import { bundleHandler, ESM_REQUIRE_BANNER } from './bundle.ts';
import { acknowledge, managedPolicy } from './nag.ts';
import { definedProps } from './util.ts';

/** The Lambda runtime of every pipeline function. */
export const PIPELINE_RUNTIME = lambda.Runtime.NODEJS_22_X;

export { ESM_REQUIRE_BANNER };

/** The Node major of PIPELINE_RUNTIME (`nodejs22.x` → 22): esbuild's target. */
export const PIPELINE_NODE_MAJOR = Number(/^nodejs(\d+)\.x$/.exec(PIPELINE_RUNTIME.name)![1]);

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
  public readonly function: lambda.Function;
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
    const definition = writeDefinitionForBundling(p.pipeline);

    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: p.logRetention });
    this.function = new lambda.Function(this, 'Function', {
      // Bundled here, not by NodejsFunction: its esbuild run writes one file (--outfile), and the
      // handlers' chunks (code splitting, lib/bundle.ts) need an output directory. The asset is
      // hashed by its output, as NodejsFunction's is; `cdk synth` without bundling skips it.
      code: lambda.Code.fromAsset(p.projectRoot, {
        assetHashType: AssetHashType.OUTPUT,
        bundling: {
          // never pulled: local bundling always succeeds or throws (esbuild is a dependency)
          image: DockerImage.fromRegistry('dummy'),
          local: new LocalHandlerBundling(relative(p.projectRoot, entry), p.projectRoot, definition.file),
        },
      }),
      handler: 'index.handler',
      description: p.description,
      runtime: PIPELINE_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      timeout: p.timeout,
      memorySize: p.memorySize,
      ...(p.ephemeralStorageSize ? { ephemeralStorageSize: p.ephemeralStorageSize } : {}),
      logGroup: this.logGroup,
      ...(p.vpc ? { vpc: p.vpc, vpcSubnets: p.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } } : {}),
      environment: {
        // no --enable-source-maps: it parses every map at start (about 12 ms of a cold start); the
        // handlers map a stack trace when one is read (functions/common/stack-maps.ts)
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
        POWERTOOLS_SERVICE_NAME: serviceNameOf(p.step),
        [ENV.pipelineFile]: BUNDLED_PIPELINE_FILE,
        // the definition validated here: the function reads it without building the schemas again (functions/common/pipeline.ts)
        [ENV.pipelineSha256]: definition.sha256,
        ...p.environment,
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
 * its path and the SHA-256 of its bytes; the bundling hook copies it beside each handler, and the
 * function is told the digest, so that it takes that file as validated (functions/common/pipeline.ts):
 * the definition is validated here, whatever the caller did.
 */
export function writeDefinitionForBundling(pipeline: PipelineDefinition): { file: string; sha256: string } {
  // validated here, as the function would otherwise at its start: a definition built or changed in code
  // after loadPipeline is held to the schemas too, and what the function reads is what JSON keeps of it
  const json = `${JSON.stringify(validatePipeline(JSON.parse(JSON.stringify(pipeline)), 'the pipeline definition given to the stack'), null, 2)}\n`;
  const sha256 = createHash('sha256').update(json).digest('hex');
  const dir = join(tmpdir(), 'civic-etl-bundling');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `pipeline-${sha256.slice(0, 16)}.json`);
  writeFileSync(file, json);
  return { file, sha256 };
}

/**
 * Bundles a handler on this machine with esbuild (lib/bundle.ts) and puts the validated
 * definition beside it. Its fields are part of the asset's cache key (CDK hashes the bundling
 * options): two functions of different entries are never given one bundle.
 */
class LocalHandlerBundling implements ILocalBundling {
  constructor(
    /** The handler, relative to the project root. */
    public readonly entry: string,
    private readonly projectRoot: string,
    public readonly definitionFile: string,
  ) {}

  tryBundle(outputDir: string): boolean {
    bundleHandler(join(this.projectRoot, this.entry), outputDir, PIPELINE_NODE_MAJOR);
    copyFileSync(this.definitionFile, join(outputDir, BUNDLED_PIPELINE_FILE));
    return true;
  }
}
