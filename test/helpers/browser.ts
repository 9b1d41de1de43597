/**
 * A real browser for tests of what people see: Debian's Chromium (installed by
 * `scripts/services.sh install`), headless, driven by playwright-core. Every page opened through
 * `openPage` records the console errors and page errors it raised and the network requests it
 * tried; `shot` keeps a screenshot under `test-artifacts/screenshots/` (not committed).
 *
 *   const browser = await launchBrowser();
 *   const { page, problems } = await openPage(browser, { html });   // or { url }
 *   expect(await page.locator('.card .n').first().textContent()).toBe('1,234');
 *   expect(problems()).toEqual([]);
 *   await shot(page, 'report-loaded');
 *   await browser.close();
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Where Debian puts Chromium; CHROMIUM_PATH overrides it. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'screenshots');

/** Headless Chromium with nothing that talks to the network on its own (no updates, no sync, no QUIC). */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run "bash scripts/services.sh install" (Debian package chromium), or set CHROMIUM_PATH`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

export interface OpenedPage {
  page: Page;
  /** Console errors, page errors and refused requests seen so far, as text (empty when all went well). */
  problems: () => string[];
  /** Every request the page made, after the first (the page itself). */
  requests: () => string[];
}

/**
 * Open `html` (as if from a file: no server) or `url` in a new page of `width`×`height`. With
 * `html`, every request the page makes is refused and listed: a self-contained page makes none.
 */
export async function openPage(browser: Browser, what: { html: string } | { url: string }, opts: { width?: number; height?: number } = {}): Promise<OpenedPage> {
  const context = await browser.newContext({ viewport: { width: opts.width ?? 1200, height: opts.height ?? 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    if (!('html' in what)) problems.push(`request failed: ${r.url()} (${r.failure()?.errorText ?? '?'})`);
  });
  page.on('request', (r) => requests.push(r.url()));
  if ('html' in what) {
    await page.route('**/*', (route) => route.abort('blockedbyclient'));
    await page.setContent(what.html, { waitUntil: 'load' });
  } else {
    const response = await page.goto(what.url, { waitUntil: 'load' });
    if (!response?.ok()) problems.push(`HTTP ${response?.status() ?? 'no response'} for ${what.url}`);
    requests.shift();
  }
  return { page, problems: () => [...problems], requests: () => [...requests] };
}

/** Keep a full-page screenshot as a test artefact; returns its path. */
export async function shot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name.replace(/[^A-Za-z0-9_.-]+/g, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
