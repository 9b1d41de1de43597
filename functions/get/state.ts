/**
 * Durable per-source state in S3 (`state/…`): watermarks, change versions, seen resources and
 * checkpoints, guarded by a lease so that two runs of one source cannot both advance it.
 *
 * Every write is conditional (S3 `If-None-Match: *` when the object is new, `If-Match: <ETag>`
 * after): a run first takes the lease — a write naming its run id and an expiry — and from then on
 * writes only if nobody wrote in between. The run that loses the race sees `412 Precondition
 * Failed` and reports `busy`; a lease left by a crashed run expires, and the next run takes over
 * from the last state that was saved (never from data that was not written).
 *
 * The stored document: `{ "state": …, "lease": { "run", "until" } | absent, "savedAt" }`.
 */
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ZONES } from '../../contract/names.ts';

export interface StateDeps {
  s3: S3Client;
  bucket: string;
  now?: () => Date;
}

/** The clock of one fetch run: its start, its id (`20261121T060000Z`, its `raw/` folder), its time and its lease's. */
export interface RunClock {
  now: () => Date;
  started: Date;
  run: string;
  timeoutMs: number;
  /** The run's time and a minute: how long its lease holds the source. */
  leaseMs: number;
}

/** `2026-11-21T06:00:00.123Z` → `20261121T060000Z`. */
export const runStamp = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/**
 * Start a run of the source whose state is at `key`: its clock, and the lease on its state — or
 * `busy` with who holds it (the caller says so and does nothing).
 */
export async function beginRun<T>(deps: StateDeps & { timeoutMs?: number }, key: string): Promise<{ clock: RunClock; taken: LeaseOutcome<T> }> {
  const now = deps.now ?? (() => new Date());
  const timeoutMs = deps.timeoutMs ?? 600_000;
  const leaseMs = timeoutMs + 60_000;
  const taken = await acquireState<T>(deps, key, `${runStamp(now())}-${randomUUID().slice(0, 8)}`, leaseMs);
  // the run's place in the source's order: its start, strictly after the previous run's (contract/objects.ts)
  const started = taken.status === 'acquired' ? taken.runAt : now();
  return { clock: { now, started, run: runStamp(started), timeoutMs, leaseMs }, taken };
}

interface StoredState<T> {
  state?: T;
  lease?: { run: string; until: string };
  savedAt: string;
  /** When the last run of the source started: the next one starts strictly after it, whatever the clocks say. */
  lastRunAt?: string;
}

export type LeaseOutcome<T> =
  | { status: 'acquired'; state: T | undefined; lease: StateLease<T>; runAt: Date }
  /** Another run holds the lease (`run`, until `until`), or took it first. */
  | { status: 'busy'; run?: string; until?: string; message: string };

/** What a fetch says when another run holds its state: `<who>: another fetch [of <what>] is running (<why>); this one did nothing`. */
export function busyMessage(who: string, held: { message: string }, what?: string): string {
  return `${who}: another fetch${what ? ` of ${what}` : ''} is running (${held.message}); this one did nothing`;
}

/** The state of `source`, of one `kind` of fetcher: `state/<source>/<kind>.json`. */
export const stateKey = (source: string, kind: string) => `${ZONES.state}${source}/${kind}.json`;

/** A save lost the race: another run took the lease (ours had expired). Nothing of ours was saved. */
export class StateConflictError extends Error {
  override name = 'StateConflictError';
}

/**
 * Take the lease on the state at `key` for `run` until `leaseMs` from now. A run continuing its
 * own checkpoint (same `run` id) may take a lease it still holds.
 */
export async function acquireState<T>(deps: StateDeps, key: string, run: string, leaseMs: number): Promise<LeaseOutcome<T>> {
  const now = deps.now ?? (() => new Date());
  const current = await readStored<T>(deps, key);
  const held = current?.doc.lease;
  if (held && held.run !== run && Date.parse(held.until) > now().getTime()) {
    return { status: 'busy', run: held.run, until: held.until, message: `run ${held.run} holds ${key} until ${held.until}` };
  }
  const previous = current?.doc.lastRunAt ? Date.parse(current.doc.lastRunAt) : -Infinity;
  const runAt = new Date(Math.max(now().getTime(), previous + 1));
  const doc: StoredState<T> = {
    state: current?.doc.state,
    lease: { run, until: new Date(now().getTime() + leaseMs).toISOString() },
    savedAt: now().toISOString(),
    lastRunAt: runAt.toISOString(),
  };
  const etag = await conditionalPut(deps, key, doc, current?.etag);
  if (!etag) {
    const winner = await readStored<T>(deps, key);
    const w = winner?.doc.lease;
    return { status: 'busy', run: w?.run, until: w?.until, message: `another run${w ? ` (${w.run})` : ''} took ${key} first` };
  }
  return { status: 'acquired', state: current?.doc.state, lease: new StateLease<T>(deps, key, run, etag, doc.state, doc.lastRunAt), runAt };
}

/** Held state: saved (conditionally) as the run progresses, released at its end. */
export class StateLease<T> {
  constructor(
    private readonly deps: StateDeps,
    readonly key: string,
    readonly run: string,
    private etag: string,
    private current: T | undefined,
    private readonly lastRunAt?: string,
  ) {}

  /** False once a save without `leaseMs` (or `release`) gave the lease up. */
  held = true;

  get state(): T | undefined {
    return this.current;
  }

  /** Save `state`, keeping the lease for `leaseMs` more (a checkpoint), or releasing it (`leaseMs` undefined). */
  async save(state: T, leaseMs?: number): Promise<void> {
    const now = (this.deps.now ?? (() => new Date()))();
    const doc: StoredState<T> = {
      state,
      lease: leaseMs === undefined ? undefined : { run: this.run, until: new Date(now.getTime() + leaseMs).toISOString() },
      savedAt: now.toISOString(),
      ...(this.lastRunAt ? { lastRunAt: this.lastRunAt } : {}),
    };
    const etag = await conditionalPut(this.deps, this.key, doc, this.etag);
    if (!etag) throw new StateConflictError(`${this.key}: another run took over the state while run ${this.run} was working (its lease had expired); this run's progress was not saved`);
    this.etag = etag;
    this.current = state;
    this.held = leaseMs !== undefined;
  }

  /** Give the lease up without changing the state (a run that found nothing to do, or failed). */
  async release(): Promise<void> {
    await this.save(this.current as T).catch((error: unknown) => {
      if (!(error instanceof StateConflictError)) throw error;
    });
  }
}

async function readStored<T>(deps: StateDeps, key: string): Promise<{ doc: StoredState<T>; etag: string } | undefined> {
  // list first: without s3:ListBucket on the prefix a missing key answers AccessDenied, not NoSuchKey
  const listed = await deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: key, MaxKeys: 1 }));
  if (!listed.Contents?.some((o) => o.Key === key)) return undefined;
  const out = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
  const text = (await out.Body?.transformToString()) ?? '{}';
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new Error(`s3://${deps.bucket}/${key} is not JSON (${(cause as Error).message}); delete it to start the source over`);
  }
  // state written before leases existed was the bare state object
  const doc = parsed && typeof parsed === 'object' && 'savedAt' in parsed ? (parsed as StoredState<T>) : { state: parsed as T, savedAt: '' };
  return { doc, etag: out.ETag! };
}

/** PUT only if the object is still at `etag` (or still absent); the new ETag, or undefined when another writer came first. */
async function conditionalPut(deps: StateDeps, key: string, doc: unknown, etag: string | undefined): Promise<string | undefined> {
  try {
    const out = await deps.s3.send(
      new PutObjectCommand({
        Bucket: deps.bucket,
        Key: key,
        Body: JSON.stringify(doc, null, 2),
        ContentType: 'application/json',
        ...(etag ? { IfMatch: etag } : { IfNoneMatch: '*' }),
      }),
    );
    return out.ETag!;
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    // 412: the precondition failed; 409: a concurrent conditional write to the same key is in flight
    if (status === 412 || status === 409) return undefined;
    throw error;
  }
}

/**
 * Run `work` under the lease and give the lease up afterwards, unless `work` already did (its last
 * save released it). A failure releases it too — the state as last saved — and is rethrown.
 */
export async function withLease<T, S>(lease: StateLease<S>, work: () => Promise<T>): Promise<T> {
  try {
    const result = await work();
    if (lease.held) await lease.release();
    return result;
  } catch (error) {
    if (lease.held) await lease.release().catch(() => undefined);
    throw error;
  }
}
