/**
 * One supplier's way into the landing bucket: its own principal, allowed to upload into
 * `incoming/<supplier>/` and nothing else.
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
import type { SupplierDefinition } from '../contract/definition.ts';
import { supplierPrefix, type LandingBucket } from './landing-bucket.ts';
import { acknowledge } from './nag.ts';

export interface SupplierAccessProps {
  /** The supplier as declared in the pipeline definition. */
  readonly supplier: SupplierDefinition;
  /** The bucket the supplier uploads into. */
  readonly landing: LandingBucket;
  /**
   * Name of the secret holding the access key (suppliers without `assumedBy`), e.g.
   * `civic-etl/<project>/suppliers/<supplier>`: what the operator looks up to hand it over.
   * @default - a name CloudFormation generates
   */
  readonly credentialsSecretName?: string;
}

export class SupplierAccess extends Construct {
  /** The supplier's name, as in the definition and in its prefix. */
  public readonly supplierName: string;
  /** `incoming/<supplier>/`: the only prefix this supplier can write. */
  public readonly uploadPrefix: string;
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
      throw new Error(
        `supplier "${supplier.name}": assumedBy is set without externalId; agree an external id with the supplier and add it as externalId`,
      );
    }
    if (supplier.externalId && !supplier.assumedBy) {
      throw new Error(
        `supplier "${supplier.name}": externalId is only used with assumedBy; add the supplier's principal ARN as assumedBy or remove externalId`,
      );
    }
    if (props.credentialsSecretName && supplier.assumedBy) {
      throw new Error(
        `supplier "${supplier.name}": credentialsSecretName is only used for suppliers without assumedBy (a role needs no stored key); remove credentialsSecretName`,
      );
    }
    this.supplierName = supplier.name;
    this.uploadPrefix = supplierPrefix(supplier.name);

    if (supplier.assumedBy && supplier.externalId) {
      this.role = new iam.Role(this, 'UploadRole', {
        description: `civic-etl supplier ${supplier.name}: uploads into ${this.uploadPrefix}`,
        assumedBy: new iam.ArnPrincipal(supplier.assumedBy),
        externalIds: [supplier.externalId],
      });
      this.principal = this.role;
      landing.grantSupplierUpload(this.role, supplier.name);
    } else {
      this.user = new iam.User(this, 'UploadUser');
      const key = new iam.AccessKey(this, 'AccessKey', { user: this.user });
      this.credentials = new secretsmanager.Secret(this, 'Credentials', {
        secretName: props.credentialsSecretName,
        description: `civic-etl supplier ${supplier.name}: access key of the upload user (uploads into ${this.uploadPrefix})`,
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
      landing.grantSupplierUpload(this.user, supplier.name);
    }
  }
}
