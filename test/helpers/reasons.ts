/**
 * For integration tests: the reasons the clean step really wrote, read back from every quarantine
 * table of a project, as a French and a Dutch report would render them (report-reasons.ts) — so a
 * template of the clean step that the report no longer understands is caught where it is written.
 */
import type { Queryable } from '../../functions/common/db.ts';
import { ident } from '../../functions/common/db.ts';
import { localizeReason } from '../../functions/common/report-reasons.ts';

export interface RenderedReasons {
  /** The rules met, sorted. */
  rules: string[];
  /** The reasons that stayed English in French or in Dutch: none when every template is understood. */
  untranslated: { table: string; rule: string; reason: string }[];
}

/** Every quarantine row of the project's schema (its `*_quarantine` tables, and the `*_rejects` ones of `civic-etl load`), rendered in French and Dutch. */
export async function renderedReasons(db: Queryable, schema: string): Promise<RenderedReasons> {
  const { rows: tables } = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND (table_name LIKE '%\\_quarantine' OR table_name LIKE '%\\_rejects') ORDER BY 1`,
    [schema],
  );
  const rules = new Set<string>();
  const untranslated: RenderedReasons['untranslated'] = [];
  for (const { table_name: table } of tables) {
    const { rows } = await db.query<{ rule: string; raw_value: string | null; reason: string }>(`SELECT rule, raw_value, reason FROM ${ident(schema)}.${ident(table)}`);
    for (const r of rows) {
      rules.add(r.rule);
      const e = { rule: r.rule, value: r.raw_value, reason: r.reason };
      if (localizeReason('fr', e) === r.reason || localizeReason('nl', e) === r.reason) untranslated.push({ table, rule: r.rule, reason: r.reason });
    }
  }
  return { rules: [...rules].sort(), untranslated };
}
