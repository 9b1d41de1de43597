/**
 * Real statistics-office workbooks (test/fixtures/spreadsheets, see ORIGIN.md there): the sheet read
 * by default, the header's names, where the data ends, and values, against facts computed from the
 * workbooks' XML by facts.py (Python's standard library), not by this project.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readXls } from '../../functions/read/xls.ts';
import { readXlsx } from '../../functions/read/xlsx.ts';
import type { ReadTable } from '../../functions/read/types.ts';
import { collectRows } from '../helpers/read-table.ts';

const here = join(import.meta.dirname, '../fixtures/spreadsheets');

interface TableFacts {
  columns: string[];
  rowCount: number;
  firstPosition: number;
  lastPosition: number;
  first: (string | null)[];
  last: (string | null)[];
  notes?: string[];
}
const facts = JSON.parse(readFileSync(join(here, 'facts.json'), 'utf8')) as {
  ons: { defaultSheet: string; table1: TableFacts; table2: TableFacts & { sheet: string } };
  destatis: { defaultSheet: string; table: TableFacts };
  onsBop: { defaultSheet: string; table: TableFacts };
};

const collect = collectRows;

/** A value as the sheet shows it: numbers compared as numbers (the XML keeps 17 digits, a person sees 15). */
function same(actual: (string | null)[], expected: (string | null)[]) {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => {
    const a = actual[i] ?? null;
    if (e !== null && a !== null && /^-?\d+(\.\d+)?(E[-+]?\d+)?$/i.test(e)) expect(Number(a)).toBe(Number(Number(e).toPrecision(15)));
    // facts.py leaves cells of spaces out of the XLSX rows it reads; the XLS facts keep them
    else if (e === null) expect(a === null || a.trim() === '').toBe(true);
    else expect(a).toBe(e);
  });
}

function checkTable(table: ReadTable, rows: Awaited<ReturnType<typeof collect>>, expected: TableFacts) {
  expect(table.columns).toEqual(expected.columns);
  expect(rows.length).toBe(expected.rowCount);
  expect(rows[0]!.position).toBe(expected.firstPosition);
  expect(rows[rows.length - 1]!.position).toBe(expected.lastPosition);
  same(rows[0]!.values, expected.first);
  same(rows[rows.length - 1]!.values, expected.last);
  for (const note of expected.notes ?? []) expect(rows.some((r) => r.values.includes(note))).toBe(false);
}

describe('an ONS workbook (a notice sheet, an index, then tables with notes below)', () => {
  const path = join(here, 'ons-itis-2018.xlsx');

  it('is read from its first table, not from its notice, and its notes are not rows', async () => {
    const table = await readXlsx(path, 'ons-itis-2018.xlsx');
    const rows = await collect(table);

    expect(table.name).toBe(`ons-itis-2018.xlsx#${facts.ons.defaultSheet}`);
    checkTable(table, rows, facts.ons.table1);
    expect(table.warnings[0]).toContain(`read sheet "${facts.ons.defaultSheet}" of 11`);
    expect(table.warnings[0]).toContain('passed over "Notes"');
    expect(table.warnings.some((w) => w.includes(`below the table read as notes, not rows (${facts.ons.table1.notes!.length} lines`))).toBe(true);
  });

  it('names the columns of a two-row header from the merged groups and the sub-headings below', async () => {
    const table = await readXlsx(path, 'ons-itis-2018.xlsx', { sheet: facts.ons.table2.sheet });

    checkTable(table, await collect(table), facts.ons.table2);
  });
});

describe('a Destatis workbook (a cover, contents and explanations, then tables with headers over six lines)', () => {
  it('is read from its first table, its header made one name per column, its footnote left out', async () => {
    const table = await readXlsx(join(here, 'destatis-sterbetafel-2017-2019.xlsx'), 'sterbetafel.xlsx');
    const rows = await collect(table);

    expect(table.name).toBe(`sterbetafel.xlsx#${facts.destatis.defaultSheet}`);
    checkTable(table, rows, facts.destatis.table);
    expect(table.warnings[0]).toContain('passed over "Titelseite"');
  });
});

describe('an ONS Excel 97–2003 workbook (an index and a summary sheet, then tables; years over quarters; numbered notes)', () => {
  it('is read from its first table, years and quarters named together, blank-looking rows and the numbered notes left out', async () => {
    const table = await readXls(join(here, 'ons-balance-of-payments-2020q1.xls'), 'bop.xls');
    const rows = await collect(table);

    expect(table.name).toBe(`bop.xls#${facts.onsBop.defaultSheet}`);
    checkTable(table, rows, facts.onsBop.table);
    expect(table.warnings.some((w) => w.includes(`below the table read as notes, not rows (${facts.onsBop.table.notes!.length} lines`))).toBe(true);
  });
});
