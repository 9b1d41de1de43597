/**
 * The AWS resources of one project, created in moto as the stack creates them in AWS:
 *
 *   landing bucket (versioned) ── s3:ObjectCreated:* under each of STAGED_PREFIXES ──▶ stage queue
 *   stage queue ──(maxReceiveCount receives)──▶ stage DLQ
 *   clean queue ──(maxReceiveCount receives)──▶ clean DLQ
 *
 * Idempotent: call it as often as you like; changed options (visibility timeout, receive count)
 * are applied to the existing queues. Local only: it refuses to run without `AWS_ENDPOINT_URL`.
 *
 * What moto does differently from AWS, which consumers must cope with: setting the notification
 * sends an `s3:TestEvent` message to the stage queue; event records carry no `versionId`; keys in
 * events are URL-encoded (as in AWS).
 */
import { createHash } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetBucketNotificationConfigurationCommand,
  HeadBucketCommand,
  ListObjectVersionsCommand,
  PutBucketEncryptionCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketVersioningCommand,
  PutPublicAccessBlockCommand,
  S3Client,
  type ObjectIdentifier,
  type QueueConfiguration,
} from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, GetQueueUrlCommand, PurgeQueueCommand, SetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { STAGED_PREFIXES } from '../contract/names.ts';

export interface LocalResourcesOptions {
  /** The pipeline's project (`a_project`); names the bucket and the queues. */
  project: string;
  /** Visibility timeout of the stage and clean queues, seconds. Short locally so retries come fast. @default 5 */
  visibilityTimeoutSeconds?: number;
  /** Receives of a message before it moves to its DLQ. @default 5, as the stack */
  maxReceiveCount?: number;
}

export interface LocalResources {
  bucket: string;
  stageQueueUrl: string;
  stageDlqUrl: string;
  cleanQueueUrl: string;
  cleanDlqUrl: string;
  stageQueueArn: string;
  cleanQueueArn: string;
}

/** As the stack (lib/work-queue.ts): work queues keep messages 4 days, DLQs the SQS maximum of 14. */
const QUEUE_RETENTION_SECONDS = 4 * 24 * 3600;
const DLQ_RETENTION_SECONDS = 14 * 24 * 3600;
const DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 5;
export const DEFAULT_MAX_RECEIVE_COUNT = 5;

/**
 * `CIVIC_ETL_LOCAL_NAMESPACE` (lower-case letters, digits and `-`, at most 20) goes into every local
 * resource name, so that two checkouts testing against one moto — each with its own database — never
 * take each other's queue messages. Unset (the default) for the demo and the CLI.
 */
function localNamespace(): string | undefined {
  const value = process.env.CIVIC_ETL_LOCAL_NAMESPACE?.trim();
  if (!value) return undefined;
  if (!/^[a-z0-9][a-z0-9-]{0,19}$/.test(value)) throw new Error(`CIVIC_ETL_LOCAL_NAMESPACE "${value}" must be lower-case letters, digits and -, at most 20`);
  return value;
}

/**
 * Names of a project's local resources. Project names may hold `_`, which bucket names may not:
 * it becomes `-`. Names too long for S3 (63) or SQS (80) are shortened with a hash suffix.
 */
export function localResourceNames(project: string): { bucket: string; stageQueue: string; stageDlq: string; cleanQueue: string; cleanDlq: string } {
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(project)) {
    throw new Error(`project "${project}" is not a valid project name (lower-case letters, digits and _, starting with a letter)`);
  }
  const namespace = localNamespace();
  const slug = (namespace ? `${namespace}-` : '') + project.replace(/_/g, '-');
  const name = (suffix: string, max: number) => {
    const full = `civic-etl-${slug}-${suffix}`;
    if (full.length <= max) return full;
    const hash = createHash('sha256')
      .update(`${namespace ?? ''}/${project}`)
      .digest('hex')
      .slice(0, 8);
    const room = max - `civic-etl--${hash}-${suffix}`.length;
    return `civic-etl-${slug.slice(0, room).replace(/-+$/, '')}-${hash}-${suffix}`;
  };
  return {
    bucket: name('landing', 63),
    stageQueue: name('stage', 80),
    stageDlq: name('stage-dlq', 80),
    cleanQueue: name('clean', 80),
    cleanDlq: name('clean-dlq', 80),
  };
}

function clients(): { s3: S3Client; sqs: SQSClient } {
  if (!process.env.AWS_ENDPOINT_URL && !(process.env.AWS_ENDPOINT_URL_S3 && process.env.AWS_ENDPOINT_URL_SQS)) {
    throw new Error('local resources are created in moto only, and AWS_ENDPOINT_URL is not set: call ensureServices() first (or source .local/env)');
  }
  const region = process.env.AWS_REGION || 'us-east-1';
  return { s3: new S3Client({ region, forcePathStyle: true }), sqs: new SQSClient({ region }) };
}

export async function ensureLocalResources(opts: LocalResourcesOptions): Promise<LocalResources> {
  const visibilityTimeout = opts.visibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS;
  const maxReceiveCount = opts.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT;
  if (!Number.isInteger(visibilityTimeout) || visibilityTimeout < 0 || visibilityTimeout > 43_200) {
    throw new Error(`visibilityTimeoutSeconds must be a whole number from 0 to 43200 (got ${visibilityTimeout})`);
  }
  if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
    throw new Error(`maxReceiveCount must be a whole number from 1 to 1000 (got ${maxReceiveCount})`);
  }
  const names = localResourceNames(opts.project);
  const { s3, sqs } = clients();
  try {
    const bucketArn = `arn:aws:s3:::${names.bucket}`;
    // S3 may send to a queue only on behalf of this bucket (the policy CDK's SqsDestination writes).
    const s3MaySend = (queueArn: string) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: 's3.amazonaws.com' },
            Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
            Resource: queueArn,
            Condition: { ArnLike: { 'aws:SourceArn': bucketArn } },
          },
        ],
      });

    const work = async (queueName: string, dlqName: string) => {
      const dlq = await ensureQueue(sqs, dlqName, { MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS) });
      const queue = await ensureQueue(sqs, queueName, {
        VisibilityTimeout: String(visibilityTimeout),
        MessageRetentionPeriod: String(QUEUE_RETENTION_SECONDS),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount }),
      });
      return { queue, dlq };
    };
    const stage = await work(names.stageQueue, names.stageDlq);
    const clean = await work(names.cleanQueue, names.cleanDlq);
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl: stage.queue.url, Attributes: { Policy: s3MaySend(stage.queue.arn) } }));

    await ensureBucket(s3, names.bucket);
    await ensureStagedNotification(s3, names.bucket, stage.queue.arn);

    return {
      bucket: names.bucket,
      stageQueueUrl: stage.queue.url,
      stageDlqUrl: stage.dlq.url,
      cleanQueueUrl: clean.queue.url,
      cleanDlqUrl: clean.dlq.url,
      stageQueueArn: stage.queue.arn,
      cleanQueueArn: clean.queue.arn,
    };
  } finally {
    s3.destroy();
    sqs.destroy();
  }
}

async function ensureQueue(sqs: SQSClient, name: string, attributes: Record<string, string>): Promise<{ url: string; arn: string }> {
  let url: string | undefined;
  try {
    url = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
  } catch (error) {
    if (!isQueueMissing(error)) throw error;
  }
  if (url) {
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }));
  } else {
    url = (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl;
  }
  if (!url) throw new Error(`SQS returned no URL for queue ${name}`);
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
  if (!arn) throw new Error(`SQS returned no ARN for queue ${name}`);
  return { url, arn };
}

function isQueueMissing(error: unknown): boolean {
  const name = (error as { name?: string; Code?: string }).name ?? '';
  return name === 'QueueDoesNotExist' || name === 'AWS.SimpleQueueService.NonExistentQueue' || (error as { Code?: string }).Code === 'AWS.SimpleQueueService.NonExistentQueue';
}

async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  let exists = true;
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status !== 404) throw error;
    exists = false;
  }
  if (!exists) {
    const region = await s3.config.region();
    try {
      await s3.send(
        new CreateBucketCommand({
          Bucket: bucket,
          ...(region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: region as never } }),
        }),
      );
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error;
    }
  }
  // as the stack: versioned (the ledger keys on version ids), private, encrypted at rest
  await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  await s3.send(
    new PutPublicAccessBlockCommand({
      Bucket: bucket,
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true },
    }),
  );
  await s3.send(
    new PutBucketEncryptionCommand({
      Bucket: bucket,
      ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
    }),
  );
}

/**
 * ObjectCreated under each staged prefix → the stage queue, as `LandingBucket.notifyStagedObjects`.
 * Written only when it differs from what is there: moto sends an `s3:TestEvent` on every write.
 */
async function ensureStagedNotification(s3: S3Client, bucket: string, stageQueueArn: string): Promise<void> {
  const wanted: QueueConfiguration[] = STAGED_PREFIXES.map((prefix) => ({
    Id: `stage-${prefix.replace(/\/$/, '')}`,
    QueueArn: stageQueueArn,
    Events: ['s3:ObjectCreated:*'],
    Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: prefix }] } },
  }));
  const current = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
  const signature = (configs: QueueConfiguration[] | undefined) =>
    JSON.stringify(
      (configs ?? [])
        .map((c) => ({
          arn: c.QueueArn,
          events: [...(c.Events ?? [])].sort(),
          rules: (c.Filter?.Key?.FilterRules ?? []).map((r) => `${String(r.Name).toLowerCase()}=${r.Value}`).sort(),
        }))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
  const others = (current.TopicConfigurations?.length ?? 0) + (current.LambdaFunctionConfigurations?.length ?? 0) + (current.EventBridgeConfiguration ? 1 : 0);
  if (others === 0 && signature(current.QueueConfigurations) === signature(wanted)) return;
  await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: bucket, NotificationConfiguration: { QueueConfigurations: wanted } }));
}

/**
 * Empty a project's local resources between tests: every object version and delete marker of the
 * bucket, then every message of the four queues (the notification config stays).
 */
export async function purgeLocalResources(res: LocalResources): Promise<void> {
  const { s3, sqs } = clients();
  try {
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    for (;;) {
      const page = await s3.send(new ListObjectVersionsCommand({ Bucket: res.bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
      const objects: ObjectIdentifier[] = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]
        .filter((v) => v.Key !== undefined)
        .map((v) => ({ Key: v.Key!, ...(v.VersionId ? { VersionId: v.VersionId } : {}) }));
      for (let i = 0; i < objects.length; i += 1000) {
        const out = await s3.send(new DeleteObjectsCommand({ Bucket: res.bucket, Delete: { Objects: objects.slice(i, i + 1000), Quiet: true } }));
        if (out.Errors?.length) {
          const e = out.Errors[0]!;
          throw new Error(`could not delete ${out.Errors.length} object version(s) from ${res.bucket}, e.g. ${e.Key} ${e.VersionId ?? ''}: ${e.Code} ${e.Message ?? ''}`);
        }
      }
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      versionMarker = page.NextVersionIdMarker;
    }
    for (const url of [res.stageQueueUrl, res.stageDlqUrl, res.cleanQueueUrl, res.cleanDlqUrl]) {
      try {
        await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
      } catch (error) {
        // AWS allows one purge a minute; moto does not mind. Locally, a purge in progress is as good.
        if ((error as { name?: string }).name !== 'PurgeQueueInProgress') throw error;
      }
    }
  } finally {
    s3.destroy();
    sqs.destroy();
  }
}

/** A step's local work queue and its DLQ, as they are. */
export interface LocalQueuePair {
  step: 'stage' | 'clean';
  queueUrl: string;
  queueArn: string;
  dlqUrl: string;
  dlqArn: string;
}

/**
 * A project's local work queues and DLQs (moto) as they are, read only: nothing is created and no
 * attribute is set, so the visibility timeout and redrive policy the runner gave them stay. A step
 * whose queue or DLQ is not made yet (`civic-etl run` or `upload` makes them) is left out.
 */
export async function findLocalQueues(project: string): Promise<LocalQueuePair[]> {
  const { sqs } = clients();
  const names = localResourceNames(project);
  const find = async (name: string): Promise<{ url: string; arn: string } | undefined> => {
    let url: string | undefined;
    try {
      url = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
    } catch (error) {
      if (isQueueMissing(error)) return undefined;
      throw error;
    }
    if (!url) return undefined;
    const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
    if (!arn) throw new Error(`SQS returned no ARN for queue ${name}`);
    return { url, arn };
  };
  try {
    const out: LocalQueuePair[] = [];
    for (const [step, queueName, dlqName] of [
      ['stage', names.stageQueue, names.stageDlq],
      ['clean', names.cleanQueue, names.cleanDlq],
    ] as const) {
      const [queue, dlq] = [await find(queueName), await find(dlqName)];
      if (queue && dlq) out.push({ step, queueUrl: queue.url, queueArn: queue.arn, dlqUrl: dlq.url, dlqArn: dlq.arn });
    }
    return out;
  } finally {
    sqs.destroy();
  }
}

/**
 * Messages waiting in a project's local dead-letter queues (moto), without creating anything: a
 * queue not made yet counts as empty.
 */
export async function deadLetterDepths(project: string): Promise<{ step: 'stage' | 'clean'; queueUrl: string; messages: number }[]> {
  const { sqs } = clients();
  const names = localResourceNames(project);
  const out: { step: 'stage' | 'clean'; queueUrl: string; messages: number }[] = [];
  for (const [step, name] of [
    ['stage', names.stageDlq],
    ['clean', names.cleanDlq],
  ] as const) {
    let queueUrl: string | undefined;
    try {
      queueUrl = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
    } catch (error) {
      if (isQueueMissing(error)) continue;
      throw error;
    }
    if (!queueUrl) continue;
    const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
    const a = attrs.Attributes ?? {};
    out.push({ step, queueUrl, messages: Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) });
  }
  return out;
}
