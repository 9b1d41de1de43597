import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';

/** A local file as a byte stream (the readers gunzip gzip-compressed files themselves). */
export async function openLocalFile(path: string): Promise<AsyncIterable<Uint8Array>> {
  await access(path).catch((error: NodeJS.ErrnoException) => {
    throw new Error(error.code === 'ENOENT' ? `${path}: no such file` : `${path}: ${error.message}`);
  });
  return createReadStream(path, { highWaterMark: 256 * 1024 });
}
