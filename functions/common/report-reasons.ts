/**
 * A quarantined value's reason in the report's language. The clean step stores one English
 * reason per refused value (operators, the CLI and the ledger read it as it is); the HTML report
 * renders it again, at rendering time, in the supplier's language.
 *
 * The facts come from the quarantine row itself — its rule, its raw value, its reason — not from
 * the pipeline as it is today: the pattern, bounds, allowed values, number or date format a load
 * was checked against are those of its own day (a definition edited since, dataset defaults, a
 * format the type inference found are all in the stored reason, none of them in today's column).
 * The raw value is a known fact: it is taken off the end of the reason (`…: <value>`), so that
 * what is left is one of the clean step's fixed templates, matched whole (anchored); the facts it
 * holds are then written again with the English texts, and only a reason that comes back exactly
 * as stored is translated. Anything else — a rule or a template this does not know, a reason cut
 * short, a GEOS message it has no words for — stays in English, never dropped or garbled.
 */
import { formatNumber } from './html.ts';
import { REPORT_TEXT, type ReportLanguage, type ReportText } from './report-text.ts';

/** A reason's facts: which template, and what it says. */
type Facts =
  | { k: 'required' }
  | { k: 'nullToken'; token: string }
  | { k: 'notValid'; type: string; value: string }
  | { k: 'notInForm'; kind: string; form: string; orOutOfRange: boolean; value: string }
  | { k: 'notInPattern'; kind: string; pattern: string; excel: boolean; value: string }
  | { k: 'notIsoOrExcel'; kind: string; value: string }
  | { k: 'pattern'; pattern: string; value: string }
  | { k: 'notOneOf'; list: string; value: string }
  | { k: 'between'; min: string; max: string; value: string }
  | { k: 'below'; min: string; value: string }
  | { k: 'above'; max: string; value: string }
  | { k: 'outOfRange'; what: string; value: string }
  | { k: 'reference'; target: string; value: string }
  | { k: 'map'; map: string; value: string }
  | { k: 'invalidGeometry'; problem: string; at?: string }
  | { k: 'duplicateValue'; column: string; line: string }
  | { k: 'valueInTable'; load: string; line: string }
  | { k: 'keyInTable'; load: string; line: string }
  | { k: 'duplicateKey'; key: string; line: string }
  | { k: 'duplicateKeyKept'; key: string; line: string; last: boolean; by: string }
  | { k: 'newerKey'; load: string }
  | { k: 'newerChangedKey'; load: string }
  | { k: 'newerDeleted'; load: string }
  | { k: 'parent'; dataset: string; line: string; why: Facts | undefined }
  | { k: 'newColumn'; column: string }
  | { k: 'renamedColumn'; column: string; like: string }
  | { k: 'retypedColumn'; column: string; type: string; value: string }
  | { k: 'geometryMisfit'; column: string; type: string; is: string };

type Kind = Facts['k'];

/**
 * The templates each rule that quarantines a row writes (functions/clean: rules.ts, cast.ts,
 * geometry.ts, value-maps.ts, children.ts, drift.ts). A rule not here keeps its English reason.
 */
export const REASON_KINDS: Readonly<Record<string, readonly Kind[]>> = {
  required: ['required'],
  null: ['nullToken'],
  type: ['notValid', 'notInForm', 'notInPattern', 'notIsoOrExcel'],
  pattern: ['pattern'],
  enum: ['notOneOf'],
  range: ['between', 'below', 'above', 'outOfRange'],
  reference: ['reference'],
  map: ['map'],
  valid: ['invalidGeometry'],
  unique: ['duplicateValue', 'valueInTable', 'keyInTable', 'duplicateKey'],
  dedupe: ['duplicateKeyKept'],
  superseded: ['newerKey', 'newerChangedKey', 'parent'],
  deleted: ['newerDeleted', 'parent'],
  parent: ['parent'],
  schema: ['newColumn', 'renamedColumn', 'retypedColumn', 'geometryMisfit'],
};

/** An example line of the report: its rule, its raw value (as the report cut it) and its stored English reason. */
export interface ReasonOf {
  rule: string;
  value: string | null;
  reason: string;
}

/** The reason of a refused value in `lang`: the stored English one for English, or for anything not understood. */
export function localizeReason(lang: ReportLanguage, e: ReasonOf): string {
  if (lang === 'en') return e.reason;
  const kinds = REASON_KINDS[e.rule];
  if (!kinds) return e.reason;
  const facts = parseReason(e.reason, e.value, kinds);
  if (!facts) return e.reason;
  return render(REPORT_TEXT[lang], facts, lang) ?? e.reason;
}

/** The first 80 characters of a raw value, as the reasons quote it (`left(raw, 80)`; NULL quotes as nothing). */
function quoted(value: string | null): string {
  return Array.from(value ?? '')
    .slice(0, 80)
    .join('');
}

/** The facts of `reason` (one of `kinds`' templates), checked by writing them again in English; undefined when not understood. */
function parseReason(reason: string, value: string | null, kinds: readonly Kind[]): Facts | undefined {
  const tail = `: ${quoted(value)}`;
  const candidates: Facts[] = [];
  if (reason.endsWith(tail)) candidates.push(...withValue(reason.slice(0, reason.length - tail.length), quoted(value)));
  candidates.push(...withoutValue(reason));
  const found = candidates.filter((f) => kinds.includes(f.k) && render(REPORT_TEXT.en, f, 'en') === reason);
  return found[0];
}

/**
 * A reason met inside another one (a parent row's, quoted by its child): its raw value is not
 * known, so each `: ` may be where it starts — understood only when exactly one reading fits.
 */
function parseNested(reason: string): Facts | undefined {
  const readings: Facts[] = withoutValue(reason);
  for (let at = reason.indexOf(': '); at >= 0; at = reason.indexOf(': ', at + 1)) readings.push(...withValue(reason.slice(0, at), reason.slice(at + 2)));
  const found = readings.filter((f) => f.k !== 'parent' && render(REPORT_TEXT.en, f, 'en') === reason);
  return found.length === 1 ? found[0] : undefined;
}

const KINDS_EN = Object.entries(REPORT_TEXT.en.reason_.kind_);
const kindOf = (words: string) => KINDS_EN.find(([, w]) => w === words)?.[0];

/** The readings of a template that ends with the raw value (`head` is what comes before `: <value>`). */
function withValue(head: string, value: string): Facts[] {
  const out: Facts[] = [];
  let m: RegExpExecArray | null;
  if ((m = /^not a valid (.+)$/s.exec(head))) out.push({ k: 'notValid', type: m[1]!, value });
  if ((m = /^not (an? \w+) in the form (.+?)( \(or out of range\))?$/s.exec(head)) && kindOf(m[1]!)) out.push({ k: 'notInForm', kind: kindOf(m[1]!)!, form: m[2]!, orOutOfRange: !!m[3], value });
  if ((m = /^not (an? \w+) \(yyyy-mm-dd\) or an Excel serial date$/s.exec(head)) && kindOf(m[1]!)) out.push({ k: 'notIsoOrExcel', kind: kindOf(m[1]!)!, value });
  if ((m = /^not (an? \w+) in (.+?)( or an Excel serial date)?$/s.exec(head)) && kindOf(m[1]!)) out.push({ k: 'notInPattern', kind: kindOf(m[1]!)!, pattern: m[2]!, excel: !!m[3], value });
  if ((m = /^does not match the pattern (.+)$/s.exec(head))) out.push({ k: 'pattern', pattern: m[1]!, value });
  if ((m = /^not one of (.+)$/s.exec(head))) out.push({ k: 'notOneOf', list: m[1]!, value });
  if ((m = /^not between (\S+) and (\S+)$/s.exec(head))) out.push({ k: 'between', min: m[1]!, max: m[2]!, value });
  if ((m = /^below the minimum (\S+)$/s.exec(head))) out.push({ k: 'below', min: m[1]!, value });
  if ((m = /^above the maximum (\S+)$/s.exec(head))) out.push({ k: 'above', max: m[1]!, value });
  if ((m = /^(\w+) out of range$/s.exec(head))) out.push({ k: 'outOfRange', what: m[1]!, value });
  if ((m = /^not in value map "(.*)"$/s.exec(head))) out.push({ k: 'map', map: m[1]!, value });
  else if ((m = /^not in (.+)$/s.exec(head))) out.push({ k: 'reference', target: m[1]!, value });
  if ((m = /^column "(.*)" is (.+?) in the clean table; not a valid (.+)$/s.exec(head)) && m[2] === m[3]) out.push({ k: 'retypedColumn', column: m[1]!, type: m[2]!, value });
  return out;
}

/** The readings of a template with no raw value at its end. */
function withoutValue(reason: string): Facts[] {
  const out: Facts[] = [];
  let m: RegExpExecArray | null;
  if (reason === REPORT_TEXT.en.reason_.required) out.push({ k: 'required' });
  if ((m = /^required value is missing \(null token (.*)\)$/s.exec(reason))) out.push({ k: 'nullToken', token: m[1]! });
  if ((m = /^invalid geometry: (.+?)(?:\[([^[\]]*)\])?$/s.exec(reason))) out.push({ k: 'invalidGeometry', problem: m[1]!, ...(m[2] !== undefined ? { at: m[2] } : {}) });
  if ((m = /^duplicate value: same (.+) as line (\d+)$/s.exec(reason))) out.push({ k: 'duplicateValue', column: m[1]!, line: m[2]! });
  if ((m = /^value already in the table \(load (\d+), line (\d+)\)$/.exec(reason))) out.push({ k: 'valueInTable', load: m[1]!, line: m[2]! });
  if ((m = /^key already in the table \(load (\d+), line (\d+)\)$/.exec(reason))) out.push({ k: 'keyInTable', load: m[1]!, line: m[2]! });
  if ((m = /^duplicate key: same (.+) as line (\d+)$/s.exec(reason))) out.push({ k: 'duplicateKey', key: m[1]!, line: m[2]! });
  if ((m = /^duplicate key: same (.+) as line (\d+), which is kept \(the (first|last) (?:by (.+)|in the file)\)$/s.exec(reason)))
    out.push({ k: 'duplicateKeyKept', key: m[1]!, line: m[2]!, last: m[3] === 'last', by: m[4] ?? '' });
  if ((m = /^a newer object \(load (\d+)\) already brought this key$/.exec(reason))) out.push({ k: 'newerKey', load: m[1]! });
  if ((m = /^a newer object \(load (\d+)\) changed this record's key$/.exec(reason))) out.push({ k: 'newerChangedKey', load: m[1]! });
  if ((m = /^a newer object \(load (\d+)\) deleted this record$/.exec(reason))) out.push({ k: 'newerDeleted', load: m[1]! });
  if ((m = /^its parent row \((\S+) (\S*)\) was not loaded: (.*)$/s.exec(reason))) {
    const why = m[3] === REPORT_TEXT.en.reason_.notInParent ? undefined : parseNested(m[3]!);
    if (why || m[3] === REPORT_TEXT.en.reason_.notInParent) out.push({ k: 'parent', dataset: m[1]!, line: m[2]!, why });
  }
  if ((m = /^column "(.*)" is not in the clean table \(new in this file; drift policy quarantine\)$/s.exec(reason))) out.push({ k: 'newColumn', column: m[1]! });
  if ((m = /^column "(.*)" is not in the clean table; it looks like a rename of "(.*)" \(same place, same type\), which the drift policy quarantine does not apply$/s.exec(reason)))
    out.push({ k: 'renamedColumn', column: m[1]!, like: m[2]! });
  if ((m = /^geometry column "(.*)" is (\S+) in the clean table; this geometry is a (\w+) \(drift policy quarantine\)$/s.exec(reason)))
    out.push({ k: 'geometryMisfit', column: m[1]!, type: m[2]!, is: m[3]! });
  return out;
}

/** A number as the language writes it (a line, a bound): only a plain decimal as the clean step wrote it, never a date or a word. */
function numberIn(lang: ReportLanguage, text: string): string {
  if (lang === 'en' || !/^-?\d+(\.\d+)?$/.test(text) || text.replace(/^-/, '').replace('.', '').length > 15) return text;
  // bounds such as years read better ungrouped: grouping from five digits on (as the column profile writes them)
  return Number(text).toLocaleString(lang, { maximumFractionDigits: 15, useGrouping: 'min2' } as Intl.NumberFormatOptions);
}

/** The facts in the language of `t`; undefined when a word they need is not one it has (a type, a GEOS message). */
function render(t: ReportText, f: Facts, lang: ReportLanguage): string | undefined {
  const r = t.reason_;
  const v = (text: string | undefined, value: string) => (text === undefined ? undefined : r.withValue(text, value));
  const line = (n: string) => (lang === 'en' ? n : formatNumber(Number(n), lang));
  const n = (x: string) => numberIn(lang, x);
  switch (f.k) {
    case 'required':
      return r.required;
    case 'nullToken':
      return r.nullToken(f.token);
    case 'notValid':
      return v(r.notValid_[f.type], f.value);
    case 'notInForm':
      return v(r.notInForm(r.kind_[f.kind]!, f.form, f.orOutOfRange), f.value);
    case 'notInPattern':
      return v(r.notInPattern(r.kind_[f.kind]!, f.pattern, f.excel), f.value);
    case 'notIsoOrExcel':
      return v(r.notIsoOrExcel(r.kind_[f.kind]!), f.value);
    case 'pattern':
      return v(r.pattern(f.pattern), f.value);
    case 'notOneOf':
      return v(r.notOneOf(f.list), f.value);
    case 'between':
      return v(r.between(n(f.min), n(f.max)), f.value);
    case 'below':
      return v(r.below(n(f.min)), f.value);
    case 'above':
      return v(r.above(n(f.max)), f.value);
    case 'outOfRange': {
      const what = r.coordinate_[f.what];
      return what === undefined ? undefined : v(r.outOfRange(what), f.value);
    }
    case 'reference':
      return v(r.reference(f.target), f.value);
    case 'map':
      return v(r.map(f.map), f.value);
    case 'invalidGeometry': {
      const problem = r.geometry_[f.problem];
      if (problem === undefined) return undefined;
      return r.invalidGeometry(f.at === undefined ? problem : r.geometryAt(problem, f.at));
    }
    case 'duplicateValue':
      return r.duplicateValue(f.column, line(f.line));
    case 'valueInTable':
      return r.valueInTable(f.load, line(f.line));
    case 'keyInTable':
      return r.keyInTable(f.load, line(f.line));
    case 'duplicateKey':
      return r.duplicateKey(f.key, line(f.line));
    case 'duplicateKeyKept':
      return r.duplicateKeyKept(f.key, line(f.line), f.last, f.by);
    case 'newerKey':
      return r.newerKey(f.load);
    case 'newerChangedKey':
      return r.newerChangedKey(f.load);
    case 'newerDeleted':
      return r.newerDeleted(f.load);
    case 'parent': {
      const why = f.why === undefined ? r.notInParent : render(t, f.why, lang);
      return why === undefined ? undefined : r.parent(f.dataset, f.line, why);
    }
    case 'newColumn':
      return r.newColumn(f.column);
    case 'renamedColumn':
      return r.renamedColumn(f.column, f.like);
    case 'retypedColumn': {
      const notValid = r.notValid_[f.type];
      return notValid === undefined ? undefined : v(r.retypedColumn(f.column, f.type, notValid), f.value);
    }
    case 'geometryMisfit':
      return r.geometryMisfit(f.column, f.type, f.is);
  }
}
