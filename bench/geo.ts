/**
 * `npm run bench -- geo`: load the same generated files into the same local PostGIS with
 * `civic-etl load` and with `ogr2ogr -f PostgreSQL` (Debian gdal-bin, PG_USE_COPY=YES), in one run:
 *
 * - polygons.geojson: 200,000 polygons (about 10 % with a hole, 5 % MultiPolygons), ~190 MB;
 * - polygons.zip: the same features as a zipped ESRI shapefile (ogr reads it through /vsizip/);
 * - points.csv: 1,000,000 rows with lat/lon columns.
 *
 * Both are command-line runs in a child process under GNU time (wall time and peak RSS include
 * start-up), BENCH_RUNS times each (default 3), alternating which goes first, each into a freshly
 * dropped table after a CHECKPOINT; each run is printed, then each side's median and spread
 * (bench/interleave.ts) and the ratio of the medians.
 * Then the two tables are compared: equal row counts, and on a sample of 2,000 ids (joined on
 * the `id` attribute, or the FID column ogr made of it) equal SRIDs and ST_Equals geometries.
 *
 * Ends with `RESULT geo ours=<our median seconds, summed> baseline=<ogr2ogr median seconds, summed>
 * ratio=<the smallest per-file ratio of medians> unit=s` (the targets: ≥ 1.5× on the GeoJSON and the CSV, ≥ 1.0× on the zipped shapefile); a count or
 * geometry mismatch is printed loudly and makes the exit status 1 after the RESULT line.
 *
 * For the polygon files it also times ogr2ogr with -makevalid, which checks and repairs every
 * geometry as we do (printed for reference, not in the RESULT line).
 * Environment: BENCH_GEO_SCALE=0.1 for smaller inputs (default 1, full size); BENCH_RUNS
 * (or BENCH_GEO_RUNS, its former name) runs per tool and file (median time, largest peak RSS; default 3); BENCH_GEO_ONLY=ogr2ogr to time the baseline
 * alone (no RESULT); BENCH_GEO_KEEP=1 to keep the tables in schema bench_geo for inspection.
 *
 * BENCH_GEO_MEMORY_MB=500 adds a memory measurement (unset: none). Every reader must stream: staging
 * a 500 MB GeoJSON must stay under 300 MB peak RSS. (ogr2ogr was thought to read a GeoJSON whole;
 * GDAL 3.6.2 streams it: 51 MB peak RSS on 500 MB, where ours took 163 MB.) A
 * FeatureCollection of about that many MB (the same polygons, more of them; its own file, whatever
 * BENCH_GEO_SCALE says) is loaded once by each tool, with the flags of the polygons.geojson job, into
 * bench_geo.memory_ours and bench_geo.memory_ogr. One line per tool gives the file's size, the rows
 * loaded, wall seconds and peak RSS, then one line says whether ours stayed under 300 MB. These lines
 * come before the summary; the RESULT line is still the three files' alone. Row counts that differ
 * (from each other or from the generator), a failed load, or ours at 300 MB or more are printed
 * loudly and make the exit status 1 after the RESULT line.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import pg from 'pg';
import { ensureServices } from '../local/services.ts';
import { generateGeo, generateSizedGeojson, type SizedGeojson } from './generate-geo.ts';
import { benchRuns, describe, median, resultLine, summarize } from './interleave.ts';
import { measure, type Measured } from './measure.ts';
import { mulberry32 as rng } from '../scripts/random.ts';

const ROOT = join(import.meta.dirname, '..');
const SCHEMA = 'bench_geo';
const SAMPLE = 2_000;
/** Issue 19's target for each file: ≥ 1.5× ogr2ogr, but ≥ 1.0× on the zipped shapefile (where ogr2ogr's C reader is fastest and validates nothing). */
const targetOf = (file: string): number => (file.endsWith('.zip') ? 1.0 : 1.5);
/** The issue's bound on our peak RSS while staging a 500 MB GeoJSON. */
const MEMORY_LIMIT_MB = 300;

/** One input file and how each tool is told to load it. */
interface Job {
  /** Table stem: `bench_geo.<name>_ours` and `bench_geo.<name>_ogr`. */
  name: string;
  file: string;
  /** Rows the generator wrote. */
  expected: number;
  /** ogr2ogr's datasource and its format-specific options. */
  ogrSource: string;
  ogrOptions: string[];
  /** Polygons: also time ogr2ogr with `-makevalid`, which validates and repairs as we do (for reference, not in RESULT). */
  alsoMakeValid?: boolean;
}

interface Run {
  seconds: number;
  peakRssMb: number;
  note: string;
}

interface Check {
  oursRows: number;
  ogrRows: number;
  sampled: number;
  /** Sampled ids missing from either table, different SRIDs, or geometries not ST_Equals. */
  mismatches: number;
  identicalEwkb: number;
  namesDiffer: number | undefined;
  oursColumn: string;
  ogrColumn: string;
  /** Why the sample could not be compared (a table without a geometry or id column). */
  notCompared?: string;
}

interface Outcome {
  job: Job;
  ogr: Run;
  ours?: Run;
  oursFailure?: string;
  check?: Check;
  problems: string[];
  /** ogr2ogr with `-makevalid` (median), for polygon files. */
  ogrMakeValid?: Run;
}

export async function main(): Promise<void> {
  if (!existsSync('/usr/bin/time')) throw new Error('this benchmark measures with GNU time: apt-get install time');
  ensureOgr2ogr();
  const scale = Number(process.env.BENCH_GEO_SCALE ?? 1);
  // BENCH_GEO_RUNS: this benchmark's own name for BENCH_RUNS before every benchmark had it
  const runs = benchRuns(process.env.BENCH_RUNS === undefined && process.env.BENCH_GEO_RUNS !== undefined ? { BENCH_RUNS: process.env.BENCH_GEO_RUNS } : process.env);
  const baselineOnly = /^ogr/i.test(process.env.BENCH_GEO_ONLY ?? '');
  const memoryMb = process.env.BENCH_GEO_MEMORY_MB ? Number(process.env.BENCH_GEO_MEMORY_MB) : undefined;
  const inputs = await generateGeo(scale);
  const sized = memoryMb === undefined ? undefined : await generateSizedGeojson(memoryMb);
  await ensureServices();
  const databaseUrl = process.env.DATABASE_URL!;
  const pgSource = ogrConnection(databaseUrl);

  const version = spawnSync('ogr2ogr', ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`\nbaseline: ogr2ogr (${version}), PG_USE_COPY=YES; ours: node bin/civic-etl.mjs load (Node ${process.version})`);
  console.log(`inputs in ${inputs.dir}; ${runs} run${runs === 1 ? '' : 's'} per tool and file${runs > 1 ? ' (medians)' : ''}`);

  const jobs: Job[] = [
    { name: 'polygons_geojson', file: inputs.geojson, expected: inputs.features, ogrSource: inputs.geojson, ogrOptions: ['-nlt', 'PROMOTE_TO_MULTI', '-t_srs', 'EPSG:4326'], alsoMakeValid: true },
    { name: 'polygons_shp', file: inputs.zip, expected: inputs.features, ogrSource: `/vsizip/${inputs.zip}`, ogrOptions: ['-nlt', 'PROMOTE_TO_MULTI', '-t_srs', 'EPSG:4326'], alsoMakeValid: true },
    {
      name: 'points_csv',
      file: inputs.csv,
      expected: inputs.points,
      ogrSource: inputs.csv,
      ogrOptions: ['-oo', 'X_POSSIBLE_NAMES=lon', '-oo', 'Y_POSSIBLE_NAMES=lat', '-oo', 'AUTODETECT_TYPE=YES', '-a_srs', 'EPSG:4326', '-nlt', 'POINT'],
    },
  ];

  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const outcomes: Outcome[] = [];
  let memoryProblems: string[] = [];
  try {
    await db.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
    await db.query(`DELETE FROM etl.loads WHERE project = '${SCHEMA}'`).catch(() => undefined);
    for (const [index, job] of jobs.entries()) {
      const mb = statSync(job.file).size / 1e6;
      console.log(`\n${basename(job.file)}: ${mb.toFixed(0)} MB, ${job.expected.toLocaleString('en')} rows`);
      const ogrRuns: Run[] = [];
      const oursRuns: Run[] = [];
      let oursFailure: string | undefined;
      for (let k = 0; k < runs; k++) {
        await dropTables(db, job);
        // alternate who goes first, so neither always meets the other's dirty buffers or autovacuum
        const ogrFirst = (index + k) % 2 === 0 || baselineOnly;
        for (const tool of ogrFirst ? (['ogr', 'ours'] as const) : (['ours', 'ogr'] as const)) {
          if (tool === 'ours' && (baselineOnly || oursFailure)) continue;
          await db.query('CHECKPOINT').catch(() => undefined);
          if (tool === 'ogr') {
            ogrRuns.push(await runOgr(job, pgSource, databaseUrl));
            printRun('ogr2ogr  ', ogrRuns.at(-1)!);
          } else {
            const r = await runOurs(job);
            if ('failure' in r) {
              oursFailure = r.failure;
              console.log(`  !!! civic-etl load FAILED on ${basename(job.file)}:\n${indent(r.failure)}`);
            } else {
              oursRuns.push(r);
              printRun('civic-etl', r);
            }
          }
        }
      }
      const outcome: Outcome = { job, ogr: medianRun(ogrRuns), ours: oursFailure ? undefined : oursRuns.length ? medianRun(oursRuns) : undefined, oursFailure, problems: [] };
      console.log(`  ogr2ogr:   ${describe(summarize(ogrRuns.map((r) => r.seconds)), 's')}`);
      if (outcome.ours) {
        console.log(`  civic-etl: ${describe(summarize(oursRuns.map((r) => r.seconds)), 's')}`);
        const ratio = outcome.ogr.seconds / outcome.ours.seconds;
        console.log(`  ratio of medians ${ratio.toFixed(2)}× (ogr2ogr s ÷ civic-etl s; target ≥ ${targetOf(job.file)}×)`);
        outcome.check = await compare(db, job);
        reportCheck(outcome);
      }
      if (job.alsoMakeValid && !baselineOnly) {
        // the same work as ours: every geometry checked and repaired (ST_MakeValid)
        const validated: Run[] = [];
        for (let k = 0; k < runs; k++) {
          await db.query('CHECKPOINT').catch(() => undefined);
          validated.push(await runOgr({ ...job, name: `${job.name}_mv`, ogrOptions: [...job.ogrOptions, '-makevalid'] }, pgSource, databaseUrl));
          printRun('ogr2ogr -makevalid', validated.at(-1)!);
        }
        outcome.ogrMakeValid = medianRun(validated);
        console.log(`  ogr2ogr -makevalid: ${describe(summarize(validated.map((r) => r.seconds)), 's')}`);
        if (outcome.ours) console.log(`  for reference, with the same validation: ${(outcome.ogrMakeValid.seconds / outcome.ours.seconds).toFixed(2)}× (ogr2ogr -makevalid s ÷ civic-etl s; not in RESULT)`);
      }
      outcomes.push(outcome);
    }
    if (sized) memoryProblems = await measureMemory(db, sized, pgSource, databaseUrl, baselineOnly);
    if (process.env.BENCH_GEO_KEEP !== '1') await db.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await db.query(`DELETE FROM etl.loads WHERE project = '${SCHEMA}'`).catch(() => undefined);
  } finally {
    await db.end();
  }
  summarise(outcomes, baselineOnly);
  if (memoryProblems.length > 0) {
    console.log(`\n!!! memory measurement: ${memoryProblems.join('; ')}`);
    process.exitCode = 1;
  }
}

/**
 * The memory measurement: load the sized GeoJSON with ogr2ogr, then with ours (each after a
 * CHECKPOINT, into a freshly dropped table), print one line per tool and whether ours stayed
 * under the limit. Returns what went wrong (a failed load, row counts that differ, ours over the
 * limit), for the exit status.
 */
async function measureMemory(db: pg.Client, sized: SizedGeojson, pgSource: string, databaseUrl: string, baselineOnly: boolean): Promise<string[]> {
  const job: Job = { name: 'memory', file: sized.file, expected: sized.features, ogrSource: sized.file, ogrOptions: ['-nlt', 'PROMOTE_TO_MULTI', '-t_srs', 'EPSG:4326'] };
  const mb = statSync(job.file).size / 1e6;
  const problems: string[] = [];
  console.log(
    `\nmemory (BENCH_GEO_MEMORY_MB=${process.env.BENCH_GEO_MEMORY_MB}): ${basename(job.file)}, ${mb.toFixed(0)} MB, ${job.expected.toLocaleString('en')} features; limit for ours ${MEMORY_LIMIT_MB} MB peak RSS`,
  );
  await dropTables(db, job);
  const rows = async (table: string) => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${SCHEMA}.${table}`)).rows[0]!.n);
  const line = (label: string, n: number, r: Run) =>
    console.log(`  memory ${label} ${mb.toFixed(0)} MB, ${n.toLocaleString('en')} rows, ${r.seconds.toFixed(1)} s, peak RSS ${r.peakRssMb.toFixed(0)} MB${r.note ? `  (${r.note})` : ''}`);

  await db.query('CHECKPOINT').catch(() => undefined);
  let ogrRows: number | undefined;
  try {
    const r = await runOgr(job, pgSource, databaseUrl);
    ogrRows = await rows(`${job.name}_ogr`);
    line('ogr2ogr  ', ogrRows, r);
  } catch (e) {
    problems.push(`ogr2ogr failed: ${(e as Error).message.split('\n')[0]}`);
    console.log(`  !!! ogr2ogr FAILED on ${basename(job.file)}:\n${indent((e as Error).message)}`);
  }
  if (baselineOnly) {
    console.log(`  civic-etl not run (BENCH_GEO_ONLY=ogr2ogr)`);
  } else {
    await db.query('CHECKPOINT').catch(() => undefined);
    const r = await runOurs(job);
    if ('failure' in r) {
      problems.push('civic-etl load failed');
      console.log(`  !!! civic-etl load FAILED on ${basename(job.file)}:\n${indent(r.failure)}`);
    } else {
      const oursRows = await rows(`${job.name}_ours`);
      line('civic-etl', oursRows, r);
      const under = r.peakRssMb < MEMORY_LIMIT_MB;
      console.log(`  memory civic-etl stayed under ${MEMORY_LIMIT_MB} MB: ${under ? 'yes' : 'NO'} (peak RSS ${r.peakRssMb.toFixed(0)} MB on ${mb.toFixed(0)} MB of GeoJSON)`);
      if (!under) problems.push(`civic-etl peak RSS ${r.peakRssMb.toFixed(0)} MB is not under ${MEMORY_LIMIT_MB} MB`);
      if (oursRows !== job.expected) problems.push(`civic-etl loaded ${oursRows} rows of ${job.expected} generated`);
      if (ogrRows !== undefined && oursRows !== ogrRows) problems.push(`row counts differ: ours ${oursRows}, ogr2ogr ${ogrRows}`);
    }
  }
  if (ogrRows !== undefined && ogrRows !== job.expected) problems.push(`ogr2ogr loaded ${ogrRows} rows of ${job.expected} generated`);
  if (problems.length === 0) console.log(`  rows match: ${job.expected.toLocaleString('en')} generated, loaded by ${baselineOnly ? 'ogr2ogr' : 'both'}`);
  for (const p of problems) console.log(`  !!! MEMORY: ${p}`);
  return problems;
}

/** ogr2ogr is the baseline: install Debian's gdal-bin when we may (root), else say how. */
function ensureOgr2ogr(): void {
  const found = () => spawnSync('sh', ['-c', 'command -v ogr2ogr'], { stdio: 'ignore' }).status === 0;
  if (found()) return;
  if (process.getuid?.() !== 0) throw new Error('ogr2ogr (the baseline of this benchmark) is not installed: install gdal-bin (e.g. sudo apt-get install -y gdal-bin), then run again');
  const apt = (args: string[]) => spawnSync('apt-get', args, { stdio: 'inherit', timeout: 20 * 60_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  console.log('ogr2ogr not found: running apt-get install -y gdal-bin (it is the baseline)…');
  if (!apt(['install', '-y', 'gdal-bin'])) {
    console.log('apt-get install failed: running apt-get update, then trying again…');
    apt(['update']);
    apt(['install', '-y', 'gdal-bin']);
  }
  if (!found()) throw new Error('could not install gdal-bin (ogr2ogr): install it by hand, then run again');
}

/**
 * ogr's `PG:` datasource for DATABASE_URL: host, port, dbname and user as keywords; the password
 * goes to ogr through PGPASSWORD (see `ogrEnv`) so that it never shows on a command line.
 */
function ogrConnection(url: string): string {
  const u = new URL(url);
  const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const parts: [string, string | null][] = [
    ['host', u.searchParams.get('host') ?? (u.hostname.replace(/^\[(.*)\]$/, '$1') || null)],
    ['port', u.port || u.searchParams.get('port')],
    ['dbname', decodeURIComponent(u.pathname.slice(1)) || null],
    ['user', decodeURIComponent(u.username) || u.searchParams.get('user')],
    ['sslmode', u.searchParams.get('sslmode')],
  ];
  return `PG:${parts
    .filter(([, v]) => v)
    .map(([k, v]) => `${k}=${quote(v!)}`)
    .join(' ')}`;
}

function ogrEnv(url: string): NodeJS.ProcessEnv {
  const password = decodeURIComponent(new URL(url).password);
  return { ...process.env, PG_USE_COPY: 'YES', ...(password ? { PGPASSWORD: password } : {}) };
}

async function runOgr(job: Job, pgSource: string, databaseUrl: string): Promise<Run> {
  const args = ['-f', 'PostgreSQL', pgSource, job.ogrSource, '-nln', `${SCHEMA}.${job.name}_ogr`, '-overwrite', '-lco', 'GEOMETRY_NAME=geom', '-lco', 'SPATIAL_INDEX=GIST', ...job.ogrOptions];
  const m = await measure('ogr2ogr', args, ogrEnv(databaseUrl));
  if (m.code !== 0) throw new Error(`ogr2ogr failed on ${job.file} (exit ${m.code}):\n${tail(m.stderr)}`);
  return { seconds: m.seconds, peakRssMb: m.peakRssMb, note: '' };
}

async function runOurs(job: Job): Promise<Run | { failure: string }> {
  const m: Measured = await measure(process.execPath, [join(ROOT, 'bin/civic-etl.mjs'), 'load', job.file, '--table', `${SCHEMA}.${job.name}_ours`, '--recreate'], {
    ...process.env,
    NODE_NO_WARNINGS: '1',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
  });
  if (m.code !== 0) return { failure: `exit ${m.code} after ${m.seconds.toFixed(1)} s\n${tail(`${m.stdout}\n${m.stderr}`)}` };
  const said = /rows read (\d+), loaded (\d+), rejected (\d+)/.exec(m.stdout);
  return { seconds: m.seconds, peakRssMb: m.peakRssMb, note: said ? said[0] : '(no "rows read …" line in its output)' };
}

async function dropTables(db: pg.Client, job: Job): Promise<void> {
  const t = (suffix: string) => `${SCHEMA}.${job.name}_${suffix}`;
  await db.query(`DROP TABLE IF EXISTS ${t('ours')}, ${t('ours_rejects')}, ${t('ogr')} CASCADE`);
}

/** The column to join on: the `id` attribute, or ogr's FID column when ogr made one of it. */
async function keyColumn(db: pg.Client, table: string, fallbacks: string[]): Promise<string | undefined> {
  const { rows } = await db.query<{ column_name: string }>(`SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, [SCHEMA, table]);
  const names = new Set(rows.map((r) => r.column_name));
  return ['id', ...fallbacks].find((c) => names.has(c));
}

async function geometryColumn(db: pg.Client, table: string): Promise<{ column: string; type: string; srid: number } | undefined> {
  const { rows } = await db.query<{ column: string; type: string; srid: number }>(
    `SELECT f_geometry_column AS column, type, srid FROM geometry_columns WHERE f_table_schema = $1 AND f_table_name = $2 ORDER BY f_geometry_column LIMIT 1`,
    [SCHEMA, table],
  );
  return rows[0];
}

async function hasColumn(db: pg.Client, table: string, column: string): Promise<boolean> {
  const { rowCount } = await db.query(`SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = $3`, [SCHEMA, table, column]);
  return (rowCount ?? 0) > 0;
}

/**
 * Row counts of both tables, then on a fixed sample of ids: present in both, same SRID, and
 * ST_Equals (byte-identical EWKB counted apart; ring order or orientation may differ).
 */
async function compare(db: pg.Client, job: Job): Promise<Check> {
  const ours = `${job.name}_ours`;
  const ogr = `${job.name}_ogr`;
  const oursGeom = await geometryColumn(db, ours);
  const ogrGeom = await geometryColumn(db, ogr);
  const oursKey = await keyColumn(db, ours, []);
  const ogrKey = await keyColumn(db, ogr, ['ogc_fid']);
  const count = async (t: string) => (await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${SCHEMA}.${t}`)).rows[0]!.n;
  const check: Check = {
    oursRows: Number(await count(ours)),
    ogrRows: Number(await count(ogr)),
    sampled: 0,
    mismatches: 0,
    identicalEwkb: 0,
    namesDiffer: undefined,
    oursColumn: oursGeom ? `${oursGeom.column} geometry(${oursGeom.type}, ${oursGeom.srid})` : 'no geometry column',
    ogrColumn: ogrGeom ? `${ogrGeom.column} geometry(${ogrGeom.type}, ${ogrGeom.srid})` : 'no geometry column',
  };
  const ids = sampleIds(job.expected);
  check.sampled = ids.length;
  const missing = [!oursGeom && 'ours has no geometry column', !ogrGeom && 'ogr2ogr made no geometry column', !oursKey && 'ours has no id column', !ogrKey && 'ogr2ogr made no id column'].filter(Boolean);
  if (!oursGeom || !ogrGeom || !oursKey || !ogrKey) {
    check.mismatches = ids.length;
    check.notCompared = missing.join(', ');
    return check;
  }
  const names = (await hasColumn(db, ours, 'name')) && (await hasColumn(db, ogr, 'name'));
  const o = `o.${oursGeom.column}`;
  const g = `g.${ogrGeom.column}`;
  const { rows } = await db.query<{ equal: string; identical: string; names: string }>(
    `WITH s AS (SELECT unnest($1::bigint[]) AS id),
          o AS (SELECT (${oursKey})::bigint AS id, ${oursGeom.column}${names ? ', name' : ''} FROM ${SCHEMA}.${ours} WHERE (${oursKey})::bigint = ANY ($1::bigint[])),
          g AS (SELECT (${ogrKey})::bigint AS id, ${ogrGeom.column}${names ? ', name' : ''} FROM ${SCHEMA}.${ogr} WHERE (${ogrKey})::bigint = ANY ($1::bigint[]))
     SELECT count(*) FILTER (WHERE CASE
                WHEN ${o} IS NULL OR ${g} IS NULL THEN false
                WHEN ST_SRID(${o}) <> ST_SRID(${g}) THEN false
                WHEN ST_AsEWKB(${o}) = ST_AsEWKB(${g}) THEN true
                WHEN NOT (ST_IsValid(${o}) AND ST_IsValid(${g})) THEN false
                ELSE ST_Equals(${o}, ${g}) END) AS equal,
            count(*) FILTER (WHERE ST_AsEWKB(${o}) = ST_AsEWKB(${g})) AS identical,
            ${names ? 'count(*) FILTER (WHERE o.name::text IS DISTINCT FROM g.name::text)' : 'NULL'} AS names
       FROM s LEFT JOIN o ON o.id = s.id LEFT JOIN g ON g.id = s.id`,
    [ids],
  );
  check.mismatches = ids.length - Number(rows[0]!.equal);
  check.identicalEwkb = Number(rows[0]!.identical);
  check.namesDiffer = rows[0]!.names === null ? undefined : Number(rows[0]!.names);
  return check;
}

/** 2,000 distinct ids of 1..n, the same every run. */
function sampleIds(n: number): number[] {
  if (n <= SAMPLE) return Array.from({ length: n }, (_, i) => i + 1);
  const r = rng(SAMPLE);
  const ids = new Set<number>();
  while (ids.size < SAMPLE) ids.add(1 + Math.floor(r() * n));
  return [...ids].sort((a, b) => a - b);
}

function reportCheck(outcome: Outcome): void {
  const { job, check } = outcome;
  if (!check) return;
  console.log(`  rows: ours ${check.oursRows.toLocaleString('en')}, ogr2ogr ${check.ogrRows.toLocaleString('en')} (generated ${job.expected.toLocaleString('en')})`);
  console.log(`  columns: ours ${check.oursColumn}; ogr2ogr ${check.ogrColumn}`);
  if (check.notCompared) console.log(`  sample of ${check.sampled.toLocaleString('en')} ids not compared: ${check.notCompared}`);
  else
    console.log(
      `  sample of ${check.sampled.toLocaleString('en')} ids: ${check.mismatches} geometr${check.mismatches === 1 ? 'y differs' : 'ies differ'} (missing, other SRID, or not ST_Equals); ` +
        `${check.identicalEwkb} byte-identical EWKB; names differ: ${check.namesDiffer ?? 'n/a (no name column in one table)'}`,
    );
  if (check.oursRows !== check.ogrRows) outcome.problems.push(`row counts differ: ours ${check.oursRows}, ogr2ogr ${check.ogrRows}`);
  if (check.mismatches > 0) outcome.problems.push(`${check.mismatches} of ${check.sampled} sampled geometries differ${check.notCompared ? ` (${check.notCompared})` : ''}`);
  for (const p of outcome.problems) console.log(`  !!! MISMATCH: ${p}`);
}

function summarise(outcomes: Outcome[], baselineOnly: boolean): void {
  console.log('\nfile               rows        ogr2ogr s  RSS MB   civic-etl s  RSS MB   ratio');
  for (const o of outcomes) {
    const ours = o.ours
      ? `${o.ours.seconds.toFixed(1).padStart(11)}  ${o.ours.peakRssMb.toFixed(0).padStart(6)}   ${(o.ogr.seconds / o.ours.seconds).toFixed(2)}×`
      : o.oursFailure
        ? '     FAILED'
        : '          —';
    console.log(`${basename(o.job.file).padEnd(18)} ${o.job.expected.toLocaleString('en').padStart(9)}  ${o.ogr.seconds.toFixed(1).padStart(11)}  ${o.ogr.peakRssMb.toFixed(0).padStart(6)}  ${ours}`);
  }
  if (baselineOnly) {
    console.log('\nBENCH_GEO_ONLY=ogr2ogr: baseline alone, no RESULT line');
    return;
  }
  const failed = outcomes.filter((o) => !o.ours);
  if (failed.length > 0) {
    throw new Error(`civic-etl load failed on ${failed.map((o) => basename(o.job.file)).join(', ')}: no RESULT (see the output above)`);
  }
  const ratios = outcomes.map((o) => ({ file: basename(o.job.file), ratio: o.ogr.seconds / o.ours!.seconds }));
  const worst = ratios.reduce((a, b) => (b.ratio < a.ratio ? b : a));
  const oursTotal = outcomes.reduce((s, o) => s + o.ours!.seconds, 0);
  const ogrTotal = outcomes.reduce((s, o) => s + o.ogr.seconds, 0);
  const problems = outcomes.flatMap((o) => o.problems.map((p) => `${basename(o.job.file)}: ${p}`));
  for (const o of outcomes.filter((x) => x.ogrMakeValid)) {
    console.log(`with -makevalid (ogr2ogr validating and repairing as we do): ${basename(o.job.file)} ${o.ogrMakeValid!.seconds.toFixed(1)} s, ${(o.ogrMakeValid!.seconds / o.ours!.seconds).toFixed(2)}×`);
  }
  console.log(
    `\nthe ratio below is the smallest of the per-file ratios of medians (${worst.file}), against targets of ≥ 1.5× (GeoJSON, CSV) and ≥ 1.0× (zipped shapefile); ours and baseline are the medians' sums, in seconds`,
  );
  if (problems.length > 0) console.log(`\n!!! ${problems.length} CHECK${problems.length === 1 ? '' : 'S'} FAILED: the loads do not agree\n${problems.map((p) => `!!!   ${p}`).join('\n')}\n`);
  console.log(resultLine('geo', oursTotal, ogrTotal, worst.ratio, 's'));
  if (problems.length > 0) process.exitCode = 1;
}

function printRun(label: string, r: Run): void {
  console.log(`  ${label} ${r.seconds.toFixed(1).padStart(7)} s, peak RSS ${r.peakRssMb.toFixed(0).padStart(4)} MB${r.note ? `  (${r.note})` : ''}`);
}

/** The runs' median time (the mean of the middle two for an even count) and their largest peak RSS. */
function medianRun(runs: Run[]): Run {
  const seconds = median(runs.map((r) => r.seconds));
  const closest = runs.reduce((a, b) => (Math.abs(b.seconds - seconds) < Math.abs(a.seconds - seconds) ? b : a));
  return { seconds, peakRssMb: Math.max(...runs.map((r) => r.peakRssMb)), note: closest.note };
}

/** The last lines a command wrote, without GNU time's report (which starts "Command being timed"). */
const tail = (s: string, lines = 20) =>
  s
    .replace(/\n?(Command exited with non-zero status \d+\n)?\s*Command being timed:[\s\S]*$/, '')
    .trim()
    .split('\n')
    .slice(-lines)
    .join('\n');
const indent = (s: string) =>
  s
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n');
