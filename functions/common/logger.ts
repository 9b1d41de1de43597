import { Logger } from '@aws-lambda-powertools/logger';

/** The one logger of the runtime. JSON lines on stdout; level from POWERTOOLS_LOG_LEVEL (default INFO). */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'civic-etl' });
