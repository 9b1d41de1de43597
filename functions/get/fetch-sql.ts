/**
 * Get: the rows of one SQL query against a PostgreSQL or MySQL/MariaDB database (a "datamart"),
 * streamed into `raw/<dataset>/<run>/rows.ndjson.gz` with a manifest beside it.
 *
 * - PostgreSQL: `pg` + `pg-cursor`, a server-side cursor read `batchRows` rows at a time inside a
 *   read-only transaction. MySQL/MariaDB: `mysql2`, a prepared statement whose result set is
 *   streamed (the socket is paused while S3 catches up), also in a read-only transaction.
 * - `:watermark` in the query is bound as a parameter ($1 / ?), never written into the SQL text.
 * - Values become JSON without loss: bigint and numeric as strings, timestamps as ISO 8601
 *   (`…Z` when the type has a time zone), binary as base64, NULL as null.
 * - The watermark (the max of `incremental.column` over the rows written) is saved only after the
 *   rows and the manifest are stored; a run that fails or is stopped leaves no data object and
 *   the state as it was, so the next run simply repeats it.
 * - The secret's values never reach a log line, an error message or a manifest.
 */
import mysql from 'mysql2';
import mysqlPromise from 'mysql2/promise';
import pg from 'pg';
import Cursor from 'pg-cursor';
import * as z from 'zod';
import type { DatasetDefinition, SourceDefinition } from '../../contract/definition.ts';
import { ZONES } from '../../contract/names.ts';
import type { ObjectDeclaration } from '../../contract/objects.ts';
import { PermanentError } from '../common/errors.ts';
import { manifestObject, RecordSink, writeManifest } from './sink.ts';
import { beginRun, busyMessage, stateKey, withLease, type RunClock, type StateLease } from './state.ts';
import type { FetcherDeps } from './deps.ts';

export type SqlSourceDefinition = Extract<SourceDefinition, { type: 'sql' }>;
type Engine = SqlSourceDefinition['engine'];
/** A watermark as it appears in the fetched rows: ISO 8601 text, a number, or a big number as text. */
export type Watermark = string | number;

export type SqlFetchDeps = FetcherDeps;

export interface SqlManifest {
  dataset: string;
  engine: Engine;
  /** The name of the secret the connection came from (never its values). */
  secret: string;
  database: string;
  query: string;
  key: string;
  rows: number;
  /** The query's columns, in order. */
  columns: string[];
  watermarkColumn?: string;
  /** The watermark the last run left, what was bound to `:watermark` (moved back by `overlapSeconds`), and the one this run leaves. */
  watermarkBefore?: Watermark;
  watermarkBound?: Watermark;
  watermarkAfter?: Watermark;
  /** Of the stored (gzip) object. */
  bytes: number;
  sha256: string;
  startedAt: string;
  finishedAt: string;
  /** Every row of the query was read and stored. */
  complete: true;
}

export type SqlOutcome =
  | { status: 'fetched'; manifest: SqlManifest }
  | { status: 'empty'; message: string }
  /** Another run of this source holds its state: this one did nothing. */
  | { status: 'busy'; message: string };

/** What the next incremental run starts from, kept in `state/<dataset>/sql.json`. */
interface SqlState {
  /** The column the watermark is of: a changed `incremental.column` starts over from `initial`. */
  column?: string;
  watermark?: Watermark;
  key?: string;
}

/** A query failed, could not connect, or ran out of time. The message names the dataset and the database's own error, never a credential. */
export class SqlSourceError extends Error {
  override name = 'SqlSourceError';
  constructor(
    message: string,
    /** The database's error code (SQLSTATE for PostgreSQL, `ER_…` for MySQL), when it gave one. */
    readonly code?: string,
  ) {
    super(message);
  }
}

export const sqlStateKey = (dataset: string) => stateKey(dataset, 'sql');
export const ROWS_FILE = 'rows.ndjson.gz';

/**
 * Run the dataset's query and store its rows. Takes the lease on the source's state first: a
 * second run of the same source at the same time returns `busy` and does nothing. A query that
 * returns no rows writes nothing and leaves the watermark as it was.
 */
export async function fetchSql(deps: SqlFetchDeps, dataset: DatasetDefinition): Promise<SqlOutcome> {
  if (dataset.source.type !== 'sql') throw new PermanentError(`dataset ${dataset.name} is not a SQL source (its source is ${dataset.source.type})`);
  const source = dataset.source;
  const { clock, taken } = await beginRun<SqlState>(deps, sqlStateKey(dataset.name));
  if (taken.status === 'busy') return { status: 'busy', message: busyMessage(dataset.name, taken, 'this source') };
  return withLease(taken.lease, () => fetchWithLease(deps, dataset.name, source, taken.lease, clock));
}

async function fetchWithLease(deps: SqlFetchDeps, dataset: string, source: SqlSourceDefinition, lease: StateLease<SqlState>, run: RunClock): Promise<SqlOutcome> {
  const inc = source.incremental;
  const previous = inc && lease.state?.column === inc.column ? lease.state.watermark : undefined;
  const bound = inc ? (previous === undefined ? inc.initial : moveBack(previous, inc.overlapSeconds, dataset)) : undefined;
  const query = bindWatermark(source.query, source.engine, bound === undefined ? undefined : boundValue(bound, source.engine));
  const credentials = await readCredentials(deps, dataset, source.secret);
  const stays = previous === undefined ? 'no watermark was saved' : `the watermark stays at ${String(previous)}`;

  const key = `${ZONES.raw}${dataset}/${run.run}/${ROWS_FILE}`;
  // a query's whole answer is the dataset; an incremental one (by watermark) brings changes only (contract/objects.ts)
  const declaration: ObjectDeclaration = { contract: 1, replaces: inc ? 'nothing' : 'dataset', holds: 'rows', run: run.run, runStartedAt: run.started.toISOString(), part: 1 };
  const sink = new RecordSink(deps, key, declaration);
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), run.timeoutMs);
  const progress: Progress = { phase: 'connect' };
  let columns: string[] | undefined;
  let watermark = previous;
  try {
    const batches = source.engine === 'postgres' ? postgresBatches : mysqlBatches;
    const options: RunOptions = {
      batchRows: source.batchRows,
      connectTimeoutMs: source.connectTimeoutSeconds * 1000,
      // by default a little longer than the run: the run stops (and cancels) the statement first
      statementTimeoutMs: source.statementTimeoutSeconds !== undefined ? source.statementTimeoutSeconds * 1000 : run.timeoutMs + 10_000,
      signal: stop.signal,
      progress,
    };
    for await (const batch of batches(credentials, query, options)) {
      columns ??= checkColumns(dataset, batch.columns, inc?.column);
      for (const values of batch.rows) {
        if (stop.signal.aborted) throw stop.signal.reason;
        const record: Record<string, unknown> = {};
        for (let i = 0; i < columns.length; i++) record[columns[i]!] = jsonValue(values[i]);
        if (inc) watermark = laterOf(watermark, record[inc.column] as Watermark | null);
        await sink.write(record);
      }
    }
  } catch (error) {
    await sink.abort();
    if (error instanceof PermanentError) throw error;
    if (stop.signal.aborted) {
      throw new SqlSourceError(`${dataset}: the query was stopped after ${seconds(run.timeoutMs)} s, the time this run may take, having read ${sink.records} rows; nothing was written and ${stays}`);
    }
    throw failure(error, { dataset, source, credentials, progress, rows: sink.records, stays });
  } finally {
    clearTimeout(timer);
  }

  if (sink.records === 0) {
    await sink.abort();
    const what = inc ? `no rows with ${inc.column} after ${String(bound)}` : 'no rows';
    return { status: 'empty', message: `${dataset}: the query returned ${what}; nothing written${previous === undefined ? '' : `, ${stays}`}` };
  }
  const { bytes, sha256 } = await sink.finish();
  const manifest: SqlManifest = {
    dataset,
    engine: source.engine,
    secret: source.secret,
    database: credentials.database,
    query: source.query,
    key,
    rows: sink.records,
    columns: columns!,
    ...(inc ? { watermarkColumn: inc.column, watermarkBefore: previous, watermarkBound: bound, watermarkAfter: watermark } : {}),
    bytes,
    sha256,
    startedAt: run.started.toISOString(),
    finishedAt: run.now().toISOString(),
    complete: true,
  };
  await writeManifest(deps, {
    dataset,
    connector: 'sql',
    source: `${source.engine} database ${credentials.database ?? ''} (secret ${source.secret})`.replace(/ +/g, ' '),
    run: run.run,
    startedAt: manifest.startedAt,
    finishedAt: manifest.finishedAt,
    complete: true,
    objects: [manifestObject(key, { bytes, sha256, records: sink.records }, declaration)],
    details: {
      engine: source.engine,
      database: credentials.database,
      query: source.query,
      rows: sink.records,
      columns: columns!,
      ...(inc ? { watermarkColumn: inc.column, watermarkBefore: previous, watermarkBound: bound, watermarkAfter: watermark } : {}),
    },
  });
  if (inc) await lease.save({ column: inc.column, ...(watermark === undefined ? {} : { watermark }), key });
  return { status: 'fetched', manifest };
}

// ---------------------------------------------------------------------------------------------
// credentials

/** The secret's JSON: the shape RDS gives its own secrets (`dbname`, `engine`… are accepted). */
const credentialsSchema = z
  .object({
    host: z.string().min(1),
    port: z.coerce.number().int().min(1).max(65_535).optional(),
    database: z.string().min(1).optional(),
    dbname: z.string().min(1).optional(),
    username: z.string().min(1),
    password: z.string(),
    /** `true`: TLS, verified against Node's CAs; `{ca}`: against this PEM bundle (e.g. RDS's); `{rejectUnauthorized: false}`: unverified. */
    ssl: z.union([z.boolean(), z.object({ ca: z.string().min(1).optional(), rejectUnauthorized: z.boolean().optional() })]).optional(),
  })
  .refine((c) => c.database ?? c.dbname, { message: 'needs "database" (or "dbname")', path: ['database'] });

interface Credentials {
  host: string;
  port?: number;
  database: string;
  username: string;
  password: string;
  ssl?: boolean | { ca?: string; rejectUnauthorized?: boolean };
}

async function readCredentials(deps: SqlFetchDeps, dataset: string, secret: string): Promise<Credentials> {
  let value: Record<string, unknown>;
  try {
    value = await deps.readSecret(secret);
  } catch (error) {
    // readSecret's messages name the secret, never its value
    throw new SqlSourceError(`${dataset}: could not read the secret ${secret}: ${(error as Error).message}`);
  }
  const parsed = credentialsSchema.safeParse(value);
  if (!parsed.success) {
    // zod's messages name the field and what it expected, never the value
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ');
    throw new PermanentError(`${dataset}: the secret ${secret} is not a database connection {host, port, database, username, password}: ${problems}`);
  }
  const c = parsed.data;
  return { host: c.host, port: c.port, database: (c.database ?? c.dbname)!, username: c.username, password: c.password, ssl: c.ssl };
}

function tlsOptions(ssl: Credentials['ssl']) {
  if (!ssl) return undefined;
  if (ssl === true) return { rejectUnauthorized: true };
  return { rejectUnauthorized: ssl.rejectUnauthorized ?? true, ...(ssl.ca ? { ca: ssl.ca } : {}) };
}

// ---------------------------------------------------------------------------------------------
// the query and its watermark

export interface BoundQuery {
  text: string;
  values: Watermark[];
}

/**
 * The query with each `:watermark` outside quotes and comments turned into the engine's
 * placeholder (`$1` for PostgreSQL, `?` for MySQL), and the values to bind. `::` casts, string
 * literals, quoted names, comments and PostgreSQL's dollar quoting are left alone. Refuses a
 * second statement, and a bare `?` for MySQL (it would be a placeholder without a value).
 */
export function bindWatermark(query: string, engine: Engine, watermark: Watermark | undefined): BoundQuery {
  let text = '';
  let uses = 0;
  let i = 0;
  const n = query.length;
  const copyUntil = (end: number) => {
    text += query.slice(i, end);
    i = end;
  };
  while (i < n) {
    const c = query[i]!;
    const next = query[i + 1];
    if (c === "'" || c === '"' || (c === '`' && engine === 'mysql')) {
      let j = i + 1;
      for (; j < n; j++) {
        if (engine === 'mysql' && query[j] === '\\' && c !== '`') j++;
        else if (query[j] === c) {
          if (query[j + 1] === c) j++;
          else break;
        }
      }
      copyUntil(Math.min(j + 1, n));
    } else if (c === '-' && next === '-') {
      const end = query.indexOf('\n', i);
      copyUntil(end < 0 ? n : end);
    } else if (c === '#' && engine === 'mysql') {
      const end = query.indexOf('\n', i);
      copyUntil(end < 0 ? n : end);
    } else if (c === '/' && next === '*') {
      const end = query.indexOf('*/', i + 2);
      copyUntil(end < 0 ? n : end + 2);
    } else if (c === '$' && engine === 'postgres' && /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.test(query.slice(i))) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(query.slice(i))![0];
      const end = query.indexOf(tag, i + tag.length);
      copyUntil(end < 0 ? n : end + tag.length);
    } else if (c === ':' && next === ':') {
      copyUntil(i + 2);
    } else if (c === ':' && /^:watermark(?![A-Za-z0-9_])/.test(query.slice(i, i + 11))) {
      uses++;
      text += engine === 'postgres' ? '$1' : '?';
      i += ':watermark'.length;
    } else if (c === '?' && engine === 'mysql') {
      throw new PermanentError('the query has a ? outside quotes: only :watermark is bound; quote a literal question mark');
    } else if (c === ';') {
      if (query.slice(i + 1).trim() !== '' && !/^(\s|--[^\n]*(\n|$)|\/\*[\s\S]*?\*\/)*$/.test(query.slice(i + 1))) {
        throw new PermanentError('the query holds more than one statement: give one SELECT');
      }
      i = n; // a trailing semicolon is dropped (a cursor takes one statement without it)
    } else {
      copyUntil(i + 1);
    }
  }
  if (watermark === undefined) {
    if (uses) throw new PermanentError('the query uses :watermark but the source has no incremental: { column }');
    return { text, values: [] };
  }
  if (!uses) throw new PermanentError('an incremental query needs :watermark outside quotes and comments (e.g. WHERE updated_at > :watermark)');
  return { text, values: engine === 'postgres' ? [watermark] : Array.from({ length: uses }, () => watermark) };
}

/** The watermark as the engine takes it: MySQL wants `YYYY-MM-DD hh:mm:ss[.ffffff]` (the session is in UTC). */
function boundValue(watermark: Watermark, engine: Engine): Watermark {
  if (engine === 'mysql' && typeof watermark === 'string') {
    const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d(?:\.\d+)?)(?:Z|[+-]00:?00)?$/.exec(watermark);
    if (m) return `${m[1]} ${m[2]}`;
  }
  return watermark;
}

/** Parts of an ISO 8601 date or date-time, as written by this module. */
const TIME = /^(-?\d{4,})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?)?(Z|[+-]\d\d(?::?\d\d)?)?$/;

/** Microseconds since 1970 (UTC; a time without zone is taken as UTC too), or undefined when not a date. */
function microsOf(value: string): bigint | undefined {
  const m = TIME.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (!Number.isFinite(ms)) return undefined;
  let micros = BigInt(ms) * 1000n + BigInt((frac + '000000').slice(0, 6));
  if (zone && zone !== 'Z') {
    const z = /^([+-])(\d\d):?(\d\d)?$/.exec(zone)!;
    const offset = BigInt((Number(z[2]) * 60 + Number(z[3] ?? 0)) * 60_000_000);
    micros += z[1] === '+' ? -offset : offset;
  }
  return micros;
}

/** The watermark moved back `seconds` for the overlap window: a time keeps its form (zone or not), a date stays a date. */
function moveBack(watermark: Watermark, seconds: number, dataset: string): Watermark {
  if (seconds === 0) return watermark;
  const micros = typeof watermark === 'string' ? microsOf(watermark) : undefined;
  if (micros === undefined) {
    throw new PermanentError(`${dataset}: incremental.overlapSeconds needs a date or time column, but the watermark is ${JSON.stringify(watermark)}; remove overlapSeconds`);
  }
  const back = micros - BigInt(seconds) * 1_000_000n;
  const ms = back / 1000n - (back % 1000n < 0n ? 1n : 0n);
  const iso = new Date(Number(ms)).toISOString(); // YYYY-MM-DDThh:mm:ss.mmmZ
  const str = watermark as string;
  if (!str.includes('T') && !str.includes(' ')) return iso.slice(0, 10);
  const micro = String(((back % 1000n) + 1000n) % 1000n).padStart(3, '0');
  return `${iso.slice(0, 23)}${micro}${/Z$|[+-]\d\d(:?\d\d)?$/.test(str.slice(10)) ? 'Z' : ''}`;
}

/** The later of two watermarks: numbers (and big numbers as text) by value, dates and times in time. NULL never moves it. */
export function laterOf(current: Watermark | undefined, value: Watermark | null | undefined): Watermark | undefined {
  if (value === null || value === undefined || (typeof value !== 'string' && typeof value !== 'number')) return current;
  if (current === undefined) return value;
  return compareWatermarks(value, current) > 0 ? value : current;
}

function compareWatermarks(a: Watermark, b: Watermark): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  const na = numeric(a);
  const nb = numeric(b);
  if (na && nb) return compareDecimals(na, nb);
  if (typeof a === 'string' && typeof b === 'string') {
    const ta = microsOf(a);
    const tb = microsOf(b);
    if (ta !== undefined && tb !== undefined) return ta < tb ? -1 : ta > tb ? 1 : 0;
  }
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

/** A number as sign, integer digits and fraction digits (exact for big numbers written as text). */
function numeric(v: Watermark): { neg: boolean; int: string; frac: string } | undefined {
  const m = /^(-)?(\d+)(?:\.(\d+))?$/.exec(String(v)); // a number in exponent form is compared as text
  if (!m) return undefined;
  return { neg: Boolean(m[1]), int: m[2]!.replace(/^0+(?=\d)/, ''), frac: (m[3] ?? '').replace(/0+$/, '') };
}

function compareDecimals(a: { neg: boolean; int: string; frac: string }, b: { neg: boolean; int: string; frac: string }): number {
  const zero = (x: typeof a) => x.int === '0' && x.frac === '';
  const sa = zero(a) ? 0 : a.neg ? -1 : 1;
  const sb = zero(b) ? 0 : b.neg ? -1 : 1;
  if (sa !== sb) return sa < sb ? -1 : 1;
  let mag = a.int.length !== b.int.length ? (a.int.length < b.int.length ? -1 : 1) : a.int < b.int ? -1 : a.int > b.int ? 1 : 0;
  if (mag === 0) {
    const len = Math.max(a.frac.length, b.frac.length);
    const fa = a.frac.padEnd(len, '0');
    const fb = b.frac.padEnd(len, '0');
    mag = fa < fb ? -1 : fa > fb ? 1 : 0;
  }
  return sa < 0 ? -mag : mag;
}

// ---------------------------------------------------------------------------------------------
// values

/** A value as JSON keeps it: binary as base64, big integers as text, non-finite floats as text. */
function jsonValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (Array.isArray(value)) return value.map(jsonValue);
  return value;
}

/** `2024-05-01 12:00:00.123456+00` (PostgreSQL, session in UTC) or `… 12:00:00.123456` → ISO 8601; other text (BC, infinity) unchanged. */
function isoTimestamp(text: string, zone: boolean): string {
  const m = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d(?::?\d\d){0,2})?$/.exec(text);
  if (!m) return text;
  const offset = m[3];
  if (!zone) return `${m[1]}T${m[2]}`;
  if (!offset || /^[+-]00(:?00){0,2}$/.test(offset)) return `${m[1]}T${m[2]}Z`;
  return `${m[1]}T${m[2]}${offset.length === 3 ? `${offset}:00` : offset}`;
}

/** The shortest decimal that is this float32 (MySQL FLOAT arrives as the float's exact double). */
function shortFloat32(v: number): number {
  if (!Number.isFinite(v)) return v;
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(v.toPrecision(p));
    if (Math.fround(candidate) === v) return candidate;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// engines

interface Batch {
  columns: string[];
  rows: unknown[][];
}
interface Progress {
  phase: 'connect' | 'query';
}
interface RunOptions {
  batchRows: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  /** Aborted when the run's time is up: the connection is closed under the query. */
  signal: AbortSignal;
  progress: Progress;
}

const asText = (v: string) => v;
const textArray = (pg.types.getTypeParser as (oid: number, format: 'text') => (v: string) => unknown)(1009, 'text'); // text[]
const mapNested = (v: unknown, f: (s: string) => unknown): unknown => (Array.isArray(v) ? v.map((e) => mapNested(e, f)) : v === null ? null : f(v as string));
const arrayOf = (f: (s: string) => unknown) => (v: string) => mapNested(textArray(v), f);
const float = (v: string): number | string => {
  const n = Number(v);
  return Number.isFinite(n) ? n : v;
};
const bytea = (v: string) => (v.startsWith('\\x') ? Buffer.from(v.slice(2), 'hex').toString('base64') : v);
const timestamp = (v: string) => isoTimestamp(v, false);
const timestamptz = (v: string) => isoTimestamp(v, true);

/** PostgreSQL text values that pg would turn into lossy JS values (Date, float, interval object), kept exact. */
const PG_PARSERS: Record<number, (v: string) => unknown> = {
  20: asText, // int8
  700: float, // float4
  701: float, // float8
  1700: asText, // numeric
  790: asText, // money
  1082: asText, // date
  1114: timestamp,
  1184: timestamptz,
  1186: asText, // interval (ISO 8601 duration: IntervalStyle iso_8601)
  17: bytea,
  1016: arrayOf(asText), // int8[]
  1021: arrayOf(float),
  1022: arrayOf(float),
  1231: arrayOf(asText), // numeric[]
  1182: arrayOf(asText), // date[]
  1115: arrayOf(timestamp),
  1185: arrayOf(timestamptz),
  1187: arrayOf(asText), // interval[]
  1001: arrayOf(bytea),
};
const PG_TYPES = {
  getTypeParser: ((oid: number, format?: string) => (format !== 'binary' && PG_PARSERS[oid]) || pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

async function* postgresBatches(c: Credentials, query: BoundQuery, o: RunOptions): AsyncGenerator<Batch> {
  const client = new pg.Client({
    host: c.host,
    port: c.port ?? 5432,
    database: c.database,
    user: c.username,
    password: c.password,
    ssl: tlsOptions(c.ssl),
    connectionTimeoutMillis: o.connectTimeoutMs,
    statement_timeout: o.statementTimeoutMs,
    application_name: 'civic-etl fetch',
    types: PG_TYPES,
  });
  client.on('error', () => undefined); // a lost connection is reported by the statement in flight
  let pid: number | undefined;
  // time is up: cancel the statement in the database (so it does not run on for nobody), then hang up
  const close = () => void bounded(pid === undefined ? undefined : postgresCancel(c, pid, o.connectTimeoutMs), o.connectTimeoutMs).finally(() => client.end().catch(() => undefined));
  o.signal.addEventListener('abort', close, { once: true });
  try {
    await client.connect();
    o.progress.phase = 'query';
    await client.query("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; SET bytea_output = 'hex'");
    pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await client.query('BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const cursor = client.query(new Cursor(query.text, query.values, { rowMode: 'array', types: PG_TYPES }));
    let columns: string[] | undefined;
    for (let first = true; ; first = false) {
      const { rows, fields } = await new Promise<{ rows: unknown[][]; fields: { name: string }[] }>((resolve, reject) => {
        cursor.read(o.batchRows, (error, rows, result) => (error ? reject(error) : resolve({ rows: rows as unknown[][], fields: result.fields })));
      });
      columns ??= fields.map((f) => f.name);
      if (rows.length || first) yield { columns, rows }; // the first, even empty: its columns are checked
      if (rows.length < o.batchRows) break;
    }
    await cursor.close();
    await client.query('COMMIT');
  } finally {
    o.signal.removeEventListener('abort', close);
    await client.end().catch(() => undefined);
  }
}

/** Wait for `work` at most `ms` (a cancellation is best effort: the connection is closed anyway). */
async function bounded(work: Promise<unknown> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work?.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

async function postgresCancel(c: Credentials, pid: number, connectTimeoutMs: number): Promise<void> {
  const other = new pg.Client({ host: c.host, port: c.port ?? 5432, database: c.database, user: c.username, password: c.password, ssl: tlsOptions(c.ssl), connectionTimeoutMillis: connectTimeoutMs });
  other.on('error', () => undefined);
  try {
    await other.connect();
    await other.query('SELECT pg_cancel_backend($1)', [pid]);
  } finally {
    await other.end().catch(() => undefined);
  }
}

async function mysqlKill(c: Credentials, threadId: number, connectTimeoutMs: number): Promise<void> {
  const other = await mysqlPromise.createConnection({
    host: c.host,
    port: c.port ?? 3306,
    database: c.database,
    user: c.username,
    password: c.password,
    ssl: tlsOptions(c.ssl),
    connectTimeout: connectTimeoutMs,
  });
  try {
    await other.query(`KILL QUERY ${Number(threadId)}`);
  } finally {
    other.destroy();
  }
}

/** mysql2's field description, as given to `typeCast`. */
interface MysqlField {
  type: string;
  buffer(): Buffer | null;
}

function mysqlTypeCast(field: MysqlField, next: () => unknown): unknown {
  switch (field.type) {
    case 'TIMESTAMP':
    case 'DATETIME': {
      const v = next(); // with dateStrings: `YYYY-MM-DD hh:mm:ss[.ffffff]`, in the session's time zone (UTC)
      return typeof v === 'string' ? isoTimestamp(v, field.type === 'TIMESTAMP') : v;
    }
    case 'FLOAT': {
      const v = next();
      return typeof v === 'number' ? shortFloat32(v) : v;
    }
    case 'BIT': {
      const b = field.buffer();
      if (!b) return null;
      const n = BigInt(`0x${b.toString('hex') || '0'}`);
      return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
    }
    default:
      return next();
  }
}

async function* mysqlBatches(c: Credentials, query: BoundQuery, o: RunOptions): AsyncGenerator<Batch> {
  let conn: mysqlPromise.Connection | undefined;
  let finished = false;
  // time is up: stop the statement in the database (so it does not run on for nobody), then hang up
  const close = () => void bounded(conn ? mysqlKill(c, conn.threadId, o.connectTimeoutMs) : undefined, o.connectTimeoutMs).finally(() => conn?.destroy());
  o.signal.addEventListener('abort', close, { once: true });
  try {
    conn = await mysqlPromise.createConnection({
      host: c.host,
      port: c.port ?? 3306,
      database: c.database,
      user: c.username,
      password: c.password,
      ssl: tlsOptions(c.ssl),
      connectTimeout: o.connectTimeoutMs,
      charset: 'UTF8MB4_UNICODE_CI',
      timezone: 'Z',
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      multipleStatements: false,
    });
    if (o.signal.aborted) close();
    conn.on('error', () => undefined); // a lost connection is reported by the statement in flight
    o.progress.phase = 'query';
    const [version] = (await conn.query('SELECT VERSION() AS v')) as unknown as [{ v: string }[]];
    const seconds = Math.max(1, Math.ceil(o.statementTimeoutMs / 1000));
    // MariaDB bounds any statement (max_statement_time, seconds); MySQL its SELECTs (max_execution_time, ms)
    const limit = /mariadb/i.test(version[0]?.v ?? '') ? `max_statement_time = ${seconds}` : `max_execution_time = ${seconds * 1000}`;
    // net_write_timeout: the server waits this long for us while the upload to S3 catches up
    await conn.query(`SET time_zone = '+00:00', SESSION net_write_timeout = 600, SESSION ${limit}`);
    await conn.query('START TRANSACTION READ ONLY');
    const core = (conn as unknown as { connection: mysql.Connection }).connection;
    const stream = core.execute({ sql: query.text, values: query.values, rowsAsArray: true, typeCast: mysqlTypeCast as never }).stream({ highWaterMark: o.batchRows });
    let columns: string[] | undefined;
    stream.on('fields', (fields: { name: string }[]) => {
      columns ??= fields.map((f) => f.name);
    });
    let rows: unknown[][] = [];
    for await (const row of stream as AsyncIterable<unknown[]>) {
      rows.push(row);
      if (rows.length >= o.batchRows) {
        yield { columns: columns ?? [], rows };
        rows = [];
      }
    }
    yield { columns: columns ?? [], rows };
    await conn.query('COMMIT');
    finished = true;
  } finally {
    o.signal.removeEventListener('abort', close);
    // a connection whose statement failed or was cut off is dropped, not closed politely
    if (finished) await conn!.end().catch(() => conn?.destroy());
    else conn?.destroy();
  }
}

function checkColumns(dataset: string, columns: string[], incremental: string | undefined): string[] {
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c)) throw new PermanentError(`${dataset}: the query returns two columns named "${c}"; give them distinct names (… AS other_name)`);
    seen.add(c);
  }
  if (incremental !== undefined && !seen.has(incremental)) {
    throw new PermanentError(`${dataset}: incremental.column "${incremental}" is not a column of the query (it returns ${columns.map((c) => `"${c}"`).join(', ')})`);
  }
  return columns;
}

const seconds = (ms: number) => (ms / 1000).toFixed(ms % 1000 ? 1 : 0);

/** The database's error as our own: the dataset, what failed, the database's message and code; never the password. */
function failure(error: unknown, at: { dataset: string; source: SqlSourceDefinition; credentials: Credentials; progress: Progress; rows: number; stays: string }): Error {
  const e = error as { message?: string; code?: string | number; sqlMessage?: string };
  const code = typeof e.code === 'string' ? e.code : undefined;
  let message = e.sqlMessage ?? e.message ?? String(error);
  const secret = at.credentials.password;
  if (secret.length >= 4) message = message.split(secret).join('…');
  const { host, port, database, username } = at.credentials;
  const where = `the ${at.source.engine === 'postgres' ? 'PostgreSQL' : 'MySQL'} database "${database}" at ${host}:${port ?? (at.source.engine === 'postgres' ? 5432 : 3306)}`;
  const text =
    at.progress.phase === 'connect'
      ? `${at.dataset}: could not connect to ${where} as ${username} (secret ${at.source.secret}): ${message}${code ? ` (${code})` : ''}`
      : `${at.dataset}: the query on ${where} failed after ${at.rows} rows: ${message}${code ? ` (${code})` : ''}; nothing was written and ${at.stays}`;
  return new SqlSourceError(text, code);
}
