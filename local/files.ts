import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';

/** A local file as a byte stream; gzip-compressed files (by their magic bytes) are decompressed. */
export async function openLocalFile(path: string): Promise<AsyncIterable<Uint8Array>> {
  const handle = await open(path).catch((error: NodeJS.ErrnoException) => {
    throw new Error(error.code === 'ENOENT' ? `${path}: no such file` : `${path}: ${error.message}`);
  });
  const magic = Buffer.alloc(2);
  await handle.read(magic, 0, 2, 0);
  await handle.close();
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
  // pipeline, not pipe: a corrupt gzip stream errors the reader instead of crashing the process
  return magic[0] === 0x1f && magic[1] === 0x8b ? pipeline(stream, createGunzip(), () => undefined) : stream;
}
