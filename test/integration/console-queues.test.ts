/**
 * The console's queues page when the database is down: queue depths come from SQS, so the page
 * still shows every queue with its counts, and says plainly that the ledger's part (failed loads,
 * redrives) cannot be shown, and why — not a 503 for the whole page.
 */
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePipeline } from '../../contract/load.ts';
import { sqsClient } from '../../functions/common/aws.ts';
import { closePool, getPool } from '../../functions/common/db.ts';
import { migrate } from '../../functions/migrate/migrate.ts';
import { startConsole, type RunningConsole } from '../../local/console/server.ts';
import { ensureLocalResources, type LocalResources } from '../../local/resources.ts';
import { drain } from './captured.ts';

const PROJECT = 'it_console_down';
let resources: LocalResources;
let running: RunningConsole;
// a database that is not there: nothing listens on port 9 (discard)
const down = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:9/no_database', connectionTimeoutMillis: 2000 });
down.on('error', () => undefined);

beforeAll(async () => {
  resources = await ensureLocalResources({ project: PROJECT });
  for (const q of [resources.stageQueueUrl, resources.stageDlqUrl, resources.cleanQueueUrl, resources.cleanDlqUrl]) await drain(q);
  // two messages waiting in the stage queue, one in the clean DLQ
  for (const body of ['{"a":1}', '{"a":2}']) await sqsClient().send(new SendMessageCommand({ QueueUrl: resources.stageQueueUrl, MessageBody: body }));
  await sqsClient().send(new SendMessageCommand({ QueueUrl: resources.cleanDlqUrl, MessageBody: '{"loadId":1}' }));
  const pipeline = parsePipeline({ project: PROJECT, suppliers: [{ name: 's' }], datasets: [{ name: 'd', source: { type: 'upload', supplier: 's' } }] });
  running = await startConsole({ pool: down, pipeline, sqs: sqsClient() });
});
afterAll(async () => {
  await running?.close();
  await down.end();
  if (resources) for (const q of [resources.stageQueueUrl, resources.cleanDlqUrl]) await drain(q);
});

async function waiting(url: string): Promise<number> {
  const a = (await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes!;
  return Number(a.ApproximateNumberOfMessages);
}

describe('the queues page with the database down', () => {
  it('still shows each queue with its depth from SQS, and says the ledger part is unavailable and why', async () => {
    const res = await fetch(new URL('/queues', running.url));
    const page = await res.text();

    expect(res.status).toBe(200);
    const stage = /<tr data-queue="stage" data-waiting="(\d+)" data-dead="(\d+)">/.exec(page);
    const clean = /<tr data-queue="clean" data-waiting="(\d+)" data-dead="(\d+)">/.exec(page);
    expect(stage?.slice(1).map(Number)).toEqual([await waiting(resources.stageQueueUrl), await waiting(resources.stageDlqUrl)]);
    expect(clean?.slice(1).map(Number)).toEqual([await waiting(resources.cleanQueueUrl), await waiting(resources.cleanDlqUrl)]);
    expect(stage?.[1]).toBe('2');
    expect(clean?.[2]).toBe('1');
    // the redrive button still works from SQS alone
    expect(page).toMatch(/<button type="submit" class="redrive">Redrive 1 message<\/button>/);
    expect(page).toMatch(/The ledger is unavailable[^<]*: the database cannot be reached[^<]*ECONNREFUSED/);
    expect(page).toContain('Loads whose last attempt failed and the latest redrives are not shown');
  });
});

describe('the queues page with the database up', () => {
  it('lists the messages the steps rejected as unreadable, with their id, step and reason', async () => {
    const pool = await getPool();
    await migrate(pool, undefined);
    await pool.query('DELETE FROM etl.rejected_messages WHERE project = $1', [PROJECT]);
    await pool.query(`INSERT INTO etl.rejected_messages (project, step, message_id, body, reason) VALUES ($1, 'stage', 'm-1', 'not json', 'message body is not JSON: not an S3 event notification')`, [
      PROJECT,
    ]);
    const pipeline = parsePipeline({ project: PROJECT, suppliers: [{ name: 's' }], datasets: [{ name: 'd', source: { type: 'upload', supplier: 's' } }] });
    const up = await startConsole({ pool, pipeline, sqs: sqsClient() });
    try {
      const res = await fetch(new URL('/queues', up.url));
      const page = await res.text();
      expect(res.status).toBe(200);
      expect(page).toContain('1 queue message no step could read');
      expect(page).toMatch(
        /<tr data-message="m-1">.*<td>stage<\/td><td class="mono">m-1<\/td><td class="err">message body is not JSON: not an S3 event notification<\/td><td class="mono">not json<\/td><\/tr>/s,
      );
    } finally {
      await up.close();
      await pool.query('DELETE FROM etl.rejected_messages WHERE project = $1', [PROJECT]);
      await closePool();
    }
  });
});
