/**
 * Semantic formats: the international set (always on) and the locale packs a pipeline switches on.
 *
 * Order matters only to break ties: `formatsFor` lists the chosen packs first (in the order asked)
 * and the international formats last, so a specific format (`code_postal`, `tel_fr`) comes before
 * its generic cousin (`postal_code`, `phone`) when both fit a column equally well.
 *
 * Adding a format: write one `FormatDefinition` in the right pack file, add it to that pack's list,
 * and add its passing values and near misses to `test/unit/profile-formats.test.ts` (the test fails
 * for a format without cases).
 */
import type { FormatDefinition, Locale } from '../types.ts';
import { FR_FORMATS } from './fr.ts';
import { fold } from './helpers.ts';
import { INTERNATIONAL_FORMATS } from './international.ts';
import { NL_FORMATS } from './nl.ts';
import { US_FORMATS } from './us.ts';

export { baseTypeOf, booleanValue, dateOrder, parseDate, parseDateTime, parseNumber, typeCompatible, widen } from './base-types.ts';
export type { BaseTypeOptions, DateOrder } from './base-types.ts';
export { parseDateFr } from './fr.ts';
export { INTERNATIONAL_FORMATS, FR_FORMATS, NL_FORMATS, US_FORMATS };

export const LOCALE_PACKS: Readonly<Record<Locale, readonly FormatDefinition[]>> = { fr: FR_FORMATS, nl: NL_FORMATS, us: US_FORMATS };

/** Every format of every pack, packs first (fr, nl, us), then the international ones. */
export const ALL_FORMATS: readonly FormatDefinition[] = [...FR_FORMATS, ...NL_FORMATS, ...US_FORMATS, ...INTERNATIONAL_FORMATS];

const cache = new Map<string, readonly FormatDefinition[]>();

/** The formats to try for a pipeline: the chosen packs (in the order given, duplicates ignored), then the international formats. */
export function formatsFor(locales: readonly Locale[]): readonly FormatDefinition[] {
  const key = locales.join(',');
  let formats = cache.get(key);
  if (!formats) {
    const seen = new Set<Locale>();
    const list: FormatDefinition[] = [];
    for (const locale of locales) {
      if (seen.has(locale)) continue;
      seen.add(locale);
      const pack = LOCALE_PACKS[locale];
      if (!pack) throw new Error(`unknown locale pack: ${String(locale)} (known: ${Object.keys(LOCALE_PACKS).join(', ')})`);
      list.push(...pack);
    }
    list.push(...INTERNATIONAL_FORMATS);
    formats = Object.freeze(list);
    cache.set(key, formats);
  }
  return formats;
}

/**
 * A header as header hints see it: camelCase split (`codePostal` → `code postal`), lower-case,
 * accents removed, every run of non-alphanumerics turned into one space, trimmed.
 * `"Code_Postal (établissement)"` → `"code postal etablissement"`.
 */
export function normaliseHeaderForHints(header: string): string {
  return fold(header.replace(/([a-z0-9])([A-Z])/g, '$1 $2'));
}

interface Hint {
  words: string[];
  /** The hint's words run together (`code postal` → `codepostal`). */
  glued: string;
}

const hintCache = new WeakMap<FormatDefinition, Hint[]>();

function hintsOf(format: FormatDefinition): Hint[] {
  let hints = hintCache.get(format);
  if (!hints) {
    hints = (format.headerHints ?? [])
      .map((h) => fold(h))
      .filter(Boolean)
      .map((h) => ({ words: h.split(' '), glued: h.replace(/ /g, '') }));
    hintCache.set(format, hints);
  }
  return hints;
}

/** A header word matches a hint word when equal, or the plural of it (`emails`, `sirets`). */
function wordMatches(word: string, hint: string): boolean {
  return word === hint || (hint.length >= 3 && word.length === hint.length + 1 && word.endsWith('s') && word.startsWith(hint));
}

/**
 * The header mentions one of the format's hints, word by word: each hint's words must appear as
 * consecutive whole words of the normalised header. So `lat` matches "lat", "Lat (WGS84)" and
 * "gps_lat" but not "population" or "latitude" (list `latitude` as a hint of its own); `code postal`
 * matches "Code postal", "code_postal_etab" and, glued, "codepostal".
 */
export function headerMatches(format: FormatDefinition, header: string): boolean {
  const hints = hintsOf(format);
  if (hints.length === 0) return false;
  const normalised = normaliseHeaderForHints(header);
  if (!normalised) return false;
  const words = normalised.split(' ');
  for (const hint of hints) {
    const k = hint.words.length;
    for (let i = 0; i + k <= words.length; i++) {
      let j = 0;
      while (j < k && wordMatches(words[i + j] as string, hint.words[j] as string)) j++;
      if (j === k) return true;
    }
    // a multi-word hint written as one word: "codepostal", "code_commune" vs "codecommune"
    if (k > 1) for (const w of words) if (wordMatches(w, hint.glued)) return true;
  }
  return false;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/**
 * A markdown table of the formats: name, pack, base type, threshold, whether a header hint is
 * required, the csv-detective equivalent and the description.
 */
export function formatsTable(formats: readonly FormatDefinition[] = ALL_FORMATS): string {
  const lines = ['| Format | Pack | Base type | Threshold | Header hint | csv-detective | Description |', '| --- | --- | --- | --- | --- | --- | --- |'];
  for (const f of formats) {
    lines.push(
      `| \`${f.name}\` | ${f.locale ?? 'international'} | ${f.baseType} | ${f.threshold} | ${f.requiresHeaderHint ? 'required' : 'lifts score'} | ${f.csvDetective ? `\`${f.csvDetective}\`` : '—'} | ${cell(f.description)} |`,
    );
  }
  return lines.join('\n') + '\n';
}
