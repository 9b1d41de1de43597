/**
 * Runs in every worker of the integration project: make sure the local services answer and their
 * addresses (DATABASE_URL, AWS_ENDPOINT_URL, dummy moto keys) are in this worker's environment.
 */
import { createHash } from 'node:crypto';
import { ensureServices } from '../local/services.ts';

await ensureServices();
// a test run on its own database (another checkout, a second run) gets its own bucket and queues in
// the shared moto, named after that database: otherwise two runs take each other's queue messages
{
  const database = new URL(process.env.DATABASE_URL ?? 'postgres://x/civic_etl').pathname.slice(1);
  if (database && database !== 'civic_etl' && process.env.CIVIC_ETL_LOCAL_NAMESPACE === undefined) {
    const slug = database
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '');
    // a long name keeps a hash of the whole so that two databases never share a namespace
    process.env.CIVIC_ETL_LOCAL_NAMESPACE = slug && slug.length <= 20 ? slug : `${slug.slice(0, 11).replace(/-+$/, '')}-${createHash('sha256').update(database).digest('hex').slice(0, 8)}`;
  }
}
