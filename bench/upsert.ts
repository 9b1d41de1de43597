/**
 * `npm run bench -- upsert`: the clean step's cost for an incremental upsert — the path a change
 * query or an incremental API run takes — against the minimum a hand-written upsert does.
 *
 * Setup (not timed): a fresh project whose dataset has detected columns and
 * `clean: { key: ['id'], mode: 'upsert' }`; a gzip NDJSON object of BENCH_UPSERT_ROWS (default
 * 1,000,000) records under raw/, declared as a full run (`replaces: 'run'`), as the SQL and REST
 * connectors write them, staged (stageObject) and cleaned (cleanLoad) once. Its clean table
 * (id integer + six text, integer and date columns) is saved, and each run starts from that copy.
 *
 * Each run (BENCH_RUNS, default 3; the order of the two sides alternates; medians and spreads by
 * bench/interleave.ts):
 * - ours: an incremental object of BENCH_UPSERT_CHANGES (default 20,000) records — half updates
 *   of existing ids, half new ids — declared `replaces: 'nothing'` with a later runStartedAt, staged
 *   (not timed), then cleaned with cleanLoad (timed: the whole call, commit included);
 * - baseline: the same records COPYed into a plain text staging table (not timed, printed), then
 *   applied to a copy of the same table with one `INSERT … SELECT <casts> … ON CONFLICT (id) DO
 *   UPDATE` (timed) — no quarantine, no order checks, no ledger.
 * Before each side the table is restored (TRUNCATE + INSERT from the saved copy, VACUUM ANALYZE)
 * and a CHECKPOINT is taken, none of it timed. After each run both tables must hold the same rows:
 * same count and the same md5 of their data columns ordered by id.
 *
 * Ours runs with its pool wrapped to time every statement it sends; after the timed runs one
 * more, untimed, run EXPLAIN ANALYZEs the statements of the cast (each in a savepoint rolled
 * back, then run for real) and prints the plan of the per-key order check.
 * Ends with `RESULT upsert ours=<median s> baseline=<median s> ratio=<baseline/ours> unit=s`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline as streamPipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, PutBucketVersioningCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ensureServices } from '../local/services.ts';
import { benchRuns, median, report } from './interleave.ts';
import { mulberry32 as rng } from '../scripts/random.ts';
import type { ObjectDeclaration } from '../contract/objects.ts';

const ROOT = join(import.meta.dirname, '..');
const DIR = join(ROOT, '.local/bench');
const PROJECT = 'bench_upsert';
const DATASET = 'programs';
/** Where the saved table state and the baseline's tables live (not the project's schemas). */
const BENCH = 'bench_upsert_baseline';
const FIELDS = ['id', 'name', 'category', 'amount', 'starts_on', 'ward', 'note'] as const;
const CATEGORIES = ['Education', 'Sports', 'Arts', 'Health', 'Employment', 'Food'];

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  const n = v === undefined || v === '' ? fallback : Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, not ${v}`);
  return n;
}

type Row = [id: number, name: string, category: string, amount: number, startsOn: string, ward: number, note: string];

/** One record; `version` 0 is the initial load, 1 an update (every field but the id changes). */
function record(r: () => number, id: number, version: number): Row {
  const day = new Date(Date.UTC(2020, 0, 1) + Math.floor(r() * 2000) * 86_400_000).toISOString().slice(0, 10);
  const note = r() < 0.1 ? `note with a comma, "quotes" and é — ${id}/${version}` : `plain note ${version ? 'updated' : 'number'} ${id} about the programme`;
  return [id, `Programme ${Math.floor(r() * 1e6)} in ward ${id % 50}`, CATEGORIES[(id + version) % 6]!, Math.floor(r() * 100_000), day, (id % 50) + 1 + version, note];
}

const ndjson = (row: Row) => `${JSON.stringify(Object.fromEntries(FIELDS.map((f, i) => [f, row[i]])))}\n`;
const csvField = (v: string | number) => (typeof v === 'number' || !/[",\n\r]/.test(v) ? String(v) : `"${v.replace(/"/g, '""')}"`);
const csv = (row: Row) => `${row.map(csvField).join(',')}\n`;

/** The initial records, gzip NDJSON, kept in .local/bench (deterministic). */
function initialObject(rows: number): Buffer {
  const path = join(DIR, `upsert-${rows}.ndjson.gz`);
  if (existsSync(path)) return readFileSync(path);
  const r = rng(2025);
  const chunks: string[] = [];
  let buf = '';
  for (let id = 1; id <= rows; id++) {
    buf += ndjson(record(r, id, 0));
    if (buf.length > 1 << 20) {
      chunks.push(buf);
      buf = '';
    }
  }
  chunks.push(buf);
  const gz = gzipSync(Buffer.from(chunks.join('')));
  writeFileSync(path, gz);
  return gz;
}

/** The change records: half updates of ids spread over the table, half new ids, interleaved. */
function changeRows(rows: number, changes: number): Row[] {
  const r = rng(7);
  const updates = Math.floor(changes / 2);
  const out: Row[] = [];
  const stride = rows / updates;
  for (let k = 0; k < updates; k++) out.push(record(r, Math.min(rows, 1 + Math.floor(k * stride + r() * stride)), 1));
  for (let id = rows + 1; id <= rows + changes - updates; id++) out.push(record(r, id, 0));
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

interface Statement {
  sql: string;
  ms: number;
}

/** A short label for a statement: its name when it is one of the cast's, else its first 90 characters. */
function label(sql: string): string {
  return tagOf(sql) ?? sql.replace(/\s+/g, ' ').trim().slice(0, 90);
}

/** What a statement of the cast does, for those worth a name. */
function tagOf(sql: string): string | undefined {
  const s = sql.replace(/\s+/g, ' ').trim();
  const tag = [
    [/'superseded'/, 'order check: keys a newer object brought (target ⋈ etl.loads)'],
    [/'deleted', format\('a newer object/, 'order check: tombstones'],
    [/duplicate key: same/, 'repeated keys in the file (window)'],
    [/CROSS JOIN LATERAL \(VALUES/, 'quarantine: values that do not cast'],
    [/^DELETE FROM \S+ t USING/, 'upsert: DELETE the rows of the keys brought'],
    [/^INSERT INTO "?bench_upsert"?\."?programs"? \(/, 'upsert: INSERT the cast rows'],
    [/count\(\*\) FILTER \(WHERE k0 = 1\)/, 'infer types (sample of the staged rows)'],
    [/count\(DISTINCT source_line\)/, 'count quarantined lines'],
  ] as const;
  for (const [re, name] of tag) if (re.test(s)) return name;
  return undefined;
}

/**
 * The pool cleanLoad gets: every statement it sends (on the pool or on a client it checks out) is
 * timed into `log`. With `explain`, the cast's statements on a transaction's client are first run
 * under EXPLAIN ANALYZE in a savepoint that is rolled back (so they take effect once), plans kept.
 */
function timedPool(pool: pg.Pool, log: Statement[], explain?: Map<string, string>): pg.Pool {
  const timed = (target: pg.Pool | pg.PoolClient, inTx: boolean) => async (sql: unknown, params?: unknown) => {
    const text = typeof sql === 'string' ? sql : (sql as { text?: string }).text;
    const query = (target.query as (...a: unknown[]) => Promise<unknown>).bind(target);
    if (explain && inTx && text && tagOf(text)) {
      await query('SAVEPOINT bench_explain');
      try {
        const plan = (await query(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, params)) as pg.QueryResult<{ 'QUERY PLAN': string }>;
        explain.set(label(text), plan.rows.map((r) => r['QUERY PLAN']).join('\n'));
      } finally {
        await query('ROLLBACK TO SAVEPOINT bench_explain');
      }
    }
    const started = performance.now();
    try {
      return await (params === undefined ? query(sql) : query(sql, params));
    } finally {
      if (text) log.push({ sql: text, ms: performance.now() - started });
    }
  };
  const wrap = <T extends object>(target: T, overrides: Record<string, unknown>): T =>
    new Proxy(target, {
      get(t, prop) {
        if (prop in overrides) return overrides[prop as string];
        const v = Reflect.get(t, prop, t);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
  return wrap(pool, {
    query: timed(pool, false),
    connect: async () => {
      const client = await pool.connect();
      return wrap(client, { query: timed(client, true) });
    },
  });
}

export async function main(): Promise<void> {
  const ROWS = envInt('BENCH_UPSERT_ROWS', 1_000_000);
  const CHANGES = envInt('BENCH_UPSERT_CHANGES', 20_000);
  const RUNS = benchRuns();
  if (CHANGES / 2 > ROWS) throw new Error('BENCH_UPSERT_CHANGES must be at most twice BENCH_UPSERT_ROWS');
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
  mkdirSync(DIR, { recursive: true });
  await ensureServices();
  const { s3Client } = await import('../functions/common/aws.ts');
  const { getPool, closePool } = await import('../functions/common/db.ts');
  const { migrate } = await import('../functions/migrate/migrate.ts');
  const { parsePipeline } = await import('../contract/load.ts');
  const { declarationMetadata } = await import('../contract/objects.ts');
  const { stageObject } = await import('../functions/stage/stage-object.ts');
  const { cleanLoad } = await import('../functions/clean/clean-load.ts');

  console.log(`generating input (once; kept in .local/bench): ${ROWS.toLocaleString('en')} records, then ${CHANGES.toLocaleString('en')} changes…`);
  const initial = initialObject(ROWS);
  const changes = changeRows(ROWS, CHANGES);
  const changeObject = gzipSync(Buffer.from(changes.map(ndjson).join('')));
  const changeCsv = changes.map(csv).join('');

  // a fresh project: its schemas and ledger rows gone, the migrations run
  const pipeline = parsePipeline({
    project: PROJECT,
    // a fetched dataset (objects under raw/ with a declaration); columns detected, key id, mode upsert
    datasets: [{ name: DATASET, source: { type: 'http', url: 'http://127.0.0.1:9/programs.ndjson' }, clean: { key: ['id'], mode: 'upsert' } }],
  });
  const pool = await getPool();
  await migrate(pool, undefined);
  await pool.query(`DROP SCHEMA IF EXISTS ${PROJECT} CASCADE; DROP SCHEMA IF EXISTS ${PROJECT}_staging CASCADE; DROP SCHEMA IF EXISTS ${BENCH} CASCADE`);
  await pool.query('DELETE FROM etl.loads WHERE project = $1', [PROJECT]);
  await migrate(pool, PROJECT);
  await pool.query(`CREATE SCHEMA ${BENCH}`);

  const s3 = s3Client();
  const bucket = `bench-upsert-${Date.now()}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  const toClean: number[] = [];
  const stageDeps = { pool, s3, pipeline, notifyClean: async (m: { loadId: number }) => void toClean.push(m.loadId) };
  const base = Date.UTC(2026, 0, 1);
  /** Put one object with its declaration, stage it, and return the load the stage step hands on. */
  const stage = async (run: string, body: Buffer, declaration: Omit<ObjectDeclaration, 'contract' | 'run' | 'holds' | 'part'>): Promise<number> => {
    const key = `raw/${DATASET}/${run}/rows.ndjson.gz`;
    const metadata = declarationMetadata({ contract: 1, holds: 'rows', part: 1, run, ...declaration });
    const out = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/x-ndjson', Metadata: metadata }));
    const staged = await stageObject(stageDeps, { bucket, key, versionId: out.VersionId, size: body.length });
    if (staged.status !== 'staged') throw new Error(`${key} not staged: ${JSON.stringify(staged)}`);
    // moto keeps every version in memory: an object staged is not needed any more
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: out.VersionId }));
    const loadId = toClean.pop();
    if (loadId === undefined || toClean.length) throw new Error(`${key}: expected one load to clean`);
    return loadId;
  };

  console.log(`setup (not timed): stage and clean the initial ${(initial.length / 1e6).toFixed(0)} MB object (gzip NDJSON)…`);
  let t = performance.now();
  const initialLoad = await stage('full-0000', initial, { replaces: 'run', runStartedAt: new Date(base).toISOString() });
  const stagedS = (performance.now() - t) / 1000;
  t = performance.now();
  const first = await cleanLoad({ pool, pipeline }, initialLoad);
  if (first.status !== 'loaded' || first.rowsLoaded !== ROWS) throw new Error(`initial clean: ${JSON.stringify(first)}`);
  console.log(`  staged in ${stagedS.toFixed(1)} s, cleaned in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const table = `${PROJECT}.${DATASET}`;
  const columns = (
    await pool.query<{ name: string; type: string }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
        WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE '\\_%' ORDER BY attnum`,
      [table],
    )
  ).rows;
  console.log(`  clean table ${table}: ${columns.map((c) => `${c.name} ${c.type}`).join(', ')}, primary key (id)`);
  if (columns.map((c) => c.name).join() !== FIELDS.join()) throw new Error(`unexpected clean columns: ${columns.map((c) => c.name).join(', ')}`);
  const names = columns.map((c) => c.name).join(', ');
  // the saved state, and the baseline's table: the same data columns and key, no lineage
  await pool.query(`CREATE TABLE ${BENCH}.saved AS SELECT * FROM ${table}`);
  await pool.query(`CREATE TABLE ${BENCH}.${DATASET} (${columns.map((c) => `${c.name} ${c.type}`).join(', ')}, PRIMARY KEY (id))`);

  const restore = async (target: string, all: boolean) => {
    await pool.query(`TRUNCATE ${target}`);
    await pool.query(`INSERT INTO ${target} SELECT ${all ? '*' : names} FROM ${BENCH}.saved ORDER BY id`);
    // a table as a long-lived one is: every row's hint bits set and all pages all-visible (else the
    // first timed scan writes every page). This cluster commits asynchronously, and VACUUM cannot
    // set hint bits for a commit whose WAL is not flushed yet: CHECKPOINT flushes it first.
    await pool.query('CHECKPOINT');
    await pool.query(`VACUUM (FREEZE, ANALYZE) ${target}`);
    const { rows } = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) SELECT count(*) FROM ${target}`);
    const dirtied = rows
      .map((r) => r['QUERY PLAN'])
      .join('\n')
      .match(/dirtied=(\d+)/);
    if (dirtied) console.log(`  (restore of ${target}: a scan after it still dirtied ${dirtied[1]} pages)`);
  };
  const checksum = async (target: string) => (await pool.query<{ n: string; md5: string }>(`SELECT count(*) AS n, md5(string_agg(row(${names})::text, E'\\n' ORDER BY id)) AS md5 FROM ${target}`)).rows[0]!;

  let runNo = 0;
  /** Ours: restore the table, stage a change object of a newer run (not timed), time cleanLoad. */
  const ours = async (log: Statement[], explain?: Map<string, string>): Promise<{ seconds: number; stageSeconds: number }> => {
    await restore(table, true);
    runNo++;
    const st = performance.now();
    const loadId = await stage(`changes-${String(runNo).padStart(4, '0')}`, changeObject, {
      replaces: 'nothing',
      runStartedAt: new Date(base + runNo * 3_600_000).toISOString(),
    });
    const stageSeconds = (performance.now() - st) / 1000;
    await pool.query('CHECKPOINT');
    const started = performance.now();
    const outcome = await cleanLoad({ pool: timedPool(pool, log, explain), pipeline }, loadId);
    const seconds = (performance.now() - started) / 1000;
    if (outcome.status !== 'loaded' || outcome.rowsLoaded !== CHANGES || outcome.rowsQuarantined !== 0) throw new Error(`clean of the changes: ${JSON.stringify(outcome)}`);
    return { seconds, stageSeconds };
  };

  const baselineTable = `${BENCH}.${DATASET}`;
  const stagingTable = `${BENCH}.changes`;
  const cast = (c: { name: string; type: string }) => (c.type === 'text' ? `s.${c.name}` : `s.${c.name}::${c.type}`);
  const upsertSql = `INSERT INTO ${baselineTable} (${names}) SELECT ${columns.map(cast).join(', ')} FROM ${stagingTable} s
      ON CONFLICT (id) DO UPDATE SET ${columns
        .filter((c) => c.name !== 'id')
        .map((c) => `${c.name} = excluded.${c.name}`)
        .join(', ')}`;
  /** Baseline: restore the table, COPY the change rows into a text table (not timed), time the upsert. */
  const baseline = async (): Promise<{ seconds: number; copySeconds: number }> => {
    await restore(baselineTable, false);
    await pool.query(`DROP TABLE IF EXISTS ${stagingTable}; CREATE TABLE ${stagingTable} (${FIELDS.map((f) => `${f} text`).join(', ')})`);
    const client = await pool.connect();
    try {
      const cs = performance.now();
      await streamPipeline(Readable.from([changeCsv]), client.query(copyFrom(`COPY ${stagingTable} (${FIELDS.join(', ')}) FROM STDIN WITH (FORMAT csv)`)));
      const copySeconds = (performance.now() - cs) / 1000;
      await client.query('CHECKPOINT');
      const started = performance.now();
      const done = await client.query(upsertSql);
      const seconds = (performance.now() - started) / 1000;
      if (done.rowCount !== CHANGES) throw new Error(`baseline upsert touched ${done.rowCount} rows, expected ${CHANGES}`);
      await client.query(`DROP TABLE ${stagingTable}`);
      return { seconds, copySeconds };
    } finally {
      client.release();
    }
  };

  console.log(
    `\n${RUNS} runs, alternating; ours = cleanLoad of ${CHANGES.toLocaleString('en')} changes (${CHANGES - Math.floor(CHANGES / 2)} new ids) into ${ROWS.toLocaleString('en')} rows, baseline = one INSERT … ON CONFLICT (id) DO UPDATE`,
  );
  const oursSeconds: number[] = [];
  const baselineSeconds: number[] = [];
  const logs: Statement[][] = [];
  for (let i = 0; i < RUNS; i++) {
    const log: Statement[] = [];
    let o: Awaited<ReturnType<typeof ours>>;
    let b: Awaited<ReturnType<typeof baseline>>;
    if (i % 2 === 0) {
      o = await ours(log);
      b = await baseline();
    } else {
      b = await baseline();
      o = await ours(log);
    }
    const [a, c] = [await checksum(table), await checksum(baselineTable)];
    const expected = ROWS + CHANGES - Math.floor(CHANGES / 2);
    if (Number(a.n) !== expected || a.n !== c.n || a.md5 !== c.md5)
      throw new Error(`run ${i + 1}: tables differ: ours ${a.n} rows md5 ${a.md5}, baseline ${c.n} rows md5 ${c.md5} (expected ${expected} rows)`);
    oursSeconds.push(o.seconds);
    baselineSeconds.push(b.seconds);
    logs.push(log);
    const sent = log.reduce((s, x) => s + x.ms, 0) / 1000;
    console.log(
      `run ${i + 1}${i % 2 ? ' (baseline first)' : ''}: ours ${o.seconds.toFixed(2)} s (${log.length} statements, ${sent.toFixed(2)} s in them; staging before it ${o.stageSeconds.toFixed(2)} s, not timed)` +
        ` | baseline ${b.seconds.toFixed(2)} s (COPY before it ${b.copySeconds.toFixed(2)} s, not timed) | same ${a.n} rows, md5 ${a.md5}`,
    );
  }

  // where ours spends its time: statements by median over the runs
  const byLabel = new Map<string, number[]>();
  logs.forEach((log, run) => {
    for (const s of log) {
      const l = label(s.sql);
      const xs = byLabel.get(l) ?? Array(RUNS).fill(0);
      xs[run] += s.ms;
      byLabel.set(l, xs);
    }
  });
  const ranked = [...byLabel.entries()].map(([l, xs]) => ({ l, ms: median(xs), count: logs[0]!.filter((s) => label(s.sql) === l).length })).sort((a, b) => b.ms - a.ms);
  const oursMedian = median(oursSeconds);
  console.log(`\nours, by statement (median over the runs; ${ranked.length} kinds):`);
  for (const r of ranked.slice(0, 12)) console.log(`  ${(r.ms / 1000).toFixed(3).padStart(7)} s ${((100 * r.ms) / 1000 / oursMedian).toFixed(0).padStart(3)} %  ${r.count > 1 ? `${r.count}× ` : ''}${r.l}`);
  const rest = ranked.slice(12).reduce((s, r) => s + r.ms, 0);
  console.log(`  ${(rest / 1000).toFixed(3).padStart(7)} s ${((100 * rest) / 1000 / oursMedian).toFixed(0).padStart(3)} %  the other ${Math.max(0, ranked.length - 12)} kinds`);

  // one more run of ours, not timed: the plans of the cast's statements
  const plans = new Map<string, string>();
  await ours([], plans);
  const plansFile = join(DIR, 'upsert-plans.txt');
  writeFileSync(plansFile, [...plans].map(([l, plan]) => `-- ${l}\n${plan}\n`).join('\n'));
  console.log(`\nEXPLAIN ANALYZE of the cast statements (an extra run, each in a savepoint rolled back; plans in ${plansFile}): execution times`);
  for (const [l, plan] of plans) console.log(`  ${/Execution Time: ([\d.]+) ms/.exec(plan)?.[1] ?? '?'} ms  ${l}`);
  const order = plans.get(label("'superseded'"));
  if (order) console.log(`\nthe per-key order check:\n${order.replace(/^/gm, '  ')}`);

  // clean up: the tables of 1,000,000 rows, the bucket
  await pool.query(`DROP SCHEMA IF EXISTS ${BENCH} CASCADE; DROP SCHEMA IF EXISTS ${PROJECT} CASCADE; DROP SCHEMA IF EXISTS ${PROJECT}_staging CASCADE`);
  await pool.query('DELETE FROM etl.loads WHERE project = $1', [PROJECT]);
  await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
  await closePool();

  report('upsert', 's', 'lower', oursSeconds, baselineSeconds, { labels: { ours: 'ours (cleanLoad)', baseline: 'baseline (INSERT … ON CONFLICT)' } });
}
