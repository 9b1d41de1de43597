/**
 * Operational settings of a deployment: what an operator tunes per environment without touching
 * the pipeline definition (database size, deletion protection, alarm e-mail, retention…).
 *
 * They come from CDK context (`cdk.json` or `cdk synth -c civic-etl:<name>=<value>`); values given
 * on the command line arrive as strings, so each one is parsed and checked here, and a bad value
 * fails synth with the context key and what to write instead.
 */
import type { Node } from 'constructs';
import { z } from 'zod';

/** Context key of the pipeline definition file (path relative to the working directory). */
export const PIPELINE_CONTEXT_KEY = 'civic-etl:pipeline';
/** Where the pipeline definition is read from when the context does not say. */
export const DEFAULT_PIPELINE_FILE = 'pipelines/chicago/pipeline.yaml';

/** Prefix of every operational context key: `civic-etl:deletionProtection`, … */
export const SETTINGS_CONTEXT_PREFIX = 'civic-etl:';

/** Retention periods CloudWatch Logs accepts, in days. */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

/** A setting that does not validate; the message names the context key and what is expected. */
export class SettingsError extends Error {
  override name = 'SettingsError';
}

const bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')], {
  error: 'must be true or false',
});
const int = (min: number, max: number) =>
  z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)], { error: 'must be a whole number' }).pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

/** The settings, their defaults and their checks: the one place each is written (cdk.json sets only what a deployment changes). */
const settingsSchema = z.strictObject({
  /** Protect the database instance against deletion (CloudFormation and console). */
  deletionProtection: bool.default(true),
  /** E-mail address subscribed to the alarm topic (the subscription must be confirmed); without it, subscribe to the `AlarmTopicArn` output yourself. */
  alarmEmail: z.email('must be an e-mail address').optional(),
  /** RDS instance type without the `db.` prefix, e.g. `t4g.small`, `m7g.large`. */
  dbInstanceType: z
    .string()
    .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'must look like t4g.small (no db. prefix)')
    .default('t4g.small'),
  /** Initial storage of the database, GiB. */
  dbAllocatedStorageGiB: int(20, 65536).default(20),
  /** Storage autoscaling ceiling, GiB (at least `dbAllocatedStorageGiB`). */
  dbMaxAllocatedStorageGiB: int(20, 65536).default(100),
  /** Run the database in two availability zones (standby replica). */
  dbMultiAz: bool.default(false),
  /** Days of automated backups (1–35). */
  dbBackupRetentionDays: int(1, 35).default(7),
  /** Encryption of the landing bucket: a customer-managed KMS key, or S3-managed keys (SSE-S3). */
  bucketEncryption: z.enum(['kms', 's3-managed'], 'must be kms or s3-managed').default('kms'),
  /** Days a replaced or deleted object version is kept in the landing bucket before it expires. */
  noncurrentVersionExpirationDays: int(1, 36500).default(90),
  /** Retention of every log group the stack creates, days (a CloudWatch Logs retention value). */
  logRetentionDays: int(1, 3653)
    .refine((d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d), {
      message: `must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
    })
    .default(90),
  /** Receives of a message before it moves to its queue's dead-letter queue. */
  maxReceiveCount: int(1, 1000).default(5),
  /** Alarm when the oldest message of a work queue is older than this, minutes. */
  queueAgeAlarmMinutes: int(1, 20160).default(60),
  /**
   * Apply the schema migrations (idempotent) on every deploy. With false they run only when the
   * migrations file, the project, the database instance's endpoint (a replaced or restored
   * instance) or `migrationNonce` changes, and deploying an unchanged app changes nothing.
   */
  migrateOnEveryDeploy: bool.default(true),
  /**
   * Any value: changing it re-runs the schema migrations on the next deploy even when nothing
   * else did (only needed with `migrateOnEveryDeploy` false).
   */
  migrationNonce: z.string().min(1).optional(),
});

/** The operational settings of a deployment, as the schema above gives them (its type, not written twice). */
export type OperationalSettings = Readonly<z.output<typeof settingsSchema>>;

/** Every setting at its default: what a deployment gets when its context says nothing. */
export const DEFAULT_SETTINGS: OperationalSettings = settingsSchema.parse({});

/**
 * Merge `overrides` over the defaults and validate the result.
 *
 * @example
 *   resolveSettings({ deletionProtection: 'false', dbInstanceType: 'm7g.large' });
 */
export function resolveSettings(overrides: Readonly<Record<string, unknown>> = {}): OperationalSettings {
  const result = settingsSchema.safeParse(withoutUndefined(overrides));
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const key = issue.path.length ? `${SETTINGS_CONTEXT_PREFIX}${issue.path.join('.')}` : '(settings)';
      const hint = issue.code === 'unrecognized_keys' ? `; known settings: ${Object.keys(settingsSchema.shape).join(', ')}` : '';
      return `${key}: ${issue.message}${hint}`;
    });
    throw new SettingsError(`invalid operational settings:\n  - ${problems.join('\n  - ')}`);
  }
  const settings = result.data;
  if (settings.dbMaxAllocatedStorageGiB < settings.dbAllocatedStorageGiB) {
    throw new SettingsError(
      `invalid operational settings:\n  - ${SETTINGS_CONTEXT_PREFIX}dbMaxAllocatedStorageGiB (${settings.dbMaxAllocatedStorageGiB}) ` +
        `must be at least ${SETTINGS_CONTEXT_PREFIX}dbAllocatedStorageGiB (${settings.dbAllocatedStorageGiB}): raise the ceiling or lower the initial size`,
    );
  }
  return settings;
}

/**
 * The settings given as context (`civic-etl:<name>`), validated and merged over the defaults.
 * Unknown `civic-etl:` keys are rejected, so a typo does not silently keep a default.
 */
export function settingsFromContext(node: Node): OperationalSettings {
  const overrides: Record<string, unknown> = {};
  const all = node.getAllContext() as Record<string, unknown>;
  for (const [key, value] of Object.entries(all)) {
    if (!key.startsWith(SETTINGS_CONTEXT_PREFIX) || key === PIPELINE_CONTEXT_KEY) continue;
    overrides[key.slice(SETTINGS_CONTEXT_PREFIX.length)] = value;
  }
  return resolveSettings(overrides);
}

/** The pipeline definition file named by the context, or the default one. */
export function pipelineFileFromContext(node: Node): string {
  const value: unknown = node.tryGetContext(PIPELINE_CONTEXT_KEY);
  if (value === undefined || value === null || value === '') return DEFAULT_PIPELINE_FILE;
  if (typeof value !== 'string') throw new SettingsError(`${PIPELINE_CONTEXT_KEY}: must be a file path`);
  return value;
}

function withoutUndefined(o: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
