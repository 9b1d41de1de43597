/**
 * The local console's HTTP server (`civic-etl ui`): server-rendered pages over the ledger, the
 * queues, the quarantine, the catalog and the views, on loopback only, with node:http and no
 * client code at all (the pages carry a policy that forbids scripts and any network request).
 *
 * Read-only but for one action, the redrive of a DLQ, which is guarded: POST only, from a page
 * of this console (its Origin, else its Referer, must be this server's), with the random token
 * this server put in its form. Requests naming another host (DNS rebinding) are refused.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import type { PipelineDefinition } from '../../contract/definition.ts';
import { messageOf } from '../../functions/common/errors.ts';
import { html, NO_NETWORK_POLICY, page } from '../../functions/common/html.ts';
import { logger } from '../../functions/common/logger.ts';
import { catalogPage, resourcePage } from './catalog-pages.ts';
import { CONSOLE_CSS, navigation, notice, readableDatabaseError, type ConsoleContext, type PageRequest, type PageResult } from './kit.ts';
import { loadPage, loadsPage } from './loads-pages.ts';
import { quarantinePage } from './quarantine-page.ts';
import { keepOutcome, redrive, REDRIVE_QUEUES, queuesPage, type RedriveQueue } from './queues-page.ts';
import { viewPage, viewsPage } from './views-pages.ts';

export interface ConsoleOptions {
  pool: pg.Pool;
  pipeline: PipelineDefinition;
  sqs: SQSClient;
  /** A loopback address (127.0.0.0/8, ::1, localhost). @default 127.0.0.1 */
  host?: string;
  /** 0: any free port. @default 0 */
  port?: number;
  /** Longest a page's query may run, ms. @default 5000 */
  statementTimeoutMs?: number;
}

export interface RunningConsole {
  /** http://host:port/ */
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Is this host a loopback address (or the name of one)? The console serves nothing else. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h) ?? /^::ffff:127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return v4 !== null && v4.slice(1).every((n) => Number(n) <= 255);
}

type Handler = (ctx: ConsoleContext, req: PageRequest) => Promise<PageResult>;

/** The pages, by the first segment of their path. */
const PAGES: Record<string, { section: string; handler: Handler }> = {
  '': { section: 'loads', handler: loadsPage },
  loads: { section: 'loads', handler: (ctx, req) => (req.rest.length === 0 ? loadsPage(ctx, req) : loadPage(ctx, req)) },
  queues: { section: 'queues', handler: queuesPage },
  quarantine: { section: 'quarantine', handler: quarantinePage },
  catalog: { section: 'catalog', handler: (ctx, req) => (req.rest.length === 0 ? catalogPage(ctx, req) : resourcePage(ctx, req)) },
  views: { section: 'views', handler: (ctx, req) => (req.rest.length === 0 ? viewsPage(ctx) : viewPage(ctx, req)) },
};

const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  // the page's own policy, and no framing (a header-only directive)
  'content-security-policy': `${NO_NETWORK_POLICY}; frame-ancestors 'none'`,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

export async function startConsole(opts: ConsoleOptions): Promise<RunningConsole> {
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopbackHost(host)) throw new Error(`the console serves on loopback only (127.0.0.1, ::1 or localhost), not on ${host}`);
  const ctx: ConsoleContext = {
    pool: opts.pool,
    pipeline: opts.pipeline,
    sqs: opts.sqs,
    token: randomBytes(24).toString('base64url'),
    statementTimeoutMs: opts.statementTimeoutMs ?? 5000,
  };
  const project = opts.pipeline.project;
  let port = 0;

  const send = (res: ServerResponse, status: number, title: string, body: ReturnType<typeof html>, section: string, extra: Record<string, string> = {}) => {
    const doc = page({ title, lang: 'en', body, header: navigation(project, section), css: CONSOLE_CSS });
    res.writeHead(status, { ...HEADERS, ...extra, 'content-length': Buffer.byteLength(doc) });
    res.end(res.req.method === 'HEAD' ? undefined : doc);
  };
  const refuse = (res: ServerResponse, status: number, message: string, extra: Record<string, string> = {}) => send(res, status, message, html`<h1>${message}</h1>`, '', extra);

  /** Host header of this console: the address it listens on, or localhost, with its port. */
  const ownHost = (value: string | undefined) => {
    if (!value) return false;
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(value);
    return m !== null && isLoopbackHost(m[1]!) && Number(m[2] ?? 80) === port;
  };
  /** The request comes from a page of this console: its Origin (or, without one, its Referer) is this server. */
  const sameOrigin = (req: IncomingMessage) => {
    const origin = req.headers.origin ?? req.headers.referer;
    if (!origin || origin === 'null') return false;
    try {
      const u = new URL(origin);
      return u.protocol === 'http:' && u.host === req.headers.host;
    } catch {
      return false; // not a URL: not this console
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    if (!ownHost(req.headers.host)) return refuse(res, 421, 'This console answers to its loopback address only');
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    let segments: string[];
    try {
      segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      return refuse(res, 400, 'Bad path');
    }
    if (url.pathname === '/queues/redrive') {
      if (req.method !== 'POST') return refuse(res, 405, 'Redrive is a POST from the queues page', { allow: 'POST' });
      return redriveAction(req, res);
    }
    const entry = PAGES[segments[0] ?? ''];
    if (!entry) return send(res, 404, 'Not found', html`<h1>Not found</h1>${notice(html`No page at ${url.pathname}. Start from <a href="/loads">the loads</a>.`)}`, '');
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'This page is read-only', { allow: 'GET, HEAD' });
    let result: PageResult;
    try {
      result = await entry.handler(ctx, { params: url.searchParams, rest: segments.slice(1) });
    } catch (error) {
      const readable = readableDatabaseError(error);
      // the whole error, with its stack, on the console's stderr; the page says what a person can act on
      logger.error('console: page failed', { path: url.pathname, error: messageOf(error), stack: (error as Error).stack });
      result = {
        title: 'This page could not be shown',
        status: readable ? 503 : 500,
        body: html`<h1>This page could not be shown</h1>${notice(readable ?? `${messageOf(error)} (the details are in the console's log, on its standard error)`)}`,
      };
    }
    const timing = { 'server-timing': `page;dur=${(performance.now() - started).toFixed(1)}` };
    if (result.document !== undefined) {
      res.writeHead(result.status ?? 200, { ...HEADERS, ...timing, 'content-length': Buffer.byteLength(result.document) });
      res.end(req.method === 'HEAD' ? undefined : result.document);
      return;
    }
    send(res, result.status ?? 200, result.title, result.body, entry.section, timing);
  };

  const redriveAction = async (req: IncomingMessage, res: ServerResponse) => {
    if (!sameOrigin(req)) return refuse(res, 403, 'A redrive must come from a page of this console');
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) return refuse(res, 415, 'A redrive is a form');
    let text = '';
    for await (const chunk of req) {
      text += String(chunk);
      if (text.length > 4096) return refuse(res, 413, 'Too large');
    }
    const form = new URLSearchParams(text);
    const token = Buffer.from(form.get('token') ?? '');
    const expected = Buffer.from(ctx.token);
    if (token.length !== expected.length || !timingSafeEqual(token, expected)) return refuse(res, 403, 'This form is out of date: reload the queues page');
    const queue = form.get('queue') ?? '';
    if (!(REDRIVE_QUEUES as readonly string[]).includes(queue)) return refuse(res, 400, 'Unknown queue');
    try {
      const outcome = await redrive(ctx, queue as RedriveQueue);
      res.writeHead(303, { location: `/queues?outcome=${keepOutcome(outcome)}`, 'cache-control': 'no-store' });
      res.end();
    } catch (error) {
      logger.error('console: redrive failed', { queue, error: messageOf(error), stack: (error as Error).stack });
      send(res, 502, 'Redrive failed', html`<h1>Redrive failed</h1>${notice(`The ${queue} DLQ could not be redriven: ${messageOf(error)}`)}<p><a href="/queues">Back to the queues</a></p>`, 'queues');
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.error('console: request failed', { url: req.url, error: messageOf(error), stack: (error as Error).stack });
      if (!res.headersSent) refuse(res, 500, 'Something went wrong: see the console log');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
