/**
 * TLS verification for fetched sources: on, always, unless a source sets `verifyTls: false` — for
 * a test server with a self-signed certificate, never for production data. Each such source is
 * logged loudly once per container.
 */
import { Agent } from 'undici';
import { logger } from '../common/logger.ts';

let insecure: Agent | undefined;
const warned = new Set<string>();

/** Extra `fetch` options for a source: none when it verifies TLS (the default). */
export function tlsOptions(verifyTls: boolean | undefined, source: string): { dispatcher?: Agent } {
  if (verifyTls !== false) return {};
  if (!warned.has(source)) {
    warned.add(source);
    logger.warn(`TLS VERIFICATION IS OFF for ${source} (verifyTls: false): its certificate is not checked and anyone on the path can read or change what it sends. Use this for test servers only.`);
  }
  insecure ??= new Agent({ connect: { rejectUnauthorized: false } });
  return { dispatcher: insecure };
}
