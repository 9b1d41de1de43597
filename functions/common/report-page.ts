/**
 * What the HTML quality report shows beyond the JSON report, gathered in PostgreSQL for one load
 * (report-html.ts draws it): the first refused values in file order, how the file is written
 * (etl.catalog.structure, etl.loads.detected), the column profile (etl.catalog.columns) with a
 * histogram per number or date column of this load's rows in the clean table, and for a
 * geometry dataset a sample of the loaded features and of the set-aside ones.
 *
 * Histograms are computed here, at report time, over the clean table (`_load_id = <id>`), not
 * by the profiler: the profiler reads a sample of the file's text before any cast, while the
 * report shows what was loaded, typed — one grouped scan per column, on rows already indexed
 * by load. Everything is bounded whatever the load's size: {@link EXAMPLE_LINES} example values,
 * {@link MAP_FEATURES} features, {@link HISTOGRAM_BINS} bins; the counts stay exact.
 */
import { ident, type Queryable } from './db.ts';
import type { LoadReport } from './report.ts';
import { supplierCopy, withoutCredentials } from './report.ts';
import type { ReportColumn, ReportMap, ReportPageData } from './report-html.ts';
import type { ReportLanguage } from './report-text.ts';
import type { Bin, Geometry } from './svg.ts';

/** Refused values listed in the page's example table (first in file order). */
export const EXAMPLE_LINES = 100;
/** Loaded features drawn on the map at most (a spread sample; the count stays exact). */
export const MAP_FEATURES = 2000;
/** Bins of a histogram at most. */
export const HISTOGRAM_BINS = 12;
/** Columns that get a histogram at most (the widest tables stay quick to report). */
const HISTOGRAM_COLUMNS = 40;
/** Decimal places of lon/lat written to the page: 5 is about a metre. */
const PRECISION = 5;

/** Gather the page of one load's report, in `language`. */
export async function gatherReportPage(
  db: Queryable,
  report: LoadReport,
  language: ReportLanguage,
  opts: { /** The file's header → the clean column, for declared columns (`source` → `name`). */ cleanNames?: Record<string, string>; now?: Date } = {},
): Promise<ReportPageData> {
  const copy = supplierCopy(report);
  const { rows: ledger } = await db.query<{ detected: Record<string, unknown> | null }>('SELECT detected FROM etl.loads WHERE id = $1', [report.loadId]);
  const detected = ledger[0]?.detected ?? {};
  const table = report.dataset ? `${ident(report.project)}.${ident(typeof detected.table === 'string' ? detected.table : report.dataset)}` : undefined;
  const quarantine = report.dataset ? `${ident(report.project)}.${ident(`${typeof detected.table === 'string' ? detected.table : report.dataset}_quarantine`)}` : undefined;
  const { rows: catalog } = await db.query<{ structure: Record<string, unknown> | null; columns: CatalogColumn[] | null; row_count: string | null }>(
    'SELECT structure, columns, row_count FROM etl.catalog WHERE load_id = $1',
    [report.loadId],
  );
  const loaded = report.status === 'loaded' && table !== undefined && (await exists(db, table));
  const histograms = loaded ? await histogramsOf(db, table, report.loadId) : new Map<string, Bin[]>();
  return {
    language,
    report: copy,
    examples: quarantine && copy.byRule.length > 0 ? await examplesOf(db, quarantine, report.loadId) : [],
    valuesTotal: copy.byRule.reduce((n, r) => n + r.values, 0),
    structure: structureOf(catalog[0]?.structure ?? {}, detected, catalog[0]?.row_count),
    columns: columnsOf(catalog[0]?.columns ?? [], histograms, opts.cleanNames ?? {}),
    ...(loaded ? await mapOf(db, table, report) : {}),
    generatedAt: (opts.now ?? new Date()).toISOString(),
  };
}

/** A column name without accents, case or separators, as the clean step matches a header to a clean column (clean/columns.ts). */
const normaliseHeader = (s: string) =>
  s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '');

interface CatalogColumn {
  name: string;
  type: string;
  format: string | null;
  score?: number;
  clean?: { type?: string };
  profile?: { missing?: number; distinct?: number; distinctCapped?: boolean; min?: number | string; max?: number | string };
}

async function exists(db: Queryable, table: string): Promise<boolean> {
  return (await db.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [table])).rows[0]!.ok;
}

async function examplesOf(db: Queryable, quarantine: string, loadId: number): Promise<ReportPageData['examples']> {
  if (!(await exists(db, quarantine))) return [];
  // the (load_id, source_line) index gives the first ones without sorting the whole load
  const { rows } = await db.query<{ line: string; column_name: string; value: string | null; reason: string; rule: string }>(
    `SELECT source_line AS line, column_name, left(raw_value, 201) AS value, left(reason, 401) AS reason, rule
       FROM ${quarantine} WHERE load_id = $1 ORDER BY source_line, column_name LIMIT ${EXAMPLE_LINES}`,
    [loadId],
  );
  const cut = (s: string, max: number) =>
    Array.from(s).length > max
      ? `${Array.from(s)
          .slice(0, max - 1)
          .join('')}…`
      : s;
  return rows.map((r) => ({ line: Number(r.line), column: r.column_name, value: r.value === null ? null : cut(r.value, 200), reason: withoutCredentials(cut(r.reason, 400)), rule: r.rule }));
}

/** How the file is written, in reading order: what the structure detector and the reader recorded. */
function structureOf(structure: Record<string, unknown>, detected: Record<string, unknown>, rowCount: string | null | undefined): ReportPageData['structure'] {
  const out: ReportPageData['structure'] = [];
  const at = (key: string) => structure[key] ?? detected[key];
  const add = (key: string, value: unknown) => {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out.push({ key, value });
  };
  const delimiter = at('delimiter');
  const format = detected.format ?? structure.format ?? (typeof delimiter === 'string' && delimiter !== '' ? 'csv' : undefined);
  add('format', format);
  add('encoding', at('encoding'));
  // how the text is delimited: for delimited text only (a spreadsheet or GeoJSON has none of it)
  if (format === undefined || format === 'csv' || format === 'text' || format === 'tsv') {
    add('bom', at('bom'));
    if (at('delimiter') !== '') add('delimiter', at('delimiter'));
    add('quote', at('quote'));
    add('lineEnding', at('lineEnding'));
    const headerRow = at('headerRow');
    if (typeof headerRow === 'number') add('headerLine', headerRow + 1);
    add('firstDataLine', structure.firstDataLine);
    add('decimalComma', structure.decimalComma);
  }
  add('sheet', detected.sheet);
  add('layer', detected.layer);
  const geometry = detected.geometry as { srid?: unknown; type?: unknown } | undefined;
  if (geometry && typeof geometry === 'object') {
    add('srid', geometry.srid);
    add('geometryType', geometry.type);
  }
  if (Number(rowCount) > 0) add('rowsProfiled', Number(rowCount));
  return out;
}

function columnsOf(columns: CatalogColumn[], histograms: Map<string, Bin[]>, cleanNames: Record<string, string>): ReportColumn[] {
  const declared = new Map(Object.entries(cleanNames).map(([source, name]) => [normaliseHeader(source), name]));
  return columns.map((c) => {
    const p = c.profile ?? {};
    // a declared column by its source header, else the clean column of the same name (as the clean step matches them)
    const bins = histograms.get(normaliseHeader(declared.get(normaliseHeader(c.name)) ?? c.name));
    return {
      name: c.name,
      type: c.clean?.type ?? c.type,
      format: c.format ?? null,
      score: typeof c.score === 'number' ? c.score : null,
      missing: typeof p.missing === 'number' ? p.missing : null,
      distinct: typeof p.distinct === 'number' ? p.distinct : null,
      ...(p.distinctCapped ? { distinctCapped: true } : {}),
      ...(p.min !== undefined ? { min: p.min } : {}),
      ...(p.max !== undefined ? { max: p.max } : {}),
      ...(bins ? { histogram: bins } : {}),
    };
  });
}

const NUMBER_TYPES = ['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision'];
const DATE_TYPES = ['date', 'timestamp without time zone', 'timestamp with time zone'];

/** Histograms of this load's rows, by normalised clean column name. */
async function histogramsOf(db: Queryable, table: string, loadId: number): Promise<Map<string, Bin[]>> {
  const { rows: columns } = await db.query<{ name: string; type: string }>(
    `SELECT attname AS name, format_type(atttypid, NULL) AS type FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE '\\_%' AND format_type(atttypid, NULL) = ANY($2) ORDER BY attnum LIMIT ${HISTOGRAM_COLUMNS}`,
    [table, [...NUMBER_TYPES, ...DATE_TYPES]],
  );
  const out = new Map<string, Bin[]>();
  for (const c of columns) {
    const bins = NUMBER_TYPES.includes(c.type) ? await numberBins(db, table, c.name, loadId) : await dateBins(db, table, c.name, loadId);
    if (bins.length > 0) out.set(normaliseHeader(c.name), bins);
  }
  return out;
}

/** Equal-width bins between the smallest and the largest value (integers: no bin narrower than 1). */
async function numberBins(db: Queryable, table: string, column: string, loadId: number): Promise<Bin[]> {
  const c = ident(column);
  const integer = await isInteger(db, table, column);
  // the first row: the bounds and the number of bins; then one row per bin that has values
  const { rows } = await db.query<{ lo: number | null; hi: number | null; bucket: number | null; n: string | null }>(
    `WITH v AS (SELECT ${c}::double precision AS x FROM ${table} WHERE _load_id = $1 AND ${c} IS NOT NULL AND ${c}::double precision NOT IN ('NaN', 'Infinity', '-Infinity')),
          k AS (SELECT lo, hi, CASE WHEN hi = lo THEN 1 WHEN $2 AND hi - lo + 1 <= ${HISTOGRAM_BINS} THEN (hi - lo + 1)::int ELSE ${HISTOGRAM_BINS} END AS bins
                  FROM (SELECT min(x) AS lo, max(x) AS hi FROM v) r)
     SELECT k.lo, k.hi, k.bins AS bucket, NULL::bigint AS n FROM k
     UNION ALL
     SELECT NULL, NULL, CASE WHEN k.hi = k.lo THEN 1 WHEN $2 AND k.bins = k.hi - k.lo + 1 THEN (v.x - k.lo)::int + 1 ELSE least(width_bucket(v.x, k.lo, k.hi, k.bins), k.bins) END, count(*)
       FROM v, k GROUP BY 3`,
    [loadId, integer],
  );
  const head = rows.find((r) => r.n === null);
  if (!head || head.lo === null || head.hi === null) return [];
  const bins = Number(head.bucket);
  const lo = Number(head.lo);
  const hi = Number(head.hi);
  const counts = new Map(rows.filter((r) => r.n !== null).map((r) => [Number(r.bucket), Number(r.n)]));
  // integers over a short range: one bin per value; else equal widths
  const single = integer && hi - lo + 1 === bins;
  const width = single ? 1 : (hi - lo) / bins;
  const round = (x: number) => Number(x.toPrecision(6));
  return Array.from({ length: bins }, (_, i) => ({ from: round(lo + i * width), to: round(single ? lo + i : i === bins - 1 ? hi : lo + (i + 1) * width), count: counts.get(i + 1) ?? 0 }));
}

async function isInteger(db: Queryable, table: string, column: string): Promise<boolean> {
  const { rows } = await db.query<{ type: string }>('SELECT format_type(atttypid, NULL) AS type FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2', [table, column]);
  return ['smallint', 'integer', 'bigint'].includes(rows[0]?.type ?? '');
}

/**
 * Dates by day, month or year — the finest unit that gives at most {@link HISTOGRAM_BINS} bins —
 * and over longer spans equal bins of whole years.
 */
async function dateBins(db: Queryable, table: string, column: string, loadId: number): Promise<Bin[]> {
  const c = ident(column);
  const { rows: span } = await db.query<{ lo: string | null; hi: string | null; days: number | null; months: number | null; years: number | null }>(
    `SELECT min(d)::date::text AS lo, max(d)::date::text AS hi, max(d)::date - min(d)::date AS days,
            (extract(year FROM max(d)) * 12 + extract(month FROM max(d))) - (extract(year FROM min(d)) * 12 + extract(month FROM min(d))) AS months,
            extract(year FROM max(d)) - extract(year FROM min(d)) AS years
       FROM (SELECT ${c}::timestamp AS d FROM ${table} WHERE _load_id = $1 AND ${c} IS NOT NULL AND isfinite(${c})) v`,
    [loadId],
  );
  const s = span[0];
  if (!s?.lo || !s.hi) return [];
  const unit = Number(s.days) < HISTOGRAM_BINS ? 'day' : Number(s.months) < HISTOGRAM_BINS ? 'month' : Number(s.years) < HISTOGRAM_BINS ? 'year' : undefined;
  if (unit) {
    const step = `1 ${unit}`;
    const { rows } = await db.query<{ bin: string; n: string }>(
      `SELECT g::date::text AS bin, count(v.d) AS n
         FROM generate_series(date_trunc('${unit}', $2::timestamp), date_trunc('${unit}', $3::timestamp), interval '${step}') g
         LEFT JOIN (SELECT date_trunc('${unit}', ${c}::timestamp) AS d FROM ${table} WHERE _load_id = $1 AND ${c} IS NOT NULL AND isfinite(${c})) v ON v.d = g
        GROUP BY g ORDER BY g`,
      [loadId, s.lo, s.hi],
    );
    const label = (d: string) => (unit === 'year' ? d.slice(0, 4) : unit === 'month' ? d.slice(0, 7) : d);
    // a bin is one day, month or year: labelled by it alone
    return rows.map((r) => ({ from: label(r.bin), to: label(r.bin), count: Number(r.n) }));
  }
  // many years: 12 bins of whole years
  const first = Number(s.lo.slice(0, 4));
  const years = Number(s.years) + 1;
  const per = Math.ceil(years / HISTOGRAM_BINS);
  const { rows } = await db.query<{ b: number; n: string }>(
    `SELECT ((extract(year FROM ${c}::timestamp)::int - $2) / $3) AS b, count(*) AS n FROM ${table} WHERE _load_id = $1 AND ${c} IS NOT NULL AND isfinite(${c}) GROUP BY 1 ORDER BY 1`,
    [loadId, first, per],
  );
  const counts = new Map(rows.map((r) => [Number(r.b), Number(r.n)]));
  return Array.from({ length: Math.ceil(years / per) }, (_, i) => ({ from: String(first + i * per), to: String(first + (i + 1) * per - 1), count: counts.get(i) ?? 0 }));
}

/**
 * The map of a geometry dataset's load: a spread sample of the loaded features (the same one at
 * each run: ordered by a hash of their line), in lon/lat, simplified to about a pixel of the map,
 * with 5 decimals; the set-aside rows' locations the clean step kept.
 */
async function mapOf(db: Queryable, table: string, report: LoadReport): Promise<{ map?: ReportMap }> {
  const { rows: geo } = await db.query<{ name: string }>(
    `SELECT attname AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND format_type(atttypid, NULL) = 'geometry' ORDER BY attnum LIMIT 1`,
    [table],
  );
  if (!geo[0]) return {};
  const g = ident(geo[0].name);
  const { rows: extent } = await db.query<{ n: string; w: number | null; h: number | null }>(
    `SELECT n, ST_XMax(e) - ST_XMin(e) AS w, ST_YMax(e) - ST_YMin(e) AS h
       FROM (SELECT ST_Extent(ST_Transform(${g}, 4326)) AS e, count(*) AS n FROM ${table} WHERE _load_id = $1 AND ${g} IS NOT NULL AND NOT ST_IsEmpty(${g})) x`,
    [report.loadId],
  );
  const total = Number(extent[0]?.n ?? 0);
  const tolerance = Math.max(Number(extent[0]?.w ?? 0), Number(extent[0]?.h ?? 0)) / 1500;
  const { rows } = await db.query<{ geojson: string }>(
    `SELECT ST_AsGeoJSON(${tolerance > 0 ? `ST_SimplifyPreserveTopology(ST_Transform(${g}, 4326), ${tolerance})` : `ST_Transform(${g}, 4326)`}, ${PRECISION}) AS geojson
       FROM ${table} WHERE _load_id = $1 AND ${g} IS NOT NULL AND NOT ST_IsEmpty(${g})
      ORDER BY md5(_source_line::text) LIMIT ${MAP_FEATURES}`,
    [report.loadId],
  );
  const rejected = report.rejectedGeometries;
  return {
    map: {
      loaded: rows.map((r) => JSON.parse(r.geojson) as Geometry),
      loadedTotal: total,
      rejected: rejected?.sample ?? [],
      rejectedReadable: rejected?.readable ?? 0,
    },
  };
}
