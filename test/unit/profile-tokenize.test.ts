/**
 * The hand-written tokenizer behind `readRecords` against csv-parse, which `readRecords` used
 * before (apart from the one place where our rule keeps characters csv-parse drops, `asCsvParse`): many small random CSVs (quotes, doubled quotes, stray quotes, delimiters and CR / LF /
 * CRLF inside and outside quotes, empty fields, ragged and blank lines, unclosed quotes, tiny size
 * limits, several encodings, invalid UTF-8), each read in pieces of 1, 2, 3, 7, 64 bytes and at
 * random cuts, must give the same records, line numbers, ragged reports and errors.
 */
import { parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { DetectError } from '../../functions/profile/detect.ts';
import { readRecords } from '../../functions/profile/read.ts';
import { CsvTokenizer, TokenizeError } from '../../functions/read/csv.ts';
import type { Encoding, RecordRow, Structure } from '../../functions/profile/types.ts';
import { mulberry32 as rng } from '../../scripts/random.ts';

interface Outcome {
  rows: RecordRow[];
  ragged: [number, number, number][];
  /** `unclosed-quote@3`, `record-too-long@7`, or undefined. */
  error?: string;
}

interface Case {
  bytes: Buffer;
  structure: Structure;
  maxRecordChars?: number;
  maxRecords?: number;
  /** The text csv-parse reads (after BOM and preamble), as the old reader handed it over. */
  body: Buffer;
}

/**
 * What the csv-parse-based reader gave (functions/profile/read.ts before the tokenizer): csv-parse
 * with the same options, each record's physical line from `info.lines`, blank lines skipped,
 * ragged ones reported, `maxRecords`, and the error after the records parsed before it.
 */
function reference(c: Case): Outcome {
  const { structure } = c;
  const expected = structure.header.length;
  const quote = structure.quote === '' ? false : structure.quote;
  const parsed: { record: string[]; lines: number }[] = [];
  let failure: { code?: string } | undefined;
  try {
    parse(c.body, {
      delimiter: structure.delimiter,
      quote,
      escape: quote,
      record_delimiter: ['\r\n', '\n', '\r'],
      relax_column_count: true,
      relax_quotes: true,
      skip_empty_lines: false,
      bom: false,
      max_record_size: c.maxRecordChars ?? 16 * 1024 * 1024,
      on_record: (record: string[], info) => {
        parsed.push({ record, lines: info.lines });
        return null;
      },
    });
  } catch (error) {
    failure = error as { code?: string };
  }
  const out: Outcome = { rows: [], ragged: [] };
  let line = Math.max(1, structure.firstDataLine);
  let parserLines = 0;
  for (const { record, lines } of parsed) {
    const start = line;
    const delta = lines - parserLines;
    parserLines = lines;
    line += delta === 1 ? 1 : 1 + record.reduce((n, f) => n + (f.match(/\r\n|\r|\n/g)?.length ?? 0), 0);
    if (record.length === 1 && (record[0] === '' || (expected > 1 && record[0]!.trim() === ''))) continue;
    if (record.length !== expected) out.ragged.push([start, record.length, expected]);
    out.rows.push({ line: start, fields: record });
    if (c.maxRecords !== undefined && out.rows.length >= c.maxRecords) return out;
  }
  if (failure) {
    const kind = failure.code === 'CSV_QUOTE_NOT_CLOSED' ? 'unclosed-quote' : failure.code === 'CSV_MAX_RECORD_SIZE' ? 'record-too-long' : String(failure.code);
    out.error = `${kind}@${line}`;
  }
  return out;
}

async function* pieces(bytes: Buffer, sizes: () => number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length;) {
    const n = sizes();
    yield new Uint8Array(bytes.subarray(i, i + n));
    i += n;
  }
}

async function actual(c: Case, sizes: () => number): Promise<Outcome> {
  const out: Outcome = { rows: [], ragged: [] };
  const opts = {
    file: 'f.csv',
    onRagged: (l: number, f: number, e: number) => void out.ragged.push([l, f, e]),
    ...(c.maxRecordChars !== undefined ? { maxRecordChars: c.maxRecordChars } : {}),
    ...(c.maxRecords !== undefined ? { maxRecords: c.maxRecords } : {}),
  };
  try {
    for await (const row of readRecords(pieces(c.bytes, sizes), c.structure, opts)) out.rows.push(row);
  } catch (error) {
    expect(error).toBeInstanceOf(DetectError);
    const { message, line } = error as DetectError;
    const kind = /is longer than/.test(message) ? 'record-too-long' : /is never closed/.test(message) ? 'unclosed-quote' : message;
    out.error = `${kind}@${line}`;
  }
  return out;
}

const DELIMITERS = [',', ';', '\t', '|'];
const QUOTES: Structure['quote'][] = ['"', '"', "'", ''];
const EOLS = ['\n', '\r\n', '\r'];

/** A random CSV text, mostly well-formed, with every kind of oddity now and then. */
function randomCsv(r: () => number, d: string, q: string, encoding: Encoding): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const wide = encoding === 'utf-8' || encoding.startsWith('utf-16');
  const atoms = ['a', 'b', 'xyz', ' ', '1', 'é', wide ? '𝄞' : 'ü', d, q || '"', "'", '"', '\r', '\n', '\r\n', wide ? '€' : 'ç'];
  const text = (max: number) => Array.from({ length: Math.floor(r() * max) }, () => pick(atoms)).join('');
  const plain = () =>
    text(4)
      .split('')
      .filter((ch) => ch !== d && ch !== '\r' && ch !== '\n')
      .join('');
  const field = (): string => {
    const k = r();
    if (k < 0.35) return plain();
    if (k < 0.4) return '';
    if (q === '') return plain() + (r() < 0.3 ? '"' + plain() : '');
    const quoted =
      q +
      text(5)
        .split(q)
        .join(q + q) +
      q;
    if (k < 0.8) return quoted;
    // "a"b: text after the closing quote. (With a doubled quote inside, csv-parse drops one of the
    // two where our rule keeps the raw text; that case is tested in csv-read.test.ts.)
    if (k < 0.87) return q + text(5).split(q).join('') + q + plain();
    if (k < 0.93) return plain() + q + plain(); // a stray quote inside
    return q + q + plain(); // "" then text
  };
  const records: string[] = [];
  const n = Math.floor(r() * 8);
  for (let i = 0; i < n; i++) {
    const k = r();
    if (k < 0.08) records.push('');
    else if (k < 0.12) records.push(pick([' ', '  ', '\t']));
    else records.push(Array.from({ length: 1 + Math.floor(r() * 4) }, field).join(d));
  }
  let body = records.map((rec) => rec + pick(EOLS)).join('');
  if (r() < 0.3) body = body.replace(/(\r\n|\r|\n)$/, '');
  if (q !== '' && r() < 0.08) body += `x${d}${q}open` + pick(EOLS) + 'rest'; // a quote that never closes
  return body;
}

function randomCase(seed: number): Case {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const delimiter = pick(DELIMITERS);
  const quote = pick(QUOTES);
  const encoding: Encoding = r() < 0.75 ? 'utf-8' : pick(['utf-16le', 'utf-16be', 'windows-1252'] as const);
  const expected = 1 + Math.floor(r() * 3);
  const preambleLines = r() < 0.7 ? Math.floor(r() * 3) : 0;
  const preamble = Array.from({ length: preambleLines }, (_, i) => (i === 0 && r() < 0.5 ? `Title "${delimiter}x` : `h${i}`) + pick(EOLS)).join('');
  let body = randomCsv(r, delimiter, quote, encoding);
  // A CR ending the preamble and a LF starting the body read as one CRLF: keep the cases apart.
  if (preamble.endsWith('\r') && body.startsWith('\n')) body = 'z' + body;
  const bom = r() < 0.2;
  let bytes: Buffer;
  let bodyBytes: Buffer;
  if (encoding === 'utf-8') {
    bodyBytes = Buffer.from(body);
    if (r() < 0.1) {
      // Invalid UTF-8 in a field: a lone continuation byte, a truncated sequence, a stray lead.
      const at = Math.floor(r() * (bodyBytes.length + 1));
      bodyBytes = Buffer.concat([bodyBytes.subarray(0, at), Buffer.from(pick([[0x80], [0xe2, 0x82], [0xff], [0xc3]])), bodyBytes.subarray(at)]);
    }
    bytes = Buffer.concat([bom ? Buffer.from([0xef, 0xbb, 0xbf]) : Buffer.alloc(0), Buffer.from(preamble), bodyBytes]);
  } else {
    if (encoding.startsWith('utf-16') && r() < 0.1) body += '\ud834' + delimiter + 'lone' + '\udd1e'; // lone surrogates
    bytes = iconv.encode(preamble + body, encoding, { addBOM: bom });
    // The old reader decoded, then csv-parse read the text as UTF-8 (a lone surrogate → U+FFFD).
    bodyBytes = Buffer.from(iconv.decode(iconv.encode(body, encoding), encoding), 'utf8');
  }
  const structure: Structure = {
    encoding,
    bom,
    lineEnding: '\n',
    delimiter,
    quote,
    headerRow: preambleLines,
    preamble: [],
    header: Array.from({ length: expected }, (_, i) => `c${i}`),
    blankHeaders: [],
    decimalComma: false,
    firstDataLine: preambleLines + 1,
  };
  const c: Case = { bytes, structure, body: bodyBytes };
  // Tiny size limits, where csv-parse's exact counting (characters of the fields read, bytes of the
  // one being read) shows; not with invalid UTF-8, where it counts the file's bytes (see functions/read/csv.ts).
  if (r() < 0.3 && bodyBytes.equals(Buffer.from(bodyBytes.toString('utf8')))) c.maxRecordChars = Math.floor(r() * 24);
  if (r() < 0.1) c.maxRecords = 1 + Math.floor(r() * 4);
  return c;
}

/**
 * Where our rule and csv-parse's part on purpose: a quoted field with text after its closing quote
 * is its raw text for us (`"a""b"c`), csv-parse drops one quote of each doubled pair (`"a"b"c`).
 * A field of ours that differs from csv-parse's only so is taken as agreeing.
 */
function asCsvParse(got: Outcome, want: Outcome, q: string): Outcome {
  if (q === '') return got;
  const collapse = (f: string): string => {
    if (f[0] !== q) return f;
    let v = '';
    for (let i = 1; i < f.length; i++) {
      if (f[i] !== q) v += f[i];
      else if (f[i + 1] === q) {
        v += q;
        i++;
      } else return i + 1 < f.length ? q + v + q + f.slice(i + 1) : f;
    }
    return f;
  };
  return {
    ...got,
    rows: got.rows.map((row, r) => ({
      line: row.line,
      fields: row.fields.map((f, k) => {
        const w = want.rows[r]?.fields[k];
        return w !== undefined && f !== w && collapse(f) === w ? w : f;
      }),
    })),
  };
}

describe('readRecords against csv-parse (randomized)', () => {
  it('reads 3000 random CSVs like csv-parse did, whatever the chunk sizes', async () => {
    let errors = 0;
    let rows = 0;
    let tooLong = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const c = randomCase(seed);
      const want = reference(c);
      if (want.error) errors++;
      if (want.error?.startsWith('record-too-long')) tooLong++;
      rows += want.rows.length;
      const r = rng(seed * 7919);
      const sizings: [string, () => number][] = [
        ['whole', () => c.bytes.length || 1],
        ['1', () => 1],
        ['2', () => 2],
        ['3', () => 3],
        ['7', () => 7],
        ['64', () => 64],
        ['random', () => 1 + Math.floor(r() * 12)],
      ];
      for (const [label, sizes] of sizings) {
        let got = asCsvParse(await actual(c, sizes), want, c.structure.quote);
        let wanted = want;
        if (JSON.stringify(got) !== JSON.stringify(want) && c.maxRecordChars !== undefined) {
          // our raw fields can be longer than csv-parse's (see asCsvParse): a tiny size limit then
          // stops us first; compare without the limit
          const unlimited = { ...c, maxRecordChars: undefined };
          wanted = reference(unlimited);
          got = asCsvParse(await actual(unlimited, sizes), wanted, c.structure.quote);
        }
        if (JSON.stringify(got) !== JSON.stringify(wanted)) {
          expect(got, `seed ${seed}, pieces ${label}, input ${JSON.stringify(c.bytes.toString('latin1'))}, ${JSON.stringify({ ...c.structure, max: c.maxRecordChars, maxRecords: c.maxRecords })}`).toEqual(
            wanted,
          );
        }
      }
    }
    // The generator reaches the interesting cases.
    expect(rows).toBeGreaterThan(5000);
    expect(errors).toBeGreaterThan(100);
    expect(tooLong).toBeGreaterThan(50);
  }, 60_000);
});

describe('CsvTokenizer', () => {
  const tokenize = (pieces: string[], opts: Partial<ConstructorParameters<typeof CsvTokenizer>[0]> = {}) => {
    const tok = new CsvTokenizer({ delimiter: ',', quote: '"', firstLine: 1, maxRecordChars: 0, ...opts });
    const out: RecordRow[] = [];
    for (const p of pieces) tok.write(p, out);
    tok.end(out);
    return out;
  };

  it('reads a field with text after its closing quote as its raw text, dropping no quote', () => {
    expect(tokenize(['"a"b,"a""b"c,x"y",""z\n'])).toEqual([{ line: 1, fields: ['"a"b', '"a""b"c', 'x"y"', '""z'] }]);
  });

  it('numbers lines by CR, LF and CRLF, in quotes or not, across pieces', () => {
    const text = 'a,"1\r\n2\r3\n4"\r\nb\rc\n\nd,"x\r';
    const whole = tokenize([text + '"']);
    expect(whole).toEqual([
      { line: 1, fields: ['a', '1\r\n2\r3\n4'] },
      { line: 5, fields: ['b'] },
      { line: 6, fields: ['c'] },
      { line: 7, fields: [''] },
      { line: 8, fields: ['d', 'x\r'] },
    ]);
    expect(tokenize([...text, '"'])).toEqual(whole);
  });

  it('reads no quoting at all with quote ""', () => {
    expect(tokenize(['"a,b"\n'], { quote: '' })).toEqual([{ line: 1, fields: ['"a', 'b"'] }]);
  });

  it('fails on an unclosed quote at the end, naming the line the record starts on', () => {
    const tok = new CsvTokenizer({ delimiter: ',', quote: '"', firstLine: 4, maxRecordChars: 0 });
    const out: RecordRow[] = [];
    tok.write('1\n2,"open\nmore\n', out);
    expect(() => tok.end(out)).toThrow(TokenizeError);
    expect(out.map((r) => r.line)).toEqual([4]);
    expect(() => tok.end(out)).toThrow(expect.objectContaining({ kind: 'unclosed-quote', line: 5 }));
  });

  it('fails on a runaway field without holding much more than the limit', () => {
    const tok = new CsvTokenizer({ delimiter: ',', quote: '"', firstLine: 1, maxRecordChars: 1000 });
    const out: RecordRow[] = [];
    let thrown: unknown;
    let fed = 0;
    try {
      tok.write('1\n"', out);
      for (; fed < 100_000; fed += 100) tok.write('x'.repeat(100), out);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ kind: 'record-too-long', line: 2 });
    expect(fed).toBeLessThan(1100);
    expect(out).toEqual([{ line: 1, fields: ['1'] }]);
  });

  it('reads a 1 MB field in 1-byte pieces in linear time', () => {
    const field = 'y'.repeat(1 << 20);
    const started = performance.now();
    const tok = new CsvTokenizer({ delimiter: ',', quote: '"', firstLine: 1, maxRecordChars: 0 });
    const out: RecordRow[] = [];
    for (const ch of `a,"${field}"\n`) tok.write(ch, out);
    tok.end(out);
    expect(out[0]!.fields[1]!.length).toBe(1 << 20);
    expect(performance.now() - started).toBeLessThan(3000);
  });
});
