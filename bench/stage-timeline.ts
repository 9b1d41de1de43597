/**
 * Where the local stage step's time goes, on a big CSV from S3 (moto): every S3 request (its range,
 * when it was sent, when its body began and ended) and every SQL statement of the stage step (when
 * it started and ended, on which connection), relative to the call of `stageObject`, with the CPU
 * seconds the Node process and moto spent meanwhile. A diagnostic, not a benchmark: nothing is
 * compared; `npm run bench -- stage` is the benchmark.
 *
 *   CIVIC_ETL_PARALLEL_CONNECTIONS=2 node --import tsx bench/stage-timeline.ts [file.csv]
 *
 * The file (default: the stage benchmark's .local/bench/stage-2m.csv) is uploaded to a fresh bucket
 * once per run (not timed); the load's staging table and ledger row are dropped at the end.
 */
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutBucketVersioningCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pg from 'pg';
import { parsePipeline } from '../contract/load.ts';
import { s3Client } from '../functions/common/aws.ts';
import { dbEnv, parallelEnv, parseEnv } from '../functions/common/config.ts';
import { closePool, getPool } from '../functions/common/db.ts';
import { migrate } from '../functions/migrate/migrate.ts';
import { stageObject } from '../functions/stage/stage-object.ts';

const file = process.argv[2] ?? join(import.meta.dirname, '../.local/bench/stage-2m.csv');
const size = statSync(file).size;
const t0 = { at: 0 };
const now = () => (performance.now() - t0.at) / 1000;
const events: { start: number; end?: number; what: string; firstByte?: number }[] = [];

/** CPU seconds (user + system) of a process, from /proc/<pid>/stat. */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
/** The moto server's pid (the local services' S3), or undefined. */
function motoPid(): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('moto_server')) return Number(d);
    } catch {
      // gone
    }
  }
  return undefined;
}
/** Busy and total CPU seconds of the whole machine, from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0) / 100;
  return { busy: total - (f[3]! + f[4]!) / 100, total };
}

function watched(s3: S3Client): S3Client {
  const send = s3.send.bind(s3) as (command: unknown) => Promise<unknown>;
  return new Proxy(s3, {
    get(target, prop, receiver) {
      if (prop !== 'send') return Reflect.get(target, prop, receiver);
      return async (command: unknown) => {
        const input = (command as { input: { Range?: string } }).input;
        const name = command instanceof GetObjectCommand ? `GET ${input.Range ?? 'whole object'}` : command instanceof HeadObjectCommand ? 'HEAD' : (command as object).constructor.name;
        const e: (typeof events)[number] = { start: now(), what: `S3 ${name}` };
        events.push(e);
        const out = (await send(command)) as { Body?: AsyncIterable<Uint8Array> };
        e.firstByte = now();
        if (!out.Body) {
          e.end = now();
          return out;
        }
        const body = out.Body;
        let bytes = 0;
        const wrapped = {
          async *[Symbol.asyncIterator]() {
            try {
              for await (const c of body) {
                bytes += c.byteLength;
                yield c;
              }
            } finally {
              e.end = now();
              e.what += ` (${(bytes / 1e6).toFixed(1)} MB read)`;
            }
          },
          destroy: () => (body as { destroy?: () => void }).destroy?.(),
        };
        return { ...out, Body: wrapped };
      };
    },
  });
}

// every statement of every connection, with its connection's number
const clients = new WeakMap<object, number>();
let connectionCount = 0;
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
pg.Client.prototype.query = function (this: object, ...args: unknown[]) {
  if (!clients.has(this)) clients.set(this, ++connectionCount);
  const first = args[0] as string | { text?: string; on?: (ev: string, f: () => void) => void };
  const text = (typeof first === 'string' ? first : (first.text ?? '')).replace(/\s+/g, ' ').slice(0, 90);
  const e: (typeof events)[number] = { start: now(), what: `pg#${clients.get(this) ?? '?'} ${text}` };
  if (t0.at > 0 && !/^(BEGIN|COMMIT|SELECT 1$)/.test(text)) events.push(e);
  const result = query.apply(this, args);
  if (result && typeof (result as Promise<unknown>).then === 'function')
    void (result as Promise<unknown>).then(
      () => (e.end = now()),
      () => (e.end = now()),
    );
  else if (typeof first === 'object' && typeof first.on === 'function') {
    first.on('finish', () => (e.end = now()));
    first.on('error', () => (e.end = now()));
  }
  return result;
} as typeof pg.Client.prototype.query;

const s3 = s3Client();
const bucket = `timeline-${Date.now()}`;
await s3.send(new CreateBucketCommand({ Bucket: bucket }));
await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
const key = 'incoming/bench/rows/timeline.csv';
const up = await new Upload({ client: s3, params: { Bucket: bucket, Key: key, Body: createReadStream(file) }, partSize: 16 * 1024 * 1024 }).done();
const pipeline = parsePipeline({ project: 'bench_timeline', suppliers: [{ name: 'bench' }], datasets: [{ name: 'rows', source: { type: 'upload', supplier: 'bench' } }] });
const pool = await getPool();
await migrate(pool, pipeline.project);
const parallel = parseEnv(parallelEnv, process.env, 'the local stage step');
const connections = Math.min(parallel.connections ?? 1, Math.max(1, parseEnv(dbEnv, process.env, 'the local stage step').poolSize - 1));

const moto = motoPid();
// what moto costs, beside reading the file: a whole GET, a 4 KB range GET (moto copies the whole object for any GET)
async function timedGet(range?: string): Promise<string> {
  const c0 = moto ? cpuOf(moto) : NaN;
  const started = performance.now();
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: up.VersionId, ...(range ? { Range: range } : {}) }));
  let n = 0;
  for await (const c of out.Body as AsyncIterable<Uint8Array>) n += c.byteLength;
  const seconds = (performance.now() - started) / 1000;
  return `${(n / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s (${(n / 1e6 / seconds).toFixed(0)} MB/s), moto CPU ${moto ? (cpuOf(moto) - c0).toFixed(2) : '?'} s`;
}
const readStarted = performance.now();
for await (const _ of createReadStream(file, { highWaterMark: 256 * 1024 })) void _;
console.log(`reading the file: ${(size / 1e6).toFixed(1)} MB in ${((performance.now() - readStarted) / 1000).toFixed(2)} s`);
console.log(`moto, GET of the whole object: ${await timedGet()}`);
console.log(`moto, GET of its first 4 KB: ${await timedGet('bytes=0-4095')}`);
const before = { node: process.cpuUsage(), moto: moto ? cpuOf(moto) : NaN, machine: machineCpu() };
t0.at = performance.now();
const outcome = await stageObject(
  { pool, s3: watched(s3), pipeline, notifyClean: async () => undefined, ...(connections > 1 ? { partBytes: parallel.bytes, partsInProcess: { connections } } : {}) },
  { bucket, key, versionId: up.VersionId, size },
);
const total = now();
const node = process.cpuUsage(before.node);
const machine = machineCpu();
const loadId = (outcome as { loadId: number }).loadId;
const [ledger] = (await pool.query<{ stage_ms: number; staging_table: string }>(`SELECT stage_ms, staging_table FROM etl.loads WHERE id = $1`, [loadId])).rows;

console.log(`${JSON.stringify(outcome)}; ${connections} connection(s); ledger stage_ms ${Math.round(ledger?.stage_ms ?? NaN)}`);
for (const e of events.sort((a, b) => a.start - b.start)) {
  const first = e.firstByte === undefined ? '' : ` (headers at ${e.firstByte.toFixed(2)})`;
  console.log(`${e.start.toFixed(2).padStart(6)} → ${e.end === undefined ? '   ?  ' : e.end.toFixed(2).padStart(6)}  ${e.what}${first}`);
}
console.log(
  `total ${total.toFixed(2)} s; CPU: node ${((node.user + node.system) / 1e6).toFixed(2)} s, moto ${moto ? (cpuOf(moto) - before.moto).toFixed(2) : '?'} s, ` +
    `machine ${(machine.busy - before.machine.busy).toFixed(2)} of ${(machine.total - before.machine.total).toFixed(2)} CPU-s busy`,
);
if (ledger?.staging_table) await pool.query(`DROP TABLE IF EXISTS ${ledger.staging_table} CASCADE`);
await pool.query(`DELETE FROM etl.load_parts WHERE load_id = $1`, [loadId]).catch(() => undefined);
await pool.query(`DELETE FROM etl.catalog WHERE load_id = $1`, [loadId]).catch(() => undefined);
await pool.query(`DELETE FROM etl.loads WHERE id = $1`, [loadId]);
await closePool();
