import { randomUUID } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, PutBucketVersioningCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { expect } from 'vitest';
import { parsePipeline } from '../../contract/load.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { getPool } from '../../functions/common/db.ts';
import type { ObjectRef } from '../../functions/common/ledger.ts';
import { migrate } from '../../functions/migrate/migrate.ts';

/** A fresh project: its schemas dropped and recreated, and its ledger rows removed. */
export async function freshProject(input: PipelineInput) {
  const pipeline = parsePipeline(input);
  const pool = await getPool();
  await migrate(pool, undefined);
  await pool.query(`DROP SCHEMA IF EXISTS "${pipeline.project}" CASCADE; DROP SCHEMA IF EXISTS "${pipeline.project}_staging" CASCADE`);
  await pool.query('DELETE FROM etl.loads WHERE project = $1', [pipeline.project]);
  await migrate(pool, pipeline.project);
  return { pipeline, pool };
}

/** A versioned bucket of its own in moto. */
export async function freshBucket(prefix: string): Promise<string> {
  const bucket = `${prefix}-${randomUUID().slice(0, 8)}`;
  await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
  await s3Client().send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  return bucket;
}

/** Upload bytes and return the object version as an S3 notification would name it. */
export async function put(bucket: string, key: string, body: string | Buffer): Promise<ObjectRef> {
  const out = await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  return { bucket, key, versionId: out.VersionId, etag: out.ETag?.replace(/"/g, ''), size: Buffer.byteLength(body) };
}

/** The bytes of an object. */
export async function objectBytes(bucket: string, key: string): Promise<Buffer> {
  return Buffer.from(await (await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());
}

/** An object's JSON document. */
export async function objectJson(bucket: string, key: string): Promise<Record<string, unknown>> {
  return JSON.parse((await objectBytes(bucket, key)).toString()) as Record<string, unknown>;
}

/** The state a fetcher saved at `key`; a finished run has released its lease. */
export async function savedState(bucket: string, key: string): Promise<Record<string, unknown>> {
  const doc = await objectJson(bucket, key);
  expect(doc.lease).toBeUndefined();
  return doc.state as Record<string, unknown>;
}

export async function rows<T = Record<string, unknown>>(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await pool.query(sql, params)).rows as T[];
}
