/**
 * Runs in every test worker: make sure the local services answer and their addresses
 * (DATABASE_URL, AWS_ENDPOINT_URL, dummy moto keys) are in this worker's environment.
 */
import { ensureServices } from '../local/services.ts';

process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
// the steps' EMF metric lines (functions/common/metrics.ts); a test that reads them turns them on
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
await ensureServices();
