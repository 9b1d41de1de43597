/**
 * The landing bucket: where every input arrives and stays, immutable and versioned.
 *
 *   incoming/<supplier>/<dataset>/…   supplier uploads (each supplier writes only the datasets it delivers)
 *   raw/<dataset>/<run>/…             fetched data and its manifest
 *   state/<dataset>/…                 fetcher state, never staged
 *   reports/<supplier>/<dataset>/…    quality reports of a supplier's uploads, readable by it alone
 *   curated/<project>/<view>/…        exports of views ("gold" files), written by the clean function
 *
 * Intent methods grant one principal one use of the bucket and, for functions, set
 * `CIVIC_ETL_BUCKET` in the same call.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import { ENV, STAGED_PREFIXES, ZONES } from '../contract/names.ts';
import { acknowledge, nagReference, wildcardResource } from './nag.ts';
import { definedProps } from './util.ts';

export type LandingEncryption = 'kms' | 's3-managed';

export interface LandingBucketProps {
  /**
   * How objects are encrypted at rest: a customer-managed KMS key (with S3 Bucket Keys, so KMS
   * is called once per bucket and key, not per object) or S3-managed keys.
   * @default 'kms'
   */
  readonly encryption?: LandingEncryption;
  /**
   * The KMS key to use; only with `encryption: 'kms'`.
   * @default - a new key with yearly rotation
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * How long a replaced or deleted object version is kept before it expires.
   * @default Duration.days(90)
   */
  readonly noncurrentVersionExpiration?: Duration;
  /**
   * Multipart uploads not completed within this period are aborted and their parts deleted.
   * @default Duration.days(7)
   */
  readonly abortIncompleteMultipartUploadAfter?: Duration;
  /**
   * How long server access logs are kept.
   * @default Duration.days(365)
   */
  readonly accessLogsExpiration?: Duration;
  /**
   * What happens to the buckets (and key) when they leave the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

const defaults = {
  encryption: 'kms' as LandingEncryption,
  noncurrentVersionExpiration: Duration.days(90),
  abortIncompleteMultipartUploadAfter: Duration.days(7),
  accessLogsExpiration: Duration.days(365),
  removalPolicy: RemovalPolicy.RETAIN,
};

/** S3 delivers server access logs with a bucket policy (not the legacy ACL) under this flag. */
const ACCESS_LOGS_BUCKET_POLICY_FLAG = '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy';

export class LandingBucket extends Construct {
  /** The landing bucket itself. */
  public readonly bucket: s3.Bucket;
  /** Receives the landing bucket's server access logs (SSE-S3: log delivery cannot use KMS). */
  public readonly accessLogsBucket: s3.Bucket;
  /** The KMS key of the landing bucket, when `encryption` is `'kms'`. */
  public readonly encryptionKey?: kms.IKey;

  constructor(scope: Construct, id: string, props: LandingBucketProps = {}) {
    super(scope, id);
    const p = { ...defaults, ...definedProps(props) };
    if (p.encryptionKey && p.encryption !== 'kms') {
      throw new Error(`LandingBucket ${this.node.path}: encryptionKey is only used with encryption 'kms'; remove encryptionKey or set encryption to 'kms'`);
    }
    for (const [name, value] of [
      ['noncurrentVersionExpiration', p.noncurrentVersionExpiration],
      ['abortIncompleteMultipartUploadAfter', p.abortIncompleteMultipartUploadAfter],
      ['accessLogsExpiration', p.accessLogsExpiration],
    ] as const) {
      if (value.toDays({ integral: false }) < 1 || !Number.isInteger(value.toDays({ integral: false }))) {
        throw new Error(`LandingBucket ${this.node.path}: ${name} must be a whole number of days, at least 1 (got ${value.toHumanString()})`);
      }
    }
    this.node.setContext(ACCESS_LOGS_BUCKET_POLICY_FLAG, true);

    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: false,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: p.accessLogsExpiration }],
      removalPolicy: p.removalPolicy,
    });
    acknowledge(
      this.accessLogsBucket,
      'AwsSolutions-S1',
      'This is the server access log target of the landing bucket; logging the log bucket into itself would loop, and a third bucket adds nothing a reviewer needs.',
    );

    this.encryptionKey =
      p.encryption === 'kms'
        ? (p.encryptionKey ??
          new kms.Key(this, 'Key', {
            description: `Encrypts the civic-etl landing bucket (${this.node.path})`,
            enableKeyRotation: true,
            removalPolicy: p.removalPolicy,
          }))
        : undefined;

    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...(this.encryptionKey ? { encryption: s3.BucketEncryption.KMS, encryptionKey: this.encryptionKey, bucketKeyEnabled: true } : { encryption: s3.BucketEncryption.S3_MANAGED }),
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'landing/',
      lifecycleRules: [
        {
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: p.noncurrentVersionExpiration,
          abortIncompleteMultipartUploadAfter: p.abortIncompleteMultipartUploadAfter,
        },
      ],
      removalPolicy: p.removalPolicy,
    });
    if (this.encryptionKey) this.requireLandingKey(this.encryptionKey);
  }

  /**
   * Supplier uploads (`incoming/`) must be encrypted with the landing key, or the stage step
   * cannot read them (it may decrypt with that key alone): an upload that names another KMS key,
   * another kind of encryption (SSE-S3, DSSE-KMS), or SSE-KMS without a key (which would be S3's
   * AWS-managed key, not the bucket's) is denied, whoever sends it. An upload that says nothing
   * of encryption gets the bucket's default, the landing key. A key is named by its ARN.
   */
  private requireLandingKey(key: kms.IKey): void {
    const uploads = { principals: [new iam.AnyPrincipal()], actions: ['s3:PutObject'], resources: [this.objectsArn(ZONES.incoming)] };
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyUploadsWithAnotherKmsKey',
        effect: iam.Effect.DENY,
        ...uploads,
        conditions: { StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption-aws-kms-key-id': key.keyArn } },
      }),
    );
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyUploadsWithAnotherEncryption',
        effect: iam.Effect.DENY,
        ...uploads,
        conditions: { StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption': 'aws:kms' } },
      }),
    );
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyUploadsWithKmsButNoKey',
        effect: iam.Effect.DENY,
        ...uploads,
        conditions: { Null: { 's3:x-amz-server-side-encryption': 'false', 's3:x-amz-server-side-encryption-aws-kms-key-id': 'true' } },
      }),
    );
  }

  /** ARN pattern of the objects under `prefix` (e.g. `incoming/acme/`). */
  public objectsArn(prefix: string): string {
    return this.bucket.arnForObjects(`${prefix}*`);
  }

  /**
   * Let a supplier upload into `incoming/<supplier>/<dataset>/` for each of `datasets` and nowhere
   * else: PutObject and the multipart calls, no read, no listing. With KMS, the key may be used
   * only through S3.
   *
   * With no datasets nothing is granted (no S3 right, no KMS right): the supplier's principal
   * exists but can write nothing until a dataset names it as its upload source.
   */
  public grantSupplierUpload(grantee: iam.IGrantable & IConstruct, supplier: string, datasets: readonly string[]): iam.Grant {
    this.checkGrantNames('supplier uploads', supplier, datasets);
    if (datasets.length === 0) return iam.Grant.drop(grantee, `upload for supplier ${supplier}, who delivers no dataset`);
    const prefixes = [...new Set(datasets)].map((dataset) => supplierDatasetPrefix(supplier, dataset));
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
      resourceArns: prefixes.map((prefix) => this.objectsArn(prefix)),
    });
    // Multipart uploads of SSE-KMS objects also need kms:Decrypt (S3 reads the parts back to
    // assemble them); without s3:GetObject the supplier still cannot read any object.
    this.grantKeyThroughS3(grantee, ['kms:GenerateDataKey', 'kms:Encrypt', 'kms:Decrypt']);
    for (const prefix of prefixes) {
      this.acknowledgeObjectWildcard(
        grantee,
        prefix,
        `Uploads create new keys under ${prefix}, the prefix of one dataset this supplier delivers; the names of future files cannot be listed in advance, and the wildcard is confined to that dataset's prefix.`,
      );
    }
    return grant;
  }

  /**
   * Let a supplier read the quality reports of its uploads: GetObject under
   * `reports/<supplier>/<dataset>/` for each of `datasets`, and ListBucket only for those prefixes
   * (so it can find its reports, and a missing one reads as NoSuchKey). Nothing else of the bucket
   * is readable. With KMS, the key may decrypt only through S3.
   *
   * With no datasets nothing is granted.
   */
  public grantSupplierReports(grantee: iam.IGrantable & IConstruct, supplier: string, datasets: readonly string[]): iam.Grant {
    this.checkGrantNames('supplier reports', supplier, datasets);
    if (datasets.length === 0) return iam.Grant.drop(grantee, `reports for supplier ${supplier}, who delivers no dataset`);
    const prefixes = [...new Set(datasets)].map((dataset) => supplierReportPrefix(supplier, dataset));
    const grant = iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject'], resourceArns: prefixes.map((prefix) => this.objectsArn(prefix)) });
    this.grantListUnder(grantee, ['s3:ListBucket'], prefixes);
    this.grantKeyThroughS3(grantee, ['kms:Decrypt']);
    for (const prefix of prefixes) {
      this.acknowledgeObjectWildcard(
        grantee,
        prefix,
        `The supplier reads the reports of its own uploads, one per uploaded file under ${prefix}; their names follow the uploads, and the wildcard is confined to that dataset's report prefix.`,
      );
    }
    return grant;
  }

  /**
   * Let a function write the quality reports of supplier uploads (`reports/`): PutObject only,
   * no read, no listing. The bucket comes from the ledger row of each load, so no environment.
   */
  public bindReporter(fn: lambda.Function): void {
    iam.Grant.addToPrincipal({ grantee: fn, actions: ['s3:PutObject'], resourceArns: [this.objectsArn(ZONES.reports)] });
    this.grantKeyThroughS3(fn, ['kms:GenerateDataKey']);
    this.acknowledgeObjectWildcard(fn, ZONES.reports, 'A report is written beside each supplier upload, reports/<supplier>/<dataset>/<file>.report.json; the wildcard is confined to reports/.');
  }

  /**
   * Let a function export views to `curated/<project>/` (functions/combine/exports.ts), and tell
   * it the bucket: PutObject and the multipart calls (files are streamed up in parts), no read,
   * no listing. With KMS, the key may be used only through S3 (multipart uploads need Decrypt).
   */
  public bindExporter(fn: lambda.Function, project: string): void {
    const prefix = `${ZONES.curated}${project}/`;
    iam.Grant.addToPrincipal({ grantee: fn, actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resourceArns: [this.objectsArn(prefix)] });
    this.grantKeyThroughS3(fn, ['kms:GenerateDataKey', 'kms:Decrypt']);
    this.acknowledgeObjectWildcard(fn, prefix, `Each export run writes new keys ${prefix}<view>/<run>/…, unknown until the run; the wildcard is confined to the project's curated prefix.`);
    fn.addEnvironment(ENV.bucket, this.bucket.bucketName);
  }

  /**
   * Let the fetch function write `raw/` and keep its state in `state/`, and tell it the bucket.
   * ListBucket, only for prefixes under `state/`, lets a missing state object
   * (`state/<dataset>/http.json`) read as NoSuchKey rather than AccessDenied; it cannot list
   * `incoming/` or `raw/`.
   */
  public bindFetcher(fn: lambda.Function): void {
    iam.Grant.addToPrincipal({
      grantee: fn,
      actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
      resourceArns: [this.objectsArn(ZONES.raw)],
    });
    iam.Grant.addToPrincipal({ grantee: fn, actions: ['s3:GetObject', 's3:PutObject'], resourceArns: [this.objectsArn(ZONES.state)] });
    this.grantListUnder(fn, ['s3:ListBucket'], [ZONES.state]);
    this.grantKeyThroughS3(fn, ['kms:GenerateDataKey', 'kms:Encrypt', 'kms:Decrypt']);
    this.acknowledgeObjectWildcard(fn, ZONES.raw, 'Each fetch run writes new keys raw/<dataset>/<run>/…, unknown until the run; the wildcard is confined to raw/.');
    this.acknowledgeObjectWildcard(fn, ZONES.state, 'Fetcher state is one object per dataset under state/; the wildcard is confined to state/.');
    fn.addEnvironment(ENV.bucket, this.bucket.bucketName);
  }

  /**
   * Let the stage function read (any version of) the objects it is notified about, and tell it
   * the bucket. ListBucket and ListBucketVersions, only for prefixes under the staged zones, let a
   * deleted object read as NoSuchKey rather than AccessDenied and let the function find an
   * object's version and its place in S3's version order of its key (ListObjectVersions with
   * Prefix = the key: functions/stage/object-order.ts); GetObjectVersion also covers HeadObject of
   * a version, which reads a fetched object's declaration (its user metadata).
   */
  public bindStager(fn: lambda.Function): void {
    iam.Grant.addToPrincipal({
      grantee: fn,
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resourceArns: STAGED_PREFIXES.map((prefix) => this.objectsArn(prefix)),
    });
    this.grantListUnder(fn, ['s3:ListBucket', 's3:ListBucketVersions'], STAGED_PREFIXES);
    this.grantKeyThroughS3(fn, ['kms:Decrypt']);
    for (const prefix of STAGED_PREFIXES) {
      this.acknowledgeObjectWildcard(fn, prefix, `The stage function reads whichever object under ${prefix} it is notified about; the wildcard is confined to the staged zone.`);
    }
    fn.addEnvironment(ENV.bucket, this.bucket.bucketName);
  }

  /** Send an ObjectCreated notification for every object under the staged prefixes to `queue`. */
  public notifyStagedObjects(queue: sqs.IQueue): void {
    const destination = new s3n.SqsDestination(queue);
    for (const prefix of STAGED_PREFIXES) {
      this.bucket.addEventNotification(s3.EventType.OBJECT_CREATED, destination, { prefix });
    }
  }

  /**
   * List actions on the bucket, allowed only when the request's prefix lies under one of
   * `prefixes` (`s3:prefix` like `state/*`); a listing of the whole bucket, or of another zone, is
   * refused.
   */
  private grantListUnder(grantee: iam.IGrantable, actions: string[], prefixes: readonly string[]): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions,
      resourceArns: [this.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': prefixes.map((prefix) => `${prefix}*`) } },
    });
  }

  /** Refuse a supplier or dataset name that is not letters, digits, '.', '-' and '_': a '/', '*' or '?' in it would reach into another prefix or widen the grant of `what`. */
  private checkGrantNames(what: string, supplier: string, datasets: readonly string[]): void {
    for (const name of [supplier, ...datasets]) {
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
        throw new Error(`LandingBucket ${this.node.path}: cannot grant ${what} under "${name}": supplier and dataset names must be letters, digits, '.', '-' and '_' (no '/', '*' or '?')`);
      }
    }
  }

  /** kms actions on the bucket key, usable only by S3 on the grantee's behalf. */
  private grantKeyThroughS3(grantee: iam.IGrantable, actions: string[]): void {
    if (!this.encryptionKey) return;
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions,
        resources: [this.encryptionKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
      }),
    );
  }

  private acknowledgeObjectWildcard(scope: IConstruct, prefix: string, reason: string): void {
    const resource = `${nagReference(this.bucket, 'Arn')}/${prefix}*`;
    acknowledge(scope, 'AwsSolutions-IAM5', reason, wildcardResource(resource));
  }
}

/** `incoming/<supplier>/`: where all of a supplier's uploads go (it writes only below its datasets' prefixes). */
export function supplierPrefix(supplier: string): string {
  return `${ZONES.incoming}${supplier}/`;
}

/** `incoming/<supplier>/<dataset>/`: where a supplier uploads the files of one dataset it delivers. */
export function supplierDatasetPrefix(supplier: string, dataset: string): string {
  return `${supplierPrefix(supplier)}${dataset}/`;
}

/** `reports/<supplier>/<dataset>/`: where the quality reports of those uploads are written back (functions/common/report.ts). */
export function supplierReportPrefix(supplier: string, dataset: string): string {
  return `${ZONES.reports}${supplier}/${dataset}/`;
}
