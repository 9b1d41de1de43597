import { expect } from 'vitest';
import { ReadError, type ReadRow, type ReadTable } from '../../functions/read/types.ts';

/**
 * A reader table's rows as `{ position, values }`, each padded with NULLs to the table's width
 * (a row may stop at its last value: the columns after it read as NULL).
 */
export async function collectRows(table: ReadTable): Promise<{ position: number; values: (string | null)[] }[]> {
  const rows: { position: number; values: (string | null)[] }[] = [];
  for await (const row of table.rows()) {
    const values = [...row.values, ...Array<null>(Math.max(0, table.columns.length - row.values.length)).fill(null)];
    rows.push({ position: row.position, values });
  }
  return rows;
}

/** A reader table's rows, as the reader gives them. */
export async function rowsOf(table: ReadTable): Promise<ReadRow[]> {
  const rows: ReadRow[] = [];
  for await (const row of table.rows()) rows.push(row);
  return rows;
}

/** The ReadError a promise rejects with (fails the test when it resolves or throws something else). */
export async function readError(promise: Promise<unknown>): Promise<ReadError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ReadError);
  return error as ReadError;
}
