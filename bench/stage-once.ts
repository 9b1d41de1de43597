/**
 * Child process of `bench/stage.ts`: stage one S3 object with the real stage step as it runs
 * locally (ledger, detection, lineage, COPY, then the catalog profile; a CSV above
 * CIVIC_ETL_PARALLEL_BYTES in parts over CIVIC_ETL_PARALLEL_CONNECTIONS connections at once) and print one JSON line of timings and of
 * memory by phase. Run alone so that its peak RSS is the stage step's own. `bench/stage.ts` runs
 * it bundled with esbuild as the Lambda is (`.local/bench/stage-once/index.mjs`), and with tsx.
 *
 *   node --import tsx bench/stage-once.ts <bucket> <key> <versionId> <size>
 *   node .local/bench/stage-once/index.mjs <bucket> <key> <versionId> <size>
 */
import { writeFileSync } from 'node:fs';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parsePipeline } from '../contract/load.ts';
import { s3Client } from '../functions/common/aws.ts';
import { dbEnv, parallelEnv, parseEnv } from '../functions/common/config.ts';
import { closePool, getPool } from '../functions/common/db.ts';
import { migrate } from '../functions/migrate/migrate.ts';
import { stageObject } from '../functions/stage/stage-object.ts';
import { highWaterMb } from './measure.ts';

/** Peak RSS by phase, in MB, from the kernel's high-water mark (`VmHWM`), reset between phases. */
export interface PhaseMemory {
  /** Module loading, pool, migrations: what the process holds before the object is read. */
  startup: number;
  /** Detection, lineage scanner and COPY (up to the second read of the object). */
  copy: number;
  /** The catalog profile after the commit (the object read again, a sample profiled). */
  profile: number;
  /** What made up the largest RSS a 50 ms sampler saw, in MB: the V8 heap (reserved, in use) and off-heap memory (Buffers). */
  atPeak: { rss: number; heapTotal: number; heapUsed: number; external: number };
}

const MB = 1024 * 1024;

/** Start a new phase: writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0). */
function resetHighWater(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // not Linux, or not allowed: the phases then report the peak so far
  }
}

/**
 * The S3 client, noting when an object is opened: the stage step reads the object once for the
 * COPY, and the catalog profile reads it again, so the second GetObject is the phase boundary.
 */
function watchedS3(s3: S3Client, onGet: (n: number) => void): S3Client {
  let gets = 0;
  const send = s3.send.bind(s3) as (command: unknown, ...rest: unknown[]) => Promise<unknown>;
  return new Proxy(s3, {
    get(target, prop, receiver) {
      if (prop !== 'send') return Reflect.get(target, prop, receiver);
      return (command: unknown, ...rest: unknown[]) => {
        if (command instanceof GetObjectCommand) onGet(++gets);
        return send(command, ...rest);
      };
    },
  });
}

const [bucket, key, versionId, size] = process.argv.slice(2);
const pipeline = parsePipeline({
  project: 'bench_stage',
  suppliers: [{ name: 'bench' }],
  datasets: [{ name: 'rows', source: { type: 'upload', supplier: 'bench' } }],
});
const pool = await getPool();
await migrate(pool, pipeline.project);

const memory: PhaseMemory = { startup: highWaterMb(), copy: NaN, profile: NaN, atPeak: { rss: 0, heapTotal: 0, heapUsed: 0, external: 0 } };
resetHighWater();
const sampler = setInterval(() => {
  const u = process.memoryUsage();
  if (u.rss / MB > memory.atPeak.rss) memory.atPeak = { rss: u.rss / MB, heapTotal: u.heapTotal / MB, heapUsed: u.heapUsed / MB, external: u.external / MB };
}, 50);
// the local stage step's settings (CIVIC_ETL_PARALLEL_BYTES, CIVIC_ETL_PARALLEL_CONNECTIONS), as local/pipeline.ts applies them
const parallel = parseEnv(parallelEnv, process.env, 'the local stage step');
const dbConfig = parseEnv(dbEnv, process.env, 'the local stage step');
const connections = Math.min(parallel.connections ?? 1, Math.max(1, dbConfig.poolSize - 1));
const inParts = connections > 1 && Number(size) > parallel.bytes;
const s3 = watchedS3(s3Client(), (n) => {
  // whole: the second read of the object is the catalog profile's; in parts the reads are many (plan, parts), so one peak is reported
  if (n !== 2 || inParts) return;
  memory.copy = highWaterMb();
  resetHighWater();
});

let notified = 0;
const started = performance.now();
const outcome = await stageObject(
  { pool, s3, pipeline, notifyClean: async () => void notified++, ...(connections > 1 ? { partBytes: parallel.bytes, partsInProcess: { connections } } : {}) },
  { bucket: bucket!, key: key!, versionId, size: Number(size) },
);
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
if (Number.isNaN(memory.copy)) memory.copy = highWaterMb();
else memory.profile = highWaterMb();
const [ledger] = (await pool.query(`SELECT stage_ms FROM etl.loads WHERE id = $1`, [(outcome as { loadId: number }).loadId])).rows;
const parts = (outcome as { parts?: number }).parts ?? 1;
console.log(JSON.stringify({ outcome, seconds, copySeconds: Number(ledger?.stage_ms ?? 0) / 1000, notified, memory, parts, connections: Math.min(parts, connections) }));
await closePool();
