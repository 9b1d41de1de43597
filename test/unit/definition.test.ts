import { describe, expect, it } from 'vitest';
import { parsePipeline, loadPipeline } from '../../contract/load.ts';
import { routeObjectKey } from '../../contract/names.ts';
import { sourceSecrets } from '../../contract/definition.ts';
import { problemsOf } from '../helpers/definition.ts';

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
    expect(problemsOf({ ...valid(), suppliers: [{ name: 'parks' }, { name: 'par-ks' }] })).toContain('supplier "par-ks" → name: "par-ks" differs from "parks" only in - and _; choose a distinct name');
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

describe('catalogue sources', () => {
  /** The valid definition with this source on its fetched dataset `areas`. */
  const withSource = (source: Record<string, unknown>) => {
    const input = valid();
    (input.datasets[1] as Record<string, unknown>).source = source;
    return input;
  };
  const udata = { type: 'catalog', api: 'udata', url: 'https://www.data.gouv.fr' };
  const ORG = '534fff81a3a7292c64a77e5c';

  it('accepts a udata search and fills the defaults', () => {
    const source = parsePipeline(withSource({ ...udata, organization: ORG, tag: 'arbres', format: ['csv', 'geojson'] })).datasets[1]!.source;

    expect(source).toEqual({ ...udata, organization: ORG, tag: 'arbres', format: ['csv', 'geojson'], maxResources: 200, concurrency: 4, pageSize: 100, incremental: true, verifyTls: true });
  });

  it('accepts one CKAN dataset with a headers secret, which the fetch function is then granted', () => {
    const source = parsePipeline(withSource({ type: 'catalog', api: 'ckan', url: 'https://demo.ckan.org/api/3/action', dataset: 'street-trees', headersSecret: 'ckan/api-key' })).datasets[1]!.source;

    expect(sourceSecrets(source)).toEqual(['ckan/api-key']);
  });

  it('refuses a source that would fetch the whole catalogue, and one that mixes a dataset with search filters', () => {
    expect(problemsOf(withSource(udata))).toEqual([
      'dataset "areas" → source.dataset: name a catalogue dataset, or filter by organization, tag or query (without one, every dataset of the catalogue would be fetched)',
    ]);
    expect(problemsOf(withSource({ ...udata, dataset: 'arbres', tag: ['parcs'] }))).toEqual([
      'dataset "areas" → source.tag: dataset names one catalogue dataset; organization, tag and query filter a search: use one or the other',
    ]);
  });

  it('asks udata for an organization id rather than its slug, and knows only udata and CKAN', () => {
    expect(problemsOf(withSource({ ...udata, organization: 'ville-de-paris' }))).toEqual([
      'dataset "areas" → source.organization: udata filters by organization id (24 hexadecimal characters, the "id" of its API record), not by its slug',
    ]);
    expect(problemsOf(withSource({ ...udata, api: 'socrata', query: 'trees' }))).toEqual([expect.stringMatching(/^dataset "areas" → source\.api: /)]);
    expect(problemsOf(withSource({ ...udata, query: 'trees', format: [] }))).toEqual([expect.stringMatching(/^dataset "areas" → source\.format: /)]);
  });
});

describe('credentials in a URL', () => {
  const withUrl = (source: object, edfi?: object[]) => ({
    ...valid(),
    datasets: [...valid().datasets, { name: 'remote', source, clean: { columns: [{ name: 'a' }] } }],
    ...(edfi ? { edfi } : {}),
  });
  const SECRET_WORD = 'hunter2-not-here';

  it('are refused in every URL a pipeline declares, naming the field and the secret to use, without repeating the password', () => {
    const cases: [object, object[] | undefined, string][] = [
      [
        { type: 'http', url: `http://bob:${SECRET_WORD}@example.org/a.csv` },
        undefined,
        'dataset "remote" → source.url: a user name or password in the URL is refused: put the credentials in a secret (headersSecret',
      ],
      [
        { type: 'rest', url: `https://bob:${SECRET_WORD}@api.example.org/items` },
        undefined,
        'dataset "remote" → source.url: a user name or password in the URL is refused: put the credentials in a secret (auth: { type: basic, secret }',
      ],
      [
        { type: 'rest', url: 'https://api.example.org/items', auth: { type: 'oauth2', secret: 's', tokenUrl: `https://app:${SECRET_WORD}@login.example.org/token` } },
        undefined,
        'dataset "remote" → source.auth.tokenUrl: a user name or password in the URL is refused: put the credentials in a secret (auth.secret',
      ],
      [
        { type: 'catalog', api: 'ckan', url: `https://bob:${SECRET_WORD}@data.example.org`, dataset: 'x' },
        undefined,
        'dataset "remote" → source.url: a user name or password in the URL is refused: put the credentials in a secret (headersSecret',
      ],
      [
        { type: 'upload', supplier: 'parks' },
        [{ name: 'ods', url: `https://${SECRET_WORD}@ods.example.org/api`, secret: 's', resources: ['schools'] }],
        'edfi[0].url: a user name or password in the URL is refused: put the credentials in a secret (secret',
      ],
    ];
    for (const [source, edfi, expected] of cases) {
      const problems = problemsOf(withUrl(source, edfi));
      expect(
        problems.find((p) => p.includes('user name or password')),
        JSON.stringify(source),
      ).toContain(expected);
      expect(problems.join('\n')).not.toContain(SECRET_WORD);
    }
    // the same URLs without credentials are fine
    expect(() => parsePipeline(withUrl({ type: 'http', url: 'http://example.org/a.csv' }))).not.toThrow();
  });
});
