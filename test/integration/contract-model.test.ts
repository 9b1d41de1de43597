/**
 * The clean step's state machine against a model: whatever order the objects of a fetched dataset
 * are delivered, redelivered and cleaned in, the clean table ends as applying them in their own
 * order (contract/objects.ts: run start, then part) would leave it — nothing lost, nothing revived —
 * and every row that is not there is accounted for.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PipelineInput } from '../../contract/definition.ts';
import { declarationMetadata, type ObjectDeclaration } from '../../contract/objects.ts';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { s3Client } from '../../functions/common/aws.ts';
import type { ObjectRef } from '../../functions/common/ledger.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

// ---------------------------------------------------------------------------------------------
// What is generated: runs of objects, and a delivery schedule

/** One record of a rows object. `a` is re-typed by "n/a"; `c` is a column some objects lack. */
interface Rec {
  id: number;
  a: number | 'n/a';
  b: string | null;
  c?: string;
}
type Obj = { holds: 'rows'; records: Rec[] } | { holds: 'deletions'; ids: number[] };
interface Run {
  /** A full run (its parts replace 'run') or an incremental one (they replace 'nothing'). */
  full: boolean;
  /** Parts 1..n, in order. */
  parts: Obj[];
}
type Action = `stage o${number}` | `clean o${number}`;

const recordArb: fc.Arbitrary<Rec> = fc
  .record({
    id: fc.integer({ min: 1, max: 8 }),
    a: fc.oneof(fc.integer({ min: 0, max: 99 }), fc.constant('n/a' as const)),
    b: fc.option(fc.constantFrom('oak', 'elm', 'ash'), { nil: null }),
    c: fc.option(fc.constantFrom('red', 'blue'), { nil: undefined }),
  })
  .map(({ c, ...r }) => (c === undefined ? r : { ...r, c }));
const rowsArb: fc.Arbitrary<Obj> = fc
  .uniqueArray(recordArb, { selector: (r) => r.id, minLength: 1, maxLength: 4 })
  .map((records) => ({ holds: 'rows' as const, records }));
const deletionsArb: fc.Arbitrary<Obj> = fc
  .uniqueArray(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 3 })
  .map((ids) => ({ holds: 'deletions' as const, ids }));
const fullRunArb: fc.Arbitrary<Run> = fc.array(rowsArb, { minLength: 1, maxLength: 3 }).map((parts) => ({ full: true, parts }));
const incrementalRunArb: fc.Arbitrary<Run> = fc
  .record({ rows: fc.array(rowsArb, { minLength: 1, maxLength: 2 }), deletions: fc.option(deletionsArb, { nil: undefined }), at: fc.nat(2) })
  .map(({ rows: parts, deletions, at }) => ({
    full: false,
    parts: deletions ? [...parts.slice(0, at % (parts.length + 1)), deletions, ...parts.slice(at % (parts.length + 1))] : parts,
  }));
const runsArb = fc.array(fc.oneof(fullRunArb, incrementalRunArb), { minLength: 2, maxLength: 4 });

/** At most 4 runs of at most 3 parts. */
const MAX_OBJECTS = 12;

/**
 * How the objects are delivered, drawn independently of the runs (so that both shrink): which
 * objects are staged twice and cleaned twice, and a sort key per action. schedule() turns it into
 * the actions on `n` objects. Shrinks towards "stage o1, clean o1, stage o2, clean o2, …" (keys 0,
 * no extras), so a counter-example shows only the reordering that matters.
 */
const deliveryArb = fc.record({
  extraStage: fc.array(fc.boolean(), { minLength: MAX_OBJECTS, maxLength: MAX_OBJECTS }),
  extraClean: fc.array(fc.boolean(), { minLength: MAX_OBJECTS, maxLength: MAX_OBJECTS }),
  sortKeys: fc.array(fc.nat(4 * MAX_OBJECTS), { minLength: 4 * MAX_OBJECTS, maxLength: 4 * MAX_OBJECTS }),
});
type Delivery = typeof deliveryArb extends fc.Arbitrary<infer T> ? T : never;

/** A clean sorted before the first stage of its object comes right after it (a clean message only exists once the load is staged). */
function schedule(n: number, { extraStage, extraClean, sortKeys }: Delivery): Action[] {
  // four slots per object (stage, clean, extra stage, extra clean), each with its own sort key
  const base: { a: Action; i: number }[] = [];
  for (let o = 0; o < n; o++) {
    base.push({ a: `stage o${o + 1}`, i: 4 * o }, { a: `clean o${o + 1}`, i: 4 * o + 1 });
    if (extraStage[o]) base.push({ a: `stage o${o + 1}`, i: 4 * o + 2 });
    if (extraClean[o]) base.push({ a: `clean o${o + 1}`, i: 4 * o + 3 });
  }
  const sorted = base.map(({ a, i }) => ({ a, k: sortKeys[i]!, i })).sort((x, y) => x.k - y.k || x.i - y.i).map((x) => x.a);
  const out: Action[] = [];
  const staged = new Set<string>();
  const waiting = new Map<string, Action[]>();
  for (const a of sorted) {
    const [verb, obj] = a.split(' ') as ['stage' | 'clean', string];
    if (verb === 'clean' && !staged.has(obj)) {
      waiting.set(obj, [...(waiting.get(obj) ?? []), a]);
      continue;
    }
    out.push(a);
    if (verb === 'stage' && !staged.has(obj)) {
      staged.add(obj);
      out.push(...(waiting.get(obj) ?? []));
      waiting.delete(obj);
    }
  }
  return out;
}

/** One case: the objects in their own order and the actions, printed readably when it fails. */
interface Case {
  objects: Placed[];
  actions: Action[];
}
const caseArb: fc.Arbitrary<Case> = fc.record({ runs: runsArb, delivery: deliveryArb }).map(({ runs, delivery }) => {
  const objects = place(runs);
  const c: Case = { objects, actions: schedule(objects.length, delivery) };
  return Object.assign(c, { [fc.toStringMethod]: () => describeCase(c) });
});

function describeCase({ objects, actions }: Case): string {
  const rec = (r: Rec) => `{id ${r.id}, a ${r.a}, b ${r.b}${r.c === undefined ? '' : `, c ${r.c}`}}`;
  const lines = objects.map(
    (o) =>
      `  ${o.name} = run ${o.run} (${o.full ? 'full' : 'incremental'}) part ${o.part}: ` +
      (o.obj.holds === 'rows' ? `rows ${o.obj.records.map(rec).join(' ')}` : `deletes ids ${o.obj.ids.join(', ')}`),
  );
  return `\n${lines.join('\n')}\n  delivered: ${actions.join(', ')}\n`;
}

// ---------------------------------------------------------------------------------------------
// The model

interface Placed {
  /** o1, o2, … in the objects' own order (runs in order, parts in order). */
  name: string;
  run: number;
  part: number;
  full: boolean;
  obj: Obj;
}

function place(runs: readonly Run[]): Placed[] {
  let n = 0;
  return runs.flatMap((run, r) => run.parts.map((obj, p) => ({ name: `o${++n}`, run: r + 1, part: p + 1, full: run.full, obj })));
}

interface ModelRow {
  rec: Rec;
  from: Placed;
  /** The record's line in its object (NDJSON: one record a line, from 1). */
  line: number;
}

/** The objects applied in their own order to a map by key. */
function model(objects: readonly Placed[]): Map<number, ModelRow> {
  const table = new Map<number, ModelRow>();
  for (const o of objects) {
    if (o.obj.holds === 'deletions') {
      for (const id of o.obj.ids) table.delete(id);
      continue;
    }
    o.obj.records.forEach((rec, i) => table.set(rec.id, { rec, from: o, line: i + 1 }));
    if (o.full) for (const [id, row] of table) if (row.from.run !== o.run) table.delete(id);
  }
  return table;
}

function body(obj: Obj): string {
  const records = obj.holds === 'rows' ? obj.records : obj.ids.map((id) => ({ id }));
  return records.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------

const definition = (project: string): PipelineInput => ({
  project,
  datasets: [{ name: 'facts', source: { type: 'rest', url: 'http://127.0.0.1:9/x' }, clean: { key: ['id'], mode: 'upsert' } }],
});

/** Cases per run of the file (about 0.7 s each); CIVIC_ETL_MODEL_RUNS explores more. */
const RUNS = Number(process.env.CIVIC_ETL_MODEL_RUNS ?? 25);

let bucket: string;
let runNumber = 0;

beforeAll(async () => {
  bucket = await freshBucket('it-model');
});

async function putObject(o: Placed): Promise<ObjectRef> {
  const runStartedAt = new Date(Date.UTC(2024, 0, 1, 0, o.run)).toISOString();
  const declaration: ObjectDeclaration = {
    contract: 1,
    replaces: o.obj.holds === 'deletions' || !o.full ? 'nothing' : 'run',
    holds: o.obj.holds,
    run: `run-${o.run}`,
    runStartedAt,
    part: o.part,
    ...(o.obj.holds === 'deletions' ? { identifiedBy: ['id'] } : {}),
  };
  const key = `raw/facts/run-${o.run}/part-${o.part}.ndjson`;
  const text = body(o.obj);
  const out = await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: text, Metadata: declarationMetadata(declaration) }));
  return { bucket, key, versionId: out.VersionId, etag: out.ETag?.replace(/"/g, ''), size: Buffer.byteLength(text) };
}

/** The clean table as text, a column the table lacks being NULL. */
async function cleanTable(pool: pg.Pool, project: string) {
  const present = new Set(
    (await rows<{ c: string }>(pool, `SELECT column_name AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'facts'`, [project])).map((r) => r.c),
  );
  if (present.size === 0) return [];
  const col = (c: string) => (present.has(c) ? `${c}::text` : 'NULL::text');
  return rows<{ id: number; a: string | null; b: string | null; c: string | null; load: number; line: number }>(
    pool,
    `SELECT id::int AS id, ${col('a')} AS a, ${col('b')} AS b, ${col('c')} AS c, _load_id::int AS load, _source_line::int AS line FROM "${project}".facts ORDER BY id`,
  );
}

describe('the clean step against a model of the contract', () => {
  it('ends as the objects applied in their own order, whatever the delivery order (property)', async () => {
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(
        caseArb,
        async ({ objects, actions }) => {
          const project = `it_model_${++runNumber}`;
          const { pipeline, pool } = await freshProject(definition(project));
          const notified = new Set<number>();
          const deps: StageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async ({ loadId }) => void notified.add(loadId) };
          const refs = new Map<string, ObjectRef>();
          for (const o of objects) refs.set(o.name, await putObject(o));

          const loadOf = new Map<string, number>();
          for (const action of actions) {
            const [verb, name] = action.split(' ') as ['stage' | 'clean', string];
            if (verb === 'stage') {
              const out = await stageObject(deps, refs.get(name)!);
              if (out.status !== 'staged' && out.status !== 'duplicate') throw new Error(`${action}: ${JSON.stringify(out)}`);
              loadOf.set(name, out.loadId);
            } else {
              const out = await cleanLoad({ pool, pipeline }, loadOf.get(name)!);
              if (out.status === 'failed') throw new Error(`${action}: ${out.error}`);
            }
          }

          // 1. the table is the model, values and lineage (which object's line each row is)
          const expected = [...model(objects).entries()]
            .sort(([x], [y]) => x - y)
            .map(([id, m]) => ({
              id,
              a: String(m.rec.a),
              b: m.rec.b,
              c: m.rec.c ?? null,
              from: `${m.from.name} line ${m.line}`,
            }));
          const nameOf = new Map([...loadOf].map(([name, id]) => [id, name]));
          const actual = (await cleanTable(pool, project)).map(({ load, line, ...r }) => ({ ...r, from: `${nameOf.get(load) ?? `load ${load}`} line ${line}` }));
          expect(actual).toEqual(expected);

          // 2. every load ended; a rows object is loaded or skipped as superseded, and its lines add up
          const loads = await rows<{ id: number; status: string; holds: string; error: string | null; read: number; loaded: number; quarantined: number }>(
            pool,
            `SELECT id::int, status, holds, error, rows_read::int AS read, rows_loaded::int AS loaded, rows_quarantined::int AS quarantined FROM etl.loads WHERE project = $1`,
            [project],
          );
          expect(loads.length).toBe(objects.length);
          for (const l of loads) {
            const what = `${nameOf.get(l.id)} (load ${l.id}): ${l.status} ${l.error ?? ''}`;
            expect(notified.has(l.id), what).toBe(true);
            if (l.holds === 'deletions') expect(l.status, what).toBe('loaded');
            else if (l.status === 'skipped') expect(l.error, what).toMatch(/^superseded/);
            else {
              expect(l.status, what).toBe('loaded');
              expect(l.loaded + l.quarantined, what).toBe(l.read);
            }
          }
          const rules = await rows<{ rule: string }>(pool, `SELECT DISTINCT rule FROM "${project}".facts_quarantine`).catch(() => []);
          for (const { rule } of rules) expect(['superseded', 'deleted', 'duplicate']).toContain(rule);
        },
      ),
      { numRuns: RUNS },
    );
    console.log(`contract model: ${RUNS} runs in ${Math.round(performance.now() - started)} ms`);
  }, 600_000);

  describe('uploads of one key (mode replace), events delivered late', () => {
    const uploads: PipelineInput = {
      project: 'it_model_uploads',
      suppliers: [{ name: 'city' }],
      datasets: [{ name: 'sites', source: { type: 'upload', supplier: 'city' }, clean: { key: ['id'], mode: 'replace' } }],
    };
    const A = 'id,name\n1,Oak\n2,Elm\n';
    const B = 'id,name\n3,Ash\n';

    async function deliverAll(name: string, events: (refs: ObjectRef[]) => ObjectRef[], bodies: string[]) {
      const { pipeline, pool } = await freshProject({ ...uploads, datasets: [{ ...uploads.datasets[0]!, name }] });
      const deps: StageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
      const refs: ObjectRef[] = [];
      for (const b of bodies) refs.push(await put(bucket, `incoming/city/${name}/sites.csv`, b));
      for (const event of events(refs)) {
        const staged = await stageObject(deps, event);
        if (staged.status === 'staged' || staged.status === 'duplicate') await cleanLoad({ pool, pipeline }, staged.loadId);
      }
      return rows(pool, `SELECT id::int AS id, name FROM it_model_uploads.${name} ORDER BY id`);
    }
    const withoutVersion = ({ bucket: b, key, etag }: ObjectRef): ObjectRef => ({ bucket: b, key, ...(etag ? { etag } : {}) });
    const rowsOfA = [
      { id: 1, name: 'Oak' },
      { id: 2, name: 'Elm' },
    ];

    it('A, B, then A again: events without version ids, newest first, end with A', async () => {
      expect(await deliverAll('newest_first', (refs) => refs.map(withoutVersion).reverse(), [A, B, A])).toEqual(rowsOfA);
    });

    it('A, B, then A again: events without version ids, in upload order, end with A', async () => {
      expect(await deliverAll('upload_order', (refs) => refs.map(withoutVersion), [A, B, A])).toEqual(rowsOfA);
    });

    it('two versions with version ids, delivered newest first, end with the newer', async () => {
      expect(await deliverAll('versions', (refs) => [...refs].reverse(), [A, B])).toEqual([{ id: 3, name: 'Ash' }]);
    });
  });
});
