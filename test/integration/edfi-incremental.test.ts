/**
 * End to end over real Ed-Fi sample data (test/fixtures/edfi-sample, see its ORIGIN.md): an Ed-Fi
 * API with change queries and deletes, three resources whose nested arrays are exploded into child
 * tables, one full run and two incremental runs delivered the way queues deliver (shuffled, events
 * redelivered, loads cleaned twice, a newer run's parts cleaned before an older run's late ones)
 * must leave every parent and child table as a full reload of the final state does.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatasetDefinition, PipelineDefinition, PipelineInput } from '../../contract/definition.ts';
import { readJsonSecret, s3Client, secretsClient } from '../../functions/common/aws.ts';
import { ident } from '../../functions/common/db.ts';
import { childTableName } from '../../functions/clean/children.ts';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { fetchEdfi, type EdfiFetchDeps } from '../../functions/get/fetch-edfi.ts';
import { stageObject } from '../../functions/stage/stage-object.ts';
import { mulberry32 } from '../../scripts/random.ts';
import { EDFI_CLIENT, startEdfiServer, type EdfiServer } from '../../local/edfi-stand-in.ts';
import { freshBucket, freshProject, rows } from './support.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Rec = Record<string, any>;

const FIXTURE = new URL('../fixtures/edfi-sample/', import.meta.url);
const fixture = (file: string) => JSON.parse(readFileSync(new URL(file, FIXTURE), 'utf8')) as Rec[];
const facts = JSON.parse(readFileSync(new URL('facts.json', FIXTURE), 'utf8')) as Record<string, { records: number; array_elements: Record<string, number> }>;

/** The three resources, each declared as a dataset of its own. */
const RESOURCES = [
  { resource: 'students', dataset: 'students' },
  { resource: 'studentSchoolAssociations', dataset: 'ssa' },
  { resource: 'studentEducationOrganizationAssociations', dataset: 'seoa' },
] as const;
type DatasetName = (typeof RESOURCES)[number]['dataset'];
const LINEAGE = new Set(['_load_id', '_source_line']);

let ods: EdfiServer;
let secret: string;
beforeAll(async () => {
  ods = await startEdfiServer();
  secret = `it-edfi-incr-${randomUUID()}`;
  await secretsClient().send(new CreateSecretCommand({ Name: secret, SecretString: JSON.stringify(EDFI_CLIENT) }));
});
afterAll(() => ods?.close());

function definition(project: string): PipelineInput {
  return {
    project,
    datasets: RESOURCES.map((r) => ({
      name: r.dataset,
      source: { type: 'edfi' as const, api: 'ods', resource: r.resource },
      read: { arrays: 'explode' as const },
      clean: { key: ['id'], mode: 'upsert' as const },
    })),
    edfi: [{ name: 'ods', url: ods.base, secret, changeQueries: true, deletes: true, pageSize: 20, partRecords: 40, resources: RESOURCES.map((r) => ({ ...r })) }],
  };
}

interface Project {
  pipeline: PipelineDefinition;
  pool: pg.Pool;
  bucket: string;
  deps: EdfiFetchDeps;
}

async function project(name: string, input: PipelineInput = definition(name)): Promise<Project> {
  const { pipeline, pool } = await freshProject(input);
  const bucket = await freshBucket('it-edfi-incr');
  return { pipeline, pool, bucket, deps: { s3: s3Client(), bucket, readSecret: readJsonSecret, sleep: async () => undefined } };
}

/** One fetch run at `at`: the keys of every object it stored (records, key changes and deletes parts). */
async function fetchRun(p: Project, at: string, api = 'ods'): Promise<string[]> {
  const outcome = await fetchEdfi({ ...p.deps, now: () => new Date(at) }, p.pipeline, api);
  if (outcome.status !== 'fetched') throw new Error(`nothing fetched: ${outcome.message}`);
  return outcome.results.flatMap((r) => r.parts);
}

/**
 * Deliver objects as the queues would: each object's event to the stage step, each staged load's
 * message to the clean step. With `random`, the next task is any pending one (stage events and
 * clean messages interleaved), an event is redelivered with probability `redeliver`, and a clean
 * message is sent twice with probability `reclean`; without it, first in first out.
 */
async function deliver(p: Project, keys: readonly string[], opts: { random?: () => number; redeliver?: number; reclean?: number } = {}): Promise<void> {
  const { random, redeliver = 0, reclean = 0 } = opts;
  type Task = { stage: string } | { clean: number };
  const queue: Task[] = keys.map((key) => ({ stage: key }));
  if (random) for (const key of keys) if (random() < redeliver) queue.push({ stage: key });
  const stageDeps = {
    pool: p.pool,
    s3: s3Client(),
    pipeline: p.pipeline,
    notifyClean: async ({ loadId }: { loadId: number }) => {
      queue.push({ clean: loadId });
      if (random && random() < reclean) queue.push({ clean: loadId });
    },
  };
  while (queue.length > 0) {
    const task = random ? queue.splice(Math.floor(random() * queue.length), 1)[0]! : queue.shift()!;
    if ('stage' in task) await stageObject(stageDeps, { bucket: p.bucket, key: task.stage });
    else await cleanLoad({ pool: p.pool, pipeline: p.pipeline }, task.clean);
  }
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Elements of every array path (`addresses`, `addresses.periods`…) over the records, as facts.py counts them. */
function elementCounts(records: Iterable<Rec>): Record<string, number> {
  const counts: Record<string, number> = {};
  const walk = (object: Rec, prefix: string) => {
    for (const [key, value] of Object.entries(object)) {
      if (!Array.isArray(value)) continue;
      const path = prefix ? `${prefix}.${key}` : key;
      counts[path] = (counts[path] ?? 0) + value.length;
      for (const element of value) if (element && typeof element === 'object' && !Array.isArray(element)) walk(element as Rec, path);
    }
  };
  for (const record of records) walk(record, '');
  return counts;
}

/** The clean tables of a project (parents and children; not quarantine or tombstone tables). */
async function cleanTables(pool: pg.Pool, schema: string): Promise<string[]> {
  const found = await rows<{ name: string }>(
    pool,
    `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'
        AND table_name !~ '_(quarantine|deleted)$' ORDER BY 1`,
    [schema],
  );
  return found.map((r) => r.name);
}

async function columnsOf(pool: pg.Pool, schema: string, table: string): Promise<Map<string, string>> {
  const found = await rows<{ name: string; type: string }>(
    pool,
    `SELECT column_name AS name, data_type AS type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
    [schema, table],
  );
  return new Map(found.map((c) => [c.name, c.type]));
}

/** Every row of a table as text values of `columns` (NULL where the table lacks the column), sorted. */
async function textRows(pool: pg.Pool, schema: string, table: string, columns: readonly string[]): Promise<string[]> {
  const have = await columnsOf(pool, schema, table);
  if (have.size === 0) return [];
  const select = columns.map((c) => (have.has(c) ? `t.${ident(c)}::text` : 'NULL::text')).join(', ');
  const result = await pool.query({ text: `SELECT ${select} FROM ${ident(schema)}.${ident(table)} t`, rowMode: 'array' });
  return (result.rows as unknown[][]).map((r) => JSON.stringify(r)).sort();
}

async function count(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<number> {
  return Number((await rows<{ n: string }>(pool, sql, params))[0]!.n);
}

describe('Ed-Fi incremental runs over the sample data, nested tables exploded', () => {
  it('a full run followed by two incremental runs leaves every parent and child table equal to a full reload of the final state', { timeout: 300_000 }, async () => {
    const started = performance.now();
    const lap: Record<string, number> = {};
    // the delivery order's seed (EDFI_E2E_SEED=<n> tries another order)
    const random = mulberry32(Number(process.env.EDFI_E2E_SEED ?? 20261120));

    // the ODS, and the test's own model of what it holds (records are cloned before each write:
    // the stand-in keeps the objects it is given)
    const model = new Map<DatasetName, Map<string, Rec>>();
    const deleted = new Map<DatasetName, string[]>(RESOURCES.map((r) => [r.dataset, []]));
    const resourceOf = (dataset: DatasetName) => RESOURCES.find((r) => r.dataset === dataset)!.resource;
    const fixtures = {
      students: fixture('students.json'),
      ssa: fixture('studentSchoolAssociations.json'),
      seoa: fixture('studentEducationOrganizationAssociations.json'),
    } satisfies Record<DatasetName, Rec[]>;
    for (const { resource, dataset } of RESOURCES) {
      model.set(dataset, new Map(fixtures[dataset].map((r) => [r.id as string, structuredClone(r)])));
      ods.write(
        resource,
        fixtures[dataset].map((r) => structuredClone(r)),
      );
    }
    /** The fixture's n-th record of a dataset, as it is now. */
    const idAt = (dataset: DatasetName, n: number) => fixtures[dataset][n]!.id as string;
    const change = (dataset: DatasetName, indexes: number[], edit: (record: Rec, k: number) => void) => {
      const records = indexes.map((n, k) => {
        const record = structuredClone(model.get(dataset)!.get(idAt(dataset, n))!);
        edit(record, k);
        model.get(dataset)!.set(record.id as string, record);
        return structuredClone(record);
      });
      ods.write(resourceOf(dataset), records);
    };
    const remove = (dataset: DatasetName, indexes: number[]) => {
      const ids = indexes.map((n) => idAt(dataset, n));
      for (const id of ids) model.get(dataset)!.delete(id);
      deleted.get(dataset)!.push(...ids);
      ods.remove(resourceOf(dataset), ids);
    };

    // the fixture is what facts.json (computed independently, in Python) says it is
    for (const { resource, dataset } of RESOURCES) {
      expect(fixtures[dataset]).toHaveLength(facts[resource]!.records);
      expect(elementCounts(fixtures[dataset])).toEqual(facts[resource]!.array_elements);
    }

    const inc = await project('it_edfi_incr');
    const schema = inc.pipeline.project;
    const datasetOf = (name: DatasetName) => inc.pipeline.datasets.find((d) => d.name === name)! as DatasetDefinition;

    // ── 1. the full run: every object shuffled, some events redelivered, some loads cleaned twice
    const full = await fetchRun(inc, '2026-11-20T06:00:00Z');
    expect(full.length).toBeGreaterThanOrEqual(12); // 150 records per resource in parts of 40
    await deliver(inc, shuffled(full, random), { random, redeliver: 0.4, reclean: 0.4 });
    lap.full = performance.now() - started;

    for (const { resource, dataset } of RESOURCES) {
      expect(await count(inc.pool, `SELECT count(*) AS n FROM ${ident(schema)}.${ident(dataset)}`), dataset).toBe(facts[resource]!.records);
      for (const [path, elements] of Object.entries(facts[resource]!.array_elements)) {
        const table = childTableName(datasetOf(dataset), path);
        const exists = (await rows<{ t: string | null }>(inc.pool, 'SELECT to_regclass($1) AS t', [`${schema}.${table}`]))[0]!.t;
        const n = exists ? await count(inc.pool, `SELECT count(*) AS n FROM ${ident(schema)}.${ident(table)}`) : 0;
        expect(n, `${table} (${resource} ${path})`).toBe(elements);
      }
    }
    // e.g. races: 151 elements over 150 records, the 105th record's two
    expect(await count(inc.pool, `SELECT count(*) AS n FROM ${ident(schema)}.seoa_races WHERE parent_id = $1`, [idAt('seoa', 104)])).toBe(2);
    expect(await count(inc.pool, `SELECT count(*) AS n FROM ${ident(schema)}.seoa_addresses_periods WHERE parent_id = $1 AND enddate IS NOT NULL`, [idAt('seoa', 99)])).toBe(1);

    // ── 2. incremental run 1: values and nested arrays changed, a property removed, deletions
    change('seoa', [0, 1, 2, 3, 7, 9, 15, 98, 104, 120], (r, k) => {
      if (k % 2 === 0)
        r.races.pop(); // a race dropped (the 105th record keeps one of its two)
      else r.sexDescriptor = r.sexDescriptor.endsWith('#Male') ? 'uri://ed-fi.org/SexDescriptor#Female' : 'uri://ed-fi.org/SexDescriptor#Male';
      if (k % 3 !== 2) r.languages.push({ languageDescriptor: 'uri://ed-fi.org/LanguageDescriptor#Spanish', uses: [{ languageUseDescriptor: 'uri://ed-fi.org/LanguageUseDescriptor#Home language' }] });
      r.telephones[0].telephoneNumber = `(555) 010-${1000 + k}`;
      if (k % 4 === 0) delete r.telephones[0].orderOfPriority;
    });
    change(
      'seoa',
      Array.from({ length: 40 }, (_, i) => 30 + i),
      (r) => (r.hispanicLatinoEthnicity = !r.hispanicLatinoEthnicity),
    );
    remove('seoa', [140, 141, 143, 144, 149]);
    const hadMiddle = fixtures.students.flatMap((r, i) => ('middleName' in r ? [i] : []));
    change('students', hadMiddle.slice(0, 8), (r) => delete r.middleName); // the part has no middleName at all
    change('students', [0, 3, 4, 5, 11], (r) => (r.firstName = `${r.firstName as string}-renamed`));
    remove('students', [100, 110, 130, 140, 148]);
    change('ssa', [0, 1, 2, 3, 4, 5], (r) => (r.entryGradeLevelDescriptor = 'uri://ed-fi.org/GradeLevelDescriptor#Ninth grade'));
    change('ssa', [6, 7], (r) => Object.assign(r, { exitWithdrawDate: '2022-05-27', exitWithdrawTypeDescriptor: 'uri://ed-fi.org/ExitWithdrawTypeDescriptor#Graduated' }));
    remove('ssa', [145, 146, 147, 148, 149]);

    const run1 = await fetchRun(inc, '2026-11-21T06:00:00Z');
    // late: every SEOA records part, the school associations' records, the students' deletions
    const late = run1.filter((k) => /^raw\/seoa\/.*\/part-/.test(k) || /^raw\/ssa\/.*\/part-/.test(k) || /^raw\/students\/.*\/deletes-/.test(k));
    expect(late.length).toBeGreaterThanOrEqual(4);
    expect(run1.filter((k) => k.startsWith('raw/seoa/') && k.includes('/part-')).length).toBe(2); // 50 changed records: two parts
    await deliver(
      inc,
      shuffled(
        run1.filter((k) => !late.includes(k)),
        random,
      ),
      { random, redeliver: 0.4, reclean: 0.4 },
    );
    lap.run1 = performance.now() - started;

    // ── 3. incremental run 2: a property back, a nested-of-nested value changed, records of run 1 changed again or deleted
    change('students', hadMiddle.slice(0, 4), (r, k) => (r.middleName = `Restored${k}`));
    change('students', hadMiddle.slice(8, 11), (r) => delete r.middleName);
    change('students', [0, 3], (r) => (r.firstName = `${r.firstName as string}-again`));
    remove('students', [4, 120, 121]);
    change('seoa', [15, 98, 99, 101, 107], (r) => {
      const first = (r.addresses[0].periods as Rec[])[0]!;
      first.endDate = first.endDate ? '2017-06-30' : '2024-06-30';
    });
    change('seoa', [0], (r) => r.races.push({ raceDescriptor: 'uri://ed-fi.org/RaceDescriptor#Asian' }));
    change('seoa', [1], (r) => (r.telephones[0].telephoneNumber = '(555) 010-9999'));
    change('seoa', [3], (r) => (r.languages = []));
    remove('seoa', [2, 31, 148]);
    change('ssa', [0, 1, 10], (r) => (r.entryDate = '2021-09-01'));
    remove('ssa', [2, 20, 21]);

    const run2 = await fetchRun(inc, '2026-11-22T06:00:00Z');
    await deliver(inc, shuffled(run2, random), { random, redeliver: 0.4, reclean: 0.4 });
    // run 1's late objects, after run 2's, still shuffled and redelivered
    await deliver(inc, shuffled(late, random), { random, redeliver: 0.4, reclean: 0.4 });
    // stale redelivered events of the full run and run 1: nothing changes
    await deliver(inc, shuffled([...full, ...run1], random).slice(0, 5), { random });
    lap.run2 = performance.now() - started;

    // ── 4. a full reload of the final state: a fresh project and bucket, one run, in order
    const reload = await project('it_edfi_reload');
    await deliver(reload, await fetchRun(reload, '2026-11-23T06:00:00Z'));
    lap.reload = performance.now() - started;

    // ── 5. every parent and child table: the same rows (values as text, lineage aside)
    const incTables = await cleanTables(inc.pool, schema);
    const reloadTables = await cleanTables(reload.pool, reload.pipeline.project);
    expect(incTables).toEqual(expect.arrayContaining(['students', 'ssa', 'seoa', 'seoa_races', 'seoa_languages', 'seoa_languages_uses', 'seoa_addresses_periods', 'seoa_telephones']));
    const differences: Record<string, unknown>[] = [];
    const typeDifferences: string[] = [];
    for (const table of [...new Set([...incTables, ...reloadTables])].sort()) {
      const a = await columnsOf(inc.pool, schema, table);
      const b = await columnsOf(reload.pool, reload.pipeline.project, table);
      for (const [c, t] of a) if (b.has(c) && b.get(c) !== t) typeDifferences.push(`${table}.${c}: ${t} (incremental) vs ${b.get(c)!} (reload)`);
      const columns = [...new Set([...a.keys(), ...b.keys()])].filter((c) => !LINEAGE.has(c)).sort();
      const left = await textRows(inc.pool, schema, table, columns);
      const right = await textRows(reload.pool, reload.pipeline.project, table, columns);
      const inRight = new Set(right);
      const inLeft = new Set(left);
      const onlyIncremental = left.filter((r) => !inRight.has(r));
      const onlyReload = right.filter((r) => !inLeft.has(r));
      if (onlyIncremental.length || onlyReload.length || left.length !== right.length) {
        differences.push({ table, columns, rows: [left.length, right.length], onlyIncremental: onlyIncremental.slice(0, 3), onlyReload: onlyReload.slice(0, 3) });
      }
    }
    if (typeDifferences.length) console.info(`column types that differ (values compared as text):\n  ${typeDifferences.join('\n  ')}`);
    expect(differences).toEqual([]);

    // ── 6. the final state is the model's: parents, and each child table's rows per array path
    for (const { dataset } of RESOURCES) {
      const records = [...model.get(dataset)!.values()];
      expect(await count(inc.pool, `SELECT count(*) AS n FROM ${ident(schema)}.${ident(dataset)}`), dataset).toBe(records.length);
      for (const [path, elements] of Object.entries(elementCounts(records))) {
        const table = childTableName(datasetOf(dataset), path);
        const exists = (await rows<{ t: string | null }>(inc.pool, 'SELECT to_regclass($1) AS t', [`${schema}.${table}`]))[0]!.t;
        expect(exists ? await count(inc.pool, `SELECT count(*) AS n FROM ${ident(schema)}.${ident(table)}`) : 0, `${table} (${path})`).toBe(elements);
      }
    }
    expect(await rows(inc.pool, `SELECT id, middlename FROM ${ident(schema)}.students WHERE id = ANY($1) ORDER BY id`, [hadMiddle.slice(0, 8).map((n) => idAt('students', n))])).toEqual(
      hadMiddle
        .slice(0, 8)
        .map((n, i) => ({ id: idAt('students', n), middlename: i < 4 ? `Restored${i}` : null }))
        .sort((x, y) => x.id.localeCompare(y.id)),
    );
    expect(await rows(inc.pool, `SELECT enddate::text AS enddate FROM ${ident(schema)}.seoa_addresses_periods WHERE parent_id = $1 AND addresses_index = 0 ORDER BY index`, [idAt('seoa', 99)])).toEqual([
      { enddate: '2017-06-30' },
      { enddate: null },
    ]);

    // deleted records are gone, and so are their children, in every child table
    for (const { dataset } of RESOURCES) {
      const ids = deleted.get(dataset)!;
      expect(ids.length).toBeGreaterThanOrEqual(8);
      expect(await count(inc.pool, `SELECT count(*) AS n FROM ${ident(schema)}.${ident(dataset)} WHERE id = ANY($1)`, [ids]), dataset).toBe(0);
      for (const table of incTables.filter((t) => t.startsWith(`${dataset}_`))) {
        expect(await count(inc.pool, `SELECT count(*) AS n FROM ${ident(schema)}.${ident(table)} WHERE parent_id = ANY($1)`, [ids]), table).toBe(0);
      }
    }

    // ── 7. the ledger: every load applied, or skipped as superseded; none failed or left behind
    const ledger = await rows<{ status: string; error: string | null; n: string }>(
      inc.pool,
      `SELECT status, CASE WHEN status = 'skipped' THEN left(error, 10) ELSE error END AS error, count(*) AS n FROM etl.loads WHERE project = $1 GROUP BY 1, 2 ORDER BY 1, 2`,
      [schema],
    );
    const bad = ledger.filter((l) => !(l.status === 'loaded' || l.status === 'expanded' || (l.status === 'skipped' && l.error === 'superseded')));
    expect(bad).toEqual([]);
    // the delivery above did meet the cases it is about: rows of older objects set aside, deleted records kept deleted
    const quarantined = await rows<{ rule: string; n: string }>(
      inc.pool,
      `SELECT rule, count(*) AS n FROM (${[...incTables].map((t) => `SELECT rule FROM ${ident(schema)}.${ident(`${t}_quarantine`)}`).join(' UNION ALL ')}) q GROUP BY 1 ORDER BY 1`,
    );
    expect(quarantined.map((q) => q.rule)).toEqual(expect.arrayContaining(['deleted', 'superseded']));

    const seconds = (performance.now() - started) / 1000;
    console.info(
      `edfi incremental e2e: ${seconds.toFixed(1)} s (${Object.entries(lap)
        .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
        .join(', ')})`,
    );
  });
});

/**
 * Key changes (`<resource>/keyChanges`, ODS / API 5.3+): a student-school association whose entry
 * date is corrected keeps its resource id and gets a new natural key. Two datasets read the same
 * ODS: `ssa` keyed by the resource id (the usual Ed-Fi setup) and `ssa_nk` keyed by the natural key
 * (student, school, entry date), each with its nested rows exploded.
 */
describe('Ed-Fi key changes over the sample data', () => {
  const RESOURCE = 'studentSchoolAssociations';
  const NATURAL_KEY = ['studentreference_studentuniqueid', 'schoolreference_schoolid', 'entrydate'];
  let kods: EdfiServer;
  beforeAll(async () => {
    kods = await startEdfiServer();
  });
  afterAll(() => kods?.close());

  const keyDefinition = (name: string): PipelineInput => ({
    project: name,
    datasets: [
      { name: 'ssa', source: { type: 'edfi', api: 'ods', resource: RESOURCE }, read: { arrays: 'explode' }, clean: { key: ['id'], mode: 'upsert' } },
      { name: 'ssa_nk', source: { type: 'edfi', api: 'nk', resource: RESOURCE }, read: { arrays: 'explode' }, clean: { key: NATURAL_KEY, mode: 'upsert' } },
    ],
    edfi: [
      { name: 'ods', url: kods.base, secret, pageSize: 20, partRecords: 40, resources: [{ resource: RESOURCE, dataset: 'ssa' }] },
      { name: 'nk', url: kods.base, secret, pageSize: 20, partRecords: 40, resources: [{ resource: RESOURCE, dataset: 'ssa_nk' }] },
    ],
  });
  const fetchBoth = async (p: Project, at: string) => [...(await fetchRun(p, at, 'ods')), ...(await fetchRun(p, at, 'nk'))];
  /** A record's natural key as the clean table holds it (text), computed from the record itself. */
  const naturalKey = (r: Rec) => JSON.stringify([String(r.studentReference.studentUniqueId), String(r.schoolReference.schoolId), String(r.entryDate)]);
  const dayAfter = (date: string) => new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);

  it('a full run, then key changes (entry dates corrected) delivered out of order, leave both tables as a full reload does, with no row left under an old key', { timeout: 300_000 }, async () => {
    const random = mulberry32(Number(process.env.EDFI_E2E_SEED ?? 20261207));
    const records = fixture(`${RESOURCE}.json`).sort((a, b) => String(a.id).localeCompare(String(b.id)));
    // nested rows under records whose key changes: they must follow their parent to its new key
    for (const n of [0, 1, 2, 5]) records[n]!.educationPlans = [{ educationPlanDescriptor: 'uri://ed-fi.org/EducationPlanDescriptor#Career Pathway' }];
    const model = new Map(records.map((r) => [r.id as string, structuredClone(r)]));
    kods.write(
      RESOURCE,
      records.map((r) => structuredClone(r)),
    );

    const inc = await project('it_edfi_keys', keyDefinition('it_edfi_keys'));
    const schema = inc.pipeline.project;
    const full = await fetchBoth(inc, '2026-12-01T06:00:00Z');
    // the natural-keyed table's first part (the first 40 ids, among them every record whose key changes) arrives after the key changes
    const lateFull = full.filter((k) => k.startsWith('raw/ssa_nk/') && k.endsWith('/part-00001.ndjson.gz'));
    expect(lateFull).toHaveLength(1);
    await deliver(
      inc,
      shuffled(
        full.filter((k) => !lateFull.includes(k)),
        random,
      ),
      { random, redeliver: 0.3, reclean: 0.3 },
    );

    // ── the ODS changes: natural keys corrected (PUTs that change key fields), values, deletions
    const ids = records.map((r) => r.id as string);
    const changeKey = (id: string, edit: (r: Rec) => void) => {
      const r = structuredClone(model.get(id)!);
      edit(r);
      model.set(id, r);
      kods.changeKey(RESOURCE, id, structuredClone(r));
    };
    const write = (id: string, edit: (r: Rec) => void) => {
      const r = structuredClone(model.get(id)!);
      edit(r);
      model.set(id, r);
      kods.write(RESOURCE, [structuredClone(r)]);
    };
    const oldKeys = [0, 1, 2, 3, 4, 5, 6].map((n) => naturalKey(model.get(ids[n]!)!));
    changeKey(ids[0]!, (r) => (r.entryDate = dayAfter(r.entryDate))); // entry date corrected
    changeKey(ids[1]!, (r) => (r.entryDate = dayAfter(r.entryDate)));
    write(ids[1]!, (r) => (r.entryGradeLevelDescriptor = 'uri://ed-fi.org/GradeLevelDescriptor#Tenth grade')); // and changed again
    changeKey(ids[2]!, (r) => (r.entryDate = dayAfter(r.entryDate)));
    changeKey(ids[2]!, (r) => (r.entryDate = dayAfter(r.entryDate))); // corrected twice
    changeKey(ids[3]!, (r) => (r.entryDate = dayAfter(r.entryDate)));
    model.delete(ids[3]!);
    kods.remove(RESOURCE, [ids[3]!]); // corrected, then deleted
    changeKey(ids[4]!, (r) => (r.schoolReference = { schoolId: r.schoolReference.schoolId === 255903999 ? 255903998 : 255903999 })); // another school
    const was5 = model.get(ids[5]!)!.entryDate as string;
    changeKey(ids[5]!, (r) => (r.entryDate = dayAfter(r.entryDate)));
    changeKey(ids[5]!, (r) => (r.entryDate = was5)); // and back
    changeKey(ids[6]!, (r) => (r.entryDate = dayAfter(r.entryDate)));
    write(ids[60]!, (r) => (r.fullTimeEquivalency = 0.5));
    model.delete(ids[70]!);
    kods.remove(RESOURCE, [ids[70]!]);

    const outcome = await fetchEdfi({ ...inc.deps, now: () => new Date('2026-12-02T06:00:00Z') }, inc.pipeline, 'nk');
    if (outcome.status === 'busy') throw new Error('busy');
    expect(outcome.results).toMatchObject([{ dataset: 'ssa_nk', keyChanges: 9, deleted: 2, records: 7 }]);
    expect(outcome.message).toMatch(/7 records, 9 key changes and 2 deletions/);
    // the manifest declares the key changes, numbered before the run's records
    const manifest = JSON.parse(await (await s3Client().send(new GetObjectCommand({ Bucket: inc.bucket, Key: `raw/ssa_nk/${outcome.run}/_manifest.json` }))).Body!.transformToString()) as {
      objects: { key: string; declaration: { holds: string; part: number; identifiedBy?: string[] } }[];
      details: Record<string, unknown>;
    };
    expect(manifest.details).toMatchObject({ records: 7, deleted: 2, keyChanges: 9 });
    const declared = manifest.objects.map((o) => o.declaration);
    expect(declared.map((d) => d.holds)).toEqual(['keyChanges', 'rows', 'deletions']);
    expect(declared[0]).toMatchObject({ identifiedBy: ['id'] });
    expect(declared[0]!.part).toBeLessThan(declared[1]!.part);
    const run1 = [...outcome.results.flatMap((r) => r.parts), ...(await fetchRun(inc, '2026-12-02T06:00:00Z', 'ods'))];
    expect(run1.filter((k) => /\/keychanges-\d+\.ndjson\.gz$/.test(k))).toHaveLength(2); // one per dataset
    // the run's objects in any order (a record's new key before its key change, too), then the full run's late part, then stale redeliveries
    await deliver(inc, shuffled(run1, random), { random, redeliver: 0.4, reclean: 0.4 });
    await deliver(inc, lateFull, { random, redeliver: 0.5, reclean: 0.5 });
    await deliver(inc, shuffled([...full, ...run1], random).slice(0, 6), { random });

    // ── a full reload of the final state
    const reload = await project('it_edfi_keys_reload', keyDefinition('it_edfi_keys_reload'));
    await deliver(reload, await fetchBoth(reload, '2026-12-03T06:00:00Z'));

    // every parent and child table: the same rows (values as text, lineage aside)
    const incTables = await cleanTables(inc.pool, schema);
    expect(incTables).toEqual(await cleanTables(reload.pool, reload.pipeline.project));
    expect(incTables).toEqual(expect.arrayContaining(['ssa', 'ssa_nk', 'ssa_educationplans', 'ssa_nk_educationplans']));
    for (const table of incTables) {
      const columns = [...(await columnsOf(inc.pool, schema, table)).keys()].filter((c) => !LINEAGE.has(c)).sort();
      expect(await textRows(inc.pool, schema, table, columns), table).toEqual(await textRows(reload.pool, reload.pipeline.project, table, columns));
    }
    // the natural-keyed table holds exactly the ODS's natural keys: none of the old ones that changed
    const held = await rows<{ k: string }>(inc.pool, `SELECT jsonb_build_array(${NATURAL_KEY.map((c) => `${c}::text`).join(', ')})::text AS k FROM ${ident(schema)}.ssa_nk`);
    const expected = [...model.values()].map(naturalKey).sort();
    expect(held.map((r) => r.k.replace(/", "/g, '","')).sort()).toEqual(expected);
    const gone = oldKeys.filter((k, i) => i !== 5 && !expected.includes(k));
    expect(gone).toHaveLength(6);
    // nested rows follow: each plan hangs from a row that is there, under the record's current key
    expect(
      await count(
        inc.pool,
        `SELECT count(*) AS n FROM ${ident(schema)}.ssa_nk_educationplans c WHERE NOT EXISTS (SELECT 1 FROM ${ident(schema)}.ssa_nk p WHERE ${NATURAL_KEY.map((k) => `p.${k} = c.parent_${k}`).join(' AND ')})`,
      ),
    ).toBe(0);
    const plans = [...model.values()].reduce((n, r) => n + (r.educationPlans as unknown[]).length, 0);
    expect(plans).toBe(4);
    expect(await count(inc.pool, `SELECT count(*) AS n FROM ${ident(schema)}.ssa_nk_educationplans`)).toBe(plans);
    // the late part's rows under a changed key went to quarantine, saying so; its other rows were applied
    const superseded = await rows<{ raw: string; reason: string }>(
      inc.pool,
      `SELECT raw_value AS raw, reason FROM ${ident(schema)}.ssa_nk_quarantine WHERE rule = 'superseded' AND reason LIKE '%changed this record''s key%'`,
    );
    expect(superseded.length).toBeGreaterThanOrEqual(5);
    // the ledger: every load applied (or superseded); the key changes loads counted what they moved
    const ledger = await rows<{ dataset: string; status: string; deleted: number | null }>(
      inc.pool,
      `SELECT dataset, status, (detected->>'deleted')::int AS deleted FROM etl.loads WHERE project = $1 AND holds = 'keyChanges'`,
      [schema],
    );
    expect(ledger.map((l) => `${l.dataset} ${l.status}`).sort()).toEqual(['ssa loaded', 'ssa_nk loaded']);
    expect(ledger.find((l) => l.dataset === 'ssa')!.deleted).toBe(0);
    const bad = await rows(inc.pool, `SELECT id, status, error FROM etl.loads WHERE project = $1 AND status NOT IN ('loaded', 'expanded') AND NOT (status = 'skipped' AND error LIKE 'superseded%')`, [
      schema,
    ]);
    expect(bad).toEqual([]);
  });

  it(
    'on a year-specific ODS: a table keyed [id, odsSchoolYear] keeps its rows, tables keyed by the natural key and the year (detected or declared columns) move them, one keyed otherwise refuses the key changes whole',
    { timeout: 120_000 },
    async () => {
      const year = 2026;
      const records = fixture(`${RESOURCE}.json`).slice(0, 12);
      kods.write(
        RESOURCE,
        records.map((r) => structuredClone(r)),
        year,
      );
      const apis = {
        byid: ['id', 'odsSchoolYear'],
        bynk: [...NATURAL_KEY, 'odsSchoolYear'],
        other: ['studentreference_studentuniqueid', 'entrygradeleveldescriptor'],
        declared: ['student', 'school', 'entered', 'year'],
      };
      // declared columns: the key fields name them by their sources' last names
      const columns = [
        { name: 'id', type: 'text' as const },
        { name: 'student', source: 'studentReference.studentUniqueId', type: 'text' as const },
        { name: 'school', source: 'schoolReference.schoolId', type: 'integer' as const },
        { name: 'entered', source: 'entryDate', type: 'date' as const },
        { name: 'year', source: 'odsSchoolYear', type: 'integer' as const },
      ];
      const input: PipelineInput = {
        project: 'it_edfi_keys_years',
        datasets: Object.entries(apis).map(([api, key]) => ({
          name: `ssa_${api}`,
          source: { type: 'edfi' as const, api, resource: RESOURCE },
          clean: { key, mode: 'upsert' as const, ...(api === 'declared' ? { columns } : {}) },
        })),
        edfi: Object.keys(apis).map((api) => ({ name: api, url: kods.base, secret, instance: 'yearSpecific' as const, schoolYears: [year], resources: [{ resource: RESOURCE, dataset: `ssa_${api}` }] })),
      };
      const p = await project(input.project, input);
      const fetchAll = async (at: string) => (await Promise.all(Object.keys(apis).map((api) => fetchRun(p, at, api)))).flat();
      await deliver(p, await fetchAll('2026-12-04T06:00:00Z'));
      const moved = structuredClone(records[3]!);
      const before = naturalKey(moved);
      moved.entryDate = dayAfter(moved.entryDate);
      kods.changeKey(RESOURCE, moved.id, structuredClone(moved), year);
      const run = await fetchAll('2026-12-05T06:00:00Z');
      expect(run.filter((k) => k.includes('/2026-keychanges-'))).toHaveLength(4);
      await deliver(p, run);

      const keyChanges = await rows<{ dataset: string; status: string; deleted: number | null; error: string | null }>(
        p.pool,
        `SELECT dataset, status, (detected->>'deleted')::int AS deleted, error FROM etl.loads WHERE project = $1 AND holds = 'keyChanges' ORDER BY dataset`,
        [input.project],
      );
      expect(keyChanges).toEqual([
        { dataset: 'ssa_byid', status: 'loaded', deleted: 0, error: null },
        { dataset: 'ssa_bynk', status: 'loaded', deleted: 1, error: null },
        { dataset: 'ssa_declared', status: 'loaded', deleted: 1, error: null },
        {
          dataset: 'ssa_other',
          status: 'failed',
          deleted: null,
          error: expect.stringMatching(/keyed by studentreference_studentuniqueid, entrygradeleveldescriptor; no single field of its key changes names entrygradeleveldescriptor .*nothing is applied/),
        },
      ]);
      const schema = ident(input.project);
      // keyed [id, odsSchoolYear]: one row per record, the moved one with its new entry date
      expect(await rows(p.pool, `SELECT entrydate::text AS d, odsschoolyear AS y FROM ${schema}.ssa_byid WHERE id = $1`, [moved.id])).toEqual([{ d: moved.entryDate, y: year }]);
      expect(await count(p.pool, `SELECT count(*) AS n FROM ${schema}.ssa_byid`)).toBe(records.length);
      // keyed by the natural key and the year: the old key gone, the new one there
      const nk = (await rows<{ k: string }>(p.pool, `SELECT jsonb_build_array(${NATURAL_KEY.map((c) => `${c}::text`).join(', ')})::text AS k FROM ${schema}.ssa_bynk`)).map((r) =>
        r.k.replace(/", "/g, '","'),
      );
      expect(nk).toHaveLength(records.length);
      expect(nk).toContain(naturalKey(moved));
      expect(nk).not.toContain(before);
      const declared = (await rows<{ k: string }>(p.pool, `SELECT jsonb_build_array(student, school::text, entered::text)::text AS k FROM ${schema}.ssa_declared`)).map((r) => r.k.replace(/", "/g, '","'));
      expect(declared.sort()).toEqual([...nk].sort());
    },
  );
});
