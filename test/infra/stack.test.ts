import { join } from 'node:path';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, logicalId, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

describe('the stack of a minimal project (one fetched dataset, no supplier, no schedule)', () => {
  let f: Fixture;
  beforeAll(() => {
    f = synthFixture({ pipelineFile: join(FIXTURES, 'minimal.yaml') });
  }, SYNTH_TIMEOUT);

  it("is named CivicEtl-<project>, with the project's _ turned into -", () => {
    expect(f.stack.stackName).toBe('CivicEtl-st-louis');
  });

  it('has no supplier principal and no schedule, yet a failed-fetch queue for manual invokes', () => {
    expect(f.stack.suppliers.size).toBe(0);
    expect(Object.keys(f.template.findResources('AWS::IAM::User'))).toEqual([]);
    expect(Object.keys(f.template.findResources('AWS::Scheduler::Schedule'))).toEqual([]);
    expect(f.stack.schedules.role).toBeUndefined();
    f.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(f.stack.schedules.deadLetterQueue), 'Arn'] } } },
    });
  });

  it('gives the fetch function no secret to read when no dataset names one', () => {
    const role = logicalId(f.stack.fetchFunction.function.role!.node.defaultChild!);
    const policies = JSON.stringify(f.template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: role }] } }));
    expect(policies).not.toContain('secretsmanager:GetSecretValue');
  });

  it('publishes the bucket name and passes cdk-nag', () => {
    f.template.hasOutput('LandingBucketName', { Value: { Ref: logicalId(f.stack.landing.bucket) } });
    expect(new AwsSolutionsChecks().validateScope(f.stack).violations).toEqual([]);
  });
});
