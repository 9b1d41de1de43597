import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { localResourceNames } from '../../local/resources.ts';
import { ListObjectVersionsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { declarationMetadata } from '../../contract/objects.ts';
import { s3Client } from '../../functions/common/aws.ts';
import { receiveObject } from '../../functions/common/ledger.ts';
import { openLocalPipeline, type LocalPipeline } from '../../local/pipeline.ts';
import { listDatasetVersions, parseFrom, replayDataset, ReplayError, type ReplayDeps } from '../../local/replay.ts';
import { purgeLocalResources } from '../../local/resources.ts';
import { makeZip } from '../helpers/zip.ts';
import { put, rows } from './support.ts';

const dir = mkdtempSync(join(tmpdir(), 'civic-etl-replay-'));
const pipelineFile = join(dir, 'pipeline.yaml');
writeFileSync(
  pipelineFile,
  `project: it_replay
suppliers:
  - name: acme
datasets:
  - name: people
    source: { type: upload, supplier: acme }
    clean:
      columns:
        - { name: id, type: integer, required: true }
        - { name: name }
      key: [id]
  - name: tallies
    source: { type: http, url: "https://example.org/tallies.csv" }
`,
);

const PEOPLE = 'incoming/acme/people/people.csv';
const V1 = 'id,name\n1,Ann\n2,Bo\n';
const V2 = 'id,name\n1,Ann\n3,Cy\n4,Di\n';

let local: LocalPipeline;
let deps: ReplayDeps;
/** Version ids of people.csv, in upload order. */
const version: string[] = [];
/** The clean table as the original run over both versions left it. */
let afterRun: unknown[];

/** Upload as the supplier would, and let the pipeline handle it. */
async function deliver(key: string, body: string | Buffer, metadata?: Record<string, string>): Promise<string> {
  const ref = metadata
    ? { versionId: (await s3Client().send(new PutObjectCommand({ Bucket: local.resources.bucket, Key: key, Body: body, Metadata: metadata }))).VersionId }
    : await put(local.resources.bucket, key, body);
  await local.run({ maxMs: 60_000 });
  return ref.versionId!;
}

/** What the http fetcher declares for a file it downloads in run `run` (contract/objects.ts). */
const downloaded = (run: string) => declarationMetadata({ contract: 1, replaces: 'dataset', holds: 'rows', run, runStartedAt: `${run}T06:00:00.000Z`, part: 1 });

/** S3 dates are to the second: wait for the next one, so that `--from` can tell uploads apart. */
const nextSecond = () => new Promise((r) => setTimeout(r, 1100));

const people = () => rows(local.pool, 'SELECT id, name FROM it_replay.people ORDER BY id');

/** Run the real command, as a user would. */
function civicEtl(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/civic-etl.mjs', ...args], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  local = await openLocalPipeline(pipelineFile, { visibilityTimeoutSeconds: 1 });
  await purgeLocalResources(local.resources);
  await local.pool.query('DROP SCHEMA IF EXISTS it_replay CASCADE; DROP SCHEMA IF EXISTS it_replay_staging CASCADE; CREATE SCHEMA it_replay; CREATE SCHEMA it_replay_staging');
  await local.pool.query(`DELETE FROM etl.loads WHERE project = 'it_replay'`);
  deps = { pool: local.pool, s3: s3Client(), pipeline: local.pipeline, bucket: local.resources.bucket };

  version.push(await deliver(PEOPLE, V1));
  await nextSecond();
  version.push(await deliver(PEOPLE, V2));
  afterRun = await people();
});

describe('civic-etl replay', () => {
  it('replays one chosen version: the clean table holds exactly that version again', async () => {
    expect(afterRun).toEqual([
      { id: 1, name: 'Ann' },
      { id: 3, name: 'Cy' },
      { id: 4, name: 'Di' },
    ]);

    const summary = await replayDataset(deps, 'people', { versionId: version[0] });

    const [delivery] = await rows<{ id: string }>(local.pool, `SELECT id FROM etl.loads WHERE object_version = $1 AND replay_number = 0`, [version[0]]);
    expect(summary.versions).toMatchObject([{ key: PEOPLE, versionId: version[0], status: 'loaded', rowsLoaded: 2, rowsQuarantined: 0, replayOf: Number(delivery!.id) }]);
    expect(await people()).toEqual([
      { id: 1, name: 'Ann' },
      { id: 2, name: 'Bo' },
    ]);
  });

  it('traces every replayed row to its object key, version and source line', async () => {
    const traced = await rows(
      local.pool,
      `SELECT c.id, l.object_key, l.object_version, c._source_line::int AS line, l.replay_number, d.object_version AS replays_version
         FROM it_replay.people c JOIN etl.loads l ON l.id = c._load_id LEFT JOIN etl.loads d ON d.id = l.replay_of
        ORDER BY c.id`,
    );

    expect(traced).toEqual([
      { id: 1, object_key: PEOPLE, object_version: version[0], line: 2, replay_number: 1, replays_version: version[0] },
      { id: 2, object_key: PEOPLE, object_version: version[0], line: 3, replay_number: 1, replays_version: version[0] },
    ]);
  });

  it('replays every version oldest first, leaving the clean table as the original run did, and the deliveries untouched', async () => {
    const summary = await replayDataset(deps, 'people');

    expect(summary.versions.map((v) => [v.versionId, v.status, v.rowsLoaded])).toEqual([
      [version[0], 'loaded', 2],
      [version[1], 'loaded', 3],
    ]);
    expect(await people()).toEqual(afterRun);
    expect(await rows(local.pool, `SELECT DISTINCT l.object_version, l.replay_number FROM it_replay.people c JOIN etl.loads l ON l.id = c._load_id`)).toEqual([
      { object_version: version[1], replay_number: 1 },
    ]);
    expect(await rows(local.pool, `SELECT object_version, replay_number, status FROM etl.loads WHERE project = 'it_replay' AND dataset = 'people' ORDER BY id`)).toEqual([
      { object_version: version[0], replay_number: 0, status: 'loaded' },
      { object_version: version[1], replay_number: 0, status: 'loaded' },
      { object_version: version[0], replay_number: 1, status: 'loaded' },
      { object_version: version[0], replay_number: 2, status: 'loaded' },
      { object_version: version[1], replay_number: 1, status: 'loaded' },
    ]);
  });

  it('keeps only the versions last modified at or after --from', async () => {
    const listed = await listDatasetVersions(deps, local.pipeline.datasets[0]!);
    const [first, second] = listed.map((v) => v.lastModified);
    expect(second!.getTime()).toBeGreaterThan(first!.getTime());

    const fromSecond = await replayDataset(deps, 'people', { from: second });
    const fromFirst = await replayDataset(deps, 'people', { from: first, dryRun: true });
    const later = await replayDataset(deps, 'people', { from: new Date(second!.getTime() + 1000), dryRun: true });

    expect(fromSecond.versions.map((v) => [v.versionId, v.status])).toEqual([[version[1], 'loaded']]);
    expect(await people()).toEqual(afterRun);
    expect(fromFirst.planned.map((v) => v.versionId)).toEqual(version);
    expect(fromFirst.versions).toEqual([]); // a dry run replays nothing
    expect(later.planned).toEqual([]);
  });

  it('reads --from as an ISO date (midnight UTC) or timestamp, and refuses anything else', () => {
    expect(parseFrom('2024-05-01').toISOString()).toBe('2024-05-01T00:00:00.000Z');
    expect(parseFrom('2024-05-01T10:30').toISOString()).toBe('2024-05-01T10:30:00.000Z');
    expect(parseFrom('2024-05-01T10:30:00+02:00').toISOString()).toBe('2024-05-01T08:30:00.000Z');
    expect(() => parseFrom('2024-02-30')).toThrow(/--from "2024-02-30" is not an ISO date or timestamp/);
    expect(() => parseFrom('last week')).toThrow(ReplayError);
  });

  it('says clearly when the dataset or the version does not exist', async () => {
    await expect(replayDataset(deps, 'persons')).rejects.toThrow('unknown dataset "persons" in project it_replay (datasets: people, tallies)');
    await expect(replayDataset(deps, 'people', { versionId: 'no-such-version' })).rejects.toThrow(
      `dataset people has no object version "no-such-version" in s3://${localResourceNames('it_replay').bucket}/ under incoming/acme/people/ or raw/people/ (2 versions there`,
    );
  });

  it('stops at an error a retry may cure, leaving later versions alone and no replay load unfinished', async () => {
    // S3 lists, then stops answering: reading the first version fails as an outage would
    const flaky = {
      send: (command: unknown) =>
        command instanceof ListObjectVersionsCommand ? deps.s3.send(command) : Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:54400'), { code: 'ECONNREFUSED' })),
    } as unknown as S3Client;
    const before = await people();

    const summary = await replayDataset({ ...deps, s3: flaky }, 'people');

    expect(summary).toMatchObject({ stopped: 'connect ECONNREFUSED 127.0.0.1:54400', notReplayed: 1 });
    expect(summary.versions.map((v) => [v.versionId, v.status])).toEqual([[version[0], 'failed']]);
    expect(await people()).toEqual(before);
    expect(await rows(local.pool, `SELECT status, error FROM etl.loads WHERE project = 'it_replay' AND status NOT IN ('loaded', 'failed')`)).toEqual([]);
    expect(await rows(local.pool, `SELECT error FROM etl.loads WHERE project = 'it_replay' ORDER BY id DESC LIMIT 1`)).toEqual([{ error: 'replay stopped: connect ECONNREFUSED 127.0.0.1:54400' }]);
  });

  it('replays the files of a fetched dataset, not the fetch manifests, typed as the profile says', async () => {
    await put(local.resources.bucket, 'raw/tallies/2024-05-01/_manifest.json', '{"bytes": 18}');
    await deliver('raw/tallies/2024-05-01/tallies.csv', 'zone,count\nN,3\nS,4\n', downloaded('2024-05-01'));
    await nextSecond();
    await deliver('raw/tallies/2024-05-02/tallies.csv', 'zone,count\nN,5\nS,6\nE,7\n', downloaded('2024-05-02'));
    const tallies = () => rows(local.pool, 'SELECT zone, count::int AS count FROM it_replay.tallies ORDER BY zone');
    const typed = () => rows(local.pool, `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'it_replay' AND table_name = 'tallies' ORDER BY ordinal_position`);
    const [before, types] = [await tallies(), await typed()];

    const summary = await replayDataset(deps, 'tallies');

    expect(summary.versions.map((v) => [v.key, v.status, v.rowsLoaded])).toEqual([
      ['raw/tallies/2024-05-01/tallies.csv', 'loaded', 2],
      ['raw/tallies/2024-05-02/tallies.csv', 'loaded', 3],
    ]);
    expect(await tallies()).toEqual(before);
    expect(before).toEqual([
      { zone: 'E', count: 7 },
      { zone: 'N', count: 5 },
      { zone: 'S', count: 6 },
    ]);
    expect(types).toContainEqual({ column_name: 'count', data_type: expect.stringMatching(/^(integer|bigint)$/) });
    expect(await typed()).toEqual(types);
  });

  it('still claims a delivery once: a redelivered event finds its load, while each replay is a new load naming it', async () => {
    const ref = { bucket: 'it-replay-ledger-only', key: PEOPLE, versionId: 'v-1', etag: 'abc', size: 10 };
    const { load: delivery } = await receiveObject(local.pool, 'it_replay', 'people', ref);

    const again = await receiveObject(local.pool, 'it_replay', 'people', ref);
    const replay1 = await receiveObject(local.pool, 'it_replay', 'people', { ...ref, replay: true });
    const replay2 = await receiveObject(local.pool, 'it_replay', 'people', { ...ref, replay: true });
    const afterReplays = await receiveObject(local.pool, 'it_replay', 'people', ref);
    await local.pool.query(`DELETE FROM etl.loads WHERE bucket = 'it-replay-ledger-only'`);

    expect(again).toMatchObject({ inserted: false, load: { id: delivery.id, replay_number: 0, attempts: 2 } });
    expect(replay1).toMatchObject({ inserted: true, load: { object_version: 'v-1', replay_number: 1, replay_of: delivery.id, status: 'received' } });
    expect(replay2.load).toMatchObject({ replay_number: 2, replay_of: delivery.id });
    expect(afterReplays).toMatchObject({ inserted: false, load: { id: delivery.id, attempts: 3 } });
  });

  it('prints each version and a summary on the command line, and exits 1 when a replayed load fails', async () => {
    const ragged = await deliver(PEOPLE, 'id,name\n5,Ed\n6,Fa,extra\n');

    const r = civicEtl('replay', 'people', '--pipeline', pipelineFile);

    expect(r.code, r.stderr).toBe(1);
    const lines = r.stdout.trim().split('\n');
    const bucket = localResourceNames('it_replay').bucket;
    expect(lines[0]).toBe(`replaying 3 object versions of people from s3://${bucket}/incoming/acme/people/ and s3://${bucket}/raw/people/, oldest first`);
    expect(lines[1]).toMatch(new RegExp(`  \\S+Z  ${PEOPLE}  version ${version[0]}: loaded, 2 rows — load \\d+, replays load \\d+$`));
    expect(lines[2]).toMatch(new RegExp(`  \\S+Z  ${PEOPLE}  version ${version[1]}: loaded, 3 rows — load \\d+, replays load \\d+$`));
    expect(lines[3]).toContain(`version ${ragged}: failed: ${PEOPLE} line 3: the record has 3 fields, the header has 2`);
    expect(lines[4]).toBe('replayed 3 versions: 2 loaded, 1 failed, 0 skipped; it_replay.people now has 3 rows');
    expect(await people()).toEqual(afterRun); // as a fresh run: the ragged file never applies

    // --json: the same replay as one JSON document, nothing else on stdout
    const json = civicEtl('replay', 'people', '--pipeline', pipelineFile, '--json');
    expect(json.code).toBe(1);
    const doc = JSON.parse(json.stdout);
    expect(doc).toMatchObject({ dataset: 'people', rowsNow: 3, notReplayed: 0 });
    expect(doc.versions.map((v: { versionId: string; status: string }) => [v.versionId, v.status])).toEqual([
      [version[0], 'loaded'],
      [version[1], 'loaded'],
      [ragged, 'failed'],
    ]);
  });

  it('refuses an unknown dataset, version or date on the command line', () => {
    expect(civicEtl('replay', 'persons', '--pipeline', pipelineFile)).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown dataset "persons" (datasets: people, tallies)') });
    expect(civicEtl('replay', 'people', '--from', 'soon', '--pipeline', pipelineFile)).toMatchObject({ code: 2, stderr: expect.stringContaining('--from "soon" is not an ISO date') });
    expect(civicEtl('replay', 'people', '--version', 'nope', '--pipeline', pipelineFile)).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('civic-etl: dataset people has no object version "nope"'),
    });
  });

  it('replays an archive as a new load whose members are new loads, each naming the member load it replays', async () => {
    const zipVersion = await deliver('incoming/acme/people/people.zip', await makeZip({ 'a.csv': 'id,name\n10,Jo\n11,Kim\n', 'b.csv': 'id,name\n12,Lu\n' }));
    const delivered = await people();

    const summary = await replayDataset(deps, 'people', { versionId: zipVersion });

    expect(summary.versions).toMatchObject([{ status: 'loaded', rowsLoaded: 3 }]);
    expect(await people()).toEqual(delivered);
    expect(
      await rows(
        local.pool,
        `SELECT c.id, l.object_key, l.parent_id = $1 AS in_replay, o.replay_number AS replays
           FROM it_replay.people c JOIN etl.loads l ON l.id = c._load_id JOIN etl.loads o ON o.id = l.replay_of ORDER BY c.id`,
        [summary.versions[0]!.loadId],
      ),
    ).toEqual([
      { id: 10, object_key: 'incoming/acme/people/people.zip!a.csv', in_replay: true, replays: 0 },
      { id: 11, object_key: 'incoming/acme/people/people.zip!a.csv', in_replay: true, replays: 0 },
      { id: 12, object_key: 'incoming/acme/people/people.zip!b.csv', in_replay: true, replays: 0 },
    ]);
  });
});
