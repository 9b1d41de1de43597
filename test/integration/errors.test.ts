/**
 * The one classifier (functions/common/errors.ts) on errors as the real services raise them:
 * PostgreSQL's, zlib's, and ours.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { GetObjectCommand, PutBucketPolicyCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import { ViewError } from '../../functions/combine/views.ts';
import { closePool, getPool } from '../../functions/common/db.ts';
import { classify, PermanentError, UnreadableMessageError } from '../../functions/common/errors.ts';
import { freshBucket, put } from './support.ts';

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
    expect(classify(error, { file: `${FILE}.gz` })).toMatchObject({
      kind: 'permanent',
      message: expect.stringMatching(/^incoming\/acme\/things\/things\.csv\.gz: cannot be decompressed: unexpected end of file/),
    });
  });

  it('classifies a wrapped error by what it wraps, and ours by their class', async () => {
    const wrapped = new Error('COPY failed', { cause: await pgError(`SELECT 'x'::int`) });
    expect(classify(wrapped, { file: FILE }).kind).toBe('permanent');
    expect(classify(new ViewError('view "v" cannot be created')).kind).toBe('blocked');
    expect(classify(new PermanentError('bad')).kind).toBe('permanent');
    expect(classify(new UnreadableMessageError('not a clean message')).kind).toBe('permanent');
    expect(classify(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toMatchObject({ kind: 'retryable', message: 'read ECONNRESET' });
  });
});

/** The error S3 (moto) raises for `read`, on an object whose bucket policy denies reading it. */
async function deniedGet(): Promise<unknown> {
  const bucket = await freshBucket('it-errors-denied');
  const ref = await put(bucket, 'incoming/acme/things/denied.csv', 'id\n1\n');
  const Policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/${ref.key}` }] });
  await s3Client().send(new PutBucketPolicyCommand({ Bucket: bucket, Policy }));
  try {
    await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: ref.key }));
  } catch (error) {
    return error;
  }
  throw new Error('moto let the read through');
}

/** An error as the AWS SDK builds it from S3's answer (for what moto cannot produce: KMS's errors, expired credentials). */
const s3Error = (name: string, status: number, message: string) =>
  new S3ServiceException({ name, $fault: 'client', message, $metadata: { httpStatusCode: status, requestId: 'R', extendedRequestId: 'X' } });

describe('classify: an object the step may not read', () => {
  it("takes S3's 403 on GET (moto, a bucket policy denying the read; moto lets HEAD through) for a permanent failure naming the file and the cause", async () => {
    const failure = classify(await deniedGet(), { file: FILE });
    expect(failure).toMatchObject({
      kind: 'permanent',
      message: `${FILE}: the stage step may not read this object (HTTP 403, access denied by a bucket, object or KMS key policy); upload it again with the landing bucket's key, or fix the policy and replay it`,
    });
    expect((failure.error as PermanentError).position.file).toBe(FILE);
  });

  it("takes a KMS key the step may not use (AccessDenied naming kms:Decrypt, KMS.* errors) for a permanent failure that says so — the SDK's error shape, as moto does not enforce KMS", () => {
    const decrypt = s3Error('AccessDenied', 403, 'User: arn:aws:sts::1:assumed-role/stage is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:eu-west-1:1:key/other');
    expect(classify(decrypt, { file: FILE })).toMatchObject({
      kind: 'permanent',
      message: `${FILE}: the stage step may not decrypt this object (AccessDenied: User: arn:aws:sts::1:assumed-role/stage is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:eu-west-1:1:key/other): it is encrypted with a KMS key the step may not use; upload it again with the landing bucket's key`,
    });
    expect(classify(s3Error('KMS.DisabledException', 400, 'arn:aws:kms:eu-west-1:1:key/k is disabled.'), { file: FILE })).toMatchObject({
      kind: 'permanent',
      message: expect.stringMatching(/may not decrypt this object \(KMS\.DisabledException/),
    });
  });

  it("keeps a 403 about the request's own credentials (expired, clock skew) retryable", () => {
    expect(classify(s3Error('RequestTimeTooSkewed', 403, 'The difference between the request time and the current time is too large.'), { file: FILE }).kind).toBe('retryable');
    expect(classify(s3Error('InvalidAccessKeyId', 403, 'The AWS Access Key Id you provided does not exist in our records.'), { file: FILE }).kind).toBe('retryable');
    expect(classify(s3Error('SlowDown', 503, 'Please reduce your request rate.'), { file: FILE }).kind).toBe('retryable');
  });
});
