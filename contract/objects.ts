/**
 * The connector contract: what a stored object promises the rest of the pipeline.
 *
 * Every object a fetcher stores under `raw/` carries a declaration (S3 user metadata
 * `x-amz-meta-civic-etl`, written with the object, so it is there whenever the object is): what
 * the object **replaces** and what it **holds**, which run it belongs to and where it stands in
 * that run. The stage step records the declaration in the ledger (`etl.loads.replaces`, `holds`,
 * `run`, `resource`, `order_at`, `order_seq`); the clean step applies one rule per (holds,
 * replaces) and never looks at object keys or asks which connector wrote an object.
 *
 * | replaces   | the object's rows stand for…                                   | rows of older objects that go |
 * | ---------- | -------------------------------------------------------------- | ----------------------------- |
 * | `dataset`  | the whole dataset (a snapshot: a file download, an upload)     | all of them                   |
 * | `run`      | the whole dataset, together with the other parts of its run    | all but those of the same run |
 * | `resource` | one resource of the dataset (a catalogue resource)             | those of the same resource    |
 * | `nothing`  | changes only (an incremental run, a change query)              | none                          |
 *
 * `holds`: `rows` (records), `deletions` (each record names a row that is gone, by the fields in
 * `identifiedBy`), `keyChanges` (each record names a record by `identifiedBy` — one its key change
 * keeps, Ed-Fi's `id` — and has `oldKeyValues` and `newKeyValues`, objects of the natural key's
 * fields; the record's rows under the new key come in a newer object of the same run. The clean
 * step moves rows of a dataset keyed by the natural key: functions/clean/clean-load.ts).
 *
 * Order: an object is newer than another when its run started later, or — in one run — when its
 * part number is higher. Runs of one source are serialised by their lease and their start times
 * made strictly increasing (functions/get/state.ts), so "newer" never depends on when an object
 * reached the stage step. Supplier uploads carry no declaration: they are taken for what their
 * dataset's mode says (a snapshot in mode replace or history, changes in upsert or append), and are
 * ordered by S3's own version order (functions/stage/object-order.ts).
 */
import * as z from 'zod/mini';
import './zod-mini.ts';

/** The user-metadata key of the declaration (`x-amz-meta-civic-etl`). */
export const DECLARATION_METADATA_KEY = 'civic-etl';

export const REPLACES = ['dataset', 'run', 'resource', 'nothing'] as const;
export const HOLDS = ['rows', 'deletions', 'keyChanges'] as const;
export type Replaces = (typeof REPLACES)[number];
export type Holds = (typeof HOLDS)[number];

export const objectDeclarationSchema = z
  .strictObject({
    /** The contract's version. */
    contract: z.literal(1),
    replaces: z.enum(REPLACES),
    holds: z.enum(HOLDS),
    /** The fetch run the object belongs to (its folder under `raw/<dataset>/`). */
    run: z.string().check(z.minLength(1), z.maxLength(200)),
    /** When the run started (ISO 8601 with milliseconds): the run's place in the source's order. */
    runStartedAt: z.iso.datetime(),
    /** The object's place in its run, from 1. */
    part: z.int().check(z.minimum(1)),
    /** `replaces: resource`: which resource. */
    resource: z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
    /** `deletions` and `keyChanges`: the source fields that name a row (default: the dataset's key; key changes: `id`). */
    identifiedBy: z.optional(z.array(z.string().check(z.minLength(1))).check(z.minLength(1))),
  })
  .check(
    z.refine((d) => d.replaces !== 'resource' || d.resource !== undefined, { message: 'replaces "resource" needs the resource' }),
    z.refine((d) => d.holds === 'rows' || d.replaces === 'nothing', { message: 'deletions and key changes replace nothing' }),
  );

export type ObjectDeclaration = z.infer<typeof objectDeclarationSchema>;

/** S3 user metadata carrying a declaration (ASCII only, as S3 requires: the JSON is percent-encoded). */
export function declarationMetadata(declaration: ObjectDeclaration): Record<string, string> {
  const checked = objectDeclarationSchema.parse(declaration);
  return { [DECLARATION_METADATA_KEY]: encodeURIComponent(JSON.stringify(checked)) };
}

/** The user-metadata key of a catalogue resource's portal metadata (`x-amz-meta-civic-etl-portal`). */
export const PORTAL_METADATA_KEY = 'civic-etl-portal';

/**
 * What an open-data portal (udata, CKAN) says of a resource and its dataset, carried with the
 * stored object (S3 user metadata and the run's manifest) and kept in the catalog (`etl.catalog.portal`).
 */
export const portalMetadataSchema = z.object({
  /** The portal's dataset: its slug (CKAN: name), id, title, organisation, description, licence and tags. */
  datasetSlug: z.string(),
  datasetId: z.optional(z.string()),
  datasetTitle: z.optional(z.string()),
  organization: z.optional(z.string()),
  organizationId: z.optional(z.string()),
  description: z.optional(z.string()),
  license: z.optional(z.string()),
  tags: z._default(z.array(z.string()), []),
  /** The resource: its id, title, format (lower case) and URL (query values redacted). */
  resourceId: z.string(),
  resourceTitle: z.optional(z.string()),
  format: z.optional(z.string()),
  url: z.optional(z.string()),
});
export type PortalMetadata = z.infer<typeof portalMetadataSchema>;

/** S3 allows 2 KB of user metadata in all: the portal's part stays under this many bytes (the description is cut first, then tags). */
const PORTAL_METADATA_BYTES = 1300;

/** S3 user metadata carrying a resource's portal metadata, percent-encoded and cut to fit (`…` marks a cut description). */
export function portalMetadata(portal: PortalMetadata): Record<string, string> {
  const encode = (p: PortalMetadata) => encodeURIComponent(JSON.stringify(p));
  let fitted = portalMetadataSchema.parse(portal);
  let encoded = encode(fitted);
  for (let keep = (fitted.description ?? '').length; encoded.length > PORTAL_METADATA_BYTES && fitted.description;) {
    keep = Math.floor(keep * 0.7);
    fitted = { ...fitted, description: keep > 20 ? `${portal.description!.slice(0, keep)}…` : undefined };
    encoded = encode(fitted);
  }
  while (encoded.length > PORTAL_METADATA_BYTES && fitted.tags.length) {
    fitted = { ...fitted, tags: fitted.tags.slice(0, -1) };
    encoded = encode(fitted);
  }
  if (encoded.length > PORTAL_METADATA_BYTES) fitted = { datasetSlug: fitted.datasetSlug.slice(0, 120), resourceId: fitted.resourceId.slice(0, 120), tags: [] };
  return { [PORTAL_METADATA_KEY]: encode(fitted) };
}

/** The portal metadata in an object's user metadata, `undefined` when there is none; one that does not parse throws DeclarationError. */
export function portalFromMetadata(metadata: Record<string, string> | undefined): PortalMetadata | undefined {
  const raw = metadata?.[PORTAL_METADATA_KEY];
  if (raw === undefined) return undefined;
  let parsed;
  try {
    parsed = portalMetadataSchema.safeParse(JSON.parse(decodeURIComponent(raw)));
  } catch (cause) {
    throw new DeclarationError(`its x-amz-meta-${PORTAL_METADATA_KEY} portal metadata is not JSON (${(cause as Error).message})`, { cause });
  }
  if (!parsed.success)
    throw new DeclarationError(`its x-amz-meta-${PORTAL_METADATA_KEY} portal metadata is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** A declaration that is there but cannot be read: the object cannot be applied safely. */
export class DeclarationError extends Error {
  override name = 'DeclarationError';
}

/**
 * The declaration in an object's user metadata (as HeadObject returns it: keys lower case),
 * `undefined` when there is none; a declaration that does not parse throws DeclarationError.
 */
export function declarationFromMetadata(metadata: Record<string, string> | undefined): ObjectDeclaration | undefined {
  const raw = metadata?.[DECLARATION_METADATA_KEY];
  if (raw === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(decodeURIComponent(raw));
  } catch (cause) {
    throw new DeclarationError(`its x-amz-meta-${DECLARATION_METADATA_KEY} declaration is not JSON (${(cause as Error).message})`, { cause });
  }
  const parsed = objectDeclarationSchema.safeParse(json);
  if (!parsed.success) {
    throw new DeclarationError(`its x-amz-meta-${DECLARATION_METADATA_KEY} declaration is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

/** One object of a fetch run, as its manifest lists it: where, how big, and its declaration. */
export const manifestObjectSchema = z.strictObject({
  key: z.string(),
  bytes: z.int().check(z.minimum(0)),
  sha256: z.string(),
  /** Records (rows, deletions, key changes) in it, where the connector counts them. */
  records: z.optional(z.int().check(z.minimum(0))),
  declaration: objectDeclarationSchema,
});
export type ManifestObject = z.infer<typeof manifestObjectSchema>;

/**
 * `raw/<dataset>/<run>/_manifest.json`: what one run of a connector stored for one dataset. The
 * same fields for every connector; what is particular to one (pages, change versions, watermarks,
 * resources) is under `details`. `complete` is false while a run continues in another invocation.
 */
export const fetchManifestSchema = z.strictObject({
  contract: z.literal(1),
  dataset: z.string(),
  connector: z.string(),
  /** Where the data came from, credentials removed. */
  source: z.string(),
  run: z.string(),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  complete: z.boolean(),
  objects: z.array(manifestObjectSchema),
  details: z.record(z.string(), z.unknown()),
});
export type FetchManifest = z.infer<typeof fetchManifestSchema>;

/** The outcome every connector returns: one status word, a line for people, the manifests it wrote. */
export interface FetchOutcome<Details = Record<string, unknown>> {
  /**
   * `fetched`: objects stored; `empty`/`unchanged`: nothing new, nothing stored; `busy`: another
   * run holds the source; `checkpointed`: the run goes on in the next invocation; `partial`: some
   * objects stored, some failed (named in the summary).
   */
  status: 'fetched' | 'empty' | 'unchanged' | 'busy' | 'checkpointed' | 'partial';
  summary: string;
  manifests: FetchManifest[];
  /** The connector's own account (resources, pages, change versions…). */
  details: Details;
}
