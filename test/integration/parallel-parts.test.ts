/**
 * The local stage step stages a CSV above the threshold over parallel connections, by byte ranges
 * (the parts machinery, in process): the same rows as one COPY, nothing visible until every part
 * is attached, and a part that fails fails the load with no table left.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'node:http';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { receiveObject } from '../../functions/common/ledger.ts';
import { loadFile } from '../../local/load-file.ts';
import { stageFileInParts } from '../../local/load-file-parts.ts';
import { partHooks, planParts, type PartMessage } from '../../functions/stage/parts.ts';
import { stageObject, stageObjectPart, type CleanMessage, type StageDeps } from '../../functions/stage/stage-object.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

let deps: StageDeps;
let bucket: string;
let cleaned: CleanMessage[];

beforeAll(async () => {
  const columns = [{ name: 'id', type: 'integer' as const }, { name: 'note' }, { name: 'amount', type: 'numeric' as const }];
  const { pipeline, pool } = await freshProject({
    project: 'it_parallel',
    suppliers: [{ name: 'city' }],
    datasets: ['whole', 'split'].map((name) => ({ name, source: { type: 'upload' as const, supplier: 'city' }, clean: { columns } })),
  });
  bucket = await freshBucket('it-parallel');
  deps = { pool, s3: s3Client(), pipeline, notifyClean: async (m) => void cleaned.push(m) };
});

/** A seeded generator, so that a failure can be run again. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
}

/** CRLF records whose notes hold quoted line breaks (LF and CRLF), quotes, delimiters, and blank lines between records. */
function tricky(records: number, seed = 1): string {
  const r = rng(seed);
  const lines = ['id,note,amount'];
  for (let i = 1; i <= records; i++) {
    const x = r();
    const note = x < 0.3 ? `"line one\nline two, with ""quotes""\r\n\r\nand a blank line above ${i}"` : x < 0.45 ? `"a, b ${i}"` : `plain ${i}`;
    lines.push(`${i},${note},${(i * 1.25).toFixed(2)}`);
    if (r() < 0.05) lines.push('');
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** What Python's csv module reads in the file: records, the sum of ids, and an md5 of the notes in id order. */
function pythonFacts(text: string): { n: number; ids: number; notes: string } {
  const dir = mkdtempSync(join(tmpdir(), 'civic-parallel-'));
  const path = join(dir, 'data.csv');
  writeFileSync(path, text);
  const script = `
import csv, hashlib, json, sys
with open(sys.argv[1], newline='', encoding='utf-8') as f:
    rows = [r for r in csv.reader(f) if r][1:]
rows.sort(key=lambda r: int(r[0]))
print(json.dumps({"n": len(rows), "ids": sum(int(r[0]) for r in rows), "notes": hashlib.md5("|".join(r[1] for r in rows).encode()).hexdigest()}))
`;
  return JSON.parse(execFileSync('python3', ['-c', script, path], { encoding: 'utf8' })) as { n: number; ids: number; notes: string };
}

/** `text` with record `id` replaced by one with a field too many: where it starts (byte) and its line. */
function withBadRecord(text: string, id: number): { text: string; at: number; line: number } {
  const i = text.indexOf(`\r\n${id},`);
  const j = text.indexOf(`\r\n${id + 1},`);
  const bad = `${text.slice(0, i)}\r\n${id},bad,record,one field too many${text.slice(j)}`;
  return { text: bad, at: Buffer.byteLength(text.slice(0, i + 2)), line: text.slice(0, i + 2).split('\n').length };
}

function fileOf(name: string, body: string | Buffer): string {
  const path = join(mkdtempSync(join(tmpdir(), 'civic-parallel-load-')), name);
  writeFileSync(path, body);
  return path;
}

async function facts(table: string) {
  const [f] = await rows<{ n: number; ids: number; notes: string }>(deps.pool, `SELECT count(*)::int AS n, sum(id::int)::int AS ids, md5(string_agg(note, '|' ORDER BY id::int)) AS notes FROM ${table}`);
  return f!;
}

async function stagingTable(loadId: number): Promise<string> {
  return (await rows<{ staging_table: string }>(deps.pool, 'SELECT staging_table FROM etl.loads WHERE id = $1', [loadId]))[0]!.staging_table;
}

/** Rows of one table not in the other, both ways, lineage line included. */
async function difference(a: string, b: string): Promise<number> {
  const cols = 'id, note, amount, _source_line';
  const [d] = await rows<{ n: number }>(
    deps.pool,
    `SELECT ((SELECT count(*) FROM (SELECT ${cols} FROM ${a} EXCEPT ALL SELECT ${cols} FROM ${b}) x) + (SELECT count(*) FROM (SELECT ${cols} FROM ${b} EXCEPT ALL SELECT ${cols} FROM ${a}) y))::int AS n`,
  );
  return d!.n;
}

describe('a CSV above the threshold, staged locally over parallel connections', () => {
  it('gives exactly the rows of one COPY and of Python csv, quoted line breaks and CRLF across the cuts, handed to clean once', async () => {
    const text = tricky(3000);
    const expected = pythonFacts(text);
    cleaned = [];
    const whole = await stageObject(deps, await put(bucket, 'incoming/city/whole/data.csv', text));
    expect(whole).toMatchObject({ status: 'staged', rows: expected.n });
    const wholeTable = await stagingTable((whole as { loadId: number }).loadId);

    cleaned = [];
    const split = await stageObject({ ...deps, partBytes: 10_000, partsInProcess: { connections: 2 } }, await put(bucket, 'incoming/city/split/data.csv', text));
    expect(split).toMatchObject({ status: 'staged', rows: expected.n, parts: 2 });
    const loadId = (split as { loadId: number }).loadId;
    const table = await stagingTable(loadId);
    const parts = await rows<{ part: number; status: string }>(deps.pool, 'SELECT part, status FROM etl.load_parts WHERE load_id = $1 ORDER BY part', [loadId]);

    expect(parts).toEqual([
      { part: 0, status: 'staged' },
      { part: 1, status: 'staged' },
    ]);
    expect(await facts(table)).toEqual(expected);
    expect(await facts(wholeTable)).toEqual(expected);
    expect(await difference(table, wholeTable)).toBe(0);
    expect(cleaned).toEqual([{ loadId }]);
  });

  it('plans one part a connection, reading the object only up to the last cut', async () => {
    const text = Buffer.from(tricky(3000));
    const start = text.indexOf('\n') + 1;
    let read = 0;
    const chunks = (async function* () {
      for (let at = 0; at < text.length; at += 1000) {
        read = Math.min(text.length, at + 1000);
        yield text.subarray(at, at + 1000);
      }
    })();
    const parts = await planParts(chunks, { start, firstLine: 2, size: Math.ceil(text.length / 2), quote: '"', total: text.length, maxParts: 2 });

    expect(parts.map((p) => [p.start, p.end])).toEqual([
      [start, parts[0]!.end],
      [parts[0]!.end, text.length],
    ]);
    expect(parts[0]!.end).toBeGreaterThanOrEqual(Math.ceil(text.length / 2));
    expect(read).toBeLessThan(text.length * 0.6);
  });

  it('gives the same table whatever the cut size and the number of connections (seeded random cuts)', async () => {
    const r = rng(19);
    for (let round = 0; round < 5; round++) {
      const text = tricky(400, round + 7);
      const expected = pythonFacts(text);
      const whole = await stageObject(deps, await put(bucket, `incoming/city/whole/random-${round}.csv`, text));
      const partSize = 1 + Math.floor(r() * 4000);
      const connections = 1 + Math.floor(r() * 4);
      const split = await stageObject({ ...deps, partBytes: 100, partsInProcess: { connections, partSize } }, await put(bucket, `incoming/city/split/random-${round}.csv`, text));
      const seen = `cut every ${partSize} bytes over ${connections} connection(s)`;

      expect(split, seen).toMatchObject({ status: 'staged', rows: expected.n });
      const table = await stagingTable((split as { loadId: number }).loadId);
      expect(await facts(table), seen).toEqual(expected);
      expect(await difference(table, await stagingTable((whole as { loadId: number }).loadId)), seen).toBe(0);
    }
  });

  it('fails the whole load when part 3 holds a bad record, naming its line, and leaves no table of it', async () => {
    const { text, at, line: badLine } = withBadRecord(tricky(2000), 46);
    cleaned = [];
    const outcome = await stageObject({ ...deps, partBytes: 100, partsInProcess: { connections: 2, partSize: Math.ceil(at / 2.5) } }, await put(bucket, 'incoming/city/split/bad.csv', text));
    const loadId = (outcome as { loadId: number }).loadId;
    const load = (await rows<{ status: string; error: string }>(deps.pool, 'SELECT status, error FROM etl.loads WHERE id = $1', [loadId]))[0]!;
    const bad = await rows<{ part: number; first_line: number }>(deps.pool, 'SELECT part, first_line::int FROM etl.load_parts WHERE load_id = $1 AND first_line <= $2 ORDER BY part DESC LIMIT 1', [
      loadId,
      badLine,
    ]);
    const left = await rows(deps.pool, `SELECT tablename FROM pg_tables WHERE schemaname = 'it_parallel_staging' AND tablename LIKE $1`, [`split__${loadId}%`]);

    expect(bad[0]!.part).toBe(2);
    expect(outcome).toMatchObject({ status: 'failed', loadId });
    expect(load.status).toBe('failed');
    expect(load.error).toMatch(new RegExp(`bad\\.csv.*line ${badLine}`));
    expect(left).toEqual([]);
    expect(cleaned).toEqual([]);
  });

  it('closes the reads it opened ahead when the ledger fails after the plan, then stages it on the retry: no connection left open', async () => {
    // moto's S3 through an agent of its own, whose sockets in use are counted
    const agent = new Agent({ keepAlive: true });
    const s3 = new S3Client({ forcePathStyle: true, requestHandler: { httpAgent: agent } });
    const inUse = () => Object.values(agent.sockets).reduce((n, list) => n + (list?.length ?? 0), 0);
    // the ledger fails once, on the query for the parts to stage that follows the plan
    let failed = false;
    const pool = new Proxy(deps.pool, {
      get(target, prop, receiver) {
        if (prop !== 'query') return Reflect.get(target, prop, receiver);
        return (...args: unknown[]) => {
          if (!failed && typeof args[0] === 'string' && args[0].includes("status <> 'staged'")) {
            failed = true;
            return Promise.reject(Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' }));
          }
          return (target.query as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    cleaned = [];
    try {
      // large enough that moto cannot hand over a whole response before it is read
      const text = `id,note,amount\n${Array.from({ length: 200_000 }, (_, i) => `${i},a note of some length ${i},${i}.25`).join('\n')}\n`;
      const ref = await put(bucket, 'incoming/city/split/ledger-fails.csv', text);
      await expect(stageObject({ ...deps, pool, s3, partBytes: 100, partsInProcess: { connections: 2 } }, ref)).rejects.toThrow(/Connection terminated/);
      expect(failed).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(inUse(), 'S3 responses left open after the failure').toBe(0);
      // SQS brings the message back: staged, every row, and no response left open either
      expect(await stageObject({ ...deps, pool, s3, partBytes: 100, partsInProcess: { connections: 2 } }, ref)).toMatchObject({ status: 'staged', rows: 200_000 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(inUse(), 'S3 responses left open after the retry').toBe(0);
    } finally {
      s3.destroy();
      agent.destroy();
    }
  });
});

describe('a crash after every part is staged, before they are attached', () => {
  /** Throws as a crash would at that point (parts.ts calls the hook there), the first `times` times. */
  function crashBeforeAttach(times = 1): { crashes: () => number } {
    let n = 0;
    partHooks.beforeAttach = () => {
      if (n < times) {
        n++;
        throw new Error('simulated crash: the process died after the last part committed');
      }
    };
    return { crashes: () => n };
  }
  afterEach(() => {
    delete partHooks.beforeAttach;
  });

  it('is completed by the redelivered object message (local runner, parts in process), with the rows Python csv reads', async () => {
    const r = rng(23);
    for (let round = 0; round < 3; round++) {
      const text = tricky(300 + Math.floor(r() * 500), round + 31);
      const expected = pythonFacts(text);
      const ref = await put(bucket, `incoming/city/split/crash-${round}.csv`, text);
      const local = { ...deps, partBytes: 100, partsInProcess: { connections: 1 + Math.floor(r() * 3), partSize: 500 + Math.floor(r() * 3000) } };
      cleaned = [];
      // the whole process dies: every part that would attach them crashes (two may get there, one after the other)
      const crash = crashBeforeAttach(Infinity);

      await expect(stageObject(local, ref)).rejects.toThrow(/simulated crash/);
      delete partHooks.beforeAttach;
      const [loadId] = (await rows<{ id: number }>(deps.pool, `SELECT id::int FROM etl.loads WHERE object_key = $1`, [ref.key])).map((l) => l.id);
      expect(crash.crashes()).toBeGreaterThanOrEqual(1);
      expect(await rows(deps.pool, `SELECT count(*)::int AS n FROM etl.load_parts WHERE load_id = $1 AND status <> 'staged'`, [loadId])).toEqual([{ n: 0 }]);
      expect(await rows(deps.pool, 'SELECT status FROM etl.loads WHERE id = $1', [loadId])).toEqual([{ status: 'received' }]);

      // SQS brings the object's message back: the load completes, and goes to clean once
      const again = await stageObject(local, ref);
      expect(again).toMatchObject({ status: 'staged', loadId, rows: expected.n });
      expect(await rows(deps.pool, 'SELECT status, rows_read::int AS rows FROM etl.loads WHERE id = $1', [loadId])).toEqual([{ status: 'staged', rows: expected.n }]);
      expect(await facts(await stagingTable(loadId!))).toEqual(expected);
      expect(cleaned).toEqual([{ loadId }]);
    }
  });

  it('is completed by the redelivered part message (part messages on SQS), or by the object message, with the rows Python csv reads', async () => {
    for (const redelivered of ['part', 'object'] as const) {
      const text = tricky(700, redelivered === 'part' ? 41 : 43);
      const expected = pythonFacts(text);
      const ref = await put(bucket, `incoming/city/split/crash-${redelivered}.csv`, text);
      const sent: PartMessage[] = [];
      const onSqs = { ...deps, partBytes: 4000, enqueueParts: async (m: PartMessage[]) => void sent.push(...m) };
      cleaned = [];
      const split = await stageObject(onSqs, ref);
      expect(split).toMatchObject({ status: 'split' });
      const loadId = (split as { loadId: number }).loadId;
      expect(sent.length).toBeGreaterThan(2);
      crashBeforeAttach();

      const last = sent.at(-1)!;
      for (const m of sent.slice(0, -1)) expect(await stageObjectPart(onSqs, m)).toMatchObject({ status: 'staged', complete: false });
      await expect(stageObjectPart(onSqs, last)).rejects.toThrow(/simulated crash/);
      expect(await rows(deps.pool, 'SELECT status FROM etl.loads WHERE id = $1', [loadId])).toEqual([{ status: 'received' }]);
      expect(cleaned).toEqual([]);

      if (redelivered === 'part') expect(await stageObjectPart(onSqs, last)).toMatchObject({ loadId, complete: true });
      else expect(await stageObject(onSqs, ref)).toMatchObject({ status: 'staged', loadId, rows: expected.n });
      expect(await rows(deps.pool, 'SELECT status, rows_read::int AS rows FROM etl.loads WHERE id = $1', [loadId])).toEqual([{ status: 'staged', rows: expected.n }]);
      expect(await facts(await stagingTable(loadId))).toEqual(expected);
      expect(cleaned).toEqual([{ loadId }]);
      // a further repeat stages nothing again (while the load waits for clean it hands it over
      // again, a repeat the clean step takes as one: clean-load.ts)
      expect(await stageObjectPart(onSqs, sent[0]!)).toMatchObject({ status: 'duplicate' });
      expect(await facts(await stagingTable(loadId))).toEqual(expected);
      expect(new Set(cleaned.map((c) => c.loadId))).toEqual(new Set([loadId]));
    }
  });
});

describe('a load staged in parts whose hand-over to clean is lost', () => {
  it('is handed over by the repeat of the last part message (the send to the clean queue failed after the attach)', async () => {
    const text = tricky(600, 47);
    const expected = pythonFacts(text);
    const ref = await put(bucket, 'incoming/city/split/handover.csv', text);
    const sent: PartMessage[] = [];
    cleaned = [];
    let sends = 0;
    const onSqs: StageDeps = {
      ...deps,
      partBytes: 4000,
      enqueueParts: async (m: PartMessage[]) => void sent.push(...m),
      notifyClean: async (m) => {
        if (sends++ === 0) throw Object.assign(new Error('connect ECONNREFUSED (the clean queue)'), { code: 'ECONNREFUSED' });
        cleaned.push(m);
      },
    };
    const split = await stageObject(onSqs, ref);
    const loadId = (split as { loadId: number }).loadId;
    for (const m of sent.slice(0, -1)) await stageObjectPart(onSqs, m);
    await expect(stageObjectPart(onSqs, sent.at(-1)!)).rejects.toThrow(/ECONNREFUSED/);
    expect(await rows(deps.pool, 'SELECT status FROM etl.loads WHERE id = $1', [loadId])).toEqual([{ status: 'staged' }]);
    expect(cleaned).toEqual([]);

    // SQS brings the failed message back
    await stageObjectPart(onSqs, sent.at(-1)!);
    expect(cleaned).toEqual([{ loadId }]);
    expect(await facts(await stagingTable(loadId))).toEqual(expected);
  });
});

describe('civic-etl load of a CSV above the threshold, staged over parallel connections', () => {
  it('loads exactly the rows of one COPY and of Python csv, quoted line breaks and CRLF across the cuts', async () => {
    const text = tricky(3000, 3);
    const expected = pythonFacts(text);
    const path = fileOf('big.csv', text);
    await deps.pool.query('DROP SCHEMA IF EXISTS it_parallel_load CASCADE');
    const one = await loadFile(deps.pool, path, { table: 'it_parallel_load.one', parallel: { connections: 1 } });
    const many = await loadFile(deps.pool, path, { table: 'it_parallel_load.many', parallel: { bytes: 10_000, connections: 3 } });
    const parts = await rows<{ n: number }>(
      deps.pool,
      `SELECT count(*)::int AS n FROM etl.load_parts p JOIN etl.loads l ON l.id = p.load_id WHERE l.id = (SELECT max(id) FROM etl.loads WHERE project = 'it_parallel_load' AND dataset = 'many')`,
    );
    const left = await rows(deps.pool, `SELECT tablename FROM pg_tables WHERE schemaname = 'it_parallel_load' AND tablename LIKE '\\_civic\\_etl%'`);

    expect(parts).toEqual([{ n: 3 }]);
    expect(many).toMatchObject({ rowsRead: expected.n, rowsLoaded: expected.n, rowsRejected: 0 });
    expect(many.columns).toEqual(one.columns);
    const [f] = await rows(deps.pool, `SELECT count(*)::int AS n, sum(id)::int AS ids, md5(string_agg(note, '|' ORDER BY id)) AS notes FROM it_parallel_load.many`);
    expect(f).toEqual(expected);
    const [d] = await rows(
      deps.pool,
      `SELECT (SELECT count(*) FROM (TABLE it_parallel_load.many EXCEPT ALL TABLE it_parallel_load.one) a)::int + (SELECT count(*) FROM (TABLE it_parallel_load.one EXCEPT ALL TABLE it_parallel_load.many) b)::int AS n`,
    );
    expect(d).toEqual({ n: 0 });
    expect(left).toEqual([]);
  });

  it('fails the whole load when part 3 holds a bad record, naming its line, and leaves no table', async () => {
    const { text, line: badLine } = withBadRecord(tricky(2000, 4), 1200);
    const path = fileOf('bad.csv', text);
    await deps.pool.query('DROP SCHEMA IF EXISTS it_parallel_bad CASCADE');

    const error = await loadFile(deps.pool, path, { table: 'it_parallel_bad.rows', parallel: { bytes: 10_000, connections: 4 } }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    const load = await rows<{ status: string; part: number }>(
      deps.pool,
      `SELECT l.status, (SELECT max(part) FROM etl.load_parts p WHERE p.load_id = l.id AND p.first_line <= $1)::int AS part FROM etl.loads l WHERE l.id = (SELECT max(id) FROM etl.loads WHERE project = 'it_parallel_bad')`,
      [badLine],
    );
    const left = await rows(deps.pool, `SELECT tablename FROM pg_tables WHERE schemaname = 'it_parallel_bad'`);

    expect(error?.message).toMatch(new RegExp(`bad\\.csv.*line ${badLine}`));
    expect(load).toEqual([{ status: 'failed', part: 2 }]); // the third part (0-based index 2)
    expect(left).toEqual([]);
  });

  it('drops every table of the load when a part cannot be read (not the input), and says why', async () => {
    const text = tricky(2000, 5);
    const path = fileOf('unreadable.csv', text);
    const size = Buffer.byteLength(text);
    await deps.pool.query('DROP SCHEMA IF EXISTS it_parallel_io CASCADE');
    const ref = { bucket: 'local-file', key: path, versionId: `test-${Date.now()}`, size };
    const { load } = await receiveObject(deps.pool, 'it_parallel_io', 'rows', ref);
    let ranges = 0;
    const open = async (_ref: unknown, first?: number, last?: number) => {
      // the second part's read fails, as a disk would
      if (first !== undefined && ++ranges === 2) throw Object.assign(new Error(`EIO: i/o error, read ${path}`), { code: 'EIO' });
      return createReadStream(path, { start: first, end: last });
    };
    const staging = `"it_parallel_io"."_civic_etl_load_${load.id}"`;

    const outcome = stageFileInParts(deps.pool, { file: path, path, ref, loadId: load.id, schema: 'it_parallel_io', table: staging, maxColumns: 100, bytes: 1000, connections: 3, open });
    await expect(outcome).rejects.toThrow(/EIO: i\/o error/);
    const left = await rows(deps.pool, `SELECT tablename FROM pg_tables WHERE schemaname = 'it_parallel_io'`);
    expect(left).toEqual([]);
  });
});

/**
 * The local stage step's part tables are UNLOGGED (no WAL: faster), and PostgreSQL's crash recovery
 * empties every unlogged table. These tests empty a part table with TRUNCATE, as crash recovery
 * would (the shared test server cannot be crashed), and check that no row is lost silently.
 */
describe('unlogged part tables and crash recovery', () => {
  const inParts = () => ({ ...deps, partBytes: 10_000, partsInProcess: { connections: 2 } });
  const partTables = async (loadId: number) =>
    rows<{ name: string; persistence: string }>(
      deps.pool,
      `SELECT c.relname AS name, c.relpersistence::text AS persistence FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'it_parallel_staging' AND c.relname LIKE $1 ORDER BY 1`,
      [`split__${loadId}__p%`],
    );

  it('fails at clean, naming the cause and the command to stage it again, a load whose part table was emptied after it was staged; the dataset keeps its rows', async () => {
    const first = tricky(3000, 8);
    const expected = pythonFacts(first);
    const staged = await stageObject(inParts(), await put(bucket, 'incoming/city/split/crash.csv', first));
    expect(await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, (staged as { loadId: number }).loadId)).toMatchObject({ status: 'loaded', rowsLoaded: expected.n });
    const next = await stageObject(inParts(), await put(bucket, 'incoming/city/split/crash.csv', tricky(2000, 9)));
    const loadId = (next as { loadId: number }).loadId;
    const tables = await partTables(loadId);
    expect(tables.map((t) => t.persistence)).toEqual(['u', 'u']);

    await deps.pool.query(`TRUNCATE it_parallel_staging.${tables[1]!.name}`); // what crash recovery does to an unlogged table
    const outcome = await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, loadId);
    const [load] = await rows<{ status: string; error: string; version: string }>(deps.pool, 'SELECT status, error, object_version AS version FROM etl.loads WHERE id = $1', [loadId]);

    expect(outcome).toMatchObject({ status: 'failed', loadId });
    expect(load!.status).toBe('failed');
    expect(load!.error).toContain("emptied by PostgreSQL's crash recovery");
    expect(load!.error).toContain(`civic-etl replay split --version ${load!.version}`);
    expect(await facts('it_parallel.split')).toEqual(expected);
  });

  it('stages again a part emptied before the load completed, on the next delivery: every row of Python csv, once, and the ledger says staged', async () => {
    const text = tricky(3000, 10);
    const expected = pythonFacts(text);
    const ref = await put(bucket, 'incoming/city/split/redelivered.csv', text);
    // the first part's read (the second read of the whole object) breaks off, as a network would
    let wholeReads = 0;
    const s3 = s3Client();
    const broken = new Proxy(s3, {
      get(target, prop, receiver) {
        if (prop !== 'send') return Reflect.get(target, prop, receiver);
        return async (command: unknown) => {
          const out = (await s3.send(command as GetObjectCommand)) as { Body?: AsyncIterable<Uint8Array> };
          if (!(command instanceof GetObjectCommand) || command.input.Range !== undefined || ++wholeReads !== 2) return out;
          await (out.Body as unknown as { destroy(): void }).destroy();
          return {
            ...out,
            Body: (async function* () {
              yield* [];
              throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
            })(),
          };
        };
      },
    });
    cleaned = [];

    await expect(stageObject({ ...inParts(), s3: broken }, ref)).rejects.toThrow(/ECONNRESET/);
    const [load] = await rows<{ id: number }>(deps.pool, `SELECT id::int FROM etl.loads WHERE object_key = $1`, [ref.key]);
    const afterFailure = await rows(deps.pool, 'SELECT part, status FROM etl.load_parts WHERE load_id = $1 ORDER BY part', [load!.id]);
    const tables = await partTables(load!.id);
    await deps.pool.query(`TRUNCATE it_parallel_staging.${tables.find((t) => t.name.endsWith('__p1'))!.name}`); // crash recovery, as above
    await expect(stageObject(inParts(), ref)).rejects.toThrow(/part 1 was emptied by PostgreSQL's crash recovery/);
    const afterEmptied = await rows(deps.pool, 'SELECT part, status FROM etl.load_parts WHERE load_id = $1 ORDER BY part', [load!.id]);
    const last = await stageObject(inParts(), ref);
    const [ledger] = await rows(deps.pool, 'SELECT status, rows_read::int AS rows FROM etl.loads WHERE id = $1', [load!.id]);

    expect(afterFailure).toEqual([
      { part: 0, status: 'planned' },
      { part: 1, status: 'staged' },
    ]);
    expect(afterEmptied).toEqual([
      { part: 0, status: 'staged' },
      { part: 1, status: 'planned' },
    ]);
    expect(last).toMatchObject({ status: 'staged', rows: expected.n });
    expect(ledger).toEqual({ status: 'staged', rows: expected.n });
    expect(await facts(await stagingTable(load!.id))).toEqual(expected);
    expect(cleaned).toEqual([{ loadId: load!.id }]);
  });

  it("says once among the load's warnings the line a part skipped, when that part is staged again after its table was emptied", async () => {
    // a second export appended to the first: its header repeated on one line of the second half
    const lines = ['id,note,amount'];
    for (let i = 1; i <= 3000; i++) {
      lines.push(`${i},plain ${i},${i}.5`);
      if (i === 2500) lines.push('id,note,amount');
    }
    const headerLine = lines.indexOf('id,note,amount', 1) + 1;
    const ref = await put(bucket, 'incoming/city/split/appended-emptied.csv', `${lines.join('\n')}\n`);
    const said = async (loadId: number) =>
      (await rows<{ warnings: string[] | null }>(deps.pool, `SELECT detected->'warnings' AS warnings FROM etl.loads WHERE id = $1`, [loadId]))[0]!.warnings?.filter((w) =>
        w.includes('repeating the header skipped'),
      );
    cleaned = [];
    // the process dies once every part is staged, before they are attached; then crash recovery empties the part that skipped the line
    partHooks.beforeAttach = () => {
      throw new Error('simulated crash: the process died after the last part committed');
    };
    try {
      await expect(stageObject(inParts(), ref)).rejects.toThrow(/simulated crash/);
    } finally {
      delete partHooks.beforeAttach;
    }
    const [load] = await rows<{ id: number }>(deps.pool, `SELECT id::int FROM etl.loads WHERE object_key = $1`, [ref.key]);
    const saidBefore = await said(load!.id);
    const [holder] = await rows<{ part: number }>(deps.pool, `SELECT part FROM etl.load_parts WHERE load_id = $1 AND first_line <= $2 ORDER BY part DESC LIMIT 1`, [load!.id, headerLine]);
    const table = (await partTables(load!.id)).find((t) => t.name.endsWith(`__p${holder!.part}`))!.name;
    await deps.pool.query(`TRUNCATE it_parallel_staging.${table}`);
    // the next delivery finds it emptied (and says so), the one after stages it again and completes the load
    await expect(stageObject(inParts(), ref)).rejects.toThrow(/emptied by PostgreSQL's crash recovery/);
    const last = await stageObject(inParts(), ref);

    expect(holder!.part).toBeGreaterThan(0);
    expect(saidBefore).toEqual([`${ref.key}: 1 line repeating the header skipped (first on line ${headerLine})`]);
    expect(last).toMatchObject({ status: 'staged', rows: 3000 });
    expect(await said(load!.id)).toEqual(saidBefore);
    expect(cleaned).toEqual([{ loadId: load!.id }]);
  });
});
