/**
 * Two kinds of failure drive the batch bookkeeping:
 * - a PermanentError (bad input, unknown dataset) is recorded in the ledger and the message is
 *   acknowledged — retrying cannot help;
 * - anything else is transient (database unreachable, throttling): the message is returned to the
 *   queue and, after maxReceiveCount receives, lands in the DLQ.
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

/** A required setting is missing or malformed; thrown at module load so the function fails fast. */
export class ConfigurationError extends Error {
  override name = 'ConfigurationError';
}

export function isPermanent(error: unknown): error is PermanentError {
  return error instanceof PermanentError;
}

/** Message of any thrown value, without stack. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
