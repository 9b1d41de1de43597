/**
 * The console's queues page: how many messages wait in each work queue and its dead-letter queue
 * (the project's local queues in moto, named as local/resources.ts names them), the loads whose
 * last attempt failed, the latest redrives (etl.redrives), and a redrive button per DLQ: the one
 * write the console makes, done as `civic-etl dlq redrive` does it locally (local/dlq.ts). The
 * counts come from SQS: with the database down the page still shows them, and says the ledger's
 * part is unavailable and why.
 */
import { randomBytes } from 'node:crypto';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { html } from '../../functions/common/html.ts';
import { logger } from '../../functions/common/logger.ts';
import { messageOf } from '../../functions/common/errors.ts';
import { rejectedMessages } from '../../functions/common/rejected-messages.ts';
import { moveMessages, queueCounts, recentRedrives, recordRedrive, type QueueCounts } from '../dlq.ts';
import { localResourceNames } from '../resources.ts';
import { exists, objectKey, fmt, notice, readableDatabaseError, readOnly, statusBadge, when, type ConsoleContext, type PageRequest, type PageResult } from './kit.ts';

export const REDRIVE_QUEUES = ['stage', 'clean'] as const;
export type RedriveQueue = (typeof REDRIVE_QUEUES)[number];

interface LocalQueue {
  name: RedriveQueue;
  queueName: string;
  dlqName: string;
  url?: string;
  dlqUrl?: string;
}

const urls = new Map<string, string>();

/** A queue's URL, or undefined when moto has no queue of that name (not created yet). */
async function queueUrl(ctx: ConsoleContext, name: string): Promise<string | undefined> {
  const known = urls.get(name);
  if (known) return known;
  try {
    const url = (await ctx.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
    if (url) urls.set(name, url);
    return url;
  } catch (error) {
    const n = (error as { name?: string }).name ?? '';
    if (n === 'QueueDoesNotExist' || n === 'AWS.SimpleQueueService.NonExistentQueue') return undefined;
    throw error;
  }
}

/** The project's stage and clean queues with their DLQs, as they are now in moto (nothing is created). */
export async function localQueues(ctx: ConsoleContext): Promise<LocalQueue[]> {
  const names = localResourceNames(ctx.pipeline.project);
  const queues: LocalQueue[] = [
    { name: 'stage', queueName: names.stageQueue, dlqName: names.stageDlq },
    { name: 'clean', queueName: names.cleanQueue, dlqName: names.cleanDlq },
  ];
  await Promise.all(
    queues.map(async (q) => {
      [q.url, q.dlqUrl] = await Promise.all([queueUrl(ctx, q.queueName), queueUrl(ctx, q.dlqName)]);
    }),
  );
  return queues;
}

/** What a redrive from the console did, shown on the queues page after it. */
export interface RedriveOutcome {
  queue: RedriveQueue;
  moved: number;
  leftCopies: number;
  error?: string;
  redriveId?: number;
  /** Why the redrive is not in etl.redrives, if it is not. */
  notRecorded?: string;
}

const running = new Set<RedriveQueue>();

/**
 * Move the messages waiting in a DLQ back to its work queue (receive, send, delete, ten at a
 * time: an interruption loses none) and record it in etl.redrives, as `civic-etl dlq redrive` does.
 */
export async function redrive(ctx: ConsoleContext, queue: RedriveQueue): Promise<RedriveOutcome> {
  if (running.has(queue)) return { queue, moved: 0, leftCopies: 0, error: `a redrive of the ${queue} DLQ is already under way` };
  running.add(queue);
  try {
    const q = (await localQueues(ctx)).find((x) => x.name === queue)!;
    if (!q.url || !q.dlqUrl) return { queue, moved: 0, leftCopies: 0, error: `the ${queue} queue or its DLQ does not exist in moto yet (run the pipeline once: civic-etl run)` };
    const startedAt = new Date();
    const r = await moveMessages(ctx.sqs, q.dlqUrl, q.url);
    const outcome: RedriveOutcome = { queue, moved: r.moved, leftCopies: r.leftCopies, error: r.error };
    if (r.moved > 0 || r.error) {
      try {
        outcome.redriveId = await recordRedrive(ctx.pool, {
          project: ctx.pipeline.project,
          queue,
          dlq: q.dlqUrl,
          target: q.url,
          method: 'moved',
          messages: r.moved,
          startedAt,
          error: r.error,
        });
      } catch (error) {
        // the messages moved all the same: say that the record is missing, and why
        outcome.notRecorded = messageOf(error);
        logger.error('dlq redrive not recorded in etl.redrives', { project: ctx.pipeline.project, queue, error: outcome.notRecorded });
      }
    }
    logger.info('dlq redrive', { project: ctx.pipeline.project, queue, method: 'moved', messages: r.moved, dlq: q.dlqUrl, target: q.url, redriveId: outcome.redriveId, error: r.error, by: 'console' });
    return outcome;
  } finally {
    running.delete(queue);
  }
}

/** The latest outcomes, by a random id the redirect after the POST names (a reload shows it again, and redrives nothing). */
const outcomes = new Map<string, RedriveOutcome>();

export function keepOutcome(outcome: RedriveOutcome): string {
  const id = randomBytes(8).toString('hex');
  outcomes.set(id, outcome);
  while (outcomes.size > 50) outcomes.delete(outcomes.keys().next().value!);
  return id;
}

function outcomeText(o: RedriveOutcome) {
  const n = (k: number) => `${fmt(k)} message${k === 1 ? '' : 's'}`;
  return html`<div class="${o.error || o.notRecorded ? 'error' : 'done'} outcome" data-queue="${o.queue}" data-moved="${o.moved}">
Redrive of the ${o.queue} DLQ: moved ${n(o.moved)} back to the ${o.queue} queue${o.redriveId !== undefined && html`, recorded as redrive ${o.redriveId} (etl.redrives)`}.
${o.leftCopies > 0 && html` ${n(o.leftCopies)} sent but not deleted from the DLQ: a copy is in both (a repeat delivery the ledger recognises).`}
${o.error && html` Stopped: ${o.error}.`}${o.notRecorded && html` Not recorded in etl.redrives: ${o.notRecorded}.`}</div>`;
}

export async function queuesPage(ctx: ConsoleContext, req: PageRequest): Promise<PageResult> {
  const project = ctx.pipeline.project;
  const outcome = outcomes.get(req.params.get('outcome') ?? '');
  let queueProblem: string | undefined;
  let rows: { q: LocalQueue; work?: QueueCounts; dead?: QueueCounts }[] = [];
  try {
    rows = await Promise.all(
      (await localQueues(ctx)).map(async (q) => {
        const [work, dead] = await Promise.all([q.url ? queueCounts(ctx.sqs, q.url) : undefined, q.dlqUrl ? queueCounts(ctx.sqs, q.dlqUrl) : undefined]);
        return { q, work, dead };
      }),
    );
  } catch (error) {
    queueProblem = `SQS did not answer (${process.env.AWS_ENDPOINT_URL_SQS ?? process.env.AWS_ENDPOINT_URL ?? 'no AWS_ENDPOINT_URL'}): ${messageOf(error)}. Are the local services running (civic-etl services status)?`;
    logger.error('console: queues not counted', { error: messageOf(error) });
  }
  // the queue counts come from SQS: a database that is down leaves the ledger's part out, not the page
  let ledgerProblem: string | undefined;
  const ledger = await readOnly(ctx, async (db) => {
    if (!(await exists(db, 'etl', 'loads'))) return undefined;
    const waiting = await db.query<{
      id: number;
      dataset: string | null;
      object_key: string;
      status: string;
      error_kind: string;
      error_step: string | null;
      attempts: number;
      last_attempt_at: Date | null;
      error: string | null;
    }>(
      `SELECT id::int, dataset, object_key, status, error_kind, error_step, attempts, last_attempt_at, error FROM etl.loads
        WHERE project = $1 AND error_kind IN ('retryable', 'exhausted', 'blocked') AND status IN ('received', 'staged')
        ORDER BY last_attempt_at DESC NULLS LAST, id DESC LIMIT 50`,
      [project],
    );
    const redrives = (await exists(db, 'etl', 'redrives')) ? await recentRedrives(db, project, 20) : undefined;
    const rejected = (await exists(db, 'etl', 'rejected_messages')) ? await rejectedMessages(db, project, 20) : undefined;
    return { waiting: waiting.rows, redrives, rejected };
  }).catch((error: unknown) => {
    ledgerProblem = readableDatabaseError(error) ?? `${messageOf(error)} (the details are in the console's log, on its standard error)`;
    logger.error('console: the ledger part of the queues page could not be read', { error: messageOf(error), stack: (error as Error).stack });
    return null;
  });
  const count = (c: QueueCounts | undefined, key: keyof QueueCounts) => (c === undefined ? html`<span class="muted">not created</span>` : fmt(c[key]));
  const body = html`<h1>Queues and dead-letter queues</h1>
<p class="muted">The local queues of project ${project} (moto). A message whose step fails as many times as its queue allows (maxReceiveCount, 5 by default) moves to the step's dead-letter queue (DLQ); once the cause is fixed, redrive it: its messages go back to the queue they came from, and the redrive is recorded in etl.redrives (as <code>civic-etl dlq redrive</code> does).</p>
${outcome && outcomeText(outcome)}
${queueProblem && notice(queueProblem)}
${
  rows.length > 0 &&
  html`<table class="queues"><thead><tr><th>step</th><th class="num">waiting</th><th class="num">in flight</th><th class="num">DLQ waiting</th><th class="num">DLQ in flight</th><th>queue</th><th></th></tr></thead><tbody>${rows.map(
    ({
      q,
      work,
      dead,
    }) => html`<tr data-queue="${q.name}" data-waiting="${work?.waiting ?? ''}" data-dead="${dead?.waiting ?? ''}"><td>${q.name}</td><td class="num">${count(work, 'waiting')}</td><td class="num">${count(work, 'inFlight')}</td>
<td class="num dead">${count(dead, 'waiting')}</td><td class="num">${count(dead, 'inFlight')}</td><td class="mono">${q.queueName}<br>${q.dlqName}</td>
<td>${
      dead && dead.waiting > 0 && q.url
        ? html`<form method="post" action="/queues/redrive"><input type="hidden" name="token" value="${ctx.token}"><input type="hidden" name="queue" value="${q.name}"><button type="submit" class="redrive">Redrive ${fmt(dead.waiting)} message${dead.waiting === 1 ? '' : 's'}</button></form>`
        : ''
    }</td></tr>`,
  )}</tbody></table>
<p class="muted">Counts are SQS's approximate numbers. There is no fetch DLQ locally: a local fetch runs in the foreground (civic-etl fetch) and says why it failed.</p>`
}
${
  ledger === null
    ? notice(
        `The ledger is unavailable (etl.loads, etl.redrives): ${ledgerProblem!.charAt(0).toLowerCase()}${ledgerProblem!.slice(1)} Loads whose last attempt failed and the latest redrives are not shown; the queue counts above come from SQS and are current.`,
      )
    : ledger === undefined
      ? notice('The ledger (etl.loads) is not in this database yet: run the pipeline once (civic-etl run).')
      : html`<h2>Loads whose last attempt failed</h2>
${
  ledger.waiting.length === 0
    ? html`<p class="muted">None: no load is waiting for a retry or in a DLQ.</p>`
    : html`<table><thead><tr><th class="num">load</th><th>dataset</th><th>object</th><th>status</th><th>kind</th><th>step</th><th class="num">attempts</th><th class="num">last attempt</th><th>error</th></tr></thead><tbody>${ledger.waiting.map(
        (l) =>
          html`<tr><td class="num"><a href="/loads/${l.id}">${l.id}</a></td><td>${l.dataset ?? '—'}</td><td>${objectKey(l.object_key)}</td><td>${statusBadge(l.status)}</td><td>${l.error_kind === 'exhausted' ? 'in the DLQ' : l.error_kind}</td><td>${l.error_step ?? ''}</td><td class="num">${l.attempts}</td><td class="num">${when(l.last_attempt_at)}</td><td class="err">${l.error ?? ''}</td></tr>`,
      )}</tbody></table>`
}
${
  ledger.rejected &&
  ledger.rejected.total > 0 &&
  html`<h2>Messages rejected as unreadable</h2>
<p class="muted">${fmt(ledger.rejected.total)} queue message${ledger.rejected.total === 1 ? '' : 's'} no step could read (not JSON, not an S3 event notification, not a clean message): bad input, acknowledged without retries — so in no DLQ — and kept with the reason in etl.rejected_messages${ledger.rejected.latest.length < ledger.rejected.total ? html`; the latest ${ledger.rejected.latest.length}` : ''}.</p>
<table class="rejected"><thead><tr><th class="num">at</th><th>step</th><th>message id</th><th>reason</th><th>body</th></tr></thead><tbody>${ledger.rejected.latest.map(
    (m) =>
      html`<tr data-message="${m.messageId}"><td class="num">${when(m.receivedAt)}</td><td>${m.step}</td><td class="mono">${m.messageId}</td><td class="err">${m.reason}</td><td class="mono">${m.body.length > 120 ? `${m.body.slice(0, 120)}…` : m.body}</td></tr>`,
  )}</tbody></table>`
}
<h2>Latest redrives</h2>
${
  ledger.redrives === undefined
    ? notice('etl.redrives is not in this database yet (an older migration): run the pipeline once to migrate it.')
    : ledger.redrives.length === 0
      ? html`<p class="muted">No redrive yet.</p>`
      : html`<table class="redrives"><thead><tr><th class="num">id</th><th class="num">at</th><th>queue</th><th>how</th><th class="num">messages</th><th>by</th><th>error</th></tr></thead><tbody>${ledger.redrives.map(
          (r) =>
            html`<tr><td class="num">${r.id}</td><td class="num">${when(r.startedAt)}</td><td>${r.queue}</td><td>${r.method}</td><td class="num">${fmt(r.messages)}</td><td>${r.operator ?? ''}</td><td class="err">${r.error ?? ''}</td></tr>`,
        )}</tbody></table>`
}`
}`;
  return { title: `Queues · ${project}`, body };
}
