import pg from 'pg';
import { ENV } from '../../contract/names.ts';
import { readJsonSecret } from './aws.ts';
import { ConfigurationError } from './errors.ts';

/**
 * The database connection. `DATABASE_URL` wins (local runs, the CLI); otherwise the RDS-generated
 * secret named by `CIVIC_ETL_DB_SECRET_ARN` (`host`, `port`, `username`, `password`, `dbname`),
 * over TLS verified against the CA bundle Lambda ships (`NODE_EXTRA_CA_CERTS`). The password is
 * read from the secret for every new connection, so a rotated password is picked up without a
 * cold start.
 */
let pool: pg.Pool | undefined;
let pending: Promise<pg.Pool> | undefined;

export async function getPool(env: NodeJS.ProcessEnv = process.env): Promise<pg.Pool> {
  if (pool) return pool;
  pending ??= createPool(env).then((p) => (pool = p));
  try {
    return await pending;
  } finally {
    pending = undefined;
  }
}

async function createPool(env: NodeJS.ProcessEnv): Promise<pg.Pool> {
  const max = Number(env[ENV.dbPoolSize] ?? 4);
  // a session that crashed inside a transaction must not hold its locks for long
  // JIT compiling is for long analytic queries; ours are single scans whose compile time (seconds,
  // on tables without statistics yet) would cost more than it saves
  const common = { max, application_name: 'civic-etl', idle_in_transaction_session_timeout: 120_000, options: '-c jit=off' };
  const url = env[ENV.databaseUrl];
  if (url) return withErrorHandler(new pg.Pool({ connectionString: url, ...common }));
  const arn = env[ENV.databaseSecretArn];
  if (!arn) throw new ConfigurationError(`set ${ENV.databaseUrl} or ${ENV.databaseSecretArn} to reach the database`);
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
      ssl: env.PGSSLMODE === 'disable' ? false : { rejectUnauthorized: true },
      ...common,
      connectionTimeoutMillis: 10_000,
    }),
  );
}

/** An idle client that loses its connection must not crash the process. */
function withErrorHandler(p: pg.Pool): pg.Pool {
  p.on('error', () => undefined);
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
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Quote an identifier for SQL (`"a""b"`). */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quote a literal for SQL (`'it''s'`); for DDL where parameters are not allowed. */
export function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
