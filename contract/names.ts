/**
 * Names shared by the stack, the local runtime and the handlers: S3 zones, environment
 * variables, and how object keys map to datasets.
 */

/** S3 key prefixes (zones) of the landing bucket. */
export const ZONES = {
  /** Supplier uploads: `incoming/<supplier>/<dataset>/<file>`. */
  incoming: 'incoming/',
  /** Fetched data: `raw/<dataset>/<run>/<file>`, with `_manifest.json` beside each file. */
  raw: 'raw/',
  /** Fetcher state (conditional-GET validators): `state/<dataset>/…`; never staged. */
  state: 'state/',
  /**
   * Quality reports written back to suppliers: `reports/<supplier>/<dataset>/<file>.report.json`
   * (and `.txt`) for `incoming/<supplier>/<dataset>/<file>`; readable by that supplier only; never staged.
   */
  reports: 'reports/',
  /**
   * Exports of views ("gold" files): `curated/<project>/<view>/<run>/<view>.parquet|.csv` with
   * `_manifest.json`, and `curated/<project>/<view>/latest.json`; never staged.
   */
  curated: 'curated/',
} as const;

/** Objects staged on ObjectCreated: these prefixes, and nothing else, notify the stage queue. */
export const STAGED_PREFIXES = [ZONES.incoming, ZONES.raw] as const;

/** File names under `raw/` that describe a fetch rather than carry data: never staged. */
export const MANIFEST_SUFFIX = '_manifest.json';

/** Environment variables read by the handlers (parsed once at start: functions/common/config.ts). */
export const ENV = {
  bucket: 'CIVIC_ETL_BUCKET',
  cleanQueueUrl: 'CIVIC_ETL_CLEAN_QUEUE_URL',
  /** The stage queue itself: the stage function sends the parts of big files back to it. */
  stageQueueUrl: 'CIVIC_ETL_STAGE_QUEUE_URL',
  /** Files larger than this many bytes are staged in parts of about this size (default 1 GiB). */
  partBytes: 'CIVIC_ETL_PART_BYTES',
  /** Local runs (the local stage step, `civic-etl load`): a CSV larger than this many bytes is staged over parallel connections (default 64 MiB). */
  parallelBytes: 'CIVIC_ETL_PARALLEL_BYTES',
  /** Local runs: how many connections stage such a file at once (default: `civic-etl load` the machine's cores, at most 4; the local stage step 1, every file whole). */
  parallelConnections: 'CIVIC_ETL_PARALLEL_CONNECTIONS',
  pipelineFile: 'CIVIC_ETL_PIPELINE_FILE',
  /** SHA-256 of the bundled definition as `cdk synth` validated it (lib/pipeline-function.ts, functions/common/pipeline.ts). */
  pipelineSha256: 'CIVIC_ETL_PIPELINE_SHA256',
  databaseUrl: 'DATABASE_URL',
  databaseSecretArn: 'CIVIC_ETL_DB_SECRET_ARN',
  /** Connections per function container (default 4; the stack sets 2: batches run one record at a time). */
  dbPoolSize: 'CIVIC_ETL_DB_POOL_SIZE',
  /** The queue's maxReceiveCount, so a failed attempt is logged as "attempt n of N" and the last one known. */
  maxReceives: 'CIVIC_ETL_MAX_RECEIVES',
} as const;

/** File name of the validated definition that the stack bundles beside each handler. */
export const BUNDLED_PIPELINE_FILE = 'pipeline.json';

export type ObjectRoute = { zone: 'incoming'; supplier: string; dataset: string } | { zone: 'raw'; dataset: string; run: string };

/**
 * Which dataset an object key belongs to, or `undefined` for keys outside the staged zones.
 * `incoming/<supplier>/<dataset>/<file…>` and `raw/<dataset>/<run>/<file…>`.
 */
export function routeObjectKey(key: string): ObjectRoute | undefined {
  const parts = key.split('/');
  if (parts[0] === 'incoming' && parts.length >= 4 && parts[1] && parts[2] && parts.at(-1)) {
    return { zone: 'incoming', supplier: parts[1], dataset: parts[2] };
  }
  if (parts[0] === 'raw' && parts.length >= 4 && parts[1] && parts[2] && parts.at(-1)) {
    return { zone: 'raw', dataset: parts[1], run: parts[2] };
  }
  return undefined;
}

/**
 * How many messages one invocation gets from each queue (the event source mapping's batchSize).
 * The stack and the local runner both use these, so a batch looks the same in both places.
 */
export const BATCH_SIZE = { stage: 5, clean: 5 } as const;
