/**
 * Writing objects to S3, one way for every step: a stream uploaded (multipart when large) while
 * its bytes are counted and hashed (SHA-256) on the way — fetched files, gzip NDJSON records,
 * export files — and small JSON documents (manifests, `latest.json`).
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { messageOf } from './errors.ts';
import { logger } from './logger.ts';

export interface StoreTarget {
  s3: S3Client;
  bucket: string;
}

/** What was stored: its size and SHA-256 (hex). */
export interface Stored {
  bytes: number;
  sha256: string;
}

/** Checks on the bytes going through a {@link Meter}: an Error returned refuses the stream (the upload is abandoned). */
export interface MeterChecks {
  /** Each chunk while nothing has gone through yet (the first bytes: an HTML page instead of a file). */
  first?(chunk: Buffer): Error | undefined;
  /** Once every byte went through, before the upload sees the end (an empty file, the same bytes as last time). */
  end?(stored: Stored): Error | undefined;
}

/** A pass-through that counts and hashes the bytes going through it, and may refuse them. */
export class Meter extends Transform {
  bytes = 0;
  /** The error a check refused the stream with. */
  refused?: Error;
  private readonly hash = createHash('sha256');
  private digest?: string;

  constructor(private readonly checks: MeterChecks = {}) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.bytes === 0 && this.checks.first) {
      const refused = this.checks.first(chunk);
      if (refused) return done((this.refused = refused));
    }
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const refused = this.checks.end?.(this.stored);
    if (refused) return done((this.refused = refused));
    done();
  }

  /** Size and SHA-256 so far (final once the stream ended). */
  get stored(): Stored {
    this.digest ??= this.hash.digest('hex');
    return { bytes: this.bytes, sha256: this.digest };
  }
}

export interface UploadOptions {
  contentType?: string;
  metadata?: Record<string, string>;
  checks?: MeterChecks;
  /** Parts uploaded at once and their size (lib-storage's defaults: 4 of 5 MiB). */
  queueSize?: number;
  partSize?: number;
}

export interface MeteredUpload {
  /** Write (or pipe) the object's bytes here, and end it. */
  sink: Meter;
  /** Resolves once the object is stored, with its size and SHA-256; rejects if either side failed (the upload is then aborted). */
  done: Promise<Stored>;
  /** Drop what was written: a multipart upload is aborted, a small one never sent. */
  abort(): Promise<void>;
}

/**
 * Start uploading to `key` what is written to the returned `sink`, counting and hashing it. If the
 * upload fails, the sink is destroyed with its error, so that a producer waiting for it to drain
 * stops; if the sink fails (a check refused it, the source broke off), the upload is abandoned.
 */
export function meteredUpload(target: StoreTarget, key: string, options: UploadOptions = {}): MeteredUpload {
  const sink = new Meter(options.checks);
  const upload = new Upload({
    client: target.s3,
    params: { Bucket: target.bucket, Key: key, Body: sink, ContentType: options.contentType, ...(options.metadata ? { Metadata: options.metadata } : {}) },
    ...(options.queueSize ? { queueSize: options.queueSize } : {}),
    ...(options.partSize ? { partSize: options.partSize } : {}),
  });
  const done = upload.done().then(
    () => sink.stored,
    (error: unknown) => {
      sink.destroy(error instanceof Error ? error : new Error(String(error)));
      throw sink.refused ?? error;
    },
  );
  // a failure is reported by `done` to whoever awaits it; keep it from being an unhandled rejection meanwhile
  done.catch(() => undefined);
  return {
    sink,
    done,
    abort: async () => {
      sink.destroy();
      // parts left by an abort that fails are removed by the bucket's rule for incomplete uploads
      await upload.abort().catch((error: unknown) => logger.warn('could not abort a multipart upload: its parts stay until the bucket removes incomplete uploads', { key, error: messageOf(error) }));
      await done.catch(() => undefined);
    },
  };
}

/**
 * Stream what `produce` writes into `key`, counting its bytes and SHA-256. `produce` must end the
 * stream. If either side fails, the other is stopped and the upload aborted.
 */
export async function uploadStream(target: StoreTarget, key: string, options: UploadOptions, produce: (sink: Writable) => Promise<void>): Promise<Stored> {
  const upload = meteredUpload(target, key, options);
  try {
    const [, stored] = await Promise.all([produce(upload.sink), upload.done]);
    return stored;
  } catch (error) {
    await upload.abort();
    throw error;
  }
}

/** A small JSON document (a manifest, `latest.json`): indented, ending in a newline. */
export async function putJson(target: StoreTarget, key: string, value: unknown): Promise<void> {
  await target.s3.send(new PutObjectCommand({ Bucket: target.bucket, Key: key, Body: `${JSON.stringify(value, null, 2)}\n`, ContentType: 'application/json; charset=utf-8' }));
}
