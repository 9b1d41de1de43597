/**
 * Deterministic generator for the example pipeline's data in `pipelines/chicago/data/`.
 *
 *   npx tsx scripts/generate-chicago.ts
 *
 * Writes
 * - `community_snapshot.csv`: the 77 Chicago community areas (real numbers and names) with
 *   generated, plausible indicators; comma-delimited; a few empty cells (missing values);
 * - `programs.csv`: 300 youth/community programs; semicolon-delimited (a supplier whose
 *   spreadsheet exports `;`), descriptions with commas, escaped quotes and a few quoted line
 *   breaks; 3 rows with values the clean step must quarantine and 1 repeated row (duplicate key).
 *
 * Every run writes byte-identical files (a seeded PRNG, no clock, no locale). The numbers are
 * made up; only the community area numbers and names are real. At the end it prints the facts
 * tests assert (row counts, the physical line of each deliberately bad row, view counts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from './random.ts';

const OUT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'pipelines', 'chicago', 'data');

const rand = mulberry32(0xc41ca60);
const between = (lo: number, hi: number) => lo + (hi - lo) * rand();
const intBetween = (lo: number, hi: number) => Math.floor(between(lo, hi + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

// ---------------------------------------------------------------------------------------------
// Community areas: official number and name (public facts), an approximate centre point and a
// rough prior (0 = affluent … 1 = high hardship) so the generated indicators look plausible.
// ---------------------------------------------------------------------------------------------
type Area = { number: number; name: string; lat: number; lon: number; need: number };
const AREAS: Area[] = (
  [
    [1, 'Rogers Park', 42.009, -87.67, 0.45],
    [2, 'West Ridge', 41.999, -87.692, 0.45],
    [3, 'Uptown', 41.966, -87.656, 0.35],
    [4, 'Lincoln Square', 41.969, -87.688, 0.2],
    [5, 'North Center', 41.952, -87.681, 0.05],
    [6, 'Lake View', 41.944, -87.653, 0.05],
    [7, 'Lincoln Park', 41.921, -87.649, 0.03],
    [8, 'Near North Side', 41.9, -87.634, 0.03],
    [9, 'Edison Park', 42.007, -87.813, 0.1],
    [10, 'Norwood Park', 41.986, -87.807, 0.15],
    [11, 'Jefferson Park', 41.971, -87.764, 0.2],
    [12, 'Forest Glen', 41.985, -87.754, 0.1],
    [13, 'North Park', 41.98, -87.721, 0.35],
    [14, 'Albany Park', 41.968, -87.72, 0.5],
    [15, 'Portage Park', 41.957, -87.765, 0.35],
    [16, 'Irving Park', 41.953, -87.736, 0.3],
    [17, 'Dunning', 41.947, -87.806, 0.4],
    [18, 'Montclare', 41.925, -87.8, 0.55],
    [19, 'Belmont Cragin', 41.931, -87.767, 0.7],
    [20, 'Hermosa', 41.923, -87.734, 0.7],
    [21, 'Avondale', 41.939, -87.711, 0.45],
    [22, 'Logan Square', 41.923, -87.7, 0.25],
    [23, 'Humboldt Park', 41.902, -87.721, 0.8],
    [24, 'West Town', 41.896, -87.672, 0.1],
    [25, 'Austin', 41.893, -87.766, 0.75],
    [26, 'West Garfield Park', 41.88, -87.729, 0.92],
    [27, 'East Garfield Park', 41.881, -87.703, 0.85],
    [28, 'Near West Side', 41.875, -87.666, 0.15],
    [29, 'North Lawndale', 41.86, -87.718, 0.88],
    [30, 'South Lawndale', 41.842, -87.713, 0.85],
    [31, 'Lower West Side', 41.853, -87.666, 0.7],
    [32, 'Loop', 41.88, -87.628, 0.03],
    [33, 'Near South Side', 41.856, -87.622, 0.05],
    [34, 'Armour Square', 41.84, -87.633, 0.7],
    [35, 'Douglas', 41.835, -87.618, 0.45],
    [36, 'Oakland', 41.823, -87.603, 0.6],
    [37, 'Fuller Park', 41.809, -87.633, 0.95],
    [38, 'Grand Boulevard', 41.813, -87.618, 0.55],
    [39, 'Kenwood', 41.809, -87.596, 0.3],
    [40, 'Washington Park', 41.793, -87.618, 0.85],
    [41, 'Hyde Park', 41.794, -87.593, 0.15],
    [42, 'Woodlawn', 41.779, -87.596, 0.65],
    [43, 'South Shore', 41.763, -87.576, 0.65],
    [44, 'Chatham', 41.741, -87.612, 0.55],
    [45, 'Avalon Park', 41.745, -87.586, 0.4],
    [46, 'South Chicago', 41.74, -87.555, 0.75],
    [47, 'Burnside', 41.728, -87.597, 0.75],
    [48, 'Calumet Heights', 41.729, -87.58, 0.4],
    [49, 'Roseland', 41.713, -87.624, 0.7],
    [50, 'Pullman', 41.699, -87.608, 0.6],
    [51, 'South Deering', 41.693, -87.566, 0.7],
    [52, 'East Side', 41.709, -87.535, 0.6],
    [53, 'West Pullman', 41.677, -87.638, 0.75],
    [54, 'Riverdale', 41.658, -87.605, 0.97],
    [55, 'Hegewisch', 41.66, -87.548, 0.4],
    [56, 'Garfield Ridge', 41.794, -87.769, 0.35],
    [57, 'Archer Heights', 41.811, -87.726, 0.6],
    [58, 'Brighton Park', 41.818, -87.699, 0.75],
    [59, 'McKinley Park', 41.831, -87.674, 0.55],
    [60, 'Bridgeport', 41.838, -87.648, 0.3],
    [61, 'New City', 41.808, -87.666, 0.8],
    [62, 'West Elsdon', 41.794, -87.724, 0.55],
    [63, 'Gage Park', 41.795, -87.696, 0.8],
    [64, 'Clearing', 41.78, -87.765, 0.3],
    [65, 'West Lawn', 41.773, -87.722, 0.55],
    [66, 'Chicago Lawn', 41.775, -87.695, 0.75],
    [67, 'West Englewood', 41.778, -87.667, 0.85],
    [68, 'Englewood', 41.779, -87.645, 0.9],
    [69, 'Greater Grand Crossing', 41.763, -87.615, 0.7],
    [70, 'Ashburn', 41.747, -87.709, 0.35],
    [71, 'Auburn Gresham', 41.743, -87.655, 0.65],
    [72, 'Beverly', 41.716, -87.675, 0.05],
    [73, 'Washington Heights', 41.717, -87.651, 0.45],
    [74, 'Mount Greenwood', 41.694, -87.713, 0.05],
    [75, 'Morgan Park', 41.689, -87.667, 0.35],
    [76, "O'Hare", 41.977, -87.88, 0.2],
    [77, 'Edgewater', 41.987, -87.661, 0.25],
  ] as const
).map(([number, name, lat, lon, need]) => ({ number, name, lat, lon, need }));

// ---------------------------------------------------------------------------------------------
// community_snapshot.csv
// ---------------------------------------------------------------------------------------------
/** Cells left empty on purpose (area number → column header): missing values, not errors. */
const MISSING: Record<number, string> = {
  9: 'Median Household Income',
  18: 'Hardship Index',
  37: 'Percent Below Poverty',
  55: "Percent Bachelor's Degree or Higher",
  76: 'Unemployment Rate',
};
const SNAPSHOT_HEADER = [
  'Community Area Number',
  'Community Area Name',
  'Population',
  'Median Household Income',
  'Percent Below Poverty',
  "Percent Bachelor's Degree or Higher",
  'Hardship Index',
  'Unemployment Rate',
];

const SMALL_AREAS = new Set([37, 47]); // Fuller Park, Burnside

type Snapshot = { area: Area; population: number };
const snapshots: Snapshot[] = [];
const snapshotLines = [SNAPSHOT_HEADER.join(',')];
for (const area of AREAS) {
  // One latent "need" score drives the correlated indicators, as in the real data.
  const need = clamp(area.need + between(-0.08, 0.08), 0, 1);
  // Mostly 15,000–80,000 residents; the two smallest real areas stay small.
  const normal = (rand() + rand() + rand() - 1.5) * 2; // roughly N(0, 1)
  const population = SMALL_AREAS.has(area.number) ? Math.round(between(2300, 3000) / 10) * 10 : Math.round(clamp(Math.exp(Math.log(34000) + 0.55 * normal), 5000, 100000) / 10) * 10;
  const income = Math.round((between(180000, 220000) * Math.exp(-2.2 * need) * between(0.85, 1.15)) / 100) * 100;
  const poverty = clamp(4 + 42 * need + between(-4, 4), 2.5, 60);
  const bachelors = clamp(78 - 70 * need + between(-6, 6), 4, 85);
  const unemployment = clamp(3 + 22 * need + between(-2, 2), 2, 30);
  const hardship = Math.round(clamp(2 + 96 * need + between(-5, 5), 1, 99));
  snapshots.push({ area, population });
  const row: Record<string, string> = {
    'Community Area Number': String(area.number),
    'Community Area Name': area.name,
    Population: String(population),
    'Median Household Income': String(income),
    'Percent Below Poverty': poverty.toFixed(1),
    "Percent Bachelor's Degree or Higher": bachelors.toFixed(1),
    'Hardship Index': String(hardship),
    'Unemployment Rate': unemployment.toFixed(1),
  };
  const missing = MISSING[area.number];
  if (missing) row[missing] = '';
  snapshotLines.push(SNAPSHOT_HEADER.map((h) => csvField(row[h]!, ',')).join(','));
}

// ---------------------------------------------------------------------------------------------
// programs.csv
// ---------------------------------------------------------------------------------------------
const CATALOGUE: Record<string, readonly string[]> = {
  Education: [
    'After School Matters – Coding Club',
    'Homework Help Hub',
    'Teen Robotics Lab',
    'STEM Saturdays',
    'College Prep Workshop',
    'Library Reading Buddies',
    'ESL Conversation Circle',
    'GED Prep Classes',
  ],
  Sports: ['Park District Swim Lessons', 'Youth Basketball League', 'Junior Soccer Clinic', 'Little League Baseball', 'Track & Field Club', 'Boxing Fundamentals', 'Youth Volleyball'],
  Arts: ['After School Matters – Mural Painting', 'Teen Photography Workshop', 'Youth Choir', 'Spoken Word & Poetry', 'Dance Fundamentals', 'Community Theater Camp', 'Ceramics Studio'],
  Health: ['Teen Wellness Circle', 'Healthy Habits Cooking', 'Youth Mental Health First Aid', 'Yoga in the Park', 'Family Fitness Nights'],
  Employment: ['One Summer Chicago – Summer Jobs', 'Youth Job Readiness Bootcamp', 'Resume & Interview Clinic', 'Green Corps Apprenticeship', 'Teen Internship Program'],
  Food: ['Summer Meals Site', 'Community Garden Club', 'Youth Farmers Market', 'Kids Cooking Lab'],
};
const CATEGORIES = Object.keys(CATALOGUE);
const VENUES = ['field house', 'public library branch', 'community center', 'park', 'high school', 'YMCA', 'church hall'];
const AGES = ['ages 6–12', 'ages 10–14', 'ages 12–18', 'ages 14–21', 'teens', 'families', 'all ages'];
const SCHEDULES = ['Mondays and Wednesdays', 'Tuesdays and Thursdays', 'weekday afternoons', 'Saturday mornings', 'Friday evenings'];
const EXTRAS = [
  'No experience needed, all materials provided',
  'Registration required, space is limited',
  'Free snacks, transit cards available on request',
  'Parents welcome, bilingual staff (English, Spanish)',
  'Bring water, comfortable clothes and a "can-do" attitude',
  'Run with local partners, volunteers and alumni mentors',
];

/**
 * Programs per area are uneven. The two smallest areas get none on purpose, so the per-area view
 * must show 0 for them (a LEFT JOIN); other areas may draw none by chance (the summary lists all).
 */
const NO_PROGRAMS = SMALL_AREAS;
const eligible = AREAS.filter((a) => !NO_PROGRAMS.has(a.number));

const TOTAL_RECORDS = 300; // data records in programs.csv, the repeated one included
/** Record number (1-based, data records only) → the defect it carries. */
const BAD: Record<number, { column: string; value: string; why: string }> = {
  47: { column: 'Capacity', value: 'twenty', why: 'capacity is not an integer' },
  152: { column: 'Start Date', value: '2024-13-45', why: 'start date is not a valid date' },
  233: { column: 'Latitude', value: 'n/a', why: 'latitude is not a number (and it is required)' },
};
const DUPLICATE = { record: 271, copyOf: 118 }; // record 271 repeats record 118 byte for byte
/** Records whose description holds a quoted line break. */
const MULTILINE = new Set([23, 96, 189]);
/** Records whose community area name is written differently from the snapshot. */
const NAME_VARIANTS: Record<number, (name: string) => string> = {
  12: (n) => n.toUpperCase(),
  64: (n) => n.toLowerCase(),
  141: (n) => n.toUpperCase(),
  207: (n) => `${n} `, // trailing space
  258: (n) => n.toUpperCase(),
};

const PROGRAMS_HEADER = ['Program ID', 'Program Name', 'Category', 'Community Area', 'Latitude', 'Longitude', 'Start Date', 'End Date', 'Capacity', 'Cost (USD)', 'Description'];

const isoDate = (d: Date) => d.toISOString().slice(0, 10);
const SEASONS = [
  { label: 'Winter 2024', from: Date.UTC(2024, 0, 8), to: Date.UTC(2024, 1, 5) },
  { label: 'Spring 2024', from: Date.UTC(2024, 2, 4), to: Date.UTC(2024, 3, 15) },
  { label: 'Summer 2024', from: Date.UTC(2024, 5, 3), to: Date.UTC(2024, 6, 8) },
  { label: 'Fall 2024', from: Date.UTC(2024, 8, 3), to: Date.UTC(2024, 9, 14) },
];
const DAY = 86_400_000;

type Program = { record: number; cells: string[]; area: Area; bad: boolean; duplicate: boolean };
const programs: Program[] = [];
for (let record = 1; record <= TOTAL_RECORDS; record++) {
  if (record === DUPLICATE.record) {
    const original = programs[DUPLICATE.copyOf - 1]!;
    programs.push({ ...original, record, duplicate: true });
    continue;
  }
  const category = pick(CATEGORIES);
  const area = pick(eligible);
  const season = pick(SEASONS);
  const start = new Date(season.from + intBetween(0, Math.round((season.to - season.from) / DAY)) * DAY);
  const end = new Date(start.getTime() + intBetween(4, 14) * 7 * DAY);
  const free = category === 'Food' || rand() < 0.45;
  const cost = free ? '0.00' : (intBetween(2, 30) * 5 + (rand() < 0.3 ? 0.5 : 0)).toFixed(2);
  const schedule = pick(SCHEDULES);
  const description =
    `${schedule[0]!.toUpperCase()}${schedule.slice(1)} at the ${pick(VENUES)} in ${area.name === 'Loop' ? 'the Loop' : area.name}, for ${pick(AGES)}. ` +
    (MULTILINE.has(record) ? `${pick(EXTRAS)}.\nSee the posted flyer for dates, times and contacts.` : `${pick(EXTRAS)}.`);
  const row: Record<string, string> = {
    'Program ID': `CPD-${String(record).padStart(4, '0')}`,
    'Program Name': `${pick(CATALOGUE[category]!)} – ${season.label}`,
    Category: category,
    'Community Area': (NAME_VARIANTS[record] ?? ((n: string) => n))(area.name),
    Latitude: clamp(area.lat + between(-0.008, 0.008), 41.645, 42.018).toFixed(6),
    Longitude: clamp(area.lon + between(-0.008, 0.008), -87.935, -87.525).toFixed(6),
    'Start Date': isoDate(start),
    'End Date': isoDate(end),
    Capacity: String(intBetween(2, 24) * 5),
    'Cost (USD)': cost,
    Description: description,
  };
  const bad = BAD[record];
  if (bad) row[bad.column] = bad.value;
  programs.push({ record, cells: PROGRAMS_HEADER.map((h) => row[h]!), area, bad: Boolean(bad), duplicate: false });
}

// ---------------------------------------------------------------------------------------------
// Writing, and the facts tests assert
// ---------------------------------------------------------------------------------------------
/** Quote a field only when it must be: it holds the delimiter, a quote or a line break. */
function csvField(value: string, delimiter: string): string {
  return value.includes(delimiter) || /["\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

const programLines = [PROGRAMS_HEADER.join(';')];
const physicalLine = new Map<number, number>(); // record → physical line where it starts
let line = 2;
for (const p of programs) {
  physicalLine.set(p.record, line);
  const text = p.cells.map((c) => csvField(c, ';')).join(';');
  programLines.push(text);
  line += text.split('\n').length;
}

mkdirSync(OUT_DIR, { recursive: true });
const snapshotText = `${snapshotLines.join('\n')}\n`;
const programsText = `${programLines.join('\n')}\n`;
writeFileSync(join(OUT_DIR, 'community_snapshot.csv'), snapshotText, 'utf8');
writeFileSync(join(OUT_DIR, 'programs.csv'), programsText, 'utf8');

// ---------------------------------------------------------------------------------------------
// community_areas.geojson: one polygon per area, the Voronoi cell of its centre within the city's
// bounding box — not the real boundaries (those are not on this machine), but a partition of the
// city, so that point-in-polygon joins have something true to find. Programs near a boundary may
// fall in the neighbouring cell, as real addresses near a boundary do.
// ---------------------------------------------------------------------------------------------
const BBOX = { west: -87.94, east: -87.524, south: 41.644, north: 42.023 };
const SCALE = Math.cos((41.84 * Math.PI) / 180); // a degree of longitude, in degrees of latitude, here
type Pt = [number, number];
/** Keep the part of a convex polygon on the side of the bisector nearer to `a` than to `b`. */
function clipNearer(poly: Pt[], a: Pt, b: Pt): Pt[] {
  const nx = b[0] - a[0];
  const ny = b[1] - a[1];
  const c = (b[0] * b[0] + b[1] * b[1] - a[0] * a[0] - a[1] * a[1]) / 2;
  const inside = (p: Pt) => p[0] * nx + p[1] * ny <= c;
  const out: Pt[] = [];
  for (let i = 0; i < poly.length; i++) {
    const p = poly[i]!;
    const q = poly[(i + 1) % poly.length]!;
    if (inside(p)) out.push(p);
    if (inside(p) !== inside(q)) {
      const t = (c - p[0] * nx - p[1] * ny) / ((q[0] - p[0]) * nx + (q[1] - p[1]) * ny);
      out.push([p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]);
    }
  }
  return out;
}
const scaled = (a: Area): Pt => [a.lon * SCALE, a.lat];
const areaFeatures = AREAS.map((area) => {
  let cell: Pt[] = [
    [BBOX.west * SCALE, BBOX.south],
    [BBOX.east * SCALE, BBOX.south],
    [BBOX.east * SCALE, BBOX.north],
    [BBOX.west * SCALE, BBOX.north],
  ];
  for (const other of AREAS) if (other !== area) cell = clipNearer(cell, scaled(area), scaled(other));
  const ring = [...cell, cell[0]!].map(([x, y]) => [Number((x / SCALE).toFixed(6)), Number(y.toFixed(6))]);
  return { type: 'Feature', properties: { area_number: area.number, name: area.name }, geometry: { type: 'Polygon', coordinates: [ring] } };
});
const areasText = `${JSON.stringify({ type: 'FeatureCollection', name: 'community_areas', features: areaFeatures })}\n`;
writeFileSync(join(OUT_DIR, 'community_areas.geojson'), areasText, 'utf8');

const loaded = programs.filter((p) => !p.bad && !p.duplicate);
const perArea = new Map<number, number>();
for (const p of loaded) perArea.set(p.area.number, (perArea.get(p.area.number) ?? 0) + 1);
const zeroAreas = AREAS.filter((a) => !perArea.has(a.number)).map((a) => a.name);
const summary = {
  community_snapshot: {
    file: 'pipelines/chicago/data/community_snapshot.csv',
    bytes: Buffer.byteLength(snapshotText),
    records: snapshots.length,
    physicalLines: snapshotLines.length,
    emptyCells: Object.entries(MISSING).map(([n, col]) => ({ areaNumber: Number(n), column: col, line: Number(n) + 1 })),
    expected: { loaded: snapshots.length, quarantined: 0 },
  },
  programs: {
    file: 'pipelines/chicago/data/programs.csv',
    bytes: Buffer.byteLength(programsText),
    records: programs.length,
    physicalLines: line - 1,
    multilineRecords: [...MULTILINE].map((r) => ({ record: r, line: physicalLine.get(r), endLine: physicalLine.get(r)! + 1 })),
    bad: Object.entries(BAD).map(([r, b]) => ({ record: Number(r), line: physicalLine.get(Number(r)), id: programs[Number(r) - 1]!.cells[0], ...b })),
    duplicate: {
      record: DUPLICATE.record,
      line: physicalLine.get(DUPLICATE.record),
      id: programs[DUPLICATE.record - 1]!.cells[0],
      copyOfLine: physicalLine.get(DUPLICATE.copyOf),
    },
    nameVariants: Object.keys(NAME_VARIANTS).map((r) => ({ record: Number(r), line: physicalLine.get(Number(r)), value: programs[Number(r) - 1]!.cells[3] })),
    expected: { loaded: loaded.length, quarantined: programs.length - loaded.length },
  },
  views: {
    programs_with_community: { rows: loaded.length, rowsWithIndicators: loaded.length },
    programs_per_community: {
      rows: AREAS.length,
      areasWithoutPrograms: zeroAreas,
      totalPrograms: loaded.length,
      max: Math.max(...perArea.values()),
    },
  },
};
console.log(JSON.stringify(summary, null, 2));
