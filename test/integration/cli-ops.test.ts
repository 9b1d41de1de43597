/**
 * The operator's commands, run as a user runs them (the real `civic-etl` process): dlq list and
 * redrive, against the local resources and against a "stack" described by its outputs file.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { sqsClient } from '../../functions/common/aws.ts';
import { getPool } from '../../functions/common/db.ts';
import { migrate } from '../../functions/migrate/migrate.ts';
import { moveMessages, queueCounts } from '../../local/dlq.ts';
import { ensureLocalResources, purgeLocalResources, type LocalResources } from '../../local/resources.ts';
import { rows } from './support.ts';

const PIPELINE = 'test/fixtures/cli-ops-pipeline.yaml';
const PROJECT = 'it_cliops';
const dir = mkdtempSync(join(tmpdir(), 'civic-etl-cli-ops-'));

function civicEtl(...args: string[]) {
  return civicEtlWith({}, ...args);
}

function civicEtlWith(extraEnv: Record<string, string>, ...args: string[]) {
  // the log level a user has by default (the tests silence it in their own process)
  const env = { ...process.env, NODE_NO_WARNINGS: '1', POWERTOOLS_LOG_LEVEL: 'INFO', ...extraEnv };
  const r = spawnSync(process.execPath, ['bin/civic-etl.mjs', ...args], { encoding: 'utf8', env, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every body a queue holds, received and deleted (a message seen twice would show twice). */
async function drain(queueUrl: string): Promise<string[]> {
  const bodies: string[] = [];
  for (let empty = 0; empty < 2;) {
    const out = await sqsClient().send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30 }));
    const messages = out.Messages ?? [];
    if (messages.length === 0) {
      empty++;
      continue;
    }
    bodies.push(...messages.map((m) => m.Body!));
    await sqsClient().send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
  }
  return bodies;
}

async function sendBodies(queueUrl: string, bodies: string[]): Promise<void> {
  for (let i = 0; i < bodies.length; i += 10) {
    await sqsClient().send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: bodies.slice(i, i + 10).map((b, j) => ({ Id: String(j), MessageBody: b })) }));
  }
}

let res: LocalResources;
const bodies = (queue: string, n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ queue, n: i }));

beforeAll(async () => {
  res = await ensureLocalResources({ project: PROJECT });
  await purgeLocalResources(res);
  for (const url of [res.stageQueueUrl, res.stageDlqUrl, res.cleanQueueUrl, res.cleanDlqUrl]) await drain(url);
  const pool = await getPool();
  await migrate(pool, PROJECT);
  await pool.query('DELETE FROM etl.redrives WHERE project = $1', [PROJECT]);
});

describe('civic-etl dlq', () => {
  it('lists what waits in each dead-letter queue, as a table and as JSON', async () => {
    await sendBodies(res.stageDlqUrl, bodies('stage', 23));
    await sendBodies(res.cleanDlqUrl, bodies('clean', 3));

    const json = civicEtl('dlq', 'list', '--pipeline', PIPELINE, '--json');
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(doc.project).toBe(PROJECT);
    expect(doc.queues.map((q: { queue: string; deadLetters: number; returnsTo: string }) => [q.queue, q.deadLetters, q.returnsTo])).toEqual([
      ['stage', 23, res.stageQueueUrl],
      ['clean', 3, res.cleanQueueUrl],
    ]);

    const text = civicEtl('dlq', 'list', '--pipeline', PIPELINE);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/stage\s+│ 23\s/);
    expect(text.stdout).toMatch(/clean\s+│ 3\s/);
    expect(text.stdout).toContain('civic-etl dlq redrive');
    expect(text.stdout).not.toContain('{"level"'); // log lines go to stderr
  });

  it('moves every message of a DLQ back to its queue once, logs it and records it', async () => {
    const r = civicEtl('dlq', 'redrive', 'stage', '--pipeline', PIPELINE);

    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`stage: moved 23 messages from ${res.stageDlqUrl} back to ${res.stageQueueUrl}`);
    expect(r.stdout).toContain('now 0 messages in the DLQ, 23 messages waiting in the stage queue');
    expect(r.stdout).toMatch(/recorded as redrive \d+ \(etl\.redrives\)/);
    const log = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    expect(log).toEqual([expect.objectContaining({ level: 'INFO', message: 'dlq redrive', project: PROJECT, queue: 'stage', method: 'moved', messages: 23 })]);
    // both queues counted: the DLQ empty, the work queue holding each message exactly once
    expect((await queueCounts(sqsClient(), res.stageDlqUrl)).waiting).toBe(0);
    expect((await drain(res.stageQueueUrl)).sort()).toEqual(bodies('stage', 23).sort());
    // the clean DLQ was not touched
    expect((await queueCounts(sqsClient(), res.cleanDlqUrl)).waiting).toBe(3);
    const recorded = await rows(await getPool(), `SELECT queue, method, messages, dlq, target, operator IS NOT NULL AS by_someone FROM etl.redrives WHERE project = $1`, [PROJECT]);
    expect(recorded).toEqual([{ queue: 'stage', method: 'moved', messages: 23, dlq: res.stageDlqUrl, target: res.stageQueueUrl, by_someone: true }]);

    const listed = JSON.parse(civicEtl('dlq', 'list', '--pipeline', PIPELINE, '--json').stdout);
    expect(listed.redrives).toEqual([expect.objectContaining({ queue: 'stage', method: 'moved', messages: 23 })]);
  });

  it('moves at most --max messages, leaving the rest in the DLQ', async () => {
    const r = civicEtl('dlq', 'redrive', 'clean', '--max', '2', '--pipeline', PIPELINE, '--json');

    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.redrives).toEqual([expect.objectContaining({ queue: 'clean', method: 'moved', messages: 2, deadLettersNow: 1, targetWaitingNow: 2 })]);
    expect(await drain(res.cleanQueueUrl)).toHaveLength(2);
  });

  it('redrives a stack named by its outputs file (describe-stacks JSON), moving by hand where SQS has no move task', async () => {
    const outputs = join(dir, 'outputs.json');
    const out = (key: string, value: string) => ({ OutputKey: key, OutputValue: value });
    writeFileSync(
      outputs,
      JSON.stringify({
        Stacks: [
          {
            StackName: 'civic-etl-it',
            Outputs: [out('StageQueueUrl', res.stageQueueUrl), out('StageDeadLetterQueueUrl', res.stageDlqUrl), out('CleanQueueUrl', res.cleanQueueUrl), out('CleanDeadLetterQueueUrl', res.cleanDlqUrl)],
          },
        ],
      }),
    );
    // moto lacks StartMessageMoveTask: the command says so and what to do
    const refused = civicEtl('dlq', 'redrive', 'clean', '--outputs', outputs, '--pipeline', PIPELINE);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('add --by-hand');
    expect((await queueCounts(sqsClient(), res.cleanDlqUrl)).waiting).toBe(1);

    const r = civicEtl('dlq', 'redrive', 'clean', '--outputs', outputs, '--by-hand', '--pipeline', PIPELINE, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).redrives).toEqual([expect.objectContaining({ queue: 'clean', method: 'moved', messages: 1, deadLettersNow: 0, target: res.cleanQueueUrl })]);
    expect(await drain(res.cleanQueueUrl)).toEqual([JSON.stringify({ queue: 'clean', n: 2 })]);
  });

  it('peeks at what waits, with the load each message is about and its error in the ledger, leaving the messages where they are', async () => {
    const pool = await getPool();
    const [load] = await rows<{ id: number }>(
      pool,
      `INSERT INTO etl.loads (project, dataset, bucket, object_key, object_version, status, error, attempts)
       VALUES ($1, 'people', $2, 'incoming/acme/people/stuck.csv', 'v1', 'staged', 'division by zero', 5) RETURNING id::int`,
      [PROJECT, res.bucket],
    );
    const s3Event = { Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: res.bucket }, object: { key: 'incoming/acme/people/stuck.csv', versionId: 'v1' } } }] };
    await sendBodies(res.cleanDlqUrl, [JSON.stringify({ loadId: load!.id })]);
    await sendBodies(res.stageDlqUrl, [JSON.stringify(s3Event)]);

    const doc = JSON.parse(civicEtl('dlq', 'list', '--peek', '5', '--pipeline', PIPELINE, '--json').stdout);
    const byQueue = Object.fromEntries(doc.queues.map((q: { queue: string }) => [q.queue, q]));
    expect(byQueue.clean.messages).toEqual([
      expect.objectContaining({ what: `clean load ${load!.id}`, loadId: load!.id, load: { id: load!.id, dataset: 'people', status: 'staged', error: 'division by zero', attempts: 5 } }),
    ]);
    expect(byQueue.stage.messages).toEqual([
      expect.objectContaining({ what: 'stage incoming/acme/people/stuck.csv', objectKey: 'incoming/acme/people/stuck.csv', load: expect.objectContaining({ id: load!.id }) }),
    ]);

    const text = civicEtl('dlq', 'list', '--peek', '5', '--pipeline', PIPELINE);
    expect(text.stdout).toContain(`clean load ${load!.id}`);
    expect(text.stdout).toContain(`— load ${load!.id} (people): staged, 5 attempts, error: division by zero`);
    // peeking took nothing
    expect((await queueCounts(sqsClient(), res.cleanDlqUrl)).waiting).toBe(1);
    expect(await drain(res.cleanDlqUrl)).toEqual([JSON.stringify({ loadId: load!.id })]);
    expect(await drain(res.stageDlqUrl)).toEqual([JSON.stringify(s3Event)]);
    await pool.query('DELETE FROM etl.loads WHERE id = $1', [load!.id]);
  });

  it('says there is no fetch DLQ locally, and refuses an unknown queue', () => {
    const fetch = civicEtl('dlq', 'redrive', 'fetch', '--pipeline', PIPELINE);
    expect(fetch.code).toBe(2);
    expect(fetch.stderr).toContain('no fetch dead-letter queue locally');
    const unknown = civicEtl('dlq', 'redrive', 'combine', '--pipeline', PIPELINE);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown queue "combine" (stage, clean or fetch)');
  });

  it('gives each failed fetch of the fetch DLQ to the fetch function again, leaving what it does not understand', async () => {
    const { CreateQueueCommand } = await import('@aws-sdk/client-sqs');
    const { redriveFetch } = await import('../../local/dlq.ts');
    const url = (await sqsClient().send(new CreateQueueCommand({ QueueName: 'civic-etl-it-cliops-fetch-dlq' }))).QueueUrl!;
    await drain(url);
    // a failed asynchronous invoke (Lambda's on-failure record), an invoke Scheduler gave up on, and junk
    const record = {
      version: '1.0',
      requestContext: { functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:fetch:$LATEST', condition: 'RetriesExhausted' },
      requestPayload: { dataset: 'permits' },
    };
    await sendBodies(url, [JSON.stringify(record), JSON.stringify({ edfi: 'district' }), 'not json']);
    const invoked: [string, unknown][] = [];
    const r = await redriveFetch(sqsClient(), url, async (fn, payload) => void invoked.push([fn, payload]), 'fetch-fn', { visibilityTimeoutSeconds: 1 });
    expect(r).toMatchObject({ moved: 2, notUnderstood: 1, leftCopies: 0 });
    expect(invoked).toEqual(
      expect.arrayContaining([
        ['arn:aws:lambda:us-east-1:123456789012:function:fetch:$LATEST', { dataset: 'permits' }],
        ['fetch-fn', { edfi: 'district' }],
      ]),
    );
    await new Promise((done) => setTimeout(done, 1500));
    expect(await drain(url)).toEqual(['not json']);
  });

  it('loses no message when interrupted between send and delete: it is sent before it is deleted', async () => {
    await sendBodies(res.stageDlqUrl, bodies('stage', 12));
    // an SQS client whose deletes fail, as a process killed after sending would leave things
    const failing = new SQSClient({ region: process.env.AWS_REGION });
    failing.middlewareStack.add(
      (next, context) => async (a) => {
        if (context.commandName === 'DeleteMessageBatchCommand') throw new Error('interrupted');
        return next(a);
      },
      { step: 'initialize' },
    );
    await expect(moveMessages(failing, res.stageDlqUrl, res.stageQueueUrl, { visibilityTimeoutSeconds: 1 })).rejects.toThrow('interrupted');
    // what was received is in the work queue already; the rest, and the copies not deleted, are back in the DLQ
    await new Promise((r) => setTimeout(r, 1500));
    const again = await moveMessages(sqsClient(), res.stageDlqUrl, res.stageQueueUrl);
    expect(again.moved).toBe(12);
    const delivered = await drain(res.stageQueueUrl);
    expect(new Set(delivered)).toEqual(new Set(bodies('stage', 12)));
    // none lost; the batch sent before the interruption arrives twice (at least once, never zero)
    expect(delivered.length).toBeGreaterThan(12);
    expect((await queueCounts(sqsClient(), res.stageDlqUrl)).waiting).toBe(0);
  });
});

describe('the command line people expect', () => {
  const readmeCommands = () => {
    const readme = readFileSync('README.md', 'utf8');
    const section = readme.slice(readme.indexOf('## The command line'), readme.indexOf('\n## ', readme.indexOf('## The command line') + 5));
    return [...section.matchAll(/^\| `civic-etl ([a-z]+)/gm)].map((m) => m[1]!);
  };

  it('answers --help on every command the README names, with its usage and nothing else', () => {
    const commands = readmeCommands();
    expect(commands).toEqual(expect.arrayContaining(['run', 'load', 'profile', 'validate', 'fetch', 'status', 'catalog', 'replay', 'services', 'dlq', 'quarantine', 'upload']));
    for (const command of commands) {
      const r = civicEtl(command, '--help');
      expect({ command, code: r.code, stderr: r.stderr }).toEqual({ command, code: 0, stderr: '' });
      expect(r.stdout).toMatch(new RegExp(`^Usage:\\s+civic-etl ${command}\\b`));
    }
    expect(civicEtl('load', '-h').stdout).toContain('--table SCHEMA.TABLE');
    expect(civicEtl('help', 'replay').stdout).toContain('civic-etl replay DATASET');
  });

  it("prints the local services' state and settings as JSON", async () => {
    const status = civicEtl('services', 'status', '--json');
    const doc = JSON.parse(status.stdout);
    expect(doc).toMatchObject({ action: 'status', exitCode: status.code });
    expect(doc.services.moto).toMatch(/^running on 127\.0\.0\.1:\d+/);
    const env = JSON.parse(civicEtl('services', 'env', '--json').stdout);
    const { LOCAL_ENV_FILE, parseEnvFile } = await import('../../local/services.ts');
    expect(env).toEqual(parseEnvFile(readFileSync(LOCAL_ENV_FILE, 'utf8')));
    expect(env.AWS_ENDPOINT_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('ends quietly when the reader of its output goes away (| head)', async () => {
    const child = spawn(process.execPath, ['bin/civic-etl.mjs', 'dlq', 'list', '--pipeline', PIPELINE], { env: { ...process.env, NODE_NO_WARNINGS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader is gone before the command writes a line
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(stderr).not.toContain('EPIPE');
    expect(code).toBe(0);
  });

  it('tells its version', () => {
    const r = civicEtl('--version');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`civic-etl ${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`);
  });

  it('prints one JSON document for validate --json, valid files and mistakes alike', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'project: it_bad\nsuppliers: []\ndatasets:\n  - name: x\n    source: { type: upload, supplier: nobody }\n');
    const r = civicEtl('validate', PIPELINE, bad, '--json');
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc).toEqual([
      { file: PIPELINE, valid: true, project: PROJECT, suppliers: 1, datasets: 1, views: 0 },
      expect.objectContaining({ file: bad, valid: false, problems: expect.arrayContaining([expect.stringContaining('nobody')]) }),
    ]);
  });

  it('prints load --json as one document, and fits its table to the terminal width', async () => {
    await (await getPool()).query('DROP SCHEMA IF EXISTS it_cliops_load CASCADE');
    const wide = join(dir, 'wide.csv');
    const header = ['identifier', 'a_rather_long_description_column', 'another_long_column_name_here', 'amount'];
    writeFileSync(wide, `${header.join(',')}\n1,${'x'.repeat(70)},${'y'.repeat(50)},3.5\n2,short,z,4\n`);
    const json = civicEtl('load', wide, '--table', 'it_cliops_load.wide', '--json');
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(doc).toMatchObject({ table: 'it_cliops_load.wide', rowsRead: 2, rowsLoaded: 2, rowsRejected: 0 });
    expect(doc.columns.map((c: { name: string }) => c.name)).toEqual(header);

    // a terminal 48 columns wide (a pipe takes $COLUMNS as the terminal's width)
    const text = civicEtlWith({ COLUMNS: '48' }, 'load', wide, '--table', 'it_cliops_load.narrow');
    expect(text.code).toBe(0);
    const tableLines = text.stdout.split('\n').filter((l) => l.includes('│') || l.includes('┼'));
    expect(tableLines.length).toBe(2 + header.length);
    for (const l of tableLines) expect(l.length).toBeLessThanOrEqual(48);
    // the widest column was cut, with an ellipsis; the narrow ones kept whole
    const row = tableLines
      .find((l) => l.includes('a_rather'))!
      .split('│')
      .map((c) => c.trim());
    expect(row[0]).toMatch(/^a_rather\S*…$/);
    expect(row[1]).toBe('text');
  });
});

describe('a run, its status and its log', () => {
  const project = join(dir, 'project');
  beforeAll(async () => {
    mkdirSync(join(project, 'data'), { recursive: true });
    writeFileSync(join(project, 'pipeline.yaml'), readFileSync(PIPELINE, 'utf8'));
    writeFileSync(join(project, 'data', 'people.csv'), 'id,name,born\n1,Ann,1990-01-02\n2,Bo,not a date\n3,Cy,1985-12-31\n');
    const pool = await getPool();
    await pool.query(`DROP SCHEMA IF EXISTS ${PROJECT} CASCADE; DROP SCHEMA IF EXISTS ${PROJECT}_staging CASCADE`);
    await pool.query(`DELETE FROM etl.loads WHERE project = $1`, [PROJECT]);
  });

  it('prints run --json as one JSON document on stdout, its log lines on stderr', () => {
    const r = civicEtl('run', '--pipeline', join(project, 'pipeline.yaml'), '--upload-examples', '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout); // one document: no log line mixed in
    expect(doc.project).toBe(PROJECT);
    expect(doc.uploaded).toEqual([expect.objectContaining({ dataset: 'people', key: 'incoming/acme/people/people.csv' })]);
    expect(doc.queues.clean.messages).toBe(1);
    expect(doc.loads).toEqual([expect.objectContaining({ dataset: 'people', status: 'loaded', rows_read: 3, rows_loaded: 2, rows_quarantined: 1 })]);
    expect(doc.failedLoads).toBe(0);
    // the handlers logged at INFO: on stderr, as JSON lines
    const logs = r.stderr.split('\n').filter((l) => l.startsWith('{'));
    expect(logs.length).toBeGreaterThan(0);
    for (const l of logs) expect(JSON.parse(l)).toHaveProperty('level');
  });

  it('shows each load with its id, start time and duration, newest first, --limit of them', async () => {
    const pool = await getPool();
    const [load] = await rows<{ id: number; received_at: Date; seconds: number }>(
      pool,
      `SELECT id::int, received_at, extract(epoch FROM finished_at - received_at)::float8 AS seconds FROM etl.loads WHERE project = $1`,
      [PROJECT],
    );
    const r = civicEtl('status', '--pipeline', PIPELINE);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`ledger (etl.loads) for ${PROJECT}: the latest 1 of 1 load, newest first`);
    const line = r.stdout.split('\n').find((l) => l.includes('people.csv'))!;
    const cells = line.split('│').map((c) => c.trim());
    expect(cells.slice(0, 2)).toEqual([String(load!.id), load!.received_at.toISOString().slice(0, 19).replace('T', ' ')]);
    expect(cells[2]).toMatch(/^\d+\.\d+ s$/);
    expect(Math.abs(Number(cells[2]!.split(' ')[0]) - load!.seconds)).toBeLessThan(0.1);

    const json = JSON.parse(civicEtl('status', '--pipeline', PIPELINE, '--json', '--limit', '1').stdout);
    expect(json.loads).toEqual([expect.objectContaining({ id: load!.id, dataset: 'people', status: 'loaded' })]);
    expect(json).toMatchObject({ project: PROJECT, loadsInLedger: 1, rejectedMessages: { total: 0, latest: [] } });
    expect(civicEtl('status', '--pipeline', PIPELINE, '--limit', '0').code).toBe(2);
  });

  it('shows what a load quarantined: rule, column, value and source line', async () => {
    const [load] = await rows<{ id: number }>(await getPool(), `SELECT id::int FROM etl.loads WHERE project = $1`, [PROJECT]);
    // people.csv: line 1 the header, line 3 "2,Bo,not a date"
    const json = civicEtl('quarantine', 'people', '--pipeline', PIPELINE, '--json');
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(doc).toMatchObject({ dataset: `${PROJECT}.people`, total: 1, byRule: [{ rule: 'type', values: 1, rows: 1 }] });
    expect(doc.values).toEqual([expect.objectContaining({ loadId: load!.id, objectKey: 'incoming/acme/people/people.csv', line: 3, column: 'born', value: 'not a date', rule: 'type' })]);

    const text = civicEtl('quarantine', 'people', '--pipeline', PIPELINE);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`dataset ${PROJECT}.people: 1 quarantined value, newest load first:`);
    expect(text.stdout).toMatch(new RegExp(`${load!.id}\\s+│ 3\\s+│ born\\s+│ not a date\\s+│ type\\s+│`));

    const none = civicEtl('quarantine', 'people', '--rule', 'required', '--pipeline', PIPELINE);
    expect(none.stdout).toContain(`dataset ${PROJECT}.people: no quarantined value (rule required)`);
    expect(civicEtl('quarantine', 'nobody', '--pipeline', PIPELINE)).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown dataset "nobody" (datasets: people)') });
  });

  it('refuses to load a file into a schema the pipeline owns, unless told to', async () => {
    const path = join(dir, 'extra.csv');
    writeFileSync(path, 'a,b\n1,2\n');
    for (const schema of [PROJECT, `${PROJECT}_staging`, 'etl']) {
      const r = civicEtl('load', path, '--table', `${schema}.extra`);
      expect({ schema, code: r.code }).toEqual({ schema, code: 2 });
      expect(r.stderr).toContain(`schema ${schema} belongs to pipeline`);
      expect(r.stderr).toContain('--into-pipeline-schema');
      expect((await rows(await getPool(), `SELECT to_regclass($1) IS NULL AS absent`, [`${schema}.extra`]))[0]).toEqual({ absent: true });
    }
    const told = civicEtl('load', path, '--table', `${PROJECT}.extra`, '--into-pipeline-schema');
    expect(told.code).toBe(0);
    expect(await rows(await getPool(), `SELECT a, b FROM ${PROJECT}.extra`)).toEqual([{ a: 1, b: 2 }]);
    await (await getPool()).query(`DROP TABLE ${PROJECT}.extra; DROP TABLE IF EXISTS ${PROJECT}.extra_rejects`);
  });

  it("uploads a file where the supplier's upload goes, and refuses what the supplier may not upload", async () => {
    const path = join(dir, 'people-2024.csv');
    writeFileSync(path, 'id,name,born\n4,Di,2001-02-03\n');
    const r = civicEtl('upload', path, '--supplier', 'acme', '--dataset', 'people', '--pipeline', PIPELINE, '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ bucket: res.bucket, key: 'incoming/acme/people/people-2024.csv', bytes: readFileSync(path).length });
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const { s3Client } = await import('../../functions/common/aws.ts');
    const got = await s3Client().send(new GetObjectCommand({ Bucket: res.bucket, Key: doc.key, VersionId: doc.versionId }));
    expect(await got.Body!.transformToString()).toBe(readFileSync(path, 'utf8'));
    // S3 told the stage queue, as it does on AWS
    expect((await drain(res.stageQueueUrl)).some((b) => b.includes('people-2024.csv'))).toBe(true);

    const wrong = civicEtl('upload', path, '--supplier', 'nobody', '--dataset', 'people', '--pipeline', PIPELINE);
    expect(wrong).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown supplier "nobody" (suppliers: acme)') });
    expect(civicEtl('upload', path, '--supplier', 'acme', '--pipeline', PIPELINE)).toMatchObject({ code: 2, stderr: expect.stringContaining('upload needs --supplier S and --dataset D') });
  });
});

describe('progress of long work', () => {
  const big = join(dir, 'big.csv');
  beforeAll(() => {
    const lines = ['id,name,amount,day'];
    for (let i = 0; i < 300_000; i++) lines.push(`${i},name ${i},${i * 0.5},2024-01-${String((i % 28) + 1).padStart(2, '0')}`);
    writeFileSync(big, `${lines.join('\n')}\n`);
  });

  it('prints a plain progress line every few seconds on stderr when not on a terminal; stdout keeps the result', () => {
    const size = readFileSync(big).length;
    const r = civicEtlWith({ CIVIC_ETL_PROGRESS_SECONDS: '0.2' }, 'load', big, '--table', 'it_cliops_load.big', '--recreate');
    expect(r.code).toBe(0);
    const progress = r.stderr.split('\n').filter((l) => l.startsWith('load: '));
    expect(progress.length).toBeGreaterThan(0);
    const total = `${(size / 1e6).toFixed(1)} MB`;
    for (const l of progress) expect(l).toMatch(new RegExp(`^load: [\\d.]+ (B|kB|MB) of ${total.replace('.', '\\.')} \\(\\d+%\\) · .* elapsed`));
    expect(r.stdout).not.toContain('load: ');
    expect(r.stdout).toContain('rows read 300000, loaded 300000, rejected 0');
  });

  it('prints nothing but the JSON document with --json', () => {
    const r = civicEtlWith({ CIVIC_ETL_PROGRESS_SECONDS: '0.2', POWERTOOLS_LOG_LEVEL: 'ERROR' }, 'load', big, '--table', 'it_cliops_load.big', '--recreate', '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ rowsLoaded: 300_000 });
  });

  it.skipIf(spawnSync('script', ['--version']).status !== 0)('redraws one line on a terminal and clears it before the result', () => {
    // `script` gives the command a pseudo-terminal, as a person's shell would
    const r = spawnSync('script', ['-qec', `${process.execPath} bin/civic-etl.mjs load ${big} --table it_cliops_load.big --recreate`, '/dev/null'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
      timeout: 120_000,
    });
    expect(r.status).toBe(0);
    const screen = r.stdout;
    expect(screen).toMatch(/\r\x1b\[2Kload: [\d.]+ (kB|MB) of [\d.]+ MB \(\d+%\)/);
    // the line is cleared before the command's own output
    expect(screen).toMatch(/\r\x1b\[2Kcreated it_cliops_load\.big/);
    expect(screen).toContain('rows read 300000, loaded 300000, rejected 0');
  });
});

describe('civic-etl validate --database', () => {
  it('creates each view in a transaction it rolls back, naming the line of every failing view in one pass', async () => {
    const yaml = [
      'project: it_cliops_views',
      'suppliers:',
      '  - name: acme',
      'datasets:',
      '  - name: people',
      '    source: { type: upload, supplier: acme }',
      '    clean:',
      '      columns:',
      '        - { name: id, type: integer }',
      '        - { name: name }',
      '  - name: visits',
      '    source: { type: upload, supplier: acme }',
      '    clean:',
      '      columns:',
      '        - { name: person_id, type: integer }',
      '        - { name: day, type: date }',
      '  - name: places',
      '    source: { type: upload, supplier: acme }',
      'views:',
      '  - name: good',
      '    datasets: [people, visits]',
      '    sql: |',
      '      select p.id, p.name, count(v.day) as visits',
      '      from {{schema}}.people p',
      '      left join {{schema}}.visits v on v.person_id = p.id',
      '      group by p.id, p.name',
      '  - name: misspelt',
      '    datasets: [people]',
      '    sql: |',
      '      select id,',
      '        nmae',
      '      from {{schema}}.people',
      '  - name: wrong_type',
      '    datasets: [visits]',
      "    sql: \"select day + interval '1 day' > 'x'::integer from {{schema}}.visits\"",
      '  - name: on_places',
      '    datasets: [places]',
      '    sql: select * from {{schema}}.places',
      '',
    ].join('\n');
    const file = join(dir, 'views.yaml');
    writeFileSync(file, yaml);
    const lines = yaml.split('\n');
    const lineOf = (text: string) => lines.findIndex((l) => l.includes(text)) + 1;

    const r = civicEtl('validate', file, '--database');
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      `${file}:${lineOf('        nmae')}: view "misspelt" fails: column "nmae" does not exist`,
      expect.stringMatching(new RegExp(`^${file.replace(/[.]/g, '\\.')}:${lineOf('wrong_type') + 2}: view "wrong_type" fails: `)),
    ]);
    expect(r.stdout).toContain(`${file}:${lineOf('select * from')}: view "on_places" not checked: it reads places, whose columns come from the data`);
    expect(r.stdout).toContain('views checked against the database: 1 ok, 2 failing, 1 not checked');
    // nothing was left behind: the transaction was rolled back
    expect(await rows(await getPool(), `SELECT to_regnamespace('it_cliops_views') IS NULL AS gone`)).toEqual([{ gone: true }]);

    const json = JSON.parse(civicEtl('validate', file, '--database', '--json').stdout);
    expect(json[0].viewChecks.map((c: { view: string; status: string; line: number }) => [c.view, c.status, c.line])).toEqual([
      ['good', 'ok', lineOf('sql: |')],
      ['misspelt', 'error', lineOf('        nmae')],
      ['wrong_type', 'error', lineOf('wrong_type') + 2],
      ['on_places', 'not checked', lineOf('select * from')],
    ]);
  });
});

describe('civic-etl fetch --json', () => {
  it('prints the fetch run as one JSON document', async () => {
    const csv = 'id,name\n1,Ann\n';
    const server = createServer((req, res) => {
      if (req.url === '/people.csv') res.writeHead(200, { 'content-type': 'text/csv', etag: '"v1"' }).end(csv);
      else res.writeHead(404).end();
    });
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    const port = (server.address() as { port: number }).port;
    const file = join(dir, 'fetched.yaml');
    writeFileSync(file, `project: it_cliops_fetch\ndatasets:\n  - name: people\n    source: { type: http, url: "http://127.0.0.1:${port}/people.csv" }\n`);
    try {
      // the server answers in this process: the command runs beside it, not blocking it
      const child = spawn(process.execPath, ['bin/civic-etl.mjs', 'fetch', 'people', '--pipeline', file, '--json'], { env: { ...process.env, NODE_NO_WARNINGS: '1' } });
      let stdout = '';
      child.stdout.on('data', (b) => (stdout += b));
      const code = await new Promise<number | null>((done) => child.on('close', done));
      expect(code).toBe(0);
      const doc = JSON.parse(stdout);
      expect(doc.dataset).toBe('people');
      expect(doc.runs).toEqual([expect.objectContaining({ status: 'fetched', summary: expect.any(String) })]);
    } finally {
      server.close();
    }
  });
});
