/**
 * Nested collections (`read.arrays: explode`): each array path of a JSON file is a child table
 * `<dataset>_<path>`, and its rows follow the record they came from.
 *
 * - **Keys.** In a dataset with a key, every child row carries its record's key as
 *   `parent_<key column>` (for each key column), the position of the row it hangs from in each
 *   array above it (`<array>_index`, for arrays in arrays) and its own position `index` (from 0).
 *   Together they are the child table's primary key. Joins are plain SQL:
 *   `… FROM students s JOIN students_addresses a ON a.parent_id = s.id` and, one level down,
 *   `JOIN students_addresses_periods p ON p.parent_id = a.parent_id AND p.addresses_index = a.index`.
 *   A dataset without a key keeps `parent`, the row number of the parent in its own table of the
 *   same file (`_source_line`), and its nested rows go with their file once none of the file's
 *   records is left.
 * - **Following.** A file's tables are cleaned together, in one transaction, parent first. Every
 *   parent row the load removes or replaces (upserted with new values, replaced by a snapshot,
 *   deleted) takes its children in every child table with it; the file's children then come in
 *   for the parent rows it loaded. A child whose parent row was not loaded — quarantined, older
 *   than the row already there, or deleted by a newer object — goes to quarantine with its parent's
 *   reason (rule `parent`, or `superseded`, or `deleted`), never silently.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { ColumnType, DatasetDefinition, PipelineDefinition } from '../../contract/definition.ts';
import { ident, literal } from '../common/db.ts';
import type { LoadRow } from '../common/ledger.ts';
import { PermanentError } from '../common/errors.ts';
import type { CastColumn } from './cast.ts';
import { launder } from './columns.ts';

/** The column a child row's table gets for the position of the row it hangs from (the `_parent` field). */
const PARENT_FIELD = '_parent';

/** A table of one file as the clean step fills it: the dataset's own, or a child table. */
export interface FileTable {
  load: LoadRow;
  /** Clean table name (unqualified). */
  name: string;
  /** Columns that identify a row (the dataset's key; a child table's inherited key and `index`), with their clean types; empty without a key. */
  identity: { name: string; type: ColumnType }[];
}

/**
 * A child table's name: `<dataset>_<path>`, laundered. Names of at most 45 characters stay whole
 * (its quarantine table and index names then fit PostgreSQL's 63); a longer one is cut to 36 and
 * given 8 hex digits of a hash of the whole, so that two paths never share a table
 * (`…_addresses` and `…_addresses_periods` of a long dataset name). The ledger records each
 * load's table (`detected.table`).
 */
export function childTableName(dataset: DatasetDefinition, child: string): string {
  const name = `${dataset.name}_${launder([child])[0]!}`;
  if (name.length <= 45) return name;
  return `${name.slice(0, 36).replace(/_+$/, '')}_${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

/** The array path of a child table's load (recorded by the stage step), or undefined for a dataset's own load. */
export function childPathOf(load: LoadRow): string | undefined {
  return (load.detected as { child?: string } | null)?.child;
}

/** The loads of a file's child tables that hang (directly or further down) from `root`, parents before children. */
export async function childLoadsOf(client: pg.PoolClient, root: LoadRow): Promise<LoadRow[]> {
  const { rows } = await client.query<LoadRow>(
    `WITH RECURSIVE tree AS (
       SELECT l.* FROM etl.loads l WHERE l.owner_id = $1
       UNION ALL
       SELECT l.* FROM etl.loads l JOIN tree t ON l.owner_id = t.id
     ) SELECT * FROM tree ORDER BY id`,
    [root.id],
  );
  return rows.map((r) => ({ ...r, id: Number(r.id), owner_id: Number(r.owner_id), order_seq: r.order_seq === null ? null : Number(r.order_seq) }));
}

/**
 * A file's tables are one object: if one of them failed to stage, the object fails; if one is
 * still being staged, the clean waits (the message comes back).
 */
export function checkChildLoads(root: LoadRow, loads: readonly LoadRow[]): void {
  const failed = loads.find((l) => l.status === 'failed');
  if (failed)
    throw new PermanentError(`${root.object_key}: its nested table ${childPathOf(failed)} could not be staged (${failed.error ?? 'see load ' + failed.id}); none of the file's tables is applied`, {
      file: root.object_key,
    });
  const waiting = loads.find((l) => l.status === 'received');
  if (waiting) throw new Error(`${root.object_key}: its nested table ${childPathOf(waiting)} (load ${waiting.id}) is still being staged; the clean is retried`);
}

/**
 * The child tables a dataset has (from the ledger: every child table a load of it filled), that
 * exist now — for deletions and removals, whose children are in tables of earlier files.
 */
export async function childTablesOf(client: pg.PoolClient, pipeline: PipelineDefinition, dataset: DatasetDefinition): Promise<string[]> {
  const { rows } = await client.query<{ child: string }>(
    `SELECT DISTINCT detected->>'child' AS child FROM etl.loads
      WHERE project = $1 AND dataset = $2 AND owner_id IS NOT NULL AND status = 'loaded' AND detected ? 'child'`,
    [pipeline.project, dataset.name],
  );
  const names = [...new Set(rows.map((r) => childTableName(dataset, r.child)))];
  if (names.length === 0) return [];
  const exists = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind = 'r'`,
    [pipeline.project, names],
  );
  return exists.rows.map((r) => r.name);
}

/**
 * Parent rows left (removed or replaced by this load; noted in `removed`: the dataset's key
 * columns, then `_load_id`): their children leave every child table of the dataset. With a key,
 * children carry the key (`parent_<key>`); without one, they go with the file they came from.
 */
export async function followRemovedParents(client: pg.PoolClient, pipeline: PipelineDefinition, dataset: DatasetDefinition, removed: string): Promise<void> {
  const tables = await childTablesOf(client, pipeline, dataset);
  const schema = ident(pipeline.project);
  for (const name of tables) {
    const table = `${schema}.${ident(name)}`;
    if (dataset.clean.key.length > 0) {
      const match = dataset.clean.key.map((k) => `c.${ident(`parent_${k}`)}::text = r.${ident(k)}`).join(' AND ');
      await client.query(`DELETE FROM ${table} c USING ${removed} r WHERE ${match}`);
    } else {
      // without a key, a nested row goes with the file it came from, once none of that file's
      // records is left in the dataset's table
      const parent = `${schema}.${ident(dataset.name)}`;
      await client.query(
        `DELETE FROM ${table} c USING etl.loads cl
          WHERE cl.id = c._load_id AND cl.parent_id IN (SELECT pl.parent_id FROM etl.loads pl WHERE pl.id IN (SELECT DISTINCT r._load_id FROM ${removed} r))
            AND NOT EXISTS (SELECT 1 FROM ${parent} p JOIN etl.loads rl ON rl.id = p._load_id WHERE rl.parent_id = cl.parent_id)`,
      );
    }
  }
}

/**
 * Prepare a child table's staged rows: each gets its parent's identity (from the parent's clean
 * table, as this transaction just filled it), rows whose parent row was not loaded go to the
 * child's quarantine with the parent's reason and leave the staging table. Returns the columns to
 * cast besides the child's own (the inherited identity) and the child table's identity.
 */
export async function inheritParent(
  client: pg.PoolClient,
  opts: { schema: string; child: LoadRow; owner: FileTable; staging: string; quarantine: string; ownerQuarantine: string },
): Promise<{ inherited: CastColumn[]; identity: FileTable['identity']; dropped: string[] }> {
  const { child, owner, staging } = opts;
  const header = child.header ?? [];
  const columns = child.detected?.columns ?? [];
  const parentColumn = columns[header.indexOf(PARENT_FIELD)];
  const indexAt = header.indexOf('_index');
  if (!parentColumn || indexAt < 0) throw new PermanentError(`${child.object_key}: a nested table without its ${PARENT_FIELD} and _index columns`, { file: child.object_key });
  const ownerTable = `${opts.schema}.${ident(owner.name)}`;
  const ownerIsChild = childPathOf(owner.load) !== undefined;
  // the child's identity: what identifies its parent row (renamed), then its own position
  const ownerLast = ownerIsChild ? launder([childPathOf(owner.load)!.split('.').at(-1)!])[0]! : '';
  const rename = (name: string) => (!ownerIsChild ? `parent_${name}` : name === 'index' ? `${ownerLast}_index` : name);
  const own = new Set(launder(header).filter((_, i) => i !== header.indexOf(PARENT_FIELD)));
  const inheritedNames = owner.identity.map((c) => rename(c.name));
  const clash = inheritedNames.find((n) => own.has(n));
  if (clash) {
    throw new PermanentError(
      `${child.object_key}: the nested table ${childPathOf(child)} has a field of its own that becomes "${clash}", the column that carries its record's key; read this array as JSON (read.arrays: json)`,
      {
        file: child.object_key,
      },
    );
  }
  const set = owner.identity.map((c, i) => `${ident(`_p_${i}`)} = o.${ident(c.name)}::text`);
  await client.query(`ALTER TABLE ${staging} ${[...owner.identity.map((_, i) => `ADD COLUMN ${ident(`_p_${i}`)} text`), 'ADD COLUMN _p_found boolean'].join(', ')}`);
  await client.query(
    `UPDATE ${staging} s SET ${[...set, '_p_found = true'].join(', ')}
       FROM ${ownerTable} o WHERE o._load_id = $1 AND o._source_line = s.${ident(parentColumn)}::bigint`,
    [owner.load.id],
  );
  // a parent row that did not land: its children go to quarantine with its reason
  await client.query(
    `INSERT INTO ${opts.quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
     SELECT $1, s._source_line, 'parent', s.${ident(parentColumn)},
            CASE WHEN q.rule IN ('superseded', 'deleted') THEN q.rule ELSE 'parent' END,
            format('its parent row (%s %s) was not loaded: %s', ${literal(owner.name)}, s.${ident(parentColumn)}, coalesce(q.reason, 'not in the parent table'))
       FROM ${staging} s LEFT JOIN LATERAL (
              SELECT oq.rule, oq.reason FROM ${opts.ownerQuarantine} oq WHERE oq.load_id = $2 AND oq.source_line = s.${ident(parentColumn)}::bigint
               ORDER BY oq.rule IN ('superseded', 'deleted') DESC LIMIT 1) q ON true
      WHERE s._p_found IS NULL`,
    [child.id, owner.load.id],
  );
  await client.query(`DELETE FROM ${staging} WHERE _p_found IS NULL`);
  const inherited = owner.identity.map((c, i): CastColumn => ({ name: inheritedNames[i]!, type: c.type, required: true, from: `_p_${i}` }));
  const index = launder(header)[indexAt]!;
  const identity = owner.identity.length > 0 ? [...inherited.map((c) => ({ name: c.name, type: c.type })), { name: index, type: 'integer' as ColumnType }] : [];
  // with a key, the parent's row number in its file means nothing in the table: its key replaces it
  return { inherited, identity, dropped: owner.identity.length > 0 ? [parentColumn] : [] };
}
