import { createHash, randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePipeline } from '../../contract/load.ts';
import { readJsonSecret, s3Client, secretsClient } from '../../functions/common/aws.ts';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { fetchSql, type SqlFetchDeps, type SqlOutcome } from '../../functions/get/fetch-sql.ts';
import { stageObject } from '../../functions/stage/stage-object.ts';
import { throwawayMariadb, throwawayPostgres, type ThrowawayDatabase } from '../helpers/mariadb.ts';
import { freshBucket, freshProject, objectBytes, objectJson, rows, savedState } from './support.ts';

const NOW = new Date('2026-11-21T06:00:00Z');
const LATER = new Date('2026-11-22T06:00:00Z');
const RUN = 'raw/items/20261121T060000Z';
const RUN2 = 'raw/items/20261122T060000Z';

let maria: ThrowawayDatabase;
let postgres: ThrowawayDatabase;
beforeAll(async () => {
  [maria, postgres] = await Promise.all([throwawayMariadb(), throwawayPostgres()]);
});
afterAll(async () => {
  await Promise.all([maria?.drop(), postgres?.drop()]);
});

const engines = () => [
  { engine: 'postgres' as const, db: postgres },
  { engine: 'mysql' as const, db: maria },
];

async function secretFor(db: ThrowawayDatabase, change: Record<string, unknown> = {}): Promise<string> {
  const name = `it-sql-${randomUUID()}`;
  await secretsClient().send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify({ ...db.credentials, ...change }) }));
  return name;
}

/** A dataset `items` with this SQL source. */
function datasetWith(source: Record<string, unknown>) {
  return parsePipeline({ project: 'it_fetch_sql', datasets: [{ name: 'items', source: { type: 'sql', ...source } }] }).datasets[0]!;
}

async function setup(timeoutMs?: number) {
  const bucket = await freshBucket('it-fetch-sql');
  const deps: SqlFetchDeps = { s3: s3Client(), bucket, readSecret: readJsonSecret, now: () => NOW, timeoutMs };
  return { bucket, deps };
}

async function keys(bucket: string): Promise<string[]> {
  const out = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }));
  return (out.Contents ?? [])
    .map((o) => o.Key!)
    .filter((k) => !k.startsWith('state/'))
    .sort();
}
async function storedRows(bucket: string, run = RUN): Promise<Record<string, unknown>[]> {
  return gunzipSync(await objectBytes(bucket, `${run}/rows.ndjson.gz`))
    .toString()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
/** The saved state of the source; a finished run has released its lease. */
function stateOf(bucket: string): Promise<Record<string, unknown>> {
  return savedState(bucket, 'state/items/sql.json');
}
function fetched(outcome: SqlOutcome) {
  if (outcome.status !== 'fetched') throw new Error(`expected rows, got ${JSON.stringify(outcome)}`);
  return outcome.manifest;
}

describe.each(engines())('fetch from SQL ($engine)', ({ engine, db: _ }) => {
  const db = () => (engine === 'postgres' ? postgres : maria);
  const table = `items_${engine}`;
  const ts = (s: string) => (engine === 'postgres' ? `timestamptz '${s}+00'` : `'${s}'`);

  beforeAll(async () => {
    await db().exec(
      engine === 'postgres'
        ? `CREATE TABLE ${table} (id integer PRIMARY KEY, name text, updated_at timestamptz(6) NOT NULL)`
        : `CREATE TABLE ${table} (id int PRIMARY KEY, name varchar(100), updated_at timestamp(6) NOT NULL)`,
    );
    await db().exec(`INSERT INTO ${table} VALUES (1, 'one', ${ts('2026-01-01 10:00:00.123456')}), (2, 'two', ${ts('2026-01-01 11:00:00.5')}), (3, 'three', ${ts('2026-01-01 12:00:00.000001')})`);
  });

  it('stores every row as gzip NDJSON with a manifest that tells rows, bytes, sha256 and no secret', async () => {
    const { bucket, deps } = await setup();
    const secret = await secretFor(db());

    const manifest = fetched(await fetchSql(deps, datasetWith({ engine, secret, query: `SELECT id, name FROM ${table} ORDER BY id`, batchRows: 2 })));

    expect(await keys(bucket)).toEqual([`${RUN}/_manifest.json`, `${RUN}/rows.ndjson.gz`]);
    expect(await storedRows(bucket)).toEqual([
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
      { id: 3, name: 'three' },
    ]);
    const stored = await objectBytes(bucket, `${RUN}/rows.ndjson.gz`);
    const written = await objectJson(bucket, `${RUN}/_manifest.json`);
    expect(written).toMatchObject({
      contract: 1,
      dataset: 'items',
      connector: 'sql',
      complete: true,
      details: { engine, database: db().credentials.database, rows: 3, columns: ['id', 'name'] },
      // the whole answer of a query that is not incremental is the whole dataset
      objects: [{ key: manifest.key, records: 3, bytes: stored.length, sha256: createHash('sha256').update(stored).digest('hex'), declaration: { replaces: 'dataset', holds: 'rows', part: 1 } }],
    });
    expect(manifest).toMatchObject({ secret, rows: 3, bytes: stored.length });
    expect(JSON.stringify(written)).not.toContain(db().credentials.password);
  });

  it('brings only rows newer than the watermark, less the overlap, and saves the newest after the data', async () => {
    const { bucket, deps } = await setup();
    const secret = await secretFor(db());
    const source = { engine, secret, query: `SELECT id, name, updated_at FROM ${table} WHERE updated_at > :watermark ORDER BY id`, incremental: { column: 'updated_at', overlapSeconds: 1800 } };
    const first = fetched(await fetchSql(deps, datasetWith(source)));
    expect(first).toMatchObject({ rows: 3, watermarkBefore: undefined, watermarkBound: '1970-01-01T00:00:00Z', watermarkAfter: '2026-01-01T12:00:00.000001Z' });
    await db().exec(`INSERT INTO ${table} VALUES (4, 'four', ${ts('2026-01-02 09:00:00')}), (5, 'five', ${ts('2026-01-02 08:00:00.25')})`);

    const second = fetched(await fetchSql({ ...deps, now: () => LATER }, datasetWith(source)));

    // row 3 (12:00:00.000001) is inside the 30-minute overlap and comes again; rows 1 and 2 do not
    expect((await storedRows(bucket, RUN2)).map((r) => r.id)).toEqual([3, 4, 5]);
    expect(second).toMatchObject({
      watermarkBefore: '2026-01-01T12:00:00.000001Z',
      watermarkBound: '2026-01-01T11:30:00.000001Z',
      watermarkAfter: '2026-01-02T09:00:00Z',
    });
    expect(await stateOf(bucket)).toMatchObject({ column: 'updated_at', watermark: '2026-01-02T09:00:00Z' });
    await db().exec(`DELETE FROM ${table} WHERE id > 3`);
  });

  it('writes nothing and keeps the watermark when no row is newer', async () => {
    const { bucket, deps } = await setup();
    const source = { engine, secret: await secretFor(db()), query: `SELECT * FROM ${table} WHERE updated_at > :watermark`, incremental: { column: 'updated_at' } };
    await fetchSql(deps, datasetWith(source));
    const before = await keys(bucket);

    const outcome = await fetchSql({ ...deps, now: () => LATER }, datasetWith(source));

    expect(outcome).toEqual({
      status: 'empty',
      message: 'items: the query returned no rows with updated_at after 2026-01-01T12:00:00.000001Z; nothing written, the watermark stays at 2026-01-01T12:00:00.000001Z',
    });
    expect(await keys(bucket)).toEqual(before);
  });

  it('fails half-way with the database error, leaving no data object and the watermark where it was', async () => {
    const big = `${table}_big`;
    await db().exec(
      engine === 'postgres'
        ? `CREATE TABLE ${big} AS SELECT i AS id, CASE WHEN i = 2900 THEN 0 ELSE 1 END AS divisor, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second' AS updated_at FROM generate_series(1, 3000) i`
        : `CREATE TABLE ${big} (id int PRIMARY KEY, divisor int, updated_at timestamp NULL) SELECT seq AS id, IF(seq = 2900, 0, 1) AS divisor, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq SECOND AS updated_at FROM seq_1_to_3000`,
    );
    // MariaDB's 1/0 is NULL, not an error: a function that raises one at the row with divisor 0
    if (engine === 'mysql')
      await db().exec(`CREATE FUNCTION check_divisor(d int) RETURNS int DETERMINISTIC BEGIN IF d = 0 THEN SIGNAL SQLSTATE '22012' SET MESSAGE_TEXT = 'Division by 0'; END IF; RETURN 100 DIV d; END`);
    const quotient = engine === 'postgres' ? '100 / divisor' : 'check_divisor(divisor)';
    const { bucket, deps } = await setup();
    const creds = db().credentials;
    const source = {
      engine,
      secret: await secretFor(db()),
      query: `SELECT id, ${quotient} AS q, updated_at FROM ${big} WHERE updated_at > :watermark AND (id <= 1000 OR :watermark > '2000-01-01')`,
      incremental: { column: 'updated_at' },
      batchRows: 100,
    };
    fetched(await fetchSql(deps, datasetWith(source))); // rows 1..1000: the watermark is row 1000's

    const failure = fetchSql({ ...deps, now: () => LATER }, datasetWith(source));

    const error = await failure.then(
      () => undefined,
      (e: Error) => e,
    );
    const code = engine === 'postgres' ? '22012' : 'ER_SIGNAL_EXCEPTION';
    expect(error?.message).toMatch(
      new RegExp(
        `^items: the query on the ${engine === 'postgres' ? 'PostgreSQL' : 'MySQL'} database "${creds.database}" at 127\\.0\\.0\\.1:${creds.port} failed after (\\d+) rows: division by (zero|0) \\(${code}\\); nothing was written and the watermark stays at 2026-01-01T00:16:40Z$`,
        'i',
      ),
    );
    expect(Number(/after (\d+) rows/.exec(error!.message)![1])).toBeGreaterThan(1000); // rows had been streamed when it failed
    expect(error?.message).not.toContain(creds.password);
    expect((await keys(bucket)).filter((k) => k.startsWith(RUN2))).toEqual([]);
    expect(await stateOf(bucket)).toMatchObject({ watermark: '2026-01-01T00:16:40Z' });
  });

  it('stops a query that would outlast the run, before the time is up', async () => {
    const { bucket, deps } = await setup(1500);
    const sleep = engine === 'postgres' ? 'pg_sleep(20)' : 'SLEEP(20)';
    const t = Date.now();

    await expect(fetchSql(deps, datasetWith({ engine, secret: await secretFor(db()), query: `SELECT id, ${sleep} AS slept FROM ${table}` }))).rejects.toThrow(
      'items: the query was stopped after 1.5 s, the time this run may take, having read 0 rows; nothing was written and no watermark was saved',
    );
    expect(Date.now() - t).toBeLessThan(6000);
    expect(await keys(bucket)).toEqual([]);
  });
});

describe('fetch from SQL: values survive as JSON', () => {
  it('PostgreSQL: bigint and numeric exact, timestamps ISO 8601, bytea base64, NULL, unicode', async () => {
    await postgres.exec(`CREATE TABLE types_pg (
      id int, big bigint, amount numeric(40,12), at timestamptz(6), local timestamp(6), day date, nothing text,
      label text, data bytea, ratio double precision, odd double precision, flag boolean, doc jsonb, tags bigint[], span interval)`);
    await postgres.exec(`INSERT INTO types_pg VALUES (
      1, 9223372036854775807, 1234567890123456789012345678.123456789012, '2024-03-10 01:02:03.123456+05', '2024-02-29 23:59:59.999999', '2024-02-29', NULL,
      'Zoë ⇒ 🚲 日本', '\\x00ff10', 0.1, 'NaN', true, '{"a": [1, "x"]}', '{9007199254740993, -1}', '1 day 2 hours')`);
    const { bucket, deps } = await setup();

    fetched(await fetchSql(deps, datasetWith({ engine: 'postgres', secret: await secretFor(postgres), query: 'SELECT * FROM types_pg' })));

    expect(await storedRows(bucket)).toEqual([
      {
        id: 1,
        big: '9223372036854775807',
        amount: '1234567890123456789012345678.123456789012',
        at: '2024-03-09T20:02:03.123456Z',
        local: '2024-02-29T23:59:59.999999',
        day: '2024-02-29',
        nothing: null,
        label: 'Zoë ⇒ 🚲 日本',
        data: Buffer.from([0, 255, 16]).toString('base64'),
        ratio: 0.1,
        odd: 'NaN',
        flag: true,
        doc: { a: [1, 'x'] },
        tags: ['9007199254740993', '-1'],
        span: 'P1DT2H',
      },
    ]);
  });

  it('MariaDB: BIGINT and DECIMAL exact, TIMESTAMP in UTC, DATETIME without zone, BLOB base64, NULL, 4-byte unicode', async () => {
    await maria.exec(`CREATE TABLE types_my (
      id int, big bigint, ubig bigint unsigned, amount decimal(38,9), at timestamp(6) NULL, local datetime(6), day date, nothing varchar(5),
      label varchar(50), data varbinary(10), blobby blob, ratio double, small float, bits bit(3), tiny tinyint)`);
    await maria.exec(`INSERT INTO types_my VALUES (
      1, -9223372036854775808, 18446744073709551615, 12345678901234567890123456789.123456789, '2024-03-09 20:02:03.123456', '2024-02-29 23:59:59.999999', '2024-02-29', NULL,
      'Zoë ⇒ 🚲 日本', x'00ff10', x'cafe', 0.1, 0.1, b'101', -5)`); // the test's session is in UTC
    const { bucket, deps } = await setup();

    fetched(await fetchSql(deps, datasetWith({ engine: 'mysql', secret: await secretFor(maria), query: 'SELECT * FROM types_my' })));

    expect(await storedRows(bucket)).toEqual([
      {
        id: 1,
        big: '-9223372036854775808',
        ubig: '18446744073709551615',
        amount: '12345678901234567890123456789.123456789',
        at: '2024-03-09T20:02:03.123456Z',
        local: '2024-02-29T23:59:59.999999',
        day: '2024-02-29',
        nothing: null,
        label: 'Zoë ⇒ 🚲 日本',
        data: Buffer.from([0, 255, 16]).toString('base64'),
        blobby: Buffer.from([0xca, 0xfe]).toString('base64'),
        ratio: 0.1,
        small: 0.1,
        bits: 5,
        tiny: -5,
      },
    ]);
  });
});

describe('fetch from SQL: credentials and concurrency', () => {
  it('names the dataset and the database error for a wrong password, never the password', async () => {
    const { bucket, deps } = await setup();
    const wrong = `wrong-${randomUUID()}`;
    const secret = await secretFor(maria, { password: wrong });

    const error = await fetchSql(deps, datasetWith({ engine: 'mysql', secret, query: 'SELECT 1 AS one' })).then(
      () => undefined,
      (e: Error) => e,
    );

    const { username, database, port } = maria.credentials;
    expect(error?.message).toBe(
      `items: could not connect to the MySQL database "${database}" at 127.0.0.1:${port} as ${username} (secret ${secret}): Access denied for user '${username}'@'127.0.0.1' (using password: YES) (ER_ACCESS_DENIED_ERROR)`,
    );
    expect(error?.message).not.toContain(wrong);
    expect(JSON.stringify(error)).not.toContain(wrong);
    expect(await keys(bucket)).toEqual([]);
  });

  it('names a database that does not exist', async () => {
    const { deps } = await setup();
    const secret = await secretFor(postgres, { database: 'it_sql_nowhere' });

    await expect(fetchSql(deps, datasetWith({ engine: 'postgres', secret, query: 'SELECT 1 AS one' }))).rejects.toThrow(
      /^items: could not connect to the PostgreSQL database "it_sql_nowhere" at 127\.0\.0\.1:\d+ as postgres \(secret it-sql-[0-9a-f-]+\): database "it_sql_nowhere" does not exist \(3D000\)$/,
    );
  });

  it('refuses a secret that is not a connection, without echoing it', async () => {
    const { deps } = await setup();
    const secret = await secretFor(postgres, { host: undefined, password: 'p@ss-in-a-broken-secret' });

    const error = await fetchSql(deps, datasetWith({ engine: 'postgres', secret, query: 'SELECT 1 AS one' })).then(
      () => undefined,
      (e: Error) => e,
    );

    expect(error?.message).toMatch(new RegExp(`^items: the secret ${secret} is not a database connection \\{host, port, database, username, password\\}: host: `));
    expect(error?.message).not.toContain('p@ss-in-a-broken-secret');
  });

  it('lets one of two simultaneous runs fetch; the other does nothing and says so', async () => {
    const { bucket, deps } = await setup();
    const dataset = datasetWith({ engine: 'postgres', secret: await secretFor(postgres), query: 'SELECT id FROM items_postgres WHERE id > :watermark', incremental: { column: 'id', initial: 0 } });

    const [a, b] = await Promise.all([fetchSql(deps, dataset), fetchSql(deps, dataset)]);

    expect([a.status, b.status].sort()).toEqual(['busy', 'fetched']);
    expect([a, b].find((o) => o.status === 'busy')).toMatchObject({ message: expect.stringMatching(/^items: another fetch of this source is running \(.+\); this one did nothing$/) });
    expect((await storedRows(bucket)).map((r) => r.id).sort()).toEqual([1, 2, 3]);
    expect(await stateOf(bucket)).toMatchObject({ column: 'id', watermark: 3 });
  });
});

describe('fetch from SQL, then stage and clean', () => {
  it('keeps a clean table current from a MariaDB datamart with incremental runs and mode upsert', async () => {
    await maria.exec('CREATE TABLE grants_e2e (grant_id int PRIMARY KEY, recipient varchar(100), amount decimal(14,2), updated_at datetime(3))');
    await maria.exec(`INSERT INTO grants_e2e VALUES (1, 'Park district', 1200.50, '2026-03-01 08:00:00'), (2, 'Library', 300.00, '2026-03-01 09:00:00'), (3, 'Ateliers Zoë', 75.25, '2026-03-01 10:00:00')`);
    const { pipeline, pool } = await freshProject({
      project: 'it_fetch_sql_e2e',
      datasets: [
        {
          name: 'items',
          source: {
            type: 'sql',
            engine: 'mysql',
            secret: await secretFor(maria),
            query: 'SELECT grant_id, recipient, amount, updated_at FROM grants_e2e WHERE updated_at > :watermark ORDER BY updated_at',
            incremental: { column: 'updated_at', overlapSeconds: 60 },
          },
          clean: {
            columns: [{ name: 'grant_id', type: 'integer' }, { name: 'recipient' }, { name: 'amount', type: 'numeric' }, { name: 'updated_at', type: 'timestamp' }],
            key: ['grant_id'],
            mode: 'upsert',
          },
        },
      ],
    });
    const { bucket, deps } = await setup();
    const stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
    /** Fetch once at `at`, then stage and clean what was fetched, as the bucket notification would. */
    async function runAt(at: Date) {
      const manifest = fetched(await fetchSql({ ...deps, now: () => at }, pipeline.datasets[0]!));
      const staged = await stageObject(stageDeps, { bucket, key: manifest.key });
      if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
      return cleanLoad({ pool, pipeline }, staged.loadId);
    }

    await runAt(NOW);
    await maria.exec(`UPDATE grants_e2e SET amount = 350.00, updated_at = '2026-03-02 09:00:00' WHERE grant_id = 2`);
    await maria.exec(`INSERT INTO grants_e2e VALUES (4, 'Youth orchestra', 99999999999.99, '2026-03-02 10:00:00')`);
    const second = await runAt(LATER);

    // grant 3 (10:00) is inside the minute of overlap and comes again, unchanged: upsert absorbs it
    expect(second).toMatchObject({ status: 'loaded', rowsLoaded: 3 });
    expect(await rows(pool, `SELECT grant_id, recipient, amount::text, to_char(updated_at, 'YYYY-MM-DD HH24:MI') AS updated_at FROM it_fetch_sql_e2e.items ORDER BY grant_id`)).toEqual([
      { grant_id: 1, recipient: 'Park district', amount: '1200.50', updated_at: '2026-03-01 08:00' },
      { grant_id: 2, recipient: 'Library', amount: '350.00', updated_at: '2026-03-02 09:00' },
      { grant_id: 3, recipient: 'Ateliers Zoë', amount: '75.25', updated_at: '2026-03-01 10:00' },
      { grant_id: 4, recipient: 'Youth orchestra', amount: '99999999999.99', updated_at: '2026-03-02 10:00' },
    ]);
  });
});
