// first: stack traces mapped to the sources from here on (install-stack-maps.ts)
import '../common/install-stack-maps.ts';
import { migrateEnv, parseEnv } from '../common/config.ts';
import { databasePool } from '../common/db.ts';
import { createMigrateHandler } from './migrate-handler.ts';

/** The migrate function's configuration, parsed once at start: a missing or invalid variable fails here, by name. */
const config = parseEnv(migrateEnv, process.env, 'the migrate function');

/** The Lambda entry point: the migrate handler on this environment and the real database. */
export const handler = await createMigrateHandler(config, { pool: () => databasePool(config.db) });
