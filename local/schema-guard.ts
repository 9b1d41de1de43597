/**
 * Which schemas belong to a pipeline: `civic-etl load` writes into one only when told to, since a
 * table it leaves there (or replaces) breaks that pipeline's clean and combine steps later.
 */
import type pg from 'pg';
import { analystRole } from '../functions/migrate/migrations.ts';

/**
 * The project that owns `schema`, if any: the ledger's own schema `etl`, a project's schema
 * (migrate creates it with its `<project>_analyst` role, granted USAGE on it) or its
 * `<project>_staging`; or a schema the ledger has pipeline loads for (not `civic-etl load`'s own,
 * which are recorded from bucket `local-file`).
 */
export async function pipelineOwning(pool: Pick<pg.Pool, 'query'>, schema: string): Promise<string | undefined> {
  if (schema === 'etl') return 'civic-etl (the ledger)';
  const project = schema.endsWith('_staging') ? schema.slice(0, -'_staging'.length) : schema;
  const { rows } = await pool.query<{ role: boolean; loads: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_roles r JOIN pg_namespace n ON n.nspname = $1
                     WHERE r.rolname = $2 AND has_schema_privilege(r.oid, n.oid, 'USAGE')) AS role,
            EXISTS (SELECT 1 FROM etl.loads WHERE project = $1 AND bucket <> 'local-file') AS loads`,
    [project, analystRole(project)],
  );
  return rows[0]?.role || rows[0]?.loads ? project : undefined;
}
