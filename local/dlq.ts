/**
 * The dead-letter queues of a project, locally (moto) or in a deployed stack (from its outputs):
 * how many messages wait in each, and redrive — send them back to the queue they came from.
 *
 * Three ways to redrive, by where the messages are:
 * - `moved`: receive from the DLQ, send to the work queue, then delete from the DLQ, ten at a time.
 *   Used locally (moto has no StartMessageMoveTask) and on AWS with `--by-hand`. Send comes before
 *   delete, so an interruption never loses a message; at worst (stopped between the two, or a
 *   delete that fails) a copy stays in the DLQ too, which the handlers take as a repeat delivery
 *   (the ledger keys on the object version: a version already loaded is not loaded twice).
 * - `move-task`: SQS's own StartMessageMoveTask on the DLQ's ARN, which returns each message to
 *   the queue it came from (AWS).
 * - `invoked`: the fetch DLQ has no source queue (EventBridge Scheduler and the fetch function's
 *   failed asynchronous invocations write to it): each message's payload is given to the fetch
 *   function again (an asynchronous invoke, as Scheduler does), then the message is deleted.
 */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  StartMessageMoveTaskCommand,
  type Message,
  type MessageAttributeValue,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Queryable } from '../functions/common/db.ts';

export const DLQ_NAMES = ['stage', 'clean', 'fetch'] as const;
export type DlqName = (typeof DLQ_NAMES)[number];

export interface DeadLetterQueue {
  name: DlqName;
  dlqUrl: string;
  dlqArn?: string;
  /** The work queue its messages came from (stage, clean). */
  targetUrl?: string;
  targetArn?: string;
  /** For the fetch DLQ: the function its payloads are given to again. */
  fetchFunction?: string;
}

/**
 * A stack's outputs as a flat map, from a file written by `cdk deploy --outputs-file F`
 * (`{ "<stack>": { "<key>": "<value>" } }`), by `aws cloudformation describe-stacks`
 * (`{ "Stacks": [{ "StackName", "Outputs": [{ "OutputKey", "OutputValue" }] }] }`), by its
 * `--query 'Stacks[0].Outputs'` (the array alone), or a flat `{ "<key>": "<value>" }`.
 */
export function parseStackOutputs(text: string, file: string, stack?: string): Record<string, string> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON (${(error as Error).message}); write it with cdk deploy --outputs-file or aws cloudformation describe-stacks`);
  }
  const fromList = (list: unknown[]) =>
    Object.fromEntries(
      list
        .map((o) => o as { OutputKey?: unknown; OutputValue?: unknown })
        .filter((o) => typeof o.OutputKey === 'string')
        .map((o) => [o.OutputKey as string, String(o.OutputValue ?? '')]),
    );
  const pick = <T extends { name: string }>(candidates: T[]): T => {
    const chosen = stack === undefined ? candidates : candidates.filter((c) => c.name === stack);
    if (chosen.length === 1) return chosen[0]!;
    const names = candidates.map((c) => c.name).join(', ') || 'none';
    throw new Error(stack === undefined ? `${file} holds the outputs of several stacks (${names}): name one with --stack` : `${file} has no stack "${stack}" (stacks: ${names})`);
  };
  if (Array.isArray(doc)) return fromList(doc);
  if (doc && typeof doc === 'object') {
    const o = doc as Record<string, unknown>;
    if (Array.isArray(o.Stacks)) {
      const stacks = o.Stacks.map((s) => s as { StackName?: string; Outputs?: unknown[] }).map((s) => ({ name: s.StackName ?? '', outputs: s.Outputs ?? [] }));
      return fromList(pick(stacks).outputs);
    }
    const values = Object.entries(o);
    if (values.every(([, v]) => typeof v === 'string')) return o as Record<string, string>;
    if (values.every(([, v]) => v && typeof v === 'object' && !Array.isArray(v))) {
      return pick(values.map(([name, v]) => ({ name, outputs: v as Record<string, string> }))).outputs;
    }
  }
  throw new Error(`${file}: not a stack's outputs (expected cdk deploy --outputs-file or aws cloudformation describe-stacks JSON)`);
}

export function readStackOutputs(file: string, stack?: string): Record<string, string> {
  return parseStackOutputs(readFileSync(file, 'utf8'), file, stack);
}

/** The DLQs a stack's outputs name (StageDeadLetterQueueUrl, …Arn, StageQueueUrl, FetchFunctionName…). */
export function queuesFromOutputs(outputs: Record<string, string>): DeadLetterQueue[] {
  const queues: DeadLetterQueue[] = [];
  for (const [name, prefix] of [
    ['stage', 'Stage'],
    ['clean', 'Clean'],
  ] as const) {
    const dlqUrl = outputs[`${prefix}DeadLetterQueueUrl`];
    if (!dlqUrl) continue;
    queues.push({ name, dlqUrl, dlqArn: outputs[`${prefix}DeadLetterQueueArn`], targetUrl: outputs[`${prefix}QueueUrl`], targetArn: outputs[`${prefix}QueueArn`] });
  }
  if (outputs.FetchDeadLetterQueueUrl) {
    queues.push({ name: 'fetch', dlqUrl: outputs.FetchDeadLetterQueueUrl, dlqArn: outputs.FetchDeadLetterQueueArn, fetchFunction: outputs.FetchFunctionName });
  }
  if (queues.length === 0) throw new Error('the stack outputs name no dead-letter queue (StageDeadLetterQueueUrl, CleanDeadLetterQueueUrl, FetchDeadLetterQueueUrl)');
  return queues;
}

export interface QueueCounts {
  /** Messages waiting (visible). */
  waiting: number;
  /** Messages received and not yet deleted or returned. */
  inFlight: number;
}

export async function queueCounts(sqs: SQSClient, url: string): Promise<QueueCounts> {
  const a = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes ?? {};
  return { waiting: Number(a.ApproximateNumberOfMessages ?? 0), inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) };
}

export async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
  if (!arn) throw new Error(`SQS returned no ARN for ${url}`);
  return arn;
}

export interface MoveResult {
  moved: number;
  /** Messages sent to the work queue whose delete from the DLQ failed: a copy is in both. */
  leftCopies: number;
  /** Why the move stopped before the DLQ was empty, if it did. */
  error?: string;
}

export interface MoveOptions {
  /** Move at most this many (default: as many as wait in the DLQ when the move starts). */
  max?: number;
  /** How long a received message stays hidden while it is moved, seconds (default 60). */
  visibilityTimeoutSeconds?: number;
  /** Called after each batch with the count moved so far. */
  onBatch?: (moved: number, total: number) => void;
}

/**
 * Receive from `fromUrl`, send to `toUrl`, delete from `fromUrl`, up to ten at a time, until the
 * DLQ is empty or `max` messages moved. Bounded by the messages waiting at the start, so that a
 * consumer failing the same messages back into the DLQ meanwhile cannot keep it going forever.
 * Bodies and message attributes are kept.
 */
export async function moveMessages(sqs: SQSClient, fromUrl: string, toUrl: string, opts: MoveOptions = {}): Promise<MoveResult> {
  const total = opts.max ?? (await queueCounts(sqs, fromUrl)).waiting;
  const done = new Set<string>();
  const result: MoveResult = { moved: 0, leftCopies: 0 };
  let emptyReceives = 0;
  while (result.moved < total) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: fromUrl,
        MaxNumberOfMessages: Math.min(10, total - result.moved),
        WaitTimeSeconds: 1,
        VisibilityTimeout: opts.visibilityTimeoutSeconds ?? 60,
        MessageAttributeNames: ['All'],
      }),
    );
    const received = out.Messages ?? [];
    if (received.length === 0) {
      if (++emptyReceives >= 2) break; // counts are approximate: two empty long polls end it
      continue;
    }
    emptyReceives = 0;
    // a message whose delete failed earlier comes back once its visibility timeout ends: sent already
    const messages = received.filter((m) => !done.has(m.MessageId!));
    if (messages.length === 0) continue;
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: toUrl,
        Entries: messages.map((m, i) => ({ Id: String(i), MessageBody: m.Body ?? '', MessageAttributes: keptAttributes(m) })),
      }),
    );
    const ok = (sent.Successful ?? []).map((s) => messages[Number(s.Id)]!);
    if (ok.length > 0) {
      const deleted = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: fromUrl, Entries: ok.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      result.leftCopies += deleted.Failed?.length ?? 0;
      for (const m of ok) done.add(m.MessageId!);
      result.moved += ok.length;
    }
    opts.onBatch?.(result.moved, total);
    if (sent.Failed?.length) {
      const f = sent.Failed[0]!;
      // not deleted: those stay in the DLQ (visible again after the visibility timeout)
      result.error = `${sent.Failed.length} message(s) could not be sent to ${toUrl}: ${f.Code} ${f.Message ?? ''}`.trim();
      break;
    }
  }
  return result;
}

function keptAttributes(m: Message): Record<string, MessageAttributeValue> | undefined {
  const entries = Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, { DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue }] as const);
  return entries.length ? Object.fromEntries(entries) : undefined;
}

export interface MoveTask {
  taskHandle: string;
  /** What SQS counted to move when the task started (ApproximateNumberOfMessagesToMove). */
  toMove?: number;
  status?: string;
  moved?: number;
  failureReason?: string;
}

/** SQS's StartMessageMoveTask: each message of the DLQ back to the queue it came from. */
export async function startMoveTask(sqs: SQSClient, dlqArn: string): Promise<MoveTask> {
  const started = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: dlqArn }));
  if (!started.TaskHandle) throw new Error(`SQS started no message move task for ${dlqArn}`);
  return { taskHandle: started.TaskHandle, ...(await moveTaskStatus(sqs, dlqArn, started.TaskHandle)) };
}

export async function moveTaskStatus(sqs: SQSClient, dlqArn: string, taskHandle: string): Promise<Omit<MoveTask, 'taskHandle'>> {
  const tasks = (await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 10 }))).Results ?? [];
  const t = tasks.find((r) => r.TaskHandle === taskHandle) ?? tasks[0];
  return { toMove: t?.ApproximateNumberOfMessagesToMove, status: t?.Status, moved: t?.ApproximateNumberOfMessagesMoved, failureReason: t?.FailureReason };
}

/** What a fetch DLQ message asks for again: its payload, and the function that failed it when it says. */
export function fetchPayloadOf(m: Pick<Message, 'Body' | 'MessageAttributes'>): { payload: Record<string, unknown>; functionArn?: string } | undefined {
  let body: unknown;
  try {
    body = JSON.parse(m.Body ?? '');
  } catch {
    return undefined;
  }
  if (!body || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  // a failed asynchronous invocation (Lambda's on-failure destination): the invocation record
  const context = b.requestContext as { functionArn?: string } | undefined;
  if (b.requestPayload && typeof b.requestPayload === 'object' && context) return { payload: b.requestPayload as Record<string, unknown>, functionArn: context.functionArn };
  // an invoke EventBridge Scheduler gave up on: the schedule's input, its target in an attribute
  if (typeof b.dataset === 'string' || typeof b.edfi === 'string') return { payload: b, functionArn: m.MessageAttributes?.TARGET_ARN?.StringValue };
  return undefined;
}

export interface InvokeResult extends MoveResult {
  /** Messages whose payload was not understood: left in the DLQ. */
  notUnderstood: number;
}

/**
 * Give each fetch DLQ message's payload to the fetch function again (asynchronously), then delete
 * it. `invoke` is the Lambda call (injected: tests and local runs give their own).
 */
export async function redriveFetch(
  sqs: SQSClient,
  dlqUrl: string,
  invoke: (functionName: string, payload: Record<string, unknown>) => Promise<void>,
  fallbackFunction: string | undefined,
  opts: MoveOptions = {},
): Promise<InvokeResult> {
  const total = opts.max ?? (await queueCounts(sqs, dlqUrl)).waiting;
  const result: InvokeResult = { moved: 0, leftCopies: 0, notUnderstood: 0 };
  const seen = new Set<string>();
  let emptyReceives = 0;
  while (result.moved + result.notUnderstood < total) {
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: opts.visibilityTimeoutSeconds ?? 60, MessageAttributeNames: ['All'] }),
    );
    const messages = (out.Messages ?? []).filter((m) => !seen.has(m.MessageId!));
    if (messages.length === 0) {
      if (++emptyReceives >= 2) break;
      continue;
    }
    emptyReceives = 0;
    const invoked: Message[] = [];
    for (const m of messages) {
      seen.add(m.MessageId!);
      const what = fetchPayloadOf(m);
      const fn = what?.functionArn ?? fallbackFunction;
      if (!what || !fn) {
        result.notUnderstood++;
        continue;
      }
      try {
        await invoke(fn, what.payload);
      } catch (error) {
        result.error = `could not invoke ${fn}: ${(error as Error).message}`;
        break;
      }
      invoked.push(m);
    }
    if (invoked.length > 0) {
      const deleted = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: dlqUrl, Entries: invoked.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      result.leftCopies += deleted.Failed?.length ?? 0;
      result.moved += invoked.length;
    }
    opts.onBatch?.(result.moved, total);
    if (result.error) break;
  }
  return result;
}

export interface RedriveRecord {
  project: string;
  queue: DlqName;
  dlq: string;
  target: string;
  method: 'moved' | 'move-task' | 'invoked';
  messages: number;
  taskHandle?: string;
  startedAt: Date;
  error?: string;
}

/** Record an operator's redrive in etl.redrives; returns its id. */
export async function recordRedrive(db: Queryable, r: RedriveRecord): Promise<number> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO etl.redrives (project, queue, dlq, target, method, messages, task_handle, operator, started_at, error)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
    [r.project, r.queue, r.dlq, r.target, r.method, r.messages, r.taskHandle ?? null, operator(), r.startedAt, r.error ?? null],
  );
  return Number(rows[0]!.id);
}

export interface RedriveRow {
  id: number;
  queue: DlqName;
  method: string;
  messages: number;
  operator: string | null;
  startedAt: string;
  error: string | null;
}

export async function recentRedrives(db: Queryable, project: string, limit = 5): Promise<RedriveRow[]> {
  const { rows } = await db.query(`SELECT id::int, queue, method, messages, operator, started_at, error FROM etl.redrives WHERE project = $1 ORDER BY started_at DESC, id DESC LIMIT $2`, [project, limit]);
  return rows.map((r) => ({ id: r.id, queue: r.queue, method: r.method, messages: r.messages, operator: r.operator, startedAt: (r.started_at as Date).toISOString(), error: r.error }));
}

function operator(): string | null {
  try {
    return process.env.SUDO_USER || userInfo().username;
  } catch {
    return process.env.USER ?? null;
  }
}

export interface DeadLetter {
  messageId: string;
  /** Receives before it was dead-lettered (and since, in the DLQ). */
  receiveCount: number;
  sentAt?: string;
  /** What the message asks for, in words: an object to stage, a load to clean, a fetch. */
  what: string;
  /** The ledger's load it is about, when known. */
  loadId?: number;
  objectKey?: string;
  /** That load's status and error in the ledger (filled by the caller that has the database). */
  load?: { id: number; dataset: string | null; status: string; error: string | null; attempts: number };
}

/**
 * Up to `n` messages of a DLQ, read without taking them: each is received with a visibility
 * timeout of 0, so it stays where it is, visible to the next reader (a DLQ has no redrive policy:
 * its receive count counts for nothing).
 */
export async function peekMessages(sqs: SQSClient, url: string, queue: DlqName, n: number): Promise<DeadLetter[]> {
  const seen = new Map<string, DeadLetter>();
  for (let tries = 0; seen.size < n && tries < Math.ceil(n / 10) + 3; tries++) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: Math.min(10, n),
        VisibilityTimeout: 0,
        WaitTimeSeconds: tries === 0 ? 1 : 0,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) break;
    for (const m of messages)
      if (!seen.has(m.MessageId!) && seen.size < n)
        seen.set(m.MessageId!, { messageId: m.MessageId!, receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 0), sentAt: sentAt(m), ...describe(queue, m) });
  }
  return [...seen.values()];
}

function sentAt(m: Message): string | undefined {
  const t = Number(m.Attributes?.SentTimestamp);
  return Number.isFinite(t) && t > 0 ? new Date(t).toISOString() : undefined;
}

/** What a dead-lettered message is about: the S3 object or part a stage message names, the load a clean message names, the fetch a fetch message asks for. */
export function describe(queue: DlqName, m: Pick<Message, 'Body' | 'MessageAttributes'>): Pick<DeadLetter, 'what' | 'loadId' | 'objectKey'> {
  if (queue === 'fetch') {
    const f = fetchPayloadOf(m);
    return { what: f ? `fetch ${JSON.stringify(f.payload)}` : 'a message the fetch redrive does not understand' };
  }
  let json: unknown;
  try {
    json = JSON.parse(m.Body ?? '');
  } catch {
    return { what: 'a body that is not JSON' };
  }
  // JSON of another shape (null, a number, an array) names nothing either
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return { what: 'a message that names no object or load' };
  const body = json as Record<string, unknown>;
  if (queue === 'clean' && Number.isInteger(body.loadId)) return { what: `clean load ${body.loadId as number}`, loadId: body.loadId as number };
  const part = body.civicEtlPart as { loadId?: number; part?: number } | undefined;
  if (part && Number.isInteger(part.loadId)) return { what: `stage part ${part.part} of load ${part.loadId}`, loadId: part.loadId };
  const records = Array.isArray(body.Records) ? (body.Records as { eventName?: string; s3?: { object?: { key?: string; versionId?: string } } }[]) : [];
  const keys = records.filter((r) => r.eventName?.startsWith('ObjectCreated') && r.s3?.object?.key).map((r) => decodeURIComponent(r.s3!.object!.key!.replace(/\+/g, ' ')));
  if (keys.length > 0) return { what: `stage ${keys.join(', ')}`, objectKey: keys[0] };
  return { what: body.Event === 's3:TestEvent' ? "S3's test event" : 'a message that names no object or load' };
}

/** Each dead letter's load in the ledger: by its load id, else the newest load of its object. */
export async function withLedger(db: Queryable, project: string, letters: DeadLetter[]): Promise<void> {
  for (const l of letters) {
    const { rows } = await db.query(
      l.loadId !== undefined
        ? `SELECT id::int, dataset, status, error, attempts FROM etl.loads WHERE id = $1 AND project = $2`
        : `SELECT id::int, dataset, status, error, attempts FROM etl.loads WHERE object_key = $1 AND project = $2 ORDER BY id DESC LIMIT 1`,
      [l.loadId ?? l.objectKey ?? '', project],
    );
    if (rows[0]) l.load = rows[0];
  }
}
