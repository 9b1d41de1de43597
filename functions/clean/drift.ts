/**
 * Schema drift: a load whose columns differ from the dataset's clean table. Four kinds of change
 * are told apart — a column added, missing, renamed or re-typed — and the dataset's `drift`
 * policy decides what happens to each:
 *
 * | change    | evolve (default)                         | freeze   | quarantine                                     |
 * | --------- | ---------------------------------------- | -------- | ---------------------------------------------- |
 * | added     | `ALTER TABLE … ADD COLUMN`               | rejected | rows with a value in it → quarantine           |
 * | missing   | the column stays, empty for this load    | rejected | the column stays, empty for this load          |
 * | renamed   | the file's column fills the clean column | rejected | rows with a value in it → quarantine           |
 * | re-typed  | the column is widened (`ALTER … TYPE`)   | rejected | rows whose value does not fit → quarantine     |
 * | geometry  | widened to any geometry (geometryMisfit) | rejected | rows whose geometry does not fit → quarantine  |
 *
 * A rename is a guess, so it is only taken when it is safe to explain (see compareSchemas): the
 * same name once case, spaces and punctuation are ignored (a *spelling* change — the same column
 * under every policy, as declared columns are matched), or the one column that disappeared and
 * the one that appeared between the same two unchanged neighbours, with a type that fits.
 * A re-type is judged on this load's values, not on the detected type alone: a column is
 * re-typed when at least one of its values does not cast to the clean column's type.
 *
 * Every change is recorded in the ledger (`etl.loads.schema_changes`), whatever the policy.
 * Datasets that declare `clean.columns` have a fixed clean table: there, drift is a change in the
 * file's header relative to the previous load (sourceDrift) — recorded, rejected under `freeze`,
 * and otherwise left to the definition (undeclared columns are ignored, a missing declared column
 * fails the load as it always did).
 */
import type pg from 'pg';
import { COLUMN_TYPES, type ColumnType, type DatasetDefinition, type PipelineDefinition } from '../../contract/definition.ts';
import { ViewError, viewSql } from '../combine/views.ts';
import { ident, literal, type Queryable } from '../common/db.ts';
import { PermanentError } from '../common/errors.ts';
import { ORDER } from '../common/ledger.ts';
import { logger } from '../common/logger.ts';
import { describeChange, type DriftPolicy, type SchemaChange } from '../common/schema-change.ts';
import type { CastColumn } from './cast.ts';
import { SPACE_CHARS } from './rules.ts';
import { DATE_TYPES } from '../../contract/rules.ts';
import { normaliseHeader } from './columns.ts';
import { coordinate, geometryExpr, geometryType, widerGeometryType, type GeometryPlan } from './geometry.ts';

/** The dataset's drift policy: `evolve` unless it says otherwise. */
export function driftPolicy(dataset: Pick<DatasetDefinition, 'drift'>): DriftPolicy {
  return dataset.drift ?? 'evolve';
}

/**
 * A load rejected because its columns changed under the `freeze` policy — or one that failed for
 * another reason while its header had changed: the changes travel with the error to the ledger.
 */
export class SchemaDriftError extends PermanentError {
  override name = 'SchemaDriftError';
  constructor(
    message: string,
    readonly changes: readonly SchemaChange[],
    position: PermanentError['position'] = {},
  ) {
    super(message, position);
  }
}

/** A column as the comparison sees it: a clean-step type (`integer`, `text`…) or a geometry type. */
export interface SchemaColumn {
  name: string;
  type: string;
}

/** Two columns taken for the same one: by name, or as a rename. */
export interface ColumnPair<T extends SchemaColumn = SchemaColumn> {
  clean: SchemaColumn;
  load: T;
  renamed?: 'spelling' | 'position';
}

export interface SchemaComparison<T extends SchemaColumn = SchemaColumn> {
  pairs: ColumnPair<T>[];
  /** In the load, not in the clean table. */
  added: T[];
  /** In the clean table, not in the load. */
  missing: SchemaColumn[];
}

/**
 * For each clean type, the wider ones that can hold every value of it: a value of the narrower
 * type, written as text, also casts to the wider one. Widening follows these steps.
 */
const WIDER: Record<ColumnType, readonly ColumnType[]> = {
  integer: ['bigint', 'double', 'numeric', 'text'],
  bigint: ['numeric', 'text'],
  double: ['numeric', 'text'],
  numeric: ['text'],
  date: ['timestamp', 'timestamptz', 'text'],
  timestamp: ['timestamptz', 'text'],
  timestamptz: ['text'],
  boolean: ['text'],
  text: [],
};
/** Narrowest first: widening picks the first type both fit. */
const BY_WIDTH: readonly ColumnType[] = ['integer', 'bigint', 'double', 'numeric', 'date', 'timestamp', 'timestamptz', 'boolean', 'text'];

export function isColumnType(type: string): type is ColumnType {
  return Object.hasOwn(WIDER, type);
}

/** Every value of type `from` also fits a column of type `to` (a geometry only fits the same geometry type). */
export function fitsType(from: string, to: string): boolean {
  if (from === to) return true;
  return isColumnType(from) && isColumnType(to) && WIDER[from].includes(to);
}

/** The narrowest type that holds the values of both: integer + numeric → numeric, date + boolean → text. */
export function widerType(a: ColumnType, b: ColumnType): ColumnType {
  return BY_WIDTH.find((t) => fitsType(a, t) && fitsType(b, t)) ?? 'text';
}

/** A rename by position must keep a type that fits; into a text column, only text (anything fits text). */
function mayBeRenameOf(load: SchemaColumn, clean: SchemaColumn): boolean {
  return clean.type === 'text' ? load.type === 'text' : fitsType(load.type, clean.type);
}

/**
 * Pair the load's columns with the clean table's: by name; then renames in spelling (the same
 * name once case, spaces and punctuation are ignored: `costusd` ↔ `cost_usd`); then renames by
 * position — a column that disappeared and one that appeared are the same column when they are
 * the only change between the same two unchanged neighbours (or table ends) and the new one's
 * type fits the old one's. Everything else is added or missing. Pure, so that it can be explained
 * (and tested) without a database.
 */
export function compareSchemas<T extends SchemaColumn>(clean: readonly SchemaColumn[], load: readonly T[]): SchemaComparison<T> {
  const pairs: ColumnPair<T>[] = [];
  const pairedClean = new Map<string, string>(); // clean name → load name
  const pairedLoad = new Map<string, string>(); // load name → clean name
  const pair = (c: SchemaColumn, l: T, renamed?: ColumnPair['renamed']) => {
    pairs.push(renamed ? { clean: c, load: l, renamed } : { clean: c, load: l });
    pairedClean.set(c.name, l.name);
    pairedLoad.set(l.name, c.name);
  };
  const byName = new Map(clean.map((c) => [c.name, c]));
  for (const l of load) {
    const c = byName.get(l.name);
    if (c) pair(c, l);
  }
  const spelling = (cols: readonly SchemaColumn[], paired: Map<string, string>) => {
    const groups = new Map<string, SchemaColumn[]>();
    for (const c of cols) {
      if (paired.has(c.name)) continue;
      const key = normaliseHeader(c.name);
      groups.set(key, [...(groups.get(key) ?? []), c]);
    }
    return groups;
  };
  const cleanSpelling = spelling(clean, pairedClean);
  for (const [key, ls] of spelling(load, pairedLoad)) {
    const cs = cleanSpelling.get(key);
    // only an unambiguous match: one column each side
    if (key && ls.length === 1 && cs?.length === 1) pair(cs[0]!, ls[0] as T, 'spelling');
  }
  const cleanSlots = slotsOf(clean, (c) => (pairedClean.has(c.name) ? c.name : undefined));
  const loadSlots = slotsOf(load, (l) => pairedLoad.get(l.name));
  const bySlot = new Map<string, { clean: SchemaColumn[]; load: T[] }>();
  const slot = (key: string) => bySlot.get(key) ?? (bySlot.set(key, { clean: [], load: [] }), bySlot.get(key)!);
  for (const c of clean) if (!pairedClean.has(c.name)) slot(cleanSlots.get(c)!).clean.push(c);
  for (const l of load) if (!pairedLoad.has(l.name)) slot(loadSlots.get(l)!).load.push(l);
  for (const { clean: cs, load: ls } of bySlot.values()) {
    if (cs.length === 1 && ls.length === 1 && mayBeRenameOf(ls[0]!, cs[0]!)) pair(cs[0]!, ls[0]!, 'position');
  }
  return {
    pairs,
    added: load.filter((l) => !pairedLoad.has(l.name)),
    missing: clean.filter((c) => !pairedClean.has(c.name)),
  };
}

/** Each unpaired column's place: the paired (clean) names of its nearest paired neighbours, `^`/`$` at the ends. */
function slotsOf<T extends SchemaColumn>(columns: readonly T[], pairedName: (c: T) => string | undefined): Map<T, string> {
  const before: string[] = [];
  let previous = '^';
  for (const c of columns) {
    before.push(previous);
    previous = pairedName(c) ?? previous;
  }
  const out = new Map<T, string>();
  let next = '$';
  for (let i = columns.length - 1; i >= 0; i--) {
    const c = columns[i]!;
    const name = pairedName(c);
    if (name === undefined) out.set(c, `${before[i]}\u0000${next}`);
    else next = name;
  }
  return out;
}

/** The freeze policy's rejection: every change, then what it means. */
function frozen(dataset: string, file: string, changes: SchemaChange[]): SchemaDriftError {
  // only a rename in spelling is let through (the same column, as for declared columns)
  const rejected = changes.map((c) => (c.basis === 'spelling' ? c : { ...c, action: 'rejected' as const }));
  const listed = rejected.filter((c) => c.action === 'rejected').map((c) => describeChange(c));
  return new SchemaDriftError(`dataset ${dataset}: ${listed.join(', ')} — the drift policy "freeze" rejects ${file}; the clean table and views are unchanged`, rejected, { file, line: 1 });
}

/** Record a load's changes in the ledger (nothing when there are none). */
export async function recordSchemaChanges(db: Queryable, loadId: number, changes: readonly SchemaChange[]): Promise<void> {
  if (changes.length === 0) return;
  await db.query('UPDATE etl.loads SET schema_changes = $2::jsonb WHERE id = $1', [loadId, JSON.stringify(changes)]);
}

/**
 * A declared dataset's drift: headers the file gained or lost since the previous applied load,
 * matched ignoring case, spaces and punctuation (as declared columns are). The clean table does
 * not change — the definition decides it — so under evolve and quarantine a new column (never a
 * declared one: the previous load had those) is `ignored`, and so is a vanished undeclared one; a
 * vanished declared one fails the load (mapColumns says so: `rejected`). Under freeze every
 * change rejects the load.
 */
export async function sourceDrift(client: pg.PoolClient, dataset: DatasetDefinition, load: { id: number; project: string; header: string[] | null; object_key: string }): Promise<SchemaChange[]> {
  const { rows } = await client.query<{ header: string[] | null }>(
    `SELECT l.header FROM etl.loads l WHERE l.project = $1 AND l.dataset = $2 AND l.status = 'loaded' AND l.id <> $3 AND l.owner_id IS NULL ORDER BY ${ORDER('l')} DESC LIMIT 1`,
    [load.project, dataset.name, load.id],
  );
  const previous = rows[0]?.header;
  if (!previous || !load.header) return []; // the first load: nothing to drift from
  const declared = new Set((dataset.clean.columns ?? []).map((c) => normaliseHeader(c.source ?? c.name)));
  const now = new Set(load.header.map(normaliseHeader));
  const before = new Set(previous.map(normaliseHeader));
  const policy = driftPolicy(dataset);
  const changes: SchemaChange[] = [
    ...load.header.filter((h) => normaliseHeader(h) && !before.has(normaliseHeader(h))).map((h): SchemaChange => ({ change: 'added', column: h, from: null, to: null, policy, action: 'ignored' })),
    ...previous
      .filter((h) => normaliseHeader(h) && !now.has(normaliseHeader(h)))
      .map((h): SchemaChange => ({ change: 'missing', column: h, from: null, to: null, policy, action: declared.has(normaliseHeader(h)) ? 'rejected' : 'ignored' })),
  ];
  if (policy === 'freeze' && changes.length > 0) throw frozen(dataset.name, load.object_key, changes);
  return changes;
}

/** What a load of a dataset without declared columns is cleaned into, once drift is dealt with. */
export interface ReconciledSchema {
  /** The columns to cast into: clean names and clean types. */
  columns: CastColumn[];
  /** The geometry to load, if the clean table has (or now has) a place for it. */
  geometry: GeometryPlan | undefined;
  changes: SchemaChange[];
  /** Rows (source lines) this step sent to quarantine. */
  quarantinedRows: number;
}

export interface DriftContext {
  client: pg.PoolClient;
  pipeline: PipelineDefinition;
  dataset: DatasetDefinition;
  loadId: number;
  /** Qualified staging table. */
  staging: string;
  /** Qualified quarantine table (exists). */
  quarantine: string;
  /** The object key, for messages. */
  file: string;
  /** The load's columns: laundered names, detected types, staging columns. */
  columns: readonly CastColumn[];
  geometry: GeometryPlan | undefined;
}

type LoadColumn = SchemaColumn & { from?: string; cast?: CastColumn };

/**
 * Compare the load with the clean table and apply the dataset's drift policy: alter the table
 * (evolve), reject the load (freeze, a SchemaDriftError) or quarantine the rows the table has no
 * place for (quarantine — they are also taken out of the staging table, which the clean step
 * drops at its commit anyway). `undefined` when there is no clean table yet (the first load: no
 * drift) or it must be rebuilt because the *definition* changed (a key, the geometry column's
 * name or SRID, a type the clean step does not make): the caller then (re)creates it.
 */
export async function reconcileSchema(ctx: DriftContext): Promise<ReconciledSchema | undefined> {
  const { client, pipeline, dataset } = ctx;
  const table = await cleanTableColumns(client, pipeline.project, dataset.name);
  if (!table) return undefined;
  const geometryColumn: LoadColumn[] = ctx.geometry ? [{ name: ctx.geometry.column, type: geometryType(ctx.geometry) }] : [];
  const load: LoadColumn[] = [...ctx.columns.map((c) => ({ name: c.name, type: c.type, from: c.from, cast: c })), ...geometryColumn];
  const rebuild = definitionChange(table, load, dataset);
  if (rebuild) {
    logger.info('clean table no longer matches the definition: rebuilding', { dataset: dataset.name, reason: rebuild });
    return undefined;
  }
  // the load lists its geometry last: so does the comparison, wherever the table has it
  const isGeometry = (c: SchemaColumn) => c.type.startsWith('geometry');
  const comparison = compareSchemas([...table.columns.filter((c) => !isGeometry(c)), ...table.columns.filter(isGeometry)], load);
  await client.query(`SET LOCAL datestyle = 'ISO, MDY'`);
  const retyped = await misfits(ctx, comparison.pairs);
  const policy = driftPolicy(dataset);
  const changes: SchemaChange[] = [
    ...comparison.added.map((l): SchemaChange => ({ change: 'added', column: l.name, from: null, to: l.type, policy, action: 'added' })),
    ...comparison.missing.map((c): SchemaChange => ({ change: 'missing', column: c.name, from: c.type, to: null, policy, action: 'kept' })),
    ...comparison.pairs.filter((p) => p.renamed).map((p): SchemaChange => ({ change: 'renamed', column: p.clean.name, from: p.clean.name, to: p.load.name, policy, action: 'mapped', basis: p.renamed })),
    ...retyped.map(({ pair, line }): SchemaChange => ({ change: 'retyped', column: pair.clean.name, from: pair.clean.type, to: pair.load.type, policy, action: 'widened', line })),
  ];
  // a rename in spelling only is the same column under every policy (as for declared columns)
  const structural = changes.filter((c) => !(c.change === 'renamed' && c.basis === 'spelling'));
  if (policy === 'freeze' && structural.length > 0) throw frozen(dataset.name, ctx.file, changes);
  if (policy === 'quarantine') return quarantineDrift(ctx, comparison, retyped, changes);
  if (policy === 'evolve') return evolveTable(ctx, comparison, retyped, changes);
  return { columns: castColumns(comparison.pairs, new Map()), geometry: geometryKept(ctx, comparison), changes, quarantinedRows: 0 };
}

interface CleanTable {
  columns: SchemaColumn[];
  /** pg types the clean step does not make (someone altered the table by hand). */
  foreign: string[];
  /** The primary key's columns, in order (none: empty). */
  primaryKey: string[];
}

/** How pg_catalog spells the clean types whose short names differ. */
const FROM_CATALOG: Record<string, ColumnType> = {
  'timestamp without time zone': 'timestamp',
  'timestamp with time zone': 'timestamptz',
  'double precision': 'double',
};

/** The clean table's columns in table order, lineage (`_…`) left out; `undefined` when there is no table. */
async function cleanTableColumns(client: pg.PoolClient, project: string, dataset: string): Promise<CleanTable | undefined> {
  const { rows } = await client.query<{ name: string; type: string; pk: string[] | null }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
            (SELECT array_agg(ka.attname::text ORDER BY k.ord) FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute ka ON ka.attrelid = i.indrelid AND ka.attnum = k.attnum
              WHERE i.indrelid = a.attrelid AND i.indisprimary) AS pk
       FROM pg_attribute a WHERE a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text))
        AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [project, dataset],
  );
  if (rows.length === 0) return undefined;
  const columns = rows
    .filter((r) => !r.name.startsWith('_')) // lineage: the pipeline's own columns
    .map((r) => ({ name: r.name, type: FROM_CATALOG[r.type] ?? r.type }));
  return {
    columns,
    foreign: columns.filter((c) => !isColumnType(c.type) && !c.type.startsWith('geometry')).map((c) => `${c.name} ${c.type}`),
    primaryKey: rows[0]!.pk ?? [],
  };
}

/** The SRID of a geometry column type (`geometry(Point,4326)` → 4326), `undefined` for plain `geometry`. */
function sridOf(type: string): number | undefined {
  const m = /,(-?\d+)\)$/.exec(type);
  return m ? Number(m[1]) : undefined;
}

/**
 * Differences that come from the definition, not the file: the table must be rebuilt as before
 * (DROP … CASCADE; declared views are recreated in the same transaction).
 */
function definitionChange(table: CleanTable, load: readonly LoadColumn[], dataset: DatasetDefinition): string | undefined {
  const key = dataset.clean.mode === 'history' && dataset.clean.key.length > 0 ? [...dataset.clean.key, 'valid_from'] : dataset.clean.key;
  if (table.primaryKey.join(',') !== key.join(',')) {
    const describe = (k: readonly string[]) => (k.length ? `(${k.join(', ')})` : 'none');
    return `the table's primary key is ${describe(table.primaryKey)}, the dataset's key ${describe(key)}`;
  }
  if (table.foreign.length > 0) return `columns of types the clean step does not make: ${table.foreign.join(', ')}`;
  const geometry = (t: string) => t.startsWith('geometry');
  for (const c of table.columns) {
    const l = load.find((x) => x.name === c.name);
    if (l && geometry(l.type) !== geometry(c.type)) return `column "${c.name}" is ${c.type} in the table, ${l.type} in the load`;
    // the geometry type follows the data (narrowed, widened); only the SRID is the definition's
    const srid = sridOf(c.type);
    if (l && geometry(c.type) && srid !== undefined && srid !== dataset.geometry.srid) return `geometry column "${c.name}" is ${c.type}, the definition's SRID is ${dataset.geometry.srid}`;
  }
  const tableGeometry = table.columns.find((c) => geometry(c.type));
  const loadGeometry = load.find((l) => geometry(l.type));
  if (tableGeometry && loadGeometry && tableGeometry.name !== loadGeometry.name) return `geometry column renamed from "${tableGeometry.name}" to "${loadGeometry.name}"`;
  if (tableGeometry && !dataset.geometry.enabled) return 'geometry disabled in the definition';
  return undefined;
}

/**
 * The paired columns whose load type does not fit the clean type and that hold at least one
 * value that does not cast to it — one scan of the staging table, only when there are candidates.
 * A coarser detected type (a profile that failed, a sample that saw one odd value) whose values
 * all fit is not a change.
 */
async function misfits(ctx: DriftContext, pairs: readonly ColumnPair<LoadColumn>[]): Promise<{ pair: ColumnPair<LoadColumn>; line: number }[]> {
  const candidates = pairs.filter((p) => p.load.from && isColumnType(p.clean.type) && !fitsType(p.load.type, p.clean.type));
  if (candidates.length === 0) return [];
  const parts = candidates.map((p, i) => `min(s._source_line) FILTER (WHERE ${doesNotFit(p)}) AS l${i}`);
  const { rows } = await ctx.client.query<Record<string, string | null>>(`SELECT ${parts.join(', ')} FROM ${ctx.staging} s`);
  return candidates.flatMap((pair, i) => (rows[0]![`l${i}`] === null ? [] : [{ pair, line: Number(rows[0]![`l${i}`]) }]));
}

/** SQL: this staged value (alias `s`) is not empty and does not cast to the clean column's type. */
function doesNotFit(p: ColumnPair<LoadColumn>): string {
  const v = `NULLIF(btrim(s.${ident(p.load.from!)}, ${literal(SPACE_CHARS)}), '')`;
  const type = p.clean.type as ColumnType;
  // a date this file writes in no known order (01/02/2021) is not one PostgreSQL may read month-first by guess
  const unordered = DATE_TYPES.includes(type) && !p.load.cast?.parse?.date ? ` OR ${v} !~ '^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}'` : '';
  return `${v} IS NOT NULL AND (NOT etl.is_valid_as(${v}, ${literal(COLUMN_TYPES[type])})${unordered})`;
}

/** The load's columns as cast into the clean table: the clean name and the clean type (after any widening). */
function castColumns(pairs: readonly ColumnPair<LoadColumn>[], widened: ReadonlyMap<string, ColumnType>): CastColumn[] {
  return pairs.filter((p) => p.load.cast).map((p) => ({ ...p.load.cast!, name: p.clean.name, type: widened.get(p.clean.name) ?? (p.clean.type as ColumnType) }));
}

/** The load's geometry, when the clean table keeps a column for it. */
function geometryKept(ctx: DriftContext, comparison: SchemaComparison<LoadColumn>): GeometryPlan | undefined {
  return ctx.geometry && comparison.pairs.some((p) => p.clean.name === ctx.geometry!.column) ? ctx.geometry : undefined;
}

/**
 * evolve: the clean table follows the file. New columns are added (at the end; views that name
 * their columns are not affected), re-typed ones widened in place, renamed ones filled from the
 * file's column, missing ones left empty. No DROP: views keep working — those that read a widened
 * column are recreated around the ALTER (a column's type cannot change under a view), and
 * declared views are re-read so that a `SELECT *` view shows the new columns.
 */
async function evolveTable(ctx: DriftContext, comparison: SchemaComparison<LoadColumn>, retyped: readonly { pair: ColumnPair<LoadColumn> }[], changes: SchemaChange[]): Promise<ReconciledSchema> {
  const { client, pipeline, dataset } = ctx;
  const table = `${ident(pipeline.project)}.${ident(dataset.name)}`;
  const widened = new Map(retyped.map(({ pair }) => [pair.clean.name, widerType(pair.clean.type as ColumnType, pair.load.type as ColumnType)]));
  if (widened.size > 0 || comparison.added.length > 0) await lockForAlter(client, table);
  if (widened.size > 0) await alterColumnTypes(client, pipeline.project, dataset.name, new Map([...widened].map(([c, t]) => [c, COLUMN_TYPES[t]])));
  for (const c of comparison.added) {
    const type = c.cast ? COLUMN_TYPES[c.cast.type] : c.type;
    await client.query(`ALTER TABLE ${table} ADD COLUMN ${ident(c.name)} ${type}`);
    if (!c.cast) await client.query(`CREATE INDEX IF NOT EXISTS ${ident(`${dataset.name}_${c.name}_gist`)} ON ${table} USING gist (${ident(c.name)})`);
  }
  if (comparison.added.length > 0) await rereadDeclaredViews(client, pipeline, dataset.name);
  for (const c of changes) {
    if (c.change === 'added') c.type = c.to!;
    if (c.change === 'retyped') c.type = widened.get(c.column);
  }
  const added = comparison.added.filter((c) => c.cast).map((c) => c.cast!);
  const geometry = ctx.geometry && (geometryKept(ctx, comparison) ?? (comparison.added.some((c) => c.name === ctx.geometry!.column) ? ctx.geometry : undefined));
  return { columns: [...castColumns(comparison.pairs, widened), ...added], geometry, changes, quarantinedRows: 0 };
}

/** A view that reads a column about to be widened: what it takes to create it again as it was. */
interface SavedView {
  qualified: string;
  kind: string;
  definition: string;
  options: string[] | null;
  comment: string | null;
  owner: string;
  grants: { privilege: string; grantee: string; grantable: boolean }[];
}

/**
 * ALTER COLUMN … TYPE (SQL types) for each widened column — or a geometry column given its type — in one statement. PostgreSQL refuses to change the
 * type of a column a view reads, so the views that read these columns (and the views over them)
 * are saved — definition, options, comment, owner, grants — dropped, and created again right after,
 * inside the same transaction: readers see the old table and views or the new ones.
 */
export async function alterColumnTypes(client: pg.PoolClient, schema: string, name: string, widened: ReadonlyMap<string, string>): Promise<void> {
  const table = `${ident(schema)}.${ident(name)}`;
  const views = await dependentViews(client, table, [...widened.keys()]);
  const materialized = views.find((v) => v.kind !== 'v');
  if (materialized) {
    throw new ViewError(`column(s) ${[...widened.keys()].join(', ')} of ${table} must be widened, but materialized view ${materialized.qualified} reads them: drop it, or set the dataset's drift policy`);
  }
  const alter = [...widened].map(([column, type]) => `ALTER COLUMN ${ident(column)} TYPE ${type} USING ${ident(column)}::${type}`);
  try {
    for (const v of [...views].reverse()) await client.query(`DROP VIEW ${v.qualified}`);
    await client.query(`ALTER TABLE ${table} ${alter.join(', ')}`);
  } catch (error) {
    const code = (error as { code?: string }).code;
    // something other than a view depends on the column (a rule, a function body): a person must decide
    if (code === '2BP01' || code === '0A000') throw new ViewError(`cannot widen ${[...widened.keys()].join(', ')} of ${table}: ${(error as Error).message}`, { cause: error });
    throw error;
  }
  const { rows } = await client.query<{ me: string }>('SELECT current_user AS me');
  for (const v of views) {
    const options = v.options?.length ? ` WITH (${v.options.join(', ')})` : '';
    await client.query(`CREATE VIEW ${v.qualified}${options} AS ${v.definition}`);
    if (v.comment !== null) await client.query(`COMMENT ON VIEW ${v.qualified} IS ${literal(v.comment)}`);
    if (rows[0]!.me !== v.owner) await client.query(`ALTER VIEW ${v.qualified} OWNER TO ${ident(v.owner)}`);
    for (const g of v.grants) await client.query(`GRANT ${g.privilege} ON ${v.qualified} TO ${g.grantee}${g.grantable ? ' WITH GRANT OPTION' : ''}`);
  }
  logger.info('clean columns widened', { table, columns: Object.fromEntries(widened), viewsRecreated: views.map((v) => v.qualified) });
}

/**
 * The views (and materialized views) that read `table` — only those reading one of `columns`,
 * when given — and the views over them, innermost first, with what it takes to create each again.
 */
async function dependentViews(client: pg.PoolClient, table: string, columns: readonly string[] | null): Promise<SavedView[]> {
  const { rows } = await client.query<SavedView>(
    `WITH RECURSIVE dependents (oid, depth) AS (
       SELECT DISTINCT r.ev_class, 1
         FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
         LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.refobjid = $1::regclass AND ($2::text[] IS NULL OR a.attname = ANY($2::text[])) AND r.ev_class <> $1::regclass
       UNION ALL
       SELECT r.ev_class, t.depth + 1
         FROM dependents t JOIN pg_depend d ON d.refobjid = t.oid AND d.refclassid = 'pg_class'::regclass AND d.classid = 'pg_rewrite'::regclass
         JOIN pg_rewrite r ON r.oid = d.objid
        WHERE r.ev_class <> t.oid
     )
     SELECT format('%I.%I', n.nspname, c.relname) AS qualified, c.relkind::text AS kind, pg_get_viewdef(c.oid) AS definition,
            c.reloptions AS options, obj_description(c.oid, 'pg_class') AS comment, pg_get_userbyid(c.relowner) AS owner,
            coalesce((SELECT json_agg(json_build_object('privilege', x.privilege_type, 'grantable', x.is_grantable,
                        'grantee', CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END))
                        FROM aclexplode(c.relacl) x WHERE x.grantee <> c.relowner), '[]') AS grants
       FROM (SELECT oid, max(depth) AS depth FROM dependents GROUP BY oid) t
       JOIN pg_class c ON c.oid = t.oid JOIN pg_namespace n ON n.oid = c.relnamespace
      ORDER BY t.depth, c.oid`,
    [table, columns],
  );
  return rows;
}

/**
 * Before the table's DDL: lock the views over it, outermost first, then the table — the order a
 * reader of a view takes its locks in (view, then what it reads), so that the two cannot
 * deadlock. Without this the ALTER would hold the table while waiting for a view a reader holds,
 * and the reader wait for the table.
 */
async function lockForAlter(client: pg.PoolClient, table: string): Promise<void> {
  const views = await dependentViews(client, table, null);
  const order = [...views.reverse().map((v) => v.qualified), table];
  await client.query(`LOCK TABLE ${order.join(', ')} IN ACCESS EXCLUSIVE MODE`);
}

/**
 * After columns were added: each declared view over the dataset is re-read with CREATE OR REPLACE
 * (no DROP, so nothing that depends on it is touched), so that a `SELECT *` view shows the new
 * columns. A view whose columns would change otherwise is left as it is (it still works).
 */
async function rereadDeclaredViews(client: pg.PoolClient, pipeline: PipelineDefinition, dataset: string): Promise<void> {
  // views written in SQL only: combines are compiled afresh by recreateViews, materialized views are refreshed there
  for (const view of pipeline.views.filter((v) => v.datasets.includes(dataset) && v.sql !== undefined && !v.materialized)) {
    const name = `${ident(pipeline.project)}.${ident(view.name)}`;
    const { rows } = await client.query<{ exists: boolean }>(`SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL AS exists`, [pipeline.project, view.name]);
    if (!rows[0]!.exists) continue;
    await client.query('SAVEPOINT civic_etl_reread_view');
    try {
      await client.query({ text: `CREATE OR REPLACE VIEW ${name} AS ${viewSql(pipeline, view as typeof view & { sql: string })}`, queryMode: 'extended' } as pg.QueryConfig);
      await client.query('RELEASE SAVEPOINT civic_etl_reread_view');
    } catch {
      await client.query('ROLLBACK TO SAVEPOINT civic_etl_reread_view');
    }
  }
}

/**
 * quarantine: the clean table stays as it is. Each row with a value the table has no place for —
 * in an added column, in a column taken for a rename by position (a guess this policy does not
 * apply), or that does not cast to its column's clean type — goes to quarantine with the rule
 * `schema`, one quarantine row per such value; the other rows load. A missing column is empty
 * for this load (no value is lost). Rows sent to quarantine are deleted from the staging table
 * so that the cast neither loads them nor quarantines them a second time.
 */
async function quarantineDrift(ctx: DriftContext, comparison: SchemaComparison<LoadColumn>, retyped: readonly { pair: ColumnPair<LoadColumn> }[], changes: SchemaChange[]): Promise<ReconciledSchema> {
  const { client } = ctx;
  const present = (from: string) => `NULLIF(btrim(s.${ident(from)}), '') IS NOT NULL`;
  const check = (column: string, raw: string, when: string, reason: string) => `(${literal(column)}, ${raw}, CASE WHEN ${when} THEN ${reason} END)`;
  const checks: string[] = [];
  const geometry = ctx.geometry;
  for (const c of comparison.added) {
    const reason = literal(`column "${c.name}" is not in the clean table (new in this file; drift policy quarantine)`);
    if (c.from) checks.push(check(c.name, `s.${ident(c.from)}`, present(c.from), reason));
    else if (geometry?.source.kind === 'text') checks.push(check(c.name, `s.${ident(geometry.source.from)}`, present(geometry.source.from), reason));
    else if (geometry?.source.kind === 'latlon') {
      const { lat, lon } = geometry.source;
      checks.push(check(c.name, `concat_ws(' ', s.${ident(lat)}, s.${ident(lon)})`, `${present(lat)} OR ${present(lon)}`, reason));
    }
  }
  const renamed = comparison.pairs.filter((p) => p.renamed === 'position');
  for (const p of renamed) {
    const reason = literal(`column "${p.load.name}" is not in the clean table; it looks like a rename of "${p.clean.name}" (same place, same type), which the drift policy quarantine does not apply`);
    checks.push(check(p.load.name, `s.${ident(p.load.from!)}`, present(p.load.from!), reason));
  }
  for (const { pair } of retyped) {
    const type = COLUMN_TYPES[pair.clean.type as ColumnType];
    const reason = `format('column "%s" is %s in the clean table; not a valid %s: %s', ${literal(pair.clean.name)}, ${literal(type)}, ${literal(type)}, left(s.${ident(pair.load.from!)}, 80))`;
    checks.push(check(pair.clean.name, `s.${ident(pair.load.from!)}`, doesNotFit(pair), reason));
  }
  const counts = new Map<string, number>();
  let quarantinedRows = 0;
  if (checks.length > 0) {
    await client.query(
      `INSERT INTO ${ctx.quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
       SELECT $1, s._source_line, v.col, v.raw, 'schema', v.reason
         FROM ${ctx.staging} s CROSS JOIN LATERAL (VALUES ${checks.join(', ')}) AS v(col, raw, reason)
        WHERE v.reason IS NOT NULL`,
      [ctx.loadId],
    );
    const { rows } = await client.query<{ column_name: string; n: string }>(`SELECT column_name, count(*) AS n FROM ${ctx.quarantine} WHERE load_id = $1 AND rule = 'schema' GROUP BY column_name`, [
      ctx.loadId,
    ]);
    for (const r of rows) counts.set(r.column_name, Number(r.n));
    const deleted = await client.query(
      `DELETE FROM ${ctx.staging} s USING (SELECT DISTINCT source_line FROM ${ctx.quarantine} WHERE load_id = $1 AND rule = 'schema') q
        WHERE s._source_line = q.source_line`,
      [ctx.loadId],
    );
    quarantinedRows = deleted.rowCount ?? 0;
  }
  for (const c of changes) {
    const quarantined = c.change === 'added' ? c.column : c.change === 'retyped' ? c.column : c.change === 'renamed' && c.basis === 'position' ? c.to! : undefined;
    if (quarantined !== undefined) Object.assign(c, { action: 'quarantined', rows: counts.get(quarantined) ?? 0 });
  }
  const kept = comparison.pairs.filter((p) => p.renamed !== 'position');
  return { columns: castColumns(kept, new Map()), geometry: geometryKept(ctx, comparison), changes, quarantinedRows };
}

/**
 * A load whose geometries do not fit the clean table's typed geometry column (points into a
 * MultiPolygon column, 2D shapes into a PointZ one) — PostGIS refused the insert with `misfit`.
 * A re-typed column, met by the drift policy: evolve widens the column (to any geometry of its
 * dimension, then to plain `geometry`; views that read it are recreated around the ALTER),
 * freeze rejects the load, quarantine sets aside the rows whose geometry does not fit. The
 * change joins `changes` (the ledger's schema_changes); the caller then casts again.
 */
export async function geometryMisfit(ctx: DriftContext, misfit: Error, changes: SchemaChange[]): Promise<void> {
  const { client, pipeline, dataset } = ctx;
  const geometry = ctx.geometry!;
  const table = `${ident(pipeline.project)}.${ident(dataset.name)}`;
  const was = (await cleanTableColumns(client, pipeline.project, dataset.name))?.columns.find((c) => c.name === geometry.column)?.type ?? 'geometry';
  const to = widerGeometryType(was);
  if (!to) throw misfit;
  const loadType = /^Geometry type \((\w+)\)/.exec(misfit.message)?.[1];
  const policy = driftPolicy(dataset);
  // `to`: the load's type as PostGIS named it; once loaded, the caller puts the type the load's geometries share
  const change: SchemaChange = {
    change: 'retyped',
    column: geometry.column,
    from: was,
    to: loadType ? `geometry(${loadType},${geometry.srid})` : misfit.message,
    policy,
    action: 'widened',
    type: to,
  };
  const earlier = changes.findIndex((c) => c.change === 'retyped' && c.column === geometry.column);
  if (earlier >= 0) {
    // widened a second time (another dimension): one change, from the first type to the last
    Object.assign(changes[earlier]!, { type: to });
    change.from = changes[earlier]!.from;
  }
  if (policy === 'freeze') {
    throw new SchemaDriftError(
      `dataset ${dataset.name}: ${describeChange(change)} (${misfit.message}) — the drift policy "freeze" rejects ${ctx.file}; the clean table and views are unchanged`,
      [...changes.filter((c) => c.column !== geometry.column || c.change !== 'retyped'), { ...change, action: 'rejected', type: undefined }],
      { file: ctx.file },
    );
  }
  if (policy === 'quarantine') {
    const rows = await quarantineMisfits(ctx, was);
    if (earlier < 0) changes.push({ ...change, action: 'quarantined', rows, type: undefined });
    return;
  }
  await lockForAlter(client, table);
  await alterColumnTypes(client, pipeline.project, dataset.name, new Map([[geometry.column, to]]));
  logger.info('geometry column widened', { table, column: geometry.column, from: was, to });
  if (earlier < 0) changes.push(change);
}

/**
 * Drift policy quarantine: the rows whose geometry is not of the clean column's type and
 * dimension go to quarantine (rule `schema`) and leave the staging table; the others load.
 */
async function quarantineMisfits(ctx: DriftContext, columnType: string): Promise<number> {
  const geometry = ctx.geometry!;
  const m = /^geometry\((\w+?)(ZM|Z|M)?,(-?\d+)\)$/i.exec(columnType);
  if (!m) return 0;
  const [, type, dims = ''] = m;
  const zm = { '': 0, M: 1, Z: 2, ZM: 3 }[dims.toUpperCase()] ?? 0;
  const src = geometry.source;
  // only geometries that can be made: the others fail their own checks in the cast
  const makeable =
    src.kind === 'latlon'
      ? `etl.is_valid_as(${coordinate('s', src.lat, src.decimalComma)}, 'double precision') AND etl.is_valid_as(${coordinate('s', src.lon, src.decimalComma)}, 'double precision')`
      : `etl.try_geometry(s.${ident(src.from)}, '${src.encoding}') IS NOT NULL`;
  const raw = src.kind === 'latlon' ? `concat_ws(' ', s.${ident(src.lat)}, s.${ident(src.lon)})` : `left(s.${ident(src.from)}, 200)`;
  const fits = `(${type!.toLowerCase() === 'geometry' ? 'true' : `substr(ST_GeometryType(x.g), 4) = ${literal(type!)}`} AND ST_Zmflag(x.g) = ${zm})`;
  await ctx.client.query(
    `INSERT INTO ${ctx.quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
     SELECT $1, s._source_line, $2, ${raw}, 'schema',
            format('geometry column "%s" is %s in the clean table; this geometry is a %s (drift policy quarantine)', $2::text, $3::text, substr(ST_GeometryType(x.g), 4) || (ARRAY['', 'M', 'Z', 'ZM'])[ST_Zmflag(x.g) + 1])
       FROM ${ctx.staging} s CROSS JOIN LATERAL (SELECT CASE WHEN ${makeable} THEN ${geometryExpr(geometry)} END AS g) x
      WHERE x.g IS NOT NULL AND NOT ${fits}`,
    [ctx.loadId, geometry.column, columnType],
  );
  const deleted = await ctx.client.query(
    `DELETE FROM ${ctx.staging} s USING (SELECT DISTINCT source_line FROM ${ctx.quarantine} WHERE load_id = $1 AND rule = 'schema' AND column_name = $2) q
      WHERE s._source_line = q.source_line`,
    [ctx.loadId, geometry.column],
  );
  return deleted.rowCount ?? 0;
}
