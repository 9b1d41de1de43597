/**
 * What an object promises (contract/objects.ts) and where it stands in its dataset's order, as
 * the stage step records it in the ledger before staging it.
 *
 * "Newer" is the object's own order, never the order events reach us in (standard SQS delivers
 * out of order, five stage invocations run at once):
 * - a fetched object (`raw/`) carries its run's start time and its part number in its declaration;
 * - a supplier upload is ordered by S3's own version order of its key — ListObjectVersions lists
 *   a key's versions newest first, the order S3 wrote them in. Its time is the version's
 *   Last-Modified, made monotone along that list (a multipart upload's Last-Modified is when it
 *   began, which may be before an older version's), and versions within the same second are
 *   numbered in S3's order. Different keys of one dataset are ordered by that time (S3 gives no
 *   order across keys); within the same second, by the order they arrived (etl.loads ids).
 *
 * S3 events name the version and carry a `sequencer` that orders events of one key; the listing
 * gives the same order and is there in every case the event is not: moto's notifications carry
 * neither, and a replay has no event at all. An event without a version id (moto) is matched to
 * the current version when its ETag is the current one's, else to the newest version with its
 * ETag: the same bytes, so the table ends the same whichever of two identical uploads it names.
 */
import { HeadObjectCommand, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import { declarationFromMetadata, DeclarationError, portalFromMetadata, type PortalMetadata } from '../../contract/objects.ts';
import type { LoadContract, ObjectRef } from '../common/ledger.ts';
import { PermanentError } from '../common/errors.ts';

/** What the ledger records of an object's contract, and whether the object declared it. */
export interface ObjectContract extends LoadContract {
  /** The object declared it (a fetcher's object), or the defaults of an upload applied. */
  declared: boolean;
}

/** One version of a key, as listed. */
interface ListedVersion {
  versionId: string;
  etag?: string;
  lastModified: Date;
  isLatest: boolean;
}

/**
 * The object version an event names (its version id resolved when the event has none) and its
 * contract. `zone`: `raw` objects may carry a declaration; an upload's metadata is the
 * supplier's and is never read as one.
 */
export async function describeObject(s3: S3Client, ref: ObjectRef, zone: 'raw' | 'incoming' | undefined): Promise<{ ref: ObjectRef; contract: ObjectContract; portal?: PortalMetadata }> {
  const versions = await listVersions(s3, ref.bucket, ref.key);
  const resolved = ref.versionId ? ref : resolveVersion(ref, versions);
  const ordered = orderOf(versions, resolved.versionId);
  const defaults = { replaces: 'dataset' as const, holds: 'rows' as const, run: null, resource: null, identifiedBy: null, declared: false };
  if (zone !== 'raw') return { ref: resolved, contract: { ...defaults, ...(ordered ?? (await headOrder(s3, resolved))) } };
  let metadata: Record<string, string> | undefined;
  let lastModified: Date | undefined;
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: resolved.bucket, Key: resolved.key, ...versionOf(resolved) }));
    metadata = head.Metadata;
    lastModified = head.LastModified;
  } catch (error) {
    if (!isGone(error)) throw error;
  }
  let declaration;
  try {
    declaration = declarationFromMetadata(metadata);
  } catch (error) {
    if (error instanceof DeclarationError) throw new PermanentError(`${ref.key}: ${error.message}; it cannot be applied safely`, { file: ref.key });
    throw error;
  }
  let portal: PortalMetadata | undefined;
  try {
    portal = portalFromMetadata(metadata);
  } catch (error) {
    if (error instanceof DeclarationError) throw new PermanentError(`${ref.key}: ${error.message}`, { file: ref.key });
    throw error;
  }
  if (!declaration) {
    return { ref: resolved, contract: { ...defaults, ...(ordered ?? { orderAt: lastModified ?? new Date(), orderSeq: 0 }) } };
  }
  return {
    ref: resolved,
    contract: {
      replaces: declaration.replaces,
      holds: declaration.holds,
      run: declaration.run,
      resource: declaration.resource ?? null,
      identifiedBy: declaration.identifiedBy ?? null,
      orderAt: new Date(declaration.runStartedAt),
      orderSeq: declaration.part,
      declared: true,
    },
    ...(portal ? { portal } : {}),
  };
}

/** Every version of exactly `key`, newest first (S3's order), delete markers left out. */
async function listVersions(s3: S3Client, bucket: string, key: string): Promise<ListedVersion[]> {
  const out: ListedVersion[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    let past = false;
    for (const v of page.Versions ?? []) {
      if (v.Key !== key) {
        // keys are listed in order: once past `key`, its versions are all seen
        if ((v.Key ?? '') > key) past = true;
        continue;
      }
      if (!v.LastModified) continue;
      out.push({ versionId: v.VersionId ?? 'null', etag: v.ETag?.replace(/"/g, ''), lastModified: v.LastModified, isLatest: v.IsLatest === true });
    }
    if (past || !page.IsTruncated) return out;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
    if (keyMarker === undefined) return out;
  }
}

/** The version an event without a version id is about: the current one if its ETag matches, else the newest with that ETag. */
function resolveVersion(ref: ObjectRef, versions: readonly ListedVersion[]): ObjectRef {
  const real = versions.filter((v) => v.versionId !== 'null');
  if (real.length === 0) return ref; // an unversioned bucket: the ETag identifies the content
  const etag = ref.etag?.replace(/"/g, '');
  const latest = real.find((v) => v.isLatest) ?? real[0]!;
  if (!etag || latest.etag === etag) return { ...ref, versionId: latest.versionId };
  const match = real.find((v) => v.etag === etag); // newest first
  return match ? { ...ref, versionId: match.versionId } : ref;
}

/**
 * The version's place among its key's versions: a time that never goes back from an older
 * version to a newer one, and its number among versions of that same time (oldest 0).
 */
function orderOf(versions: readonly ListedVersion[], versionId: string | undefined): { orderAt: Date; orderSeq: number } | undefined {
  if (!versionId || versionId === 'null') return undefined;
  let time = -Infinity;
  let seq = 0;
  for (const v of [...versions].reverse()) {
    const t = Math.max(time, Math.floor(v.lastModified.getTime() / 1000) * 1000);
    seq = t === time ? seq + 1 : 0;
    time = t;
    if (v.versionId === versionId) return { orderAt: new Date(t), orderSeq: seq };
  }
  return undefined;
}

/** An object not found among the versions (an unversioned bucket, or gone): its Last-Modified. */
async function headOrder(s3: S3Client, ref: ObjectRef): Promise<{ orderAt: Date; orderSeq: number }> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key, ...versionOf(ref) }));
    return { orderAt: head.LastModified ?? new Date(), orderSeq: 0 };
  } catch (error) {
    // the object is gone: staging it records that; its order no longer matters
    if (isGone(error)) return { orderAt: new Date(), orderSeq: 0 };
    throw error;
  }
}

function versionOf(ref: ObjectRef): { VersionId?: string; IfMatch?: string } {
  return ref.versionId && ref.versionId !== 'null' ? { VersionId: ref.versionId } : {};
}

function isGone(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.name === 'NoSuchVersion' || e.$metadata?.httpStatusCode === 404;
}
