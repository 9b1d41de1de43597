/**
 * The profiler's second thread (`profileStream` with `workers: 1`): it profiles some of the
 * columns while the main thread reads the file, hashes the records and profiles the others.
 * Each column is profiled by one thread only, in the file's order, by the same ColumnAccumulator:
 * the profile is the one a single thread gives.
 *
 * Messages in: batches of records (the worker's fields of each record, in order, as one string
 * and their lengths), answered by `{ done: records }` so the reader can keep few in flight; then
 * `{ finish }`, answered by the columns' profiles and number ranges.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { formatsFor } from './formats/index.ts';
import { ColumnAccumulator, type ColumnsBatch, type ColumnsFinish, type ColumnsInit, type ColumnsResult } from './profile.ts';

const port = parentPort;
if (!port) throw new Error('profile-worker.ts runs as a worker thread (profileStream starts it)');
const init = workerData as ColumnsInit;
const formats = formatsFor(init.locales);
const columns = init.names.map((name) => new ColumnAccumulator(name, formats, init.distinctCap, init.decimalComma));

port.on('message', (m: ColumnsBatch | ColumnsFinish) => {
  if ('finish' in m) {
    const result: ColumnsResult = {
      profiles: columns.map((c) => c.finish(m.finish.top, m.finish.typeThreshold, init.decimalComma)),
      numbers: columns.map((c) => c.num),
    };
    port.postMessage(result);
    return;
  }
  feedColumns(columns, m);
  port.postMessage({ done: m.records });
});

/** The batch's fields, record by record, to the columns. */
function feedColumns(columns: readonly ColumnAccumulator[], batch: ColumnsBatch): void {
  const { text, lengths, records } = batch;
  const width = columns.length;
  let at = 0;
  let k = 0;
  for (let r = 0; r < records; r++) {
    for (let c = 0; c < width; c++) {
      const end = at + lengths[k++]!;
      columns[c]!.add(text.slice(at, end));
      at = end;
    }
  }
}
