import type { ColumnDefinition, DatasetDefinition } from '../../contract/definition.ts';
import { PermanentError } from '../common/errors.ts';
import { catalogColumns, cleanTypeFor } from '../profile/catalog.ts';
import type pg from 'pg';
import type { CastColumn } from './cast.ts';
import { inferTypes } from './infer.ts';
import { settleDateOrder, type TypeDecision } from '../profile/column-type.ts';
import type { Locale } from '../profile/types.ts';

/** Header text reduced for matching: case, spaces and punctuation do not matter. */
export function normaliseHeader(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '');
}

/**
 * For each declared column, the staging column it reads. A declared column missing from the
 * file is a permanent error that lists what the file does have.
 */
export function mapColumns(dataset: DatasetDefinition, header: readonly string[], staging: readonly string[], file: string): Map<ColumnDefinition, string> {
  const byNorm = new Map<string, string>();
  header.forEach((h, i) => {
    const key = normaliseHeader(h);
    if (!byNorm.has(key)) byNorm.set(key, staging[i]!);
  });
  const out = new Map<ColumnDefinition, string>();
  for (const column of dataset.clean.columns ?? []) {
    const wanted = column.source ?? column.name;
    const found = byNorm.get(normaliseHeader(wanted));
    if (!found) {
      throw new PermanentError(`${file}: column "${wanted}" of dataset ${dataset.name} is not in the file's header (${header.map((h) => JSON.stringify(h)).join(', ')})`, { file, line: 1, column: wanted });
    }
    out.set(column, found);
  }
  return out;
}

/** Header text → column names as ogr2ogr's LAUNDER does: `Cost (USD)` → `cost_usd`. */
export function launder(headers: readonly string[]): string[] {
  const seen = new Set<string>();
  return headers.map((h, i) => {
    let base = h
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '');
    if (!base) base = `column_${i + 1}`;
    if (/^[0-9]/.test(base)) base = `c_${base}`;
    base = base.slice(0, 56);
    let name = base;
    for (let n = 2; seen.has(name); n++) name = `${base}_${n}`;
    seen.add(name);
    return name;
  });
}

/**
 * The columns a load is cleaned into, each with the staging column it reads: the declared ones,
 * or — for a dataset that declares none — the ones the stage step's profile detected, with
 * laundered names and the types PostgreSQL can read as written (all text if the file could not
 * be profiled).
 */
export async function resolveColumns(
  client: pg.PoolClient,
  dataset: DatasetDefinition,
  load: { id: number; header: string[] | null; detected: { columns: string[]; format?: unknown } | null; object_key: string; staging_table: string | null },
  /** Staging columns that hold the geometry: not attribute columns. */
  geometryColumns: readonly string[] = [],
  /** The pipeline's format packs (`profile.locales`): the same codes stay text as in its catalog. */
  locales: readonly Locale[] = [],
): Promise<CastColumn[]> {
  const header = load.header ?? [];
  const staging = load.detected?.columns ?? [];
  if (dataset.clean.columns) {
    const mapping = mapColumns(dataset, header, staging, load.object_key);
    return dataset.clean.columns.map((c) => ({ name: c.name, type: c.type, required: c.required, from: mapping.get(c)! }));
  }
  const names = launder(header);
  const keep = (from: string) => !geometryColumns.includes(from);
  const format = load.detected?.format;
  if (format !== undefined && format !== 'csv' && load.staging_table) {
    // spreadsheets, JSON, spatial files: typed from every staged value (the profiler reads CSV)
    const attributes = staging.filter(keep);
    const headings = attributes.map((from) => header[staging.indexOf(from)] ?? from);
    const decisions = await settledByEarlierLoads(client, load.id, headings, await inferTypes(client, load.staging_table, attributes, 1, undefined, { headers: headings, locales }));
    // the types the file declares (DBF fields, GeoPackage columns, a Parquet schema), as its profile in the catalog kept them
    const profiled = (await catalogColumns(client, load.id))?.columns ?? [];
    return attributes.map((from, i) => {
      const declared = profiled[staging.indexOf(from)]?.clean;
      const { type, number, date, missing: marked } = declared?.declared ? declared : decisions[i]!;
      // missing-value markers (`NA`, `...`) of a number or date column load as NULL
      const missing = marked ? { missing: marked.map((m) => m.value) } : {};
      const parse = number ? { number, ...missing } : date ? { date, ...missing } : marked ? missing : undefined;
      // the widths `civic-etl load` gives (integer, numeric), as these loads always had
      return { name: names[staging.indexOf(from)]!, type, required: false, from, ...(parse ? { parse } : {}) };
    });
  }
  const catalog = await catalogColumns(client, load.id);
  // without a profile every column is text: the load still lands, nothing is cast wrongly
  const detected = catalog?.columns ?? [];
  const settled = await settledByEarlierLoads(
    client,
    load.id,
    detected.map((c) => c.name),
    detected.map((c) => c.clean),
  );
  return staging
    .map((from, i) => {
      const column = detected[i] && { ...detected[i]!, clean: settled[i] }; // by position: headers may repeat or be blank
      return { name: names[i]!, ...(column ? cleanTypeFor(column, catalog!.decimalComma) : { type: 'text' as const }), required: false, from };
    })
    .filter((c) => keep(c.from));
}

/**
 * Dates that read both day-first and month-first in every value of this file (`01/02/2021`) take
 * the order an earlier load of the dataset found for the same column (the latest one that had a
 * day above 12): the clean table's dates are not read the other way round. Without one they stay
 * text (the drift policy then meets a text column).
 */
async function settledByEarlierLoads<T extends TypeDecision | undefined>(client: pg.PoolClient, loadId: number, names: readonly string[], decisions: T[]): Promise<T[]> {
  const open = decisions.flatMap((d, i) => (d?.ambiguous && d.type === 'text' ? [i] : []));
  if (open.length === 0) return decisions;
  const { rows } = await client.query<{ name: string; date: string }>(
    `SELECT DISTINCT ON (c->>'name') c->>'name' AS name, c->'clean'->>'date' AS date
       FROM etl.catalog k CROSS JOIN LATERAL jsonb_array_elements(k.columns) c
      WHERE (k.project, k.dataset) = (SELECT project, dataset FROM etl.loads WHERE id = $1) AND k.load_id < $1
        AND c->>'name' = ANY($2::text[]) AND c->'clean'->>'date' IS NOT NULL
      ORDER BY c->>'name', k.load_id DESC`,
    [loadId, open.map((i) => names[i]!)],
  );
  const earlier = new Map(rows.map((r) => [r.name, r.date]));
  const out = [...decisions];
  for (const i of open) {
    const d = decisions[i]!;
    const date = earlier.get(names[i]!);
    if (date === d.ambiguous!.dmy) out[i] = settleDateOrder(d, 1, 0) as T;
    else if (date === d.ambiguous!.mdy) out[i] = settleDateOrder(d, 0, 1) as T;
  }
  return out;
}

/**
 * The decimal mark the profile found in each staged column (by staging column name), for the
 * latitude/longitude of a dataset that declares its columns: `50,84` is read with its comma.
 */
export async function profiledDecimals(client: pg.PoolClient, load: { id: number; detected: { columns: string[] } | null }): Promise<Map<string, string>> {
  const catalog = await catalogColumns(client, load.id);
  const staging = load.detected?.columns ?? [];
  const out = new Map<string, string>();
  (catalog?.columns ?? []).forEach((c, i) => {
    const decimal = c.clean?.number?.decimal;
    if (decimal && staging[i]) out.set(staging[i]!, decimal);
  });
  return out;
}
