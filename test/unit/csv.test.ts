import { describe, expect, it } from 'vitest';
import { PermanentError } from '../../functions/common/errors.ts';
import { guessDelimiter, sniffCsv } from '../../functions/stage/csv-sniff.ts';
import { withSourceLines, type LineageStats } from '../../functions/stage/lineage.ts';

const sniff = (text: string | Buffer, complete = true) =>
  sniffCsv(Buffer.isBuffer(text) ? text : Buffer.from(text), { file: 'f.csv', complete });

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

function rejection(fn: () => unknown): PermanentError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PermanentError);
    return error as PermanentError;
  }
  throw new Error('expected a PermanentError');
}

describe('sniffCsv', () => {
  it('finds the delimiter, the header and where the data starts', () => {
    const layout = sniff('name;"city; state";n\na;"b; c";1\nd;e;2\n');
    expect(layout).toMatchObject({ delimiter: ';', header: ['name', 'city; state', 'n'], dataOffset: 21, firstDataLine: 2, lineEnding: '\n', bom: false });
  });

  it('strips a UTF-8 BOM and notices CRLF line endings', () => {
    const layout = sniff('\ufeffa,b\r\n1,2\r\n');
    expect(layout).toMatchObject({ bom: true, header: ['a', 'b'], lineEnding: '\r\n', dataOffset: 3 + 5 });
  });

  it('judges the delimiter over many lines, not only the header', () => {
    // the header has one comma and one semicolon each time; the data lines settle it
    expect(guessDelimiter(['title;city, state', '1;a, b', '2;c', '3;d'])).toBe(';');
    expect(guessDelimiter(['a,b;c', '1,x;y', '2,z', '3,w'])).toBe(',');
    expect(guessDelimiter(['single column', 'x'])).toBe(',');
  });

  it('counts a header with a quoted line break as two lines', () => {
    expect(sniff('"first\nname",b\n1,2\n').firstDataLine).toBe(3);
  });

  it('rejects an empty file, a binary file, UTF-16 and bytes that are not UTF-8, naming the line', () => {
    expect(rejection(() => sniff('')).message).toBe('f.csv is empty');
    expect(rejection(() => sniff(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]))).message).toMatch(/not a CSV text file: binary content \(a NUL byte at byte 8\)/);
    expect(rejection(() => sniff(Buffer.from([0xff, 0xfe, 0x61, 0]))).message).toMatch(/UTF-16/);
    const latin1 = rejection(() => sniff(Buffer.from('name\nZürich\n', 'latin1')));
    expect(latin1.message).toMatch(/not UTF-8 text: invalid byte 0xfc on line 2/);
    expect(latin1.position.line).toBe(2);
  });

  it('does not judge a head that ends in the middle of a character', () => {
    const text = Buffer.from('a,b\nü,x\n');
    expect(sniff(text.subarray(0, 5), false).header).toEqual(['a', 'b']);
  });
});

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

  it('rejects a quote that is never closed', async () => {
    await expect(lineage('1,a\n2,"open\n3,b\n', 2)).rejects.toThrow(/line 3: a quoted field is never closed/);
  });
});
