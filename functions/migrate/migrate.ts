import { createHash } from 'node:crypto';
import type pg from 'pg';
import { MIGRATIONS, projectSchemaSql, type Migration } from './migrations.ts';

/** Any fixed number: the advisory lock that serialises concurrent migrators (two deploys, runner + test). */
const MIGRATION_LOCK = 4_242_001;

export interface MigrationResult {
  applied: string[];
  alreadyApplied: string[];
}

const checksum = (m: Migration) => createHash('sha256').update(m.sql).digest('hex');

/**
 * Apply pending migrations, then make the project's schemas exist. Idempotent: safe on every
 * deploy and every local start. A shipped migration whose text changed is an error.
 */
export async function migrate(pool: pg.Pool, project: string | undefined, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationResult> {
  const client = await pool.connect();
  const result: MigrationResult = { applied: [], alreadyApplied: [] };
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS etl;
      CREATE TABLE IF NOT EXISTS etl.schema_migrations (
        version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: string; checksum: string }>('SELECT version, checksum FROM etl.schema_migrations');
    const done = new Map(rows.map((r) => [r.version, r.checksum]));
    for (const m of migrations) {
      const sum = checksum(m);
      const previous = done.get(m.version);
      if (previous !== undefined) {
        if (previous !== sum) throw new Error(`migration ${m.version} was changed after it was applied; add a new migration instead`);
        result.alreadyApplied.push(m.version);
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO etl.schema_migrations (version, checksum) VALUES ($1, $2)', [m.version, sum]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${m.version} failed: ${(error as Error).message}`, { cause: error });
      }
      result.applied.push(m.version);
    }
    if (project) await client.query(projectSchemaSql(project));
    return result;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
}
