// first: stack traces mapped to the sources from here on (install-stack-maps.ts)
import '../common/install-stack-maps.ts';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { readJsonSecret, s3Client } from '../common/aws.ts';
import { fetchEnv, parseEnv } from '../common/config.ts';
import { createFetchHandler } from './fetch-handler.ts';

/** The fetch function's configuration, parsed once at start: a missing or invalid variable fails here, by name. */
const config = parseEnv(fetchEnv, process.env, 'the fetch function');
let lambda: LambdaClient | undefined;

/**
 * The Lambda entry point: the fetch handler on this environment and the real AWS clients. The
 * Lambda client (a run continuing in a new invocation) is imported when first needed, not at start.
 */
export const handler = await createFetchHandler(config, {
  s3: s3Client(),
  lambda: async () => (lambda ??= new (await import('@aws-sdk/client-lambda')).LambdaClient({})),
  readSecret: readJsonSecret,
});
