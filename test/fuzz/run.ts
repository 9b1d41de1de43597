/**
 * The fuzz runner: the corpus (generate.ts, cached by the generator's source hash) delivered file
 * by file by a child process (child.ts) that the runner watches — RSS sampled every 100 ms from
 * /proc, the temp folder's size every 250 ms, the clock — and kills (SIGKILL) when a file runs past
 * a cap. A killed or crashed child is judged from outside (ledger, clean table, raw object, temp
 * folder), then a new child takes the files left. Used by fuzz.test.ts.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { bytesUnder, emptyDir, fingerprint, judge, reseed, type Judged, type Uploaded, type Verdict } from './deliver.ts';
import { writeCorpus, type Expect } from './generate.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');

export interface ManifestEntry {
  id: string;
  category: string;
  name: string;
  expect: Expect;
  note: string;
  size: number;
}

export interface FileResult extends Partial<Judged> {
  id: string;
  category: string;
  name: string;
  expect: Expect;
  size: number;
  verdict: Verdict;
  seconds: number;
  peakRssMb: number;
  /** Largest size of the temp folder seen while the file ran (sampled), MB. */
  peakTempMb: number;
  /** Bytes left in the temp folder after the file. */
  tempLeft: number;
  /** Why the runner killed the child, or how it died. */
  killed?: string;
}

export interface Caps {
  /** Kill the child above this RSS (MB). */
  rssMb: number;
  /** Kill the child when one file runs longer (s). */
  seconds: number;
  /** Kill the child when its temp folder grows past this (MB). */
  tempMb: number;
}

export const DEFAULT_CAPS: Caps = { rssMb: 1536, seconds: 60, tempMb: 2048 };

/** The corpus on disk: generated once per version of the generator and its helpers. */
export async function ensureCorpus(): Promise<{ dir: string; manifest: ManifestEntry[] }> {
  const sources = ['test/fuzz/generate.ts', 'test/helpers/zip.ts', 'test/helpers/spreadsheets.ts', 'test/helpers/shapefile-writer.ts', 'test/helpers/gpkg-writer.ts'];
  const hash = createHash('sha256');
  for (const s of sources) hash.update(readFileSync(join(ROOT, s)));
  const dir = process.env.FUZZ_DIR ?? join(tmpdir(), 'civic-etl-fuzz', `corpus-${hash.digest('hex').slice(0, 12)}`);
  if (!existsSync(join(dir, 'manifest.json'))) await writeCorpus(dir);
  return { dir, manifest: JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as ManifestEntry[] };
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Deliver `ids` (in order) and return one result per file. `pool` is the runner's own connection,
 * used to judge a file whose child died and to put the previous load back.
 */
export async function runFuzz(pool: pg.Pool, opts: { dir: string; manifest: ManifestEntry[]; ids: string[]; bucket: string; caps?: Caps; onResult?: (r: FileResult) => void }): Promise<FileResult[]> {
  const caps = opts.caps ?? DEFAULT_CAPS;
  const byId = new Map(opts.manifest.map((m) => [m.id, m]));
  const temp = join(tmpdir(), 'civic-etl-fuzz', `tmp-${process.pid}`);
  mkdirSync(temp, { recursive: true });
  emptyDir(temp);
  const results: FileResult[] = [];
  let left = [...opts.ids];
  while (left.length > 0) {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(HERE, 'child.ts'), opts.dir, ...left], {
      cwd: ROOT,
      env: { ...process.env, FUZZ_BUCKET: opts.bucket, TMPDIR: temp, POWERTOOLS_LOG_LEVEL: 'SILENT', NODE_NO_WARNINGS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    let current: { id: string; upload: Uploaded; before: { rows: number; digest: string }; started: number; peakRss: number; peakTemp: number } | undefined;
    let killed: { verdict: Verdict; why: string } | undefined;
    const watch = setInterval(() => {
      if (!current || child.pid === undefined) return;
      const rss = rssMb(child.pid);
      current.peakRss = Math.max(current.peakRss, rss);
      const elapsed = (performance.now() - current.started) / 1000;
      if (rss > caps.rssMb) killed = { verdict: 'memory', why: `RSS ${rss.toFixed(0)} MB > ${caps.rssMb} MB after ${elapsed.toFixed(1)} s` };
      else if (elapsed > caps.seconds) killed = { verdict: 'timeout', why: `still running after ${caps.seconds} s` };
      if (killed) child.kill('SIGKILL');
    }, 100);
    const tempWatch = setInterval(() => {
      if (!current) return;
      const mb = bytesUnder(temp) / 2 ** 20;
      current.peakTemp = Math.max(current.peakTemp, mb);
      if (mb > caps.tempMb && !killed) {
        killed = { verdict: 'disk', why: `temp folder ${mb.toFixed(0)} MB > ${caps.tempMb} MB` };
        child.kill('SIGKILL');
      }
    }, 250);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
    for await (const line of createInterface({ input: child.stdout })) {
      if (!line.startsWith('{')) continue;
      const event = JSON.parse(line) as Record<string, unknown>;
      if (typeof event.start === 'string') {
        current = { id: event.start, upload: event.upload as Uploaded, before: event.before as { rows: number; digest: string }, started: performance.now(), peakRss: 0, peakTemp: 0 };
      } else if (typeof event.done === 'string') {
        const m = byId.get(event.done)!;
        const r = { ...(event as unknown as FileResult), id: m.id, category: m.category, name: m.name, expect: m.expect, size: m.size, peakTempMb: current?.peakTemp ?? 0 };
        delete (r as Record<string, unknown>).done;
        results.push(r);
        opts.onResult?.(r);
        left = left.filter((id) => id !== m.id);
        current = undefined;
      }
    }
    const code = await exited;
    clearInterval(watch);
    clearInterval(tempWatch);
    if (current) {
      // the child died on this file: judge what it left from outside
      const m = byId.get(current.id)!;
      const seconds = (performance.now() - current.started) / 1000;
      const how = killed ?? {
        verdict: 'crashed' as Verdict,
        why: `exit ${code}: ${stderr
          .split('\n')
          .filter((l) => /error|fatal|abort/i.test(l))
          .slice(0, 2)
          .join(' | ')
          .slice(0, 300)}`,
      };
      const judged = await judge(pool, current.upload, current.before, how.verdict);
      const tempLeft = bytesUnder(temp);
      emptyDir(temp);
      const r: FileResult = {
        ...judged,
        id: m.id,
        category: m.category,
        name: m.name,
        expect: m.expect,
        size: m.size,
        seconds,
        peakRssMb: current.peakRss,
        peakTempMb: current.peakTemp,
        tempLeft,
        killed: how.why,
      };
      results.push(r);
      opts.onResult?.(r);
      left = left.filter((id) => id !== m.id);
      if (!judged.tableUnchanged || judged.tableRowsAfter === 0) await reseed(pool);
    } else if (left.length > 0) {
      throw new Error(`the fuzz child exited (${code}) between files: ${stderr.slice(-1500)}`);
    }
  }
  rmSync(temp, { recursive: true, force: true });
  return results;
}

/** The table for the closing note: files by category, verdicts, peak RSS, temp disk and time. */
export function table(results: FileResult[], failing: Map<string, string[]>): string {
  const cats = [...new Set(results.map((r) => r.category))];
  const head = ['category', 'files', 'loaded', 'quarantined', 'failed', 'skipped', 'crashed/killed', 'checks failing', 'peak RSS MB', 'peak temp MB', 'temp left MB', 'time s (max)'];
  const rows = [...cats, 'all'].map((c) => {
    const rs = results.filter((r) => c === 'all' || r.category === c);
    const n = (v: Verdict[]) => rs.filter((r) => v.includes(r.verdict)).length;
    const bad = rs.filter((r) => (failing.get(r.id) ?? []).length > 0).length;
    return [
      c,
      rs.length,
      n(['loaded']),
      n(['quarantined']),
      n(['failed']),
      n(['skipped']),
      n(['threw', 'crashed', 'timeout', 'memory', 'disk']),
      bad,
      Math.max(0, ...rs.map((r) => r.peakRssMb)).toFixed(0),
      Math.max(0, ...rs.map((r) => r.peakTempMb)).toFixed(0),
      (rs.reduce((s, r) => s + r.tempLeft, 0) / 2 ** 20).toFixed(1),
      `${rs.reduce((s, r) => s + r.seconds, 0).toFixed(0)} (${Math.max(0, ...rs.map((r) => r.seconds)).toFixed(1)})`,
    ].map(String);
  });
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export { fingerprint };
