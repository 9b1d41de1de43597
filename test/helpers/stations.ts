/**
 * Real-looking files with refused values, made from a real public file: iRail's list of Belgian
 * railway stations (test/acceptance/files/be-irail-stations.csv, CC0), its rows repeated as often
 * as needed, with `avg_stop_times` made unreadable (`about 12`) or the longitude out of the world on
 * chosen rows. Used by the report's browser test and by `npm run bench -- report`.
 *
 * Its last four fields (longitude, latitude, avg_stop_times, official_transfer_time) are plain
 * numbers, never quoted, so a row is changed by splitting it from the right.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PipelineInput } from '../../contract/definition.ts';

export const STATIONS_FILE = join(import.meta.dirname, '..', 'acceptance', 'files', 'be-irail-stations.csv');

/** How a data row (0-based, in the made file) is spoiled: its stop times unreadable, its longitude off the world, or left as it is. */
export type Spoil = (row: number) => 'stop-times' | 'longitude' | undefined;

/** The stations file with `rows` data rows (the real ones, repeated), spoiled as `spoil` says. */
export function stationsFile(rows: number, spoil: Spoil): string {
  const [header, ...data] = readFileSync(STATIONS_FILE, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  const out = [header!];
  for (let i = 0; i < rows; i++) {
    const fields = data[i % data.length]!.split(',');
    const n = fields.length;
    const how = spoil(i);
    if (how === 'stop-times') fields[n - 2] = 'about 12';
    if (how === 'longitude') fields[n - 4] = '999.5';
    out.push(fields.join(','));
  }
  return `${out.join('\n')}\n`;
}

/** A pipeline with one supplier (in `language`) uploading the stations, typed so that the spoiled values are refused. */
export function stationsPipeline(project: string, supplier: string, language?: 'en' | 'fr' | 'nl'): PipelineInput {
  return {
    project,
    suppliers: [{ name: supplier, ...(language ? { language } : {}) }],
    datasets: [
      {
        name: 'stations',
        source: { type: 'upload', supplier },
        geometry: { from: { lat: 'latitude', lon: 'longitude' } },
        clean: {
          columns: [
            { name: 'uri', source: 'URI', required: true },
            { name: 'name', source: 'name', required: true },
            { name: 'country_code', source: 'country-code' },
            { name: 'avg_stop_times', source: 'avg_stop_times', type: 'numeric' },
            { name: 'official_transfer_time', source: 'official_transfer_time', type: 'integer' },
          ],
        },
      },
    ],
  };
}

/** Python (stdlib csv), independent of civic-etl: what a file of stations holds and which of its rows break the pipeline's rules. */
export const STATIONS_FACTS_PY = `
import csv, json, sys
def num(v):
    try:
        x = float(v); return x == x and abs(x) != float('inf')
    except ValueError:
        return False
def integer(v):
    try:
        int(v); return True
    except ValueError:
        return False
read = 0; bad = []; located = 0; loaded_located = 0; first = []
with open(sys.argv[1], newline='', encoding='utf-8') as f:
    r = csv.reader(f)
    header = next(r)
    at = {h: i for i, h in enumerate(header)}
    for rec in r:
        read += 1
        line = r.line_num
        lon, lat = rec[at['longitude']].strip(), rec[at['latitude']].strip()
        stop, transfer = rec[at['avg_stop_times']].strip(), rec[at['official_transfer_time']].strip()
        coords_ok = num(lon) and num(lat) and abs(float(lon)) <= 180 and abs(float(lat)) <= 90
        refused = (lon and (not num(lon) or abs(float(lon)) > 180)) or (lat and (not num(lat) or abs(float(lat)) > 90)) \\
            or (stop and not num(stop)) or (transfer and not integer(transfer)) or not rec[at['URI']].strip() or not rec[at['name']].strip()
        if refused:
            bad.append(line)
            if coords_ok: located += 1
        elif coords_ok:
            loaded_located += 1
        if len(first) < 5 and refused: first.append(line)
print(json.dumps({'read': read, 'quarantined': len(bad), 'loaded': read - len(bad), 'rejectedLocated': located, 'loadedLocated': loaded_located, 'firstLines': first}))
`;

export interface StationsFacts {
  read: number;
  quarantined: number;
  loaded: number;
  /** Loaded rows with coordinates: the features on the map. */
  loadedLocated: number;
  /** Refused rows whose coordinates are numbers within the world. */
  rejectedLocated: number;
  /** The first refused rows' physical lines (1-based, header included). */
  firstLines: number[];
}
