/**
 * `civic-etl load` of a shapefile into a new table without a staging table (issue 19): the final
 * rows — the DBF attributes already typed as their fields declare them, the shape as EWKB with the
 * table's SRID, promoted to Multi* as the staged cast would — go in one binary COPY straight into
 * the typed table. Each shape is proved valid in Node as it is written where it can be
 * (functions/clean/certainly-valid.ts: rings simple and apart); the others are checked with
 * ST_IsValid on that table (by their lines, or set-based over the whole table, a filter PostgreSQL
 * can split among parallel workers, when many are left), the few invalid ones are repaired in place with the same
 * etl.repaired (its notice, the same warning counts and lines: clean/geometry.ts repairSummary),
 * the GiST index is built once and the table analysed. The staged path wrote every geometry twice
 * (staging, then the CREATE TABLE AS cast) and cast every attribute in SQL.
 *
 * Whatever this path cannot do exactly as the staged one would, it gives up — rolled back to its
 * savepoint, nothing left — and the load goes the staged way, re-reading the file: a value that
 * does not fit its field's declared type (the staged path then infers a type, and rejects rows
 * with their line), a shape PostGIS cannot read or with a NaN coordinate (quarantined there), a
 * geometry type other than the .shp header's, a repaired shape of another type, an empty layer.
 * It does not apply (the staged path runs) to an existing table, `--invalid quarantine`, lat/lon
 * columns, a source SRID other than the table's (ST_Transform stays in SQL) or one the file names
 * only in words, fields the DBF types as memo or binary, or with CIVIC_ETL_LOAD_DIRECT=0.
 *
 * The shapes' source lines travel in a column `_civic_etl_line`, for the repair's messages, and
 * are dropped before the commit (ALTER TABLE … DROP COLUMN: metadata only; the table's rows keep
 * its 8 bytes each until a rewrite such as VACUUM FULL).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { COLUMN_TYPES, type ColumnType, type GeometryDefinition } from '../contract/definition.ts';
import { quarantineTableSql } from '../functions/clean/cast.ts';
import { certainlyValid } from '../functions/clean/certainly-valid.ts';
import { launder } from '../functions/clean/columns.ts';
import { planGeometry, repairSummary, watchRepairs, withoutJit, type GeometryPlan } from '../functions/clean/geometry.ts';
import { checkLonLat } from '../functions/clean/source-srid.ts';
import { ident } from '../functions/common/db.ts';
import { markLoaded, markStaged } from '../functions/common/ledger.ts';
import { readsOf } from '../functions/profile/column-type.ts';
import { isShapefileTable, type WkbRow } from '../functions/read/shapefile.ts';
import type { DeclaredType, ReadTable } from '../functions/read/types.ts';
import { stagingColumns } from '../functions/stage/copy.ts';
import type { LoadFileResult } from './load-file.ts';
import { COPY_CHUNK as CHUNK, CopyBinaryBuffer } from '../functions/stage/copy-binary.ts';

export interface DirectLoad {
  table: ReadTable;
  file: string;
  schema: string;
  name: string;
  /** Quoted `schema.table`, and its rejects table. */
  target: string;
  rejectsTable: string;
  /** The staging table's name the ledger records (never created on this path). */
  staging: string;
  loadId: number;
  geometry: GeometryDefinition;
  sourceSrid?: number;
  /** Whether the table is new (after --recreate's drop): only a new table is loaded this way. */
  isNew: () => Promise<boolean>;
  recreate: boolean;
  columnType: (column: string) => Promise<string | undefined>;
  phase: (what: string) => void;
  skipped: readonly string[];
}

/** Why the direct load gave way to the staged one: the load goes on, staged. */
class GiveWay extends Error {}

/** The table's rows written straight into it, or `undefined`: the staged path is to load the file (nothing of this attempt is left). */
export async function loadDirect(client: pg.PoolClient, d: DirectLoad): Promise<LoadFileResult | { gaveWay: string } | undefined> {
  if (process.env.CIVIC_ETL_LOAD_DIRECT === '0') return undefined;
  const table = d.table;
  if (!isShapefileTable(table) || !d.geometry.enabled || d.geometry.from || d.geometry.invalid !== 'repair') return undefined;
  const native = table.geometry;
  if (!native || native.encoding !== 'wkb' || native.type === undefined || native.srid === undefined || native.srid !== d.geometry.srid) return undefined;
  const header = [...table.columns];
  const expected = table.expectedTypes();
  const staged = stagingColumns(header);
  const geometryIndex = header.indexOf(native.column);
  const plan = planGeometry(d.geometry, { geometry: { ...native, column: staged[geometryIndex]! } }, header, staged, table.name, d.sourceSrid);
  if (!plan || plan.source.kind !== 'text') return undefined;
  const attributes = staged.map((from, i) => ({ from, index: i, type: expected[i] })).filter((a) => a.index !== geometryIndex);
  if (attributes.some((a) => a.type === undefined)) return undefined;
  const laundered = launder(header);
  const columns = attributes.map((a) => {
    const name = laundered[a.index]! === plan.column ? `${laundered[a.index]}_attribute` : laundered[a.index]!;
    // as the staged path plans a declared date column: read as ISO dates (yyyy-m-d)
    return { name, type: a.type as ColumnType, from: a.from, index: a.index, ...(a.type === 'date' ? { parse: { date: 'yyyy-m-d' } } : {}) };
  });
  // a field of that name (the source lines' column) is left to the staged path
  if (columns.some((c) => c.name === '_civic_etl_line')) return undefined;
  const columnType = `geometry(${native.type},${plan.srid})`;
  const warningsBefore = table.warnings.length;
  const repairs = watchRepairs(client);
  await client.query('SAVEPOINT civic_etl_direct');
  try {
    if (d.recreate) await client.query(`DROP TABLE IF EXISTS ${d.target}`);
    if (!(await d.isNew())) {
      await client.query('ROLLBACK TO SAVEPOINT civic_etl_direct');
      return undefined;
    }
    const defs = [...columns.map((c) => `${ident(c.name)} ${COLUMN_TYPES[c.type]}`), `${ident(plan.column)} ${columnType}`, '_civic_etl_line bigint'];
    await client.query(`CREATE TABLE ${d.target} (${defs.join(', ')})`);
    const seen = new Set<string>();
    // the shapes not proved valid as they are written (certainly-valid.ts): ST_IsValid checks these
    const unproved: number[] = [];
    const copy = client.query(copyFrom(`COPY ${d.target} FROM STDIN WITH (FORMAT binary)`));
    await pipeline(Readable.from(encodeRows(table.binaryBatches(), columns, plan, seen, unproved), { objectMode: false }), copy);
    const rows = Number(copy.rowCount ?? 0);
    if (rows === 0) throw new GiveWay('no rows');
    // the file's values fit the types its fields declare (else the staged path infers one)
    const declared = table.declaredTypes?.() ?? [];
    const misfit = columns.find((c) => declared[c.index] !== c.type);
    if (misfit) throw new GiveWay(`column ${misfit.name}: its values are not all ${misfit.type}`);
    // the geometry type the staged path would have read from the shapes (predictedGeometryType)
    if (seen.size !== 1 || !seen.has(columnType)) throw new GiveWay(`shapes of type ${[...seen].join(', ') || 'none'}, not ${columnType} alone`);
    await markStaged(client, d.loadId, {
      rowsRead: rows,
      stagingTable: d.staging,
      header,
      detected: { format: table.format, columns: staged, unit: table.unit, geometry: { ...native, column: staged[geometryIndex]! }, warnings: table.warnings },
      ms: 0,
    });
    d.phase(`read and written ${rows} rows straight into the table`);

    const warnings: string[] = [];
    const repaired = await repairInPlace(client, d, plan, table.unit, unproved.length < rows * UNPROVED_SHARE ? unproved : undefined);
    if (repaired && repairs.seen()) warnings.push(`${d.file}: ${repaired}`);
    await client.query(`ALTER TABLE ${d.target} DROP COLUMN _civic_etl_line`);
    d.phase(repaired ? 'shapes checked, the invalid ones repaired' : 'shapes checked, all valid');
    await client.query(quarantineTableSql(d.rejectsTable, `${d.name}_rejects_load`));
    if (plan.source.srid === 4326 && plan.srid === 4326) {
      const how = d.sourceSrid === 4326 ? '--source-srid says they are' : 'the file says they are';
      await checkLonLat(client, { table: d.target, column: plan.column, file: d.file, how, option: '--source-srid' });
    }
    const geometryColumnType = await d.columnType(plan.column);
    await client.query(`CREATE INDEX IF NOT EXISTS ${ident(`${d.name.slice(0, 50)}_${plan.column}_gist`)} ON ${d.target} USING gist (${ident(plan.column)})`);
    await client.query(`ANALYZE ${d.target}`);
    d.phase('spatial index built');
    await markLoaded(client, d.loadId, { rowsLoaded: rows, rowsQuarantined: 0, ms: 0 });
    await client.query('RELEASE SAVEPOINT civic_etl_direct');
    return {
      table: `${d.schema}.${d.name}`,
      rejectsTable: `${d.schema}.${d.name}_rejects`,
      rowsRead: rows,
      rowsLoaded: rows,
      rowsRejected: 0,
      created: true,
      columns: [...columns.map(({ name, type, from, parse }) => ({ name, type, from, ...(parse ? { reads: readsOf(parse) } : {}) })), { name: plan.column, type: 'geometry' as const, from: plan.note }],
      format: table.format,
      geometry: `${plan.column}: ${plan.note} → EPSG:${plan.srid}, ${geometryColumnType}`,
      warnings: [...table.warnings, ...d.skipped.map((s) => `skipped ${s}`), ...warnings],
    };
  } catch (error) {
    if (!(error instanceof GiveWay) && !isDataError(error)) throw error;
    await client.query('ROLLBACK TO SAVEPOINT civic_etl_direct');
    // the staged path reads the file again, and says again what the reader found
    table.warnings.length = warningsBefore;
    return { gaveWay: (error as Error).message };
  } finally {
    repairs.stop();
  }
}

/**
 * Up to this share of the rows unproved, ST_IsValid checks those rows alone (found by their line);
 * beyond it, the whole table in one scan PostgreSQL shares among its workers.
 */
const UNPROVED_SHARE = 0.2;

/**
 * The invalid shapes of the new table, found by one set-based filter, repaired in place as the
 * staged cast repairs them (etl.promoted(etl.repaired(shape as read))). Returns what the repair
 * changed (repairSummary), `undefined` when every shape was valid. `unproved`: the lines of the
 * only shapes that may be invalid (the others were proved valid as they were written); all of
 * them when not given.
 */
async function repairInPlace(client: pg.PoolClient, d: DirectLoad, plan: GeometryPlan, unit: string, unproved: readonly number[] | undefined): Promise<string | undefined> {
  const g = `t.${ident(plan.column)}`;
  if (unproved?.length === 0) return undefined;
  // ST_IsValid is costed high (PostGIS): the planner gives a large table's scan its workers
  const { rows } = await withoutJit(client, () =>
    unproved
      ? client.query<{ line: string }>(`SELECT t._civic_etl_line AS line FROM ${d.target} t WHERE t._civic_etl_line = ANY($1::bigint[]) AND NOT ST_IsValid(${g})`, [unproved])
      : client.query<{ line: string }>(`SELECT t._civic_etl_line AS line FROM ${d.target} t WHERE NOT ST_IsValid(${g})`),
  );
  if (rows.length === 0) return undefined;
  const lines = rows.map((r) => r.line);
  // the shape as the file has it: the reader writes a Multi* only for several parts, so a Multi* of
  // one part is a single shape this load promoted — repaired as the single shape, as the staged cast does
  const asRead = plan.promote ? `CASE WHEN GeometryType(${g}) IN ('MULTIPOLYGON', 'MULTILINESTRING') AND ST_NumGeometries(${g}) = 1 THEN ST_GeometryN(${g}, 1) ELSE ${g} END` : g;
  const summary = await repairSummary(client, '', plan, unit, { sql: `SELECT t._civic_etl_line AS line, ${asRead} AS g FROM ${d.target} t WHERE t._civic_etl_line = ANY($1::bigint[])`, params: [lines] });
  const repaired = plan.promote ? `etl.promoted(etl.repaired(${asRead}))` : `etl.repaired(${asRead})`;
  await client.query(`UPDATE ${d.target} t SET ${ident(plan.column)} = ${repaired} WHERE t._civic_etl_line = ANY($1::bigint[])`, [lines]);
  return summary;
}

/** What a bad value makes PostgreSQL or PostGIS raise: data exceptions (22…) and PostGIS's parse errors (XX000). */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'XX000' || (typeof code === 'string' && code.startsWith('22'));
}

/** WKB type codes and the names PostGIS gives them in a column type. */
const WKB_NAMES = ['', 'Point', 'LineString', 'Polygon', 'MultiPoint', 'MultiLineString', 'MultiPolygon', 'GeometryCollection'];
const SRID_FLAG = 0x20000000;
const Z_FLAG = 0x80000000;

/**
 * The rows in COPY's binary format: each attribute in its type's binary form, the shape as EWKB
 * (`seen` collects the column types the shapes have), the source line.
 */
async function* encodeRows(
  batches: AsyncIterable<WkbRow[]>,
  columns: readonly { type: ColumnType; index: number; name: string }[],
  plan: GeometryPlan,
  seen: Set<string>,
  unproved: number[],
): AsyncGenerator<Buffer> {
  const out = new BinaryRows();
  out.header();
  for await (const batch of batches) {
    for (const row of batch) {
      out.row(columns.length + 2);
      for (const c of columns) {
        const v = row.values[c.index];
        if (v === null || v === undefined) out.null();
        else if (!out.value(c.type, v)) throw new GiveWay(`column ${c.name}: ${JSON.stringify(v.slice(0, 40))} in feature ${row.position} is not a ${c.type} as written`);
      }
      const wkb = row.wkb;
      if (wkb === null) out.null();
      else if (typeof wkb === 'string') throw new GiveWay(`feature ${row.position}: ${wkb}`);
      else {
        if (!certainlyValid(wkb)) unproved.push(row.position);
        seen.add(out.ewkb(wkb, plan.srid, plan.promote));
      }
      out.int8(row.position);
    }
    // the batch's WKB is the reader's until the next batch is asked for: written out by then
    if (out.length >= CHUNK) yield out.take();
  }
  out.trailer();
  yield out.take();
}

/** COPY's binary format, written value by value into buffers (the framing is CopyBinaryBuffer's, as the staging writer's). */
export class BinaryRows extends CopyBinaryBuffer {
  /** A numeric's decimal digits, reused from value to value. */
  private digits = new Uint8Array(64);

  row(fields: number): void {
    this.room(2);
    this.length = this.buf.writeUInt16BE(fields, this.length);
  }

  null(): void {
    this.room(4);
    this.length = this.buf.writeInt32BE(-1, this.length);
  }

  int8(n: number): void {
    this.room(12);
    this.length = this.buf.writeUInt32BE(8, this.length);
    this.length = this.buf.writeUInt32BE(Math.floor(n / 2 ** 32), this.length);
    this.length = this.buf.writeUInt32BE(n >>> 0, this.length);
  }

  /** A value of a declared type, as the reader wrote it; `false` when it is not one as written (nothing is written then). */
  value(type: DeclaredType | ColumnType, v: string): boolean {
    switch (type) {
      case 'text': {
        this.room(4 + 3 * v.length);
        const bytes = this.buf.write(v, this.length + 4, 'utf8');
        this.buf.writeUInt32BE(bytes, this.length);
        this.length += 4 + bytes;
        return true;
      }
      case 'integer': {
        const n = integerOf(v, 10);
        if (n === undefined || n < -2147483648 || n > 2147483647) return false;
        this.room(8);
        this.length = this.buf.writeUInt32BE(4, this.length);
        this.length = this.buf.writeInt32BE(n, this.length);
        return true;
      }
      case 'bigint': {
        // up to 15 digits exactly as a double; longer ones through BigInt
        const short = integerOf(v, 15);
        if (short === undefined && !/^[+-]?\d{1,19}$/.test(v)) return false;
        const n = short !== undefined ? BigInt(short) : BigInt(v);
        if (n < -(2n ** 63n) || n >= 2n ** 63n) return false;
        this.room(12);
        this.length = this.buf.writeUInt32BE(8, this.length);
        this.length = this.buf.writeBigInt64BE(n, this.length);
        return true;
      }
      case 'numeric':
        return this.numeric(v);
      case 'date': {
        const day = isoDayNumber(v);
        if (day === undefined) return false;
        this.room(8);
        this.length = this.buf.writeUInt32BE(4, this.length);
        this.length = this.buf.writeInt32BE(day, this.length);
        return true;
      }
      case 'boolean': {
        if (v !== 'true' && v !== 'false') return false;
        this.room(5);
        this.length = this.buf.writeUInt32BE(1, this.length);
        this.buf[this.length++] = v === 'true' ? 1 : 0;
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * A decimal as PostgreSQL's numeric input reads it (`[+-]digits[.digits][e±digits]`), in the
   * binary form numeric_recv takes: base-10000 digits, the weight of the first, the sign and the
   * display scale (the digits written after the point, less the exponent: `12.50` keeps 2,
   * `4.6e+007` none). `false` for anything else.
   */
  private numeric(v: string): boolean {
    const len = v.length;
    let i = 0;
    let negative = false;
    const c0 = v.charCodeAt(0);
    if (c0 === 0x2b || c0 === 0x2d) {
      negative = c0 === 0x2d;
      i = 1;
    }
    const digits = this.digits.length < len ? (this.digits = new Uint8Array(2 * len)) : this.digits;
    let n = 0;
    let whole = 0;
    for (; i < len; i++) {
      const d = v.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) break;
      digits[n++] = d;
      whole++;
    }
    let fraction = 0;
    if (i < len && v.charCodeAt(i) === 0x2e) {
      for (i++; i < len; i++) {
        const d = v.charCodeAt(i) - 0x30;
        if (d < 0 || d > 9) break;
        digits[n++] = d;
        fraction++;
      }
    }
    if (n === 0) return false;
    let exponent = 0;
    if (i < len && (v.charCodeAt(i) === 0x65 || v.charCodeAt(i) === 0x45)) {
      i++;
      let sign = 1;
      if (v.charCodeAt(i) === 0x2b || v.charCodeAt(i) === 0x2d) sign = v.charCodeAt(i++) === 0x2d ? -1 : 1;
      const start = i;
      for (; i < len; i++) {
        const d = v.charCodeAt(i) - 0x30;
        if (d < 0 || d > 9) break;
        exponent = exponent * 10 + d;
      }
      if (i === start || i - start > 3) return false;
      exponent *= sign;
    }
    if (i !== len) return false;
    const dscale = Math.max(0, fraction - exponent);
    // the decimal point sits after `point` digits; leading and trailing zeros carry nothing
    let first = 0;
    while (first < n && digits[first] === 0) first++;
    let end = n;
    while (end > first && digits[end - 1] === 0) end--;
    const point = whole + exponent - first;
    // zeros before the first digit so that the point falls between groups of four
    const left = (4 - (((point % 4) + 4) % 4)) % 4;
    const groups = first === end ? 0 : Math.ceil((left + end - first) / 4);
    this.room(12 + 2 * groups);
    this.length = this.buf.writeUInt32BE(8 + 2 * groups, this.length);
    this.length = this.buf.writeUInt16BE(groups, this.length);
    this.length = this.buf.writeInt16BE(groups === 0 ? 0 : (point + left) / 4 - 1, this.length);
    this.length = this.buf.writeUInt16BE(negative && groups > 0 ? 0x4000 : 0, this.length);
    this.length = this.buf.writeUInt16BE(dscale, this.length);
    for (let g = 0; g < groups; g++) {
      let group = 0;
      for (let k = 0; k < 4; k++) {
        const at = first + g * 4 + k - left;
        group = group * 10 + (at >= first && at < end ? digits[at]! : 0);
      }
      this.length = this.buf.writeUInt16BE(group, this.length);
    }
    return true;
  }

  /**
   * A shape's WKB as EWKB with `srid`, a single Polygon or LineString wrapped as a Multi* of one
   * part when `promote` (as etl.promoted does). Returns the column type it has (`geometry(MultiPolygon,4326)`).
   */
  ewkb(wkb: Buffer, srid: number, promote: boolean): string {
    const little = wkb[0] === 1;
    const code = little ? wkb.readUInt32LE(1) : wkb.readUInt32BE(1);
    // ISO codes (+1000 Z, +2000 M, +3000 ZM), as the shapefile encoder writes them (Z only)
    const base = code % 1000;
    const z = Math.floor(code / 1000) === 1 || Math.floor(code / 1000) === 3;
    const m = Math.floor(code / 1000) === 2 || Math.floor(code / 1000) === 3;
    const wrap = promote && !m && (base === 2 || base === 3);
    const type = wrap ? base + 3 : base;
    const dims = `${z ? 'Z' : ''}${m ? 'M' : ''}`;
    const head = wrap ? 13 : 9;
    const size = head + (wrap ? wkb.length : wkb.length - 5);
    this.room(4 + size);
    this.length = this.buf.writeUInt32BE(size, this.length);
    this.buf[this.length] = 1;
    // EWKB flags for the outer type (Z, SRID); M shapes are not wrapped, and keep their ISO code
    const outer = (m ? code : type | (z ? Z_FLAG : 0)) | SRID_FLAG;
    this.buf.writeUInt32LE(outer >>> 0, this.length + 1);
    this.buf.writeUInt32LE(srid, this.length + 5);
    this.length += 9;
    if (wrap) {
      this.length = this.buf.writeUInt32LE(1, this.length);
      this.length += wkb.copy(this.buf, this.length);
    } else if (little) {
      this.length += wkb.copy(this.buf, this.length, 5);
    } else {
      // a big-endian shape keeps its byte order after the header: written whole inside a wrapper is simpler, but this reader writes little-endian only
      throw new GiveWay('a big-endian WKB shape');
    }
    return `geometry(${WKB_NAMES[type] ?? 'Geometry'}${dims},${srid})`;
  }
}

/** `[+-]digits` (at most `most` digits) as a number; `undefined` for anything else. */
function integerOf(v: string, most: number): number | undefined {
  let i = 0;
  const c0 = v.charCodeAt(0);
  if (c0 === 0x2b || c0 === 0x2d) i = 1;
  if (i >= v.length || v.length - i > most) return undefined;
  let n = 0;
  for (; i < v.length; i++) {
    const d = v.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return c0 === 0x2d ? -n : n;
}

/** `YYYY-MM-DD` naming a real day from year 1 on, as PostgreSQL's day number (days since 2000-01-01); `undefined` for anything else. */
function isoDayNumber(v: string): number | undefined {
  if (v.length !== 10 || v.charCodeAt(4) !== 0x2d || v.charCodeAt(7) !== 0x2d) return undefined;
  let y = 0;
  for (let i = 0; i < 4; i++) {
    const d = v.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return undefined;
    y = y * 10 + d;
  }
  const m = twoDigits(v, 5);
  const d = twoDigits(v, 8);
  if (y < 1 || m < 1 || m > 12 || d < 1) return undefined;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (d > (m === 2 ? (leap ? 29 : 28) : m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31)) return undefined;
  // days from the civil date (proleptic Gregorian, as PostgreSQL counts), from 1970-01-01, then from 2000-01-01
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468 - 10957;
}

/** The two digits at `v[at]` as a number, -1 if either is not a digit (a function of its own: a closure made per call is slow under tsx, which names each one). */
function twoDigits(v: string, at: number): number {
  const a = v.charCodeAt(at) - 0x30;
  const b = v.charCodeAt(at + 1) - 0x30;
  return a < 0 || a > 9 || b < 0 || b > 9 ? -1 : 10 * a + b;
}
