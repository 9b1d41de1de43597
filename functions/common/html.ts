/**
 * HTML written by civic-etl (the quality report a supplier opens, the local console's pages):
 * escaping by default, one page shell with its style inline, and a policy that forbids the page
 * any network request. Server-side strings only: no template engine, no client framework.
 *
 * @example
 *   const body = html`<h1>${title}</h1><p>${count} rows</p>`; // title is escaped
 *   const doc = page({ title, lang: 'en', body });
 */

/** Markup that is already safe: interpolated as it is. Anything else interpolated is escaped. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text as HTML text or attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Markup from a trusted string (a literal, or markup built by this module). */
export function raw(markup: string): Html {
  return new Html(markup);
}

type Part = Html | string | number | boolean | null | undefined | readonly Part[];

function render(part: Part): string {
  if (part === null || part === undefined || part === false) return '';
  if (part instanceof Html) return part.value;
  if (Array.isArray(part)) return part.map(render).join('');
  return escapeHtml(String(part));
}

/**
 * The tag of HTML templates: strings and numbers are escaped, `Html` values go in as they are,
 * arrays are joined, and `null`, `undefined` and `false` write nothing (for `${cond && html`…`}`).
 */
export function html(strings: TemplateStringsArray, ...parts: Part[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < parts.length; i++) out += render(parts[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** A number as people of that language write it (1,234.5 · 1 234,5 · 1.234,5). */
export function formatNumber(value: number, lang = 'en', digits = 0): string {
  return value.toLocaleString(lang, { maximumFractionDigits: digits });
}

/**
 * No request may leave the page: no script, font, frame or remote image; styles inline, images
 * as data: URLs. A report opened from a mail or a bucket works offline and calls no one.
 */
export const NO_NETWORK_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'";

const BASE_CSS = `
:root{--fg:#1b1f24;--muted:#5b6470;--line:#d8dde3;--bg:#fff;--soft:#f4f6f8;--ok:#1a7f37;--bad:#c4314b;--warn:#9a6700;--accent:#2f6fb2}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg);margin:0}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.5em;margin:.4em 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}
h3{font-size:1em;margin:1.2em 0 .4em}
.muted{color:var(--muted)}.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em;font-size:.92em}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.92em}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:.8em 0}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 16px;min-width:150px;background:var(--soft)}
.card .n{font-size:1.6em;font-weight:650;font-variant-numeric:tabular-nums}
.card .l{color:var(--muted);font-size:.85em}
.status{display:inline-block;border-radius:10px;padding:0 8px;font-size:.85em;font-weight:600;background:var(--soft);border:1px solid var(--line)}
.status.loaded{color:var(--ok)}.status.failed{color:var(--bad)}.status.skipped,.status.received,.status.staged{color:var(--warn)}
svg{max-width:100%;height:auto}
svg text{font:11px system-ui,"DejaVu Sans",sans-serif;fill:var(--fg)}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
nav{background:var(--soft);border-bottom:1px solid var(--line);padding:8px 24px}nav a{margin-right:16px}
a{color:var(--accent)}
details{margin:.3em 0}summary{cursor:pointer}
.error{border-left:4px solid var(--bad);background:#fdf0f2;padding:8px 12px;margin:.8em 0}
`;

export interface PageOptions {
  title: string;
  /** The page's language (BCP 47), for screen readers and number formats. */
  lang: string;
  body: Html;
  /** Markup above `<main>` (the console's navigation). */
  header?: Html;
  /** More CSS, appended to the shared style. */
  css?: string;
}

/** A whole HTML document: UTF-8, the no-network policy, the shared style, `body` in `<main>`. */
export function page(opts: PageOptions): string {
  return `<!DOCTYPE html>
<html lang="${escapeHtml(opts.lang)}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(NO_NETWORK_POLICY)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="civic-etl">
<title>${escapeHtml(opts.title)}</title>
<style>${BASE_CSS}${opts.css ?? ''}</style>
</head>
<body>
${opts.header?.value ?? ''}<main>
${opts.body.value}
</main>
</body>
</html>
`;
}
