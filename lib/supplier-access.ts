/**
 * One supplier's way into the landing bucket: its own principal, allowed to upload into
 * `incoming/<supplier>/<dataset>/` for exactly the datasets whose source is an upload by this
 * supplier in the pipeline definition, and nothing else. A supplier no dataset names yet gets its
 * principal (so credentials can be handed over ahead of time) but no right to write anything.
 * It may read (and list) the quality reports of its own uploads, `reports/<supplier>/<dataset>/`,
 * for the same datasets, and nothing else of the bucket.
 *
 * - With `assumedBy`, an IAM role the supplier's own AWS principal assumes, presenting the
 *   agreed external id (no long-lived secret changes hands).
 * - Without it, an IAM user whose access key is kept in a Secrets Manager secret, to be handed
 *   to the supplier out of band.
 */
import { SecretValue } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { DatasetDefinition, SupplierDefinition } from '../contract/definition.ts';
import { supplierDatasetPrefix, supplierReportPrefix, type LandingBucket } from './landing-bucket.ts';
import { acknowledge } from './nag.ts';

export interface SupplierAccessProps {
  /** The supplier as declared in the pipeline definition. */
  readonly supplier: SupplierDefinition;
  /** The bucket the supplier uploads into. */
  readonly landing: LandingBucket;
  /**
   * The pipeline's datasets. The supplier may upload for each one whose source is
   * `{ type: 'upload', supplier: <this supplier> }`, and for no other.
   */
  readonly datasets: readonly DatasetDefinition[];
  /**
   * Name of the secret holding the access key (suppliers without `assumedBy`), e.g.
   * `civic-etl/<project>/suppliers/<supplier>`: what the operator looks up to hand it over.
   * @default - a name CloudFormation generates
   */
  readonly credentialsSecretName?: string;
}

export class SupplierAccess extends Construct {
  /** The supplier's name, as in the definition and in its prefixes. */
  public readonly supplierName: string;
  /** The datasets this supplier delivers (upload sources naming it), in definition order. */
  public readonly datasets: readonly string[];
  /** `incoming/<supplier>/<dataset>/` for each of `datasets`: the only prefixes this supplier can write. */
  public readonly uploadPrefixes: readonly string[];
  /** `reports/<supplier>/<dataset>/` for each of `datasets`: the only prefixes this supplier can read and list. */
  public readonly reportPrefixes: readonly string[];
  /** The principal that uploads: the role or the user. */
  public readonly principal: iam.IPrincipal;
  /** The upload role, when the supplier assumes one (`assumedBy`). */
  public readonly role?: iam.Role;
  /** The upload user, when the supplier has no AWS principal of its own. */
  public readonly user?: iam.User;
  /** The secret holding the user's access key (`accessKeyId`, `secretAccessKey`). */
  public readonly credentials?: secretsmanager.Secret;
  /** The name of `credentials`: what the operator looks up to hand the key over. */
  public readonly credentialsSecretName?: string;

  constructor(scope: Construct, id: string, props: SupplierAccessProps) {
    super(scope, id);
    const { supplier, landing } = props;
    if (supplier.assumedBy && !supplier.externalId) {
      throw new Error(`supplier "${supplier.name}": assumedBy is set without externalId; agree an external id with the supplier and add it as externalId`);
    }
    if (supplier.externalId && !supplier.assumedBy) {
      throw new Error(`supplier "${supplier.name}": externalId is only used with assumedBy; add the supplier's principal ARN as assumedBy or remove externalId`);
    }
    if (props.credentialsSecretName && supplier.assumedBy) {
      throw new Error(`supplier "${supplier.name}": credentialsSecretName is only used for suppliers without assumedBy (a role needs no stored key); remove credentialsSecretName`);
    }
    this.supplierName = supplier.name;
    // A supplier no dataset names yet still gets its principal, but with no S3 write right (and no
    // KMS right): grantSupplierUpload grants nothing for an empty list.
    this.datasets = datasetsDeliveredBy(supplier.name, props.datasets);
    this.uploadPrefixes = this.datasets.map((dataset) => supplierDatasetPrefix(supplier.name, dataset));
    this.reportPrefixes = this.datasets.map((dataset) => supplierReportPrefix(supplier.name, dataset));
    const uploads = describeUploads(supplier.name, this.uploadPrefixes);

    if (supplier.assumedBy && supplier.externalId) {
      this.role = new iam.Role(this, 'UploadRole', {
        description: `civic-etl supplier ${supplier.name}: ${uploads}`,
        assumedBy: new iam.ArnPrincipal(supplier.assumedBy),
        externalIds: [supplier.externalId],
      });
      this.principal = this.role;
      landing.grantSupplierUpload(this.role, supplier.name, this.datasets);
      landing.grantSupplierReports(this.role, supplier.name, this.datasets);
    } else {
      this.user = new iam.User(this, 'UploadUser');
      const key = new iam.AccessKey(this, 'AccessKey', { user: this.user });
      this.credentials = new secretsmanager.Secret(this, 'Credentials', {
        secretName: props.credentialsSecretName,
        description: `civic-etl supplier ${supplier.name}: access key of the upload user (${uploads})`,
        secretObjectValue: {
          accessKeyId: SecretValue.unsafePlainText(key.accessKeyId),
          secretAccessKey: key.secretAccessKey,
        },
      });
      this.credentialsSecretName = props.credentialsSecretName ?? this.credentials.secretName;
      acknowledge(
        this.credentials,
        'AwsSolutions-SMG4',
        'The secret stores an IAM access key handed to an external supplier; rotating it needs the supplier to switch keys, so it is a runbook step (create a second key, hand it over, delete the first), not an automatic rotation. Suppliers with an AWS account should use assumedBy instead.',
      );
      this.principal = this.user;
      landing.grantSupplierUpload(this.user, supplier.name, this.datasets);
      landing.grantSupplierReports(this.user, supplier.name, this.datasets);
    }
  }
}

/** Names of the datasets whose source is an upload by `supplier`. */
export function datasetsDeliveredBy(supplier: string, datasets: readonly DatasetDefinition[]): string[] {
  return datasets.filter((d) => d.source.type === 'upload' && d.source.supplier === supplier).map((d) => d.name);
}

/** Most prefixes listed by name in a description; IAM role descriptions stop at 1000 characters. */
const LISTED_PREFIXES = 5;

/**
 * What a supplier may upload, for descriptions: `uploads into incoming/acme/permits/`, several
 * prefixes separated by commas, a count beyond a few, or that it can upload nothing yet.
 */
export function describeUploads(supplier: string, prefixes: readonly string[]): string {
  if (prefixes.length === 0) return 'delivers no dataset yet, so it can upload nothing';
  if (prefixes.length <= LISTED_PREFIXES) return `uploads into ${prefixes.join(', ')}`;
  return `uploads into ${supplierDatasetPrefix(supplier, '<dataset>')} for its ${prefixes.length} datasets (see the pipeline definition)`;
}
