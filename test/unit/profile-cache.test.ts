/**
 * The profiler classifies each distinct value once (profile.ts, ColumnAccumulator.add): a value
 * met again is only counted, and its verdicts are added up at the end. These tests hold it to the
 * verdicts of classifying every value, and to each column's own verdicts.
 */
import { describe, expect, it } from 'vitest';
import { KeyFilter, profileStream } from '../../functions/profile/profile.ts';
import type { ColumnProfile } from '../../functions/profile/types.ts';
import { mulberry32 } from '../../scripts/random.ts';

async function* chunks(text: string, size = 4096): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

const column = (columns: ColumnProfile[], name: string) => columns.find((c) => c.name === name)!;

/** What a column's verdicts are, without what depends on keeping distinct values (their count, the top values). */
function verdicts(c: ColumnProfile): unknown {
  const { distinct, distinctCapped, top, categorical, ...rest } = c.profile;
  void [distinct, distinctCapped, top, categorical];
  return { ...c, profile: rest };
}

/** A CSV of `rows` rows whose columns repeat few values, many values, or change their kind of value after the first thousand. */
function mixedCsv(rows: number, seed: number): string {
  const r = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const lines = ['code_postal;effectif;date;montant;mesure;ville;ident;tardif'];
  for (let i = 0; i < rows; i++) {
    const code = pick(['75001', '69003', '13008', '31500', '44000', '59000']);
    const day = 1 + Math.floor(r() * 28);
    const month = 1 + Math.floor(r() * 12);
    lines.push(
      [
        code,
        // the same values as code_postal, without its header hint
        code,
        // day-first dates, a few of them past the 12th, repeated
        `${day}/${month}/20${10 + (i % 3)}`,
        // decimal commas, missing-value markers among them
        r() < 0.05 ? 'NA' : `${Math.floor(r() * 40)},${pick(['5', '25', '75'])}`,
        // numbers whose running mean depends on their order
        (r() * 1000).toFixed(3),
        pick(['Paris', 'Lyon', 'Marseille', ' Lille ', 'Nantes']),
        // every value distinct
        `ID-${i}-${Math.floor(r() * 1e6)}`,
        // text first, e-mail addresses after the first thousand values (the formats are pruned on the first thousand)
        i < 1200 ? pick(['a', 'b', 'c']) : `${pick(['x', 'y'])}@example.org`,
      ].join(';'),
    );
  }
  return `${lines.join('\n')}\n`;
}

describe('the profiler classifies each distinct value once', () => {
  it('gives each column its own verdict on a value both hold (no verdict is shared between columns)', async () => {
    const p = await profileStream(chunks(mixedCsv(3000, 1)), { file: 'mixed.csv', locales: ['fr'] });

    // the same 5-digit values: a postcode under a postcode header, a count under another
    expect(column(p.columns, 'code_postal')).toMatchObject({ format: 'code_postal', clean: { type: 'text' } });
    expect(column(p.columns, 'effectif').format).not.toBe('code_postal');
    expect(column(p.columns, 'effectif').clean.type).toBe('integer');
    expect(column(p.columns, 'effectif').profile).toMatchObject({ min: 13008, max: 75001 });
  });

  it('gives the verdicts of classifying every value, whether distinct values are kept, capped or not kept', async () => {
    const text = mixedCsv(5000, 2);
    const every = await profileStream(chunks(text), { file: 'mixed.csv', locales: ['fr'], distinctCap: 0 });
    const cached = await profileStream(chunks(text), { file: 'mixed.csv', locales: ['fr'] });
    const capped = await profileStream(chunks(text), { file: 'mixed.csv', locales: ['fr'], distinctCap: 4 });

    expect(cached.columns.map(verdicts)).toEqual(every.columns.map(verdicts));
    expect(capped.columns.map(verdicts)).toEqual(every.columns.map(verdicts));
    // what the columns are meant to exercise did happen
    expect(column(every.columns, 'montant').clean).toMatchObject({ type: 'numeric', number: { decimal: ',' } });
    expect(column(every.columns, 'montant').clean.missing?.[0]?.value).toBe('NA');
    expect(column(every.columns, 'date').clean).toMatchObject({ type: 'date', date: 'd/m/yyyy' });
    expect(column(cached.columns, 'ville').profile).toMatchObject({ distinct: 5, distinctCapped: false });
    expect(column(capped.columns, 'ville').profile).toMatchObject({ distinct: 4, distinctCapped: true });
  });

  it('counts the kept values exactly once the cap is reached', async () => {
    const r = mulberry32(3);
    const values = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const expected = new Map<string, number>();
    const lines = ['v'];
    for (let i = 0; i < 4000; i++) {
      const v = values[Math.floor(r() * r() * values.length)]!;
      lines.push(v);
      expected.set(v, (expected.get(v) ?? 0) + 1);
    }
    const p = await profileStream(chunks(`${lines.join('\n')}\n`), { file: 'v.csv', distinctCap: 3, top: 3 });

    // the first three distinct values met are the ones kept, each counted over the whole file
    const firstThree = [...new Set(lines.slice(1))].slice(0, 3);
    const want = firstThree.map((value) => ({ value, count: expected.get(value)! })).sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : 1));
    expect(column(p.columns, 'v').profile).toMatchObject({ distinct: 3, distinctCapped: true, top: want });
  });
});

describe('profileStream with a worker thread', () => {
  it('gives the profile one thread gives, the worker profiling two columns in three', async () => {
    const text = mixedCsv(10_000, 5);
    const one = await profileStream(chunks(text), { file: 'mixed.csv', locales: ['fr'] });
    const two = await profileStream(chunks(text), { file: 'mixed.csv', locales: ['fr'], workers: 1 });

    expect(two).toEqual(one);
    expect(column(two.columns, 'effectif').profile).toMatchObject({ min: 13008, max: 75001 });
  });
});

describe('KeyFilter', () => {
  it('never rules out a string it holds, and rules out most others', () => {
    const r = mulberry32(4);
    const held = Array.from({ length: 10_000 }, (_, i) => `${i}-${Math.floor(r() * 1e9)}`);
    const filter = new KeyFilter(held, held.length);
    expect(held.every((s) => filter.has(s))).toBe(true);
    const others = Array.from({ length: 10_000 }, (_, i) => `other-${i}`);
    const maybes = others.filter((s) => filter.has(s)).length;
    expect(maybes).toBeLessThan(others.length * 0.1);
  });
});
