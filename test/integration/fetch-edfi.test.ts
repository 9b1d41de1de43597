import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { PipelineInput } from '../../contract/definition.ts';
import { parsePipeline } from '../../contract/load.ts';
import { readJsonSecret, s3Client, secretsClient } from '../../functions/common/aws.ts';
import { logger } from '../../functions/common/logger.ts';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { edfiStateKey, fetchEdfi, type EdfiFetchDeps } from '../../functions/get/fetch-edfi.ts';
import { stageObject } from '../../functions/stage/stage-object.ts';
import { EDFI_CLIENT, startEdfiServer, students, type EdfiServer } from '../../local/edfi-stand-in.ts';
import { freshBucket, freshProject, objectBytes, rows } from './support.ts';

let ods: EdfiServer;
let secret: string;
beforeAll(async () => {
  ods = await startEdfiServer();
  secret = `it-edfi-${randomUUID()}`;
  await secretsClient().send(new CreateSecretCommand({ Name: secret, SecretString: JSON.stringify(EDFI_CLIENT) }));
});
afterAll(() => ods.close());

function pipelineWith(edfi: Record<string, unknown>, extra: Partial<PipelineInput> = {}) {
  return parsePipeline({ project: 'it_edfi', datasets: [], edfi: [{ name: 'ods', url: ods.base, secret, ...edfi }], ...extra });
}

async function setup(extra: Partial<EdfiFetchDeps> = {}) {
  const bucket = await freshBucket('it-edfi');
  const deps: EdfiFetchDeps = { s3: s3Client(), bucket, readSecret: readJsonSecret, sleep: async () => undefined, ...extra };
  return { bucket, deps };
}

async function keys(bucket: string, prefix = 'raw/'): Promise<string[]> {
  const out = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}
/** The records of every part under `raw/<dataset>/`, in key order. */
async function records(bucket: string, dataset: string): Promise<Record<string, unknown>[]> {
  const parts = (await keys(bucket, `raw/${dataset}/`)).filter((k) => k.endsWith('.ndjson.gz'));
  const all: Record<string, unknown>[] = [];
  for (const key of parts) {
    const lines = gunzipSync(await objectBytes(bucket, key))
      .toString()
      .trim()
      .split('\n');
    all.push(...lines.filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>));
  }
  return all;
}
async function state(bucket: string): Promise<{ state: { versions: Record<string, number>; checkpoint?: unknown }; lease?: unknown }> {
  return JSON.parse((await objectBytes(bucket, edfiStateKey('ods'))).toString()) as never;
}

describe('the Ed-Fi preset in the pipeline definition', () => {
  it('turns each listed resource into a dataset cleaned by id with mode upsert, and keeps declared ones', () => {
    const pipeline = parsePipeline({
      project: 'p',
      datasets: [
        {
          name: 'attendance',
          clean: {
            columns: [
              { name: 'event_id', source: 'id' },
              { name: 'event_date', type: 'date' },
            ],
            key: ['event_id'],
            mode: 'upsert',
          },
        },
      ],
      edfi: [
        {
          name: 'ods',
          url: 'https://ods.example.org/api',
          secret: 'edfi/district',
          resources: ['students', 'studentSchoolAssociations', 'tpdm/candidates', { resource: 'studentSchoolAttendanceEvents', dataset: 'attendance' }],
        },
      ],
    });
    expect(pipeline.datasets.map((d) => [d.name, d.source])).toEqual([
      ['attendance', { type: 'edfi', api: 'ods', resource: 'studentSchoolAttendanceEvents' }],
      ['ods_students', { type: 'edfi', api: 'ods', resource: 'students' }],
      ['ods_student_school_associations', { type: 'edfi', api: 'ods', resource: 'studentSchoolAssociations' }],
      ['ods_tpdm_candidates', { type: 'edfi', api: 'ods', resource: 'tpdm/candidates' }],
    ]);
    expect(pipeline.datasets[1]!.clean).toMatchObject({ key: ['id'], mode: 'upsert' });
    expect(pipeline.edfi[0]).toMatchObject({ instance: 'shared', pageSize: 500, changeQueries: true, concurrency: 4, dataPath: 'data/v3' });
  });

  it("validates the docs' Ed-Fi example as written, its year-specific key [id, odsSchoolYear] included", () => {
    // the first YAML block of the Ed-Fi section of docs/connectors.md: docs and schema cannot drift apart
    const readme = readFileSync(new URL('../../docs/connectors.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('<a id="ed-fi-sources"></a>'));
    const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toMatch(/key: \[id, odsSchoolYear\]/);
    const pipeline = parsePipeline({ project: 'readme_edfi', ...(parseYaml(block!) as object) }, 'docs/connectors.md (Ed-Fi example)');
    expect(pipeline.edfi[0]).toMatchObject({ name: 'ods', instance: 'yearSpecific', schoolYears: [2025, 2026], changeQueries: true });
    const attendance = pipeline.datasets.find((d) => d.name === 'attendance')!;
    expect(attendance.source).toEqual({ type: 'edfi', api: 'ods', resource: 'studentSchoolAttendanceEvents' });
    expect(attendance.clean).toMatchObject({ key: ['id', 'odsschoolyear'], mode: 'upsert' });
    // a declared column whose source is the field: the key names that column
    const declared = parsePipeline({
      project: 'p',
      datasets: [{ name: 'ods_sections', clean: { columns: [{ name: 'id' }, { name: 'school_year', source: 'odsSchoolYear', type: 'integer' }], key: ['id', 'odsSchoolYear'], mode: 'upsert' } }],
      edfi: [{ name: 'ods', url: 'https://ods.example.org/api', secret: 's', instance: 'yearSpecific', schoolYears: [2026], resources: ['sections'] }],
    });
    expect(declared.datasets[0]!.clean.key).toEqual(['id', 'school_year']);
  });

  it('names what is wrong: unknown API, replace mode under change queries, a year-specific ODS without years, a dataset schedule', () => {
    const problems = (input: Record<string, unknown>) => {
      try {
        parsePipeline({ project: 'p', ...input });
        return [];
      } catch (error) {
        return (error as { problems: string[] }).problems;
      }
    };
    expect(problems({ datasets: [{ name: 'x', source: { type: 'edfi', api: 'nope', resource: 'students' } }] })).toContain('dataset "x" → source.api: unknown Ed-Fi API "nope" (declare it under edfi)');
    const api = { name: 'ods', url: 'https://ods.example.org/api', secret: 's' };
    expect(problems({ datasets: [{ name: 'x', source: { type: 'edfi', api: 'ods', resource: 'students' } }], edfi: [api] }).join('\n')).toMatch(
      /dataset "x" → clean.mode: change queries bring only what changed: clean this resource with mode upsert/,
    );
    expect(problems({ datasets: [], edfi: [{ ...api, instance: 'yearSpecific', resources: ['students'] }] }).join('\n')).toMatch(/schoolYears: a yearSpecific instance needs its schoolYears/);
    expect(
      problems({ datasets: [{ name: 'x', schedule: 'rate(1 hour)', source: { type: 'edfi', api: 'ods', resource: 'students' }, clean: { key: ['id'], mode: 'upsert' } }], edfi: [api] }).join('\n'),
    ).toMatch(/schedule the Ed-Fi API/);
  });
});

describe('fetching an Ed-Fi ODS / API', () => {
  it('fetches every resource with bounded concurrency, one token, parts and a manifest per resource', async () => {
    const { bucket, deps } = await setup();
    // a fresh ODS per test: resources named apart
    ods.write('students', students(1, 23));
    ods.write('schools', [{ id: 'sc1', schoolId: 255901, nameOfInstitution: 'Grand Bend High School' }]);
    ods.write('staffs', []);
    const pipeline = pipelineWith({ resources: ['students', 'schools', 'staffs'], pageSize: 5, concurrency: 3 });
    ods.maxInFlight = 0;
    ods.delayMs = 15;
    const tokensBefore = ods.tokensIssued;
    const outcome = await fetchEdfi(deps, pipeline, 'ods');
    ods.delayMs = 0;

    expect(outcome).toMatchObject({ status: 'fetched', records: 24 });
    expect(ods.tokensIssued - tokensBefore).toBe(1);
    expect(ods.maxInFlight).toBeGreaterThan(1);
    expect(ods.maxInFlight).toBeLessThanOrEqual(3);
    expect((await records(bucket, 'ods_students')).map((r) => r.id)).toEqual(students(1, 23).map((s) => s.id));
    expect(await records(bucket, 'ods_schools')).toEqual([{ id: 'sc1', schoolId: 255901, nameOfInstitution: 'Grand Bend High School' }]);
    if (outcome.status === 'busy') throw new Error('busy');
    const run = outcome.run;
    const manifest = JSON.parse((await objectBytes(bucket, `raw/ods_students/${run}/_manifest.json`)).toString()) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      contract: 1,
      connector: 'edfi',
      complete: true,
      details: { api: 'ods', resource: 'students', records: 23 },
      // the first run asks for everything: its parts together are the whole resource
      objects: [{ key: `raw/ods_students/${run}/part-00001.ndjson.gz`, records: 23, declaration: { replaces: 'run', holds: 'rows', part: 100_001 } }], // after the run's key changes (parts 1…)
    });
    expect(JSON.stringify(manifest)).not.toContain(EDFI_CLIENT.secret);
    // nothing for the empty resource; versions saved, lease released
    expect(await keys(bucket, 'raw/ods_staffs/')).toEqual([]);
    const saved = await state(bucket);
    expect(saved.lease).toBeUndefined();
    expect(Object.keys(saved.state.versions).sort()).toEqual(['shared/schools', 'shared/staffs', 'shared/students']);
  });

  it('asks each resource only for what changed since the last run, and writes nothing when nothing did', async () => {
    const { bucket, deps } = await setup();
    ods.write(
      'parents',
      students(1, 4).map((s) => ({ ...s, id: `p${s.id as string}` })),
    );
    const pipeline = pipelineWith({ resources: ['parents'], pageSize: 3 });
    const first = await fetchEdfi({ ...deps, now: () => new Date('2026-11-20T06:00:00Z') }, pipeline, 'ods');
    expect(first).toMatchObject({ status: 'fetched', records: 4 });
    const v1 = (await state(bucket)).state.versions['shared/parents']!;

    ods.write('parents', [{ id: 'ps0002', firstName: 'Renamed' }]);
    const second = await fetchEdfi({ ...deps, now: () => new Date('2026-11-21T06:00:00Z') }, pipeline, 'ods');
    expect(second).toMatchObject({ status: 'fetched', records: 1, results: [{ dataset: 'ods_parents', minChangeVersion: v1 + 1, status: 'fetched' }] });
    const asked = ods.requests.filter((r) => r.path === '/data/v3/ed-fi/parents').at(-1)!;
    expect(Number(asked.query.get('minChangeVersion'))).toBe(v1 + 1);
    expect((await records(bucket, 'ods_parents')).at(-1)).toEqual({ id: 'ps0002', firstName: 'Renamed' });

    const third = await fetchEdfi({ ...deps, now: () => new Date('2026-11-22T06:00:00Z') }, pipeline, 'ods');
    expect(third).toMatchObject({ status: 'empty', results: [{ status: 'unchanged', records: 0 }] });
    expect((await keys(bucket)).filter((k) => k.includes('20261122'))).toEqual([]);
  });

  it('fetches everything again when the ODS no longer keeps the changes since the last run', async () => {
    const { bucket, deps } = await setup();
    ods.write('programs', [{ id: 'g1' }, { id: 'g2' }]);
    const pipeline = pipelineWith({ resources: ['programs'] });
    await fetchEdfi({ ...deps, now: () => new Date('2026-11-20T06:00:00Z') }, pipeline, 'ods');
    ods.write('programs', [{ id: 'g3' }]);
    ods.setOldest(10_000);
    const again = await fetchEdfi({ ...deps, now: () => new Date('2026-11-21T06:00:00Z') }, pipeline, 'ods');
    ods.setOldest(0);
    expect(again).toMatchObject({ status: 'fetched', records: 3, results: [{ minChangeVersion: undefined, note: expect.stringMatching(/keeps changes from version 10000 only/) }] });
    void bucket;
  });

  it('puts the school year in the path of a year-specific ODS and on each record', async () => {
    const { bucket, deps } = await setup();
    ods.write('sections', [{ id: 'x2025' }], 2025);
    ods.write('sections', [{ id: 'x2026a' }, { id: 'x2026b' }], 2026);
    const pipeline = pipelineWith({ instance: 'yearSpecific', schoolYears: [2025, 2026], resources: ['sections'] });
    const outcome = await fetchEdfi(deps, pipeline, 'ods');
    expect(outcome).toMatchObject({ status: 'fetched', records: 3 });
    expect(ods.requests.some((r) => r.path === '/data/v3/2026/ed-fi/sections')).toBe(true);
    expect(ods.requests.some((r) => r.path === '/changeQueries/v1/2025/availableChangeVersions')).toBe(true);
    expect(await records(bucket, 'ods_sections')).toEqual([
      { id: 'x2025', odsSchoolYear: 2025 },
      { id: 'x2026a', odsSchoolYear: 2026 },
      { id: 'x2026b', odsSchoolYear: 2026 },
    ]);
    expect(Object.keys((await state(bucket)).state.versions).sort()).toEqual(['2025/sections', '2026/sections']);
  });

  it('checkpoints before the time limit and continues in the next invocation, every record once', async () => {
    let clock = Date.parse('2026-11-21T06:00:00Z');
    const { bucket, deps } = await setup({ now: () => new Date(clock), timeoutMs: 60_000, marginMs: 20_000 });
    ods.write(
      'grades',
      students(1, 40).map((s) => ({ ...s, id: `g${s.id as string}` })),
    );
    // each page "takes" 5 s: the first invocation has 40 s before its margin
    ods.onData = () => (clock += 5_000);
    const pipeline = pipelineWith({ resources: ['grades'], pageSize: 3, concurrency: 1 });
    // a 500 in the first invocation: counted in the summary of the run, whichever invocation ends it
    ods.failNext('/grades', 0, { status: 500, body: '{"message":"busy"}', contentType: 'application/json' });
    const first = await fetchEdfi(deps, pipeline, 'ods');
    expect(first.status).toBe('checkpointed');
    if (first.status === 'busy') throw new Error('busy');
    const checkpointed = await state(bucket);
    expect(checkpointed.state.checkpoint).toBeDefined();
    expect(checkpointed.state.versions['shared/grades']).toBeUndefined();
    expect(checkpointed.lease).toBeUndefined();
    const manifest = JSON.parse((await objectBytes(bucket, `raw/ods_grades/${first.run}/_manifest.json`)).toString()) as { complete: boolean; details: { records: number } };
    expect(manifest.complete).toBe(false);
    expect(manifest.details.records).toBeGreaterThan(0);
    expect(manifest.details.records).toBeLessThan(40);

    const second = await fetchEdfi(deps, pipeline, 'ods'); // a new invocation: a fresh 60 s
    const third = second.status === 'checkpointed' ? await fetchEdfi(deps, pipeline, 'ods') : second;
    ods.onData = undefined;
    expect(third).toMatchObject({ status: 'fetched', run: first.run, http: { retries: 1, serverErrors: 1 } });
    if (third.status === 'busy') throw new Error('busy');
    expect(third.message).toMatch(/1 retry \(1 after 5xx\)/);
    const got = (await records(bucket, 'ods_grades')).map((r) => r.id);
    expect(got).toEqual(students(1, 40).map((s) => `g${s.id as string}`));
    const done = await state(bucket);
    expect(done.state.checkpoint).toBeUndefined();
    expect(done.state.versions['shared/grades']).toBeGreaterThan(0);
  });

  it('fails a resource that answers HTML, naming the URL, while the others complete; the next run asks it again', async () => {
    const { bucket, deps } = await setup();
    ods.write('courses', [{ id: 'c1' }, { id: 'c2' }, { id: 'c3' }, { id: 'c4' }]);
    ods.write('sessions', [{ id: 'n1' }]);
    const pipeline = pipelineWith({ resources: ['sessions', 'courses'], pageSize: 2, concurrency: 1 });
    ods.failNext('/courses', 2, { status: 200, body: '<html>maintenance</html>', contentType: 'text/html' });
    await expect(fetchEdfi({ ...deps, now: () => new Date('2026-11-20T06:00:00Z') }, pipeline, 'ods')).rejects.toThrow(
      /Ed-Fi API ods: 1 of 2 resources failed — courses: GET http:\/\/127\.0\.0\.1:\d+\/data\/v3\/ed-fi\/courses\?.* answered 200 with content type "text\/html", not JSON\. Of the others: 1 stored and saved \(sessions: 1 record\)\. The failed ones are asked again/,
    );
    const failed = await state(bucket);
    expect(failed.lease).toBeUndefined();
    expect(failed.state.checkpoint).toBeUndefined();
    expect(Object.keys(failed.state.versions)).toEqual(['shared/sessions']); // courses keeps no version: asked again in full
    ods.write('sessions', [{ id: 'n2' }]);

    const next = await fetchEdfi({ ...deps, now: () => new Date('2026-11-21T06:00:00Z') }, pipeline, 'ods');
    expect(next).toMatchObject({ status: 'fetched' });
    // every course once more (the failed run's first part too: upserted again), sessions only what changed
    const courses = await records(bucket, 'ods_courses');
    expect(courses.slice(-4).map((r) => r.id)).toEqual(['c1', 'c2', 'c3', 'c4']);
    expect((await records(bucket, 'ods_sessions')).map((r) => r.id)).toEqual(['n1', 'n2']);
    expect(Object.keys((await state(bucket)).state.versions).sort()).toEqual(['shared/courses', 'shared/sessions']);
  });

  it('says none was stored when every resource failed, and counts the unchanged apart from the stored', async () => {
    const { deps } = await setup();
    ods.write('disciplineActions', [{ id: 'da1' }]);
    ods.write('disciplineIncidents', [{ id: 'di1' }]);
    const pipeline = pipelineWith({ resources: ['disciplineActions', 'disciplineIncidents'], concurrency: 1 });
    for (const part of ['/disciplineActions', '/disciplineIncidents']) ods.failNext(part, 0, { status: 403, body: '{"message":"forbidden"}', contentType: 'application/json' });
    const error = String(await fetchEdfi({ ...deps, now: () => new Date('2026-11-20T06:00:00Z') }, pipeline, 'ods').catch((e: Error) => e));
    expect(error).toMatch(/2 of 2 resources failed — disciplineActions: GET .* answered 403.*; disciplineIncidents: GET .* answered 403/);
    expect(error).toMatch(/answered 403 Forbidden\. Nothing was stored\. The failed ones are asked again/);
    expect(error).not.toMatch(/stored and saved/);

    // next run: actions fetched, incidents fail again, and a third resource has nothing new
    ods.write('graduationPlans', [{ id: 'gp1' }]);
    const three = pipelineWith({ resources: ['disciplineActions', 'disciplineIncidents', 'graduationPlans'], concurrency: 1 });
    await fetchEdfi({ ...deps, now: () => new Date('2026-11-21T06:00:00Z') }, pipelineWith({ resources: ['graduationPlans'] }), 'ods');
    ods.failNext('/disciplineIncidents', 0, { status: 403, body: '{"message":"forbidden"}', contentType: 'application/json' });
    const second = String(await fetchEdfi({ ...deps, now: () => new Date('2026-11-22T06:00:00Z') }, three, 'ods').catch((e: Error) => e));
    expect(second).toMatch(/1 of 3 resources failed — disciplineIncidents: .*Of the others: 1 stored and saved \(disciplineActions: 1 record\), 1 unchanged \(nothing to store\)\./);
  });

  // The ODS may lack /deletes or /keyChanges (before 5.3): the same run, one endpoint apart.
  it.each(
    [
      {
        endpoint: 'deletes',
        title: 'warns once per resource, and does not fail it, when the ODS does not serve /deletes; its records are stored and saved',
        resources: ['assessments', 'objectiveAssessments'],
        first: () => {
          ods.write('assessments', [{ id: 'as1' }, { id: 'as2' }]);
          ods.write('objectiveAssessments', [{ id: 'oa1' }]);
        },
        second: () => {
          ods.write('assessments', [{ id: 'as3' }]);
          ods.write('objectiveAssessments', [{ id: 'oa2' }]);
        },
        serve: (on: boolean) => {
          ods.servesDeletes = on;
        },
        results: [
          { resource: 'assessments', status: 'fetched', records: 1, deleted: 0, warnings: [expect.stringMatching(/does not serve assessments\/deletes \(404\)/)] },
          { resource: 'objectiveAssessments', status: 'fetched', records: 1, deleted: 0, warnings: [expect.stringMatching(/objectiveAssessments\/deletes \(404\)/)] },
        ],
        message: /2 records from 2 of 2 resources .*the ODS does not serve \/deletes \(404\) for 2 resources \(assessments, objectiveAssessments\): .*set deletes: false on edfi "ods"/,
        notInMessage: undefined,
        warnedOnceFor: 'objectiveAssessments',
        afterwards: async (bucket: string, deps: EdfiFetchDeps, pipeline: ReturnType<typeof pipelineWith>) => {
          expect((await records(bucket, 'ods_assessments')).map((r) => r.id)).toEqual(['as1', 'as2', 'as3']);
          const saved = await state(bucket);
          expect(saved.state.checkpoint).toBeUndefined();
          // versions advanced: the next run asks only for what changed after this one
          const v = saved.state.versions['shared/assessments']!;
          expect(v).toBeGreaterThan(0);
          const next = await fetchEdfi({ ...deps, now: () => new Date('2026-11-22T06:00:00Z') }, pipeline, 'ods');
          expect(next).toMatchObject({ status: 'empty' });
        },
      },
      {
        endpoint: 'keyChanges',
        title: 'warns once per resource, and does not fail it, when the ODS does not serve /keyChanges (before 5.3); its records and deletions are stored and saved',
        resources: ['surveys', 'interventions'],
        first: () => {
          ods.write('surveys', [
            { id: 'co1', courseCode: 'ALG-1' },
            { id: 'co2', courseCode: 'BIO-1' },
          ]);
          ods.write('interventions', [{ id: 'ca1' }]);
        },
        second: () => {
          ods.write('surveys', [{ id: 'co3', courseCode: 'CHM-1' }]);
          ods.remove('surveys', ['co1']);
          ods.write('interventions', [{ id: 'ca2' }]);
        },
        serve: (on: boolean) => {
          ods.servesKeyChanges = on;
        },
        results: [
          { resource: 'surveys', status: 'fetched', records: 1, deleted: 1, keyChanges: 0, warnings: [expect.stringMatching(/does not serve surveys\/keyChanges \(404\)/)] },
          { resource: 'interventions', status: 'fetched', records: 1, deleted: 0, keyChanges: 0, warnings: [expect.stringMatching(/interventions\/keyChanges \(404\)/)] },
        ],
        message: /the ODS does not serve \/keyChanges \(404\) for 2 resources \(surveys, interventions\): .*set keyChanges: false on edfi "ods"/,
        notInMessage: /\/deletes \(404\)/,
        warnedOnceFor: 'surveys',
        afterwards: async (bucket: string, deps: EdfiFetchDeps, pipeline: ReturnType<typeof pipelineWith>) => {
          const stored = await records(bucket, 'ods_surveys');
          expect(stored.filter((r) => !('keyValues' in r)).map((r) => r.id)).toEqual(['co1', 'co2', 'co3']);
          expect(stored.filter((r) => 'keyValues' in r).map((r) => r.id)).toEqual(['co1']); // the deletes part
          const saved = await state(bucket);
          expect(saved.state.checkpoint).toBeUndefined();
          expect(await fetchEdfi({ ...deps, now: () => new Date('2026-11-22T06:00:00Z') }, pipeline, 'ods')).toMatchObject({ status: 'empty' });
          // keyChanges: false asks no more
          ods.write('surveys', [{ id: 'co4' }]);
          const asked = ods.requests.length;
          await fetchEdfi({ ...deps, now: () => new Date('2026-11-23T06:00:00Z') }, pipelineWith({ resources: ['surveys', 'interventions'], keyChanges: false }), 'ods');
          expect(ods.requests.slice(asked).filter((r) => r.path.endsWith('/keyChanges'))).toEqual([]);
          expect(ods.requests.slice(asked).filter((r) => r.path.endsWith('/deletes')).length).toBeGreaterThan(0);
        },
      },
    ].map((c) => [c.title, c] as const),
  )('%s', async (_title, c) => {
    const { bucket, deps } = await setup();
    c.first();
    const pipeline = pipelineWith({ resources: c.resources });
    await fetchEdfi({ ...deps, now: () => new Date('2026-11-20T06:00:00Z') }, pipeline, 'ods');
    c.second();
    c.serve(false);
    const warn = vi.spyOn(logger, 'warn');
    try {
      const outcome = await fetchEdfi({ ...deps, now: () => new Date('2026-11-21T06:00:00Z') }, pipeline, 'ods');
      expect(outcome).toMatchObject({ status: 'fetched', records: 2, results: c.results });
      if (outcome.status === 'busy') throw new Error('busy');
      expect(outcome.message).toMatch(c.message);
      if (c.notInMessage) expect(outcome.message).not.toMatch(c.notInMessage);
      const endpointWarnings = warn.mock.calls.map((call) => String(call[0])).filter((m) => m.includes(`/${c.endpoint} (404)`));
      expect(endpointWarnings).toHaveLength(2);
      expect(endpointWarnings.filter((m) => m.includes(`${c.warnedOnceFor}/${c.endpoint}`))).toHaveLength(1);
    } finally {
      warn.mockRestore();
      c.serve(true);
    }
    await c.afterwards(bucket, deps, pipeline);
  });

  it("reads the key changes of an incremental run into parts of their own, declared before the run's records", async () => {
    const { bucket, deps } = await setup();
    ods.naturalKeys.gradebookEntries = ['gradebookEntryIdentifier', 'namespace'];
    ods.write('gradebookEntries', [
      { id: 'g1', gradebookEntryIdentifier: 'HW-1', namespace: 'uri://district' },
      { id: 'g2', gradebookEntryIdentifier: 'HW-2', namespace: 'uri://district' },
    ]);
    const pipeline = pipelineWith({ resources: ['gradebookEntries'], pageSize: 2 });
    await fetchEdfi({ ...deps, now: () => new Date('2026-11-20T06:00:00Z') }, pipeline, 'ods');
    ods.changeKey('gradebookEntries', 'g1', { gradebookEntryIdentifier: 'HW-1a', namespace: 'uri://district' });
    ods.changeKey('gradebookEntries', 'g2', { gradebookEntryIdentifier: 'HW-2a', namespace: 'uri://district' });
    ods.changeKey('gradebookEntries', 'g1', { gradebookEntryIdentifier: 'HW-1b', namespace: 'uri://district' });
    const outcome = await fetchEdfi({ ...deps, now: () => new Date('2026-11-21T06:00:00Z') }, pipeline, 'ods');
    expect(outcome).toMatchObject({ status: 'fetched', records: 2, results: [{ keyChanges: 3, deleted: 0 }] });
    if (outcome.status === 'busy') throw new Error('busy');
    expect(outcome.message).toMatch(/2 records, 3 key changes from 1 of 1 resources/);
    // paged by offset as the deletes are (pages of 2)
    const offsets = ods.requests.filter((r) => r.path === '/data/v3/ed-fi/gradebookEntries/keyChanges').map((r) => Number(r.query.get('offset')));
    expect(offsets.slice(0, 2)).toEqual([0, 2]);
    expect(new Set(offsets).size).toBe(offsets.length); // each page once (pages are asked for ahead, up to the concurrency)
    const manifest = JSON.parse((await objectBytes(bucket, `raw/ods_gradebook_entries/${outcome.run}/_manifest.json`)).toString()) as {
      objects: { key: string; records: number; declaration: Record<string, unknown> }[];
    };
    expect(manifest.objects.map((o) => [o.key.split('/').at(-1), o.records, o.declaration.holds, o.declaration.replaces])).toEqual([
      ['keychanges-00001.ndjson.gz', 3, 'keyChanges', 'nothing'],
      ['part-00001.ndjson.gz', 2, 'rows', 'nothing'],
    ]);
    expect((manifest.objects[0]!.declaration.part as number) < (manifest.objects[1]!.declaration.part as number)).toBe(true);
    // the items as the ODS serves them: the resource id, its change version, the key before and after
    const items = await records(bucket, 'ods_gradebook_entries');
    expect(items.filter((r) => 'oldKeyValues' in r)).toEqual([
      {
        id: 'g1',
        changeVersion: expect.any(Number),
        oldKeyValues: { gradebookEntryIdentifier: 'HW-1', namespace: 'uri://district' },
        newKeyValues: { gradebookEntryIdentifier: 'HW-1a', namespace: 'uri://district' },
      },
      {
        id: 'g2',
        changeVersion: expect.any(Number),
        oldKeyValues: { gradebookEntryIdentifier: 'HW-2', namespace: 'uri://district' },
        newKeyValues: { gradebookEntryIdentifier: 'HW-2a', namespace: 'uri://district' },
      },
      {
        id: 'g1',
        changeVersion: expect.any(Number),
        oldKeyValues: { gradebookEntryIdentifier: 'HW-1a', namespace: 'uri://district' },
        newKeyValues: { gradebookEntryIdentifier: 'HW-1b', namespace: 'uri://district' },
      },
    ]);
  });

  it('checkpoints in the middle of the key changes and continues in the next invocation, every key change once', async () => {
    let clock = Date.parse('2026-11-21T06:00:00Z');
    const { bucket, deps } = await setup({ now: () => new Date(clock), timeoutMs: 60_000, marginMs: 20_000 });
    ods.naturalKeys.learningObjectives = ['learningObjectiveId', 'namespace'];
    const objective = (id: string, n: number) => ({ id, learningObjectiveId: `LO-${id}-${n}`, namespace: 'uri://district' });
    ods.write(
      'learningObjectives',
      ['l1', 'l2', 'l3', 'l4'].map((id) => objective(id, 0)),
    );
    const pipeline = pipelineWith({ resources: ['learningObjectives'], pageSize: 3, partRecords: 3, concurrency: 1 });
    await fetchEdfi(deps, pipeline, 'ods');
    // 16 key changes (each objective renumbered 4 times), then the run: 2 pages of records, 6 of key changes, 5 s each
    for (let n = 1; n <= 4; n++) for (const id of ['l1', 'l2', 'l3', 'l4']) ods.changeKey('learningObjectives', id, objective(id, n));
    clock += 3_600_000;
    ods.onData = () => (clock += 5_000);
    const outcomes = [await fetchEdfi(deps, pipeline, 'ods')];
    // stopped among the key changes: some parts of them kept in the checkpoint, the list not done
    const during = (await state(bucket)).state.checkpoint as { jobs: Record<string, { done: boolean; keyChanges?: { done: boolean; parts: unknown[] } }> };
    expect(during.jobs['shared/learningObjectives']).toMatchObject({ done: true, keyChanges: { done: false } });
    expect(during.jobs['shared/learningObjectives']!.keyChanges!.parts.length).toBeGreaterThan(0);
    while (outcomes.at(-1)!.status === 'checkpointed' && outcomes.length < 6) outcomes.push(await fetchEdfi(deps, pipeline, 'ods'));
    ods.onData = undefined;
    expect(outcomes.length).toBeGreaterThan(1);
    const last = outcomes.at(-1)!;
    if (last.status === 'busy') throw new Error('busy');
    expect(last).toMatchObject({ status: 'fetched', records: 4, results: [{ keyChanges: 16 }] });
    // every key change once, in the ODS's order, and the record's last key is the one in its rows
    const stored = await records(bucket, 'ods_learning_objectives');
    const changes = stored.filter((r) => 'oldKeyValues' in r) as { id: string; changeVersion: number; newKeyValues: { learningObjectiveId: string } }[];
    expect(changes.map((c) => c.changeVersion)).toEqual([...changes.map((c) => c.changeVersion)].sort((a, b) => a - b));
    expect(changes.map((c) => c.newKeyValues.learningObjectiveId)).toEqual([1, 2, 3, 4].flatMap((n) => ['l1', 'l2', 'l3', 'l4'].map((id) => `LO-${id}-${n}`)));
    const manifest = JSON.parse((await objectBytes(bucket, `raw/ods_learning_objectives/${last.run}/_manifest.json`)).toString()) as {
      complete: boolean;
      objects: { key: string; records: number; declaration: { holds: string; part: number } }[];
    };
    expect(manifest.complete).toBe(true);
    expect(manifest.objects.map((o) => `${o.declaration.holds} ${o.records}`)).toEqual(['keyChanges 3', 'keyChanges 3', 'keyChanges 3', 'keyChanges 3', 'keyChanges 3', 'keyChanges 1', 'rows 3', 'rows 1']);
    const parts = manifest.objects.map((o) => o.declaration.part);
    expect(parts).toEqual([...parts].sort((a, b) => a - b));
    expect((await state(bucket)).state.checkpoint).toBeUndefined();
  });

  it('a run begun before key changes were read keeps its part numbers and numbers its key changes after them', async () => {
    let clock = Date.parse('2026-11-21T06:00:00Z');
    const { bucket, deps } = await setup({ now: () => new Date(clock), timeoutMs: 60_000, marginMs: 20_000 });
    ods.naturalKeys.programEvaluations = ['cohortIdentifier'];
    ods.write(
      'programEvaluations',
      Array.from({ length: 16 }, (_, i) => ({ id: `h${i}`, cohortIdentifier: `C-${i}` })),
    );
    const pipeline = pipelineWith({ resources: ['programEvaluations'], pageSize: 2, partRecords: 2, concurrency: 1 });
    await fetchEdfi(deps, pipeline, 'ods');
    // every record changed (9 pages of records at 5 s: the first invocation stops among them), two keys changed
    ods.write(
      'programEvaluations',
      Array.from({ length: 16 }, (_, i) => ({ id: `h${i}`, cohortIdentifier: `C-${i}`, cohortDescription: 'changed' })),
    );
    ods.changeKey('programEvaluations', 'h1', { cohortIdentifier: 'C-1b', cohortDescription: 'changed' });
    ods.changeKey('programEvaluations', 'h2', { cohortIdentifier: 'C-2b', cohortDescription: 'changed' });
    clock += 3_600_000;
    ods.onData = () => (clock += 5_000);
    try {
      const first = await fetchEdfi(deps, pipeline, 'ods');
      expect(first.status).toBe('checkpointed');
      // as the version before key changes saved it: no layout
      const saved = JSON.parse((await objectBytes(bucket, edfiStateKey('ods'))).toString()) as { state: { checkpoint: Record<string, unknown> } };
      expect(saved.state.checkpoint.layout).toBe(2);
      delete saved.state.checkpoint.layout;
      await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: edfiStateKey('ods'), Body: JSON.stringify(saved), ContentType: 'application/json' }));
      let last = await fetchEdfi(deps, pipeline, 'ods');
      for (let i = 0; i < 5 && last.status === 'checkpointed'; i++) last = await fetchEdfi(deps, pipeline, 'ods');
      expect(last).toMatchObject({ status: 'fetched', records: 16, results: [{ keyChanges: 2 }] });
      if (last.status === 'busy') throw new Error('busy');
      const manifest = JSON.parse((await objectBytes(bucket, `raw/ods_program_evaluations/${last.run}/_manifest.json`)).toString()) as { objects: { declaration: { holds: string; part: number } }[] };
      const part = (holds: string) => manifest.objects.filter((o) => o.declaration.holds === holds).map((o) => o.declaration.part);
      // the records as that version numbered them (from 1), the key changes after them all
      expect(part('rows')).toEqual(Array.from({ length: 8 }, (_, i) => i + 1));
      expect(part('keyChanges')).toEqual([200_001]);
    } finally {
      ods.onData = undefined;
    }
  });

  it('counts retried 429s, 500s and token renewals in the summary, and logs each with its status, attempt and wait', async () => {
    const { deps } = await setup();
    ods.write('bellSchedules', [{ id: 'b1' }, { id: 'b2' }, { id: 'b3' }]);
    const pipeline = pipelineWith(
      { resources: ['bellSchedules'], pageSize: 2, concurrency: 1, changeQueries: false },
      { datasets: [{ name: 'ods_bell_schedules', clean: { key: ['id'], mode: 'replace' } }] as never },
    );
    ods.failNext('/bellSchedules', 0, { status: 429, body: '{"message":"slow down"}', contentType: 'application/json', headers: { 'retry-after': '7' } });
    ods.failNext('/bellSchedules', 2, { status: 500, body: '{"message":"oops"}', contentType: 'application/json' });
    const waits: number[] = [];
    const warn = vi.spyOn(logger, 'warn');
    let outcome;
    let lines: { message: string; extra?: Record<string, unknown> }[] = [];
    try {
      // the token is revoked after the first page: the second page's first answer is a 401
      let pages = 0;
      ods.onData = () => {
        if (++pages === 2) ods.revokeTokens();
      };
      outcome = await fetchEdfi({ ...deps, sleep: async (ms) => void waits.push(ms), baseDelayMs: 1000 }, pipeline, 'ods');
      lines = warn.mock.calls.map((c) => ({ message: String(c[0]), extra: c[1] as Record<string, unknown> | undefined }));
    } finally {
      ods.onData = undefined;
      warn.mockRestore();
    }
    if (outcome.status === 'busy') throw new Error('busy');
    expect(outcome.records).toBe(3);
    expect(outcome.http).toMatchObject({ retries: 2, throttled: 1, serverErrors: 1, networkErrors: 0, tokenRenewals: 1 });
    expect(outcome.message).toMatch(/2 retries \(1 after 429, 1 after 5xx\), 1 token renewal/);
    const throttled = lines.find((l) => l.extra?.status === 429)!;
    expect(throttled.message).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/data\/v3\/ed-fi\/bellSchedules\?.* got 429 Too Many Requests on attempt 1; trying again in 7 s/);
    expect(throttled.extra).toMatchObject({ attempt: 1, waitMs: 7000 });
    const failed = lines.find((l) => l.extra?.status === 500)!;
    expect(failed.message).toMatch(/bellSchedules\?.* got 500 Internal Server Error on attempt 1; trying again in (0\.\d+|1) s$/);
    expect(failed.extra!.waitMs).toBeGreaterThanOrEqual(500);
    expect(failed.extra!.waitMs).toBeLessThanOrEqual(1000);
    expect(waits).toContain(7000);
    expect(lines.filter((l) => /new token \(the API answered 401\)/.test(l.message))).toHaveLength(1);
  });

  it('renews a token about to expire before asking, and counts each renewal as the ODS saw it', async () => {
    let clock = Date.parse('2026-11-21T06:00:00Z');
    const { deps } = await setup({ now: () => new Date(clock) });
    ods.write('locations', [{ id: 'r1' }, { id: 'r2' }, { id: 'r3' }, { id: 'r4' }, { id: 'r5' }]);
    const pipeline = pipelineWith(
      { resources: ['locations'], pageSize: 2, concurrency: 1, changeQueries: false },
      { datasets: [{ name: 'ods_locations', clean: { key: ['id'], mode: 'replace' } }] as never },
    );
    ods.tokenLifetime = 40; // renewed 30 s before it expires: after 10 s of the run's clock
    ods.onData = () => (clock += 15_000);
    const tokensBefore = ods.tokensIssued;
    const warn = vi.spyOn(logger, 'warn');
    let renewalLines = 0;
    let outcome;
    try {
      outcome = await fetchEdfi(deps, pipeline, 'ods');
      renewalLines = warn.mock.calls.filter((c) => /new token \(the token expires within 30 s\)/.test(String(c[0]))).length;
    } finally {
      warn.mockRestore();
      ods.onData = undefined;
      ods.tokenLifetime = 1800;
    }
    if (outcome.status === 'busy') throw new Error('busy');
    expect(outcome.records).toBe(5);
    const renewed = ods.tokensIssued - tokensBefore - 1;
    expect(renewed).toBeGreaterThanOrEqual(2); // three pages, 15 s apart
    expect(outcome.http.tokenRenewals).toBe(renewed);
    expect(renewalLines).toBe(renewed);
    expect(outcome.message).toMatch(new RegExp(`${renewed} token renewals`));
  });

  it('lets only one of two runs at once work; the other says so and writes nothing', async () => {
    const { bucket, deps } = await setup();
    ods.write('cohorts', [{ id: 'k1' }, { id: 'k2' }]);
    const pipeline = pipelineWith({ resources: ['cohorts'] });
    ods.delayMs = 30;
    const [a, b] = await Promise.all([fetchEdfi(deps, pipeline, 'ods'), fetchEdfi(deps, pipeline, 'ods')]);
    ods.delayMs = 0;
    expect([a.status, b.status].sort()).toEqual(['busy', 'fetched']);
    expect([a, b].find((o) => o.status === 'busy')!.message).toMatch(/another fetch is running/);
    expect((await records(bucket, 'ods_cohorts')).map((r) => r.id)).toEqual(['k1', 'k2']);
  });

  it('refuses wrong credentials with a clear error that does not show the secret', async () => {
    const { deps } = await setup();
    const wrong = `it-edfi-wrong-${randomUUID()}`;
    await secretsClient().send(new CreateSecretCommand({ Name: wrong, SecretString: JSON.stringify({ key: 'k', secret: 'not-the-secret' }) }));
    const pipeline = parsePipeline({ project: 'it_edfi', datasets: [], edfi: [{ name: 'ods', url: ods.base, secret: wrong, resources: ['students'] }] });
    const error = await fetchEdfi(deps, pipeline, 'ods').catch((e: Error) => e);
    expect(String(error)).toMatch(/oauth2 token request to http:\/\/127\.0\.0\.1:\d+\/oauth\/token answered 401/);
    expect(String(error)).not.toContain('not-the-secret');
  });

  it('keeps clean tables current: fetch → stage → clean, a change applied as an upsert by id', async () => {
    ods.write('localEducationAgencies', [
      { id: 'l1', nameOfInstitution: 'District One' },
      { id: 'l2', nameOfInstitution: 'District Two' },
    ]);
    const { pipeline, pool } = await freshProject({
      project: 'it_edfi_e2e',
      datasets: [],
      edfi: [{ name: 'ods', url: ods.base, secret, resources: ['localEducationAgencies'] }],
    });
    const { bucket, deps } = await setup();
    const stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
    async function runAt(at: string) {
      const outcome = await fetchEdfi({ ...deps, now: () => new Date(at) }, pipeline, 'ods');
      if (outcome.status !== 'fetched') throw new Error(`nothing fetched: ${outcome.message}`);
      for (const key of outcome.results.flatMap((r) => r.parts)) {
        const staged = await stageObject(stageDeps, { bucket, key });
        if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
        await cleanLoad({ pool, pipeline }, staged.loadId);
      }
    }
    await runAt('2026-11-20T06:00:00Z');
    ods.write('localEducationAgencies', [{ id: 'l2', nameOfInstitution: 'District Two (merged)' }]);
    await runAt('2026-11-21T06:00:00Z');
    expect(await rows(pool, 'SELECT id, nameofinstitution FROM it_edfi_e2e.ods_local_education_agencies ORDER BY id')).toEqual([
      { id: 'l1', nameofinstitution: 'District One' },
      { id: 'l2', nameofinstitution: 'District Two (merged)' },
    ]);

    // a record deleted in the ODS: the next run brings its id from /deletes, and the clean step deletes the row
    ods.remove('localEducationAgencies', ['l1']);
    await runAt('2026-11-22T06:00:00Z');
    expect(await rows(pool, 'SELECT id FROM it_edfi_e2e.ods_local_education_agencies ORDER BY id')).toEqual([{ id: 'l2' }]);
    expect(await rows(pool, `SELECT (detected->>'deleted')::int AS deleted, rows_loaded::int FROM etl.loads WHERE project = 'it_edfi_e2e' AND object_key LIKE '%deletes-00001%'`)).toEqual([
      { deleted: 1, rows_loaded: 0 },
    ]);
  });

  it('without change queries, replaces the table with each run, its parts together, whatever order they are cleaned in', async () => {
    ods.write(
      'calendars',
      ['k1', 'k2', 'k3', 'k4', 'k5'].map((id) => ({ id, calendarCode: id.toUpperCase() })),
    );
    const { pipeline, pool } = await freshProject({
      project: 'it_edfi_full',
      datasets: [],
      edfi: [{ name: 'ods', url: ods.base, secret, changeQueries: false, pageSize: 2, partRecords: 2, resources: ['calendars'] }],
    });
    // a full fetch each run: generated with upsert by id; as replace it mirrors deletions too
    const replacing = { ...pipeline, datasets: pipeline.datasets.map((d) => ({ ...d, clean: { ...d.clean, mode: 'replace' as const } })) };
    const { bucket, deps } = await setup();
    const stageDeps = { pool, s3: s3Client(), pipeline: replacing, notifyClean: async () => undefined };
    async function runAt(at: string) {
      const outcome = await fetchEdfi({ ...deps, now: () => new Date(at) }, replacing, 'ods');
      if (outcome.status !== 'fetched') throw new Error(`nothing fetched: ${outcome.message}`);
      const loads: number[] = [];
      for (const key of outcome.results.flatMap((r) => r.parts)) {
        const staged = await stageObject(stageDeps, { bucket, key });
        if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
        loads.push(staged.loadId);
      }
      // the last part first: the others are not "superseded" by it
      return Promise.all(loads.reverse().map((id) => cleanLoad({ pool, pipeline: replacing }, id)));
    }
    const first = await runAt('2026-11-20T06:00:00Z');
    expect(first.map((o) => o.status)).toEqual(['loaded', 'loaded', 'loaded']);
    expect(await rows(pool, 'SELECT id FROM it_edfi_full.ods_calendars ORDER BY id')).toEqual(['k1', 'k2', 'k3', 'k4', 'k5'].map((id) => ({ id })));

    ods.remove('calendars', ['k2']);
    await runAt('2026-11-21T06:00:00Z');
    expect(await rows(pool, 'SELECT id FROM it_edfi_full.ods_calendars ORDER BY id')).toEqual(['k1', 'k3', 'k4', 'k5'].map((id) => ({ id })));
  });

  it('keeps both years of a year-specific ODS whose years share ids, keyed [id, odsSchoolYear] as the README says', async () => {
    ods.write('studentSectionAssociations', [{ id: 'ssa1', sectionIdentifier: 'MATH-1' }], 2025);
    ods.write('studentSectionAssociations', [{ id: 'ssa1', sectionIdentifier: 'MATH-2' }], 2026);
    const { pipeline, pool } = await freshProject({
      project: 'it_edfi_years',
      datasets: [{ name: 'ods_student_section_associations', clean: { key: ['id', 'odsSchoolYear'], mode: 'upsert' } } as never],
      edfi: [{ name: 'ods', url: ods.base, secret, instance: 'yearSpecific', schoolYears: [2025, 2026], resources: ['studentSectionAssociations'] }],
    });
    const { bucket, deps } = await setup();
    const outcome = await fetchEdfi(deps, pipeline, 'ods');
    if (outcome.status !== 'fetched') throw new Error(`nothing fetched: ${outcome.message}`);
    const stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
    for (const key of outcome.results.flatMap((r) => r.parts)) {
      const staged = await stageObject(stageDeps, { bucket, key });
      if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
      await cleanLoad({ pool, pipeline }, staged.loadId);
    }
    expect(await rows(pool, 'SELECT id, odsschoolyear::int AS year, sectionidentifier FROM it_edfi_years.ods_student_section_associations ORDER BY 2')).toEqual([
      { id: 'ssa1', year: 2025, sectionidentifier: 'MATH-1' },
      { id: 'ssa1', year: 2026, sectionidentifier: 'MATH-2' },
    ]);
  });

  it('keeps a deleted record deleted when an older part is cleaned after the deletion', async () => {
    ods.write('stateEducationAgencies', [
      { id: 'x1', name: 'One' },
      { id: 'x2', name: 'Two' },
    ]);
    const { pipeline, pool } = await freshProject({
      project: 'it_edfi_tomb',
      datasets: [],
      edfi: [{ name: 'ods', url: ods.base, secret, resources: ['stateEducationAgencies'] }],
    });
    const { bucket, deps } = await setup();
    const stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
    async function fetchAndStage(at: string): Promise<number[]> {
      const outcome = await fetchEdfi({ ...deps, now: () => new Date(at) }, pipeline, 'ods');
      if (outcome.status !== 'fetched') throw new Error(`nothing fetched: ${outcome.message}`);
      const ids: number[] = [];
      for (const key of outcome.results.flatMap((r) => r.parts)) {
        const staged = await stageObject(stageDeps, { bucket, key });
        if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
        ids.push(staged.loadId);
      }
      return ids;
    }
    for (const id of await fetchAndStage('2026-11-20T06:00:00Z')) await cleanLoad({ pool, pipeline }, id);
    ods.write('stateEducationAgencies', [{ id: 'x1', name: 'One (renamed)' }]);
    const changed = await fetchAndStage('2026-11-21T06:00:00Z');
    ods.remove('stateEducationAgencies', ['x1']);
    const deleted = await fetchAndStage('2026-11-22T06:00:00Z');

    for (const id of [...deleted, ...changed]) await cleanLoad({ pool, pipeline }, id); // the deletion first
    expect(await rows(pool, 'SELECT id, name FROM it_edfi_tomb.ods_state_education_agencies ORDER BY id')).toEqual([{ id: 'x2', name: 'Two' }]);
  });
});

describe('paging an Ed-Fi ODS / API by cursor where it offers it (7.3+), by offset otherwise', () => {
  const dataRequests = (path: string) => ods.requests.filter((r) => r.path.endsWith(path));

  it('with page tokens: asks partitions within the change window, reads every record once, and no offset', async () => {
    ods.servesPageTokens = true;
    try {
      const { bucket, deps } = await setup();
      const written = students(1, 37).map((s) => ({ ...s, id: `c${s.id as string}` }));
      ods.write('learningStandards', written);
      const pipeline = pipelineWith({ resources: ['learningStandards'], pageSize: 5, concurrency: 3 });
      const before = ods.requests.length;
      const first = await fetchEdfi(deps, pipeline, 'ods');
      expect(first).toMatchObject({ status: 'fetched', records: 37 });
      const asked = ods.requests.slice(before).filter((r) => r.path.includes('/learningStandards'));
      expect(asked.filter((r) => r.path.endsWith('/learningStandards/partitions')).map((r) => r.query.get('number'))).toEqual(['3']);
      expect(asked.some((r) => r.query.has('offset'))).toBe(false);
      // 3 partitions of 13, 13, 11 records in pages of 5: 3 + 3 + 3 pages
      expect(asked.filter((r) => r.query.has('pageToken')).every((r) => r.query.get('pageSize') === '5')).toBe(true);
      expect(asked.filter((r) => r.query.has('pageToken'))).toHaveLength(9);
      const got = (await records(bucket, 'ods_learning_standards')).map((r) => r.id as string);
      expect(got).toHaveLength(37);
      expect([...got].sort()).toEqual(written.map((w) => w.id as string).sort());

      // incremental: the partitions and pages carry the change window, and hold only the changes
      const through = (await state(bucket)).state.versions['shared/learningStandards']!;
      ods.write(
        'learningStandards',
        written.slice(30, 34).map((w) => ({ ...w, firstName: 'Changed' })),
      );
      const mark = ods.requests.length;
      const second = await fetchEdfi(deps, pipeline, 'ods');
      expect(second).toMatchObject({ status: 'fetched', records: 4 });
      const window = ods.requests.slice(mark).filter((r) => r.path.endsWith('/learningStandards/partitions'))[0]!;
      expect(window.query.get('minChangeVersion')).toBe(String(through + 1));
      expect(
        ods.requests
          .slice(mark)
          .filter((r) => r.query.has('pageToken'))
          .every((r) => r.query.get('minChangeVersion') === String(through + 1)),
      ).toBe(true);
      const changed = (await records(bucket, 'ods_learning_standards')).filter((r) => r.firstName === 'Changed').map((r) => r.id);
      expect(changed.sort()).toEqual(written.slice(30, 34).map((w) => w.id));
    } finally {
      ods.servesPageTokens = false;
    }
  });

  it('with page tokens: a checkpointed run continues at the first page not in a finished part, every record once', async () => {
    ods.servesPageTokens = true;
    let clock = Date.parse('2026-11-21T06:00:00Z');
    try {
      const { bucket, deps } = await setup({ now: () => new Date(clock), timeoutMs: 60_000, marginMs: 20_000 });
      const written = students(1, 40).map((s) => ({ ...s, id: `m${s.id as string}` }));
      ods.write('marks', written);
      ods.onData = () => (clock += 5_000);
      const pipeline = pipelineWith({ resources: ['marks'], pageSize: 3, concurrency: 2, partRecords: 6 });
      const first = await fetchEdfi(deps, pipeline, 'ods');
      expect(first.status).toBe('checkpointed');
      let last = first;
      for (let i = 0; i < 10 && last.status === 'checkpointed'; i++) last = await fetchEdfi(deps, pipeline, 'ods');
      ods.onData = undefined;
      expect(last).toMatchObject({ status: 'fetched', records: 40 });
      const got = (await records(bucket, 'ods_marks')).map((r) => r.id as string);
      expect(got).toHaveLength(40);
      expect([...got].sort()).toEqual(written.map((w) => w.id as string));
    } finally {
      ods.onData = undefined;
      ods.servesPageTokens = false;
    }
  });

  it('with page tokens: reads the partitions of one resource at once, never more requests than concurrency, every record once', async () => {
    ods.servesPageTokens = true;
    ods.delayMs = 40;
    try {
      const { bucket, deps } = await setup();
      const written = students(1, 30).map((s) => ({ ...s, id: `q${s.id as string}` }));
      ods.write('questions', written);
      ods.maxInFlight = 0;
      const outcome = await fetchEdfi(deps, pipelineWith({ resources: ['questions'], pageSize: 4, partRecords: 4, concurrency: 3 }), 'ods');
      expect(outcome).toMatchObject({ status: 'fetched', records: 30 });
      // 3 partitions of 10 read side by side: 3 requests in flight, never more
      expect(ods.maxInFlight).toBe(3);
      const got = (await records(bucket, 'ods_questions')).map((r) => r.id as string);
      expect([...got].sort()).toEqual(written.map((w) => w.id as string));
      if (outcome.status === 'busy') throw new Error('busy');
      // each partition's parts: numbered as begun, each number once, listed in order
      const manifest = JSON.parse((await objectBytes(bucket, `raw/ods_questions/${outcome.run}/_manifest.json`)).toString()) as {
        objects: { key: string; records: number; declaration: { part: number } }[];
      };
      const numbers = manifest.objects.map((o) => Number(/part-(\d+)\.ndjson\.gz$/.exec(o.key)![1]));
      expect(numbers).toEqual(Array.from({ length: 9 }, (_, i) => i + 1)); // 3 partitions × (4 + 4 + 2)
      expect(manifest.objects.map((o) => o.declaration.part)).toEqual(numbers.map((n) => 100_000 + n));
      expect(manifest.objects.reduce((n, o) => n + o.records, 0)).toBe(30);
    } finally {
      ods.delayMs = 0;
      ods.servesPageTokens = false;
    }
  });

  it('without them (partitions answers 404): asks once per run, then pages by offset as before, every record once', async () => {
    const { bucket, deps } = await setup();
    const written = students(1, 17).map((s) => ({ ...s, id: `t${s.id as string}` }));
    ods.write('terms', written);
    ods.write(
      'tracks',
      written.slice(0, 4).map((w) => ({ ...w, id: `k${w.id as string}` })),
    );
    const before = dataRequests('/partitions').length;
    const outcome = await fetchEdfi(deps, pipelineWith({ resources: ['terms', 'tracks'], pageSize: 5, concurrency: 1 }), 'ods');
    expect(outcome).toMatchObject({ status: 'fetched', records: 21 });
    expect(dataRequests('/partitions').length - before).toBe(1);
    const got = (await records(bucket, 'ods_terms')).map((r) => r.id);
    expect(got).toEqual(written.map((w) => w.id));
  });
});
