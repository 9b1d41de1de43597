import { describe, expect, it } from 'vitest';
import { withSourceLines, type LineageStats } from '../../functions/stage/lineage.ts';

/** Feed a text to the lineage step in chunks of `size` bytes and collect the output. */
async function lineage(text: string | Buffer, fields: number, size = 3, delimiter = ','): Promise<{ out: string; stats: LineageStats }> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  async function* chunks() {
    for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
  }
  const stats: LineageStats = { records: 0, blankLines: 0, bytes: 0 };
  const parts: Buffer[] = [];
  for await (const b of withSourceLines(chunks(), { file: 'f.csv', delimiter, fields, firstLine: 2 }, stats)) parts.push(b);
  return { out: Buffer.concat(parts).toString(), stats };
}

describe('withSourceLines', () => {
  it('appends the line each record starts on, whatever the chunking', async () => {
    for (const size of [1, 2, 5, 1000]) {
      const { out, stats } = await lineage('1,a\n2,"b\nc"\n3,d\n', 2, size);
      expect(out).toBe('1,a,2\n2,"b\nc",3\n3,d,5\n');
      expect(stats.records).toBe(3);
    }
  });

  it('turns CRLF into LF, even when CR and LF arrive in different chunks, and keeps quoted CRLF', async () => {
    for (const size of [1, 3, 4, 100]) {
      const { out } = await lineage('1,a\r\n2,"x\r\ny"\r\n3,b', 2, size);
      expect(out).toBe('1,a,2\n2,"x\r\ny",3\n3,b,5\n');
    }
  });

  it('leaves out the notes padded to the header width that end the file, as the profile does, and keeps such lines that data follows', async () => {
    // a GENESIS export's tail: a ruler, a copyright, a date line
    const tail = '__________;;\n© Statistisches Bundesamt (Destatis), 2022;;\nStand: 28.07.2022 / 20:34:46;;\n';
    for (const size of [1, 4, 1000]) {
      const { out, stats } = await lineage(`1950;Januar;49505\nTotal;;\n1950;Februar;47177\n${tail}`, 3, size, ';');
      expect(out).toBe('1950;Januar;49505;2\nTotal;;;3\n1950;Februar;47177;4\n');
      expect(stats.records).toBe(3);
      expect(stats.notes).toEqual([
        { line: 5, text: '__________' },
        { line: 6, text: '© Statistisches Bundesamt (Destatis), 2022' },
        { line: 7, text: 'Stand: 28.07.2022 / 20:34:46' },
      ]);
    }
    // text alone at the end, nothing marking it as a note: a row with empty values
    expect((await lineage('1;a;b\nlast;;\n', 3, 2, ';')).out).toBe('1;a;b;2\nlast;;;3\n');
    // a part other than the last: its end is not the file's
    const parts: Buffer[] = [];
    async function* whole() {
      yield Buffer.from(`1;a;b\n${tail}`);
    }
    for await (const b of withSourceLines(whole(), { file: 'f.csv', delimiter: ';', fields: 3, firstLine: 2, atFileEnd: false })) parts.push(b);
    expect(Buffer.concat(parts).toString().split('\n').length - 1).toBe(4);
  });

  it('skips blank lines but keeps counting them', async () => {
    const { out, stats } = await lineage('1,a\n\n2,b\n\n', 2);
    expect(out).toBe('1,a,2\n2,b,4\n');
    expect(stats.blankLines).toBe(2);
  });

  it('rejects a ragged record with its line and the field counts', async () => {
    await expect(lineage('1,a\n2,"b\nc"\n3,d,extra\n', 2)).rejects.toMatchObject({
      message: 'f.csv line 5: the record has 3 fields, the header has 2',
      position: { line: 5 },
    });
  });

  it('rejects invalid UTF-8 on the right line, even split across chunks', async () => {
    const bytes = Buffer.concat([Buffer.from('1,a\n2,b\n3,'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]);
    for (const size of [1, 2, 64]) {
      await expect(lineage(bytes, 2, size)).rejects.toMatchObject({ position: { line: 4 } });
    }
    // valid characters split across two, three or four chunks are fine
    for (const size of [1, 2, 3]) {
      const { out } = await lineage('1,ü€😀\n', 2, size);
      expect(out).toBe('1,ü€😀,2\n');
    }
  });

  it('rejects a NUL byte far into the file, naming its line', async () => {
    const bytes = Buffer.concat([Buffer.from('1,a\n2,b\n3,'), Buffer.from([0]), Buffer.from('\n')]);
    await expect(lineage(bytes, 2, 4)).rejects.toMatchObject({ message: 'f.csv line 4: a NUL byte (binary content) in a text file', position: { line: 4 } });
  });

  it('writes a record with a bare quote again so that COPY reads the same characters, whatever the chunking', async () => {
    for (const size of [1, 2, 5, 1000]) {
      const { out } = await lineage('1,5" screen\n2,"a"b\n3,"ok ""q"""\n', 2, size);
      expect(out).toBe('1,"5"" screen",2\n2,"""a""b",3\n3,"ok ""q""",4\n');
    }
  });

  it('reads CR-only line endings, a quoted CR counting as a line', async () => {
    for (const size of [1, 2, 3, 1000]) {
      const { out, stats } = await lineage('1,a\r2,"b\rc"\r\r3,d', 2, size);
      expect(out).toBe('1,a,2\n2,"b\rc",3\n3,d,6\n');
      expect(stats.blankLines).toBe(1);
    }
  });

  it('drops BOMs at the start of a line and skips a line holding only BOMs', async () => {
    for (const size of [1, 2, 4, 1000]) {
      const { out, stats } = await lineage('\uFEFF1,a\n\uFEFF\uFEFF\n2,b\n\uFEFF', 2, size);
      expect(out).toBe('1,a,2\n2,b,4\n');
      expect(stats.blankLines).toBe(2);
    }
  });

  it('rejects a quote that is never closed', async () => {
    await expect(lineage('1,a\n2,"open\n3,b\n', 2)).rejects.toThrow(/line 3, field 2: a quote opens a field there that is never closed/);
  });
});

describe('withSourceLines against a plain reference', () => {
  /** The obvious byte-by-byte algorithm, on the whole text at once. */
  function reference(text: string, fields: number): string {
    let out = '';
    let line = 2;
    let recordLine = 2;
    let inQuotes = false;
    let count = 1;
    let record = '';
    const end = () => {
      if (record !== '' || count > 1) {
        if (count !== fields) throw new Error(`line ${recordLine}`);
        out += `${record},${recordLine}\n`;
      }
      record = '';
      count = 1;
    };
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (inQuotes) {
        if (c === '"') inQuotes = false;
        else if (c === '\n') line++;
        record += c;
        continue;
      }
      if (c === '"') inQuotes = true;
      else if (c === ',') count++;
      else if (c === '\n') {
        if (record.endsWith('\r')) record = record.slice(0, -1);
        end();
        line++;
        recordLine = line;
        continue;
      }
      record += c;
    }
    if (record.endsWith('\r')) record = record.slice(0, -1);
    end();
    return out;
  }

  it('agrees on random CSV with quotes, CRLF, blank lines and quoted line breaks, in any chunking', async () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const pieces = ['a', 'bc', '""', '"x,y"', '"p\nq"', '"r\r\ns"', '', 'é', '€'];
    for (let round = 0; round < 300; round++) {
      const lines: string[] = [];
      for (let r = 0; r < 1 + Math.floor(rand() * 6); r++) {
        if (rand() < 0.15) lines.push('');
        else lines.push([0, 1, 2].map(() => pieces[Math.floor(rand() * pieces.length)]).join(','));
      }
      const text = lines.join(rand() < 0.5 ? '\n' : '\r\n') + (rand() < 0.5 ? '\n' : '');
      const expected = reference(text, 3);
      for (const size of [1, 2, 3, 5, 64]) {
        expect((await lineage(text, 3, size)).out, JSON.stringify({ text, size })).toBe(expected);
      }
    }
  });
});
