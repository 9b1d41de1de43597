import type { DatasetDefinition, SourceDefinition } from '../../contract/definition.ts';
import { ZONES } from '../../contract/names.ts';
import type { ObjectDeclaration } from '../../contract/objects.ts';
import { PermanentError } from '../common/errors.ts';
import { redactUrl } from '../common/urls.ts';
import { describeHttpStats, HttpClient, nextLink, pathOf, type HttpStats, type RetryOptions } from './http-client.ts';
import { noAuth, restAuth, type RestAuth } from './rest-auth.ts';
import { manifestObject, RecordSink, writeManifest } from './sink.ts';
import { beginRun, busyMessage, stateKey, withLease, type RunClock, type StateLease } from './state.ts';
import type { FetcherDeps } from './deps.ts';

export type RestSourceDefinition = Extract<SourceDefinition, { type: 'rest' }>;

export interface RestFetchDeps extends FetcherDeps, RetryOptions {
  /** Incremental sources: time kept before `timeoutMs` to store what was read and save a checkpoint (default 60 s, at most a third). */
  marginMs?: number;
}

export interface RestManifest {
  dataset: string;
  /** The API's URL with query values redacted. */
  source: string;
  key: string;
  records: number;
  pages: number;
  /** The incremental watermark this run asked from, and the one it leaves for the next (ISO 8601, or the number). */
  watermarkBefore?: string;
  watermarkAfter?: string;
  /** Of the stored (gzip) objects, all parts together. */
  bytes: number;
  /** Of the first part (`key`); every part's own in `parts`. */
  sha256: string;
  /** The stored objects: one, or one per invocation of a run that checkpointed (`records.ndjson.gz`, `records-00002.ndjson.gz`, …). */
  parts: RestPart[];
  startedAt: string;
  finishedAt: string;
  /** Records of the overlap window already fetched by the last run, unchanged (`incremental.idField`). */
  skippedAtBoundary?: number;
  /** Every page was read (the run ended on the API's last page), or not yet: a checkpointed run goes on. */
  complete: boolean;
  /** Requests of this invocation and their retries (429, 5xx, network errors, token renewals), when there were any. */
  http?: HttpStats;
}

export interface RestPart {
  key: string;
  records: number;
  bytes: number;
  sha256: string;
}

export type RestOutcome =
  | { status: 'fetched'; manifest: RestManifest }
  /** Incremental sources near the time limit: what was read is stored, the next invocation continues. */
  | { status: 'checkpointed'; manifest: RestManifest; message: string }
  | { status: 'empty'; source: string; pages: number; message: string }
  /** Another run of this source holds its state: this one did nothing. */
  | { status: 'busy'; source: string; message: string };

/** What the next incremental run starts from, kept in `state/<dataset>/rest.json`. */
interface RestState {
  watermark?: string;
  key?: string;
  /** `id@field` of the records inside the overlap window of the last run: skipped when seen again unchanged. */
  boundary?: string[];
  /** A run that stopped before its time limit: where it goes on (the watermark above is the last complete run's). */
  checkpoint?: {
    run: string;
    startedAt: string;
    /** The next page to ask for (no credentials in it: they are added per request). */
    next: string;
    parts: RestPart[];
    pages: number;
    skipped: number;
    /** The newest `field` seen so far, and the marks of the records near it. */
    watermark?: string;
    near: { id: string; ms: number }[];
  };
}

export const restStateKey = (dataset: string) => stateKey(dataset, 'rest');
export const RECORDS_FILE = 'records.ndjson.gz';
/** At most this many boundary records are remembered (more only means more re-fetched duplicates, which upsert absorbs). */
const MAX_BOUNDARY = 10_000;

/**
 * Get: page through a JSON REST API and store its records as gzip NDJSON in
 * `raw/<dataset>/<run>/records.ndjson.gz` (streamed: memory holds the pages in flight), then a
 * manifest beside it. The upload's ObjectCreated event stages it like any other file.
 *
 * Each run first takes the lease on the source's state (functions/get/state.ts): a second run of
 * the same source at the same time returns `busy` and writes nothing. Incremental sources remember
 * the newest `field` value they saw; the state is written only after the records and manifest are
 * stored, so a failed run is simply repeated by the next one. A run that brings no records writes
 * nothing.
 */
export async function fetchRest(deps: RestFetchDeps, dataset: DatasetDefinition): Promise<RestOutcome> {
  if (dataset.source.type !== 'rest') throw new PermanentError(`dataset ${dataset.name} is not a REST source (its source is ${dataset.source.type})`);
  const source = dataset.source;
  const shownUrl = redactUrl(source.url);
  const { clock, taken } = await beginRun<RestState>(deps, restStateKey(dataset.name));
  if (taken.status === 'busy') return { status: 'busy', source: shownUrl, message: busyMessage(dataset.name, taken, 'this source') };
  return withLease(taken.lease, () => fetchWithLease(deps, dataset, source, taken.lease, { ...clock, shownUrl }));
}

async function fetchWithLease(deps: RestFetchDeps, dataset: DatasetDefinition, source: RestSourceDefinition, lease: StateLease<RestState>, run: RunClock & { shownUrl: string }): Promise<RestOutcome> {
  const { now, shownUrl } = run;
  const signal = AbortSignal.timeout(run.timeoutMs);
  // incremental runs (whose records are upserted) may stop early and go on in the next invocation
  const deadline = now().getTime() + run.timeoutMs - Math.min(deps.marginMs ?? 60_000, run.timeoutMs / 3);
  // one client for the run: its data requests and its token requests (auth, below) alike
  let auth: RestAuth = noAuth;
  const http = new HttpClient(deps, { apply: (u, h) => auth.apply(u, h), refresh: () => auth.refresh(), renewals: () => auth.renewals?.() ?? 0 }, signal, {
    verifyTls: source.verifyTls,
    source: `dataset ${dataset.name}`,
  });
  auth = await restAuth(source.auth, deps.readSecret, { now: () => now().getTime(), client: () => http });
  const inc = source.incremental;
  const previous = inc ? lease.state : undefined;
  const resumed = previous?.checkpoint;

  const runId = resumed?.run ?? run.run;
  const startedAt = resumed?.startedAt ?? run.started.toISOString();
  const folder = `${ZONES.raw}${dataset.name}/${runId}/`;
  const parts: RestPart[] = [...(resumed?.parts ?? [])];
  const partKey = parts.length === 0 ? `${folder}${RECORDS_FILE}` : `${folder}${RECORDS_FILE.replace(/\.ndjson\.gz$/, '')}-${String(parts.length + 1).padStart(5, '0')}.ndjson.gz`;
  // an incremental run brings changes; a full run's parts together are the whole dataset (contract/objects.ts)
  const declaration: ObjectDeclaration = { contract: 1, replaces: inc ? 'nothing' : 'run', holds: 'rows', run: runId, runStartedAt: startedAt, part: parts.length + 1 };
  const sink = new RecordSink(deps, partKey, declaration);
  const seenAtBoundary = new Set(previous?.boundary ?? []);
  let watermark = resumed ? resumed.watermark : previous?.watermark;
  let pages = resumed?.pages ?? 0;
  let skipped = resumed?.skipped ?? 0;
  const near: { id: string; ms: number }[] = [...(resumed?.near ?? [])];
  let stoppedAt: URL | undefined;
  try {
    const resume = resumed && { url: new URL(resumed.next), pages: resumed.pages };
    for await (const { records: page, next } of pagesOf(source, http, previous?.watermark, resume)) {
      pages++;
      for (const record of page) {
        if (inc) {
          const value = pathOf(record, inc.field);
          const id = inc.idField ? pathOf(record, inc.idField) : undefined;
          const ms = inc.type === 'timestamp' ? timeOf(value) : undefined;
          if (id !== undefined && ms !== undefined) {
            const mark = `${String(id)}@${new Date(ms).toISOString()}`;
            if (seenAtBoundary.has(mark)) {
              skipped++;
              continue;
            }
            near.push({ id: mark, ms });
            if (near.length > 2 * MAX_BOUNDARY) near.splice(0, near.length - MAX_BOUNDARY);
          }
          watermark = inc.type === 'number' ? largest(watermark, value) : later(watermark, value);
        }
        await sink.write(record);
      }
      if (inc && next && now().getTime() >= deadline) {
        stoppedAt = next;
        break;
      }
    }
  } catch (error) {
    await sink.abort();
    throw error;
  }
  if (sink.records > 0) parts.push({ key: partKey, records: sink.records, ...(await sink.finish()) });
  else await sink.abort();
  const records = parts.reduce((n, p) => n + p.records, 0);
  if (records === 0) {
    const what = previous?.watermark ? `records changed since ${previous.watermark}${skipped ? ` (${skipped} already fetched at the boundary skipped)` : ''}` : 'records';
    return { status: 'empty', source: shownUrl, pages, message: `no ${what} at ${shownUrl}; nothing written` };
  }
  const manifest: RestManifest = {
    dataset: dataset.name,
    source: shownUrl,
    key: parts[0]!.key,
    records,
    pages,
    ...(skipped ? { skippedAtBoundary: skipped } : {}),
    watermarkBefore: previous?.watermark,
    watermarkAfter: inc && !stoppedAt ? watermark : undefined,
    bytes: parts.reduce((n, p) => n + p.bytes, 0),
    sha256: parts[0]!.sha256,
    parts,
    startedAt,
    finishedAt: now().toISOString(),
    complete: !stoppedAt,
    ...(describeHttpStats(http.counts()) ? { http: http.counts() } : {}),
  };
  await writeManifest(deps, {
    dataset: dataset.name,
    connector: 'rest',
    source: shownUrl,
    run: runId,
    startedAt,
    finishedAt: manifest.finishedAt,
    complete: manifest.complete,
    objects: parts.map((p, i) => manifestObject(p.key, p, { ...declaration, part: i + 1 })),
    details: {
      records,
      pages,
      ...(skipped ? { skippedAtBoundary: skipped } : {}),
      watermarkBefore: manifest.watermarkBefore,
      watermarkAfter: manifest.watermarkAfter,
      ...(manifest.http ? { http: manifest.http } : {}),
    },
  });
  if (stoppedAt) {
    // a next link may echo the API key: the key is added to each request anyway, never kept
    if (source.auth?.type === 'apiKey' && source.auth.in === 'query') stoppedAt.searchParams.delete(source.auth.name ?? 'api_key');
    const checkpoint = { run: runId, startedAt, next: stoppedAt.href, parts, pages, skipped, watermark, near: near.slice(-MAX_BOUNDARY) };
    await lease.save({ ...previous, checkpoint });
    const message = `${dataset.name}: stopped before the time limit after ${records} records in ${pages} pages (${parts.length} part${parts.length === 1 ? '' : 's'} stored); the next invocation goes on from there`;
    return { status: 'checkpointed', manifest, message };
  }
  if (inc) {
    // the records the next run's overlap window will bring again
    const from = watermark && inc.type === 'timestamp' ? Date.parse(watermark) - inc.overlapSeconds * 1000 : Infinity;
    const boundary = near
      .filter((r) => r.ms >= from)
      .slice(-MAX_BOUNDARY)
      .map((r) => r.id);
    await lease.save({ watermark, key: parts[0]!.key, ...(boundary.length ? { boundary } : {}) });
  }
  return { status: 'fetched', manifest };
}

/** One page's records, and the page after it (undefined after the last). */
interface Page {
  records: unknown[];
  next?: URL;
}

/**
 * The records of each page, following the source's pagination until the last page — from the
 * first page, or from `resume` (a checkpoint's next page).
 */
async function* pagesOf(source: RestSourceDefinition, http: HttpClient, watermark: string | undefined, resume?: { url: URL; pages: number }): AsyncGenerator<Page> {
  const p = source.pagination;
  let first = resume?.url;
  // maxPages counts the whole run, over every invocation of it
  const before = resume?.pages ?? 0;
  if (!first) {
    first = new URL(source.url);
    const inc = source.incremental;
    if (inc && watermark) {
      first.searchParams.set(inc.param, inc.type === 'number' ? watermark : new Date(Date.parse(watermark) - inc.overlapSeconds * 1000).toISOString());
    }
    if (p?.type === 'offset') {
      first.searchParams.set(p.limitParam, String(p.pageSize));
      first.searchParams.set(p.offsetParam, '0');
    }
    if (p?.type === 'page') {
      first.searchParams.set(p.pageParam, String(p.firstPage ?? 1));
      if (p.sizeParam && p.pageSize) first.searchParams.set(p.sizeParam, String(p.pageSize));
    }
  }

  if (source.concurrency > 1 && (p?.type === 'offset' || p?.type === 'page')) {
    yield* numberedPages(source, http, first, p, before);
    return;
  }

  const seen = new Set<string>();
  let url: URL | undefined = first;
  let count = before;
  while (url) {
    if (count >= source.maxPages) {
      throw new PermanentError(`${redactUrl(source.url)}: more than maxPages (${source.maxPages}) pages; raise maxPages if the API really has more`);
    }
    count++;
    seen.add(url.href);
    const { body, headers } = await http.get(url);
    const records = recordsOf(source, body, url);

    let next: URL | undefined;
    switch (p?.type) {
      case undefined:
        break;
      case 'offset':
        if (records.length >= p.pageSize) {
          next = new URL(url);
          next.searchParams.set(p.offsetParam, String(Number(url.searchParams.get(p.offsetParam) ?? 0) + p.pageSize));
        }
        break;
      case 'page':
        if (records.length > 0 && (p.pageSize === undefined || records.length >= p.pageSize)) {
          next = new URL(url);
          next.searchParams.set(p.pageParam, String(Number(url.searchParams.get(p.pageParam) ?? p.firstPage ?? 1) + 1));
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
    yield { records, next };
    url = next;
  }
}

/** The array of records in a page's body (at `source.records`), or a clear error. */
function recordsOf(source: RestSourceDefinition, body: unknown, url: URL): unknown[] {
  const records = source.records ? pathOf(body, source.records) : body;
  if (!Array.isArray(records)) {
    throw new PermanentError(`GET ${redactUrl(url.href)}: ${source.records ? `"${source.records}" in the answer` : 'the answer'} is not an array of records (set source.records to the path of the array)`);
  }
  checkRecords(records, url);
  return records;
}

/** Every record of a page is a JSON object; a page with another value among them is refused whole. */
export function checkRecords(records: unknown[], url: URL): void {
  const bad = records.findIndex((r) => r === null || typeof r !== 'object' || Array.isArray(r));
  if (bad >= 0) {
    const value = records[bad];
    const shown = JSON.stringify(value)?.slice(0, 60) ?? String(value);
    throw new PermanentError(`GET ${redactUrl(url.href)}: record ${bad + 1} of ${records.length} on this page is not a JSON object (${shown}); the page was not stored`);
  }
}

type NumberedPagination = Extract<NonNullable<RestSourceDefinition['pagination']>, { type: 'offset' | 'page' }>;

/**
 * Offset and page pagination with `source.concurrency` requests in flight: page n+1…n+k are asked
 * for while page n is written, and yielded strictly in order. The first short (or empty) page ends
 * the run; requests already sent past it are dropped. Memory holds at most `concurrency` pages.
 * `first` may be any page (a checkpoint's): the pages after it are counted from there.
 */
async function* numberedPages(source: RestSourceDefinition, http: HttpClient, first: URL, p: NumberedPagination, before = 0): AsyncGenerator<Page> {
  const maxPages = source.maxPages - before;
  const firstPage = p.type === 'page' ? (p.firstPage ?? 1) : 0;
  const start = p.type === 'offset' ? Math.floor(Number(first.searchParams.get(p.offsetParam) ?? 0) / p.pageSize) : Number(first.searchParams.get(p.pageParam) ?? firstPage) - firstPage;
  const urlOf = (n: number): URL => {
    const url = new URL(first);
    if (p.type === 'offset') url.searchParams.set(p.offsetParam, String((start + n) * p.pageSize));
    else url.searchParams.set(p.pageParam, String(firstPage + start + n));
    return url;
  };
  const fetchPage = async (n: number): Promise<unknown[]> => {
    const url = urlOf(n);
    const { body } = await http.get(url);
    return recordsOf(source, body, url);
  };
  const pageSize = p.pageSize;
  const inFlight: Promise<unknown[]>[] = [];
  let next = 0;
  const launch = () => {
    if (next >= maxPages) return;
    const promise = fetchPage(next++);
    promise.catch(() => undefined); // awaited in order below; not unhandled meanwhile
    inFlight.push(promise);
  };
  for (let i = 0; i < source.concurrency; i++) launch();
  for (let n = 0; ; n++) {
    if (n >= maxPages) {
      throw new PermanentError(`${redactUrl(source.url)}: more than maxPages (${source.maxPages}) pages; raise maxPages if the API really has more`);
    }
    const records = await inFlight.shift()!;
    const last = records.length === 0 || (pageSize !== undefined && records.length < pageSize);
    if (!last) launch();
    if (records.length) yield { records, next: last ? undefined : urlOf(n + 1) };
    if (last) return;
  }
}

/** The later of a watermark and a record's value (ISO 8601 text or epoch milliseconds); unreadable values are ignored. */
function later(watermark: string | undefined, value: unknown): string | undefined {
  const ms = timeOf(value);
  if (ms === undefined) return watermark;
  if (watermark !== undefined && Date.parse(watermark) >= ms) return watermark;
  return new Date(ms).toISOString();
}

/** The larger of a number watermark and a record's value (an integer, as text or number; exact beyond 2^53); others are ignored. */
function largest(watermark: string | undefined, value: unknown): string | undefined {
  const text = typeof value === 'number' && Number.isInteger(value) ? String(value) : typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? value.trim() : undefined;
  if (text === undefined) return watermark;
  return watermark === undefined || BigInt(text) > BigInt(watermark) ? text : watermark;
}

/** ISO 8601 text or epoch milliseconds as milliseconds; undefined when unreadable. */
function timeOf(value: unknown): number | undefined {
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}
