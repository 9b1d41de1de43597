/**
 * A catalogue resource staged with its own read options: the first rule of the source's
 * `resources` whose `match` fits the resource (by the portal metadata its object carries, else the
 * resource id of its declaration) adds its `read` options to the dataset's.
 */
import type { DatasetDefinition } from '../../contract/definition.ts';
import type { PortalMetadata } from '../../contract/objects.ts';

/** A dataset as one object is staged: its read options for that object, and the object's portal metadata. */
export type StagedDataset = DatasetDefinition & { portal?: PortalMetadata };

export function datasetForResource(dataset: DatasetDefinition, portal: PortalMetadata | undefined, resource: string | null | undefined): StagedDataset {
  if (dataset.source.type !== 'catalog' || (!portal && !resource)) return dataset;
  const id = portal?.resourceId ?? resource ?? undefined;
  const rule = dataset.source.resources?.find(({ match }) => {
    if (match.id !== undefined && match.id !== id) return false;
    if (match.format !== undefined && match.format.toLowerCase().replace(/^\./, '') !== (portal?.format ?? '').toLowerCase()) return false;
    if (match.title !== undefined && !(portal?.resourceTitle ?? '').toLowerCase().includes(match.title.toLowerCase())) return false;
    return true;
  });
  if (!rule && !portal) return dataset;
  return { ...dataset, read: rule ? { ...dataset.read, ...rule.read } : dataset.read, ...(portal ? { portal } : {}) };
}
