/** What every fetcher is given: where to write, how to read its secrets, its clock and its time. */
import type { S3Client } from '@aws-sdk/client-s3';

export interface FetcherDeps {
  s3: S3Client;
  bucket: string;
  /** Reads a Secrets Manager secret holding a JSON object (credentials, request headers). */
  readSecret(name: string): Promise<Record<string, unknown>>;
  now?: () => Date;
  /** The run's time (default 10 minutes); the handler passes the invocation's remaining time. */
  timeoutMs?: number;
}
