/**
 * How a zip archive begins, apart from the reader (archive.ts) so that recognising one (open.ts)
 * does not load yauzl: the archive reader is imported only for a zip archive.
 */

/** Is this the start of a zip archive (a local file header, or an empty archive's end record)? */
export function isZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6));
}
