/**
 * cdk-nag's AwsSolutions pack over the whole stack. cdk-nag 3 is a policy-validation plugin:
 * `validateScope` runs the same rules `cdk synth` runs, and honours the acknowledgements made
 * with `Validations.of(…).acknowledge(…)` in lib/.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Annotations } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

function findings(stack: Stack): string[] {
  const report = new AwsSolutionsChecks().validateScope(stack);
  return report.violations.map((v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
}

/** Acknowledgements recorded in the construct tree: rule id → reason. */
function acknowledgements(stack: Stack): Array<{ id: string; reason: string }> {
  return stack.node
    .findAll()
    .flatMap((c) => c.node.metadata)
    .filter((m) => m.type === 'aws:cdk:acknowledged-rules')
    .flatMap((m) => Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({ id: id.replace(/^annotation::/i, ''), reason })));
}

describe('cdk-nag AwsSolutions', () => {
  let f: Fixture;
  beforeAll(() => {
    f = synthFixture();
  }, SYNTH_TIMEOUT);

  it('finds nothing unacknowledged in the default stack', () => {
    expect(findings(f.stack)).toEqual([]);
  });

  it(
    'finds nothing unacknowledged with S3-managed encryption, multi-AZ and deletion protection off',
    () => {
      const other = synthFixture({ settings: { bucketEncryption: 's3-managed', dbMultiAz: true, deletionProtection: false } });
      expect(findings(other.stack)).toEqual([]);
    },
    SYNTH_TIMEOUT,
  );

  it('leaves no CDK warning or error annotation on the stack', () => {
    const { stack } = f;
    expect(
      Annotations.fromStack(stack)
        .findWarning('*', {})
        .map((w) => `${w.id}: ${String(w.entry.data)}`),
    ).toEqual([]);
    expect(
      Annotations.fromStack(stack)
        .findError('*', {})
        .map((e) => `${e.id}: ${String(e.entry.data)}`),
    ).toEqual([]);
  });

  it('acknowledges only named rules, each with a reason a reviewer can weigh', () => {
    // (aws-cdk-lib acknowledges a few CloudFormation-Validate rules of its own; those are not ours.)
    const acks = acknowledgements(f.stack).filter((a) => !a.id.startsWith('CloudFormation-Validate::'));
    expect(acks.length).toBeGreaterThan(0);
    for (const { id, reason } of acks) {
      expect(id).toMatch(/^AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
      expect(reason.length).toBeGreaterThan(60);
    }
    // Wildcards are acknowledged one finding at a time, never for a whole rule.
    expect(acks.filter((a) => a.id === 'AwsSolutions-IAM5')).toEqual([]);
    expect(acks.filter((a) => a.id === 'AwsSolutions-IAM4')).toEqual([]);
  });

  it('does report what is not acknowledged (the check is live)', () => {
    const stack = new Stack(new App(), 'Unchecked');
    new s3.Bucket(stack, 'Bare');
    const rules = new AwsSolutionsChecks().validateScope(stack).violations.map((v) => v.ruleName);
    expect(rules).toEqual(expect.arrayContaining(['AwsSolutions-S1', 'AwsSolutions-S10']));
  });
});
