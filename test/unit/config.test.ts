import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cleanEnv, dbEnv, fetchEnv, migrateEnv, parallelEnv, parseEnv, stageEnv } from '../../functions/common/config.ts';
import { classify, ConfigurationError } from '../../functions/common/errors.ts';

const DB = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/civic' };
const STAGE = { ...DB, CIVIC_ETL_CLEAN_QUEUE_URL: 'http://127.0.0.1:5000/000000000000/clean' };

/** The message of the error a parse fails with. */
function failure(run: () => unknown): ConfigurationError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigurationError) return error;
    throw error;
  }
  throw new Error('the configuration was accepted');
}

describe("a function's configuration, parsed once from its environment", () => {
  it('names the missing required variable of each function', () => {
    expect(failure(() => parseEnv(fetchEnv, {}, 'the fetch function')).message).toBe('invalid configuration of the fetch function: environment variable CIVIC_ETL_BUCKET is not set');
    expect(failure(() => parseEnv(stageEnv, DB, 'the stage function')).message).toBe('invalid configuration of the stage function: environment variable CIVIC_ETL_CLEAN_QUEUE_URL is not set');
  });

  it('says which variables reach the database when a database function has neither', () => {
    for (const schema of [stageEnv, cleanEnv, migrateEnv, dbEnv]) {
      const env = schema === stageEnv ? { CIVIC_ETL_CLEAN_QUEUE_URL: 'q' } : {};
      expect(failure(() => parseEnv(schema, env)).message).toContain('set DATABASE_URL or CIVIC_ETL_DB_SECRET_ARN to reach the database');
    }
  });

  it('counts a blank variable as not set', () => {
    expect(failure(() => parseEnv(fetchEnv, { CIVIC_ETL_BUCKET: '  ' })).message).toContain('CIVIC_ETL_BUCKET is not set');
    expect(parseEnv(stageEnv, { ...STAGE, CIVIC_ETL_STAGE_QUEUE_URL: '' }).stageQueueUrl).toBeUndefined();
  });

  it('names every invalid number, with the value it got', () => {
    const error = failure(() => parseEnv(stageEnv, { ...STAGE, CIVIC_ETL_PART_BYTES: '1.5GB', CIVIC_ETL_MAX_RECEIVES: '0', CIVIC_ETL_DB_POOL_SIZE: '-2' }));
    expect(error.message).toContain('environment variable CIVIC_ETL_PART_BYTES must be a positive whole number of bytes, got "1.5GB"');
    expect(error.message).toContain('environment variable CIVIC_ETL_MAX_RECEIVES must be a whole number of receives, at least 1, got "0"');
    expect(error.message).toContain('environment variable CIVIC_ETL_DB_POOL_SIZE must be a whole number of connections, at least 1, got "-2"');
  });

  it('fails as a configuration error: blocked until the deployment is fixed', () => {
    const error = failure(() => parseEnv(migrateEnv, {}));
    expect(classify(error)).toMatchObject({ kind: 'blocked' });
  });

  it('gives the defaults when only the required variables are set', () => {
    expect(parseEnv(stageEnv, STAGE)).toEqual({
      pipelineFile: 'pipeline.json',
      db: { url: DB.DATABASE_URL, poolSize: 4, tls: true },
      cleanQueueUrl: STAGE.CIVIC_ETL_CLEAN_QUEUE_URL,
      partBytes: 1024 ** 3,
    });
    expect(parseEnv(cleanEnv, DB)).toEqual({ pipelineFile: 'pipeline.json', db: { url: DB.DATABASE_URL, poolSize: 4, tls: true } });
    expect(parseEnv(fetchEnv, { CIVIC_ETL_BUCKET: 'landing' })).toEqual({ pipelineFile: 'pipeline.json', bucket: 'landing' });
    expect(parseEnv(migrateEnv, DB)).toEqual({ pipelineFile: 'pipeline.json', db: { url: DB.DATABASE_URL, poolSize: 4, tls: true } });
  });

  it('reads the local parallel staging settings (unset connections: each path its default), and names a bad setting', () => {
    expect(parseEnv(parallelEnv, {})).toEqual({ bytes: 64 * 1024 * 1024, connections: undefined });
    expect(parseEnv(parallelEnv, { CIVIC_ETL_PARALLEL_BYTES: '1000', CIVIC_ETL_PARALLEL_CONNECTIONS: '3' })).toEqual({ bytes: 1000, connections: 3 });
    expect(failure(() => parseEnv(parallelEnv, { CIVIC_ETL_PARALLEL_CONNECTIONS: '0' }, 'civic-etl load')).message).toBe(
      'invalid configuration of civic-etl load: environment variable CIVIC_ETL_PARALLEL_CONNECTIONS must be a whole number of connections, at least 1, got "0"',
    );
  });

  it('reads what a deployment sets: the secret without TLS on loopback, the pool size, the receives, the export bucket', () => {
    const env = { CIVIC_ETL_DB_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:1:secret:db', PGSSLMODE: 'disable', CIVIC_ETL_DB_POOL_SIZE: '2', CIVIC_ETL_MAX_RECEIVES: '5', CIVIC_ETL_BUCKET: 'landing' };
    expect(parseEnv(cleanEnv, env)).toEqual({
      pipelineFile: 'pipeline.json',
      db: { secretArn: env.CIVIC_ETL_DB_SECRET_ARN, poolSize: 2, tls: false },
      maxReceives: 5,
      exportBucket: 'landing',
    });
  });

  it('takes the digest of the validated definition, and refuses one that is not a SHA-256', () => {
    const sha256 = 'ab'.repeat(32);
    expect(parseEnv(fetchEnv, { CIVIC_ETL_BUCKET: 'landing', CIVIC_ETL_PIPELINE_SHA256: sha256 })).toEqual({ pipelineFile: 'pipeline.json', pipelineSha256: sha256, bucket: 'landing' });
    expect(() => parseEnv(fetchEnv, { CIVIC_ETL_BUCKET: 'landing', CIVIC_ETL_PIPELINE_SHA256: 'abc' }, 'the fetch function')).toThrow(
      'invalid configuration of the fetch function: environment variable CIVIC_ETL_PIPELINE_SHA256 must be a SHA-256 in hexadecimal (64 digits)',
    );
  });

  it('ignores variables that are not its own (the runtime sets many)', () => {
    expect(parseEnv(fetchEnv, { CIVIC_ETL_BUCKET: 'landing', AWS_REGION: 'eu-west-1', NODE_OPTIONS: '--enable-source-maps' })).toEqual({ pipelineFile: 'pipeline.json', bucket: 'landing' });
  });
});

describe("each function's entry point", () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  /** Import handler modules in a fresh Node with only `env` (and PATH), as Lambda starts a function. */
  const start = (modules: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', modules.map((m) => `console.log(typeof (await import('./${m}')).handler);`).join('\n')], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', AWS_REGION: 'eu-west-1', ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('fails to start, naming the variable, when its environment lacks one', () => {
    const cases = [
      { module: 'functions/get/handler.ts', env: {}, message: 'invalid configuration of the fetch function: environment variable CIVIC_ETL_BUCKET is not set' },
      { module: 'functions/stage/handler.ts', env: DB, message: 'invalid configuration of the stage function: environment variable CIVIC_ETL_CLEAN_QUEUE_URL is not set' },
      { module: 'functions/clean/handler.ts', env: {}, message: 'invalid configuration of the clean function: set DATABASE_URL or CIVIC_ETL_DB_SECRET_ARN to reach the database' },
      {
        module: 'functions/migrate/handler.ts',
        env: { ...DB, CIVIC_ETL_DB_POOL_SIZE: 'many' },
        message: 'invalid configuration of the migrate function: environment variable CIVIC_ETL_DB_POOL_SIZE must be a whole number of connections, at least 1, got "many"',
      },
    ];
    for (const c of cases) {
      const run = start([c.module], c.env);
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain(`ConfigurationError: ${c.message}`);
    }
  }, 240_000);

  it('starts when its environment is complete, and exports its handler', () => {
    const pipelineFile = 'test/infra/fixtures/pipeline.yaml';
    const run = start(['functions/get/handler.ts', 'functions/stage/handler.ts', 'functions/clean/handler.ts', 'functions/migrate/handler.ts'], {
      ...STAGE,
      CIVIC_ETL_BUCKET: 'landing',
      CIVIC_ETL_PIPELINE_FILE: pipelineFile,
    });
    expect(run.stderr).not.toContain('Error');
    expect(run.stdout.trim().split('\n')).toEqual(['function', 'function', 'function', 'function']);
  }, 60_000);
});
