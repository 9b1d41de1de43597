/**
 * Child process of the fuzz runner (run.ts): delivers fuzz files one after the other and prints
 * one JSON line per event on stdout — `{"start": id}` before a file, then its result. Run apart
 * from the test so that a file that kills the process (a fatal allocation) or runs away in memory
 * or time only costs this process: the parent watches its RSS and the clock and kills it.
 *
 *   node --import tsx test/fuzz/child.ts <corpusDir> <id>...
 * with FUZZ_BUCKET (a versioned bucket) and TMPDIR (a folder of its own, measured after each file).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { highWaterMb } from '../../bench/measure.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closePool, getPool } from '../../functions/common/db.ts';
import { bytesUnder, deliver, emptyDir, fingerprint, judge, reseed, upload } from './deliver.ts';

const emit = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

if (process.argv[2]) {
  const [dir, ...ids] = process.argv.slice(2);
  const manifest = new Map((JSON.parse(readFileSync(join(dir!, 'manifest.json'), 'utf8')) as { id: string; name: string }[]).map((m) => [m.id, m]));
  const pool = await getPool();
  const temp = tmpdir();
  let before = await fingerprint(pool);
  if (before.rows === 0) {
    await reseed(pool);
    before = await fingerprint(pool);
  }
  for (const id of ids) {
    const file = manifest.get(id)!;
    const body = readFileSync(join(dir!, id));
    const up = await upload(id, file.name, body);
    emit({ start: id, upload: up, before });
    // the garbage of the files before collected, then the peak RSS counted from here (Linux ≥ 4.0)
    (globalThis as { gc?: () => void }).gc?.();
    writeFileSync('/proc/self/clear_refs', '5');
    const started = performance.now();
    const { thrown } = await deliver(pool, up);
    const seconds = (performance.now() - started) / 1000;
    const peakRssMb = highWaterMb();
    const tempLeft = bytesUnder(temp);
    emptyDir(temp);
    const judged = await judge(pool, up, before, undefined, thrown);
    emit({ done: id, seconds, peakRssMb, tempLeft, ...judged });
    if (!judged.tableUnchanged || judged.tableRowsAfter === 0) await reseed(pool);
    before = await fingerprint(pool);
  }
  await closePool();
}
