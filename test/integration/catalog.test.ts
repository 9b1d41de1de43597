import { beforeAll, describe, expect, it } from 'vitest';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

let deps: StageDeps;
let bucket: string;

beforeAll(async () => {
  const { pipeline, pool } = await freshProject({
    project: 'it_catalog',
    title: 'Subventions',
    profile: { locales: ['fr'] },
    suppliers: [{ name: 'mairie' }],
    datasets: [
      // no declared columns: the profile decides the clean table's columns and types
      { name: 'associations', title: 'Associations subventionnées', source: { type: 'upload', supplier: 'mairie' } },
      // datasets of their own: loads of one dataset evolve its table (schema drift), these start afresh
      { name: 'mixed', source: { type: 'upload', supplier: 'mairie' } },
      { name: 'unprofiled', source: { type: 'upload', supplier: 'mairie' } },
      { name: 'notes', source: { type: 'upload', supplier: 'mairie' }, clean: { columns: [{ name: 'note' }] } },
    ],
  });
  bucket = await freshBucket('it-catalog');
  deps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
});

/** A plain comma-separated file: what a dataset without declared columns typically receives. */
const PLAIN = [
  'id,code postal,email,date_creation,montant,actif,commentaire',
  '1,75001,a@asso.fr,2019-03-04,1250.5,true,premier',
  '2,69003,b@asso.fr,2020-11-21,980,false,',
  '3,13008,c@asso.fr,2018-06-30,15000,true,"avec, virgule"',
  '',
].join('\n');

describe('the catalog', () => {
  it('records what the stage step detected and profiled, one row per object version', async () => {
    const ref = await put(bucket, 'incoming/mairie/associations/export.csv', PLAIN);

    const staged = await stageObject(deps, ref);

    const [entry] = await rows<{
      dataset: string;
      title: string;
      row_count: string;
      structure: { delimiter: string; header: string[] };
      columns: { name: string; type: string; format: string | null; score: number }[];
    }>(deps.pool, 'SELECT dataset, title, row_count, structure, columns FROM etl.catalog WHERE load_id = $1', [(staged as { loadId: number }).loadId]);
    expect(entry).toMatchObject({ dataset: 'associations', title: 'Associations subventionnées', row_count: '3', structure: { delimiter: ',' } });
    expect(entry!.columns.map((c) => [c.name, c.type, c.format])).toEqual([
      ['id', 'integer', null],
      ['code postal', expect.any(String), 'code_postal'],
      ['email', 'string', 'email'],
      ['date_creation', 'date', null],
      ['montant', 'number', null],
      ['actif', 'boolean', null],
      ['commentaire', 'string', null],
    ]);
  });

  it('answers "which datasets have a column of format code_postal" and full-text search in SQL', async () => {
    await stageObject(deps, await put(bucket, 'incoming/mairie/notes/n.csv', 'note\nbonjour\n'));

    const byFormat = await rows(deps.pool, `SELECT DISTINCT dataset FROM etl.catalog WHERE project = 'it_catalog' AND columns @> '[{"format": "code_postal"}]'`);
    const byText = await rows(deps.pool, `SELECT DISTINCT dataset FROM etl.catalog WHERE project = 'it_catalog' AND search @@ plainto_tsquery('simple', 'subventionnées email')`);

    expect(byFormat).toEqual([{ dataset: 'associations' }]);
    expect(byText).toEqual([{ dataset: 'associations' }]);
  });

  it('lands a dataset that declares no columns with the detected types', async () => {
    const ref = await put(bucket, 'incoming/mairie/associations/export-2.csv', PLAIN);
    const staged = await stageObject(deps, ref);

    const outcome = await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, (staged as { loadId: number }).loadId);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 3, rowsQuarantined: 0 });
    const types = await rows(deps.pool, `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'it_catalog' AND table_name = 'associations' ORDER BY ordinal_position`);
    expect(types).toEqual([
      { column_name: 'id', data_type: 'bigint' },
      { column_name: 'code_postal', data_type: 'text' },
      { column_name: 'email', data_type: 'text' },
      { column_name: 'date_creation', data_type: 'date' },
      { column_name: 'montant', data_type: 'double precision' },
      { column_name: 'actif', data_type: 'boolean' },
      { column_name: 'commentaire', data_type: 'text' },
      { column_name: '_load_id', data_type: 'bigint' },
      { column_name: '_source_line', data_type: 'bigint' },
    ]);
    expect(await rows(deps.pool, 'SELECT id, code_postal, montant FROM it_catalog.associations ORDER BY id')).toEqual([
      { id: '1', code_postal: '75001', montant: 1250.5 },
      { id: '2', code_postal: '69003', montant: 980 },
      { id: '3', code_postal: '13008', montant: 15000 },
    ]);
  });

  it('reads day-first dates as dates, and keeps text a column whose day/month order the values do not tell', async () => {
    const ref = await put(bucket, 'incoming/mairie/associations/dates.csv', 'id,date_creation,echeance\n1,25/12/2023,03/04/2024\n2,03/04/2024,05/06/2024\n');
    const staged = await stageObject(deps, ref);

    await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, (staged as { loadId: number }).loadId);

    const types = await rows(
      deps.pool,
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'it_catalog' AND table_name = 'associations' AND column_name IN ('date_creation', 'echeance') ORDER BY column_name`,
    );
    expect(types).toEqual([
      { column_name: 'date_creation', data_type: 'date' }, // 25/12 can only be day-first
      { column_name: 'echeance', data_type: 'text' }, // 3 April or 4 March: not guessed
    ]);
    expect(await rows(deps.pool, `SELECT to_char(date_creation, 'YYYY-MM-DD') AS d, echeance FROM it_catalog.associations ORDER BY id`)).toEqual([
      { d: '2023-12-25', echeance: '03/04/2024' },
      { d: '2024-04-03', echeance: '05/06/2024' },
    ]);
  });

  it('casts a detected column only when every profiled value fits, and keeps repeated or blank headings apart', async () => {
    const body = ['n,amount,n,', ...Array.from({ length: 24 }, (_, i) => `${i},"1,${String(i).padStart(3, '0')}",x${i},a`), '24,12.5,x24,b', ''].join('\n');
    const staged = await stageObject(deps, await put(bucket, 'incoming/mairie/mixed/mixed.csv', body));

    const outcome = await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, (staged as { loadId: number }).loadId);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 25, rowsQuarantined: 0 });
    expect(
      await rows(
        deps.pool,
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'it_catalog' AND table_name = 'mixed' AND column_name NOT LIKE '\\_%' ORDER BY ordinal_position`,
      ),
    ).toEqual([
      { column_name: 'n', data_type: 'bigint' },
      { column_name: 'amount', data_type: 'double precision' }, // "1,000" groups thousands: 12.5 says the point is the decimal mark
      { column_name: 'n_2', data_type: 'text' },
      { column_name: 'column_4', data_type: 'text' },
    ]);
    const amounts = await rows<{ amount: number }>(deps.pool, 'SELECT amount FROM it_catalog.mixed ORDER BY _source_line');
    expect(amounts.map((r) => r.amount)).toEqual([...Array.from({ length: 24 }, (_, i) => 1000 + i), 12.5]);
  });

  it('lands every column as text when the file could not be profiled', async () => {
    const staged = await stageObject(deps, await put(bucket, 'incoming/mairie/unprofiled/unprofiled.csv', PLAIN));
    const loadId = (staged as { loadId: number }).loadId;
    await deps.pool.query(`UPDATE etl.catalog SET columns = NULL, error = 'simulated' WHERE load_id = $1`, [loadId]);

    const outcome = await cleanLoad({ pool: deps.pool, pipeline: deps.pipeline }, loadId);

    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 3 });
    expect(await rows(deps.pool, `SELECT DISTINCT data_type FROM information_schema.columns WHERE table_schema = 'it_catalog' AND table_name = 'unprofiled' AND column_name NOT LIKE '\\_%'`)).toEqual([
      { data_type: 'text' },
    ]);
  });

  it('describes in the catalog an object that could not be staged, too', async () => {
    const staged = await stageObject(deps, await put(bucket, 'incoming/mairie/notes/ragged.csv', 'note,extra\na,b\nc\nd,e\n'));

    expect(staged.status).toBe('failed');
    const [entry] = await rows<{ row_count: string; ragged_lines: string; columns: unknown[] }>(deps.pool, 'SELECT row_count, ragged_lines, columns FROM etl.catalog WHERE load_id = $1', [
      (staged as { loadId: number }).loadId,
    ]);
    expect(entry).toMatchObject({ row_count: '0', ragged_lines: '1' });
    expect(entry!.columns).toHaveLength(2);
  });

  it('profiles on redelivery a staged load whose profile was lost (a crash after the COPY committed)', async () => {
    const ref = await put(bucket, 'incoming/mairie/notes/crash.csv', 'note\nbonjour\n');
    const staged = await stageObject(deps, ref);
    const loadId = (staged as { loadId: number }).loadId;
    await deps.pool.query('DELETE FROM etl.catalog WHERE load_id = $1', [loadId]);

    expect(await stageObject(deps, ref)).toEqual({ status: 'duplicate', loadId });

    expect(await rows(deps.pool, 'SELECT row_count::int AS n, columns->0->>$2 AS name FROM etl.catalog WHERE load_id = $1', [loadId, 'name'])).toEqual([{ n: 1, name: 'note' }]);
  });
});
