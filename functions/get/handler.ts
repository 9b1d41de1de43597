import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { ENV } from '../../contract/names.ts';
import { readJsonSecret, s3Client } from '../common/aws.ts';
import { requireEnv } from '../common/env.ts';
import { classify, PermanentError } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import { currentPipeline, findDataset } from '../common/pipeline.ts';
import { fetchDataset, fetchEdfiApi, type FetchResult } from './fetch-dataset.ts';

const bucket = requireEnv(ENV.bucket);
const pipeline = currentPipeline();
const scheduledEvent = z.union([z.strictObject({ dataset: z.string() }), z.strictObject({ edfi: z.string() })]);
let lambda: LambdaClient | undefined;

/**
 * Scheduled fetch (EventBridge Scheduler input `{"dataset": "<name>"}`, or `{"edfi": "<api>"}`
 * for every resource of an Ed-Fi API; or a manual invoke). Errors are thrown so the scheduler's
 * retry policy, then its DLQ, see them. A run that checkpointed before the time limit invokes this
 * function again, asynchronously, with the same event: that invocation continues the run.
 */
export const handler = async (event: unknown, context?: Context) => {
  try {
    return await fetchFor(event, context);
  } catch (error) {
    // the one error model (common/errors.ts): logged with its kind; thrown either way, so the
    // scheduler's retries (which a permanent failure cannot pass) and its DLQ see it
    const failure = classify(error);
    logger.error(`fetch failed (${failure.kind}): ${failure.message}`, { step: 'fetch', kind: failure.kind, event, error: failure.message });
    throw error;
  }
};

async function fetchFor(event: unknown, context: Context | undefined) {
  const parsed = scheduledEvent.safeParse(event);
  if (!parsed.success) throw new PermanentError('event must be {"dataset": "<name>"} or {"edfi": "<api>"}');
  // stop the download while there is still time to abort the upload cleanly
  const timeoutMs = context ? Math.max(10_000, context.getRemainingTimeInMillis() - 30_000) : undefined;
  const deps = { s3: s3Client(), bucket, readSecret: readJsonSecret, timeoutMs };
  let result: FetchResult;
  if ('edfi' in parsed.data) {
    result = await fetchEdfiApi(deps, pipeline, parsed.data.edfi);
  } else {
    const dataset = findDataset(pipeline, parsed.data.dataset);
    if (!dataset) throw new PermanentError(`unknown dataset "${parsed.data.dataset}" in project ${pipeline.project}`);
    result = await fetchDataset(deps, dataset, pipeline);
  }
  logger.info('fetch finished', { ...parsed.data, status: result.status, summary: result.summary });
  if (result.status === 'checkpointed' && context) {
    lambda ??= new LambdaClient({});
    await lambda.send(new InvokeCommand({ FunctionName: context.invokedFunctionArn, InvocationType: 'Event', Payload: JSON.stringify(parsed.data) }));
    logger.info('fetch continues in a new invocation', { ...parsed.data });
  }
  return result.outcome;
}
