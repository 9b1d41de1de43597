import type { SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { exportAfterBatch, exportSettingsFromEnv } from '../combine/exports.ts';
import { s3Client } from '../common/aws.ts';
import { sqsStep, type Subject } from '../common/batch.ts';
import { getPool } from '../common/db.ts';
import { messageOf, UnreadableMessageError } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import { currentPipeline } from '../common/pipeline.ts';
import { cleanLoad } from './clean-load.ts';
import { orderByReferences, referencedDatasets } from './order.ts';

const cleanMessage = z.object({ loadId: z.number().int().positive() });

async function cleanMessageRecord(record: SQSRecord, subject: Subject, cleaned: number[]): Promise<void> {
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch {
    body = undefined;
  }
  const parsed = cleanMessage.safeParse(body);
  // never dropped: retried like any failure, it ends in the DLQ, where it can be read
  if (!parsed.success) throw new UnreadableMessageError(`not a clean message ({"loadId": n}): ${JSON.stringify(record.body.slice(0, 200))}`);
  subject.loadId = parsed.data.loadId;
  const outcome = await cleanLoad(
    { pool: await getPool(), pipeline: currentPipeline(), s3: s3Client(), exports: exportSettingsFromEnv(), deferExports: (loadId) => cleaned.push(loadId) },
    parsed.data.loadId,
  );
  if (outcome.status === 'failed') subject.rejected = 1;
}

/** After the batch: the views marked `export` that its loads touched, each exported once (exportAfterBatch never throws). */
async function exportBatch(cleaned: number[]): Promise<void> {
  const settings = exportSettingsFromEnv();
  if (settings && cleaned.length) await exportAfterBatch({ ...settings, pool: await getPool(), pipeline: currentPipeline() }, cleaned);
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
 * The batch in the order to clean it: a load whose dataset references (a `references` rule) the
 * dataset of another load of the batch after it (order.ts). The ledger says each load's dataset;
 * a ledger that cannot say keeps arrival order (logged), and the references then wait across attempts.
 */
async function orderBatch(records: SQSRecord[]): Promise<SQSRecord[]> {
  const pipeline = currentPipeline();
  if (records.length < 2 || !pipeline.datasets.some((d) => referencedDatasets(d).length > 0)) return records;
  try {
    const ids = records.map(loadIdOf).filter((id) => id !== undefined);
    const { rows } = await (await getPool()).query<{ id: number; dataset: string | null }>('SELECT id::int, dataset FROM etl.loads WHERE id = ANY($1::bigint[])', [ids]);
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

/**
 * SQS (staged loads) → clean + combine each, one at a time (referenced datasets first), then export the views they touched once
 * per batch. Failures follow the one error model (common/batch.ts): bad input fails the load and is
 * acknowledged; anything else is recorded, retried, then dead-lettered.
 */
export const handler = sqsStep('clean', cleanMessageRecord, { start: (): number[] => [], end: exportBatch }, orderBatch);
