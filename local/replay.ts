/**
 * `civic-etl replay`: stage a dataset's object versions again — any version S3 still keeps —
 * and clean each, oldest first, so that the clean table ends as a fresh run over those versions
 * would leave it. Each replay is a new load in the ledger (`replay_number` ≥ 1) that names the
 * delivery it replays (`replay_of`); the deliveries themselves are never touched.
 *
 * Why the replay's loads are never skipped as "superseded" by the loads they replay: a replay's
 * place in its dataset's order (contract/objects.ts) is the moment it is replayed, after every
 * object that already exists. Replaying versions oldest first, one at a time (staged, then
 * cleaned), makes each one the newest when it is cleaned — the order a fresh run would apply them in.
 */
import { ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import type { DatasetDefinition, PipelineDefinition } from '../contract/definition.ts';
import { MANIFEST_SUFFIX, routeObjectKey, ZONES } from '../contract/names.ts';
import { cleanLoad } from '../functions/clean/clean-load.ts';
import { ident } from '../functions/common/db.ts';
import type { LoadStatus, ObjectRef } from '../functions/common/ledger.ts';
import { stageObject } from '../functions/stage/stage-object.ts';

/** A replay that cannot start: unknown dataset, unknown version, a `--from` that is not a date. */
export class ReplayError extends Error {}

/** One version of one object, as ListObjectVersions describes it. */
export interface ObjectVersion {
  key: string;
  versionId: string;
  etag?: string;
  size?: number;
  lastModified: Date;
}

export interface ReplayedVersion extends ObjectVersion {
  status: 'loaded' | 'failed' | 'skipped';
  /** The replay's load (an archive's own load, whose members are loads of their own). */
  loadId?: number;
  /** The delivery this replays; `undefined` when the version was never delivered. */
  replayOf?: number;
  rowsLoaded: number;
  rowsQuarantined: number;
  error?: string;
}

export interface ReplaySummary {
  dataset: string;
  bucket: string;
  prefixes: string[];
  /** The versions chosen, oldest first. */
  planned: ObjectVersion[];
  /** What became of each version replayed (none with `dryRun`), in the order replayed. */
  versions: ReplayedVersion[];
  /** Set when an error that a retry may cure (database or S3 unreachable, a view that fails) stopped the replay. */
  stopped?: string;
  /** Versions left out because the replay stopped. */
  notReplayed: number;
}

export interface ReplayDeps {
  pool: pg.Pool;
  s3: S3Client;
  pipeline: PipelineDefinition;
  bucket: string;
}

export interface ReplayOptions {
  /** Only versions last modified at or after this instant. */
  from?: Date;
  /** Only this version id. */
  versionId?: string;
  /** List what would be replayed, replay nothing. */
  dryRun?: boolean;
  /** Called once the versions to replay are known, before the first is replayed. */
  onPlan?: (versions: readonly ObjectVersion[]) => void;
  /** Called after each version, for progress output. */
  onVersion?: (result: ReplayedVersion) => void;
}

/**
 * The key prefixes the stage step accepts for a dataset: `incoming/<supplier>/<dataset>/` for an
 * uploaded one, and `raw/<dataset>/` (fetched files; the stage step takes them for any dataset).
 */
export function datasetPrefixes(dataset: DatasetDefinition): string[] {
  const raw = `${ZONES.raw}${dataset.name}/`;
  return dataset.source.type === 'upload' ? [`${ZONES.incoming}${dataset.source.supplier}/${dataset.name}/`, raw] : [raw];
}

/**
 * `--from`: an ISO date (`2024-05-01`, midnight UTC) or timestamp (`2024-05-01T10:00:00+02:00`;
 * UTC when it names no offset).
 */
export function parseFrom(text: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(text.trim());
  const bad = () => new ReplayError(`--from "${text}" is not an ISO date or timestamp (e.g. 2024-05-01 or 2024-05-01T10:00:00Z)`);
  if (!m) throw bad();
  const [, y, mo, d, h, mi, , zone] = m;
  // Date.parse would turn 2024-02-30 into 1 March without a word
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.getUTCMonth() !== Number(mo) - 1 || day.getUTCDate() !== Number(d) || (h !== undefined && (Number(h) > 23 || Number(mi) > 59))) throw bad();
  const normalised = text.trim().replace(' ', 'T');
  const when = new Date(h === undefined ? `${normalised}T00:00:00Z` : zone ? normalised : `${normalised}Z`);
  if (Number.isNaN(when.getTime())) throw bad();
  return when;
}

/**
 * Every version of every object of the dataset, oldest first: not delete markers, not fetch
 * manifests, not keys that route to another dataset. S3 dates are to the second; versions of one
 * key in the same second keep the order S3 lists them in (newest first), and different keys in
 * the same second the order they were delivered in (the ledger's ids).
 */
export async function listDatasetVersions(deps: ReplayDeps, dataset: DatasetDefinition): Promise<ObjectVersion[]> {
  const listed: (ObjectVersion & { position: number })[] = [];
  for (const prefix of datasetPrefixes(dataset)) {
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    do {
      const page = await deps.s3.send(new ListObjectVersionsCommand({ Bucket: deps.bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
      for (const v of page.Versions ?? []) {
        if (!v.Key || !v.LastModified || !isDatasetObject(v.Key, dataset.name)) continue;
        listed.push({
          key: v.Key,
          versionId: v.VersionId ?? 'null',
          etag: v.ETag?.replace(/"/g, ''),
          size: v.Size,
          lastModified: v.LastModified,
          position: listed.length,
        });
      }
      ({ NextKeyMarker: keyMarker, NextVersionIdMarker: versionMarker } = page);
      if (!page.IsTruncated) break;
    } while (keyMarker !== undefined);
  }
  const delivered = await deliveryOrder(deps, listed);
  const order = (a: (typeof listed)[number], b: (typeof listed)[number]) => {
    const byTime = a.lastModified.getTime() - b.lastModified.getTime();
    if (byTime !== 0) return byTime;
    if (a.key === b.key) return b.position - a.position;
    const da = delivered.get(`${a.key}\n${a.versionId}`);
    const db = delivered.get(`${b.key}\n${b.versionId}`);
    if (da !== undefined && db !== undefined) return da - db;
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  };
  return listed.sort(order).map(({ position: _, ...v }) => v);
}

/** The keys a fresh run would stage into this dataset. */
function isDatasetObject(key: string, dataset: string): boolean {
  const route = routeObjectKey(key);
  if (route?.dataset !== dataset) return false;
  return !(route.zone === 'raw' && key.endsWith(MANIFEST_SUFFIX));
}

/** Ledger id of each listed version's delivery (key + '\n' + version → id). */
async function deliveryOrder(deps: ReplayDeps, versions: readonly ObjectVersion[]): Promise<Map<string, number>> {
  if (versions.length === 0) return new Map();
  const { rows } = await deps.pool.query<{ object_key: string; object_version: string; id: string }>(
    `SELECT object_key, object_version, id FROM etl.loads
      WHERE bucket = $1 AND replay_number = 0 AND object_key = ANY($2::text[])`,
    [deps.bucket, [...new Set(versions.map((v) => v.key))]],
  );
  return new Map(rows.map((r) => [`${r.object_key}\n${r.object_version}`, Number(r.id)]));
}

/**
 * Replay a dataset's object versions (all, or those chosen by `from` / `versionId`), oldest first:
 * each is staged again as a new load, then cleaned, before the next one. A version that fails
 * (bad file, missing column…) is reported and the replay goes on, as a fresh run would. An error
 * that a retry may cure stops the replay: the versions after it are not replayed, since
 * applying them out of order would leave a different table.
 */
export async function replayDataset(deps: ReplayDeps, datasetName: string, opts: ReplayOptions = {}): Promise<ReplaySummary> {
  const dataset = deps.pipeline.datasets.find((d) => d.name === datasetName);
  if (!dataset) {
    throw new ReplayError(`unknown dataset "${datasetName}" in project ${deps.pipeline.project} (datasets: ${deps.pipeline.datasets.map((d) => d.name).join(', ')})`);
  }
  const prefixes = datasetPrefixes(dataset);
  const all = await listDatasetVersions(deps, dataset);
  let chosen = all;
  if (opts.versionId !== undefined) {
    chosen = chosen.filter((v) => v.versionId === opts.versionId);
    if (chosen.length === 0) {
      throw new ReplayError(
        `dataset ${dataset.name} has no object version "${opts.versionId}" in s3://${deps.bucket}/ under ${prefixes.join(' or ')} (${all.length} version${all.length === 1 ? '' : 's'} there; \`civic-etl replay ${dataset.name} --dry-run\` lists them)`,
      );
    }
  }
  if (opts.from) chosen = chosen.filter((v) => v.lastModified.getTime() >= opts.from!.getTime());
  opts.onPlan?.(chosen);
  const summary: ReplaySummary = { dataset: dataset.name, bucket: deps.bucket, prefixes, planned: chosen, versions: [], notReplayed: 0 };
  if (opts.dryRun) return summary;
  const started = await dbClock(deps.pool);
  for (const [i, version] of chosen.entries()) {
    let result: ReplayedVersion;
    try {
      result = await replayVersion(deps, version);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      await abandonReplay(deps, version, started, message).catch(() => undefined);
      result = { ...version, status: 'failed', rowsLoaded: 0, rowsQuarantined: 0, error: message };
      summary.stopped = message;
      summary.notReplayed = chosen.length - i - 1;
    }
    summary.versions.push(result);
    opts.onVersion?.(result);
    if (summary.stopped) break;
  }
  return summary;
}

/** Stage one version as a new load, then clean what it staged (its members, for an archive). */
async function replayVersion(deps: ReplayDeps, version: ObjectVersion): Promise<ReplayedVersion> {
  const toClean: number[] = [];
  const ref: ObjectRef = { bucket: deps.bucket, key: version.key, versionId: version.versionId, etag: version.etag, size: version.size, replay: true };
  // no `enqueueParts`: a replay stages every file whole, in this process
  const staged = await stageObject({ pool: deps.pool, s3: deps.s3, pipeline: deps.pipeline, notifyClean: async ({ loadId }) => void toClean.push(loadId) }, ref);
  if (staged.status === 'ignored') return { ...version, status: 'skipped', rowsLoaded: 0, rowsQuarantined: 0, error: staged.reason };
  for (const loadId of toClean) await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, loadId);
  return { ...version, ...(await outcome(deps.pool, staged.loadId)) };
}

/** What the ledger says about a replay's load, and its members' for an archive. */
async function outcome(pool: pg.Pool, loadId: number): Promise<Omit<ReplayedVersion, keyof ObjectVersion>> {
  const { rows } = await pool.query<{ id: string; status: LoadStatus; rows_loaded: string | null; rows_quarantined: string | null; error: string | null; replay_of: string | null }>(
    `SELECT id, status, rows_loaded, rows_quarantined, error, replay_of FROM etl.loads WHERE id = $1 OR parent_id = $1 ORDER BY id`,
    [loadId],
  );
  const own = rows.find((r) => Number(r.id) === loadId)!;
  // an archive's own load is 'expanded': its members are what was loaded (or not)
  const loads = own.status === 'expanded' ? rows.filter((r) => r !== own) : [own];
  const count = (k: 'rows_loaded' | 'rows_quarantined') => loads.reduce((n, r) => n + Number(r[k] ?? 0), 0);
  const failed = loads.filter((r) => r.status !== 'loaded' && r.status !== 'skipped');
  const skipped = loads.filter((r) => r.status === 'skipped');
  const reasons = (of: typeof rows) => of.map((r) => r.error ?? `load ${r.id} ended ${r.status}`).join('; ');
  const common = { loadId, replayOf: own.replay_of === null ? undefined : Number(own.replay_of), rowsLoaded: count('rows_loaded'), rowsQuarantined: count('rows_quarantined') };
  if (loads.length === 0) return { ...common, status: 'failed', error: own.error ?? 'the archive has no data file' };
  if (failed.length > 0) return { ...common, status: 'failed', error: reasons(failed) };
  if (skipped.length > 0) return { ...common, status: 'skipped', error: reasons(skipped) };
  return { ...common, status: 'loaded' };
}

/**
 * The replay stopped inside this version: its loads that will never be finished (no message
 * will come for them) are marked failed with the reason, and their staging tables dropped.
 */
async function abandonReplay(deps: ReplayDeps, version: ObjectVersion, since: Date, message: string): Promise<void> {
  const { rows } = await deps.pool.query<{ staging_table: string | null }>(
    `UPDATE etl.loads SET status = 'failed', error = $5, finished_at = now()
      WHERE bucket = $1 AND (object_key = $2 OR starts_with(object_key, $2 || '!')) AND replay_number > 0
        AND received_at >= $4 AND status IN ('received', 'staged')
        AND object_version = ANY($3::text[])
      RETURNING staging_table`,
    [deps.bucket, version.key, [version.versionId, version.etag && `etag:${version.etag}`].filter(Boolean), since, `replay stopped: ${message}`],
  );
  for (const r of rows) if (r.staging_table) await deps.pool.query(`DROP TABLE IF EXISTS ${r.staging_table}`);
}

async function dbClock(pool: pg.Pool): Promise<Date> {
  return (await pool.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]!.now;
}

/** Rows of the dataset's clean table now (`undefined` if it does not exist). */
export async function cleanRowCount(pool: pg.Pool, project: string, dataset: string): Promise<number | undefined> {
  const table = `${ident(project)}.${ident(dataset)}`;
  const exists = await pool.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [table]);
  if (!exists.rows[0]!.ok) return undefined;
  return (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;
}
