/**
 * Child process of `bench/stage.ts`: stage one S3 object with the real stage step (ledger,
 * detection, lineage, COPY, then the catalog profile) and print one JSON line of timings.
 * Run alone so that its peak RSS is the stage step's own.
 *
 *   node --import tsx bench/stage-once.ts <bucket> <key> <versionId> <size>
 */
import { parsePipeline } from '../contract/load.ts';
import { s3Client } from '../functions/common/aws.ts';
import { closePool, getPool } from '../functions/common/db.ts';
import { migrate } from '../functions/migrate/migrate.ts';
import { stageObject } from '../functions/stage/stage-object.ts';

const [bucket, key, versionId, size] = process.argv.slice(2);
const pipeline = parsePipeline({
  project: 'bench_stage',
  suppliers: [{ name: 'bench' }],
  datasets: [{ name: 'rows', source: { type: 'upload', supplier: 'bench' } }],
});
const pool = await getPool();
await migrate(pool, pipeline.project);
let notified = 0;
const started = performance.now();
const outcome = await stageObject({ pool, s3: s3Client(), pipeline, notifyClean: async () => void notified++ }, { bucket: bucket!, key: key!, versionId, size: Number(size) });
const seconds = (performance.now() - started) / 1000;
const [ledger] = (await pool.query(`SELECT stage_ms FROM etl.loads WHERE id = $1`, [(outcome as { loadId: number }).loadId])).rows;
console.log(JSON.stringify({ outcome, seconds, copySeconds: Number(ledger?.stage_ms ?? 0) / 1000, notified }));
await closePool();
