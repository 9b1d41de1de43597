/** Small helpers over byte streams (`AsyncIterable<Uint8Array>`), shared by stage and profile. */
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';

export interface Head {
  /** The first bytes (at least the asked number, unless the stream is shorter). */
  head: Buffer;
  /** The rest of the stream, untouched. */
  rest: AsyncIterator<Uint8Array>;
  /** The head is the whole stream. */
  complete: boolean;
}

/** Read at least `bytes` (or everything) and hand back the rest of the stream untouched. */
export async function readHead(source: AsyncIterable<Uint8Array>, bytes: number): Promise<Head> {
  const it = source[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let size = 0;
  while (size < bytes) {
    const next = await it.next();
    if (next.done) return { head: Buffer.concat(parts), rest: it, complete: true };
    const b = toBuffer(next.value);
    parts.push(b);
    size += b.length;
  }
  return { head: Buffer.concat(parts), rest: it, complete: false };
}

/**
 * Release a byte source whether or not it was read, and however far: a stream (an S3 GET's
 * response body, a file) is destroyed, which closes its connection or file; a source with its own
 * `close()` is closed; any other has its iterator returned. A source read to its end, or released
 * before, is left as it is. Without it, a read that fails before its first chunk — the wrapping
 * generators not started, so never returned — keeps the response open until the server times out.
 */
export async function closeSource(source: AsyncIterable<Uint8Array>): Promise<void> {
  const s = source as { destroy?: () => unknown; close?: () => unknown };
  if (typeof s.destroy === 'function') s.destroy();
  else if (typeof s.close === 'function') await s.close();
  // (an async generator not started ignores return(): its source is the caller's to close)
  else await source[Symbol.asyncIterator]().return?.();
}

/** `first`, then the rest of the stream, as Buffers. */
export async function* prepend(first: Buffer, rest: AsyncIterator<Uint8Array>): AsyncGenerator<Buffer> {
  if (first.length > 0) yield first;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield toBuffer(next.value);
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * The bytes of a stream, gunzipped when they are gzip (by the magic bytes, whatever the name):
 * suppliers and portals often send `.csv.gz`. A corrupt gzip stream fails the reader with zlib's
 * error, never crashes the process.
 */
export async function gunzipIfNeeded(source: AsyncIterable<Uint8Array>): Promise<AsyncIterable<Buffer>> {
  const { head, rest } = await readHead(source, 2);
  const bytes = prepend(head, rest);
  if (head[0] !== 0x1f || head[1] !== 0x8b) return bytes;
  return pipeline(Readable.from(bytes), createGunzip(), () => undefined);
}
