import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { getPool } from '../../functions/common/db.ts';
import { localResourceNames } from '../../local/resources.ts';
import { rows } from './support.ts';

/**
 * The README's first command, end to end: the Chicago example uploaded as the suppliers would,
 * run through the local pipeline to completion.
 */
describe('the Chicago demo (civic-etl run --upload-examples)', () => {
  it('prints the combined view and the ledger, with the bad rows in quarantine', async () => {
    const r = spawnSync(process.execPath, ['bin/civic-etl.mjs', 'run', '--upload-examples'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
      timeout: 300_000,
    });

    expect(r.status, r.stderr).toBe(0);
    // civic-etl-chicago-landing, or with the test run's namespace (test/setup-services.ts)
    expect(r.stdout).toContain(`uploaded pipelines/chicago/data/programs.csv → s3://${localResourceNames('chicago').bucket}/incoming/cityparks/programs/programs.csv`);
    expect(r.stdout).toContain('view chicago.programs_with_community — 296 rows, first 5:');
    expect(r.stdout).toContain('view chicago.programs_per_community — 77 rows, first 5:');
    expect(r.stdout).toMatch(/programs +│ incoming\/cityparks\/programs\/programs\.csv +│ loaded +│ 300 +│ 296 +│ 4/);
    expect(r.stdout).toMatch(/community_snapshot +│ incoming\/cmap\/community_snapshot\/community_snapshot\.csv +│ loaded +│ 77 +│ 77 +│ 0/);

    const pool = await getPool();
    const [latest] = await rows<{ id: string }>(pool, `SELECT max(id) AS id FROM etl.loads WHERE project = 'chicago' AND dataset = 'programs'`);
    expect(await rows(pool, 'SELECT DISTINCT source_line::int AS line, rule FROM chicago.programs_quarantine WHERE load_id = $1 ORDER BY 1', [latest!.id])).toEqual([
      { line: 49, rule: 'type' },
      { line: 155, rule: 'type' },
      { line: 237, rule: 'type' },
      { line: 275, rule: 'unique' },
    ]);
    const [joined] = await rows(pool, 'SELECT count(*)::int AS n, count(population)::int AS with_population FROM chicago.programs_with_community');
    expect(joined).toEqual({ n: 296, with_population: 296 });
  });
});
