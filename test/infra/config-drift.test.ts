/**
 * The stack and the functions cannot drift apart: the environment the stack gives each function,
 * read from the synthesized template, is parsed with that function's own configuration schema
 * (functions/common/config.ts) — the one the handler parses when it starts.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLED_PIPELINE_FILE } from '../../contract/names.ts';
import { cleanEnv, DEFAULT_PART_BYTES, fetchEnv, migrateEnv, parseEnv, stageEnv } from '../../functions/common/config.ts';
import type { PipelineFunction } from '../../lib/pipeline-function.ts';
import { FIXTURES, logicalId, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

/** A variable whose value CloudFormation fills in at deploy time (`{ Ref: … }`) becomes a marker naming it. */
const deployTime = (name: string) => `deploy-time value of ${name}`;

describe('the environment the stack gives each function', () => {
  let f: Fixture;
  let environment: (fn: PipelineFunction) => Record<string, string>;
  beforeAll(() => {
    // a project that exports views (so clean has a bucket), with a receive count that is not the default
    f = synthFixture({ pipelineFile: join(FIXTURES, 'exports.yaml'), settings: { maxReceiveCount: 7 } });
    const resources = f.template.toJSON().Resources as Record<string, { Properties: { Environment: { Variables: Record<string, unknown> } } }>;
    environment = (fn) =>
      Object.fromEntries(Object.entries(resources[logicalId(fn.function)]!.Properties.Environment.Variables).map(([name, value]) => [name, typeof value === 'string' ? value : deployTime(name)]));
  }, SYNTH_TIMEOUT);

  /** The digest of the definition synth validated (functions.test.ts checks it against the bundled file's bytes). */
  const SHA256 = expect.stringMatching(/^[0-9a-f]{64}$/);

  it('is a valid configuration of the fetch function: the landing bucket, the bundled definition', () => {
    expect(parseEnv(fetchEnv, environment(f.stack.fetchFunction))).toEqual({ pipelineFile: BUNDLED_PIPELINE_FILE, pipelineSha256: SHA256, bucket: deployTime('CIVIC_ETL_BUCKET') });
  });

  it('is a valid configuration of the stage function: both queues, the secret over TLS, 2 connections, the receive count; the part size left at its default', () => {
    expect(parseEnv(stageEnv, environment(f.stack.stageFunction))).toEqual({
      pipelineFile: BUNDLED_PIPELINE_FILE,
      pipelineSha256: SHA256,
      db: { secretArn: deployTime('CIVIC_ETL_DB_SECRET_ARN'), poolSize: 2, tls: true },
      maxReceives: 7,
      cleanQueueUrl: deployTime('CIVIC_ETL_CLEAN_QUEUE_URL'),
      stageQueueUrl: deployTime('CIVIC_ETL_STAGE_QUEUE_URL'),
      partBytes: DEFAULT_PART_BYTES,
    });
  });

  it('is a valid configuration of the clean function: the secret, 2 connections, the receive count, the bucket exports go to', () => {
    expect(parseEnv(cleanEnv, environment(f.stack.cleanFunction))).toEqual({
      pipelineFile: BUNDLED_PIPELINE_FILE,
      pipelineSha256: SHA256,
      db: { secretArn: deployTime('CIVIC_ETL_DB_SECRET_ARN'), poolSize: 2, tls: true },
      maxReceives: 7,
      exportBucket: deployTime('CIVIC_ETL_BUCKET'),
    });
  });

  it("is a valid configuration of the migrate function: the secret, and the pool at the code's default", () => {
    expect(parseEnv(migrateEnv, environment(f.stack.migrateFunction))).toEqual({
      pipelineFile: BUNDLED_PIPELINE_FILE,
      pipelineSha256: SHA256,
      db: { secretArn: deployTime('CIVIC_ETL_DB_SECRET_ARN'), poolSize: 4, tls: true },
    });
  });

  it('sets no civic-etl variable that its function does not read (the stage function is told the bucket, and reads none)', () => {
    const read = (schema: { def: { in: { shape: object } } }) => Object.keys(schema.def.in.shape);
    const unread = (fn: PipelineFunction, schema: { def: { in: { shape: object } } }) =>
      Object.keys(environment(fn)).filter((name) => /^(CIVIC_ETL_|DATABASE_URL$|PGSSLMODE$)/.test(name) && !read(schema).includes(name));
    expect(unread(f.stack.fetchFunction, fetchEnv)).toEqual([]);
    expect(unread(f.stack.stageFunction, stageEnv)).toEqual(['CIVIC_ETL_BUCKET']);
    expect(unread(f.stack.cleanFunction, cleanEnv)).toEqual([]);
    expect(unread(f.stack.migrateFunction, migrateEnv)).toEqual([]);
  });
});
