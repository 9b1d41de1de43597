/**
 * `references` between datasets (rules.ts) and the order loads are cleaned in: a dataset whose
 * values must be in another dataset's clean table is cleaned after that dataset's load when both
 * arrive together — first within one batch of the clean queue ({@link orderByReferences}), and
 * across batches by waiting for the referenced load ({@link waitForReferences}): the referencing
 * load is retried, as any retryable failure is, until the referenced load is cleaned, and after
 * the queue's last attempt goes to the DLQ with the reason.
 */
import type pg from 'pg';
import type { DatasetDefinition, PipelineDefinition } from '../../contract/definition.ts';
import { WaitingError } from '../common/errors.ts';
import { ORDER } from '../common/ledger.ts';

/**
 * How much later than a load the referenced dataset's load may have arrived and still be waited
 * for: files uploaded together reach S3 a few seconds apart, in no order the uploader chose.
 */
export const REFERENCE_WAIT_WINDOW_SECONDS = 60;

/** The datasets a dataset's `references` rules name (never itself: validation refuses that). */
export function referencedDatasets(dataset: DatasetDefinition | undefined): string[] {
  const names = (dataset?.clean.columns ?? []).flatMap((c) => (c.references ? [c.references.dataset] : []));
  return [...new Set(names)].filter((n) => n !== dataset?.name);
}

/** Whether `from` references `to`, directly or through other datasets' references. */
export function dependsOn(pipeline: PipelineDefinition, from: string, to: string): boolean {
  const seen = new Set<string>();
  const next = [from];
  while (next.length) {
    const name = next.pop()!;
    for (const ref of referencedDatasets(pipeline.datasets.find((d) => d.name === name))) {
      if (ref === to) return true;
      if (!seen.has(ref)) {
        seen.add(ref);
        next.push(ref);
      }
    }
  }
  return false;
}

/**
 * Items (the messages of one batch, each with the dataset of its load when known) in the order to
 * clean them: an item whose dataset references the dataset of a later item goes after it; the rest
 * keep their order. Each step takes the first item none of whose referenced datasets is still
 * ahead; when none is free (references in a cycle), the first item, so a cycle keeps arrival order.
 */
export function orderByReferences<T>(pipeline: PipelineDefinition, items: readonly T[], datasetOf: (item: T) => string | undefined): T[] {
  const refs = items.map((item) => {
    const name = datasetOf(item);
    return new Set(name ? referencedDatasets(pipeline.datasets.find((d) => d.name === name)) : []);
  });
  const left = items.map((item, i) => ({ item, i, dataset: datasetOf(item) }));
  const out: T[] = [];
  while (left.length) {
    const free = left.findIndex((a) => !left.some((b) => b !== a && b.dataset !== undefined && refs[a.i]!.has(b.dataset)));
    const [taken] = left.splice(free === -1 ? 0 : free, 1);
    out.push(taken!.item);
  }
  return out;
}

/** A referenced dataset has a load still to be cleaned: this one is retried after it, not failed. */
export class WaitingForReferenceError extends WaitingError {
  override name = 'WaitingForReferenceError';
  constructor(
    message: string,
    readonly waitingFor: { dataset: string; loadId: number; status: string },
  ) {
    super(message);
  }
}

/**
 * Throws {@link WaitingForReferenceError} when a dataset this load's dataset references has a load
 * still waiting to be cleaned (received or staged, its message not in a DLQ, no newer load of its
 * dataset cleaned since) that arrived before this one, at the same time, or up to {@link REFERENCE_WAIT_WINDOW_SECONDS} after it. When the two
 * datasets reference each other, only a strictly older load is waited for, so that two loads never
 * wait for each other. Loads of changes only (deletions, key changes) check no references.
 */
export async function waitForReferences(client: pg.PoolClient, pipeline: PipelineDefinition, dataset: DatasetDefinition, loadId: number): Promise<void> {
  const referenced = referencedDatasets(dataset);
  if (referenced.length === 0) return;
  const mutual = referenced.filter((name) => dependsOn(pipeline, name, dataset.name));
  const { rows } = await client.query<{ id: number; dataset: string; status: string }>(
    `SELECT l.id::int, l.dataset, l.status FROM etl.loads l, etl.loads me
      WHERE me.id = $1 AND coalesce(me.holds, 'rows') = 'rows'
        AND l.project = me.project AND l.dataset = ANY($2::text[]) AND l.id <> me.id AND l.owner_id IS NULL
        AND l.status IN ('received', 'staged') AND l.error_kind IS DISTINCT FROM 'exhausted'
        -- a load left behind by a newer one already cleaned is not waited for (it may never come)
        AND NOT EXISTS (SELECT 1 FROM etl.loads n WHERE n.project = l.project AND n.dataset = l.dataset AND n.owner_id IS NULL
                                                  AND n.status = 'loaded' AND ${ORDER('n')} > ${ORDER('l')})
        AND CASE WHEN l.dataset = ANY($3::text[]) THEN ${ORDER('l')} < ${ORDER('me')}
                 ELSE coalesce(l.order_at, l.received_at) <= coalesce(me.order_at, me.received_at) + make_interval(secs => $4) END
      ORDER BY ${ORDER('l')} LIMIT 1`,
    [loadId, referenced, mutual, REFERENCE_WAIT_WINDOW_SECONDS],
  );
  const pending = rows[0];
  if (!pending) return;
  const columns = (dataset.clean.columns ?? []).filter((c) => c.references?.dataset === pending.dataset);
  const rules = columns.map((c) => `column "${c.name}" references ${pending.dataset}.${c.references!.column}`).join(', ');
  throw new WaitingForReferenceError(
    `waiting for ${pending.dataset} load ${pending.id} (${pending.status}): dataset ${dataset.name}: ${rules}; ` +
      `this load is cleaned once that one is (retried until the queue's last attempt, then the DLQ)`,
    { dataset: pending.dataset, loadId: pending.id, status: pending.status },
  );
}
