import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSRecord } from 'aws-lambda';
import type pg from 'pg';
import * as z from 'zod/mini';
import '../../contract/zod-mini.ts';
import type { ExportSettings } from '../combine/exports.ts';
import { sqsStep, type Subject } from '../common/batch.ts';
import type { CleanConfig } from '../common/config.ts';
import { messageOf, UnreadableMessageError } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import { currentPipeline } from '../common/pipeline.ts';
import { cleanLoad } from './clean-load.ts';
import { orderByReferences, referencedDatasets } from './order.ts';

const cleanMessage = z.object({ loadId: z.int().check(z.positive()) });

/** What the clean handler works with: the AWS client and the database. */
export interface CleanHandlerDeps {
  s3: S3Client;
  pool: () => Promise<pg.Pool>;
}

/** The load id a message names, if it is a clean message. */
function loadIdOf(record: SQSRecord): number | undefined {
  try {
    const parsed = cleanMessage.safeParse(JSON.parse(record.body));
    return parsed.success ? parsed.data.loadId : undefined;
  } catch {
    return undefined;
  }
}

/**
 * SQS (staged loads) → clean + combine each, one at a time (referenced datasets first), then export the views they touched once
 * per batch. Failures follow the one error model (common/batch.ts): bad input fails the load and is
 * acknowledged; anything else is recorded, retried, then dead-lettered.
 */
export function createCleanHandler(config: CleanConfig, deps: CleanHandlerDeps) {
  /** Where the views marked `export` go: the bucket, when the function has one. */
  const exports: ExportSettings | undefined = config.exportBucket ? { s3: deps.s3, bucket: config.exportBucket } : undefined;

  async function cleanMessageRecord(record: SQSRecord, subject: Subject, cleaned: number[]): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(record.body);
    } catch {
      body = undefined;
    }
    const parsed = cleanMessage.safeParse(body);
    // bad input, not retried; never dropped: logged and kept in etl.rejected_messages (common/batch.ts)
    if (!parsed.success) throw new UnreadableMessageError(`not a clean message ({"loadId": n})${body === undefined ? ': the body is not JSON' : ''}`);
    subject.loadId = parsed.data.loadId;
    const outcome = await cleanLoad(
      { pool: await deps.pool(), pipeline: await currentPipeline(config.pipelineFile, config.pipelineSha256), s3: deps.s3, exports, deferExports: (loadId) => cleaned.push(loadId) },
      parsed.data.loadId,
    );
    // the members of its file it cleaned and failed count too: their own messages find them done
    const rejected = (outcome.status === 'failed' ? 1 : 0) + (outcome.othersFailed ?? 0);
    if (rejected) subject.rejected = rejected;
  }

  /** After the batch: the views marked `export` that its loads touched, each exported once (exportAfterBatch never throws). */
  async function exportBatch(cleaned: number[]): Promise<void> {
    // the exporter (and its S3 upload, Parquet writer) is imported only by a function that exports
    if (exports && cleaned.length) {
      const { exportAfterBatch } = await import('../combine/exports.ts');
      await exportAfterBatch({ ...exports, pool: await deps.pool(), pipeline: await currentPipeline(config.pipelineFile, config.pipelineSha256) }, cleaned);
    }
  }

  /**
   * The batch in the order to clean it: a load whose dataset references (a `references` rule) the
   * dataset of another load of the batch after it (order.ts). The ledger says each load's dataset;
   * a ledger that cannot say keeps arrival order (logged), and the references then wait across attempts.
   */
  async function orderBatch(records: SQSRecord[]): Promise<SQSRecord[]> {
    const pipeline = await currentPipeline(config.pipelineFile, config.pipelineSha256);
    if (records.length < 2 || !pipeline.datasets.some((d) => referencedDatasets(d).length > 0)) return records;
    try {
      const ids = records.map(loadIdOf).filter((id) => id !== undefined);
      const { rows } = await (await deps.pool()).query<{ id: number; dataset: string | null }>('SELECT id::int, dataset FROM etl.loads WHERE id = ANY($1::bigint[])', [ids]);
      const datasets = new Map(rows.map((r) => [r.id, r.dataset ?? undefined]));
      const ordered = orderByReferences(pipeline, records, (r) => datasets.get(loadIdOf(r) ?? 0));
      if (ordered.some((r, i) => r !== records[i])) {
        logger.info('batch reordered: referenced datasets first', { step: 'clean', loads: ordered.map((r) => loadIdOf(r)) });
      }
      return ordered;
    } catch (error) {
      logger.warn('batch not reordered by references (arrival order kept)', { step: 'clean', error: messageOf(error) });
      return records;
    }
  }

  return sqsStep('clean', cleanMessageRecord, {
    pool: deps.pool,
    project: async () => (await currentPipeline(config.pipelineFile, config.pipelineSha256)).project,
    maxReceives: config.maxReceives,
    perBatch: { start: (): number[] => [], end: exportBatch },
    order: orderBatch,
  });
}
