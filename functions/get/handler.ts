import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { ENV } from '../../contract/names.ts';
import { readJsonSecret, s3Client } from '../common/aws.ts';
import { requireEnv } from '../common/env.ts';
import { PermanentError } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import { currentPipeline, findDataset } from '../common/pipeline.ts';
import { fetchDataset } from './fetch-dataset.ts';

const bucket = requireEnv(ENV.bucket);
const pipeline = currentPipeline();
const scheduledEvent = z.object({ dataset: z.string() });

/**
 * Scheduled fetch (EventBridge Scheduler input `{"dataset": "<name>"}`, or a manual invoke).
 * Errors are thrown so the scheduler's retry policy, then its DLQ, see them.
 */
export const handler = async (event: unknown, context?: Context) => {
  const parsed = scheduledEvent.safeParse(event);
  if (!parsed.success) throw new PermanentError('event must be {"dataset": "<name>"}');
  const dataset = findDataset(pipeline, parsed.data.dataset);
  if (!dataset) throw new PermanentError(`unknown dataset "${parsed.data.dataset}" in project ${pipeline.project}`);
  // stop the download while there is still time to abort the upload cleanly
  const timeoutMs = context ? Math.max(10_000, context.getRemainingTimeInMillis() - 30_000) : undefined;
  const result = await fetchDataset({ s3: s3Client(), bucket, readSecret: readJsonSecret, timeoutMs }, dataset);
  logger.info('fetch finished', { dataset: dataset.name, status: result.status, summary: result.summary });
  return result.outcome;
};
