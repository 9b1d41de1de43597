import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SecretsManagerClient, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';

/**
 * AWS clients. Endpoints come from the SDK's own environment (`AWS_ENDPOINT_URL`, or per service
 * `AWS_ENDPOINT_URL_S3`…), so the same code talks to AWS or to moto on loopback.
 * Path-style addressing is forced when an endpoint is overridden (moto serves no bucket subdomains).
 */
let s3: S3Client | undefined;
let sqs: SQSClient | undefined;
let secrets: SecretsManagerClient | undefined;

export function s3Client(): S3Client {
  const endpointOverridden = Boolean(process.env.AWS_ENDPOINT_URL || process.env.AWS_ENDPOINT_URL_S3);
  return (s3 ??= new S3Client({ forcePathStyle: endpointOverridden }));
}
export function sqsClient(): SQSClient {
  return (sqs ??= new SQSClient({}));
}
export function secretsClient(): SecretsManagerClient {
  return (secrets ??= new SecretsManagerClient({}));
}

/** The parsed JSON value of a secret. The value never appears in errors: only the secret's id. */
export async function readJsonSecret(secretId: string): Promise<Record<string, unknown>> {
  const out = await secretsClient().send(new GetSecretValueCommand({ SecretId: secretId }));
  if (!out.SecretString) throw new Error(`secret ${secretId} has no string value`);
  try {
    const parsed: unknown = JSON.parse(out.SecretString);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through: never echo the value
  }
  throw new Error(`secret ${secretId} is not a JSON object`);
}
