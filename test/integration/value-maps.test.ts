import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import type { CleanDeps } from '../../functions/clean/clean-load.ts';
import type { StageDeps } from '../../functions/stage/stage-object.ts';
import type { PipelineDefinition, PipelineInput } from '../../contract/definition.ts';
import { freshBucket, freshProject, rows } from './support.ts';
import { deliver as deliverObject } from '../helpers/deliver.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/value-maps/', import.meta.url));

const columns = (unmapped: 'keep' | 'quarantine') => [
  { name: 'student_id', source: 'StudentUSI', type: 'integer' as const },
  { name: 'event_date', source: 'EventDate', type: 'date' as const },
  { name: 'category', source: 'AttendanceEventCategoryDescriptor', map: 'attendance_category', unmapped },
  // the same source column, unmapped: the code as the district sent it
  { name: 'category_code', source: 'AttendanceEventCategoryDescriptor' },
  { name: 'grade', source: 'GradeLevel', map: 'grade_level', unmapped: 'null' as const },
];

const definition: PipelineInput = {
  project: 'it_value_maps',
  suppliers: [{ name: 'district' }],
  valueMaps: [
    { name: 'attendance_category', file: `${FIXTURES}attendance-event-categories.csv` },
    { name: 'grade_level', file: `${FIXTURES}grade-levels.yaml` },
  ],
  datasets: [
    { name: 'attendance', source: { type: 'upload', supplier: 'district' }, clean: { columns: columns('keep') } },
    { name: 'attendance_strict', source: { type: 'upload', supplier: 'district' }, clean: { columns: columns('quarantine') } },
  ],
  views: [
    {
      name: 'absences',
      datasets: ['attendance'],
      sql: `SELECT count(*) FILTER (WHERE category = 'Excused Absence') AS excused,
                   count(*) FILTER (WHERE category = 'Unexcused Absence') AS unexcused
              FROM {{schema}}.attendance`,
    },
  ],
};

/** Attendance events as an Ed-Fi API export (descriptor URIs) mixed with a district system's bare codes. */
const EVENTS = [
  'StudentUSI,EventDate,AttendanceEventCategoryDescriptor,GradeLevel',
  '100,2024-09-03,uri://ed-fi.org/AttendanceEventCategoryDescriptor#Excused Absence,09', // line 2
  '101,2024-09-03,uri://district.example.org/AttendanceEventCategoryDescriptor#EXA,9',
  '102,2024-09-04,URI://DISTRICT.EXAMPLE.ORG/attendanceeventcategorydescriptor#exa,10', // case differs
  '103,2024-09-04, unx ,K', // a bare code value, with spaces
  '104,2024-09-05,Unexcused Absence,10',
  '105,2024-09-05,uri://ed-fi.org/AttendanceEventCategoryDescriptor#Tardy,PK', // PK: no grade entry
  '106,2024-09-06,SCH,9', // line 8: not in the map
  '107,2024-09-06,sch ,9', // line 9: the same unmapped value, spelled otherwise
  '108,2024-09-06,Field Trip,9', // line 10: not in the map
  '109,2024-09-09,,9', // line 11: empty: neither mapped nor reported
  '',
].join('\n');

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;

/** Upload, stage and clean one file; returns the clean outcome. */
const deliver = (dataset: string, file: string, body: string, pipeline: PipelineDefinition = cleanDeps.pipeline) =>
  deliverObject({ stage: stageDeps, clean: { ...cleanDeps, pipeline } }, bucket, `incoming/district/${dataset}/${file}`, body);

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-value-maps');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline };
});

describe('value maps', () => {
  it('maps descriptor URIs and code values to the constants, ignoring case and spaces, and keeps the unmapped ones', async () => {
    const outcome = await deliver('attendance', 'events.csv', EVENTS);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 10, rowsQuarantined: 0 });
    const clean = await rows(cleanDeps.pool, 'SELECT student_id, category, category_code, grade FROM it_value_maps.attendance ORDER BY student_id');
    expect(clean).toEqual([
      { student_id: 100, category: 'Excused Absence', category_code: 'uri://ed-fi.org/AttendanceEventCategoryDescriptor#Excused Absence', grade: 'Ninth grade' },
      { student_id: 101, category: 'Excused Absence', category_code: 'uri://district.example.org/AttendanceEventCategoryDescriptor#EXA', grade: 'Ninth grade' },
      { student_id: 102, category: 'Excused Absence', category_code: 'URI://DISTRICT.EXAMPLE.ORG/attendanceeventcategorydescriptor#exa', grade: 'Tenth grade' },
      { student_id: 103, category: 'Unexcused Absence', category_code: ' unx ', grade: 'Kindergarten' },
      { student_id: 104, category: 'Unexcused Absence', category_code: 'Unexcused Absence', grade: 'Tenth grade' },
      { student_id: 105, category: 'Tardy', category_code: 'uri://ed-fi.org/AttendanceEventCategoryDescriptor#Tardy', grade: null },
      { student_id: 106, category: 'SCH', category_code: 'SCH', grade: 'Ninth grade' },
      { student_id: 107, category: 'sch ', category_code: 'sch ', grade: 'Ninth grade' },
      { student_id: 108, category: 'Field Trip', category_code: 'Field Trip', grade: 'Ninth grade' },
      { student_id: 109, category: null, category_code: null, grade: 'Ninth grade' },
    ]);
  });

  it('lets a view count excused and unexcused absences by their constants', async () => {
    expect(await rows(cleanDeps.pool, 'SELECT excused::int, unexcused::int FROM it_value_maps.absences')).toEqual([{ excused: 3, unexcused: 2 }]);
  });

  it('reports the unmapped values of the load in the ledger, per column, most frequent first', async () => {
    const [load] = await rows<{ unmapped: unknown }>(cleanDeps.pool, `SELECT unmapped FROM etl.loads WHERE project = 'it_value_maps' AND dataset = 'attendance' ORDER BY id DESC LIMIT 1`);

    expect(load!.unmapped).toEqual([
      {
        column: 'category',
        map: 'attendance_category',
        policy: 'keep',
        rows: 3,
        distinct: 2,
        values: [
          { value: 'SCH', rows: 2 },
          { value: 'Field Trip', rows: 1 },
        ],
      },
      { column: 'grade', map: 'grade_level', policy: 'null', rows: 1, distinct: 1, values: [{ value: 'PK', rows: 1 }] },
    ]);
  });

  it('sends the rows of unmapped values to quarantine, with the rule map, when the column says so', async () => {
    const outcome = await deliver('attendance_strict', 'events.csv', EVENTS);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 7, rowsQuarantined: 3 });
    const loadId = (outcome as { loadId: number }).loadId;
    const quarantine = await rows(cleanDeps.pool, 'SELECT source_line::int AS line, column_name, raw_value, rule, reason FROM it_value_maps.attendance_strict_quarantine WHERE load_id = $1 ORDER BY 1', [
      loadId,
    ]);
    expect(quarantine).toEqual([
      { line: 8, column_name: 'category', raw_value: 'SCH', rule: 'map', reason: 'not in value map "attendance_category": SCH' },
      { line: 9, column_name: 'category', raw_value: 'sch ', rule: 'map', reason: 'not in value map "attendance_category": sch ' },
      { line: 10, column_name: 'category', raw_value: 'Field Trip', rule: 'map', reason: 'not in value map "attendance_category": Field Trip' },
    ]);
    const clean = await rows(cleanDeps.pool, 'SELECT student_id FROM it_value_maps.attendance_strict ORDER BY 1');
    expect(clean.map((r) => r.student_id)).toEqual([100, 101, 102, 103, 104, 105, 109]);
    const [ledger] = await rows(cleanDeps.pool, 'SELECT rows_loaded::int, rows_quarantined::int, unmapped -> 0 ->> $2 AS policy FROM etl.loads WHERE id = $1', [loadId, 'policy']);
    expect(ledger).toEqual({ rows_loaded: 7, rows_quarantined: 3, policy: 'quarantine' });
  });

  it('fails a load whose map reaches the database with conflicting entries, and leaves the clean table and views as they were', async () => {
    // an Ed-Fi code under two constants that cover as many codes each (3): neither is narrower, so none is chosen
    const conflicting = structuredClone(cleanDeps.pipeline);
    conflicting.valueMaps[0]!.entries!.push({ source: ' exa', constant: 'Unexcused Absence', descriptor: 'attendanceEventCategoryDescriptor', line: 42 });

    const outcome = await deliver('attendance', 'events-2.csv', 'StudentUSI,EventDate,AttendanceEventCategoryDescriptor,GradeLevel\n200,2024-10-01,EXA,9\n', conflicting);

    expect(outcome).toMatchObject({
      status: 'failed',
      error: expect.stringContaining(
        'value map "attendance_category" (' +
          `${FIXTURES}attendance-event-categories.csv) maps one source value to several constants, none narrower than the others: AttendanceEventCategoryDescriptor "EXA" → "Excused Absence" or "Unexcused Absence" (lines 6, 42)`,
      ),
    });
    const [ledger] = await rows(cleanDeps.pool, 'SELECT status, error IS NOT NULL AS has_error FROM etl.loads WHERE id = $1', [(outcome as { loadId: number }).loadId]);
    expect(ledger).toEqual({ status: 'failed', has_error: true });
    expect(await rows(cleanDeps.pool, 'SELECT count(*)::int AS n FROM it_value_maps.attendance')).toEqual([{ n: 10 }]);
    expect(await rows(cleanDeps.pool, 'SELECT excused::int, unexcused::int FROM it_value_maps.absences')).toEqual([{ excused: 3, unexcused: 2 }]);
  });
});
