import { readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { createReadStream } from 'node:fs';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type pg from 'pg';
import type { PipelineDefinition } from '../contract/definition.ts';
import { loadPipeline } from '../contract/load.ts';
import { BATCH_SIZE, ENV, ZONES } from '../contract/names.ts';
import { createCleanHandler } from '../functions/clean/clean-handler.ts';
import { s3Client, sqsClient } from '../functions/common/aws.ts';
import { cleanEnv, parallelEnv, parseEnv, stageEnv, SUGGESTED_PARALLEL_CONNECTIONS, type CleanConfig, type ParallelConfig, type StageConfig } from '../functions/common/config.ts';
import { getPool } from '../functions/common/db.ts';
import { createStageHandler } from '../functions/stage/stage-handler.ts';
import { migrate } from '../functions/migrate/migrate.ts';
import { DEFAULT_MAX_RECEIVE_COUNT, ensureLocalResources, type LocalResources } from './resources.ts';
import { runUntilIdle, type BindingStats, type QueueBinding, type RunOptions } from './runner.ts';

/** Settings a local run (a test) may change after opening: the definition, the part size. */
export interface LocalSettings {
  /** The definition the handlers serve (a changed one, "deployed"). */
  pipelineFile?: string;
  /** Files larger than this many bytes are staged in parts. */
  partBytes?: number;
  /** Files larger than `bytes` staged here over `connections` parallel connections (1: through part messages, as on AWS). */
  parallel?: Partial<ParallelConfig>;
}

export interface LocalPipeline {
  file: string;
  pipeline: PipelineDefinition;
  resources: LocalResources;
  pool: pg.Pool;
  bindings: QueueBinding[];
  /** The configuration the stage and clean handlers run with, as the stack's environment gives it on AWS. */
  readonly config: { readonly stage: StageConfig; readonly clean: CleanConfig };
  /** Make the handlers anew with these settings changed from the opened ones (none: as opened). */
  configure(changes?: LocalSettings): void;
  /** Drive the queues until the pipeline is idle. */
  run(opts?: RunOptions): Promise<Record<string, BindingStats>>;
  /** Upload a local file as a supplier would: `incoming/<supplier>/<dataset>/<file name>`. */
  uploadAsSupplier(dataset: string, path: string): Promise<string>;
}

/**
 * The pipeline on this machine, wired like the stack: migrations applied, the bucket, queues,
 * DLQs and S3 → SQS notification present (in moto), and the handlers the functions run bound to
 * their queues, made with the configuration the stack would give them. The services must be
 * running (see `ensureServices`).
 */
export async function openLocalPipeline(file: string, opts: { visibilityTimeoutSeconds?: number; maxReceiveCount?: number } = {}): Promise<LocalPipeline> {
  const pipeline = loadPipeline(file);
  const pool = await getPool();
  await migrate(pool, pipeline.project);
  const resources = await ensureLocalResources({ project: pipeline.project, ...opts });
  // the functions' configuration, as the stack's environment gives it on AWS: parsed with the same
  // schemas, from this process's environment (DATABASE_URL, CIVIC_ETL_PART_BYTES…) and these resources
  const env = {
    ...process.env,
    [ENV.bucket]: resources.bucket,
    [ENV.cleanQueueUrl]: resources.cleanQueueUrl,
    [ENV.stageQueueUrl]: resources.stageQueueUrl,
    [ENV.pipelineFile]: resolve(file),
    // as the stack sets it: failed attempts are logged and recorded as "attempt n of N"
    [ENV.maxReceives]: String(opts.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT),
  };
  const opened = { stage: parseEnv(stageEnv, env, 'the local stage function'), clean: parseEnv(cleanEnv, env, 'the local clean function') };
  const openedParallel = parseEnv(parallelEnv, env, 'the local stage step');
  let config = opened;
  const base = { s3: s3Client(), sqs: sqsClient(), pool: async () => pool };
  // a file above the threshold is staged here over parallel connections, leaving one of the pool's for the ledger
  const stageDeps = (parallel: ParallelConfig) => {
    // one connection a core unless told (docs/performance.md: no slower than one COPY here, busy or not, and faster on big files)
    const connections = Math.min(parallel.connections ?? SUGGESTED_PARALLEL_CONNECTIONS, Math.max(1, opened.stage.db.poolSize - 1));
    return connections > 1 ? { ...base, partsInProcess: { connections, bytes: parallel.bytes } } : base;
  };
  const deps = stageDeps(openedParallel);
  const bindings: QueueBinding[] = [
    { name: 'stage', queueUrl: resources.stageQueueUrl, queueArn: resources.stageQueueArn, handler: createStageHandler(config.stage, deps), batchSize: BATCH_SIZE.stage },
    { name: 'clean', queueUrl: resources.cleanQueueUrl, queueArn: resources.cleanQueueArn, handler: createCleanHandler(config.clean, base), batchSize: BATCH_SIZE.clean },
  ];
  const configure = (changes: LocalSettings = {}) => {
    const pipelineFile = changes.pipelineFile === undefined ? {} : { pipelineFile: resolve(changes.pipelineFile) };
    config = {
      stage: { ...opened.stage, ...pipelineFile, ...(changes.partBytes === undefined ? {} : { partBytes: changes.partBytes }) },
      clean: { ...opened.clean, ...pipelineFile },
    };
    bindings[0]!.handler = createStageHandler(config.stage, stageDeps({ ...openedParallel, ...changes.parallel }));
    bindings[1]!.handler = createCleanHandler(config.clean, base);
  };
  return {
    file,
    pipeline,
    resources,
    pool,
    bindings,
    get config() {
      return config;
    },
    configure,
    run: (runOpts) => runUntilIdle(bindings, runOpts),
    async uploadAsSupplier(datasetName, path) {
      const dataset = pipeline.datasets.find((d) => d.name === datasetName);
      if (!dataset) throw new Error(`unknown dataset "${datasetName}" in ${file}`);
      if (dataset.source.type !== 'upload') throw new Error(`dataset ${datasetName} is fetched, not uploaded`);
      const key = `${ZONES.incoming}${dataset.source.supplier}/${dataset.name}/${basename(path)}`;
      await s3Client().send(new PutObjectCommand({ Bucket: resources.bucket, Key: key, Body: createReadStream(path) }));
      return key;
    },
  };
}

/** Example files shipped beside a definition: `<dir>/data/<dataset>.*` for each uploaded dataset. */
export function exampleFiles(file: string, pipeline: PipelineDefinition): { dataset: string; path: string }[] {
  const dir = join(dirname(resolve(file)), 'data');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return pipeline.datasets.filter((d) => d.source.type === 'upload').flatMap((d) => names.filter((n) => n.replace(/\.[^.]+$/, '') === d.name).map((n) => ({ dataset: d.name, path: join(dir, n) })));
}
