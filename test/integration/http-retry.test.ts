/**
 * One retry policy for every fetcher (issue 17): the same planned failures — a 503, a 429 with
 * `Retry-After`, a connection dropped before any answer, a server that stays down — are aimed at
 * each kind of fetch through a misbehaving server in front of a real one, and each kind must come
 * through (or give up) the same way: a file download, a REST API, a catalogue's resource download,
 * an Ed-Fi ODS and the OAuth 2 token request before it.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parsePipeline } from '../../contract/load.ts';
import { readJsonSecret, s3Client, secretsClient } from '../../functions/common/aws.ts';
import { messageOf } from '../../functions/common/errors.ts';
import { logger } from '../../functions/common/logger.ts';
import { fetchDataset, fetchEdfiApi, type FetchDatasetDeps, type FetchResult } from '../../functions/get/fetch-dataset.ts';
import { EDFI_CLIENT, startEdfiServer, type EdfiServer } from '../../local/edfi-stand-in.ts';
import { startApiServer, type ApiServer } from '../helpers/api-server.ts';
import { TestCatalog } from '../helpers/catalog-server.ts';
import { startFlakyProxy, type Failure, type FlakyProxy } from '../helpers/flaky-proxy.ts';
import { freshBucket } from './support.ts';

/** A value that must never be printed: it rides in each source URL's query, as tokens do. */
const PASSWORD = `pw-${randomUUID()}`;
/** A string in every good answer, so a landed object can be told from anything else. */
const MARKER = `retry-marker-${randomUUID().slice(0, 8)}`;
const ORG = '0123456789abcdef01234567';

let api: ApiServer;
let ods: EdfiServer;
/** In front of the test API, and in front of the Ed-Fi stand-in. */
let front: FlakyProxy;
let odsFront: FlakyProxy;
let edfiSecret: string;

beforeAll(async () => {
  api = await startApiServer();
  ods = await startEdfiServer();
  front = await startFlakyProxy(api.base);
  odsFront = await startFlakyProxy(ods.base);
  edfiSecret = `it-retry-edfi-${randomUUID()}`;
  await secretsClient().send(new CreateSecretCommand({ Name: edfiSecret, SecretString: JSON.stringify(EDFI_CLIENT) }));
  api.route('/files/data.csv', () => ({ text: `id,name\n1,${MARKER}\n`, headers: { 'content-type': 'text/csv' } }));
  api.route('/api/items', () => ({ json: [{ id: 1, name: MARKER }] }));
  ods.write('bellSchedules', [{ id: 'b1', name: MARKER }]);
});
afterAll(async () => {
  await Promise.all([front.close(), odsFront.close()]);
  await Promise.all([api.close(), ods.close()]);
});

/** What a user sees of a run: whether it landed, and its summary or the error (or failed resource) it reports. */
interface Seen {
  landed: boolean;
  text: string;
}

interface Kind {
  name: string;
  /** The path whose requests fail as planned, and the proxy it goes through. */
  path: string;
  proxy: () => FlakyProxy;
  /** How the URL of those requests must be shown: redacted (query values removed). */
  shown: () => string;
  method?: 'POST';
  run(deps: FetchDatasetDeps): Promise<Seen>;
}

const outcomeOf = async (fetch: () => Promise<FetchResult>): Promise<Seen> => {
  try {
    const result = await fetch();
    return { landed: result.status === 'fetched', text: result.summary };
  } catch (error) {
    return { landed: false, text: messageOf(error) };
  }
};

/** Every resource of the Ed-Fi stand-in's API `ods` (one: bellSchedules), reached through its misbehaving front. */
const fetchOds = (deps: FetchDatasetDeps): Promise<Seen> => {
  const pipeline = parsePipeline({
    project: 'it_retry',
    datasets: [{ name: 'ods_bell_schedules', clean: { key: ['id'], mode: 'replace' } }],
    edfi: [{ name: 'ods', url: odsFront.base, secret: edfiSecret, resources: ['bellSchedules'], changeQueries: false, concurrency: 1 }],
  } as never);
  return outcomeOf(() => fetchEdfiApi(deps, pipeline, 'ods'));
};

const KINDS: Kind[] = [
  {
    name: 'a file download (http)',
    path: '/files/data.csv',
    proxy: () => front,
    shown: () => `${front.base}/files/data.csv?password=…`,
    run: (deps) => {
      const dataset = parsePipeline({ project: 'it_retry', datasets: [{ name: 'file', source: { type: 'http', url: `${front.base}/files/data.csv?password=${PASSWORD}` } }] }).datasets[0]!;
      return outcomeOf(() => fetchDataset(deps, dataset));
    },
  },
  {
    name: 'a REST API (rest)',
    path: '/api/items',
    proxy: () => front,
    shown: () => `${front.base}/api/items?password=…`,
    run: (deps) => {
      const dataset = parsePipeline({ project: 'it_retry', datasets: [{ name: 'items', source: { type: 'rest', url: `${front.base}/api/items?password=${PASSWORD}` } }] }).datasets[0]!;
      return outcomeOf(() => fetchDataset(deps, dataset));
    },
  },
  {
    name: 'a catalogue resource download (catalog)',
    path: '/files/data.csv',
    proxy: () => front,
    shown: () => `${front.base}/files/data.csv?password=…`,
    run: (deps) => {
      const cat = new TestCatalog(api, 'udata');
      cat.addDataset({
        id: 'd-retry',
        slug: 'retry',
        organization: ORG,
        tags: [],
        modified: '2026-11-20T00:00:00.000Z',
        resources: [{ id: 'r-file', format: 'csv', file: `${front.base}/files/data.csv?password=${PASSWORD}`, modified: '2026-11-20T00:00:00.000Z' }],
      });
      const dataset = parsePipeline({ project: 'it_retry', datasets: [{ name: 'parks', source: { type: 'catalog', api: 'udata', url: cat.url, organization: ORG } }] }).datasets[0]!;
      // a resource that failed does not fail the run: the run is partial and says why
      return outcomeOf(() => fetchDataset(deps, dataset));
    },
  },
  {
    name: 'an Ed-Fi ODS (edfi)',
    path: '/data/v3/ed-fi/bellSchedules',
    proxy: () => odsFront,
    shown: () => `${odsFront.base}/data/v3/ed-fi/bellSchedules?`,
    run: fetchOds,
  },
  {
    name: "an OAuth 2 token request (the Ed-Fi ODS's)",
    path: '/oauth/token',
    method: 'POST',
    proxy: () => odsFront,
    shown: () => `${odsFront.base}/oauth/token`,
    run: fetchOds,
  },
];

/** The objects a run stored under raw/ (manifests aside), as text. */
async function stored(bucket: string): Promise<string[]> {
  const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'raw/' }));
  const keys = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => !k.endsWith('_manifest.json'));
  return Promise.all(
    keys.map(async (key) => {
      const bytes = Buffer.from(await (await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());
      return (key.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString();
    }),
  );
}

/** Run `kind` with `failures` planned for its path and the policy settings `policy`; what the user saw, the waits, the warnings and what was stored. */
async function attempt(kind: Kind, failures: Failure[], policy: Partial<FetchDatasetDeps>, always = false) {
  const bucket = await freshBucket('it-retry');
  const sleeps: number[] = [];
  const deps: FetchDatasetDeps = { s3: s3Client(), bucket, readSecret: readJsonSecret, sleep: async (ms) => void sleeps.push(ms), ...policy };
  const proxy = kind.proxy();
  const before = proxy.seen(kind.path).length;
  proxy.plan(kind.path, failures, { always });
  const warn = vi.spyOn(logger, 'warn');
  let seen: Seen;
  let warnings: string[];
  try {
    seen = await kind.run(deps);
    warnings = warn.mock.calls.map((c) => String(c[0]));
  } finally {
    warn.mockRestore();
    proxy.plan(kind.path, []);
  }
  return { seen, sleeps, warnings, answers: proxy.seen(kind.path).slice(before), objects: await stored(bucket) };
}

describe.each(KINDS)('the one retry policy: $name', (kind) => {
  it('survives a 503: asks again after an exponential backoff with jitter, logs the retry, and lands the data', async () => {
    const { seen, sleeps, warnings, answers, objects } = await attempt(kind, [{ status: 503 }], { baseDelayMs: 100 });

    expect(seen).toMatchObject({ landed: true });
    expect(answers).toEqual([503, 200]);
    expect(objects.some((o) => o.includes(MARKER))).toBe(true);
    // equal jitter: between half and all of the base delay
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThanOrEqual(50);
    expect(sleeps[0]).toBeLessThanOrEqual(100);
    expect(warnings.find((w) => w.includes('got 503 Service Unavailable on attempt 1; trying again in'))).toContain(`${kind.method ?? 'GET'} ${kind.shown()}`);
    // the run's summary counts it
    expect(seen.text).toContain('1 retry (1 after 5xx)');
  });

  it('honours Retry-After on a 429: waits what the server asked for', async () => {
    const { seen, sleeps, answers } = await attempt(kind, [{ status: 429, headers: { 'retry-after': '7' } }], {});

    expect(seen).toMatchObject({ landed: true });
    expect(answers).toEqual([429, 200]);
    expect(sleeps).toEqual([7000]);
    expect(seen.text).toContain('1 retry (1 after 429)');
  });

  it('survives a connection dropped before any answer', async () => {
    const { seen, sleeps, answers, objects } = await attempt(kind, ['drop'], { baseDelayMs: 100 });

    expect(seen).toMatchObject({ landed: true });
    expect(answers).toEqual(['drop', 200]);
    expect(objects.some((o) => o.includes(MARKER))).toBe(true);
    expect(sleeps).toHaveLength(1);
    expect(seen.text).toContain('1 retry (1 after network errors)');
  });

  it('gives up after its retries, naming the redacted URL, the status and the attempts; the password is never printed', async () => {
    const { seen, sleeps, answers, objects } = await attempt(kind, [{ status: 503 }], { retries: 2, baseDelayMs: 100 }, true);

    expect(seen.landed).toBe(false);
    expect(answers).toEqual([503, 503, 503]);
    expect(sleeps).toHaveLength(2);
    expect(seen.text).toContain(kind.shown());
    expect(seen.text).toMatch(/answered 503 Service Unavailable after 3 attempts/);
    expect(seen.text).not.toContain(PASSWORD);
    expect(seen.text).not.toContain(EDFI_CLIENT.secret);
    expect(objects).toEqual([]);
  });

  it('gives up rather than wait past the total bound, and says so', async () => {
    const { seen, sleeps, answers } = await attempt(kind, [{ status: 429, headers: { 'retry-after': '40' } }], { maxTotalWaitMs: 60_000 }, true);

    expect(seen.landed).toBe(false);
    // 40 s waited once; a second 40 s would pass the 60 s bound
    expect(sleeps).toEqual([40_000]);
    expect(answers).toEqual([429, 429]);
    expect(seen.text).toContain(kind.shown());
    expect(seen.text).toMatch(/answered 429 Too Many Requests after 2 attempts \(its retries would have waited more than 60 s in all\)/);
  });
});

describe('a body cut off mid-answer', () => {
  /** Answers `body`, but the first answer of each path sends only its first bytes, then drops the connection. */
  async function cuttingServer(body: (path: string) => { type: string; text: string }) {
    const hits = new Map<string, number>();
    const server = createServer((req, res) => {
      const path = new URL(req.url!, 'http://127.0.0.1').pathname;
      const n = (hits.get(path) ?? 0) + 1;
      hits.set(path, n);
      const { type, text } = body(path);
      res.writeHead(200, { 'content-type': type, 'content-length': String(Buffer.byteLength(text) + 1024) });
      if (n > 1) return void res.end(text.padEnd(Buffer.byteLength(text) + 1024, ' '));
      res.write(text.slice(0, 10));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  it('of a file download is not replayed: the run fails naming the URL and stores nothing; the next run fetches the file', async () => {
    const server = await cuttingServer(() => ({ type: 'text/csv', text: `id,name\n1,${MARKER}\n` }));
    try {
      const dataset = parsePipeline({ project: 'it_retry', datasets: [{ name: 'file', source: { type: 'http', url: `${server.base}/cut.csv?password=${PASSWORD}` } }] }).datasets[0]!;
      const bucket = await freshBucket('it-retry');
      const deps: FetchDatasetDeps = { s3: s3Client(), bucket, readSecret: readJsonSecret, sleep: async () => undefined };

      const first = await outcomeOf(() => fetchDataset(deps, dataset));

      expect(first.landed).toBe(false);
      expect(first.text).toContain(`GET ${server.base}/cut.csv?password=…: the download broke off after 10 bytes (`);
      expect(first.text).toMatch(/; nothing stored$/);
      expect(first.text).not.toContain(PASSWORD);
      expect(server.hits.get('/cut.csv')).toBe(1);
      expect(await stored(bucket)).toEqual([]);

      const second = await outcomeOf(() => fetchDataset(deps, dataset));

      expect(second.landed).toBe(true);
      expect(server.hits.get('/cut.csv')).toBe(2);
      expect((await stored(bucket)).some((o) => o.includes(MARKER))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('of a JSON answer is asked again within the same run', async () => {
    const server = await cuttingServer(() => ({ type: 'application/json', text: JSON.stringify([{ id: 1, name: MARKER }]) }));
    try {
      const dataset = parsePipeline({ project: 'it_retry', datasets: [{ name: 'items', source: { type: 'rest', url: `${server.base}/items` } }] }).datasets[0]!;
      const bucket = await freshBucket('it-retry');

      const seen = await outcomeOf(() => fetchDataset({ s3: s3Client(), bucket, readSecret: readJsonSecret, sleep: async () => undefined }, dataset));

      expect(seen).toMatchObject({ landed: true });
      expect(seen.text).toContain('1 retry (1 after network errors)');
      expect(server.hits.get('/items')).toBe(2);
    } finally {
      await server.close();
    }
  });
});
