import type { S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type pg from 'pg';
import { sqsStep, type Subject } from '../common/batch.ts';
import type { StageConfig } from '../common/config.ts';
import { isPermanent, UnreadableMessageError } from '../common/errors.ts';
import { currentPipeline } from '../common/pipeline.ts';
import { objectsInMessage } from './s3-event.ts';
import { isPartMessage, type PartMessage } from './parts.ts';
import { stageObject, stageObjectPart, type CleanMessage, type StageDeps } from './stage-object.ts';

/** What the stage handler works with: the AWS clients and the database. */
export interface StageHandlerDeps {
  s3: S3Client;
  sqs: SQSClient;
  pool: () => Promise<pg.Pool>;
  /** Stage the parts of a big file here, over parallel connections, instead of sending part messages (the local runner). */
  partsInProcess?: { connections: number; bytes: number };
}

/**
 * SQS (S3 ObjectCreated notifications, and part messages of big files) → stage each object, one
 * at a time (one COPY, one connection). Failures follow the one error model (common/batch.ts):
 * bad input (a file, or a message that is not an S3 notification) is recorded and acknowledged; anything else is recorded, retried, then dead-lettered.
 */
export function createStageHandler(config: StageConfig, deps: StageHandlerDeps) {
  const { cleanQueueUrl, stageQueueUrl } = config;

  async function notifyClean(message: CleanMessage): Promise<void> {
    await deps.sqs.send(new SendMessageCommand({ QueueUrl: cleanQueueUrl, MessageBody: JSON.stringify(message) }));
  }

  /** Parts of a big file go back to this same queue, to be staged by parallel invocations. */
  async function enqueueParts(queueUrl: string, messages: PartMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      const batch = messages.slice(i, i + 10);
      const out = await deps.sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: batch.map((m, j) => ({ Id: String(j), MessageBody: JSON.stringify(m) })) }));
      if (out.Failed?.length) throw new Error(`could not send ${out.Failed.length} part message(s): ${out.Failed[0]?.Message}`);
    }
  }

  async function stageMessage(record: SQSRecord, subject: Subject): Promise<void> {
    const stageDeps: StageDeps = {
      pool: await deps.pool(),
      s3: deps.s3,
      pipeline: await currentPipeline(config.pipelineFile, config.pipelineSha256),
      notifyClean,
      partBytes: deps.partsInProcess?.bytes ?? config.partBytes,
      ...(deps.partsInProcess ? { partsInProcess: { connections: deps.partsInProcess.connections } } : {}),
      ...(stageQueueUrl ? { enqueueParts: (messages: PartMessage[]) => enqueueParts(stageQueueUrl, messages) } : {}),
    };
    const part = partIn(record.body);
    if (part) {
      subject.loadId = part.civicEtlPart.loadId;
      const outcome = await stageObjectPart(stageDeps, part);
      if (outcome.status === 'failed') subject.rejected = 1;
      return;
    }
    let objects;
    try {
      objects = objectsInMessage(record.body);
    } catch (error) {
      if (!isPermanent(error)) throw error;
      // bad input, not retried; never dropped: logged and kept in etl.rejected_messages (common/batch.ts)
      throw new UnreadableMessageError(error.message, { cause: error });
    }
    for (const ref of objects) {
      subject.loadId = undefined;
      subject.object = { bucket: ref.bucket, key: ref.key, ...(ref.versionId ? { version: ref.versionId } : {}), ...(ref.etag ? { etag: ref.etag } : {}) };
      const outcome = await stageObject(stageDeps, ref);
      // a file the stage step rejects gets its report too (ledger and the supplier's copy); never fails the message
      if (outcome.status === 'failed') {
        subject.rejected = (subject.rejected ?? 0) + 1;
        // (the report's modules are imported for a rejected file only, not at every start)
        const { reportStageFailures } = await import('../common/report.ts');
        await reportStageFailures({ pool: stageDeps.pool, s3: stageDeps.s3, pipeline: stageDeps.pipeline }, outcome.loadId);
      }
    }
  }

  return sqsStep('stage', stageMessage, { pool: deps.pool, project: async () => (await currentPipeline(config.pipelineFile, config.pipelineSha256)).project, maxReceives: config.maxReceives });
}

function partIn(body: string): PartMessage | undefined {
  try {
    const json: unknown = JSON.parse(body);
    return isPartMessage(json) ? json : undefined;
  } catch {
    return undefined;
  }
}
