/**
 * An HTML page where a data file was expected — a portal's login or error page served with 200,
 * a CDN's "not found" — is refused by every fetcher (the catalogue's, `http` sources), never
 * stored as data: told by the Content-Type, else by the first bytes.
 */

/** The format named wants a web page (`html`, `htm`, `xhtml`): then an HTML answer is the file. */
export const wantsHtml = (format: string) => /^x?html?$/i.test(format);

/** A Content-Type of a web page: `text/html`, `application/xhtml+xml`. */
export const isHtmlType = (contentType: string | undefined) => contentType !== undefined && /\b(text\/html|application\/xhtml)/i.test(contentType);

/** `<!doctype html>`, `<html>`, `<head>` or `<body>` at the start (after a BOM and blanks). */
export function looksLikeHtml(chunk: Buffer): boolean {
  const head = chunk
    .subarray(0, 256)
    .toString('latin1')
    .replace(/^(\xEF\xBB\xBF|\uFEFF)?\s*/, '');
  return /^<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])/i.test(head);
}
