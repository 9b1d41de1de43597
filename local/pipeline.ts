import { readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { createReadStream } from 'node:fs';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type pg from 'pg';
import type { PipelineDefinition } from '../contract/definition.ts';
import { loadPipeline } from '../contract/load.ts';
import { BATCH_SIZE, ENV, ZONES } from '../contract/names.ts';
import { s3Client } from '../functions/common/aws.ts';
import { getPool } from '../functions/common/db.ts';
import { migrate } from '../functions/migrate/migrate.ts';
import { DEFAULT_MAX_RECEIVE_COUNT, ensureLocalResources, type LocalResources } from './resources.ts';
import { runUntilIdle, type BindingStats, type QueueBinding, type RunOptions, type SqsHandler } from './runner.ts';

export interface LocalPipeline {
  file: string;
  pipeline: PipelineDefinition;
  resources: LocalResources;
  pool: pg.Pool;
  bindings: QueueBinding[];
  /** Drive the queues until the pipeline is idle. */
  run(opts?: RunOptions): Promise<Record<string, BindingStats>>;
  /** Upload a local file as a supplier would: `incoming/<supplier>/<dataset>/<file name>`. */
  uploadAsSupplier(dataset: string, path: string): Promise<string>;
}

/**
 * The pipeline on this machine, wired like the stack: migrations applied, the bucket, queues,
 * DLQs and S3 → SQS notification present (in moto), and the deployed handler modules bound to
 * their queues. The services must be running (see `ensureServices`).
 */
export async function openLocalPipeline(
  file: string,
  opts: { visibilityTimeoutSeconds?: number; maxReceiveCount?: number } = {},
): Promise<LocalPipeline> {
  const pipeline = loadPipeline(file);
  const pool = await getPool();
  await migrate(pool, pipeline.project);
  const resources = await ensureLocalResources({ project: pipeline.project, ...opts });
  process.env[ENV.bucket] = resources.bucket;
  process.env[ENV.cleanQueueUrl] = resources.cleanQueueUrl;
  process.env[ENV.stageQueueUrl] = resources.stageQueueUrl;
  process.env[ENV.pipelineFile] = resolve(file);
  // as the stack sets it: failed attempts are logged and recorded as "attempt n of N"
  process.env[ENV.maxReceives] = String(opts.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT);
  // The handlers read their environment at module load, as in Lambda: import them only now.
  const stage = (await import('../functions/stage/handler.ts')).handler as SqsHandler;
  const clean = (await import('../functions/clean/handler.ts')).handler as SqsHandler;
  const bindings: QueueBinding[] = [
    { name: 'stage', queueUrl: resources.stageQueueUrl, queueArn: resources.stageQueueArn, handler: stage, batchSize: BATCH_SIZE.stage },
    { name: 'clean', queueUrl: resources.cleanQueueUrl, queueArn: resources.cleanQueueArn, handler: clean, batchSize: BATCH_SIZE.clean },
  ];
  return {
    file,
    pipeline,
    resources,
    pool,
    bindings,
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
  return pipeline.datasets
    .filter((d) => d.source.type === 'upload')
    .flatMap((d) => names.filter((n) => n.replace(/\.[^.]+$/, '') === d.name).map((n) => ({ dataset: d.name, path: join(dir, n) })));
}
