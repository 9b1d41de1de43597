import type { ColumnType } from '../../contract/definition.ts';
import type { NumberFormat } from '../../contract/rules.ts';
import type { PortalMetadata } from '../../contract/objects.ts';
import { pipelineType, type TypeDecision } from './column-type.ts';
import { ALL_FORMATS } from './formats/index.ts';
import type { FileProfile } from './profile.ts';
import type { Queryable } from '../common/db.ts';

export interface CatalogEntry {
  loadId: number;
  project: string;
  dataset: string;
  title?: string;
  objectKey: string;
  objectVersion: string;
  /** Records staged (the exact count, whatever was profiled). */
  rowCount: number;
  /** A catalogue resource: what its portal says of it and its dataset. */
  portal?: PortalMetadata;
}

/**
 * Record what was detected and profiled in an object version (one catalog row per load; a
 * redelivery replaces it). The columns are JSON, so SQL finds e.g. every dataset with a
 * `code_postal` column: `SELECT dataset FROM etl.catalog WHERE columns @> '[{"format":"code_postal"}]'`.
 */
export async function writeCatalog(db: Queryable, entry: CatalogEntry, profile: FileProfile): Promise<void> {
  const { columns, rowCount, duplicateRows, raggedCount, file: _file, raggedLines: _ragged, sampled: _sampled, warnings, ...structure } = profile;
  await db.query(
    `INSERT INTO etl.catalog (load_id, project, dataset, title, object_key, object_version, structure, columns,
                              row_count, profiled_rows, duplicate_rows, ragged_lines, column_names, error, portal)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, $14)
     ON CONFLICT (load_id) DO UPDATE SET structure = excluded.structure, columns = excluded.columns,
       row_count = excluded.row_count, profiled_rows = excluded.profiled_rows, duplicate_rows = excluded.duplicate_rows,
       ragged_lines = excluded.ragged_lines, column_names = excluded.column_names, error = NULL, portal = excluded.portal, profiled_at = now()`,
    [
      entry.loadId,
      entry.project,
      entry.dataset,
      entry.title ?? null,
      entry.objectKey,
      entry.objectVersion,
      JSON.stringify({ ...structure, warnings }),
      JSON.stringify(columns),
      entry.rowCount,
      rowCount,
      duplicateRows,
      raggedCount,
      columns.map((c) => c.name).join(' '),
      entry.portal ? JSON.stringify(entry.portal) : null,
    ],
  );
}

/** An object the profiler could not read still gets a catalog row, with the reason. */
export async function writeCatalogError(db: Queryable, entry: CatalogEntry, error: string): Promise<void> {
  await db.query(
    `INSERT INTO etl.catalog (load_id, project, dataset, title, object_key, object_version, row_count, error, portal)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (load_id) DO UPDATE SET error = excluded.error, portal = excluded.portal, profiled_at = now()`,
    [entry.loadId, entry.project, entry.dataset, entry.title ?? null, entry.objectKey, entry.objectVersion, entry.rowCount, error, entry.portal ? JSON.stringify(entry.portal) : null],
  );
}

export async function hasCatalog(db: Queryable, loadId: number): Promise<boolean> {
  return ((await db.query('SELECT 1 FROM etl.catalog WHERE load_id = $1', [loadId])).rowCount ?? 0) > 0;
}

export interface DetectedColumn {
  name: string;
  type: string;
  format: string | null;
  profile: { min?: number | string; dateOrder?: string; typeShare?: number; plainNumbers?: boolean; [k: string]: unknown };
  /** Profiles made since the one type inference: the clean type and how to read the values. */
  clean?: TypeDecision;
}

export async function catalogColumns(db: Queryable, loadId: number): Promise<{ columns: DetectedColumn[] | null; decimalComma: boolean; error: string | null } | undefined> {
  const { rows } = await db.query<{ columns: DetectedColumn[] | null; structure: { decimalComma?: boolean } | null; error: string | null }>(
    'SELECT columns, structure, error FROM etl.catalog WHERE load_id = $1',
    [loadId],
  );
  const r = rows[0];
  return r && { columns: r.columns, decimalComma: r.structure?.decimalComma ?? false, error: r.error };
}

/**
 * The clean type for a detected column, and how its values are read: the profile's own verdict
 * (`clean`, by the type inference of column-type.ts: decimal commas, thousands separators,
 * day-first or month-first dates become typed columns; codes stay text), in the pipeline's widths
 * (bigint, double precision: a later file does not re-type the table). A catalog written before
 * profiles had it: only what PostgreSQL reads as written, every profiled value fitting.
 */
export function cleanTypeFor(column: DetectedColumn, decimalComma: boolean): { type: ColumnType; parse?: { number?: NumberFormat; date?: string; missing?: string[] } } {
  if (column.clean) {
    const { type, number, date } = column.clean;
    // missing-value markers (`NA`, `...`) of a number or date column load as NULL
    const missing = column.clean.missing ? { missing: column.clean.missing.map((m) => m.value) } : {};
    const parse = number ? { number, ...missing } : date ? { date, ...missing } : column.clean.missing ? missing : undefined;
    return { type: pipelineType(type), ...(parse ? { parse } : {}) };
  }
  return { type: legacyCleanType(column, decimalComma) };
}

function legacyCleanType(column: DetectedColumn, decimalComma: boolean): ColumnType {
  // a code that looks like a number (a postcode, a SIREN) is still a code: keep its leading zeros
  const format = column.format ? ALL_FORMATS.find((f) => f.name === column.format) : undefined;
  if (format?.baseType === 'string') return 'text';
  // cast only what every profiled value fits: a column that is 96 % integers stays text rather
  // than send 4 % of its rows to quarantine
  if ((column.profile.typeShare ?? 0) < 1) return 'text';
  const iso = column.profile.dateOrder === undefined || column.profile.dateOrder === 'ymd';
  switch (column.type) {
    case 'integer':
    case 'year':
      return column.profile.plainNumbers === false ? 'text' : 'bigint';
    case 'number':
      return decimalComma || column.profile.plainNumbers === false ? 'text' : 'double';
    case 'date':
      return iso ? 'date' : 'text';
    case 'datetime':
      return iso ? 'timestamp' : 'text';
    case 'datetime_tz':
      return iso ? 'timestamptz' : 'text';
    case 'boolean': {
      const top = (column.profile.top as { value: string }[] | undefined) ?? [];
      return top.every((t) => /^(t|f|true|false|yes|no|on|off|y|n)$/i.test(t.value)) ? 'boolean' : 'text';
    }
    default:
      return 'text';
  }
}

/** A staged catalogue resource as `etl.catalog_resources` shows it. */
export interface CatalogResourceRow {
  loadId: number;
  dataset: string;
  objectKey: string;
  rowCount: number | null;
  datasetTitle: string | null;
  organization: string | null;
  license: string | null;
  tags: string[];
  resourceId: string | null;
  resourceTitle: string | null;
  format: string | null;
  url: string | null;
  profiledAt: string;
}

export interface CatalogSearch {
  project: string;
  /** Words of the titles, description, organisation, tags or column names (web-search syntax: `"espaces verts" -arbres`). */
  words?: string;
  /** The organisation's name (udata) or title (CKAN), or its id (udata) or name (CKAN). */
  organization?: string;
  /** Resources whose dataset has this tag. */
  tag?: string;
  license?: string;
  limit?: number;
}

/** The staged catalogue resources of a project that fit every criterion given, best match first when words are given, else newest first. */
export async function searchCatalogResources(db: Queryable, q: CatalogSearch): Promise<CatalogResourceRow[]> {
  const params: unknown[] = [q.project];
  const where = ['project = $1'];
  const param = (value: unknown) => `$${params.push(value)}`;
  if (q.words) where.push(`search @@ websearch_to_tsquery('simple', ${param(q.words)})`);
  if (q.organization) {
    const p = param(q.organization);
    where.push(`(organization = ${p} OR organization_id = ${p})`);
  }
  if (q.tag) where.push(`${param(q.tag)} = ANY (tags)`);
  if (q.license) where.push(`license = ${param(q.license)}`);
  const order = q.words ? `ts_rank(search, websearch_to_tsquery('simple', $${params.indexOf(q.words) + 1})) DESC, profiled_at DESC` : 'profiled_at DESC';
  const { rows } = await db.query<Omit<CatalogResourceRow, 'rowCount' | 'loadId' | 'profiledAt'> & { rowCount: string | null; loadId: string; profiledAt: Date }>(
    `SELECT load_id AS "loadId", dataset, object_key AS "objectKey", row_count AS "rowCount", dataset_title AS "datasetTitle", organization, license, tags,
            resource_id AS "resourceId", resource_title AS "resourceTitle", format, url, profiled_at AS "profiledAt"
       FROM etl.catalog_resources WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ${param(q.limit ?? 50)}`,
    params,
  );
  return rows.map((r) => ({ ...r, loadId: Number(r.loadId), rowCount: r.rowCount === null ? null : Number(r.rowCount), profiledAt: r.profiledAt.toISOString() }));
}
