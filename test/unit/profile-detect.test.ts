import iconv from 'iconv-lite';
import { beforeAll, describe, expect, it } from 'vitest';
import { PermanentError } from '../../functions/common/errors.ts';
import { loadCodecs } from '../../functions/profile/codecs.ts';
import { DetectError, detectStructure, type DetectResult } from '../../functions/profile/detect.ts';
import { readRecords } from '../../functions/profile/read.ts';
import type { RecordRow, Structure } from '../../functions/profile/types.ts';

// The synchronous detector decodes non-UTF-8 heads with iconv-lite, which the pipeline imports on
// first use (detectStructureLoadingCodecs; profile-codecs.test.ts tests that path): imported here.
beforeAll(async () => {
  await loadCodecs();
});

const detect = (input: string | Buffer, complete = true, hints?: Partial<Pick<Structure, 'encoding' | 'delimiter'>>): DetectResult =>
  detectStructure(Buffer.isBuffer(input) ? input : Buffer.from(input), { complete, file: 'f.csv', ...(hints ? { hints } : {}) });

function rejection(fn: () => unknown): DetectError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DetectError);
    return error as DetectError;
  }
  throw new Error('expected a DetectError');
}

async function* chunks(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield new Uint8Array(bytes.subarray(i, i + size));
}

interface Read {
  rows: RecordRow[];
  ragged: [number, number, number][];
}

/** Detect on the whole input, then read it back in chunks of `size` bytes. */
async function read(input: string | Buffer, size = 1 << 16, maxRecords?: number): Promise<Read & { structure: Structure }> {
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input);
  const { structure } = detect(bytes);
  return { structure, ...(await readWith(bytes, structure, size, maxRecords)) };
}

async function readWith(bytes: Buffer, structure: Structure, size: number, maxRecords?: number): Promise<Read> {
  const rows: RecordRow[] = [];
  const ragged: [number, number, number][] = [];
  const opts = { file: 'f.csv', onRagged: (l: number, f: number, e: number) => void ragged.push([l, f, e]), ...(maxRecords !== undefined ? { maxRecords } : {}) };
  for await (const row of readRecords(chunks(bytes, size), structure, opts)) rows.push(row);
  return { rows, ragged };
}

describe('detectStructure: encoding', () => {
  const text = 'nom;ville;montant\nÉmile;Besançon;12,5\nZoë;Nîmes;3\n';

  it('reads UTF-8 without a BOM', () => {
    const { structure, warnings } = detect(text);
    expect(structure).toMatchObject({ encoding: 'utf-8', bom: false, header: ['nom', 'ville', 'montant'], delimiter: ';' });
    expect(warnings).toEqual([]);
  });

  it('reads UTF-8 with a BOM and keeps it out of the first heading', async () => {
    const { structure, rows } = await read('\ufeff' + text);
    expect(structure).toMatchObject({ encoding: 'utf-8', bom: true, header: ['nom', 'ville', 'montant'], firstDataLine: 2 });
    expect(rows).toEqual([
      { line: 2, fields: ['Émile', 'Besançon', '12,5'] },
      { line: 3, fields: ['Zoë', 'Nîmes', '3'] },
    ]);
  });

  it('judges UTF-8 only up to the last complete character of a partial head', () => {
    const bytes = Buffer.from(text + 'Zoë;Nîmes;3\n'.repeat(20));
    const cut = bytes.subarray(0, bytes.lastIndexOf(Buffer.from('ë')) + 1); // ends inside "ë"
    expect(detect(cut, false).structure.encoding).toBe('utf-8');
  });

  it.each([
    ['utf-16le', true],
    ['utf-16le', false],
    ['utf-16be', true],
    ['utf-16be', false],
  ] as const)('reads %s (BOM: %s)', async (encoding, bom) => {
    const bytes = iconv.encode(text, encoding, { addBOM: bom });
    const { structure, warnings } = detect(bytes);
    expect(structure).toMatchObject({ encoding, bom, delimiter: ';', header: ['nom', 'ville', 'montant'], firstDataLine: 2 });
    expect(warnings).toEqual([]);
    for (const size of [1, 3, 1 << 16]) {
      const { rows } = await readWith(bytes, structure, size);
      expect(rows).toEqual([
        { line: 2, fields: ['Émile', 'Besançon', '12,5'] },
        { line: 3, fields: ['Zoë', 'Nîmes', '3'] },
      ]);
    }
  });

  it('reads a UTF-16 head cut at an odd byte', () => {
    const bytes = iconv.encode(text.repeat(5), 'utf-16le', { addBOM: true });
    expect(detect(bytes.subarray(0, 101), false).structure).toMatchObject({ encoding: 'utf-16le', header: ['nom', 'ville', 'montant'] });
  });

  const french = 'commune;libellé;montant;remarque\nSaint-Étienne;été à la forêt;12,50 €;l’œuvre «complète»\nNîmes;Français ça où;3,5;déjà vu, très bien\nAnnecy;crème brûlée;7,25;Noël – à Besançon\n';

  it('falls back to windows-1252 for Latin text with é, € and curly quotes, and says so', async () => {
    const bytes = iconv.encode(french, 'windows-1252');
    const { structure, warnings } = detect(bytes);
    expect(structure).toMatchObject({ encoding: 'windows-1252', header: ['commune', 'libellé', 'montant', 'remarque'], decimalComma: true });
    expect(warnings.join('\n')).toMatch(/not UTF-8 \(byte 0xe9 on line 1\): read as windows-1252/);
    const { rows } = await readWith(bytes, structure, 5);
    expect(rows[0]).toEqual({ line: 2, fields: ['Saint-Étienne', 'été à la forêt', '12,50 €', 'l’œuvre «complète»'] });
  });

  it('reads ISO-8859-1 (Latin-1) text as windows-1252, its superset', () => {
    const latin1 = french.replace(/[’«»€œ–]/g, '"');
    expect(detect(iconv.encode(latin1, 'iso-8859-1')).structure.encoding).toBe('windows-1252');
  });

  it.each(['macintosh', 'cp850'] as const)('recognises %s French text by its byte statistics', async (encoding) => {
    const bytes = iconv.encode(french.replace(/[’«»€œ–]/g, '-'), encoding);
    const { structure } = detect(bytes);
    expect(structure.encoding).toBe(encoding);
    const { rows } = await readWith(bytes, structure, 1 << 16);
    expect(rows[1]!.fields).toEqual(['Nîmes', 'Français ça où', '3,5', 'déjà vu, très bien']);
  });

  it('does not take English windows-1252 text with curly apostrophes for another encoding', () => {
    const english = 'name,comment\n' + Array.from({ length: 30 }, (_, i) => `p${i},don’t won’t it’s “fine”\n`).join('');
    expect(detect(iconv.encode(english, 'windows-1252')).structure.encoding).toBe('windows-1252');
  });

  it('keeps a mostly-UTF-8 file with one stray Latin-1 byte as UTF-8, naming the line (mixed encodings)', () => {
    const bytes = Buffer.concat([Buffer.from('a;b\nété;1\nça;2\nZoë;3\n'), Buffer.from([0x63, 0x61, 0x66, 0xe9]), Buffer.from(';4\n')]);
    const { structure, warnings } = detect(bytes);
    expect(structure.encoding).toBe('utf-8');
    expect(warnings.join('\n')).toMatch(/mixed encodings.*0xe9 on line 5/);
  });

  it('follows an encoding hint, but a BOM wins over it', () => {
    const bytes = iconv.encode(text, 'windows-1252');
    expect(detect(bytes, true, { encoding: 'iso-8859-15' }).structure.encoding).toBe('iso-8859-15');
    const { structure, warnings } = detect('\ufeff' + text, true, { encoding: 'windows-1252' });
    expect(structure).toMatchObject({ encoding: 'utf-8', bom: true });
    expect(warnings.join()).toMatch(/declared windows-1252 but the file starts with a utf-8 byte-order mark/);
  });
});

describe('detectStructure: delimiter, quote, line endings', () => {
  it.each([
    [',', 'comma'],
    [';', 'semicolon'],
    ['\t', 'tab'],
    ['|', 'pipe'],
    [':', 'colon'],
    ['^', 'caret'],
  ])('finds %j (%s)', async (d) => {
    const rows = [
      ['id', 'name', 'city'],
      ['1', 'Ada', 'London'],
      ['2', 'Alan', 'Wilmslow'],
      ['3', 'Grace', 'New York'],
    ];
    const { structure, rows: read_ } = await read(rows.map((r) => r.join(d)).join('\n') + '\n');
    expect(structure).toMatchObject({ delimiter: d, header: ['id', 'name', 'city'], headerRow: 0, firstDataLine: 2 });
    expect(read_.map((r) => r.fields)).toEqual(rows.slice(1));
  });

  it('ignores delimiters inside quoted fields, in the header too', async () => {
    const { structure, rows } = await read('"name, first";"city; state";n\n"Doe, J";"b; c";1\nd;"e";2\n');
    expect(structure).toMatchObject({ delimiter: ';', quote: '"', header: ['name, first', 'city; state', 'n'] });
    expect(rows.map((r) => r.fields)).toEqual([
      ['Doe, J', 'b; c', '1'],
      ['d', 'e', '2'],
    ]);
  });

  it('judges the delimiter over many lines: commas in the header and in values do not fool it', () => {
    const text = 'commune;libellé, long;population\n' + 'Paris;Ville de Paris;2100000\nLyon;Lyon, Rhône;500000\nMarseille;Bouches-du-Rhône;870000\n'.repeat(5);
    expect(detect(text).structure).toMatchObject({ delimiter: ';', header: ['commune', 'libellé, long', 'population'] });
  });

  it('judges the delimiter over many lines: a first line with many pipes does not fool it', () => {
    const text = 'a|b|c|d,e\n' + Array.from({ length: 30 }, (_, i) => `${i},x${i}|y\n`).join('');
    // Only the first line has four pipes; every line has exactly one comma.
    expect(detect(text).structure).toMatchObject({ delimiter: ',', header: ['a|b|c|d', 'e'] });
  });

  it('does not take colons in times for the delimiter', () => {
    const text = 'heure;valeur\n' + Array.from({ length: 50 }, (_, i) => `12:${String(i).padStart(2, '0')}:00;${i}\n`).join('');
    expect(detect(text).structure).toMatchObject({ delimiter: ';', header: ['heure', 'valeur'] });
  });

  it('does not take colons in a single column of times for a delimiter', () => {
    const { structure, warnings } = detect('heure\n' + Array.from({ length: 20 }, (_, i) => `12:${10 + i}\n`).join(''));
    expect(structure).toMatchObject({ header: ['heure'], firstDataLine: 2 });
    expect(warnings.join()).toMatch(/no delimiter found/);
  });

  it('is not fooled by decimal commas under a header of years', () => {
    const text = 'commune;2019;2020\n' + Array.from({ length: 20 }, (_, i) => `Commune ${i};${i},5;${i},25\n`).join('');
    expect(detect(text).structure).toMatchObject({ delimiter: ';', header: ['commune', '2019', '2020'], decimalComma: true });
  });

  it("follows Excel's sep= first line and keeps it out of the header", async () => {
    const { structure, rows } = await read('sep=;\na;b\n1,5;2\n');
    expect(structure).toMatchObject({ delimiter: ';', headerRow: 1, preamble: ['sep=;'], header: ['a', 'b'], firstDataLine: 3 });
    expect(rows).toEqual([{ line: 3, fields: ['1,5', '2'] }]);
  });

  it('breaks a tie between equally consistent delimiters in favour of more fields', () => {
    // Every line has one ";" and two ",": both split consistently; "," gives more fields.
    const text = 'a;b,c,d\n1;2,3,4\n5;6,7,8\n';
    expect(detect(text).structure).toMatchObject({ delimiter: ',', header: ['a;b', 'c', 'd'] });
  });

  it('follows a delimiter hint', () => {
    expect(detect('a,b;c\n1,2;3\n', true, { delimiter: ';' }).structure).toMatchObject({ delimiter: ';', header: ['a,b', 'c'] });
  });

  it("recognises ' as the quote character", async () => {
    const { structure, rows } = await read("'id','label'\n'1','a, b'\n'2','c'\n'3','d, e'\n");
    expect(structure).toMatchObject({ quote: "'", delimiter: ',', header: ['id', 'label'] });
    expect(rows.map((r) => r.fields)).toEqual([
      ['1', 'a, b'],
      ['2', 'c'],
      ['3', 'd, e'],
    ]);
  });

  it('reports no quote character when " is clearly not used as one', () => {
    const { structure } = detect('size;label\n"5;"wide screen\n3;ok\n');
    expect(structure.quote).toBe('');
  });

  it.each([
    ['\r\n', 'CRLF'],
    ['\r', 'CR'],
    ['\n', 'LF'],
  ] as const)('finds %j line endings (%s) and numbers lines by them', async (eol, _name) => {
    const text = ['Titre', '', 'a,b', '1,"x' + eol + 'y"', '2,z', ''].join(eol);
    const { structure, rows } = await read(text);
    expect(structure).toMatchObject({ lineEnding: eol, headerRow: 2, preamble: ['Titre', ''], header: ['a', 'b'], firstDataLine: 4 });
    expect(rows).toEqual([
      { line: 4, fields: ['1', 'x' + eol + 'y'] },
      { line: 6, fields: ['2', 'z'] },
    ]);
  });

  it('reads a file with mixed line endings, and warns', async () => {
    const { rows } = await read('a,b\r\n1,2\n3,4\r5,6\r\n');
    expect(rows).toEqual([
      { line: 2, fields: ['1', '2'] },
      { line: 3, fields: ['3', '4'] },
      { line: 4, fields: ['5', '6'] },
    ]);
    expect(detect('a,b\r\n1,2\n3,4\r5,6\r\n').warnings.join()).toMatch(/mixed line endings/);
  });

  it('says when no delimiter is found (one column)', () => {
    const { structure, warnings } = detect('name\nAda\nAlan\n');
    expect(structure).toMatchObject({ header: ['name'], firstDataLine: 2 });
    expect(warnings.join()).toMatch(/no delimiter found/);
  });
});

describe('detectStructure: header, preamble, blank headings, decimal comma', () => {
  it('finds the header below a 3-line preamble (title, blank line, source)', async () => {
    const text = 'Population des communes 2023\n\nSource : INSEE, recensement\ncode;commune;population\n75056;Paris;2100000\n69123;Lyon;520000\n13055;Marseille;870000\n';
    const { structure, rows } = await read(text);
    expect(structure).toMatchObject({
      delimiter: ';',
      headerRow: 3,
      preamble: ['Population des communes 2023', '', 'Source : INSEE, recensement'],
      header: ['code', 'commune', 'population'],
      firstDataLine: 5,
    });
    expect(rows.map((r) => r.line)).toEqual([5, 6, 7]);
  });

  it('combines a header of group headings with the sub-headings below it (a GENESIS export), and reads the data after both', async () => {
    const text =
      'GENESIS-Tabelle: 12411-0006\nBevölkerung;;;;\n;;Geschlecht;Geschlecht;Geschlecht\n;;männlich;weiblich;Insgesamt\n31.12.1970;unter 1 Jahr;401679;382934;784613\n31.12.1970;1-Jährige;448827;427427;876254\n';
    const { structure, rows } = await read(text);
    expect(structure).toMatchObject({
      headerRow: 2,
      header: ['', '', 'Geschlecht männlich', 'Geschlecht weiblich', 'Geschlecht Insgesamt'],
      firstDataLine: 5,
    });
    expect(rows.map((r) => r.line)).toEqual([5, 6]);
    // gaps after a group heading take it, as in spreadsheets
    expect(detect('Land;Population;;Area\n;men;women;km2\nA;10;11;5\nB;20;21;6\n').structure.header).toEqual(['Land', 'Population men', 'Population women', 'Area km2']);
  });

  it('reads the notes padded to the header width under the table as notes, not rows, and says so', async () => {
    const text = ';;männlich;weiblich\n2022;April;28864;27130\n2022;Mai;...;...\n__________;;;\n© Statistisches Bundesamt (Destatis), 2022;;;\nStand: 28.07.2022;;;\n';
    const bytes = Buffer.from(text);
    const { structure } = detect(bytes);
    const notes: number[] = [];
    const rows: number[] = [];
    for await (const r of readRecords(chunks(bytes, 7), structure, { file: 'f.csv', onNotes: (n) => notes.push(...n.map((x) => x.line)) })) rows.push(r.line);
    expect(rows).toEqual([2, 3]);
    expect(notes).toEqual([4, 5, 6]);
    // without a line marking them as notes, text-only lines at the end are rows
    const plain = Buffer.from('name;a;b\nx;1;2\ny;;\n');
    const kept: number[] = [];
    for await (const r of readRecords(chunks(plain, 3), detect(plain).structure, { file: 'f.csv' })) kept.push(r.line);
    expect(kept).toEqual([2, 3]);
  });

  it('keeps a one-row header when the row below is data: names under distinct headings, numbers, or missing-value markers', () => {
    // distinct headings: a row of names below is data (a text-only table)
    expect(detect('nom;prénom\nDupont;Jean\nMartin;Luc\n').structure).toMatchObject({ header: ['nom', 'prénom'], firstDataLine: 2 });
    // a blank heading, but the row below holds numbers (GENESIS 12612-0002)
    expect(detect(';;männlich;weiblich\n1950;Januar;49505;46331\n1950;Februar;47177;44298\n').structure).toMatchObject({ header: ['', '', 'männlich', 'weiblich'], firstDataLine: 2 });
    // markers over the figures: a data row of a year not yet published
    expect(detect(';;männlich;weiblich\n2022;Mai;...;...\n2021;Mai;29616;27993\n2021;Juni;26935;25613\n').structure).toMatchObject({ firstDataLine: 2 });
  });

  it('does not take a title with as many fields as the data for the header', () => {
    const text = 'Titre du fichier;\n\nnom;valeur\nA;1\nB;2\nC;3\n';
    expect(detect(text).structure).toMatchObject({ headerRow: 2, header: ['nom', 'valeur'], firstDataLine: 4 });
  });

  it('finds a header that has fewer fields than data lines with a trailing delimiter', () => {
    const { structure, warnings } = detect('a;b\n1;2;\n3;4;\n5;6;\n');
    expect(structure).toMatchObject({ headerRow: 0, header: ['a', 'b'] });
    expect(warnings.join()).toMatch(/header \(line 1\) has 2 fields but most data lines have 3/);
  });

  it('reports a blank heading from a trailing delimiter on every line', async () => {
    const { structure, rows, ragged } = await read('a;b;\n1;2;\n3;4;\n');
    expect(structure).toMatchObject({ header: ['a', 'b', ''], blankHeaders: [2] });
    expect(detect('a;b;\n1;2;\n3;4;\n').warnings.join()).toMatch(/column 3 has a blank heading and no values \(a trailing delimiter/);
    expect(rows.map((r) => r.fields)).toEqual([
      ['1', '2', ''],
      ['3', '4', ''],
    ]);
    expect(ragged).toEqual([]);
  });

  it('reports a blank heading in the middle', () => {
    expect(detect('id,,name\n1,x,a\n2,y,b\n').structure.blankHeaders).toEqual([1]);
  });

  it.each([
    ['a;b\nx;12,5\ny;3,25\n', true],
    ['a;b\nx;1.234,56\ny;-0,5\n', true],
    ['a;b\nx;1,500\ny;2,250\n', true], // only 3-decimal values: ambiguous, but in a ;-file a decimal comma
    ['a;b\nx;12.5\ny;3.25\n', false],
    ['a,b\nx,12.5\ny,"3,25"\nz,7.75\n', false],
    ['a,b\nx,"12,5"\ny,"3,25"\n', true],
    ['a\tb\nx\t1,500\n', false],
    ['a;b\nx;abc\n', false],
  ])('decimal comma in %j: %s', (text, expected) => {
    expect(detect(text).structure.decimalComma).toBe(expected);
  });

  it('reads a header with a quoted line break, and numbers data lines after it', async () => {
    const { structure, rows } = await read('id,"long\nname",x\n1,2,3\n4,"5\r\n6",7\n8,9,10\n');
    expect(structure).toMatchObject({ headerRow: 0, header: ['id', 'long\nname', 'x'], firstDataLine: 3 });
    expect(rows).toEqual([
      { line: 3, fields: ['1', '2', '3'] },
      { line: 4, fields: ['4', '5\r\n6', '7'] },
      { line: 6, fields: ['8', '9', '10'] },
    ]);
  });

  it('warns when the head has ragged lines, naming the first', () => {
    expect(detect('a,b,c\n1,2,3\n4,5\n6,7,8\n').warnings.join()).toMatch(/1 of 3 data lines in the head do not have 3 fields \(first: line 3 with 2\)/);
  });

  it('warns when the header line looks like data', () => {
    expect(detect('1,2,3\n4,5,6\n').warnings.join()).toMatch(/looks like data/);
  });
});

describe('detectStructure: bad input', () => {
  it('rejects an empty file', () => {
    const error = rejection(() => detect(''));
    expect(error.message).toBe('f.csv is empty (0 bytes)');
    expect(error).toBeInstanceOf(PermanentError);
  });

  it('rejects a file holding only a BOM, or only blank lines', () => {
    expect(rejection(() => detect('\ufeff')).message).toMatch(/only a byte-order mark/);
    expect(rejection(() => detect('\n  \n\n')).message).toMatch(/no header line: only blank lines/);
  });

  it('rejects a file of spaces and tabs only, which a tab would split into a header and a row of blanks', () => {
    const error = rejection(() => detect('   \t  \n \t\n'));

    expect(error.message).toBe('f.csv holds only whitespace (spaces, tabs, line breaks): no header, no data rows');
    expect(error).toBeInstanceOf(PermanentError);
    expect(error).toMatchObject({ line: 1 });
  });

  it('rejects binary content with NUL bytes, naming the byte and line', () => {
    const bytes = Buffer.concat([Buffer.from('a,b\n1,2\n'), Buffer.from([0x00, 0x13, 0x88, 0xff, 0x00, 0x01])]);
    const error = rejection(() => detect(bytes));
    expect(error.message).toBe('f.csv is not CSV text: binary content (a NUL byte at byte 8, line 3)');
    expect(error.line).toBe(3);
  });

  it('rejects mostly non-text bytes without NULs', () => {
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 255 || 1));
    expect(rejection(() => detect(bytes)).message).toMatch(/not CSV text: binary content \(\d+ control characters/);
  });

  it.each([
    [[0x1f, 0x8b, 0x08, 0x00], /gzip-compressed/],
    [[0x50, 0x4b, 0x03, 0x04, 0x14, 0x00], /ZIP archive \(or an XLSX/],
    [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00], /PNG image/],
    [[...Buffer.from('%PDF-1.7\n')], /PDF document/],
  ])('names a known binary format (%j)', (bytes, message) => {
    expect(rejection(() => detect(Buffer.from(bytes as number[]))).message).toMatch(message);
  });

  it('rejects one huge line without a line break in a partial head, quickly', () => {
    const head = Buffer.alloc(2 * 1024 * 1024, 'abc,def,');
    const started = performance.now();
    const error = rejection(() => detect(head, false));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(error.message).toBe('f.csv: no line break in the first 2 MiB — a single line longer than that (not a line-oriented CSV file, or an unusual line ending)');
    expect(error.line).toBe(1);
  });

  it('reads a complete file that is one line without a line break as a header', () => {
    expect(detect('a,b,c').structure).toMatchObject({ header: ['a', 'b', 'c'], firstDataLine: 2 });
  });

  it('keeps the structure when the first data record is longer than the head, with a warning', () => {
    const head = Buffer.from('id,geometry\n1,"' + 'x'.repeat(300_000));
    const { structure, warnings } = detect(head, false);
    expect(structure).toMatchObject({ delimiter: ',', header: ['id', 'geometry'], firstDataLine: 2 });
    expect(warnings.join()).toMatch(/no complete data line after the header/);
  });

  it('rejects a partial head that is one unclosed quoted field', () => {
    const error = rejection(() => detect(Buffer.from('"a","b\n' + 'x,y\n'.repeat(1000)), false));
    expect(error.message).toMatch(/no complete record in the first .*quoted field opened on line 1/);
  });

  it('rejects a file that is only a sep= line', () => {
    expect(rejection(() => detect('sep=;\n')).message).toBe('f.csv has no header line after "sep=;"');
  });

  it('warns when a file declared UTF-8 is not, naming the line', () => {
    const { structure, warnings } = detect(iconv.encode('a;b\nx;y\ncafé;1\n', 'windows-1252'), true, { encoding: 'utf-8' });
    expect(structure.encoding).toBe('utf-8');
    expect(warnings.join()).toMatch(/declared utf-8 but byte 0xe9 on line 3 is not UTF-8/);
  });

  it('warns about a quote left open at the end of a complete file', () => {
    expect(detect('a,"b"\n1,"x\n2,y\n').warnings.join()).toMatch(/quoted field opened on line 2 is not closed/);
  });

  it('detects a 256 KiB head fast', () => {
    const line = '75056;Paris;2100000;48,8566;2,3522;"Hôtel de ville, place"\n';
    const head = Buffer.from('code;nom;pop;lat;lon;adresse\n' + line.repeat(Math.ceil((256 * 1024) / line.length)));
    const started = performance.now();
    const { structure } = detect(head.subarray(0, 256 * 1024), false);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(structure).toMatchObject({ delimiter: ';', decimalComma: true, header: ['code', 'nom', 'pop', 'lat', 'lon', 'adresse'] });
  });
});

describe('readRecords', () => {
  it('reports ragged lines with their physical line and field count, and keeps reading', async () => {
    const { rows, ragged } = await read('a,b,c\n1,2,3\n4,5\n\n6,"7\n8",9,10\n11,12,13\n');
    expect(ragged).toEqual([
      [3, 2, 3],
      [5, 4, 3],
    ]);
    expect(rows.map((r) => r.line)).toEqual([2, 3, 5, 7]);
    expect(rows[2]!.fields).toEqual(['6', '7\n8', '9', '10']);
  });

  it('skips blank lines (and whitespace-only ones) but counts them', async () => {
    const { rows } = await read('a;b\n\n1;2\n   \n\n3;4\n\n');
    expect(rows).toEqual([
      { line: 3, fields: ['1', '2'] },
      { line: 6, fields: ['3', '4'] },
    ]);
  });

  it('gives identical results whatever the chunk size (1 byte, odd sizes)', async () => {
    const text =
      '\ufeffRapport\r\n\r\nid;"nom\r\ncomplet";note\r\n' +
      Array.from({ length: 40 }, (_, i) => `${i};"Zoë 𝄞 ""${i}""\r\nÉmile";${i},5\r\n${i % 7 === 0 ? '\r\n' : ''}${i % 11 === 0 ? `${i};court\r\n` : ''}`).join('');
    for (const [bytes, label] of [
      [Buffer.from(text), 'utf-8'],
      [iconv.encode(text.replace('\ufeff', '').replaceAll('𝄞', '?'), 'windows-1252'), 'windows-1252'],
      [iconv.encode(text, 'utf-16le', { addBOM: false }), 'utf-16le'],
      [iconv.encode(text, 'utf-16be', { addBOM: false }), 'utf-16be'],
    ] as const) {
      const { structure } = detect(bytes);
      expect(structure, label).toMatchObject({ headerRow: 2, header: ['id', 'nom\r\ncomplet', 'note'], firstDataLine: 5, decimalComma: true });
      const reference = await readWith(bytes, structure, 1 << 16);
      expect(reference.rows).toHaveLength(44);
      expect(reference.rows[0]).toEqual({ line: 5, fields: ['0', `Zoë ${label === 'windows-1252' ? '?' : '𝄞'} "0"\r\nÉmile`, '0,5'] });
      expect(reference.ragged[0]).toEqual([8, 2, 3]);
      for (const size of [1, 2, 3, 7, 13, 64, 4093]) {
        expect(await readWith(bytes, structure, size), `${label} in chunks of ${size}`).toEqual(reference);
      }
    }
  });

  it('stops after maxRecords without reading the rest of the source', async () => {
    const bytes = Buffer.from('n\n' + Array.from({ length: 100_000 }, (_, i) => `${i}\n`).join(''));
    const { structure } = detect(bytes.subarray(0, 4096), false);
    let pulled = 0;
    let closed = false;
    async function* source() {
      try {
        for (let i = 0; i < bytes.length; i += 1024) {
          pulled++;
          yield bytes.subarray(i, i + 1024);
        }
      } finally {
        closed = true;
      }
    }
    const rows: RecordRow[] = [];
    for await (const row of readRecords(source(), structure, { file: 'f.csv', maxRecords: 5 })) rows.push(row);
    expect(rows).toEqual([2, 3, 4, 5, 6].map((line) => ({ line, fields: [String(line - 2)] })));
    expect(pulled).toBeLessThan(100);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(closed).toBe(true);
  });

  it('lets the consumer stop early too', async () => {
    const { structure } = detect('a\n1\n2\n3\n');
    const seen: number[] = [];
    for await (const row of readRecords(chunks(Buffer.from('a\n1\n2\n3\n'), 1), structure, { file: 'f.csv' })) {
      seen.push(row.line);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual([2, 3]);
  });

  it('keeps stray quotes inside unquoted fields as text', async () => {
    const { rows } = await read('item,size\nscreen,5" wide\ntv,"50"" wide"\n');
    expect(rows.map((r) => r.fields)).toEqual([
      ['screen', '5" wide'],
      ['tv', '50" wide'],
    ]);
  });

  it('fails on a quote that is never closed, naming the line the record starts on', async () => {
    const bytes = Buffer.from('a,b\n1,2\n3,"open\n4,5\n6,7\n');
    const { structure } = detect('a,b\n1,2\n');
    const error = await readWith(bytes, structure, 3).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DetectError);
    expect((error as DetectError).message).toBe('f.csv: the quoted field in the record starting on line 3 is never closed (reached the end of the file)');
    expect((error as DetectError).line).toBe(3);
  });

  it('fails early on a runaway quote instead of buffering the file', async () => {
    const bytes = Buffer.from('a,b\n1,"open\n' + '4,5\n'.repeat(10_000));
    const { structure } = detect('a,b\n1,2\n');
    const error = await (async () => {
      for await (const _ of readRecords(chunks(bytes, 1000), structure, { file: 'f.csv', maxRecordChars: 1000 })) void _;
    })().catch((e: unknown) => e);
    expect((error as DetectError).message).toMatch(/record starting on line 2 is longer than 1000 characters — probably a quote that is never closed/);
  });

  it('passes errors of the source through unchanged', async () => {
    const { structure } = detect('a\n1\n');
    async function* failing() {
      yield Buffer.from('a\n1\n');
      throw new Error('connection reset');
    }
    const error = await (async () => {
      for await (const _ of readRecords(failing(), structure, { file: 'f.csv' })) void _;
    })().catch((e: unknown) => e);
    expect((error as Error).message).toBe('connection reset');
  });

  it('agrees with the detector on the first data line for every kind of preamble', async () => {
    const texts = ['a,b\n1,2\n', '\n\na,b\n1,2\n', 'Title\r\n\r\nSource: x\r\na;b\r\n1;2\r\n', 'a,"b\nc"\n\n1,2\n', 'T\ra\tb\r1\t2\r'];
    for (const text of texts) {
      const { structure, rows } = await read(text, 2);
      expect(rows[0]!.line, JSON.stringify(text)).toBe(structure.firstDataLine);
      expect(rows[0]!.fields).toEqual(['1', '2']);
    }
  });
});
