/**
 * `npm run bench -- profile`: profile the same generated CSV files with `civic-etl profile` and
 * with csv-detective (data.gouv.fr's detector, from PyPI, installed into .local/venv), in one run.
 *
 * - Speed and memory: a 1,000,000-row, 20-column file (ints, floats, dates, datetimes, French
 *   postcodes and commune codes, SIREN, emails, lat/lon, URLs, UUIDs, phone numbers, free text),
 *   both tools reading every row, alternately BENCH_RUNS times (default 3). Prints each run's wall
 *   time and peak RSS, each side's median and spread, and the ratio of the medians.
 * - Agreement: on that file and a few smaller ones, csv-detective is the oracle for the columns
 *   whose concept both tools have; prints each column's verdicts and the agreement rate.
 *
 * Ends with `RESULT profile ours=<median s> baseline=<median s> ratio=<x> unit=s`.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { ALL_FORMATS } from '../functions/profile/formats/index.ts';
import { measure } from './measure.ts';
import { mulberry32 as rng } from '../scripts/random.ts';

const ROOT = join(import.meta.dirname, '..');
const DIR = join(ROOT, '.local/bench');
const VENV_PYTHON = join(ROOT, '.local/venv/bin/python');
const CSV_DETECTIVE = 'csv-detective==0.13.0';

// Public facts: real French postcodes and INSEE commune codes of large towns.
const POSTCODES = [
  '75001',
  '75008',
  '75011',
  '75015',
  '75020',
  '69001',
  '69003',
  '69007',
  '13001',
  '13008',
  '31000',
  '31500',
  '33000',
  '33800',
  '44000',
  '59000',
  '67000',
  '06000',
  '34000',
  '35000',
  '38000',
  '21000',
  '37000',
  '49000',
  '51100',
  '76000',
  '80000',
  '86000',
  '87000',
  '29200',
  '45000',
  '63000',
  '64000',
  '66000',
  '72000',
  '74000',
  '57000',
  '54000',
  '25000',
  '30000',
];
const COMMUNES: [string, string][] = [
  ['75056', 'Paris'],
  ['69123', 'Lyon'],
  ['13055', 'Marseille'],
  ['31555', 'Toulouse'],
  ['06088', 'Nice'],
  ['44109', 'Nantes'],
  ['67482', 'Strasbourg'],
  ['34172', 'Montpellier'],
  ['33063', 'Bordeaux'],
  ['59350', 'Lille'],
  ['35238', 'Rennes'],
  ['51454', 'Reims'],
  ['38185', 'Grenoble'],
  ['21231', 'Dijon'],
  ['49007', 'Angers'],
  ['30189', 'Nîmes'],
  ['63113', 'Clermont-Ferrand'],
  ['37261', 'Tours'],
  ['87085', 'Limoges'],
  ['80021', 'Amiens'],
];
const DEPARTEMENTS = ['01', '06', '13', '2A', '2B', '31', '33', '34', '35', '38', '44', '59', '67', '69', '75', '971', '974'];
const WORDS = ['association', 'sportive', 'culturelle', 'quartier', 'jeunesse', 'école', 'musique', 'jardin', 'solidaire', 'numérique', 'santé', 'emploi', 'formation', 'théâtre', 'bibliothèque'];

function luhnComplete(digits: string): string {
  for (let d = 0; d <= 9; d++) {
    const v = digits + d;
    let sum = 0;
    for (let i = 0; i < v.length; i++) {
      let x = Number(v[v.length - 1 - i]);
      if (i % 2 === 1) x *= 2;
      sum += x > 9 ? x - 9 : x;
    }
    if (sum % 10 === 0) return v;
  }
  throw new Error('unreachable');
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

async function writeCsv(path: string, header: string[], rows: number, row: (i: number, r: () => number) => (string | number)[], seed: number): Promise<void> {
  if (existsSync(path)) return;
  const out = createWriteStream(`${path}.part`);
  const r = rng(seed);
  const quote = (v: string | number) => {
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  out.write(`${header.map(quote).join(',')}\n`);
  let buf = '';
  for (let i = 0; i < rows; i++) {
    buf += `${row(i, r).map(quote).join(',')}\n`;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.write(buf);
  out.end();
  await once(out, 'finish');
  execFileSync('mv', [`${path}.part`, path]);
}

const MAIN_HEADER = [
  'id',
  'siren',
  'code postal',
  'code commune insee',
  'commune',
  'email',
  'latitude',
  'longitude',
  'date_creation',
  'date_maj',
  'montant',
  'effectif',
  'taux',
  'annee',
  'actif',
  'url',
  'uuid',
  'telephone',
  'departement',
  'description',
];

function mainRow(i: number, r: () => number): (string | number)[] {
  const [insee, commune] = COMMUNES[Math.floor(r() * COMMUNES.length)]!;
  const y = 2015 + Math.floor(r() * 10);
  const m = 1 + Math.floor(r() * 12);
  const d = 1 + Math.floor(r() * 28);
  const hex = () =>
    Math.floor(r() * 0x10000)
      .toString(16)
      .padStart(4, '0');
  return [
    i + 1,
    luhnComplete(String(100_000_00 + Math.floor(r() * 899_999_99))),
    POSTCODES[Math.floor(r() * POSTCODES.length)]!,
    insee,
    commune,
    `contact${i}@${['mairie', 'asso', 'example'][i % 3]}.fr`,
    (42.5 + r() * 8.5).toFixed(5),
    (-4.5 + r() * 12).toFixed(5),
    `${y}-${pad(m)}-${pad(d)}`,
    `${y}-${pad(m)}-${pad(d)}T${pad(Math.floor(r() * 24))}:${pad(Math.floor(r() * 60))}:00+01:00`,
    (r() * 100_000).toFixed(2),
    Math.floor(r() * 500),
    r().toFixed(4),
    2000 + Math.floor(r() * 25),
    r() < 0.5 ? 'true' : 'false',
    `https://www.${['ville', 'asso', 'data'][i % 3]}-${i % 97}.fr/page/${i}`,
    `${hex()}${hex()}-${hex()}-4${hex().slice(1)}-a${hex().slice(1)}-${hex()}${hex()}${hex()}`,
    `0${1 + Math.floor(r() * 5)}${String(Math.floor(r() * 1e8)).padStart(8, '0')}`,
    DEPARTEMENTS[Math.floor(r() * DEPARTEMENTS.length)]!,
    Array.from({ length: 3 + Math.floor(r() * 6) }, () => WORDS[Math.floor(r() * WORDS.length)]).join(' ') + (r() < 0.3 ? ', avec virgule' : ''),
  ];
}

/** csv-detective's name for each of our base types. */
const BASE_EQUIVALENT: Record<string, string> = {
  integer: 'int',
  number: 'float',
  boolean: 'bool',
  year: 'year',
  date: 'date',
  datetime: 'datetime_naive',
  datetime_tz: 'datetime_aware',
  json: 'json',
  string: 'string',
};
/** csv-detective splits some concepts finer than we do; these of its names mean the same as ours. */
const SAME_CONCEPT: Record<string, string> = {
  latitude_wgs_fr_metropole: 'latitude_wgs',
  longitude_wgs_fr_metropole: 'longitude_wgs',
};

function ourEquivalent(column: { type: string; format: string | null }): string {
  if (column.format) {
    const f = ALL_FORMATS.find((x) => x.name === column.format);
    return f?.csvDetective ?? `(ours: ${column.format})`;
  }
  return BASE_EQUIVALENT[column.type] ?? column.type;
}

function ensureCsvDetective(): void {
  try {
    execFileSync(VENV_PYTHON, ['-c', 'import csv_detective'], { stdio: 'ignore' });
  } catch {
    console.log(`installing ${CSV_DETECTIVE} into .local/venv (one time)…`);
    if (!existsSync(VENV_PYTHON)) execFileSync('python3', ['-m', 'venv', join(ROOT, '.local/venv')], { stdio: 'inherit' });
    execFileSync(join(ROOT, '.local/venv/bin/pip'), ['install', '-q', CSV_DETECTIVE], { stdio: 'inherit' });
  }
}

const CSV_DETECTIVE_SCRIPT = `
import json, sys
from csv_detective import routine
r = routine(sys.argv[1], num_rows=-1, save_results=False, output_profile=True)
print(json.dumps({k: r[k] for k in ("encoding", "separator", "header_row_idx", "total_lines", "nb_duplicates", "columns")}, default=str))
`;

interface Verdict {
  file: string;
  column: string;
  ours: string;
  theirs: string;
}

async function runBoth(file: string, locales: string): Promise<{ ours: Awaited<ReturnType<typeof measure>>; theirs: Awaited<ReturnType<typeof measure>>; verdicts: Verdict[] }> {
  const ours = await measure(process.execPath, [join(ROOT, 'bin/civic-etl.mjs'), 'profile', file, '--json', '--locale', locales], { ...process.env, NODE_NO_WARNINGS: '1' });
  if (ours.code !== 0) throw new Error(`civic-etl profile failed on ${file}:\n${ours.stderr}`);
  const theirs = await measure(VENV_PYTHON, ['-c', CSV_DETECTIVE_SCRIPT, file]);
  if (theirs.code !== 0) throw new Error(`csv-detective failed on ${file}:\n${theirs.stderr.slice(-2000)}`);
  const o = JSON.parse(ours.stdout) as { columns: { name: string; type: string; format: string | null }[] };
  const t = JSON.parse(theirs.stdout.trim().split('\n').at(-1)!) as { columns: Record<string, { format: string }> };
  const verdicts = o.columns.map((c) => {
    const theirsRaw = t.columns[c.name]?.format ?? '(missing)';
    return { file, column: c.name, ours: ourEquivalent(c), theirs: SAME_CONCEPT[theirsRaw] ?? theirsRaw };
  });
  return { ours, theirs, verdicts };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function main(): Promise<void> {
  if (!existsSync('/usr/bin/time')) throw new Error('this benchmark measures with GNU time: apt-get install time');
  mkdirSync(DIR, { recursive: true });
  ensureCsvDetective();
  const big = join(DIR, 'profile-1m.csv');
  console.log('generating inputs (once; kept in .local/bench)…');
  await writeCsv(big, MAIN_HEADER, 1_000_000, mainRow, 42);
  const small = join(DIR, 'profile-5k.csv');
  await writeCsv(small, MAIN_HEADER, 5_000, mainRow, 7);
  const mb = statSync(big).size / 1e6;

  // ours and csv-detective alternately, BENCH_RUNS times: the medians hold better under a busy machine than one run each
  const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 3) || 3);
  console.log(`\nspeed: ${big} (${mb.toFixed(0)} MB, 1,000,000 rows × ${MAIN_HEADER.length} columns), every row read by both, ${runs} run${runs === 1 ? '' : 's'} each, alternately`);
  const all: Awaited<ReturnType<typeof runBoth>>[] = [];
  for (let i = 0; i < runs; i++) {
    const run = await runBoth(big, 'fr');
    all.push(run);
    console.log(
      `  run ${i + 1}: civic-etl profile ${run.ours.seconds.toFixed(1)} s (peak RSS ${run.ours.peakRssMb.toFixed(0)} MB), csv-detective ${run.theirs.seconds.toFixed(1)} s (peak RSS ${run.theirs.peakRssMb.toFixed(0)} MB)`,
    );
  }
  const main = all[0]!;
  const ours = median(all.map((r) => r.ours.seconds));
  const theirs = median(all.map((r) => r.theirs.seconds));
  const spread = (xs: number[]) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)} s`;
  console.log(`  civic-etl profile : median ${ours.toFixed(1)} s (${spread(all.map((r) => r.ours.seconds))}), peak RSS ${Math.max(...all.map((r) => r.ours.peakRssMb)).toFixed(0)} MB`);
  console.log(`  csv-detective     : median ${theirs.toFixed(1)} s (${spread(all.map((r) => r.theirs.seconds))}), peak RSS ${Math.max(...all.map((r) => r.theirs.peakRssMb)).toFixed(0)} MB`);

  const verdicts = [...main.verdicts];
  for (const [file, locales] of [
    [small, 'fr'],
    [join(ROOT, 'pipelines/chicago/data/community_snapshot.csv'), 'us'],
    [join(ROOT, 'pipelines/chicago/data/programs.csv'), 'us'],
  ] as const) {
    verdicts.push(...(await runBoth(file, locales)).verdicts);
  }
  const comparable = verdicts.filter((v) => !v.ours.startsWith('(ours'));
  const agree = comparable.filter((v) => v.ours === v.theirs);
  console.log('\nagreement (csv-detective as the oracle), per column:');
  for (const v of verdicts) {
    const mark = v.ours.startsWith('(ours') ? '  n/a' : v.ours === v.theirs ? '  ok ' : '  DIFF';
    console.log(`${mark} ${v.file.split('/').at(-1)} · ${v.column}: ours=${v.ours} csv-detective=${v.theirs}`);
  }
  console.log(`agreement: ${agree.length}/${comparable.length} comparable columns (${((100 * agree.length) / comparable.length).toFixed(1)} %)`);

  console.log(`\nRESULT profile ours=${ours.toFixed(2)} baseline=${theirs.toFixed(2)} ratio=${(theirs / ours).toFixed(2)} unit=s`);
}
