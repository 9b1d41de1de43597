/**
 * The PostgreSQL (+ PostGIS) database: an RDS instance in the isolated subnets, encrypted, TLS
 * only, never public, with generated credentials in Secrets Manager rotated by the hosted
 * single-user rotation function.
 *
 * `allowConnectionsFrom(fn)` is the one way a function gets to the database: the security group
 * rule, read access to the credentials and `CIVIC_ETL_DB_SECRET_ARN`, together.
 */
import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { ENV } from '../contract/names.ts';
import { acknowledge } from './nag.ts';
import { definedProps } from './util.ts';

export interface DatabaseProps {
  /** The VPC; the database goes into `subnets`. */
  readonly vpc: ec2.IVpc;
  /**
   * Subnets of the database and of the rotation function.
   * @default { subnetType: PRIVATE_ISOLATED }
   */
  readonly subnets?: ec2.SubnetSelection;
  /**
   * Instance type.
   * @default t4g.small
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * Name of the database created on the instance.
   * @default 'civic_etl'
   */
  readonly databaseName?: string;
  /**
   * Refuse deletion of the instance. Turning it off is for disposable environments.
   * @default true
   */
  readonly deletionProtection?: boolean;
  /**
   * Keep a standby in a second availability zone.
   * @default false
   */
  readonly multiAz?: boolean;
  /**
   * How long automated backups are kept (1–35 days).
   * @default Duration.days(7)
   */
  readonly backupRetention?: Duration;
  /**
   * Initial storage, GiB.
   * @default 20
   */
  readonly allocatedStorageGiB?: number;
  /**
   * Storage autoscaling ceiling, GiB.
   * @default 100
   */
  readonly maxAllocatedStorageGiB?: number;
  /**
   * Days between rotations of the master password.
   * @default Duration.days(30)
   */
  readonly rotationInterval?: Duration;
  /**
   * Retention of the PostgreSQL logs exported to CloudWatch Logs.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
}

const defaults = {
  subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } as ec2.SubnetSelection,
  instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.SMALL),
  databaseName: 'civic_etl',
  deletionProtection: true,
  multiAz: false,
  backupRetention: Duration.days(7),
  allocatedStorageGiB: 20,
  maxAllocatedStorageGiB: 100,
  rotationInterval: Duration.days(30),
  logRetention: logs.RetentionDays.THREE_MONTHS,
};

/** PostgreSQL 16: the major version the migrations and PostGIS 3 are written for. */
export const POSTGRES_ENGINE = rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16 });

/** Stated, not left to the engine default, so security group rules carry a number, not a reference. */
export const POSTGRES_PORT = 5432;

/** The master user (`postgres` and `rdsadmin` are reserved on RDS). */
export const MASTER_USERNAME = 'civic_etl_admin';

export class Database extends Construct {
  public readonly instance: rds.DatabaseInstance;
  /** Generated master credentials: `host`, `port`, `username`, `password`, `dbname`. */
  public readonly secret: secretsmanager.ISecret;
  /** The database's own security group; ingress only from what `allowConnectionsFrom` names. */
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly parameterGroup: rds.ParameterGroup;
  public readonly rotation: secretsmanager.RotationSchedule;
  /** The hosted rotation function's network identity (it needs the Secrets Manager endpoint). */
  public readonly rotationConnections: ec2.IConnectable;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const p = { ...defaults, ...definedProps(props) };
    const where = `Database ${this.node.path}`;
    const backupDays = p.backupRetention.toDays({ integral: false });
    if (!Number.isInteger(backupDays) || backupDays < 1 || backupDays > 35) {
      throw new Error(`${where}: backupRetention must be a whole number of days from 1 to 35 (got ${p.backupRetention.toHumanString()})`);
    }
    if (p.maxAllocatedStorageGiB < p.allocatedStorageGiB) {
      throw new Error(`${where}: maxAllocatedStorageGiB (${p.maxAllocatedStorageGiB}) is below allocatedStorageGiB (${p.allocatedStorageGiB}); raise the ceiling or lower the initial size`);
    }
    if (p.allocatedStorageGiB < 20) throw new Error(`${where}: allocatedStorageGiB must be at least 20 (gp3 minimum); got ${p.allocatedStorageGiB}`);
    const rotationDays = p.rotationInterval.toDays({ integral: false });
    if (rotationDays < 1 || rotationDays > 1000) {
      throw new Error(`${where}: rotationInterval must be from 1 to 1000 days (got ${p.rotationInterval.toHumanString()})`);
    }

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: p.vpc,
      description: 'civic-etl database: PostgreSQL from the functions that load it',
      allowAllOutbound: false,
    });
    this.parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
      engine: POSTGRES_ENGINE,
      description: 'civic-etl PostgreSQL 16: TLS only',
      parameters: { 'rds.force_ssl': '1' },
    });
    this.instance = new rds.DatabaseInstance(this, 'Instance', {
      engine: POSTGRES_ENGINE,
      instanceType: p.instanceType,
      vpc: p.vpc,
      vpcSubnets: p.subnets,
      securityGroups: [this.securityGroup],
      publiclyAccessible: false,
      port: POSTGRES_PORT,
      multiAz: p.multiAz,
      databaseName: p.databaseName,
      credentials: rds.Credentials.fromGeneratedSecret(MASTER_USERNAME),
      parameterGroup: this.parameterGroup,
      storageType: rds.StorageType.GP3,
      allocatedStorage: p.allocatedStorageGiB,
      maxAllocatedStorage: p.maxAllocatedStorageGiB,
      storageEncrypted: true,
      caCertificate: rds.CaCertificate.RDS_CA_RSA2048_G1,
      iamAuthentication: true,
      backupRetention: p.backupRetention,
      deleteAutomatedBackups: false,
      copyTagsToSnapshot: true,
      deletionProtection: p.deletionProtection,
      autoMinorVersionUpgrade: true,
      allowMajorVersionUpgrade: false,
      cloudwatchLogsExports: ['postgresql', 'upgrade'],
      cloudwatchLogsRetention: p.logRetention,
    });
    this.secret = this.instance.secret ?? fail(`${where}: the instance has no generated secret`);

    const hostedRotation = secretsmanager.HostedRotation.postgreSqlSingleUser({ vpc: p.vpc, vpcSubnets: p.subnets });
    // No rotation right at creation: the generated password is new anyway, and a rotation racing
    // the first schema migration would fail the deploy.
    this.rotation = this.secret.addRotationSchedule('Rotation', {
      hostedRotation,
      automaticallyAfter: p.rotationInterval,
      rotateImmediatelyOnUpdate: false,
    });
    this.instance.connections.allowFrom(hostedRotation, ec2.Port.tcp(POSTGRES_PORT), 'password rotation');
    this.rotationConnections = hostedRotation;

    acknowledge(
      this.instance,
      'AwsSolutions-RDS11',
      'The instance is reachable only inside isolated subnets from named security groups; a non-default port adds no protection there and breaks the default port desktop clients (QGIS, Tableau) assume behind a tunnel.',
    );
    if (!p.multiAz) {
      acknowledge(
        this.instance,
        'AwsSolutions-RDS3',
        'Single-AZ by operator choice (civic-etl:dbMultiAz=false): the database is rebuildable from the versioned landing bucket and backed up daily; set civic-etl:dbMultiAz=true where downtime of a zone matters.',
      );
    }
    if (!p.deletionProtection) {
      acknowledge(this.instance, 'AwsSolutions-RDS10', 'Deletion protection turned off explicitly by the operator (civic-etl:deletionProtection=false) for a disposable environment; it is on by default.');
    }
  }

  /**
   * Let `fn` connect: allow its security groups into the database port, let it read the
   * credentials, and set `CIVIC_ETL_DB_SECRET_ARN`.
   */
  public allowConnectionsFrom(fn: lambda.Function, description: string = fn.node.path): void {
    if (!fn.isBoundToVpc) {
      throw new Error(`Database ${this.node.path}: ${fn.node.path} is not in a VPC; give it vpc and vpcSubnets before connecting it to the database`);
    }
    this.instance.connections.allowFrom(fn, ec2.Port.tcp(POSTGRES_PORT), description);
    this.secret.grantRead(fn);
    fn.addEnvironment(ENV.databaseSecretArn, this.secret.secretArn);
  }
}

function fail(message: string): never {
  throw new Error(message);
}
