/**
 * One error model for every step (functions/*\/handler.ts, local/runner.ts). A failure is one of:
 * - **permanent** — bad input (an unreadable or malformed file, data PostgreSQL rejects): the
 *   load is marked `failed` in the ledger with its cause (file, line, column) and the message is
 *   acknowledged — retrying the same bytes cannot help; a queue message that is not what the step
 *   reads names no load: its body and the reason are kept in etl.rejected_messages instead;
 * - **retryable** — infrastructure (database unreachable or dropped, throttling, a SQL error
 *   nobody planned for, such as a trigger raising an exception): the load keeps its status, the
 *   error and the attempt are recorded, and the message is returned to the queue; after
 *   maxReceiveCount receives the queue moves it to its DLQ;
 * - **blocked** — the definition (or the deployment) must change first, e.g. a view whose SQL
 *   fails on the new table: the load is kept (staged), the error recorded, and the message retried
 *   like a retryable one, so once the definition is fixed a retry or a DLQ redrive applies it.
 * {@link classify} decides; it is the only place that does.
 */
export class PermanentError extends Error {
  override name = 'PermanentError';
  constructor(
    message: string,
    /** Where in the input, when known: the file, the 1-based line and the column. */
    readonly position: { file?: string; line?: number; column?: string } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The definition (a view, a rule) or the deployment must change before the load can apply. */
export class BlockedError extends Error {
  override name = 'BlockedError';
}

/** A required setting is missing or malformed; thrown at module load so the function fails fast. */
export class ConfigurationError extends BlockedError {
  override name = 'ConfigurationError';
}

/**
 * Retryable, and not a failure: the load waits for another one to be done first (a `references`
 * rule waiting for the referenced dataset's load, clean/order.ts). Each attempt is recorded like a
 * retryable failure's, but logged and counted as a wait (not an alarmed failed message) until the
 * queue's last attempt, which sends it to the DLQ like any retryable failure.
 */
export class WaitingError extends Error {
  override name = 'WaitingError';
}

/**
 * A queue message that is not what the step reads (not JSON, not an S3 event notification, not a
 * clean message): permanent — the same body never parses — so it is not retried. Never dropped:
 * the step logs it with its message id and keeps its body and the reason in
 * etl.rejected_messages (it names no object version, so it has no load in etl.loads), which
 * `civic-etl status` and `civic-etl dlq list` show.
 */
export class UnreadableMessageError extends PermanentError {
  override name = 'UnreadableMessageError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, {}, options);
  }
}

export function isPermanent(error: unknown): error is PermanentError {
  return error instanceof PermanentError;
}

/** Message of any thrown value, without stack, and without a password a URL in it carries ({@link redactCredentials}). */
export function messageOf(error: unknown): string {
  return redactCredentials(error instanceof Error ? error.message : String(error));
}

/**
 * `text` with the user name and password of every URL in it removed (`http://bob:pw@host/` →
 * `http://host/`) — what Node's fetch puts in its own errors ("Request cannot be constructed from
 * a URL that includes credentials: …"), a redirect's Location, a driver's connection string.
 */
export function redactCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#'"<>]*@/gi, '$1');
}

export type FailureKind = 'permanent' | 'retryable' | 'blocked';

export type Failure = { kind: 'permanent'; error: PermanentError; message: string } | { kind: 'retryable' | 'blocked'; error: unknown; message: string };

/** What node-postgres puts on an error the server sent. */
interface PgError {
  code?: string;
  message?: string;
  where?: string;
  severity?: string;
  column?: string;
}

/**
 * Which kind of failure `error` is (see the top of this file), with the message to record: for
 * an error that names the input, prefixed with the file. `file` is the object (or member) the
 * step was reading. A wrapped error (`cause`) is classified by what it wraps when the wrapper
 * itself says nothing.
 */
export function classify(error: unknown, where: { file?: string } = {}): Failure {
  if (error instanceof PermanentError) return { kind: 'permanent', error, message: error.message };
  if (error instanceof BlockedError) return { kind: 'blocked', error, message: error.message };
  const permanent = inputError(error, where.file);
  if (permanent) return { kind: 'permanent', error: permanent, message: permanent.message };
  if (isPgError(error) && error.code === '42501') {
    // insufficient privilege: the deployment's grants, not the data
    return { kind: 'blocked', error, message: describe(error) };
  }
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause !== undefined && cause !== error) {
    const inner = classify(cause, where);
    if (inner.kind !== 'retryable') return inner;
  }
  return { kind: 'retryable', error, message: describe(error) };
}

/**
 * An error that names the input as its cause, as a PermanentError naming the file: PostgreSQL's
 * data exceptions (SQLSTATE class 22: bad encoding, NUL, out of range…), syntax and naming errors
 * caused by the file's names (class 42: a column named `ctid`, a name too long, no columns at
 * all…) and limits (class 54: too many columns); a compressed file that does not decompress
 * (zlib, gzip CRC); an object version gone from S3; an object the step may not read (S3's 403,
 * a KMS key it may not use).
 */
function inputError(error: unknown, file: string | undefined): PermanentError | undefined {
  const at = file ? `${file}: ` : '';
  const already = (m: string) => (file && m.startsWith(file) ? m : `${at}${m}`);
  if (isPgError(error) && /^(22|42|54)/.test(error.code) && error.code !== '42501') {
    const m = /line (\d+)(?:, column ([^:]+))?/.exec(error.where ?? '');
    const record = m ? Number(m[1]) : undefined;
    return new PermanentError(
      `${already(error.message ?? '')}${record ? ` (record ${record} after the header)` : ''} (SQLSTATE ${error.code})`,
      {
        ...(file ? { file } : {}),
        ...(m?.[2] ? { column: m[2] } : error.column ? { column: error.column } : {}),
      },
      { cause: error },
    );
  }
  if (isPgError(error) && error.code === '08P01') {
    // the same bytes break the protocol again on every try: a NUL where PostgreSQL takes text
    return new PermanentError(`${at}PostgreSQL refused what was sent (${error.message}, SQLSTATE 08P01): the data holds what its protocol cannot carry, such as a NUL character`, file ? { file } : {}, {
      cause: error,
    });
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^Z_(DATA|BUF|STREAM|NEED_DICT)_ERROR$/.test(code)) {
    return new PermanentError(`${at}cannot be decompressed: ${messageOf(error)} (a truncated or damaged compressed file)`, file ? { file } : {}, { cause: error });
  }
  const s3 = error as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  if (s3 && (s3.name === 'NoSuchKey' || s3.name === 'NoSuchVersion' || s3.$metadata?.httpStatusCode === 412)) {
    return new PermanentError(`${at}the object version is gone or was replaced (${s3.name})`, file ? { file } : {}, { cause: error });
  }
  const denied = accessDenied(error);
  if (denied) return new PermanentError(`${at}${denied}`, file ? { file } : {}, { cause: error });
  return undefined;
}

/** S3's 403s that are about the request's credentials, not the object: they pass (new credentials, a synced clock). */
const CREDENTIAL_ERRORS = new Set(['SignatureDoesNotMatch', 'InvalidAccessKeyId', 'RequestTimeTooSkewed', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired']);

/**
 * An object the step may not read, as the AWS SDK reports it: S3's 403 (`AccessDenied`, or no
 * name at all for a HEAD, which has no body) — a bucket or key policy, or an object encrypted
 * with a KMS key the step may not use — or a KMS error passed on by S3 (`KMS.DisabledException`,
 * `KMS.NotFoundException`…). Reading the same version again gets the same answer: the file must be
 * uploaded again (with the landing key). The cause, without the request's details.
 */
function accessDenied(error: unknown): string | undefined {
  const e = error as { name?: string; message?: string; Code?: string; $metadata?: { httpStatusCode?: number } } | null;
  if (!e || typeof e !== 'object' || !e.$metadata) return undefined;
  const name = e.Code ?? e.name ?? '';
  const kms = /^KMS\./.test(name) || /\bkms\b|KMS key/i.test(e.message ?? '');
  if (!(e.$metadata.httpStatusCode === 403 && !CREDENTIAL_ERRORS.has(name)) && !/^KMS\./.test(name)) return undefined;
  const shown = name && name !== 'Unknown' && name !== 'UnknownError' && name !== '403' ? name : 'HTTP 403';
  const detail = e.message && e.message !== name && e.message !== 'UnknownError' ? `: ${e.message}` : '';
  return kms
    ? `the stage step may not decrypt this object (${shown}${detail}): it is encrypted with a KMS key the step may not use; upload it again with the landing bucket's key`
    : `the stage step may not read this object (${shown}${detail}, access denied by a bucket, object or KMS key policy); upload it again with the landing bucket's key, or fix the policy and replay it`;
}

function isPgError(error: unknown): error is PgError & { code: string } {
  const e = error as PgError | null;
  return typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string';
}

/** The message, with PostgreSQL's SQLSTATE or Node's error code when there is one. */
function describe(error: unknown): string {
  const message = messageOf(error);
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code && !message.includes(code) ? `${message} (${isPgError(error) ? 'SQLSTATE ' : ''}${code})` : message;
}
