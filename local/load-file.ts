import { createReadStream, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type pg from 'pg';
import { COLUMN_TYPES, type ColumnType } from '../contract/definition.ts';
import { geometrySchema } from '../contract/schema.ts';
import { castIntoFitting, createAsCast, nothingLoaded, quarantineTableSql, type CastColumn } from '../functions/clean/cast.ts';
import { alterColumnTypes } from '../functions/clean/drift.ts';
import { launder, normaliseHeader } from '../functions/clean/columns.ts';
import {
  geometryType,
  isGeometryMisfit,
  narrowGeometryColumn,
  planGeometry,
  predictedGeometryType,
  repairSummary,
  watchRepairs,
  widerGeometryType,
  withCoordinateFormat,
} from '../functions/clean/geometry.ts';
import { ident, inTransaction, literal } from '../functions/common/db.ts';
import { PermanentError, isPermanent } from '../functions/common/errors.ts';
import { maxFileColumns } from '../functions/common/limits.ts';
import { markFailed, markLoaded, markStaged, receiveObject } from '../functions/common/ledger.ts';
import { migrate } from '../functions/migrate/migrate.ts';
import { openSource, type FormatHint } from '../functions/read/open.ts';
import { parallelEnv, parseEnv, SUGGESTED_PARALLEL_CONNECTIONS, type ParallelConfig } from '../functions/common/config.ts';
import { stageTable } from '../functions/stage/stage-table.ts';
import { loadDirect } from './load-direct.ts';
import { inferTypes } from '../functions/clean/infer.ts';
import { DEFAULT_TYPE_THRESHOLD, missingWarning, readsOf } from '../functions/profile/column-type.ts';
import { checkLonLat, checkSridsKnown, settleSourceSrid } from '../functions/clean/source-srid.ts';

export interface LoadFileOptions {
  /** `schema.table` (or `table`, in `public`). */
  table: string;
  delimiter?: string;
  /** Append to an existing table instead of replacing its rows. */
  append?: boolean;
  /** Drop and recreate the table with freshly inferred types. */
  recreate?: boolean;
  /**
   * Share of a column's non-empty values that must cast for it to get a type (default 0.99): the
   * few that do not are rejected with their line. 1 keeps a column text unless every value casts.
   */
  typeThreshold?: number;
  /** The file's format, when detection should not decide. */
  format?: FormatHint;
  /** Spreadsheet sheet (name or 0-based index), GeoPackage layer, archive member (glob). */
  sheet?: string | number;
  layer?: string;
  member?: string;
  /** SRID of the geometry column (default 4326) and of the source when the file does not say. */
  srid?: number;
  sourceSrid?: number;
  /** Latitude/longitude columns (default: detected by name). */
  lat?: string;
  lon?: string;
  /** Invalid geometries: repaired (default) or rejected. */
  invalid?: 'repair' | 'quarantine';
  /** Told as each phase ends (read and staged, types inferred, cast, indexed), with its seconds. */
  onPhase?: (phase: string, seconds: number) => void;
  /**
   * A plain CSV larger than `bytes` is staged over `connections` connections at once, by byte
   * ranges (default: CIVIC_ETL_PARALLEL_BYTES, 64 MiB; CIVIC_ETL_PARALLEL_CONNECTIONS, else the machine's cores, at most 4; 1 connection: one COPY).
   */
  parallel?: Partial<ParallelConfig>;
  /** Called with each stream opened on the file (its bytesRead is the progress of reading it) and the file's size. */
  onRead?: (stream: { bytesRead: number }, size: number) => void;
}

export interface LoadFileResult {
  table: string;
  rejectsTable: string;
  rowsRead: number;
  rowsLoaded: number;
  rowsRejected: number;
  created: boolean;
  /** `reads`: how the values are written, when not as PostgreSQL reads them (`decimal ","`, `d/m/yyyy`). */
  columns: { name: string; type: ColumnType | 'geometry'; from: string; reads?: string }[];
  /** What was read: `csv (delimiter ";")`, `geojson`, `shapefile`… */
  format: string;
  delimiter?: string;
  /** How the geometry column was made, when there is one. */
  geometry?: string;
  warnings: string[];
}

/**
 * One file straight into a table, like csvsql or ogr2ogr: detect what it is (CSV in any encoding,
 * a spreadsheet, JSON, GeoJSON, a zipped shapefile, a GeoPackage, gzip or zip around them), stage
 * it with COPY, infer column types (when the table is new), cast, and put rows that do not cast
 * into `<table>_rejects` with the line and reason. Geometry (the file's own, or lat/lon columns)
 * becomes a `geom` column in EPSG:4326 (or `srid`) with a GiST index. All in one transaction: a
 * failure leaves no table and no half-loaded rows. Recorded in the ledger like any other load.
 */
export async function loadFile(pool: pg.Pool, file: string, opts: LoadFileOptions): Promise<LoadFileResult> {
  const [schema, name] = opts.table.includes('.') ? (opts.table.split('.', 2) as [string, string]) : ['public', opts.table];
  if (!schema || !name) throw new PermanentError(`--table must be schema.table, got "${opts.table}"`);
  const path = resolve(file);
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat?.isFile()) throw new PermanentError(`${file}: no such file`, { file });
  await migrate(pool, undefined);
  await checkSridsKnown(pool, file, [
    [opts.sourceSrid, '--source-srid'],
    [opts.srid, '--srid'],
  ]);
  const { load } = await receiveObject(pool, schema, name, {
    bucket: 'local-file',
    key: path,
    versionId: `loaded-${new Date().toISOString()}`,
    size: stat.size,
  });
  const target = `${ident(schema)}.${ident(name)}`;
  let mark = performance.now();
  const phase = (what: string) => {
    const now = performance.now();
    opts.onPhase?.(what, (now - mark) / 1000);
    mark = now;
  };
  const rejectsTable = `${ident(schema)}.${ident(`${name}_rejects`)}`;
  const opened = await openSource(
    {
      name: file,
      path,
      open: async (signal) => {
        const stream = createReadStream(path, { highWaterMark: 256 * 1024, ...(signal ? { signal } : {}) });
        opts.onRead?.(stream, stat.size);
        return stream;
      },
    },
    { format: opts.format, sheet: opts.sheet, layer: opts.layer, member: opts.member, srid: opts.sourceSrid },
  ).catch(async (error: unknown) => {
    await markFailed(pool, load.id, isPermanent(error) ? error : new PermanentError((error as Error).message));
    throw error;
  });
  // the repair listener leaves the pooled client however the load ends
  let stopWatching = () => {};
  // the staging table of a file staged in parts: committed before the cast, so dropped here if the load fails
  let stagedInParts: string | undefined;
  try {
    if (opened.entries.length > 1) {
      const names = opened.entries.map((e) => e.name).join(', ');
      throw new PermanentError(`${file} holds ${opened.entries.length} tables (${names}): choose one with --member, --layer or --sheet`, { file });
    }
    const entry = opened.entries[0]!;
    // unlogged, not temporary: parallel workers can read it when the new table is cast from it
    const staging = `${ident(schema)}.${ident(`_civic_etl_load_${load.id}`)}`;
    // a big plain CSV: staged by parts over parallel connections, committed before the cast (dropped below if the load fails)
    const settings = { ...parseEnv(parallelEnv, process.env, 'civic-etl load'), ...opts.parallel };
    const parallel = { bytes: settings.bytes, connections: settings.connections ?? SUGGESTED_PARALLEL_CONNECTIONS };
    const inParts =
      entry.kind === 'csv' && entry.name === file
        ? await (
            await import('./load-file-parts.ts')
          ).stageFileInParts(pool, {
            file,
            path,
            ref: { bucket: 'local-file', key: path, versionId: load.object_version, size: stat.size },
            loadId: load.id,
            schema,
            table: staging,
            delimiter: opts.delimiter,
            maxColumns: maxFileColumns('load'),
            ...parallel,
          })
        : undefined;
    if (inParts) stagedInParts = staging;
    return await inTransaction(pool, async (client) => {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`);
      // no JIT compiling for this load's statements: their time is in casts and PostGIS calls, which
      // compiled expressions do not speed up, while PostGIS's high costs make the planner inline and
      // optimise — 0.8–1.1 s of compiling (EXPLAIN ANALYZE) for one validity check of 200,000
      // polygons, once per parallel worker; about 0.05 s for the cast of 1,000,000 lat/lon rows
      await client.query('SET LOCAL jit = off');
      if (entry.kind === 'table') {
        // a shapefile into a new table: its typed rows straight into the table, no staging (load-direct.ts)
        const direct = await loadDirect(client, {
          table: entry.table,
          file,
          schema,
          name,
          target,
          rejectsTable,
          staging,
          loadId: load.id,
          geometry: geometrySchema.parse({ srid: opts.srid, invalid: opts.invalid, from: opts.lat || opts.lon ? { lat: opts.lat ?? 'lat', lon: opts.lon ?? 'lon' } : undefined }),
          sourceSrid: opts.sourceSrid,
          isNew: async () => (await tableColumns(client, schema, name)).length === 0,
          recreate: opts.recreate === true,
          columnType: (column) => columnType(client, schema, name, column),
          phase,
          skipped: opened.skipped,
        });
        if (direct && 'gaveWay' in direct) phase(`loading straight into the table given up (${direct.gaveWay}): staged instead`);
        else if (direct) return direct;
      }
      const source = entry.kind === 'csv' && !inParts ? await entry.open() : undefined;
      const staged = inParts
        ? inParts
        : source
          ? await (
              await import('../functions/stage/stage-object.ts')
            ).stageCsv(client, { file: entry.name, source, table: staging, delimiter: opts.delimiter, persistence: 'unlogged', maxColumns: maxFileColumns('load') })
          : await stageTable(client, (entry as Extract<typeof entry, { kind: 'table' }>).table, { table: staging, persistence: 'unlogged', maxColumns: maxFileColumns('load') });
      const header = 'structure' in staged ? staged.structure.header : staged.header;
      await markStaged(client, load.id, { rowsRead: staged.rows, stagingTable: staging, header, detected: staged.detected, ms: 0 });
      phase(`read and staged ${staged.rows} rows`);

      const geometryDef = geometrySchema.parse({
        srid: opts.srid,
        invalid: opts.invalid,
        from: opts.lat || opts.lon ? { lat: opts.lat ?? 'lat', lon: opts.lon ?? 'lon' } : undefined,
      });
      // a coordinate system the file names in words only: identified by its parameters, never assumed 4326
      const native = 'geometry' in staged.detected ? staged.detected.geometry : undefined;
      const nativeSrid = native?.srid;
      const crsWarnings: string[] = []; // the coordinate system's and the repairs', in this order
      if (geometryDef.enabled && !geometryDef.from) {
        await settleSourceSrid(client, { geometry: native, file, given: opts.sourceSrid, staging, warnings: crsWarnings, option: '--source-srid' });
      }
      let geometry = planGeometry(geometryDef, 'geometry' in staged.detected ? staged.detected : undefined, header, staged.columns, entry.name, opts.sourceSrid);
      // metres (or feet) labelled as degrees: a wrong map that looks loaded, or a transform that fails
      const lonLatHow =
        opts.sourceSrid === 4326
          ? '--source-srid says they are'
          : nativeSrid === 4326
            ? 'the file says they are'
            : native?.srid === 4326 && native.crs
              ? 'they were read as'
              : 'the file names no coordinate system, so they would be read as';
      if (geometry && geometry.source.kind === 'text' && geometry.source.srid === 4326 && geometry.srid !== 4326) {
        // checked before the cast, whose ST_Transform would fail on them with no file named
        await checkLonLat(client, {
          table: staging,
          column: geometry.source.from,
          file,
          how: lonLatHow,
          option: '--source-srid',
          staged: { encoding: geometry.source.encoding },
          unit: 'unit' in staged.detected ? staged.detected.unit : 'line',
        });
      }
      const attributes = staged.columns.map((c, i) => ({ from: c, heading: header[i] ?? c })).filter((c) => !geometry?.consumed.includes(c.from));

      if (opts.recreate) await client.query(`DROP TABLE IF EXISTS ${target}`);
      const existing = await tableColumns(client, schema, name);
      // types the file declares (a shapefile's DBF fields) where every value fits them; the rest
      // by the type inference (the profiler's), which also says how values are written
      const declared = 'declaredTypes' in staged ? staged.declaredTypes : undefined;
      const declaredOf = (from: string) => declared?.[staged.columns.indexOf(from)];
      const undeclared = attributes.filter((a) => declaredOf(a.from) === undefined).map((a) => a.from);
      const decimalComma = 'structure' in staged ? staged.structure.decimalComma : undefined;
      const headings = undeclared.map((from) => header[staged.columns.indexOf(from)] ?? from);
      const decisions = await inferTypes(client, staging, undeclared, opts.typeThreshold ?? DEFAULT_TYPE_THRESHOLD, staged.rows, { decimalComma, headers: headings });
      const decisionOf = (from: string) => decisions[undeclared.indexOf(from)];
      const parseOf = (from: string, type: ColumnType) => {
        const d = decisionOf(from);
        const numeric = type === 'integer' || type === 'bigint' || type === 'numeric' || type === 'double';
        const dated = type === 'date' || type === 'timestamp' || type === 'timestamptz';
        // `NA`, `...`: missing in a number or date column (column-type.ts), NULL after the cast
        const missing = d?.missing && (numeric || dated) ? { missing: d.missing.map((m) => m.value) } : {};
        if (d?.number && numeric) return { parse: { number: d.number, ...missing } };
        if (d?.date && dated) return { parse: { date: d.date, ...missing } };
        // a date column whose file says no day/month order: ISO dates only — the others are
        // rejected with their line rather than read month-first by PostgreSQL's guess
        // (a file whose sample is all ISO dates is cast as PostgreSQL reads ISO, as a new table is)
        if (type === 'date' && d?.type !== 'date') return { parse: { date: 'yyyy-m-d', ...missing } };
        return 'missing' in missing ? { parse: missing } : {};
      };
      phase(undeclared.length < attributes.length ? `types declared by the file${undeclared.length ? ', others inferred' : ''}` : 'types inferred');
      // latitude/longitude written with a decimal comma
      geometry = withCoordinateFormat(geometry, (from) => decisionOf(from)?.number?.decimal);
      let columns: CastColumn[];
      if (existing.length > 0) {
        const byNorm = new Map(attributes.map((a) => [normaliseHeader(a.heading), a.from]));
        launder(attributes.map((a) => a.heading)).forEach((l, i) => {
          if (!byNorm.has(normaliseHeader(l))) byNorm.set(normaliseHeader(l), attributes[i]!.from);
        });
        columns = existing
          .filter((c) => !(geometry && c.geometry && c.name === geometry.column))
          .map((c) => {
            const from = byNorm.get(normaliseHeader(c.name));
            if (!from) throw new PermanentError(`${file}: table ${opts.table} has column "${c.name}", which is not in the file's header`, { file, line: 1, column: c.name });
            return { name: c.name, type: c.type, required: false, from, ...parseOf(from, c.type) };
          });
        if (geometry && !existing.some((c) => c.geometry && c.name === geometry!.column)) {
          throw new PermanentError(`${file}: table ${opts.table} has no geometry column "${geometry.column}"; load with --recreate to rebuild it`, { file });
        }
      } else {
        const types = attributes.map((a) => declaredOf(a.from) ?? decisionOf(a.from)!.type);
        // the file's headings laundered, as the pipeline names them (clean/columns.ts) — not the
        // staging names, which prefix a leading `_` (`_umap_options.color` → `umap_options_color`)
        const laundered = launder(staged.columns.map((c, i) => header[i] ?? c));
        const names = attributes.map((a) => laundered[staged.columns.indexOf(a.from)]!);
        if (geometry) for (let i = 0; i < names.length; i++) if (names[i] === geometry.column) names[i] = `${names[i]}_attribute`;
        columns = attributes.map((a, i) => ({ name: names[i]!, type: types[i]!, required: false, from: a.from, ...parseOf(a.from, types[i]!) }));
      }
      const plan = {
        staging,
        target,
        quarantine: rejectsTable,
        columns,
        key: [],
        loadId: load.id,
        lineage: false,
        append: opts.append,
        geometry,
      };
      // a new table whose every value casts is made in one statement; otherwise row by row
      let cast: { rowsLoaded: number; rowsQuarantined: number } | undefined;
      // invalid shapes are repaired in the cast; what the repair changed is said, never silently
      const repairs = watchRepairs(client);
      stopWatching = repairs.stop;
      // the geometry column's type, read from the staged values where that is cheap (WKB headers,
      // points from lat/lon): then the table is made with it, and needs no rewrite to be typed
      let typed = existing.length === 0 && geometry ? await predictedGeometryType(client, staging, geometry) : undefined;
      if (existing.length === 0) {
        const create = (type: string | undefined) => createAsCast(client, plan, type);
        const created = await create(typed ?? (geometry && geometryType(geometry))).catch((error: unknown) => {
          // a repaired shape of another type than its WKB said: made as any geometry, typed after
          if (!typed || !isGeometryMisfit(error)) throw error;
          typed = undefined;
          return create(geometry && geometryType(geometry));
        });
        if (created === undefined) typed = undefined;
        if (created !== undefined) cast = { rowsLoaded: created, rowsQuarantined: 0 };
        else {
          const defs = columns.map((c) => `${ident(c.name)} ${sqlType(c.type)}`);
          if (geometry) defs.push(`${ident(geometry.column)} ${geometryType(geometry)}`);
          await client.query(`CREATE TABLE ${target} (${defs.join(', ')})`);
        }
      }
      await client.query(quarantineTableSql(rejectsTable, `${name}_rejects_load`));
      const warnings: string[] = [];
      // an existing table's geometry column keeps its type, widened to any geometry when this file's do not fit it
      cast ??= await castIntoFitting(client, { ...plan, optimistic: existing.length > 0 }, async (misfit) => {
        const was = (await columnType(client, schema, name, geometry!.column)) ?? 'geometry';
        const to = widerGeometryType(was);
        if (!to) throw misfit;
        await alterColumnTypes(client, schema, name, new Map([[geometry!.column, to]]));
        warnings.push(`column ${geometry!.column} widened from ${was} to ${to}: ${misfit.message}`);
      });
      repairs.stop();
      const repaired = geometry && repairs.seen() ? await repairSummary(client, staging, geometry, 'unit' in staged.detected ? staged.detected.unit : 'line') : undefined;
      if (repaired) crsWarnings.push(`${file}: ${repaired}`);
      const { rowsLoaded, rowsQuarantined } = cast;
      // every row rejected: a failure, rolled back whole — no new table, no rejects, an existing table as it was
      const none = await nothingLoaded(client, { quarantine: rejectsTable, loadId: load.id, file, rowsRead: staged.rows, rowsLoaded });
      if (none) throw none;
      const missing = await missingCounts(client, staging, columns);
      if (missing) warnings.push(missing);
      await client.query(`DROP TABLE ${staging}`);
      if (geometry && geometry.source.kind === 'text' && geometry.source.srid === 4326 && geometry.srid === 4326) {
        // stored as 4326 without a transform: checked on the loaded rows (parsed once)
        await checkLonLat(client, { table: target, column: geometry.column, file, how: lonLatHow, option: '--source-srid' });
      }
      phase(geometry ? 'cast, with geometry' : 'cast');
      let geometryColumnType: string | undefined;
      if (geometry) {
        // a new table: the column takes the type its geometries share (MultiPolygon, PointZ…), as ogr2ogr's would
        if (existing.length === 0 && !typed) await narrowGeometryColumn(client, target, geometry.column, geometry.srid);
        geometryColumnType = await columnType(client, schema, name, geometry.column);
        phase(`geometry column typed ${geometryColumnType}`);
        // built after the rows are in: one sort instead of an index update per row
        await client.query(`CREATE INDEX IF NOT EXISTS ${ident(`${name.slice(0, 50)}_${geometry.column}_gist`)} ON ${target} USING gist (${ident(geometry.column)})`);
        await client.query(`ANALYZE ${target}`);
        phase('spatial index built');
      }
      await markLoaded(client, load.id, { rowsLoaded, rowsQuarantined, ms: 0 });
      return {
        table: `${schema}.${name}`,
        rejectsTable: `${schema}.${name}_rejects`,
        rowsRead: staged.rows,
        rowsLoaded,
        rowsRejected: rowsQuarantined,
        created: existing.length === 0,
        columns: [
          ...columns.map(({ name: n, type, from, parse }) => ({ name: n, type, from, ...(parse ? { reads: readsOf(parse) } : {}) })),
          ...(geometry ? [{ name: geometry.column, type: 'geometry' as const, from: geometry.note }] : []),
        ],
        format: 'structure' in staged ? 'csv' : staged.detected.format,
        delimiter: 'structure' in staged ? staged.structure.delimiter : undefined,
        geometry: geometry && `${geometry.column}: ${geometry.note} → EPSG:${geometry.srid}, ${geometryColumnType}`,
        warnings: [...staged.detected.warnings, ...opened.skipped.map((s) => `skipped ${s}`), ...crsWarnings, ...warnings],
      };
    });
  } catch (caught) {
    let error = caught;
    if ((error as { code?: string }).code === '54000' && /^row is too big/.test((error as Error).message)) {
      // many short values: each stays in the row, and a row must fit one 8 kB page
      error = new PermanentError(
        `${file}: a row is too wide for PostgreSQL (${(error as Error).message}): a row must fit in one 8 kB page, and short values are kept in it whatever their number; keep fewer columns`,
        { file },
      );
    }
    if (stagedInParts) await pool.query(`DROP TABLE IF EXISTS ${stagedInParts}`);
    if (isPermanent(error)) await markFailed(pool, load.id, error);
    else await markFailed(pool, load.id, new PermanentError((error as Error).message));
    throw error;
  } finally {
    stopWatching();
    await opened.dispose();
  }
}

const sqlType = (t: ColumnType) => COLUMN_TYPES[t];

/**
 * `NA, ... read as missing in 2 columns (22 values)`: the missing-value markers the cast made
 * NULL, counted over every staged value (the inference saw a sample). Undefined when none.
 */
async function missingCounts(client: pg.PoolClient, staging: string, columns: readonly CastColumn[]): Promise<string | undefined> {
  const marked = columns.filter((c) => c.parse?.missing?.length);
  if (marked.length === 0) return undefined;
  const items = marked.flatMap((c, i) => c.parse!.missing!.map((m, j) => `count(*) FILTER (WHERE lower(btrim(${ident(c.from)})) = ${literal(m.trim().toLowerCase())}) AS "${i}_${j}"`));
  const { rows } = await client.query<Record<string, string>>(`SELECT ${items.join(', ')} FROM ${staging}`);
  return missingWarning(marked.map((c, i) => ({ missing: c.parse!.missing!.map((value, j) => ({ value, count: Number(rows[0]![`${i}_${j}`]) })).filter((m) => m.count > 0) })));
}
const FROM_CATALOG: Record<string, ColumnType> = {
  text: 'text',
  'character varying': 'text',
  integer: 'integer',
  smallint: 'integer',
  bigint: 'bigint',
  numeric: 'numeric',
  'double precision': 'double',
  real: 'double',
  boolean: 'boolean',
  date: 'date',
  'timestamp without time zone': 'timestamp',
  'timestamp with time zone': 'timestamptz',
};

async function tableColumns(client: pg.PoolClient, schema: string, name: string): Promise<{ name: string; type: ColumnType; geometry: boolean }[]> {
  const { rows } = await client.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type FROM pg_attribute a
      WHERE a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [schema, name],
  );
  return rows.map((r) => ({ name: r.name, type: FROM_CATALOG[r.type] ?? 'text', geometry: r.type === 'geometry' }));
}

/** A column's type as the catalog spells it: `geometry(MultiPolygon,4326)`. */
async function columnType(client: pg.PoolClient, schema: string, name: string, column: string): Promise<string | undefined> {
  const { rows } = await client.query<{ type: string }>(
    `SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
      WHERE attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND attname = $3 AND NOT attisdropped`,
    [schema, name, column],
  );
  return rows[0]?.type;
}
