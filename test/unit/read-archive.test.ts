import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_ARCHIVE_LIMITS, extractZip } from '../../functions/read/archive.ts';
import { openSource, sniff } from '../../functions/read/open.ts';
import { ReadError } from '../../functions/read/types.ts';
import { POINT, shapefileBytes, type TestShapefile } from '../helpers/shapefile-writer.ts';
import { declareSize, makeZip, markEncrypted, renameMember } from '../helpers/zip.ts';

const PRJ_WGS84 = 'GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'archive-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

const source = (path: string, name = 'incoming/acme/parks/parks.zip') => ({
  name,
  open: async () => (await import('node:fs')).createReadStream(path),
});

async function tempFolders(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((n) => n.startsWith('civic-etl-'));
}

describe('extracting a supplier zip', () => {
  it('writes members under the folder it is given and names them by their path in the archive', async () => {
    const path = await file('a.zip', await makeZip({ 'data/parks.csv': 'id,name\n1,Oak\n', 'readme.txt': 'hello' }));
    const into = join(dir, 'out');
    await (await import('node:fs/promises')).mkdir(into);

    const members = await extractZip(path, 'parks.zip', into);

    expect(members.map((m) => m.name)).toEqual(['data/parks.csv', 'readme.txt']);
    expect(members.every((m) => m.path.startsWith(into))).toBe(true);
    expect(members[0]!.size).toBe(14);
  });

  it('refuses a member whose path climbs out of the folder (zip slip), naming it', async () => {
    const zip = renameMember(await makeZip({ 'aa/evil.sh': 'rm -rf /' }), 'aa/evil.sh', '../evil.sh');
    const path = await file('slip.zip', zip);

    const error = await extractZip(path, 'slip.zip', dir).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ReadError);
    expect((error as Error).message).toMatch(/slip\.zip.*leaves the archive's folder \(zip slip\)/);
    expect(existsSync(join(dir, '..', 'evil.sh'))).toBe(false);
  });

  it('refuses an encrypted member', async () => {
    const path = await file('enc.zip', markEncrypted(await makeZip({ 'secret.csv': 'a,b\n1,2\n' })));

    await expect(extractZip(path, 'enc.zip', dir)).rejects.toThrow(/enc\.zip!secret\.csv: the member is encrypted/);
  });

  it('refuses a member that expands far beyond its compressed size (a zip bomb)', async () => {
    const path = await file('bomb.zip', await makeZip({ 'zeros.csv': Buffer.alloc(4 * 1024 * 1024) }));

    await expect(extractZip(path, 'bomb.zip', dir, { ...DEFAULT_ARCHIVE_LIMITS, maxRatio: 100 })).rejects.toThrow(
      /bomb\.zip!zeros\.csv: expands from \d+ to 4194304 bytes \(over 100× its compressed size\): refused as a likely zip bomb/,
    );
  });

  it('stops writing once an archive passes its total size limit', async () => {
    const path = await file('big.zip', await makeZip({ 'a.csv': Buffer.alloc(600_000, 0x61), 'b.csv': Buffer.alloc(600_000, 0x62) }));

    await expect(extractZip(path, 'big.zip', dir, { ...DEFAULT_ARCHIVE_LIMITS, maxTotalBytes: 1_000_000 })).rejects.toThrow(
      /big\.zip!b\.csv: declares 600000 bytes, beyond the 1000000-byte limit for one archive: refused/,
    );
  });

  it('refuses a member that is larger than the size it declares', async () => {
    const path = await file('liar.zip', declareSize(await makeZip({ 'a.csv': Buffer.alloc(50_000, 0x61) }), 1000));

    await expect(extractZip(path, 'liar.zip', dir)).rejects.toThrow(/liar\.zip!a\.csv/);
  });

  it('reads one archive inside another but refuses a third level', async () => {
    const inner = await makeZip({ 'x.csv': 'a\n1\n' });
    const middle = await makeZip({ 'inner.zip': inner });
    const outer = await makeZip({ 'middle.zip': middle });
    const ok = await file('ok.zip', middle);
    const deep = await file('deep.zip', outer);

    const members = await extractZip(ok, 'ok.zip', dir);
    const error = await extractZip(deep, 'deep.zip', dir).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );

    expect(members.map((m) => m.name)).toEqual(['inner.zip!x.csv']);
    expect(error.message).toMatch(/deep\.zip!middle\.zip!inner\.zip: an archive nested 2 deep; at most 1 level of archives \(or gzip streams\) in archives are read \(read\.limits\.maxDepth\)/);
  });

  it('says a file that only looks like a zip is not a readable archive', async () => {
    const path = await file('broken.zip', Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(100)]));

    await expect(extractZip(path, 'broken.zip', dir)).rejects.toThrow(/broken\.zip: not a readable zip archive/);
  });
});

describe('opening a supplier file', () => {
  it('tells formats apart by content before extension', () => {
    expect(sniff(Buffer.from('PK\u0003\u0004rest'), 'x.csv')).toBe('zip');
    expect(sniff(Buffer.from('SQLite format 3\u0000rest'), 'x.csv')).toBe('gpkg');
    expect(sniff(Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0]), 'x.csv')).toBe('xls');
    expect(sniff(Buffer.from('id;name\n1;Oak\n'), 'x.json.txt')).toBe('csv');
    expect(sniff(Buffer.from('not json at all'), 'broken.geojson')).toBe('geojson');
  });

  it('gives one CSV entry per CSV member and lists what it skipped', async () => {
    const path = await file('two.zip', await makeZip({ 'a.csv': 'x\n1\n', 'b.tsv': 'y\t2\n', 'notes.pdf': '%PDF' }));

    const opened = await openSource(source(path));
    try {
      expect(opened.entries.map((e) => [e.kind, e.name])).toEqual([
        ['csv', 'incoming/acme/parks/parks.zip!a.csv'],
        ['csv', 'incoming/acme/parks/parks.zip!b.tsv'],
      ]);
      expect(opened.skipped).toEqual(['notes.pdf: not a data file (by its extension)']);
    } finally {
      await opened.dispose();
    }
  });

  it('reads only the members the dataset asks for', async () => {
    const path = await file('two.zip', await makeZip({ 'data/a.csv': 'x\n1\n', 'data/b.csv': 'y\n2\n' }));

    const opened = await openSource(source(path), { member: 'b.csv' });
    await opened.dispose();

    expect(opened.entries.map((e) => e.name)).toEqual(['incoming/acme/parks/parks.zip!data/b.csv']);
  });

  it('says a shapefile needs its .dbf, and leaves no temporary folder behind', async () => {
    const before = await tempFolders();
    const path = await file('shp.zip', await makeZip({ 'parks.shp': Buffer.alloc(100), 'parks.prj': 'GEOGCS[]' }));

    const error = await openSource(source(path)).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );

    expect(error.message).toBe('incoming/acme/parks/parks.zip!parks.shp: the .dbf that goes with parks.shp is missing from the archive');
    expect(await tempFolders()).toEqual(before);
  });

  it('says an archive without a data file holds none, listing what it holds', async () => {
    const path = await file('docs.zip', await makeZip({ 'readme.pdf': '%PDF', 'logo.png': 'png' }));

    await expect(openSource(source(path))).rejects.toThrow(
      'incoming/acme/parks/parks.zip: no data file in the archive (readme.pdf: not a data file (by its extension); logo.png: not a data file (by its extension))',
    );
  });

  it('removes the temporary folder when the caller is done', async () => {
    const before = await tempFolders();
    const path = await file('one.zip', await makeZip({ 'a.csv': 'x\n1\n' }));

    const opened = await openSource(source(path));
    const during = await tempFolders();
    await opened.dispose();

    expect(during.length).toBe(before.length + 1);
    expect(await tempFolders()).toEqual(before);
  });

  it('asks for a bare .shp to be zipped with its parts', async () => {
    const shp = Buffer.alloc(100);
    shp.writeUInt32BE(9994, 0);
    const path = await file('lonely.shp', shp);

    await expect(openSource(source(path, 'incoming/acme/parks/lonely.shp'))).rejects.toThrow(
      'incoming/acme/parks/lonely.shp: a shapefile comes as several files (.shp, .dbf, .shx, .prj): upload them together in one .zip',
    );
  });
});

describe('reading a zipped shapefile without extracting it', () => {
  const fields = [
    { name: 'id', type: 'N', length: 5 },
    { name: 'note', type: 'C', length: 200 },
  ];
  const records = (n: number, note = 'x') => Array.from({ length: n }, (_, i) => ({ shape: { parts: [[[i, i]]] }, values: [i + 1, note] }));

  async function zipped(spec: TestShapefile, tamper: (zip: Buffer) => Buffer = (z) => z): Promise<string> {
    const parts = shapefileBytes(spec);
    const zip = await makeZip({ 'parks.shp': parts.shp, 'parks.shx': parts.shx, 'parks.dbf': parts.dbf, 'parks.prj': PRJ_WGS84 });
    return file('parks.zip', tamper(zip));
  }

  async function readAll(path: string, opts: Parameters<typeof openSource>[1] = {}): Promise<{ rows: number; files: string[] }> {
    const opened = await openSource({ ...source(path), path }, opts);
    try {
      const entry = opened.entries[0]!;
      if (entry.kind !== 'table') throw new Error('expected a table');
      let rows = 0;
      for await (const _ of entry.table.rows()) rows++;
      const files: string[] = [];
      for (const folder of await tempFolders()) files.push(...(await readdir(join(tmpdir(), folder), { recursive: true })).filter((f) => /\.(shp|dbf|prj|shx)$/.test(f)));
      return { rows, files };
    } finally {
      await opened.dispose();
    }
  }

  it('streams the parts from the archive: every record read, no part written to disk', async () => {
    const path = await zipped({ shapeType: POINT, fields, records: records(3000) });

    const { rows, files } = await readAll(path);

    expect(rows).toBe(3000);
    expect(files).toEqual([]);
  });

  it('still refuses a part that expands far beyond its compressed size (a zip bomb), before reading it', async () => {
    const path = await zipped({ shapeType: POINT, fields, records: records(20_000, ' ') });

    await expect(readAll(path, { limits: { maxRatio: 50 } })).rejects.toThrow(/parks\.zip!parks\.dbf: expands from \d+ to \d+ bytes \(over 50× its compressed size\): refused as a likely zip bomb/);
  });

  it('still refuses parts that declare more than the archive may hold', async () => {
    const path = await zipped({ shapeType: POINT, fields, records: records(3000) });

    await expect(readAll(path, { limits: { maxExpandedBytes: 100_000 } })).rejects.toThrow(/parks\.zip!parks\.(shp|dbf|shx): declares \d+ bytes, beyond the 100000-byte limit for one archive: refused/);
  });

  it('fails the read, naming the member, when a part inflates to more than it declares', async () => {
    const path = await zipped({ shapeType: POINT, fields, records: records(3000) }, (zip) => declareSize(zip, 50_000, 'parks.dbf'));

    const error = await readAll(path).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );

    expect(error).toBeInstanceOf(ReadError);
    expect(error.message).toBe('incoming/acme/parks/parks.zip!parks.dbf: the member is larger than its declared 50000 bytes: refused');
  });

  it('still refuses an encrypted part', async () => {
    const path = await zipped({ shapeType: POINT, fields, records: records(10) }, markEncrypted);

    await expect(readAll(path)).rejects.toThrow(/parks\.zip!parks\.(shp|shx|dbf|prj): the member is encrypted/);
  });
});
