// first: stack traces mapped to the sources from here on (install-stack-maps.ts)
import '../common/install-stack-maps.ts';
import { s3Client } from '../common/aws.ts';
import { cleanEnv, parseEnv } from '../common/config.ts';
import { databasePool } from '../common/db.ts';
import { createCleanHandler } from './clean-handler.ts';

/** The clean function's configuration, parsed once at start: a missing or invalid variable fails here, by name. */
const config = parseEnv(cleanEnv, process.env, 'the clean function');

/** The Lambda entry point: the clean handler on this environment and the real AWS clients. */
export const handler = createCleanHandler(config, { s3: s3Client(), pool: () => databasePool(config.db) });
