import { PermanentError } from '../common/errors.ts';
import type { Encoding } from '../profile/types.ts';
import { loadCodecs } from '../profile/codecs.ts';

/**
 * Text in any encoding the detector names, as UTF-8 bytes (the byte-order mark dropped), chunk by
 * chunk: COPY and the lineage scanner then see one encoding whatever the supplier sent. UTF-16
 * comes in pairs of bytes: one left over at the end (`file` given) fails the read, naming the
 * file and its size, rather than being dropped without a word.
 */
export async function* toUtf8(source: AsyncIterable<Buffer>, encoding: Encoding, file?: string): AsyncGenerator<Buffer> {
  const decoder = (await loadCodecs()).getDecoder(encoding, { stripBOM: true });
  let bytes = 0;
  for await (const chunk of source) {
    bytes += chunk.length;
    const text = decoder.write(chunk);
    if (text) yield Buffer.from(text, 'utf8');
  }
  if (file !== undefined && (encoding === 'utf-16le' || encoding === 'utf-16be') && bytes % 2 === 1) {
    throw new PermanentError(`${file}: a ${encoding.toUpperCase()} file of ${bytes} bytes, an odd number: its last byte (offset ${bytes - 1}) is half a character; the file is cut off or not UTF-16`, {
      file,
    });
  }
  const tail = decoder.end();
  if (tail) yield Buffer.from(tail, 'utf8');
}

/** A leading UTF-8 byte-order mark removed. */
export async function* withoutUtf8Bom(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let first = true;
  for await (const chunk of source) {
    if (first && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) yield chunk.subarray(3);
    else yield chunk;
    first = false;
  }
}
