import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { html, page } from '../../functions/common/html.ts';
import { barChart, histogram, mapSvg, type Geometry } from '../../functions/common/svg.ts';
import { launchBrowser, openPage, shot } from '../helpers/browser.ts';

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

// three stations of Amsterdam (lon, lat) and a square around the Dam, drawn as a person would see them
const points: Geometry[] = [
  { type: 'Point', coordinates: [4.9003, 52.3791] },
  { type: 'Point', coordinates: [4.8838, 52.3389] },
  { type: 'Point', coordinates: [4.9178, 52.3463] },
];
const square: Geometry = {
  type: 'Polygon',
  coordinates: [
    [
      [4.889, 52.371],
      [4.896, 52.371],
      [4.896, 52.375],
      [4.889, 52.375],
      [4.889, 52.371],
    ],
  ],
};

describe('the SVG pictures of a page, in a real browser', () => {
  it('draws every feature of every layer inside the map, and counts them in the legend', async () => {
    const map = mapSvg([
      { name: 'loaded', label: 'loaded', color: '#2f6fb2', geometries: [...points, square], titles: ['Centraal', 'Zuid', 'Amstel', 'Dam'] },
      { name: 'rejected', label: 'set aside', color: '#c4314b', geometries: [null, { type: 'Point', coordinates: [4.95, 52.36] }] },
    ]);
    const { page: p, problems, requests } = await openPage(browser, { html: page({ title: 'map', lang: 'en', body: html`<h1>Map</h1>${map}` }) });
    expect(await p.locator('g.layer[data-layer=loaded] .feature').count()).toBe(4);
    expect(await p.locator('g.layer[data-layer=rejected] .feature').count()).toBe(1);
    expect(await p.locator('figcaption').textContent()).toBe('loaded: 4set aside: 1');
    const svg = (await p.locator('svg.map').boundingBox())!;
    for (const box of await p.locator('.feature').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON() as { x: number; y: number; width: number; height: number }))) {
      expect(box.width).toBeGreaterThan(0);
      expect(box.x).toBeGreaterThanOrEqual(svg.x);
      expect(box.x + box.width).toBeLessThanOrEqual(svg.x + svg.width + 0.5);
      expect(box.y).toBeGreaterThanOrEqual(svg.y);
      expect(box.y + box.height).toBeLessThanOrEqual(svg.y + svg.height + 0.5);
    }
    // north is up: Centraal (52.379) is drawn above Zuid (52.339)
    const [centraal, zuid] = await p.locator('g.layer[data-layer=loaded] circle').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().y));
    expect(centraal!).toBeLessThan(zuid!);
    await shot(p, 'svg-map');
    expect(problems()).toEqual([]);
    expect(requests()).toEqual([]);
  });

  it('scales bars to the largest value and escapes labels', async () => {
    const chart = barChart([
      { label: 'type <b>', value: 120 },
      { label: 'required', value: 30 },
    ]);
    const bins = histogram([
      { from: 0, to: 10, count: 5 },
      { from: 10, to: 20, count: 0 },
      { from: 20, to: 30, count: 10 },
    ]);
    const { page: p, problems } = await openPage(browser, { html: page({ title: 'charts', lang: 'en', body: html`${chart}${bins}` }) });
    const widths = await p.locator('.bar rect').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().width));
    expect(widths[1]! / widths[0]!).toBeCloseTo(0.25, 2);
    expect(await p.locator('.bar text').first().textContent()).toBe('type <b>');
    const heights = await p.locator('.bin').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().height));
    expect(heights[1]).toBe(0);
    expect(heights[0]! / heights[2]!).toBeCloseTo(0.5, 2);
    expect(problems()).toEqual([]);
  });
});
