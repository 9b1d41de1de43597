/**
 * Views that ask "is this an absence?" of the AMT's many-to-many descriptor map: the clean column
 * holds one constant (the narrowest), so the view joins the map kept as a table,
 * `<project>._value_maps`, on the raw descriptor (functions/combine/value-map-tables.ts).
 * Expected figures are counted by hand from the rows below and read from the map file with
 * JSON.parse, not from civic-etl.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import type { CleanDeps } from '../../functions/clean/clean-load.ts';
import type { StageDeps } from '../../functions/stage/stage-object.ts';
import type { PipelineDefinition, PipelineInput } from '../../contract/definition.ts';
import { parsePipeline } from '../../contract/load.ts';
import { syncValueMapTable } from '../../functions/combine/value-map-tables.ts';
import { freshBucket, freshProject, rows } from './support.ts';
import { deliver as deliverObject } from '../helpers/deliver.ts';

const MAP_FILE = fileURLToPath(new URL('../fixtures/edfi-descriptor-map/descriptor_map.json', import.meta.url));
const MAP = JSON.parse(readFileSync(MAP_FILE, 'utf8')) as { constantName: string; descriptor: string; codeValue: string }[];

const definition: PipelineInput = {
  project: 'it_value_map_views',
  suppliers: [{ name: 'district' }],
  valueMaps: [
    { name: 'amt', file: MAP_FILE },
    // a district's own codes, in the Ed-Fi layout
    { name: 'district', entries: [{ descriptor: 'AttendanceEventCategoryDescriptor', source: 'EXA', constant: 'AttendanceEvent.Absence' }] },
  ],
  datasets: [
    {
      name: 'attendance',
      source: { type: 'upload', supplier: 'district' },
      clean: {
        columns: [
          { name: 'student_id', source: 'StudentUSI', type: 'integer' },
          { name: 'category', source: 'AttendanceEventCategoryDescriptor', map: 'amt' },
          { name: 'category_descriptor', source: 'AttendanceEventCategoryDescriptor' },
        ],
      },
    },
  ],
  views: [
    {
      name: 'absences',
      datasets: ['attendance'],
      sql: `SELECT a.student_id, count(m.constant)::int AS absences
              FROM {{schema}}.attendance a
              LEFT JOIN {{schema}}._value_maps m
                ON m.map IN ('amt', 'district') AND m.constant = 'AttendanceEvent.Absence'
               AND m.descriptor_key = etl.map_descriptor(a.category_descriptor, 'AttendanceEventCategoryDescriptor')
               AND m.code_key = etl.map_code(a.category_descriptor)
             GROUP BY a.student_id ORDER BY a.student_id`,
    },
  ],
};

const EVENTS = [
  'StudentUSI,AttendanceEventCategoryDescriptor',
  '1,uri://ed-fi.org/AttendanceEventCategoryDescriptor#Excused Absence', // an absence (and an excused one)
  '1,uri://ed-fi.org/AttendanceEventCategoryDescriptor#Unexcused Absence', // an absence
  '1,uri://ed-fi.org/AttendanceEventCategoryDescriptor#Tardy', // not an absence
  '2,URI://GRANDBEND.EDU/attendanceeventcategorydescriptor# excused absence ', // another namespace, case and spaces
  '2, Unexcused Absence ', // a bare code: the view names its descriptor
  '3,uri://grandbend.edu/AttendanceEventCategoryDescriptor#EXA', // the district map's code
  '3,uri://ed-fi.org/BehaviorDescriptor#Excused Absence', // the code under another descriptor: not an attendance category
  '4,uri://ed-fi.org/AttendanceEventCategoryDescriptor#In Attendance',
  '',
].join('\n');

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;

const deliver = (file: string, body: string, pipeline: PipelineDefinition = cleanDeps.pipeline) =>
  deliverObject({ stage: stageDeps, clean: { ...cleanDeps, pipeline } }, bucket, `incoming/district/attendance/${file}`, body);

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-map-views');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline };
});

describe('value maps as a table for views', () => {
  it('keeps every map in <project>._value_maps, one row per (map, constant, descriptor, code value)', async () => {
    expect(await deliver('events.csv', EVENTS)).toMatchObject({ status: 'loaded', rowsLoaded: 8 });
    const distinct = new Set(MAP.map((r) => `${r.constantName}|${r.descriptor.toLowerCase()}|${r.codeValue.toLowerCase()}`));
    const [count] = await rows<{ amt: number; district: number }>(
      cleanDeps.pool,
      `SELECT count(*) FILTER (WHERE map = 'amt')::int AS amt, count(*) FILTER (WHERE map = 'district')::int AS district FROM it_value_map_views._value_maps`,
    );
    expect(count).toEqual({ amt: distinct.size, district: 1 });
    // both memberships of "Excused Absence" are there; the clean column holds the narrowest
    const excused = await rows(cleanDeps.pool, `SELECT constant FROM it_value_map_views._value_maps WHERE map = 'amt' AND code_key = 'excused absence' ORDER BY 1`);
    expect(excused).toEqual([{ constant: 'AttendanceEvent.Absence' }, { constant: 'AttendanceEvent.ExcusedAbsence' }]);
    const column = await rows(cleanDeps.pool, `SELECT DISTINCT category FROM it_value_map_views.attendance WHERE student_id = 1 ORDER BY 1`);
    expect(column).toEqual([{ category: 'AttendanceEvent.ExcusedAbsence' }, { category: 'AttendanceEvent.Tardy' }, { category: 'AttendanceEvent.UnexcusedAbsence' }]);
  });

  it('lets a view match URIs (any namespace, case, spaces) and bare codes on (descriptor, code value), many-to-many', async () => {
    expect(await rows(cleanDeps.pool, 'SELECT student_id, absences FROM it_value_map_views.absences')).toEqual([
      { student_id: 1, absences: 2 },
      { student_id: 2, absences: 2 },
      { student_id: 3, absences: 1 },
      { student_id: 4, absences: 0 },
    ]);
  });

  it('rewrites the table when a map changes, and leaves it alone when none did', async () => {
    const xmin = async () => (await rows<{ x: string }>(cleanDeps.pool, `SELECT min(xmin::text) AS x FROM it_value_map_views._value_maps`))[0]!.x;
    const before = await xmin();
    await deliver('again.csv', EVENTS);
    expect(await xmin()).toBe(before);

    const changed = parsePipeline({
      ...definition,
      valueMaps: [
        { name: 'amt', file: MAP_FILE },
        { name: 'district', entries: [{ descriptor: 'AttendanceEventCategoryDescriptor', source: 'EXA', constant: 'AttendanceEvent.Present' }] },
      ],
    });
    await deliver('changed.csv', EVENTS, changed);
    expect(await rows(cleanDeps.pool, `SELECT constant FROM it_value_map_views._value_maps WHERE map = 'district'`)).toEqual([{ constant: 'AttendanceEvent.Present' }]);
    expect(await rows(cleanDeps.pool, 'SELECT absences FROM it_value_map_views.absences WHERE student_id = 3')).toEqual([{ absences: 0 }]);
  });

  it('is created once when two cleans of the project make it at the same time', async () => {
    await cleanDeps.pool.query('DROP TABLE it_value_map_views._value_maps CASCADE');
    const [a, b] = [await cleanDeps.pool.connect(), await cleanDeps.pool.connect()];
    try {
      await a.query('BEGIN');
      await b.query('BEGIN');
      expect(await syncValueMapTable(a, cleanDeps.pipeline)).toBe('written');
      const second = syncValueMapTable(b, cleanDeps.pipeline); // waits for the first's commit
      await new Promise((resolve) => setTimeout(resolve, 200));
      await a.query('COMMIT');
      expect(await second).toBe('unchanged');
      await b.query('COMMIT');
    } finally {
      a.release();
      b.release();
    }
    expect(await rows(cleanDeps.pool, `SELECT count(*)::int AS n FROM it_value_map_views._value_maps WHERE map = 'district'`)).toEqual([{ n: 1 }]);
  });
});
