import { describe, expect, it } from 'vitest';
import { getPool } from '../../functions/common/db.ts';
import { migrate } from '../../functions/migrate/migrate.ts';
import { MIGRATIONS } from '../../functions/migrate/migrations.ts';
import { rows } from './support.ts';

describe('migrations', () => {
  it('apply once, then change nothing on the next deploy', async () => {
    const pool = await getPool();
    await migrate(pool, 'it_migrate');

    const again = await migrate(pool, 'it_migrate');

    expect(again).toEqual({ applied: [], alreadyApplied: MIGRATIONS.map((m) => m.version) });
    expect(await rows(pool, `SELECT nspname FROM pg_namespace WHERE nspname IN ('etl', 'it_migrate', 'it_migrate_staging') ORDER BY 1`)).toEqual([
      { nspname: 'etl' },
      { nspname: 'it_migrate' },
      { nspname: 'it_migrate_staging' },
    ]);
  });

  it('make PostGIS available', async () => {
    const pool = await getPool();
    await migrate(pool, undefined);

    const [r] = await rows<{ wkt: string }>(pool, `SELECT ST_AsText(ST_Transform(ST_SetSRID(ST_MakePoint(121000, 487000), 28992), 4326)) AS wkt`);

    // a point in Amsterdam (RD New) lands near 4.88 E, 52.37 N
    const [lon, lat] = r!.wkt
      .replace(/POINT\(|\)/g, '')
      .split(' ')
      .map(Number);
    expect(lon).toBeCloseTo(4.88, 1);
    expect(lat).toBeCloseTo(52.37, 1);
  });

  it('refuse to run when a shipped migration was edited', async () => {
    const pool = await getPool();
    const edited = MIGRATIONS.map((m, i) => (i === 0 ? { ...m, sql: `${m.sql}\n-- edited` } : m));

    await expect(migrate(pool, undefined, edited)).rejects.toThrow(`migration ${MIGRATIONS[0]!.version} was changed after it was applied; add a new migration instead`);
  });

  it('tell whether a text value casts to a type, as the set-based clean needs', async () => {
    const pool = await getPool();
    const [r] = await rows(
      pool,
      `SELECT etl.is_valid_as('12', 'integer') AS a, etl.is_valid_as('twelve', 'integer') AS b, etl.is_valid_as('2024-02-30', 'date') AS c, etl.is_valid_as('99999999999', 'integer') AS d`,
    );
    expect(r).toEqual({ a: true, b: false, c: false, d: false });
  });
});
