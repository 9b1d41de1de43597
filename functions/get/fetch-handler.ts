import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import * as z from 'zod/mini';
import '../../contract/zod-mini.ts';
import type { FetchConfig } from '../common/config.ts';
import { classify, PermanentError } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import { currentPipeline, findDataset } from '../common/pipeline.ts';
import { fetchDataset, fetchEdfiApi, type FetchResult } from './fetch-dataset.ts';

const scheduledEvent = z.union([z.strictObject({ dataset: z.string() }), z.strictObject({ edfi: z.string() })]);

/** What the fetch handler works with: the AWS clients, and how it reads a source's secrets. */
export interface FetchHandlerDeps {
  s3: S3Client;
  /** Invokes this function again, asynchronously, to continue a run that checkpointed (the SDK is imported then, not at start). */
  lambda: () => LambdaClient | Promise<LambdaClient>;
  readSecret(name: string): Promise<Record<string, unknown>>;
}

/**
 * Scheduled fetch (EventBridge Scheduler input `{"dataset": "<name>"}`, or `{"edfi": "<api>"}`
 * for every resource of an Ed-Fi API; or a manual invoke). Errors are thrown so the scheduler's
 * retry policy, then its DLQ, see them. A run that checkpointed before the time limit invokes this
 * function again, asynchronously, with the same event: that invocation continues the run.
 */
export async function createFetchHandler(config: FetchConfig, deps: FetchHandlerDeps) {
  // read and validated when the function starts (an invalid definition fails its start), not per event
  const pipeline = await currentPipeline(config.pipelineFile, config.pipelineSha256);

  async function fetchFor(event: unknown, context: Context | undefined) {
    const parsed = scheduledEvent.safeParse(event);
    if (!parsed.success) throw new PermanentError('event must be {"dataset": "<name>"} or {"edfi": "<api>"}');
    // stop the download while there is still time to abort the upload cleanly
    const timeoutMs = context ? Math.max(10_000, context.getRemainingTimeInMillis() - 30_000) : undefined;
    const fetchDeps = { s3: deps.s3, bucket: config.bucket, readSecret: deps.readSecret, timeoutMs };
    let result: FetchResult;
    if ('edfi' in parsed.data) {
      result = await fetchEdfiApi(fetchDeps, pipeline, parsed.data.edfi);
    } else {
      const dataset = findDataset(pipeline, parsed.data.dataset);
      if (!dataset) throw new PermanentError(`unknown dataset "${parsed.data.dataset}" in project ${pipeline.project}`);
      result = await fetchDataset(fetchDeps, dataset, pipeline);
    }
    logger.info('fetch finished', { ...parsed.data, status: result.status, summary: result.summary });
    if (result.status === 'checkpointed' && context) {
      const { InvokeCommand } = await import('@aws-sdk/client-lambda');
      await (await deps.lambda()).send(new InvokeCommand({ FunctionName: context.invokedFunctionArn, InvocationType: 'Event', Payload: JSON.stringify(parsed.data) }));
      logger.info('fetch continues in a new invocation', { ...parsed.data });
    }
    return result.outcome;
  }

  return async (event: unknown, context?: Context) => {
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
}
