import { describe, expect, it } from 'vitest';
import { declarationFromMetadata, declarationMetadata, DeclarationError, fetchManifestSchema, type ObjectDeclaration } from '../../contract/objects.ts';

const part: ObjectDeclaration = { contract: 1, replaces: 'run', holds: 'rows', run: '20261207T060000Z', runStartedAt: '2026-12-07T06:00:00.123Z', part: 2 };

describe('the connector contract', () => {
  it('travels as S3 user metadata in plain ASCII and comes back unchanged, whatever the resource is called', () => {
    // prepare
    const declaration: ObjectDeclaration = { ...part, replaces: 'resource', resource: 'équipements-sportifs/2024 « été »' };

    // act
    const metadata = declarationMetadata(declaration);

    // assess: S3 metadata must be US-ASCII, and HeadObject gives the keys back in lower case
    expect(Object.keys(metadata)).toEqual(['civic-etl']);
    expect(metadata['civic-etl']).toMatch(/^[\x20-\x7e]+$/);
    expect(declarationFromMetadata(metadata)).toEqual(declaration);
  });

  it('finds no declaration on an object without one (a supplier upload), and refuses one it cannot read', () => {
    expect(declarationFromMetadata(undefined)).toBeUndefined();
    expect(declarationFromMetadata({ 'other-key': 'x' })).toBeUndefined();
    expect(() => declarationFromMetadata({ 'civic-etl': '%7Bnot json' })).toThrow(DeclarationError);
    expect(() => declarationFromMetadata({ 'civic-etl': encodeURIComponent(JSON.stringify({ ...part, replaces: 'everything' })) })).toThrow(/replaces/);
    // what is wrong, in words (zod/mini has no messages of its own: contract/zod-mini.ts gives it zod's English ones)
    expect(() => declarationFromMetadata({ 'civic-etl': encodeURIComponent(JSON.stringify({ ...part, run: '', part: 0 })) })).toThrow(
      'its x-amz-meta-civic-etl declaration is not valid: run: Too small: expected string to have >=1 characters; part: Too small: expected number to be >=1',
    );
  });

  it('refuses declarations that cannot be applied safely', () => {
    // a resource scope without the resource, deletions that would replace something, a part 0
    expect(() => declarationMetadata({ ...part, replaces: 'resource' })).toThrow(/resource/);
    expect(() => declarationMetadata({ ...part, holds: 'deletions' })).toThrow(/replace nothing/);
    expect(() => declarationMetadata({ ...part, part: 0 })).toThrow();
    expect(() => declarationMetadata({ ...part, runStartedAt: 'yesterday' })).toThrow();
  });

  it('has one manifest shape for every connector, with each object and its declaration', () => {
    const manifest = {
      contract: 1,
      dataset: 'ods_students',
      connector: 'edfi',
      source: 'https://ods.example/api/data/v3',
      run: part.run,
      startedAt: part.runStartedAt,
      finishedAt: '2026-12-07T06:01:00.000Z',
      complete: true,
      objects: [{ key: 'raw/ods_students/20261207T060000Z/part-00002.ndjson.gz', bytes: 10, sha256: 'ab', records: 3, declaration: part }],
      details: { changeVersions: [] },
    };
    expect(fetchManifestSchema.parse(manifest)).toEqual(manifest);
    expect(() => fetchManifestSchema.parse({ ...manifest, objects: [{ ...manifest.objects[0], declaration: { ...part, holds: 'rows?' } }] })).toThrow();
  });
});

describe('nested table names', () => {
  it('stay whole up to 45 characters, and are cut with a hash beyond, so that two paths never share a table', async () => {
    const { childTableName } = await import('../../functions/clean/children.ts');
    const dataset = { name: 'ods_student_education_organization_associations' } as Parameters<typeof childTableName>[0];

    const addresses = childTableName(dataset, 'addresses');
    const periods = childTableName(dataset, 'addresses.periods');

    expect(childTableName({ name: 'orders' } as typeof dataset, 'lines.parts')).toBe('orders_lines_parts');
    expect(addresses).not.toBe(periods);
    for (const name of [addresses, periods]) expect(name).toMatch(/^ods_student_education_organization_a_[0-9a-f]{8}$/);
    // the same path always gets the same table
    expect(childTableName(dataset, 'addresses')).toBe(addresses);
  });
});
