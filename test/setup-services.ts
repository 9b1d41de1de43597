/**
 * Runs in every worker of the integration project: make sure the local services answer and their
 * addresses (DATABASE_URL, AWS_ENDPOINT_URL, dummy moto keys) are in this worker's environment.
 */
import { ensureServices } from '../local/services.ts';

await ensureServices();
