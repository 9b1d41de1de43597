/**
 * Throwaway databases for the SQL source tests: one in the local MariaDB (`MARIADB_URL`, started by
 * scripts/services.sh) with a user of its own and a password, one in the local PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { LOCAL_ENV_FILE, parseEnvFile, runServicesScript } from '../../local/services.ts';

export interface ThrowawayDatabase {
  /** What the source's secret holds. */
  credentials: { host: string; port: number; database: string; username: string; password: string };
  /** Run statements as the database's owner (an admin connection to it). */
  exec(sql: string, values?: unknown[]): Promise<unknown>;
  drop(): Promise<void>;
}

/**
 * The local MariaDB's URL. A `.local/env` written before MariaDB was part of the local services
 * has no MARIADB_URL: then `scripts/services.sh start` adds it (installing MariaDB if need be).
 */
export async function mariadbUrl(): Promise<string> {
  if (process.env.MARIADB_URL && (await answers(process.env.MARIADB_URL))) return process.env.MARIADB_URL;
  await runServicesScript('start');
  const url = parseEnvFile(readFileSync(LOCAL_ENV_FILE, 'utf8')).MARIADB_URL;
  if (!url) throw new Error(`scripts/services.sh start wrote no MARIADB_URL to ${LOCAL_ENV_FILE}`);
  process.env.MARIADB_URL = url;
  return url;
}

async function answers(url: string): Promise<boolean> {
  try {
    const c = await mysql.createConnection({ uri: url, connectTimeout: 3000 });
    await c.end();
    return true;
  } catch {
    return false;
  }
}

/** A MariaDB database `it_sql_…` and a user with a password that may use only it. */
export async function throwawayMariadb(): Promise<ThrowawayDatabase> {
  const url = new URL(await mariadbUrl());
  const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
  const database = `it_sql_${suffix}`;
  const username = `it_sql_${suffix}`;
  const password = `pw-${randomUUID()}`;
  const admin = await mysql.createConnection({ uri: url.href, multipleStatements: true });
  await admin.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await admin.query(`CREATE USER '${username}'@'%' IDENTIFIED BY '${password}'`);
  await admin.query(`GRANT ALL PRIVILEGES ON ${database}.* TO '${username}'@'%'`);
  await admin.query(`USE ${database}`);
  await admin.query("SET time_zone = '+00:00'");
  return {
    credentials: { host: url.hostname, port: Number(url.port || 3306), database, username, password },
    exec: async (sql, values) => (await admin.query(sql, values))[0],
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${database}; DROP USER IF EXISTS '${username}'@'%'`);
      await admin.end();
    },
  };
}

/** A PostgreSQL database `it_sql_…` in the local cluster (its superuser; the cluster trusts loopback, so any password passes). */
export async function throwawayPostgres(): Promise<ThrowawayDatabase> {
  const url = new URL(process.env.DATABASE_URL!);
  const database = `it_sql_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
  const server = new pg.Client({ connectionString: url.href });
  await server.connect();
  await server.query(`CREATE DATABASE ${database}`);
  await server.end();
  const inside = new URL(url.href);
  inside.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: inside.href });
  await client.connect();
  return {
    credentials: { host: url.hostname, port: Number(url.port || 5432), database, username: decodeURIComponent(url.username), password: `pw-${randomUUID()}` },
    exec: async (sql, values) => (await client.query(sql, values as unknown[])).rows,
    drop: async () => {
      await client.end();
      const again = new pg.Client({ connectionString: url.href });
      await again.connect();
      await again.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await again.end();
    },
  };
}
