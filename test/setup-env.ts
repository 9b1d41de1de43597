/** Runs in every test worker, of every project: quiet logs and metrics unless a test turns them on. */
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
// the steps' EMF metric lines (functions/common/metrics.ts); a test that reads them turns them on
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
