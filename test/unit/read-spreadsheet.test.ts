import { readFile, truncate, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { readOds } from '../../functions/read/ods.ts';
import { dateStyleOfFormat, listSheets, numberText, serialDateText } from '../../functions/read/sheet.ts';
import { readXls } from '../../functions/read/xls.ts';
import { readXlsx, xlsxLimits } from '../../functions/read/xlsx.ts';
import { XLS_ERROR, compoundFile, ods, useScratchDir, writeOds, writeRawXlsx, writeXls, writeXlsx, writeZip } from '../helpers/spreadsheets.ts';
import { collectRows, readError } from '../helpers/read-table.ts';

const dir = useScratchDir();

const collect = collectRows;

describe('readXlsx', () => {
  it('skips the title rows above the header and reads values as a person sees them', async () => {
    const path = dir.path('parks.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Parks');
      ws.getCell('A1').value = 'Parks of Springfield, 2024';
      ws.getRow(3).values = ['id', 'name', 'opened', 'area_ha', 'fenced', 'visitors', 'note', 'share'];
      ws.getRow(4).values = [1, 'Riverside', new Date(Date.UTC(1998, 4, 17)), 0.1 + 0.2, true, { formula: 'A4*1000', result: 1000 }, null, 1 / 3];
      ws.getRow(5).values = [
        2,
        { richText: [{ text: 'Old ', font: { bold: true } }, { text: 'Mill' }] },
        new Date(Date.UTC(2003, 10, 2)),
        12345678901,
        false,
        { formula: 'A5>1', result: true },
        'closed in winter',
        -2.5,
      ];
      ws.getCell('C4').numFmt = 'dd/mm/yyyy';
      ws.getCell('C5').numFmt = 'dd/mm/yyyy';
    });

    const table = await readXlsx(path, 'incoming/city/parks.xlsx');
    const rows = await collect(table);

    expect(table).toMatchObject({ name: 'incoming/city/parks.xlsx#Parks', format: 'xlsx', unit: 'row' });
    expect(table.columns).toEqual(['id', 'name', 'opened', 'area_ha', 'fenced', 'visitors', 'note', 'share']);
    expect(rows).toEqual([
      { position: 4, values: ['1', 'Riverside', '1998-05-17', '0.3', 'true', '1000', null, '0.333333333333333'] },
      { position: 5, values: ['2', 'Old Mill', '2003-11-02', '12345678901', 'false', 'true', 'closed in winter', '-2.5'] },
    ]);
    expect(table.warnings).toEqual(['incoming/city/parks.xlsx#Parks: rows 1–2 above the header (row 3) skipped as a title ("Parks of Springfield, 2024")']);
  });

  it('reads dates, date-times, times of day and elapsed times stored as numbers with a date format', async () => {
    const path = dir.path('times.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Shifts');
      ws.addRow(['day', 'start', 'clock', 'worked', 'plain']);
      ws.addRow([new Date(Date.UTC(2024, 1, 29)), new Date(Date.UTC(2024, 2, 1, 14, 30, 0)), 0.75, 1.5, 45352]);
      ws.getCell('A2').numFmt = 'd mmmm yyyy';
      ws.getCell('B2').numFmt = 'yyyy-mm-dd hh:mm';
      ws.getCell('C2').numFmt = 'hh:mm';
      ws.getCell('D2').numFmt = '[h]:mm';
    });

    const rows = await collect(await readXlsx(path, 'shifts.xlsx'));

    expect(rows).toEqual([{ position: 2, values: ['2024-02-29', '2024-03-01T14:30:00', '18:00:00', '36:00:00', '45352'] }]);
  });

  it('names the columns under a merged two-row header from the group and its sub-headings', async () => {
    const path = dir.path('districts.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Population');
      ws.getCell('A1').value = 'District';
      ws.getCell('B1').value = 'Population';
      ws.getCell('B2').value = 2020;
      ws.getCell('C2').value = 2021;
      ws.getCell('D1').value = 'Area (km²)';
      ws.mergeCells('A1:A2');
      ws.mergeCells('B1:C1');
      ws.mergeCells('D1:D2');
      ws.addRow(['North', 1200, 1250, 3.5]);
      ws.addRow(['South', 800, 790, 2.25]);
    });

    const table = await readXlsx(path, 'districts.xlsx');
    const rows = await collect(table);

    expect(table.columns).toEqual(['District', 'Population 2020', 'Population 2021', 'Area (km²)']);
    expect(rows).toEqual([
      { position: 3, values: ['North', '1200', '1250', '3.5'] },
      { position: 4, values: ['South', '800', '790', '2.25'] },
    ]);
    expect(table.warnings).toEqual([
      'districts.xlsx#Population: the header spans rows 1–2 (group headings above sub-headings); columns named "District", "Population 2020", "Population 2021", "Area (km²)"',
    ]);
  });

  it('reads a two-row header whose group heading was centred across the columns instead of merged', async () => {
    const path = dir.path('centred.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Sheet1');
      ws.addRow(['Name', 'Population', null, 'Area']);
      ws.addRow([null, '2020', '2021', null]);
      ws.addRow(['North', 1200, 1250, 3.5]);
    });

    const table = await readXlsx(path, 'centred.xlsx');

    expect(table.columns).toEqual(['Name', 'Population 2020', 'Population 2021', 'Area']);
    expect(await collect(table)).toEqual([{ position: 3, values: ['North', '1200', '1250', '3.5'] }]);
  });

  it('takes years and dates in the header row as headings', async () => {
    const path = dir.path('series.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Series');
      ws.addRow(['Country', 2019, 2020, new Date(Date.UTC(2021, 0, 1))]);
      ws.getCell('D1').numFmt = 'mmm yyyy';
      ws.addRow(['France', 67.1, 67.3, 67.4]);
    });

    const table = await readXlsx(path, 'series.xlsx');

    expect(table.columns).toEqual(['Country', '2019', '2020', '2021-01-01']);
    expect(await collect(table)).toEqual([{ position: 2, values: ['France', '67.1', '67.3', '67.4'] }]);
  });

  it('gives the columns of a merged heading distinct names, and a blank heading column_N, with warnings', async () => {
    const path = dir.path('contacts.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Contacts');
      ws.addRow(['Name', 'Contact', null, null, 'Zip']);
      ws.mergeCells('B1:C1');
      ws.addRow(['Ann', 'ann@example.org', '555 0100', 'VIP', '02139']);
    });

    const table = await readXlsx(path, 'contacts.xlsx');

    expect(table.columns).toEqual(['Name', 'Contact', 'Contact_2', 'column_4', 'Zip']);
    expect(await collect(table)).toEqual([{ position: 2, values: ['Ann', 'ann@example.org', '555 0100', 'VIP', '02139'] }]);
    expect(table.warnings).toEqual([
      'contacts.xlsx#Contacts: merged header cells B1:C1; columns named "Name", "Contact", "Contact_2", "column_4", "Zip"',
      'contacts.xlsx#Contacts: blank heading in column 4 (row 1); named "column_4"',
    ]);
  });

  it('reads error cells as empty and says where the first one is', async () => {
    const path = dir.path('errors.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Budget');
      ws.addRow(['item', 'cost', 'ratio']);
      ws.addRow(['paint', 120, { formula: 'B2/0', result: { error: '#DIV/0!' } }]);
      ws.addRow(['brushes', { error: '#N/A' }, 0.5]);
    });

    const table = await readXlsx(path, 'budget.xlsx');
    const rows = await collect(table);

    expect(rows).toEqual([
      { position: 2, values: ['paint', '120', null] },
      { position: 3, values: ['brushes', null, '0.5'] },
    ]);
    expect(table.warnings).toEqual(['budget.xlsx#Budget: 2 cells with an error value read as empty (first: #DIV/0! in C2)']);
  });

  it('adds a column, with a warning, for values right of the header far below it', async () => {
    const path = dir.path('wide.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Log');
      ws.addRow(['day', 'count']);
      for (let i = 1; i <= 100; i++) ws.addRow([`day ${i}`, i]);
      ws.addRow(['day 101', 101, 'recount']);
    });

    const table = await readXlsx(path, 'log.xlsx');
    const rows = await collect(table);

    expect(rows).toHaveLength(101);
    expect(rows[100]).toEqual({ position: 102, values: ['day 101', '101', 'recount'] });
    expect(table.columns).toEqual(['day', 'count', 'column_3']);
    expect(table.warnings).toEqual(['log.xlsx#Log: values right of the header; added column column_3 (first in row 102)']);
  });

  it('chooses a sheet by name or 0-based index, skips a hidden first sheet by default, and lists the sheets', async () => {
    const path = dir.path('trees.xlsx');
    await writeXlsx(path, (wb) => {
      wb.addWorksheet('Lookup', { state: 'hidden' }).addRow(['code', 'label']);
      wb.addWorksheet('Parks').addRow(['park', 'hectares']).commit();
      wb.getWorksheet('Parks')!.addRow(['Riverside', 12]);
      const trees = wb.addWorksheet('Trees');
      trees.addRow(['species', 'count']);
      trees.addRow(['Oak', 14]);
    });

    const byDefault = await readXlsx(path, 'trees.xlsx');
    const byName = await readXlsx(path, 'trees.xlsx', { sheet: 'Trees' });
    const byIndex = await readXlsx(path, 'trees.xlsx', { sheet: 2 });

    expect(byDefault.name).toBe('trees.xlsx#Parks');
    expect(await collect(byDefault)).toEqual([{ position: 2, values: ['Riverside', '12'] }]);
    expect(byName.name).toBe('trees.xlsx#Trees');
    expect(await collect(byName)).toEqual([{ position: 2, values: ['Oak', '14'] }]);
    expect(byIndex.name).toBe('trees.xlsx#Trees');
    expect(await listSheets(path, 'xlsx')).toEqual(['Lookup', 'Parks', 'Trees']);
  });

  it('reads the XML other producers write: inline and rich strings, cells without references, ISO dates, formulas with text, boolean and no results', async () => {
    const path = dir.path('raw.xlsx');
    await writeRawXlsx(path, {
      sharedStrings: ['name', 'note', '<r><t xml:space="preserve">Rich </t></r><r><rPr><b/></rPr><t>text</t></r>', '<t>漢字</t><rPh sb="0" eb="2"><t>カンジ</t></rPh>', 'line_x000D_\nbreak'],
      numberFormats: ['yyyy-mm-dd hh:mm'],
      sheets: [
        {
          name: 'Export',
          part: 'xl/worksheets/data.xml',
          rows:
            '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c t="inlineStr"><is><t>when</t></is></c><c t="inlineStr"><is><t>flag</t></is></c><c t="inlineStr"><is><t>label</t></is></c></row>' +
            '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="inlineStr"><is><r><t>in</t></r><r><t>line</t></r></is></c><c r="C2" s="1"><v>45352.5</v></c><c r="D2" t="b"><f>TRUE()</f><v>1</v></c><c r="E2" t="str"><f>"a"&amp;"b"</f><v>ab</v></c></row>' +
            '<row r="3"><c r="A3" t="s"><v>3</v></c><c r="B3" t="s"><v>4</v></c><c r="C3" t="d"><v>2024-03-01T08:00:00Z</v></c><c r="D3" t="e"><f>NA()</f><v>#N/A</v></c><c r="E3"><f>SUM(X1:X9)</f></c></row>',
        },
      ],
    });

    const table = await readXlsx(path, 'raw.xlsx');

    expect(table.name).toBe('raw.xlsx#Export');
    expect(table.columns).toEqual(['name', 'note', 'when', 'flag', 'label']);
    expect(await collect(table)).toEqual([
      { position: 2, values: ['Rich text', 'inline', '2024-03-01T12:00:00', 'true', 'ab'] },
      { position: 3, values: ['漢字', 'line\r\nbreak', '2024-03-01T08:00:00', null, null] },
    ]);
    expect(table.warnings).toEqual([
      'raw.xlsx#Export: 1 cell with an error value read as empty (first: #N/A in D3)',
      'raw.xlsx#Export: 1 formula cell without a saved result read as empty (first: E3); open and save the workbook in a spreadsheet program to compute them',
    ]);
  });

  it('reads a shared-string table too large to hold from a temporary file, with the same values', async () => {
    const path = dir.path('many-strings.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Names');
      ws.addRow(['id', 'name', 'city']);
      for (let i = 0; i < 10_000; i++) ws.addRow([i, `name ${i} – ${'é'.repeat(i % 5)}`, ['Lyon', 'Nantes', 'Lille'][i % 3]]);
    });
    const limit = xlsxLimits.sharedStringsInMemoryBytes;
    xlsxLimits.sharedStringsInMemoryBytes = 0;
    try {
      const table = await readXlsx(path, 'many-strings.xlsx');
      const rows = await collect(table);

      expect(table.columns).toEqual(['id', 'name', 'city']);
      expect(rows).toHaveLength(10_000);
      expect(rows[0]).toEqual({ position: 2, values: ['0', 'name 0 – ', 'Lyon'] });
      expect(rows[9_999]).toEqual({ position: 10_001, values: ['9999', 'name 9999 – éééé', 'Lyon'] });
      expect(rows.every((r, i) => r.values[1] === `name ${i} – ${'é'.repeat(i % 5)}`)).toBe(true);
      expect((await collect(table))[4_321]).toEqual(rows[4_321]);
    } finally {
      xlsxLimits.sharedStringsInMemoryBytes = limit;
    }
  });

  it('reads a table that starts in column C below a title, and says when a value sits left of it', async () => {
    const path = dir.path('offset.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Report');
      ws.getCell('A1').value = 'Quarterly report';
      ws.getRow(4).values = [null, null, 'region', 'sales'];
      for (let r = 5; r < 60; r++) ws.getRow(r).values = [null, null, `region ${r}`, r * 10];
      ws.getCell('A60').value = 'Total';
      ws.getCell('D60').value = 999;
    });

    const table = await readXlsx(path, 'offset.xlsx');
    const rows = await collect(table);

    expect(table.columns).toEqual(['region', 'sales']);
    expect(rows[0]).toEqual({ position: 5, values: ['region 5', '50'] });
    expect(rows.at(-1)).toEqual({ position: 60, values: [null, '999'] });
    expect(table.warnings).toEqual([
      'offset.xlsx#Report: rows 1–3 above the header (row 4) skipped as a title ("Quarterly report")',
      "offset.xlsx#Report: 1 value left of the table's first column ignored (first in A60)",
    ]);
  });

  it('reads dates of a workbook in the 1904 date system', async () => {
    const path = dir.path('mac.xlsx');
    await writeRawXlsx(path, {
      date1904: true,
      numberFormats: ['dd/mm/yy'],
      sheets: [{ name: 'S', rows: '<row r="1"><c r="A1" t="inlineStr"><is><t>day</t></is></c></row><row r="2"><c r="A2" s="1"><v>43890</v></c></row>' }],
    });

    expect(await collect(await readXlsx(path, 'mac.xlsx'))).toEqual([{ position: 2, values: ['2024-03-01'] }]);
  });

  describe('rejects bad input with a message naming the file, the sheet and the row', () => {
    it('a sheet whose compressed data is damaged inside the zip', async () => {
      const path = dir.path('damaged.xlsx');
      const rows = Array.from({ length: 20_000 }, (_, i) => `<row r="${i + 2}"><c r="A${i + 2}"><v>${(i * 7919) % 10_007}</v></c></row>`).join('');
      await writeRawXlsx(path, { sheets: [{ name: 'Data', rows: `<row r="1"><c r="A1" t="inlineStr"><is><t>n</t></is></c></row>${rows}` }] });
      const bytes = await readFile(path);
      const member = bytes.indexOf('xl/worksheets/sheet1.xml');
      for (let i = member + 30_000; i < member + 30_010; i++) bytes[i]! ^= 0xff;
      await writeFile(path, bytes);

      const error = await readError(readXlsx(path, 'damaged.xlsx').then(collect));

      expect(error.message).toMatch(/^damaged\.xlsx(#Data: malformed XML near row \d+|: xl\/worksheets\/sheet1\.xml is damaged in the zip) \(.+\)$/);
    });

    it('an empty sheet', async () => {
      const path = dir.path('empty.xlsx');
      await writeXlsx(path, (wb) => void wb.addWorksheet('Empty'));

      const error = await readError(readXlsx(path, 'in/empty.xlsx'));

      expect(error.message).toBe('in/empty.xlsx#Empty: the sheet is empty');
    });

    it('a sheet of numbers without a header row', async () => {
      const path = dir.path('numbers.xlsx');
      await writeXlsx(path, (wb) => {
        const ws = wb.addWorksheet('Readings');
        ws.addRow([1, 2.5, 3]);
        ws.addRow([4, 5.5, 6]);
        ws.addRow([7, 8.5, 9]);
      });

      const error = await readError(readXlsx(path, 'numbers.xlsx'));

      expect(error.message).toBe('numbers.xlsx#Readings: no header row found (looked at rows 1–3 for a row of column names; the sheet seems to hold only data)');
      expect(error.position).toEqual({ file: 'numbers.xlsx#Readings', line: 1 });
    });

    it('a sheet name or index the workbook does not have, listing the sheets there are', async () => {
      const path = dir.path('two.xlsx');
      await writeXlsx(path, (wb) => {
        wb.addWorksheet('Parks').addRow(['park']);
        wb.addWorksheet('Trees').addRow(['tree']);
      });

      expect((await readError(readXlsx(path, 'two.xlsx', { sheet: 'Lakes' }))).message).toBe('two.xlsx: there is no sheet "Lakes"; the sheets are "Parks", "Trees"');
      expect((await readError(readXlsx(path, 'two.xlsx', { sheet: 2 }))).message).toBe('two.xlsx: there is no sheet 2 (0-based); the workbook has 2: "Parks", "Trees"');
    });

    it('a truncated workbook, and a file that is not a zip at all', async () => {
      const path = dir.path('cut.xlsx');
      await writeXlsx(path, (wb) => wb.addWorksheet('S').addRow(['a']));
      const size = (await readFile(path)).length;
      await truncate(path, Math.floor(size / 2));
      const text = dir.path('text.xlsx');
      await writeFile(text, 'id,name\n1,Ann\n');

      expect((await readError(readXlsx(path, 'cut.xlsx'))).message).toMatch(/^cut\.xlsx: not a readable \.xlsx workbook \(the zip is damaged or truncated: .+\)$/);
      expect((await readError(readXlsx(text, 'text.xlsx'))).message).toMatch(/^text\.xlsx: not a readable \.xlsx workbook \(the zip is damaged or truncated: .+\)$/);
    });

    it('a sheet whose XML breaks off below the first rows, naming the row', async () => {
      const path = dir.path('broken.xlsx');
      const rows = Array.from({ length: 5_000 }, (_, i) => `<row r="${i + 2}"><c r="A${i + 2}"><v>${i}</v></c></row>`).join('');
      await writeRawXlsx(path, { sheets: [{ name: 'Data', rows: `<row r="1"><c r="A1" t="inlineStr"><is><t>n</t></is></c></row>${rows}<row r="5002"><c r="A5002"><v>1</v></row>` }] });

      const table = await readXlsx(path, 'broken.xlsx');
      const error = await readError(collect(table));

      expect(error.message).toMatch(/^broken\.xlsx#Data: malformed XML near row 5002 \(.+\)$/);
    });
  });
});

describe('readOds', () => {
  it('skips the title, reads every value type, and keeps the text of multi-paragraph cells', async () => {
    const path = dir.path('stops.ods');
    await writeOds(path, [
      {
        name: 'Stops',
        rows: [
          ods.row([ods.text('Bus stops of the county')]),
          ods.row([ods.empty(8)]),
          ods.row(['stop', 'opened', 'last service', 'share', 'fare', 'sheltered', 'remarks', 'rating'].map((h) => ods.text(h))),
          ods.row([
            ods.text('Main St'),
            ods.date('2019-06-01'),
            ods.date('2024-03-01T22:15:00.000'),
            ods.percentage(0.25),
            ods.currency(2.5),
            ods.bool(true),
            ods.rich(['Two<text:s text:c="2"/>spaces', 'second<text:line-break/>line']),
            ods.float(0.30000000000000004, '0.3'),
          ]),
          ods.row([
            ods.text('Depot'),
            ods.date('2001-01-31'),
            ods.time('PT13H45M00S'),
            ods.empty(),
            ods.currency(0),
            ods.bool(false),
            '<table:table-cell office:value-type="string"><office:annotation><dc:creator>Bob</dc:creator><text:p>check this</text:p></office:annotation><text:p>42 Elm St</text:p></table:table-cell>',
            ods.float(4),
          ]),
        ],
      },
    ]);

    const table = await readOds(path, 'incoming/county/stops.ods');

    expect(table).toMatchObject({ name: 'incoming/county/stops.ods#Stops', format: 'ods', unit: 'row' });
    expect(table.columns).toEqual(['stop', 'opened', 'last service', 'share', 'fare', 'sheltered', 'remarks', 'rating']);
    expect(await collect(table)).toEqual([
      { position: 4, values: ['Main St', '2019-06-01', '2024-03-01T22:15:00', '0.25', '2.5', 'true', 'Two  spaces\nsecond\nline', '0.3'] },
      { position: 5, values: ['Depot', '2001-01-31', '13:45:00', null, '0', 'false', '42 Elm St', '4'] },
    ]);
    expect(table.warnings).toEqual(['incoming/county/stops.ods#Stops: rows 1–2 above the header (row 3) skipped as a title ("Bus stops of the county")']);
  });

  it('expands repeated rows and cells, and a million repeated blank rows cost nothing but their row numbers', async () => {
    const path = dir.path('repeats.ods');
    await writeOds(path, [
      {
        name: 'Counts',
        rows: [
          ods.row([ods.text('id'), ods.text('low'), ods.text('high'), ods.empty(16381)]),
          ods.row([ods.float(1), ods.float(5, '5', 2), ods.empty(16381)], 3),
          ods.blankRows(1_048_000),
          ods.row([ods.float(9), ods.text('x'), ods.text('y')]),
          ods.blankRows(1_048_576 - 1_048_005),
        ],
      },
    ]);

    const started = Date.now();
    const rows = await collect(await readOds(path, 'repeats.ods'));

    expect(rows).toEqual([
      { position: 2, values: ['1', '5', '5'] },
      { position: 3, values: ['1', '5', '5'] },
      { position: 4, values: ['1', '5', '5'] },
      { position: 1_048_005, values: ['9', 'x', 'y'] },
    ]);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('names the columns under merged header cells, and leaves out what a merge hides', async () => {
    const path = dir.path('merged.ods');
    await writeOds(path, [
      {
        name: 'Districts',
        rows: [
          ods.row([ods.span('District', 1, 2), ods.span('Population', 2), ods.covered(), ods.span('Area', 1, 2)]),
          ods.row([ods.covered(), ods.float(2020), ods.float(2021), ods.covered()]),
          ods.row([ods.text('North'), ods.float(1200), ods.float(1250), ods.float(3.5)]),
          ods.row([ods.text('South'), ods.span('n/a', 2), ods.covered(1, 'kept by the merge'), ods.float(2.25)]),
        ],
      },
    ]);

    const table = await readOds(path, 'merged.ods');

    expect(table.columns).toEqual(['District', 'Population 2020', 'Population 2021', 'Area']);
    expect(await collect(table)).toEqual([
      { position: 3, values: ['North', '1200', '1250', '3.5'] },
      { position: 4, values: ['South', 'n/a', null, '2.25'] },
    ]);
    expect(table.warnings).toEqual(['merged.ods#Districts: the header spans rows 1–2 (group headings above sub-headings); columns named "District", "Population 2020", "Population 2021", "Area"']);
  });

  it('reads error cells as empty with a warning', async () => {
    const path = dir.path('err.ods');
    await writeOds(path, [{ name: 'S', rows: [ods.row([ods.text('a'), ods.text('b')]), ods.row([ods.float(1), ods.error('#DIV/0!')])] }]);

    const table = await readOds(path, 'err.ods');

    expect(await collect(table)).toEqual([{ position: 2, values: ['1', null] }]);
    expect(table.warnings).toEqual(['err.ods#S: 1 cell with an error value read as empty (first: #DIV/0! in B2)']);
  });

  it('chooses a sheet by name or index and lists the sheets', async () => {
    const path = dir.path('book.ods');
    await writeOds(path, [
      { name: 'Parks', rows: [ods.row([ods.text('park'), ods.text('hectares')]), ods.row([ods.text('Riverside'), ods.float(12)])] },
      { name: 'Trees', rows: [ods.row([ods.text('species'), ods.text('count')]), ods.row([ods.text('Oak'), ods.float(14)])] },
    ]);

    const byName = await readOds(path, 'book.ods', { sheet: 'Trees' });
    const byIndex = await readOds(path, 'book.ods', { sheet: 1 });

    expect(byName.name).toBe('book.ods#Trees');
    expect(await collect(byName)).toEqual([{ position: 2, values: ['Oak', '14'] }]);
    expect(await collect(byIndex)).toEqual([{ position: 2, values: ['Oak', '14'] }]);
    expect(await collect(await readOds(path, 'book.ods'))).toEqual([{ position: 2, values: ['Riverside', '12'] }]);
    expect(await listSheets(path, 'ods')).toEqual(['Parks', 'Trees']);
  });

  describe('rejects bad input with a message naming the file and the sheet', () => {
    it('a missing sheet, listing the sheets there are', async () => {
      const path = dir.path('one.ods');
      await writeOds(path, [{ name: 'Parks', rows: [ods.row([ods.text('park')])] }]);

      expect((await readError(readOds(path, 'one.ods', { sheet: 'Trees' }))).message).toBe('one.ods: there is no sheet "Trees"; the sheets are "Parks"');
    });

    it('an empty sheet, and a sheet of numbers only', async () => {
      const path = dir.path('bare.ods');
      await writeOds(path, [
        { name: 'Blank', rows: [ods.blankRows(1_048_576)] },
        { name: 'Numbers', rows: [ods.row([ods.float(1), ods.float(2)]), ods.row([ods.float(3), ods.float(4)])] },
      ]);

      expect((await readError(readOds(path, 'bare.ods'))).message).toBe('bare.ods#Blank: the sheet is empty');
      expect((await readError(readOds(path, 'bare.ods', { sheet: 'Numbers' }))).message).toBe(
        'bare.ods#Numbers: no header row found (looked at rows 1–2 for a row of column names; the sheet seems to hold only data)',
      );
    });

    it('a truncated file, and a zip that is another OpenDocument type', async () => {
      const cut = dir.path('cut.ods');
      await writeOds(cut, [{ name: 'S', rows: [ods.row([ods.text('a')])] }]);
      await truncate(cut, 200);
      const textDoc = dir.path('letter.ods');
      await writeZip(textDoc, { mimetype: 'application/vnd.oasis.opendocument.text', 'content.xml': '<x/>' });

      expect((await readError(readOds(cut, 'cut.ods'))).message).toMatch(/^cut\.ods: not a readable \.ods workbook \(the zip is damaged or truncated: .+\)$/);
      expect((await readError(readOds(textDoc, 'letter.ods'))).message).toBe('letter.ods: not an OpenDocument spreadsheet (its mimetype is application/vnd.oasis.opendocument.text)');
    });
  });
});

describe('readXls', () => {
  it('reads an Excel 97–2003 sheet below its title, with every kind of cell record', async () => {
    const path = dir.path('trees.xls');
    const header = ['id', 'species', 'planted', 'girth_m', 'protected', 'height', 'note', 'last_check', 'count_2020', 'count_2021'];
    await writeXls(path, {
      formats: ['yyyy-mm-dd hh:mm'],
      sstRecordBytes: 20,
      sheets: [
        {
          name: 'Trees',
          embeddedChart: true,
          cells: [
            { r: 0, c: 0, v: 'Trees of Springfield' },
            ...header.map((h, c) => ({ r: 2, c, v: h })),
            { r: 3, c: 0, v: { rk: 1 } },
            { r: 3, c: 1, v: 'Chêne – 橡树' },
            { r: 3, c: 2, v: 45352, xf: 1 },
            { r: 3, c: 3, v: { rk: 12.34, x100: true } },
            { r: 3, c: 4, v: true },
            { r: 3, c: 5, v: { formula: 0.1 + 0.2 } },
            { r: 3, c: 6, v: { formula: 'needs care' } },
            { r: 3, c: 7, v: 45352.5, xf: 2 },
            { r: 3, c: 8, v: { mulrk: [3, 4] } },
            { r: 4, c: 0, v: { rk: 2 } },
            { r: 4, c: 1, v: { label: 'Zoë – 東京 cherry' } },
            { r: 4, c: 2, v: { error: XLS_ERROR.na } },
            { r: 4, c: 3, v: { formula: { error: XLS_ERROR.div0 } } },
            { r: 4, c: 4, v: { formula: false } },
            { r: 4, c: 5, v: -3.5 },
            { r: 4, c: 8, v: { mulrk: [10, 12] } },
          ],
        },
      ],
    });

    const table = await readXls(path, 'incoming/parks/trees.xls');

    expect(table).toMatchObject({ name: 'incoming/parks/trees.xls#Trees', format: 'xls', unit: 'row' });
    expect(table.columns).toEqual(header);
    expect(await collect(table)).toEqual([
      { position: 4, values: ['1', 'Chêne – 橡树', '2024-03-01', '12.34', 'true', '0.3', 'needs care', '2024-03-01T12:00:00', '3', '4'] },
      { position: 5, values: ['2', 'Zoë – 東京 cherry', null, null, 'false', '-3.5', null, null, '10', '12'] },
    ]);
    expect(table.warnings).toEqual([
      'incoming/parks/trees.xls#Trees: rows 1–2 above the header (row 3) skipped as a title ("Trees of Springfield")',
      'incoming/parks/trees.xls#Trees: 2 cells with an error value read as empty (first: #N/A in C5)',
    ]);
  });

  it('names columns under merged header cells, skips a hidden first sheet, chooses sheets, and is what readXlsx reads for an .xls named .xlsx', async () => {
    const path = dir.path('districts.xls');
    await writeXls(path, {
      sheets: [
        { name: 'Lookup', hidden: true, cells: [{ r: 0, c: 0, v: 'code' }] },
        {
          name: 'Districts',
          merges: [
            [0, 1, 0, 0],
            [0, 0, 1, 2],
            [0, 1, 3, 3],
          ],
          cells: [
            { r: 0, c: 0, v: 'District' },
            { r: 0, c: 1, v: 'Population' },
            { r: 1, c: 1, v: { rk: 2020 } },
            { r: 1, c: 2, v: { rk: 2021 } },
            { r: 0, c: 3, v: 'Area' },
            { r: 2, c: 0, v: 'North' },
            { r: 2, c: 1, v: { mulrk: [1200, 1250] } },
            { r: 2, c: 3, v: 3.5 },
          ],
        },
        { name: 'Empty', cells: [] },
      ],
    });
    const renamed = dir.path('districts-xls.xlsx');
    await writeFile(renamed, await readFile(path));

    const table = await readXls(path, 'districts.xls');
    const viaXlsx = await readXlsx(renamed, 'districts.xlsx', { sheet: 'Districts' });

    expect(table.name).toBe('districts.xls#Districts');
    expect(table.columns).toEqual(['District', 'Population 2020', 'Population 2021', 'Area']);
    expect(await collect(table)).toEqual([{ position: 3, values: ['North', '1200', '1250', '3.5'] }]);
    expect(viaXlsx).toMatchObject({ name: 'districts.xlsx#Districts', format: 'xls', columns: table.columns });
    expect(await listSheets(path, 'xls')).toEqual(['Lookup', 'Districts', 'Empty']);
    expect((await readError(readXls(path, 'districts.xls', { sheet: 2 }))).message).toBe('districts.xls#Empty: the sheet is empty');
    expect((await readError(readXls(path, 'districts.xls', { sheet: 'Parks' }))).message).toBe('districts.xls: there is no sheet "Parks"; the sheets are "Lookup", "Districts", "Empty"');
  });

  it('reads a small workbook kept in the mini stream, in the 1904 date system', async () => {
    const path = dir.path('small.xls');
    await writeXls(path, {
      small: true,
      date1904: true,
      sheets: [
        {
          name: 'S',
          cells: [
            { r: 0, c: 0, v: 'day' },
            { r: 1, c: 0, v: { rk: 43890 }, xf: 1 },
          ],
        },
      ],
    });

    expect((await readFile(path)).length).toBeLessThan(4096);
    expect(await collect(await readXls(path, 'small.xls'))).toEqual([{ position: 2, values: ['2024-03-01'] }]);
  });

  describe('rejects what it cannot read with a message naming the file', () => {
    it('a truncated workbook', async () => {
      const path = dir.path('cut.xls');
      await writeXls(path, { sheets: [{ name: 'S', cells: Array.from({ length: 400 }, (_, r) => ({ r, c: 0, v: r === 0 ? 'n' : r })) }] });
      await truncate(path, 1_500);

      expect((await readError(readXls(path, 'cut.xls'))).message).toMatch(/^cut\.xls: not a readable \.xls workbook \(.+: the file is truncated\)$/);
    });

    it('a password-protected workbook, an Excel 5.0 one, a compound file of another kind, and a file that is no compound file', async () => {
      const locked = dir.path('locked.xls');
      await writeXls(locked, { password: true, sheets: [{ name: 'S', cells: [{ r: 0, c: 0, v: 'a' }] }] });
      const old = dir.path('old.xls');
      await writeXls(old, { biffVersion: 0x0500, sheets: [{ name: 'S', cells: [{ r: 0, c: 0, v: 'a' }] }] });
      const memo = dir.path('memo.xls');
      await writeFile(memo, compoundFile('WordDocument', Buffer.alloc(5_000)));
      const text = dir.path('text.xls');
      await writeFile(text, 'id\tname\n1\tAnn\n');

      expect((await readError(readXls(locked, 'locked.xls'))).message).toBe('locked.xls: a password-protected workbook; remove the password and save it as .xlsx, .ods or .csv');
      expect((await readError(readXls(old, 'old.xls'))).message).toBe('old.xls: an Excel 5.0/95 or older workbook (BIFF version 0x500), which is not read; save the sheet as .xlsx, .ods or .csv');
      expect((await readError(readXls(memo, 'memo.xls'))).message).toBe('memo.xls: not an Excel workbook (the compound file has no Workbook stream)');
      expect((await readError(readXls(text, 'text.xls'))).message).toBe('text.xls: not a readable .xls workbook (not an OLE2 compound file)');
    });

    it('a password-protected .xlsx (an encrypted package in a compound file)', async () => {
      const path = dir.path('secret.xlsx');
      await writeFile(path, compoundFile('EncryptedPackage', Buffer.alloc(5_000)));

      expect((await readError(readXlsx(path, 'secret.xlsx'))).message).toBe('secret.xlsx: a password-protected .xlsx workbook; remove the password and save it as .xlsx, .ods or .csv');
    });
  });
});

describe('cell values as text', () => {
  it('trims binary noise from numbers but keeps their digits', () => {
    expect([0.1 + 0.2, 1 / 3, 1e21, 5, -0, 1234.5678, 2.675 * 100].map(numberText)).toEqual(['0.3', '0.333333333333333', '1e+21', '5', '0', '1234.5678', '267.5']);
  });

  it('tells date, date-time, time and elapsed-time formats from number formats', () => {
    expect(['yyyy-mm-dd', 'dd/mm/yyyy hh:mm', 'h:mm:ss AM/PM', 'mm:ss', '[h]:mm:ss', '0.00E+00', '#,##0.00 "days"', '[Red]0.0%', 'General'].map(dateStyleOfFormat)).toEqual([
      'date',
      'datetime',
      'time',
      'time',
      'duration',
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('counts serial dates the way Excel does on both sides of its phantom 29 February 1900', () => {
    expect([1, 59, 61, 45352].map((s) => serialDateText(s, 'date', false))).toEqual(['1900-01-01', '1900-02-28', '1900-03-01', '2024-03-01']);
    expect(serialDateText(0, 'date', true)).toBe('1904-01-01');
    expect(serialDateText(45352.99999999, 'date', false)).toBe('2024-03-02');
  });
});
