/**
 * Where fetched records go: gzip NDJSON streamed to S3, counted and hashed, plus small JSON
 * documents (manifests) beside them.
 */
import { once } from 'node:events';
import { pipeline } from 'node:stream';
import { createGzip } from 'node:zlib';
import { meteredUpload, putJson, type MeteredUpload, type Stored, type StoreTarget } from '../common/store.ts';
import { MANIFEST_SUFFIX, ZONES } from '../../contract/names.ts';
import { declarationMetadata, fetchManifestSchema, type FetchManifest, type ManifestObject, type ObjectDeclaration } from '../../contract/objects.ts';

export type SinkDeps = StoreTarget;

/**
 * NDJSON is handed to gzip in batches of about this many characters: each gzip write is a round
 * trip to libuv's thread pool, and one a record (a few hundred bytes) cost more than the fetch
 * itself (`npm run bench -- fetch`: 510,000 context switches for 200,000 records).
 */
const BATCH_CHARS = 64 * 1024;

/**
 * Records → NDJSON → gzip → S3, counting and hashing the stored bytes. The upload starts with the
 * first record, so a run without records writes nothing; `write` waits while gzip is full, so
 * memory does not grow with the number of records (it holds one batch of NDJSON besides).
 */
export class RecordSink {
  records = 0;
  private pending = '';
  private gzip?: ReturnType<typeof createGzip>;
  private upload?: MeteredUpload;

  constructor(
    private readonly deps: SinkDeps,
    private readonly key: string,
    /** What the object replaces and holds (contract/objects.ts), stored with it as its user metadata. */
    private readonly declaration: ObjectDeclaration,
  ) {}

  async write(record: unknown): Promise<void> {
    if (!this.gzip) this.start();
    this.records++;
    this.pending += `${JSON.stringify(record)}\n`;
    if (this.pending.length < BATCH_CHARS) return;
    const batch = this.pending;
    this.pending = '';
    if (!this.gzip!.write(batch)) await Promise.race([once(this.gzip!, 'drain'), this.upload!.done]);
  }

  async finish(): Promise<Stored> {
    if (this.pending) this.gzip!.write(this.pending);
    this.pending = '';
    this.gzip!.end();
    return this.upload!.done;
  }

  /** Drop what was written: a multipart upload is aborted, a small one never sent. */
  async abort(): Promise<void> {
    if (!this.upload) return;
    this.gzip!.destroy(new Error('run abandoned'));
    await this.upload.abort();
  }

  private start(): void {
    this.gzip = createGzip();
    this.upload = meteredUpload(this.deps, this.key, { contentType: 'application/x-ndjson', metadata: declarationMetadata(this.declaration) });
    pipeline(this.gzip, this.upload.sink, () => undefined);
  }
}

/**
 * `raw/<dataset>/<run>/_manifest.json`: the run's typed manifest (contract/objects.ts) — the same
 * fields for every connector, each stored object with its declaration, and the connector's own
 * account under `details`. Checked against the schema before it is written.
 */
export async function writeManifest(deps: SinkDeps, manifest: Omit<FetchManifest, 'contract'>): Promise<FetchManifest> {
  const checked = fetchManifestSchema.parse({ contract: 1, ...manifest });
  await putJson(deps, `${ZONES.raw}${manifest.dataset}/${manifest.run}/${MANIFEST_SUFFIX}`, checked);
  return checked;
}

/** A manifest's entry for a stored object. */
export function manifestObject(key: string, stored: { bytes: number; sha256: string; records?: number }, declaration: ObjectDeclaration): ManifestObject {
  return { key, bytes: stored.bytes, sha256: stored.sha256, ...(stored.records === undefined ? {} : { records: stored.records }), declaration };
}
