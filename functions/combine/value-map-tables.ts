/**
 * The pipeline's value maps, kept as a table the views can join: `<project>._value_maps`, one row
 * per (map, constant, descriptor, code value). A clean column holds one constant, the narrowest
 * (functions/clean/value-maps.ts), so a view that asks "is this an absence?" of the AMT's
 * many-to-many map (`Excused Absence` is `AttendanceEvent.ExcusedAbsence` and
 * `AttendanceEvent.Absence`) cannot read it from that column: it joins this table on the raw
 * descriptor instead, matched as the clean step matches it (`etl.map_descriptor`, `etl.map_code`,
 * migration 0015_value_map_match):
 *
 *   JOIN {{schema}}._value_maps m ON m.map = 'amt' AND m.constant = 'AttendanceEvent.Absence'
 *    AND m.descriptor_key = etl.map_descriptor(e.category_descriptor, 'AttendanceEventCategoryDescriptor')
 *    AND m.code_key = etl.map_code(e.category_descriptor)
 *
 * The name starts with `_`, which no dataset or view name may: it cannot collide with one.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { PipelineDefinition } from '../../contract/definition.ts';
import { ident, literal } from '../common/db.ts';
import { analystRole } from '../migrate/migrations.ts';
import { descriptorKey, normalised } from '../clean/value-maps.ts';

/** The table's name in the project schema. */
export const VALUE_MAP_TABLE = '_value_maps';

/** What the table's comment says it holds: the maps' entries, hashed. */
function fingerprint(pipeline: PipelineDefinition): string {
  const entries = pipeline.valueMaps.map((m) => [m.name, (m.entries ?? []).map((e) => [e.constant, e.descriptor ?? '', e.source])]);
  return `civic-etl value maps sha256:${createHash('sha256').update(JSON.stringify(entries)).digest('hex')}`;
}

/**
 * Make `<project>._value_maps` hold the pipeline's value maps, on the caller's transaction (the
 * combine step's, before the views are created). Left alone when it already holds these entries
 * (its comment has their hash), so a clean that changes no map takes no lock on it. Not created
 * for a pipeline without maps.
 */
export async function syncValueMapTable(client: pg.PoolClient, pipeline: PipelineDefinition): Promise<'written' | 'unchanged' | 'none'> {
  const table = `${ident(pipeline.project)}.${ident(VALUE_MAP_TABLE)}`;
  const sha = fingerprint(pipeline);
  const state = async () => {
    // pg_class read as a table (the statement's snapshot), not by to_regclass (the catalog cache,
    // which may not have seen a creation committed while this transaction waited for the lock)
    const { rows } = await client.query<{ comment: string | null }>(
      `SELECT obj_description(c.oid, 'pg_class') AS comment FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2`,
      [pipeline.project, VALUE_MAP_TABLE],
    );
    return { present: rows.length > 0, same: rows[0]?.comment === sha };
  };
  let { present, same } = await state();
  if (!present && pipeline.valueMaps.length === 0) return 'none';
  if (present && same) return 'unchanged';
  // two cleans of the project at once would both create (or rewrite) it: the second waits for the
  // first's commit, then finds the table as it wants it (a clean that changes nothing takes no lock)
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`civic-etl value maps ${pipeline.project}`]);
  ({ present, same } = await state());
  if (present && same) return 'unchanged';
  if (!present) {
    await client.query(
      `CREATE TABLE ${table} (
         map text NOT NULL, constant text NOT NULL, descriptor text, code_value text NOT NULL,
         descriptor_key text NOT NULL, code_key text NOT NULL,
         PRIMARY KEY (map, descriptor_key, code_key, constant))`,
    );
    await client.query(`GRANT SELECT ON ${table} TO ${ident(analystRole(pipeline.project))}`);
  }
  await client.query(`DELETE FROM ${table}`);
  const all = pipeline.valueMaps.flatMap((m) => (m.entries ?? []).map((e) => ({ map: m.name, ...e })));
  // the keys as the clean step computes them (functions/clean/value-maps.ts), so a view matches what a column matched
  await client.query(
    `INSERT INTO ${table} (map, constant, descriptor, code_value, descriptor_key, code_key)
     SELECT DISTINCT ON (map, ${descriptorKey("coalesce(descriptor, '')")}, ${normalised('source')}, constant)
            map, constant, descriptor, source, ${descriptorKey("coalesce(descriptor, '')")}, ${normalised('source')}
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS e(map, constant, descriptor, source)`,
    [all.map((e) => e.map), all.map((e) => e.constant), all.map((e) => e.descriptor ?? null), all.map((e) => e.source)],
  );
  await client.query(`COMMENT ON TABLE ${table} IS ${literal(sha)}`);
  return 'written';
}
