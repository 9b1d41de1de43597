/**
 * A declared `read.encoding` wins over the encoding guess: the staged and cleaned values are the
 * file's text in the declared encoding, and the load's report and its catalog profile say which
 * encoding was used and that it was declared. The expected text comes from Python's codecs.
 */
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { datasetLoads } from '../../functions/common/report.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

/** A price list written in ISO-8859-15 (Latin-9): € is byte 0xA4, œ 0xBD, Œ 0xBC, š 0xA8 — where Windows-1252 has ¤ ½ ¼ ¨. */
const TEXT = 'id;label;price\r\n1;Bœuf bourguignon;14,50 €\r\n2;ŒUVRE DE LA SEMAINE;9 €\r\n3;Crème brûlée;6,20 €\r\n4;Šaš - Café;3 €\r\n';

/** The file's bytes in `encoding`, and its labels and prices read back in `as`, by Python's codecs (not ours). */
function python(encode: string, decode: string): { bytes: Buffer; values: [string, string][] } {
  const script = `
import csv, io, json, sys
data = sys.stdin.read().encode(sys.argv[1])
rows = list(csv.reader(io.StringIO(data.decode(sys.argv[2]), newline=''), delimiter=';'))[1:]
print(json.dumps({"hex": data.hex(), "values": [[r[1], r[2]] for r in rows]}))
`;
  const out = JSON.parse(execFileSync('python3', ['-c', script, encode, decode], { input: TEXT, encoding: 'utf8' })) as { hex: string; values: [string, string][] };
  return { bytes: Buffer.from(out.hex, 'hex'), values: out.values };
}

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;

beforeAll(async () => {
  const columns = [{ name: 'id', type: 'integer' as const }, { name: 'label' }, { name: 'price' }];
  const { pipeline, pool } = await freshProject({
    project: 'it_encoding',
    suppliers: [{ name: 'city' }],
    datasets: [
      { name: 'guessed', source: { type: 'upload', supplier: 'city' }, clean: { columns } },
      { name: 'declared', source: { type: 'upload', supplier: 'city' }, read: { encoding: 'iso-8859-15' }, clean: { columns } },
    ],
  });
  bucket = await freshBucket('it-encoding');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline };
});

async function loadOf(dataset: 'guessed' | 'declared', file: Buffer, deps: StageDeps = stageDeps) {
  const staged = await stageObject(deps, await put(bucket, `incoming/city/${dataset}/prices-${Date.now()}.csv`, file));
  expect(staged).toMatchObject({ status: 'staged' });
  const loadId = (staged as { loadId: number }).loadId;
  expect(await cleanLoad(cleanDeps, loadId)).toMatchObject({ status: 'loaded' });
  const values = (await rows<{ label: string; price: string }>(stageDeps.pool, `SELECT label, price FROM it_encoding.${dataset} WHERE _load_id = $1 ORDER BY _source_line`, [loadId])).map((r) => [
    r.label,
    r.price,
  ]);
  const [load] = (await datasetLoads(stageDeps.pool, 'it_encoding', dataset, 1)).filter((l) => l.loadId === loadId);
  const [catalog] = await rows<{ structure: { encoding: string; encodingDeclared?: boolean } }>(stageDeps.pool, 'SELECT structure FROM etl.catalog WHERE load_id = $1', [loadId]);
  return { loadId, values, notes: load?.report?.readNotes ?? [], catalog: catalog?.structure };
}

describe('a declared read.encoding', () => {
  const latin9 = python('iso8859_15', 'iso8859_15');

  it('is guessed otherwise: the same bytes with no declaration read as Windows-1252 (¤ for €)', async () => {
    const { values, notes } = await loadOf('guessed', latin9.bytes);
    expect(values).toEqual(python('iso8859_15', 'cp1252').values);
    expect(notes.join('\n')).toMatch(/read as windows-1252, guessed from byte statistics/);
  });

  it('wins over the guess: the values are the text in ISO-8859-15, and the report and the profile say it was declared', async () => {
    const { values, notes, catalog } = await loadOf('declared', latin9.bytes);
    expect(values).toEqual(latin9.values);
    expect(values[0]).toEqual(['Bœuf bourguignon', '14,50 €']);
    expect(notes.join('\n')).not.toMatch(/guessed/);
    expect(notes).toContainEqual(expect.stringMatching(/read as iso-8859-15, the encoding the pipeline declares \(read\.encoding\)/));
    expect(catalog).toMatchObject({ encoding: 'iso-8859-15', encodingDeclared: true });
  });

  it('wins over the guess for a file staged in parts too', async () => {
    // the same records 400 times: about 50 kB, cut into parts of 4,000 bytes
    const records = latin9.bytes.subarray(latin9.bytes.indexOf(0x0a) + 1);
    const big = Buffer.concat([latin9.bytes, ...Array.from({ length: 400 }, () => records)]);
    const { values, notes } = await loadOf('declared', big, { ...stageDeps, partBytes: 4000, partsInProcess: { connections: 2 } });
    expect(values).toEqual(Array.from({ length: 401 }, () => latin9.values).flat());
    expect(notes).toContainEqual(expect.stringMatching(/read as iso-8859-15, the encoding the pipeline declares/));
  });
});
