/** `civic-etl dlq list|redrive`: the dead-letter queues of a project, locally or in a deployed stack. */
import { relative } from 'node:path';
import { loadPipeline } from '../contract/load.ts';
import { args, DEFAULT_PIPELINE, logsToStderr, positiveInt, printJson, printTable, UsageError } from './cli-kit.ts';
import { DLQ_NAMES, type DeadLetterQueue, type DlqName } from './dlq.ts';

export const DLQ_HELP = `Usage: civic-etl dlq list [--peek N] [--pipeline FILE] [--outputs FILE [--stack NAME]] [--json]
       civic-etl dlq redrive [stage|clean|fetch] [--max N] [--by-hand] [--wait]
                             [--pipeline FILE] [--outputs FILE [--stack NAME]] [--database-url URL] [--json]

  list      the messages waiting in each dead-letter queue and in flight, the queue each returns
            to, and the latest redrives recorded (etl.redrives). --peek N shows up to N messages
            of each DLQ (left where they are): the object or load each is about, and that load's
            status, attempts and error in the ledger. Also the queue messages the steps rejected as
            unreadable (not an S3 event, not JSON…): bad input, acknowledged without retries, so never
            in a DLQ; each is kept with its reason in etl.rejected_messages. Locally, list and
            redrive take the queues as they are: they create none and change no setting (the
            visibility timeout and maxReceiveCount civic-etl run gave them stay).
  redrive   send the messages of a DLQ (default: every DLQ) back to the queue they came from,
            once the cause is fixed; each redrive is logged (stderr) and recorded in etl.redrives.
            Locally (moto): receive, send to the work queue, delete, ten at a time — a message is
            sent before it is deleted, so an interruption loses none. On AWS: SQS's
            StartMessageMoveTask on the DLQ's ARN (--wait follows it to the end; --by-hand moves
            as locally instead). The fetch DLQ has no source queue: each failed fetch is given to
            the fetch function again (an asynchronous invoke), then deleted.

  --outputs FILE   a deployed stack's outputs instead of the local resources: the file written by
                   \`cdk deploy --outputs-file FILE\`, or by
                   \`aws cloudformation describe-stacks --stack-name NAME > FILE\`
                   (--stack NAME picks one stack of several in the file)
  --max N          redrive at most N messages per queue (default: those waiting when it starts)
  --database-url   record the redrive in this database (locally: the local one)
  --json           one JSON document on stdout`;

export async function dlqCommand(argv: string[]): Promise<number> {
  const { values, positionals } = args(
    argv,
    {
      pipeline: { type: 'string' },
      outputs: { type: 'string' },
      stack: { type: 'string' },
      max: { type: 'string' },
      'by-hand': { type: 'boolean' },
      wait: { type: 'boolean' },
      'database-url': { type: 'string' },
      json: { type: 'boolean' },
      peek: { type: 'string' },
    },
    true,
  );
  const [action, which, ...extra] = positionals;
  if (action !== 'list' && action !== 'redrive') throw new UsageError('dlq takes list or redrive');
  if (extra.length > 0 || (action === 'list' && which !== undefined)) throw new UsageError(`dlq ${action} takes ${action === 'list' ? 'no queue' : 'at most one queue (stage, clean or fetch)'}`);
  if (which !== undefined && !(DLQ_NAMES as readonly string[]).includes(which)) throw new UsageError(`unknown queue "${which}" (stage, clean or fetch)`);
  if (values.stack !== undefined && values.outputs === undefined) throw new UsageError('--stack picks a stack in the --outputs file; give --outputs');
  const max = positiveInt('--max', values.max, 'messages');
  const peek = positiveInt('--peek', values.peek, 'messages');
  if (peek !== undefined && action !== 'list') throw new UsageError('--peek goes with dlq list');
  process.env.POWERTOOLS_LOG_LEVEL ??= 'INFO'; // a redrive is an operator action: its log line shows
  await logsToStderr();

  const file = values.pipeline ?? DEFAULT_PIPELINE;
  const pipeline = loadPipeline(file);
  const onStack = values.outputs !== undefined;
  const { sqsClient } = await import('../functions/common/aws.ts');
  const dlq = await import('./dlq.ts');
  let queues: DeadLetterQueue[];
  let where: string;
  if (onStack) {
    let outputs: Record<string, string>;
    try {
      outputs = dlq.readStackOutputs(values.outputs!, values.stack);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    queues = dlq.queuesFromOutputs(outputs);
    where = `the stack in ${values.outputs}${values.stack ? ` (${values.stack})` : ''}`;
    if (values['database-url']) process.env.DATABASE_URL = values['database-url'];
  } else {
    if (values['database-url']) process.env.DATABASE_URL = values['database-url'];
    await (await import('./services.ts')).ensureServices();
    // the queues as they are: list and redrive create nothing and set no attribute, so the visibility
    // timeout and maxReceiveCount the runner gave them stay
    const { findLocalQueues } = await import('./resources.ts');
    queues = (await findLocalQueues(pipeline.project)).map((q) => ({ name: q.step, dlqUrl: q.dlqUrl, dlqArn: q.dlqArn, targetUrl: q.queueUrl, targetArn: q.queueArn }));
    where = `the local resources of ${pipeline.project} (${relative(process.cwd(), file) || file})`;
  }
  const sqs = sqsClient();
  // the ledger's database: locally always; for a stack when given (often out of reach from a desk)
  const { getPool, closePool } = await import('../functions/common/db.ts');
  let pool: import('pg').Pool | undefined;
  if (!onStack || process.env.DATABASE_URL) {
    pool = await getPool();
    if (!onStack) await (await import('../functions/migrate/migrate.ts')).migrate(pool, pipeline.project);
  }
  try {
    if (action === 'list') return await list(queues, where, pipeline.project, sqs, pool, values.json ?? false, peek ?? 0);
    const chosen = which === undefined ? queues : queues.filter((q) => q.name === which);
    if (chosen.length === 0 && !onStack && which !== 'fetch') {
      // not made yet locally: nothing waits, nothing to redrive (and nothing is created)
      if (values.json) printJson({ project: pipeline.project, redrives: [] });
      else console.log(`${where} has no ${which ?? ''} dead-letter queue yet, so nothing to redrive: civic-etl run (or upload) creates the queues and their DLQs`.replace('  ', ' '));
      return 0;
    }
    if (chosen.length === 0) {
      throw new UsageError(
        which === 'fetch' && !onStack
          ? 'there is no fetch dead-letter queue locally: a local fetch runs in the foreground (civic-etl fetch DATASET) and says why it failed'
          : `${where} has no ${which} dead-letter queue`,
      );
    }
    return await redrive(chosen, { project: pipeline.project, onStack, byHand: values['by-hand'] ?? false, wait: values.wait ?? false, max, json: values.json ?? false, sqs, pool });
  } finally {
    if (pool) await closePool();
  }
}

async function list(
  queues: DeadLetterQueue[],
  where: string,
  project: string,
  sqs: import('@aws-sdk/client-sqs').SQSClient,
  pool: import('pg').Pool | undefined,
  json: boolean,
  peek: number,
): Promise<number> {
  const { queueCounts, recentRedrives, peekMessages, withLedger } = await import('./dlq.ts');
  const rows = [];
  for (const q of queues) {
    const dead = await queueCounts(sqs, q.dlqUrl);
    const messages = peek > 0 && dead.waiting > 0 ? await peekMessages(sqs, q.dlqUrl, q.name, peek) : [];
    if (pool) await withLedger(pool, project, messages);
    rows.push({
      queue: q.name,
      deadLetters: dead.waiting,
      inFlight: dead.inFlight,
      dlqUrl: q.dlqUrl,
      dlqArn: q.dlqArn ?? null,
      returnsTo: q.targetUrl ?? q.fetchFunction ?? null,
      ...(peek > 0 ? { messages } : {}),
    });
  }
  const redrives = pool ? await recentRedrives(pool, project) : [];
  // messages the steps could not read: acknowledged without retries, so never in a DLQ, but kept
  const { rejectedMessages, describeRejectedMessages } = await import('../functions/common/rejected-messages.ts');
  const rejected = pool ? await rejectedMessages(pool, project, Math.max(peek, 10)) : undefined;
  if (json) {
    printJson({ where, project, queues: rows, redrives, ...(rejected ? { rejectedMessages: rejected } : {}) });
    return 0;
  }
  console.log(`dead-letter queues of ${where}:`);
  if (rows.length === 0) console.log('  none yet: civic-etl run (or upload) creates the queues and their DLQs');
  else
    printTable(
      rows.map((r) => ({ queue: r.queue, 'dead letters': r.deadLetters, 'in flight': r.inFlight, 'returns to': r.returnsTo ?? '—', dlq: r.dlqUrl })),
      80,
    );
  for (const r of rows) {
    if (!r.messages?.length) continue;
    console.log(`\nin the ${r.queue} DLQ${r.messages.length < r.deadLetters ? ` (the first ${r.messages.length} of ${r.deadLetters})` : ''}:`);
    for (const m of r.messages) {
      const load = m.load
        ? ` — load ${m.load.id}${m.load.dataset ? ` (${m.load.dataset})` : ''}: ${m.load.status}, ${m.load.attempts} attempt${m.load.attempts === 1 ? '' : 's'}${m.load.error ? `, error: ${m.load.error}` : ', no error recorded'}`
        : '';
      console.log(`  ${m.what}${m.sentAt ? `, sent ${m.sentAt.slice(0, 19).replace('T', ' ')}` : ''}, received ${m.receiveCount} time${m.receiveCount === 1 ? '' : 's'}${load}`);
    }
  }
  const unreadable = rejected ? describeRejectedMessages(rejected) : [];
  if (unreadable.length > 0) console.log(`\nnot in a DLQ: ${unreadable.join('\n')}`);
  const waiting = rows.filter((r) => r.deadLetters > 0);
  if (waiting.length > 0) console.log(`\nonce the cause is fixed: civic-etl dlq redrive ${waiting.length === 1 ? waiting[0]!.queue : ''}`.trimEnd());
  if (redrives.length > 0) {
    console.log('\nlatest redrives (etl.redrives):');
    printTable(
      redrives.map((r) => ({ id: r.id, at: r.startedAt.slice(0, 19).replace('T', ' '), queue: r.queue, how: r.method, messages: r.messages, by: r.operator ?? '', error: r.error ?? '' })),
      60,
    );
  }
  return 0;
}

interface RedriveContext {
  project: string;
  onStack: boolean;
  byHand: boolean;
  wait: boolean;
  max?: number;
  json: boolean;
  sqs: import('@aws-sdk/client-sqs').SQSClient;
  pool?: import('pg').Pool;
}

interface RedriveOutcome {
  queue: DlqName;
  method: 'moved' | 'move-task' | 'invoked';
  dlq: string;
  target: string;
  messages: number;
  leftCopies: number;
  notUnderstood: number;
  taskHandle?: string;
  taskStatus?: string;
  error?: string;
  redriveId?: number;
  deadLettersNow: number;
  targetWaitingNow?: number;
}

async function redrive(queues: DeadLetterQueue[], ctx: RedriveContext): Promise<number> {
  const dlq = await import('./dlq.ts');
  const { logger } = await import('../functions/common/logger.ts');
  const outcomes: RedriveOutcome[] = [];
  for (const q of queues) {
    const startedAt = new Date();
    const showProgress = !ctx.json && process.stderr.isTTY;
    const onBatch = showProgress ? (moved: number, total: number) => process.stderr.write(`\r  ${q.name}: ${moved}/${total} messages…`) : undefined;
    let outcome: RedriveOutcome;
    if (q.name === 'fetch') {
      const { LambdaClient, InvokeCommand } = await import('@aws-sdk/client-lambda');
      const lambda = new LambdaClient({});
      const r = await dlq.redriveFetch(
        ctx.sqs,
        q.dlqUrl,
        async (fn, payload) => {
          await lambda.send(new InvokeCommand({ FunctionName: fn, InvocationType: 'Event', Payload: Buffer.from(JSON.stringify(payload)) }));
        },
        q.fetchFunction,
        { max: ctx.max, onBatch },
      );
      outcome = {
        queue: q.name,
        method: 'invoked',
        dlq: q.dlqUrl,
        target: q.fetchFunction ?? 'the function each message names',
        messages: r.moved,
        leftCopies: r.leftCopies,
        notUnderstood: r.notUnderstood,
        error: r.error,
        deadLettersNow: 0,
      };
    } else if (ctx.onStack && !ctx.byHand) {
      const arn = q.dlqArn ?? (await dlq.queueArn(ctx.sqs, q.dlqUrl));
      let task: import('./dlq.ts').MoveTask;
      try {
        task = await dlq.startMoveTask(ctx.sqs, arn);
      } catch (error) {
        throw new Error(`SQS did not start a message move task on ${arn}: ${(error as Error).message.split('\n')[0]} (an endpoint without StartMessageMoveTask, such as moto: add --by-hand)`, {
          cause: error,
        });
      }
      const before = (await dlq.queueCounts(ctx.sqs, q.dlqUrl)).waiting;
      while (ctx.wait && (task.status === 'RUNNING' || task.status === undefined)) {
        await new Promise((r) => setTimeout(r, 5000));
        task = { ...task, ...(await dlq.moveTaskStatus(ctx.sqs, arn, task.taskHandle)) };
        onBatch?.(task.moved ?? 0, task.toMove ?? before);
      }
      outcome = {
        queue: q.name,
        method: 'move-task',
        dlq: arn,
        target: q.targetArn ?? q.targetUrl ?? 'its source queue',
        messages: task.moved ?? task.toMove ?? before,
        leftCopies: 0,
        notUnderstood: 0,
        taskHandle: task.taskHandle,
        taskStatus: task.status,
        error: task.failureReason,
        deadLettersNow: 0,
      };
    } else {
      if (!q.targetUrl) throw new Error(`the ${q.name} work queue's URL is unknown (stack output ${q.name === 'stage' ? 'Stage' : 'Clean'}QueueUrl): cannot move by hand`);
      const r = await dlq.moveMessages(ctx.sqs, q.dlqUrl, q.targetUrl, { max: ctx.max, onBatch });
      outcome = { queue: q.name, method: 'moved', dlq: q.dlqUrl, target: q.targetUrl, messages: r.moved, leftCopies: r.leftCopies, notUnderstood: 0, error: r.error, deadLettersNow: 0 };
    }
    if (onBatch) process.stderr.write('\n');
    outcome.deadLettersNow = (await dlq.queueCounts(ctx.sqs, q.dlqUrl)).waiting;
    if (q.targetUrl) outcome.targetWaitingNow = (await dlq.queueCounts(ctx.sqs, q.targetUrl)).waiting;
    if (ctx.pool && (outcome.messages > 0 || outcome.error || outcome.taskHandle)) {
      try {
        outcome.redriveId = await dlq.recordRedrive(ctx.pool, {
          project: ctx.project,
          queue: q.name,
          dlq: outcome.dlq,
          target: outcome.target,
          method: outcome.method,
          messages: outcome.messages,
          taskHandle: outcome.taskHandle,
          startedAt,
          error: outcome.error,
        });
      } catch (error) {
        // the messages moved all the same: say that the record is missing, and why
        logger.error('dlq redrive not recorded in etl.redrives', { project: ctx.project, queue: q.name, error: (error as Error).message });
      }
    }
    logger.info('dlq redrive', {
      project: ctx.project,
      queue: q.name,
      method: outcome.method,
      messages: outcome.messages,
      dlq: outcome.dlq,
      target: outcome.target,
      redriveId: outcome.redriveId,
      error: outcome.error,
    });
    outcomes.push(outcome);
    if (!ctx.json) printOutcome(outcome, ctx.pool !== undefined);
  }
  if (ctx.json) printJson({ project: ctx.project, redrives: outcomes });
  return outcomes.some((o) => o.error || o.leftCopies > 0 || o.notUnderstood > 0) ? 1 : 0;
}

function printOutcome(o: RedriveOutcome, recording: boolean): void {
  const n = (k: number, what = 'message') => `${k} ${what}${k === 1 ? '' : 's'}`;
  const verb = o.method === 'move-task' ? (o.taskStatus === 'COMPLETED' ? 'moved' : 'moving') : o.method === 'invoked' ? 'gave the fetch function again' : 'moved';
  const how = o.method === 'move-task' ? ` (SQS move task ${o.taskHandle}${o.taskStatus ? `, ${o.taskStatus}` : ''})` : '';
  console.log(`${o.queue}: ${verb} ${n(o.messages)} from ${o.dlq} back to ${o.target}${how}`);
  if (o.method !== 'move-task') console.log(`  now ${n(o.deadLettersNow)} in the DLQ${o.targetWaitingNow === undefined ? '' : `, ${n(o.targetWaitingNow)} waiting in the ${o.queue} queue`}`);
  if (o.leftCopies > 0) console.log(`  ${n(o.leftCopies)} sent but not deleted from the DLQ: a copy is in both (a repeat delivery the ledger recognises)`);
  if (o.notUnderstood > 0) console.log(`  ${n(o.notUnderstood)} not understood (no dataset or edfi payload), left in the DLQ`);
  if (o.error) console.log(`  stopped: ${o.error}`);
  if (o.redriveId !== undefined) console.log(`  recorded as redrive ${o.redriveId} (etl.redrives)`);
  else if (!recording && o.messages > 0) console.log('  not recorded in etl.redrives: give --database-url to record it');
}
