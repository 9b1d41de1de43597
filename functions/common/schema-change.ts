/**
 * A schema change between a load and its dataset's clean table (functions/clean/drift.ts finds
 * them), and the one place that puts one in words: short in error messages, with what was done in
 * the quality report a supplier reads (common/report.ts).
 */
import type { DatasetDefinition } from '../../contract/definition.ts';

export type DriftPolicy = NonNullable<DatasetDefinition['drift']>;

/** One change, as recorded in `etl.loads.schema_changes`. */
export interface SchemaChange {
  change: 'added' | 'missing' | 'renamed' | 'retyped';
  /** The clean column (for `added`: the new column; for a declared dataset: the file's header). */
  column: string;
  /** added: null · missing: its type · renamed: the clean column's name · retyped: the clean column's type. */
  from: string | null;
  /** added: its type · missing: null · renamed: the file's column name · retyped: the type this load's values have. */
  to: string | null;
  policy: DriftPolicy;
  /**
   * What was done: `added` (column added), `widened` (column type widened to `type`), `mapped` (the
   * file's column fills the clean column), `kept` (a missing column stays, empty for this load),
   * `quarantined` (`rows` rows went to quarantine), `rejected` (the load was), `ignored` (declared
   * columns: the file's column is not read).
   */
  action: 'added' | 'widened' | 'mapped' | 'kept' | 'quarantined' | 'rejected' | 'ignored';
  /** The clean column's type after the change (added, widened). */
  type?: string;
  /** Rows of this load quarantined because of this change. */
  rows?: number;
  /** Why a rename was taken for one: the names differ only in spelling, or the column kept its place and type. */
  basis?: 'spelling' | 'position';
  /** Re-typed: the first source line whose value does not fit the clean type. */
  line?: number;
}

/**
 * One change in words. `message` (errors, logs): what changed, `column "b" added`. `report` (the
 * supplier's quality report): what changed in the file's terms, then what was done about it,
 * `new column "b" (text): added to the table`.
 */
export function describeChange(c: SchemaChange, form: 'message' | 'report' = 'message'): string {
  if (form === 'message') {
    switch (c.change) {
      case 'added':
        return `column "${c.column}" added`;
      case 'missing':
        return `column "${c.column}" missing`;
      case 'renamed':
        return `column "${c.from}" renamed to "${c.to}"`;
      case 'retyped':
        return `column "${c.column}" re-typed from ${c.from} to ${c.to}${c.line ? ` (first at line ${c.line})` : ''}`;
    }
  }
  const what =
    c.change === 'added'
      ? `new column "${c.column}"${c.to ? ` (${c.to})` : ''}`
      : c.change === 'missing'
        ? `column "${c.column}" is missing from the file`
        : c.change === 'renamed'
          ? `column "${c.from}" is now called "${c.to}"`
          : `column "${c.column}" holds ${c.to ?? 'other'} values where the table has ${c.from ?? 'another type'}`;
  const rows = c.rows ?? 0;
  const done: Record<SchemaChange['action'], string> = {
    added: 'added to the table',
    widened: `the column became ${c.type ?? 'wider'}`,
    mapped: 'read into the existing column',
    kept: "the column stays, empty in this file's rows; rows of earlier files keep their values",
    quarantined: `${rows.toLocaleString('en-US')} ${rows === 1 ? 'row' : 'rows'} set aside`,
    rejected: 'the file was rejected',
    ignored: 'not read',
  };
  return `${what}: ${done[c.action] ?? c.action}`;
}
