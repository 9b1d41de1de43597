import { s3Client, sqsClient } from '../common/aws.ts';
import { parseEnv, stageEnv } from '../common/config.ts';
import { databasePool } from '../common/db.ts';
import { createStageHandler } from './stage-handler.ts';
import { mapStackTracesOnDemand } from '../common/stack-maps.ts';

// stack traces at their place in the sources, the bundle's maps read only when one is (stack-maps.ts)
mapStackTracesOnDemand();

/** The stage function's configuration, parsed once at start: a missing or invalid variable fails here, by name. */
const config = parseEnv(stageEnv, process.env, 'the stage function');

/** The Lambda entry point: the stage handler on this environment and the real AWS clients. */
export const handler = createStageHandler(config, { s3: s3Client(), sqs: sqsClient(), pool: () => databasePool(config.db) });
