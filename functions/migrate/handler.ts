import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { getPool } from '../common/db.ts';
import { classify } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import { currentPipeline } from '../common/pipeline.ts';
import { migrate } from './migrate.ts';

const pipeline = currentPipeline();

/**
 * onEvent handler of the migration custom resource (CDK Provider framework): apply pending
 * migrations and the project's schemas on every Create/Update; Delete leaves the data alone.
 */
export const handler = async (event: CloudFormationCustomResourceEvent) => {
  const physicalId = `civic-etl-migrations-${pipeline.project}`;
  if (event.RequestType === 'Delete') return { PhysicalResourceId: physicalId };
  let result;
  try {
    result = await migrate(await getPool(), pipeline.project);
  } catch (error) {
    // the deploy fails with it (CloudFormation shows the message); the log says which kind it is
    const failure = classify(error);
    logger.error(`migrations failed (${failure.kind}): ${failure.message}`, { step: 'migrate', kind: failure.kind, error: failure.message });
    throw error;
  }
  logger.info('migrations applied', { ...result });
  return { PhysicalResourceId: physicalId, Data: { Applied: result.applied.join(',') || 'none' } };
};
