import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { Migration, MIGRATION_RESOURCE_TYPE } from '../../lib/migration.ts';
import { FIXTURE_MIGRATIONS, logicalId, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('the migration custom resource', () => {
  let f: Fixture;
  let resource: { Properties: Record<string, unknown>; DependsOn?: string[] };
  beforeAll(() => {
    f = synthFixture();
    resource = f.template.toJSON().Resources[logicalId(f.stack.migration.resource)];
  }, SYNTH_TIMEOUT);

  it('carries the hash of the migrations file and the project, so it runs when either changes', () => {
    expect(resource.Properties).toMatchObject({ Project: 'springfield', MigrationsSha256: sha256(FIXTURE_MIGRATIONS) });
    expect(resource.Properties.Nonce).toBeUndefined();
  });

  it('carries the synthesis time, so the (idempotent) migrations run on every deploy', () => {
    f.template.hasResourceProperties('Custom::CivicEtlMigrations', { SynthTime: Match.anyValue() });
    expect(resource.Properties.SynthTime).toBe(f.stack.migration.synthTime);
    expect(new Date(resource.Properties.SynthTime as string).toISOString()).toBe(resource.Properties.SynthTime);
  });

  it("carries the database instance's endpoint address, so a replaced or restored instance is migrated", () => {
    f.template.hasResourceProperties('Custom::CivicEtlMigrations', {
      DatabaseAddress: { 'Fn::GetAtt': [logicalId(f.stack.database.instance), 'Endpoint.Address'] },
    });
  });

  it('is served by a Provider whose onEvent handler is the migrate function, in the VPC', () => {
    const framework = f.stack.migration.provider.node.findChild('framework-onEvent') as lambda.Function;
    expect(resource.Properties.ServiceToken).toEqual({ 'Fn::GetAtt': [logicalId(framework), 'Arn'] });
    const env = f.template.toJSON().Resources[logicalId(framework)].Properties.Environment.Variables;
    expect(env.USER_ON_EVENT_FUNCTION_ARN).toEqual({ 'Fn::GetAtt': [logicalId(f.stack.migrateFunction.function), 'Arn'] });
    expect(f.stack.migrateFunction.function.isBoundToVpc).toBe(true);
  });

  it('waits for the database instance, its security group rules and the VPC endpoints', () => {
    const dependsOn = resource.DependsOn ?? [];
    expect(dependsOn).toContain(logicalId(f.stack.database.instance));
    expect(dependsOn).toContain(logicalId(f.stack.network.secretsManagerEndpoint));
    const migrateGroup = logicalId(f.stack.migrateFunction.function.connections.securityGroups[0]!);
    const rule = Object.entries(
      f.template.findResources('AWS::EC2::SecurityGroupIngress', {
        Properties: { GroupId: { 'Fn::GetAtt': [logicalId(f.stack.database.securityGroup), 'GroupId'] }, SourceSecurityGroupId: { 'Fn::GetAtt': [migrateGroup, 'GroupId'] } },
      }),
    );
    expect(rule).toHaveLength(1);
    expect(dependsOn).toContain(rule[0]![0]);
  });
});

describe('the migration custom resource with migrateOnEveryDeploy false and a nonce', () => {
  let f: Fixture;
  beforeAll(() => {
    f = synthFixture({ settings: { migrateOnEveryDeploy: false, migrationNonce: '2024-05-01-restore' } });
  }, SYNTH_TIMEOUT);

  it('carries no synthesis time, so an unchanged app deploys without running the migrations', () => {
    f.template.hasResourceProperties('Custom::CivicEtlMigrations', { SynthTime: Match.absent(), Project: 'springfield' });
    expect(f.stack.migration.synthTime).toBeUndefined();
  });

  it("still carries the database instance's endpoint address", () => {
    f.template.hasResourceProperties('Custom::CivicEtlMigrations', {
      DatabaseAddress: { 'Fn::GetAtt': [logicalId(f.stack.database.instance), 'Endpoint.Address'] },
    });
  });

  it('adds the nonce to its properties, to force a run', () => {
    f.template.hasResourceProperties('Custom::CivicEtlMigrations', { Nonce: '2024-05-01-restore', Project: 'springfield' });
  });
});

describe('Migration props', () => {
  const setup = () => {
    const stack = new Stack(new App(), 'Migrations');
    const handler = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('export const handler = async () => ({})'),
      timeout: Duration.minutes(1),
    });
    return { stack, handler };
  };

  it('run on every deploy unless told otherwise', () => {
    const { stack, handler } = setup();
    new Migration(stack, 'M', { handler, project: 'p', migrationsFile: FIXTURE_MIGRATIONS, databaseAddress: 'db.example.internal' });
    Template.fromStack(stack).hasResourceProperties(MIGRATION_RESOURCE_TYPE, {
      SynthTime: Match.anyValue(),
      DatabaseAddress: 'db.example.internal',
    });
  });

  it('carry no synthesis time with runOnEveryDeploy false', () => {
    const { stack, handler } = setup();
    new Migration(stack, 'M', { handler, project: 'p', migrationsFile: FIXTURE_MIGRATIONS, databaseAddress: 'db.example.internal', runOnEveryDeploy: false });
    Template.fromStack(stack).hasResourceProperties(MIGRATION_RESOURCE_TYPE, { SynthTime: Match.absent(), DatabaseAddress: 'db.example.internal' });
  });

  it('reject a migrations file that cannot be read, saying which file is expected', () => {
    const { stack, handler } = setup();
    expect(() => new Migration(stack, 'M', { handler, project: 'p', migrationsFile: '/nonexistent/migrations.ts', databaseAddress: 'db.example.internal' })).toThrow(
      /cannot read the migrations file \/nonexistent\/migrations.ts .*point migrationsFile at functions\/migrate\/migrations.ts/,
    );
  });
});
