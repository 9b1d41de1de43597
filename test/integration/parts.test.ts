import type { Readable } from 'node:stream';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { openRange, planParts, type PartMessage, type RangeOpener } from '../../functions/stage/parts.ts';
import { stageObject, stageObjectPart, type CleanMessage, type StageDeps } from '../../functions/stage/stage-object.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;
let sent: PartMessage[];
let cleaned: CleanMessage[];

beforeAll(async () => {
  const { pipeline, pool } = await freshProject({
    project: 'it_parts',
    suppliers: [{ name: 'city' }],
    datasets: [
      { name: 'whole', source: { type: 'upload', supplier: 'city' }, clean: { columns: [{ name: 'id', type: 'integer' }, { name: 'note' }, { name: 'amount', type: 'numeric' }] } },
      { name: 'split', source: { type: 'upload', supplier: 'city' }, clean: { columns: [{ name: 'id', type: 'integer' }, { name: 'note' }, { name: 'amount', type: 'numeric' }] } },
    ],
  });
  bucket = await freshBucket('it-parts');
  stageDeps = {
    pool,
    s3: s3Client(),
    pipeline,
    notifyClean: async (m) => void cleaned.push(m),
    enqueueParts: async (m) => void sent.push(...m),
  };
  cleanDeps = { pool, pipeline };
});
afterEach(() => {
  delete stageDeps.partBytes;
});

/** A CSV whose notes hold quoted line breaks, quotes, delimiters and blank lines. */
function tricky(records: number): string {
  const lines = ['id,note,amount'];
  for (let i = 1; i <= records; i++) {
    const note = i % 3 === 0 ? `"line one\nline two, with ""quotes""\n\nand a blank line above"` : i % 5 === 0 ? '"a, b"' : `plain ${i}`;
    lines.push(`${i},${note},${(i * 1.25).toFixed(2)}`);
    if (i % 17 === 0) lines.push('');
  }
  return `${lines.join('\r\n')}\r\n`;
}

async function stagingRows(table: string) {
  return rows(stageDeps.pool, `SELECT id, note, amount, _source_line::int AS line FROM ${table} ORDER BY _source_line`);
}

describe('a file staged in parts', () => {
  it('cuts only at record boundaries, never inside a quoted line break', async () => {
    const text = Buffer.from(tricky(200));
    const start = text.indexOf('\n') + 1;

    for (const size of [1, 7, 50, 333, 10_000]) {
      const chunks = [text.subarray(0, 100), text.subarray(100, 101), text.subarray(101)];
      const parts = await planParts(
        (async function* () {
          yield* chunks;
        })(),
        { start, firstLine: 2, size, quote: '"', total: text.length },
      );

      expect(parts[0]!.start).toBe(start);
      expect(parts.at(-1)!.end).toBe(text.length);
      for (const [i, p] of parts.entries()) {
        if (i > 0) expect(p.start).toBe(parts[i - 1]!.end);
        // every part starts a record: what comes before it has balanced quotes
        const before = text.subarray(0, p.start).toString();
        expect((before.match(/"/g) ?? []).length % 2).toBe(0);
        expect(p.firstLine).toBe(before.split('\n').length);
      }
      if (size === 10_000) expect(parts).toHaveLength(1);
    }
  });

  it('gives the same rows, row for row, as the file staged whole — whatever order the parts come in, and twice', async () => {
    const csv = tricky(300);
    cleaned = [];
    sent = [];
    const whole = await stageObject({ ...stageDeps, enqueueParts: undefined }, await put(bucket, 'incoming/city/whole/data.csv', csv));
    expect(whole.status).toBe('staged');
    const wholeTable = (await rows<{ staging_table: string }>(stageDeps.pool, 'SELECT staging_table FROM etl.loads WHERE id = $1', [(whole as { loadId: number }).loadId]))[0]!.staging_table;

    stageDeps.partBytes = 300;
    cleaned = [];
    const split = await stageObject(stageDeps, await put(bucket, 'incoming/city/split/data.csv', csv));
    expect(split).toMatchObject({ status: 'split' });
    const loadId = (split as { loadId: number }).loadId;
    expect(sent.length).toBeGreaterThan(10);

    // the parts arrive shuffled, one of them twice; the load stays invisible until the last
    const order = [...sent].reverse();
    order.splice(3, 0, sent[2]!);
    const outcomes = [];
    for (const [i, m] of order.entries()) {
      outcomes.push(await stageObjectPart(stageDeps, m));
      if (i < order.length - 1) {
        expect((await rows(stageDeps.pool, 'SELECT status FROM etl.loads WHERE id = $1', [loadId]))[0]).toEqual({ status: 'received' });
        expect(cleaned).toEqual([]);
      }
    }

    expect(outcomes.filter((o) => o.status === 'duplicate')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'staged' && o.complete)).toHaveLength(1);
    expect(cleaned).toEqual([{ loadId }]);
    const load = (await rows<{ status: string; rows_read: number; staging_table: string }>(stageDeps.pool, 'SELECT status, rows_read::int, staging_table FROM etl.loads WHERE id = $1', [loadId]))[0]!;
    expect(load).toMatchObject({ status: 'staged', rows_read: 300 });
    expect(await stagingRows(load.staging_table)).toEqual(await stagingRows(wholeTable));

    const outcome = await cleanLoad(cleanDeps, loadId);
    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 300 });
    expect(await rows(stageDeps.pool, 'SELECT count(*)::int AS n, sum(amount)::text AS total FROM it_parts.split')).toEqual([{ n: 300, total: ((1.25 * 300 * 301) / 2).toFixed(2) }]);
  });

  it("skips a line repeating the header inside a later part, and says so among the load's warnings", async () => {
    const lines = ['id,note,amount'];
    for (let i = 1; i <= 60; i++) {
      lines.push(`${i},plain ${i},${i}.5`);
      if (i === 45) lines.push('id,note,amount'); // a second export appended to the first
    }
    stageDeps.partBytes = 200;
    sent = [];
    cleaned = [];
    const split = await stageObject(stageDeps, await put(bucket, 'incoming/city/split/appended.csv', `${lines.join('\n')}\n`));
    expect(split).toMatchObject({ status: 'split' });
    const loadId = (split as { loadId: number }).loadId;
    for (const m of sent) await stageObjectPart(stageDeps, m);
    const load = (
      await rows<{ status: string; rows_read: number; warnings: string[] }>(stageDeps.pool, `SELECT status, rows_read::int, detected->'warnings' AS warnings FROM etl.loads WHERE id = $1`, [loadId])
    )[0]!;
    expect(load).toMatchObject({ status: 'staged', rows_read: 60 });
    expect(load.warnings).toContain('incoming/city/split/appended.csv: 1 line repeating the header skipped (first on line 47)');
  });

  it('retries a part whose first attempt failed (S3 unreachable), leaving nothing of that attempt', async () => {
    stageDeps.partBytes = 400;
    sent = [];
    cleaned = [];
    const split = await stageObject(stageDeps, await put(bucket, 'incoming/city/split/retry.csv', tricky(80)));
    const loadId = (split as { loadId: number }).loadId;
    let failures = 0;
    const flaky = new Proxy(stageDeps.s3, {
      get(target, prop, receiver) {
        if (prop !== 'send') return Reflect.get(target, prop, receiver);
        return async (command: { input?: { Range?: string } }) => {
          if (command.input?.Range && failures === 0) {
            failures++;
            throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
          }
          return target.send(command as never);
        };
      },
    });

    const first = sent[0]!;
    await expect(stageObjectPart({ ...stageDeps, s3: flaky }, first)).rejects.toThrow(/ECONNREFUSED/);
    const afterFailure = await rows(stageDeps.pool, `SELECT status FROM etl.load_parts WHERE load_id = $1 AND part = 0`, [loadId]);
    for (const m of sent) await stageObjectPart(stageDeps, m); // SQS brings the failed one back

    expect(afterFailure).toEqual([{ status: 'planned' }]);
    expect(cleaned).toEqual([{ loadId }]);
    expect(await rows(stageDeps.pool, 'SELECT status, rows_read::int FROM etl.loads WHERE id = $1', [loadId])).toEqual([{ status: 'staged', rows_read: 80 }]);
  });

  it('fails the whole load when one part holds a bad record, naming its line, and leaves no staging table', async () => {
    stageDeps.partBytes = 200;
    sent = [];
    cleaned = [];
    const lines = tricky(60).split('\r\n');
    lines[40] = `${lines[40]},one field too many`;
    const text = lines.join('\r\n');
    const badLine = text.slice(0, text.indexOf('one field too many')).split('\n').length;
    const split = await stageObject(stageDeps, await put(bucket, 'incoming/city/split/bad.csv', text));
    const loadId = (split as { loadId: number }).loadId;

    const outcomes = [];
    for (const m of sent) outcomes.push(await stageObjectPart(stageDeps, m));
    const load = (await rows<{ status: string; error: string; staging_table: string }>(stageDeps.pool, 'SELECT status, error, staging_table FROM etl.loads WHERE id = $1', [loadId]))[0]!;
    const left = await rows(stageDeps.pool, `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'it_parts_staging' AND tablename LIKE $1`, [`split__${loadId}%`]);

    expect(outcomes.filter((o) => o.status === 'failed')).toHaveLength(1);
    expect(load.status).toBe('failed');
    expect(load.error).toMatch(new RegExp(`bad\\.csv \\(bytes \\d+–\\d+\\) line ${badLine}: the record has 4 fields, the header has 3`));
    expect(left).toEqual([{ n: 0 }]);
    expect(cleaned).toEqual([]);
  });
});

describe('a part that fails before its bytes are read', () => {
  // the part's layout in the ledger names what this process cannot use: an encoding its decoder does not know
  // (written by a newer release), or no columns (a row edited by hand); either fails after the part's GET, before its first read
  it.each([
    ['an encoding the decoder does not know', `jsonb_set(detected, '{encoding}', '"x-unknown-encoding"')`, /Encoding not recognized/],
    ['no columns', `detected - 'columns'`, /length/],
  ])('closes the response of its S3 GET (%s)', async (_, detected, error) => {
    stageDeps.partBytes = 300;
    sent = [];
    cleaned = [];
    const split = await stageObject(stageDeps, await put(bucket, `incoming/city/split/unread-${sent.length}-${Date.now()}.csv`, tricky(100)));
    const loadId = (split as { loadId: number }).loadId;
    await stageDeps.pool.query(`UPDATE etl.loads SET detected = ${detected} WHERE id = $1`, [loadId]);
    // the bytes come from moto as they would: the real GET, its response kept to look at
    const bodies: Readable[] = [];
    const open: RangeOpener = async (ref, first, last) => {
      const body = await openRange(stageDeps.s3, ref, first, last);
      bodies.push(body as Readable);
      return body;
    };

    await expect(stageObjectPart(stageDeps, sent[0]!, open)).rejects.toThrow(error);
    expect(bodies).toHaveLength(1);
    // not left open to time out (a socket held per failed attempt): destroyed, its connection closed
    expect(bodies[0]!.destroyed).toBe(true);
    expect((await rows(stageDeps.pool, `SELECT status FROM etl.load_parts WHERE load_id = $1 AND part = 0`, [loadId]))[0]).toEqual({ status: 'planned' });
  });
});
