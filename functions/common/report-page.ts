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
/** The map sample's GeoJSON at most, in characters: simplified further until it fits (the SVG it makes is smaller still). */
const MAP_GEOJSON_CHARS = 1_000_000;
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
const INTEGER_TYPES = ['smallint', 'integer', 'bigint'];
const DATE_TYPES = ['date', 'timestamp without time zone', 'timestamp with time zone'];

/** How one column's values fall into bins, decided from its range: the SQL of a value's bin (1-based) and the bins' labels. */
interface Binning {
  bucket: string;
  labels: { from: number | string; to: number | string }[];
}

/**
 * Histograms of this load's rows, by normalised clean column name: two scans of the load's rows
 * whatever the number of columns — one for each column's range, one counting every column's bins
 * (a lateral VALUES gives each row's bin in each column) — so a wide table or a table many loads
 * share costs the same two passes.
 */
async function histogramsOf(db: Queryable, table: string, loadId: number): Promise<Map<string, Bin[]>> {
  const { rows: columns } = await db.query<{ name: string; type: string }>(
    `SELECT attname AS name, format_type(atttypid, NULL) AS type FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE '\\_%' AND format_type(atttypid, NULL) = ANY($2) ORDER BY attnum LIMIT ${HISTOGRAM_COLUMNS}`,
    [table, [...NUMBER_TYPES, ...DATE_TYPES]],
  );
  if (columns.length === 0) return new Map();
  // a value as the bins read it: numbers as double precision (NaN and infinities left out), dates as timestamps (infinities left out)
  const value = columns.map((c) =>
    NUMBER_TYPES.includes(c.type)
      ? `CASE WHEN ${ident(c.name)}::double precision NOT IN ('NaN', 'Infinity', '-Infinity') THEN ${ident(c.name)}::double precision END`
      : `CASE WHEN isfinite(${ident(c.name)}) THEN ${ident(c.name)}::timestamp END`,
  );
  const { rows: ranges } = await db.query<Record<string, number | string | null>>(
    `SELECT ${value.map((v, i) => (NUMBER_TYPES.includes(columns[i]!.type) ? `min(${v}) AS lo${i}, max(${v}) AS hi${i}` : `to_char(min(${v}), 'YYYY-MM-DD') AS lo${i}, to_char(max(${v}), 'YYYY-MM-DD') AS hi${i}`)).join(', ')}
       FROM ${table} WHERE _load_id = $1`,
    [loadId],
  );
  const range = ranges[0] ?? {};
  const binnings = columns.map((c, i) => {
    const lo = range[`lo${i}`];
    const hi = range[`hi${i}`];
    if (lo === null || lo === undefined || hi === null || hi === undefined) return undefined;
    return NUMBER_TYPES.includes(c.type)
      ? numberBinning(value[i]!, Number(lo), Number(hi), INTEGER_TYPES.includes(c.type))
      : dateBinning(value[i]!, new Date(`${String(lo)}T00:00:00Z`), new Date(`${String(hi)}T00:00:00Z`));
  });
  const binned = binnings.flatMap((b, i) => (b ? [`(${i}, ${b.bucket})`] : []));
  if (binned.length === 0) return new Map();
  const { rows: counts } = await db.query<{ i: number; b: number; n: string }>(
    `SELECT v.i, v.b, count(*) AS n FROM ${table} t CROSS JOIN LATERAL (VALUES ${binned.join(', ')}) v(i, b)
      WHERE t._load_id = $1 AND v.b IS NOT NULL GROUP BY v.i, v.b`,
    [loadId],
  );
  const out = new Map<string, Bin[]>();
  columns.forEach((c, i) => {
    const b = binnings[i];
    if (!b) return;
    const n = new Map(counts.filter((r) => r.i === i).map((r) => [Number(r.b), Number(r.n)]));
    out.set(
      normaliseHeader(c.name),
      b.labels.map((l, k) => ({ ...l, count: n.get(k + 1) ?? 0 })),
    );
  });
  return out;
}

/** A number literal for SQL (a finite double precision). */
const sqlNumber = (x: number) => `${x}::double precision`;

/** Equal-width bins between the smallest and the largest value; integers over a short range: one bin per value. */
function numberBinning(x: string, lo: number, hi: number, integer: boolean): Binning {
  const round = (v: number) => Number(v.toPrecision(6));
  if (hi === lo) return { bucket: `CASE WHEN ${x} IS NOT NULL THEN 1 END`, labels: [{ from: round(lo), to: round(hi) }] };
  if (integer && hi - lo + 1 <= HISTOGRAM_BINS) {
    return { bucket: `(${x} - ${sqlNumber(lo)})::int + 1`, labels: Array.from({ length: hi - lo + 1 }, (_, k) => ({ from: lo + k, to: lo + k })) };
  }
  const bins = HISTOGRAM_BINS;
  const width = (hi - lo) / bins;
  return {
    bucket: `least(width_bucket(${x}, ${sqlNumber(lo)}, ${sqlNumber(hi)}, ${bins}), ${bins})`,
    labels: Array.from({ length: bins }, (_, k) => ({ from: round(lo + k * width), to: round(k === bins - 1 ? hi : lo + (k + 1) * width) })),
  };
}

/**
 * Dates by day, month or year — the finest unit that gives at most {@link HISTOGRAM_BINS} bins,
 * each labelled by its day, month or year — and over longer spans equal groups of whole years.
 */
function dateBinning(d: string, lo: Date, hi: Date): Binning {
  const y0 = lo.getUTCFullYear();
  const m0 = y0 * 12 + lo.getUTCMonth();
  const day0 = Date.UTC(y0, lo.getUTCMonth(), lo.getUTCDate());
  const days = Math.round((Date.UTC(hi.getUTCFullYear(), hi.getUTCMonth(), hi.getUTCDate()) - day0) / 86_400_000) + 1;
  const months = hi.getUTCFullYear() * 12 + hi.getUTCMonth() - m0 + 1;
  const years = hi.getUTCFullYear() - y0 + 1;
  const iso = (t: number) => new Date(t).toISOString().slice(0, 10);
  const month = (m: number) => `${Math.floor(m / 12)}-${String((m % 12) + 1).padStart(2, '0')}`;
  const year = `extract(year FROM ${d})::int`;
  if (days <= HISTOGRAM_BINS) {
    const labels = Array.from({ length: days }, (_, k) => iso(day0 + k * 86_400_000));
    return { bucket: `(${d}::date - DATE '${iso(day0)}') + 1`, labels: labels.map((l) => ({ from: l, to: l })) };
  }
  if (months <= HISTOGRAM_BINS) {
    return { bucket: `(${year} * 12 + extract(month FROM ${d})::int - 1) - ${m0} + 1`, labels: Array.from({ length: months }, (_, k) => ({ from: month(m0 + k), to: month(m0 + k) })) };
  }
  const per = Math.ceil(years / HISTOGRAM_BINS);
  return {
    bucket: `(${year} - ${y0}) / ${per} + 1`,
    labels: Array.from({ length: Math.ceil(years / per) }, (_, k) => ({ from: String(y0 + k * per), to: String(Math.min(y0 + (k + 1) * per - 1, y0 + years - 1)) })),
  };
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
  // about a pixel of the map; coarser while the sample's GeoJSON is over budget (thousands of detailed polygons)
  const pixel = Math.max(Number(extent[0]?.w ?? 0), Number(extent[0]?.h ?? 0)) / 1500;
  let rows: { geojson: string }[] = [];
  for (const coarser of [1, 4, 16, 64]) {
    const tolerance = pixel * coarser;
    ({ rows } = await db.query<{ geojson: string }>(
      `SELECT ST_AsGeoJSON(${tolerance > 0 ? `ST_SimplifyPreserveTopology(ST_Transform(${g}, 4326), ${tolerance})` : `ST_Transform(${g}, 4326)`}, ${PRECISION}) AS geojson
         FROM ${table} WHERE _load_id = $1 AND ${g} IS NOT NULL AND NOT ST_IsEmpty(${g})
        ORDER BY md5(_source_line::text) LIMIT ${MAP_FEATURES}`,
      [report.loadId],
    ));
    if (rows.reduce((n, r) => n + r.geojson.length, 0) <= MAP_GEOJSON_CHARS) break;
  }
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
