import { gunzipSync } from 'node:zlib';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePipeline } from '../../contract/load.ts';
import { readJsonSecret, s3Client } from '../../functions/common/aws.ts';
import { fetchRest, type RestFetchDeps } from '../../functions/get/fetch-rest.ts';
import { mulberry32 } from '../../scripts/random.ts';
import { makeRecords, startApiServer, type ApiServer } from '../helpers/api-server.ts';
import { freshBucket, objectBytes } from './support.ts';

let api: ApiServer;
beforeAll(async () => {
  api = await startApiServer();
});
afterAll(() => api.close());

const NOW = new Date('2026-11-21T06:00:00Z');
const RUN = 'raw/items/20261121T060000Z';
const STATE = 'state/items/rest.json';
const offsetPages = (pageSize: number) => ({ type: 'offset', limitParam: 'limit', offsetParam: 'offset', pageSize });

/** A dataset `items` with this REST source (url relative to the test API). */
function datasetWith(source: Record<string, unknown>) {
  const pipeline = parsePipeline({
    project: 'it_fetch_rest_more',
    datasets: [{ name: 'items', source: { type: 'rest', ...source, url: `${api.base}${source.url as string}` } }],
  });
  return pipeline.datasets[0]!;
}

async function setup() {
  const bucket = await freshBucket('it-fetch-more');
  const sleeps: number[] = [];
  const deps: RestFetchDeps = { s3: s3Client(), bucket, readSecret: readJsonSecret, now: () => NOW, sleep: async (ms) => void sleeps.push(ms) };
  return { bucket, deps, sleeps };
}

/** Every key in the bucket but the source's state. */
async function dataKeys(bucket: string): Promise<string[]> {
  const out = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }));
  return (out.Contents ?? [])
    .map((o) => o.Key!)
    .filter((k) => !k.startsWith('state/'))
    .sort();
}
async function storedRecords(bucket: string, key = `${RUN}/records.ndjson.gz`): Promise<{ id: number; updated_at: string }[]> {
  return gunzipSync(await objectBytes(bucket, key))
    .toString()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: number; updated_at: string });
}
async function stateDoc(bucket: string): Promise<{ state?: Record<string, unknown>; lease?: { run: string; until: string }; savedAt: string }> {
  return JSON.parse((await objectBytes(bucket, STATE)).toString()) as { state?: Record<string, unknown>; lease?: { run: string; until: string }; savedAt: string };
}
/** The state document a run that crashed while holding the lease leaves behind. */
async function leftByCrashedRun(bucket: string, state: Record<string, unknown>, until: string): Promise<void> {
  const doc = { state, lease: { run: '20261121T040000Z-crashed', until }, savedAt: '2026-11-21T04:00:00.000Z' };
  await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: STATE, Body: JSON.stringify(doc), ContentType: 'application/json' }));
}
const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** The offsets asked for at `path`, in the order the requests arrived. */
const offsetsAsked = (path: string) => api.requests.filter((r) => r.url.pathname === path).map((r) => Number(r.url.searchParams.get('offset')));

describe('fetch from a REST API with several pages in flight', () => {
  it('stores every record once and in order when the API answers the pages out of order', async () => {
    const all = makeRecords(1, 95);
    const random = mulberry32(7);
    const answered: number[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    api.route('/shuffled', async ({ url }) => {
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      const offset = Number(url.searchParams.get('offset'));
      await delay(Math.floor(random() * 40));
      inFlight--;
      answered.push(offset);
      return { json: all.slice(offset, offset + Number(url.searchParams.get('limit'))) };
    });
    const { bucket, deps } = await setup();

    const outcome = await fetchRest(deps, datasetWith({ url: '/shuffled', concurrency: 4, pagination: offsetPages(10) }));

    expect(mostInFlight).toBe(4);
    expect(answered).not.toEqual([...answered].sort((a, b) => a - b));
    expect((await storedRecords(bucket)).map((r) => r.id)).toEqual(ids(1, 95));
    expect(outcome).toMatchObject({ status: 'fetched', manifest: { records: 95, pages: 10 } });
    expect(await dataKeys(bucket)).toEqual([`${RUN}/_manifest.json`, `${RUN}/records.ndjson.gz`]);
  });

  it('pages by page number with several requests in flight, from page 1 or from page 0', async () => {
    const all = makeRecords(1, 23);
    api.route('/numbered', async ({ url }) => {
      const size = Number(url.searchParams.get('size'));
      const page = Number(url.searchParams.get('page'));
      await delay((page * 7) % 15);
      return { json: { items: all.slice((page - 1) * size, page * size) } };
    });
    api.route('/from-zero', async ({ url }) => {
      const page = Number(url.searchParams.get('p'));
      await delay((page * 5) % 12);
      return { json: all.slice(page * 4, page * 4 + 4) };
    });
    const first = await setup();
    const second = await setup();

    await fetchRest(first.deps, datasetWith({ url: '/numbered', records: 'items', concurrency: 3, pagination: { type: 'page', pageParam: 'page', sizeParam: 'size', pageSize: 5 } }));
    // no pageSize: only an empty page ends the run
    await fetchRest(second.deps, datasetWith({ url: '/from-zero', concurrency: 3, pagination: { type: 'page', pageParam: 'p', firstPage: 0 } }));

    expect((await storedRecords(first.bucket)).map((r) => r.id)).toEqual(ids(1, 23));
    expect((await storedRecords(second.bucket)).map((r) => r.id)).toEqual(ids(1, 23));
  });

  it('ends the run at a short page in the middle of the window: pages asked for past it are not stored', async () => {
    // an API whose third page is short although more follow (a paging bug, or records deleted mid-run)
    api.route('/gap', ({ url }) => {
      const offset = Number(url.searchParams.get('offset'));
      return { json: makeRecords(offset + 1, offset === 20 ? 5 : 10) };
    });
    const { bucket, deps } = await setup();

    const outcome = await fetchRest(deps, datasetWith({ url: '/gap', concurrency: 4, pagination: offsetPages(10) }));

    expect(offsetsAsked('/gap')).toContain(30);
    expect((await storedRecords(bucket)).map((r) => r.id)).toEqual(ids(1, 25));
    expect(outcome).toMatchObject({ status: 'fetched', manifest: { records: 25, pages: 3 } });
  });

  it('retries a page that answered 500 and keeps the order', async () => {
    const all = makeRecords(1, 40);
    let failures = 0;
    api.route('/flaky-page', async ({ url }) => {
      const offset = Number(url.searchParams.get('offset'));
      if (offset === 10 && failures++ === 0) return { status: 500, text: 'try again' };
      await delay(offset === 0 ? 20 : 0);
      return { json: all.slice(offset, offset + 10) };
    });
    const { bucket, deps, sleeps } = await setup();

    await fetchRest(deps, datasetWith({ url: '/flaky-page', concurrency: 4, pagination: offsetPages(10) }));

    expect((await storedRecords(bucket)).map((r) => r.id)).toEqual(ids(1, 40));
    expect(offsetsAsked('/flaky-page').filter((o) => o === 10)).toHaveLength(2);
    expect(sleeps).toHaveLength(1);
  });

  it('respects maxPages: fails without asking for more pages, writing nothing, and succeeds when the last page fits', async () => {
    api.route('/endless-pages', ({ url }) => ({ json: makeRecords(Number(url.searchParams.get('offset')) + 1, 10) }));
    api.route('/five-pages', ({ url }) => {
      const offset = Number(url.searchParams.get('offset'));
      return { json: makeRecords(offset + 1, Math.max(0, Math.min(10, 45 - offset))) };
    });
    const endless = await setup();
    const fits = await setup();

    const failure = fetchRest(endless.deps, datasetWith({ url: '/endless-pages', concurrency: 3, maxPages: 5, pagination: offsetPages(10) }));

    await expect(failure).rejects.toThrow(`${api.base}/endless-pages: more than maxPages (5) pages; raise maxPages if the API really has more`);
    expect(Math.max(...offsetsAsked('/endless-pages'))).toBe(40);
    expect(await dataKeys(endless.bucket)).toEqual([]);
    const outcome = await fetchRest(fits.deps, datasetWith({ url: '/five-pages', concurrency: 3, maxPages: 5, pagination: offsetPages(10) }));
    expect(outcome).toMatchObject({ status: 'fetched', manifest: { records: 45, pages: 5 } });
  });

  it('refuses concurrency above 1 with cursor pagination, saying which pagination allows it', () => {
    const define = () => datasetWith({ url: '/cursor', concurrency: 4, pagination: { type: 'cursor', cursorParam: 'after', cursorPath: 'next' } });

    expect(define).toThrow(/dataset "items".*source\.concurrency.*concurrency above 1 needs offset or page pagination \(cursor, link and nextUrl pages are only known one after the other\)/);
  });
});

describe('fetch from a REST API: one run of a source at a time', () => {
  it('lets one of two runs started together fetch; the other says busy and writes nothing', async () => {
    api.route('/slow', async ({ url }) => {
      await delay(150);
      const offset = Number(url.searchParams.get('offset'));
      return { json: makeRecords(offset + 1, Math.max(0, Math.min(5, 12 - offset))) };
    });
    const { bucket, deps } = await setup();
    const dataset = datasetWith({ url: '/slow', pagination: offsetPages(5) });

    const outcomes = await Promise.all([fetchRest(deps, dataset), fetchRest({ ...deps, now: () => new Date(NOW.getTime() + 1000) }, dataset)]);

    expect(outcomes.map((o) => o.status).sort()).toEqual(['busy', 'fetched']);
    const busy = outcomes.find((o) => o.status === 'busy')!;
    expect(busy).toMatchObject({ message: expect.stringMatching(/^items: another fetch of this source is running \(.+\); this one did nothing$/) });
    const keys = await dataKeys(bucket);
    expect(keys.filter((k) => k.endsWith('records.ndjson.gz'))).toHaveLength(1);
    expect(keys).toHaveLength(2);
    expect((await stateDoc(bucket)).lease).toBeUndefined();
  });

  it('takes over the lease of a run that crashed, from the state it last saved', async () => {
    const table = makeRecords(1, 6);
    api.route('/resumed', ({ url }) => {
      const since = url.searchParams.get('since');
      return { json: table.filter((r) => !since || r.updated_at > since) };
    });
    const { bucket, deps } = await setup();
    await leftByCrashedRun(bucket, { watermark: table[3]!.updated_at }, '2026-11-21T05:00:00.000Z');

    const outcome = await fetchRest(deps, datasetWith({ url: '/resumed', incremental: { param: 'since', field: 'updated_at' } }));

    expect(api.requests.at(-1)!.url.searchParams.get('since')).toBe(table[3]!.updated_at);
    expect(outcome).toMatchObject({ status: 'fetched', manifest: { records: 2, watermarkBefore: table[3]!.updated_at, watermarkAfter: table[5]!.updated_at } });
    const doc = await stateDoc(bucket);
    expect(doc.lease).toBeUndefined();
    expect(doc.state).toMatchObject({ watermark: table[5]!.updated_at });
  });

  it('does nothing while another run still holds a valid lease, and names it', async () => {
    let asked = 0;
    api.route('/held', () => ({ json: makeRecords(1 + asked++, 1) }));
    const { bucket, deps } = await setup();
    await leftByCrashedRun(bucket, { watermark: '2026-11-01T00:00:00.000Z' }, '2026-11-21T07:00:00.000Z');

    const outcome = await fetchRest(deps, datasetWith({ url: '/held', incremental: { param: 'since', field: 'updated_at' } }));

    expect(outcome).toMatchObject({ status: 'busy', message: expect.stringContaining('run 20261121T040000Z-crashed holds state/items/rest.json until 2026-11-21T07:00:00.000Z') });
    expect(asked).toBe(0);
    expect(await dataKeys(bucket)).toEqual([]);
    expect((await stateDoc(bucket)).lease).toEqual({ run: '20261121T040000Z-crashed', until: '2026-11-21T07:00:00.000Z' });
  });
});

describe('fetch from a REST API: the overlap window of incremental runs', () => {
  it('skips records of the overlap already fetched unchanged, and fetches one that changed', async () => {
    // five records updated a minute apart; the API answers what changed at or after `since`, oldest first
    let table = makeRecords(1, 5);
    api.route('/overlap', ({ url }) => {
      const since = url.searchParams.get('since');
      return { json: table.filter((r) => !since || r.updated_at >= since).sort((a, b) => a.updated_at.localeCompare(b.updated_at)) };
    });
    const { bucket, deps } = await setup();
    const dataset = datasetWith({ url: '/overlap', incremental: { param: 'since', field: 'updated_at', overlapSeconds: 180, idField: 'id' } });
    await fetchRest(deps, dataset);
    const changed = { ...table[3]!, name: 'item 4 renamed', updated_at: '2026-11-01T00:10:00.000Z' };
    table = [...table.slice(0, 3), changed, table[4]!, ...makeRecords(6, 1)];

    const second = await fetchRest({ ...deps, now: () => new Date('2026-11-22T06:00:00Z') }, dataset);

    // asked from three minutes before the watermark (record 5): records 2, 3 and 5 came again unchanged
    expect(api.requests.at(-1)!.url.searchParams.get('since')).toBe('2026-11-01T00:02:00.000Z');
    expect(second).toMatchObject({ status: 'fetched', manifest: { records: 2, skippedAtBoundary: 3, watermarkAfter: changed.updated_at } });
    expect(await storedRecords(bucket, 'raw/items/20261122T060000Z/records.ndjson.gz')).toEqual([makeRecords(6, 1)[0], changed]);
    const third = await fetchRest({ ...deps, now: () => new Date('2026-11-23T06:00:00Z') }, dataset);
    expect(third).toMatchObject({
      status: 'empty',
      message: `no records changed since ${changed.updated_at} (1 already fetched at the boundary skipped) at ${api.base}/overlap; nothing written`,
    });
  });
});

describe('a REST run that nears its time limit', () => {
  /** 40 records by offset, 3 a page; each request "takes" 5 s on the test's clock. */
  function slowApi(path: string, all: { id: number; updated_at: string }[]) {
    let clock = NOW.getTime();
    api.route(path, ({ url }) => {
      clock += 5_000;
      const offset = Number(url.searchParams.get('offset'));
      return { json: all.slice(offset, offset + Number(url.searchParams.get('limit'))) };
    });
    return () => new Date(clock);
  }

  it('incremental: stores what it read, checkpoints, and the next invocation goes on to the end', async () => {
    const all = makeRecords(1, 40);
    const clock = slowApi('/slow', all);
    const { bucket, deps } = await setup();
    const dataset = datasetWith({ url: '/slow', pagination: offsetPages(3), incremental: { param: 'since', field: 'updated_at' } });
    const limits = { ...deps, now: clock, timeoutMs: 60_000, marginMs: 20_000 };

    const first = await fetchRest(limits, dataset);
    expect(first.status).toBe('checkpointed');
    if (first.status !== 'checkpointed') return;
    expect(first.manifest).toMatchObject({ complete: false, watermarkAfter: undefined, parts: [{ key: `${RUN}/records.ndjson.gz` }] });
    expect(first.manifest.records).toBeGreaterThan(0);
    expect(first.manifest.records).toBeLessThan(40);
    const saved = await stateDoc(bucket);
    expect(saved.lease).toBeUndefined(); // the next invocation may take it at once
    expect(saved.state).toMatchObject({ checkpoint: { run: '20261121T060000Z', next: expect.stringContaining(`offset=${first.manifest.records}`) } });
    expect(saved.state!.watermark).toBeUndefined(); // the watermark moves only when the run completes

    let outcome = await fetchRest(limits, dataset);
    while (outcome.status === 'checkpointed') outcome = await fetchRest(limits, dataset);
    expect(outcome).toMatchObject({ status: 'fetched', manifest: { complete: true, records: 40, watermarkAfter: all.at(-1)!.updated_at } });
    if (outcome.status !== 'fetched') return;
    const got = (await Promise.all(outcome.manifest.parts.map((part) => storedRecords(bucket, part.key)))).flat();
    expect(got.map((r) => r.id)).toEqual(all.map((r) => r.id));
    expect(outcome.manifest.parts.map((p) => p.key)).toEqual([`${RUN}/records.ndjson.gz`, ...outcome.manifest.parts.slice(1).map((_, i) => `${RUN}/records-${String(i + 2).padStart(5, '0')}.ndjson.gz`)]);
    const done = await stateDoc(bucket);
    expect(done.state).toMatchObject({ watermark: all.at(-1)!.updated_at });
    expect(done.state!.checkpoint).toBeUndefined();
  });

  it('incremental with concurrency: goes on from the checkpoint page, every record once', async () => {
    const all = makeRecords(1, 40);
    const clock = slowApi('/slow-many', all);
    const { bucket, deps } = await setup();
    const dataset = datasetWith({ url: '/slow-many', pagination: offsetPages(3), concurrency: 4, incremental: { param: 'since', field: 'updated_at' } });
    const limits = { ...deps, now: clock, timeoutMs: 60_000, marginMs: 20_000 };
    let outcome = await fetchRest(limits, dataset);
    let invocations = 1;
    while (outcome.status === 'checkpointed') {
      outcome = await fetchRest(limits, dataset);
      invocations++;
    }
    expect(invocations).toBeGreaterThan(1);
    if (outcome.status !== 'fetched') throw new Error(outcome.status);
    const got = (await Promise.all(outcome.manifest.parts.map((part) => storedRecords(bucket, part.key)))).flat();
    expect(got.map((r) => r.id)).toEqual(all.map((r) => r.id));
  });

  it('counts maxPages over the whole run, so an API that never ends cannot make it go on forever', async () => {
    let clock = NOW.getTime();
    api.route('/endless', () => {
      clock += 5_000;
      return { json: makeRecords(1, 3) }; // ignores offset: every page full
    });
    const { deps } = await setup();
    const dataset = datasetWith({ url: '/endless', pagination: offsetPages(3), maxPages: 20, incremental: { param: 'since', field: 'updated_at' } });
    const limits = { ...deps, now: () => new Date(clock), timeoutMs: 60_000, marginMs: 20_000 };
    let invocations = 0;
    const run = async () => {
      for (;;) {
        invocations++;
        const outcome = await fetchRest(limits, dataset);
        if (outcome.status !== 'checkpointed') return outcome;
      }
    };
    await expect(run()).rejects.toThrow(/more than maxPages \(20\) pages/);
    expect(invocations).toBeGreaterThan(1);
    expect(invocations).toBeLessThanOrEqual(4);
  });

  it('a full (not incremental) fetch never stops half-way: its one file is the whole table', async () => {
    const all = makeRecords(1, 40);
    const clock = slowApi('/slow-full', all);
    const { bucket, deps } = await setup();
    const outcome = await fetchRest({ ...deps, now: clock, timeoutMs: 60_000, marginMs: 20_000 }, datasetWith({ url: '/slow-full', pagination: offsetPages(3) }));
    expect(outcome).toMatchObject({ status: 'fetched', manifest: { complete: true, records: 40, parts: [{ records: 40 }] } });
    expect((await storedRecords(bucket)).length).toBe(40);
  });
});

describe('a number watermark (an increasing id)', () => {
  it('asks for what comes after the largest id seen, exactly even beyond 2^53', async () => {
    const rows = [{ id: '9007199254740991' }, { id: '9007199254740993' }, { id: '9007199254740992' }];
    let table = rows;
    api.route('/by-id', ({ url }) => {
      const after = url.searchParams.get('after_id');
      return { json: table.filter((r) => after === null || BigInt(r.id) > BigInt(after)) };
    });
    const { bucket, deps } = await setup();
    const dataset = datasetWith({ url: '/by-id', incremental: { param: 'after_id', field: 'id', type: 'number' } });

    expect(await fetchRest(deps, dataset)).toMatchObject({ status: 'fetched', manifest: { records: 3, watermarkAfter: '9007199254740993' } });
    table = [...rows, { id: '9007199254740994' }];
    const second = await fetchRest({ ...deps, now: () => new Date('2026-11-22T06:00:00Z') }, dataset);
    expect(second).toMatchObject({ status: 'fetched', manifest: { records: 1, watermarkBefore: '9007199254740993', watermarkAfter: '9007199254740994' } });
    expect(api.requests.at(-1)!.url.searchParams.get('after_id')).toBe('9007199254740993');
    expect((await stateDoc(bucket)).state).toMatchObject({ watermark: '9007199254740994' });
  });

  it('refuses an overlap on a number watermark, saying why', () => {
    expect(() => datasetWith({ url: '/by-id', incremental: { param: 'after_id', field: 'id', type: 'number', overlapSeconds: 60 } })).toThrow(/overlapSeconds and idField are for timestamp watermarks/);
  });
});

describe('a page with a malformed record', () => {
  it('fails naming the page and the record, stores nothing, and leaves the watermark for the next run', async () => {
    const good = makeRecords(1, 3);
    let broken = true;
    api.route('/malformed', ({ url }) => {
      const offset = Number(url.searchParams.get('offset'));
      if (offset === 3) return { json: broken ? [good[0], 'oops', null] : [] };
      return { json: good.slice(offset, offset + 3) };
    });
    const { bucket, deps } = await setup();
    const dataset = datasetWith({ url: '/malformed', pagination: offsetPages(3), incremental: { param: 'since', field: 'updated_at' } });

    await expect(fetchRest(deps, dataset)).rejects.toThrow(/GET http:\/\/127\.0\.0\.1:\d+\/malformed\?.*offset=…: record 2 of 3 on this page is not a JSON object \("oops"\); the page was not stored/);
    expect(await dataKeys(bucket)).toEqual([]);
    expect((await stateDoc(bucket)).state).toBeUndefined();

    broken = false;
    expect(await fetchRest(deps, dataset)).toMatchObject({ status: 'fetched', manifest: { records: 3 } });
  });
});
