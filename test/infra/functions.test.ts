import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPipeline } from '../../contract/load.ts';
import { PipelineFunction } from '../../lib/pipeline-function.ts';
import { actionsOf, FIXTURE_HANDLER, FIXTURE_PIPELINE, logicalId, secretStatementsOf, statementsOf, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

type Props = Record<string, unknown> & {
  Environment: { Variables: Record<string, unknown> };
  VpcConfig?: unknown;
  Code: { S3Key: string };
  LoggingConfig: { LogGroup: { Ref: string } };
};

const steps = ['fetch', 'stage', 'clean', 'migrate'] as const;
type Step = (typeof steps)[number];

/** The template properties of each step's function. */
function propsOf(f: Fixture): (step: Step) => Props {
  const resources = f.template.toJSON().Resources;
  const fns = { fetch: f.stack.fetchFunction, stage: f.stack.stageFunction, clean: f.stack.cleanFunction, migrate: f.stack.migrateFunction };
  return (step) => resources[logicalId(fns[step].function)].Properties as Props;
}

describe('the pipeline functions', () => {
  let f: Fixture;
  let props: (step: Step) => Props;
  beforeAll(() => {
    f = synthFixture();
    props = propsOf(f);
  }, SYNTH_TIMEOUT);

  it('run on nodejs22.x on arm64, as ES module bundles exporting handler', () => {
    for (const step of steps) {
      expect(props(step)).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], Handler: 'index.handler' });
    }
  });

  it('map stack traces on demand rather than at start, trust the Lambda CA bundle (RDS TLS), and know their service name and definition file', () => {
    for (const step of steps) {
      // --enable-source-maps would parse every map at start; the handlers map a trace when it is read (bundle.test.ts)
      expect(props(step).Environment.Variables.NODE_OPTIONS ?? '').not.toContain('--enable-source-maps');
      expect(props(step).Environment.Variables).toMatchObject({
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
        POWERTOOLS_SERVICE_NAME: `civic-etl-${step}`,
        CIVIC_ETL_PIPELINE_FILE: 'pipeline.json',
      });
    }
  });

  it('give the stage function room in /tmp for archives and workbooks, and memory for a 400 MiB GeoPackage', () => {
    expect(props('stage')).toMatchObject({ EphemeralStorage: { Size: 8192 }, MemorySize: 1024 });
    for (const step of ['fetch', 'clean', 'migrate'] as const) expect(props(step).EphemeralStorage).toBeUndefined();
  });

  it('put stage, clean and migrate in the isolated subnets, and keep fetch out of the VPC', () => {
    const subnets = f.stack.network.vpc.isolatedSubnets.map((s) => ({ Ref: logicalId(s.node.defaultChild!) }));
    for (const step of ['stage', 'clean', 'migrate'] as const) {
      expect(props(step).VpcConfig).toMatchObject({ SubnetIds: subnets });
    }
    expect(props('fetch').VpcConfig).toBeUndefined();
  });

  it('tell the database functions the credentials secret, and only them', () => {
    const secret = { Ref: logicalId(f.stack.database.secret) };
    for (const step of ['stage', 'clean', 'migrate'] as const) {
      expect(props(step).Environment.Variables.CIVIC_ETL_DB_SECRET_ARN).toEqual(secret);
    }
    expect(props('fetch').Environment.Variables.CIVIC_ETL_DB_SECRET_ARN).toBeUndefined();
  });

  it('tell fetch and stage the landing bucket', () => {
    const bucket = { Ref: logicalId(f.stack.landing.bucket) };
    expect(props('fetch').Environment.Variables.CIVIC_ETL_BUCKET).toEqual(bucket);
    expect(props('stage').Environment.Variables.CIVIC_ETL_BUCKET).toEqual(bucket);
  });

  it('log to their own log group with an explicit retention', () => {
    for (const step of steps) {
      const group = props(step).LoggingConfig.LogGroup.Ref;
      expect(f.template.toJSON().Resources[group]).toMatchObject({ Type: 'AWS::Logs::LogGroup', Properties: { RetentionInDays: 90 } });
    }
  });

  it('let fetch read exactly the header secrets the definition names', () => {
    const secrets = secretStatementsOf(f.template, f.stack.fetchFunction);
    expect(secrets).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Resource: {
          'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':secretsmanager:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':secret:springfield/data-portal-token-??????']],
        },
      }),
    ]);
  });

  it('let fetch write raw/ and its state/, stage read the staged zones, stage and clean write reports/ only, with no write elsewhere', () => {
    const bucket = logicalId(f.stack.landing.bucket);
    const of = (fn: typeof f.stack.fetchFunction) => statementsOf(f.template, { Roles: [{ Ref: logicalId(fn.function.role!.node.defaultChild!) }] });
    const s3 = (statements: ReturnType<typeof of>) => statements.filter((s) => actionsOf([s]).some((a) => a.startsWith('s3:')));
    const arn = (p: string) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, `/${p}`]] });
    expect(s3(of(f.stack.fetchFunction))).toEqual([
      { Effect: 'Allow', Action: ['s3:PutObject', 's3:AbortMultipartUpload'], Resource: arn('raw/*') },
      { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject'], Resource: arn('state/*') },
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: { 'Fn::GetAtt': [bucket, 'Arn'] }, Condition: { StringLike: { 's3:prefix': ['state/*'] } } },
    ]);
    expect(s3(of(f.stack.stageFunction))).toEqual([
      { Effect: 'Allow', Action: ['s3:GetObject', 's3:GetObjectVersion'], Resource: [arn('incoming/*'), arn('raw/*')] },
      {
        Effect: 'Allow',
        Action: ['s3:ListBucket', 's3:ListBucketVersions'],
        Resource: { 'Fn::GetAtt': [bucket, 'Arn'] },
        Condition: { StringLike: { 's3:prefix': ['incoming/*', 'raw/*'] } },
      },
      // the report of a file the stage step rejects
      { Effect: 'Allow', Action: 's3:PutObject', Resource: arn('reports/*') },
    ]);
    // clean writes the suppliers' quality reports, and reads nothing
    expect(s3(of(f.stack.cleanFunction))).toEqual([{ Effect: 'Allow', Action: 's3:PutObject', Resource: arn('reports/*') }]);
    expect(s3(of(f.stack.migrateFunction))).toEqual([]);
  });

  it('never let a function list the bucket without an s3:prefix condition', () => {
    for (const fn of [f.stack.fetchFunction, f.stack.stageFunction, f.stack.cleanFunction, f.stack.migrateFunction]) {
      const statements = statementsOf(f.template, { Roles: [{ Ref: logicalId(fn.function.role!.node.defaultChild!) }] });
      const listing = statements.filter((s) => actionsOf([s]).some((a) => a.startsWith('s3:List')));
      for (const s of listing) expect(s.Condition).toMatchObject({ StringLike: { 's3:prefix': expect.anything() } });
    }
  });

  it("give stage and clean a database pool of 2 connections (they handle a batch one record at a time), and leave the others at the runtime's default", () => {
    expect(props('stage').Environment.Variables.CIVIC_ETL_DB_POOL_SIZE).toBe('2');
    expect(props('clean').Environment.Variables.CIVIC_ETL_DB_POOL_SIZE).toBe('2');
    expect(props('fetch').Environment.Variables.CIVIC_ETL_DB_POOL_SIZE).toBeUndefined();
    expect(props('migrate').Environment.Variables.CIVIC_ETL_DB_POOL_SIZE).toBeUndefined();
  });
});

describe('the bundled pipeline functions', () => {
  // the only fixture here that runs esbuild: the other tests read the template, not the bundles
  let f: Fixture;
  let props: (step: Step) => Props;
  beforeAll(() => {
    f = synthFixture({ bundle: true });
    props = propsOf(f);
  }, SYNTH_TIMEOUT);

  it('ship the validated definition as pipeline.json beside each bundled handler', () => {
    const expected = loadPipeline(FIXTURE_PIPELINE);
    const outdir = f.app.outdir;
    for (const step of steps) {
      const asset = join(outdir, `asset.${props(step).Code.S3Key.replace(/\.zip$/, '')}`);
      expect(JSON.parse(readFileSync(join(asset, 'pipeline.json'), 'utf8'))).toEqual(expected);
      // the function is told the digest of exactly these bytes, so it reads them without validating again
      expect(props(step).Environment.Variables.CIVIC_ETL_PIPELINE_SHA256).toBe(
        createHash('sha256')
          .update(readFileSync(join(asset, 'pipeline.json')))
          .digest('hex'),
      );
      const bundle = readFileSync(join(asset, 'index.mjs'), 'utf8');
      expect(bundle.startsWith("import { createRequire } from 'module';const require = createRequire(import.meta.url);")).toBe(true);
      expect(readFileSync(join(asset, 'index.mjs.map'), 'utf8')).toContain('"mappings"');
    }
  });
});

describe('PipelineFunction props', () => {
  it('reject a handler file that does not exist, naming it', () => {
    const stack = new Stack(new App(), 'Fns');
    expect(
      () =>
        new PipelineFunction(stack, 'Fn', {
          entry: 'functions/nowhere/handler.ts',
          projectRoot: '/work/does-not-matter',
          pipeline: loadPipeline(FIXTURE_PIPELINE),
          step: 'stage',
          description: 'test',
        }),
    ).toThrow('the stage handler /work/does-not-matter/functions/nowhere/handler.ts does not exist; write it (exporting handler) or point entry at it');
  });

  it('reject subnets without a VPC, saying what to give', () => {
    const stack = new Stack(new App(), 'Fns');
    expect(
      () =>
        new PipelineFunction(stack, 'Fn', {
          entry: FIXTURE_HANDLER,
          projectRoot: join(FIXTURE_HANDLER, '../../../../..'),
          pipeline: loadPipeline(FIXTURE_PIPELINE),
          step: 'stage',
          description: 'test',
          vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        }),
    ).toThrow('vpcSubnets is set without vpc; give vpc as well, or drop vpcSubnets to run outside a VPC');
  });
});
