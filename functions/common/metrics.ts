import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/**
 * Counts that CloudWatch alarms on (lib/alarms.ts), written as Embedded Metric Format log lines
 * by Powertools Metrics: CloudWatch Logs turns each line into a metric point, with no API call
 * from the function. Namespace from POWERTOOLS_METRICS_NAMESPACE (the stack sets its name),
 * dimensions `service` from POWERTOOLS_SERVICE_NAME (civic-etl-<step>) and `step` (stage, clean). The CLI turns them off
 * (POWERTOOLS_METRICS_DISABLED) so they never mix into its output.
 */
export const METRIC = {
  /** Messages a step reported as failed in its partial batch response: retried, then the DLQ. */
  failedMessages: 'FailedMessages',
  /** Loads a step rejected as bad input (permanent failures): recorded in the ledger, acknowledged. */
  rejectedLoads: 'RejectedLoads',
  /** Messages returned to the queue to wait for another load (not alarmed; their last attempt counts as failed). */
  waitingMessages: 'WaitingMessages',
  /** Messages no step could read (not an S3 event, not JSON…): acknowledged, so never in a DLQ; kept in etl.rejected_messages. */
  unreadableMessages: 'UnreadableMessages',
} as const;

export const DEFAULT_METRICS_NAMESPACE = 'civic-etl';

let metrics: Metrics | undefined;

/** The one Metrics of the runtime, made on first use (after the environment is set). */
export function stepMetrics(): Metrics {
  return (metrics ??= new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? DEFAULT_METRICS_NAMESPACE, serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'civic-etl' }));
}

/** Count a batch's failures and publish them (one EMF line); zero counts are published too, so an alarm sees "no failures" as data. */
export function publishBatchCounts(step: string, counts: { failed: number; rejected: number; waiting?: number; unreadable?: number }): void {
  const m = stepMetrics();
  m.addDimension('step', step);
  m.addMetric(METRIC.failedMessages, MetricUnit.Count, counts.failed);
  m.addMetric(METRIC.rejectedLoads, MetricUnit.Count, counts.rejected);
  m.addMetric(METRIC.unreadableMessages, MetricUnit.Count, counts.unreadable ?? 0);
  if (counts.waiting) m.addMetric(METRIC.waitingMessages, MetricUnit.Count, counts.waiting);
  m.publishStoredMetrics();
}
