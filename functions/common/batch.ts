import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type pg from 'pg';
import { classify, messageOf, UnreadableMessageError, WaitingError, type Failure } from './errors.ts';
import { markFailed, noteAttempts, recordAttempt } from './ledger.ts';
import { logger } from './logger.ts';
import { publishBatchCounts } from './metrics.ts';
import { recordRejectedMessage } from './rejected-messages.ts';
import { retrySoon, waitSeconds } from './retry-soon.ts';

/** What a message is about, as far as the step learnt before it failed: the ledger row to record on. */
export interface Subject {
  loadId?: number;
  /** The object version (stage, before the load id is known). */
  object?: { bucket: string; key: string; version?: string; etag?: string };
  /** Loads the step itself rejected as bad input (recorded, not thrown): counted as RejectedLoads. */
  rejected?: number;
}

/** Attempt n of N: n is the message's receive count, N the queue's maxReceiveCount (CIVIC_ETL_MAX_RECEIVES), when known. */
export function attemptOf(record: SQSRecord, maxReceives?: number): { n: number; of?: number } {
  const n = Math.max(1, Number(record.attributes?.ApproximateReceiveCount ?? 1) || 1);
  return maxReceives !== undefined ? { n, of: maxReceives } : { n };
}

/** What a step's SQS handler is given, besides its work. */
export interface SqsStepOptions<B> {
  /** The database: the ledger records each failed attempt. */
  pool: () => Promise<pg.Pool>;
  /** The project a message belongs to: a message the step cannot read is kept under it (etl.rejected_messages). */
  project: () => string | Promise<string>;
  /** The queue's maxReceiveCount, so an attempt is "n of N" and the last one is known. */
  maxReceives?: number;
  /** Work once per invocation: `start` makes what the messages share, `end` runs after the last one; if `end` throws, the whole batch comes back (each message's handler must know a repeat). */
  perBatch?: { start: () => B; end: (batch: B) => Promise<void> };
  /**
   * The order to handle the batch's messages in (they are handled one at a time); by default as
   * they arrived. It must return the same records, and not throw (it is a preference, not work).
   */
  order?: (records: SQSRecord[]) => Promise<SQSRecord[]>;
}

/**
 * The SQS handler of a step, with the one error model (common/errors.ts): `handle` processes one
 * message and fills in `subject` as it learns which load it is about. A failure is classified;
 * every attempt is logged (load id, dataset, object, error, attempt n of N) and recorded in the
 * ledger (a message the step cannot read, which names no load, in etl.rejected_messages); a permanent one is acknowledged, a retryable or blocked one is reported in the partial
 * batch response (retried, then the DLQ); one that waits for another load (WaitingError) is
 * retried the same way, sooner (retry-soon.ts), and counted as a wait until its last attempt.
 * Each batch's failures are counted as metrics.
 */
export function sqsStep<B = undefined>(step: 'stage' | 'clean', handle: (record: SQSRecord, subject: Subject, batch: B) => Promise<void>, options: SqsStepOptions<B>) {
  const { perBatch, order } = options;
  const attempt = (record: SQSRecord) => attemptOf(record, options.maxReceives);
  const processor = new BatchProcessor(EventType.SQS);
  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    let rejected = 0;
    // returned to wait for another load, not failed (their last attempt is a failure: the DLQ)
    let waiting = 0;
    // messages it could not read: acknowledged, so in no DLQ; counted for their own alarm
    let unreadable = 0;
    const batch = perBatch?.start() as B;
    const one = async (record: SQSRecord) => {
      const subject: Subject = {};
      try {
        await handle(record, subject, batch);
        rejected += subject.rejected ?? 0;
      } catch (error) {
        const failure = classify(error, { file: subject.object?.key });
        // a wait is retried sooner than a failure (retry-soon.ts)
        const at = attempt(record);
        const retryIn = error instanceof WaitingError && !isLastAttempt(at) ? await waitBeforeRetry(step, record, at) : undefined;
        const kept = await recordFailure(step, options, record, at, subject, failure, retryIn);
        if (failure.kind !== 'permanent') {
          if (retryIn !== undefined) waiting++;
          throw error;
        }
        if (failure.error instanceof UnreadableMessageError) {
          // kept nowhere else: a message the ledger could not take goes back to the queue (retried, then its DLQ), never dropped
          if (!kept) throw error;
          unreadable++;
        } else rejected++;
        return;
      }
      // a retry that succeeded: the ledger keeps how many attempts it took (the work is done: a
      // ledger that cannot take the count is logged, never a reason to do the work again)
      const { n } = attempt(record);
      if (n > 1 && subject.loadId !== undefined) {
        const loadId = subject.loadId;
        await noteAttempts(await options.pool(), loadId, n).catch((e: unknown) => logger.warn('attempt count not recorded in the ledger', { step, loadId, attempt: n, error: messageOf(e) }));
      }
    };
    if (order) event = { ...event, Records: await order(event.Records) };
    const response = await processPartialResponse(event, one, processor, { context, processInParallel: false, throwOnFullBatchFailure: false });
    if (perBatch) await perBatch.end(batch);
    publishBatchCounts(step, { failed: response.batchItemFailures.length - waiting, rejected, waiting, unreadable });
    return response;
  };
}

/** The queue's last attempt at this message: if it fails, the queue moves it to the DLQ. */
function isLastAttempt(attempt: { n: number; of?: number }): boolean {
  return attempt.of !== undefined && attempt.n >= attempt.of;
}

/** Time the next attempt of a waiting message; returns in how many seconds it comes (the queue's own timeout if SQS refused, logged). */
async function waitBeforeRetry(step: string, record: SQSRecord, attempt: { n: number }): Promise<number | 'queue timeout'> {
  try {
    return await retrySoon(record, waitSeconds(attempt.n));
  } catch (error) {
    logger.warn("a waiting message could not be timed: retried after the queue's visibility timeout", { step, messageId: record.messageId, error: messageOf(error) });
    return 'queue timeout';
  }
}

/**
 * Log the attempt and record it in the ledger; a ledger that cannot be written is logged too, never
 * hides the failure. Returns whether the ledger took it.
 */
async function recordFailure(
  step: 'stage' | 'clean',
  options: Pick<SqsStepOptions<unknown>, 'pool' | 'project'>,
  record: SQSRecord,
  attempt: { n: number; of?: number },
  subject: Subject,
  failure: Failure,
  retryIn?: number | 'queue timeout',
): Promise<boolean> {
  const last = failure.kind !== 'permanent' && isLastAttempt(attempt);
  let load: { id: number; dataset: string | null; object_key: string } | undefined;
  let ledgerError: string | undefined;
  try {
    const pool = await options.pool();
    if (failure.error instanceof UnreadableMessageError) {
      // it names no object version, so no load: the message itself is kept, body and reason
      await recordRejectedMessage(pool, await options.project(), { step, messageId: record.messageId, queue: record.eventSourceARN, body: record.body, reason: failure.message });
    } else if (failure.kind === 'permanent') {
      if (subject.loadId !== undefined) {
        await markFailed(pool, subject.loadId, failure.error);
        load = { id: subject.loadId, dataset: null, object_key: subject.object?.key ?? '' };
      }
    } else {
      const target = subject.loadId !== undefined ? { loadId: subject.loadId } : subject.object;
      if (target) load = await recordAttempt(pool, target, { kind: failure.kind, step, message: failure.message, attempt: attempt.n, ...(attempt.of ? { of: attempt.of } : {}) });
    }
  } catch (error) {
    ledgerError = messageOf(error);
  }
  const fields = {
    step,
    kind: failure.kind,
    loadId: load?.id ?? subject.loadId,
    dataset: load?.dataset ?? undefined,
    object: load?.object_key || subject.object?.key,
    error: failure.message,
    attempt: attempt.n,
    ...(attempt.of ? { of: attempt.of } : {}),
    messageId: record.messageId,
    ...(failure.error instanceof UnreadableMessageError ? { body: record.body.slice(0, 200) } : {}),
    ...(ledgerError ? { ledgerError: `the failure could not be recorded in the ledger: ${ledgerError}` } : {}),
  };
  const n = `attempt ${attempt.n}${attempt.of ? ` of ${attempt.of}` : ''}`;
  const what = fields.loadId !== undefined ? `load ${fields.loadId}${fields.object ? ` (${fields.object})` : ''}` : (fields.object ?? `message ${record.messageId}`);
  if (failure.kind === 'permanent' && failure.error instanceof UnreadableMessageError && ledgerError) {
    logger.error(`${step} could not keep rejected ${what} in etl.rejected_messages: it goes back to the queue (retried, then its DLQ) — ${failure.message}`, fields);
  } else if (failure.kind === 'permanent') logger.warn(`${step} rejected ${what}: bad input, not retried (${n})`, fields);
  else if (retryIn !== undefined) {
    const later = typeof retryIn === 'number' ? `in ${retryIn} s` : "after the queue's visibility timeout";
    logger.info(`${step} of ${what} waits, ${n}: retried ${later} — ${failure.message}`, { ...fields, ...(typeof retryIn === 'number' ? { retryInSeconds: retryIn } : {}) });
  } else if (last) logger.error(`${step} failed ${what}, ${n}, the last: the message goes to the DLQ — ${failure.message}`, fields);
  else logger.error(`${step} failed ${what}, ${n}, ${failure.kind === 'blocked' ? 'blocked until the definition is fixed' : 'will be retried'} — ${failure.message}`, fields);
  return ledgerError === undefined;
}
