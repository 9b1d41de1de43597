import { SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { ENV } from '../../contract/names.ts';
import { s3Client, sqsClient } from '../common/aws.ts';
import { sqsStep, type Subject } from '../common/batch.ts';
import { getPool } from '../common/db.ts';
import { requireEnv } from '../common/env.ts';
import { isPermanent, UnreadableMessageError } from '../common/errors.ts';
import { currentPipeline } from '../common/pipeline.ts';
import { objectsInMessage } from './s3-event.ts';
import { reportStageFailures } from '../common/report.ts';
import { isPartMessage, type PartMessage } from './parts.ts';
import { stageObject, stageObjectPart, type CleanMessage } from './stage-object.ts';

const cleanQueueUrl = requireEnv(ENV.cleanQueueUrl);
const stageQueueUrl = process.env[ENV.stageQueueUrl];

async function notifyClean(message: CleanMessage): Promise<void> {
  await sqsClient().send(new SendMessageCommand({ QueueUrl: cleanQueueUrl, MessageBody: JSON.stringify(message) }));
}

/** Parts of a big file go back to this same queue, to be staged by parallel invocations. */
async function enqueueParts(messages: PartMessage[]): Promise<void> {
  if (!stageQueueUrl) throw new Error(`${ENV.stageQueueUrl} is not set: cannot send part messages`);
  for (let i = 0; i < messages.length; i += 10) {
    const batch = messages.slice(i, i + 10);
    const out = await sqsClient().send(
      new SendMessageBatchCommand({ QueueUrl: stageQueueUrl, Entries: batch.map((m, j) => ({ Id: String(j), MessageBody: JSON.stringify(m) })) }),
    );
    if (out.Failed?.length) throw new Error(`could not send ${out.Failed.length} part message(s): ${out.Failed[0]?.Message}`);
  }
}

async function stageMessage(record: SQSRecord, subject: Subject): Promise<void> {
  const deps = { pool: await getPool(), s3: s3Client(), pipeline: currentPipeline(), notifyClean, ...(stageQueueUrl ? { enqueueParts } : {}) };
  const part = partIn(record.body);
  if (part) {
    subject.loadId = part.civicEtlPart.loadId;
    const outcome = await stageObjectPart(deps, part);
    if (outcome.status === 'failed') subject.rejected = 1;
    return;
  }
  let objects;
  try {
    objects = objectsInMessage(record.body);
  } catch (error) {
    if (!isPermanent(error)) throw error;
    // never dropped: retried like any failure, it ends in the DLQ, where it can be read
    throw new UnreadableMessageError(`${error.message}: ${JSON.stringify(record.body.slice(0, 200))}`, { cause: error });
  }
  for (const ref of objects) {
    subject.loadId = undefined;
    subject.object = { bucket: ref.bucket, key: ref.key, ...(ref.versionId ? { version: ref.versionId } : {}), ...(ref.etag ? { etag: ref.etag } : {}) };
    const outcome = await stageObject(deps, ref);
    // a file the stage step rejects gets its report too (ledger and the supplier's copy); never fails the message
    if (outcome.status === 'failed') {
      subject.rejected = (subject.rejected ?? 0) + 1;
      await reportStageFailures({ pool: deps.pool, s3: deps.s3 }, outcome.loadId);
    }
  }
}

function partIn(body: string): PartMessage | undefined {
  try {
    const json: unknown = JSON.parse(body);
    return isPartMessage(json) ? json : undefined;
  } catch {
    return undefined;
  }
}

/**
 * SQS (S3 ObjectCreated notifications, and part messages of big files) → stage each object, one
 * at a time (one COPY, one connection). Failures follow the one error model (common/batch.ts):
 * bad input is recorded and acknowledged; anything else is recorded, retried, then dead-lettered.
 */
export const handler = sqsStep('stage', stageMessage);
