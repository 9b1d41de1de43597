/**
 * `civic-etl demo edfi`, in process: the shipped Ed-Fi example (pipelines/edfi/pipeline.yaml, copied
 * under a project name of its own, with one extra exported view) against the stand-in ODS serving a
 * small generated district — a full run, then the next school day incrementally. The expected
 * figures come from the test's own copy of the district (same options: the generator is
 * deterministic), counted here in plain JS over its records, never from our clean tables.
 */
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { s3Client } from '../../functions/common/aws.ts';
import { closePool, getPool } from '../../functions/common/db.ts';
import { runEdfiDemo, type EdfiDemoRun } from '../../local/edfi-demo.ts';
import { generateDistrict, type DistrictDay, type DistrictResource, type EdfiRecord } from '../../local/edfi-district.ts';
import { localResourceNames } from '../../local/resources.ts';

const SIZE = { students: 120, instructionalDays: 40, seed: 7 };

interface Definition {
  project: string;
  edfi: { resources: { resource: DistrictResource; dataset: string }[] }[];
  datasets: { name: string; read?: { arrays?: string }; clean?: { columns?: { name: string; source?: string; map?: string }[] } }[];
  views?: { name: string; datasets?: string[]; sql?: string; export?: unknown }[];
}

/** The example, copied (maps and all) under a project of its own, with one view of ours exported as Parquet. */
function exampleCopy(): { file: string; definition: Definition } {
  const dir = mkdtempSync(join(tmpdir(), 'civic-etl-edfi-demo-'));
  cpSync('pipelines/edfi', dir, { recursive: true });
  const definition = parse(readFileSync(join(dir, 'pipeline.yaml'), 'utf8')) as Definition;
  definition.project = `it_edfi_demo_${randomUUID().slice(0, 6)}`;
  definition.views = [
    ...(definition.views ?? []),
    { name: 'it_attendance_event_ids', datasets: ['student_school_attendance_events'], sql: 'select id from {{schema}}.student_school_attendance_events', export: { formats: ['parquet'] } },
  ];
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(file, stringify(definition));
  return { file, definition };
}

/** Elements of every nested array path (`races`, `studentCharacteristics.periods`…) over the records. */
function elementCounts(records: readonly EdfiRecord[]): Map<string, number> {
  const counts = new Map<string, number>();
  const walk = (object: EdfiRecord, prefix: string) => {
    for (const [key, value] of Object.entries(object)) {
      if (!Array.isArray(value)) continue;
      const path = prefix ? `${prefix}.${key}` : key;
      counts.set(path, (counts.get(path) ?? 0) + value.length);
      for (const element of value) if (element && typeof element === 'object') walk(element as EdfiRecord, path);
    }
  };
  for (const r of records) walk(r, '');
  return counts;
}

/** Rows every clean table should hold, from the district's records: parents, and children of exploded datasets. */
function expectedTables(definition: Definition, records: (resource: DistrictResource) => readonly EdfiRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { resource, dataset } of definition.edfi[0]!.resources) {
    const list = records(resource);
    out[dataset] = list.length;
    const explode = definition.datasets.find((d) => d.name === dataset)?.read?.arrays === 'explode';
    if (!explode) continue;
    for (const [path, n] of elementCounts(list)) if (n > 0) out[`${dataset}_${path.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`] = n;
  }
  return out;
}

/** The column of a dataset holding an API field: the declared one whose source it is, else the detected name. */
function columnOf(definition: Definition, dataset: string, field: string): { name: string; mapped: boolean } {
  const declared = definition.datasets.find((d) => d.name === dataset)?.clean?.columns?.find((c) => c.source === field);
  return declared ? { name: declared.name, mapped: declared.map !== undefined } : { name: field.toLowerCase(), mapped: false };
}

afterAll(() => closePool());

describe('civic-etl demo edfi: the scheduled Ed-Fi example end to end, full then incremental', () => {
  it('loads the district, then its next school day, exactly as the district holds it, and exports Parquet after each run', { timeout: 180_000 }, async () => {
    const { file, definition } = exampleCopy();
    const schema = definition.project;
    const pool = await getPool();
    const q = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows;
    const bucket = localResourceNames(schema).bucket;

    // the test's own district: the same options, so the same records as the one the demo serves
    const mine = generateDistrict(SIZE);
    const expectedFull = expectedTables(definition, (r) => mine.records(r));
    const eventsFull = mine.records('studentSchoolAttendanceEvents').length;

    const category = columnOf(definition, 'student_school_attendance_events', 'attendanceEventCategoryDescriptor');
    const exit = columnOf(definition, 'student_school_associations', 'exitWithdrawDate');
    const entry = columnOf(definition, 'student_school_associations', 'entryDate');
    const seen: {
      run: EdfiDemoRun;
      tables: Record<string, number>;
      deleted: number;
      category: string | null;
      exit: string | null;
      entry: string | null;
      latest: Record<string, { rowCount: number; parquet: string }>;
    }[] = [];
    let served: DistrictDay | undefined; // the day the demo serves (its ids are the same with or without a key change)
    const lines: string[] = [];

    const result = await runEdfiDemo({
      pipelineFile: file,
      ...SIZE,
      log: (line) => lines.push(line),
      onRun: async (run, next) => {
        // after the full run, the ids of the day to come: the test's own district's (the demo's is the same)
        const day = next ?? (served = generateDistrict(SIZE).advance());
        const t = `${schema}.student_school_attendance_events`;
        const latest: (typeof seen)[number]['latest'] = {};
        for (const view of definition.views!.filter((v) => v.export)) {
          const body = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: `curated/${schema}/${view.name}/latest.json` }));
          const json = JSON.parse(await body.Body!.transformToString()) as { rowCount: number; files: { parquet: string } };
          // the Parquet file is there, and is Parquet: "PAR1" at both ends
          const parquet = Buffer.from(await (await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: json.files.parquet }))).Body!.transformToByteArray());
          expect([parquet.subarray(0, 4).toString(), parquet.subarray(-4).toString()], `${view.name} after the ${run.label} run`).toEqual(['PAR1', 'PAR1']);
          latest[view.name] = { rowCount: json.rowCount, parquet: json.files.parquet };
        }
        seen.push({
          run,
          tables: run.tables,
          deleted: Number((await q(`SELECT count(*) AS n FROM ${t} WHERE id = $1`, [day.deleted.id]))[0].n),
          category: (await q(`SELECT "${category.name}"::text AS v FROM ${t} WHERE id = $1`, [day.corrected.id]))[0]?.v ?? null,
          exit: (await q(`SELECT "${exit.name}"::text AS v FROM ${schema}.student_school_associations WHERE id = $1`, [day.withdrawn.id]))[0]?.v ?? null,
          entry: day.keyChanges[0] ? ((await q(`SELECT "${entry.name}"::text AS v FROM ${schema}.student_school_associations WHERE id = $1`, [day.keyChanges[0].id]))[0]?.v ?? null) : null,
          latest,
        });
      },
    });

    // the demo served the day the test's district computes (with the key change when the stand-in serves them)
    expect(result.day.keyChanges).toHaveLength(1);
    const day = mine.advance({ keyChange: true });
    expect(result.day).toEqual(day);
    expect([served!.deleted, served!.corrected, served!.withdrawn]).toEqual([day.deleted, day.corrected, day.withdrawn]);
    const expectedNext = expectedTables(definition, (r) => mine.records(r));
    const eventsNext = mine.records('studentSchoolAttendanceEvents').length;
    // what the next day is, in the district's terms
    expect(eventsNext).toBe(eventsFull + day.newEvents.school - 1); // the day's events, one deleted (the corrected one stays)
    expect(expectedNext.students).toBe(expectedFull.students! + 1);
    expect(expectedNext.discipline_incidents).toBe(expectedFull.discipline_incidents! + 1);
    const [full, next] = seen;

    // ── full run: every clean table holds what the district holds
    expect(full!.tables).toEqual(expectedFull);
    expect(full!.run.fetched.reduce((n, f) => n + f.records, 0)).toBe(Object.values(definition.edfi[0]!.resources).reduce((n, r) => n + generateDistrict(SIZE).records(r.resource).length, 0));
    expect(full!.run.loaded.filter((l) => l.failed > 0 || l.quarantined > 0)).toEqual([]);
    expect(full!.deleted).toBe(1); // the event the next day deletes is there
    expect(full!.exit).toBeNull();
    expect(full!.latest.it_attendance_event_ids!.rowCount).toBe(eventsFull);

    // ── incremental run: only the day's changes fetched; the tables hold the district's next day
    expect(next!.tables).toEqual(expectedNext);
    const written = new Map(day.writes.map((w) => [w.resource, w.records.length]));
    const datasetOf = new Map(definition.edfi[0]!.resources.map((r) => [r.dataset, r.resource]));
    // a key-changed record comes twice: its key change, and the record itself (its change version moved)
    const keyChanged = new Map(day.keyChanges.map((k) => [k.resource, day.keyChanges.filter((x) => x.resource === k.resource).length]));
    expect(Object.fromEntries(next!.run.fetched.map((f) => [f.dataset, [f.records, f.keyChanges, f.deleted]]))).toEqual(
      Object.fromEntries(
        [...datasetOf].map(([dataset, resource]) => [
          dataset,
          [(written.get(resource) ?? 0) + (keyChanged.get(resource) ?? 0), keyChanged.get(resource) ?? 0, resource === 'studentSchoolAttendanceEvents' ? 1 : 0],
        ]),
      ),
    );
    expect(next!.run.loaded.find((l) => l.table === 'student_school_attendance_events')).toMatchObject({ deleted: 1, failed: 0 });
    expect(next!.deleted).toBe(0); // the deleted event is gone
    expect(next!.category).not.toBe(full!.category); // the corrected event is updated…
    if (!category.mapped) expect([full!.category, next!.category]).toEqual([day.corrected.from, day.corrected.to]); // …to the new category
    expect(next!.exit).toBe(day.withdrawn.exitWithdrawDate); // the withdrawal is visible
    expect(next!.entry).toBe(day.keyChanges[0]!.record.entryDate); // the key change, served at /keyChanges
    expect(next!.latest.it_attendance_event_ids!.rowCount).toBe(eventsNext);
    expect(next!.latest.it_attendance_event_ids!.parquet).not.toBe(full!.latest.it_attendance_event_ids!.parquet); // exported again
    for (const run of result.runs) expect(run.dead).toBe(0);

    // progress lines while it works
    expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^full run: fetching Ed-Fi API ods$/), expect.stringMatching(/^incremental run done in /)]));
  });
});
