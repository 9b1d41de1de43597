/**
 * An open-data catalogue for the tests, served by the loopback API server (api-server.ts): the
 * udata API (`/api/1/datasets/…`) or the CKAN action API (`/api/3/action/package_search`,
 * `package_show`), and the resource files themselves with ETag / Last-Modified / 304.
 */
import { createHash } from 'node:crypto';
import type { ApiAnswer, ApiRequest, ApiServer } from './api-server.ts';

export interface TestFile {
  body: string | Buffer;
  contentType?: string;
  /** Answer this status (and a small page) instead of the file. */
  status?: number;
  /** Answer `status` only to this many requests, then the file (a server briefly unavailable). */
  failTimes?: number;
  /** With `failTimes`: the `Retry-After` header sent with the failures. */
  retryAfter?: string;
  /** Always 200 with the body, whatever the request's If-None-Match / If-Modified-Since: a server that ignores conditional GETs. */
  ignoresConditional?: boolean;
  /** Wait this long before answering. */
  delayMs?: number;
  lastModified?: string;
}

export interface TestResource {
  id: string;
  title?: string;
  /** As the catalogue writes it (`csv`, `CSV`, `GeoJSON`). */
  format: string;
  /** A file served by this catalogue (`data.csv`) or a full URL elsewhere. */
  file: string;
  /** ISO 8601. */
  modified: string;
}

export interface TestDataset {
  id: string;
  slug: string;
  /** udata: the organization id; CKAN: its name. */
  organization: string;
  tags: string[];
  modified: string;
  resources: TestResource[];
  /** The portal's own words: its title (default the slug with spaces), description, licence, and the organisation's display name. */
  title?: string;
  description?: string;
  /** udata: the licence id (`lov2`); CKAN: `license_id`, with `license_title` alongside. */
  license?: { id: string; title: string };
  organizationTitle?: string;
}

/** One request for a file, with the status it got. */
export interface FileHit {
  file: string;
  conditional: boolean;
  status: number;
}

let catalogues = 0;

export class TestCatalog {
  readonly datasets: TestDataset[] = [];
  readonly files = new Map<string, TestFile>();
  readonly hits: FileHit[] = [];
  /** Listing requests (udata `datasets/`, CKAN `package_search` / `package_show`), with their query. */
  readonly listings: URL[] = [];
  /** Where this catalogue lives on the server: `http://127.0.0.1:<port>/<flavour>-<n>`. */
  readonly url: string;
  private readonly prefix: string;

  constructor(
    private readonly api: ApiServer,
    readonly flavour: 'udata' | 'ckan',
  ) {
    this.prefix = `/${flavour}-${++catalogues}`;
    this.url = `${api.base}${this.prefix}`;
    if (flavour === 'udata') {
      api.route(`${this.prefix}/api/1/datasets/`, (req) => this.udataSearch(req));
    } else {
      api.route(`${this.prefix}/api/3/action/package_search`, (req) => this.ckanSearch(req));
      api.route(`${this.prefix}/api/3/action/package_show`, (req) => {
        this.listings.push(req.url);
        const d = this.datasets.find((x) => x.id === req.url.searchParams.get('id') || x.slug === req.url.searchParams.get('id'));
        return d ? { json: { success: true, result: this.ckanPackage(d) } } : { status: 404, json: { success: false, error: { message: 'Not found' } } };
      });
    }
  }

  /** The URL of a file served here. */
  fileUrl(file: string): string {
    return `${this.url}/files/${file}`;
  }

  addDataset(dataset: TestDataset): TestDataset {
    this.datasets.push(dataset);
    if (this.flavour === 'udata') {
      this.api.route(`${this.prefix}/api/1/datasets/${dataset.slug}/`, (req) => {
        this.listings.push(req.url);
        return { json: this.udataDataset(dataset) };
      });
    }
    return dataset;
  }

  serve(file: string, content: TestFile): void {
    this.files.set(file, content);
    this.api.route(`${this.prefix}/files/${file}`, (req) => this.answerFile(file, req));
  }

  /** Change a file's bytes and say so in the catalogue: the resource and its dataset are modified at `at`. */
  change(resourceId: string, body: string, at: string): void {
    const dataset = this.datasets.find((d) => d.resources.some((r) => r.id === resourceId))!;
    const resource = dataset.resources.find((r) => r.id === resourceId)!;
    resource.modified = at;
    dataset.modified = at;
    this.files.set(resource.file, { ...this.files.get(resource.file)!, body, lastModified: new Date(at).toUTCString() });
  }

  hitsOf(file: string): FileHit[] {
    return this.hits.filter((h) => h.file === file);
  }

  private async answerFile(file: string, req: ApiRequest): Promise<ApiAnswer> {
    const f = this.files.get(file)!;
    const conditional = req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined;
    if (f.delayMs) await new Promise((resolve) => setTimeout(resolve, f.delayMs));
    const hit = (status: number) => void this.hits.push({ file, conditional, status });
    if (f.status && (f.failTimes === undefined || f.failTimes > 0)) {
      if (f.failTimes !== undefined) f.failTimes--;
      hit(f.status);
      return { status: f.status, headers: { 'content-type': 'text/plain', ...(f.retryAfter ? { 'retry-after': f.retryAfter } : {}) }, text: 'gone' };
    }
    const contentType = f.contentType ?? 'text/csv';
    const etag = `"${createHash('sha1').update(f.body).digest('hex').slice(0, 16)}"`;
    const lastModified = f.lastModified ?? 'Sun, 01 Nov 2026 00:00:00 GMT';
    if (f.ignoresConditional) {
      hit(200);
      return { status: 200, headers: { 'content-type': contentType, etag, 'last-modified': lastModified }, text: f.body };
    }
    const since = req.headers['if-modified-since'] as string | undefined;
    const match = req.headers['if-none-match'];
    if (match !== undefined ? match === etag : since !== undefined && Date.parse(since) >= Date.parse(lastModified)) {
      hit(304);
      return { status: 304, headers: { etag, 'last-modified': lastModified } };
    }
    hit(200);
    return { status: 200, headers: { 'content-type': contentType, etag, 'last-modified': lastModified }, text: f.body };
  }

  private resourceUrl(r: TestResource): string {
    return /^https?:/.test(r.file) ? r.file : this.fileUrl(r.file);
  }

  // udata: /api/1/datasets/?organization=&tag=&q=&sort=-last_update&page=&page_size=
  private udataSearch(req: ApiRequest) {
    this.listings.push(req.url);
    const q = req.url.searchParams;
    const tags = q.getAll('tag');
    let found = this.datasets.filter((d) => (!q.get('organization') || d.organization === q.get('organization')) && tags.every((t) => d.tags.includes(t)) && (!q.get('q') || d.slug.includes(q.get('q')!)));
    if (q.get('sort') === '-last_update') found = [...found].sort((a, b) => b.modified.localeCompare(a.modified));
    const page = Number(q.get('page') ?? 1);
    const size = Number(q.get('page_size') ?? 20);
    const data = found.slice((page - 1) * size, page * size);
    let nextPage: string | null = null;
    if (page * size < found.length) {
      const next = new URL(req.url.href.replace('http://127.0.0.1', this.api.base));
      next.searchParams.set('page', String(page + 1));
      nextPage = next.href;
    }
    return { json: { data: data.map((d) => this.udataDataset(d)), page, page_size: size, total: found.length, next_page: nextPage, previous_page: null } };
  }

  private udataDataset(d: TestDataset) {
    return {
      id: d.id,
      slug: d.slug,
      title: d.title ?? d.slug.replace(/-/g, ' '),
      description: d.description ?? '',
      license: d.license?.id ?? 'notspecified',
      organization: { id: d.organization, name: d.organizationTitle ?? d.organization, slug: (d.organizationTitle ?? d.organization).toLowerCase().replace(/\W+/g, '-'), class: 'Organization' },
      owner: null,
      frequency: 'unknown',
      tags: d.tags,
      last_update: d.modified,
      last_modified: d.modified,
      resources: d.resources.map((r) => ({
        id: r.id,
        title: r.title ?? r.id,
        url: this.resourceUrl(r),
        format: r.format,
        last_modified: r.modified,
        filesize: this.files.get(r.file)?.body.length ?? null,
        checksum: this.files.has(r.file) ? { type: 'sha1', value: createHash('sha1').update(this.files.get(r.file)!.body).digest('hex') } : null,
        type: 'main',
      })),
    };
  }

  // CKAN: /api/3/action/package_search?q=&fq=+organization:"…" +tags:"…" +metadata_modified:[… TO *]&sort=&rows=&start=
  private ckanSearch(req: ApiRequest) {
    this.listings.push(req.url);
    const q = req.url.searchParams;
    const fq = q.get('fq') ?? '';
    const org = /organization:"([^"]*)"/.exec(fq)?.[1];
    const tags = [...fq.matchAll(/tags:"([^"]*)"/g)].map((m) => m[1]!);
    const since = /metadata_modified:\[(\S+) TO \*\]/.exec(fq)?.[1];
    let found = this.datasets.filter((d) => (!org || d.organization === org) && tags.every((t) => d.tags.includes(t)) && (!since || Date.parse(d.modified) >= Date.parse(since)));
    if (q.get('sort') === 'metadata_modified desc') found = [...found].sort((a, b) => b.modified.localeCompare(a.modified));
    const rows = Number(q.get('rows') ?? 10);
    const start = Number(q.get('start') ?? 0);
    return { json: { success: true, result: { count: found.length, results: found.slice(start, start + rows).map((d) => this.ckanPackage(d)) } } };
  }

  private ckanPackage(d: TestDataset) {
    /** CKAN writes UTC times without a zone. */
    const naive = (iso: string) => iso.replace(/Z$/, '');
    return {
      id: d.id,
      name: d.slug,
      title: d.title ?? d.slug.replace(/-/g, ' '),
      notes: d.description ?? null,
      license_id: d.license?.id ?? 'notspecified',
      license_title: d.license?.title ?? 'License not specified',
      metadata_modified: naive(d.modified),
      organization: { id: `org-${d.organization}`, name: d.organization, title: d.organizationTitle ?? d.organization, type: 'organization' },
      tags: d.tags.map((name) => ({ display_name: name, id: `tag-${name}`, name, state: 'active', vocabulary_id: null })),
      num_resources: d.resources.length,
      resources: d.resources.map((r) => ({
        id: r.id,
        name: r.title ?? r.id,
        description: '',
        package_id: d.id,
        url: this.resourceUrl(r),
        format: r.format,
        last_modified: naive(r.modified),
        metadata_modified: naive(r.modified),
        hash: '',
        size: this.files.get(r.file)?.body.length ?? null,
      })),
    };
  }
}
