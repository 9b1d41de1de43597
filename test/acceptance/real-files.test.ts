/**
 * Real public files through `profile` and `load`, checked against facts computed without civic-etl
 * (test/acceptance/facts/compute_facts.py, Python's standard library). See test/acceptance/README.md.
 *
 * A ratchet: every fact not listed in known-failures.json must hold, and every listed fact must
 * still fail — a fix that makes one hold fails this test until its line is removed.
 *
 *   ACCEPT_REPORT=1 npx vitest run test/acceptance   # print every fact, pass or fail
 *   ACCEPT_UPDATE=1 npx vitest run test/acceptance   # rewrite known-failures.json from this run
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPool } from '../../functions/common/db.ts';
import { profileStream, profileTable, type FileProfile } from '../../functions/profile/profile.ts';
import { openSource } from '../../functions/read/open.ts';
import { loadFile, type LoadFileOptions } from '../../local/load-file.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const SCHEMA = 'acceptance';
const KNOWN_PATH = join(HERE, 'known-failures.json');

interface Fact {
  id: string;
  kind: string;
  expected: unknown;
  column?: string;
  heading?: string;
  type?: string;
  count?: number;
  tolerance?: number;
  relative?: number;
  srid?: number;
  source?: string[];
  text?: string;
  unchecked?: boolean;
  /** 0-based column position: names the column when the header's names are not checked. */
  position?: number;
}
interface FactFile {
  id: string;
  file: string;
  format: string;
  load: Partial<LoadFileOptions>;
  facts: Fact[];
}
interface Source {
  id: string;
  publisher: string;
  organisation: string;
  country: string;
  classes?: string[];
}
interface Outcome {
  file: string;
  fact: string;
  ok: boolean;
  expected: unknown;
  observed: unknown;
  class: string;
}
interface Known {
  expected: unknown;
  observed: unknown;
  class: string;
}

const sources: Source[] = JSON.parse(readFileSync(join(HERE, 'sources.json'), 'utf8')).files;
const factFiles: FactFile[] = readdirSync(join(HERE, 'facts'))
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(HERE, 'facts', f), 'utf8')));
const known: Record<string, Known> = JSON.parse(readFileSync(KNOWN_PATH, 'utf8'));

/** PostgreSQL type → the class a person names. */
function pgClass(type: string): string {
  if (['smallint', 'integer', 'bigint'].includes(type)) return 'integer';
  if (['numeric', 'double precision', 'double', 'real'].includes(type)) return 'number';
  if (type === 'date') return 'date';
  if (type.startsWith('timestamp')) return 'timestamp';
  if (type.startsWith('time')) return 'time';
  if (type === 'boolean') return 'boolean';
  if (['text', 'character varying', 'json', 'jsonb'].includes(type)) return 'text';
  if (type.startsWith('geometry')) return 'geometry';
  return type;
}
/**
 * A profiled column → the same classes: the type the profile says the column loads as (its
 * `clean` decision, what `civic-etl profile` prints under "loads"), else its base type.
 */
function profileClass(column: { type: string; clean?: { type: string } }): string {
  if (column.clean) return pgClass(column.clean.type);
  return ({ year: 'integer', string: 'text', json: 'text', datetime: 'timestamp', datetime_tz: 'timestamp' } as Record<string, string>)[column.type] ?? column.type;
}
const CAST: Record<string, string> = { integer: 'bigint', number: 'numeric', date: 'date', timestamp: 'timestamptz', boolean: 'boolean', text: 'text' };
const FAMILY: Record<string, string[]> = {
  point: ['POINT', 'MULTIPOINT'],
  line: ['LINESTRING', 'MULTILINESTRING'],
  polygon: ['POLYGON', 'MULTIPOLYGON'],
};
const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
/** An error's message, short, without this machine's path to the files (known-failures.json is committed). */
const message = (e: unknown) =>
  (e instanceof Error ? e.message : String(e))
    .split(`${join(HERE, 'files')}/`)
    .join('')
    .slice(0, 300);

/** The issue class a failing fact belongs to, for the report (from the fact's kind and the file's classes in sources.json). */
function classify(ff: FactFile, fact: Fact, loadFailed: boolean, observed: unknown): string {
  const classes = sources.find((s) => s.id === ff.id)?.classes ?? [];
  const structural = classes.find((c) => ['structure', 'header-odd-characters', 'bom', 'spreadsheets', 'missing-values', 'wide', 'rejected-rows', 'archives'].includes(c));
  const typeOf = fact.type ?? ff.facts.find((f) => f.kind === 'type' && f.column === fact.column)?.expected;
  if (fact.kind === 'geo_column_type') return 'geometry-typed';
  if (fact.kind === 'load_fails' || fact.kind === 'profile_ragged') return 'structure';
  if (fact.id.startsWith('agree:')) return 'profile-load-agreement';
  if (loadFailed && !fact.id.startsWith('profile')) return classes[0] ?? 'load-error';
  if (fact.kind.startsWith('geo')) return 'geometry';
  const columnMissing = observed === 'missing' || /column ".*" does not exist/.test(String(observed));
  if (['rows', 'columns', 'header', 'absent'].includes(fact.kind) || fact.id === 'profile:rows' || columnMissing) return structural ?? 'header-and-rows';
  if (fact.kind === 'nulls') return 'missing-values';
  if (typeOf === 'date') return 'dates';
  if (typeOf === 'number' || typeOf === 'integer') {
    if (classes.includes('locale-numbers') || classes.includes('exponent')) return 'locale-numbers';
    if (classes.includes('missing-values')) return 'missing-values';
    return classes.find((c) => ['declared-types', 'spreadsheets', 'geometry'].includes(c)) ?? 'numbers';
  }
  return classes[0] ?? 'other';
}

async function runProfile(path: string, opts: Partial<LoadFileOptions>): Promise<FileProfile> {
  const opened = await openSource({ name: path, path, open: async () => createReadStream(path, { highWaterMark: 256 * 1024 }) }, { sheet: opts.sheet, layer: opts.layer, member: opts.member });
  try {
    const entry = opened.entries[0];
    if (!entry) throw new Error(`${path}: nothing to profile`);
    const settings = { file: entry.name };
    return entry.kind === 'table' ? await profileTable(entry.table, settings) : await profileStream(await entry.open(), settings);
  } finally {
    await opened.dispose();
  }
}

async function check(pool: pg.Pool, ff: FactFile): Promise<Outcome[]> {
  const path = join(HERE, 'files', ff.file);
  const table = `${SCHEMA}.${ff.id.replace(/[^a-z0-9]+/g, '_').slice(0, 50)}`;
  const [schema, name] = table.split('.') as [string, string];
  const target = `${q(schema)}.${q(name)}`;
  const out: Outcome[] = [];
  const add = (fact: Fact, ok: boolean, observed: unknown, failedLoad = false) =>
    out.push({ file: ff.id, fact: fact.id, ok, expected: fact.expected, observed, class: ok ? '' : classify(ff, fact, failedLoad, observed) });

  let profile: FileProfile | undefined;
  let profileError: string | undefined;
  try {
    profile = await runProfile(path, ff.load);
  } catch (e) {
    profileError = message(e);
  }
  let loadError: string | undefined;
  try {
    await loadFile(pool, path, { ...ff.load, table, recreate: true });
  } catch (e) {
    loadError = message(e);
  }

  const columns = new Map<string, string>();
  let geomType: { type: string; srid: number } | undefined;
  if (!loadError) {
    const { rows } = await pool.query<{ name: string; type: string }>(
      `SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type FROM pg_attribute a
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [target],
    );
    for (const r of rows) columns.set(r.name, pgClass(r.type));
    const g = await pool.query<{ type: string; srid: number }>('SELECT type, srid FROM geometry_columns WHERE f_table_schema = $1 AND f_table_name = $2 AND f_geometry_column = $3', [schema, name, 'geom']);
    geomType = g.rows[0];
  }
  const attributes = [...columns.keys()].filter((c) => !(geomType && c === 'geom'));
  const one = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows[0] as Record<string, unknown>;

  const headerFact = ff.facts.find((f) => f.kind === 'header');
  const rowsFact = ff.facts.find((f) => f.kind === 'rows');
  // where the header's names are not settled (several header rows), columns are found by position
  const byPosition = headerFact?.unchecked === true;
  const columnOf = (fact: Fact) => (byPosition && fact.position !== undefined ? (attributes[fact.position] ?? `#${fact.position}`) : fact.column!);
  for (const fact of ff.facts) {
    if (fact.kind === 'load_fails') {
      const ok = loadError !== undefined && new RegExp(`\\bline ${fact.expected}\\b|:${fact.expected}(:|\\b)`).test(loadError);
      add(fact, ok, loadError ?? 'loaded without error');
      continue;
    }
    if (fact.kind === 'profile_ragged') {
      add(fact, profile?.raggedCount === fact.expected, profile ? profile.raggedCount : profileError);
      continue;
    }
    if (loadError) {
      add(fact, false, `load failed: ${loadError}`, true);
      continue;
    }
    try {
      const col = fact.column ? q(columnOf(fact)) : '';
      switch (fact.kind) {
        case 'rows': {
          const n = Number((await one(`SELECT count(*) AS n FROM ${target}`)).n);
          add(fact, n === fact.expected, n);
          break;
        }
        case 'columns':
          add(fact, attributes.length === fact.expected, attributes.length);
          break;
        case 'header':
          // unchecked: names the file does not settle (a header over several rows), kept for the profile mapping only
          if (!fact.unchecked) add(fact, JSON.stringify(attributes) === JSON.stringify(fact.expected), attributes);
          break;
        case 'absent': {
          const n = Number((await one(`SELECT count(*) AS n FROM ${target} t WHERE strpos(t::text, $1) > 0`, [fact.text])).n);
          add(fact, n === 0, `${n} rows hold it`);
          break;
        }
        case 'type': {
          const cls = columns.get(columnOf(fact)) ?? 'missing';
          add(fact, cls === fact.expected, cls);
          break;
        }
        case 'nulls': {
          const n = Number((await one(`SELECT count(*) AS n FROM ${target} WHERE ${col} IS NULL`)).n);
          add(fact, n === fact.expected, n);
          break;
        }
        case 'sum': {
          const v = Number((await one(`SELECT sum(${col})::float8 AS v FROM ${target}`)).v);
          add(fact, Math.abs(v - Number(fact.expected)) <= (fact.tolerance ?? 1e-6), v);
          break;
        }
        case 'value': {
          const cast = CAST[fact.type ?? 'text'] ?? 'text';
          const n = Number((await one(`SELECT count(*) AS n FROM ${target} WHERE ${col} = $1::${cast}`, [fact.expected])).n);
          add(fact, n === fact.count, `${n} rows equal`);
          break;
        }
        case 'geo_count': {
          const n = Number((await one(`SELECT count(geom) AS n FROM ${target}`)).n);
          add(fact, n === fact.expected, n);
          break;
        }
        case 'geo_srid': {
          const r = await pool.query(`SELECT DISTINCT ST_SRID(geom) AS s FROM ${target} WHERE geom IS NOT NULL`);
          const srids = r.rows.map((x) => Number(x.s));
          add(fact, srids.length === 1 && srids[0] === fact.expected && geomType?.srid === fact.expected, { values: srids, column: geomType?.srid });
          break;
        }
        case 'geo_family': {
          const r = await pool.query(`SELECT DISTINCT GeometryType(geom) AS t FROM ${target} WHERE geom IS NOT NULL`);
          const types = r.rows.map((x) => String(x.t));
          add(fact, types.length > 0 && types.every((t) => FAMILY[String(fact.expected)]?.includes(t)), types);
          break;
        }
        case 'geo_column_type':
          add(fact, !!geomType && (FAMILY[String(fact.expected)] ?? []).includes(geomType.type), geomType ? `geometry(${geomType.type}, ${geomType.srid})` : 'no geometry column');
          break;
        case 'geo_bbox': {
          const r = await one(`SELECT ST_XMin(e) AS x0, ST_YMin(e) AS y0, ST_XMax(e) AS x1, ST_YMax(e) AS y1 FROM (SELECT ST_Extent(ST_Transform(geom, ${Number(fact.srid)})) AS e FROM ${target}) s`);
          const got = [r.x0, r.y0, r.x1, r.y1].map(Number);
          const exp = fact.expected as number[];
          add(
            fact,
            got.every((v, i) => Math.abs(v - exp[i]!) <= (fact.tolerance ?? 1e-6)),
            got,
          );
          break;
        }
        case 'geo_area': {
          const v = Number((await one(`SELECT sum(ST_Area(ST_Transform(geom, ${Number(fact.srid)})))::float8 AS v FROM ${target}`)).v);
          const exp = Number(fact.expected);
          add(fact, Math.abs(v - exp) <= Math.abs(exp) * (fact.relative ?? 1e-6), v);
          break;
        }
        default:
          add(fact, false, `unknown fact kind ${fact.kind}`);
      }
    } catch (e) {
      add(fact, false, `error: ${message(e)}`);
    }
  }

  // the profile: its record count, each chosen column's type, and agreement with the load on every column
  if (headerFact && rowsFact) {
    const profileFact = (id: string, expected: unknown, column?: string, type?: string): Fact => ({ id, kind: 'profile', expected, column, type });
    const f = profileFact('profile:rows', rowsFact.expected);
    add(f, profile?.rowCount === rowsFact.expected, profile ? profile.rowCount : profileError);
    const headings = headerFact.source ?? [];
    const laundered = headerFact.expected as string[];
    const byHeading = new Map((profile?.columns ?? []).map((c) => [c.name.replace(/\uFEFF/g, '').trim(), profileClass(c)]));
    // a blank or repeated heading names no one column: found by position (the profile's columns are the file's, in order)
    const unnamed = (h: string) => h.trim() === '' || headings.filter((x) => x === h).length > 1;
    const profiledAt = (i: number, heading: string) => {
      const c = byPosition || unnamed(heading) ? profile?.columns[i] : undefined;
      return c ? profileClass(c) : byHeading.get(heading);
    };
    for (const t of ff.facts.filter((x) => x.kind === 'type')) {
      const got = profiledAt(t.position ?? laundered.indexOf(t.column!), t.heading!) ?? (profile ? 'missing' : profileError);
      add(profileFact(`profile:type:${t.column}`, t.expected, t.column, String(t.expected)), got === t.expected, got);
    }
    if (!loadError && profile) {
      headings.forEach((h, i) => {
        const name = byPosition ? (attributes[i] ?? laundered[i]!) : laundered[i]!;
        const loaded = columns.get(name);
        const profiled = profiledAt(i, h);
        // a column neither side has is the header fact's to report; one side lacking it disagrees
        if (!loaded && !profiled) return;
        const typeFact = ff.facts.find((x) => x.kind === 'type' && x.column === name);
        add(profileFact(`agree:${name}`, 'same class in profile and load', name, typeFact ? String(typeFact.expected) : undefined), loaded === profiled, {
          profile: profiled ?? 'missing',
          load: loaded ?? 'missing',
        });
      });
    }
  }
  return out;
}

const outcomes = new Map<string, Outcome[]>();

describe('real public files: profile and load against independently computed facts', () => {
  beforeAll(async () => {
    const pool = await getPool();
    await pool.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    for (const ff of factFiles) outcomes.set(ff.id, await check(pool, ff));
  }, 600_000);

  afterAll(() => {
    const all = [...outcomes.values()].flat();
    const passing = all.filter((o) => o.ok).length;
    const files = factFiles.length;
    const publishers = new Set(sources.filter((s) => outcomes.has(s.id)).map((s) => s.organisation)).size;
    const countries = new Set(sources.filter((s) => outcomes.has(s.id)).map((s) => s.country)).size;
    const byClass = new Map<string, number>();
    for (const o of all.filter((x) => !x.ok)) byClass.set(o.class, (byClass.get(o.class) ?? 0) + 1);
    if (process.env.ACCEPT_REPORT) {
      for (const o of all) console.log(`${o.ok ? 'pass' : 'FAIL'}  ${o.file}  ${o.fact}  expected ${JSON.stringify(o.expected)}  observed ${JSON.stringify(o.observed)}${o.ok ? '' : `  [${o.class}]`}`);
      console.log(
        `failing by class: ${[...byClass]
          .sort((a, b) => b[1] - a[1])
          .map(([c, n]) => `${c} ${n}`)
          .join(', ')}`,
      );
    }
    if (process.env.ACCEPT_UPDATE) {
      const next: Record<string, Known> = {};
      for (const o of all.filter((x) => !x.ok)) next[`${o.file}#${o.fact}`] = { expected: o.expected, observed: o.observed, class: o.class };
      writeFileSync(KNOWN_PATH, `${JSON.stringify(next, null, 1)}\n`);
    }
    console.log(
      `acceptance: ${files} files (${publishers} publishers, ${countries} countries), ${all.length} facts, ${passing} passing (${((100 * passing) / Math.max(1, all.length)).toFixed(1)}%), ${all.length - passing} known failures`,
    );
  });

  it('the stored facts are what facts/compute_facts.py computes from the files (Python standard library only)', () => {
    const out = execFileSync('python3', [join(HERE, 'facts', 'compute_facts.py'), '--check'], { encoding: 'utf8' });
    expect(out).toContain('fact files match');
  });

  it.each(factFiles.map((f) => [f.id]))('%s', (id) => {
    const got = outcomes.get(id) ?? [];
    const listed = new Set(Object.keys(known).filter((k) => k.startsWith(`${id}#`)));
    const unexpectedFailures = got.filter((o) => !o.ok && !listed.has(`${id}#${o.fact}`)).map((o) => ({ fact: o.fact, expected: o.expected, observed: o.observed }));
    const nowPassing = got.filter((o) => o.ok && listed.has(`${id}#${o.fact}`)).map((o) => `${o.fact} now holds: remove "${id}#${o.fact}" from known-failures.json`);
    const stale = [...listed].filter((k) => !got.some((o) => `${id}#${o.fact}` === k)).map((k) => `${k} is no longer checked: remove it from known-failures.json`);
    expect(got.length).toBeGreaterThan(0);
    expect({ unexpectedFailures, nowPassing, stale }).toEqual({ unexpectedFailures: [], nowPassing: [], stale: [] });
  });
});
