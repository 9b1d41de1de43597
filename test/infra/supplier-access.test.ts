import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DatasetDefinition } from '../../contract/definition.ts';
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

  it('may put objects (and multipart parts) under the prefix of each dataset it delivers, and read back the reports of those uploads, nothing else', () => {
    const bucket = logicalId(f.stack.landing.bucket);
    const s3 = statements.filter((s) => actionsOf([s]).some((a) => a.startsWith('s3:')));
    expect(s3).toEqual([
      {
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        Resource: [objectsArn(bucket, 'incoming/acme/permits/*'), objectsArn(bucket, 'incoming/acme/contractors/*')],
      },
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: [objectsArn(bucket, 'reports/acme/permits/*'), objectsArn(bucket, 'reports/acme/contractors/*')],
      },
      {
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: { 'Fn::GetAtt': [bucket, 'Arn'] },
        Condition: { StringLike: { 's3:prefix': ['reports/acme/permits/*', 'reports/acme/contractors/*'] } },
      },
    ]);
    expect(f.stack.suppliers.get('acme')!.reportPrefixes).toEqual(['reports/acme/permits/', 'reports/acme/contractors/']);
  });

  it("cannot write its whole prefix, nor another supplier's dataset, nor a fetched one", () => {
    const json = JSON.stringify(statements);
    expect(json).not.toContain('/incoming/acme/*');
    expect(json).not.toContain('licenses');
    expect(json).not.toContain('inspections');
    expect(f.stack.suppliers.get('acme')!.uploadPrefixes).toEqual(['incoming/acme/permits/', 'incoming/acme/contractors/']);
  });

  it("can read and list nothing but the reports of its own datasets: no upload, no other supplier's report, no old version", () => {
    const reading = statements.filter((s) => actionsOf([s]).some((a) => a.startsWith('s3:Get') || (a.startsWith('s3:List') && a !== 's3:ListMultipartUploadParts')));
    // every object pattern and list prefix it may read: its two datasets' report prefixes, nothing wider
    const patterns = JSON.stringify(reading).match(/[a-z-]+\/[^"]*\*/g);
    expect(new Set(patterns)).toEqual(new Set(['reports/acme/permits/*', 'reports/acme/contractors/*']));
    expect(actionsOf(statements)).not.toContain('s3:GetObjectVersion');
    expect(actionsOf(statements).filter((a) => a.includes('*'))).toEqual([]);
  });

  it('may use the bucket key only through S3', () => {
    const kms = statements.filter((s) => actionsOf([s]).some((a) => a.startsWith('kms:')));
    const throughS3 = (actions: string | string[]) => ({
      Effect: 'Allow',
      Action: actions,
      Resource: { 'Fn::GetAtt': [logicalId(f.stack.landing.encryptionKey!), 'Arn'] },
      Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['s3.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } },
    });
    // uploading (multipart parts are read back by S3), then reading its reports
    expect(kms).toEqual([throughS3(['kms:GenerateDataKey', 'kms:Encrypt', 'kms:Decrypt']), throughS3('kms:Decrypt')]);
  });

  it('is published as a stack output with the role ARN, naming the prefixes it may write', () => {
    f.template.hasOutput('SupplierAcmeRoleArn', {
      Value: { 'Fn::GetAtt': [roleId, 'Arn'] },
      Description: 'Role supplier acme assumes (with its external id); it uploads into incoming/acme/permits/, incoming/acme/contractors/',
    });
    expect(f.template.toJSON().Resources[roleId].Properties.Description).toBe('civic-etl supplier acme: uploads into incoming/acme/permits/, incoming/acme/contractors/');
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
    f.template.hasOutput('SupplierCityClerkCredentialsSecret', {
      Value: 'civic-etl/springfield/suppliers/city-clerk',
      Description: 'Secret with the access key of supplier city-clerk, who uploads into incoming/city-clerk/licenses/',
    });
  });

  it('may put objects under incoming/city-clerk/licenses/ and read reports/city-clerk/licenses/ only, and has no KMS rights when the bucket uses SSE-S3', () => {
    const statements = statementsOf(f.template, { Users: [{ Ref: userId }] });
    const bucket = logicalId(f.stack.landing.bucket);
    expect(statements).toEqual([
      {
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        Resource: objectsArn(bucket, 'incoming/city-clerk/licenses/*'),
      },
      { Effect: 'Allow', Action: 's3:GetObject', Resource: objectsArn(bucket, 'reports/city-clerk/licenses/*') },
      {
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: { 'Fn::GetAtt': [bucket, 'Arn'] },
        Condition: { StringLike: { 's3:prefix': ['reports/city-clerk/licenses/*'] } },
      },
    ]);
    expect(JSON.stringify(statements)).not.toContain('/incoming/city-clerk/*');
  });
});

describe('a declared supplier that delivers no dataset yet (county-gis)', () => {
  let f: Fixture;
  let userId: string;
  beforeAll(() => {
    f = synthFixture();
    const gis = f.stack.suppliers.get('county-gis');
    if (!gis?.user) throw new Error('county-gis has no user');
    userId = logicalId(gis.user);
  }, SYNTH_TIMEOUT);

  it('still gets its principal and credentials, to hand over ahead of its first dataset', () => {
    f.template.hasResourceProperties('AWS::IAM::AccessKey', { UserName: { Ref: userId } });
    f.template.hasOutput('SupplierCountyGisCredentialsSecret', {
      Value: 'civic-etl/springfield/suppliers/county-gis',
      Description: 'Secret with the access key of supplier county-gis, who delivers no dataset yet, so it can upload nothing',
    });
  });

  it('has no policy at all: no S3 write, no KMS right', () => {
    expect(statementsOf(f.template, { Users: [{ Ref: userId }] })).toEqual([]);
    expect(JSON.stringify(f.template.findResources('AWS::IAM::Policy'))).not.toContain('county-gis');
    expect(f.stack.suppliers.get('county-gis')!.uploadPrefixes).toEqual([]);
  });
});

describe('SupplierAccess props', () => {
  const setup = () => {
    const stack = new Stack(new App(), 'Suppliers');
    return { stack, landing: new LandingBucket(stack, 'Landing', { encryption: 's3-managed' }) };
  };
  const dataset = (name: string, source: DatasetDefinition['source']): DatasetDefinition => ({
    name,
    source,
    read: { flattenDepth: 3, arrays: 'json' },
    geometry: { column: 'geom', srid: 4326, invalid: 'repair', enabled: true },
    clean: { columns: [{ name: 'c', type: 'text', required: false }], key: [] },
  });
  const datasets = [
    dataset('trees', { type: 'upload', supplier: 'alpha' }),
    dataset('parcels', { type: 'upload', supplier: 'beta' }),
    dataset('roads', { type: 'http', url: 'https://data.example.org/roads.csv', verifyTls: true }),
    dataset('benches', { type: 'upload', supplier: 'alpha' }),
  ];
  const userStatements = (stack: Stack, id: string) => statementsOf(Template.fromStack(stack), { Users: [{ Ref: logicalId(stack.node.findChild(id).node.findChild('UploadUser')) }] });

  it('reject assumedBy without externalId, saying what to add', () => {
    const { stack, landing } = setup();
    expect(() => new SupplierAccess(stack, 'S', { landing, datasets, supplier: { name: 'acme', assumedBy: 'arn:aws:iam::111122223333:root' } })).toThrow(
      'supplier "acme": assumedBy is set without externalId; agree an external id with the supplier and add it as externalId',
    );
  });

  it('reject externalId without assumedBy', () => {
    const { stack, landing } = setup();
    expect(() => new SupplierAccess(stack, 'S', { landing, datasets, supplier: { name: 'acme', externalId: 'xyz' } })).toThrow(/externalId is only used with assumedBy/);
  });

  it('grant exactly the prefixes of the datasets whose upload source names the supplier, to upload and to read their reports', () => {
    const { stack, landing } = setup();
    new SupplierAccess(stack, 'A', { landing, datasets, supplier: { name: 'alpha' } });
    const bucket = logicalId(landing.bucket);
    expect(userStatements(stack, 'A')).toEqual([
      {
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        Resource: [objectsArn(bucket, 'incoming/alpha/trees/*'), objectsArn(bucket, 'incoming/alpha/benches/*')],
      },
      { Effect: 'Allow', Action: 's3:GetObject', Resource: [objectsArn(bucket, 'reports/alpha/trees/*'), objectsArn(bucket, 'reports/alpha/benches/*')] },
      {
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: { 'Fn::GetAtt': [bucket, 'Arn'] },
        Condition: { StringLike: { 's3:prefix': ['reports/alpha/trees/*', 'reports/alpha/benches/*'] } },
      },
    ]);
  });

  it("never give one supplier a right on another supplier's prefix or on a fetched dataset", () => {
    const { stack, landing } = setup();
    new SupplierAccess(stack, 'A', { landing, datasets, supplier: { name: 'alpha' } });
    new SupplierAccess(stack, 'B', { landing, datasets, supplier: { name: 'beta' } });
    const alpha = JSON.stringify(userStatements(stack, 'A'));
    expect(alpha).not.toContain('beta');
    expect(alpha).not.toContain('parcels');
    expect(alpha).not.toContain('roads');
    expect(JSON.stringify(userStatements(stack, 'B'))).not.toContain('alpha');
  });

  it('give a supplier no dataset names a principal without any policy', () => {
    const { stack, landing } = setup();
    const gamma = new SupplierAccess(stack, 'G', { landing, datasets, supplier: { name: 'gamma' } });
    expect(gamma.datasets).toEqual([]);
    expect(userStatements(stack, 'G')).toEqual([]);
    Template.fromStack(stack).resourceCountIs('AWS::IAM::Policy', 0);
  });

  it('reject a supplier or dataset name that would reach outside its prefix', () => {
    const { stack, landing } = setup();
    const user = new iam.User(stack, 'U');
    expect(() => landing.grantSupplierUpload(user, 'alpha', ['trees/*'])).toThrow(
      "cannot grant supplier uploads under \"trees/*\": supplier and dataset names must be letters, digits, '.', '-' and '_' (no '/', '*' or '?')",
    );
    expect(() => landing.grantSupplierUpload(user, '*', ['trees'])).toThrow(/cannot grant supplier uploads under "\*"/);
    expect(() => landing.grantSupplierReports(user, 'alpha', ['../beta'])).toThrow(/cannot grant supplier reports under "\.\.\/beta"/);
  });
});
