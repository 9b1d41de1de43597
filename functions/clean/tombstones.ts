/**
 * Tombstones: the records a deletions object removed, kept in `<project>.<dataset>_deleted` with
 * the load that removed them, so that an object older than that load, cleaned after it, cannot
 * bring a removed record back (its row goes to quarantine, rule `deleted`: cast.ts).
 *
 * A record's name is the text of its identifying values typed as their clean columns are
 * (identitySql), prefixed with its resource when the deleting object names one — a year of a
 * year-specific Ed-Fi ODS, whose ids may repeat from one year to the next. The sets of
 * identifying columns a dataset's tombstones use are listed in `etl.tombstone_columns`, so that a
 * load finds them without scanning the table; a tombstone matches only rows named by its own set.
 */
import type pg from 'pg';
import type { DatasetDefinition, PipelineDefinition } from '../../contract/definition.ts';
import { ident, literal } from '../common/db.ts';
import { ORDER, type LoadRow } from '../common/ledger.ts';
import type { CastColumn } from './cast.ts';

export interface Tombstones {
  table: string;
  columns: string[];
  /** Prepended to the identity: the resource of the load, and a separator. */
  prefix: string;
}

/** The tombstone table of a dataset. */
export function tombstoneTable(pipeline: PipelineDefinition, dataset: DatasetDefinition): string {
  return `${ident(pipeline.project)}.${ident(`${dataset.name}_deleted`)}`;
}

/** The name prefix of a load's records: its resource, when it has one. */
export function tombstonePrefix(load: Pick<LoadRow, 'resource'>): string {
  return load.resource ? `${load.resource}|` : '';
}

/**
 * The column sets in use, or undefined when the dataset has no tombstone table. A table from
 * before the contract — `(id, load_id)`, named by the column that held the Ed-Fi id (`legacy`) —
 * gets its `columns` column and its set on first sight.
 */
async function columnSets(client: pg.PoolClient, pipeline: PipelineDefinition, dataset: DatasetDefinition, legacy: string[]): Promise<string[][] | undefined> {
  const table = tombstoneTable(pipeline, dataset);
  const { rows } = await client.query<{ t: string | null; has: boolean }>(
    `SELECT to_regclass($1)::text AS t,
            EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'columns' AND NOT attisdropped) AS has`,
    [table],
  );
  if (!rows[0]!.t) return undefined;
  if (!rows[0]!.has) {
    await client.query(`ALTER TABLE ${table} ADD COLUMN columns text[] NOT NULL DEFAULT ${literal(`{${legacy.join(',')}}`)}::text[]`);
    await addSet(client, pipeline, dataset, legacy);
  }
  const sets = await client.query<{ columns: string[] }>(`SELECT columns FROM etl.tombstone_columns WHERE project = $1 AND dataset = $2`, [pipeline.project, dataset.name]);
  return sets.rows.map((r) => r.columns);
}

async function addSet(client: pg.PoolClient, pipeline: PipelineDefinition, dataset: DatasetDefinition, columns: string[]): Promise<void> {
  await client.query(`INSERT INTO etl.tombstone_columns (project, dataset, columns) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [pipeline.project, dataset.name, columns]);
}

/** The tombstones a rows load is checked against: for each set of identifying columns the load has. */
export async function tombstonesFor(
  client: pg.PoolClient,
  pipeline: PipelineDefinition,
  dataset: DatasetDefinition,
  load: LoadRow,
  columns: readonly CastColumn[],
  legacy: string[],
): Promise<Tombstones[]> {
  const sets = (await columnSets(client, pipeline, dataset, legacy)) ?? [];
  const table = tombstoneTable(pipeline, dataset);
  return sets.filter((set) => set.every((c) => columns.some((col) => col.name === c))).map((set) => ({ table, columns: set, prefix: tombstonePrefix(load) }));
}

/**
 * Remember records (`ids`: SQL giving one text column, the identity) as removed by `load`; a
 * record removed again by a newer load keeps the newer one.
 */
export async function rememberRemoved(client: pg.PoolClient, pipeline: PipelineDefinition, dataset: DatasetDefinition, load: LoadRow, ids: string, columns: string[], legacy: string[]): Promise<void> {
  const table = tombstoneTable(pipeline, dataset);
  if (!(await columnSets(client, pipeline, dataset, legacy))) {
    await client.query(`CREATE TABLE ${table} (id text PRIMARY KEY, load_id bigint NOT NULL, columns text[] NOT NULL)`);
  }
  await addSet(client, pipeline, dataset, columns);
  await client.query(
    `INSERT INTO ${table} AS d (id, load_id, columns) SELECT DISTINCT $3 || i.id, $1::bigint, $2::text[] FROM (${ids}) i(id)
     ON CONFLICT (id) DO UPDATE SET load_id = excluded.load_id, columns = excluded.columns
      WHERE (SELECT ${ORDER('o')} FROM etl.loads o WHERE o.id = d.load_id) < (SELECT ${ORDER('me')} FROM etl.loads me WHERE me.id = $1)`,
    [load.id, columns, tombstonePrefix(load)],
  );
}
