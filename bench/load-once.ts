/**
 * Child process of `bench/stage.ts` (BENCH_STAGE_LOAD=1): `civic-etl load FILE --table T` as the
 * CLI runs it, printing one JSON line with the seconds of its staging phase (read and staged; a
 * CSV above CIVIC_ETL_PARALLEL_BYTES in parts over CIVIC_ETL_PARALLEL_CONNECTIONS connections),
 * the whole load's seconds, and the parts used. Run alone so that its peak RSS is the load's own.
 *
 *   node --import tsx bench/load-once.ts <file> <schema.table>
 */
import { closePool, getPool } from '../functions/common/db.ts';
import { loadFile } from '../local/load-file.ts';

const [file, table] = process.argv.slice(2);
const pool = await getPool();
let staged = NaN;
const started = performance.now();
const result = await loadFile(pool, file!, {
  table: table!,
  recreate: true,
  onPhase: (what, seconds) => {
    if (what.startsWith('read and staged')) staged = seconds;
  },
});
const seconds = (performance.now() - started) / 1000;
const [schema, name] = table!.split('.') as [string, string];
const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM etl.load_parts WHERE load_id = (SELECT max(id) FROM etl.loads WHERE project = $1 AND dataset = $2)`, [schema, name]);
console.log(JSON.stringify({ rows: result.rowsLoaded, stagedSeconds: staged, seconds, parts: rows[0]?.n || 1 }));
await closePool();
