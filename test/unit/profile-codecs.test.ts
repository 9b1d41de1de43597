import { describe, expect, it } from 'vitest';
import { CodecsNotLoadedError } from '../../functions/profile/codecs.ts';
import { detectStructure, detectStructureLoadingCodecs } from '../../functions/profile/detect.ts';
import { readRecords } from '../../functions/profile/read.ts';
import { toUtf8 } from '../../functions/stage/bytes.ts';

// This file's module graph is its own (vitest isolates test files): iconv-lite starts unimported,
// and the tests run in order — the UTF-8 file first, then the windows-1252 one.
const text = 'nom;ville;montant\nÉmile;Besançon;12,5\nZoë;Nîmes;3\n';
// Node's latin1 writes É, ç, ë, î as the single bytes windows-1252 has for them (0xC9, 0xE7, 0xEB, 0xEE).
const windows1252 = Buffer.from(text, 'latin1');

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

describe('iconv-lite is imported when a file is not UTF-8, not at start', () => {
  it('detects a UTF-8 file without importing it', async () => {
    const { structure } = await detectStructureLoadingCodecs(Buffer.from(text), { complete: true, file: 'utf8.csv' });

    expect(structure).toMatchObject({ encoding: 'utf-8', header: ['nom', 'ville', 'montant'] });
    // still not imported: the synchronous detector cannot decode a windows-1252 head yet
    expect(() => detectStructure(windows1252, { complete: true, file: 'latin.csv' })).toThrow(CodecsNotLoadedError);
  });

  it('imports it for a windows-1252 file, and detects and decodes the file as before', async () => {
    const { structure, warnings } = await detectStructureLoadingCodecs(windows1252, { complete: true, file: 'latin.csv' });
    const rows = [];
    for await (const row of readRecords(once(windows1252), structure, { file: 'latin.csv' })) rows.push(row);
    const staged = await collect(toUtf8(once(windows1252), structure.encoding, 'latin.csv'));

    expect(structure).toMatchObject({ encoding: 'windows-1252', header: ['nom', 'ville', 'montant'], delimiter: ';' });
    expect(warnings.some((w) => w.includes('read as windows-1252'))).toBe(true);
    expect(rows.map((r) => r.fields)).toEqual([
      ['Émile', 'Besançon', '12,5'],
      ['Zoë', 'Nîmes', '3'],
    ]);
    expect(staged.toString('utf8')).toBe(text);
    // and now the synchronous detector has it
    expect(detectStructure(windows1252, { complete: true, file: 'latin.csv' }).structure.encoding).toBe('windows-1252');
  });
});
