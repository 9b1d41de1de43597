import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import yauzl from 'yauzl';

/** Members of a zip archive that hold CSV-like text. */
const TABULAR_MEMBER = /\.(csv|tsv|tab|txt)(\.gz)?$/i;
/** A member that expands more than this many times its compressed size is refused (a zip bomb). */
const MAX_RATIO = 1000;

export interface LocalInput {
  /** The bytes (the readers gunzip gzip-compressed ones themselves). */
  stream: AsyncIterable<Uint8Array>;
  /** How to name it in messages: the path, or `archive.zip!member.csv`. */
  name: string;
}

/**
 * A local file as a byte stream. A zip archive yields its first CSV-like member (`.csv`, `.tsv`,
 * `.tab`, `.txt`, optionally gzipped): encrypted members and members that expand past
 * 1000× their compressed size are refused with a message naming them.
 */
export async function openLocalFile(path: string): Promise<LocalInput> {
  const handle = await open(path).catch((error: NodeJS.ErrnoException) => {
    throw new Error(error.code === 'ENOENT' ? `${path}: no such file` : `${path}: ${error.message}`);
  });
  const magic = Buffer.alloc(4);
  await handle.read(magic, 0, 4, 0);
  await handle.close();
  if (magic.readUInt32LE(0) === 0x04034b50) return openZipMember(path);
  return { stream: createReadStream(path, { highWaterMark: 256 * 1024 }), name: path };
}

function openZipMember(path: string): Promise<LocalInput> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true }, (error, zip) => {
      if (error || !zip) return reject(new Error(`${path}: not a readable zip archive: ${error?.message}`));
      const seen: string[] = [];
      zip.on('error', (e: Error) => reject(new Error(`${path}: ${e.message}`)));
      zip.on('end', () => reject(new Error(`${path}: no CSV-like member in the archive (${seen.length ? seen.join(', ') : 'it is empty'})`)));
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = entry.fileName;
        if (name.endsWith('/') || !TABULAR_MEMBER.test(name)) {
          seen.push(name);
          zip.readEntry();
          return;
        }
        if (entry.isEncrypted()) return reject(new Error(`${path}!${name}: the member is encrypted`));
        if (entry.compressedSize > 0 && entry.uncompressedSize / entry.compressedSize > MAX_RATIO && entry.uncompressedSize > 100e6) {
          return reject(new Error(`${path}!${name}: expands to ${entry.uncompressedSize} bytes from ${entry.compressedSize}: refused as a likely zip bomb`));
        }
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(new Error(`${path}!${name}: ${e?.message}`));
          resolve({ stream, name: `${path}!${name}` });
        });
      });
      zip.readEntry();
    });
  });
}
