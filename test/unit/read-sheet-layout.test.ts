/**
 * Where the table is in a workbook: which sheet holds it when none is named, where it ends (the
 * notes and sources under it are not rows), and how a two-row header names its columns. The
 * workbooks are written by exceljs (and by hand for .ods and .xls), the way statistics offices lay
 * out their publications: a notice sheet first, a title above the table, a group heading over
 * sub-headings, footnotes below.
 */
import { describe, expect, it } from 'vitest';
import type ExcelJS from 'exceljs';
import { readOds } from '../../functions/read/ods.ts';
import { openSource } from '../../functions/read/open.ts';
import { readXls } from '../../functions/read/xls.ts';
import { readXlsx } from '../../functions/read/xlsx.ts';
import { ods, useScratchDir, writeOds, writeXls, writeXlsx } from '../helpers/spreadsheets.ts';
import { collectRows } from '../helpers/read-table.ts';

const dir = useScratchDir();

const collect = collectRows;

/** A notice sheet as publishers write them: a title, paragraphs in column A, a few "key: value" lines. */
function addNotice(wb: ExcelJS.Workbook, name: string) {
  const ws = wb.addWorksheet(name);
  ws.addRow(['Population estimates by district, 2019–2020']);
  ws.addRow([]);
  ws.addRow(['These figures are provisional estimates based on the population register and may be revised.']);
  ws.addRow(['Coverage:', 'All districts']);
  ws.addRow(['Unit:', 'persons']);
  ws.addRow(['Released:', '2021-03-01']);
  ws.addRow(['Contact:', 'statistics@example.org']);
  ws.addRow([]);
  ws.addRow(['Licence: Open Government Licence v3.0. You may re-use this information free of charge in any format.']);
}

function addDistricts(wb: ExcelJS.Workbook, name: string) {
  const ws = wb.addWorksheet(name);
  ws.addRow(['Table 1: Population by district']);
  ws.addRow([]);
  ws.addRow(['District', 'Population', 'Area (km²)']);
  ws.addRow(['North', 1200, 3.5]);
  ws.addRow(['South', 800, 2.25]);
  ws.addRow(['East', 640, 1.75]);
  ws.addRow(['West', 990, 4]);
}

describe('with no sheet named', () => {
  it('reads the sheet that holds the table, passing over a notice and a contents sheet, and says which and why', async () => {
    const path = dir.path('notice-first.xlsx');
    await writeXlsx(path, (wb) => {
      addNotice(wb, 'About these data');
      const contents = wb.addWorksheet('Sheet2');
      contents.addRow(['Contents']);
      contents.addRow(['Table 1', 'Population by district']);
      contents.addRow(['Table 2', 'Households by district']);
      addDistricts(wb, 'Table 1');
    });

    const table = await readXlsx(path, 'notice-first.xlsx');

    expect(table.name).toBe('notice-first.xlsx#Table 1');
    expect(table.columns).toEqual(['District', 'Population', 'Area (km²)']);
    expect((await collect(table)).map((r) => r.values[0])).toEqual(['North', 'South', 'East', 'West']);
    const note = table.warnings[0]!;
    expect(note).toMatch(/^notice-first\.xlsx: no sheet named: read sheet "Table 1" of 3: the first sheet that holds a table \(header in row 3, 3 columns, 4 rows/);
    expect(note).toContain('passed over "About these data" (');
    expect(note).toContain('"Sheet2" (');
  });

  it('keeps to the first sheet when it holds a table, and a named sheet is read even when it is a notice', async () => {
    const path = dir.path('table-first.xlsx');
    await writeXlsx(path, (wb) => {
      addDistricts(wb, 'Districts');
      addNotice(wb, 'Notes');
    });

    const byDefault = await readXlsx(path, 'table-first.xlsx');
    const named = await readXlsx(path, 'table-first.xlsx', { sheet: 'Notes' });

    expect(byDefault.name).toBe('table-first.xlsx#Districts');
    expect(byDefault.warnings[0]).toMatch(/^table-first\.xlsx: no sheet named: read sheet "Districts" of 2: the first sheet holds a table/);
    expect(named.name).toBe('table-first.xlsx#Notes');
    expect(named.warnings.some((w) => w.includes('no sheet named'))).toBe(false);
  });

  it('passes over a sheet named for notes even when it is laid out as a table, when another sheet holds one', async () => {
    const path = dir.path('notes-table.xlsx');
    await writeXlsx(path, (wb) => {
      const notes = wb.addWorksheet('Notes');
      notes.addRow(['Note number', 'Note text', 'Applies to']);
      notes.addRow(['1', 'Figures are rounded to the nearest ten.', 'All tables']);
      notes.addRow(['2', 'Districts as of 1 January.', 'Table 1']);
      notes.addRow(['3', 'Area from the land register.', 'Table 1']);
      addDistricts(wb, 'Data');
    });

    const table = await readXlsx(path, 'notes-table.xlsx');

    expect(table.name).toBe('notes-table.xlsx#Data');
    expect(table.warnings[0]).toContain('passed over "Notes" (a table, but its name says notes or contents');
  });

  it('reads a table whose sheet name sounds like notes when no other sheet holds one, rather than the notice before it', async () => {
    const path = dir.path('price-index.xlsx');
    await writeXlsx(path, (wb) => {
      addNotice(wb, 'Notes');
      const index = wb.addWorksheet('Index');
      index.addRow(['Month', 'CPI', 'Change']);
      index.addRow(['2024-01', 118.2, 0.3]);
      index.addRow(['2024-02', 118.9, 0.6]);
      index.addRow(['2024-03', 119.1, 0.2]);
    });

    const table = await readXlsx(path, 'price-index.xlsx');

    expect(table.name).toBe('price-index.xlsx#Index');
    expect(table.warnings[0]).toMatch(
      /^price-index\.xlsx: no sheet named: read sheet "Index" of 2: no sheet holds a clear table; read the first that comes closest \(a table, but its name says notes or contents/,
    );
  });

  it('chooses the same way in .ods and .xls workbooks, and through openSource as load and profile read them', async () => {
    const odsPath = dir.path('notice-first.ods');
    await writeOds(odsPath, [
      {
        name: 'Lisez-moi',
        rows: [
          ods.row([ods.text('Estimations de population, 2019–2020')]),
          ods.row([ods.text('Ces chiffres sont provisoires et peuvent être révisés.')]),
          ods.row([ods.text('Source :'), ods.text('registre de population')]),
        ],
      },
      {
        name: 'Données',
        rows: [
          ods.row([ods.text('Commune'), ods.text('Population')]),
          ods.row([ods.text('Lille'), ods.float(236234)]),
          ods.row([ods.text('Roubaix'), ods.float(98828)]),
          ods.row([ods.text('Tourcoing'), ods.float(98656)]),
        ],
      },
    ]);
    const xlsPath = dir.path('notice-first.xls');
    await writeXls(xlsPath, {
      sheets: [
        {
          name: 'Toelichting',
          cells: [
            { r: 0, c: 0, v: 'Bevolking per gemeente' },
            { r: 2, c: 0, v: 'Voorlopige cijfers.' },
          ],
        },
        {
          name: 'Tabel',
          cells: [
            { r: 0, c: 0, v: 'Gemeente' },
            { r: 0, c: 1, v: 'Inwoners' },
            { r: 1, c: 0, v: 'Utrecht' },
            { r: 1, c: 1, v: 361_699 },
            { r: 2, c: 0, v: 'Zwolle' },
            { r: 2, c: 1, v: 130_668 },
            { r: 3, c: 0, v: 'Delft' },
            { r: 3, c: 1, v: 104_468 },
          ],
        },
      ],
    });

    const fromOds = await readOds(odsPath, 'notice-first.ods');
    const fromXls = await readXls(xlsPath, 'notice-first.xls');
    const opened = await openSource({ name: 'notice-first.ods', path: odsPath, open: async () => (await import('node:fs')).createReadStream(odsPath) });
    try {
      expect(opened.entries.map((e) => e.name)).toEqual(['notice-first.ods#Données']);
    } finally {
      await opened.dispose();
    }

    expect(fromOds.name).toBe('notice-first.ods#Données');
    expect(await collect(fromOds)).toEqual([
      { position: 2, values: ['Lille', '236234'] },
      { position: 3, values: ['Roubaix', '98828'] },
      { position: 4, values: ['Tourcoing', '98656'] },
    ]);
    expect(fromOds.warnings[0]).toContain('passed over "Lisez-moi"');
    expect(fromXls.name).toBe('notice-first.xls#Tabel');
    expect((await collect(fromXls)).map((r) => r.values)).toEqual([
      ['Utrecht', '361699'],
      ['Zwolle', '130668'],
      ['Delft', '104468'],
    ]);
  });
});

describe('notes under a table', () => {
  it('are not rows: sources, numbered and bracketed footnotes after a blank row, with a warning that quotes them', async () => {
    const path = dir.path('footnotes.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('T1');
      ws.addRow(['Region', 'Births', 'Deaths']);
      ws.addRow(['Bretagne', 29_830, 35_102]);
      ws.addRow(['Normandie', 27_013, 36_200]);
      ws.addRow(['Occitanie', 52_188, 58_011]);
      ws.addRow([]);
      ws.addRow(['Source: Insee, état civil.']);
      ws.addRow(['(1) Provisional figures for 2022.']);
      ws.addRow(['Note: the overseas regions are not included.']);
      ws.addRow(['© Example statistics office']);
    });

    const table = await readXlsx(path, 'footnotes.xlsx');
    const rows = await collect(table);

    expect(rows.map((r) => r.values[0])).toEqual(['Bretagne', 'Normandie', 'Occitanie']);
    expect(table.warnings).toContain(
      'footnotes.xlsx#T1: rows 6–9 below the table read as notes, not rows (4 lines of text after the data: "Source: Insee, état civil.", "(1) Provisional figures for 2022.", "Note: the overseas regions are not included.", …)',
    );
  });

  it('are recognised right under the data when they start like a note, and in two cells ("Source:" | "…")', async () => {
    const path = dir.path('source-under.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('T');
      ws.addRow(['Gemeente', 'Inwoners']);
      ws.addRow(['Utrecht', 361_699]);
      ws.addRow(['Zwolle', 130_668]);
      ws.addRow(['Bron:', 'CBS']);
    });

    const table = await readXlsx(path, 'source-under.xlsx');

    expect((await collect(table)).map((r) => r.values)).toEqual([
      ['Utrecht', '361699'],
      ['Zwolle', '130668'],
    ]);
    expect(table.warnings.some((w) => w.includes('row 4 below the table read as notes'))).toBe(true);
  });

  it('are recognised as a footnote mark in one cell and its text in the next, continued one column in', async () => {
    const path = dir.path('marks.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('T');
      ws.addRow(['Series', 'Q1', 'Q2']);
      ws.addRow(['Trade in goods', -33887, -34474]);
      ws.addRow(['Trade in services', 26972, 28223]);
      ws.addRow([]);
      ws.addRow([1, 'Users should reverse the sign of series whose']);
      ws.addRow([null, 'identifier starts with a minus sign.']);
      ws.addRow(['(2)', 'Not seasonally adjusted.']);
    });

    const table = await readXlsx(path, 'marks.xlsx');

    expect((await collect(table)).map((r) => r.values[0])).toEqual(['Trade in goods', 'Trade in services']);
    expect(table.warnings).toContain(
      'marks.xlsx#T: rows 5–7 below the table read as notes, not rows (3 lines of text after the data: "1 Users should reverse the sign of series whose", "identifier starts with a minus sign.", "(2) Not seasonally adjusted.")',
    );
  });

  it('leave the rows alone when text in the first column only is followed by more data: a section heading, a name without values', async () => {
    const path = dir.path('sections.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('T');
      ws.addRow(['Area', 'Schools', 'Pupils']);
      ws.addRow(['North']);
      ws.addRow(['Oakfield', 3, 1200]);
      ws.addRow([]);
      ws.addRow(['South']);
      ws.addRow(['Ashby', 2, 640]);
      ws.addRow(['Elmstead']);
    });

    const table = await readXlsx(path, 'sections.xlsx');
    const rows = await collect(table);

    // The last row, text alone at the end but not after a blank row nor worded like a note, stays a row too.
    expect(rows.map((r) => [r.position, r.values[0]])).toEqual([
      [2, 'North'],
      [3, 'Oakfield'],
      [5, 'South'],
      [6, 'Ashby'],
      [7, 'Elmstead'],
    ]);
    expect(table.warnings.some((w) => w.includes('notes'))).toBe(false);
  });
});

describe('a two-row header with gaps', () => {
  it('names each column from the group above and the sub-heading below, the first column named on the lower row', async () => {
    const path = dir.path('two-rows.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Pop');
      ws.addRow(['Population by sex']);
      ws.addRow([null, '2019', null, '2020', null]);
      ws.addRow(['Region', 'Men', 'Women', 'Men', 'Women']);
      ws.addRow(['North', 610, 590, 615, 600]);
      ws.addRow(['South', 402, 398, 405, 401]);
    });

    const table = await readXlsx(path, 'two-rows.xlsx');

    expect(table.columns).toEqual(['Region', '2019 Men', '2019 Women', '2020 Men', '2020 Women']);
    expect(await collect(table)).toEqual([
      { position: 4, values: ['North', '610', '590', '615', '600'] },
      { position: 5, values: ['South', '402', '398', '405', '401'] },
    ]);
  });

  it('does the same with the group titles merged across their columns', async () => {
    const path = dir.path('two-rows-merged.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Pop');
      ws.getCell('B1').value = 'Employed';
      ws.getCell('D1').value = 'Unemployed';
      ws.mergeCells('B1:C1');
      ws.mergeCells('D1:E1');
      ws.getRow(2).values = ['Province', 'Men', 'Women', 'Men', 'Women'];
      ws.addRow(['Groningen', 150, 140, 8, 7]);
      ws.addRow(['Drenthe', 130, 120, 6, 5]);
    });

    const table = await readXlsx(path, 'two-rows-merged.xlsx');

    expect(table.columns).toEqual(['Province', 'Employed Men', 'Employed Women', 'Unemployed Men', 'Unemployed Women']);
    expect((await collect(table)).map((r) => r.position)).toEqual([3, 4]);
  });

  it('reads a third header row naming the columns under merged groups and sub-groups (IPC exports: `#`, `%`), not as a row', async () => {
    const path = dir.path('three-rows.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('IPC');
      ws.getCell('C1').value = 'Current';
      ws.mergeCells('C1:D1');
      ws.getCell('E1').value = 'Projection';
      ws.mergeCells('E1:F1');
      ws.getCell('C2').value = 'Phase 3+';
      ws.mergeCells('C2:D2');
      ws.getCell('E2').value = 'Phase 3+';
      ws.mergeCells('E2:F2');
      ws.getRow(3).values = ['Area', 'Area ID', '#', '%', '#', '%'];
      // the area codes are text cells of digits, as the IPC writes them
      ws.addRow(['Badakhshan', '24380613', 135704, 0.1, 474963, 0.35]);
      ws.addRow(['Badghis', '24380609', 88010, 0.15, 176020, 0.3]);
      ws.addRow(['Total', 'n/a', 223714, 0.12, 650983, 0.33]);
    });

    const table = await readXlsx(path, 'three-rows.xlsx');

    expect(table.columns).toEqual(['Area', 'Area ID', 'Current Phase 3+ #', 'Current Phase 3+ %', 'Projection Phase 3+ #', 'Projection Phase 3+ %']);
    expect((await collect(table)).map((r) => r.position)).toEqual([4, 5, 6]);
    // a column of text cells, digits among them, is declared text by the file; the others are left to the inference
    expect(table.declaredTypes!()).toEqual([undefined, 'text', undefined, undefined, undefined, undefined]);
  });

  it('keeps a row of text over figures a data row when it holds missing-value markers', async () => {
    const path = dir.path('marker-row.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('S');
      ws.getCell('B1').value = 'Births';
      ws.mergeCells('B1:C1');
      ws.getCell('D1').value = 'Deaths';
      ws.mergeCells('D1:E1');
      ws.getRow(2).values = ['Year', 'Men', 'Women', 'Men', 'Women'];
      ws.addRow(['Unknown', '...', '...', '...', '...']);
      ws.addRow([2020, 400, 390, 300, 310]);
      ws.addRow([2021, 410, 395, 305, 300]);
    });

    const table = await readXlsx(path, 'marker-row.xlsx');

    expect(table.columns).toEqual(['Year', 'Births Men', 'Births Women', 'Deaths Men', 'Deaths Women']);
    expect((await collect(table)).map((r) => r.position)).toEqual([3, 4, 5]);
  });

  it('joins a header written over several lines, top to bottom, a word broken with a hyphen made whole', async () => {
    const path = dir.path('stacked.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Tafel');
      ws.addRow(['Sterbetafel 2017/2019']);
      ws.addRow([]);
      ws.addRow(['Vollendetes', 'Sterbe-', 'Überlebende']);
      ws.addRow(['Alter', 'wahrscheinlichkeit', 'im Alter x']);
      ws.addRow(['x', 'q x', 'l x']);
      ws.addRow([0, 0.00348, 100000]);
      ws.addRow([1, 0.000268, 99652]);
      ws.addRow([2, 0.000149, 99625]);
    });

    const table = await readXlsx(path, 'stacked.xlsx');

    expect(table.columns).toEqual(['Vollendetes Alter x', 'Sterbewahrscheinlichkeit q x', 'Überlebende im Alter x l x']);
    expect((await collect(table)).map((r) => r.position)).toEqual([6, 7, 8]);
    expect(table.warnings).toContain(
      'stacked.xlsx#Tafel: the header spans rows 3–5 (headings written over several lines); columns named "Vollendetes Alter x", "Sterbewahrscheinlichkeit q x", "Überlebende im Alter x l x"',
    );
  });

  it('keeps a one-row header whose next row is data, text under a heading of its own', async () => {
    const path = dir.path('one-row.xlsx');
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('S');
      ws.addRow([null, 'Name', 'Kind']);
      ws.addRow(['A1', 'Oak', 'tree']);
      ws.addRow(['A2', 'Elm', 'tree']);
    });

    const table = await readXlsx(path, 'one-row.xlsx');

    expect(table.columns).toEqual(['column_1', 'Name', 'Kind']);
    expect((await collect(table)).map((r) => r.values)).toEqual([
      ['A1', 'Oak', 'tree'],
      ['A2', 'Elm', 'tree'],
    ]);
  });
});

describe('rows shaped like footnotes', () => {
  it('are rows when the table is itself a code and a name: a blank row does not turn the rows after it into notes', async () => {
    const path = dir.path('codes.xlsx');
    const regions = ['North', 'South', 'East', 'West', 'Centre', 'Coast', 'Hills', 'Lakes', 'Moor', 'Vale', 'Fens', 'Downs'];
    await writeXlsx(path, (wb) => {
      const ws = wb.addWorksheet('Regions');
      ws.addRow(['Code', 'Region']);
      for (let i = 0; i < 6; i++) ws.addRow([i + 1, regions[i]]);
      ws.addRow([]);
      for (let i = 6; i < 12; i++) ws.addRow([i + 1, regions[i]]);
    });

    const table = await readXlsx(path, 'codes.xlsx');

    expect((await collect(table)).map((r) => r.values[1])).toEqual(regions);
    expect(table.warnings.filter((w) => w.includes('notes'))).toEqual([]);
  });

  it('are rows when letter codes name the rows (sections A, B… and their titles), and when a row of a wider table misses its figures', async () => {
    const sections = dir.path('sections.xlsx');
    await writeXlsx(sections, (wb) => {
      const ws = wb.addWorksheet('NACE');
      ws.addRow(['Section', 'Title']);
      ws.addRow(['A', 'Agriculture, forestry and fishing']);
      ws.addRow(['B', 'Mining and quarrying']);
      ws.addRow([]);
      ws.addRow(['C', 'Manufacturing']);
      ws.addRow(['D', 'Electricity, gas, steam']);
    });
    const wide = dir.path('ranked.xlsx');
    await writeXlsx(wide, (wb) => {
      const ws = wb.addWorksheet('Rank');
      ws.addRow(['Rank', 'Country', 'GDP']);
      ws.addRow([1, 'Atlantis', 950]);
      ws.addRow([2, 'Utopia', 720]);
      ws.addRow([]);
      ws.addRow([3, 'Erewhon']);
    });

    expect((await collect(await readXlsx(sections, 'sections.xlsx'))).map((r) => r.values[0])).toEqual(['A', 'B', 'C', 'D']);
    expect((await collect(await readXlsx(wide, 'ranked.xlsx'))).map((r) => r.values[1])).toEqual(['Atlantis', 'Utopia', 'Erewhon']);
  });
});

describe('hidden sheets in .ods', () => {
  it('are passed over when no sheet is named, as in .xlsx and .xls, and still read when named', async () => {
    const path = dir.path('hidden-first.ods');
    const table = (town: string) => [ods.row([ods.text('Town'), ods.text('People')]), ods.row([ods.text(town), ods.float(100)]), ods.row([ods.text(`${town} 2`), ods.float(50)])];
    await writeOds(path, [
      { name: 'Old', rows: table('Stale'), hidden: true },
      { name: 'Data', rows: table('Fresh') },
    ]);

    expect((await collect(await readOds(path, 'hidden-first.ods'))).map((r) => r.values[0])).toEqual(['Fresh', 'Fresh 2']);
    expect((await collect(await readOds(path, 'hidden-first.ods', { sheet: 'Old' }))).map((r) => r.values[0])).toEqual(['Stale', 'Stale 2']);
  });
});

describe('a sheet asked for by a number', () => {
  const people = (n: string) =>
    [
      ['Area', 'People'],
      [`area of ${n}`, 1],
    ] as const;

  it('reads the sheet so named when there is one (sheets 1, 2a…), else the sheet at that 0-based index, in .xlsx and .ods', async () => {
    const xlsx = dir.path('numbered.xlsx');
    await writeXlsx(xlsx, (wb) => {
      for (const name of ['Cover', '2a', '1']) for (const row of people(name)) (wb.getWorksheet(name) ?? wb.addWorksheet(name)).addRow([...row]);
    });
    const odsPath = dir.path('numbered.ods');
    await writeOds(
      odsPath,
      ['Cover', '2a', '1'].map((name) => ({ name, rows: people(name).map((row) => ods.row([ods.text(row[0]), typeof row[1] === 'number' ? ods.float(row[1]) : ods.text(row[1])])) })),
    );
    const first = async (table: Promise<Awaited<ReturnType<typeof readXlsx>>>) => (await collect(await table))[0]!.values[0];

    for (const [read, file] of [
      [readXlsx, xlsx],
      [readOds, odsPath],
    ] as const) {
      expect(await first(read(file, file, { sheet: '1' }))).toBe('area of 1');
      expect(await first(read(file, file, { sheet: 1 }))).toBe('area of 2a');
      expect(await first(read(file, file, { sheet: '0' }))).toBe('area of Cover');
      await expect(read(file, file, { sheet: '3' })).rejects.toThrow(/no sheet named "3" nor sheet 3 \(0-based\)/);
    }
  });
});
