/**
 * Shared by the infrastructure tests: synthesize the stack for a fixture definition.
 *
 * The functions' handlers are a stand-in (test/infra/fixtures/handlers), so these tests check the
 * wiring without depending on runtime code under edit; `app.test.ts` runs the real app, with the
 * real handlers, end to end. esbuild bundles the handlers only for a test that reads the bundles
 * (`bundle: true`); otherwise CDK's own switch (context `aws:cdk:bundling-stacks`, as
 * the CDK CLI sets to bundle only the stacks it deploys) leaves each function's code unbundled,
 * which changes nothing in the template but the asset hash.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, CfnElement, Stack } from 'aws-cdk-lib';
import { BUNDLING_STACKS } from 'aws-cdk-lib/cx-api';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { loadPipeline } from '../../contract/load.ts';
import { CivicEtlStack } from '../../lib/civic-etl-stack.ts';
import type { OperationalSettings } from '../../lib/settings.ts';
import { stackNameFor } from '../../lib/stack-name.ts';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const FIXTURE_PIPELINE = join(FIXTURES, 'pipeline.yaml');
export const FIXTURE_HANDLER = join(FIXTURES, 'handlers', 'handler.ts');
export const FIXTURE_MIGRATIONS = join(FIXTURES, 'migrations.ts');

/** Bundling and synthesis take seconds: give hooks that synthesize room. */
export const SYNTH_TIMEOUT = 180_000;

export interface FixtureOptions {
  readonly pipelineFile?: string;
  readonly settings?: Partial<OperationalSettings>;
  /** Bundle the handlers with esbuild, for a test that reads the bundles. @default false */
  readonly bundle?: boolean;
}

export interface Fixture {
  readonly app: App;
  readonly stack: CivicEtlStack;
  readonly template: Template;
}

/** The stack of a fixture definition, synthesized once. */
export function synthFixture(options: FixtureOptions = {}): Fixture {
  // no stack matches the empty list: nothing is bundled
  const app = new App(options.bundle ? {} : { context: { [BUNDLING_STACKS]: [] } });
  const pipeline = loadPipeline(options.pipelineFile ?? FIXTURE_PIPELINE);
  const stack = new CivicEtlStack(app, stackNameFor(pipeline.project), {
    pipeline,
    settings: options.settings,
    handlers: { fetch: FIXTURE_HANDLER, stage: FIXTURE_HANDLER, clean: FIXTURE_HANDLER, migrate: FIXTURE_HANDLER },
    migrationsFile: FIXTURE_MIGRATIONS,
  });
  return { app, stack, template: Template.fromStack(stack) };
}

/** The logical id CloudFormation knows a construct (or its default resource) by. */
export function logicalId(construct: IConstruct): string {
  const element = construct instanceof CfnElement ? construct : (construct.node.defaultChild as CfnElement | undefined);
  if (!element) throw new Error(`${construct.node.path} has no CloudFormation element`);
  return Stack.of(element).resolve(element.logicalId) as string;
}

export interface Statement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, unknown>;
  Principal?: unknown;
}

/** Every statement of the inline policies attached to a role or user (by logical id). */
export function statementsOf(template: Template, attachment: { Roles?: unknown; Users?: unknown }): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy', { Properties: attachment });
  return Object.values(policies).flatMap((p) => (p as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties.PolicyDocument.Statement);
}

export function actionsOf(statements: readonly Statement[]): string[] {
  return statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
}

/** The statements of the inline policies on `fn`'s role that let it read secrets (`secretsmanager:GetSecretValue`). */
export function secretStatementsOf(template: Template, fn: { function: { role?: IConstruct } }): Statement[] {
  const statements = statementsOf(template, { Roles: [{ Ref: logicalId(fn.function.role!.node.defaultChild!) }] });
  return statements.filter((s) => actionsOf([s]).includes('secretsmanager:GetSecretValue'));
}

/** `{ "Fn::Join": ["", [{ "Fn::GetAtt": [bucket, "Arn"] }, "/incoming/acme/*"]] }` */
export function objectsArn(bucketLogicalId: string, pattern: string): unknown {
  return { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketLogicalId, 'Arn'] }, `/${pattern}`]] };
}
