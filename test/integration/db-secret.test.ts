import { randomUUID } from 'node:crypto';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterEach, describe, expect, it } from 'vitest';
import { secretsClient } from '../../functions/common/aws.ts';
import { closePool, getPool } from '../../functions/common/db.ts';

async function secret(value: object): Promise<string> {
  const name = `it-db-${randomUUID()}`;
  const out = await secretsClient().send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify(value) }));
  return out.ARN!;
}

const local = new URL(process.env.DATABASE_URL!);

afterEach(async () => {
  await closePool();
});

describe('the database connection from a Secrets Manager secret (as on AWS)', () => {
  it('connects with the RDS-style secret when no DATABASE_URL is given', async () => {
    const arn = await secret({ host: local.hostname, port: Number(local.port), username: local.username, password: 'from-the-secret', dbname: local.pathname.slice(1) });
    const env = { CIVIC_ETL_DB_SECRET_ARN: arn, PGSSLMODE: 'disable' };

    const pool = await getPool(env);

    expect((await pool.query('SELECT current_database() AS db')).rows).toEqual([{ db: local.pathname.slice(1) }]);
  });

  it('names the secret and the missing field, never a value', async () => {
    const arn = await secret({ host: local.hostname, username: 'u', password: 'p4ssw0rd-never-shown' });

    const failure = getPool({ CIVIC_ETL_DB_SECRET_ARN: arn });

    await expect(failure).rejects.toThrow(`database secret ${arn} lacks "port"`);
    await expect(failure).rejects.not.toThrow(/p4ssw0rd/);
  });

  it('says which variables to set when neither is', async () => {
    await expect(getPool({})).rejects.toThrow('set DATABASE_URL or CIVIC_ETL_DB_SECRET_ARN to reach the database');
  });
});
