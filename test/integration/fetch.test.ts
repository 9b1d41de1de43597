import { createHash, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { classify, messageOf, PermanentError } from '../../functions/common/errors.ts';
import { logger } from '../../functions/common/logger.ts';
import { parsePipeline } from '../../contract/load.ts';
import { declarationFromMetadata } from '../../contract/objects.ts';
import { readJsonSecret, s3Client, secretsClient } from '../../functions/common/aws.ts';
import { fetchHttp, type FetchDeps } from '../../functions/get/fetch-http.ts';
import { redactUrl } from '../../functions/common/urls.ts';
import { freshBucket } from './support.ts';

/** A file server on loopback that wants a bearer token and honours If-None-Match. */
let server: Server;
let base: string;
let content = 'area,population\nNorth,1000\n';
const requests: { path: string; authorization?: string; ifNoneMatch?: string }[] = [];
const TOKEN = `test-token-${randomUUID()}`;
const PASSWORD = `pw-${randomUUID()}`;

const etagOf = (s: string) => `"${createHash('md5').update(s).digest('hex')}"`;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push({ path: req.url!, authorization: req.headers.authorization, ifNoneMatch: req.headers['if-none-match'] });
    if (req.url?.startsWith('/broken')) return void res.writeHead(503).end('down for maintenance');
    if (req.url?.startsWith('/moved')) return void res.writeHead(302, { location: `http://bob:${PASSWORD}@${req.headers.host}/data/areas.csv` }).end();
    // a portal's error page served as 200: said by its Content-Type, or only by its bytes
    if (req.url?.startsWith('/page/')) return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!DOCTYPE html><html><body>Service unavailable</body></html>');
    if (req.url?.startsWith('/plain/')) return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end('\uFEFF\n  <html lang="en"><body>Please sign in</body></html>');
    if (req.url?.startsWith('/cut')) {
      // promise a megabyte, send a little, then drop the connection
      res.writeHead(200, { 'content-length': String(1024 * 1024), 'content-type': 'text/csv' });
      res.write('area,population\nNorth,1000\n');
      return void setTimeout(() => res.socket?.destroy(), 50);
    }
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end();
    const etag = etagOf(content);
    if (req.headers['if-none-match'] === etag) return void res.writeHead(304, { etag }).end();
    res.writeHead(200, { etag, 'content-type': 'text/csv', 'last-modified': 'Sat, 21 Nov 2026 10:00:00 GMT' }).end(content);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function setup() {
  const secretName = `it-fetch-headers-${randomUUID()}`;
  await secretsClient().send(new CreateSecretCommand({ Name: secretName, SecretString: JSON.stringify({ Authorization: `Bearer ${TOKEN}` }) }));
  const pipeline = parsePipeline({
    project: 'it_fetch',
    datasets: [
      {
        name: 'areas',
        source: { type: 'http', url: `${base}/data/areas.csv?token=${TOKEN}`, headersSecret: secretName },
        schedule: 'rate(1 day)',
        clean: { columns: [{ name: 'area' }] },
      },
      { name: 'broken', source: { type: 'http', url: `${base}/broken.csv?key=${TOKEN}` }, clean: { columns: [{ name: 'a' }] } },
      { name: 'cut', source: { type: 'http', url: `${base}/cut.csv` }, clean: { columns: [{ name: 'a' }] } },
      { name: 'page', source: { type: 'http', url: `${base}/page/areas.csv` } },
      { name: 'plain', source: { type: 'http', url: `${base}/plain/export` }, read: { format: 'xlsx' } },
    ],
  });
  const bucket = await freshBucket('it-fetch');
  const deps: FetchDeps = { s3: s3Client(), bucket, readSecret: readJsonSecret, sleep: async () => undefined };
  return { pipeline, bucket, deps };
}

async function keys(bucket: string): Promise<string[]> {
  const out = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}
async function text(bucket: string, key: string): Promise<string> {
  return await (await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
}

describe('fetch over HTTP', () => {
  it('downloads the file into raw/ with a manifest, using headers from Secrets Manager', async () => {
    const { pipeline, bucket, deps } = await setup();

    const outcome = await fetchHttp({ ...deps, now: () => new Date('2026-11-21T06:00:00Z') }, pipeline.datasets[0]!);

    expect(outcome.status).toBe('fetched');
    expect(await keys(bucket)).toEqual(['raw/areas/20261121T060000Z/_manifest.json', 'raw/areas/20261121T060000Z/areas.csv', 'state/areas/http.json']);
    expect(await text(bucket, 'raw/areas/20261121T060000Z/areas.csv')).toBe(content);
    const manifest = JSON.parse(await text(bucket, 'raw/areas/20261121T060000Z/_manifest.json'));
    expect(manifest).toMatchObject({
      contract: 1,
      dataset: 'areas',
      connector: 'http',
      run: '20261121T060000Z',
      complete: true,
      objects: [
        {
          key: 'raw/areas/20261121T060000Z/areas.csv',
          bytes: Buffer.byteLength(content),
          sha256: createHash('sha256').update(content).digest('hex'),
          // a downloaded file is the whole dataset
          declaration: { contract: 1, replaces: 'dataset', holds: 'rows', run: '20261121T060000Z', runStartedAt: '2026-11-21T06:00:00.000Z', part: 1 },
        },
      ],
      details: { etag: etagOf(content) },
      source: `${base}/data/areas.csv?token=…`,
    });
    // the declaration travels with the object itself, as its metadata
    expect(declarationFromMetadata((await s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: 'raw/areas/20261121T060000Z/areas.csv' }))).Metadata)).toEqual(manifest.objects[0].declaration);
    expect(requests.at(-1)!.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('keeps secrets out of manifests and state', async () => {
    const { pipeline, bucket, deps } = await setup();
    await fetchHttp(deps, pipeline.datasets[0]!);

    for (const key of await keys(bucket)) {
      if (key.endsWith('.json')) expect(await text(bucket, key)).not.toContain(TOKEN);
    }
  });

  it('writes nothing when the source has not changed (conditional GET)', async () => {
    const { pipeline, bucket, deps } = await setup();
    await fetchHttp(deps, pipeline.datasets[0]!);
    const before = await keys(bucket);

    const outcome = await fetchHttp(deps, pipeline.datasets[0]!);

    expect(outcome).toEqual({ status: 'unchanged', source: `${base}/data/areas.csv?token=…` });
    expect(requests.at(-1)!.ifNoneMatch).toBe(etagOf(content));
    expect(await keys(bucket)).toEqual(before);
  });

  it('fetches a new run when the source changes', async () => {
    const { pipeline, bucket, deps } = await setup();
    await fetchHttp({ ...deps, now: () => new Date('2026-11-21T06:00:00Z') }, pipeline.datasets[0]!);
    content = 'area,population\nNorth,1000\nSouth,20\n';

    const outcome = await fetchHttp({ ...deps, now: () => new Date('2026-11-22T06:00:00Z') }, pipeline.datasets[0]!);

    expect(outcome.status).toBe('fetched');
    expect(await text(bucket, 'raw/areas/20261122T060000Z/areas.csv')).toBe(content);
  });

  it('fails with the status and a redacted URL when the server errors, writing nothing', async () => {
    const { pipeline, bucket, deps } = await setup();

    const failure = fetchHttp(deps, pipeline.datasets[1]!);

    await expect(failure).rejects.toThrow(`GET ${base}/broken.csv?key=… answered 503 Service Unavailable`);
    await expect(failure).rejects.not.toThrow(TOKEN);
    // no data; the state only says nobody holds the source, and remembers no download
    expect(await keys(bucket)).toEqual(['state/broken/http.json']);
    expect(JSON.parse(await text(bucket, 'state/broken/http.json'))).toEqual({ savedAt: expect.any(String), lastRunAt: expect.any(String) });
  });

  it('fails cleanly when the download breaks off, writing no partial file and no state', async () => {
    const { pipeline, bucket, deps } = await setup();

    await expect(fetchHttp(deps, pipeline.datasets[2]!)).rejects.toThrow();

    expect(await keys(bucket)).toEqual(['state/cut/http.json']);
    expect(JSON.parse(await text(bucket, 'state/cut/http.json'))).toEqual({ savedAt: expect.any(String), lastRunAt: expect.any(String) });
  });

  it('refuses an HTML page where a data file was expected (by Content-Type, or by its first bytes): a permanent failure, nothing stored', async () => {
    const { pipeline, bucket, deps } = await setup();

    await expect(fetchHttp(deps, pipeline.datasets[3]!)).rejects.toThrow(
      new PermanentError(`GET ${base}/page/areas.csv answered an HTML page (text/html; charset=utf-8) instead of the CSV file expected: nothing stored`),
    );
    await expect(fetchHttp(deps, pipeline.datasets[4]!)).rejects.toThrow(
      new PermanentError(`GET ${base}/plain/export answered an HTML page (its first bytes) instead of the XLSX file expected: nothing stored`),
    );
    expect(classify(await fetchHttp(deps, pipeline.datasets[4]!).catch((e: unknown) => e)).kind).toBe('permanent');
    // no object, no manifest; the state remembers no download
    expect(await keys(bucket)).toEqual(['state/page/http.json', 'state/plain/http.json']);
    expect(JSON.parse(await text(bucket, 'state/plain/http.json'))).toEqual({ savedAt: expect.any(String), lastRunAt: expect.any(String) });
  });

  it('redacts credentials and query values from URLs it reports', () => {
    expect(redactUrl('https://user:pw@data.example.org/a.csv?token=abc&format=csv')).toBe('https://data.example.org/a.csv?token=…&format=…');
  });
});

describe('a password in a URL', () => {
  /** What `run` throws, with everything written to stdout and stderr meanwhile (the JSON log lines) — after logging the failure as the handlers do. */
  async function failureOf(run: () => Promise<unknown>): Promise<{ message: string; recorded: string; output: string }> {
    const written: string[] = [];
    // the tests run with the log silenced: every level on for this one
    const level = logger.getLevelName();
    logger.setLogLevel('DEBUG');
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
    try {
      await run();
    } catch (error) {
      const failure = classify(error, { file: 'areas' });
      logger.error('fetch failed', { error: messageOf(error), kind: failure.kind, message: failure.message });
      return { message: messageOf(error), recorded: failure.message, output: written.join('') };
    } finally {
      out.mockRestore();
      err.mockRestore();
      logger.setLogLevel(level);
    }
    throw new Error('expected the fetch to fail');
  }

  it('is never printed: a URL that carries one (validation refuses it; here it got past) fails naming the URL without it', async () => {
    const { pipeline, deps } = await setup();
    const dataset = pipeline.datasets.find((d) => d.name === 'cut')!;
    const smuggled = { ...dataset, source: { ...dataset.source, url: `http://bob:${PASSWORD}@${base.slice('http://'.length)}/data/areas.csv` } } as typeof dataset;

    const failed = await failureOf(() => fetchHttp(deps, smuggled));

    expect(failed.message).toBe(`GET ${base}/data/areas.csv: the URL carries a user name or password; credentials belong in a secret`);
    expect(failed.output).toContain('the URL carries a user name or password');
    for (const text of [failed.message, failed.recorded, failed.output]) expect(text).not.toContain(PASSWORD);
  });

  it('is never printed when a server redirects to a URL that carries one, and the redirect is not followed', async () => {
    const { pipeline, deps } = await setup();
    const dataset = pipeline.datasets.find((d) => d.name === 'cut')!;
    const moved = { ...dataset, source: { ...dataset.source, url: `${base}/moved.csv` } } as typeof dataset;
    const before = requests.length;

    const failed = await failureOf(() => fetchHttp(deps, moved));

    expect(failed.message).toBe(`GET ${base}/moved.csv: redirected to ${base}/data/areas.csv, a URL that carries a user name or password; credentials belong in a secret`);
    expect(requests.slice(before).map((r) => r.path)).toEqual(['/moved.csv']);
    expect(failed.output).toContain('redirected to');
    for (const text of [failed.message, failed.recorded, failed.output]) expect(text).not.toContain(PASSWORD);
  });

  it("is taken out of any error text that prints a URL (Node's fetch puts the whole URL in its own error)", async () => {
    const error = await fetch(`http://bob:${PASSWORD}@127.0.0.1:9/x`).catch((e: unknown) => e);
    expect(String((error as Error).message)).toContain(PASSWORD);

    expect(messageOf(error)).toBe('Request cannot be constructed from a URL that includes credentials: http://127.0.0.1:9/x');
    expect(messageOf(new Error(`connect to postgres://etl:${PASSWORD}@db.internal:5432/civic failed`))).toBe('connect to postgres://db.internal:5432/civic failed');
    expect(classify(new Error(`GET https://bob:p@ss:${PASSWORD}@host/a failed`)).message).toBe('GET https://host/a failed');
  });
});
