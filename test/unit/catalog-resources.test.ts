import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../contract/load.ts';
import { declarationMetadata, PORTAL_METADATA_KEY, portalFromMetadata, portalMetadata, type PortalMetadata } from '../../contract/objects.ts';
import { datasetForResource } from '../../functions/stage/resource-read.ts';

const dataset = (resources: unknown, read: Record<string, unknown> = {}) =>
  parsePipeline({ project: 'p', datasets: [{ name: 'd', read, source: { type: 'catalog', api: 'ckan', url: 'https://ckan.example.org', organization: 'city', resources } }] }).datasets[0]!;
const portal = (p: Partial<PortalMetadata>): PortalMetadata => ({ datasetSlug: 'counts', resourceId: 'r1', tags: [], ...p });

describe('read options per catalogue resource', () => {
  const rules = [
    { match: { format: 'XLSX', title: 'visitors' }, read: { sheet: 'Data' } },
    { match: { format: 'xlsx' }, read: { sheet: 1 } },
    { match: { id: 'r9' }, read: { delimiter: ';' } },
  ];

  it('takes the first rule whose every field fits, over the dataset’s own read options', () => {
    const d = dataset(rules, { encoding: 'utf-8' });
    expect(datasetForResource(d, portal({ format: 'xlsx', resourceTitle: 'Park Visitors 2026' }), 'r1').read).toMatchObject({ sheet: 'Data', encoding: 'utf-8' });
    expect(datasetForResource(d, portal({ format: 'xlsx', resourceTitle: 'Budgets' }), 'r1').read).toMatchObject({ sheet: 1 });
    expect(datasetForResource(d, undefined, 'r9').read).toMatchObject({ delimiter: ';' });
  });

  it('leaves a resource no rule fits as the dataset reads it, and keeps its portal metadata for the catalog', () => {
    const d = dataset(rules);
    const p = portal({ format: 'csv', resourceTitle: 'visitors' });
    const staged = datasetForResource(d, p, 'r1');
    expect(staged.read).toEqual(d.read);
    expect(staged.portal).toEqual(p);
  });

  it('refuses a rule that matches nothing in particular, or reads with an unknown option', () => {
    expect(() => dataset([{ match: {}, read: { sheet: 'Data' } }])).toThrow(/match a resource by id, format or title/);
    expect(() => dataset([{ match: { id: 'r1' }, read: { flattenDepth: 2 } }])).toThrow();
  });
});

describe('portal metadata with the object', () => {
  it('round-trips through S3 user metadata, accents and all', () => {
    const p = portal({ datasetTitle: 'Équipements sportifs', organization: 'Métropole de Lyon', license: 'lov2', tags: ['sport', 'équipements'], url: 'https://x.example/a.csv' });
    expect(portalFromMetadata(portalMetadata(p))).toEqual(p);
    expect(/^[\x20-\x7e]*$/.test(portalMetadata(p)[PORTAL_METADATA_KEY]!)).toBe(true);
  });

  it('cuts a long description (marked …) and then tags so that it fits S3’s 2 KB of metadata', () => {
    const description = 'Données ouvertes. '.repeat(500);
    const tags = Array.from({ length: 200 }, (_, i) => `étiquette-${i}`);
    const encoded = portalMetadata(portal({ datasetTitle: 'Long', description, tags }));
    // with the largest declaration an object can carry (a run and a resource of 200 characters)
    const declaration = declarationMetadata({ contract: 1, replaces: 'resource', holds: 'rows', run: 'r'.repeat(200), runStartedAt: '2026-11-21T06:00:00.000Z', part: 99999, resource: 'x'.repeat(200) });
    const bytes = Object.entries({ ...declaration, ...encoded }).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    expect(bytes).toBeLessThanOrEqual(2048);
    const back = portalFromMetadata(encoded)!;
    expect(back.datasetTitle).toBe('Long');
    expect(back.description === undefined || (back.description.endsWith('…') && description.startsWith(back.description.slice(0, -1)))).toBe(true);
    expect(tags.slice(0, back.tags.length)).toEqual(back.tags);
    expect(back.tags.length).toBeLessThan(tags.length);
  });

  it('says so when the portal metadata is not readable', () => {
    expect(() => portalFromMetadata({ [PORTAL_METADATA_KEY]: '%7Bnot' })).toThrow(/not JSON/);
    expect(() => portalFromMetadata({ [PORTAL_METADATA_KEY]: encodeURIComponent('{"datasetSlug":1}') })).toThrow(/not valid/);
  });
});
