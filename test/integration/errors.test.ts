/**
 * The one classifier (functions/common/errors.ts) on errors as the real services raise them:
 * PostgreSQL's, zlib's, and ours.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { ViewError } from '../../functions/combine/views.ts';
import { closePool, getPool } from '../../functions/common/db.ts';
import { classify, PermanentError, UnreadableMessageError } from '../../functions/common/errors.ts';

afterAll(closePool);

/** The error PostgreSQL raises for `sql`, in a transaction rolled back. */
async function pgError(sql: string): Promise<unknown> {
  const client = await (await getPool()).connect();
  try {
    await client.query('BEGIN');
    await client.query(sql);
  } catch (error) {
    return error;
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
  throw new Error(`${sql} raised nothing`);
}

const FILE = 'incoming/acme/things/things.csv';

describe('classify', () => {
  it('takes PostgreSQL data errors (class 22) for bad input, naming the file and the SQLSTATE', async () => {
    const failure = classify(await pgError('SELECT 1 / 0'), { file: FILE });
    expect(failure.kind).toBe('permanent');
    expect(failure.message).toBe(`${FILE}: division by zero (SQLSTATE 22012)`);
    expect((failure.error as PermanentError).position.file).toBe(FILE);
  });

  it('takes names and syntax PostgreSQL refuses (class 42) for bad input', async () => {
    const failure = classify(await pgError('CREATE TEMP TABLE t (ctid text)'), { file: FILE });
    expect(failure).toMatchObject({ kind: 'permanent', message: `${FILE}: column name "ctid" conflicts with a system column name (SQLSTATE 42701)` });
  });

  it('takes missing privileges (42501) as blocked: the deployment must change, not the file', async () => {
    const pool = await getPool();
    await pool.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'it_errors_nobody') THEN CREATE ROLE it_errors_nobody NOLOGIN; END IF; END $$`);
    const failure = classify(await pgError('SET LOCAL ROLE it_errors_nobody; SELECT count(*) FROM etl.loads'), { file: FILE });
    expect(failure.kind).toBe('blocked');
    expect(failure.message).toMatch(/permission denied .* \(SQLSTATE 42501\)/);
  });

  it('takes an SQL error nobody planned for (a raised exception) as retryable, keeping its text', async () => {
    const failure = classify(await pgError(`DO $$ BEGIN RAISE EXCEPTION 'programs are frozen'; END $$`), { file: FILE });
    expect(failure).toMatchObject({ kind: 'retryable', message: 'programs are frozen (SQLSTATE P0001)' });
  });

  it('takes a .gz that does not decompress for bad input', () => {
    const gz = gzipSync('id,name\n1,Ann\n');
    let error: unknown;
    try {
      gunzipSync(gz.subarray(0, gz.length - 4));
    } catch (e) {
      error = e;
    }
    expect(classify(error, { file: `${FILE}.gz` })).toMatchObject({ kind: 'permanent', message: expect.stringMatching(/^incoming\/acme\/things\/things\.csv\.gz: cannot be decompressed: unexpected end of file/) });
  });

  it('classifies a wrapped error by what it wraps, and ours by their class', async () => {
    const wrapped = new Error('COPY failed', { cause: await pgError(`SELECT 'x'::int`) });
    expect(classify(wrapped, { file: FILE }).kind).toBe('permanent');
    expect(classify(new ViewError('view "v" cannot be created')).kind).toBe('blocked');
    expect(classify(new PermanentError('bad')).kind).toBe('permanent');
    expect(classify(new UnreadableMessageError('not a clean message')).kind).toBe('retryable');
    expect(classify(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toMatchObject({ kind: 'retryable', message: 'read ECONNRESET' });
  });
});
