import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../lib/database.ts';
import { logicalId, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

describe('the network', () => {
  let f: Fixture;
  beforeAll(() => {
    f = synthFixture();
  }, SYNTH_TIMEOUT);

  it('has isolated subnets in two zones and no way to the internet', () => {
    expect(f.stack.network.vpc.isolatedSubnets).toHaveLength(2);
    expect(f.stack.network.vpc.publicSubnets).toHaveLength(0);
    expect(f.stack.network.vpc.privateSubnets).toHaveLength(0);
    f.template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    f.template.resourceCountIs('AWS::EC2::NatGateway', 0);
    for (const subnet of f.stack.network.vpc.isolatedSubnets) {
      f.template.hasResourceProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: false, CidrBlock: (subnet as ec2.Subnet).ipv4CidrBlock });
    }
  });

  it('reaches S3 through a gateway endpoint on the isolated route tables', () => {
    f.template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.s3']] },
      RouteTableIds: f.stack.network.vpc.isolatedSubnets.map((s) => f.stack.resolve(s.routeTable.routeTableId)),
    });
  });

  it('reaches SQS and Secrets Manager through private interface endpoints', () => {
    for (const service of ['sqs', 'secretsmanager']) {
      f.template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        VpcEndpointType: 'Interface',
        PrivateDnsEnabled: true,
        ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, `.${service}`]] },
      });
    }
  });

  it('lets only the database functions and the rotation function reach the interface endpoints', () => {
    const endpointGroup = logicalId(f.stack.network.sqsEndpoint.connections.securityGroups[0]!);
    const ingress = Object.values(f.template.findResources('AWS::EC2::SecurityGroupIngress', { Properties: { GroupId: { 'Fn::GetAtt': [endpointGroup, 'GroupId'] } } }));
    const sources = ingress.map((r) => (r as { Properties: { SourceSecurityGroupId: { 'Fn::GetAtt': [string, string] } } }).Properties.SourceSecurityGroupId['Fn::GetAtt'][0]);
    const expected = [f.stack.stageFunction, f.stack.cleanFunction, f.stack.migrateFunction].map((fn) => logicalId(fn.function.connections.securityGroups[0]!));
    expected.push(logicalId(f.stack.database.rotationConnections.connections.securityGroups[0]!));
    expect(sources.sort()).toEqual(expected.sort());
    expect(f.template.toJSON().Resources[endpointGroup].Properties.SecurityGroupIngress).toBeUndefined();
  });

  it('records its traffic in flow logs', () => {
    f.template.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL', LogDestinationType: 'cloud-watch-logs' });
  });
});

describe('the database', () => {
  let f: Fixture;
  let instance: Record<string, unknown>;
  beforeAll(() => {
    f = synthFixture();
    instance = f.template.toJSON().Resources[logicalId(f.stack.database.instance)].Properties;
  }, SYNTH_TIMEOUT);

  it('is PostgreSQL 16, encrypted, never publicly accessible, in the isolated subnets', () => {
    expect(instance).toMatchObject({ Engine: 'postgres', EngineVersion: '16', StorageEncrypted: true, PubliclyAccessible: false });
    const subnetGroup = f.template.toJSON().Resources[(instance.DBSubnetGroupName as { Ref: string }).Ref].Properties;
    expect(subnetGroup.SubnetIds).toEqual(f.stack.network.vpc.isolatedSubnets.map((s) => ({ Ref: logicalId(s.node.defaultChild!) })));
  });

  it('is protected against deletion and keeps a week of backups by default', () => {
    expect(instance).toMatchObject({ DeletionProtection: true, BackupRetentionPeriod: 7, DeleteAutomatedBackups: false });
    f.template.hasResource('AWS::RDS::DBInstance', { DeletionPolicy: 'Snapshot', UpdateReplacePolicy: 'Snapshot' });
  });

  it('accepts TLS connections only', () => {
    f.template.hasResourceProperties('AWS::RDS::DBParameterGroup', { Family: 'postgres16', Parameters: { 'rds.force_ssl': '1' } });
    expect(instance.DBParameterGroupName).toEqual({ Ref: logicalId(f.stack.database.parameterGroup) });
  });

  it('exports its logs to CloudWatch with a retention', () => {
    expect(instance.EnableCloudwatchLogsExports).toEqual(['postgresql', 'upgrade']);
    f.template.hasResourceProperties('Custom::LogRetention', {
      LogGroupName: { 'Fn::Join': ['', ['/aws/rds/instance/', { Ref: logicalId(f.stack.database.instance) }, '/postgresql']] },
      RetentionInDays: 90,
    });
  });

  it('keeps generated credentials in Secrets Manager and rotates them with the hosted single-user rotation', () => {
    f.template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      SecretId: { Ref: logicalId(f.stack.database.secret) },
      HostedRotationLambda: Match.objectLike({ RotationType: 'PostgreSQLSingleUser', VpcSubnetIds: Match.anyValue(), VpcSecurityGroupIds: Match.anyValue() }),
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
      RotateImmediatelyOnUpdate: false,
    });
  });

  it('lets the stage, clean and migrate functions (and the rotation) in on its port, and nothing else', () => {
    const dbGroup = logicalId(f.stack.database.securityGroup);
    const ingress = Object.values(f.template.findResources('AWS::EC2::SecurityGroupIngress', { Properties: { GroupId: { 'Fn::GetAtt': [dbGroup, 'GroupId'] } } }));
    const rules = ingress.map((r) => (r as { Properties: Record<string, unknown> }).Properties);
    expect(rules.every((r) => r.FromPort === 5432 && r.ToPort === 5432 && r.IpProtocol === 'tcp' && r.CidrIp === undefined)).toBe(true);
    const sources = rules.map((r) => (r.SourceSecurityGroupId as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]).sort();
    const expected = [f.stack.stageFunction, f.stack.cleanFunction, f.stack.migrateFunction]
      .map((fn) => logicalId(fn.function.connections.securityGroups[0]!))
      .concat(logicalId(f.stack.database.rotationConnections.connections.securityGroups[0]!))
      .sort();
    expect(sources).toEqual(expected);
    const fetchInVpc = f.stack.fetchFunction.function.isBoundToVpc;
    expect(fetchInVpc).toBe(false);
  });

  it('is published as stack outputs: endpoint and secret ARN', () => {
    f.template.hasOutput('DatabaseEndpoint', { Value: { 'Fn::GetAtt': [logicalId(f.stack.database.instance), 'Endpoint.Address'] } });
    f.template.hasOutput('DatabaseSecretArn', { Value: { Ref: logicalId(f.stack.database.secret) } });
  });
});

describe('the database with deletion protection turned off', () => {
  it(
    'has deletion protection off, as the operator asked',
    () => {
      const f = synthFixture({ settings: { deletionProtection: false, dbMultiAz: true, dbBackupRetentionDays: 14 } });
      f.template.hasResourceProperties('AWS::RDS::DBInstance', { DeletionProtection: false, MultiAZ: true, BackupRetentionPeriod: 14 });
    },
    SYNTH_TIMEOUT,
  );
});

describe('Database props', () => {
  const vpc = () => {
    const stack = new Stack(new App(), 'Db');
    return { stack, vpc: new ec2.Vpc(stack, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'i', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] }) };
  };

  it('reject a storage ceiling below the initial size, saying what to change', () => {
    const { stack, vpc: v } = vpc();
    expect(() => new Database(stack, 'Db', { vpc: v, allocatedStorageGiB: 200, maxAllocatedStorageGiB: 100 })).toThrow(
      'maxAllocatedStorageGiB (100) is below allocatedStorageGiB (200); raise the ceiling or lower the initial size',
    );
  });

  it('reject a backup retention RDS does not accept', () => {
    const { stack, vpc: v } = vpc();
    expect(() => new Database(stack, 'Db', { vpc: v, backupRetention: Duration.days(0) })).toThrow(/backupRetention must be a whole number of days from 1 to 35/);
  });
});
