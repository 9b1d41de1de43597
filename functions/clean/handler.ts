import type { SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { exportAfterBatch, exportSettingsFromEnv } from '../combine/exports.ts';
import { s3Client } from '../common/aws.ts';
import { sqsStep, type Subject } from '../common/batch.ts';
import { getPool } from '../common/db.ts';
import { UnreadableMessageError } from '../common/errors.ts';
import { currentPipeline } from '../common/pipeline.ts';
import { cleanLoad } from './clean-load.ts';

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

/**
 * SQS (staged loads) → clean + combine each, one at a time, then export the views they touched once
 * per batch. Failures follow the one error model (common/batch.ts): bad input fails the load and is
 * acknowledged; anything else is recorded, retried, then dead-lettered.
 */
export const handler = sqsStep('clean', cleanMessageRecord, { start: (): number[] => [], end: exportBatch });
