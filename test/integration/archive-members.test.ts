/**
 * An archive's members are one file (issue 16): staged as loads of their own, but cleaned
 * together in one transaction, so the clean table is the one before the file or the one after all
 * of it — never the members cleaned so far. A member that fails is recorded and the others apply;
 * a failure a retry may cure (the database gone mid-way) changes nothing; a file bringing more
 * tables than `read.limits.maxTables` is refused before any is staged. Real PostgreSQL and moto.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineInput } from '../../contract/definition.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { closePool } from '../../functions/common/db.ts';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { stageObject } from '../../functions/stage/stage-object.ts';
import { makeZip } from '../helpers/zip.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

const INPUT: PipelineInput = {
  project: 'it_members',
  suppliers: [{ name: 'acme' }],
  datasets: [
    { name: 'items', source: { type: 'upload', supplier: 'acme' } },
    { name: 'few', source: { type: 'upload', supplier: 'acme' }, read: { limits: { maxTables: 3 } } },
  ],
};

let pool: pg.Pool;
let pipeline: Awaited<ReturnType<typeof freshProject>>['pipeline'];
let bucket: string;
let n = 0;

beforeAll(async () => {
  ({ pool, pipeline } = await freshProject(INPUT));
  bucket = await freshBucket('members');
}, 60_000);
afterAll(closePool);

/** Upload and stage `body` under `dataset`: the loads handed to the clean step. */
async function stage(dataset: string, name: string, body: Buffer | string) {
  const ref = await put(bucket, `incoming/acme/${dataset}/${++n}-${name}`, body);
  const handed: number[] = [];
  const outcome = await stageObject({ pool, s3: s3Client(), pipeline, notifyClean: async (m) => void handed.push(m.loadId) }, ref);
  return { key: ref.key, outcome, handed };
}

const items = () => rows<{ id: string; name: string }>(pool, 'SELECT id::text, name FROM it_members.items ORDER BY id::int');
const statuses = (key: string) =>
  rows<{ member: string; status: string; error: string | null }>(
    pool,
    `SELECT split_part(object_key, '!', 2) AS member, status, error FROM etl.loads WHERE project = 'it_members' AND object_key LIKE $1 || '!%' ORDER BY id`,
    [key],
  );

/** The table as a previous upload left it: two rows. */
async function baseline() {
  const { handed } = await stage('items', 'base.csv', 'id,name\n1,one\n2,two\n');
  for (const id of handed) expect((await cleanLoad({ pool, pipeline }, id)).status).toBe('loaded');
  expect(await items()).toEqual([
    { id: '1', name: 'one' },
    { id: '2', name: 'two' },
  ]);
}

/** `target`'s methods bound to it (pg's own calls then bypass the proxy). */
const own = (target: object, prop: string | symbol) => {
  const v = Reflect.get(target, prop) as unknown;
  return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
};

/** A pool whose transactions lose their connection at the `nth` member's savepoint (as a killed or cut-off run would). */
function cutOffAt(nth: number): pg.Pool {
  let seen = 0;
  return new Proxy(pool, {
    get(target, prop) {
      if (prop !== 'connect') return own(target, prop);
      return async () => {
        const client = await target.connect();
        return new Proxy(client, {
          get(c, p) {
            if (p !== 'query') return own(c, p);
            return (sql: unknown, ...rest: unknown[]) => {
              if (typeof sql === 'string' && sql.startsWith('SAVEPOINT civic_etl_member') && ++seen === nth) {
                return Promise.reject(Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' }));
              }
              return (c.query as (...a: unknown[]) => unknown).call(c, sql, ...rest);
            };
          },
        });
      };
    },
  });
}

describe('the members of one archive', () => {
  it('apply together: a member that fails is recorded, the others load', async () => {
    await baseline();
    const zip = await makeZip({ 'a.csv': 'id,name\n10,ten\n11,eleven\n', 'b.csv': 'id,name\n', 'c.csv': 'id,name\n12,twelve\n' });
    const { key, outcome, handed } = await stage('items', 'three.zip', zip);
    expect(outcome.status).toBe('staged');
    expect(handed).toHaveLength(3);
    // the first message cleans the whole file; the others find their members done
    const first = await cleanLoad({ pool, pipeline }, handed[0]!);
    expect(first.status).toBe('loaded');
    for (const id of handed.slice(1)) expect((await cleanLoad({ pool, pipeline }, id)).status).toBe('duplicate');
    const members = await statuses(key);
    expect(members.map((m) => [m.member, m.status])).toEqual([
      ['a.csv', 'loaded'],
      ['b.csv', 'failed'],
      ['c.csv', 'loaded'],
    ]);
    expect(members[1]!.error).toMatch(/b\.csv: no data rows/);
    // the file replaced the previous load: its members' rows, the failed one's none
    expect(await items()).toEqual([
      { id: '10', name: 'ten' },
      { id: '11', name: 'eleven' },
      { id: '12', name: 'twelve' },
    ]);
  });

  it('cut off half-way change nothing, and apply whole when retried', async () => {
    await baseline();
    const before = await items();
    const zip = await makeZip(Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`m${i}.csv`, `id,name\n${100 + i},member ${i}\n`])));
    const { key, handed } = await stage('items', 'six.zip', zip);
    expect(handed).toHaveLength(6);
    // the connection goes at the fourth member: three members were cleaned in the transaction
    await expect(cleanLoad({ pool: cutOffAt(4), pipeline }, handed[0]!)).rejects.toThrow(/Connection terminated/);
    expect(await items()).toEqual(before);
    expect((await statuses(key)).map((m) => m.status)).toEqual(Array(6).fill('staged'));
    // the message comes again
    expect((await cleanLoad({ pool, pipeline }, handed[0]!)).status).toBe('loaded');
    expect((await statuses(key)).map((m) => m.status)).toEqual(Array(6).fill('loaded'));
    expect((await items()).map((r) => r.id)).toEqual(['100', '101', '102', '103', '104', '105']);
  });

  it('count every member that failed: the first message says how many of its file failed with it', async () => {
    await baseline();
    const zip = await makeZip({ 'a.csv': 'id,name\n20,twenty\n', 'b.csv': 'id,name\n', 'c.csv': 'id,name\n', 'd.csv': 'id,name\n21,twenty-one\n' });
    const { handed } = await stage('items', 'two-bad.zip', zip);
    const first = await cleanLoad({ pool, pipeline }, handed[0]!);
    expect(first).toMatchObject({ status: 'loaded', othersFailed: 2 });
  });

  it('of a file too large for one transaction are cleaned member by member, each in its own, as their messages come', async () => {
    await baseline();
    const zip = await makeZip({ 'a.csv': 'id,name\n30,thirty\n', 'b.csv': 'id,name\n31,thirty-one\n', 'c.csv': 'id,name\n32,thirty-two\n' });
    const { key, handed } = await stage('items', 'large.zip', zip);
    const oneTransaction = { members: 1, rows: 1_000 };
    // the first message cleans its own member only: the others wait for theirs
    expect((await cleanLoad({ pool, pipeline, oneTransaction }, handed[0]!)).status).toBe('loaded');
    expect((await statuses(key)).map((m) => m.status)).toEqual(['loaded', 'staged', 'staged']);
    for (const id of handed.slice(1)) expect((await cleanLoad({ pool, pipeline, oneTransaction }, id)).status).toBe('loaded');
    expect((await statuses(key)).map((m) => m.status)).toEqual(['loaded', 'loaded', 'loaded']);
    // the members of one file never replace one another: all three files' rows are there
    expect((await items()).map((r) => r.id)).toEqual(['30', '31', '32']);
  });

  it('are refused past read.limits.maxTables, naming the file and the limit, before any is staged', async () => {
    const zip = await makeZip({ 'a.csv': 'x\n1\n', 'b.csv': 'x\n2\n', 'c.csv': 'x\n3\n', 'd.csv': 'x\n4\n', 'readme.txt.pdf': 'not data' });
    const { key, outcome, handed } = await stage('few', 'four.zip', zip);
    expect(outcome.status).toBe('failed');
    expect(handed).toEqual([]);
    const [load] = await rows<{ status: string; error: string }>(pool, `SELECT status, error FROM etl.loads WHERE project = 'it_members' AND object_key = $1`, [key]);
    expect(load).toEqual({ status: 'failed', error: `${key}: 4 tables (data files, layers), each a load of its own to stage and clean, beyond the limit of 3 (read.limits.maxTables): refused` });
    expect(await statuses(key)).toEqual([]);
  });
});
