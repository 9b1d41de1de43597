import { describe, expect, it } from 'vitest';
import { readJson, sniffJson, type JsonReadOptions } from '../../functions/read/json.ts';
import { NEED_MORE, skipValue } from '../../functions/read/json-scan.ts';
import { ReadError, type ReadRow, type ReadTable } from '../../functions/read/types.ts';
import { atLineColumn, lineColumn } from '../helpers/text-position.ts';

/** A source that gives `text` in chunks of `size` bytes, and counts how often it was opened. */
function source(text: string | Buffer, size = 7) {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const open = Object.assign(
    async () => {
      open.opens++;
      return (async function* () {
        for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
      })();
    },
    { opens: 0 },
  );
  return open;
}

async function rowsOf(table: ReadTable): Promise<ReadRow[]> {
  const rows: ReadRow[] = [];
  for await (const row of table.rows()) rows.push(row);
  return rows;
}

/** Each table of the file as `{ name, columns, rows }`, rows as objects keyed by column. */
async function read(text: string | Buffer, opts: JsonReadOptions = {}, size = 7) {
  const tables = await readJson(source(text, size), 'incoming/acme/data.json', opts);
  const out = [];
  for (const t of tables) {
    const rows = await rowsOf(t);
    out.push({
      name: t.name,
      format: t.format,
      unit: t.unit,
      columns: [...t.columns],
      warnings: t.warnings,
      rows: rows.map((r): Record<string, string | number | null> => ({ position: r.position, ...Object.fromEntries(t.columns.map((c, i) => [c, r.values[i] ?? null])) })),
    });
  }
  return out;
}

/** The ReadError a read ends with, and the rows that came out before it. */
async function failure(text: string | Buffer, opts: JsonReadOptions = {}, size = 7): Promise<{ error: ReadError; rows: ReadRow[] }> {
  const rows: ReadRow[] = [];
  try {
    for (const t of await readJson(source(text, size), 'incoming/acme/data.json', opts)) for await (const r of t.rows()) rows.push(r);
  } catch (error) {
    expect(error).toBeInstanceOf(ReadError);
    return { error: error as ReadError, rows };
  }
  throw new Error('expected a ReadError');
}

describe('sniffJson', () => {
  it('tells a JSON array, a JSON object, NDJSON and GeoJSON apart by their first bytes', () => {
    expect(sniffJson(Buffer.from('\uFEFF  [{"a":1},{"a":2}]'))).toBe('json');
    expect(sniffJson(Buffer.from('{"data":[{"a":1}],"count":1}'))).toBe('json');
    expect(sniffJson(Buffer.from('{"a":1}\n{"a":2}\n'))).toBe('ndjson');
    expect(sniffJson(Buffer.from('{"type":"FeatureCollection","features":[{"type":"Feature"'))).toBe('geojson');
    expect(sniffJson(Buffer.from('{"features":[{"type":"Feature","properties":{}}],"type":"FeatureCollection"}'))).toBe('geojson');
    expect(sniffJson(Buffer.from('{"type":"Feature","properties":{"a":1},"geometry":null}\n{"type":"Feature","properties":{"a":2},"geometry":null}\n'))).toBe('geojson');
    expect(sniffJson(Buffer.from('{"type":"Point","coordinates":[1,2]}'))).toBe('geojson');
  });

  it('does not take an Esri JSON export or an event log with a "type" for GeoJSON', () => {
    expect(sniffJson(Buffer.from('{"geometryType":"esriGeometryPoint","features":[{"attributes":{"a":1},"geometry":{"x":1,"y":2}}]}'))).toBe('json');
    expect(sniffJson(Buffer.from('{"type":"Point","user":"ann"}\n{"type":"Line","user":"bob"}\n'))).toBe('ndjson');
  });

  it('says a CSV, a scalar or broken JSON is not JSON', () => {
    expect(sniffJson(Buffer.from('id,name\n1,"[a]"\n'))).toBeUndefined();
    expect(sniffJson(Buffer.from('42'))).toBeUndefined();
    expect(sniffJson(Buffer.from('[1, 2,, 3]'))).toBeUndefined();
    expect(sniffJson(Buffer.from('{"a":1} trailing'))).toBeUndefined();
    expect(sniffJson(Buffer.alloc(0))).toBeUndefined();
  });

  it('answers from a head that ends in the middle of the first value', () => {
    const head = Buffer.from(`[${Array.from({ length: 500 }, (_, i) => `{"n":${i}}`).join(',')}`).subarray(0, 1000);

    expect(sniffJson(head)).toBe('json');
  });
});

describe('readJson: a top-level array', () => {
  const text = `[
    {"id": 1, "name": "Parc [Nord] \\"A\\"", "score": 1.10, "big": 12345678901234567890, "ok": true, "note": null},
    {"id": 2, "name": "Zoë ✓ 😀 \\u00e9\\ud83d\\ude00", "score": -0.5e-3, "ok": false},
    "a bare string", 42, null, [1, 2]
  ]`;

  it('gives one row per element, the same whatever the chunk size', async () => {
    const whole = await read(text, {}, 1 << 20);
    for (const size of [1, 2, 7, 64]) expect(await read(text, {}, size)).toEqual(whole);

    const [table] = whole;
    expect(table).toMatchObject({ name: 'incoming/acme/data.json', format: 'json', unit: 'element', columns: ['id', 'name', 'score', 'big', 'ok', 'note', 'value'], warnings: [] });
    expect(table!.rows.map((r) => r.position)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('keeps numbers as written, decodes strings, and writes booleans and null as text and NULL', async () => {
    const [table] = await read(text);

    expect(table!.rows[0]).toMatchObject({ id: '1', name: 'Parc [Nord] "A"', score: '1.10', big: '12345678901234567890', ok: 'true', note: null });
    expect(table!.rows[1]).toMatchObject({ name: 'Zoë ✓ 😀 é😀', score: '-0.5e-3', ok: 'false', note: null });
  });

  it('puts an element that is not an object in a column named value', async () => {
    const [table] = await read(text);

    expect(table!.rows.slice(2).map((r) => r.value)).toEqual(['a bare string', '42', null, '[1,2]']);
    expect(table!.rows[2]).toMatchObject({ id: null, name: null });
  });

  it('refuses a field name holding NUL, naming the line and column where the key starts (a NUL in a value before it is no key)', async () => {
    const lines = ['[', '  {"id": 1, "note": "x\\u0000y"},', '  {"id": 2,', '   "a\\u0000b": 2}', ']'];
    const text = lines.join('\n');

    const error = await read(text).then(
      () => new Error('no error'),
      (e: unknown) => e as ReadError,
    );

    expect(error).toBeInstanceOf(ReadError);
    expect(error.message).toBe(`incoming/acme/data.json: line 4, column ${lines[3]!.indexOf('"a') + 1}: field 3 is named "a\\u0000b", with a NUL character, which no PostgreSQL name can hold`);
    expect((error as ReadError).position).toMatchObject({ line: 4, offset: text.indexOf('"a\\u0000b') });
  });

  it('names the line of a NUL key in NDJSON too, and in a nested object', async () => {
    const text = '{"id":1}\n{"id":2,"sub":{"k\\u0000":1}}\n';

    const error = await read(text, { lines: true }).then(
      () => new Error('no error'),
      (e: unknown) => e as ReadError,
    );

    expect(error.message).toBe(`incoming/acme/data.json: line 2, column ${'{"id":2,"sub":{'.length + 1}: field 2 is named "sub.k\\u0000", with a NUL character, which no PostgreSQL name can hold`);
  });

  it('reads a document that is just null as no record: no row, no column (a bare number is one row)', async () => {
    const [nothing] = await read('  null\n');
    const [number] = await read('42');

    expect(nothing).toMatchObject({ columns: [], rows: [] });
    expect(number).toMatchObject({ columns: ['value'], rows: [{ value: '42' }] });
  });

  it('decodes a multi-byte character split across chunks', async () => {
    const bytes = Buffer.from('[{"city":"Łódź – Köln"}]');

    for (const size of [1, 2, 3]) expect((await read(bytes, {}, size))[0]!.rows[0]!.city).toBe('Łódź – Köln');
  });

  it('fails on a byte that is not UTF-8, naming its offset, whatever the chunk size (never U+FFFD in the data)', async () => {
    const head = Buffer.from('[{"id":1,"city":"Łódź"},{"id":2,"city":"Caf');
    const latin1 = Buffer.concat([head, Buffer.from([0xe9]), Buffer.from('"}]')]); // "Café" in Latin-1
    const cut = Buffer.concat([head, Buffer.from([0xc3])]); // a sequence the end of the file cuts
    for (const size of [1, 3, 7, 4096]) {
      const { error } = await failure(latin1, {}, size);
      expect(error.message).toBe(`incoming/acme/data.json: byte ${head.length} (0xe9) is not UTF-8; JSON is UTF-8 (RFC 8259): export the file as UTF-8${atLineColumn(head, head.length)}`);
      expect(error.position.offset).toBe(head.length);
      expect((await failure(cut, {}, size)).error.message).toBe(
        `incoming/acme/data.json: byte ${head.length} (0xc3) is not UTF-8; JSON is UTF-8 (RFC 8259): export the file as UTF-8${atLineColumn(head, head.length)}`,
      );
    }
  });

  it('reads an empty array as a table without rows', async () => {
    const [table] = await read(' [ ] ');

    expect(table).toMatchObject({ columns: [], rows: [] });
  });
});

describe('readJson: flattening', () => {
  const nested = JSON.stringify([{ id: 1, address: { city: 'Lyon', geo: { lat: 45.76, lon: 4.84, src: { by: 'gps', at: { day: 1 } } } } }]);

  it('flattens nested objects to dotted names three levels down, and keeps deeper objects as JSON text', async () => {
    const [table] = await read(nested);

    expect(table!.columns).toEqual(['id', 'address.city', 'address.geo.lat', 'address.geo.lon', 'address.geo.src.by', 'address.geo.src.at']);
    expect(table!.rows[0]).toMatchObject({ 'address.geo.src.by': 'gps', 'address.geo.src.at': '{"day":1}' });
  });

  it('flattens as deep as flattenDepth says', async () => {
    const [none] = await read(nested, { flattenDepth: 0 });
    const [one] = await read(nested, { flattenDepth: 1 });

    expect(none!.columns).toEqual(['id', 'address']);
    expect(none!.rows[0]!.address).toBe('{"city":"Lyon","geo":{"lat":45.76,"lon":4.84,"src":{"by":"gps","at":{"day":1}}}}');
    expect(one!.columns).toEqual(['id', 'address.city', 'address.geo']);
  });

  it('keeps arrays as compact JSON text by default, numbers and escapes as written', async () => {
    const [table] = await read('[{"tags": [ "a b", "c\\"d" ],\n "pts": [ [1.50, 2], {"x": [ ] } ] }]');

    expect(table!.rows[0]).toMatchObject({ tags: '["a b","c\\"d"]', pts: '[[1.50,2],{"x":[]}]' });
  });

  it('keeps key names as written, dots and spaces included', async () => {
    const [table] = await read('[{"Code postal": "69001", "a.b": 1, "ünï": {"cödé": 2}}]');

    expect(table!.columns).toEqual(['Code postal', 'a.b', 'ünï.cödé']);
  });

  it('appends a key first seen late to the columns while rows() runs', async () => {
    const elements = Array.from({ length: 1500 }, (_, i) => (i === 1499 ? { id: i + 1, late: 'yes' } : { id: i + 1 }));
    const tables = await readJson(source(JSON.stringify(elements), 4096), 'data.json');
    const table = tables[0]!;

    expect(table.columns).toEqual(['id']);
    const rows = await rowsOf(table);
    expect(table.columns).toEqual(['id', 'late']);
    expect(rows[0]!.values).toEqual(['1']);
    expect(rows[1499]!.values).toEqual(['1500', 'yes']);
  });
});

describe('readJson: NDJSON', () => {
  it('gives one row per line, numbered by line, skipping blank lines, with CRLF or LF', async () => {
    const text = '\uFEFF{"a":1}\r\n{"a":2,"b":[1,2]}\r\n\r\n  \n{"b":"x"}';

    const whole = await read(text, {}, 1 << 20);
    expect(await read(text, {}, 1)).toEqual(whole);
    expect(whole[0]).toMatchObject({ format: 'ndjson', unit: 'line', columns: ['a', 'b'] });
    expect(whole[0]!.rows).toEqual([
      { position: 1, a: '1', b: null },
      { position: 2, a: '2', b: '[1,2]' },
      { position: 5, a: null, b: 'x' },
    ]);
  });

  it('reads NDJSON whose first line is longer than the head used to sniff it', async () => {
    const long = JSON.stringify({ text: 'x'.repeat(100_000) });

    const [table] = await read(`${long}\n{"text":"short"}\n`, {}, 8192);

    expect(table).toMatchObject({ format: 'ndjson' });
    expect(table!.rows.map((r) => String(r.text).length)).toEqual([100_000, 5]);
  });
});

describe('readJson: a top-level object', () => {
  it('reads the one array of objects it holds, and says so', async () => {
    const [table] = await read('{"count": 2, "results": [{"a": 1}, {"a": 2}], "next": null}');

    expect(table!.rows).toEqual([
      { position: 1, a: '1' },
      { position: 2, a: '2' },
    ]);
    expect(table!.warnings).toEqual(['incoming/acme/data.json: the file is one object; its rows are the 2 elements of its array "results"; its other members are not read ("count", "next")']);
  });

  it('reads an object with no array of objects as one row', async () => {
    const [table] = await read('{"name": "x", "tags": ["a"], "meta": {"v": 2}}');

    expect(table!.rows).toEqual([{ position: 1, name: 'x', tags: '["a"]', 'meta.v': '2' }]);
  });

  it('reads an object with two arrays of objects as one row, and says how to get both', async () => {
    const [table] = await read('{"a": [{"x": 1}], "b": [{"y": 2}]}');

    expect(table!.rows).toEqual([{ position: 1, a: '[{"x":1}]', b: '[{"y":2}]' }]);
    expect(table!.warnings[0]).toMatch(/2 arrays of objects \("a", "b"\): read as one row; read\.arrays: explode/);
  });
});

describe('readJson: arrays exploded into child tables', () => {
  const orders = JSON.stringify([
    {
      id: 'A',
      tags: ['x', 'y'],
      lines: [
        { sku: 'p1', qty: 2, parts: [{ n: 1 }, { n: 2 }] },
        { sku: 'p2', qty: 1 },
      ],
    },
    { id: 'B', tags: [], lines: [{ sku: 'p3', qty: 5, parts: [{ n: 3 }] }] },
  ]);

  it('gives each array path a child table with _parent, _index and the element fields, parents first', async () => {
    const tables = await read(orders, { arrays: 'explode' });

    expect(tables.map((t) => [t.name, t.columns])).toEqual([
      ['incoming/acme/data.json', ['id']],
      ['incoming/acme/data.json#tags', ['_parent', '_index', 'value']],
      ['incoming/acme/data.json#lines', ['_parent', '_index', 'sku', 'qty']],
      ['incoming/acme/data.json#lines.parts', ['_parent', '_index', 'n']],
    ]);
    expect(tables[1]!.rows).toEqual([
      { position: 1, _parent: '1', _index: '0', value: 'x' },
      { position: 2, _parent: '1', _index: '1', value: 'y' },
    ]);
    expect(tables[2]!.rows).toEqual([
      { position: 1, _parent: '1', _index: '0', sku: 'p1', qty: '2' },
      { position: 2, _parent: '1', _index: '1', sku: 'p2', qty: '1' },
      { position: 3, _parent: '2', _index: '0', sku: 'p3', qty: '5' },
    ]);
    // _parent of a part is the position of its line in the lines table
    expect(tables[3]!.rows).toEqual([
      { position: 1, _parent: '1', _index: '0', n: '1' },
      { position: 2, _parent: '1', _index: '1', n: '2' },
      { position: 3, _parent: '3', _index: '0', n: '3' },
    ]);
  });

  it('reads the file again for each table, so memory does not hold one table while another is read', async () => {
    const open = source(orders, 5);
    const tables = await readJson(open, 'orders.json', { arrays: 'explode' });
    const before = open.opens;

    for (const t of tables) await rowsOf(t);

    expect(open.opens - before).toBe(tables.length);
  });

  it('names a child column that clashes with _parent or _index _parent_2', async () => {
    const [, child] = await read('[{"items": [{"_index": "mine", "v": 1}]}]', { arrays: 'explode' });

    expect(child!.columns).toEqual(['_parent', '_index', '_index_2', 'v']);
    expect(child!.rows[0]).toMatchObject({ _index: '0', _index_2: 'mine' });
  });
});

describe('readJson: bad input', () => {
  it('names the element and the byte where an element is broken', async () => {
    const text = '[{"a":1},{"a":2},{"a":3 "b":4},{"a":5}]';
    const { error } = await failure(text);

    expect(error.message).toBe(`incoming/acme/data.json: element 3 (from byte 17) is not valid JSON: expected ',' or '}', found '"' at byte 24${atLineColumn(text, 24)}`);
    expect(error.position).toMatchObject({ file: 'incoming/acme/data.json', offset: 24 });
  });

  it('yields the rows before a broken element past the first ones, then fails', async () => {
    const good = Array.from({ length: 3000 }, (_, i) => `{"a":${i + 1}}`).join(',');
    const { error, rows } = await failure(`[${good},{"a":3001,}]`, {}, 4096);

    expect(error.message).toMatch(/^incoming\/acme\/data\.json: element 3001 \(from byte \d+\) is not valid JSON: expected a member name in double quotes, found '}' at byte \d+ \(line 1, column \d+\)$/);
    expect(rows).toHaveLength(3000);
    expect(rows.at(-1)).toEqual({ values: ['3000'], position: 3000 });
  });

  it('says where a truncated file ends', async () => {
    const text = '[{"a":1},{"a":2},{"a":';
    const { error } = await failure(text);

    expect(error.message).toBe(`incoming/acme/data.json: the file ends at byte 22 inside element 3, which starts at byte 17: it is truncated or not complete JSON${atLineColumn(text, 22)}`);
    expect(error.position.offset).toBe(22);
  });

  it('names the NDJSON line that is not JSON, with its column', async () => {
    const { error } = await failure('{"a":1}\n{"a":2}\n{"a":3} oops\n{"a":4}\n');

    expect(error.message).toBe("incoming/acme/data.json: line 3 is not valid JSON: unexpected 'o' after the JSON value at column 9 (byte 24)");
    expect(error.position).toMatchObject({ line: 3, offset: 24 });
    expect((await failure('{"a":1}\nnot json\n')).error.message).toBe("incoming/acme/data.json: line 2 is not valid JSON: unexpected 'o' in what looks like 'null' at column 2 (byte 9)");
  });

  it('counts the column in characters, as an editor does: after accents, and after a byte-order mark', async () => {
    const ndjson = '{"a":1}\n{"a":"ééé",,}\n';
    expect((await failure(ndjson)).error.message).toBe(
      `incoming/acme/data.json: line 2 is not valid JSON: expected a member name in double quotes, found ',' at column ${lineColumn(ndjson, Buffer.byteLength('{"a":1}\n{"a":"ééé",')).column} (byte ${Buffer.byteLength('{"a":1}\n{"a":"ééé",')})`,
    );
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[{"a":,}]')]);
    const { error } = await failure(bom, {}, 2);
    expect(error.message.endsWith(' (line 1, column 7)')).toBe(true); // the ',' is the 7th character an editor shows (the BOM is none)
  });

  it('names an NDJSON line that ends inside its value', async () => {
    const { error } = await failure('{"a":1}\n{"a":[1,2\n{"a":3}\n');

    expect(error.message).toMatch(/^incoming\/acme\/data\.json: line 2 is not valid JSON: the line ends before the JSON value does at column 10 \(byte 17\)$/);
  });

  it('fails fast on an element larger than the limit, without reading the rest of the file', async () => {
    // a JSON file that is one huge string: endless 'x's after an opening quote
    let pulled = 0;
    const endless = async () =>
      (async function* () {
        yield Buffer.from('[{"blob": "');
        const chunk = Buffer.alloc(4096, 0x78);
        for (;;) {
          pulled += chunk.length;
          yield chunk;
        }
      })();

    const error = await readJson(endless, 'huge.json', { maxElementBytes: 100_000 }).then(
      async (tables) => rowsOf(tables[0]!),
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(ReadError);
    expect((error as ReadError).message).toBe('huge.json: element 1 (from byte 1) is larger than 100000 bytes, the limit for one element; is the file what it claims to be? (line 1, column 2)');
    expect(pulled).toBeLessThan(4 * 100_000);
  });

  it('says when the file is empty, has text after the value, or is UTF-16', async () => {
    expect((await failure('  \n')).error.message).toBe('incoming/acme/data.json: no JSON value in the file (it is empty or only whitespace)');
    expect((await failure('[1, 2] [3]')).error.message).toBe(`incoming/acme/data.json: not valid JSON at byte 7: unexpected '[' after the end of the JSON value${atLineColumn('[1, 2] [3]', 7)}`);
    expect((await failure(Buffer.from('\uFEFF[{"a":1}]', 'utf16le'))).error.message).toMatch(/UTF-16 text; JSON must be UTF-8/);
  });

  it('rejects bytes that are not UTF-8, inside strings as outside them, naming the byte', async () => {
    const inside = Buffer.concat([Buffer.from('[{"a":"x'), Buffer.from([0xff]), Buffer.from('y"}]')]);
    const outside = Buffer.concat([Buffer.from('[{"a":1}, '), Buffer.from([0xff]), Buffer.from(']')]);

    expect((await failure(inside)).error.message).toBe('incoming/acme/data.json: byte 8 (0xff) is not UTF-8; JSON is UTF-8 (RFC 8259): export the file as UTF-8 (line 1, column 9)');
    expect((await failure(outside)).error.message).toBe('incoming/acme/data.json: byte 10 (0xff) is not UTF-8; JSON is UTF-8 (RFC 8259): export the file as UTF-8 (line 1, column 11)');
  });
});

describe('skipValue (the scanner under every reader)', () => {
  /** A small random JSON text, pretty or compact. */
  function randomJson(r: () => number, depth = 0): string {
    const k = r();
    if (depth > 3 || k < 0.3) {
      const pick = [() => String(Math.round((r() - 0.5) * 1e6) / 100), () => JSON.stringify(`s${'"\\[]{},:'[Math.floor(r() * 9)]}é`), () => 'true', () => 'null', () => '-0.5e+3'];
      return pick[Math.floor(r() * pick.length)]!();
    }
    const sp = r() < 0.5 ? '' : ' \n';
    const n = Math.floor(r() * 4);
    if (k < 0.65) return `[${sp}${Array.from({ length: n }, () => randomJson(r, depth + 1)).join(`,${sp}`)}${sp}]`;
    return `{${sp}${Array.from({ length: n }, (_, i) => `"k${i}"${sp}:${sp}${randomJson(r, depth + 1)}`).join(`,${sp}`)}${sp}}`;
  }

  function seeded(seed: number): () => number {
    let s = seed;
    return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  }

  function scans(text: string): boolean {
    const b = Buffer.from(`${text}\n`);
    try {
      return skipValue(b, 0, b.length) === Buffer.byteLength(text);
    } catch (error) {
      if (error === NEED_MORE) return false;
      return false;
    }
  }

  it('accepts exactly what JSON.parse accepts, on random documents and random one-byte damage to them', () => {
    const r = seeded(7);
    let damaged = 0;
    for (let n = 0; n < 3000; n++) {
      const doc = randomJson(r);
      expect(scans(doc)).toBe(true);
      const at = Math.floor(r() * doc.length);
      const bad = `${doc.slice(0, at)}${',:[]{}"x1 '[Math.floor(r() * 10)]}${doc.slice(at + 1)}`;
      let valid = true;
      try {
        JSON.parse(bad);
      } catch {
        valid = false;
        damaged++;
      }
      // a value may be followed by whitespace and end early (e.g. "1 " for "12"): compare on whole values
      if (!/^\s|\s$/.test(bad)) expect([bad, scans(bad)]).toEqual([bad, valid]);
    }
    expect(damaged).toBeGreaterThan(1000);
  });
});

describe('openSource: an NDJSON file of one line', () => {
  // an Ed-Fi incremental run stores a resource's one changed record as a one-line .ndjson.gz part
  const record = { id: 'a1', sexDescriptor: 'uri://ed-fi.org/SexDescriptor#Male', races: [{ raceDescriptor: 'uri://ed-fi.org/RaceDescriptor#White' }] };

  it.each(['raw/seoa/20261207T060000Z/part-00001.ndjson.gz', 'incoming/acme/seoa/changes.jsonl'])('is one record with its array, not an object whose array holds the rows (%s)', async (name) => {
    const { openSource } = await import('../../functions/read/open.ts');
    const { gzipSync } = await import('node:zlib');
    const bytes = Buffer.from(`${JSON.stringify(record)}\n`);
    const body = name.endsWith('.gz') ? gzipSync(bytes) : bytes;
    const opened = await openSource({ name, open: async () => source(body, 64)() }, { arrays: 'explode' });
    try {
      const tables = opened.entries.map((e) => (e.kind === 'table' ? e.table : undefined)).filter((t) => t !== undefined);
      expect(tables.map((t) => [t.format, t.name.slice(name.length)])).toEqual([
        ['ndjson', ''],
        ['ndjson', expect.stringContaining('races')],
      ]);
      const [main, races] = await Promise.all(tables.map(rowsOf));
      expect(tables[0]!.columns).toEqual(expect.arrayContaining(['id', 'sexDescriptor']));
      expect(main).toHaveLength(1);
      expect(main![0]!.values[tables[0]!.columns.indexOf('id')]).toBe('a1');
      expect(races).toHaveLength(1);
    } finally {
      await opened.dispose();
    }
  });

  it('stays one object whose array holds the rows when the file is named .json', async () => {
    const [table] = await read(JSON.stringify({ meta: 'x', rows: [{ a: 1 }, { a: 2 }] }));
    expect(table).toMatchObject({ format: 'json', columns: ['a'] });
  });
});
