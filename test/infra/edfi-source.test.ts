import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { actionsOf, logicalId, statementsOf, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

/** A project fetching three resources of one scheduled Ed-Fi ODS / API. */
const PIPELINE = `
project: springfield_schools
edfi:
  - name: ods
    url: https://ods.example.org/api
    secret: springfield/edfi-client
    instance: yearSpecific
    schoolYears: [2026]
    resources: [schools, students, studentSchoolAssociations]
    schedule: cron(0 5 * * ? *)
datasets: []
`;

describe('an Ed-Fi API in the stack', () => {
  let f: Fixture;
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), 'civic-etl-edfi-'));
    writeFileSync(join(dir, 'pipeline.yaml'), PIPELINE);
    f = synthFixture({ pipelineFile: join(dir, 'pipeline.yaml') });
  }, SYNTH_TIMEOUT);

  it('schedules one fetch of every resource of the API, not one per resource', () => {
    const schedules = Object.values(f.template.findResources('AWS::Scheduler::Schedule')) as { Properties: { ScheduleExpression: string; Target: { Input: string } } }[];
    expect(schedules.map((s) => [s.Properties.ScheduleExpression, JSON.parse(s.Properties.Target.Input)])).toEqual([['cron(0 5 * * ? *)', { edfi: 'ods' }]]);
  });

  it('lets fetch read exactly the API client secret', () => {
    const role = f.stack.fetchFunction.function.role!;
    const statements = statementsOf(f.template, { Roles: [{ Ref: logicalId(role.node.defaultChild!) }] });
    const secrets = statements.filter((s) => actionsOf([s]).includes('secretsmanager:GetSecretValue'));
    expect(secrets).toHaveLength(1);
    expect(JSON.stringify(secrets[0]!.Resource)).toContain(':secret:springfield/edfi-client-??????');
  });

  it('lets fetch invoke itself, and only itself, to continue a checkpointed run', () => {
    const role = f.stack.fetchFunction.function.role!;
    const statements = statementsOf(f.template, { Roles: [{ Ref: logicalId(role.node.defaultChild!) }] });
    const invoke = statements.filter((s) => actionsOf([s]).includes('lambda:InvokeFunction'));
    expect(invoke).toEqual([expect.objectContaining({ Effect: 'Allow', Resource: { 'Fn::GetAtt': [logicalId(f.stack.fetchFunction.function), 'Arn'] } })]);
  });
});
