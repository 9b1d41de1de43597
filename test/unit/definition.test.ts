import { describe, expect, it } from 'vitest';
import { parsePipeline, PipelineDefinitionError, loadPipeline } from '../../contract/load.ts';
import { routeObjectKey } from '../../contract/names.ts';

const valid = () => ({
  project: 'city',
  suppliers: [{ name: 'parks' }],
  datasets: [
    {
      name: 'programs',
      source: { type: 'upload', supplier: 'parks' },
      clean: { columns: [{ name: 'id', type: 'integer' }, { name: 'title' }], key: ['id'] },
    },
    {
      name: 'areas',
      source: { type: 'http', url: 'https://example.org/areas.csv' },
      schedule: 'rate(1 day)',
      clean: { columns: [{ name: 'area' }] },
    },
  ],
  views: [{ name: 'v', datasets: ['programs'], sql: 'select * from {{schema}}.programs' }],
});

function problemsOf(input: unknown): string[] {
  try {
    parsePipeline(input, 'test.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(PipelineDefinitionError);
    return [...(error as PipelineDefinitionError).problems];
  }
  throw new Error('expected the definition to be rejected');
}

describe('pipeline definitions', () => {
  it('accepts a valid definition and fills the defaults', () => {
    const p = parsePipeline(valid());
    expect(p.datasets[0]!.clean.columns?.[1]).toMatchObject({ name: 'title', type: 'text', required: false });
    expect(p.datasets[1]!.read).toEqual({ flattenDepth: 3, arrays: 'json' });
  });

  it('names the dataset and the field of a bad column type', () => {
    const input = valid();
    (input.datasets[0]!.clean.columns[0] as { type: string }).type = 'int';
    expect(problemsOf(input)).toEqual([expect.stringMatching(/^dataset "programs" → clean\.columns\[0\]\.type: /)]);
  });

  it('rejects a supplier that is not declared', () => {
    const input = valid();
    input.datasets[0]!.source = { type: 'upload', supplier: 'nobody' };
    expect(problemsOf(input)).toEqual(['dataset "programs" → source.supplier: unknown supplier "nobody" (declare it under suppliers)']);
  });

  it('rejects a key column that is not declared, and a schedule on an upload', () => {
    const input = valid();
    input.datasets[0]!.clean.key = ['nope'];
    (input.datasets[0] as Record<string, unknown>).schedule = 'rate(1 hour)';
    const problems = problemsOf(input);
    expect(problems).toContain('dataset "programs" → clean.key[0]: key column "nope" is not a declared column');
    expect(problems).toContain('dataset "programs" → schedule: only fetched sources can have a schedule: suppliers upload this one');
  });

  it('rejects a view over an unknown dataset and a view that is not a SELECT', () => {
    const input = valid();
    input.views = [{ name: 'v', datasets: ['missing'], sql: 'drop table x' }];
    const problems = problemsOf(input);
    expect(problems).toContain('view "v" → datasets[0]: unknown dataset "missing"');
    expect(problems).toContain('view "v" → sql: must be a SELECT (or WITH … SELECT) statement');
  });

  it('rejects unknown fields instead of ignoring a typo', () => {
    const input = valid() as Record<string, unknown>;
    input.dataset = [];
    expect(problemsOf(input)[0]).toMatch(/^\(top level\): Unrecognized key/);
  });

  it('rejects reserved project names and bad schedules', () => {
    const input = valid();
    input.project = 'etl';
    (input.datasets[1] as Record<string, unknown>).schedule = 'every day';
    const problems = problemsOf(input);
    expect(problems).toContain('project: "etl" is reserved');
    expect(problems).toContain('dataset "areas" → schedule: must be rate(N unit) or cron(6 fields)');
  });

  it('keeps every name it derives a valid, distinct PostgreSQL or AWS name', () => {
    const input = valid();
    input.project = 'p'.repeat(56);
    input.datasets[1]!.name = 'areas_quarantine';
    input.suppliers.push({ name: 'par-ks' }, { name: 'par_ks' });
    const problems = problemsOf(input);
    expect(problems).toContain('project: must be at most 55 characters (the staging schema adds _staging)');
    expect(problems).toContain('dataset "areas_quarantine" → name: must not end in _quarantine (that name is taken by quarantine tables)');
    expect(problemsOf({ ...valid(), suppliers: [{ name: 'parks' }, { name: 'par-ks' }] })).toContain(
      'supplier "par-ks" → name: "par-ks" differs from "parks" only in - and _; choose a distinct name',
    );
  });

  it('ships valid Chicago, Amsterdam and Ed-Fi examples', () => {
    const chicago = loadPipeline('pipelines/chicago/pipeline.yaml');
    const amsterdam = loadPipeline('pipelines/amsterdam/pipeline.yaml');
    const edfi = loadPipeline('pipelines/edfi/pipeline.yaml');

    expect(chicago.datasets.map((d) => d.name)).toEqual(['programs', 'community_snapshot', 'community_areas']);
    expect(amsterdam.datasets.find((d) => d.name === 'meldingen')).toMatchObject({ read: { srid: 28992 }, geometry: { srid: 28992, from: { x: 'x', y: 'y' } } });
    expect(edfi.valueMaps[0]!.entries?.length).toBeGreaterThan(5);
  });
});

describe('object keys', () => {
  it('route uploads and fetched files to their dataset', () => {
    expect(routeObjectKey('incoming/parks/programs/2024/list.csv')).toEqual({ zone: 'incoming', supplier: 'parks', dataset: 'programs' });
    expect(routeObjectKey('raw/areas/20240101T000000Z/areas.csv')).toEqual({ zone: 'raw', dataset: 'areas', run: '20240101T000000Z' });
  });

  it('route nothing outside the staged zones or without a file', () => {
    expect(routeObjectKey('state/areas/http.json')).toBeUndefined();
    expect(routeObjectKey('incoming/parks/programs/')).toBeUndefined();
    expect(routeObjectKey('incoming/parks.csv')).toBeUndefined();
  });
});
