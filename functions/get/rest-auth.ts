import type { RestSourceDefinition } from './fetch-rest.ts';
import { PermanentError } from '../common/errors.ts';
import { logger } from '../common/logger.ts';
import { redactUrl } from '../common/urls.ts';
import { RequestFailedError, type HttpClient } from './http-client.ts';

type AuthDefinition = NonNullable<RestSourceDefinition['auth']>;

/**
 * How requests to a REST source are authenticated. `apply` adds credentials to one request (a
 * copy of its URL and its headers, so credentials never reach the URLs we remember or report);
 * `refresh` is called after a 401 (at most once per request) and says whether retrying can help (only a fresh oauth2
 * token can).
 */
export interface RestAuth {
  apply(url: URL, headers: Record<string, string>): Promise<void>;
  refresh(): boolean;
  /** Tokens asked for again (expiring, or after a 401), for auths that have tokens. */
  renewals?(): number;
}

export const noAuth: RestAuth = { apply: async () => undefined, refresh: () => false };

/** What a token request needs: the run's clock, and the run's HTTP client, which sends it (retried, counted and logged with the run's other requests; without the run's credentials). */
export interface TokenOptions {
  now: () => number;
  client: () => HttpClient;
}

/** Renew an oauth2 token this long before it expires, so it does not expire in flight. */
const EXPIRY_MARGIN_MS = 30_000;

/**
 * The credentials of `auth`, read from its secret once per run. Missing fields are named, their
 * values never shown.
 */
export async function restAuth(auth: AuthDefinition | undefined, readSecret: (name: string) => Promise<Record<string, unknown>>, opts: TokenOptions): Promise<RestAuth> {
  if (!auth) return noAuth;
  const secret = await readSecret(auth.secret);
  const field = (name: string): string => {
    const v = secret[name];
    if (typeof v !== 'string' || v === '') throw new PermanentError(`secret ${auth.secret} needs a string "${name}" for ${auth.type} auth`);
    return v;
  };
  switch (auth.type) {
    case 'bearer': {
      const token = field('token');
      return { apply: async (_u, h) => void (h.authorization = `Bearer ${token}`), refresh: () => false };
    }
    case 'basic': {
      const encoded = Buffer.from(`${field('username')}:${field('password')}`).toString('base64');
      return { apply: async (_u, h) => void (h.authorization = `Basic ${encoded}`), refresh: () => false };
    }
    case 'apiKey': {
      const key = field('key');
      if (auth.in === 'query') {
        const name = auth.name ?? 'api_key';
        return { apply: async (u) => u.searchParams.set(name, key), refresh: () => false };
      }
      const name = (auth.name ?? 'x-api-key').toLowerCase();
      return { apply: async (_u, h) => void (h[name] = key), refresh: () => false };
    }
    case 'oauth2':
      return clientCredentials(auth.tokenUrl!, field('client_id'), field('client_secret'), opts);
  }
}

/**
 * OAuth 2 client-credentials grant (RFC 6749 §4.4): a token is asked for when there is none or it
 * is about to expire, and asked for again once when the API answers 401 (revoked or expired early).
 */
export function clientCredentials(tokenUrl: string, clientId: string, clientSecret: string, opts: TokenOptions): RestAuth {
  let token: { value: string; expiresAt: number } | undefined;
  // requests in flight at once share one token request
  let pending: Promise<string> | undefined;
  let issued = 0;
  let rejected = false;
  async function obtain(): Promise<string> {
    if (token && opts.now() < token.expiresAt - EXPIRY_MARGIN_MS) return token.value;
    if (!pending && issued > 0) {
      logger.warn(`oauth2: asking ${redactUrl(tokenUrl)} for a new token (${rejected ? 'the API answered 401' : 'the token expires within 30 s'})`, { renewal: issued });
    }
    pending ??= request().finally(() => (pending = undefined));
    return pending;
  }
  async function request(): Promise<string> {
    const shown = redactUrl(tokenUrl);
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString();
    const how = { method: 'POST' as const, body: form, headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, authenticate: false, timeoutCoversRead: true };
    try {
      return await opts.client().send(new URL(tokenUrl), how, async (res, { after }) => {
        const body = (await res.json().catch(() => undefined)) as { access_token?: unknown; expires_in?: unknown } | undefined;
        if (!res.ok || typeof body?.access_token !== 'string') {
          throw new Error(`oauth2 token request to ${shown} answered ${res.status} ${res.statusText}${after} without an access_token`);
        }
        const lifetime = typeof body.expires_in === 'number' ? body.expires_in * 1000 : 3_600_000;
        token = { value: body.access_token, expiresAt: opts.now() + lifetime };
        issued++;
        rejected = false;
        return token.value;
      });
    } catch (cause) {
      if (cause instanceof RequestFailedError) throw new Error(`oauth2 token request to ${shown} failed after ${cause.attempts} attempts: ${cause.reason}`, { cause });
      throw cause;
    }
  }
  return {
    apply: async (_u, h) => void (h.authorization = `Bearer ${await obtain()}`),
    refresh: () => {
      token = undefined;
      rejected = true;
      return true;
    },
    renewals: () => Math.max(0, issued - 1),
  };
}
