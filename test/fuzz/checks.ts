/** The checks of the fuzz suite (fuzz.test.ts), and the table of a saved run (`npx tsx test/fuzz/checks.ts`). */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { table, type FileResult } from './run.ts';

/** Per file: the stage function's memory, Lambda's default /tmp, and a time no upload should need. */
export const LIMITS = { rssMb: 512, tempMb: 512, seconds: 30 };

const RECORDED = ['loaded', 'quarantined', 'failed', 'skipped'];
const TEXT = new Set(['csv', 'json', 'ndjson', 'geojson']);
/**
 * A position a person can go to: a numbered line, column, row, byte, record, feature…, a cell, a
 * sheet, or an archive member (`file.zip!member`). A zero-byte file has no position to name.
 */
const POSITION = /\b(line|column|row|byte|offset|record|feature|entry|depth|level|position|index)s? \d|\bcell [A-Z]+\d|\bsheet\b|![^\s:]/i;

/**
 * The checks a file fails, each with what was observed. Peak RSS and time are noisy (garbage left
 * by the files before, a machine shared with other work): `noise` scales their limits, so that
 * the ratchet can call a failure new only when clearly over (×1.25) and a listed one fixed only
 * when clearly under (×0.8).
 */
export function failingChecks(r: FileResult, noise = 1): Map<string, { observed: string; class: string }> {
  const out = new Map<string, { observed: string; class: string }>();
  const fail = (check: string, cls: string, observed: string) => out.set(check, { observed: observed.slice(0, 240), class: cls });
  const what = `${r.verdict}${r.killed ? ` (${r.killed})` : ''}${r.error ? `: ${r.error.replace(/incoming\/fuzzer\/rows\/[^/]+\//g, '')}` : ''}`;
  if (!RECORDED.includes(r.verdict) || r.status === 'received' || r.status === 'staged') fail('verdict', ['threw', 'crashed'].includes(r.verdict) ? 'crash' : 'bounds', `${what} (ledger ${r.status})`);
  const loaded = r.verdict === 'loaded' || r.verdict === 'quarantined';
  if (r.expect === 'reject' && r.verdict === 'loaded') fail('expect', 'wrong', `loaded ${r.rowsLoaded} rows as if whole`);
  if (r.expect === 'load' && !loaded) fail('expect', 'wrong', what);
  if (loaded && r.tableRowsBefore! > 0 && r.tableRowsAfter === 0) fail('empties', 'wrong', `a load of ${r.rowsLoaded} rows emptied the table of ${r.tableRowsBefore}`);
  if (r.verdict === 'failed') {
    const e = r.error ?? '';
    if (!e.includes(r.name)) fail('names-file', 'errors', `error does not name ${r.name}: ${e}`);
    // text formats: a parser knows the line (and column) of what it could not read, unless the
    // whole file is the problem (empty, no fields, another kind of file)
    const wholeFile = r.size === 0 || /\b(is empty|no fields|no rows|no data|looks like|UTF-16)\b/i.test(e);
    if (TEXT.has(r.category) && !wholeFile && r.errorLine === null && !POSITION.test(e)) fail('position', 'errors', `error names no line or column: ${e}`);
  }
  if (!loaded && r.tableUnchanged === false) fail('table', 'integrity', `previous clean table changed (${r.tableRowsBefore} → ${r.tableRowsAfter} rows) on ${what}`);
  if (r.rawUnchanged === false) fail('raw', 'integrity', r.rawProblem ?? 'raw object changed');
  if (r.peakRssMb > LIMITS.rssMb * noise) fail('rss', 'bounds', `peak RSS ${r.peakRssMb.toFixed(0)} MB`);
  if (r.tempLeft > 0 || r.peakTempMb > LIMITS.tempMb) fail('disk', 'bounds', `temp folder peak ${r.peakTempMb.toFixed(0)} MB, ${r.tempLeft} bytes left`);
  if (r.seconds > LIMITS.seconds * noise) fail('time', 'bounds', `${r.seconds.toFixed(1)} s`);
  return out;
}

/** The table of the last whole run (written by fuzz.test.ts beside the corpus; `last-run.json` for a subset). */
if (process.argv[1]?.endsWith('checks.ts')) {
  const path = process.argv[2] ?? join(tmpdir(), 'civic-etl-fuzz', 'last-run-full.json');
  const results = JSON.parse(readFileSync(path, 'utf8')) as FileResult[];
  console.log(table(results, new Map(results.map((r) => [r.id, [...failingChecks(r).keys()]]))));
}
