/**
 * The fuzz corpus: a deterministic generator of malformed files in every format the stage step
 * reads (issue 16). The same seed gives the same bytes, so a file's id names the same input on
 * every machine and in known-failures.json.
 *
 *   npx tsx test/fuzz/generate.ts [outDir]     # write the corpus and manifest.json (default $TMPDIR/civic-etl-fuzz/corpus)
 *
 * Each file says what a careful loader must do with it (`expect`), decided by how it was built,
 * never by running civic-etl:
 *   - `reject`: it is broken in a way no reading can repair (a truncated document, a geometry that
 *     is not one, an unclosed quote…): it must fail, or its bad rows be quarantined — never load
 *     as if whole;
 *   - `load`: it is odd but valid (BOM, CRLF, a byte-order-marked UTF-16…): it must load;
 *   - `any`: either is right, as long as a verdict is recorded within the bounds.
 * Every file stays under ~2 MB; expansion bombs declare sizes far beyond our limits but expand
 * from small inputs.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { makeZip, markEncrypted, declareSize } from '../helpers/zip.ts';
import { compoundFile, ods, writeOds, writeRawXlsx, xlsWorkbookStream } from '../helpers/spreadsheets.ts';
import { POINT, POLYGON, shapefileBytes, PRJ_WGS84_ESRI, square, type TestShapefile } from '../helpers/shapefile-writer.ts';
import { gpkgBlob, isoWkb, writeGeoPackage } from '../helpers/gpkg-writer.ts';

export type Expect = 'reject' | 'load' | 'any';

export interface FuzzFile {
  /** Stable id: `<category>-<nnn>-<slug>`. */
  id: string;
  category: string;
  /** The upload's file name (its extension is what the supplier called it). */
  name: string;
  expect: Expect;
  note: string;
  body: Buffer;
}

export const CATEGORIES = ['csv', 'xlsx', 'ods', 'xls', 'json', 'ndjson', 'geojson', 'shapefile', 'gpkg', 'parquet', 'gzip', 'zip', 'empty'] as const;

/** mulberry32: a small seeded PRNG, enough to pick positions and bytes reproducibly. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)) };
}

const b = (s: string) => Buffer.from(s, 'utf8');

/** A valid small CSV the mutations start from. */
const BASE_CSV = 'id,name,amount,day\n1,Ann,12.5,2024-01-02\n2,"Bo, Jr",7,2024-02-03\n3,Cy,0.25,2024-03-04\n4,Di,100,2024-04-05\n';
const BASE_ROWS = [
  { id: 1, name: 'Ann', amount: 12.5 },
  { id: 2, name: 'Bo', amount: 7 },
  { id: 3, name: 'Cy', amount: 0.25 },
];

async function viaFile(write: (path: string) => Promise<void>): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'fuzz-gen-'));
  try {
    const path = join(dir, 'f');
    await write(path);
    return readFileSync(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const xlsxSheet = (rows: string, extra: { sharedStrings?: string[] } = {}) => viaFile((p) => writeRawXlsx(p, { sheets: [{ name: 'Data', rows }], sharedStrings: extra.sharedStrings }));
const xlsxRows = (n: number) =>
  '<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c><c r="B1" t="inlineStr"><is><t>name</t></is></c></row>' +
  Array.from({ length: n }, (_, i) => `<row r="${i + 2}"><c r="A${i + 2}"><v>${i + 1}</v></c><c r="B${i + 2}" t="inlineStr"><is><t>n${i}</t></is></c></row>`).join('');
const odsFile = (rows: string[]) => viaFile((p) => writeOds(p, [{ name: 'Data', rows }]));
const odsHeader = ods.row([ods.text('id'), ods.text('name')]);
const odsData = (n: number) => Array.from({ length: n }, (_, i) => ods.row([ods.float(i + 1), ods.text(`n${i}`)]));

function xlsFile(cells: { r: number; c: number; v: string | number }[], opts: { password?: boolean } = {}): Buffer {
  return compoundFile('Workbook', xlsWorkbookStream({ sheets: [{ name: 'Data', cells }], password: opts.password }));
}
const xlsBase = () =>
  xlsFile([
    { r: 0, c: 0, v: 'id' },
    { r: 0, c: 1, v: 'name' },
    ...BASE_ROWS.flatMap((row, i) => [
      { r: i + 1, c: 0, v: row.id },
      { r: i + 1, c: 1, v: row.name },
    ]),
  ]);

const feature = (geometry: unknown, props: Record<string, unknown> = { id: 1 }) => ({ type: 'Feature', properties: props, geometry });
const collection = (features: unknown[]) => JSON.stringify({ type: 'FeatureCollection', features });
const okPoint = feature({ type: 'Point', coordinates: [4.9, 52.37] }, { id: 2 });

function shapefileZip(spec: TestShapefile, drop: ('shp' | 'dbf' | 'shx' | 'prj')[] = [], prj = PRJ_WGS84_ESRI, tweak?: (p: { shp: Buffer; shx: Buffer; dbf: Buffer }) => void) {
  const parts = shapefileBytes(spec);
  tweak?.(parts);
  const members: Record<string, Buffer | string> = { 'sites.shp': parts.shp, 'sites.shx': parts.shx, 'sites.dbf': parts.dbf, 'sites.prj': prj };
  for (const d of drop) delete members[`sites.${d}`];
  return makeZip(members);
}
const SHP_POINTS: TestShapefile = {
  shapeType: POINT,
  fields: [
    { name: 'ID', type: 'N', length: 8 },
    { name: 'NAME', type: 'C', length: 10 },
  ],
  records: BASE_ROWS.map((r, i) => ({ shape: { parts: [[[4 + i, 52]]] }, values: [r.id, r.name] })),
};

const gpkgFile = (rows: unknown[][], opts: { geometry?: boolean; applicationId?: boolean } = {}) =>
  viaFile((p) =>
    writeGeoPackage(p, {
      applicationId: opts.applicationId,
      layers: [
        {
          table: 'sites',
          columns: [{ name: 'fid', type: 'INTEGER PRIMARY KEY' }, { name: 'name', type: 'TEXT' }, ...(opts.geometry === false ? [] : [{ name: 'geom', type: 'POINT' }])],
          geometry: opts.geometry === false ? undefined : { column: 'geom', type: 'POINT', srsId: 4326 },
          rows: rows as never,
        },
      ],
    }),
  );

const parquetBase = () =>
  Buffer.from(
    parquetWriteBuffer({
      columnData: [
        { name: 'id', data: BASE_ROWS.map((r) => r.id), type: 'INT32' },
        { name: 'name', data: BASE_ROWS.map((r) => r.name), type: 'STRING' },
      ],
    }),
  );

/** Truncate at seeded positions and flip seeded bytes: the generic mutations of a valid file. */
function mutations(rand: ReturnType<typeof prng>, base: Buffer, count: number): { how: string; body: Buffer }[] {
  const out: { how: string; body: Buffer }[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) {
      const at = rand.int(1, Math.max(1, base.length - 1));
      out.push({ how: `truncated at byte ${at} of ${base.length}`, body: base.subarray(0, at) });
    } else {
      const copy = Buffer.from(base);
      const flips = rand.int(1, 8);
      const where: number[] = [];
      for (let k = 0; k < flips; k++) {
        const at = rand.int(0, copy.length - 1);
        copy[at] = rand.int(0, 255);
        where.push(at);
      }
      out.push({ how: `${flips} byte(s) overwritten at ${where.join(',')}`, body: copy });
    }
  }
  return out;
}

/** Build the whole corpus (about 330 files) from a seed. */
export async function generateCorpus(seed = 16): Promise<FuzzFile[]> {
  const rand = prng(seed);
  const files: FuzzFile[] = [];
  const counters = new Map<string, number>();
  const add = (category: string, slug: string, name: string, expect: Expect, note: string, body: Buffer) => {
    const n = (counters.get(category) ?? 0) + 1;
    counters.set(category, n);
    files.push({ id: `${category}-${String(n).padStart(3, '0')}-${slug}`, category, name, expect, note, body });
  };

  // ------------------------------------------------------------------ CSV
  const csv = (slug: string, expect: Expect, note: string, body: Buffer | string, name = `${slug}.csv`) => add('csv', slug, name, expect, note, Buffer.isBuffer(body) ? body : b(body));
  csv('valid', 'load', 'the base file, unharmed', BASE_CSV);
  csv('bom', 'load', 'UTF-8 byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b(BASE_CSV)]));
  csv('double-bom', 'any', 'two BOMs: the second is part of the first heading', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]), b(BASE_CSV)]));
  csv('crlf', 'load', 'CRLF line ends', BASE_CSV.replace(/\n/g, '\r\n'));
  csv('cr-only', 'load', 'old Mac CR line ends', BASE_CSV.replace(/\n/g, '\r'));
  csv('mixed-eol', 'any', 'LF, CRLF and CR mixed', 'id,name\n1,a\r\n2,b\r3,c\n');
  csv('unclosed-quote-end', 'reject', 'the last field opens a quote never closed', 'id,name\n1,Ann\n2,"Bo\n3,Cy\n');
  csv('unclosed-quote-only', 'reject', 'a file quoting nothing else has one unclosed quote', 'id,name\n1,Ann\n2,Bo"\n3,"Cy\n4,Di\n');
  csv('unclosed-quote-header', 'reject', 'the header opens a quote never closed', '"id,name\n1,Ann\n');
  csv('quote-in-middle', 'any', 'a bare quote inside an unquoted field', 'id,name\n1,An"n\n2,Bo\n');
  csv('ragged-long', 'reject', 'a row with more fields than the header', 'id,name\n1,Ann\n2,Bo,extra,more\n3,Cy\n');
  csv('ragged-short', 'any', 'a row with fewer fields than the header', 'id,name,amount\n1,Ann,1\n2\n3,Cy,3\n');
  csv('nul-field', 'any', 'a NUL byte inside a field', Buffer.concat([b('id,name\n1,A'), Buffer.from([0]), b('nn\n2,Bo\n')]));
  csv('nul-header', 'any', 'a NUL byte in a heading', Buffer.concat([b('id,na'), Buffer.from([0]), b('me\n1,Ann\n')]));
  csv('all-nul', 'reject', '4 KB of NUL bytes', Buffer.alloc(4096));
  csv('invalid-utf8', 'any', 'bytes that are not UTF-8 (lone continuation bytes, overlong forms)', Buffer.concat([b('id,name\n1,'), Buffer.from([0x80, 0xc0, 0xaf, 0xff]), b('\n2,Bo\n')]));
  csv('latin1', 'load', 'Latin-1 accents', Buffer.from('id,name\n1,Zoë\n2,Müller\n', 'latin1'));
  csv('utf16le-bom', 'load', 'UTF-16LE with its BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('id,name\n1,Ann\n', 'utf16le')]));
  csv('utf16le-odd', 'reject', 'UTF-16LE with BOM cut to an odd length', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('id,name\n1,Ann\n', 'utf16le').subarray(0, 27)]));
  csv('utf16be-bom', 'load', 'UTF-16BE with its BOM', Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from('id,name\n1,Ann\n', 'utf16le').swap16()]));
  csv('huge-field', 'any', 'one 1.5 MB field', `id,name\n1,${'x'.repeat(1_500_000)}\n2,Bo\n`);
  csv('huge-quoted-field', 'any', 'one 1.5 MB quoted field of newlines', `id,name\n1,"${'\n'.repeat(1_500_000)}"\n`);
  csv('huge-header', 'any', 'a 1 MB heading', `${'h'.repeat(1_000_000)},b\n1,2\n`);
  csv('many-columns', 'any', '20 000 columns', `${Array.from({ length: 20_000 }, (_, i) => `c${i}`).join(',')}\n${Array.from({ length: 20_000 }, () => '1').join(',')}\n`);
  csv('many-rows-one-col', 'load', '200 000 one-character rows', `a\n${'1\n'.repeat(200_000)}`);
  csv('one-byte-quote', 'reject', 'a one-byte file: "', '"');
  csv('one-byte-comma', 'reject', 'a one-byte file: ,', ',');
  csv('one-byte-newline', 'reject', 'a one-byte file: newline', '\n');
  csv('one-byte-letter', 'reject', 'a one-byte file: a (a heading, no rows)', 'a');
  csv('header-only', 'reject', 'a heading and no rows (would empty the table)', 'id,name\n');
  csv('blank-lines', 'reject', 'only blank lines', '\n\n\n\n');
  csv('whitespace', 'reject', 'only spaces and tabs', '   \t  \n \t\n');
  csv('duplicate-headers', 'any', 'the same heading three times', 'a,a,a\n1,2,3\n');
  csv('empty-headers', 'any', 'blank headings', ',,\n1,2,3\n');
  csv('sql-header', 'any', 'headings that are SQL', '"id; DROP TABLE x;--","name"")",_load_id\n1,2,3\n');
  csv('long-header-names', 'any', 'headings of 200 characters', `${'a'.repeat(200)},${'a'.repeat(199)}b\n1,2\n`);
  csv('semicolon', 'load', 'semicolon delimiter', 'id;name\n1;Ann\n2;Bo\n');
  csv('tab', 'load', 'tab delimiter', 'id\tname\n1\tAnn\n2\tBo\n');
  csv('binary-png', 'reject', 'a PNG named .csv', Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(200, 7)]));
  csv('html', 'reject', 'an HTML error page named .csv', '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>\n');
  csv('formula-cells', 'load', 'cells that are spreadsheet formulas', "id,f\n1,=cmd|' /C calc'!A0\n2,+SUM(A1)\n3,@SUM(A1)\n4,-1+1\n");
  csv('backslash-escapes', 'any', 'backslash-escaped quotes', 'id,name\n1,"Bo \\"Jr\\""\n');
  csv('trailing-delims', 'any', 'every line ends with a delimiter', 'id,name,\n1,Ann,\n2,Bo,\n');
  csv('no-final-newline', 'load', 'no newline at the end', 'id,name\n1,Ann\n2,Bo');
  csv('control-chars', 'any', 'control characters in fields', `id,name\n1,a${String.fromCharCode(1, 2, 27)}b\n`);
  csv('surrogates', 'any', 'UTF-8 encoded lone surrogates (CESU)', Buffer.concat([b('id,name\n1,'), Buffer.from([0xed, 0xa0, 0x80]), b('\n')]));
  csv('deep-quotes', 'any', '100 000 doubled quotes in one field', `id,name\n1,"${'""'.repeat(100_000)}"\n`);
  csv('numbers-extreme', 'load', 'numbers beyond every type: 1e400, -0, NaN, Infinity, 30 digits', 'id,n\n1,1e400\n2,-0\n3,NaN\n4,Infinity\n5,123456789012345678901234567890\n');
  csv('dates-impossible', 'load', 'impossible dates', 'id,day\n1,2024-02-30\n2,0000-00-00\n3,9999-99-99\n');
  csv('xlsx-named-csv', 'any', 'a workbook uploaded as .csv', await xlsxSheet(xlsxRows(3)));
  for (const m of mutations(rand, b(BASE_CSV.repeat(3)), 12)) csv(`mutated`, 'any', `base CSV ${m.how}`, m.body);
  for (let i = 0; i < 6; i++) {
    const bytes = Buffer.alloc(rand.int(16, 4096));
    for (let k = 0; k < bytes.length; k++) bytes[k] = rand.int(0, 255);
    csv('random-bytes', 'reject', `${bytes.length} random bytes`, bytes);
  }

  // ------------------------------------------------------------------ XLSX
  const xlsx = (slug: string, expect: Expect, note: string, body: Buffer) => add('xlsx', slug, `${slug}.xlsx`, expect, note, body);
  const xlsxValid = await xlsxSheet(xlsxRows(3));
  xlsx('valid', 'load', 'a small valid workbook', xlsxValid);
  xlsx('huge-cell-ref', 'reject', 'one cell at ZZZZZZZ1 (column 8×10⁹)', await xlsxSheet(`${xlsxRows(1)}<row r="3"><c r="ZZZZZZZ1"><v>1</v></c></row>`));
  xlsx('huge-row-ref', 'reject', 'a row numbered 2³¹', await xlsxSheet(`${xlsxRows(1)}<row r="2147483648"><c r="A2147483648"><v>1</v></c></row>`));
  xlsx('xfd-cell', 'any', 'a cell in the last column XFD', await xlsxSheet(`${xlsxRows(1)}<row r="3"><c r="XFD3"><v>1</v></c></row>`));
  xlsx('bad-ref', 'any', 'a cell reference that is not one', await xlsxSheet(`${xlsxRows(1)}<row r="3"><c r="3A"><v>1</v></c></row>`));
  xlsx('negative-ref', 'any', 'a row number of -1', await xlsxSheet(`${xlsxRows(1)}<row r="-1"><c r="A-1"><v>1</v></c></row>`));
  xlsx('repeated-rows', 'any', 'the same row number 2000 times', await xlsxSheet(`${xlsxRows(1)}${'<row r="3"><c r="A3"><v>1</v></c></row>'.repeat(2000)}`));
  xlsx('broken-xml', 'reject', 'sheet XML cut inside a tag', await viaFile((p) => writeRawXlsx(p, { sheets: [{ name: 'Data', rows: `${xlsxRows(2)}<row r="9"><c r="A9"` }] })));
  xlsx('bad-shared-index', 'any', 'a shared-string index past the table', await xlsxSheet(`${xlsxRows(1)}<row r="3"><c r="A3" t="s"><v>999999</v></c></row>`, { sharedStrings: ['a'] }));
  xlsx('huge-shared-string', 'any', 'one 1.5 MB shared string', await xlsxSheet(`${xlsxRows(1)}<row r="3"><c r="A3" t="s"><v>0</v></c></row>`, { sharedStrings: ['s'.repeat(1_500_000)] }));
  xlsx(
    'billion-laughs',
    'reject',
    'an entity expansion bomb in the sheet',
    await viaFile((p) => writeRawXlsx(p, { sheets: [{ name: 'Data', rows: '<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>' }] })).then(async (buf) => {
      // the DOCTYPE goes before the root element: rebuild the member with it
      void buf;
      const lol = Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`).join('');
      return makeZip({
        '[Content_Types].xml': '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        'xl/workbook.xml':
          '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="D" sheetId="1" r:id="rId1"/></sheets></workbook>',
        'xl/_rels/workbook.xml.rels':
          '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        'xl/worksheets/sheet1.xml': `<?xml version="1.0"?><!DOCTYPE w [<!ENTITY lol0 "lol">${lol}]><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>`,
      });
    }),
  );
  xlsx(
    'xxe',
    'any',
    'an external entity naming /etc/passwd',
    await makeZip({
      'xl/workbook.xml':
        '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="D" sheetId="1" r:id="rId1"/></sheets></workbook>',
      'xl/_rels/workbook.xml.rels':
        '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="x/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
      'xl/worksheets/sheet1.xml':
        '<?xml version="1.0"?><!DOCTYPE w [<!ENTITY x SYSTEM "file:///etc/passwd">]><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>h</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>&x;</t></is></c></row></sheetData></worksheet>',
    }),
  );
  xlsx('no-workbook', 'reject', 'no xl/workbook.xml', await makeZip({ '[Content_Types].xml': '<Types/>', 'xl/worksheets/sheet1.xml': '<worksheet/>' }));
  xlsx(
    'no-sheet-part',
    'reject',
    'the workbook names a sheet part that is missing',
    await makeZip({
      '[Content_Types].xml': '<Types/>',
      'xl/workbook.xml': '<workbook xmlns:r="r"><sheets><sheet name="D" sheetId="1" r:id="rId1"/></sheets></workbook>',
      'xl/_rels/workbook.xml.rels': '<Relationships><Relationship Id="rId1" Type="x/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
    }),
  );
  xlsx('encrypted-ole', 'reject', 'an encrypted workbook (an OLE2 file with EncryptedPackage)', compoundFile('EncryptedPackage', Buffer.alloc(600, 3)));
  xlsx('encrypted-zip', 'reject', 'zip members flagged encrypted', markEncrypted(xlsxValid));
  xlsx('size-lie', 'reject', 'the sheet member declares 4 GB uncompressed', declareSize(xlsxValid, 0xfffffff0, 'xl/worksheets/sheet1.xml'));
  xlsx('not-zip', 'any', 'text named .xlsx', b('id,name\n1,Ann\n'));
  xlsx('zip-of-csv', 'any', 'a zip of a CSV named .xlsx', await makeZip({ 'data.csv': BASE_CSV }));
  xlsx('sheet-bomb', 'any', '8 MB of empty rows compressed to a few KB', await xlsxSheet(`${xlsxRows(1)}${'<row r="3"></row>'.repeat(400_000)}`));
  xlsx('deep-nesting', 'any', '100 000 nested elements in a cell', await xlsxSheet(`${xlsxRows(1)}<row r="3"><c r="A3" t="inlineStr"><is>${'<r>'.repeat(100_000)}${'</r>'.repeat(100_000)}</is></c></row>`));
  xlsx('many-sheets', 'any', '300 sheets', await viaFile((p) => writeRawXlsx(p, { sheets: Array.from({ length: 300 }, (_, i) => ({ name: `S${i}`, rows: xlsxRows(1) })) })));
  for (const m of mutations(rand, xlsxValid, 16)) xlsx('mutated', 'any', `valid workbook ${m.how}`, m.body);

  // ------------------------------------------------------------------ ODS
  const odsOut = (slug: string, expect: Expect, note: string, body: Buffer) => add('ods', slug, `${slug}.ods`, expect, note, body);
  const odsValid = await odsFile([odsHeader, ...odsData(3)]);
  odsOut('valid', 'load', 'a small valid spreadsheet', odsValid);
  odsOut('rows-repeated-1e9', 'reject', 'a data row repeated 10⁹ times', await odsFile([odsHeader, ods.row([ods.float(1), ods.text('x')], 1_000_000_000)]));
  odsOut('rows-repeated-1e6', 'any', 'a data row repeated 10⁶ times', await odsFile([odsHeader, ods.row([ods.float(1), ods.text('x')], 1_000_000)]));
  odsOut('cols-repeated', 'reject', 'a data cell repeated 10⁹ columns', await odsFile([odsHeader, ods.row([ods.float(1, '1', 1_000_000_000)])]));
  odsOut('blank-padding', 'load', 'a sheet padded with 10⁶ blank rows, as spreadsheet programs do', await odsFile([odsHeader, ...odsData(2), ods.blankRows(1_048_000)]));
  odsOut(
    'truncated-content',
    'reject',
    'content.xml cut in the middle of the table',
    await (async () => {
      const full = (await odsFile([odsHeader, ...odsData(50)])).length;
      void full;
      const content = `<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:spreadsheet><table:table table:name="Data">${odsHeader}${odsData(50).join('')}`;
      return makeZip({ mimetype: 'application/vnd.oasis.opendocument.spreadsheet', 'content.xml': content.slice(0, content.length - 40) });
    })(),
  );
  odsOut('no-content', 'reject', 'no content.xml', await makeZip({ mimetype: 'application/vnd.oasis.opendocument.spreadsheet', 'META-INF/manifest.xml': '<m/>' }));
  odsOut(
    'wrong-mimetype',
    'any',
    'the mimetype of a text document',
    await viaFile((p) => writeOds(p, [{ name: 'D', rows: [odsHeader, ...odsData(2)] }], { mimetype: 'application/vnd.oasis.opendocument.text' })),
  );
  odsOut('huge-text', 'any', 'one 1.5 MB cell', await odsFile([odsHeader, ods.row([ods.float(1), ods.text('t'.repeat(1_500_000))])]));
  odsOut('span-bomb', 'any', 'a cell spanning 10⁹ columns and rows', await odsFile([odsHeader, ods.row([ods.span('x', 1_000_000_000, 1_000_000_000)])]));
  odsOut('encrypted', 'reject', 'members flagged encrypted', markEncrypted(odsValid));
  for (const m of mutations(rand, odsValid, 14)) odsOut('mutated', 'any', `valid spreadsheet ${m.how}`, m.body);

  // ------------------------------------------------------------------ XLS
  const xls = (slug: string, expect: Expect, note: string, body: Buffer) => add('xls', slug, `${slug}.xls`, expect, note, body);
  const xlsValid = xlsBase();
  xls('valid', 'load', 'a small valid BIFF8 workbook', xlsValid);
  xls(
    'password',
    'reject',
    'a workbook with a FILEPASS (encrypted) record',
    xlsFile(
      [
        { r: 0, c: 0, v: 'id' },
        { r: 1, c: 0, v: 1 },
      ],
      { password: true },
    ),
  );
  xls(
    'huge-row',
    'any',
    'a cell at row 65535, column 255',
    xlsFile([
      { r: 0, c: 0, v: 'id' },
      { r: 65535, c: 255, v: 1 },
    ]),
  );
  xls('not-ole', 'any', 'text named .xls', b(BASE_CSV));
  xls('html-as-xls', 'any', 'an HTML table named .xls (what many portals export)', b('<html><body><table><tr><td>id</td></tr><tr><td>1</td></tr></table></body></html>'));
  xls('ole-no-workbook', 'reject', 'an OLE2 file without a Workbook stream', compoundFile('Other', Buffer.alloc(100, 1)));
  for (const m of mutations(rand, xlsValid, 14)) xls('mutated', 'any', `valid workbook ${m.how}`, m.body);

  // ------------------------------------------------------------------ JSON
  const json = (slug: string, expect: Expect, note: string, body: Buffer | string) => add('json', slug, `${slug}.json`, expect, note, Buffer.isBuffer(body) ? body : b(body));
  const jsonValid = JSON.stringify(BASE_ROWS);
  json('valid', 'load', 'an array of three objects', jsonValid);
  json('empty-array', 'reject', '[] (no rows: would empty the table)', '[]');
  json('empty-object', 'reject', '{} (no rows)', '{}');
  json('truncated', 'reject', 'cut in the middle of the second object', jsonValid.slice(0, 40));
  json('truncated-last', 'reject', 'the closing ] missing', jsonValid.slice(0, -1));
  json('deep-array', 'reject', '100 000 nested arrays', `[${'['.repeat(100_000)}${']'.repeat(100_000)}]`);
  json('deep-object', 'any', '10 000 nested objects in one row', `[${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}]`);
  json('nul-key', 'any', 'a key holding NUL', '[{"id":1,"a\\u0000b":2}]');
  json('nul-value', 'any', 'a value holding NUL', '[{"id":1,"name":"a\\u0000b"}]');
  json('raw-nul', 'reject', 'a raw NUL byte between tokens', Buffer.concat([b('[{"id":1}'), Buffer.from([0]), b(']')]));
  json('invalid-utf8', 'reject', 'a string with bytes that are not UTF-8', Buffer.concat([b('[{"id":1,"name":"'), Buffer.from([0xc3, 0x28, 0xff]), b('"}]')]));
  json('duplicate-keys', 'any', 'the same key twice in an object', '[{"id":1,"id":2,"name":"a"}]');
  json('lone-surrogate', 'any', 'an escaped lone surrogate', '[{"id":1,"name":"\\ud800"}]');
  json('scalar', 'any', 'a bare number', '42');
  json('string', 'any', 'a bare string', '"hello"');
  json('null', 'reject', 'null', 'null');
  json('array-of-scalars', 'any', 'an array of numbers', '[1,2,3]');
  json('mixed-array', 'any', 'objects, arrays and scalars mixed', '[{"id":1},[2],3,"x",null]');
  json('huge-number', 'load', 'numbers 1e400 and 30 digits', '[{"id":1,"n":1e400},{"id":2,"n":123456789012345678901234567890}]');
  json('trailing-comma', 'reject', 'a trailing comma', '[{"id":1},]');
  json('comments', 'reject', 'JavaScript comments', '[/* c */{"id":1}]');
  json('nan', 'reject', 'NaN literal', '[{"id":NaN}]');
  json('single-quotes', 'reject', 'single-quoted strings', "[{'id':1}]");
  json('bom', 'load', 'UTF-8 BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b(jsonValid)]));
  json('utf16', 'any', 'UTF-16LE with BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(jsonValid, 'utf16le')]));
  json('two-documents', 'reject', 'two arrays one after the other', `${jsonValid}${jsonValid}`);
  json('garbage-after', 'reject', 'text after the document', `${jsonValid} trailing`);
  json('wide', 'any', 'one object with 5 000 keys', JSON.stringify([Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]))]));
  json('long-key', 'any', 'a key of 100 000 characters', `[{"${'k'.repeat(100_000)}":1}]`);
  json('huge-string', 'any', 'a 1.5 MB string value', `[{"id":1,"s":"${'s'.repeat(1_500_000)}"}]`);
  json('wrapped-data', 'load', 'rows under {"data": […]}', JSON.stringify({ data: BASE_ROWS }));
  json('many-arrays', 'any', 'an object with two row arrays', JSON.stringify({ a: BASE_ROWS, b: BASE_ROWS }));
  json('geojson-as-json', 'any', 'a FeatureCollection named .json', collection([okPoint]));
  for (const m of mutations(rand, b(JSON.stringify([...BASE_ROWS, ...BASE_ROWS])), 12)) json('mutated', 'any', `valid JSON ${m.how}`, m.body);

  // ------------------------------------------------------------------ NDJSON
  const nd = (slug: string, expect: Expect, note: string, body: Buffer | string) => add('ndjson', slug, `${slug}.ndjson`, expect, note, Buffer.isBuffer(body) ? body : b(body));
  const ndValid = BASE_ROWS.map((r) => JSON.stringify(r)).join('\n') + '\n';
  nd('valid', 'load', 'three lines', ndValid);
  nd('truncated-line', 'reject', 'the last line cut', ndValid.slice(0, -8));
  nd('bad-line', 'reject', 'a line that is not JSON', `${ndValid}not json\n`);
  nd('blank-lines', 'any', 'blank lines between records', ndValid.replace(/\n/g, '\n\n'));
  nd('crlf', 'load', 'CRLF line ends', ndValid.replace(/\n/g, '\r\n'));
  nd('array-line', 'any', 'an array on a line', `${ndValid}[1,2]\n`);
  nd('scalar-line', 'any', 'a number on a line', `${ndValid}5\n`);
  nd('nul-line', 'reject', 'a NUL byte line', Buffer.concat([b(ndValid), Buffer.from([0, 10])]));
  nd('invalid-utf8', 'reject', 'invalid UTF-8 in a value', Buffer.concat([b('{"id":1,"name":"'), Buffer.from([0xfe, 0xfe]), b('"}\n')]));
  nd('deep', 'reject', '100 000 nested arrays on a line', `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}\n`);
  nd('huge-line', 'any', 'a 1.5 MB line', `{"id":1,"s":"${'s'.repeat(1_500_000)}"}\n`);
  nd('one-object-spread', 'any', 'a pretty-printed object over several lines', JSON.stringify(BASE_ROWS[0], null, 2));
  nd('only-newlines', 'reject', 'newlines only', '\n\n\n');
  nd('duplicate-keys', 'any', 'a key twice on a line', '{"id":1,"id":2}\n');
  for (const m of mutations(rand, b(ndValid.repeat(3)), 10)) nd('mutated', 'any', `valid NDJSON ${m.how}`, m.body);

  // ------------------------------------------------------------------ GeoJSON
  const geo = (slug: string, expect: Expect, note: string, body: Buffer | string) => add('geojson', slug, `${slug}.geojson`, expect, note, Buffer.isBuffer(body) ? body : b(body));
  const geoValid = collection([feature({ type: 'Point', coordinates: [4.89, 52.37] }), okPoint]);
  geo('valid', 'load', 'two points', geoValid);
  geo('nested-point', 'reject', 'a Point whose coordinates are nested [[1,2]]', collection([feature({ type: 'Point', coordinates: [[1, 2]] }), okPoint]));
  geo('five-values', 'reject', 'a Point of five numbers', collection([feature({ type: 'Point', coordinates: [1, 2, 3, 4, 5] }), okPoint]));
  geo('one-value', 'reject', 'a Point of one number', collection([feature({ type: 'Point', coordinates: [1] }), okPoint]));
  geo('empty-coords', 'any', 'a Point with []', collection([feature({ type: 'Point', coordinates: [] }), okPoint]));
  geo(
    '1e400',
    'reject',
    'a Point at [1e400, -1e400]',
    '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":1},"geometry":{"type":"Point","coordinates":[1e400,-1e400]}},' + JSON.stringify(okPoint) + ']}',
  );
  geo('nan-strings', 'reject', 'coordinates "NaN" and "Infinity" as strings', collection([feature({ type: 'Point', coordinates: ['NaN', 'Infinity'] }), okPoint]));
  geo('string-coords', 'reject', 'coordinates "4.9" as strings', collection([feature({ type: 'Point', coordinates: ['4.9', '52.3'] }), okPoint]));
  geo('null-coords', 'any', 'coordinates null', collection([feature({ type: 'Point', coordinates: null }), okPoint]));
  geo(
    'unclosed-ring',
    'reject',
    'a Polygon ring whose last point is not its first',
    collection([
      feature({
        type: 'Polygon',
        coordinates: [
          [
            [0, 0],
            [1, 0],
            [1, 1],
            [0, 1],
          ],
        ],
      }),
      okPoint,
    ]),
  );
  geo(
    'short-ring',
    'reject',
    'a Polygon ring of two points',
    collection([
      feature({
        type: 'Polygon',
        coordinates: [
          [
            [0, 0],
            [1, 0],
          ],
        ],
      }),
      okPoint,
    ]),
  );
  geo(
    'bowtie',
    'any',
    'a self-intersecting polygon',
    collection([
      feature({
        type: 'Polygon',
        coordinates: [
          [
            [0, 0],
            [1, 1],
            [1, 0],
            [0, 1],
            [0, 0],
          ],
        ],
      }),
      okPoint,
    ]),
  );
  geo('polygon-as-points', 'reject', 'a Polygon whose coordinates are one point', collection([feature({ type: 'Polygon', coordinates: [1, 2] }), okPoint]));
  geo('line-one-point', 'reject', 'a LineString of one point', collection([feature({ type: 'LineString', coordinates: [[1, 2]] }), okPoint]));
  geo('unknown-type', 'reject', 'a geometry of type "Circle"', collection([feature({ type: 'Circle', coordinates: [1, 2], radius: 3 }), okPoint]));
  geo('lowercase-type', 'any', 'a geometry of type "point"', collection([feature({ type: 'point', coordinates: [1, 2] }), okPoint]));
  geo('type-number', 'reject', 'a geometry whose type is 7', collection([feature({ type: 7, coordinates: [1, 2] }), okPoint]));
  geo('geometry-string', 'reject', 'a geometry that is a WKT string', collection([feature('POINT(1 2)'), okPoint]));
  geo('null-geometry', 'any', 'a feature without geometry', collection([feature(null), okPoint]));
  geo('out-of-range', 'any', 'a WGS 84 point at [500, 200]', collection([feature({ type: 'Point', coordinates: [500, 200] }), okPoint]));
  geo(
    'deep-collection',
    'reject',
    'a GeometryCollection nested 10 000 deep',
    `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":${'{"type":"GeometryCollection","geometries":['.repeat(10_000)}${']}'.repeat(10_000)}}]}`,
  );
  geo('features-object', 'reject', '"features" is an object', '{"type":"FeatureCollection","features":{"a":1}}');
  geo('no-features', 'reject', 'an empty FeatureCollection (would empty the table)', collection([]));
  geo('bare-geometry', 'any', 'a bare Point geometry', '{"type":"Point","coordinates":[1,2]}');
  geo(
    'crs-bogus',
    'reject',
    'a crs member naming EPSG:999999',
    JSON.stringify({ type: 'FeatureCollection', crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::999999' } }, features: [okPoint] }),
  );
  geo(
    'huge-ring',
    'any',
    'a ring of 40 000 vertices',
    collection([feature({ type: 'Polygon', coordinates: [[...Array.from({ length: 40_000 }, (_, i) => [Math.cos(i / 6366) * 10, Math.sin(i / 6366) * 10]), [10, 0]]] })]),
  );
  geo(
    'mixed-dims',
    'any',
    'a line mixing 2D and 3D points',
    collection([
      feature({
        type: 'LineString',
        coordinates: [
          [0, 0],
          [1, 1, 1],
        ],
      }),
      okPoint,
    ]),
  );
  geo('multipoint-nested-deeper', 'reject', 'a MultiPoint with coordinates three levels deep', collection([feature({ type: 'MultiPoint', coordinates: [[[1, 2]]] }), okPoint]));
  geo('truncated', 'reject', 'cut in the middle', geoValid.slice(0, 70));
  geo(
    'invalid-utf8',
    'reject',
    'a property with bytes that are not UTF-8',
    Buffer.concat([b('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"n":"'), Buffer.from([0xff, 0xfe, 0x80]), b('"},"geometry":{"type":"Point","coordinates":[1,2]}}]}')]),
  );
  geo('properties-array', 'any', 'properties is an array', collection([{ type: 'Feature', properties: [1, 2], geometry: { type: 'Point', coordinates: [1, 2] } }, okPoint]));
  for (const m of mutations(rand, b(geoValid), 12)) geo('mutated', 'any', `valid GeoJSON ${m.how}`, m.body);

  // ------------------------------------------------------------------ zipped shapefile
  const shp = async (slug: string, expect: Expect, note: string, body: Buffer | Promise<Buffer>) => add('shapefile', slug, `${slug}.zip`, expect, note, await body);
  const shpValid = await shapefileZip(SHP_POINTS);
  await shp('valid', 'load', 'three points with .shp .shx .dbf .prj', shpValid);
  await shp('no-shp', 'reject', 'no .shp member', shapefileZip(SHP_POINTS, ['shp']));
  await shp('no-dbf', 'reject', 'no .dbf member', shapefileZip(SHP_POINTS, ['dbf']));
  await shp('no-shx', 'any', 'no .shx member', shapefileZip(SHP_POINTS, ['shx']));
  await shp('no-prj', 'any', 'no .prj member', shapefileZip(SHP_POINTS, ['prj']));
  await shp('bad-prj', 'reject', 'a .prj that is not WKT', shapefileZip(SHP_POINTS, [], 'this is not a projection'));
  await shp('prj-unknown', 'reject', 'a .prj naming an unknown datum', shapefileZip(SHP_POINTS, [], 'PROJCS["Nowhere",GEOGCS["Mars 2000",DATUM["D_Mars",SPHEROID["Mars",3396190,169.89]]]]'));
  await shp('dbf-count-2e31', 'reject', 'the DBF claims 2³¹ records', shapefileZip({ ...SHP_POINTS, dbfRecordCount: 2 ** 31 - 1 }));
  await shp('dbf-count-more', 'reject', 'the DBF claims 10 records, holds 3', shapefileZip({ ...SHP_POINTS, dbfRecordCount: 10 }));
  await shp('dbf-count-less', 'reject', 'the DBF claims 1 record, holds 3', shapefileZip({ ...SHP_POINTS, dbfRecordCount: 1 }));
  await shp(
    'shp-truncated',
    'reject',
    'the .shp cut in its last record',
    shapefileZip(SHP_POINTS, [], PRJ_WGS84_ESRI, (p) => (p.shp = p.shp.subarray(0, p.shp.length - 10))),
  );
  await shp(
    'shp-length-lie',
    'reject',
    'the .shp header claims 2 GB',
    shapefileZip(SHP_POINTS, [], PRJ_WGS84_ESRI, (p) => p.shp.writeInt32BE(0x7fffffff, 24)),
  );
  await shp(
    'record-length-lie',
    'reject',
    'a record claims 1 GB of content',
    shapefileZip(SHP_POINTS, [], PRJ_WGS84_ESRI, (p) => p.shp.writeInt32BE(0x20000000, 104)),
  );
  await shp(
    'dbf-header-lie',
    'reject',
    'the DBF header length points past the file',
    shapefileZip(SHP_POINTS, [], PRJ_WGS84_ESRI, (p) => p.dbf.writeUInt16LE(0xfff0, 8)),
  );
  await shp(
    'dbf-record-size-0',
    'reject',
    'the DBF record size is 0',
    shapefileZip(SHP_POINTS, [], PRJ_WGS84_ESRI, (p) => p.dbf.writeUInt16LE(0, 10)),
  );
  await shp(
    'polygon-nan',
    'reject',
    'a polygon with NaN vertices',
    shapefileZip({
      shapeType: POLYGON,
      fields: [{ name: 'ID', type: 'N', length: 4 }],
      records: [
        {
          shape: {
            parts: [
              [
                [NaN, 0],
                [1, 0],
                [1, NaN],
                [NaN, 0],
              ],
            ],
          },
          values: [1],
        },
        { shape: { parts: [square(0, 0, 1, true)] }, values: [2] },
      ],
    }),
  );
  await shp(
    'polygon-open',
    'any',
    'a polygon ring not closed',
    shapefileZip({
      shapeType: POLYGON,
      fields: [{ name: 'ID', type: 'N', length: 4 }],
      records: [
        {
          shape: {
            parts: [
              [
                [0, 0],
                [1, 0],
                [1, 1],
              ],
            ],
          },
          values: [1],
        },
      ],
    }),
  );
  await shp(
    'two-shapefiles',
    'any',
    'two shapefiles in one zip',
    makeZip({
      ...Object.fromEntries(Object.entries(shapefileBytes(SHP_POINTS)).map(([k, v]) => [`a.${k}`, v])),
      ...Object.fromEntries(Object.entries(shapefileBytes(SHP_POINTS)).map(([k, v]) => [`b.${k}`, v])),
    }),
  );
  await shp('dbf-only', 'any', 'a zip holding only a .dbf', makeZip({ 'sites.dbf': shapefileBytes(SHP_POINTS).dbf }));
  await shp('zero-records', 'reject', 'a shapefile of no records (would empty the table)', shapefileZip({ ...SHP_POINTS, records: [] }));
  for (const m of mutations(rand, shapefileBytes(SHP_POINTS).shp, 6))
    await shp('mutated-shp', 'any', `the .shp ${m.how}`, makeZip({ 'sites.shp': m.body, 'sites.shx': shapefileBytes(SHP_POINTS).shx, 'sites.dbf': shapefileBytes(SHP_POINTS).dbf }));
  for (const m of mutations(rand, shapefileBytes(SHP_POINTS).dbf, 6))
    await shp('mutated-dbf', 'any', `the .dbf ${m.how}`, makeZip({ 'sites.shp': shapefileBytes(SHP_POINTS).shp, 'sites.shx': shapefileBytes(SHP_POINTS).shx, 'sites.dbf': m.body }));
  // past read.limits.maxColumns from the DBF header alone (1,700 fields of one byte)
  await shp(
    'dbf-1700-fields',
    'reject',
    'a DBF declaring 1,700 fields',
    shapefileZip({
      ...SHP_POINTS,
      fields: Array.from({ length: 1700 }, (_, i) => ({ name: `F${i}`, type: 'N', length: 1 })),
      records: SHP_POINTS.records.map((r) => ({ ...r, values: Array.from({ length: 1700 }, () => 1) })),
    }),
  );

  // ------------------------------------------------------------------ GeoPackage
  const gpkg = (slug: string, expect: Expect, note: string, body: Buffer) => add('gpkg', slug, `${slug}.gpkg`, expect, note, body);
  const point = (x: number, y: number) => gpkgBlob(isoWkb('Point', [x, y]), { srsId: 4326 });
  const gpkgValid = await gpkgFile(BASE_ROWS.map((r, i) => [r.id, r.name, point(4 + i, 52)]));
  gpkg('valid', 'load', 'three points', gpkgValid);
  gpkg('not-sqlite', 'any', 'text named .gpkg', b(BASE_CSV));
  gpkg(
    'sqlite-no-gpkg',
    'reject',
    'an SQLite database without gpkg tables',
    await viaFile(async (p) => {
      const initSqlJs = (await import('sql.js')).default;
      const SQL = await initSqlJs();
      const db = new SQL.Database();
      db.run('CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1)');
      writeFileSync(p, db.export());
      db.close();
    }),
  );
  gpkg('no-rows', 'reject', 'a layer of no rows (would empty the table)', await gpkgFile([]));
  gpkg(
    'bad-blob',
    'reject',
    'a geometry blob that is not GeoPackage binary',
    await gpkgFile([
      [1, 'a', new Uint8Array([1, 2, 3, 4])],
      [2, 'b', point(4, 52)],
    ]),
  );
  gpkg(
    'wkb-truncated',
    'reject',
    'a geometry whose WKB is cut',
    await gpkgFile([
      [1, 'a', point(4, 52).subarray(0, 20)],
      [2, 'b', point(4, 52)],
    ]),
  );
  gpkg(
    'attributes-only',
    'any',
    'an attributes table, no geometry',
    await gpkgFile(
      [
        [1, 'a'],
        [2, 'b'],
      ],
      { geometry: false },
    ),
  );
  gpkg('no-app-id', 'any', 'no GeoPackage application id', await gpkgFile([[1, 'a', point(4, 52)]], { applicationId: false }));
  gpkg('truncated-half', 'reject', 'cut in half', gpkgValid.subarray(0, gpkgValid.length >> 1));
  gpkg('header-only', 'reject', 'only the 100-byte SQLite header', gpkgValid.subarray(0, 100));
  for (const m of mutations(rand, gpkgValid, 12)) gpkg('mutated', 'any', `valid GeoPackage ${m.how}`, m.body);
  // past read.limits.maxCellChars: a 600 KB geometry blob (1.2 million hex characters), a 1.1-million-character text
  gpkg(
    'blob-600kb',
    'reject',
    'a LineString of 37,500 points, a 600 KB blob',
    await gpkgFile([
      [
        1,
        'a',
        gpkgBlob(
          isoWkb(
            'LineString',
            Array.from({ length: 37_500 }, (_, i) => [4 + i / 1e5, 52]),
          ),
          { srsId: 4326 },
        ),
      ],
    ]),
  );
  gpkg('text-1.1m', 'reject', 'a name of 1.1 million characters', await gpkgFile([[1, 'x'.repeat(1_100_000), point(4, 52)]]));

  // ------------------------------------------------------------------ Parquet
  const pq = (slug: string, expect: Expect, note: string, body: Buffer) => add('parquet', slug, `${slug}.parquet`, expect, note, body);
  const pqValid = parquetBase();
  pq('valid', 'load', 'three rows, two columns', pqValid);
  pq('bad-magic-start', 'reject', 'the leading PAR1 overwritten', Buffer.concat([b('XXXX'), pqValid.subarray(4)]));
  pq('bad-magic-end', 'reject', 'the trailing PAR1 overwritten', Buffer.concat([pqValid.subarray(0, -4), b('XXXX')]));
  pq(
    'footer-length-lie',
    'reject',
    'the footer length claims 2 GB',
    (() => {
      const c = Buffer.from(pqValid);
      c.writeUInt32LE(0x7ffffff0, c.length - 8);
      return c;
    })(),
  );
  pq('truncated-footer', 'reject', 'the last 20 bytes cut', pqValid.subarray(0, -20));
  pq('only-magic', 'reject', 'PAR1PAR1', b('PAR1PAR1'));
  pq('csv-named-parquet', 'any', 'CSV named .parquet', b(BASE_CSV));
  pq('empty-columns', 'reject', 'a table of no rows (would empty the table)', Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'id', data: [], type: 'INT32' }] })));
  for (const m of mutations(rand, pqValid, 14)) pq('mutated', 'any', `valid Parquet ${m.how}`, m.body);
  // past read.limits.maxGroupCells and maxColumns from the footer alone
  pq(
    'million-rows-17-columns',
    'reject',
    'a 5 KB file declaring one row group of 1,000,000 rows × 17 columns',
    (() => {
      const zeros = new Int32Array(1_000_000);
      return Buffer.from(parquetWriteBuffer({ columnData: Array.from({ length: 17 }, (_, c) => ({ name: `c${c}`, data: zeros, type: 'INT32' as const })), rowGroupSize: 1_000_000 }));
    })(),
  );
  pq('1700-columns', 'reject', 'one row of 1,700 columns', Buffer.from(parquetWriteBuffer({ columnData: Array.from({ length: 1700 }, (_, c) => ({ name: `c${c}`, data: [c], type: 'INT32' as const })) })));

  // ------------------------------------------------------------------ gzip
  const gz = (slug: string, expect: Expect, note: string, body: Buffer, name = `${slug}.csv.gz`) => add('gzip', slug, name, expect, note, body);
  const gzValid = gzipSync(b(BASE_CSV));
  gz('valid', 'load', 'a gzipped CSV', gzValid);
  gz('truncated', 'reject', 'cut before its trailer', gzValid.subarray(0, gzValid.length - 6));
  gz(
    'bad-crc',
    'reject',
    'a wrong CRC in the trailer',
    (() => {
      const c = Buffer.from(gzValid);
      c.writeUInt32LE((c.readUInt32LE(c.length - 8) ^ 0xffffffff) >>> 0, c.length - 8);
      return c;
    })(),
  );
  gz(
    'bad-length',
    'reject',
    'a wrong length in the trailer',
    (() => {
      const c = Buffer.from(gzValid);
      c.writeUInt32LE(7, c.length - 4);
      return c;
    })(),
  );
  gz('concatenated', 'load', 'two gzip members one after the other (valid per RFC 1952)', Buffer.concat([gzipSync(b('id,name\n1,Ann\n')), gzipSync(b('2,Bo\n'))]));
  gz('garbage-after', 'reject', 'bytes after the last member', Buffer.concat([gzValid, b('garbage')]));
  gz('bomb-1g', 'reject', '1 GB of zeros gzipped to about 1 MB', gzipSync(Buffer.alloc(1 << 30), { level: 9 }));
  const rowsBomb = gzipSync(Buffer.concat([b('a\n'), Buffer.alloc(300_000_000, '1\n')]), { level: 9 });
  gz('bomb-csv-rows', 'reject', '300 MB of CSV rows gzipped', rowsBomb);
  gz(
    'xlsx-gz-bomb',
    'reject',
    'a workbook of 300 MB of stored (uncompressed) zip members, then gzipped',
    gzipSync(await makeZip({ 'xl/workbook.xml': '<workbook/>', 'pad.bin': Buffer.alloc(300_000_000) }, { compress: false }), { level: 9 }),
    'bomb.xlsx.gz',
  );
  gz('double-gzip', 'any', 'a gzip inside a gzip', gzipSync(gzValid), 'double.csv.gz');
  gz('not-gzip', 'any', 'CSV named .gz', b(BASE_CSV));
  gz('empty-content', 'reject', 'a gzip of nothing', gzipSync(Buffer.alloc(0)));
  gz('header-only', 'reject', 'the 10-byte gzip header alone', gzValid.subarray(0, 10));
  gz('json-gz', 'load', 'a gzipped JSON', gzipSync(b(jsonValid)), 'rows.json.gz');
  for (const m of mutations(rand, gzipSync(b(BASE_CSV.repeat(20))), 10)) gz('mutated', 'any', `gzipped CSV ${m.how}`, m.body);

  // ------------------------------------------------------------------ zip
  const zip = async (slug: string, expect: Expect, note: string, body: Buffer | Promise<Buffer>) => add('zip', slug, `${slug}.zip`, expect, note, await body);
  const zipValid = await makeZip({ 'data.csv': BASE_CSV });
  await zip('valid', 'load', 'one CSV member', zipValid);
  await zip(
    'slip',
    'reject',
    'a member named ../../evil.csv',
    (async () => {
      const { renameMember } = await import('../helpers/zip.ts');
      return renameMember(await makeZip({ 'aa/aa/evil.csv': BASE_CSV }), 'aa/aa/evil.csv', '../../evil.csv');
    })(),
  );
  await zip(
    'absolute',
    'reject',
    'a member named /tmp/evil.csv',
    (async () => {
      const { renameMember } = await import('../helpers/zip.ts');
      return renameMember(await makeZip({ 'xtmp/evil.csv': BASE_CSV }), 'xtmp/evil.csv', '/tmp/evil.csv');
    })(),
  );
  await zip(
    'duplicate-members',
    'reject',
    'two members named data.csv with different rows',
    (async () => {
      const { renameMember } = await import('../helpers/zip.ts');
      return renameMember(await makeZip({ 'data.csv': 'id,name\n1,Ann\n', 'datb.csv': 'id,name\n2,Bo\n' }), 'datb.csv', 'data.csv');
    })(),
  );
  await zip('encrypted', 'reject', 'an encrypted member', markEncrypted(zipValid));
  await zip('size-lie', 'reject', 'a member declaring 4 GB', declareSize(zipValid, 0xfffffff0));
  await zip('size-understated', 'reject', 'a member declaring 10 bytes, expanding to more', declareSize(zipValid, 10));
  await zip('ratio-bomb', 'reject', '1 GB of zeros in a 1 MB member', makeZip({ 'zeros.csv': Buffer.alloc((1 << 30) - 1) }));
  await zip(
    'nested-named-csv',
    'reject',
    'four levels of archives each named .csv, the last 200 MB',
    (async () => {
      let inner = await makeZip({ 'rows.csv': Buffer.concat([b('a\n'), Buffer.alloc(200_000_000, 0x31)]) });
      for (let i = 0; i < 3; i++) inner = await makeZip({ [`level${i}.csv`]: inner });
      return inner;
    })(),
  );
  await zip(
    'nested-4',
    'reject',
    'four levels of zips',
    (async () => {
      let inner = await makeZip({ 'rows.csv': BASE_CSV });
      for (let i = 0; i < 4; i++) inner = await makeZip({ [`level${i}.zip`]: inner });
      return inner;
    })(),
  );
  await zip('nested-gz-bomb', 'reject', 'a zip holding a .gz of 300 MB of CSV rows', makeZip({ 'rows.csv.gz': rowsBomb }));
  await zip('ratio-bomb-rows', 'reject', '1 GB of CSV rows in a 1 MB member', makeZip({ 'rows.csv': Buffer.concat([b('a\n'), Buffer.alloc((1 << 30) - 3, '1\n')]) }));
  await zip('many-members', 'any', '5 000 small members', makeZip(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`m${i}.csv`, 'a\n1\n']))));
  await zip('empty-zip', 'reject', 'a zip with no members', makeZip({}));
  await zip('empty-member', 'reject', 'a zero-byte CSV member', makeZip({ 'data.csv': '' }));
  await zip(
    'dir-only',
    'reject',
    'only a directory entry',
    (async () => {
      const { renameMember } = await import('../helpers/zip.ts');
      return renameMember(await makeZip({ dirx: '' }), 'dirx', 'dir/');
    })(),
  );
  await zip('mixed-formats', 'any', 'a CSV and a JSON member', makeZip({ 'a.csv': BASE_CSV, 'b.json': jsonValid }));
  await zip('different-headers', 'any', 'two CSV members with different headings', makeZip({ 'a.csv': 'id,name\n1,a\n', 'b.csv': 'x,y,z\n1,2,3\n' }));
  await zip('truncated', 'reject', 'cut before the central directory', zipValid.subarray(0, zipValid.length - 30));
  await zip('no-central', 'reject', 'the local header only', zipValid.subarray(0, 40));
  await zip(
    'symlink-name',
    'reject',
    'a member named like a device /dev/zero',
    (async () => {
      const { renameMember } = await import('../helpers/zip.ts');
      return renameMember(await makeZip({ 'xdev/zero': 'a' }), 'xdev/zero', '/dev/zero');
    })(),
  );
  await zip('macos-junk', 'load', 'a CSV with __MACOSX resource forks', makeZip({ 'data.csv': BASE_CSV, '__MACOSX/._data.csv': Buffer.alloc(100, 1) }));
  await zip('backslash-name', 'any', 'a member named with backslashes', makeZip({ 'dir\\data.csv': BASE_CSV }));
  await zip('long-name', 'any', 'a member name of 1 000 characters', makeZip({ [`${'n'.repeat(996)}.csv`]: BASE_CSV }));
  for (const m of mutations(rand, await makeZip({ 'a.csv': BASE_CSV, 'b.csv': BASE_CSV }), 10)) await zip('mutated', 'any', `two-member zip ${m.how}`, m.body);

  // ------------------------------------------------------------------ empty files
  for (const ext of ['csv', 'tsv', 'txt', 'xlsx', 'xls', 'ods', 'json', 'ndjson', 'geojson', 'zip', 'gpkg', 'parquet', 'csv.gz']) {
    add('empty', `empty-${ext.replace('.', '-')}`, `empty.${ext}`, 'reject', `a zero-byte .${ext} (would empty the table)`, Buffer.alloc(0));
  }
  add('empty', 'no-extension', 'data', 'reject', 'a zero-byte file without extension', Buffer.alloc(0));

  return files;
}

/** Write the corpus to `dir` with a manifest (id, name, category, expect, note, size). */
export async function writeCorpus(dir: string, seed = 16): Promise<FuzzFile[]> {
  const files = await generateCorpus(seed);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const f of files) writeFileSync(join(dir, f.id), f.body);
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify(
      files.map(({ body, ...rest }) => ({ ...rest, size: body.length })),
      null,
      1,
    ),
  );
  return files;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const dir = process.argv[2] ?? join(tmpdir(), 'civic-etl-fuzz', 'corpus');
  const files = await writeCorpus(dir);
  const by = new Map<string, number>();
  for (const f of files) by.set(f.category, (by.get(f.category) ?? 0) + 1);
  console.log(`${files.length} files in ${dir}: ${[...by].map(([c, n]) => `${c} ${n}`).join(', ')}; largest ${Math.max(...files.map((f) => f.body.length))} bytes`);
}
