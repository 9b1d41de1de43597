import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { exportSettingsFromEnv } from '../combine/exports.ts';
import { s3Client } from '../common/aws.ts';
import { getPool } from '../common/db.ts';
import { logger } from '../common/logger.ts';
import { currentPipeline } from '../common/pipeline.ts';
import { cleanLoad } from './clean-load.ts';

const processor = new BatchProcessor(EventType.SQS);
const cleanMessage = z.object({ loadId: z.number().int().positive() });

async function cleanMessageRecord(record: SQSRecord): Promise<void> {
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch {
    body = undefined;
  }
  const parsed = cleanMessage.safeParse(body);
  if (!parsed.success) {
    logger.error('message dropped: not a clean message', { messageId: record.messageId });
    return;
  }
  await cleanLoad({ pool: await getPool(), pipeline: currentPipeline(), s3: s3Client(), exports: exportSettingsFromEnv() }, parsed.data.loadId);
}

/** SQS (staged loads) → clean + combine each, one at a time; failed messages are retried, then DLQ. */
export const handler = async (event: SQSEvent, context: Context) =>
  processPartialResponse(event, cleanMessageRecord, processor, { context, processInParallel: false });
