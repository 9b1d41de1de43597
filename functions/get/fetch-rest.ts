import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Transform, pipeline } from 'node:stream';
import { createGzip } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { DatasetDefinition, SourceDefinition } from '../../contract/definition.ts';
import { MANIFEST_SUFFIX, ZONES } from '../../contract/names.ts';
import { PermanentError } from '../common/errors.ts';
import { redactUrl } from './fetch-http.ts';
import { restAuth, type RestAuth } from './rest-auth.ts';

export type RestSourceDefinition = Extract<SourceDefinition, { type: 'rest' }>;

export interface RestFetchDeps {
  s3: S3Client;
  bucket: string;
  /** Reads a Secrets Manager secret holding a JSON object (the source's credentials). */
  readSecret(name: string): Promise<Record<string, unknown>>;
  now?: () => Date;
  /** Abort the run after this long (default 10 minutes); the handler passes the invocation's remaining time. */
  timeoutMs?: number;
  /** Waits between retries; injectable so tests need not wait. */
  sleep?: (ms: number) => Promise<void>;
  /** Retries of one request after a 5xx, a 429 or a network error (default 4). */
  retries?: number;
  /** First backoff delay; doubled per retry, with jitter (default 1 s). */
  baseDelayMs?: number;
  /** The longest wait a `Retry-After` can impose (default 60 s). */
  maxRetryAfterMs?: number;
}

export interface RestManifest {
  dataset: string;
  /** The API's URL with query values redacted. */
  source: string;
  key: string;
  records: number;
  pages: number;
  /** The incremental watermark this run asked from, and the one it leaves for the next (ISO 8601). */
  watermarkBefore?: string;
  watermarkAfter?: string;
  /** Of the stored (gzip) object. */
  bytes: number;
  sha256: string;
  startedAt: string;
  finishedAt: string;
  /** Every page was read: the run ended on the API's last page. */
  complete: true;
}

export type RestOutcome =
  | { status: 'fetched'; manifest: RestManifest }
  | { status: 'empty'; source: string; pages: number; message: string };

/** What the next incremental run starts from, kept in `state/<dataset>/rest.json`. */
interface RestState {
  watermark?: string;
  key?: string;
}

export const restStateKey = (dataset: string) => `${ZONES.state}${dataset}/rest.json`;
export const RECORDS_FILE = 'records.ndjson.gz';

/**
 * Get: page through a JSON REST API and store its records as gzip NDJSON in
 * `raw/<dataset>/<run>/records.ndjson.gz` (streamed: memory holds one page), then a manifest
 * beside it. The upload's ObjectCreated event stages it like any other file.
 *
 * Incremental sources remember the newest `field` value they saw; the state is written only after
 * the records and manifest are stored, so a failed run is simply repeated by the next one. A run
 * that brings no records writes nothing.
 */
export async function fetchRest(deps: RestFetchDeps, dataset: DatasetDefinition): Promise<RestOutcome> {
  if (dataset.source.type !== 'rest') throw new PermanentError(`dataset ${dataset.name} is not a REST source (its source is ${dataset.source.type})`);
  const source = dataset.source;
  const now = deps.now ?? (() => new Date());
  const started = now();
  const shownUrl = redactUrl(source.url);
  const signal = AbortSignal.timeout(deps.timeoutMs ?? 600_000);
  const auth = await restAuth(source.auth, deps.readSecret, { now: () => now().getTime(), signal });
  const previous = source.incremental ? await readState(deps, dataset.name) : undefined;
  const http = new JsonClient(deps, auth, signal);

  const run = started.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const key = `${ZONES.raw}${dataset.name}/${run}/${RECORDS_FILE}`;
  const sink = new RecordSink(deps, key);
  let watermark = previous?.watermark;
  let pages = 0;
  try {
    for await (const page of pagesOf(source, http, previous?.watermark)) {
      pages++;
      for (const record of page) {
        await sink.write(record);
        if (source.incremental) watermark = later(watermark, pathOf(record, source.incremental.field));
      }
    }
  } catch (error) {
    await sink.abort();
    throw error;
  }
  if (sink.records === 0) {
    await sink.abort();
    return { status: 'empty', source: shownUrl, pages, message: `no ${previous?.watermark ? `records changed since ${previous.watermark}` : 'records'} at ${shownUrl}; nothing written` };
  }
  const { bytes, sha256 } = await sink.finish();
  const manifest: RestManifest = {
    dataset: dataset.name,
    source: shownUrl,
    key,
    records: sink.records,
    pages,
    watermarkBefore: previous?.watermark,
    watermarkAfter: source.incremental ? watermark : undefined,
    bytes,
    sha256,
    startedAt: started.toISOString(),
    finishedAt: now().toISOString(),
    complete: true,
  };
  await putJson(deps, `${ZONES.raw}${dataset.name}/${run}/${MANIFEST_SUFFIX}`, manifest);
  if (source.incremental) await putJson(deps, restStateKey(dataset.name), { watermark, key } satisfies RestState);
  return { status: 'fetched', manifest };
}

/** The records of each page, following the source's pagination until the last page. */
async function* pagesOf(source: RestSourceDefinition, http: JsonClient, watermark: string | undefined): AsyncGenerator<unknown[]> {
  const first = new URL(source.url);
  if (source.incremental && watermark) {
    first.searchParams.set(source.incremental.param, new Date(Date.parse(watermark) - source.incremental.overlapSeconds * 1000).toISOString());
  }
  const p = source.pagination;
  let offset = 0;
  let page = p?.type === 'page' ? (p.firstPage ?? 1) : 0;
  if (p?.type === 'offset') {
    first.searchParams.set(p.limitParam, String(p.pageSize));
    first.searchParams.set(p.offsetParam, '0');
  }
  if (p?.type === 'page') {
    first.searchParams.set(p.pageParam, String(page));
    if (p.sizeParam && p.pageSize) first.searchParams.set(p.sizeParam, String(p.pageSize));
  }

  const seen = new Set<string>();
  let url: URL | undefined = first;
  let count = 0;
  while (url) {
    if (count >= source.maxPages) {
      throw new PermanentError(`${redactUrl(source.url)}: more than maxPages (${source.maxPages}) pages; raise maxPages if the API really has more`);
    }
    count++;
    seen.add(url.href);
    const { body, headers } = await http.get(url);
    const records = source.records ? pathOf(body, source.records) : body;
    if (!Array.isArray(records)) {
      throw new PermanentError(`GET ${redactUrl(url.href)}: ${source.records ? `"${source.records}" in the answer` : 'the answer'} is not an array of records (set source.records to the path of the array)`);
    }
    yield records;

    let next: URL | undefined;
    switch (p?.type) {
      case undefined:
        break;
      case 'offset':
        if (records.length >= p.pageSize) {
          offset += p.pageSize;
          next = new URL(url);
          next.searchParams.set(p.offsetParam, String(offset));
        }
        break;
      case 'page':
        if (records.length > 0 && (p.pageSize === undefined || records.length >= p.pageSize)) {
          next = new URL(url);
          next.searchParams.set(p.pageParam, String(++page));
        }
        break;
      case 'cursor': {
        const cursor = pathOf(body, p.cursorPath);
        if (cursor !== undefined && cursor !== null && cursor !== '') {
          next = new URL(url);
          if (next.searchParams.get(p.cursorParam) === String(cursor)) {
            throw new PermanentError(`GET ${redactUrl(url.href)}: the API gave the same cursor twice (a paging loop); stopped after ${count} pages`);
          }
          next.searchParams.set(p.cursorParam, String(cursor));
        }
        break;
      }
      case 'link': {
        const link = nextLink(headers.get('link'));
        if (link) next = new URL(link, url);
        break;
      }
      case 'nextUrl': {
        const target = pathOf(body, p.path);
        if (typeof target === 'string' && target !== '') next = new URL(target, url);
        break;
      }
    }
    if (next && seen.has(next.href)) {
      throw new PermanentError(`GET ${redactUrl(url.href)}: the next page is one already read (a paging loop); stopped after ${count} pages`);
    }
    url = next;
  }
}

/** GETs JSON with authentication, retries and clear errors. */
class JsonClient {
  constructor(
    private readonly deps: RestFetchDeps,
    private readonly auth: RestAuth,
    private readonly signal: AbortSignal,
  ) {}

  async get(url: URL): Promise<{ body: unknown; headers: Headers }> {
    const shown = redactUrl(url.href);
    const retries = this.deps.retries ?? 4;
    const sleep = this.deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const target = new URL(url);
      const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'civic-etl' };
      await this.auth.apply(target, headers);
      let res: Response;
      try {
        res = await fetch(target, { headers, redirect: 'follow', signal: this.signal });
      } catch (cause) {
        if (attempt < retries && !this.signal.aborted) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw new Error(`GET ${shown} failed after ${attempt + 1} attempts: ${(cause as Error).message}`);
      }
      if (res.status === 401 && !refreshed && this.auth.refresh()) {
        await res.body?.cancel();
        refreshed = true;
        attempt--;
        continue;
      }
      if ((res.status === 429 || res.status >= 500) && attempt < retries) {
        await res.body?.cancel();
        const wait = res.status === 429 ? this.retryAfter(res.headers.get('retry-after')) : undefined;
        await sleep(wait ?? this.backoff(attempt));
        continue;
      }
      const contentType = res.headers.get('content-type') ?? '';
      if (!res.ok) {
        await res.body?.cancel();
        const error = `GET ${shown} answered ${res.status} ${res.statusText}${attempt ? ` after ${attempt + 1} attempts` : ''}`;
        throw res.status >= 500 || res.status === 429 ? new Error(error) : new PermanentError(error);
      }
      if (!/\bjson\b|\+json/i.test(contentType)) {
        await res.body?.cancel();
        throw new PermanentError(`GET ${shown} answered ${res.status} with content type "${contentType || 'none'}", not JSON`);
      }
      const text = await res.text();
      try {
        return { body: JSON.parse(text) as unknown, headers: res.headers };
      } catch (cause) {
        throw new PermanentError(`GET ${shown} answered ${res.status} with invalid JSON (${(cause as Error).message})`);
      }
    }
  }

  /** Exponential backoff with "equal jitter": between half and all of base·2^attempt, at most 60 s. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(60_000, (this.deps.baseDelayMs ?? 1000) * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** `Retry-After` in seconds or as an HTTP date, capped; undefined when absent or unreadable. */
  private retryAfter(header: string | null): number | undefined {
    if (!header) return undefined;
    const seconds = Number(header);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
    if (!Number.isFinite(ms)) return undefined;
    return Math.min(Math.max(0, ms), this.deps.maxRetryAfterMs ?? 60_000);
  }
}

/**
 * Records → NDJSON → gzip → S3, counting and hashing the stored bytes. The upload starts with the
 * first record, so a run without records writes nothing; `write` waits while gzip is full, so
 * memory does not grow with the number of records.
 */
class RecordSink {
  records = 0;
  private bytes = 0;
  private readonly hash = createHash('sha256');
  private gzip?: ReturnType<typeof createGzip>;
  private upload?: Upload;
  private done?: Promise<unknown>;

  constructor(
    private readonly deps: RestFetchDeps,
    private readonly key: string,
  ) {}

  async write(record: unknown): Promise<void> {
    if (!this.gzip) this.start();
    this.records++;
    if (!this.gzip!.write(`${JSON.stringify(record)}\n`)) await Promise.race([once(this.gzip!, 'drain'), this.done]);
  }

  async finish(): Promise<{ bytes: number; sha256: string }> {
    this.gzip!.end();
    await this.done;
    return { bytes: this.bytes, sha256: this.hash.digest('hex') };
  }

  /** Drop what was written: a multipart upload is aborted, a small one never sent. */
  async abort(): Promise<void> {
    if (!this.upload) return;
    this.gzip!.destroy(new Error('run abandoned'));
    await this.upload.abort().catch(() => undefined);
    await this.done?.catch(() => undefined);
  }

  private start(): void {
    this.gzip = createGzip();
    const counter = new Transform({
      transform: (chunk: Buffer, _enc, callback) => {
        this.hash.update(chunk);
        this.bytes += chunk.length;
        callback(null, chunk);
      },
    });
    const body = new PassThrough();
    pipeline(this.gzip, counter, body, () => undefined);
    this.upload = new Upload({
      client: this.deps.s3,
      params: { Bucket: this.deps.bucket, Key: this.key, Body: body, ContentType: 'application/x-ndjson' },
    });
    this.done = this.upload.done();
    // a failed upload is reported by finish(); keep it from being an unhandled rejection meanwhile
    this.done.catch(() => undefined);
  }
}

/** `a.b.c` in a parsed JSON value. */
function pathOf(value: unknown, path: string): unknown {
  let at = value;
  for (const part of path.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

/** The later of a watermark and a record's value (ISO 8601 text or epoch milliseconds); unreadable values are ignored. */
function later(watermark: string | undefined, value: unknown): string | undefined {
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) return watermark;
  if (watermark !== undefined && Date.parse(watermark) >= ms) return watermark;
  return new Date(ms).toISOString();
}

/** The `rel="next"` target of an RFC 8288 Link header. */
function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel="?([^";]*\s)?next(\s[^";]*)?"?/i.test(m[2]!)) return m[1];
  }
  return undefined;
}

async function readState(deps: RestFetchDeps, dataset: string): Promise<RestState | undefined> {
  const key = restStateKey(dataset);
  const listed = await deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: key, MaxKeys: 1 }));
  if (!listed.Contents?.some((o) => o.Key === key)) return undefined;
  const out = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
  return JSON.parse((await out.Body?.transformToString()) ?? '{}') as RestState;
}

async function putJson(deps: RestFetchDeps, key: string, value: unknown): Promise<void> {
  await deps.s3.send(
    new PutObjectCommand({ Bucket: deps.bucket, Key: key, Body: JSON.stringify(value, null, 2), ContentType: 'application/json' }),
  );
}
