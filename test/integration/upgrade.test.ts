import { PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePipeline } from '../../contract/load.ts';
import { declarationMetadata } from '../../contract/objects.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { migrate } from '../../functions/migrate/migrate.ts';
import { MIGRATIONS } from '../../functions/migrate/migrations.ts';
import { stageObject } from '../../functions/stage/stage-object.ts';
import { freshBucket } from './support.ts';

/**
 * A database that ran the version before the connector contract (migrations up to 0011), with
 * what that version leaves behind — finished loads, a load staged but not yet cleaned, a
 * catalogue resource's rows, an Ed-Fi tombstone table of the old shape — then upgraded.
 */
const pipeline = parsePipeline({
  project: 'upg',
  suppliers: [{ name: 'city' }],
  datasets: [
    { name: 'counts', source: { type: 'upload', supplier: 'city' }, clean: { key: ['id'], mode: 'upsert' } },
    { name: 'parks', source: { type: 'catalog', api: 'udata', url: 'https://portal.example', dataset: 'parks' }, clean: { key: [] } },
    { name: 'ods_people', source: { type: 'rest', url: 'https://api.example/people' }, clean: { key: ['id'], mode: 'upsert' } },
  ],
});

let admin: pg.Pool;
let pool: pg.Pool;
let bucket: string;
const database = `civic_upgrade_${process.pid}`;
const toClean: number[] = [];
const deps = () => ({ pool, s3: s3Client(), pipeline, notifyClean: async (m: { loadId: number }) => void toClean.push(m.loadId) });

/** A ledger row as the version before the contract wrote it. */
async function legacyLoad(key: string, dataset: string, status: string, extra: Record<string, unknown> = {}): Promise<number> {
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO etl.loads (project, dataset, bucket, object_key, object_version, status, header, detected, staging_table, rows_read)
     VALUES ('upg', $1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
    [dataset, bucket, key, `v-${key}`, status, JSON.stringify(extra.header ?? null), JSON.stringify(extra.detected ?? null), extra.staging ?? null, extra.rows ?? null],
  );
  return Number(rows[0]!.id);
}

beforeAll(async () => {
  admin = new pg.Pool({ connectionString: process.env.DATABASE_URL });
  await admin.query(`DROP DATABASE IF EXISTS ${database}`);
  await admin.query(`CREATE DATABASE ${database}`);
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${database}`;
  pool = new pg.Pool({ connectionString: url.href });
  bucket = await freshBucket('it-upgrade');
  await migrate(
    pool,
    'upg',
    MIGRATIONS.filter((m) => m.version < '0012'),
  );

  // loaded before the upgrade: a catalogue resource's rows, and another resource's
  const r1 = await legacyLoad('raw/parks/20261101T000000Z/r-1/parks.csv', 'parks', 'loaded');
  const r2 = await legacyLoad('raw/parks/20261101T000000Z/r-2/more.csv', 'parks', 'loaded');
  await pool.query(`CREATE TABLE upg.parks (name text, _load_id bigint NOT NULL, _source_line bigint NOT NULL)`);
  await pool.query(`INSERT INTO upg.parks VALUES ('Oak', $1, 2), ('Elm', $1, 3), ('Pier', $2, 2)`, [r1, r2]);
  // staged but not cleaned when the upgrade came: an upsert file of one row
  await pool.query(`CREATE TABLE upg.counts (id bigint PRIMARY KEY, n bigint, _load_id bigint NOT NULL, _source_line bigint NOT NULL)`);
  const old = await legacyLoad('incoming/city/counts/a.csv', 'counts', 'loaded');
  await pool.query(`INSERT INTO upg.counts VALUES (1, 10, $1, 2), (2, 20, $1, 3), (3, 30, $1, 4)`, [old]);
  await pool.query(`CREATE TABLE upg_staging.counts__legacy (id text, n text, _source_line bigint NOT NULL)`);
  await pool.query(`INSERT INTO upg_staging.counts__legacy VALUES ('2', '22', 2)`);
  await legacyLoad('incoming/city/counts/b.csv', 'counts', 'staged', { header: ['id', 'n'], detected: { columns: ['id', 'n'] }, staging: 'upg_staging.counts__legacy', rows: 1 });
  // an Ed-Fi-style tombstone table of the old shape: (id, load_id)
  await pool.query(`CREATE TABLE upg.ods_people (id text PRIMARY KEY, name text, _load_id bigint NOT NULL, _source_line bigint NOT NULL)`);
  const gone = await legacyLoad('raw/ods_people/20261101T000000Z/deletes-00001.ndjson.gz', 'ods_people', 'loaded');
  await pool.query(`CREATE TABLE upg.ods_people_deleted (id text PRIMARY KEY, load_id bigint NOT NULL)`);
  await pool.query(`INSERT INTO upg.ods_people_deleted VALUES ('p-9', $1)`, [gone]);

  // act: the upgrade
  await migrate(pool, 'upg');
});

afterAll(async () => {
  await pool?.end();
  if (!process.env.KEEP_DB) await admin?.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin?.end();
});

describe('upgrading to the connector contract', () => {
  it('refuses to guess what a load staged before the upgrade replaces: it fails, saying how to stage it again, and the table keeps its rows', async () => {
    const { rows } = await pool.query<{ id: string }>(`SELECT id FROM etl.loads WHERE object_key = 'incoming/city/counts/b.csv'`);

    const outcome = await cleanLoad({ pool, pipeline }, Number(rows[0]!.id));

    expect(outcome).toMatchObject({ status: 'failed', error: expect.stringMatching(/staged before the connector contract.*civic-etl replay counts --version v-incoming\/city\/counts\/b\.csv/) });
    expect((await pool.query('SELECT id::int, n::int FROM upg.counts ORDER BY id')).rows).toEqual([
      { id: 1, n: 10 },
      { id: 2, n: 20 },
      { id: 3, n: 30 },
    ]);
  });

  it('lets a catalogue resource’s next version replace the rows its loads before the upgrade brought, and only those', async () => {
    const key = 'raw/parks/20261201T000000Z/r-1/parks.csv';
    // a run after the upgrade: newer than every load before it (those are in the order they arrived)
    const declaration = {
      contract: 1 as const,
      replaces: 'resource' as const,
      holds: 'rows' as const,
      run: '20261201T000000Z',
      runStartedAt: new Date(Date.now() + 1000).toISOString(),
      part: 1,
      resource: 'r-1',
    };
    const out = await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'name\nOak\nAsh\n', Metadata: declarationMetadata(declaration) }));

    await stageObject(deps(), { bucket, key, versionId: out.VersionId });
    for (const id of toClean.splice(0)) await cleanLoad({ pool, pipeline }, id);

    expect((await pool.query('SELECT name FROM upg.parks ORDER BY name')).rows.map((r) => r.name)).toEqual(['Ash', 'Oak', 'Pier']);
  });

  it('keeps using a tombstone table of the old shape: a deleted record stays deleted', async () => {
    const key = 'raw/ods_people/20261201T000000Z/records.ndjson';
    const declaration = { contract: 1 as const, replaces: 'nothing' as const, holds: 'rows' as const, run: '20261201T000000Z', runStartedAt: '2026-10-01T00:00:00.000Z', part: 1 };
    const body = [
      { id: 'p-1', name: 'Ann' },
      { id: 'p-9', name: 'Gone' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n');
    const out = await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: declarationMetadata(declaration) }));

    await stageObject(deps(), { bucket, key, versionId: out.VersionId });
    const outcomes = [];
    for (const id of toClean.splice(0)) outcomes.push(await cleanLoad({ pool, pipeline }, id));

    // this object is older (October) than the deletion (recorded before the upgrade, in the order it arrived: now)
    expect(outcomes).toMatchObject([{ status: 'loaded', rowsLoaded: 1, rowsQuarantined: 1 }]);
    expect((await pool.query('SELECT id FROM upg.ods_people ORDER BY id')).rows).toEqual([{ id: 'p-1' }]);
    expect((await pool.query(`SELECT rule FROM upg.ods_people_quarantine`)).rows).toEqual([{ rule: 'deleted' }]);
  });

  it('does not apply an object of a fetched dataset that declares nothing (written before the contract or by hand)', async () => {
    const key = 'raw/ods_people/20261105T000000Z/deletes-00001.ndjson';
    const out = await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify({ id: 'p-1' }) }));

    const staged = await stageObject(deps(), { bucket, key, versionId: out.VersionId });

    expect(staged).toMatchObject({ status: 'failed', error: expect.stringMatching(/without a declaration.*not applied; fetch the dataset again \(civic-etl fetch ods_people\)/) });
    expect((await pool.query('SELECT id FROM upg.ods_people ORDER BY id')).rows).toEqual([{ id: 'p-1' }]);
  });
});
