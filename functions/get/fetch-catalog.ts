/**
 * Get: the files (resources) of open-data catalogue datasets — udata (the data.gouv.fr API) or
 * CKAN — each downloaded into `raw/<dataset>/<run>/<resource>/<file>`, so each is staged like any fetched
 * file, with a manifest of every resource beside them.
 *
 * A run takes the lease on the source's state (functions/get/state.ts; a second run at the same
 * time says `busy` and does nothing), lists the catalogue datasets that match the source's filters
 * — only those modified since the last run, unless `incremental: false` — keeps the resources of
 * the wanted formats, and downloads them a few at once with a conditional GET (the ETag and
 * Last-Modified remembered per resource id). A download streams to S3 through a SHA-256; when the
 * server ignored the conditional GET and sent the same bytes as last time, the upload is abandoned
 * before it completes, so nothing is written and nothing is staged.
 *
 * A dead link (an error status, no connection, an HTML page or an empty file instead of the
 * advertised file) is reported with the resource id and URL, does not stop the others, and is
 * retried by the next run (it is kept in the state's `retry`, never in `seen`). A run stops
 * starting downloads shortly before its time is up; what it finished is remembered, the rest is
 * `not reached` and the next run takes it up (the watermark only moves after a run that reached
 * every resource).
 */
import { createHash } from 'node:crypto';
import { Readable, pipeline } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { CopyObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import type { DatasetDefinition, SourceDefinition } from '../../contract/definition.ts';
import { MANIFEST_SUFFIX, ZONES } from '../../contract/names.ts';
import { declarationMetadata, PORTAL_METADATA_KEY, portalMetadata, type ManifestObject, type ObjectDeclaration, type PortalMetadata } from '../../contract/objects.ts';
import { PermanentError, messageOf, redactCredentials } from '../common/errors.ts';
import { redactUrl } from '../common/urls.ts';
import { meteredUpload } from '../common/store.ts';
import { describeHttpStats, HttpClient, pathOf, RequestFailedError, type HttpStats, type RetryOptions } from './http-client.ts';
import type { RestAuth } from './rest-auth.ts';
import { isHtmlType, looksLikeHtml, wantsHtml } from './html.ts';
import { manifestObject, writeManifest } from './sink.ts';
import { beginRun, busyMessage, stateKey, withLease, type StateLease } from './state.ts';
import type { FetcherDeps } from './deps.ts';

export type CatalogSourceDefinition = Extract<SourceDefinition, { type: 'catalog' }>;

export interface CatalogFetchDeps extends FetcherDeps, RetryOptions {}

/** A file of a catalogue dataset, as the catalogue describes it. */
export interface CatalogResource {
  id: string;
  title: string;
  url: string;
  /** Lower case (`csv`); empty when the catalogue does not say. */
  format: string;
  /** The catalogue dataset it belongs to (its slug or name, else its id). */
  catalogDataset: string;
  /** When the catalogue says the resource last changed (ISO 8601). */
  modified?: string;
  /** The checksum the catalogue advertises (`sha1:…`, or CKAN's `hash` as given). */
  checksum?: string;
  /** The size the catalogue advertises, in bytes. */
  size?: number;
  /** What the portal says of the resource and its dataset (title, organisation, licence, tags…): stored with the object and in the catalog. */
  portal?: PortalMetadata;
}

export type ResourceStatus = 'fetched' | 'unchanged' | 'failed' | 'not reached';

export interface ResourceReport {
  id: string;
  title: string;
  catalogDataset: string;
  format: string;
  /** The resource URL with query values redacted. */
  source: string;
  status: ResourceStatus;
  /** Why it failed, was not reached, or counts as unchanged; of a fetched resource, why its same bytes were stored again. */
  reason?: string;
  /** Of a fetched resource: where it was stored, its size and SHA-256. */
  key?: string;
  bytes?: number;
  sha256?: string;
  catalogModified?: string;
  catalogChecksum?: string;
  /** What the portal says of the resource and its dataset. */
  portal?: PortalMetadata;
}

export interface CatalogManifest {
  dataset: string;
  api: 'udata' | 'ckan';
  /** The catalogue API with query values redacted. */
  source: string;
  startedAt: string;
  finishedAt: string;
  /** The listing asked only for catalogue datasets modified since then (incremental runs after the first). */
  modifiedSince?: string;
  /** The newest catalogue modification time seen so far: the next run lists from there. */
  watermarkAfter?: string;
  /** Catalogue datasets listed, and pages read to list them. */
  datasets: number;
  pages: number;
  fetched: number;
  unchanged: number;
  failed: number;
  notReached: number;
  /** Every listed resource was tried and none failed. */
  complete: boolean;
  status: 'complete' | 'partial';
  /** Requests of the run (listing and downloads), their retries (each also logged) and why. */
  http: HttpStats;
  resources: ResourceReport[];
}

export type CatalogOutcome =
  /** `fetched`: new files written; `unchanged`: nothing written; `partial`: some failed or were not reached. */
  | {
      status: 'fetched' | 'unchanged' | 'partial';
      manifest: CatalogManifest;
      manifestKey?: string;
      message: string;
      /** Runs in a row (this one included) that ended with resources not reached. */
      shortRuns: number;
    }
  /** Another run of this source holds its state: this one did nothing. */
  | { status: 'busy'; source: string; message: string };

/** What a resource looked like when it was last stored. */
interface SeenResource {
  url: string;
  etag?: string;
  lastModified?: string;
  sha256: string;
  bytes: number;
  key: string;
  modified?: string;
  fetchedAt: string;
  /** SHA-256 of the portal metadata stored with the object (absent in states saved before it was kept). */
  portal?: string;
}

/** A resource that failed: tried again by every run until it lands. */
interface RetryResource {
  resource: CatalogResource;
  reason: string;
  attempts: number;
  firstFailedAt: string;
}

/** `state/<dataset>/catalog.json`. */
interface CatalogState {
  watermark?: string;
  seen: Record<string, SeenResource>;
  retry: Record<string, RetryResource>;
  /** Resources the last run did not reach for lack of time: fetched first by the next. */
  pending?: string[];
  /** Runs in a row that ended with resources not reached (reset by a run that reaches them all). */
  shortRuns?: number;
}

/** A run left with resources not reached goes on at once at most this many times in a row. */
export const MAX_SHORT_RUNS = 10;

export const catalogStateKey = (dataset: string) => stateKey(dataset, 'catalog');

/** Incremental listings reach this far back before the watermark: a catalogue's search index may lag behind its records. */
const OVERLAP_MS = 10 * 60_000;
/** A listing that needs more pages is a paging loop. */
const MAX_PAGES = 10_000;

export async function fetchCatalog(deps: CatalogFetchDeps, dataset: DatasetDefinition): Promise<CatalogOutcome> {
  if (dataset.source.type !== 'catalog') throw new PermanentError(`dataset ${dataset.name} is not a catalogue source (its source is ${dataset.source.type})`);
  const source = dataset.source;
  const api = apiBase(source);
  const { clock, taken } = await beginRun<CatalogState>(deps, catalogStateKey(dataset.name));
  if (taken.status === 'busy') {
    return { status: 'busy', source: redactUrl(api.href), message: busyMessage(dataset.name, taken, 'this catalogue source') };
  }
  const { now, started, run, leaseMs, timeoutMs } = clock;
  const lease = taken.lease;
  return withLease(lease, () => fetchWithLease({ deps, dataset: dataset.name, source, api, run, started, now, lease, leaseMs, timeoutMs }));
}

interface Run {
  deps: CatalogFetchDeps;
  dataset: string;
  source: CatalogSourceDefinition;
  api: URL;
  run: string;
  started: Date;
  now: () => Date;
  lease: StateLease<CatalogState>;
  leaseMs: number;
  timeoutMs: number;
}

/** What became of one resource, and what to remember of it. */
type Result =
  | { status: 'fetched'; seen: SeenResource; reason?: string }
  | { status: 'unchanged'; seen: SeenResource; reason: string }
  | { status: 'failed'; reason: string }
  | { status: 'not reached'; reason: string };

async function fetchWithLease(r: Run): Promise<CatalogOutcome> {
  const { deps, source, lease, now } = r;
  const state: CatalogState = {
    watermark: lease.state?.watermark,
    seen: { ...lease.state?.seen },
    retry: { ...lease.state?.retry },
    shortRuns: lease.state?.shortRuns ?? 0,
  };
  const pending = new Set(lease.state?.pending ?? []);
  // the run's time: no new download after `soft`, everything in flight cut off at `hard`
  const hard = AbortSignal.timeout(r.timeoutMs);
  const soft = Date.now() + r.timeoutMs - Math.min(60_000, r.timeoutMs / 10);
  const headers = source.headersSecret ? headersOf(await deps.readSecret(source.headersSecret)) : {};
  const auth: RestAuth = { apply: async (_url, h) => void Object.assign(h, headers), refresh: () => false };
  const http = new HttpClient(deps, auth, hard, { verifyTls: r.source.verifyTls, source: `dataset ${r.dataset}` });

  const since = source.incremental && state.watermark ? new Date(Date.parse(state.watermark) - OVERLAP_MS).toISOString() : undefined;
  const listing = await listCatalog(source, r.api, http, since);
  const listed = new Set(listing.resources.map((x) => x.id));
  const listedOrRetried = [
    ...listing.resources,
    ...Object.values(state.retry)
      .filter((x) => !listed.has(x.resource.id))
      .map((x) => x.resource),
  ];
  // what the last run left for lack of time comes first: every run then gets further
  const todo = [...listedOrRetried.filter((x) => pending.has(x.id)), ...listedOrRetried.filter((x) => !pending.has(x.id))];
  if (todo.length > source.maxResources) {
    throw new PermanentError(`${redactUrl(r.api.href)}: ${todo.length} resources match, more than maxResources (${source.maxResources}); narrow the filters or raise maxResources`);
  }

  const prefix = `${ZONES.raw}${r.dataset}/${r.run}/`;
  const names = new Set<string>();
  const stored: ManifestObject[] = [];
  let parts = 0;
  const declare = (resource: string): ObjectDeclaration => ({
    contract: 1,
    replaces: 'resource',
    holds: 'rows',
    run: r.run,
    runStartedAt: r.started.toISOString(),
    part: ++parts,
    resource: resourceName(resource),
  });
  const results = new Map<string, Result>();
  let saving: Promise<void> = Promise.resolve();
  /** Save the state as it is now, keeping the lease (saves run one after another). */
  const checkpoint = () => (saving = saving.then(() => lease.save(state, r.leaseMs)));
  let fatal: { error: unknown } | undefined;
  let next = 0;
  const worker = async () => {
    while (!fatal && next < todo.length && Date.now() < soft && !hard.aborted) {
      const resource = todo[next++]!;
      try {
        const result = await fetchResource({ deps, resource, previous: state.seen[resource.id], prefix, names, headers, api: r.api, http, hard, now, declare, onStored: (o) => stored.push(o) });
        results.set(resource.id, result);
        if (result.status === 'fetched' || result.status === 'unchanged') {
          state.seen[resource.id] = result.seen;
          delete state.retry[resource.id];
          if (result.status === 'fetched') await checkpoint();
        } else if (result.status === 'failed') {
          const before = state.retry[resource.id];
          state.retry[resource.id] = { resource, reason: result.reason, attempts: (before?.attempts ?? 0) + 1, firstFailedAt: before?.firstFailedAt ?? now().toISOString() };
        }
      } catch (error) {
        fatal ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(source.concurrency, todo.length) }, worker));
  await saving.catch((error: unknown) => void (fatal ??= { error }));
  if (fatal) {
    // keep what landed (the lease is given up), then fail the run
    await lease.save(state).catch(() => undefined);
    throw fatal.error;
  }

  const reached = todo.every((x) => results.has(x.id) && results.get(x.id)!.status !== 'not reached');
  state.pending = reached ? undefined : todo.filter((x) => !results.has(x.id) || results.get(x.id)!.status === 'not reached').map((x) => x.id);
  state.shortRuns = reached ? 0 : (state.shortRuns ?? 0) + 1;
  if (reached) {
    state.watermark = later(state.watermark, listing.newest);
    // a full listing shows every resource there is: forget those that left the catalogue
    if (!since && !source.dataset) state.seen = Object.fromEntries(Object.entries(state.seen).filter(([id]) => listed.has(id)));
  }
  const reports = todo.map((resource) => reportOf(resource, results.get(resource.id)));
  const count = (s: ResourceStatus) => reports.filter((x) => x.status === s).length;
  const manifest: CatalogManifest = {
    dataset: r.dataset,
    api: source.api,
    source: redactUrl(r.api.href),
    startedAt: r.started.toISOString(),
    finishedAt: now().toISOString(),
    modifiedSince: since,
    watermarkAfter: state.watermark,
    datasets: listing.datasets,
    pages: listing.pages,
    fetched: count('fetched'),
    unchanged: count('unchanged'),
    failed: count('failed'),
    notReached: count('not reached'),
    complete: reached && count('failed') === 0,
    status: reached && count('failed') === 0 ? 'complete' : 'partial',
    http: http.counts(),
    resources: reports,
  };
  const worthWriting = manifest.fetched + manifest.failed + manifest.notReached > 0;
  const manifestKey = worthWriting ? `${prefix}${MANIFEST_SUFFIX}` : undefined;
  if (manifestKey) {
    const { dataset, source: shown, startedAt, finishedAt, complete, ...details } = manifest;
    await writeManifest(deps, { dataset, connector: `catalog:${source.api}`, source: shown, run: r.run, startedAt, finishedAt, complete, objects: stored, details });
  }
  await lease.save(state);
  const status = manifest.status === 'partial' ? 'partial' : manifest.fetched ? 'fetched' : 'unchanged';
  return { status, manifest, manifestKey, message: summaryOf(manifest, deps.bucket, prefix), shortRuns: state.shortRuns ?? 0 };
}

/** One line for people: what landed, what did not, and why. */
function summaryOf(m: CatalogManifest, bucket: string, prefix: string): string {
  if (m.fetched + m.failed + m.notReached === 0) {
    const retried = describeHttpStats(m.http);
    return `no resource changed at ${m.source} (${m.unchanged} checked, ${m.datasets} catalogue datasets listed${retried ? `; ${retried}` : ''}); nothing written`;
  }
  const parts = [`fetched ${m.fetched} resource${m.fetched === 1 ? '' : 's'} → s3://${bucket}/${prefix}`, `${m.unchanged} unchanged`];
  const failed = m.resources.filter((x) => x.status === 'failed');
  if (failed.length) parts.push(`${failed.length} failed (${failed.map((x) => `${x.id} ${x.source}: ${x.reason}`).join('; ')}), retried next run`);
  if (m.notReached) parts.push(`${m.notReached} not reached before the time limit, left for the next run`);
  const retried = describeHttpStats(m.http);
  if (retried) parts.push(retried);
  return parts.join(', ');
}

function reportOf(resource: CatalogResource, result: Result | undefined): ResourceReport {
  const base = {
    id: resource.id,
    title: resource.title,
    catalogDataset: resource.catalogDataset,
    format: resource.format,
    source: shownUrl(resource.url),
    ...(resource.modified ? { catalogModified: resource.modified } : {}),
    ...(resource.checksum ? { catalogChecksum: resource.checksum } : {}),
    ...(resource.portal ? { portal: resource.portal } : {}),
  };
  if (!result) return { ...base, status: 'not reached', reason: 'the run stopped before its time limit; the next run fetches it' };
  switch (result.status) {
    case 'fetched':
      return { ...base, status: 'fetched', key: result.seen.key, bytes: result.seen.bytes, sha256: result.seen.sha256, ...(result.reason ? { reason: result.reason } : {}) };
    case 'unchanged':
      return { ...base, status: 'unchanged', reason: result.reason, sha256: result.seen.sha256 };
    default:
      return { ...base, status: result.status, reason: result.reason };
  }
}

// ─── downloading one resource ───────────────────────────────────────────────────────────────

interface Download {
  deps: CatalogFetchDeps;
  resource: CatalogResource;
  previous: SeenResource | undefined;
  /** `raw/<dataset>/<run>/` */
  prefix: string;
  /** File names taken in this run. */
  names: Set<string>;
  /** The source's headers: sent only to the catalogue's own host. */
  headers: Record<string, string>;
  api: URL;
  /** The run's client: downloads' retries are counted and logged with its own. */
  http: HttpClient;
  hard: AbortSignal;
  now: () => Date;
  /** The declaration of the next object stored (contract/objects.ts): each is its resource's whole content. */
  declare: (resource: string) => ObjectDeclaration;
  /** Called with each object stored, for the run's manifest. */
  onStored: (object: ManifestObject) => void;
}

/** The server sent the bytes stored last time: the upload is abandoned. */
class SameBytesError extends Error {
  override name = 'SameBytesError';
}

/** The answer is not the advertised file (HTML, empty). */
class NotTheFileError extends Error {
  override name = 'NotTheFileError';
}

/**
 * Download one resource with a conditional GET, streamed to S3. Problems of the source come back
 * as `failed`; an error of S3 itself is thrown (the run cannot go on writing).
 */
/**
 * Fetch one resource. When its bytes are the same as last time but what the portal says of it
 * (title, organisation, licence, tags…) changed, the stored object is copied into this run with the
 * new metadata, so that the catalog learns it (a new object version; the stage and clean steps read
 * the same rows again).
 */
async function fetchResource(d: Download): Promise<Result> {
  const result = await download(d);
  if (result.status !== 'unchanged' || !d.resource.portal || !d.previous) return result;
  const stored = portalMetadata(d.resource.portal);
  const fingerprint = portalFingerprint(stored);
  // a state saved before fingerprints were kept: the previous object's own metadata says
  const before = d.previous.portal ?? portalFingerprint(await storedPortal(d, d.previous.key));
  if (before === fingerprint) return { ...result, seen: { ...result.seen, portal: fingerprint } };
  return republish(d, result.seen, stored, fingerprint);
}

const portalFingerprint = (stored: Record<string, string> | undefined) => (stored ? createHash('sha256').update(JSON.stringify(stored)).digest('hex') : undefined);

async function storedPortal(d: Download, key: string): Promise<Record<string, string> | undefined> {
  try {
    const head = await d.deps.s3.send(new HeadObjectCommand({ Bucket: d.deps.bucket, Key: key }));
    const value = head.Metadata?.[PORTAL_METADATA_KEY];
    return value === undefined ? undefined : { [PORTAL_METADATA_KEY]: value };
  } catch (error) {
    // the object is gone (a lifecycle rule): nothing to compare with, so the metadata counts as new
    if ((error as { name?: string }).name === 'NotFound' || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw error;
  }
}

/** The largest object a single CopyObject copies (S3's limit). */
const COPY_LIMIT_BYTES = 5 * 1024 ** 3;

async function republish(d: Download, seen: SeenResource, stored: Record<string, string>, fingerprint: string | undefined): Promise<Result> {
  const { resource, deps } = d;
  if (seen.bytes > COPY_LIMIT_BYTES) {
    return {
      status: 'unchanged',
      seen,
      reason: `same bytes; the portal's description of it changed, but at ${seen.bytes} bytes it is too large to copy with the new metadata (the catalog keeps the old one until the file changes)`,
    };
  }
  const declaration = d.declare(resource.id);
  const key = `${d.prefix}${resourceFolder(resource.id)}/${uniqueName(d.names, seen.key.slice(seen.key.lastIndexOf('/') + 1), resource.id)}`;
  try {
    await deps.s3.send(
      new CopyObjectCommand({
        Bucket: deps.bucket,
        Key: key,
        CopySource: `${deps.bucket}/${seen.key.split('/').map(encodeURIComponent).join('/')}`,
        MetadataDirective: 'REPLACE',
        Metadata: { ...declarationMetadata(declaration), ...stored },
      }),
    );
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey')
      return { status: 'unchanged', seen, reason: `same bytes; the portal's description of it changed, but the object stored last time (${seen.key}) is gone, so it could not be stored again with it` };
    throw error;
  }
  d.onStored(manifestObject(key, { bytes: seen.bytes, sha256: seen.sha256 }, declaration));
  return {
    status: 'fetched',
    seen: { ...seen, key, portal: fingerprint, fetchedAt: d.now().toISOString() },
    reason: 'same bytes, described anew by the portal (title, organisation, licence or tags changed): stored again with the new description',
  };
}

async function download(d: Download): Promise<Result> {
  const { resource, previous } = d;
  let url: URL;
  try {
    url = new URL(resource.url);
  } catch {
    return { status: 'failed', reason: 'not a URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { status: 'failed', reason: `not an http(s) URL (${url.protocol})` };
  const conditional = previous && previous.url === resource.url ? previous : undefined;
  const headers: Record<string, string> = { 'user-agent': 'civic-etl', accept: '*/*' };
  if (url.origin === d.api.origin) Object.assign(headers, d.headers);
  if (conditional?.etag) headers['if-none-match'] = conditional.etag;
  if (conditional?.lastModified) headers['if-modified-since'] = conditional.lastModified;

  if (d.hard.aborted) return { status: 'not reached', reason: 'interrupted by the run’s time limit; the next run fetches it' };
  // retried by the run's client, counted and logged with its own requests: the one retry policy
  let res: Response;
  let after: string;
  try {
    ({ res, after } = await d.http.download(url, headers));
  } catch (error) {
    if (d.hard.aborted) return { status: 'not reached', reason: 'interrupted by the run’s time limit; the next run fetches it' };
    if (error instanceof PermanentError) return { status: 'failed', reason: error.message };
    return { status: 'failed', reason: `no answer: ${causeOf(error instanceof RequestFailedError ? error.cause : error)}` };
  }
  if (res.status === 304 && conditional) {
    await res.body?.cancel();
    const seen = { ...conditional, etag: res.headers.get('etag') ?? conditional.etag, modified: resource.modified };
    return { status: 'unchanged', seen, reason: 'not modified (304)' };
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    return { status: 'failed', reason: `answered ${res.status} ${res.statusText}`.trim() + after };
  }
  const contentType = res.headers.get('content-type') ?? undefined;
  if (isHtmlType(contentType) && !wantsHtml(resource.format)) {
    await res.body.cancel();
    return { status: 'failed', reason: `answered an HTML page (${contentType}) instead of ${fileKind(resource.format)}` };
  }
  return store(d, res, contentType);
}

async function store(d: Download, res: Response, contentType: string | undefined): Promise<Result> {
  const { resource, previous, deps } = d;
  // the object replaces its resource's rows only (contract/objects.ts); one folder per resource, for people
  const declaration = d.declare(resource.id);
  const key = `${d.prefix}${resourceFolder(resource.id)}/${uniqueName(d.names, fileNameOf(resource, res.headers.get('content-disposition')), resource.id)}`;
  let problem: Error | undefined;
  const upload = meteredUpload(deps, key, {
    contentType,
    metadata: { ...declarationMetadata(declaration), ...(resource.portal ? portalMetadata(resource.portal) : {}) },
    checks: {
      first: (chunk) => (!wantsHtml(resource.format) && looksLikeHtml(chunk) ? new NotTheFileError(`answered an HTML page instead of ${fileKind(resource.format)}`) : undefined),
      // runs before the upload sees the end of the stream: failing here abandons the upload, so the object never exists
      end: ({ bytes, sha256 }) => (bytes === 0 ? new NotTheFileError('answered an empty file') : previous && sha256 === previous.sha256 ? new SameBytesError('same bytes as last time') : undefined),
    },
  });
  const body = Readable.fromWeb(res.body as WebReadableStream);
  body.on('error', (error) => void (problem ??= error));
  pipeline(body, upload.sink, () => undefined);
  let bytes: number;
  let sha256: string;
  try {
    ({ bytes, sha256 } = await upload.done);
  } catch (error) {
    body.destroy();
    problem = upload.sink.refused ?? problem;
    if (problem instanceof SameBytesError && previous) {
      const seen = { ...previous, url: resource.url, etag: res.headers.get('etag') ?? undefined, lastModified: res.headers.get('last-modified') ?? undefined, modified: resource.modified };
      return { status: 'unchanged', seen, reason: 'the server sent the same bytes as last time (SHA-256); nothing written' };
    }
    if (d.hard.aborted) return { status: 'not reached', reason: 'interrupted by the run’s time limit; nothing written, the next run fetches it' };
    if (problem) return { status: 'failed', reason: problem instanceof NotTheFileError ? problem.message : `the download broke off: ${causeOf(problem)}` };
    throw error;
  }
  const seen: SeenResource = {
    url: resource.url,
    etag: res.headers.get('etag') ?? undefined,
    lastModified: res.headers.get('last-modified') ?? undefined,
    sha256,
    bytes,
    key,
    modified: resource.modified,
    fetchedAt: d.now().toISOString(),
    ...(resource.portal ? { portal: portalFingerprint(portalMetadata(resource.portal)) } : {}),
  };
  d.onStored(manifestObject(key, { bytes, sha256 }, declaration));
  return { status: 'fetched', seen };
}

const fileKind = (format: string) => (format ? `a ${format.toUpperCase()} file` : 'the advertised file');

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? (cause?.message === undefined ? messageOf(error) : redactCredentials(cause.message));
}

/**
 * A file name for the stored object: the URL's last path segment, else the Content-Disposition
 * file name, else the resource id — reduced to letters, digits, `.`, `_` and `-`, with the
 * format as extension when it has none (staging reads the content first, the extension second).
 */
export function fileNameOf(resource: Pick<CatalogResource, 'id' | 'url' | 'format'>, disposition?: string | null): string {
  const hasExtension = (n: string) => /\.[A-Za-z0-9]{1,8}$/.test(n);
  let fromUrl = '';
  try {
    fromUrl = safeName(decodeURIComponentSafe(new URL(resource.url).pathname.split('/').filter(Boolean).at(-1) ?? ''));
  } catch {
    // not a URL: named after the id
  }
  const header = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition ?? '')?.[1];
  const fromHeader = header ? safeName(decodeURIComponentSafe(header)) : '';
  let name = [fromUrl, fromHeader].find((n) => n && hasExtension(n)) ?? (fromUrl || fromHeader || safeName(resource.id) || 'resource');
  if (!hasExtension(name) && /^[a-z0-9]{1,8}$/.test(resource.format)) name = `${name}.${resource.format}`;
  return name;
}

function safeName(text: string): string {
  const ascii = text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
  const name = ascii.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._-]+/, '');
  if (name.length <= 120) return name;
  const ext = /\.[A-Za-z0-9]{1,8}$/.exec(name)?.[0] ?? '';
  return name.slice(0, 120 - ext.length) + ext;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** A resource as its objects declare it: its id (a very long one cut, with a hash of the whole, to fit S3's metadata). */
function resourceName(id: string): string {
  return id.length <= 200 ? id : `${id.slice(0, 170)}#${createHash('sha256').update(id).digest('hex').slice(0, 24)}`;
}

/** The folder of a resource's file under the run: its id, made safe for a key (`raw/<dataset>/<run>/<folder>/<file>`). */
export function resourceFolder(id: string): string {
  return safeName(id).slice(0, 80) || 'resource';
}

/** `name`, or `name-<resource id>.ext` when another resource of the run took it. */
function uniqueName(taken: Set<string>, name: string, id: string): string {
  let candidate = name;
  const dot = name.search(/\.[A-Za-z0-9]{1,8}$/);
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  for (let n = 1; taken.has(candidate); n++) candidate = `${stem}-${safeName(id).slice(0, 36)}${n > 1 ? `-${n}` : ''}${ext}`;
  taken.add(candidate);
  return candidate;
}

function shownUrl(url: string): string {
  try {
    return redactUrl(url);
  } catch {
    return '(not a URL)';
  }
}

function headersOf(secret: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(secret).map(([k, v]) => [k.toLowerCase(), String(v)]));
}

// ─── listing the catalogue ──────────────────────────────────────────────────────────────────

/** A catalogue dataset, reduced to what the fetch needs. */
interface CatalogDataset {
  modified?: string;
  resources: CatalogResource[];
}

interface Listing {
  resources: CatalogResource[];
  datasets: number;
  pages: number;
  /** The newest modification time of the datasets listed. */
  newest?: string;
}

/** The API base, ending in `/`: the portal's address gets `/api/1/` (udata) or `/api/3/action/` (CKAN). */
export function apiBase(source: Pick<CatalogSourceDefinition, 'api' | 'url'>): URL {
  const url = new URL(source.url);
  let path = url.pathname.replace(/\/+$/, '');
  if (source.api === 'udata' && !/\/api\/\d+$/.test(path)) path += '/api/1';
  if (source.api === 'ckan' && !/\/api\/3\/action$/.test(path)) path += /\/api\/3$/.test(path) ? '/action' : '/api/3/action';
  url.pathname = `${path}/`;
  return url;
}

/** `relative` under the API base, keeping the base's own query parameters. */
function endpoint(api: URL, relative: string): URL {
  const url = new URL(relative, api);
  for (const [k, v] of api.searchParams) url.searchParams.append(k, v);
  return url;
}

async function listCatalog(source: CatalogSourceDefinition, api: URL, http: HttpClient, since: string | undefined): Promise<Listing> {
  const wanted = source.format?.map(normalFormat);
  const listing: Listing = { resources: [], datasets: 0, pages: 0 };
  const pages = { count: 0 };
  const datasets = source.api === 'udata' ? udataDatasets(source, api, http, pages) : ckanDatasets(source, api, http, since, pages);
  for await (const dataset of datasets) {
    // an incremental listing stops at (udata) or is filtered to (CKAN) the datasets modified since `since`
    if (since && dataset.modified && dataset.modified < since) {
      if (source.api === 'udata' && !source.dataset) break;
      continue;
    }
    listing.datasets++;
    listing.newest = later(listing.newest, dataset.modified);
    for (const resource of dataset.resources) {
      if (wanted && !wanted.includes(resource.format) && !wanted.includes(extensionOf(resource.url))) continue;
      listing.resources.push(resource);
      if (listing.resources.length > source.maxResources) {
        throw new PermanentError(`${redactUrl(api.href)}: more than maxResources (${source.maxResources}) resources match; narrow the filters or raise maxResources`);
      }
    }
  }
  listing.pages = pages.count;
  return listing;
}

/**
 * udata (`/api/1/`): one dataset (`datasets/<id or slug>/`) or the search `datasets/?organization=
 * &tag=&q=`, newest first (`sort=-last_update`), page by page following `next_page`.
 */
async function* udataDatasets(source: CatalogSourceDefinition, api: URL, http: HttpClient, pages: { count: number }): AsyncGenerator<CatalogDataset> {
  if (source.dataset) {
    pages.count++;
    const { body } = await http.get(endpoint(api, `datasets/${encodeURIComponent(source.dataset)}/`));
    yield udataDataset(body);
    return;
  }
  let url: URL | undefined = endpoint(api, 'datasets/');
  url.searchParams.set('sort', '-last_update');
  url.searchParams.set('page', '1');
  url.searchParams.set('page_size', String(source.pageSize));
  if (source.organization) url.searchParams.set('organization', source.organization);
  for (const tag of tagsOf(source)) url.searchParams.append('tag', tag);
  if (source.query) url.searchParams.set('q', source.query);
  const seen = new Set<string>();
  while (url) {
    if (seen.has(url.href) || pages.count >= MAX_PAGES) throw new PermanentError(`GET ${redactUrl(url.href)}: the catalogue keeps giving more pages (a paging loop); stopped after ${pages.count}`);
    seen.add(url.href);
    pages.count++;
    const { body } = await http.get(url);
    const data = pathOf(body, 'data');
    if (!Array.isArray(data)) throw new PermanentError(`GET ${redactUrl(url.href)}: not a udata page of datasets (no "data" array)`);
    for (const raw of data) yield udataDataset(raw);
    const nextPage = pathOf(body, 'next_page');
    url = typeof nextPage === 'string' && nextPage !== '' && data.length > 0 ? new URL(nextPage, url) : undefined;
  }
}

function udataDataset(raw: unknown): CatalogDataset {
  const d = (raw ?? {}) as Record<string, unknown>;
  const name = text(d.slug) ?? text(d.id) ?? '';
  const org = (d.organization ?? d.owner ?? {}) as Record<string, unknown>;
  const dataset = {
    datasetSlug: name,
    datasetId: text(d.id),
    datasetTitle: text(d.title),
    organization: text(org.name) ?? text(org.slug) ?? text([text(org.first_name), text(org.last_name)].filter(Boolean).join(' ')),
    organizationId: text(org.id),
    description: text(d.description),
    license: text(d.license),
    tags: (Array.isArray(d.tags) ? d.tags : []).filter((t): t is string => typeof t === 'string'),
  };
  const resources = (Array.isArray(d.resources) ? d.resources : []).flatMap((x: Record<string, unknown>): CatalogResource[] => {
    const id = text(x?.id);
    const url = text(x?.url);
    if (!id || !url) return [];
    const checksum = x.checksum as { type?: string; value?: string } | undefined;
    return [
      {
        id,
        title: text(x.title) ?? id,
        url,
        format: normalFormat(x.format),
        catalogDataset: name,
        modified: isoOf(x.last_modified ?? pathOf(x, 'internal.last_modified_internal')),
        checksum: checksum?.value ? `${checksum.type ?? 'sha1'}:${checksum.value}` : undefined,
        size: typeof x.filesize === 'number' ? x.filesize : undefined,
        portal: { ...dataset, resourceId: id, resourceTitle: text(x.title), format: normalFormat(x.format) || undefined, url: shownUrl(url) },
      },
    ];
  });
  return { modified: isoOf(d.last_update ?? d.last_modified), resources };
}

/**
 * CKAN (`/api/3/action/`): one dataset (`package_show?id=`) or `package_search` with
 * `fq=+organization:… +tags:… +metadata_modified:[<since> TO *]`, newest first, `rows`/`start` paging.
 */
async function* ckanDatasets(source: CatalogSourceDefinition, api: URL, http: HttpClient, since: string | undefined, pages: { count: number }): AsyncGenerator<CatalogDataset> {
  if (source.dataset) {
    const url = endpoint(api, 'package_show');
    url.searchParams.set('id', source.dataset);
    pages.count++;
    yield ckanDataset(ckanResult(await http.get(url), url));
    return;
  }
  const fq = [source.organization && `organization:${solrTerm(source.organization)}`, ...tagsOf(source).map((t) => `tags:${solrTerm(t)}`), since && `metadata_modified:[${since} TO *]`].filter(Boolean);
  for (let start = 0; ;) {
    if (pages.count >= MAX_PAGES) throw new PermanentError(`${redactUrl(api.href)}: more than ${MAX_PAGES} pages of datasets; narrow the filters`);
    const url = endpoint(api, 'package_search');
    url.searchParams.set('q', source.query ?? '*:*');
    if (fq.length) url.searchParams.set('fq', fq.map((c) => `+${c}`).join(' '));
    url.searchParams.set('sort', 'metadata_modified desc');
    url.searchParams.set('rows', String(source.pageSize));
    url.searchParams.set('start', String(start));
    pages.count++;
    const result = ckanResult(await http.get(url), url) as { count?: unknown; results?: unknown };
    if (!Array.isArray(result.results)) throw new PermanentError(`GET ${redactUrl(url.href)}: not a CKAN package_search answer (no result.results)`);
    for (const p of result.results) yield ckanDataset(p);
    start += result.results.length;
    if (result.results.length === 0 || typeof result.count !== 'number' || start >= result.count) return;
  }
}

function ckanResult({ body }: { body: unknown }, url: URL): Record<string, unknown> {
  const b = (body ?? {}) as { success?: unknown; result?: unknown; error?: unknown };
  if (b.success !== true || !b.result || typeof b.result !== 'object') {
    throw new PermanentError(`GET ${redactUrl(url.href)}: CKAN did not succeed${b.error ? ` (${JSON.stringify(b.error).slice(0, 200)})` : ''}`);
  }
  return b.result as Record<string, unknown>;
}

function ckanDataset(raw: unknown): CatalogDataset {
  const p = (raw ?? {}) as Record<string, unknown>;
  const name = text(p.name) ?? text(p.id) ?? '';
  const org = (p.organization ?? {}) as Record<string, unknown>;
  const dataset = {
    datasetSlug: name,
    datasetId: text(p.id),
    datasetTitle: text(p.title),
    organization: text(org.title) ?? text(org.name),
    organizationId: text(org.name) ?? text(org.id),
    description: text(p.notes),
    license: text(p.license_title) ?? text(p.license_id),
    tags: (Array.isArray(p.tags) ? p.tags : []).flatMap((t: unknown) => (typeof t === 'string' ? [t] : (text((t as { name?: unknown })?.name) ?? []))),
  };
  const resources = (Array.isArray(p.resources) ? p.resources : []).flatMap((x: Record<string, unknown>): CatalogResource[] => {
    const id = text(x?.id);
    const url = text(x?.url);
    if (!id || !url) return [];
    return [
      {
        id,
        title: text(x.name) ?? text(x.description) ?? id,
        url,
        format: normalFormat(x.format),
        catalogDataset: name,
        modified: isoOf(x.last_modified ?? x.metadata_modified ?? x.created),
        checksum: text(x.hash),
        size: typeof x.size === 'number' ? x.size : undefined,
        portal: { ...dataset, resourceId: id, resourceTitle: text(x.name) ?? text(x.description), format: normalFormat(x.format) || undefined, url: shownUrl(url) },
      },
    ];
  });
  return { modified: isoOf(p.metadata_modified), resources };
}

const tagsOf = (source: CatalogSourceDefinition): string[] => (source.tag === undefined ? [] : Array.isArray(source.tag) ? source.tag : [source.tag]);

/** A quoted Solr term. */
const solrTerm = (value: string) => `"${value.replace(/(["\\])/g, '\\$1')}"`;

/** `CSV`, `.csv` → `csv`. */
function normalFormat(value: unknown): string {
  return typeof value === 'string' ? value.trim().toLowerCase().replace(/^\./, '') : '';
}

function extensionOf(url: string): string {
  try {
    return /\.([A-Za-z0-9]{1,8})$/.exec(new URL(url).pathname)?.[1]?.toLowerCase() ?? '';
  } catch {
    return '';
  }
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** ISO 8601 in UTC; CKAN's times carry no zone and are UTC. */
function isoOf(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const zoned = /(Z|[+-]\d\d:?\d\d)$/i.test(value) || !value.includes('T') ? value : `${value}Z`;
  const ms = Date.parse(zoned);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

function later(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}
