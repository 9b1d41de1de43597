import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { ENV } from '../../contract/names.ts';
import { s3Client, sqsClient } from '../common/aws.ts';
import { getPool } from '../common/db.ts';
import { requireEnv } from '../common/env.ts';
import { isPermanent } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import { currentPipeline } from '../common/pipeline.ts';
import { objectsInMessage } from './s3-event.ts';
import { stageObject, type CleanMessage } from './stage-object.ts';

const cleanQueueUrl = requireEnv(ENV.cleanQueueUrl);
const processor = new BatchProcessor(EventType.SQS);

async function notifyClean(message: CleanMessage): Promise<void> {
  await sqsClient().send(new SendMessageCommand({ QueueUrl: cleanQueueUrl, MessageBody: JSON.stringify(message) }));
}

async function stageMessage(record: SQSRecord): Promise<void> {
  let objects;
  try {
    objects = objectsInMessage(record.body);
  } catch (error) {
    if (!isPermanent(error)) throw error;
    logger.error('message dropped: it will never parse', { messageId: record.messageId, error: error.message });
    return;
  }
  const deps = { pool: await getPool(), s3: s3Client(), pipeline: currentPipeline(), notifyClean };
  for (const ref of objects) await stageObject(deps, ref);
}

/**
 * SQS (S3 ObjectCreated notifications) → stage each object, one at a time (one COPY, one
 * connection); failed messages are retried, then DLQ.
 */
export const handler = async (event: SQSEvent, context: Context) =>
  processPartialResponse(event, stageMessage, processor, { context, processInParallel: false });
