import { createHash, randomUUID } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, ListObjectVersionsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { readFile, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { logger } from '../../functions/common/logger.ts';
import { parsePipeline } from '../../contract/load.ts';
import { readJsonSecret, s3Client, secretsClient } from '../../functions/common/aws.ts';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { fetchDataset } from '../../functions/get/fetch-dataset.ts';
import { fetchCatalog, type CatalogFetchDeps, type CatalogManifest, type CatalogOutcome } from '../../functions/get/fetch-catalog.ts';
import { portalFromMetadata, type FetchManifest } from '../../contract/objects.ts';
import { stageObject, stageObjectPart } from '../../functions/stage/stage-object.ts';
import type { PartMessage } from '../../functions/stage/parts.ts';
import { searchCatalogResources } from '../../functions/profile/catalog.ts';
import { startApiServer, type ApiServer } from '../helpers/api-server.ts';
import { TestCatalog, type TestDataset } from '../helpers/catalog-server.ts';
import { scratchDir, writeXlsx } from '../helpers/spreadsheets.ts';
import { freshBucket, freshProject, rows } from './support.ts';

let api: ApiServer;
/** A second host: files a catalogue links to elsewhere. */
let elsewhere: ApiServer;
/** A loopback port nobody listens on (a server was there and closed). */
let closedPort: number;
beforeAll(async () => {
  api = await startApiServer();
  elsewhere = await startApiServer();
  const gone = await startApiServer();
  closedPort = Number(new URL(gone.base).port);
  await gone.close();
});
afterAll(async () => {
  await api.close();
  await elsewhere.close();
});

const ORG = '5a3b1c2d3e4f5a6b7c8d9e0f';
const DAY1 = new Date('2026-11-21T06:00:00Z');
const DAY2 = new Date('2026-11-22T06:00:00Z');
const DAY3 = new Date('2026-11-23T06:00:00Z');
const prefixOf = (at: Date) =>
  `raw/parks/${at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}/`;

const PARKS_CSV = 'id,name\n1,Parc Monceau\n2,Jardin du Luxembourg\n';
const PARKS_GEOJSON = '{"type":"FeatureCollection","features":[]}';
const TREES_CSV = 'id,species\n1,Platanus\n';

/** A dataset `parks` with this catalogue source. */
function parksWith(source: Record<string, unknown>) {
  return parsePipeline({ project: 'it_fetch_catalog', datasets: [{ name: 'parks', source: { type: 'catalog', ...source } }] }).datasets[0]!;
}

async function setup() {
  const bucket = await freshBucket('it-fetch-catalog');
  const deps: CatalogFetchDeps = { s3: s3Client(), bucket, readSecret: readJsonSecret, now: () => DAY1, sleep: async () => undefined };
  return { bucket, deps, at: (day: Date): CatalogFetchDeps => ({ ...deps, now: () => day }) };
}

/** Data and manifests in the bucket (not the state). */
async function keys(bucket: string): Promise<string[]> {
  const out = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'raw/' }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}
async function text(bucket: string, key: string): Promise<string> {
  return (await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
}
async function json<T = Record<string, unknown>>(bucket: string, key: string): Promise<T> {
  return JSON.parse(await text(bucket, key)) as T;
}
/** The source's saved state; a finished run has given its lease up. */
async function stateOf(bucket: string): Promise<{ watermark?: string; seen: Record<string, { sha256: string }>; retry: Record<string, { reason: string; attempts: number }> }> {
  const doc = await json<{ lease?: unknown; state: never }>(bucket, 'state/parks/catalog.json');
  expect(doc.lease).toBeUndefined();
  return doc.state;
}
const sha256 = (body: string) => createHash('sha256').update(body).digest('hex');
const manifestOf = (outcome: CatalogOutcome): CatalogManifest => {
  if (outcome.status === 'busy') throw new Error(outcome.message);
  return outcome.manifest;
};
const statusById = (outcome: CatalogOutcome) => Object.fromEntries(manifestOf(outcome).resources.map((r) => [r.id, r.status]));

/** Dataset `d1` (`slug`) of the organization, modified 2026-11-20 like each of its CSV resources (resource id → file). */
function addCsvDataset(cat: TestCatalog, slug: string, files: Record<string, string>) {
  const modified = '2026-11-20T00:00:00.000Z';
  cat.addDataset({ id: 'd1', slug, organization: ORG, tags: [], modified, resources: Object.entries(files).map(([id, file]) => ({ id, format: 'csv', file, modified })) });
}

/**
 * A udata catalogue: two datasets of the organization tagged `parcs` (CSV, GeoJSON, a PDF; and a
 * CSV whose URL carries a token), one of another organization and one without the tag.
 */
function udataCatalogue() {
  const cat = new TestCatalog(api, 'udata');
  cat.serve('parcs.csv', { body: PARKS_CSV });
  cat.serve('parcs.geojson', { body: PARKS_GEOJSON, contentType: 'application/geo+json' });
  cat.serve('notice.pdf', { body: '%PDF-1.4 notice', contentType: 'application/pdf' });
  cat.serve('arbres.csv', { body: TREES_CSV });
  cat.serve('other.csv', { body: 'id\n9\n' });
  cat.addDataset({
    id: 'd1',
    slug: 'espaces-verts',
    organization: ORG,
    tags: ['parcs'],
    modified: '2026-11-10T00:00:00.000Z',
    resources: [
      { id: 'r-csv', title: 'Parcs (CSV)', format: 'csv', file: 'parcs.csv', modified: '2026-11-10T00:00:00.000Z' },
      { id: 'r-geojson', title: 'Parcs (GeoJSON)', format: 'geojson', file: 'parcs.geojson', modified: '2026-11-09T00:00:00.000Z' },
      { id: 'r-pdf', title: 'Notice', format: 'pdf', file: 'notice.pdf', modified: '2026-11-09T00:00:00.000Z' },
    ],
  });
  cat.addDataset({
    id: 'd2',
    slug: 'arbres',
    organization: ORG,
    tags: ['parcs', 'arbres'],
    modified: '2026-11-05T00:00:00.000Z',
    resources: [{ id: 'r-trees', title: 'Arbres', format: 'CSV', file: `${cat.fileUrl('arbres.csv')}?token=s3cr3t`, modified: '2026-11-05T00:00:00.000Z' }],
  });
  cat.addDataset({
    id: 'd3',
    slug: 'ailleurs',
    organization: 'f'.repeat(24),
    tags: ['parcs'],
    modified: '2026-11-12T00:00:00.000Z',
    resources: [{ id: 'r-other', format: 'csv', file: 'other.csv', modified: '2026-11-12T00:00:00.000Z' }],
  });
  cat.addDataset({
    id: 'd4',
    slug: 'sans-tag',
    organization: ORG,
    tags: [],
    modified: '2026-11-12T00:00:00.000Z',
    resources: [{ id: 'r-untagged', format: 'csv', file: 'other.csv', modified: '2026-11-12T00:00:00.000Z' }],
  });
  const source = { api: 'udata', url: cat.url, organization: ORG, tag: 'parcs', format: ['csv', 'geojson'] };
  return { cat, source };
}

describe('fetch an open-data catalogue (udata)', () => {
  it('downloads every resource of the wanted formats in the datasets the filters select, with a manifest', async () => {
    const { cat, source } = udataCatalogue();
    const { bucket, deps } = await setup();

    const outcome = await fetchCatalog(deps, parksWith(source));

    const run = prefixOf(DAY1);
    expect(outcome.status).toBe('fetched');
    expect(await keys(bucket)).toEqual([`${run}_manifest.json`, `${run}r-csv/parcs.csv`, `${run}r-geojson/parcs.geojson`, `${run}r-trees/arbres.csv`]);
    expect(await text(bucket, `${run}r-csv/parcs.csv`)).toBe(PARKS_CSV);
    expect(await text(bucket, `${run}r-trees/arbres.csv`)).toBe(TREES_CSV);
    const listing = cat.listings[0]!.searchParams;
    expect([listing.get('organization'), listing.getAll('tag'), listing.get('sort')]).toEqual([ORG, ['parcs'], '-last_update']);
    expect(cat.hitsOf('notice.pdf')).toEqual([]);
    expect(cat.hitsOf('other.csv')).toEqual([]);

    const written = await json<FetchManifest>(bucket, `${run}_manifest.json`);
    expect(written).toMatchObject({ contract: 1, dataset: 'parks', connector: 'catalog:udata', complete: true });
    // each stored file is the whole of its resource, and replaces that resource's rows only
    expect(written.objects.map((o) => [o.key, o.declaration.replaces, o.declaration.resource]).sort()).toEqual([
      [`${run}r-csv/parcs.csv`, 'resource', 'r-csv'],
      [`${run}r-geojson/parcs.geojson`, 'resource', 'r-geojson'],
      [`${run}r-trees/arbres.csv`, 'resource', 'r-trees'],
    ]);
    const manifest = written.details as unknown as CatalogManifest;
    expect(manifest).toMatchObject({ api: 'udata', status: 'complete', fetched: 3, failed: 0, datasets: 2 });
    expect(manifest.resources.find((r) => r.id === 'r-csv')).toEqual({
      id: 'r-csv',
      title: 'Parcs (CSV)',
      catalogDataset: 'espaces-verts',
      format: 'csv',
      source: cat.fileUrl('parcs.csv'),
      status: 'fetched',
      key: `${run}r-csv/parcs.csv`,
      bytes: PARKS_CSV.length,
      sha256: sha256(PARKS_CSV),
      catalogModified: '2026-11-10T00:00:00.000Z',
      catalogChecksum: `sha1:${createHash('sha1').update(PARKS_CSV).digest('hex')}`,
      portal: {
        datasetSlug: 'espaces-verts',
        datasetId: 'd1',
        datasetTitle: 'espaces verts',
        organization: ORG,
        organizationId: ORG,
        license: 'notspecified',
        tags: ['parcs'],
        resourceId: 'r-csv',
        resourceTitle: 'Parcs (CSV)',
        format: 'csv',
        url: cat.fileUrl('parcs.csv'),
      },
    });
    expect(manifest.resources.find((r) => r.id === 'r-trees')!.source).toBe(`${cat.fileUrl('arbres.csv')}?token=…`);
    expect(JSON.stringify(manifest)).not.toContain('s3cr3t');
    expect(Object.keys((await stateOf(bucket)).seen).sort()).toEqual(['r-csv', 'r-geojson', 'r-trees']);
  });

  it('writes nothing on the next run when nothing changed: the recent datasets answer 304, older ones are not even listed', async () => {
    const { cat, source } = udataCatalogue();
    const { bucket, deps, at } = await setup();
    await fetchCatalog(deps, parksWith(source));
    const before = await keys(bucket);

    const outcome = await fetchCatalog(at(DAY2), parksWith(source));

    expect(outcome.status).toBe('unchanged');
    expect(await keys(bucket)).toEqual(before);
    expect(cat.hitsOf('parcs.csv')).toEqual([
      { file: 'parcs.csv', conditional: false, status: 200 },
      { file: 'parcs.csv', conditional: true, status: 304 },
    ]);
    // `arbres` was last modified days before the newest dataset seen: not listed again
    expect(cat.hitsOf('arbres.csv')).toHaveLength(1);
    expect((await stateOf(bucket)).watermark).toBe('2026-11-10T00:00:00.000Z');
  });

  it('with incremental: false, asks every resource again, and each answers 304', async () => {
    const { cat, source } = udataCatalogue();
    const { bucket, deps, at } = await setup();
    await fetchCatalog(deps, parksWith({ ...source, incremental: false }));

    const outcome = await fetchCatalog(at(DAY2), parksWith({ ...source, incremental: false }));

    expect(outcome.status).toBe('unchanged');
    expect(statusById(outcome)).toEqual({ 'r-csv': 'unchanged', 'r-geojson': 'unchanged', 'r-trees': 'unchanged' });
    expect(
      cat.hits
        .filter((h) => h.conditional)
        .map((h) => `${h.file} ${h.status}`)
        .sort(),
    ).toEqual(['arbres.csv 304', 'parcs.csv 304', 'parcs.geojson 304']);
    expect((await keys(bucket)).filter((k) => k.startsWith(prefixOf(DAY2)))).toEqual([]);
  });

  it('fetches a changed resource again, alone', async () => {
    const { cat, source } = udataCatalogue();
    const { bucket, deps, at } = await setup();
    await fetchCatalog(deps, parksWith(source));
    const changed = '{"type":"FeatureCollection","features":[{"type":"Feature","geometry":null,"properties":{"id":3}}]}';
    cat.change('r-geojson', changed, '2026-11-21T12:00:00.000Z');

    const outcome = await fetchCatalog(at(DAY2), parksWith(source));

    const run = prefixOf(DAY2);
    expect(outcome.status).toBe('fetched');
    expect((await keys(bucket)).filter((k) => k.startsWith(run))).toEqual([`${run}_manifest.json`, `${run}r-geojson/parcs.geojson`]);
    expect(await text(bucket, `${run}r-geojson/parcs.geojson`)).toBe(changed);
    expect(statusById(outcome)).toEqual({ 'r-csv': 'unchanged', 'r-geojson': 'fetched' });
    expect((await stateOf(bucket)).seen['r-geojson']!.sha256).toBe(sha256(changed));
  });

  it('pages through the catalogue', async () => {
    const cat = new TestCatalog(api, 'udata');
    for (let i = 1; i <= 5; i++) {
      cat.serve(`f${i}.csv`, { body: `id\n${i}\n` });
      cat.addDataset({
        id: `d${i}`,
        slug: `ds-${i}`,
        organization: ORG,
        tags: [],
        modified: `2026-11-0${i}T00:00:00.000Z`,
        resources: [{ id: `r${i}`, format: 'csv', file: `f${i}.csv`, modified: `2026-11-0${i}T00:00:00.000Z` }],
      });
    }
    const { bucket, deps } = await setup();

    const outcome = await fetchCatalog(deps, parksWith({ api: 'udata', url: `${cat.url}/api/1`, organization: ORG, pageSize: 2 }));

    expect(cat.listings.map((u) => u.searchParams.get('page'))).toEqual(['1', '2', '3']);
    expect(manifestOf(outcome)).toMatchObject({ fetched: 5, pages: 3, datasets: 5 });
    expect((await keys(bucket)).filter((k) => k.endsWith('.csv'))).toHaveLength(5);
  });

  it('fetches one named dataset', async () => {
    const { cat } = udataCatalogue();
    const { bucket, deps } = await setup();

    const outcome = await fetchCatalog(deps, parksWith({ api: 'udata', url: cat.url, dataset: 'arbres' }));

    expect(statusById(outcome)).toEqual({ 'r-trees': 'fetched' });
    expect(cat.listings.map((u) => u.pathname)).toEqual([new URL(`${cat.url}/api/1/datasets/arbres/`).pathname]);
    expect(await keys(bucket)).toEqual([`${prefixOf(DAY1)}_manifest.json`, `${prefixOf(DAY1)}r-trees/arbres.csv`]);
  });
});

describe('fetch an open-data catalogue (CKAN)', () => {
  /** Five packages of the organization `parks-dept` tagged `green`, one CSV each (format `CSV`), and one JSON resource. */
  function ckanCatalogue() {
    const cat = new TestCatalog(api, 'ckan');
    for (let i = 1; i <= 5; i++) {
      cat.serve(`p${i}.csv`, { body: `id,name\n${i},park ${i}\n` });
      cat.addDataset({
        id: `pkg-${i}`,
        slug: `parks-${i}`,
        organization: 'parks-dept',
        tags: ['green'],
        modified: `2026-11-1${i}T08:00:00.000Z`,
        resources: [{ id: `res-${i}`, title: `Parks ${i}`, format: 'CSV', file: `p${i}.csv`, modified: `2026-11-1${i}T08:00:00.000Z` }],
      });
    }
    cat.serve('meta.json', { body: '{}', contentType: 'application/json' });
    cat.datasets[0]!.resources.push({ id: 'res-json', format: 'JSON', file: 'meta.json', modified: '2026-11-11T08:00:00.000Z' });
    cat.addDataset({ id: 'pkg-x', slug: 'roads', organization: 'roads-dept', tags: ['green'], modified: '2026-11-19T00:00:00.000Z', resources: [] });
    return cat;
  }
  const ckanSource = (cat: TestCatalog) => ({ api: 'ckan', url: cat.url, organization: 'parks-dept', tag: ['green'], format: ['csv'], pageSize: 2 });

  it('searches with fq, pages with rows/start, and keeps the CSV resources', async () => {
    const cat = ckanCatalogue();
    const { bucket, deps } = await setup();

    const outcome = await fetchCatalog(deps, parksWith(ckanSource(cat)));

    expect(cat.listings.map((u) => [u.searchParams.get('fq'), u.searchParams.get('rows'), u.searchParams.get('start')])).toEqual([
      ['+organization:"parks-dept" +tags:"green"', '2', '0'],
      ['+organization:"parks-dept" +tags:"green"', '2', '2'],
      ['+organization:"parks-dept" +tags:"green"', '2', '4'],
    ]);
    expect(manifestOf(outcome)).toMatchObject({ fetched: 5, datasets: 5, pages: 3, status: 'complete' });
    expect(cat.hitsOf('meta.json')).toEqual([]);
    expect((await keys(bucket)).filter((k) => k.endsWith('.csv')).sort()).toEqual([1, 2, 3, 4, 5].map((i) => `${prefixOf(DAY1)}res-${i}/p${i}.csv`));
    expect(manifestOf(outcome).resources.find((r) => r.id === 'res-5')).toMatchObject({ catalogDataset: 'parks-5', catalogModified: '2026-11-15T08:00:00.000Z' });
  });

  it('asks only for packages modified since the last run, and fetches the changed resource alone', async () => {
    const cat = ckanCatalogue();
    const { bucket, deps, at } = await setup();
    await fetchCatalog(deps, parksWith(ckanSource(cat)));
    cat.change('res-2', 'id,name\n2,park two renamed\n', '2026-11-21T09:00:00.000Z');
    cat.listings.length = 0;

    const outcome = await fetchCatalog(at(DAY2), parksWith(ckanSource(cat)));

    // the watermark was the newest package (11-15 08:00), reached back 10 minutes
    expect(cat.listings[0]!.searchParams.get('fq')).toBe('+organization:"parks-dept" +tags:"green" +metadata_modified:[2026-11-15T07:50:00.000Z TO *]');
    expect(statusById(outcome)).toEqual({ 'res-2': 'fetched', 'res-5': 'unchanged' });
    expect((await keys(bucket)).filter((k) => k.startsWith(prefixOf(DAY2)))).toEqual([`${prefixOf(DAY2)}_manifest.json`, `${prefixOf(DAY2)}res-2/p2.csv`]);
    expect((await stateOf(bucket)).watermark).toBe('2026-11-21T09:00:00.000Z');
  });
});

describe('fetch an open-data catalogue: a file server briefly unavailable', () => {
  it('retries a download after a 503 and a 429, logs each retry with status, attempt and wait, and counts them in the run', async () => {
    const cat = new TestCatalog(api, 'udata');
    cat.serve('busy.csv', { body: PARKS_CSV, status: 503, failTimes: 1 });
    cat.serve('slow.csv', { body: TREES_CSV, status: 429, failTimes: 1, retryAfter: '3' });
    cat.addDataset({
      id: 'd-busy',
      slug: 'busy',
      organization: ORG,
      tags: [],
      modified: '2026-11-20T00:00:00.000Z',
      resources: [
        { id: 'r-busy', format: 'csv', file: 'busy.csv', modified: '2026-11-20T00:00:00.000Z' },
        { id: 'r-slow', format: 'csv', file: 'slow.csv', modified: '2026-11-20T00:00:00.000Z' },
      ],
    });
    const { bucket, deps } = await setup();
    const waits: number[] = [];
    const warn = vi.spyOn(logger, 'warn');
    let outcome: CatalogOutcome;
    let lines: { message: string; extra?: Record<string, unknown> }[];
    try {
      outcome = await fetchCatalog({ ...deps, baseDelayMs: 1000, sleep: async (ms) => void waits.push(ms) }, parksWith({ api: 'udata', url: cat.url, organization: ORG }));
      lines = warn.mock.calls.map((c) => ({ message: String(c[0]), extra: c[1] as Record<string, unknown> | undefined }));
    } finally {
      warn.mockRestore();
    }

    expect(outcome.status).toBe('fetched');
    if (outcome.status === 'busy') throw new Error('busy');
    expect(cat.hitsOf('busy.csv').map((h) => h.status)).toEqual([503, 200]);
    expect(cat.hitsOf('slow.csv').map((h) => h.status)).toEqual([429, 200]);
    expect(await text(bucket, `${prefixOf(DAY1)}r-busy/busy.csv`)).toBe(PARKS_CSV);
    expect(outcome.manifest).toMatchObject({ fetched: 2, failed: 0, http: { retries: 2, throttled: 1, serverErrors: 1, networkErrors: 0 } });
    expect(outcome.manifest.http.requests).toBe(cat.listings.length + 4);
    expect(outcome.message).toMatch(/2 retries \(1 after 429, 1 after 5xx\)/);
    const busy = lines.find((l) => l.extra?.status === 503)!;
    expect(busy.message).toMatch(new RegExp(`GET ${cat.fileUrl('busy.csv').replace(/[.?]/g, '\\$&')} got 503 Service Unavailable on attempt 1; trying again in (0\\.\\d+|1) s$`));
    expect(busy.extra).toMatchObject({ attempt: 1 });
    expect(busy.extra!.waitMs).toBeGreaterThanOrEqual(500);
    expect(busy.extra!.waitMs).toBeLessThanOrEqual(1000);
    const slow = lines.find((l) => l.extra?.status === 429)!;
    expect(slow.message).toMatch(/slow\.csv got 429 Too Many Requests on attempt 1; trying again in 3 s$/);
    expect(waits).toContain(3000);
    expect(lines.filter((l) => l.extra?.status !== undefined)).toHaveLength(2);
  });
});

describe('fetch an open-data catalogue: dead links and servers that ignore conditional GETs', () => {
  /** A recent dataset with a good file; an older one with a 404, a refused connection and an HTML page. */
  function catalogueWithDeadLinks() {
    const cat = new TestCatalog(api, 'udata');
    cat.serve('good.csv', { body: PARKS_CSV });
    cat.serve('moved.csv', { body: '', status: 404 });
    cat.serve('portal.csv', { body: '<!DOCTYPE html><html><body>Please log in</body></html>', contentType: 'text/html; charset=utf-8' });
    const recent: TestDataset = {
      id: 'd1',
      slug: 'recent',
      organization: ORG,
      tags: [],
      modified: '2026-11-20T00:00:00.000Z',
      resources: [{ id: 'r-good', format: 'csv', file: 'good.csv', modified: '2026-11-20T00:00:00.000Z' }],
    };
    const old: TestDataset = {
      id: 'd2',
      slug: 'old',
      organization: ORG,
      tags: [],
      modified: '2026-10-01T00:00:00.000Z',
      resources: [
        { id: 'r-404', format: 'csv', file: 'moved.csv', modified: '2026-10-01T00:00:00.000Z' },
        { id: 'r-refused', format: 'csv', file: `http://127.0.0.1:${closedPort}/nobody-listens.csv`, modified: '2026-10-01T00:00:00.000Z' },
        { id: 'r-html', format: 'csv', file: 'portal.csv', modified: '2026-10-01T00:00:00.000Z' },
      ],
    };
    cat.addDataset(recent);
    cat.addDataset(old);
    return { cat, source: { api: 'udata', url: cat.url, organization: ORG } };
  }

  it('reports each dead link with its id and URL, lands the others, and says the run is partial', async () => {
    const { cat, source } = catalogueWithDeadLinks();
    const { bucket, deps } = await setup();

    const outcome = await fetchCatalog(deps, parksWith(source));

    expect(outcome.status).toBe('partial');
    expect(await keys(bucket)).toEqual([`${prefixOf(DAY1)}_manifest.json`, `${prefixOf(DAY1)}r-good/good.csv`]);
    const written = await json<FetchManifest>(bucket, `${prefixOf(DAY1)}_manifest.json`);
    expect(written.complete).toBe(false);
    const manifest = written.details as unknown as CatalogManifest;
    expect(manifest).toMatchObject({ status: 'partial', fetched: 1, failed: 3 });
    const failed = Object.fromEntries(manifest.resources.filter((r) => r.status === 'failed').map((r) => [r.id, `${r.source} ${r.reason}`]));
    expect(failed).toEqual({
      'r-404': `${cat.fileUrl('moved.csv')} answered 404 Not Found`,
      'r-refused': `http://127.0.0.1:${closedPort}/nobody-listens.csv no answer: ECONNREFUSED`,
      'r-html': `${cat.fileUrl('portal.csv')} answered an HTML page (text/html; charset=utf-8) instead of a CSV file`,
    });
    expect(outcome.status === 'partial' && outcome.message).toContain(`r-404 ${cat.fileUrl('moved.csv')}: answered 404 Not Found`);
    const state = await stateOf(bucket);
    expect(Object.keys(state.seen)).toEqual(['r-good']);
    expect(Object.keys(state.retry).sort()).toEqual(['r-404', 'r-html', 'r-refused']);
  });

  it('retries dead links on the next run, even when their dataset is not listed again', async () => {
    const { cat, source } = catalogueWithDeadLinks();
    const { bucket, deps, at } = await setup();
    await fetchCatalog(deps, parksWith(source));
    cat.serve('moved.csv', { body: TREES_CSV });

    const outcome = await fetchCatalog(at(DAY2), parksWith(source));

    expect(statusById(outcome)).toEqual({ 'r-good': 'unchanged', 'r-404': 'fetched', 'r-refused': 'failed', 'r-html': 'failed' });
    expect(manifestOf(outcome).datasets).toBe(1); // only `recent` was listed: the dead links came from the state
    expect(await text(bucket, `${prefixOf(DAY2)}r-404/moved.csv`)).toBe(TREES_CSV);
    const state = await stateOf(bucket);
    expect(Object.keys(state.retry).sort()).toEqual(['r-html', 'r-refused']);
    expect(state.retry['r-refused']!.attempts).toBe(2);
  });

  it('skips a file whose bytes hash the same as last time when the server ignores the conditional GET, writing no object at all', async () => {
    const cat = new TestCatalog(api, 'udata');
    cat.serve('stubborn.csv', { body: PARKS_CSV, ignoresConditional: true });
    addCsvDataset(cat, 'stubborn', { r1: 'stubborn.csv' });
    const source = { api: 'udata', url: cat.url, organization: ORG };
    const { bucket, deps, at } = await setup();
    await fetchCatalog(deps, parksWith(source));

    const second = await fetchCatalog(at(DAY2), parksWith(source));
    cat.change('r1', `${PARKS_CSV}3,Buttes-Chaumont\n`, '2026-11-22T12:00:00.000Z');
    const third = await fetchCatalog(at(DAY3), parksWith(source));

    expect(cat.hitsOf('stubborn.csv').map((h) => `${h.conditional} ${h.status}`)).toEqual(['false 200', 'true 200', 'true 200']);
    expect(second.status).toBe('unchanged');
    expect(manifestOf(second).resources[0]!.reason).toBe('the server sent the same bytes as last time (SHA-256); nothing written');
    // not even a version hidden under a delete marker: the upload was abandoned before it completed
    const versions = await s3Client().send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefixOf(DAY2) }));
    expect([...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]).toEqual([]);
    expect(third.status).toBe('fetched');
    expect(await text(bucket, `${prefixOf(DAY3)}r1/stubborn.csv`)).toBe(`${PARKS_CSV}3,Buttes-Chaumont\n`);
  });
});

describe('fetch an open-data catalogue: runs, time and credentials', () => {
  it('lets only one of two simultaneous runs work; the other says it is busy and writes nothing', async () => {
    const { cat, source } = udataCatalogue();
    const { bucket, deps } = await setup();

    const outcomes = await Promise.all([fetchCatalog(deps, parksWith(source)), fetchCatalog(deps, parksWith(source))]);

    expect(outcomes.map((o) => o.status).sort()).toEqual(['busy', 'fetched']);
    expect(outcomes.find((o) => o.status === 'busy')!.message).toMatch(/^parks: another fetch of this catalogue source is running .*; this one did nothing$/);
    expect(cat.hitsOf('parcs.csv')).toHaveLength(1);
    expect(await keys(bucket)).toHaveLength(4);
  });

  it('stops before its time limit, remembers what it finished, and the next run fetches only the rest', async () => {
    const cat = new TestCatalog(api, 'udata');
    cat.serve('quick1.csv', { body: 'id\n1\n' });
    cat.serve('quick2.csv', { body: 'id\n2\n' });
    cat.serve('slow.csv', { body: 'id\n3\n', delayMs: 3000 });
    addCsvDataset(cat, 'mixed', { 'r-quick1': 'quick1.csv', 'r-slow': 'slow.csv', 'r-quick2': 'quick2.csv' });
    const source = { api: 'udata', url: cat.url, organization: ORG };
    const { bucket, deps, at } = await setup();

    const running = fetchCatalog({ ...deps, timeoutMs: 1500 }, parksWith(source));
    await new Promise((resolve) => setTimeout(resolve, 800));
    const midway = await json<{ lease?: unknown; state: { seen: Record<string, unknown> } }>(bucket, 'state/parks/catalog.json');
    const first = await running;
    const left = (await stateOf(bucket)) as { pending?: string[]; shortRuns?: number };
    cat.serve('slow.csv', { body: 'id\n3\n' });
    const second = await fetchCatalog(at(DAY2), parksWith(source));
    const after = (await stateOf(bucket)) as { pending?: string[]; shortRuns?: number };
    // what was not reached is remembered, asked first by the next run, and forgotten once fetched
    expect([left.pending, left.shortRuns, after.pending, after.shortRuns]).toEqual([['r-slow'], 1, undefined, 0]);
    expect(cat.hitsOf('slow.csv').length).toBeGreaterThan(0);

    // checkpointed while the slow download was still going: a run killed there would keep these
    expect([Object.keys(midway.state.seen).sort(), midway.lease !== undefined]).toEqual([['r-quick1', 'r-quick2'], true]);
    expect(first.status).toBe('partial');
    expect(statusById(first)).toEqual({ 'r-quick1': 'fetched', 'r-slow': 'not reached', 'r-quick2': 'fetched' });
    expect(manifestOf(first)).toMatchObject({ complete: false, notReached: 1, watermarkAfter: undefined });
    expect(statusById(second)).toEqual({ 'r-quick1': 'unchanged', 'r-slow': 'fetched', 'r-quick2': 'unchanged' });
    expect((await keys(bucket)).filter((k) => k.endsWith('.csv'))).toEqual([`${prefixOf(DAY1)}r-quick1/quick1.csv`, `${prefixOf(DAY1)}r-quick2/quick2.csv`, `${prefixOf(DAY2)}r-slow/slow.csv`]);
    expect((await stateOf(bucket)).watermark).toBe('2026-11-20T00:00:00.000Z');
  });

  it('asks to go on at once (checkpointed) when time ran out after some resources landed, not when none did', async () => {
    const cat = new TestCatalog(api, 'udata');
    cat.serve('fast.csv', { body: 'id\n1\n' });
    cat.serve('stuck.csv', { body: 'id\n2\n', delayMs: 3000 });
    addCsvDataset(cat, 'mixed', { 'r-fast': 'fast.csv', 'r-stuck': 'stuck.csv' });
    const dataset = parksWith({ api: 'udata', url: cat.url, organization: ORG, concurrency: 1 });
    const { deps } = await setup();

    const first = await fetchDataset({ ...deps, timeoutMs: 1500 }, dataset);
    expect(first.status).toBe('checkpointed'); // the fast one landed: the handler invokes itself to go on
    const second = await fetchDataset({ ...deps, timeoutMs: 1500 }, dataset);
    expect(second.status).toBe('partial'); // only the stuck one was left, and it did not land: no loop
  });

  it('sends the headers secret to the catalogue host only, never to files hosted elsewhere', async () => {
    const cat = new TestCatalog(api, 'udata');
    const token = `key-${randomUUID()}`;
    cat.serve('own.csv', { body: 'id\n1\n' });
    const seenElsewhere: (string | undefined)[] = [];
    elsewhere.route('/theirs.csv', ({ headers }) => {
      seenElsewhere.push(headers['x-api-key'] as string | undefined);
      return { headers: { 'content-type': 'text/csv' }, text: 'id\n2\n' };
    });
    addCsvDataset(cat, 'keyed', { 'r-own': 'own.csv', 'r-theirs': `${elsewhere.base}/theirs.csv` });
    const name = `it-catalog-${randomUUID()}`;
    await secretsClient().send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify({ 'X-Api-Key': token }) }));
    const { deps } = await setup();
    const before = api.requests.length;

    const outcome = await fetchCatalog(deps, parksWith({ api: 'udata', url: cat.url, organization: ORG, headersSecret: name }));

    expect(statusById(outcome)).toEqual({ 'r-own': 'fetched', 'r-theirs': 'fetched' });
    const ours = api.requests.slice(before).filter((r) => r.url.pathname.startsWith(new URL(cat.url).pathname));
    expect(ours.map((r) => r.headers['x-api-key'])).toEqual([token, token]);
    expect(seenElsewhere).toEqual([undefined]);
  });

  it('refuses to download more than maxResources, writing nothing', async () => {
    const { source } = udataCatalogue();
    const { bucket, deps } = await setup();

    await expect(fetchCatalog(deps, parksWith({ ...source, maxResources: 2 }))).rejects.toThrow('more than maxResources (2) resources match; narrow the filters or raise maxResources');
    expect(await keys(bucket)).toEqual([]);
  });
});

describe('fetch an open-data catalogue, then stage and clean', () => {
  it('stages a fetched CSV resource: it lands in the staging table, the catalog and the clean table', async () => {
    const cat = new TestCatalog(api, 'ckan');
    cat.serve('playgrounds.csv', { body: 'id,name,opened\n1,North Park,2021-05-01\n2,River Walk,2023-09-12\n3,Oak Square,2019-04-30\n' });
    cat.addDataset({
      id: 'pkg',
      slug: 'playgrounds',
      organization: 'parks-dept',
      tags: [],
      modified: '2026-11-20T00:00:00.000Z',
      resources: [{ id: 'res', format: 'CSV', file: 'playgrounds.csv', modified: '2026-11-20T00:00:00.000Z' }],
    });
    const { pipeline, pool } = await freshProject({
      project: 'it_fetch_catalog_e2e',
      datasets: [
        {
          name: 'parks',
          source: { type: 'catalog', api: 'ckan', url: cat.url, dataset: 'playgrounds', format: ['csv'] },
          clean: { columns: [{ name: 'id', type: 'integer' }, { name: 'name' }, { name: 'opened', type: 'date' }], key: ['id'] },
        },
      ],
    });
    const { bucket, deps } = await setup();

    const outcome = await fetchCatalog(deps, pipeline.datasets[0]!);
    const key = manifestOf(outcome).resources[0]!.key!;
    const staged = await stageObject({ pool, s3: s3Client(), pipeline, notifyClean: async () => undefined }, { bucket, key });
    if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
    const staging = await rows(pool, `SELECT count(*)::int AS n, min(_s3_key) AS k FROM it_fetch_catalog_e2e_staging.parks__${staged.loadId}`);
    const cleaned = await cleanLoad({ pool, pipeline }, staged.loadId);

    expect(key).toBe(`${prefixOf(DAY1)}res/playgrounds.csv`);
    expect(staged).toMatchObject({ dataset: 'parks', rows: 3 });
    expect(staging).toEqual([{ n: 3, k: key }]);
    expect(await rows(pool, 'SELECT dataset, object_key, row_count FROM etl.catalog WHERE load_id = $1', [staged.loadId])).toEqual([{ dataset: 'parks', object_key: key, row_count: '3' }]);
    expect(cleaned).toMatchObject({ status: 'loaded', rowsLoaded: 3 });
    expect(await rows(pool, 'SELECT id, name FROM it_fetch_catalog_e2e.parks ORDER BY id')).toEqual([
      { id: 1, name: 'North Park' },
      { id: 2, name: 'River Walk' },
      { id: 3, name: 'Oak Square' },
    ]);
  });

  it('cleans a dataset of two CSV resources into one table: a changed resource replaces only its own rows (mode replace)', async () => {
    const cat = new TestCatalog(api, 'ckan');
    cat.serve('playgrounds-2025.csv', { body: 'id,name\n1,North Park\n2,River Walk\n' });
    cat.serve('playgrounds-2026.csv', { body: 'id,name\n10,Oak Square\n11,Mill Lane\n' });
    cat.addDataset({
      id: 'pkg',
      slug: 'playgrounds',
      organization: 'parks-dept',
      tags: [],
      modified: '2026-11-20T00:00:00.000Z',
      resources: [
        { id: 'res-2025', format: 'CSV', file: 'playgrounds-2025.csv', modified: '2026-11-20T00:00:00.000Z' },
        { id: 'res-2026', format: 'CSV', file: 'playgrounds-2026.csv', modified: '2026-11-20T00:00:00.000Z' },
      ],
    });
    const { pipeline, pool } = await freshProject({
      project: 'it_fetch_catalog_parts',
      datasets: [
        {
          name: 'parks',
          source: { type: 'catalog', api: 'ckan', url: cat.url, dataset: 'playgrounds', format: ['csv'] },
          clean: { columns: [{ name: 'id', type: 'integer' }, { name: 'name' }], key: ['id'] },
        },
      ],
    });
    expect(pipeline.datasets[0]!.clean.mode ?? 'replace').toBe('replace');
    const { bucket, deps, at } = await setup();
    const stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
    const stage = async (key: string) => {
      const staged = await stageObject(stageDeps, { bucket, key });
      if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
      return staged.loadId;
    };
    const keyOf = (outcome: CatalogOutcome, id: string) => manifestOf(outcome).resources.find((r) => r.id === id)!.key!;
    const table = () => rows(pool, 'SELECT id, name FROM it_fetch_catalog_parts.parks ORDER BY id');

    // first run: both resources; the older load (2025) is cleaned after the newer one (2026) and is not superseded by it
    const first = await fetchCatalog(deps, pipeline.datasets[0]!);
    expect(keyOf(first, 'res-2025')).toBe(`${prefixOf(DAY1)}res-2025/playgrounds-2025.csv`);
    expect(keyOf(first, 'res-2026')).toBe(`${prefixOf(DAY1)}res-2026/playgrounds-2026.csv`);
    const load2025 = await stage(keyOf(first, 'res-2025'));
    const load2026 = await stage(keyOf(first, 'res-2026'));
    expect(load2025).toBeLessThan(load2026);
    expect(await cleanLoad({ pool, pipeline }, load2026)).toMatchObject({ status: 'loaded', rowsLoaded: 2 });
    expect(await cleanLoad({ pool, pipeline }, load2025)).toMatchObject({ status: 'loaded', rowsLoaded: 2 });
    expect(await table()).toEqual([
      { id: 1, name: 'North Park' },
      { id: 2, name: 'River Walk' },
      { id: 10, name: 'Oak Square' },
      { id: 11, name: 'Mill Lane' },
    ]);

    // second run: only the 2025 file changed, and only it is fetched, staged and cleaned
    cat.change('res-2025', 'id,name\n1,North Park (renovated)\n3,Canal Corner\n', '2026-11-21T09:00:00.000Z');
    const second = await fetchCatalog(at(DAY2), pipeline.datasets[0]!);
    expect(statusById(second)).toEqual({ 'res-2025': 'fetched', 'res-2026': 'unchanged' });
    expect(keyOf(second, 'res-2025')).toBe(`${prefixOf(DAY2)}res-2025/playgrounds-2025.csv`);
    const reload2025 = await stage(keyOf(second, 'res-2025'));
    expect(await cleanLoad({ pool, pipeline }, reload2025)).toMatchObject({ status: 'loaded', rowsLoaded: 2 });

    // the 2025 file's new rows replace its old ones (2 River Walk is gone); the 2026 rows stay
    expect(await rows(pool, 'SELECT id, name, _load_id::int AS load FROM it_fetch_catalog_parts.parks ORDER BY id')).toEqual([
      { id: 1, name: 'North Park (renovated)', load: reload2025 },
      { id: 3, name: 'Canal Corner', load: reload2025 },
      { id: 10, name: 'Oak Square', load: load2026 },
      { id: 11, name: 'Mill Lane', load: load2026 },
    ]);
    expect(await rows(pool, 'SELECT id::int, status FROM etl.loads WHERE project = $1 ORDER BY id', [pipeline.project])).toEqual([
      { id: load2025, status: 'loaded' },
      { id: load2026, status: 'loaded' },
      { id: reload2025, status: 'loaded' },
    ]);
  });
});

describe('open-data catalogues: the portal’s own metadata, kept and searchable', () => {
  const stageDeps = (pool: Awaited<ReturnType<typeof freshProject>>['pool'], pipeline: Awaited<ReturnType<typeof freshProject>>['pipeline']) => ({
    pool,
    s3: s3Client(),
    pipeline,
    notifyClean: async () => undefined,
  });

  it('udata: carries each resource’s dataset title, organisation, licence, tags and description with the object, into the catalog, where SQL finds it', async () => {
    const cat = new TestCatalog(api, 'udata');
    cat.serve('parcs.csv', { body: PARKS_CSV });
    cat.serve('arbres.csv', { body: TREES_CSV });
    const description = `Liste des espaces verts gérés par la Ville. ${'Données mises à jour chaque semaine. '.repeat(80)}`;
    cat.addDataset({
      id: 'd1',
      slug: 'espaces-verts',
      organization: ORG,
      organizationTitle: 'Ville de Paris',
      tags: ['parcs', 'jardins'],
      modified: '2026-11-10T00:00:00.000Z',
      title: 'Espaces verts et assimilés',
      description,
      license: { id: 'lov2', title: 'Licence Ouverte / Open Licence version 2.0' },
      resources: [{ id: 'r-parcs', title: 'Parcs et jardins (CSV)', format: 'csv', file: 'parcs.csv', modified: '2026-11-10T00:00:00.000Z' }],
    });
    cat.addDataset({
      id: 'd2',
      slug: 'arbres',
      organization: ORG,
      organizationTitle: 'Ville de Paris',
      tags: ['parcs', 'arbres'],
      modified: '2026-11-05T00:00:00.000Z',
      title: 'Les arbres d’alignement',
      description: 'Arbres plantés le long des voies.',
      license: { id: 'odc-odbl', title: 'ODbL' },
      resources: [{ id: 'r-arbres', title: 'Arbres', format: 'CSV', file: 'arbres.csv', modified: '2026-11-05T00:00:00.000Z' }],
    });
    const { pipeline, pool } = await freshProject({ project: 'it_catalog_portal', datasets: [{ name: 'parks', source: { type: 'catalog', api: 'udata', url: cat.url, organization: ORG, tag: 'parcs' } }] });
    const { bucket, deps } = await setup();

    const outcome = await fetchCatalog(deps, pipeline.datasets[0]!);
    const reports = Object.fromEntries(manifestOf(outcome).resources.map((r) => [r.id, r]));
    const manifest = await json<FetchManifest>(bucket, outcome.status === 'busy' ? '' : outcome.manifestKey!);
    const head = await s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: reports['r-parcs']!.key! }));
    const staged = [];
    for (const id of ['r-parcs', 'r-arbres']) staged.push(await stageObject(stageDeps(pool, pipeline), { bucket, key: reports[id]!.key! }));

    // in the manifest, whole
    expect(reports['r-parcs']!.portal).toEqual({
      datasetSlug: 'espaces-verts',
      datasetId: 'd1',
      datasetTitle: 'Espaces verts et assimilés',
      organization: 'Ville de Paris',
      organizationId: ORG,
      description,
      license: 'lov2',
      tags: ['parcs', 'jardins'],
      resourceId: 'r-parcs',
      resourceTitle: 'Parcs et jardins (CSV)',
      format: 'csv',
      url: cat.fileUrl('parcs.csv'),
    });
    expect((manifest.details.resources as { id: string; portal?: { datasetTitle?: string } }[]).find((r) => r.id === 'r-arbres')?.portal?.datasetTitle).toBe('Les arbres d’alignement');
    // with the object: S3 allows 2 KB of user metadata, so a long description is cut (and says so)
    const withObject = portalFromMetadata(head.Metadata)!;
    const metadataBytes = Object.entries(head.Metadata ?? {}).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    expect(metadataBytes).toBeLessThanOrEqual(2048);
    expect(withObject).toMatchObject({ datasetTitle: 'Espaces verts et assimilés', organization: 'Ville de Paris', license: 'lov2', tags: ['parcs', 'jardins'], resourceTitle: 'Parcs et jardins (CSV)' });
    expect(withObject.description!.endsWith('…')).toBe(true);
    expect(description.startsWith(withObject.description!.slice(0, -1))).toBe(true);
    expect(staged.map((s) => s.status)).toEqual(['staged', 'staged']);
    // in the catalog, found by organisation, tag, licence and title words
    const find = (where: string, params: unknown[] = []) => rows(pool, `SELECT resource_id FROM etl.catalog_resources WHERE project = 'it_catalog_portal' AND ${where} ORDER BY resource_id`, params);
    expect(await find('organization = $1', ['Ville de Paris'])).toEqual([{ resource_id: 'r-arbres' }, { resource_id: 'r-parcs' }]);
    expect(await find('$1 = ANY (tags)', ['jardins'])).toEqual([{ resource_id: 'r-parcs' }]);
    expect(await find('license = $1', ['odc-odbl'])).toEqual([{ resource_id: 'r-arbres' }]);
    expect(await find(`search @@ websearch_to_tsquery('simple', $1)`, ['espaces verts'])).toEqual([{ resource_id: 'r-parcs' }]);
    expect(await find(`search @@ websearch_to_tsquery('simple', $1)`, ['voies plantés'])).toEqual([{ resource_id: 'r-arbres' }]);
    expect(await rows(pool, `SELECT dataset_title, format, row_count FROM etl.catalog_resources WHERE project = 'it_catalog_portal' AND resource_id = 'r-parcs'`)).toEqual([
      { dataset_title: 'Espaces verts et assimilés', format: 'csv', row_count: String(PARKS_CSV.trim().split('\n').length - 1) },
    ]);
    // the same from the library function and the command line
    const ids = (found: { resourceId: string | null }[]) => found.map((r) => r.resourceId).sort();
    expect(ids(await searchCatalogResources(pool, { project: 'it_catalog_portal', organization: ORG }))).toEqual(['r-arbres', 'r-parcs']);
    expect(ids(await searchCatalogResources(pool, { project: 'it_catalog_portal', words: 'parcs -jardins' }))).toEqual(['r-arbres']);
    expect(ids(await searchCatalogResources(pool, { project: 'it_catalog_portal', tag: 'parcs', license: 'lov2' }))).toEqual(['r-parcs']);
    const dir = await scratchDir('catalog-cli-');
    try {
      await writeFile(
        dir.path('pipeline.yaml'),
        JSON.stringify({ project: 'it_catalog_portal', datasets: [{ name: 'parks', source: { type: 'catalog', api: 'udata', url: cat.url, organization: ORG, tag: 'parcs' } }] }),
      );
      const cli = spawnSync(process.execPath, ['bin/civic-etl.mjs', 'catalog', 'espaces', 'verts', '--pipeline', dir.path('pipeline.yaml'), '--json'], {
        encoding: 'utf8',
        env: { ...process.env, NODE_NO_WARNINGS: '1' },
        timeout: 120_000,
      });
      expect(cli.stderr).toBe('');
      expect((JSON.parse(cli.stdout) as { resourceId: string; organization: string; tags: string[] }[]).map((r) => [r.resourceId, r.organization, r.tags])).toEqual([
        ['r-parcs', 'Ville de Paris', ['parcs', 'jardins']],
      ]);
      const words = spawnSync(process.execPath, ['bin/civic-etl.mjs', 'catalog', '--tag', 'arbres', '--pipeline', dir.path('pipeline.yaml')], {
        encoding: 'utf8',
        env: { ...process.env, NODE_NO_WARNINGS: '1' },
        timeout: 120_000,
      });
      expect(words.stdout).toContain('Les arbres d’alignement · Arbres (csv) · Ville de Paris · odc-odbl');
      expect(words.stdout).not.toContain('Espaces verts');
      // `catalog search WORDS` is the same search
      const search = spawnSync(process.execPath, ['bin/civic-etl.mjs', 'catalog', 'search', 'espaces', 'verts', '--pipeline', dir.path('pipeline.yaml'), '--json'], {
        encoding: 'utf8',
        env: { ...process.env, NODE_NO_WARNINGS: '1' },
        timeout: 120_000,
      });
      expect(search.status).toBe(0);
      expect(JSON.parse(search.stdout)).toEqual(JSON.parse(cli.stdout));
    } finally {
      await dir.remove();
    }
  });

  it('a portal that describes a resource anew (title, licence, tags) without changing its file: stored again with the new description, which the catalog then finds', async () => {
    const cat = new TestCatalog(api, 'udata');
    cat.serve('parcs.csv', { body: PARKS_CSV });
    const dataset = cat.addDataset({
      id: 'd1',
      slug: 'espaces-verts',
      organization: ORG,
      organizationTitle: 'Ville de Paris',
      tags: ['parcs'],
      modified: '2026-11-10T00:00:00.000Z',
      title: 'Espaces verts',
      description: 'Parcs.',
      license: { id: 'notspecified', title: 'Non spécifiée' },
      resources: [{ id: 'r-parcs', title: 'Parcs (CSV)', format: 'csv', file: 'parcs.csv', modified: '2026-11-10T00:00:00.000Z' }],
    });
    const { pipeline, pool } = await freshProject({
      project: 'it_catalog_redescribed',
      datasets: [{ name: 'parks', source: { type: 'catalog', api: 'udata', url: cat.url, organization: ORG, tag: 'parcs' } }],
    });
    const { bucket, deps } = await setup();
    const fetchOnce = async () => {
      const outcome = await fetchCatalog(deps, pipeline.datasets[0]!);
      return manifestOf(outcome).resources.find((r) => r.id === 'r-parcs')!;
    };
    const bytesOf = async (key: string) => Buffer.from(await (await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());
    const titleFound = async (words: string) => (await searchCatalogResources(pool, { project: 'it_catalog_redescribed', words })).map((r) => [r.resourceId, r.loadId]);

    const first = await fetchOnce();
    expect(first.status).toBe('fetched');
    const firstLoad = await stageObject(stageDeps(pool, pipeline), { bucket, key: first.key! });
    expect(firstLoad.status).toBe('staged');
    // nothing changed: nothing stored
    expect(await fetchOnce()).toMatchObject({ status: 'unchanged' });

    // the portal retitles the dataset, changes its licence and tags; the file stays byte for byte the same
    Object.assign(dataset, { title: 'Jardins publics de la ville', license: { id: 'lov2', title: 'Licence Ouverte' }, tags: ['parcs', 'jardins'], modified: '2026-11-20T00:00:00.000Z' });
    const third = await fetchOnce();
    expect(third.status).toBe('fetched');
    expect(third.reason).toMatch(/same bytes, described anew/);
    // a new object version (this test's clock stands still, so the run folder and key are the first run's)
    const versions = await s3Client().send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'raw/parks/' }));
    expect((versions.Versions ?? []).filter((v) => v.Key!.includes('/r-parcs/'))).toHaveLength(2);
    expect((await bytesOf(third.key!)).equals(Buffer.from(PARKS_CSV))).toBe(true);
    expect(third.sha256).toBe(createHash('sha256').update(PARKS_CSV).digest('hex'));
    const head = await s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: third.key! }));
    expect(portalFromMetadata(head.Metadata)).toMatchObject({ datasetTitle: 'Jardins publics de la ville', license: 'lov2', tags: ['parcs', 'jardins'] });
    const again = await stageObject(stageDeps(pool, pipeline), { bucket, key: third.key! });
    expect(again.status).toBe('staged');
    const newLoad = (again as { loadId: number }).loadId;
    expect(await titleFound('jardins publics')).toEqual([['r-parcs', newLoad]]);
    // and it is not stored a third time while the description stays as it is
    expect(await fetchOnce()).toMatchObject({ status: 'unchanged' });
  });

  it('CKAN: keeps the package title, organisation title, licence title and tags, and a workbook resource is read from the sheet its rule names', async () => {
    const dir = await scratchDir('catalog-sheets-');
    try {
      // the first sheet holds a small table of its own: without a rule, staging would read it
      await writeXlsx(dir.path('counts.xlsx'), (wb) => {
        wb.addWorksheet('Summary').addRows([
          ['total', 'year'],
          ['3', '2026'],
        ]);
        wb.addWorksheet('Data').addRows([
          ['site', 'visitors'],
          ['North Park', '120'],
          ['River Walk', '75'],
          ['Oak Square', '33'],
        ]);
      });
      const workbook = await readFile(dir.path('counts.xlsx'));
      const cat = new TestCatalog(api, 'ckan');
      cat.serve('counts.xlsx', { body: workbook, contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' });
      cat.serve('sites.csv', { body: 'site;visitors\nNorth Park;120\n' });
      cat.addDataset({
        id: 'pkg-visits',
        slug: 'park-visits',
        organization: 'parks-dept',
        organizationTitle: 'Parks Department',
        tags: ['parks', 'visitors'],
        modified: '2026-11-20T00:00:00.000Z',
        title: 'Park visitor counts',
        description: 'Counts of visitors per park.',
        license: { id: 'cc-by', title: 'Creative Commons Attribution' },
        resources: [
          { id: 'res-xlsx', title: 'Visitor counts workbook', format: 'XLSX', file: 'counts.xlsx', modified: '2026-11-20T00:00:00.000Z' },
          { id: 'res-csv', title: 'Sites', format: 'CSV', file: 'sites.csv', modified: '2026-11-20T00:00:00.000Z' },
        ],
      });
      const source = { type: 'catalog' as const, api: 'ckan' as const, url: cat.url, dataset: 'park-visits' };
      const rules = [
        { match: { format: 'xlsx', title: 'counts' }, read: { sheet: 'Data' } },
        { match: { id: 'res-csv' }, read: { delimiter: ';' as const } },
      ];
      const { pipeline, pool } = await freshProject({ project: 'it_catalog_read', datasets: [{ name: 'visits', source: { ...source, resources: rules } }] });
      const plain = await freshProject({ project: 'it_catalog_read_plain', datasets: [{ name: 'visits', source }] });
      const { bucket, deps } = await setup();

      const outcome = await fetchCatalog(deps, pipeline.datasets[0]!);
      const keyOf = (id: string) => manifestOf(outcome).resources.find((r) => r.id === id)!.key!;
      const sheet = await stageObject(stageDeps(pool, pipeline), { bucket, key: keyOf('res-xlsx') });
      const csv = await stageObject(stageDeps(pool, pipeline), { bucket, key: keyOf('res-csv') });
      // the same catalogue fetched by a source without rules, into a bucket of its own
      const other = await setup();
      const plainKey = manifestOf(await fetchCatalog(other.deps, plain.pipeline.datasets[0]!)).resources.find((r) => r.id === 'res-xlsx')!.key!;
      const withoutRule = await stageObject(stageDeps(plain.pool, plain.pipeline), { bucket: other.bucket, key: plainKey });
      if (sheet.status !== 'staged' || csv.status !== 'staged' || withoutRule.status !== 'staged') throw new Error(`not staged: ${JSON.stringify([sheet, csv, withoutRule])}`);

      expect(sheet.rows).toBe(3);
      expect(await rows(pool, `SELECT site, visitors FROM it_catalog_read_staging.visits__${sheet.loadId} ORDER BY _source_line`)).toEqual([
        { site: 'North Park', visitors: '120' },
        { site: 'River Walk', visitors: '75' },
        { site: 'Oak Square', visitors: '33' },
      ]);
      expect(withoutRule.rows).toBe(1);
      expect(await rows(pool, `SELECT column_names FROM etl.catalog WHERE load_id = $1`, [csv.loadId])).toEqual([{ column_names: 'site visitors' }]);
      expect(await rows(pool, `SELECT dataset_title, organization, organization_id, license, tags, resource_title, format FROM etl.catalog_resources WHERE load_id = $1`, [sheet.loadId])).toEqual([
        {
          dataset_title: 'Park visitor counts',
          organization: 'Parks Department',
          organization_id: 'parks-dept',
          license: 'Creative Commons Attribution',
          tags: ['parks', 'visitors'],
          resource_title: 'Visitor counts workbook',
          format: 'xlsx',
        },
      ]);
    } finally {
      await dir.remove();
    }
  });
  it('a large CSV resource staged in parts is read with its rule’s delimiter, and its portal metadata reaches the catalog', async () => {
    const lines = Array.from({ length: 60 }, (_, i) => `Site ${i + 1};${(i * 37) % 500}`);
    const cat = new TestCatalog(api, 'ckan');
    cat.serve('visits.csv', { body: `site;visitors\n${lines.join('\n')}\n` });
    cat.addDataset({
      id: 'pkg-big',
      slug: 'daily-visits',
      organization: 'parks-dept',
      organizationTitle: 'Parks Department',
      tags: ['visitors'],
      modified: '2026-11-20T00:00:00.000Z',
      title: 'Daily park visits',
      resources: [{ id: 'res-big', title: 'Visits', format: 'CSV', file: 'visits.csv', modified: '2026-11-20T00:00:00.000Z' }],
    });
    const { pipeline, pool } = await freshProject({
      project: 'it_catalog_parts',
      datasets: [{ name: 'visits', source: { type: 'catalog', api: 'ckan', url: cat.url, dataset: 'daily-visits', resources: [{ match: { title: 'visits' }, read: { delimiter: ';' } }] } }],
    });
    const { bucket, deps } = await setup();
    const key = manifestOf(await fetchCatalog(deps, pipeline.datasets[0]!)).resources[0]!.key!;
    const sent: PartMessage[] = [];
    const partDeps = { ...stageDeps(pool, pipeline), enqueueParts: async (m: PartMessage[]) => void sent.push(...m), partBytes: 300 };
    const split = await stageObject(partDeps, { bucket, key });
    for (const m of sent) await stageObjectPart(partDeps, m);

    expect(split).toMatchObject({ status: 'split' });
    expect(sent.length).toBeGreaterThan(1);
    const loadId = (split as { loadId: number }).loadId;
    expect(await rows(pool, `SELECT count(*)::int AS n, count(DISTINCT site)::int AS sites FROM it_catalog_parts_staging.visits__${loadId}`)).toEqual([{ n: lines.length, sites: lines.length }]);
    expect(await rows(pool, 'SELECT column_names, dataset_title, organization FROM etl.catalog_resources WHERE load_id = $1', [loadId])).toEqual([
      { column_names: 'site visitors', dataset_title: 'Daily park visits', organization: 'Parks Department' },
    ]);
  });
});
