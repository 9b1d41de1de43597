import * as z from 'zod/mini';
import '../../contract/zod-mini.ts';
import type { ObjectRef } from '../common/ledger.ts';
import { PermanentError } from '../common/errors.ts';

const s3Record = z.object({
  eventName: z.string(),
  s3: z.object({
    bucket: z.object({ name: z.string() }),
    object: z.object({
      key: z.string(),
      size: z.optional(z.number()),
      eTag: z.optional(z.string()),
      versionId: z.optional(z.string()),
    }),
  }),
});

const notification = z.union([
  z.object({ Records: z.array(s3Record) }),
  // S3 sends one of these when a notification configuration is saved; it names no object.
  z.object({ Event: z.literal('s3:TestEvent') }),
]);

/**
 * The object versions an SQS message body (an S3 event notification) names. Keys arrive
 * URL-encoded with `+` for spaces. A malformed body is permanent: it will never parse.
 */
export function objectsInMessage(body: string): ObjectRef[] {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new PermanentError('message body is not JSON: not an S3 event notification');
  }
  const parsed = notification.safeParse(json);
  if (!parsed.success) throw new PermanentError(`message is not an S3 event notification: ${parsed.error.issues[0]?.message}`);
  if (!('Records' in parsed.data)) return [];
  return parsed.data.Records.filter((r) => r.eventName.startsWith('ObjectCreated')).map((r) => ({
    bucket: r.s3.bucket.name,
    key: decodeURIComponent(r.s3.object.key.replace(/\+/g, ' ')),
    versionId: r.s3.object.versionId,
    etag: r.s3.object.eTag,
    size: r.s3.object.size,
  }));
}
