import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { getPool } from '../../functions/common/db.ts';
import { rows } from './support.ts';

const run = (pipeline: string) =>
  spawnSync(process.execPath, ['bin/civic-etl.mjs', 'run', '--pipeline', pipeline, '--upload-examples'], {
    encoding: 'utf8',
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
    timeout: 300_000,
  });

describe('the Amsterdam example: reports in RD New, per neighbourhood', () => {
  it('puts each report in the buurt whose polygon contains it and counts them per buurt', async () => {
    const r = run('pipelines/amsterdam/pipeline.yaml');
    expect(r.status, r.stderr).toBe(0);

    // expected from the CSV alone: the buurten are a 5 × 4 grid of 600 m squares from (119900, 486200)
    const expected = new Map<string, number>();
    let outside = 0;
    for (const line of readFileSync('pipelines/amsterdam/data/meldingen.csv', 'utf8').trim().split('\n').slice(1)) {
      const [, , , x, y] = line.split(';').map(Number);
      const col = Math.floor((x! - 119_900) / 600);
      const row = Math.floor((y! - 486_200) / 600);
      if (col < 0 || col > 4 || row < 0 || row > 3) outside++;
      else expected.set(`A${String(row * 5 + col).padStart(2, '0')}`, (expected.get(`A${String(row * 5 + col).padStart(2, '0')}`) ?? 0) + 1);
    }
    const pool = await getPool();
    const perBuurt = await rows<{ code: string; n: number }>(pool, 'SELECT code, meldingen_count AS n FROM amsterdam.meldingen_per_buurt ORDER BY code');
    const unplaced = await rows(pool, 'SELECT count(*)::int AS n FROM amsterdam.meldingen_met_buurt WHERE buurten_code IS NULL');
    const srids = await rows(pool, 'SELECT DISTINCT ST_SRID(geom) AS srid FROM amsterdam.meldingen UNION SELECT DISTINCT ST_SRID(geom) FROM amsterdam.buurten');

    expect(outside).toBe(5);
    expect(perBuurt).toHaveLength(20);
    expect(Object.fromEntries(perBuurt.map((b) => [b.code, b.n]))).toEqual(
      Object.fromEntries(
        [...Array(20).keys()].map((i) => {
          const code = `A${String(i).padStart(2, '0')}`;
          return [code, expected.get(code) ?? 0];
        }),
      ),
    );
    expect(unplaced).toEqual([{ n: outside }]);
    expect(srids).toEqual([{ srid: 28992 }]);
  });
});

describe('the Chicago example: programs by community area name and by location', () => {
  it('places every program in one community area polygon, mostly the one its supplier named', async () => {
    const r = run('pipelines/chicago/pipeline.yaml');
    expect(r.status, r.stderr).toBe(0);

    const pool = await getPool();
    const [placed] = await rows<{ n: number; matched: number; agree: number }>(
      pool,
      `SELECT count(*)::int AS n, count(area_number)::int AS matched,
              count(*) FILTER (WHERE etl.normalised(community_area) = etl.normalised(community_areas_name))::int AS agree
         FROM (SELECT p.community_area, v.community_areas_area_number AS area_number, v.community_areas_name
                 FROM chicago.programs_in_community_areas v JOIN chicago.programs p USING (program_id)) x`,
    );
    const [perArea] = await rows(pool, 'SELECT count(*)::int AS areas, sum(programs)::int AS programs FROM chicago.programs_per_10k_by_location');

    expect(placed!.n).toBe(296);
    expect(placed!.matched).toBe(296);
    expect(placed!.agree / placed!.n).toBeGreaterThan(0.8); // the rest lie near a boundary, as real addresses do
    expect(perArea).toEqual({ areas: 77, programs: 296 });
  });
});
