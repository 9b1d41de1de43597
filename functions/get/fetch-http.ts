import { posix } from 'node:path';
import { Readable, pipeline } from 'node:stream';
import type { DatasetDefinition, SourceDefinition } from '../../contract/definition.ts';

type HttpSourceDefinition = Extract<SourceDefinition, { type: 'http' }>;
import { ZONES } from '../../contract/names.ts';
import { declarationMetadata, type ObjectDeclaration } from '../../contract/objects.ts';
import { PermanentError } from '../common/errors.ts';
import { isHtmlType, looksLikeHtml, wantsHtml } from './html.ts';
import { meteredUpload, type Stored } from '../common/store.ts';
import { redactUrl } from '../common/urls.ts';
import { describeFailure, HttpClient, type HttpStats, type RetryOptions } from './http-client.ts';
import { noAuth } from './rest-auth.ts';
import { beginRun, busyMessage, stateKey, withLease, type RunClock, type StateLease } from './state.ts';
import { manifestObject, writeManifest } from './sink.ts';
import type { FetcherDeps } from './deps.ts';

export interface FetchDeps extends FetcherDeps, RetryOptions {}

export interface FetchManifest {
  dataset: string;
  /** Where the file came from, with query values redacted (they may carry tokens). */
  source: string;
  key: string;
  bytes: number;
  sha256: string;
  contentType?: string;
  etag?: string;
  lastModified?: string;
  startedAt: string;
  finishedAt: string;
  /** Requests and their retries (429, 5xx, network errors), when the download needed any retry. */
  http?: HttpStats;
}

export type FetchOutcome =
  | { status: 'fetched'; manifest: FetchManifest }
  | { status: 'unchanged'; source: string }
  /** Another run of this source holds its state: this one did nothing. */
  | { status: 'busy'; source: string; message: string };

/** Validators of the last download, kept in `state/<dataset>/http.json` so a wiped runtime remembers them. */
interface HttpState {
  etag?: string;
  lastModified?: string;
  key?: string;
}

export const httpStateKey = (dataset: string) => stateKey(dataset, 'http');

/**
 * Get: download a dataset's file URL into `raw/<dataset>/<run>/<file>`, streaming (multipart for
 * large files), with a manifest beside it (`…/_manifest.json`: bytes, SHA-256, source, times).
 * A conditional GET (ETag / Last-Modified of the previous download) makes an unchanged source
 * write nothing. The upload's ObjectCreated event then stages the file like any other.
 */
export async function fetchHttp(deps: FetchDeps, dataset: DatasetDefinition): Promise<FetchOutcome> {
  if (dataset.source.type !== 'http') throw new PermanentError(`dataset ${dataset.name} is not fetched (its source is ${dataset.source.type})`);
  const source = dataset.source;
  const shownUrl = redactUrl(source.url);
  const { clock, taken } = await beginRun<HttpState>(deps, httpStateKey(dataset.name));
  if (taken.status === 'busy') return { status: 'busy', source: shownUrl, message: busyMessage(dataset.name, taken, 'this source') };
  return withLease(taken.lease, () => download(deps, dataset, source, taken.lease, { ...clock, shownUrl }));
}

async function download(
  deps: FetchDeps,
  dataset: DatasetDefinition,
  source: HttpSourceDefinition,
  lease: StateLease<HttpState>,
  { started, run, shownUrl, timeoutMs, now }: RunClock & { shownUrl: string },
): Promise<FetchOutcome> {
  const previous = lease.state;

  const headers: Record<string, string> = { 'user-agent': 'civic-etl' };
  if (source.headersSecret) {
    for (const [k, v] of Object.entries(await deps.readSecret(source.headersSecret))) headers[k.toLowerCase()] = String(v);
  }
  if (previous?.etag) headers['if-none-match'] = previous.etag;
  if (previous?.lastModified) headers['if-modified-since'] = previous.lastModified;

  // the one retry policy (http-client.ts): a 5xx, a 429 or a network error is asked again, within its bounds
  const http = new HttpClient(deps, noAuth, AbortSignal.timeout(timeoutMs), { verifyTls: source.verifyTls, source: `dataset ${dataset.name}` });
  // its errors name the (redacted) URL: ours (too many redirects, a URL carrying credentials), or the last attempt's
  const { res: response, after } = await http.download(new URL(source.url), headers);
  if (response.status === 304) {
    await response.body?.cancel();
    return { status: 'unchanged', source: shownUrl };
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new Error(`GET ${shownUrl} answered ${response.status} ${response.statusText}${after}`);
  }

  const fileName = source.fileName ?? (posix.basename(new URL(source.url).pathname) || `${dataset.name}.csv`);
  const key = `${ZONES.raw}${dataset.name}/${run}/${fileName}`;
  // an error page served as 200 is not the dataset: refused, nothing stored, the last download kept
  const expected = dataset.read.format ?? /\.([A-Za-z0-9]+)$/.exec(fileName)?.[1]?.toLowerCase() ?? '';
  const contentType = response.headers.get('content-type') ?? undefined;
  const htmlPage = (how: string) => new PermanentError(`GET ${shownUrl} answered an HTML page (${how}) instead of the ${expected ? `${expected.toUpperCase()} ` : ''}file expected: nothing stored`);
  if (isHtmlType(contentType) && !wantsHtml(expected)) {
    await response.body.cancel();
    throw htmlPage(contentType!);
  }
  // a downloaded file is the whole dataset (contract/objects.ts)
  const declaration: ObjectDeclaration = { contract: 1, replaces: 'dataset', holds: 'rows', run, runStartedAt: started.toISOString(), part: 1 };
  const upload = meteredUpload(deps, key, {
    contentType,
    metadata: declarationMetadata(declaration),
    checks: { first: (chunk) => (!wantsHtml(expected) && looksLikeHtml(chunk) ? htmlPage('its first bytes') : undefined) },
  });
  // pipeline, not pipe: a download that breaks off errors the upload (which then aborts its
  // multipart upload) instead of crashing the process with an unhandled 'error' event
  const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream);
  let broke: unknown;
  body.on('error', (error) => void (broke ??= error));
  pipeline(body, upload.sink, () => undefined);
  let stored: Stored;
  try {
    stored = await upload.done;
  } catch (error) {
    // a body is never replayed mid-stream: the upload is abandoned, and the next run fetches the file again
    if (broke && !upload.sink.refused) throw new Error(`GET ${shownUrl}: the download broke off after ${upload.sink.bytes} bytes (${describeFailure(broke)}); nothing stored`, { cause: error });
    throw error;
  }
  const { bytes, sha256 } = stored;

  const manifest: FetchManifest = {
    dataset: dataset.name,
    source: shownUrl,
    key,
    bytes,
    sha256,
    contentType,
    etag: response.headers.get('etag') ?? undefined,
    lastModified: response.headers.get('last-modified') ?? undefined,
    startedAt: started.toISOString(),
    finishedAt: now().toISOString(),
    ...(http.counts().retries ? { http: http.counts() } : {}),
  };
  await writeManifest(deps, {
    dataset: dataset.name,
    connector: 'http',
    source: shownUrl,
    run,
    startedAt: manifest.startedAt,
    finishedAt: manifest.finishedAt,
    complete: true,
    objects: [manifestObject(key, manifest, declaration)],
    details: { contentType: manifest.contentType, etag: manifest.etag, lastModified: manifest.lastModified, ...(manifest.http ? { http: manifest.http } : {}) },
  });
  await lease.save({ etag: manifest.etag, lastModified: manifest.lastModified, key } satisfies HttpState);
  return { status: 'fetched', manifest };
}
