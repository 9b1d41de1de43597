import type { Queryable } from './db.ts';

/** A queue message a step could not read, as kept in etl.rejected_messages. */
export interface RejectedMessage {
  step: 'stage' | 'clean';
  messageId: string;
  /** The queue's ARN, when the event names it. */
  queue?: string;
  body: string;
  reason: string;
}

export interface RejectedMessageRow extends RejectedMessage {
  receives: number;
  receivedAt: string;
}

/** Keep a message the step rejected (a repeat delivery of the same message counts as another receive). */
export async function recordRejectedMessage(db: Queryable, project: string, m: RejectedMessage): Promise<void> {
  await db.query(
    `INSERT INTO etl.rejected_messages (project, step, queue, message_id, body, reason) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (project, step, message_id) DO UPDATE SET receives = etl.rejected_messages.receives + 1, reason = EXCLUDED.reason`,
    [project, m.step, m.queue ?? null, m.messageId, m.body, m.reason],
  );
}

/** The project's latest rejected messages (since `since`, when given), newest first, and how many there are in all. */
export async function rejectedMessages(db: Queryable, project: string, limit = 10, since?: Date): Promise<{ total: number; latest: RejectedMessageRow[] }> {
  const { rows } = await db.query(
    `SELECT step, message_id, queue, body, reason, receives, received_at, count(*) OVER ()::int AS total
       FROM etl.rejected_messages WHERE project = $1 AND ($3::timestamptz IS NULL OR received_at >= $3) ORDER BY received_at DESC, id DESC LIMIT $2`,
    [project, limit, since ?? null],
  );
  const latest = rows.map((r) => ({
    step: r.step,
    messageId: r.message_id,
    ...(r.queue ? { queue: r.queue } : {}),
    body: r.body,
    reason: r.reason,
    receives: r.receives,
    receivedAt: (r.received_at as Date).toISOString(),
  }));
  return { total: rows[0]?.total ?? 0, latest };
}

/** One line per rejected message, for a terminal: when, step, message id, why, the start of its body. */
export function describeRejectedMessages(r: { total: number; latest: RejectedMessageRow[] }): string[] {
  if (r.total === 0) return [];
  const lines = [
    `${r.total} queue message${r.total === 1 ? '' : 's'} rejected as unreadable (acknowledged, not retried; kept in etl.rejected_messages)${r.latest.length < r.total ? `, the latest ${r.latest.length}` : ''}:`,
  ];
  for (const m of r.latest) {
    const body = m.body.length > 60 ? `${m.body.slice(0, 60)}…` : m.body;
    lines.push(
      `  ${m.receivedAt.slice(0, 19).replace('T', ' ')} UTC  ${m.step} message ${m.messageId}${m.receives > 1 ? ` (received ${m.receives} times)` : ''}: ${m.reason} — body ${JSON.stringify(body)}`,
    );
  }
  return lines;
}
