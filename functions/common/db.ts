import pg from 'pg';
import { ENV } from '../../contract/names.ts';
import { dbEnv, parseEnv, type DbConfig } from './config.ts';
import { ConfigurationError, messageOf } from './errors.ts';
import { logger } from './logger.ts';

/**
 * The database connection. `DATABASE_URL` wins (local runs, the CLI); otherwise the RDS-generated
 * secret named by `CIVIC_ETL_DB_SECRET_ARN` (`host`, `port`, `username`, `password`, `dbname`),
 * over TLS verified against the CA bundle Lambda ships (`NODE_EXTRA_CA_CERTS`). The password is
 * read from the secret for every new connection, so a rotated password is picked up without a
 * cold start. One pool per process: the first configuration that asks makes it.
 */
let pool: pg.Pool | undefined;
let pending: Promise<pg.Pool> | undefined;

/** Anything that runs a query: the pool, or a client inside a transaction. */
export type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

/** The pool, configured from an environment (the CLI, scripts and tests): parsed with the same schema as the functions'. */
export async function getPool(env: NodeJS.ProcessEnv = process.env): Promise<pg.Pool> {
  if (pool) return pool;
  return databasePool(parseEnv(dbEnv, env, 'the database connection'));
}

/** The pool, from a parsed configuration (the handlers: functions/common/config.ts). */
export async function databasePool(config: DbConfig): Promise<pg.Pool> {
  if (pool) return pool;
  pending ??= createPool(config).then((p) => (pool = p));
  try {
    return await pending;
  } finally {
    pending = undefined;
  }
}

async function createPool(config: DbConfig): Promise<pg.Pool> {
  // a session that crashed inside a transaction must not hold its locks for long
  // JIT compiling is for long analytic queries; ours are single scans whose compile time (seconds,
  // on tables without statistics yet) would cost more than it saves
  const common = { max: config.poolSize, application_name: 'civic-etl', idle_in_transaction_session_timeout: 120_000, options: '-c jit=off' };
  if (config.url) return withErrorHandler(new pg.Pool({ connectionString: config.url, ...common }));
  const arn = config.secretArn;
  if (!arn) throw new ConfigurationError(`set ${ENV.databaseUrl} or ${ENV.databaseSecretArn} to reach the database`);
  // the AWS SDK only when a secret is read: `civic-etl load` with a database URL starts without it (0.2 s)
  const { readJsonSecret } = await import('./aws.ts');
  const s = await readJsonSecret(arn);
  const field = (k: string) => {
    const v = s[k];
    if (typeof v !== 'string' && typeof v !== 'number') throw new ConfigurationError(`database secret ${arn} lacks "${k}"`);
    return String(v);
  };
  return withErrorHandler(
    new pg.Pool({
      host: field('host'),
      port: Number(field('port')),
      user: field('username'),
      password: async () => {
        const current = (await readJsonSecret(arn)).password;
        if (typeof current !== 'string') throw new ConfigurationError(`database secret ${arn} lacks "password"`);
        return current;
      },
      database: typeof s.dbname === 'string' ? s.dbname : 'postgres',
      // TLS, verified, unless PGSSLMODE=disable (a database without TLS, e.g. on loopback)
      ssl: config.tls ? { rejectUnauthorized: true } : false,
      ...common,
      connectionTimeoutMillis: 10_000,
    }),
  );
}

/**
 * A lost connection (the server restarted, a backend terminated, ECONNRESET) must not crash the
 * process: node-postgres emits 'error' on the pool for an idle client and on the client itself
 * while it is checked out, and an 'error' event nobody listens to ends the process. Both are
 * logged here; the query in progress fails with the same error, which the step classifies as
 * retryable (common/errors.ts), and the broken client is discarded by the pool on release.
 */
function withErrorHandler(p: pg.Pool): pg.Pool {
  p.on('error', (error) => logger.warn('database connection lost (idle client)', { error: messageOf(error) }));
  p.on('connect', (client) => {
    client.on('error', (error) => logger.warn('database connection lost (client in use): its query fails and is retried', { error: messageOf(error) }));
  });
  return p;
}

/** Close the pool (CLI and tests; Lambda keeps it for the next invocation). */
export async function closePool(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.end();
}

/** Run `fn` in one transaction on one client; rolls back on any error. */
export async function inTransaction<T>(p: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await p.connect();
  let released = false;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    // a connection already lost cannot roll back: the server did when it dropped it
    await client.query('ROLLBACK').catch(() => undefined);
    released = true;
    // a client whose connection failed is not handed out again
    client.release(isConnectionError(error) ? (error as Error) : undefined);
    throw error;
  } finally {
    if (!released) client.release();
  }
}

/** The connection itself failed (not the statement): the server ended it, or the socket broke. */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (/^(08|57P)/.test(code) || /^E(CONNRESET|CONNREFUSED|PIPE|TIMEDOUT)$/.test(code))) return true;
  return /Connection terminated|connection is closed|Client has encountered a connection error/i.test(messageOf(error));
}

/** Quote an identifier for SQL (`"a""b"`). */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quote a literal for SQL (`'it''s'`); for DDL where parameters are not allowed. */
export function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
