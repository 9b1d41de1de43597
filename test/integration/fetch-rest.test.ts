import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePipeline } from '../../contract/load.ts';
import { readJsonSecret, s3Client, secretsClient } from '../../functions/common/aws.ts';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { fetchRest, type RestFetchDeps } from '../../functions/get/fetch-rest.ts';
import { stageObject } from '../../functions/stage/stage-object.ts';
import { makeRecords, startApiServer, type ApiServer } from '../helpers/api-server.ts';
import { freshBucket, freshProject, objectBytes, objectJson, rows, savedState } from './support.ts';

let api: ApiServer;
beforeAll(async () => {
  api = await startApiServer();
});
afterAll(() => api.close());

const NOW = new Date('2026-11-21T06:00:00Z');
const RUN = 'raw/items/20261121T060000Z';

/** A dataset `items` with this REST source (url relative to the test API). */
function datasetWith(source: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const pipeline = parsePipeline({
    project: 'it_fetch_rest',
    datasets: [
      {
        name: 'items',
        source: { type: 'rest', ...source, url: `${api.base}${source.url as string}` },
        clean: { columns: [{ name: 'id' }, { name: 'name' }, { name: 'updated_at' }], key: ['id'], mode: 'upsert' },
        ...extra,
      },
    ],
  });
  return pipeline.datasets[0]!;
}

async function setup() {
  const bucket = await freshBucket('it-fetch-rest');
  const sleeps: number[] = [];
  const deps: RestFetchDeps = {
    s3: s3Client(),
    bucket,
    readSecret: readJsonSecret,
    now: () => NOW,
    sleep: async (ms) => void sleeps.push(ms),
  };
  return { bucket, deps, sleeps };
}

async function secret(value: Record<string, string>): Promise<string> {
  const name = `it-rest-${randomUUID()}`;
  await secretsClient().send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify(value) }));
  return name;
}

/** The data and manifests in the bucket (the source's state is read with `stateOf`). */
async function keys(bucket: string): Promise<string[]> {
  const out = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }));
  return (out.Contents ?? [])
    .map((o) => o.Key!)
    .filter((k) => !k.startsWith('state/'))
    .sort();
}
async function storedRecords(bucket: string, key = `${RUN}/records.ndjson.gz`): Promise<{ id: number }[]> {
  return gunzipSync(await objectBytes(bucket, key))
    .toString()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: number });
}
/** The saved state of the `items` source; a finished run has released its lease. */
function stateOf(bucket: string): Promise<Record<string, unknown>> {
  return savedState(bucket, 'state/items/rest.json');
}
const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe('fetch from a REST API: pagination', () => {
  it('pages by offset until a short page, storing every record as gzip NDJSON with a manifest', async () => {
    const all = makeRecords(1, 25);
    api.route('/offset', ({ url }) => {
      const offset = Number(url.searchParams.get('offset'));
      const limit = Number(url.searchParams.get('limit'));
      return { json: all.slice(offset, offset + limit) };
    });
    const { bucket, deps } = await setup();

    const outcome = await fetchRest(deps, datasetWith({ url: '/offset', pagination: { type: 'offset', limitParam: 'limit', offsetParam: 'offset', pageSize: 10 } }));

    expect(outcome.status).toBe('fetched');
    expect(await keys(bucket)).toEqual([`${RUN}/_manifest.json`, `${RUN}/records.ndjson.gz`]);
    expect((await storedRecords(bucket)).map((r) => r.id)).toEqual(ids(1, 25));
    const manifest = await objectJson(bucket, `${RUN}/_manifest.json`);
    const stored = await objectBytes(bucket, `${RUN}/records.ndjson.gz`);
    expect(manifest).toMatchObject({
      contract: 1,
      dataset: 'items',
      connector: 'rest',
      complete: true,
      source: `${api.base}/offset`,
      details: { records: 25, pages: 3 },
      // a full (not incremental) run: its parts together are the whole dataset
      objects: [{ records: 25, bytes: stored.length, declaration: { replaces: 'run', holds: 'rows', part: 1 } }],
    });
  });

  it('pages by page number inside a wrapped answer ("records": "result.items")', async () => {
    const all = makeRecords(1, 7);
    api.route('/pages', ({ url }) => {
      const page = Number(url.searchParams.get('p'));
      return { json: { result: { items: all.slice((page - 1) * 3, page * 3) } } };
    });
    const { bucket, deps } = await setup();

    await fetchRest(deps, datasetWith({ url: '/pages', records: 'result.items', pagination: { type: 'page', pageParam: 'p', sizeParam: 'size', pageSize: 3 } }));

    expect((await storedRecords(bucket)).map((r) => r.id)).toEqual(ids(1, 7));
  });

  it('follows a cursor in the body until it is empty', async () => {
    const all = makeRecords(1, 5);
    api.route('/cursor', ({ url }) => {
      const at = Number(url.searchParams.get('after') ?? 0);
      return { json: { data: all.slice(at, at + 2), meta: { next: at + 2 < all.length ? String(at + 2) : null } } };
    });
    const { bucket, deps } = await setup();

    await fetchRest(deps, datasetWith({ url: '/cursor', records: 'data', pagination: { type: 'cursor', cursorParam: 'after', cursorPath: 'meta.next' } }));

    expect((await storedRecords(bucket)).map((r) => r.id)).toEqual(ids(1, 5));
  });

  it('follows Link rel="next" headers', async () => {
    const all = makeRecords(1, 4);
    api.route('/linked', ({ url }) => {
      const page = Number(url.searchParams.get('page') ?? 1);
      const headers: Record<string, string> = page < 2 ? { link: `<${api.base}/linked?page=${page + 1}>; rel="next", <${api.base}/linked?page=2>; rel="last"` } : {};
      return { json: all.slice((page - 1) * 2, page * 2), headers };
    });
    const { bucket, deps } = await setup();

    await fetchRest(deps, datasetWith({ url: '/linked', pagination: { type: 'link' } }));

    expect((await storedRecords(bucket)).map((r) => r.id)).toEqual(ids(1, 4));
  });

  it('follows a next URL in the body, relative ones too', async () => {
    const all = makeRecords(1, 3);
    api.route('/next', ({ url }) => {
      const i = Number(url.searchParams.get('i') ?? 0);
      return { json: { data: [all[i]], links: { next: i + 1 < all.length ? `/next?i=${i + 1}` : null } } };
    });
    const { bucket, deps } = await setup();

    await fetchRest(deps, datasetWith({ url: '/next', records: 'data', pagination: { type: 'nextUrl', path: 'links.next' } }));

    expect((await storedRecords(bucket)).map((r) => r.id)).toEqual(ids(1, 3));
  });

  it('stops with a clear error when the API repeats a cursor or a next URL, writing nothing', async () => {
    api.route('/stuck-cursor', () => ({ json: { data: makeRecords(1, 1), next: 'abc' } }));
    api.route('/stuck-next', () => ({ json: { data: makeRecords(1, 1), next: '/stuck-next?page=2' } }));
    const { bucket, deps } = await setup();

    await expect(fetchRest(deps, datasetWith({ url: '/stuck-cursor', records: 'data', pagination: { type: 'cursor', cursorParam: 'c', cursorPath: 'next' } }))).rejects.toThrow(
      `GET ${api.base}/stuck-cursor?c=…: the API gave the same cursor twice (a paging loop); stopped after 2 pages`,
    );
    await expect(fetchRest(deps, datasetWith({ url: '/stuck-next', records: 'data', pagination: { type: 'nextUrl', path: 'next' } }))).rejects.toThrow('the next page is one already read (a paging loop)');
    expect(await keys(bucket)).toEqual([]);
  });

  it('stops after maxPages pages', async () => {
    let n = 0;
    api.route('/endless', () => ({ json: { data: makeRecords(++n, 1), next: `/endless?n=${n}` } }));
    const { bucket, deps } = await setup();

    await expect(fetchRest(deps, datasetWith({ url: '/endless', records: 'data', maxPages: 3, pagination: { type: 'nextUrl', path: 'next' } }))).rejects.toThrow(
      `${api.base}/endless: more than maxPages (3) pages`,
    );
    expect(await keys(bucket)).toEqual([]);
  });
});

describe('fetch from a REST API: authentication', () => {
  it('sends a bearer token from Secrets Manager and keeps it out of the manifest', async () => {
    const token = `tok-${randomUUID()}`;
    api.route('/bearer', ({ headers }) => (headers.authorization === `Bearer ${token}` ? { json: makeRecords(1, 2) } : { status: 401, json: {} }));
    const { bucket, deps } = await setup();

    await fetchRest(deps, datasetWith({ url: '/bearer', auth: { type: 'bearer', secret: await secret({ token }) } }));

    expect((await storedRecords(bucket)).map((r) => r.id)).toEqual([1, 2]);
    expect(JSON.stringify(await objectJson(bucket, `${RUN}/_manifest.json`))).not.toContain(token);
  });

  it('gets an oauth2 client-credentials token, and a new one once when it expires mid-run', async () => {
    let issued = 0;
    const valid = new Set<string>();
    api.route('/token', ({ body }) => {
      const form = new URLSearchParams(body);
      if (form.get('client_secret') !== 'shh-very-secret') return { status: 401, json: { error: 'invalid_client' } };
      const token = `t${++issued}`;
      valid.add(token);
      return { json: { access_token: token, token_type: 'Bearer', expires_in: 3600 } };
    });
    api.route('/oauth', ({ url, headers }) => {
      const token = String(headers.authorization).replace('Bearer ', '');
      if (!valid.has(token)) return { status: 401, json: {} };
      const page = Number(url.searchParams.get('page'));
      if (page === 2) valid.delete('t1'); // the first token is revoked after page 2
      return { json: page <= 3 ? makeRecords(page, 1) : [] };
    });
    const { bucket, deps } = await setup();
    const name = await secret({ client_id: 'civic', client_secret: 'shh-very-secret' });

    await fetchRest(deps, datasetWith({ url: '/oauth', auth: { type: 'oauth2', secret: name, tokenUrl: `${api.base}/token` }, pagination: { type: 'page', pageParam: 'page' } }));

    expect((await storedRecords(bucket)).map((r) => r.id)).toEqual([1, 2, 3]);
    expect(issued).toBe(2);
    expect(JSON.stringify(await objectJson(bucket, `${RUN}/_manifest.json`))).not.toContain('shh-very-secret');
  });

  it('keeps a query-string API key out of error messages', async () => {
    const key = `key-${randomUUID()}`;
    api.route('/keyed', () => ({ status: 403, json: { error: 'forbidden' } }));
    const { deps } = await setup();

    const failure = fetchRest(deps, datasetWith({ url: '/keyed', auth: { type: 'apiKey', in: 'query', name: 'apikey', secret: await secret({ key }) } }));

    await expect(failure).rejects.toThrow(`GET ${api.base}/keyed answered 403 Forbidden`);
    await expect(failure).rejects.not.toThrow(key);
    expect(api.requests.at(-1)!.url.searchParams.get('apikey')).toBe(key);
  });
});

describe('fetch from a REST API: failures', () => {
  it('retries a 500 with exponential backoff, then succeeds', async () => {
    let calls = 0;
    api.route('/flaky', () => (++calls <= 2 ? { status: 500, text: 'oops' } : { json: makeRecords(1, 1) }));
    const { bucket, deps, sleeps } = await setup();

    await fetchRest({ ...deps, baseDelayMs: 100 }, datasetWith({ url: '/flaky' }));

    expect((await storedRecords(bucket)).map((r) => r.id)).toEqual([1]);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[0]).toBeGreaterThanOrEqual(50);
    expect(sleeps[0]).toBeLessThanOrEqual(100);
    expect(sleeps[1]).toBeGreaterThanOrEqual(100);
    expect(sleeps[1]).toBeLessThanOrEqual(200);
  });

  it('waits as long as a 429 Retry-After asks, up to the cap', async () => {
    let calls = 0;
    api.route('/limited', () =>
      ++calls === 1 ? { status: 429, headers: { 'retry-after': '7' }, json: {} } : calls === 2 ? { status: 429, headers: { 'retry-after': '3600' }, json: {} } : { json: makeRecords(1, 1) },
    );
    const { deps, sleeps } = await setup();

    await fetchRest({ ...deps, maxRetryAfterMs: 30_000 }, datasetWith({ url: '/limited' }));

    expect(sleeps).toEqual([7000, 30_000]);
  });

  it('gives up after the retries with the status and URL', async () => {
    api.route('/down', () => ({ status: 503, text: 'down' }));
    const { bucket, deps, sleeps } = await setup();

    await expect(fetchRest({ ...deps, retries: 2 }, datasetWith({ url: '/down?token=abc' }))).rejects.toThrow(`GET ${api.base}/down?token=… answered 503 Service Unavailable after 3 attempts`);
    expect(sleeps).toHaveLength(2);
    expect(await keys(bucket)).toEqual([]);
  });

  it('refuses an HTML answer, naming the URL, status and content type', async () => {
    api.route('/html', () => ({ headers: { 'content-type': 'text/html; charset=utf-8' }, text: '<html><body>Please log in</body></html>' }));
    const { deps } = await setup();

    await expect(fetchRest(deps, datasetWith({ url: '/html?session=s3cr3t' }))).rejects.toThrow(`GET ${api.base}/html?session=… answered 200 with content type "text/html; charset=utf-8", not JSON`);
  });
});

describe('fetch from a REST API: incremental runs', () => {
  const incremental = { url: '/changes', records: 'data', incremental: { param: 'updated_since', field: 'updated_at' }, pagination: { type: 'cursor', cursorParam: 'cursor', cursorPath: 'next' } };
  let table = makeRecords(1, 3);
  let failPage2 = false;
  beforeAll(() =>
    api.route('/changes', ({ url }) => {
      const since = url.searchParams.get('updated_since');
      const rows = table.filter((r) => !since || r.updated_at > since);
      const at = Number(url.searchParams.get('cursor') ?? 0);
      if (at > 0 && failPage2) return { status: 500, text: 'boom' };
      return { json: { data: rows.slice(at, at + 2), next: at + 2 < rows.length ? String(at + 2) : null } };
    }),
  );

  it('asks only for records changed since the last run, and remembers the newest', async () => {
    table = makeRecords(1, 3);
    const { bucket, deps } = await setup();
    await fetchRest(deps, datasetWith(incremental));
    table = [...makeRecords(1, 3), ...makeRecords(4, 2)];

    const later = { ...deps, now: () => new Date('2026-11-22T06:00:00Z') };
    const outcome = await fetchRest(later, datasetWith(incremental));

    expect(api.requests.at(-1)!.url.searchParams.get('updated_since')).toBe(makeRecords(3, 1)[0]!.updated_at);
    expect((await storedRecords(bucket, 'raw/items/20261122T060000Z/records.ndjson.gz')).map((r) => r.id)).toEqual([4, 5]);
    expect(outcome).toMatchObject({ status: 'fetched', manifest: { watermarkBefore: makeRecords(3, 1)[0]!.updated_at, watermarkAfter: makeRecords(5, 1)[0]!.updated_at } });
    expect(await stateOf(bucket)).toMatchObject({ watermark: makeRecords(5, 1)[0]!.updated_at });
  });

  it('writes nothing, and says so, when nothing changed', async () => {
    table = makeRecords(1, 3);
    const { bucket, deps } = await setup();
    await fetchRest(deps, datasetWith(incremental));
    const before = await keys(bucket);

    const outcome = await fetchRest({ ...deps, now: () => new Date('2026-11-22T06:00:00Z') }, datasetWith(incremental));

    expect(outcome).toMatchObject({ status: 'empty', message: `no records changed since ${makeRecords(3, 1)[0]!.updated_at} at ${api.base}/changes; nothing written` });
    expect(await keys(bucket)).toEqual(before);
  });

  it('does not advance the watermark when a run fails part-way', async () => {
    table = makeRecords(1, 3);
    const { bucket, deps } = await setup();
    await fetchRest(deps, datasetWith(incremental));
    table = [...makeRecords(1, 3), ...makeRecords(4, 4)];
    failPage2 = true;

    try {
      await expect(fetchRest({ ...deps, retries: 1, now: () => new Date('2026-11-22T06:00:00Z') }, datasetWith(incremental))).rejects.toThrow('answered 500');
    } finally {
      failPage2 = false;
    }

    expect(await stateOf(bucket)).toMatchObject({ watermark: makeRecords(3, 1)[0]!.updated_at });
    expect((await keys(bucket)).filter((k) => k.includes('20261122'))).toEqual([]);
  });
});

describe('fetch from a REST API, then stage and clean', () => {
  it('keeps a clean table current from incremental runs with mode upsert', async () => {
    let table = makeRecords(1, 3);
    api.route('/e2e', ({ url }) => {
      const since = url.searchParams.get('since');
      return { json: { data: table.filter((r) => !since || r.updated_at > since) } };
    });
    const { pipeline, pool } = await freshProject({
      project: 'it_fetch_rest_e2e',
      datasets: [
        {
          name: 'items',
          source: { type: 'rest', url: `${api.base}/e2e`, records: 'data', incremental: { param: 'since', field: 'updated_at' } },
          clean: { columns: [{ name: 'id', type: 'integer' }, { name: 'name' }, { name: 'updated_at' }], key: ['id'], mode: 'upsert' },
        },
      ],
    });
    const { bucket, deps } = await setup();
    const stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
    /** Fetch once at `at`, then stage and clean what was fetched, as the bucket notification would. */
    async function runAt(at: string) {
      const outcome = await fetchRest({ ...deps, now: () => new Date(at) }, pipeline.datasets[0]!);
      if (outcome.status !== 'fetched') throw new Error(`nothing fetched: ${outcome.message}`);
      const staged = await stageObject(stageDeps, { bucket, key: outcome.manifest.key });
      if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
      return cleanLoad({ pool, pipeline }, staged.loadId);
    }

    await runAt('2026-11-21T06:00:00Z');
    table = [...makeRecords(1, 3), ...makeRecords(4, 1)];
    table[1] = { ...table[1]!, name: 'item 2 renamed', updated_at: '2026-11-02T00:00:00.000Z' };
    const second = await runAt('2026-11-22T06:00:00Z');

    expect(second).toMatchObject({ status: 'loaded', rowsLoaded: 2 });
    expect(await rows(pool, 'SELECT id, name FROM it_fetch_rest_e2e.items ORDER BY id')).toEqual([
      { id: 1, name: 'item 1' },
      { id: 2, name: 'item 2 renamed' },
      { id: 3, name: 'item 3' },
      { id: 4, name: 'item 4' },
    ]);
  });
});
