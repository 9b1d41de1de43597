/**
 * The Ed-Fi preset (`edfi:` in the pipeline): every resource of one ODS / API in one run.
 *
 * - Auth: OAuth2 client credentials at `<url>/oauth/token` with the `{key, secret}` secret.
 * - Paths: `<url>/data/v3[/<schoolYear>]/<namespace>/<resource>?offset=&limit=`, the school year
 *   only for `yearSpecific` instances (one ODS per year; each record gets `odsSchoolYear`).
 * - Paging: by cursor where the ODS offers it (ODS / API 7.3+): `<resource>/partitions?number=`
 *   gives page tokens, each read with `pageToken=&pageSize=` and then the answer's
 *   `Next-Page-Token` header; up to `concurrency` partitions of a resource are read at once. An
 *   ODS whose `partitions` answers 404/400/405 pages by offset. Deletes and key changes are always
 *   paged by offset.
 * - Change queries: `<url>/changeQueries/v1[/<schoolYear>]/availableChangeVersions` gives the
 *   newest change version; each resource is asked for `minChangeVersion` (one past what the last
 *   run got) to `maxChangeVersion` (that newest version, fixed for the whole run so paging sees a
 *   stable set). The first run, or one whose last version the ODS no longer keeps, gets everything
 *   up to the newest version.
 * - Incremental runs also read, in the same window and paged by offset, `<resource>/keyChanges`
 *   (ODS / API 5.3+ and 6.1+; option `keyChanges`) and `<resource>/deletes` (option `deletes`).
 *   A key change item is `{id, changeVersion, oldKeyValues, newKeyValues}`, the key values being
 *   the natural key's fields under their own last name (`studentUniqueId`, `schoolId`,
 *   `entryDate` for a studentSchoolAssociation: the ODS / API's OpenAPI model
 *   `TrackedChanges_EdFi_StudentSchoolAssociationKeyChange`, its "Using the Changed Record
 *   Queries" guide). The record keeps its `id` and gets a new change version, so it is among the
 *   window's records too. An ODS that answers 404 for either list is warned about once per
 *   resource, not failed.
 * - `concurrency` requests in flight at once across all resources (pages of one resource are asked
 *   for ahead and written in order).
 * - Output: per resource (dataset), gzip NDJSON parts `raw/<dataset>/<run>/[<year>-]part-00001.ndjson.gz`
 *   and `_manifest.json` (records, parts with checksums, change versions, complete or not).
 * - State (`state/_edfi/<api>.json`, under a lease): the change version each resource was fetched
 *   through, and — for a run that ran out of time or failed — a checkpoint of every finished part.
 *   The next invocation (the handler starts one at once) continues from the checkpoint rather than
 *   starting over; versions advance only when every resource is complete.
 */
import { edfiResources, type DatasetDefinition, type EdfiApiDefinition, type PipelineDefinition } from '../../contract/definition.ts';
import { ZONES } from '../../contract/names.ts';
import type { ObjectDeclaration } from '../../contract/objects.ts';
import { PermanentError } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import { redactUrl } from '../common/urls.ts';
import { checkRecords } from './fetch-rest.ts';
import { describeHttpStats, httpStatusOf, HttpClient, type HttpStats, type RetryOptions } from './http-client.ts';
import { clientCredentials } from './rest-auth.ts';
import { manifestObject, RecordSink, writeManifest } from './sink.ts';
import { beginRun, busyMessage, runStamp, withLease, type StateLease } from './state.ts';
import type { FetcherDeps } from './deps.ts';

export interface EdfiFetchDeps extends FetcherDeps, RetryOptions {
  /** Time kept for finishing parts and saving the checkpoint (default 60 s, at most a third of timeoutMs). */
  marginMs?: number;
}

export interface EdfiResourceResult {
  dataset: string;
  resource: string;
  schoolYear?: number;
  status: 'fetched' | 'unchanged' | 'incomplete';
  records: number;
  /** Ids the ODS reported deleted in the change window (`deletes-*.ndjson.gz` parts: the clean step deletes them). */
  deleted: number;
  /** Records whose natural key changed in the change window (`keychanges-*.ndjson.gz` parts, applied before the records). */
  keyChanges: number;
  /** Every part written: key changes, records and deletes. */
  parts: string[];
  minChangeVersion?: number;
  maxChangeVersion?: number;
  /** Why everything was fetched again (the ODS no longer has the changes since the last run). */
  note?: string;
  /** What went less than fully (the ODS does not serve `<resource>/deletes` or `/keyChanges`): also logged, once per run. */
  warnings?: string[];
}

export type EdfiOutcome =
  | {
      /** `checkpointed`: time ran out; the next invocation continues this run. */
      status: 'fetched' | 'empty' | 'checkpointed';
      api: string;
      run: string;
      records: number;
      results: EdfiResourceResult[];
      /** Requests, retries (429, 5xx, network) and token renewals of the run, over all its invocations. */
      http: HttpStats;
      message: string;
    }
  | { status: 'busy'; api: string; message: string };

interface PartInfo {
  key: string;
  records: number;
  bytes: number;
  sha256: string;
  /** Its number in its list (`part-00003`: 3), when parts may finish out of order (partitions read in parallel); else its place in `parts`. */
  n?: number;
}

/** A part's number in its list: its own, or its place. */
const partNumber = (part: PartInfo, i: number) => part.n ?? i + 1;

/** How far a run has got through one list (the records, the key changes or the deletes) of one resource. */
interface PhaseProgress {
  /** Offset of the first record not yet in a finished part. */
  offset: number;
  records: number;
  parts: PartInfo[];
  done: boolean;
  /**
   * Cursor paging (ODS / API 7.3+): the page tokens still to ask for, as of the last finished part
   * (one per partition not yet read, the partition being read at its next page). Absent: offset paging.
   */
  pageTokens?: string[];
}

/** One resource of one school year. */
interface JobProgress extends PhaseProgress {
  min?: number;
  max?: number;
  note?: string;
  /** The ids deleted in the change window (`<resource>/deletes`), for incremental runs. */
  deletes?: PhaseProgress & { missing?: string };
  /** The key changes of the change window (`<resource>/keyChanges`), for incremental runs. */
  keyChanges?: PhaseProgress & { missing?: string };
}

/** The change lists an incremental run reads besides the records: where, the part files' name, what they hold. */
const CHANGE_LISTS = {
  deletes: { suffix: '/deletes', file: 'deletes', option: 'deletes', holds: 'deletions', lost: 'records deleted there stay in the clean table' },
  keyChanges: {
    suffix: '/keyChanges',
    file: 'keychanges',
    option: 'keyChanges',
    holds: 'keyChanges',
    lost: 'a record whose natural key changed there may stay in a table keyed by that natural key under its old key too',
  },
} as const;
type ChangeList = keyof typeof CHANGE_LISTS;
/** What a part holds: records, or one of the change lists. */
type PartKind = 'rows' | ChangeList;

/** Records of a job's change lists (deletes and key changes). */
const changeRecords = (p: JobProgress) => (p.deletes?.records ?? 0) + (p.keyChanges?.records ?? 0);

interface EdfiState {
  /** `<year|shared>/<resource>` → the change version fetched through. */
  versions: Record<string, number>;
  checkpoint?: {
    run: string;
    startedAt: string;
    newest: Record<string, number>;
    jobs: Record<string, JobProgress>;
    /** Requests, retries and renewals of the run's earlier invocations. */
    http?: HttpStats;
    /**
     * How the run numbers its parts: 2, key changes first (declaration()). Absent: a run begun by
     * a version before key changes were read, whose parts already stored keep that numbering.
     */
    layout?: 2;
  };
}

export const edfiStateKey = (api: string) => `${ZONES.state}_edfi/${api}.json`;

/** Fetch the resources of Ed-Fi API `apiName` (all of them, or the datasets in `only`). */
export async function fetchEdfi(deps: EdfiFetchDeps, pipeline: PipelineDefinition, apiName: string, only?: readonly string[]): Promise<EdfiOutcome> {
  const api = pipeline.edfi.find((a) => a.name === apiName);
  if (!api) throw new PermanentError(`unknown Ed-Fi API "${apiName}" in project ${pipeline.project} (APIs: ${pipeline.edfi.map((a) => a.name).join(', ') || 'none'})`);
  const resources = edfiResources(pipeline, api.name).filter((r) => !only || only.includes(r.dataset.name));
  if (resources.length === 0) throw new PermanentError(`Ed-Fi API "${api.name}" has no resources to fetch (list them under edfi → resources)`);
  const { clock, taken } = await beginRun<EdfiState>(deps, edfiStateKey(api.name));
  const { now, timeoutMs } = clock;
  if (taken.status === 'busy') return { status: 'busy', api: api.name, message: busyMessage(`Ed-Fi API ${api.name}`, taken) };
  return withLease(taken.lease, () => new EdfiRun(deps, api, resources, taken.lease, now, timeoutMs, clock.started).run());
}

class EdfiRun {
  private readonly state: EdfiState;
  private readonly runId: string;
  private readonly startedAt: string;
  private readonly deadline: number;
  private readonly http: HttpClient;
  private readonly limiter: Limiter;
  private readonly jobs = new Map<string, Job>();
  private saving: Promise<void> = Promise.resolve();
  private readonly signal: AbortSignal;
  private readonly earlierHttp?: HttpStats;
  /** The run was begun (and its first parts numbered) by a version before key changes were read. */
  private readonly legacyLayout: boolean;
  private secret?: { key: string; secret: string };

  constructor(
    private readonly deps: EdfiFetchDeps,
    private readonly api: EdfiApiDefinition,
    private readonly resources: { resource: string; dataset: DatasetDefinition }[],
    private readonly lease: StateLease<EdfiState>,
    private readonly now: () => Date,
    timeoutMs: number,
    started: Date,
  ) {
    this.state = structuredClone(lease.state ?? { versions: {} });
    this.earlierHttp = this.state.checkpoint?.http;
    this.legacyLayout = this.state.checkpoint !== undefined && this.state.checkpoint.layout !== 2;
    this.runId = this.state.checkpoint?.run ?? runStamp(started);
    this.startedAt = this.state.checkpoint?.startedAt ?? started.toISOString();
    const margin = Math.min(deps.marginMs ?? 60_000, timeoutMs / 3);
    this.deadline = now().getTime() + timeoutMs - margin;
    this.signal = AbortSignal.timeout(timeoutMs);
    this.limiter = new Limiter(api.concurrency);
    this.http = new HttpClient(deps, { apply: (u, h) => this.auth.apply(u, h), refresh: () => this.auth.refresh(), renewals: () => this.authImpl?.renewals?.() ?? 0 }, this.signal, {
      verifyTls: api.verifyTls,
      source: `Ed-Fi API ${api.name}`,
    });
  }

  private authImpl?: ReturnType<typeof clientCredentials>;
  private get auth() {
    if (!this.authImpl) {
      const s = this.secret!;
      this.authImpl = clientCredentials(this.url(this.api.tokenPath), s.key, s.secret, { now: () => this.now().getTime(), client: () => this.http });
    }
    return this.authImpl;
  }

  async run(): Promise<EdfiOutcome> {
    const secret = await this.deps.readSecret(this.api.secret);
    const field = (name: string) => {
      const v = secret[name];
      if (typeof v !== 'string' || v === '') throw new PermanentError(`secret ${this.api.secret} needs a string "${name}" (the Ed-Fi API client's ${name})`);
      return v;
    };
    this.secret = { key: field('key'), secret: field('secret') };

    const years = this.api.instance === 'yearSpecific' ? this.api.schoolYears : [undefined];
    const newest: Record<string, number> = { ...this.state.checkpoint?.newest };
    if (this.api.changeQueries) {
      for (const year of years) {
        const y = yearKey(year);
        if (newest[y] === undefined) newest[y] = await this.newestChangeVersion(year, (oldest) => this.noteOldest(y, oldest));
      }
    }
    for (const year of years) {
      for (const { resource, dataset } of this.resources) {
        const key = `${yearKey(year)}/${resource}`;
        const saved = this.state.checkpoint?.jobs[key];
        this.jobs.set(key, { resource, dataset, year, progress: saved ?? this.plan(key, newest[yearKey(year)]) });
      }
    }
    this.state.checkpoint = {
      run: this.runId,
      startedAt: this.startedAt,
      newest,
      jobs: Object.fromEntries([...this.jobs].map(([k, j]) => [k, j.progress])),
      ...(this.legacyLayout ? {} : { layout: 2 as const }),
    };

    // a resource that fails (an HTML page, a 403 for a resource the client may not read) fails
    // alone: the others go on, and are saved as complete
    const failures = new Map<string, unknown>();
    await pool([...this.jobs.entries()], this.api.concurrency, async ([key, job]) => {
      try {
        await this.fetchJob(job);
      } catch (error) {
        failures.set(key, error);
      }
    });
    const done = (key: string) => jobDone(this.jobs.get(key)!.progress, this.api);
    const outOfTime = [...this.jobs.keys()].filter((key) => !done(key) && !failures.has(key));
    await this.writeManifests(outOfTime.length === 0 && failures.size === 0);
    if (outOfTime.length > 0) {
      // keep every finished part (a failed resource's too): the next invocation continues from here
      await this.save(undefined);
      return this.outcome('checkpointed');
    }
    // the run is over: complete resources advance, failed ones are asked again (from their last version) next run
    for (const [key, job] of this.jobs) if (done(key) && job.progress.max !== undefined) this.state.versions[key] = job.progress.max;
    delete this.state.checkpoint;
    await this.save(undefined);
    if (failures.size > 0) {
      const list = [...failures].map(([key, error]) => `${key.replace(/^shared\//, '')}: ${(error as Error).message ?? String(error)}`);
      // say what happened to the others, counted: never "stored" when nothing was
      const others = [...this.jobs].filter(([key]) => !failures.has(key)).map(([key, job]) => ({ key: key.replace(/^shared\//, ''), n: job.progress.records + changeRecords(job.progress) }));
      const stored = others.filter((o) => o.n > 0);
      const unchanged = others.length - stored.length;
      const rest = [
        stored.length ? `${stored.length} stored and saved (${stored.map((o) => `${o.key}: ${o.n} record${o.n === 1 ? '' : 's'}`).join(', ')})` : 'none stored',
        unchanged ? `${unchanged} unchanged (nothing to store)` : '',
      ].filter(Boolean);
      const extra = [this.warnings().join('; '), describeHttpStats(this.httpTotals())].filter(Boolean);
      const failed = new Error(
        `Ed-Fi API ${this.api.name}: ${failures.size} of ${this.jobs.size} resources failed — ${list.join('; ')}. ${others.length ? `Of the others: ${rest.join(', ')}` : 'Nothing was stored'}${extra.length ? `. ${extra.join('; ')}` : ''}. The failed ones are asked again, from their last change version, by the next run`,
      );
      throw [...failures.values()].every((e) => e instanceof PermanentError) ? new PermanentError(failed.message) : failed;
    }
    return this.outcome([...this.jobs.values()].some((j) => j.progress.records + changeRecords(j.progress) > 0) ? 'fetched' : 'empty');
  }

  /** What to ask a resource for: changes since its last version, or everything up to `newest`. */
  private plan(key: string, newest: number | undefined): JobProgress {
    const last = this.state.versions[key];
    if (newest === undefined) return { offset: 0, records: 0, parts: [], done: false };
    if (last !== undefined && last >= newest) return { offset: 0, records: 0, parts: [], done: true, max: last };
    const oldest = this.oldest.get(key.split('/')[0]!);
    if (last !== undefined && oldest !== undefined && oldest > last + 1) {
      return { offset: 0, records: 0, parts: [], done: false, max: newest, note: `the ODS keeps changes from version ${oldest} only (last run: ${last}); everything was fetched again` };
    }
    return { offset: 0, records: 0, parts: [], done: false, min: last === undefined ? undefined : last + 1, max: newest };
  }

  private readonly oldest = new Map<string, number>();
  private noteOldest(year: string, oldest: number | undefined): void {
    if (oldest !== undefined) this.oldest.set(year, oldest);
  }

  private async newestChangeVersion(year: number | undefined, onOldest: (v: number | undefined) => void): Promise<number> {
    const url = new URL(this.url(`${this.api.changeQueriesPath}/${year === undefined ? '' : `${year}/`}availableChangeVersions`));
    const { body } = await this.limiter.run(() => this.http.get(url));
    const b = body as Record<string, unknown>;
    // ODS / API 5+ answers camelCase, 3.x PascalCase
    const newest = b?.newestChangeVersion ?? b?.NewestChangeVersion;
    const oldest = b?.oldestChangeVersion ?? b?.OldestChangeVersion;
    if (typeof newest !== 'number')
      throw new PermanentError(`GET ${redactUrl(url.href)}: no newestChangeVersion in the answer (are change queries enabled on this ODS? set changeQueries: false otherwise)`);
    onOldest(typeof oldest === 'number' ? oldest : undefined);
    return newest;
  }

  /** One resource: its changed records, then (incremental runs) the key changes and the ids deleted in the same window. */
  private async fetchJob(job: Job): Promise<void> {
    const p = job.progress;
    if (!p.done && (p.pageTokens || (p.offset === 0 && p.parts.length === 0 && (await this.partitions(job))))) await this.pageByToken(job, p);
    else if (!p.done) await this.pageThrough(job, p, 'rows');
    if (!p.done) return;
    for (const list of ['keyChanges', 'deletes'] as const) {
      if (!this.api[list] || p.min === undefined) continue;
      const phase = (p[list] ??= { offset: 0, records: 0, parts: [], done: false });
      if (phase.done) continue;
      try {
        await this.pageThrough(job, phase, list);
        if (!phase.done) return;
      } catch (error) {
        // an ODS without the route (change queries off for deletes, a version before key changes):
        // the records are good; say once that these changes cannot be seen, and go on
        if (httpStatusOf(error) !== 404 || phase.records > 0) throw error;
        const { suffix, option, lost } = CHANGE_LISTS[list];
        phase.done = true;
        phase.missing = `${job.resource}${job.year === undefined ? '' : ` (${job.year})`}: the ODS does not serve ${job.resource}${suffix} (404), so ${lost}; set ${option}: false on edfi "${this.api.name}" to stop asking`;
        logger.warn(`Ed-Fi API ${this.api.name}: ${phase.missing}`, { api: this.api.name, resource: job.resource, ...(job.year === undefined ? {} : { schoolYear: job.year }) });
      }
    }
  }

  /** The list's URL: `<data>[/<year>]/<namespace>/<name><suffix>` with the job's change window. */
  private listUrl(job: Job, suffix: string): URL {
    const [namespace, name] = job.resource.includes('/') ? job.resource.split('/') : ['ed-fi', job.resource];
    const url = new URL(this.url(`${this.api.dataPath}/${job.year === undefined ? '' : `${job.year}/`}${namespace}/${name}${suffix}`));
    if (job.progress.min !== undefined) url.searchParams.set('minChangeVersion', String(job.progress.min));
    if (job.progress.max !== undefined) url.searchParams.set('maxChangeVersion', String(job.progress.max));
    return url;
  }

  /** Whether the ODS pages this API by cursor; learnt from the first `partitions` answer of the run. */
  private tokenPaging: boolean | undefined;

  /**
   * Asks `<resource>/partitions?number=<concurrency>` (ODS / API 7.3+, within the change window):
   * its page tokens start the job's cursor paging. An ODS without the route (404, 400, 405)
   * pages by offset, for this and every other resource of the run.
   */
  private async partitions(job: Job): Promise<boolean> {
    if (this.tokenPaging === false) return false;
    const url = this.listUrl(job, '/partitions');
    url.searchParams.set('number', String(this.api.concurrency));
    let body: unknown;
    try {
      ({ body } = await this.limiter.run(() => this.http.get(url)));
    } catch (error) {
      const status = httpStatusOf(error);
      if (this.tokenPaging !== true && (status === 404 || status === 400 || status === 405)) {
        this.tokenPaging = false;
        logger.info(`Ed-Fi API ${this.api.name}: the ODS has no cursor paging (${job.resource}/partitions answered ${status}); paging by offset`, { api: this.api.name });
        return false;
      }
      throw error;
    }
    const tokens = (body as { pageTokens?: unknown })?.pageTokens;
    if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) {
      throw new PermanentError(`GET ${redactUrl(url.href)}: the answer has no pageTokens list of strings`);
    }
    this.tokenPaging = true;
    job.progress.pageTokens = tokens as string[];
    if (tokens.length === 0) job.progress.done = true;
    return true;
  }

  /**
   * Cursor paging: each page token is asked with `pageSize`, and a partition goes on with the
   * answer's `Next-Page-Token` header until it has none. Up to `concurrency` partitions of the
   * resource are read at once (every request still waits for a slot of the run's limiter), each
   * into parts of its own that end on its page boundaries. The checkpoint keeps the tokens still to
   * ask for: for each partition being read, the first page not in a finished part; then those not
   * started. A checkpointed run thus continues at the first page not in a finished part.
   */
  private async pageByToken(job: Job, p: PhaseProgress): Promise<void> {
    const pageSize = this.api.pageSize;
    const queue = [...(p.pageTokens ?? [])];
    // parts are numbered as they are begun, after every part of the run so far
    let nextNumber = p.parts.reduce((n, part, i) => Math.max(n, partNumber(part, i)), 0) + 1;
    let pages = 0;
    let stop: unknown;
    /** Each partition being read: the token to continue from (first page not in a finished part). */
    const reading = new Set<{ resume: string }>();
    const sinks = new Set<RecordSink>();
    const checkpointTokens = () => [...[...reading].map((r) => r.resume), ...queue];

    const readPartition = async (first: string): Promise<void> => {
      const at = { resume: first };
      reading.add(at);
      let token: string | undefined = first;
      let sink: RecordSink | undefined;
      let sinkKey = '';
      let number = 0;
      let partRecords = 0;
      const finishPart = async () => {
        if (sink && partRecords > 0) {
          const done = sink;
          sinks.delete(done);
          sink = undefined;
          const { bytes, sha256 } = await done.finish();
          p.parts.push({ key: sinkKey, records: partRecords, bytes, sha256, n: number });
          p.records += partRecords;
        } else if (sink) {
          sinks.delete(sink);
          await sink.abort();
          sink = undefined;
        }
        partRecords = 0;
        if (token === undefined) reading.delete(at);
        else at.resume = token;
        p.pageTokens = checkpointTokens();
        await this.save(this.leaseMs());
      };
      while (token !== undefined && stop === undefined) {
        if (this.now().getTime() >= this.deadline) break;
        if (++pages > this.api.maxPages) {
          throw new PermanentError(
            `${job.resource}: more than maxPages (${this.api.maxPages}) pages of ${pageSize} in one invocation; raise maxPages on edfi "${this.api.name}" if the ODS really has more`,
          );
        }
        const url = this.listUrl(job, '');
        url.searchParams.set('pageToken', token);
        url.searchParams.set('pageSize', String(pageSize));
        const { body, headers } = await this.limiter.run(() => this.http.get(url));
        if (!Array.isArray(body)) throw new PermanentError(`GET ${redactUrl(url.href)}: the answer is not an array of ${job.resource} records`);
        checkRecords(body, url);
        if (stop !== undefined) return;
        if (body.length) {
          if (!sink) {
            number = nextNumber++;
            sinkKey = `${ZONES.raw}${job.dataset.name}/${this.runId}/${job.year === undefined ? '' : `${job.year}-`}part-${String(number).padStart(5, '0')}.ndjson.gz`;
            sink = new RecordSink(this.deps, sinkKey, this.declaration(job, 'rows', number));
            sinks.add(sink);
          }
          for (const record of body) {
            await sink.write(job.year === undefined || !record || typeof record !== 'object' ? record : { ...(record as object), odsSchoolYear: job.year });
          }
          partRecords += body.length;
        }
        const next = headers.get('next-page-token');
        token = next && body.length ? next : undefined;
        if (partRecords >= this.api.partRecords || token === undefined) await finishPart();
      }
      // out of time: keep what this partition read, continue from its next page later
      if (stop === undefined) await finishPart();
    };

    const workers = Array.from({ length: Math.min(this.api.concurrency, queue.length) }, async () => {
      while (queue.length && stop === undefined && this.now().getTime() < this.deadline) {
        try {
          await readPartition(queue.shift()!);
        } catch (error) {
          stop ??= error;
        }
      }
    });
    await Promise.all(workers);
    if (stop !== undefined) {
      await Promise.all([...sinks].map((sink) => sink.abort()));
      throw stop;
    }
    p.pageTokens = checkpointTokens();
    if (p.pageTokens.length === 0) p.done = true;
  }

  /** Page through one list (the records, or a change list) from `p`, writing parts, until done or out of time. */
  private async pageThrough(job: Job, p: PhaseProgress, kind: PartKind): Promise<void> {
    const suffix = kind === 'rows' ? '' : CHANGE_LISTS[kind].suffix;
    const file = kind === 'rows' ? 'part' : CHANGE_LISTS[kind].file;
    const [namespace, name] = job.resource.includes('/') ? job.resource.split('/') : ['ed-fi', job.resource];
    const base = new URL(this.url(`${this.api.dataPath}/${job.year === undefined ? '' : `${job.year}/`}${namespace}/${name}${suffix}`));
    base.searchParams.set('limit', String(this.api.pageSize));
    if (job.progress.min !== undefined) base.searchParams.set('minChangeVersion', String(job.progress.min));
    if (job.progress.max !== undefined) base.searchParams.set('maxChangeVersion', String(job.progress.max));
    const pageSize = this.api.pageSize;
    const getPage = async (offset: number): Promise<unknown[]> => {
      const url = new URL(base);
      url.searchParams.set('offset', String(offset));
      const { body } = await this.limiter.run(() => this.http.get(url));
      if (!Array.isArray(body)) throw new PermanentError(`GET ${redactUrl(url.href)}: the answer is not an array of ${job.resource}${suffix} records`);
      checkRecords(body, url);
      return body;
    };

    let sink: RecordSink | undefined;
    let sinkKey = '';
    let partRecords = 0;
    let next = p.offset; // offset of the next page to ask for
    const window: { offset: number; page: Promise<unknown[]> }[] = [];
    const launch = () => {
      if (this.now().getTime() >= this.deadline || (next - p.offset) / pageSize >= this.api.maxPages) return;
      const page = getPage(next);
      page.catch(() => undefined);
      window.push({ offset: next, page });
      next += pageSize;
    };
    const finishPart = async (offsetAfter: number) => {
      if (sink && partRecords > 0) {
        const { bytes, sha256 } = await sink.finish();
        p.parts.push({ key: sinkKey, records: partRecords, bytes, sha256 });
        p.records += partRecords;
      } else await sink?.abort();
      p.offset = offsetAfter;
      sink = undefined;
      partRecords = 0;
      await this.save(this.leaseMs());
    };
    try {
      for (let i = 0; i < this.api.concurrency; i++) launch();
      while (window.length) {
        const { offset, page } = window.shift()!;
        const records = await page;
        const last = records.length < pageSize;
        if (!last) launch();
        if (records.length) {
          if (!sink) {
            sinkKey = `${ZONES.raw}${job.dataset.name}/${this.runId}/${job.year === undefined ? '' : `${job.year}-`}${file}-${String(p.parts.length + 1).padStart(5, '0')}.ndjson.gz`;
            sink = new RecordSink(this.deps, sinkKey, this.declaration(job, kind, p.parts.length + 1));
          }
          for (const record of records) {
            await sink.write(job.year === undefined || !record || typeof record !== 'object' ? record : { ...(record as object), odsSchoolYear: job.year });
          }
          partRecords += records.length;
        }
        if (last) {
          await finishPart(offset + records.length);
          p.done = true;
          return;
        }
        if (partRecords >= this.api.partRecords) await finishPart(offset + pageSize);
      }
      // out of time (or past maxPages): keep what is finished, continue later
      if ((next - p.offset) / pageSize >= this.api.maxPages && this.now().getTime() < this.deadline) {
        throw new PermanentError(`${job.resource}${suffix}: more than maxPages (${this.api.maxPages}) pages of ${pageSize}; raise maxPages on edfi "${this.api.name}" if the ODS really has more`);
      }
      await finishPart(next);
    } catch (error) {
      await sink?.abort();
      throw error;
    }
  }

  /**
   * What a part replaces and holds (contract/objects.ts): a full run's records are the whole
   * resource together with the run's other parts (of a year-specific ODS: the whole of that year),
   * an incremental run's are changes; deletes and key changes parts name records by their resource
   * `id` (which a key change keeps). Parts are numbered through the run — each year's key changes,
   * then its records, then its deletes — so that a run's key changes are older than its records
   * (which carry the new keys) and its deletions newer than the records fetched before them. A run
   * begun by a version before key changes were read keeps its numbering (each year's records, then
   * its deletes) and numbers its key changes after all of them: no number is given twice (applied
   * after the run's records, a key changed and changed back within that one window leaves a
   * natural-keyed table without the record until its next change).
   */
  private declaration(job: Job, kind: PartKind, n: number): ObjectDeclaration {
    const years: (number | undefined)[] = this.api.instance === 'yearSpecific' ? this.api.schoolYears : [undefined];
    const year = years.indexOf(job.year);
    const slot = this.legacyLayout ? { rows: year * 2, deletes: year * 2 + 1, keyChanges: years.length * 2 + year }[kind] : year * 3 + { keyChanges: 0, rows: 1, deletes: 2 }[kind];
    return {
      contract: 1,
      replaces: kind !== 'rows' || job.progress.min !== undefined ? 'nothing' : 'run',
      holds: kind === 'rows' ? 'rows' : CHANGE_LISTS[kind].holds,
      run: this.runId,
      runStartedAt: this.startedAt,
      part: slot * 100_000 + n,
      ...(job.year === undefined ? {} : { resource: String(job.year) }),
      ...(kind === 'rows' ? {} : { identifiedBy: ['id'] }),
    };
  }

  private leaseMs(): number {
    return Math.max(60_000, this.deadline - this.now().getTime() + 120_000);
  }

  /** Saves are conditional on the last one: one at a time, in order. */
  private save(leaseMs: number | undefined): Promise<void> {
    if (this.state.checkpoint) this.state.checkpoint.http = this.httpTotals();
    const snapshot = structuredClone(this.state);
    this.saving = this.saving.then(() => this.lease.save(snapshot, leaseMs));
    return this.saving;
  }

  private async writeManifests(complete: boolean): Promise<void> {
    const byDataset = new Map<string, { resource: string; jobs: { year?: number; progress: JobProgress }[] }>();
    for (const job of this.jobs.values()) {
      const entry = byDataset.get(job.dataset.name) ?? { resource: job.resource, jobs: [] };
      entry.jobs.push({ year: job.year, progress: job.progress });
      byDataset.set(job.dataset.name, entry);
    }
    for (const [dataset, { resource, jobs }] of byDataset) {
      if (!jobs.some((j) => j.progress.parts.length || j.progress.deletes?.parts.length || j.progress.keyChanges?.parts.length)) continue;
      const objects = jobs.flatMap((j) => {
        const job = [...this.jobs.values()].find((x) => x.dataset.name === dataset && x.year === j.year)!;
        return [
          ...(j.progress.keyChanges?.parts ?? []).map((part, i) => manifestObject(part.key, part, this.declaration(job, 'keyChanges', partNumber(part, i)))),
          ...inOrder(j.progress.parts).map(({ part, n }) => manifestObject(part.key, part, this.declaration(job, 'rows', n))),
          ...(j.progress.deletes?.parts ?? []).map((part, i) => manifestObject(part.key, part, this.declaration(job, 'deletes', partNumber(part, i)))),
        ];
      });
      await writeManifest(this.deps, {
        dataset,
        connector: 'edfi',
        source: redactUrl(this.url(this.api.dataPath)),
        run: this.runId,
        startedAt: this.startedAt,
        finishedAt: this.now().toISOString(),
        complete,
        objects,
        details: {
          api: this.api.name,
          resource,
          records: jobs.reduce((n, j) => n + j.progress.records, 0),
          deleted: jobs.reduce((n, j) => n + (j.progress.deletes?.records ?? 0), 0),
          keyChanges: jobs.reduce((n, j) => n + (j.progress.keyChanges?.records ?? 0), 0),
          changeVersions: jobs.map((j) => ({ schoolYear: j.year, min: j.progress.min, max: j.progress.max, ...(j.progress.note ? { note: j.progress.note } : {}) })),
        },
      });
    }
  }

  /** Requests, retries and renewals of the whole run: its earlier invocations' (from the checkpoint) and this one's. */
  private httpTotals(): HttpStats {
    const now = this.http.counts();
    const before = this.earlierHttp;
    return Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v + (before?.[k as keyof HttpStats] ?? 0)])) as unknown as HttpStats;
  }

  /** The warnings of this run's resources for its summary: one line for `/deletes`, one for `/keyChanges`, each naming the resources without it (each result has its own). */
  private warnings(): string[] {
    return (['deletes', 'keyChanges'] as const).flatMap((list) => {
      const missing = [...this.jobs.values()].filter((j) => j.progress[list]?.missing).map((j) => `${j.resource}${j.year === undefined ? '' : ` (${j.year})`}`);
      if (missing.length === 0) return [];
      const { suffix, option } = CHANGE_LISTS[list];
      const lost = list === 'deletes' ? 'records deleted there stay in the clean tables' : 'records whose natural key changed there may stay under their old key in tables keyed by it';
      return [
        `the ODS does not serve ${suffix} (404) for ${missing.length} resource${missing.length === 1 ? '' : 's'} (${missing.join(', ')}): ${lost}; set ${option}: false on edfi "${this.api.name}" to stop asking`,
      ];
    });
  }

  private outcome(status: 'fetched' | 'empty' | 'checkpointed'): EdfiOutcome {
    const results: EdfiResourceResult[] = [...this.jobs.values()].map((j) => ({
      dataset: j.dataset.name,
      resource: j.resource,
      ...(j.year === undefined ? {} : { schoolYear: j.year }),
      status: !jobDone(j.progress, this.api) ? 'incomplete' : j.progress.records + changeRecords(j.progress) > 0 ? 'fetched' : 'unchanged',
      records: j.progress.records,
      deleted: j.progress.deletes?.records ?? 0,
      keyChanges: j.progress.keyChanges?.records ?? 0,
      parts: [...(j.progress.keyChanges?.parts ?? []), ...inOrder(j.progress.parts).map(({ part }) => part), ...(j.progress.deletes?.parts ?? [])].map((p) => p.key),
      minChangeVersion: j.progress.min,
      maxChangeVersion: j.progress.max,
      ...(j.progress.note ? { note: j.progress.note } : {}),
      ...(j.progress.deletes?.missing || j.progress.keyChanges?.missing ? { warnings: [j.progress.deletes?.missing, j.progress.keyChanges?.missing].filter((w): w is string => !!w) } : {}),
    }));
    const records = results.reduce((n, r) => n + r.records, 0);
    const fetched = results.filter((r) => r.records + r.deleted + r.keyChanges > 0).length;
    const deleted = results.reduce((n, r) => n + r.deleted, 0);
    const keyChanges = results.reduce((n, r) => n + r.keyChanges, 0);
    const unchanged = results.filter((r) => r.status === 'unchanged').length;
    const http = this.httpTotals();
    const extra = [this.warnings().join('; '), describeHttpStats(http)].filter(Boolean);
    const message =
      (status === 'checkpointed'
        ? `Ed-Fi API ${this.api.name}: run ${this.runId} checkpointed before the time limit (${records} records in finished parts; ${results.filter((r) => r.status === 'incomplete').length} of ${results.length} resources to continue)`
        : status === 'empty'
          ? `Ed-Fi API ${this.api.name}: nothing changed in ${results.length} resource${results.length === 1 ? '' : 's'}; nothing written`
          : `Ed-Fi API ${this.api.name}: ${records} records${keyChanges ? `, ${keyChanges} key change${keyChanges === 1 ? '' : 's'}` : ''}${deleted ? ` and ${deleted} deletions` : ''} from ${fetched} of ${results.length} resources${unchanged ? ` (${unchanged} unchanged)` : ''} → ${ZONES.raw}<dataset>/${this.runId}/`) +
      (extra.length ? `. ${extra.join('; ')}` : '');
    return { status, api: this.api.name, run: this.runId, records, results, http, message };
  }

  private url(path: string): string {
    return `${this.api.url.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
  }
}

/** Parts with their numbers, in number order (partitions read in parallel finish their parts in any order). */
function inOrder(parts: readonly PartInfo[]): { part: PartInfo; n: number }[] {
  return parts.map((part, i) => ({ part, n: partNumber(part, i) })).sort((a, b) => a.n - b.n);
}

/** The records are done, and so are the change lists (deletes, key changes) an incremental run asks for. */
function jobDone(p: JobProgress, api: Pick<EdfiApiDefinition, 'deletes' | 'keyChanges'>): boolean {
  const listDone = (list: ChangeList) => !api[list] || p.min === undefined || (p[list]?.done ?? false);
  return p.done && listDone('deletes') && listDone('keyChanges');
}

interface Job {
  resource: string;
  dataset: DatasetDefinition;
  year?: number;
  progress: JobProgress;
}

const yearKey = (year: number | undefined) => (year === undefined ? 'shared' : String(year));

/** At most `size` calls of `run` at once. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    // a finishing task hands its slot straight to the first waiter
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** `work` over `items`, `size` at a time. */
async function pool<T>(items: readonly T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(size, items.length) }, async () => {
      while (i < items.length) await work(items[i++]!);
    }),
  );
}
