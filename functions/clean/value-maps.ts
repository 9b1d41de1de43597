import type pg from 'pg';
import type { ColumnDefinition, DatasetDefinition, PipelineDefinition, ValueMapDefinition } from '../../contract/definition.ts';
import { descriptorName, MAP_TRIM } from '../../contract/value-maps.ts';
import { ident, literal } from '../common/db.ts';
import { PermanentError } from '../common/errors.ts';
import type { CastColumn } from './cast.ts';
import { launder } from './columns.ts';

/** How many of a column's distinct unmapped values the ledger lists (the most frequent first). */
export const UNMAPPED_VALUES_LISTED = 20;

/** What `etl.loads.unmapped` holds for one mapped column whose map lacked some of the load's values. */
export interface UnmappedReport {
  column: string;
  map: string;
  policy: NonNullable<ColumnDefinition['unmapped']>;
  /** Rows with an unmapped (non-empty) value. */
  rows: number;
  /** Distinct unmapped values, compared as the map compares them (ignoring case and surrounding spaces). */
  distinct: number;
  /** The most frequent ones (each as one of its spellings in the file), with their row counts. */
  values: { value: string; rows: number }[];
}

/** A column the load maps: a declared column with `map`, or a detected one named in `clean.maps`. */
interface MappedColumn {
  name: string;
  map: string;
  unmapped?: ColumnDefinition['unmapped'];
  descriptor?: string;
  /** The source field's name, for the descriptor it implies. */
  source?: string;
}

export interface ValueMapPlan {
  pipeline: PipelineDefinition;
  dataset: DatasetDefinition;
  /** Qualified, quoted staging table (text columns + `_source_line`). */
  staging: string;
  /** Qualified, quoted quarantine table. */
  quarantine: string;
  loadId: number;
  /** The columns the load is about to be cast into. */
  columns: readonly CastColumn[];
}

/**
 * Map the declared columns that have a value map (and the detected ones `clean.maps` names),
 * set-based, before the cast: each map goes into a temporary table keyed by (descriptor, normalised
 * source value), and a few UPDATE … FROM per column ({@link mapColumn}) join it to the staging table, writing the constants into a new staging column `_map_<column>` (the
 * source column stays as it was: another column may read it). A non-empty value the map lacks
 * is counted, then kept, set NULL or quarantined (rule `map`, its row left out of the load) as the
 * column's `unmapped` says. The counts go to `etl.loads.unmapped`. Returns the columns to cast,
 * reading the mapped staging columns. Runs on the caller's transaction: a failure leaves nothing.
 */
export async function applyValueMaps(client: pg.PoolClient, plan: ValueMapPlan): Promise<{ columns: CastColumn[]; rowsQuarantined: number; unmapped: UnmappedReport[] }> {
  const columns = [...plan.columns];
  const mapped: MappedColumn[] = (plan.dataset.clean.columns ?? []).flatMap((c) =>
    c.map === undefined ? [] : [{ name: c.name, map: c.map, unmapped: c.unmapped, descriptor: c.descriptor, source: c.source }],
  );
  // detected columns (and nested tables, whose clean.maps the caller narrowed to their fields)
  for (const m of plan.dataset.clean.maps ?? []) {
    const name = launder([m.column])[0]!;
    const column = columns.find((c) => c.name === name || c.from === m.column);
    if (column && !mapped.some((c) => c.name === column.name)) mapped.push({ name: column.name, map: m.map, unmapped: m.unmapped, descriptor: m.descriptor, source: m.column });
  }
  if (mapped.length === 0) return { columns, rowsQuarantined: 0, unmapped: [] };
  const { staging, loadId } = plan;

  const tables = new Map<string, string>();
  const defs = new Map<string, ValueMapDefinition>();
  for (const name of new Set(mapped.map((c) => c.map!))) {
    const map = plan.pipeline.valueMaps?.find((m) => m.name === name);
    if (!map) throw new PermanentError(`dataset ${plan.dataset.name}: value map "${name}" is not in the pipeline definition`);
    defs.set(name, map);
    tables.set(name, await loadMapTable(client, map, `civic_etl_map_${tables.size}`));
  }

  const unmapped: UnmappedReport[] = [];
  let quarantined = false;
  for (const column of mapped) {
    const index = columns.findIndex((c) => c.name === column.name);
    if (index < 0) continue; // not cast in this load (cannot happen with declared columns)
    const source = `s.${ident(columns[index]!.from)}`;
    const target = ident(`_map_${column.name}`);
    const policy = column.unmapped ?? 'keep';
    await client.query(`ALTER TABLE ${staging} ADD COLUMN ${target} text`);
    const map = defs.get(column.map)!;
    await mapColumn(client, staging, source, target, tables.get(column.map)!, map, columnDescriptor(column, columns[index]!.from, map));
    const lacking = `s.${target} IS NULL AND btrim(${source}, ${literal(MAP_TRIM)}) <> ''`;
    const report = await reportUnmapped(client, staging, lacking, source);
    if (report) unmapped.push({ column: column.name, map: column.map!, policy, ...report });
    if (report && policy === 'quarantine') {
      await client.query(
        `INSERT INTO ${plan.quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
         SELECT $1, s._source_line, $2, ${source}, 'map', format('not in value map "%s": %s', $3::text, left(${source}, 80))
           FROM ${staging} s WHERE ${lacking}`,
        [loadId, column.name, column.map],
      );
      quarantined = true;
    }
    // what the map did not write: every other value (keep), or only the empty ones (null, quarantine)
    await client.query(`UPDATE ${staging} s SET ${target} = ${source} WHERE s.${target} IS NULL AND ${source} IS NOT NULL` + (policy === 'keep' ? '' : ` AND btrim(${source}, ${literal(MAP_TRIM)}) = ''`));
    columns[index] = { ...columns[index]!, from: `_map_${column.name}` };
  }

  let rowsQuarantined = 0;
  if (quarantined) {
    const deleted = await client.query(
      `DELETE FROM ${staging} s USING (SELECT DISTINCT source_line FROM ${plan.quarantine} WHERE load_id = $1 AND rule = 'map') q
        WHERE s._source_line = q.source_line`,
      [loadId],
    );
    rowsQuarantined = deleted.rowCount ?? 0;
  }
  await client.query('UPDATE etl.loads SET unmapped = $2 WHERE id = $1', [loadId, unmapped.length > 0 ? JSON.stringify(unmapped) : null]);
  return { columns, rowsQuarantined, unmapped };
}

/**
 * A source value as the map compares it: trimmed and lower-cased by Unicode's rules (the ICU
 * root collation), whatever the database's own locale — a `C` database would lower-case ASCII only.
 */
export function normalised(sql: string): string {
  return `lower(btrim(${sql}, ${literal(MAP_TRIM)}) COLLATE "und-x-icu")`;
}

/** A descriptor name as the map table keys it (lower-cased; empty for the entries of a plain map). */
export function descriptorKey(sql: string): string {
  return `lower(${sql} COLLATE "und-x-icu")`;
}

/** An Ed-Fi descriptor URI, `uri://ed-fi.org/AddressTypeDescriptor#Work`: a scheme, a path ending in the descriptor's name, `#`, the code value. */
export const DESCRIPTOR_URI = `'^[A-Za-z][A-Za-z0-9+.-]*://[^#]*/([^/#]+)#(.*)$'`;

/**
 * The descriptor a bare code value of a mapped column belongs to, for a map with descriptors
 * (Ed-Fi layout): the column's `descriptor`, else the longest descriptor of the map that ends the
 * source column's name, ignoring case and an `Id` suffix (`entryGradeLevelDescriptorId` →
 * `GradeLevelDescriptor`). Undefined when neither says (a plain map, or a column named otherwise).
 */
export function columnDescriptor(column: Pick<MappedColumn, 'descriptor' | 'source'>, sourceColumn: string, map: ValueMapDefinition): string | undefined {
  if (column.descriptor) return descriptorName(column.descriptor);
  const name = (column.source ?? sourceColumn)
    .replace(/[^A-Za-z0-9]/g, '')
    .replace(/id$/i, '')
    .toLowerCase();
  let best: string | undefined;
  for (const e of map.entries ?? []) {
    const d = e.descriptor;
    if (d && name.endsWith(d.toLowerCase()) && (!best || d.length > best.length)) best = d;
  }
  return best;
}

/**
 * Write the constants of one column into its `_map_` column, most exact match first (each step
 * fills only what the previous left empty):
 * 1. the whole value, for a plain map's entries (`EXA`, or a full URI written as a source);
 * 2. a descriptor URI by (its descriptor's name, its code value), whatever its namespace;
 * 3. a bare code value by (the column's descriptor, the code) when the column names one;
 *    otherwise by the code alone, when the map gives that code one constant under every descriptor
 *    ("Work" is an address type and an e-mail type: a bare "Work" in an unnamed column stays unmapped).
 */
async function mapColumn(client: pg.PoolClient, staging: string, source: string, target: string, table: string, map: ValueMapDefinition, descriptor: string | undefined): Promise<void> {
  const value = `btrim(${source}, ${literal(MAP_TRIM)})`;
  const entries = map.entries ?? [];
  if (entries.some((e) => e.descriptor === undefined)) {
    await client.query(`UPDATE ${staging} s SET ${target} = m.constant FROM ${table} m WHERE m.descriptor = '' AND m.key = ${normalised(source)}`);
  }
  if (!entries.some((e) => e.descriptor !== undefined)) return;
  // Each value is parsed once, in a subquery the planner keeps (OFFSET 0), then joined to the map:
  // a join on the expressions themselves is planned as a nested loop that parses every value once
  // per map row (300,000 URIs against 46 rows: seconds instead of under one).
  const matched = (rows: string, on: string, entriesOf = table) => `UPDATE ${staging} o SET ${target} = m.constant FROM (${rows} OFFSET 0) v JOIN ${entriesOf} m ON ${on} WHERE o.ctid = v.row`;
  await client.query(
    matched(
      `SELECT ctid AS row, regexp_match(${value}, ${DESCRIPTOR_URI}) AS p FROM ${staging} s WHERE s.${target} IS NULL AND ${value} LIKE '%#%'`,
      `m.descriptor = ${descriptorKey('v.p[1]')} AND m.key = ${normalised('v.p[2]')}`,
    ),
  );
  const bare = `SELECT ctid AS row, ${normalised(source)} AS k FROM ${staging} s WHERE s.${target} IS NULL AND ${value} <> '' AND ${value} !~ ${DESCRIPTOR_URI}`;
  if (descriptor !== undefined) {
    await client.query(matched(bare, `m.descriptor = ${descriptorKey(literal(descriptor))} AND m.key = v.k`));
  } else {
    const unambiguous = `(SELECT key, min(constant) AS constant FROM ${table} WHERE descriptor <> '' GROUP BY key HAVING count(DISTINCT constant) = 1)`;
    await client.query(matched(bare, `m.key = v.k`, unambiguous));
  }
}

/**
 * The map as a temporary table (dropped at commit) of (descriptor, normalised source value) → constant
 * (for an Ed-Fi row that belongs to several constants, the narrowest). A map
 * that reaches the database with two constants for one value (validation compares in JavaScript,
 * this in PostgreSQL) fails the load: choosing one would be silent.
 */
async function loadMapTable(client: pg.PoolClient, map: ValueMapDefinition, table: string): Promise<string> {
  const entries = map.entries ?? [];
  const params = [entries.map((e) => e.source), entries.map((e) => e.constant), entries.map((e) => e.line ?? null), entries.map((e) => e.descriptor ?? '')];
  const rows = `unnest($1::text[], $2::text[], $3::int[], $4::text[]) WITH ORDINALITY AS e(source, constant, line, descriptor, n)`;
  // Ed-Fi rows: a (descriptor, code) may belong to several constants (the AMT's
  // AttendanceEvent.Absence and AttendanceEvent.UnexcusedAbsence both take "Unexcused Absence");
  // the column gets the narrowest, the constant that covers the fewest (descriptor, code) pairs.
  const ranked = `e AS (SELECT ${descriptorKey('e.descriptor')} AS d, ${normalised('e.source')} AS k, e.constant AS c, e.descriptor AS dn, e.source AS s, e.line, e.n FROM ${rows}),
     cover AS (SELECT c, count(DISTINCT ROW(d, k)) AS pairs FROM e GROUP BY c),
     ranked AS (SELECT e.*, cover.pairs, min(cover.pairs) OVER (PARTITION BY e.d, e.k) AS narrowest FROM e JOIN cover USING (c))`;
  const conflicts = await client.query<{ descriptor: string; source: string; constants: string[]; lines: (number | null)[] }>(
    `WITH ${ranked}
     SELECT (array_agg(dn ORDER BY n))[1] AS descriptor, (array_agg(s ORDER BY n))[1] AS source, array_agg(DISTINCT c) AS constants, array_agg(line ORDER BY n) AS lines
       FROM ranked WHERE d = '' OR pairs = narrowest GROUP BY d, k HAVING count(DISTINCT c) > 1 LIMIT 5`,
    params,
  );
  if (conflicts.rows.length > 0) {
    const where = map.file ? `value map "${map.name}" (${map.file})` : `value map "${map.name}"`;
    const list = conflicts.rows.map(
      (c) => `${c.descriptor ? `${c.descriptor} ` : ''}"${c.source}" → ${c.constants.map((k) => `"${k}"`).join(' or ')}${c.lines[0] !== null ? ` (lines ${c.lines.join(', ')})` : ''}`,
    );
    const edFi = conflicts.rows.some((c) => c.descriptor);
    throw new PermanentError(`${where} maps one source value to several constants${edFi ? ', none narrower than the others' : ''}: ${list.join('; ')}`, { file: map.file });
  }
  await client.query(`DROP TABLE IF EXISTS pg_temp.${ident(table)}`);
  await client.query(`CREATE TEMPORARY TABLE ${ident(table)} (descriptor text NOT NULL, key text NOT NULL, constant text NOT NULL, PRIMARY KEY (descriptor, key)) ON COMMIT DROP`);
  await client.query(`INSERT INTO ${ident(table)} WITH ${ranked} SELECT DISTINCT d, k, c FROM ranked WHERE pairs = narrowest`, params);
  await client.query(`ANALYZE ${ident(table)}`);
  return `pg_temp.${ident(table)}`;
}

/** Counts of the rows matching `lacking`, grouped by normalised value: totals and the most frequent values. */
async function reportUnmapped(client: pg.PoolClient, staging: string, lacking: string, source: string): Promise<Omit<UnmappedReport, 'column' | 'map' | 'policy'> | undefined> {
  const { rows } = await client.query<{ value: string; rows: string; distinct: string; total: string }>(
    `SELECT min(${source}) AS value, count(*) AS rows, count(*) OVER () AS distinct, sum(count(*)) OVER () AS total
       FROM ${staging} s WHERE ${lacking}
      GROUP BY ${normalised(source)} ORDER BY count(*) DESC, 1 LIMIT ${UNMAPPED_VALUES_LISTED}`,
  );
  if (rows.length === 0) return undefined;
  return {
    rows: Number(rows[0]!.total),
    distinct: Number(rows[0]!.distinct),
    values: rows.map((r) => ({ value: r.value, rows: Number(r.rows) })),
  };
}
