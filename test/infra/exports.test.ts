import { join } from 'node:path';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { actionsOf, FIXTURES, logicalId, objectsArn, statementsOf, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

/** The clean function's policy statements that grant something of `service`. */
function cleanStatements(f: Fixture, service: 's3' | 'kms') {
  const role = { Roles: [{ Ref: logicalId(f.stack.cleanFunction.function.role!.node.defaultChild!) }] };
  return statementsOf(f.template, role).filter((s) => actionsOf([s]).some((a) => a.startsWith(`${service}:`)));
}

describe('a project that exports views', () => {
  let f: Fixture;
  beforeAll(() => {
    f = synthFixture({ pipelineFile: join(FIXTURES, 'exports.yaml') });
  }, SYNTH_TIMEOUT);

  it('lets the clean function write (in parts) under curated/<project>/ only, and read nothing', () => {
    const bucket = logicalId(f.stack.landing.bucket);
    expect(cleanStatements(f, 's3')).toEqual([
      { Effect: 'Allow', Action: 's3:PutObject', Resource: objectsArn(bucket, 'reports/*') },
      { Effect: 'Allow', Action: ['s3:PutObject', 's3:AbortMultipartUpload'], Resource: objectsArn(bucket, 'curated/goldtown/*') },
    ]);
  });

  it('lets it use the bucket key through S3 for multipart uploads', () => {
    const kms = cleanStatements(f, 'kms');
    expect(actionsOf(kms)).toEqual(expect.arrayContaining(['kms:GenerateDataKey', 'kms:Decrypt']));
    for (const s of kms) expect(s.Condition).toMatchObject({ StringEquals: { 'kms:ViaService': expect.anything() } });
  });

  it('tells the clean function the bucket', () => {
    const fn = f.template.toJSON().Resources[logicalId(f.stack.cleanFunction.function)];
    expect(fn.Properties.Environment.Variables.CIVIC_ETL_BUCKET).toEqual({ Ref: logicalId(f.stack.landing.bucket) });
  });

  it('leaves cdk-nag nothing unacknowledged (the curated wildcard is acknowledged on its own)', () => {
    const report = new AwsSolutionsChecks().validateScope(f.stack);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
  });
});

describe('a project that exports no view', () => {
  it(
    'gives the clean function no right under curated/',
    () => {
      const f = synthFixture();
      const resources = cleanStatements(f, 's3').flatMap((s) => JSON.stringify(s.Resource));
      expect(resources.join(' ')).not.toContain('curated/');
    },
    SYNTH_TIMEOUT,
  );
});
