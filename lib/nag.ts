/**
 * cdk-nag acknowledgements (cdk-nag 3: CDK's own `Validations.of(scope).acknowledge`).
 *
 * Every acknowledgement names one rule — or one finding of a rule, `AwsSolutions-IAM5[Resource::…]` —
 * on the narrowest construct that carries it, with a reason a reviewer can check.
 */
import { CfnResource, Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** Acknowledge `rule` (optionally one `finding` of it) on `scope` and everything below it. */
export function acknowledge(scope: IConstruct, rule: string, reason: string, finding?: string): void {
  Validations.of(scope).acknowledge({ id: finding ? `${rule}[${finding}]` : rule, reason });
}

/**
 * How cdk-nag writes a CloudFormation reference inside a finding: `<LogicalId.Attribute>` for
 * `Fn::GetAtt`, `<LogicalId>` for `Ref`. Used to acknowledge one wildcard resource exactly.
 */
export function nagReference(resource: IConstruct, attribute?: string): string {
  const cfn = CfnResource.isCfnResource(resource) ? resource : (resource.node.defaultChild as CfnResource | undefined);
  if (!cfn || !CfnResource.isCfnResource(cfn)) throw new Error(`${resource.node.path} has no CloudFormation resource to reference`);
  const logicalId = Stack.of(cfn).resolve(cfn.logicalId) as string;
  return attribute ? `<${logicalId}.${attribute}>` : `<${logicalId}>`;
}

/** The IAM5 finding id of a wildcard resource: `Resource::<Bucket.Arn>/raw/*`. */
export function wildcardResource(resource: string): string {
  return `Resource::${resource}`;
}

/** The IAM4 finding id of an AWS managed policy attached to a role. */
export function managedPolicy(name: string): string {
  return `Policy::arn:<AWS::Partition>:iam::aws:policy/${name}`;
}
