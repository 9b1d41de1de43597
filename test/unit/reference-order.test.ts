import { describe, expect, it } from 'vitest';
import { loadPipeline } from '../../contract/load.ts';
import { dependsOn, orderByReferences } from '../../functions/clean/order.ts';

// programs → areas; sites → regions; regions ↔ zones
const pipeline = loadPipeline('test/fixtures/references-wait-pipeline.yaml');
const order = (datasets: (string | undefined)[]) =>
  orderByReferences(
    pipeline,
    datasets.map((dataset, i) => ({ dataset, i })),
    (m) => m.dataset,
  ).map((m) => `${m.dataset ?? '?'}#${m.i}`);

describe('orderByReferences: the messages of one clean batch', () => {
  it('puts a referenced dataset before the load that references it', () => {
    expect(order(['programs', 'areas'])).toEqual(['areas#1', 'programs#0']);
  });
  it('keeps arrival order otherwise, loads of one dataset included', () => {
    expect(order(['areas', 'programs', 'areas'])).toEqual(['areas#0', 'areas#2', 'programs#1']);
    expect(order(['zones', undefined, 'areas', 'sites'])).toEqual(['zones#0', '?#1', 'areas#2', 'sites#3']);
  });
  it('follows references through datasets', () => {
    // sites → regions → zones: zones is not ahead of regions here, but regions is ahead of sites
    expect(order(['sites', 'programs', 'regions', 'areas'])).toEqual(['regions#2', 'sites#0', 'areas#3', 'programs#1']);
  });
  it('keeps arrival order for datasets that reference each other', () => {
    expect(order(['zones', 'regions'])).toEqual(['zones#0', 'regions#1']);
    expect(order(['regions', 'zones'])).toEqual(['regions#0', 'zones#1']);
  });
});

describe('dependsOn', () => {
  it('follows references transitively, not backwards', () => {
    expect(dependsOn(pipeline, 'sites', 'zones')).toBe(true);
    expect(dependsOn(pipeline, 'zones', 'regions')).toBe(true);
    expect(dependsOn(pipeline, 'areas', 'programs')).toBe(false);
  });
});
