/**
 * The HTML quality report as its supplier sees it: real files loaded through the real pipeline
 * (stage and clean against PostgreSQL and moto, as the Lambdas run them), the page read back from
 * the supplier's `reports/` prefix and opened in headless Chromium. The expected numbers come from
 * Python's csv module and GDAL's ogrinfo over the same files, never from civic-etl.
 * Screenshots: test-artifacts/screenshots/report-*.png. `UPDATE_DOCS_IMG=1` also writes
 * docs/img/report.png (the README's picture) from the stations report.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineInput } from '../../contract/definition.ts';
import { s3Client } from '../../functions/common/aws.ts';
import type { CleanDeps } from '../../functions/clean/clean-load.ts';
import { reportStageFailures } from '../../functions/common/report.ts';
import { MAP_FEATURES } from '../../functions/common/report-page.ts';
import { REJECTED_FEATURES } from '../../functions/clean/rejected-geometries.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import { launchBrowser, openPage, shot } from '../helpers/browser.ts';
import { deliver } from '../helpers/deliver.ts';
import { STATIONS_FACTS_PY, stationsFile, stationsPipeline, type StationsFacts } from '../helpers/stations.ts';
import { freshBucket, freshProject, put } from '../integration/support.ts';

const FILES = join(import.meta.dirname, '..', 'acceptance', 'files');
const DISTRICTS = join(FILES, 'de-vaterstetten-stimmbezirke-2021.geojson');
const CO2 = join(FILES, 'us-noaa-co2-mauna-loa-monthly.csv');

const stations = stationsPipeline('br_report', 'rail');
const definition: PipelineInput = {
  project: 'br_report',
  suppliers: [{ name: 'rail' }, { name: 'gemeinde', language: 'fr' }, { name: 'noaa', language: 'nl' }, { name: 'bulk' }],
  datasets: [
    stations.datasets[0]!,
    { ...stations.datasets[0]!, name: 'bulk_stations', source: { type: 'upload', supplier: 'bulk' } },
    { name: 'districts', source: { type: 'upload', supplier: 'gemeinde' } },
    { ...stations.datasets[0]!, name: 'gares', source: { type: 'upload', supplier: 'gemeinde' } },
    { name: 'co2', source: { type: 'upload', supplier: 'noaa' } },
  ],
};

let browser: Browser;
let bucket: string;
let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
const dir = mkdtempSync(join(tmpdir(), 'report-browser-'));

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('br-report');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async () => undefined };
  cleanDeps = { pool, pipeline, s3: s3Client() };
  browser = await launchBrowser();
}, 120_000);
afterAll(async () => {
  await browser?.close();
});

/** The page the supplier finds beside its upload, and its content type. */
async function reportPage(key: string): Promise<{ html: string; type: string | undefined }> {
  const out = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { html: await out.Body!.transformToString(), type: out.ContentType };
}

function python<T>(script: string, ...args: string[]): T {
  const run = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`python3 failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

/** What a file of stations holds, by Python's csv module. */
function stationFacts(body: string, name: string): StationsFacts {
  const file = join(dir, name);
  writeFileSync(file, body);
  return python<StationsFacts>(STATIONS_FACTS_PY, file);
}

const cardNumber = (p: Page, card: string) => p.locator(`.card[data-card=${card}] .n`).textContent();
const features = (p: Page, layer: string) => p.locator(`g.layer[data-layer=${layer}] .feature`).count();
/** The line numbers of the example table, each once, in the order shown. */
const exampleLines = async (p: Page) => [...new Set(await p.locator('tr.example').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-line')))))];

describe('the HTML quality report in a browser', () => {
  it('shows a supplier the rows read, loaded and set aside, the lines to fix, and a map of its stations', async () => {
    // every 9th station's stop times unreadable, every 40th's longitude off the world
    const body = stationsFile(729, (i) => (i % 40 === 17 ? 'longitude' : i % 9 === 4 ? 'stop-times' : undefined));
    const facts = stationFacts(body, 'stations.csv');
    expect(facts.quarantined).toBeGreaterThan(50);

    const outcome = await deliver({ stage: stageDeps, clean: cleanDeps }, bucket, 'incoming/rail/stations/stations.csv', body);
    expect(outcome.status).toBe('loaded');
    const { html, type } = await reportPage('reports/rail/stations/stations.csv.report.html');
    expect(type).toBe('text/html; charset=utf-8');
    // the JSON copy beside it has the same counts, and not the map's sample (kept in the ledger for the page)
    const json = JSON.parse((await reportPage('reports/rail/stations/stations.csv.report.json')).html) as Record<string, unknown>;
    expect(json.rows).toEqual({ read: facts.read, loaded: facts.loaded, quarantined: facts.quarantined });
    expect(json).not.toHaveProperty('rejectedGeometries');

    const { page: p, problems, requests } = await openPage(browser, { html });
    expect(await p.locator('html').getAttribute('lang')).toBe('en');
    expect(await p.locator('h1').textContent()).toContain('Quality report');
    expect(await cardNumber(p, 'read')).toBe(facts.read.toLocaleString('en'));
    expect(await cardNumber(p, 'loaded')).toBe(facts.loaded.toLocaleString('en'));
    expect(await cardNumber(p, 'quarantined')).toBe(facts.quarantined.toLocaleString('en'));
    // the rules as a chart and a table, the lines to fix with their line numbers
    expect(await p.locator('figure.by-rule .bar').count()).toBeGreaterThanOrEqual(2);
    expect(await p.locator('tr[data-rule=type] td').nth(1).textContent()).toBe("not a value of the column's type");
    expect((await exampleLines(p)).slice(0, 5)).toEqual(facts.firstLines);
    const first = p.locator(`tr.example[data-line="${facts.firstLines[0]}"]`).first();
    await expect(first.locator('td.line').textContent()).resolves.toBe(String(facts.firstLines[0]));
    // the map: every loaded station (under the sample size) and the set-aside ones whose place is known
    expect(await features(p, 'loaded')).toBe(Math.min(facts.loadedLocated, MAP_FEATURES));
    expect(await features(p, 'rejected')).toBe(Math.min(facts.rejectedLocated, REJECTED_FEATURES));
    const box = (await p.locator('svg.map').boundingBox())!;
    expect(box.width).toBeGreaterThan(300);
    // how the file is written, and the column profile with histograms of the numbers loaded
    expect(await p.locator('dd[data-key=delimiter]').textContent()).toBe(',');
    expect(await p.locator('dd[data-key=encoding]').textContent()).toBe('utf-8');
    expect(await p.locator('tr[data-column=avg_stop_times] .bin').count()).toBeGreaterThan(1);
    expect(problems()).toEqual([]);
    expect(requests()).toEqual([]);
    await shot(p, 'report-stations-en');
    if (process.env.UPDATE_DOCS_IMG) {
      // from the top to the end of the map (about 120 KB)
      const map = (await p.locator('figure.map').boundingBox())!;
      await p.screenshot({ path: join(import.meta.dirname, '..', '..', 'docs', 'img', 'report.png'), fullPage: true, clip: { x: 0, y: 0, width: 1200, height: Math.ceil(map.y + map.height + 16) } });
    }
  }, 120_000);

  it('draws every voting district of a real GeoJSON file, in French for a French-speaking supplier', async () => {
    const info = spawnSync('ogrinfo', ['-so', '-al', DISTRICTS], { encoding: 'utf8' });
    const count = Number(/Feature Count: (\d+)/.exec(info.stdout)?.[1]);
    expect(count).toBeGreaterThan(0);

    const outcome = await deliver({ stage: stageDeps, clean: cleanDeps }, bucket, 'incoming/gemeinde/districts/stimmbezirke.geojson', readFileSync(DISTRICTS));
    expect(outcome.status).toBe('loaded');
    const { html } = await reportPage('reports/gemeinde/districts/stimmbezirke.geojson.report.html');

    const { page: p, problems, requests } = await openPage(browser, { html });
    expect(await p.locator('html').getAttribute('lang')).toBe('fr');
    expect(await p.locator('h1').textContent()).toContain('Rapport de qualité');
    expect(await p.locator('.card[data-card=loaded] .l').textContent()).toBe('lignes chargées');
    expect(await cardNumber(p, 'read')).toBe(count.toLocaleString('fr'));
    expect(await cardNumber(p, 'loaded')).toBe(count.toLocaleString('fr'));
    expect(await p.locator('p.summary').textContent()).toBe(`Les ${count.toLocaleString('fr')} lignes ont toutes été chargées.`);
    expect(await features(p, 'loaded')).toBe(count);
    expect(await features(p, 'rejected')).toBe(0);
    // each district is drawn with an area, inside the map
    const svg = (await p.locator('svg.map').boundingBox())!;
    for (const b of await p
      .locator('g.layer[data-layer=loaded] .feature')
      .evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON() as { x: number; y: number; width: number; height: number }))) {
      expect(b.width * b.height).toBeGreaterThan(4);
      expect(b.x).toBeGreaterThanOrEqual(svg.x - 0.5);
      expect(b.x + b.width).toBeLessThanOrEqual(svg.x + svg.width + 0.5);
    }
    expect(await p.locator('#map').textContent()).toBe('Carte');
    // French typography: a (non-breaking) space before the colon of the legend
    expect(await p.locator('figcaption.legend span').first().textContent()).toBe(`chargés\u00a0: ${count.toLocaleString('fr')}`);
    expect(problems()).toEqual([]);
    expect(requests()).toEqual([]);
    await shot(p, 'report-districts-fr');
  }, 120_000);

  it('tells a French-speaking supplier, in French, why each line was set aside, with the value it holds', async () => {
    // every 9th station's stop times unreadable, every 20th's longitude off the world
    const body = stationsFile(60, (i) => (i % 20 === 3 ? 'longitude' : i % 9 === 4 ? 'stop-times' : undefined));
    const facts = stationFacts(body, 'gares.csv');
    const outcome = await deliver({ stage: stageDeps, clean: cleanDeps }, bucket, 'incoming/gemeinde/gares/gares.csv', body);
    expect(outcome).toMatchObject({ status: 'loaded', rowsQuarantined: facts.quarantined });
    const { html } = await reportPage('reports/gemeinde/gares/gares.csv.report.html');

    const { page: p, problems, requests } = await openPage(browser, { html });
    expect(await p.locator('html').getAttribute('lang')).toBe('fr');
    expect((await exampleLines(p)).slice(0, 5)).toEqual(facts.firstLines);
    const shown = await p
      .locator('tr.example')
      .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent ?? '')).map(([, column, value, rule, reason]) => ({ column, value, rule, reason })));
    expect(shown.map((e) => e.rule).sort()).toEqual(expect.arrayContaining(['range', 'type']));
    // each reason is French, quoting the value shown beside it
    for (const e of shown) {
      if (e.column === 'avg_stop_times') expect(e).toEqual({ column: 'avg_stop_times', value: e.value, rule: 'type', reason: `n'est pas un nombre valide\u00a0: ${e.value}` });
      else expect({ rule: e.rule, reason: e.reason }).toEqual({ rule: 'range', reason: `longitude hors limites\u00a0: ${e.value}` });
    }
    expect(await p.locator('tr[data-rule=type] td').nth(1).textContent()).toBe("n'est pas une valeur du type de la colonne");
    expect(problems()).toEqual([]);
    expect(requests()).toEqual([]);
    await shot(p, 'report-reasons-fr');
  }, 120_000);

  it('tells a Dutch-speaking supplier, in Dutch, which line of a rejected file to fix', async () => {
    // the first record whose field count differs from the header's, by Python's csv module
    const expected = python<{ line: number; fields: number; header: number }>(
      `import csv, json, sys
with open(sys.argv[1], newline='', encoding='utf-8') as f:
    r = csv.reader(f); header = next(r)
    for rec in r:
        if len(rec) != len(header):
            print(json.dumps({'line': r.line_num, 'fields': len(rec), 'header': len(header)})); break`,
      CO2,
    );
    const staged = await stageObject({ ...stageDeps, pipeline: cleanDeps.pipeline }, await put(bucket, 'incoming/noaa/co2/co2-mm-mlo.csv', readFileSync(CO2)));
    expect(staged.status).toBe('failed');
    await reportStageFailures({ pool: cleanDeps.pool, s3: s3Client(), pipeline: cleanDeps.pipeline }, (staged as { loadId: number }).loadId);
    const { html } = await reportPage('reports/noaa/co2/co2-mm-mlo.csv.report.html');

    const { page: p, problems, requests } = await openPage(browser, { html });
    expect(await p.locator('html').getAttribute('lang')).toBe('nl');
    expect(await p.locator('h1').textContent()).toContain('Kwaliteitsrapport');
    expect(await p.locator('.status').textContent()).toBe('geweigerd');
    expect(await p.locator('p.summary').textContent()).toMatch(/^Geweigerd: niets uit dit bestand is geladen/);
    expect(await p.locator('.error dd.error-line').textContent()).toBe(expected.line.toLocaleString('nl'));
    expect(await p.locator('.error .error-message').textContent()).toContain(`${expected.fields}`);
    expect(problems()).toEqual([]);
    expect(requests()).toEqual([]);
    await shot(p, 'report-failed-nl');
  }, 120_000);

  it('stays under 2 MB for a load with 100,000 rows set aside, with exact counts and sampled lines and features', async () => {
    // 105,000 stations: every 21st kept as it is, every 49th's longitude off the world, the others' stop times unreadable
    const body = stationsFile(105_000, (i) => (i % 21 === 0 ? undefined : i % 49 === 1 ? 'longitude' : 'stop-times'));
    const facts = stationFacts(body, 'bulk.csv');
    expect(facts.quarantined).toBe(100_000);

    const outcome = await deliver({ stage: stageDeps, clean: cleanDeps }, bucket, 'incoming/bulk/bulk_stations/bulk.csv', body);
    expect(outcome).toMatchObject({ status: 'loaded', rowsQuarantined: facts.quarantined, rowsLoaded: facts.loaded });
    const { html } = await reportPage('reports/bulk/bulk_stations/bulk.csv.report.html');
    const bytes = Buffer.byteLength(html);
    console.log(`HTML report of a load with ${facts.quarantined} rows set aside: ${bytes} bytes`);
    expect(bytes).toBeLessThan(2 * 1024 * 1024);

    const { page: p, problems, requests } = await openPage(browser, { html });
    expect(await cardNumber(p, 'read')).toBe(facts.read.toLocaleString('en'));
    expect(await cardNumber(p, 'quarantined')).toBe('100,000');
    expect(await cardNumber(p, 'loaded')).toBe(facts.loaded.toLocaleString('en'));
    expect((await exampleLines(p)).slice(0, 5)).toEqual(facts.firstLines);
    expect(await features(p, 'loaded')).toBe(Math.min(facts.loadedLocated, MAP_FEATURES));
    expect(await features(p, 'rejected')).toBe(Math.min(facts.rejectedLocated, REJECTED_FEATURES));
    expect(await p.locator('.map-note').textContent()).toContain(`of ${facts.rejectedLocated.toLocaleString('en')} set-aside rows`);
    expect(problems()).toEqual([]);
    expect(requests()).toEqual([]);
    await shot(p, 'report-100k');
  }, 300_000);
});
