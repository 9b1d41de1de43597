import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { LandingBucket } from '../../lib/landing-bucket.ts';
import { SupplierAccess } from '../../lib/supplier-access.ts';
import { actionsOf, logicalId, objectsArn, statementsOf, synthFixture, SYNTH_TIMEOUT, type Fixture, type Statement } from './synth.ts';

describe('a supplier with its own AWS principal (acme, assumedBy)', () => {
  let f: Fixture;
  let roleId: string;
  let statements: Statement[];
  beforeAll(() => {
    f = synthFixture();
    const acme = f.stack.suppliers.get('acme');
    if (!acme?.role) throw new Error('acme has no role');
    roleId = logicalId(acme.role);
    statements = statementsOf(f.template, { Roles: [{ Ref: roleId }] });
  }, SYNTH_TIMEOUT);

  it('gets a role only its principal can assume, presenting the external id', () => {
    f.template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Effect: 'Allow',
            Action: 'sts:AssumeRole',
            Principal: { AWS: 'arn:aws:iam::111122223333:role/acme-uploader' },
            Condition: { StringEquals: { 'sts:ExternalId': 'acme-springfield-7' } },
          },
        ],
      },
    });
    expect(f.template.toJSON().Resources[roleId].Properties.ManagedPolicyArns).toBeUndefined();
  });

  it('may put objects (and multipart parts) under incoming/acme/ and nowhere else', () => {
    const s3 = statements.filter((s) => actionsOf([s]).some((a) => a.startsWith('s3:')));
    expect(s3).toEqual([
      {
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        Resource: objectsArn(logicalId(f.stack.landing.bucket), 'incoming/acme/*'),
      },
    ]);
  });

  it('can neither read nor list anything', () => {
    const actions = actionsOf(statements);
    expect(actions).not.toContain('s3:GetObject');
    expect(actions).not.toContain('s3:ListBucket');
    expect(actions.filter((a) => a.includes('*'))).toEqual([]);
  });

  it('may use the bucket key only through S3', () => {
    const kms = statements.filter((s) => actionsOf([s]).some((a) => a.startsWith('kms:')));
    expect(kms).toEqual([
      {
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey', 'kms:Encrypt', 'kms:Decrypt'],
        Resource: { 'Fn::GetAtt': [logicalId(f.stack.landing.encryptionKey!), 'Arn'] },
        Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['s3.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } },
      },
    ]);
  });

  it('is published as a stack output with the role ARN', () => {
    f.template.hasOutput('SupplierAcmeRoleArn', { Value: { 'Fn::GetAtt': [roleId, 'Arn'] } });
  });
});

describe('a supplier without an AWS principal (city-clerk)', () => {
  let f: Fixture;
  let userId: string;
  beforeAll(() => {
    f = synthFixture({ settings: { bucketEncryption: 's3-managed' } });
    const clerk = f.stack.suppliers.get('city-clerk');
    if (!clerk?.user) throw new Error('city-clerk has no user');
    userId = logicalId(clerk.user);
  }, SYNTH_TIMEOUT);

  it('gets an IAM user whose access key is kept in a Secrets Manager secret', () => {
    const clerk = f.stack.suppliers.get('city-clerk')!;
    const keyId = logicalId(clerk.node.findChild('AccessKey'));
    f.template.hasResourceProperties('AWS::IAM::AccessKey', { UserName: { Ref: userId } });
    f.template.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: 'civic-etl/springfield/suppliers/city-clerk',
      SecretString: {
        'Fn::Join': ['', ['{"accessKeyId":"', { Ref: keyId }, '","secretAccessKey":"', { 'Fn::GetAtt': [keyId, 'SecretAccessKey'] }, '"}']],
      },
    });
    f.template.hasOutput('SupplierCityClerkCredentialsSecret', { Value: 'civic-etl/springfield/suppliers/city-clerk' });
  });

  it('may put objects under incoming/city-clerk/ only, and has no KMS rights when the bucket uses SSE-S3', () => {
    const statements = statementsOf(f.template, { Users: [{ Ref: userId }] });
    expect(statements).toEqual([
      {
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        Resource: objectsArn(logicalId(f.stack.landing.bucket), 'incoming/city-clerk/*'),
      },
    ]);
  });
});

describe('SupplierAccess props', () => {
  const setup = () => {
    const stack = new Stack(new App(), 'Suppliers');
    return { stack, landing: new LandingBucket(stack, 'Landing') };
  };

  it('reject assumedBy without externalId, saying what to add', () => {
    const { stack, landing } = setup();
    expect(
      () => new SupplierAccess(stack, 'S', { landing, supplier: { name: 'acme', assumedBy: 'arn:aws:iam::111122223333:root' } }),
    ).toThrow('supplier "acme": assumedBy is set without externalId; agree an external id with the supplier and add it as externalId');
  });

  it('reject externalId without assumedBy', () => {
    const { stack, landing } = setup();
    expect(() => new SupplierAccess(stack, 'S', { landing, supplier: { name: 'acme', externalId: 'xyz' } })).toThrow(
      /externalId is only used with assumedBy/,
    );
  });

  it('never give one supplier a right on another supplier\'s prefix', () => {
    const { stack, landing } = setup();
    new SupplierAccess(stack, 'A', { landing, supplier: { name: 'alpha' } });
    new SupplierAccess(stack, 'B', { landing, supplier: { name: 'beta' } });
    const template = Template.fromStack(stack);
    const alpha = statementsOf(template, { Users: [{ Ref: logicalId(stack.node.findChild('A').node.findChild('UploadUser')) }] });
    expect(JSON.stringify(alpha)).toContain('/incoming/alpha/*');
    expect(JSON.stringify(alpha)).not.toContain('beta');
  });
});
