import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { beforeAll, describe, expect, it } from 'vitest';
import { LandingBucket } from '../../lib/landing-bucket.ts';
import { logicalId, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

describe('the landing bucket', () => {
  let f: Fixture;
  let bucketId: string;
  beforeAll(() => {
    f = synthFixture();
    bucketId = logicalId(f.stack.landing.bucket);
  }, SYNTH_TIMEOUT);

  it('keeps every version of every object, private and owned by the account', () => {
    f.template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
  });

  it('encrypts with its own rotating KMS key and S3 bucket keys by default', () => {
    const keyId = logicalId(f.stack.landing.encryptionKey as kms.Key);
    expect(f.template.toJSON().Resources[bucketId].Properties.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] } } }],
    });
    f.template.hasResource('AWS::KMS::Key', { Properties: { EnableKeyRotation: true }, DeletionPolicy: 'Retain' });
  });

  it('expires noncurrent versions and aborts incomplete multipart uploads', () => {
    expect(f.template.toJSON().Resources[bucketId].Properties.LifecycleConfiguration).toEqual({
      Rules: [{ Id: 'expire-noncurrent-versions', Status: 'Enabled', NoncurrentVersionExpiration: { NoncurrentDays: 90 }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } }],
    });
  });

  it('writes server access logs to a separate, SSE-S3 encrypted log bucket through a bucket policy', () => {
    const logsId = logicalId(f.stack.landing.accessLogsBucket);
    expect(logsId).not.toBe(bucketId);
    expect(f.template.toJSON().Resources[bucketId].Properties.LoggingConfiguration).toEqual({
      DestinationBucketName: { Ref: logsId },
      LogFilePrefix: 'landing/',
    });
    f.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
    f.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logsId },
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Allow', Principal: { Service: 'logging.s3.amazonaws.com' }, Action: 's3:PutObject' })]),
      },
    });
  });

  it('denies every request that does not use TLS 1.2 or later', () => {
    f.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Principal: { AWS: '*' }, Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }),
        ]),
      },
    });
  });

  it('denies supplier uploads that name another KMS key, another encryption, or SSE-KMS without the landing key', () => {
    const keyArn = { 'Fn::GetAtt': [logicalId(f.stack.landing.encryptionKey as kms.Key), 'Arn'] };
    const incoming = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/incoming/*']] };
    const policies = Object.values(f.template.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: bucketId } } }));
    expect(policies).toHaveLength(1);
    const statements = (policies[0] as { Properties: { PolicyDocument: { Statement: { Sid?: string }[] } } }).Properties.PolicyDocument.Statement;
    const deny = (sid: string, condition: object) => ({ Sid: sid, Effect: 'Deny', Principal: { AWS: '*' }, Action: 's3:PutObject', Resource: incoming, Condition: condition });
    expect(statements.filter((st) => st.Sid?.startsWith('DenyUploads'))).toEqual([
      deny('DenyUploadsWithAnotherKmsKey', { StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption-aws-kms-key-id': keyArn } }),
      deny('DenyUploadsWithAnotherEncryption', { StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption': 'aws:kms' } }),
      deny('DenyUploadsWithKmsButNoKey', { Null: { 's3:x-amz-server-side-encryption': 'false', 's3:x-amz-server-side-encryption-aws-kms-key-id': 'true' } }),
    ]);
  });

  it('requires the landing key under every prefix a supplier may upload to, and every object ARN a supplier is granted', () => {
    const statements = Object.values(f.template.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: bucketId } } })).flatMap(
      (p) => (p as { Properties: { PolicyDocument: { Statement: { Sid?: string; Resource: unknown }[] } } }).Properties.PolicyDocument.Statement,
    );
    /** The object-key patterns a statement's Resource names in this bucket (`incoming/*`). */
    const keyPatterns = (resource: unknown): string[] =>
      (Array.isArray(resource) ? resource : [resource]).flatMap((r) => {
        const parts = (r as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join']?.[1];
        const arn = parts?.[0] as { 'Fn::GetAtt'?: [string, string] } | undefined;
        return arn?.['Fn::GetAtt']?.[0] === bucketId && typeof parts?.[1] === 'string' ? [parts[1].replace(/^\//, '')] : [];
      });
    const covers = (pattern: string, prefix: string) => (pattern.endsWith('*') ? prefix.startsWith(pattern.slice(0, -1)) : pattern === prefix);
    const sids = ['DenyUploadsWithAnotherKmsKey', 'DenyUploadsWithAnotherEncryption', 'DenyUploadsWithKmsButNoKey'];
    const denied = sids.map((sid) => keyPatterns(statements.find((st) => st.Sid === sid)?.Resource));
    // the suppliers' prefixes as the stack knows them, and every object pattern their principals may put to
    const suppliers = [...f.stack.suppliers.values()];
    const prefixes = suppliers.flatMap((s) => s.uploadPrefixes);
    const principals = new Set(suppliers.map((s) => logicalId((s.role ?? s.user)!)));
    type Policy = { Properties: { Roles?: { Ref: string }[]; Users?: { Ref: string }[]; PolicyDocument: { Statement: { Action: string | string[]; Resource: unknown }[] } } };
    const supplierGrants = (Object.values(f.template.findResources('AWS::IAM::Policy')) as Policy[])
      .filter((p) => [...(p.Properties.Roles ?? []), ...(p.Properties.Users ?? [])].some((r) => principals.has(r.Ref)))
      .flatMap((p) => p.Properties.PolicyDocument.Statement.filter((st) => ([] as string[]).concat(st.Action).includes('s3:PutObject')).flatMap((st) => keyPatterns(st.Resource)));
    expect(prefixes.length).toBeGreaterThan(0);
    expect(supplierGrants.sort()).toEqual(prefixes.map((p) => `${p}*`).sort());
    for (const prefix of [...prefixes, ...supplierGrants]) {
      for (const [i, patterns] of denied.entries())
        expect(
          patterns.some((pattern) => covers(pattern, prefix.replace(/\*$/, ''))),
          `${sids[i]} covers ${prefix}`,
        ).toBe(true);
    }
  });

  it('notifies the stage queue of objects created under incoming/ and raw/, and nothing else', () => {
    const queueArn = { 'Fn::GetAtt': [logicalId(f.stack.stageQueue.queue), 'Arn'] };
    const notifications = Object.values(f.template.findResources('Custom::S3BucketNotifications'));
    expect(notifications).toHaveLength(1);
    const config = (notifications[0] as { Properties: { NotificationConfiguration: { QueueConfigurations: unknown[] } } }).Properties.NotificationConfiguration;
    expect(config.QueueConfigurations).toEqual([
      { Events: ['s3:ObjectCreated:*'], QueueArn: queueArn, Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'incoming/' }] } } },
      { Events: ['s3:ObjectCreated:*'], QueueArn: queueArn, Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'raw/' }] } } },
    ]);
  });
});

describe('the landing bucket with S3-managed encryption', () => {
  it('uses SSE-S3 and creates no key', () => {
    const stack = new Stack(new App(), 'S3Managed');
    new LandingBucket(stack, 'Landing', { encryption: 's3-managed', noncurrentVersionExpiration: Duration.days(30) });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::KMS::Key', 0);
    // no key to require
    expect(JSON.stringify(template.findResources('AWS::S3::BucketPolicy'))).not.toContain('x-amz-server-side-encryption');
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      LifecycleConfiguration: { Rules: [Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 30 } })] },
    });
  });
});

describe('LandingBucket props', () => {
  it('reject an encryption key without KMS encryption, saying what to change', () => {
    const stack = new Stack(new App(), 'Bad');
    const key = new kms.Key(stack, 'Key');
    expect(() => new LandingBucket(stack, 'Landing', { encryption: 's3-managed', encryptionKey: key })).toThrow(
      "encryptionKey is only used with encryption 'kms'; remove encryptionKey or set encryption to 'kms'",
    );
  });

  it('reject a noncurrent version expiration shorter than a day', () => {
    const stack = new Stack(new App(), 'Bad');
    expect(() => new LandingBucket(stack, 'Landing', { noncurrentVersionExpiration: Duration.hours(12) })).toThrow(/noncurrentVersionExpiration must be a whole number of days, at least 1/);
  });
});
