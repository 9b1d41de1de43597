/**
 * The one error model (functions/common/errors.ts) end to end: each failure class driven through
 * the local runner (real PostgreSQL, moto's S3 and SQS), and what an operator then sees — the
 * ledger, `civic-etl status`, the log and the DLQ.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { GetQueueAttributesCommand, ListQueuesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { sqsClient } from '../../functions/common/aws.ts';
import { logger } from '../../functions/common/logger.ts';
import type { LocalPipeline } from '../../local/pipeline.ts';
import { ensureLocalResources } from '../../local/resources.ts';
import { pollOnce, type BindingStats } from '../../local/runner.ts';
import { captureLines, drain, freshLocalPipeline } from './captured.ts';
import { rows } from './support.ts';

// the steps' log lines and EMF metric lines, as CloudWatch would receive them
process.env.POWERTOOLS_METRICS_DISABLED = 'false';
logger.setLogLevel('INFO');

const PIPELINE = 'test/fixtures/failures-pipeline.yaml';
const BLOCKED = 'test/fixtures/failures-blocked-pipeline.yaml';
const MAX_RECEIVES = 3;
const opened = freshLocalPipeline(PIPELINE, { visibilityTimeoutSeconds: 1, maxReceiveCount: MAX_RECEIVES });
let local: LocalPipeline;
beforeAll(() => {
  local = opened();
});
const dir = mkdtempSync(join(tmpdir(), 'civic-etl-failures-'));
const file = (name: string, body: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
};

const { logLines, metricLines } = captureLines();

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/civic-etl.mjs', ...args, '--pipeline', PIPELINE], { encoding: 'utf8', env: process.env, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `civic-etl run` makes the local queues with its own settings: this file's short visibility timeout and receive count again. */
async function queuesAsTested(): Promise<void> {
  await ensureLocalResources({ project: local.pipeline.project, visibilityTimeoutSeconds: 1, maxReceiveCount: MAX_RECEIVES });
}

const loadOf = async (name: string) =>
  (
    await rows<{ id: number; status: string; error: string | null; error_kind: string | null; error_step: string | null; attempts: number; last_attempt_at: Date | null }>(
      local.pool,
      `SELECT id::int, status, error, error_kind, error_step, attempts, last_attempt_at FROM etl.loads WHERE project = 'it_failures' AND object_key LIKE '%/' || $1`,
      [name],
    )
  )[0];

describe('permanent: bad input is recorded with its cause and acknowledged', () => {
  const csv = 'id,name\n' + Array.from({ length: 200 }, (_, i) => `${i},name ${i}`).join('\n') + '\n';
  const gz = gzipSync(csv);
  const badCrc = Buffer.from(gz);
  badCrc[badCrc.length - 6] = badCrc[badCrc.length - 6]! ^ 0xff; // the CRC-32 of the trailer
  const cases: [string, string | Buffer, RegExp][] = [
    ['truncated.csv.gz', gz.subarray(0, Math.floor(gz.length / 2)), /truncated\.csv\.gz: cannot be decompressed: unexpected end of file/],
    ['bad-crc.csv.gz', badCrc, /bad-crc\.csv\.gz: cannot be decompressed: incorrect data check/],
    ['empty-array.json', '[]', /empty-array\.json: no fields to load/],
    ['empty-object.json', '{}', /empty-object\.json: no fields to load/],
    ['null.json', 'null', /null\.json: no fields to load/],
    ['whitespace.csv', '   \t  \n \t\n', /whitespace\.csv holds only whitespace \(spaces, tabs, line breaks\): no header, no data rows/],
    ['nul-key.json', '[{"a\\u0000b": 1, "c": 2}]', /nul-key\.json: line 1, column 3: field 1 is named "a\\u0000b", with a NUL character/],
    ['ctid.csv', 'ctid,name\n1,Ann\n', /ctid\.csv: column name "ctid" conflicts with a system column name \(SQLSTATE 42701\)/],
  ];

  it.each(cases)('%s: failed in the ledger, with the file named; no retry, nothing in a DLQ', async (name, body, names) => {
    await local.uploadAsSupplier('records', file(name, body));
    const stats = await local.run({ maxMs: 120_000 });

    const load = await loadOf(name);
    expect(load).toMatchObject({ status: 'failed', error_kind: 'permanent', error: expect.stringMatching(names) });
    expect(stats.stage!.failures + stats.clean!.failures).toBe(0);
    expect(await drain(local.resources.stageDlqUrl)).toEqual([]);
    expect(await drain(local.resources.cleanDlqUrl)).toEqual([]);
    // the log names the load, the file and the cause; the rejection is counted
    expect(logLines()).toContainEqual(expect.objectContaining({ loadId: load!.id, object: `incoming/acme/records/${name}`, kind: 'permanent', error: expect.stringMatching(names) }));
    expect(metricLines().reduce((n, l) => n + Number(l.RejectedLoads), 0)).toBe(1);
    expect(metricLines().reduce((n, l) => n + Number(l.FailedMessages), 0)).toBe(0);
  });
});

describe('retryable: an infrastructure error is recorded at every attempt, retried, then dead-lettered', () => {
  it('a trigger raising an exception: the ledger, the log, status and the DLQ say so, and run ends', async () => {
    await local.uploadAsSupplier('programs', file('programs-v1.csv', 'id,name\n1,Ann\n2,Bo\n'));
    await local.run({ maxMs: 60_000 });
    expect(await loadOf('programs-v1.csv')).toMatchObject({ status: 'loaded' });
    await local.pool.query(`CREATE FUNCTION it_failures.frozen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'programs are frozen for the audit'; END $$;
      CREATE TRIGGER frozen BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON it_failures.programs FOR EACH STATEMENT EXECUTE FUNCTION it_failures.frozen()`);
    try {
      await local.uploadAsSupplier('programs', file('programs-v2.csv', 'id,name\n1,Ann\n2,Bo\n3,Cy\n'));
      const started = Date.now();
      const stats = await local.run({ maxMs: 120_000 });
      const seconds = (Date.now() - started) / 1000;

      expect(seconds).toBeLessThan(60); // MAX_RECEIVES attempts a second apart, not the 120 s limit
      expect(stats.clean!.failures).toBe(MAX_RECEIVES);
      const load = await loadOf('programs-v2.csv');
      expect(load).toMatchObject({ status: 'staged', error_kind: 'exhausted', error_step: 'clean', attempts: MAX_RECEIVES, error: expect.stringContaining('programs are frozen for the audit') });
      expect(load!.last_attempt_at).not.toBeNull();
      // one log line per attempt, each naming the load, the dataset, the object and the attempt
      const attempts = logLines().filter((l) => l.loadId === load!.id && l.kind === 'retryable');
      expect(attempts.map((l) => [l.attempt, l.of, l.dataset, l.object])).toEqual(
        Array.from({ length: MAX_RECEIVES }, (_, i) => [i + 1, MAX_RECEIVES, 'programs', 'incoming/acme/programs/programs-v2.csv']),
      );
      expect(attempts.at(-1)!.message).toMatch(/the last: the message goes to the DLQ/);
      // counted as failed messages of the clean step (what the alarm watches)
      const failed = metricLines()
        .filter((l) => l.step === 'clean')
        .reduce((n, l) => n + Number(l.FailedMessages), 0);
      expect(failed).toBe(MAX_RECEIVES);

      const status = cli('status', 'programs');
      expect(status.status).toBe(0);
      expect(status.stdout).toContain(`load ${load!.id} · incoming/acme/programs/programs-v2.csv`);
      expect(status.stdout).toMatch(/Failed, in the clean dead-letter queue \(staged\): all 3 clean attempts failed, the last at .* UTC/);
      expect(status.stdout).toContain('programs are frozen for the audit');
      expect(status.stdout).toMatch(/DLQ: 1 message waiting in the clean dead-letter queue/);

      expect(await drain(local.resources.cleanDlqUrl)).toEqual([JSON.stringify({ loadId: load!.id })]);
    } finally {
      await local.pool.query('DROP TRIGGER IF EXISTS frozen ON it_failures.programs; DROP FUNCTION IF EXISTS it_failures.frozen()');
    }
  });
});

describe('a dropped database connection', () => {
  it('is survived: the backend terminated mid-clean fails that attempt, the retry loads the file', async () => {
    // hold the clean's per-dataset lock from another connection, so the clean waits inside its transaction
    const holder = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(hashtext('civic-etl:clean'), hashtext('it_failures.programs'))`);
      await local.uploadAsSupplier('programs', file('programs-v3.csv', 'id,name\n1,Ann\n2,Bo\n3,Cy\n4,Di\n'));
      const running = local.run({ maxMs: 120_000 });
      // the clean's backend, waiting for the lock: terminate it, as a failover or an admin would
      let terminated = 0;
      for (let i = 0; i < 300 && terminated === 0; i++) {
        // inside a transaction the statistics views are a snapshot: take a fresh one each time
        await holder.query('SELECT pg_stat_clear_snapshot()');
        const r = await holder.query<{ n: number }>(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
            WHERE application_name = 'civic-etl' AND wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%' AND pid <> pg_backend_pid()`,
        );
        terminated = r.rows[0]!.n;
        if (terminated === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(terminated).toBe(1);
      await holder.query('COMMIT');
      const stats = await running;

      expect(stats.clean!.failures).toBe(1);
      const load = await loadOf('programs-v3.csv');
      // loaded at the second attempt; the cured error is gone, the attempt count stays as its trace
      expect(load).toMatchObject({ status: 'loaded', error: null, error_kind: null, attempts: 2, error_step: 'clean' });
      const attempt = logLines().find((l) => l.loadId === load!.id && l.kind === 'retryable');
      expect(attempt).toMatchObject({ attempt: 1, of: MAX_RECEIVES, error: expect.stringMatching(/terminat/i) });
      expect(await rows(local.pool, 'SELECT count(*)::int AS n FROM it_failures.programs')).toEqual([{ n: 4 }]);
      expect(await drain(local.resources.cleanDlqUrl)).toEqual([]);
    } finally {
      await holder.end();
    }
  });
});

describe('blocked: a definition that must change keeps the load until it is fixed', () => {
  it('a view that cannot be created: staged and blocked, in the DLQ; once fixed, the redriven message loads it', async () => {
    local.configure({ pipelineFile: BLOCKED });
    let load: Awaited<ReturnType<typeof loadOf>>;
    try {
      await local.uploadAsSupplier('programs', file('programs-v4.csv', 'id,name\n1,Ann\n2,Bo\n3,Cy\n4,Di\n5,Ed\n'));
      const stats = await local.run({ maxMs: 120_000 });

      expect(stats.clean!.failures).toBe(MAX_RECEIVES);
      load = await loadOf('programs-v4.csv');
      expect(load).toMatchObject({
        status: 'staged',
        error_kind: 'blocked',
        error_step: 'clean',
        attempts: MAX_RECEIVES,
        error: expect.stringMatching(/view "programs_named" cannot be created: column "no_such_column" does not exist/),
      });
      expect(logLines().filter((l) => l.loadId === load!.id && l.kind === 'blocked')).toHaveLength(MAX_RECEIVES);
      const status = cli('status', 'programs');
      expect(status.stdout).toMatch(/Blocked \(staged\): the definition must change \(clean attempt 3 at .* UTC failed\)/);
      expect(status.stdout).toMatch(/DLQ: 1 message waiting in the clean dead-letter queue/);
      // the clean table still holds the previous load's rows
      expect(await rows(local.pool, 'SELECT count(*)::int AS n FROM it_failures.programs')).toEqual([{ n: 4 }]);
    } finally {
      local.configure();
    }
    // the definition is fixed (deployed): redrive the DLQ's message to its queue
    const dead = await drain(local.resources.cleanDlqUrl);
    expect(dead).toEqual([JSON.stringify({ loadId: load!.id })]);
    for (const body of dead) await sqsClient().send(new SendMessageCommand({ QueueUrl: local.resources.cleanQueueUrl, MessageBody: body }));
    await local.run({ maxMs: 60_000 });

    expect(await loadOf('programs-v4.csv')).toMatchObject({ status: 'loaded', error: null, error_kind: null });
    expect(await rows(local.pool, 'SELECT count(*)::int AS n FROM it_failures.programs_named')).toEqual([{ n: 5 }]);
  });
});

describe('a message that cannot be read', () => {
  // a body that is not JSON, JSON that is not an object, an object of no known shape
  const bodies = ['not a clean message', 'null', '[1,2]', '{"hello":1}'];

  it.each([
    ['clean', () => local.resources.cleanQueueUrl, () => local.resources.cleanDlqUrl],
    ['stage', () => local.resources.stageQueueUrl, () => local.resources.stageDlqUrl],
  ] as const)('on the %s queue is rejected at once as bad input (not retried), logged with its message id and reason, and shown by status and dlq list', async (step, queueUrl, dlqUrl) => {
    const ids: string[] = [];
    for (const body of bodies) ids.push((await sqsClient().send(new SendMessageCommand({ QueueUrl: queueUrl(), MessageBody: body }))).MessageId!);
    const stats = await local.run({ maxMs: 60_000 });

    // no pointless retries: each message handled once, acknowledged, nothing in the DLQ
    expect(stats[step]!.messages).toBe(bodies.length);
    expect(stats[step]!.failures).toBe(0);
    expect(await drain(dlqUrl())).toEqual([]);
    // counted for their own alarm (they never reach a DLQ, whose depth is alarmed)
    expect(metricLines().reduce((n, l) => n + Number(l.UnreadableMessages ?? 0), 0)).toBe(bodies.length);
    expect(metricLines().reduce((n, l) => n + Number(l.FailedMessages ?? 0), 0)).toBe(0);
    // one log line per message: its id, the reason, bad input (permanent), attempt 1
    const lines = logLines().filter((l) => l.step === step && ids.includes(l.messageId as string));
    expect(lines.map((l) => [l.messageId, l.kind, l.attempt]).sort()).toEqual(ids.map((id) => [id, 'permanent', 1]).sort());
    for (const l of lines) expect(l.message).toMatch(new RegExp(`^${step} rejected message ${l.messageId}: bad input, not retried`));
    expect(lines.find((l) => l.messageId === ids[0])!.error).toMatch(/not JSON/);
    // the body is kept where an operator finds it (nothing lost), with the reason
    const kept = await rows<{ message_id: string; step: string; body: string; reason: string }>(
      local.pool,
      `SELECT message_id, step, body, reason FROM etl.rejected_messages WHERE project = 'it_failures' AND step = $1 ORDER BY id`,
      [step],
    );
    expect(kept.map((k) => [k.message_id, k.body])).toEqual(ids.map((id, i) => [id, bodies[i]]));
    for (const k of kept) expect(k.reason).not.toBe('');
    // status and dlq list name each rejected message and why
    const status = cli('status');
    expect(status.status).toBe(0);
    expect(status.stdout).toContain(`${bodies.length} queue messages rejected as unreadable (acknowledged, not retried; kept in etl.rejected_messages)`);
    for (const id of ids) expect(status.stdout).toMatch(new RegExp(`${step} message ${id}: \\S`));
    const dlq = cli('dlq', 'list');
    expect(dlq.status).toBe(0);
    for (const id of ids) expect(dlq.stdout).toContain(id);
    await local.pool.query('DELETE FROM etl.rejected_messages WHERE project = $1', ['it_failures']);
  });

  it('naming a load staged in parts that the ledger does not hold is rejected as bad input and kept, not taken for a repeat', async () => {
    const body = JSON.stringify({ civicEtlPart: { loadId: 987654321, part: 2 } });
    const { MessageId } = await sqsClient().send(new SendMessageCommand({ QueueUrl: local.resources.stageQueueUrl, MessageBody: body }));
    const stats = await local.run({ maxMs: 60_000 });

    expect(stats.stage!.messages).toBe(1);
    expect(stats.stage!.failures).toBe(0);
    expect(await drain(local.resources.stageDlqUrl)).toEqual([]);
    const kept = await rows<{ message_id: string; body: string; reason: string }>(local.pool, `SELECT message_id, body, reason FROM etl.rejected_messages WHERE project = 'it_failures' AND step = 'stage'`);
    expect(kept).toEqual([{ message_id: MessageId, body, reason: expect.stringMatching(/load 987654321 \(part 2\), which the ledger does not hold/) }]);
    const status = cli('status');
    expect(status.stdout).toMatch(new RegExp(`stage message ${MessageId}: .*load 987654321`));
    await local.pool.query('DELETE FROM etl.rejected_messages WHERE project = $1', ['it_failures']);
  });

  it('goes back to the queue, and so to its DLQ, when the ledger cannot keep it: never dropped', async () => {
    // the ledger's table for such messages cannot be written (a stand-in for a ledger that fails)
    await local.pool.query('ALTER TABLE etl.rejected_messages RENAME TO rejected_messages_away');
    let stats: Awaited<ReturnType<typeof local.run>>;
    let MessageId: string | undefined;
    try {
      ({ MessageId } = await sqsClient().send(new SendMessageCommand({ QueueUrl: local.resources.stageQueueUrl, MessageBody: 'not JSON, not kept' })));
      stats = await local.run({ maxMs: 60_000 });
    } finally {
      await local.pool.query('ALTER TABLE etl.rejected_messages_away RENAME TO rejected_messages');
    }
    // every receive failed back to the queue, until the queue moved it to its DLQ
    expect(stats.stage!.messages).toBe(MAX_RECEIVES);
    expect(stats.stage!.failures).toBe(MAX_RECEIVES);
    expect(await drain(local.resources.stageDlqUrl)).toEqual(['not JSON, not kept']);
    const lines = logLines().filter((l) => l.messageId === MessageId);
    expect(lines).toHaveLength(MAX_RECEIVES);
    for (const l of lines) expect(l.message).toMatch(/could not keep rejected message .*: it goes back to the queue/);
    await queuesAsTested();
  });

  it('makes civic-etl run say so and exit 1, as a failed load would', async () => {
    const { MessageId } = await sqsClient().send(new SendMessageCommand({ QueueUrl: local.resources.stageQueueUrl, MessageBody: 'not an S3 event' }));
    const r = cli('run');
    await queuesAsTested();

    expect(r.status).toBe(1);
    expect(r.stdout).toContain('1 queue message rejected as unreadable (acknowledged, not retried; kept in etl.rejected_messages)');
    expect(r.stdout).toMatch(new RegExp(`stage message ${MessageId}: message body is not JSON`));
    await local.pool.query('DELETE FROM etl.rejected_messages WHERE project = $1', ['it_failures']);
  });

  it('is in status --json as in status: step, message id, when, reason, body, receives; and the DLQs as status counts them', async () => {
    const ids: string[] = [];
    for (const body of bodies) ids.push((await sqsClient().send(new SendMessageCommand({ QueueUrl: local.resources.cleanQueueUrl, MessageBody: body }))).MessageId!);
    await local.run({ maxMs: 60_000 });
    // one message waiting in the stage DLQ, which status counts
    await sqsClient().send(new SendMessageCommand({ QueueUrl: local.resources.stageDlqUrl, MessageBody: 'dead letter' }));
    const kept = await rows<{ step: string; message_id: string; queue: string | null; body: string; reason: string; receives: number; received_at: Date }>(
      local.pool,
      `SELECT step, message_id, queue, body, reason, receives, received_at FROM etl.rejected_messages WHERE project = 'it_failures' ORDER BY received_at DESC, id DESC`,
    );
    expect(kept.map((k) => k.message_id).sort()).toEqual([...ids].sort());

    const text = cli('status');
    const r = cli('status', '--json');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    // the same messages the text names, with what it says of each
    for (const id of ids) expect(text.stdout).toContain(`clean message ${id}: `);
    expect(doc.rejectedMessages.total).toBe(kept.length);
    expect(doc.rejectedMessages.latest).toEqual(
      kept.map((k) => ({ step: k.step, messageId: k.message_id, ...(k.queue ? { queue: k.queue } : {}), body: k.body, reason: k.reason, receives: k.receives, receivedAt: k.received_at.toISOString() })),
    );
    for (const m of doc.rejectedMessages.latest) expect(text.stdout).toContain(`${m.step} message ${m.messageId}: ${m.reason}`);
    // the loads, as before, and the dead letters the text reports
    const loads = await rows<{ id: number }>(local.pool, `SELECT id::int FROM etl.loads WHERE project = 'it_failures' ORDER BY id DESC LIMIT 20`);
    expect(doc.loads.map((l: { id: number }) => l.id)).toEqual(loads.map((l) => l.id));
    expect(doc.deadLetters).toEqual([
      { step: 'stage', queueUrl: local.resources.stageDlqUrl, messages: 1 },
      { step: 'clean', queueUrl: local.resources.cleanDlqUrl, messages: 0 },
    ]);
    expect(text.stdout).toContain(`DLQ: 1 message waiting in the stage dead-letter queue (${local.resources.stageDlqUrl})`);
    expect(await drain(local.resources.stageDlqUrl)).toEqual(['dead letter']);
    await local.pool.query('DELETE FROM etl.rejected_messages WHERE project = $1', ['it_failures']);
  });

  it('in a DLQ is described by dlq list --peek, whatever its shape', async () => {
    for (const body of bodies) await sqsClient().send(new SendMessageCommand({ QueueUrl: local.resources.stageDlqUrl, MessageBody: body }));
    const r = cli('dlq', 'list', '--peek', '10', '--json');
    expect(r.stderr).not.toMatch(/TypeError/);
    expect(r.status).toBe(0);
    const stage = JSON.parse(r.stdout).queues.find((q: { queue: string }) => q.queue === 'stage');
    expect(stage.messages.map((m: { what: string }) => m.what).sort()).toEqual([
      'a body that is not JSON',
      'a message that names no object or load',
      'a message that names no object or load',
      'a message that names no object or load',
    ]);
    expect((await drain(local.resources.stageDlqUrl)).sort()).toEqual([...bodies].sort());
  });
});

describe('civic-etl dlq', () => {
  /** Every attribute of the four queues but their message counts, as SQS gives them. */
  const settings = async () => {
    const out: Record<string, Record<string, string>> = {};
    for (const url of [local.resources.stageQueueUrl, local.resources.stageDlqUrl, local.resources.cleanQueueUrl, local.resources.cleanDlqUrl]) {
      const a = (await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes ?? {};
      out[url] = Object.fromEntries(Object.entries(a).filter(([k]) => !k.startsWith('ApproximateNumberOfMessages')));
    }
    return out;
  };

  it('list and redrive leave the queues as the runner set them: visibility timeout, redrive policy and its maxReceiveCount', async () => {
    await queuesAsTested();
    const before = await settings();
    // what this file's runner set, which the defaults (5 s, 5 receives) are not
    expect(before[local.resources.stageQueueUrl]).toMatchObject({ VisibilityTimeout: '1' });
    expect(JSON.parse(before[local.resources.cleanQueueUrl]!.RedrivePolicy!)).toMatchObject({ maxReceiveCount: MAX_RECEIVES });

    expect(cli('dlq', 'list').status).toBe(0);
    expect(cli('dlq', 'list', '--json').status).toBe(0);
    expect(await settings()).toEqual(before);

    await sqsClient().send(new SendMessageCommand({ QueueUrl: local.resources.cleanDlqUrl, MessageBody: JSON.stringify({ loadId: 0 }) }));
    const r = cli('dlq', 'redrive', 'clean');
    expect(r.stdout).toContain(`clean: moved 1 message from ${local.resources.cleanDlqUrl} back to ${local.resources.cleanQueueUrl}`);
    expect(await settings()).toEqual(before);
    expect(await drain(local.resources.cleanQueueUrl)).toEqual([JSON.stringify({ loadId: 0 })]);
  });

  it('list and redrive create no queue where there is none yet, and say so', async () => {
    const namespace = `none-${Date.now().toString(36)}`;
    const env = { ...process.env, CIVIC_ETL_LOCAL_NAMESPACE: namespace };
    const run = (...args: string[]) => spawnSync(process.execPath, ['bin/civic-etl.mjs', ...args, '--pipeline', PIPELINE], { encoding: 'utf8', env, timeout: 60_000 });
    const list = run('dlq', 'list');
    expect(list.status).toBe(0);
    expect(list.stdout).toContain('none yet: civic-etl run (or upload) creates the queues and their DLQs');
    expect(JSON.parse(run('dlq', 'list', '--json').stdout).queues).toEqual([]);
    const redrive = run('dlq', 'redrive');
    expect(redrive.status).toBe(0);
    expect(redrive.stdout).toContain('nothing to redrive');
    expect((await sqsClient().send(new ListQueuesCommand({ QueueNamePrefix: `civic-etl-${namespace}` }))).QueueUrls ?? []).toEqual([]);
  });
});

describe('the local runner', () => {
  it("keeps a message hidden while its handler runs longer than the queue's visibility timeout, so a slow attempt is one attempt", async () => {
    const receives: string[] = [];
    let calls = 0;
    const binding = {
      name: 'slow',
      queueUrl: local.resources.cleanQueueUrl,
      queueArn: local.resources.cleanQueueArn,
      timeoutMs: 30_000,
      handler: async (event: import('aws-lambda').SQSEvent) => {
        calls++;
        receives.push(...event.Records.map((r) => r.attributes.ApproximateReceiveCount));
        // three times the queue's 1 s visibility timeout
        await new Promise((r) => setTimeout(r, 3000));
        return { batchItemFailures: calls === 1 ? event.Records.map((r) => ({ itemIdentifier: r.messageId })) : [] };
      },
    };
    await sqsClient().send(new SendMessageCommand({ QueueUrl: local.resources.cleanQueueUrl, MessageBody: 'slow' }));
    const stats: BindingStats = { invocations: 0, messages: 0, failures: 0 };
    // while the first (failing) attempt runs, a second poll finds nothing
    const first = pollOnce(binding, stats, { waitSeconds: 0 });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await pollOnce({ ...binding, handler: async () => ({ batchItemFailures: [] }) }, stats, { waitSeconds: 0 })).toBe(0);
    await first;
    // the failed message comes back after the queue's own visibility timeout, as attempt 2
    await new Promise((r) => setTimeout(r, 1500));
    expect(await pollOnce(binding, stats, { waitSeconds: 1 })).toBe(1);
    expect(receives).toEqual(['1', '2']);
    expect(await drain(local.resources.cleanQueueUrl)).toEqual([]);
  });
});
