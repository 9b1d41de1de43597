/**
 * One entry point for every kind of fetched source, used by the scheduled handler and by
 * `civic-etl fetch`: it picks the connector by `source.type` and returns its outcome with a
 * one-line summary for people.
 *
 * Each connector is imported when a dataset of its type is fetched, not before: the SQL drivers,
 * undici, the Ed-Fi and catalog connectors are most of the fetch function's code, and a cold
 * start of the bundle (lib/bundle.ts splits them into chunks) reads only what its event needs.
 */
import type { DatasetDefinition, PipelineDefinition } from '../../contract/definition.ts';
import { PermanentError } from '../common/errors.ts';
import type { FetchOutcome } from '../../contract/objects.ts';
import type { CatalogOutcome } from './fetch-catalog.ts';
import type { EdfiOutcome } from './fetch-edfi.ts';
import type { FetchOutcome as HttpOutcome } from './fetch-http.ts';
import type { RestOutcome } from './fetch-rest.ts';
import type { SqlOutcome } from './fetch-sql.ts';
import type { FetcherDeps } from './deps.ts';
import type { RetryOptions } from './http-client.ts';

/** Every fetcher's needs, and the HTTP retry policy's settings (http-client.ts) for those that use HTTP. */
export type FetchDatasetDeps = FetcherDeps & RetryOptions;

/**
 * What every connector's run comes to, as the handler and the CLI see it: one status word of the
 * contract's (contract/objects.ts: FetchOutcome), a line for people, and the connector's own
 * account, typed by connector. What the stored objects replace and hold is not here: each object
 * declares it itself (its metadata and the run's `_manifest.json`), for the stage step.
 */
export type FetchResult = { status: FetchOutcome['status']; summary: string } & (
  | { connector: 'rest'; outcome: RestOutcome }
  | { connector: 'http'; outcome: HttpOutcome }
  | { connector: 'edfi'; outcome: EdfiOutcome }
  | { connector: 'catalog'; outcome: CatalogOutcome }
  | { connector: 'sql'; outcome: SqlOutcome }
);

/** Fetch one dataset; `pipeline` is needed for datasets of an Ed-Fi API (its definition is there). */
export async function fetchDataset(deps: FetchDatasetDeps, dataset: DatasetDefinition, pipeline?: PipelineDefinition): Promise<FetchResult> {
  const source = dataset.source;
  const where = `s3://${deps.bucket}/`;
  switch (source.type) {
    case 'rest': {
      const [{ fetchRest }, { describeHttpStats }] = await Promise.all([import('./fetch-rest.ts'), import('./http-client.ts')]);
      const outcome = await fetchRest(deps, dataset);
      const summary =
        outcome.status === 'fetched'
          ? `fetched ${outcome.manifest.records} records in ${outcome.manifest.pages} pages → ${where}${outcome.manifest.key}${outcome.manifest.http ? `, ${describeHttpStats(outcome.manifest.http)}` : ''}`
          : outcome.message;
      return { connector: 'rest', status: outcome.status, summary, outcome };
    }
    case 'http': {
      const [{ fetchHttp }, { describeHttpStats }] = await Promise.all([import('./fetch-http.ts'), import('./http-client.ts')]);
      const outcome = await fetchHttp(deps, dataset);
      const summary =
        outcome.status === 'fetched'
          ? `fetched ${outcome.manifest.bytes} bytes → ${where}${outcome.manifest.key} (sha256 ${outcome.manifest.sha256.slice(0, 12)}…)${outcome.manifest.http ? `, ${describeHttpStats(outcome.manifest.http)}` : ''}`
          : outcome.status === 'busy'
            ? outcome.message
            : `${outcome.source} has not changed since the last fetch; nothing written`;
      return { connector: 'http', status: outcome.status, summary, outcome };
    }
    case 'edfi': {
      if (!pipeline) throw new Error(`fetching ${dataset.name} needs its pipeline definition (Ed-Fi API ${source.api})`);
      const { fetchEdfi } = await import('./fetch-edfi.ts');
      return edfiResult(await fetchEdfi(deps, pipeline, source.api, [dataset.name]));
    }
    case 'catalog': {
      const { fetchCatalog, MAX_SHORT_RUNS } = await import('./fetch-catalog.ts');
      const outcome = await fetchCatalog(deps, dataset);
      // resources left for lack of time, after this run stored some: go on at once (handler, CLI);
      // a run that stored none would only stop at the same place again
      const goOn = outcome.status === 'partial' && outcome.manifest.notReached > 0 && outcome.manifest.fetched > 0 && outcome.shortRuns < MAX_SHORT_RUNS;
      return { connector: 'catalog', status: goOn ? 'checkpointed' : outcome.status, summary: outcome.message, outcome };
    }
    case 'sql': {
      const { fetchSql } = await import('./fetch-sql.ts');
      const outcome = await fetchSql(deps, dataset);
      const summary = outcome.status === 'fetched' ? `fetched ${outcome.manifest.rows} rows from ${source.engine} → ${where}${outcome.manifest.key}` : outcome.message;
      return { connector: 'sql', status: outcome.status, summary, outcome };
    }
    case 'upload':
      throw new PermanentError(`dataset ${dataset.name} is uploaded by its supplier (${source.supplier}), not fetched`);
  }
}

/** Fetch every resource of the Ed-Fi API `api`. */
export async function fetchEdfiApi(deps: FetchDatasetDeps, pipeline: PipelineDefinition, api: string): Promise<FetchResult> {
  const { fetchEdfi } = await import('./fetch-edfi.ts');
  return edfiResult(await fetchEdfi(deps, pipeline, api));
}

function edfiResult(outcome: EdfiOutcome): FetchResult {
  return { connector: 'edfi', status: outcome.status, summary: outcome.message, outcome };
}
