import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in Ed-Fi ODS / API on loopback (the tests and the local Ed-Fi example use it): OAuth2 client credentials at
 * `/oauth/token`, resources at `/data/v3[/<year>]/<namespace>/<resource>` with offset/limit and
 * `minChangeVersion`/`maxChangeVersion`, `<resource>/deletes` and `<resource>/keyChanges` (the change
 * queries of ODS / API 5.3+ and 6.1+), and `/changeQueries/v1[/<year>]/availableChangeVersions`.
 * Every write bumps the ODS's change version; records keep the version of their last write.
 */
export interface EdfiServer {
  base: string;
  /** Every request: method, path and query. */
  requests: { method: string; path: string; query: URLSearchParams; at: number }[];
  /** The most requests (other than token requests) it ever served at once. */
  maxInFlight: number;
  tokensIssued: number;
  /** Insert or replace records (by `id`) of a resource; `year` for year-specific ODSs. */
  write(resource: string, records: Record<string, unknown>[], year?: number): void;
  /** Delete records (by id) of a resource: they leave the resource and appear in `<resource>/deletes`. */
  remove(resource: string, ids: string[], year?: number): void;
  /**
   * Change a record's natural key, as a PUT that changes key fields does in the ODS / API: the
   * record (same `id`) is replaced by `record` with a new change version, and `<resource>/keyChanges`
   * lists `{id, changeVersion, oldKeyValues, newKeyValues}` — the key fields of `naturalKeys[resource]`
   * under their last name (`studentReference.studentUniqueId` → `studentUniqueId`), as the ODS's
   * TrackedChanges KeyChange items have them. Throws when the record is not there or its key does not change.
   */
  changeKey(resource: string, id: string, record: Record<string, unknown>, year?: number): void;
  /** The natural key's fields (dotted paths) of each resource `changeKey` knows; add others as needed. */
  naturalKeys: Record<string, string[]>;
  /** Serve `<resource>/keyChanges` (default true); false answers 404 there, as ODSs before 5.3 do. */
  servesKeyChanges: boolean;
  /** The ODS forgets changes before this version (as after a purge). */
  setOldest(version: number, year?: number): void;
  /** Answer the next matching data request (path contains `pathPart`, offset `offset`) with this instead. */
  failNext(pathPart: string, offset: number, answer: { status: number; body: string; contentType: string; headers?: Record<string, string> }): void;
  /** Wait this long before each data answer. */
  delayMs: number;
  /** Token lifetime in seconds (default 1800). */
  tokenLifetime: number;
  /** Serve `<resource>/deletes` (default true); false answers 404 there, as ODSs without it do. */
  servesDeletes: boolean;
  /** Serve cursor paging as ODS / API 7.3+ does (default false: `<resource>/partitions` answers 404):
   *  `partitions?number=N` gives `{pageTokens}`, `?pageToken=&pageSize=` a page and, while the
   *  partition has more, a `Next-Page-Token` header. */
  servesPageTokens: boolean;
  /** Forget every token issued so far: the next data request with one gets a 401. */
  revokeTokens(): void;
  /** Called before each data answer (tests move their clock here). */
  onData?: () => void;
  close(): Promise<void>;
}

export const EDFI_CLIENT = { key: 'test-key', secret: 'test-secret-value' };

export async function startEdfiServer(): Promise<EdfiServer> {
  type Table = Map<string, { record: Record<string, unknown>; version: number }>;
  type KeyChange = { id: string; changeVersion: number; oldKeyValues: Record<string, unknown>; newKeyValues: Record<string, unknown> };
  const ods = new Map<string, { version: number; oldest: number; resources: Map<string, Table>; deletes: Map<string, { id: string; changeVersion: number }[]>; keyChanges: Map<string, KeyChange[]> }>();
  const odsOf = (year?: number) => {
    const key = year === undefined ? 'shared' : String(year);
    let o = ods.get(key);
    if (!o) ods.set(key, (o = { version: 0, oldest: 0, resources: new Map(), deletes: new Map(), keyChanges: new Map() }));
    return o;
  };
  /** A record's natural key values, by the last name of each field (`schoolReference.schoolId` → `schoolId`). */
  const keyValues = (resource: string, record: Record<string, unknown>) => {
    const fields = state.naturalKeys[resource];
    if (!fields) throw new Error(`the stand-in ODS does not know the natural key of ${resource}: add it to naturalKeys`);
    return Object.fromEntries(
      fields.map((path) => [path.split('.').at(-1)!, path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), record)]),
    );
  };
  const tokens = new Map<string, number>();
  const failures: { pathPart: string; offset: number; answer: { status: number; body: string; contentType: string; headers?: Record<string, string> } }[] = [];
  let inFlight = 0;

  const state: EdfiServer = {
    base: '',
    requests: [],
    maxInFlight: 0,
    tokensIssued: 0,
    delayMs: 0,
    tokenLifetime: 1800,
    servesDeletes: true,
    servesPageTokens: false,
    servesKeyChanges: true,
    naturalKeys: {
      students: ['studentUniqueId'],
      schools: ['schoolId'],
      studentSchoolAssociations: ['entryDate', 'schoolReference.schoolId', 'studentReference.studentUniqueId'],
      studentEducationOrganizationAssociations: ['educationOrganizationReference.educationOrganizationId', 'studentReference.studentUniqueId'],
      studentSectionAssociations: [
        'beginDate',
        'sectionReference.localCourseCode',
        'sectionReference.schoolId',
        'sectionReference.schoolYear',
        'sectionReference.sectionIdentifier',
        'sectionReference.sessionName',
        'studentReference.studentUniqueId',
      ],
    },
    revokeTokens() {
      tokens.clear();
    },
    write(resource, records, year) {
      const o = odsOf(year);
      let table = o.resources.get(resource);
      if (!table) o.resources.set(resource, (table = new Map()));
      for (const record of records) table.set(String(record.id), { record, version: ++o.version });
    },
    remove(resource, ids, year) {
      const o = odsOf(year);
      const gone = o.deletes.get(resource) ?? [];
      for (const id of ids) {
        if (o.resources.get(resource)?.delete(id)) gone.push({ id, changeVersion: ++o.version });
      }
      o.deletes.set(resource, gone);
    },
    changeKey(resource, id, record, year) {
      const o = odsOf(year);
      const was = o.resources.get(resource)?.get(id);
      if (!was) throw new Error(`changeKey: ${resource} has no record ${id}`);
      const oldKeyValues = keyValues(resource, was.record);
      const newKeyValues = keyValues(resource, record);
      if (JSON.stringify(oldKeyValues) === JSON.stringify(newKeyValues)) throw new Error(`changeKey: the key of ${resource} ${id} does not change`);
      const changeVersion = ++o.version;
      o.resources.get(resource)!.set(id, { record: { ...record, id }, version: changeVersion });
      o.keyChanges.set(resource, [...(o.keyChanges.get(resource) ?? []), { id, changeVersion, oldKeyValues, newKeyValues }]);
    },
    setOldest(version, year) {
      odsOf(year).oldest = version;
    },
    failNext(pathPart, offset, answer) {
      failures.push({ pathPart, offset, answer });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };

  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  };

  const token = (from: number, to: number) => Buffer.from(JSON.stringify({ from, to })).toString('base64url');

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://127.0.0.1');
      state.requests.push({ method: req.method!, path: url.pathname, query: url.searchParams, at: Date.now() });
      if (url.pathname === '/oauth/token' && req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        if (form.get('grant_type') !== 'client_credentials' || form.get('client_id') !== EDFI_CLIENT.key || form.get('client_secret') !== EDFI_CLIENT.secret) {
          return json(res, 401, { error: 'invalid_client' });
        }
        const token = randomUUID();
        tokens.set(token, Date.now() + state.tokenLifetime * 1000);
        state.tokensIssued++;
        return json(res, 200, { access_token: token, expires_in: state.tokenLifetime, token_type: 'bearer' });
      }
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!bearer || !tokens.has(bearer) || tokens.get(bearer)! < Date.now()) return json(res, 401, { message: 'Authorization denied' });

      const changes = /^\/changeQueries\/v1\/(?:(\d{4})\/)?availableChangeVersions$/.exec(url.pathname);
      if (changes) {
        const o = odsOf(changes[1] ? Number(changes[1]) : undefined);
        return json(res, 200, { oldestChangeVersion: o.oldest, newestChangeVersion: o.version });
      }
      const data = /^\/data\/v3\/(?:(\d{4})\/)?([a-z][A-Za-z0-9-]*)\/([A-Za-z0-9]+)(\/deletes|\/keyChanges|\/partitions)?$/.exec(url.pathname);
      if (!data) return json(res, 404, { message: `no route ${url.pathname}` });
      inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        state.onData?.();
        const offset = Number(url.searchParams.get('offset') ?? 0);
        // a partitions request fails only when the failure names it
        const failure = failures.findIndex((f) => url.pathname.includes(f.pathPart) && f.offset === offset && (data[4] !== '/partitions' || f.pathPart.includes('/partitions')));
        if (failure >= 0) {
          const { answer } = failures.splice(failure, 1)[0]!;
          res.writeHead(answer.status, { ...answer.headers, 'content-type': answer.contentType });
          return res.end(answer.body);
        }
        const o = odsOf(data[1] ? Number(data[1]) : undefined);
        const resource = data[2] === 'ed-fi' ? data[3]! : `${data[2]}/${data[3]}`;
        const limit = Number(url.searchParams.get('limit') ?? 25);
        const min = url.searchParams.has('minChangeVersion') ? Number(url.searchParams.get('minChangeVersion')) : -Infinity;
        const max = url.searchParams.has('maxChangeVersion') ? Number(url.searchParams.get('maxChangeVersion')) : Infinity;
        if (Number.isFinite(min) && min < o.oldest) return json(res, 410, { message: 'changes before the oldest change version are gone' });
        if (data[4] === '/partitions' || url.searchParams.has('pageToken')) {
          if (!state.servesPageTokens) return json(res, 404, { message: `no route ${url.pathname}` });
        }
        if (data[4] === '/deletes') {
          if (!state.servesDeletes) return json(res, 404, { message: `no route ${url.pathname}` });
          const gone = (o.deletes.get(resource) ?? []).filter((d) => d.changeVersion >= min && d.changeVersion <= max);
          return json(
            res,
            200,
            gone.slice(offset, offset + limit).map((d) => ({ id: d.id, changeVersion: d.changeVersion, keyValues: {} })),
          );
        }
        if (data[4] === '/keyChanges') {
          if (!state.servesKeyChanges) return json(res, 404, { message: `no route ${url.pathname}` });
          const changed = (o.keyChanges.get(resource) ?? []).filter((k) => k.changeVersion >= min && k.changeVersion <= max);
          return json(res, 200, changed.slice(offset, offset + limit));
        }
        const rows = [...(o.resources.get(resource)?.values() ?? [])].filter((r) => r.version >= min && r.version <= max).sort((a, b) => String(a.record.id).localeCompare(String(b.record.id)));
        if (data[4] === '/partitions') {
          // contiguous ranges of the sorted rows, as many as asked (fewer when there are few rows)
          const n = Math.max(1, Math.min(Number(url.searchParams.get('number') ?? 1), rows.length || 1));
          const size = Math.ceil(rows.length / n);
          const pageTokens = Array.from({ length: n }, (_, i) => token(i * size, Math.min(rows.length, (i + 1) * size))).filter((_, i) => i * size < rows.length || i === 0);
          return json(res, 200, { pageTokens });
        }
        const pageToken = url.searchParams.get('pageToken');
        if (pageToken !== null) {
          const { from, to } = JSON.parse(Buffer.from(pageToken, 'base64url').toString()) as { from: number; to: number };
          const size = Number(url.searchParams.get('pageSize') ?? 25);
          const end = Math.min(to, from + size);
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', ...(end < to ? { 'next-page-token': token(end, to) } : {}) });
          return res.end(JSON.stringify(rows.slice(from, end).map((r) => r.record)));
        }
        json(
          res,
          200,
          rows.slice(offset, offset + limit).map((r) => r.record),
        );
      }, state.delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

/** `n` student records with ids `s0001`… from `from`. */
export function students(from: number, n: number, extra: Record<string, unknown> = {}): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => {
    const k = from + i;
    return {
      id: `s${String(k).padStart(4, '0')}`,
      studentUniqueId: String(100000 + k),
      firstName: `First${k}`,
      lastSurname: `Last${k}`,
      birthDate: `2010-0${(k % 9) + 1}-1${k % 10}`,
      _etag: String(k),
      ...extra,
    };
  });
}
