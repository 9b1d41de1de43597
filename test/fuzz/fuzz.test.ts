/**
 * Hostile input (issue 16): every fuzz file (generate.ts) uploaded as a supplier's object and run
 * through the real stage and clean steps (PostgreSQL, moto) into a dataset with a previous clean
 * table, in a watched child process (run.ts). For each file:
 *   verdict   a recorded verdict (loaded, quarantined, failed, skipped) — never a crash, a kill,
 *             a thrown error (retried, then dead-lettered) or a load left `received`/`staged`;
 *   expect    what the file's construction calls for (generate.ts): a broken file fails or is
 *             quarantined, a valid odd one loads;
 *   empties   no load empties the previous clean table;
 *   names-file  a failure names the file (the upload, or its member);
 *   position  a failure of a text format (CSV, JSON, NDJSON, GeoJSON) names a line, column, byte…
 *             unless the whole file is the problem (empty, no fields, another kind of file);
 *   table     the previous clean table unchanged unless the file loaded;
 *   raw       the raw object unchanged (latest version, same ETag, same SHA-256);
 *   rss       peak RSS within the stage function's memory (512 MB);
 *   disk      the temp folder empty afterwards and never above 512 MB (Lambda's /tmp);
 *   time      within 30 s.
 * A ratchet like test/acceptance: a failing check not in known-failures.json fails the test, and
 * a listed one that now holds fails it too (remove its line).
 *
 *   npx vitest run test/fuzz                       # the fast subset (part of npm test, ≤ ~60 s)
 *   npm run fuzz                                   # the whole corpus, with the table by category
 *   FUZZ_UPDATE=1 npm run fuzz                     # rewrite known-failures.json from this run
 *   FUZZ_ONLY=csv-007,zip npm run fuzz             # files whose id starts with one of these
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { closePool, getPool } from '../../functions/common/db.ts';
import { freshBucket, freshProject } from '../integration/support.ts';
import { FUZZ_INPUT, reseed } from './deliver.ts';
import { ensureCorpus, runFuzz, table } from './run.ts';
import { failingChecks } from './checks.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const KNOWN_PATH = join(HERE, 'known-failures.json');
const FULL = process.env.FUZZ_FULL === '1';
const UPDATE = process.env.FUZZ_UPDATE === '1';

interface Known {
  observed: string;
  class: string;
}
const known: Record<string, Known> = JSON.parse(readFileSync(KNOWN_PATH, 'utf8'));

/**
 * The fast subset: the first file of each category (its valid one) and every fourth file after it,
 * leaving out files known to run past a bound (they cost their whole timeout) — the whole corpus
 * runs them.
 */
function fastSubset(ids: string[]): string[] {
  const slow = new Set(
    Object.entries(known)
      .filter(([k, v]) => /#(time|rss|disk)$/.test(k) || (k.endsWith('#verdict') && v.class !== 'crash'))
      .map(([k]) => k.split('#')[0]),
  );
  const seen = new Map<string, number>();
  return ids.filter((id) => {
    const cat = id.split('-')[0]!;
    const n = seen.get(cat) ?? 0;
    seen.set(cat, n + 1);
    return !slow.has(id) && n % 4 === 0;
  });
}

describe('hostile input: the fuzz corpus', () => {
  afterAll(async () => {
    await closePool();
  });

  it(
    'ends every file in a recorded verdict, within the bounds, with the previous table and the raw object untouched',
    async () => {
      const { dir, manifest } = await ensureCorpus();
      expect(manifest.length).toBeGreaterThanOrEqual(300);
      const only = process.env.FUZZ_ONLY?.split(',').filter(Boolean);
      let ids = manifest.map((m) => m.id);
      if (only) ids = ids.filter((id) => only.some((p) => id.startsWith(p)));
      else if (!FULL) ids = fastSubset(ids);

      // a whole run leaves some 400 staging tables: dropped one by one first, since a single
      // DROP SCHEMA … CASCADE of them all takes more locks than one transaction may hold
      const pool = await getPool();
      const tables = await pool.query<{ t: string }>(`SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname IN ($1, $2)`, [
        FUZZ_INPUT.project,
        `${FUZZ_INPUT.project}_staging`,
      ]);
      for (const { t } of tables.rows) await pool.query(`DROP TABLE IF EXISTS ${t} CASCADE`);
      await freshProject(FUZZ_INPUT);
      const bucket = await freshBucket('fuzz');
      process.env.FUZZ_BUCKET = bucket;
      await reseed(pool);
      const results = await runFuzz(pool, {
        dir,
        manifest,
        ids,
        bucket,
        onResult: (r) => {
          if (process.env.FUZZ_VERBOSE) console.log(`${r.id}: ${r.verdict} ${r.seconds.toFixed(1)} s ${r.peakRssMb.toFixed(0)} MB ${r.error?.slice(0, 120) ?? ''}`);
        },
      });
      expect(results.map((r) => r.id).sort()).toEqual([...ids].sort());

      const failing = new Map<string, string[]>();
      const observed: Record<string, Known> = {};
      const clearlyOver = new Set<string>();
      const overIfLower = new Set<string>();
      for (const r of results) {
        const checks = failingChecks(r);
        failing.set(r.id, [...checks.keys()]);
        for (const [check, o] of checks) observed[`${r.id}#${check}`] = o;
        for (const check of failingChecks(r, 1.25).keys()) clearlyOver.add(`${r.id}#${check}`);
        for (const check of failingChecks(r, 0.8).keys()) overIfLower.add(`${r.id}#${check}`);
      }
      const ran = new Set(ids);
      const listedHere = Object.keys(known).filter((k) => ran.has(k.split('#')[0]!));
      const fresh = [...clearlyOver].filter((k) => !(k in known));
      const nowHolding = listedHere.filter((k) => !overIfLower.has(k));

      const summary = table(results, failing);
      const byClass = new Map<string, number>();
      for (const o of Object.values(observed)) byClass.set(o.class, (byClass.get(o.class) ?? 0) + 1);
      console.log(
        `fuzz: ${results.length} files${FULL ? ' (whole corpus)' : ' (fast subset; npm run fuzz for all)'}, ${Object.keys(observed).length} failing checks (${[...byClass].map(([c, n]) => `${c} ${n}`).join(', ')}); ${fresh.length} new, ${nowHolding.length} now holding\n${summary}`,
      );
      writeFileSync(join(dir, '..', FULL ? 'last-run-full.json' : 'last-run.json'), JSON.stringify(results, null, 1));

      if (UPDATE) {
        const next: Record<string, Known> = {};
        for (const [k, v] of Object.entries(known)) if (!ran.has(k.split('#')[0]!)) next[k] = v;
        Object.assign(next, observed);
        const sorted = Object.fromEntries(
          Object.keys(next)
            .sort()
            .map((k) => [k, next[k]!]),
        );
        writeFileSync(KNOWN_PATH, `${JSON.stringify(sorted, null, 1)}\n`);
        return;
      }
      expect(
        fresh.map((k) => `${k}: ${observed[k]!.observed}`),
        'new failures (fix them, or FUZZ_UPDATE=1 to list them)',
      ).toEqual([]);
      expect(nowHolding.map((k) => `${k} now holds: remove it from test/fuzz/known-failures.json (or FUZZ_UPDATE=1)`)).toEqual([]);
    },
    FULL ? 3 * 3600_000 : 600_000,
  );
});
