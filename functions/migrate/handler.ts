import { migrateEnv, parseEnv } from '../common/config.ts';
import { databasePool } from '../common/db.ts';
import { createMigrateHandler } from './migrate-handler.ts';
import { mapStackTracesOnDemand } from '../common/stack-maps.ts';

// stack traces at their place in the sources, the bundle's maps read only when one is (stack-maps.ts)
mapStackTracesOnDemand();

/** The migrate function's configuration, parsed once at start: a missing or invalid variable fails here, by name. */
const config = parseEnv(migrateEnv, process.env, 'the migrate function');

/** The Lambda entry point: the migrate handler on this environment and the real database. */
export const handler = await createMigrateHandler(config, { pool: () => databasePool(config.db) });
