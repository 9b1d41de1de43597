/**
 * The local console's guards, which need no service: it serves on loopback only, answers only
 * requests addressed to its own host and port, takes its one write (the redrive) as a POST from
 * its own pages with its own token, and says in words that the database cannot be reached.
 */
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePipeline } from '../../contract/load.ts';
import { href, pager, PAGE_SIZE } from '../../local/console/kit.ts';
import { isLoopbackHost, startConsole, type RunningConsole } from '../../local/console/server.ts';

const ROOT = join(import.meta.dirname, '..', '..');

function civicEtl(...args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, 'bin', 'civic-etl.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
}

/** A raw request, headers as given (fetch would set Host and Origin itself). */
function send(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('civic-etl ui on loopback only', () => {
  it('knows loopback addresses from the others', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', 'LOCALHOST', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.org', '127.0.0.256', '128.0.0.1', '127.0.0.1.example.org', '']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('refuses a --host that is not loopback, saying why, before it reaches for any service', () => {
    const r = civicEtl('ui', '--host', '0.0.0.0');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--host 0.0.0.0 is not a loopback address');
    expect(r.stderr).toContain('serves on loopback only');
    const port = civicEtl('ui', '--port', 'eighty');
    expect(port.status).toBe(2);
    expect(port.stderr).toContain('--port must be a whole number from 0 to 65535');
  });

  it('refuses to start on another address when called as a library', async () => {
    const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
    const pipeline = parsePipeline({ project: 'guard', suppliers: [{ name: 's' }], datasets: [{ name: 'd', source: { type: 'upload', supplier: 's' } }] });
    await expect(startConsole({ pool, pipeline, sqs: new SQSClient({ region: 'us-east-1' }), host: '0.0.0.0' })).rejects.toThrow(/loopback only/);
    await pool.end();
  });
});

describe('the console server', () => {
  let running: RunningConsole;
  let pool: pg.Pool;
  let host: string;
  beforeAll(async () => {
    // the unit project's DATABASE_URL: a port where nothing answers
    pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 2000 });
    const pipeline = parsePipeline({ project: 'guard', suppliers: [{ name: 's' }], datasets: [{ name: 'd', source: { type: 'upload', supplier: 's' } }] });
    running = await startConsole({ pool, pipeline, sqs: new SQSClient({ region: 'us-east-1' }) });
    host = new URL(running.url).host;
  });
  afterAll(async () => {
    await running?.close();
    await pool?.end();
  });

  it('answers only requests addressed to its own host and port (no DNS rebinding)', async () => {
    const other = await send(running.url, { headers: { host: 'attacker.example:80' } });
    expect(other.status).toBe(421);
    const otherPort = await send(running.url, { headers: { host: '127.0.0.1:1' } });
    expect(otherPort.status).toBe(421);
  });

  it('takes a redrive only as a POST from its own pages with its own token', async () => {
    const url = `${running.url}queues/redrive`;
    const form = { 'content-type': 'application/x-www-form-urlencoded', host };
    expect((await send(url)).status).toBe(405);
    // no Origin nor Referer (a request from another program, or a page that hides where it comes from)
    expect((await send(url, { method: 'POST', headers: form, body: 'queue=stage&token=x' })).status).toBe(403);
    // a page of another site, posting across origins
    const cross = await send(url, { method: 'POST', headers: { ...form, origin: 'http://evil.example' }, body: 'queue=stage&token=x' });
    expect(cross.status).toBe(403);
    expect(cross.body).toContain('must come from a page of this console');
    // its own origin, without the token of its form
    const noToken = await send(url, { method: 'POST', headers: { ...form, origin: `http://${host}` }, body: 'queue=stage&token=guessed' });
    expect(noToken.status).toBe(403);
    expect(noToken.body).toContain('reload the queues page');
    // the pages are read-only
    expect((await send(`${running.url}loads`, { method: 'POST', headers: { ...form, origin: `http://${host}` }, body: '' })).status).toBe(405);
  });

  it('sends every page with the no-network policy, and says in words when the database cannot be reached', async () => {
    const r = await send(`${running.url}loads`, { headers: { host } });
    expect(r.status).toBe(503);
    expect(r.headers['content-security-policy']).toContain("default-src 'none'");
    expect(r.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(r.body).toContain('The database cannot be reached');
    expect(r.body).not.toMatch(/\n\s+at /); // no stack trace on the page
    const missing = await send(`${running.url}nowhere`, { headers: { host } });
    expect(missing.status).toBe(404);
  });
});

describe('links between the console pages', () => {
  it('keep the filters, leave out empty ones, and escape what they carry', () => {
    expect(href('/quarantine', { dataset: 'programs', rule: '', load: 12, column: undefined })).toBe('/quarantine?dataset=programs&load=12');
    expect(href('/catalog', { q: 'a&b "c"' })).toBe('/catalog?q=a%26b+%22c%22');
    expect(href('/loads')).toBe('/loads');
  });

  it('page through a table: the range shown, and previous and next only where there are rows', () => {
    const total = 2 * PAGE_SIZE + 7;
    const first = pager('/loads', { status: 'failed' }, 1, total, 'loads').value;
    expect(first).toContain(`loads 1–${PAGE_SIZE} of <span class="total">${total}</span>`);
    expect(first).not.toContain('rel="prev"');
    expect(first).toContain('href="/loads?status=failed&amp;page=2"');
    const last = pager('/loads', { status: 'failed' }, 3, total, 'loads').value;
    expect(last).toContain(`loads ${2 * PAGE_SIZE + 1}–${total} of`);
    expect(last).toContain('href="/loads?status=failed&amp;page=2"');
    expect(last).not.toContain('rel="next"');
    expect(pager('/loads', {}, 1, 0).value).toBe('');
  });
});
