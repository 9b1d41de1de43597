import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { profileStream } from '../../functions/profile/profile.ts';

async function* chunks(text: string | Buffer, size = 7): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

const column = (p: Awaited<ReturnType<typeof profileStream>>, name: string) => p.columns.find((c) => c.name === name)!;

describe('profileStream', () => {
  it('reads the structure of a French export with a title, a decimal comma and a repeated row', async () => {
    const p = await profileStream(chunks(readFileSync('test/fixtures/profile/associations.csv')), { file: 'associations.csv', locales: ['fr'] });

    expect(p).toMatchObject({ encoding: 'utf-8', delimiter: ';', headerRow: 3, decimalComma: true, rowCount: 6, duplicateRows: 1, raggedCount: 0 });
    expect(p.header[1]).toBe('siren');
  });

  it('gives each column a base type, a semantic format with a score, and a profile', async () => {
    const p = await profileStream(chunks(readFileSync('test/fixtures/profile/associations.csv')), { file: 'associations.csv', locales: ['fr'] });

    expect(column(p, 'id')).toMatchObject({ type: 'integer', profile: { min: 1, max: 5, missing: 0, distinct: 5 } });
    expect(column(p, 'siren')).toMatchObject({ format: 'siren' });
    expect(column(p, 'code postal')).toMatchObject({ format: 'code_postal' });
    expect(column(p, 'email')).toMatchObject({ type: 'string', format: 'email' });
    expect(column(p, 'date_creation')).toMatchObject({ type: 'date', profile: { min: '2017-09-09', max: '2021-01-15' } });
    expect(column(p, 'montant')).toMatchObject({ type: 'number', profile: { min: 300, max: 15000 } });
    expect(column(p, 'latitude')).toMatchObject({ format: 'latitude_wgs84', profile: { bbox: [-0.5792, 43.2565, 5.3892, 48.8606] } });
    expect(column(p, 'site web')).toMatchObject({ format: 'url' });
    for (const c of p.columns) {
      expect(c.score).toBeGreaterThanOrEqual(0);
      expect(c.score).toBeLessThanOrEqual(1);
    }
    expect(column(p, 'commune').profile.top[0]).toEqual({ value: 'Paris', count: 2 });
  });

  it('switches French formats on only with the fr pack', async () => {
    const p = await profileStream(chunks(readFileSync('test/fixtures/profile/associations.csv')), { file: 'associations.csv' });

    expect(column(p, 'siren').format).not.toBe('siren');
    expect(column(p, 'email').format).toBe('email');
  });

  it('reads day-first and month-first dates as the values show, and says which', async () => {
    const p = await profileStream(chunks('eu,us,iso\n03/04/2024,04/03/2024,2024-04-03\n25/12/2023,12/25/2023,2023-12-25\n'), { file: 'd.csv' });

    expect(column(p, 'eu').profile).toMatchObject({ min: '2023-12-25', max: '2024-04-03', dateOrder: 'dmy' });
    expect(column(p, 'us').profile).toMatchObject({ min: '2023-12-25', max: '2024-04-03', dateOrder: 'mdy' });
    expect(column(p, 'iso').profile).toMatchObject({ min: '2023-12-25', max: '2024-04-03', dateOrder: 'ymd' });
  });

  it('reports ragged lines with their line numbers instead of failing', async () => {
    const p = await profileStream(chunks('a,b\n1,2\n3,4,5\n6\n7,8\n'), { file: 'ragged.csv' });

    expect(p.rowCount).toBe(4);
    expect(p.raggedLines).toEqual([
      { line: 3, fields: 3, expected: 2 },
      { line: 4, fields: 1, expected: 2 },
    ]);
    expect(p.warnings.join(' ')).toMatch(/2 lines with a field count different from the header's \(first on line 3\)/);
  });

  it('warns, with the first line, about bytes the encoding cannot decode past the head', async () => {
    const head = `id,name\n${Array.from({ length: 20_000 }, (_, i) => `${i},Zoë`).join('\n')}\n`;
    const bytes = Buffer.concat([Buffer.from(head), Buffer.from('20000,Z'), Buffer.from([0xff]), Buffer.from('rich\n')]);

    const p = await profileStream(chunks(bytes, 4096), { file: 'late.csv' });

    expect(p.encoding).toBe('utf-8');
    expect(p.warnings).toContain('1 record with bytes that are not utf-8 (shown as U+FFFD), first on line 20002');
  });

  it('profiles a sample when asked, and says so only when there was more', async () => {
    const text = `n\n${Array.from({ length: 1000 }, (_, i) => i).join('\n')}\n`;

    const p = await profileStream(chunks(text, 64), { file: 'n.csv', sample: 100 });
    const whole = await profileStream(chunks(text, 64), { file: 'n.csv', sample: 1000 });

    expect(p).toMatchObject({ rowCount: 100, sampled: true });
    expect(column(p, 'n').profile).toMatchObject({ min: 0, max: 99, typeShare: 1, plainNumbers: true });
    expect(whole).toMatchObject({ rowCount: 1000, sampled: false, duplicatesExact: true });
  });

  it('gives coordinate pairs a bounding box, latitude first', async () => {
    const p = await profileStream(chunks('site,position\na,"48.85, 2.35"\nb,"43.30, 5.37"\nc,"50.63, 3.06"\n'), { file: 'pairs.csv' });

    expect(column(p, 'position')).toMatchObject({ format: 'latlon_wgs84', profile: { bbox: [2.35, 43.3, 5.37, 50.63] } });
  });

  it('bounds the distinct values it counts', async () => {
    const text = `v\n${Array.from({ length: 500 }, (_, i) => `x${i}`).join('\n')}\n`;

    const p = await profileStream(chunks(text, 100), { file: 'v.csv', distinctCap: 50 });

    expect(column(p, 'v').profile).toMatchObject({ distinct: 50, distinctCapped: true, categorical: false });
  });
});

describe('docs/formats.md', () => {
  it('lists exactly the formats the code has (regenerate with npx tsx scripts/formats-table.ts)', async () => {
    const { formatsDoc } = await import('../../functions/profile/formats/doc.ts');
    expect(readFileSync('docs/formats.md', 'utf8')).toBe(formatsDoc());
  });
});
