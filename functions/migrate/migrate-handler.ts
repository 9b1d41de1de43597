import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import type pg from 'pg';
import type { MigrateConfig } from '../common/config.ts';
import { classify } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import { currentPipeline } from '../common/pipeline.ts';
import { migrate } from './migrate.ts';

/** What the migrate handler works with: the database. */
export interface MigrateHandlerDeps {
  pool: () => Promise<pg.Pool>;
}

/**
 * onEvent handler of the migration custom resource (CDK Provider framework): apply pending
 * migrations and the project's schemas on every Create/Update; Delete leaves the data alone.
 */
export async function createMigrateHandler(config: MigrateConfig, deps: MigrateHandlerDeps) {
  // read and validated when the function starts (an invalid definition fails its start), not per event
  const pipeline = await currentPipeline(config.pipelineFile, config.pipelineSha256);
  return async (event: CloudFormationCustomResourceEvent) => {
    const physicalId = `civic-etl-migrations-${pipeline.project}`;
    if (event.RequestType === 'Delete') return { PhysicalResourceId: physicalId };
    let result;
    try {
      result = await migrate(await deps.pool(), pipeline.project);
    } catch (error) {
      // the deploy fails with it (CloudFormation shows the message); the log says which kind it is
      const failure = classify(error);
      logger.error(`migrations failed (${failure.kind}): ${failure.message}`, { step: 'migrate', kind: failure.kind, error: failure.message });
      throw error;
    }
    logger.info('migrations applied', { ...result });
    return { PhysicalResourceId: physicalId, Data: { Applied: result.applied.join(',') || 'none' } };
  };
}
