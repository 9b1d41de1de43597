/**
 * Small SVG pictures drawn from the data, for pages that must work offline: a bar chart, a
 * histogram and a map of GeoJSON geometries (no tile server, no script). Each returns markup
 * (`Html`) to put in a page; every drawn item carries a class a test or a stylesheet can find:
 * `.bar`, `.bin`, and on maps `.feature` inside `g.layer[data-layer=<name>]`.
 */
import { escapeHtml, Html } from './html.ts';

/** A bar of a bar chart: its label, its value, and an optional title shown on hover. */
export interface Bar {
  label: string;
  value: number;
  title?: string;
}

const fmt = (n: number) => (Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 2 }));
/** Round pixels to 0.1: enough for any screen, and it keeps the markup small. */
const px = (n: number) => Math.round(n * 10) / 10;
const shorten = (s: string, max: number) =>
  Array.from(s).length > max
    ? `${Array.from(s)
        .slice(0, max - 1)
        .join('')}…`
    : s;

/** Horizontal bars, the largest value full width; labels left, values right. `format` writes the values. */
export function barChart(bars: readonly Bar[], opts: { width?: number; barHeight?: number; color?: string; format?: (n: number) => string; label?: string } = {}): Html {
  const width = opts.width ?? 560;
  const barHeight = opts.barHeight ?? 18;
  const labelWidth = Math.min(220, Math.round(width * 0.38));
  const valueWidth = 70;
  const max = Math.max(0, ...bars.map((b) => b.value));
  const plot = width - labelWidth - valueWidth - 8;
  const height = bars.length * (barHeight + 6) + 4;
  const format = opts.format ?? fmt;
  const rows = bars.map((b, i) => {
    const y = 2 + i * (barHeight + 6);
    const w = max > 0 ? Math.max(b.value > 0 ? 1 : 0, (b.value / max) * plot) : 0;
    const title = escapeHtml(b.title ?? `${b.label}: ${format(b.value)}`);
    return (
      `<g class="bar" data-value="${b.value}"><title>${title}</title>` +
      `<text x="${labelWidth - 6}" y="${y + barHeight * 0.72}" text-anchor="end">${escapeHtml(shorten(b.label, 32))}</text>` +
      `<rect x="${labelWidth}" y="${y}" width="${px(w)}" height="${barHeight}" rx="2" fill="${opts.color ?? '#c4314b'}"/>` +
      `<text x="${px(labelWidth + w + 4)}" y="${y + barHeight * 0.72}">${escapeHtml(format(b.value))}</text></g>`
    );
  });
  return new Html(
    `<svg class="chart bars" role="img" aria-label="${escapeHtml(opts.label ?? 'bar chart')}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">${rows.join('')}</svg>`,
  );
}

/** A bin of a histogram: values in [from, to) (the last bin includes `to`), and how many. */
export interface Bin {
  from: number | string;
  to: number | string;
  count: number;
}

/** A small column histogram with the first and last bounds written under it. */
export function histogram(
  bins: readonly Bin[],
  /** `format` writes the counts, `boundFormat` the numeric bounds (default: as JavaScript writes them). */
  opts: { width?: number; height?: number; color?: string; label?: string; format?: (n: number) => string; boundFormat?: (n: number) => string } = {},
): Html {
  const format = opts.format ?? fmt;
  const width = opts.width ?? 220;
  const height = opts.height ?? 60;
  const plotHeight = height - 14;
  const max = Math.max(0, ...bins.map((b) => b.count));
  const w = bins.length > 0 ? width / bins.length : width;
  const bound = (v: number | string) => (typeof v === 'number' ? (opts.boundFormat ?? String)(v) : v);
  const columns = bins.map((b, i) => {
    const h = max > 0 ? Math.max(b.count > 0 ? 1 : 0, (b.count / max) * plotHeight) : 0;
    return `<rect class="bin" data-count="${b.count}" x="${px(i * w + 0.5)}" y="${px(plotHeight - h)}" width="${px(Math.max(1, w - 1))}" height="${px(h)}" fill="${opts.color ?? '#2f6fb2'}"><title>${escapeHtml(`${bound(b.from)} – ${bound(b.to)}: ${format(b.count)}`)}</title></rect>`;
  });
  const first = bins[0];
  const last = bins.at(-1);
  const axis = first && last ? `<text x="0" y="${height - 2}">${escapeHtml(bound(first.from))}</text><text x="${width}" y="${height - 2}" text-anchor="end">${escapeHtml(bound(last.to))}</text>` : '';
  return new Html(
    `<svg class="chart histogram" role="img" aria-label="${escapeHtml(opts.label ?? 'histogram')}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">${columns.join('')}${axis}</svg>`,
  );
}

// ---------------------------------------------------------------------------------------------
// Maps

/** A GeoJSON geometry (RFC 7946), as PostGIS's ST_AsGeoJSON writes it. */
export type Geometry =
  | { type: 'Point'; coordinates: number[] }
  | { type: 'MultiPoint' | 'LineString'; coordinates: number[][] }
  | { type: 'MultiLineString' | 'Polygon'; coordinates: number[][][] }
  | { type: 'MultiPolygon'; coordinates: number[][][][] }
  | { type: 'GeometryCollection'; geometries: Geometry[] };

/** One set of features drawn in one style: `name` is its `data-layer`, `label` its legend entry. */
export interface MapLayer {
  name: string;
  label: string;
  color: string;
  geometries: readonly (Geometry | null)[];
  /** Features' titles (shown on hover), in the order of `geometries`. */
  titles?: readonly string[];
}

type Ring = number[][];

function* positions(g: Geometry): Generator<number[]> {
  switch (g.type) {
    case 'Point':
      yield g.coordinates;
      break;
    case 'MultiPoint':
    case 'LineString':
      yield* g.coordinates;
      break;
    case 'MultiLineString':
    case 'Polygon':
      for (const r of g.coordinates) yield* r;
      break;
    case 'MultiPolygon':
      for (const p of g.coordinates) for (const r of p) yield* r;
      break;
    case 'GeometryCollection':
      for (const c of g.geometries) yield* positions(c);
      break;
  }
}

/**
 * A map of the layers' geometries, fitted to their extent. Coordinates that are all within
 * longitude/latitude bounds are drawn in an equirectangular projection scaled by the cosine of
 * the middle latitude (true enough for a city or a country); others (a projected CRS) as they are.
 * Points are circles, lines paths, polygons filled paths (holes kept). A layer with no geometry
 * draws nothing; an empty map says so. The legend counts each layer's features.
 */
export function mapSvg(
  layers: readonly MapLayer[],
  /** `colon`: what the legend writes between a layer's label and its count (French sets a space before the colon). */
  opts: { width?: number; height?: number; label?: string; emptyText?: string; format?: (n: number) => string; colon?: string } = {},
): Html {
  const format = opts.format ?? fmt;
  const width = opts.width ?? 640;
  const maxHeight = opts.height ?? 420;
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const layer of layers) {
    for (const g of layer.geometries) {
      if (!g) continue;
      for (const [x, y] of positions(g)) {
        if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
        if (x! < minX) minX = x!;
        if (x! > maxX) maxX = x!;
        if (y! < minY) minY = y!;
        if (y! > maxY) maxY = y!;
      }
    }
  }
  if (!Number.isFinite(minX)) {
    return new Html(
      `<svg class="map empty" role="img" aria-label="${escapeHtml(opts.label ?? 'map')}" viewBox="0 0 ${width} 40" width="${width}" height="40" xmlns="http://www.w3.org/2000/svg"><text x="8" y="24">${escapeHtml(opts.emptyText ?? 'no geometry to draw')}</text></svg>`,
    );
  }
  const geographic = minX >= -180 && maxX <= 180 && minY >= -90 && maxY <= 90;
  const kx = geographic ? Math.cos((((minY + maxY) / 2) * Math.PI) / 180) : 1;
  const spanX = Math.max((maxX - minX) * kx, 1e-9);
  const spanY = Math.max(maxY - minY, 1e-9);
  const pad = 10;
  const scale = Math.min((width - 2 * pad) / spanX, (maxHeight - 2 * pad) / spanY);
  const height = Math.max(60, Math.ceil(spanY * scale + 2 * pad));
  const offsetX = (width - spanX * scale) / 2;
  const offsetY = (height - spanY * scale) / 2;
  const X = (x: number) => px(offsetX + (x - minX) * kx * scale);
  const Y = (y: number) => px(height - offsetY - (y - minY) * scale);
  const path = (ring: Ring, close: boolean) => {
    let d = '';
    let last = '';
    for (const [x, y] of ring) {
      const p = `${X(x!)} ${Y(y!)}`;
      if (p === last) continue; // a vertex on the same tenth of a pixel adds nothing
      d += `${d ? 'L' : 'M'}${p}`;
      last = p;
    }
    return d && close ? `${d}Z` : d;
  };
  const shape = (g: Geometry, color: string): string => {
    switch (g.type) {
      case 'Point':
        return `<circle cx="${X(g.coordinates[0]!)}" cy="${Y(g.coordinates[1]!)}" r="3"/>`;
      case 'MultiPoint':
        return g.coordinates.map((c) => `<circle cx="${X(c[0]!)}" cy="${Y(c[1]!)}" r="3"/>`).join('');
      case 'LineString':
        return `<path d="${path(g.coordinates, false)}" fill="none" stroke="${color}"/>`;
      case 'MultiLineString':
        return `<path d="${g.coordinates.map((l) => path(l, false)).join('')}" fill="none" stroke="${color}"/>`;
      case 'Polygon':
        return `<path d="${g.coordinates.map((r) => path(r, true)).join('')}" fill-rule="evenodd"/>`;
      case 'MultiPolygon':
        return `<path d="${g.coordinates.map((p) => p.map((r) => path(r, true)).join('')).join('')}" fill-rule="evenodd"/>`;
      case 'GeometryCollection':
        return g.geometries.map((c) => shape(c, color)).join('');
    }
  };
  const groups = layers.map((layer) => {
    const features = layer.geometries.map((g, i) => {
      if (!g) return '';
      const title = layer.titles?.[i];
      return `<g class="feature">${title ? `<title>${escapeHtml(title)}</title>` : ''}${shape(g, layer.color)}</g>`;
    });
    const count = layer.geometries.filter(Boolean).length;
    return `<g class="layer" data-layer="${escapeHtml(layer.name)}" data-count="${count}" fill="${layer.color}" fill-opacity="0.45" stroke="${layer.color}" stroke-width="1">${features.join('')}</g>`;
  });
  const legend = layers
    .map((l) => `<span><i style="background:${escapeHtml(l.color)}"></i>${escapeHtml(l.label)}${escapeHtml(opts.colon ?? ': ')}${escapeHtml(format(l.geometries.filter(Boolean).length))}</span>`)
    .join('');
  return new Html(
    `<figure class="map"><svg class="map" role="img" aria-label="${escapeHtml(opts.label ?? 'map')}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">` +
      `<rect width="${width}" height="${height}" fill="#f4f6f8"/>${groups.join('')}</svg><figcaption class="legend">${legend}</figcaption></figure>`,
  );
}
