/**
 * The configuration of each Lambda function: its environment, as a zod schema, parsed once when
 * the function starts (functions/<step>/handler.ts). A missing or invalid variable fails the
 * start with its name; the defaults live here and nowhere else (the stack sets only what differs
 * per deployment: test/infra/config-drift.test.ts parses the synthesized environment with these
 * schemas). The local runner and the tests build the same configuration objects without touching
 * `process.env` (local/pipeline.ts).
 *
 * Powertools reads its own variables (`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_LOG_LEVEL`,
 * `POWERTOOLS_METRICS_NAMESPACE`, `POWERTOOLS_METRICS_DISABLED`) and the AWS SDK its own
 * (`AWS_REGION`, `AWS_ENDPOINT_URL`…): they are not repeated here.
 */
import { availableParallelism } from 'node:os';
import * as z from 'zod/mini';
import '../../contract/zod-mini.ts';
import { BUNDLED_PIPELINE_FILE, ENV } from '../../contract/names.ts';
import { ConfigurationError } from './errors.ts';

/** Files larger than this are staged in parts of about this size, when the stage queue is known. */
export const DEFAULT_PART_BYTES = 1024 ** 3;
/** Database connections per function container, unless `CIVIC_ETL_DB_POOL_SIZE` says otherwise. */
export const DEFAULT_DB_POOL_SIZE = 4;

const required = (what: string) => z.string({ error: (issue) => (issue.input === undefined ? 'is not set' : `must be ${what}`) });
const optional = (what: string) => z.optional(z.string({ error: `must be ${what}` }));
const count = (what: string) => z.pipe(z.string().check(z.regex(/^\s*[1-9][0-9]*\s*$/, { error: (issue) => `must be ${what}, got "${String(issue.input)}"` })), z.transform(Number));

/** Every function: the pipeline definition it serves. */
const pipelineShape = {
  /** Path of the validated pipeline definition, relative to the working directory or (in Lambda) to the bundle. */
  [ENV.pipelineFile]: z._default(z.string(), BUNDLED_PIPELINE_FILE),
  /** The SHA-256 of the definition `cdk synth` validated: a file of those bytes is not validated again (functions/common/pipeline.ts). */
  [ENV.pipelineSha256]: z.optional(z.string().check(z.regex(/^\s*[0-9a-fA-F]{64}\s*$/, { error: 'must be a SHA-256 in hexadecimal (64 digits)' }))),
};

/** The functions that reach the database (stage, clean, migrate). */
const dbShape = {
  /** A connection string; wins over the secret (local runs, the CLI). */
  [ENV.databaseUrl]: optional('a connection string'),
  /** The RDS-generated secret (`host`, `port`, `username`, `password`, `dbname`), read over TLS. */
  [ENV.databaseSecretArn]: optional('a secret ARN'),
  /** Connections per function container. */
  [ENV.dbPoolSize]: z._default(count('a whole number of connections, at least 1'), DEFAULT_DB_POOL_SIZE),
  /** `disable`: connect without TLS to the database named by the secret (a database on loopback). */
  PGSSLMODE: optional('a libpq sslmode'),
};

/** The queue's maxReceiveCount (SQS steps): "attempt n of N" in logs and ledger, and which attempt is the last. */
const receivesShape = {
  [ENV.maxReceives]: z.optional(count('a whole number of receives, at least 1')),
};

type DbEnv = z.infer<z.ZodMiniObject<typeof dbShape>>;

function dbOf(env: DbEnv) {
  return {
    url: env[ENV.databaseUrl],
    secretArn: env[ENV.databaseSecretArn],
    poolSize: env[ENV.dbPoolSize],
    /** TLS to the database named by the secret, unless `PGSSLMODE=disable`. */
    tls: env.PGSSLMODE !== 'disable',
  };
}

function requireDatabase<T extends DbEnv>(env: T, ctx: z.core.$RefinementCtx<T>): void {
  if (!env[ENV.databaseUrl] && !env[ENV.databaseSecretArn]) {
    ctx.addIssue({ code: 'custom', path: [], message: `set ${ENV.databaseUrl} or ${ENV.databaseSecretArn} to reach the database` });
  }
}

/**
 * A function's environment: its variables (`shape`), a check across them, and the configuration
 * they give (`make`). Its `def.in` is the object of variables (test/infra/config-drift.test.ts).
 */
function environment<Shape extends z.core.$ZodLooseShape, Out>(
  shape: Shape,
  make: (env: z.output<z.ZodMiniObject<Shape>>) => Out,
  check?: (env: z.output<z.ZodMiniObject<Shape>>, ctx: z.core.$RefinementCtx<z.output<z.ZodMiniObject<Shape>>>) => void,
) {
  const variables = z.object(shape);
  return z.pipe(check ? variables.check(z.superRefine(check)) : variables, z.transform(make));
}

/** The database connection: `DATABASE_URL`, or the secret `CIVIC_ETL_DB_SECRET_ARN`. */
export const dbEnv = environment(dbShape, dbOf, requireDatabase);

/** get (the fetch function): where fetched files go. */
export const fetchEnv = environment({ ...pipelineShape, [ENV.bucket]: required('a bucket name') }, (env) => ({
  pipelineFile: env[ENV.pipelineFile],
  pipelineSha256: env[ENV.pipelineSha256],
  bucket: env[ENV.bucket],
}));

/** stage: the queue it hands loads to, and (for files staged in parts) its own queue. */
export const stageEnv = environment(
  {
    ...pipelineShape,
    ...dbShape,
    ...receivesShape,
    [ENV.cleanQueueUrl]: required('a queue URL'),
    /** Without it every file is staged whole by the invocation that received it. */
    [ENV.stageQueueUrl]: optional('a queue URL'),
    [ENV.partBytes]: z._default(count('a positive whole number of bytes'), DEFAULT_PART_BYTES),
  },
  (env) => ({
    pipelineFile: env[ENV.pipelineFile],
    pipelineSha256: env[ENV.pipelineSha256],
    db: dbOf(env),
    maxReceives: env[ENV.maxReceives],
    cleanQueueUrl: env[ENV.cleanQueueUrl],
    stageQueueUrl: env[ENV.stageQueueUrl],
    partBytes: env[ENV.partBytes],
  }),
  requireDatabase,
);

/** Local runs: a CSV larger than this is staged over parallel connections, by byte ranges (parts.ts). */
export const DEFAULT_PARALLEL_BYTES = 64 * 1024 ** 2;
/**
 * Local runs: connections that stage the parts of one big CSV at once, unless
 * `CIVIC_ETL_PARALLEL_CONNECTIONS` says: the machine's cores, at most 4, for `civic-etl load` and
 * for the local stage step (which keeps one of its pool's connections for the ledger), both
 * measured faster than one COPY on this project's 2-core machine (docs/performance.md).
 */
export const SUGGESTED_PARALLEL_CONNECTIONS = Math.min(availableParallelism(), 4);

/**
 * Local runs only (the local stage step, `civic-etl load`; the Lambda sends part messages instead):
 * a CSV larger than `bytes` is cut at record boundaries into `connections` parts, staged at once.
 * `connections` 1: every file is staged whole, by one COPY; unset: each path's default (above).
 */
export const parallelEnv = environment(
  {
    [ENV.parallelBytes]: z._default(count('a positive whole number of bytes'), DEFAULT_PARALLEL_BYTES),
    [ENV.parallelConnections]: z.optional(count('a whole number of connections, at least 1')),
  },
  (env) => ({ bytes: env[ENV.parallelBytes], connections: env[ENV.parallelConnections] }),
);

/** clean (and combine, exports): the bucket the views marked `export` go to; without it, nothing is exported. */
export const cleanEnv = environment(
  { ...pipelineShape, ...dbShape, ...receivesShape, [ENV.bucket]: optional('a bucket name') },
  (env) => ({
    pipelineFile: env[ENV.pipelineFile],
    pipelineSha256: env[ENV.pipelineSha256],
    db: dbOf(env),
    maxReceives: env[ENV.maxReceives],
    exportBucket: env[ENV.bucket],
  }),
  requireDatabase,
);

/** migrate: the database, and the project whose schemas it creates. */
export const migrateEnv = environment({ ...pipelineShape, ...dbShape }, (env) => ({ pipelineFile: env[ENV.pipelineFile], pipelineSha256: env[ENV.pipelineSha256], db: dbOf(env) }), requireDatabase);

export type DbConfig = z.output<typeof dbEnv>;
export type FetchConfig = z.output<typeof fetchEnv>;
export type StageConfig = z.output<typeof stageEnv>;
export type ParallelConfig = z.output<typeof parallelEnv>;
export type CleanConfig = z.output<typeof cleanEnv>;
export type MigrateConfig = z.output<typeof migrateEnv>;

/**
 * Parse a function's environment with its schema. A blank variable counts as not set. Fails with
 * a ConfigurationError naming each variable that is missing or invalid, and what it must be.
 */
export function parseEnv<S extends z.ZodMiniType>(schema: S, env: NodeJS.ProcessEnv = process.env, what = 'the function'): z.output<S> {
  const set = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1].trim() !== ''));
  const result = schema.safeParse(set);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.');
    return !name ? issue.message : `environment variable ${name} ${issue.message}`;
  });
  throw new ConfigurationError(`invalid configuration of ${what}: ${problems.join('; ')}`);
}
