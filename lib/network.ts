/**
 * The private network of the database and of the functions that talk to it: isolated subnets
 * only (no NAT, no internet route), reaching S3 through a gateway endpoint and SQS and Secrets
 * Manager through interface endpoints. The fetch function, which needs the internet, stays out.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { definedProps } from './util.ts';

export interface NetworkProps {
  /**
   * Address range of the VPC.
   * @default '10.40.0.0/16'
   */
  readonly cidr?: string;
  /**
   * Availability zones (at least 2: the database subnet group needs two).
   * @default 2
   */
  readonly maxAzs?: number;
  /**
   * Retention of the VPC flow logs.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly flowLogRetention?: logs.RetentionDays;
}

const defaults = {
  cidr: '10.40.0.0/16',
  maxAzs: 2,
  flowLogRetention: logs.RetentionDays.THREE_MONTHS,
};

export class Network extends Construct {
  public readonly vpc: ec2.Vpc;
  /** The isolated subnets, where the database and the in-VPC functions live. */
  public readonly subnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
  public readonly s3Endpoint: ec2.GatewayVpcEndpoint;
  public readonly sqsEndpoint: ec2.InterfaceVpcEndpoint;
  public readonly secretsManagerEndpoint: ec2.InterfaceVpcEndpoint;
  public readonly flowLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: NetworkProps = {}) {
    super(scope, id);
    const p = { ...defaults, ...definedProps(props) };
    if (!Number.isInteger(p.maxAzs) || p.maxAzs < 2) {
      throw new Error(`Network ${this.node.path}: maxAzs must be at least 2 (the database needs subnets in two zones); got ${p.maxAzs}`);
    }

    this.flowLogGroup = new logs.LogGroup(this, 'FlowLogs', { retention: p.flowLogRetention });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(p.cidr),
      maxAzs: p.maxAzs,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      restrictDefaultSecurityGroup: true,
      flowLogs: {
        all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(this.flowLogGroup), trafficType: ec2.FlowLogTrafficType.ALL },
      },
    });
    this.s3Endpoint = this.vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3, subnets: [this.subnets] });
    // Closed by default: only what `allowEndpointsFrom` names may reach them.
    this.sqsEndpoint = this.vpc.addInterfaceEndpoint('Sqs', {
      service: ec2.InterfaceVpcEndpointAwsService.SQS,
      subnets: this.subnets,
      privateDnsEnabled: true,
      open: false,
    });
    this.secretsManagerEndpoint = this.vpc.addInterfaceEndpoint('SecretsManager', {
      service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      subnets: this.subnets,
      privateDnsEnabled: true,
      open: false,
    });
  }

  /** Let `peer` (an in-VPC function, the rotation function) reach the interface endpoints over HTTPS. */
  public allowEndpointsFrom(peer: ec2.IConnectable, description: string): void {
    for (const endpoint of [this.sqsEndpoint, this.secretsManagerEndpoint]) {
      endpoint.connections.allowDefaultPortFrom(peer, description);
    }
  }
}
