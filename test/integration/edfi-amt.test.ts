/**
 * The AMT-equivalent views of the Ed-Fi example (pipelines/edfi/pipeline.yaml), end to end over a
 * generated district (local/edfi-district.ts) served by the stand-in ODS / API: fetch → stage →
 * clean → views → Parquet, a full run and then the next school day incrementally (change queries,
 * a corrected and a deleted event, a withdrawal, a new student, and an enrolment's entry date
 * corrected as a key change, served at /keyChanges). After each run the views' figures
 * are compared with test/helpers/amt_figures.py, which computes them from the district's raw
 * records with the Python standard library (no civic-etl code, no SQL), and every exported view's
 * latest Parquet file is read back with hyparquet and must hold the view's rows.
 */
import { createHash, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineDefinition, PipelineInput } from '../../contract/definition.ts';
import { loadPipeline } from '../../contract/load.ts';
import { readJsonSecret, s3Client, secretsClient } from '../../functions/common/aws.ts';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { latestKey } from '../../functions/combine/exports.ts';
import { fetchEdfi } from '../../functions/get/fetch-edfi.ts';
import { stageObject } from '../../functions/stage/stage-object.ts';
import { DISTRICT_RESOURCES, generateDistrict, serveDay, serveDistrict, type EdfiDistrict } from '../../local/edfi-district.ts';
import { EDFI_CLIENT, startEdfiServer, type EdfiServer } from '../../local/edfi-stand-in.ts';
import { freshBucket, freshProject, rows } from './support.ts';

const PIPELINE_FILE = fileURLToPath(new URL('../../pipelines/edfi/pipeline.yaml', import.meta.url));
const FIGURES_SCRIPT = fileURLToPath(new URL('../helpers/amt_figures.py', import.meta.url));
const MAPS = ['descriptor_map.json', 'district-descriptors.csv'].map((f) => fileURLToPath(new URL(`../../pipelines/edfi/maps/${f}`, import.meta.url)));
const PROJECT = 'it_edfi_amt';
/** Small enough for the test's minute, large enough for chronic absentees, withdrawals and section-only absences in every school. */
const STUDENTS = 100;

type Counts = Record<string, number>;
interface Figures {
  as_of: string;
  chronic: Record<string, Counts>;
  chronic_per_school: Counts;
  ews: Record<string, Counts>;
  demographics: Counts;
  unmapped: Counts;
  rows: Counts;
}

let ods: EdfiServer;
let district: EdfiDistrict;
let pipeline: PipelineDefinition;
let pool: pg.Pool;
let bucket: string;
let scratch: string;
/** Homeroom attendance the generator does not write (its section-only absences are in subject sections), added to the ODS. */
let homeroomEvents: Record<string, unknown>[];

/** A few homeroom section attendance events, in the spec's shapes: Ed-Fi and district codes, absences, a tardy, a presence. */
function homeroomAttendance(d: EdfiDistrict): Record<string, unknown>[] {
  const days = d.schoolDays();
  const categories = [
    'uri://ed-fi.org/AttendanceEventCategoryDescriptor#Excused Absence',
    'uri://grandbend.edu/AttendanceEventCategoryDescriptor#UNX',
    'uri://ed-fi.org/AttendanceEventCategoryDescriptor#Tardy',
    'uri://ed-fi.org/AttendanceEventCategoryDescriptor#In Attendance',
    'uri://grandbend.edu/AttendanceEventCategoryDescriptor#VIRT', // nobody maps it
  ];
  return d
    .records('studentSectionAssociations')
    .filter((a) => a.homeroomIndicator === true)
    .slice(0, 10)
    .map((a, i) => {
      const id = createHash('md5').update(`homeroom-event|${i}`).digest('hex');
      const stamp = '2026-05-01T15:30:00Z';
      return {
        id,
        sectionReference: a.sectionReference,
        studentReference: a.studentReference,
        eventDate: days[10 + i * 13]!,
        attendanceEventCategoryDescriptor: categories[i % categories.length]!,
        _etag: String(1000 + i),
        _lastModifiedDate: stamp,
      };
    });
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'edfi-amt-'));
  district = generateDistrict({ students: STUDENTS });
  ods = await startEdfiServer();
  serveDistrict(ods, district);
  homeroomEvents = homeroomAttendance(district);
  ods.write(
    'studentSectionAttendanceEvents',
    homeroomEvents.map((e) => structuredClone(e)),
  );
  const secret = `it-edfi-amt-${randomUUID()}`;
  await secretsClient().send(new CreateSecretCommand({ Name: secret, SecretString: JSON.stringify(EDFI_CLIENT) }));
  // the example as it ships, pointed at the stand-in
  const example = loadPipeline(PIPELINE_FILE);
  const input = { ...example, project: PROJECT, edfi: example.edfi.map((api) => ({ ...api, url: ods.base, secret })) } as PipelineInput;
  ({ pipeline, pool } = await freshProject(input));
  bucket = await freshBucket('it-edfi-amt');
});
afterAll(() => {
  ods?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** One fetch run of the example's API, every object staged and cleaned (exports on) in order. */
async function run(at: string): Promise<void> {
  const s3 = s3Client();
  const outcome = await fetchEdfi({ s3, bucket, readSecret: readJsonSecret, sleep: async () => undefined, now: () => new Date(at) }, pipeline, 'ods');
  if (outcome.status !== 'fetched') throw new Error(`nothing fetched: ${outcome.message}`);
  const queue: ({ stage: string } | { clean: number })[] = outcome.results.flatMap((r) => r.parts).map((key) => ({ stage: key }));
  const stageDeps = { pool, s3, pipeline, notifyClean: async ({ loadId }: { loadId: number }) => void queue.push({ clean: loadId }) };
  while (queue.length > 0) {
    const task = queue.shift()!;
    if ('stage' in task) await stageObject(stageDeps, { bucket, key: task.stage });
    else {
      const cleaned = await cleanLoad({ pool, pipeline, exports: { s3, bucket } }, task.clean);
      if (cleaned.status === 'failed') throw new Error(`load ${task.clean} failed: ${cleaned.error}`);
    }
  }
}

/** The district's records as the ODS holds them now, through the Python script. */
function expectedFigures(): Figures {
  const records: Record<string, unknown[]> = Object.fromEntries(DISTRICT_RESOURCES.map((r) => [r, [...district.records(r)]]));
  records.studentSectionAttendanceEvents!.push(...homeroomEvents);
  const file = join(scratch, `district-${district.today}.json`);
  writeFileSync(file, JSON.stringify({ records, maps: MAPS, today: new Date().toISOString().slice(0, 10) }));
  return JSON.parse(execFileSync('python3', [FIGURES_SCRIPT, file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })) as Figures;
}

const keyed = (list: (Counts & { key: string })[]) => Object.fromEntries(list.map(({ key, ...counts }) => [key, counts]));

/** The same figures, read from the views. */
async function viewFigures(names: readonly string[]): Promise<Figures> {
  const q = <T>(sql: string) => rows<T>(pool, sql.replace(/\{\{schema\}\}/g, PROJECT));
  const [asOf] = await q<{ as_of: string }>(`SELECT to_char(as_of, 'YYYY-MM-DD') AS as_of FROM {{schema}}.amt_as_of`);
  const chronic = await q<Counts & { key: string }>(
    `SELECT student_school_key AS key, count(*)::int AS days_enrolled,
            sum(reported_as_present_at_school)::int AS present_school, sum(reported_as_absent_from_school)::int AS absent_school,
            sum(reported_as_present_at_home_room)::int AS present_homeroom, sum(reported_as_absent_from_home_room)::int AS absent_homeroom,
            sum(reported_as_is_present_in_all_sections)::int AS present_all_sections, sum(reported_as_absent_from_any_section)::int AS absent_any_section
       FROM {{schema}}.chronic_absenteeism_attendance_fact GROUP BY 1`,
  );
  const perSchool = await q<{ school: string; n: number }>(
    `SELECT school_key AS school, count(*)::int AS n FROM (
       SELECT school_key, student_school_key FROM {{schema}}.chronic_absenteeism_attendance_fact
        GROUP BY 1, 2 HAVING sum(reported_as_absent_from_school) * 10 >= count(*)) t GROUP BY 1`,
  );
  const flags = (name: string, column: string) => `sum(${column})::int AS ${name}`;
  const ews = await q<Counts & { key: string }>(
    `SELECT concat(student_key, '-', school_key) AS key, count(*)::int AS days, ${[
      flags('instructional_days', 'is_instructional_day'),
      flags('present_school', 'is_present_school'),
      flags('excused_school', 'is_absent_from_school_excused'),
      flags('unexcused_school', 'is_absent_from_school_unexcused'),
      flags('tardy_school', 'is_tardy_to_school'),
      flags('present_homeroom', 'is_present_homeroom'),
      flags('excused_homeroom', 'is_absent_from_homeroom_excused'),
      flags('unexcused_homeroom', 'is_absent_from_homeroom_unexcused'),
      flags('tardy_homeroom', 'is_tardy_to_homeroom'),
      flags('present_any_class', 'is_present_any_class'),
      flags('excused_any_class', 'is_absent_from_any_class_excused'),
      flags('unexcused_any_class', 'is_absent_from_any_class_unexcused'),
      flags('tardy_any_class', 'is_tardy_to_any_class'),
      flags('state_offense_days', 'count_by_day_of_state_offenses'),
      flags('conduct_offense_days', 'count_by_day_of_conduct_offenses'),
    ].join(', ')}
       FROM {{schema}}.student_early_warning_fact GROUP BY 1`,
  );
  const demographics = await q<{ key: string; n: number }>(`SELECT demographic_key AS key, count(*)::int AS n FROM {{schema}}.student_school_demographics_bridge GROUP BY 1`);
  const unmapped = await q<{ key: string; n: number }>(`SELECT dataset || '|' || value AS key, rows AS n FROM {{schema}}.descriptors_without_constant`);
  const counts: Counts = {};
  for (const name of names) counts[name] = (await q<{ n: number }>(`SELECT count(*)::int AS n FROM {{schema}}.${name}`))[0]!.n;
  return {
    as_of: asOf!.as_of,
    chronic: keyed(chronic),
    chronic_per_school: Object.fromEntries(perSchool.map((r) => [r.school, r.n])),
    ews: keyed(ews),
    demographics: Object.fromEntries(demographics.map((r) => [r.key, r.n])),
    unmapped: Object.fromEntries(unmapped.map((r) => [r.key, r.n])),
    rows: counts,
  };
}

/** Compare, figure by figure, and return a few headline figures for the record. */
function compare(views: Figures, expected: Figures) {
  expect(views.as_of).toBe(expected.as_of);
  expect(views.rows).toEqual(expected.rows);
  expect(views.chronic_per_school).toEqual(expected.chronic_per_school);
  // every student-school with an instructional day enrolled (the fact has no row for the others)
  const chronic = Object.fromEntries(Object.entries(expected.chronic).filter(([, c]) => c.days_enrolled! > 0));
  expect(views.chronic).toEqual(chronic);
  // the flags that are never set come out 0 in the view; the script only counts those it saw
  const ews = Object.fromEntries(Object.entries(views.ews).map(([k, c]) => [k, Object.fromEntries(Object.entries(c).filter(([, n]) => n !== 0))]));
  const expectedEws = Object.fromEntries(Object.entries(expected.ews).map(([k, c]) => [k, Object.fromEntries(Object.entries(c).filter(([, n]) => n !== 0))]));
  expect(ews).toEqual(expectedEws);
  expect(views.demographics).toEqual(expected.demographics);
  expect(views.unmapped).toEqual(expected.unmapped);
  const sum = (field: string) => Object.values(expected.chronic).reduce((n, c) => n + (c[field] ?? 0), 0);
  const ewsSum = (field: string) => Object.values(expected.ews).reduce((n, c) => n + (c[field] ?? 0), 0);
  return {
    asOf: expected.as_of,
    chronicPerSchool: expected.chronic_per_school,
    studentSchools: Object.keys(chronic).length,
    daysAbsentFromSchool: sum('absent_school'),
    daysAbsentFromAnySection: sum('absent_any_section'),
    homeroomAbsences: sum('absent_homeroom'),
    homeroomPresences: sum('present_homeroom'),
    excused: ewsSum('excused_school'),
    unexcused: ewsSum('unexcused_school'),
    tardy: ewsSum('tardy_school'),
    stateOffenseDays: ewsSum('state_offense_days'),
    conductOffenseDays: ewsSum('conduct_offense_days'),
    demographics: expected.demographics,
    unmapped: expected.unmapped,
    rows: expected.rows,
  };
}

/** The latest Parquet export of each exported view, read back: its run and rows. */
async function latestParquet(view: string): Promise<{ run: string; rows: Record<string, unknown>[] }> {
  const reader = (await import('hyparquet')) as unknown as { parquetReadObjects(o: { file: ArrayBuffer }): Promise<Record<string, unknown>[]> };
  const get = async (key: string) => {
    const out = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const bytes = Buffer.from(await out.Body!.transformToByteArray());
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  };
  const latest = JSON.parse(Buffer.from(await get(latestKey(PROJECT, view))).toString('utf8')) as { run: string; files: { parquet?: string } };
  expect(latest.files.parquet, `${view}: latest.json names a Parquet file`).toBeDefined();
  return { run: latest.run, rows: await reader.parquetReadObjects({ file: await get(latest.files.parquet!) }) };
}

async function checkExports(previousRuns: Map<string, string> = new Map()): Promise<Map<string, string>> {
  const runs = new Map<string, string>();
  for (const view of pipeline.views.filter((v) => v.export)) {
    const parquet = await latestParquet(view.name);
    const [count] = await rows<{ n: number }>(pool, `SELECT count(*)::int AS n FROM ${PROJECT}.${view.name}`);
    const columns = await rows<{ name: string }>(pool, `SELECT column_name AS name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, [
      PROJECT,
      view.name,
    ]);
    expect(parquet.rows.length, `${view.name}: Parquet rows`).toBe(count!.n);
    expect(Object.keys(parquet.rows[0] ?? {}), `${view.name}: Parquet columns`).toEqual(columns.map((c) => c.name));
    runs.set(view.name, parquet.run);
  }
  // a view whose figures move with the day was exported again by the incremental run
  for (const view of ['chronic_absenteeism_attendance_fact', 'student_early_warning_fact', 'student_school_dim']) {
    if (previousRuns.has(view)) expect(runs.get(view), `${view}: a new export run`).not.toBe(previousRuns.get(view));
  }
  return runs;
}

const AMT_VIEWS = [
  'school_dim',
  'local_education_agency_dim',
  'student_school_dim',
  'student_section_dim',
  'staff_section_dim',
  'section_dim',
  'date_dim',
  'grading_period_dim',
  'chronic_absenteeism_attendance_fact',
  'student_early_warning_fact',
];

describe('the Ed-Fi example: AMT-equivalent views over a generated district', () => {
  let runs: Map<string, string>;

  it('full run: the views match the independent computation', async () => {
    await run('2026-05-16T05:00:00Z');
    const figures = compare(await viewFigures(AMT_VIEWS), expectedFigures());
    console.info(`full run (${STUDENTS} students):`, JSON.stringify(figures));
    // the district is realistic enough to exercise every figure
    expect(Object.keys(figures.chronicPerSchool)).toHaveLength(3);
    expect(Math.min(figures.daysAbsentFromAnySection, figures.homeroomAbsences, figures.homeroomPresences, figures.excused, figures.unexcused, figures.tardy)).toBeGreaterThan(0);
    expect(figures.conductOffenseDays + figures.stateOffenseDays).toBeGreaterThan(0);
  });

  it('full run: every exported view has its Parquet file with the view’s rows', async () => {
    runs = await checkExports();
    expect([...runs.keys()].sort()).toEqual([...AMT_VIEWS, 'student_school_demographics_bridge'].sort());
  });

  it('incremental run (the next school day): the views match again, and are exported again', async () => {
    // with a natural-key change (an enrolment's entry date corrected), served at /keyChanges
    const day = district.advance({ keyChange: true });
    expect(day.keyChanges).toHaveLength(1);
    serveDay(ods, day);
    await run(`${day.date}T05:00:00Z`);
    const figures = compare(await viewFigures(AMT_VIEWS), expectedFigures());
    console.info(`incremental run (${day.date}, ${day.keyChanges.length} key change):`, JSON.stringify(figures));
    expect(figures.asOf).toBe(day.date);
    await checkExports(runs);
  });
});
