/**
 * Deterministic generator for the Amsterdam example's data in `pipelines/amsterdam/data/`.
 *
 *   npx tsx scripts/generate-amsterdam.ts
 *
 * Writes
 * - `buurten.geojson`: 20 neighbourhoods (buurten) in RD New (EPSG:28992, named in the file's
 *   `crs` member), a 5 × 4 grid of 600 m squares around the Dam — real names, made-up shapes and
 *   populations (the real boundaries are not on this machine);
 * - `meldingen.csv`: 400 reports of issues in public space from a contractor, as points in RD New
 *   x/y (metres), semicolon-delimited with decimal points, as Dutch exports often are; 5 of them
 *   fall outside every buurt.
 *
 * Every run writes byte-identical files (a seeded PRNG, no clock, no locale).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from './random.ts';

const OUT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'pipelines', 'amsterdam', 'data');
const rand = mulberry32(0xa3d4);

/** The grid: 5 columns × 4 rows of 600 m, lower-left corner south-west of the Dam. */
const GRID = { x0: 119_900, y0: 486_200, size: 600, columns: 5, rows: 4 };
const NAMES = [
  'Houthavens',
  'Spaarndammer- en Zeeheldenbuurt',
  'Westelijke Eilanden',
  'Haarlemmerbuurt',
  'Centrale Markt',
  'Staatsliedenbuurt',
  'Jordaan',
  'Grachtengordel-West',
  'Burgwallen-Nieuwe Zijde',
  'Burgwallen-Oude Zijde',
  'Frederik Hendrikbuurt',
  'Da Costabuurt',
  'Grachtengordel-Zuid',
  'Nieuwmarkt/Lastage',
  'Oostelijke Eilanden/Kadijken',
  'Kinkerbuurt',
  'Van Lennepbuurt',
  'Helmersbuurt',
  'De Weteringschans',
  'Weesperbuurt/Plantage',
];

const buurten = NAMES.map((naam, i) => {
  const col = i % GRID.columns;
  const row = Math.floor(i / GRID.columns);
  const x = GRID.x0 + col * GRID.size;
  const y = GRID.y0 + row * GRID.size;
  const ring = [
    [x, y],
    [x + GRID.size, y],
    [x + GRID.size, y + GRID.size],
    [x, y + GRID.size],
    [x, y],
  ];
  return {
    type: 'Feature',
    properties: { code: `A${String(i).padStart(2, '0')}`, naam, inwoners: 1500 + Math.floor(rand() * 8500) },
    geometry: { type: 'Polygon', coordinates: [ring] },
  };
});

/**
 * A coordinate with 2 decimals, never exactly on a grid line: a point on the boundary of two buurten
 * is contained by neither (ST_Contains), which the example should not have to explain.
 */
function offGrid(v: number, origin: number): string {
  const text = v.toFixed(2);
  return (Number(text) - origin) % GRID.size === 0 ? (Number(text) + 0.01).toFixed(2) : text;
}

const CATEGORIES = ['Afval', 'Straatverlichting', 'Bestrating', 'Groen', 'Fietswrakken'];
const lines = ['melding_id;categorie;datum;x;y'];
for (let i = 1; i <= 400; i++) {
  const outside = i % 67 === 0; // 5 reports just beyond the grid
  const x = outside ? GRID.x0 - 50 - rand() * 400 : GRID.x0 + 1 + rand() * (GRID.columns * GRID.size - 2);
  const y = GRID.y0 + 1 + rand() * (GRID.rows * GRID.size - 2);
  const day = 1 + Math.floor(rand() * 28);
  lines.push(`M-${String(i).padStart(4, '0')};${CATEGORIES[Math.floor(rand() * CATEGORIES.length)]};2026-03-${String(day).padStart(2, '0')};${offGrid(x, GRID.x0)};${offGrid(y, GRID.y0)}`);
}

mkdirSync(OUT_DIR, { recursive: true });
const geojson = { type: 'FeatureCollection', name: 'buurten', crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::28992' } }, features: buurten };
writeFileSync(join(OUT_DIR, 'buurten.geojson'), `${JSON.stringify(geojson)}\n`, 'utf8');
writeFileSync(join(OUT_DIR, 'meldingen.csv'), `${lines.join('\n')}\n`, 'utf8');
console.log(`wrote ${buurten.length} buurten and ${lines.length - 1} meldingen to ${OUT_DIR}`);
