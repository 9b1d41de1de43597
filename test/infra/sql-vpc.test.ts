import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { logicalId, secretStatementsOf, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

/** One SQL source reached from inside the VPC, one over the internet, one REST API. */
const PIPELINE = `
project: riverside
datasets:
  - name: permits
    source: { type: sql, engine: postgres, secret: riverside/permits-db, network: vpc, query: "SELECT * FROM permits" }
    schedule: rate(1 day)
  - name: grants
    source: { type: sql, engine: mysql, secret: riverside/grants-db, query: "SELECT * FROM grants" }
    schedule: rate(1 day)
  - name: requests
    source: { type: rest, url: https://api.example.org/requests, auth: { type: bearer, secret: riverside/api } }
    schedule: rate(1 hour)
`;

describe('SQL sources read from inside the VPC', () => {
  let f: Fixture;
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), 'civic-etl-sql-vpc-'));
    writeFileSync(join(dir, 'pipeline.yaml'), PIPELINE);
    f = synthFixture({ pipelineFile: join(dir, 'pipeline.yaml') });
  }, SYNTH_TIMEOUT);

  const secretsOf = (fn: NonNullable<Fixture['stack']['vpcFetchFunction']>) => secretStatementsOf(f.template, fn).map((s) => JSON.stringify(s.Resource));

  it('get a fetch function of their own, in the VPC, scheduled for them alone', () => {
    const inVpc = f.stack.vpcFetchFunction!;
    expect(inVpc).toBeDefined();
    const fn = f.template.toJSON().Resources[logicalId(inVpc.function)] as { Properties: { VpcConfig?: unknown } };
    expect(fn.Properties.VpcConfig).toBeDefined();
    const outside = f.template.toJSON().Resources[logicalId(f.stack.fetchFunction.function)] as { Properties: { VpcConfig?: unknown } };
    expect(outside.Properties.VpcConfig).toBeUndefined();

    const schedules = Object.values(f.template.findResources('AWS::Scheduler::Schedule')) as { Properties: { Target: { Arn: unknown; Input: string } } }[];
    const targetOf = (dataset: string) => schedules.find((s) => JSON.parse(s.Properties.Target.Input).dataset === dataset)!.Properties.Target.Arn;
    expect(targetOf('permits')).toEqual({ 'Fn::GetAtt': [logicalId(inVpc.function), 'Arn'] });
    expect(targetOf('grants')).toEqual({ 'Fn::GetAtt': [logicalId(f.stack.fetchFunction.function), 'Arn'] });
    expect(targetOf('requests')).toEqual({ 'Fn::GetAtt': [logicalId(f.stack.fetchFunction.function), 'Arn'] });
  });

  it('each fetch function reads only the secrets of the sources it runs', () => {
    const inside = secretsOf(f.stack.vpcFetchFunction!);
    const outside = secretsOf(f.stack.fetchFunction);
    expect(inside).toHaveLength(1);
    expect(inside[0]).toContain('riverside/permits-db-??????');
    expect(outside.join()).toContain('riverside/grants-db-??????');
    expect(outside.join()).toContain('riverside/api-??????');
    expect(outside.join()).not.toContain('permits-db');
  });

  it('may reach the project database port', () => {
    const ingress = Object.values(f.template.findResources('AWS::EC2::SecurityGroupIngress')) as { Properties: { Description?: string; FromPort: number } }[];
    expect(ingress.some((r) => r.Properties.Description === 'SQL sources read from inside the VPC' && r.Properties.FromPort === 5432)).toBe(true);
  });

  it('leaves cdk-nag nothing unacknowledged (two fetch functions, schedules on each)', () => {
    const report = new AwsSolutionsChecks().validateScope(f.stack);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
  });
});
