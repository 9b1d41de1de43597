// first: stack traces mapped to the sources from here on (install-stack-maps.ts)
import '../common/install-stack-maps.ts';
import { s3Client, sqsClient } from '../common/aws.ts';
import { parseEnv, stageEnv } from '../common/config.ts';
import { databasePool } from '../common/db.ts';
import { createStageHandler } from './stage-handler.ts';

/** The stage function's configuration, parsed once at start: a missing or invalid variable fails here, by name. */
const config = parseEnv(stageEnv, process.env, 'the stage function');

/** The Lambda entry point: the stage handler on this environment and the real AWS clients. */
export const handler = createStageHandler(config, { s3: s3Client(), sqs: sqsClient(), pool: () => databasePool(config.db) });
