/**
 * The local console (`civic-etl ui`) in a real browser, over a real pipeline run: the Chicago
 * example (its own project here, `ui_console`), plus a programs file that fails. Every figure a
 * page shows is checked against SQL written here, not against what the console computed; every
 * page opens without a console error, and each keeps a screenshot.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageCommand, GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqsClient } from '../../functions/common/aws.ts';
import { getPool } from '../../functions/common/db.ts';
import { migrate } from '../../functions/migrate/migrate.ts';
import { parsePipeline } from '../../contract/load.ts';
import { readOnly } from '../../local/console/kit.ts';
import { startConsole } from '../../local/console/server.ts';
import { ensureLocalResources, localResourceNames, purgeLocalResources } from '../../local/resources.ts';
import { launchBrowser, openPage, shot } from '../helpers/browser.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PROJECT = 'ui_console';

let browser: Browser;
let ui: ChildProcess | undefined;
let base: string;
let uiErr = '';
const pool = await getPool();

function civicEtl(...args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, 'bin', 'civic-etl.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000, env: { ...process.env, NODE_NO_WARNINGS: '1' } });
}

async function sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  return (await pool.query(text, params)).rows as T[];
}

async function depth(queueName: string): Promise<number> {
  const url = (await sqsClient().send(new GetQueueUrlCommand({ QueueName: queueName }))).QueueUrl!;
  const a = (await sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes!;
  return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
}

/** Open a page of the console; every page must open cleanly. */
async function open(path: string, name: string) {
  const opened = await openPage(browser, { url: new URL(path, base).href });
  await shot(opened.page, `console-${name}`);
  return opened;
}

beforeAll(async () => {
  // the Chicago example as project ui_console, its data beside it, from a clean slate
  const dir = mkdtempSync(join(tmpdir(), 'civic-etl-ui-'));
  const yaml = readFileSync(join(ROOT, 'pipelines/chicago/pipeline.yaml'), 'utf8').replace(/^project: chicago$/m, `project: ${PROJECT}`);
  expect(yaml).toContain(`project: ${PROJECT}`);
  writeFileSync(join(dir, 'pipeline.yaml'), yaml);
  symlinkSync(join(ROOT, 'pipelines/chicago/data'), join(dir, 'data'));
  const file = join(dir, 'pipeline.yaml');
  await migrate(pool, undefined);
  await pool.query(`DROP SCHEMA IF EXISTS ${PROJECT} CASCADE; DROP SCHEMA IF EXISTS ${PROJECT}_staging CASCADE`);
  await pool.query('DELETE FROM etl.loads WHERE project = $1', [PROJECT]);
  await pool.query('DELETE FROM etl.redrives WHERE project = $1', [PROJECT]);
  await pool.query('DELETE FROM etl.views WHERE project = $1', [PROJECT]);
  await purgeLocalResources(await ensureLocalResources({ project: PROJECT }));

  const first = civicEtl('run', '--upload-examples', '--pipeline', file);
  expect(first.status, first.stderr + first.stdout).toBe(0);
  // a second programs file without the required columns: a load that fails, with its error
  mkdirSync(join(dir, 'bad'));
  writeFileSync(join(dir, 'bad', 'programs-2024-06.csv'), 'Program ID;Program Name\nCPD-9001;Chess club\n');
  const upload = civicEtl('upload', join(dir, 'bad', 'programs-2024-06.csv'), '--supplier', 'cityparks', '--dataset', 'programs', '--pipeline', file);
  expect(upload.status, upload.stderr).toBe(0);
  const second = civicEtl('run', '--pipeline', file);
  expect(second.status, second.stdout).toBe(1); // a load failed: the run says so

  browser = await launchBrowser();
  ui = spawn(process.execPath, [join(ROOT, 'bin', 'civic-etl.mjs'), 'ui', '--port', '0', '--pipeline', file], { cwd: ROOT, env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  ui.stderr!.on('data', (c: Buffer) => (uiErr += c.toString()));
  base = await new Promise<string>((resolve, reject) => {
    let out = '';
    ui!.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) resolve(m[1]!);
    });
    ui!.on('exit', (code) => reject(new Error(`civic-etl ui exited ${code}: ${uiErr}`)));
  });
}, 600_000);

afterAll(async () => {
  ui?.kill('SIGINT');
  await browser?.close();
});

describe('civic-etl ui in a real browser', () => {
  it('lists every load with the status counts and statuses of the ledger', async () => {
    const { page, problems } = await open('/loads', 'loads');
    const byStatus = await sql<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM etl.loads WHERE project = $1 GROUP BY status', [PROJECT]);
    expect(byStatus.map((r) => r.status).sort()).toEqual(['failed', 'loaded']);
    const total = byStatus.reduce((n, r) => n + r.n, 0);
    expect(await page.locator('.card[data-status=all] .n').textContent()).toBe(String(total));
    for (const { status, n } of byStatus) expect(await page.locator(`.card[data-status=${status}] .n`).textContent(), status).toBe(String(n));
    const ledger = await sql<{ id: number; status: string }>('SELECT id::int, status FROM etl.loads WHERE project = $1 ORDER BY id DESC', [PROJECT]);
    const shown = await page.locator('table.loads tbody tr').evaluateAll((trs) => trs.map((tr) => ({ id: Number(tr.getAttribute('data-load')), status: tr.querySelector('.status')!.textContent })));
    expect(shown).toEqual(ledger);
    // the failed load's error, as the ledger has it
    const [failed] = await sql<{ id: number; error: string }>(`SELECT id::int, error FROM etl.loads WHERE project = $1 AND status = 'failed'`, [PROJECT]);
    expect(await page.locator(`tr[data-load="${failed!.id}"] td.err`).textContent()).toContain(failed!.error.slice(0, 60));
    // the status filter narrows the table to that status
    await page.selectOption('select[name=status]', 'failed');
    await page.click('form.filters button');
    expect(await page.locator('table.loads tbody tr').count()).toBe(byStatus.find((r) => r.status === 'failed')!.n);
    expect(problems()).toEqual([]);
    // a filter that matches nothing says so, and does not claim the ledger is empty
    const none = await open('/loads?dataset=no_such_dataset', 'loads-none');
    expect(await none.page.locator('main .notice').textContent()).toContain('No load matches these filters (dataset no_such_dataset: not a dataset of this project)');
    const past = await open('/loads?page=99', 'loads-past');
    expect(await past.page.locator('main .notice').textContent()).toContain('Page 99 is past the last page');
  });

  it('shows a load with its timings and rows, and its quality report', async () => {
    const [load] = await sql<{ id: number; rows_read: string; rows_loaded: string; rows_quarantined: string }>(
      `SELECT id::int, rows_read, rows_loaded, rows_quarantined FROM etl.loads WHERE project = $1 AND dataset = 'programs' AND status = 'loaded'`,
      [PROJECT],
    );
    const { page, problems } = await open(`/loads/${load!.id}`, 'load');
    const n = (what: string) => page.locator(`.card[data-count=${what}] .n`).textContent();
    expect([await n('read'), await n('loaded'), await n('quarantined')]).toEqual([load!.rows_read, load!.rows_loaded, load!.rows_quarantined].map((v) => Number(v).toLocaleString('en-US')));
    // the supplier's own HTML report, made from the ledger (the supplier declares no language: English)
    await page.click('text=Quality report');
    const card = (what: string) => page.locator(`.card[data-card=${what}] .n`).textContent();
    expect([await card('read'), await card('loaded'), await card('quarantined')]).toEqual([load!.rows_read, load!.rows_loaded, load!.rows_quarantined].map((v) => Number(v).toLocaleString('en-US')));
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    await shot(page, 'console-report');
    expect(problems()).toEqual([]);

    // a failed load: its error where the ledger says it is in the file
    const [failed] = await sql<{ id: number; error: string; error_line: string; error_column: string }>(
      `SELECT id::int, error, error_line, error_column FROM etl.loads WHERE project = $1 AND status = 'failed'`,
      [PROJECT],
    );
    expect(failed!.error_column).toBe('Category');
    const bad = await open(`/loads/${failed!.id}`, 'load-failed');
    expect(await bad.page.locator('.error .where').textContent()).toBe(`line ${failed!.error_line}, column "${failed!.error_column}"`);
    expect(await bad.page.locator('.error').textContent()).toContain(failed!.error);
    expect(bad.problems()).toEqual([]);
  });

  it('finds a dataset in the catalog by one of its column names, and shows its columns as profiled', async () => {
    const { page, problems } = await open('/catalog', 'catalog');
    await page.fill('input[name=q]', 'hardship');
    await page.click('form.filters button');
    const found = await page.locator('table.catalog tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-dataset')));
    const expected = await sql<{ dataset: string }>(`SELECT dataset FROM etl.catalog WHERE project = $1 AND column_names ILIKE '%hardship%'`, [PROJECT]);
    expect(expected.map((r) => r.dataset)).toEqual(['community_snapshot']);
    expect(found).toEqual(expected.map((r) => r.dataset));
    expect(await page.locator('table.catalog mark').first().textContent()).toBe('Hardship');
    await shot(page, 'console-catalog-search');

    // what a person types comes back as text, never as markup
    const typed = await open(`/catalog?q=${encodeURIComponent('<img src=x onerror=alert(1)>')}`, 'catalog-escaped');
    expect(await typed.page.locator('main .notice').textContent()).toContain('<img src=x onerror=alert(1)>');
    expect(await typed.page.locator('main img').count()).toBe(0);
    expect(typed.problems()).toEqual([]);

    await page.click('table.catalog tbody tr >> text=community_snapshot');
    const columns = await sql<{ name: string; type: string }>(
      `SELECT c ->> 'name' AS name, c ->> 'type' AS type FROM etl.catalog, jsonb_array_elements(columns) c WHERE project = $1 AND dataset = 'community_snapshot'`,
      [PROJECT],
    );
    expect(columns.length).toBe(8);
    const shown = await page.locator('table.columns tbody tr').evaluateAll((trs) => trs.map((tr) => ({ name: tr.getAttribute('data-column'), type: tr.querySelector('td.type')!.textContent })));
    expect(shown).toEqual(columns);
    const [count] = await sql<{ n: string }>(`SELECT row_count AS n FROM etl.catalog WHERE project = $1 AND dataset = 'community_snapshot'`, [PROJECT]);
    expect(await page.locator('#row-count').textContent()).toBe(count!.n);
    await shot(page, 'console-resource');
    expect(problems()).toEqual([]);
  });

  it('draws a view with a geometry column on a map, one feature per row with a geometry', async () => {
    const { page, problems } = await open('/views', 'views');
    await page.click('a[href="/views/programs_in_community_areas"]');
    const [counts] = await sql<{ n: number; g: number }>(`SELECT count(*)::int AS n, count(geom)::int AS g FROM ${PROJECT}.programs_in_community_areas`);
    expect(counts!.g).toBe(296);
    expect(await page.locator('#view-rows').textContent()).toBe(String(counts!.n));
    const layer = page.locator('svg.map g.layer[data-layer=programs_in_community_areas]');
    expect(await layer.locator('.feature').count()).toBe(counts!.g);
    expect(await layer.getAttribute('data-count')).toBe(String(counts!.g));
    // beneath them, the reference polygons the view reads (community areas), for where they landed
    const [areas] = await sql<{ n: number }>(`SELECT count(geom)::int AS n FROM ${PROJECT}.community_areas`);
    expect(await page.locator('svg.map g.layer[data-layer=reference-community_areas] .feature').count()).toBe(areas!.n);
    // every point inside the drawing
    const svg = (await page.locator('svg.map').boundingBox())!;
    const outside = await layer.locator('.feature').evaluateAll(
      (els, box) =>
        els.filter((e) => {
          const r = e.getBoundingClientRect();
          return r.width === 0 || r.left < box.x || r.right > box.x + box.width + 0.5 || r.top < box.y || r.bottom > box.y + box.height + 0.5;
        }).length,
      svg,
    );
    expect(outside).toBe(0);
    expect(await page.locator('table.rows tbody tr').count()).toBe(Math.min(50, counts!.n));
    await shot(page, 'console-view-map');
    expect(problems()).toEqual([]);
  });

  it('narrows the quarantined values by rule, with exact counts', async () => {
    const { page, problems } = await open('/quarantine?dataset=programs', 'quarantine');
    const [all] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${PROJECT}.programs_quarantine`);
    const [unique] = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${PROJECT}.programs_quarantine WHERE rule = 'unique'`);
    expect(unique!.n).toBeGreaterThan(0);
    expect(unique!.n).toBeLessThan(all!.n);
    expect(await page.locator('#quarantined-values').textContent()).toBe(String(all!.n));
    expect(await page.locator('table.quarantine tbody tr').count()).toBe(all!.n);
    await page.selectOption('select[name=rule]', 'unique');
    await page.click('form.filters button');
    expect(await page.locator('#quarantined-values').textContent()).toBe(String(unique!.n));
    const rules = await page.locator('table.quarantine tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-rule')));
    expect(rules).toEqual(Array(unique!.n).fill('unique'));
    await shot(page, 'console-quarantine-unique');
    expect(problems()).toEqual([]);
  });

  it('redrives a dead-letter queue back to its work queue from the queues page, and records it', async () => {
    const names = localResourceNames(PROJECT);
    const dlqUrl = (await sqsClient().send(new GetQueueUrlCommand({ QueueName: names.stageDlq }))).QueueUrl!;
    const stageUrl = (await sqsClient().send(new GetQueueUrlCommand({ QueueName: names.stageQueue }))).QueueUrl!;
    const before = await depth(names.stageQueue);
    const body = JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: names.bucket }, object: { key: 'incoming/cityparks/programs/lost.csv' } } }] });
    await sqsClient().send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: body }));
    expect(await depth(names.stageDlq)).toBe(1);

    const { page, problems } = await open('/queues', 'queues');
    expect(await page.locator('tr[data-queue=stage] td.dead').textContent()).toBe('1');
    await page.click('tr[data-queue=stage] button.redrive');
    await page.waitForURL(/\/queues\?outcome=/);
    expect(await page.locator('.outcome').textContent()).toContain('moved 1 message back to the stage queue');
    expect(await depth(names.stageDlq)).toBe(0);
    expect(await depth(names.stageQueue)).toBe(before + 1);
    const redrives = await sql<{ queue: string; method: string; messages: number }>('SELECT queue, method, messages FROM etl.redrives WHERE project = $1', [PROJECT]);
    expect(redrives).toEqual([{ queue: 'stage', method: 'moved', messages: 1 }]);
    expect(await page.locator('table.redrives tbody tr').count()).toBe(1);
    expect(await page.locator('tr[data-queue=stage]').getAttribute('data-dead')).toBe('0');
    await shot(page, 'console-queues-redriven');
    // the message back in the stage queue names no object: take it away (nothing consumes it here)
    const back = await sqsClient().send(new ReceiveMessageCommand({ QueueUrl: stageUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    for (const m of back.Messages ?? []) if (m.Body === body) await sqsClient().send(new DeleteMessageCommand({ QueueUrl: stageUrl, ReceiptHandle: m.ReceiptHandle! }));
    expect(problems()).toEqual([]);
    expect(uiErr).not.toMatch(/page failed|request failed/);
  });

  it('reads in a read-only transaction that stops long statements', async () => {
    const ctx = {
      pool,
      pipeline: parsePipeline({ project: PROJECT, suppliers: [{ name: 's' }], datasets: [{ name: 'd', source: { type: 'upload', supplier: 's' } }] }),
      sqs: sqsClient(),
      token: 't',
      statementTimeoutMs: 300,
    };
    await expect(readOnly(ctx, (db) => db.query(`CREATE TABLE ${PROJECT}.written_by_a_page (x int)`))).rejects.toThrow(/read-only transaction/);
    await expect(readOnly(ctx, (db) => db.query('SELECT pg_sleep(2)'))).rejects.toThrow(/statement timeout/);
    // the connection goes back to the pool in a usable state
    expect((await readOnly(ctx, (db) => db.query<{ ok: number }>('SELECT 1 AS ok'))).rows).toEqual([{ ok: 1 }]);
  });

  it('says in words what is missing for a project never run: no table, no queue, no 500', async () => {
    const never = parsePipeline({
      project: 'ui_never_run',
      suppliers: [{ name: 's' }],
      datasets: [{ name: 'd', source: { type: 'upload', supplier: 's' } }],
      views: [{ name: 'v', datasets: ['d'], sql: 'select * from {{schema}}.d' }],
    });
    await pool.query('DROP SCHEMA IF EXISTS ui_never_run CASCADE');
    await pool.query('DELETE FROM etl.loads WHERE project = $1', ['ui_never_run']);
    const running = await startConsole({ pool, pipeline: never, sqs: sqsClient() });
    try {
      for (const [path, says] of [
        ['/loads', 'No load yet'],
        ['/queues', 'not created'],
        ['/quarantine?dataset=d', 'does not exist yet'],
        ['/catalog', 'The catalog is empty'],
        ['/views/v', 'is not created yet'],
      ] as const) {
        const { page, problems } = await openPage(browser, { url: new URL(path, running.url).href });
        expect(await page.locator('main').textContent(), path).toContain(says);
        expect(problems(), path).toEqual([]);
        await shot(page, `console-never-run${path.replace(/[/?=]/g, '-')}`);
        await page.context().close();
      }
    } finally {
      await running.close();
    }
  });
});
