import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { actionsOf, logicalId, secretStatementsOf, statementsOf, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

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
    const secrets = secretStatementsOf(f.template, f.stack.fetchFunction);
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

/** The Ed-Fi example the project ships: `cdk synth` with it deploys its scheduled fetch. */
describe('the Ed-Fi example (pipelines/edfi/pipeline.yaml) in the stack', () => {
  const EXAMPLE = 'pipelines/edfi/pipeline.yaml';
  // what the file says, read as plain YAML (not through the definition loader)
  const file = parse(readFileSync(EXAMPLE, 'utf8')) as { edfi: { name: string; secret: string; schedule: string; resources: { resource: string }[] }[] };
  let f: Fixture;
  beforeAll(() => {
    f = synthFixture({ pipelineFile: EXAMPLE });
  }, SYNTH_TIMEOUT);

  it('declares one scheduled Ed-Fi API, every morning', () => {
    expect(file.edfi).toHaveLength(1);
    expect(file.edfi[0]!.schedule).toMatch(/^cron\(\d+ \d+ \* \* \? \*\)$/);
    expect(file.edfi[0]!.resources.length).toBeGreaterThanOrEqual(16);
  });

  it("has an EventBridge schedule that invokes the fetch function for the API, at the file's time", () => {
    const schedules = Object.values(f.template.findResources('AWS::Scheduler::Schedule')) as { Properties: { ScheduleExpression: string; State?: string; Target: { Arn: unknown; Input: string } } }[];
    expect(schedules.map((s) => [s.Properties.ScheduleExpression, JSON.parse(s.Properties.Target.Input)])).toEqual([[file.edfi[0]!.schedule, { edfi: file.edfi[0]!.name }]]);
    expect(schedules[0]!.Properties.Target.Arn).toEqual({ 'Fn::GetAtt': [logicalId(f.stack.fetchFunction.function), 'Arn'] });
    expect(schedules[0]!.Properties.State ?? 'ENABLED').toBe('ENABLED');
  });

  it('lets fetch read the API client secret the file names', () => {
    const secrets = secretStatementsOf(f.template, f.stack.fetchFunction);
    expect(JSON.stringify(secrets.map((s) => s.Resource))).toContain(`:secret:${file.edfi[0]!.secret}-??????`);
  });
});
