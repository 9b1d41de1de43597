import iconv from 'iconv-lite';
import type { Encoding } from '../profile/types.ts';

/**
 * Text in any encoding the detector names, as UTF-8 bytes (the byte-order mark dropped), chunk by
 * chunk: COPY and the lineage scanner then see one encoding whatever the supplier sent.
 */
export async function* toUtf8(source: AsyncIterable<Buffer>, encoding: Encoding): AsyncGenerator<Buffer> {
  const decoder = iconv.getDecoder(encoding, { stripBOM: true });
  for await (const chunk of source) {
    const text = decoder.write(chunk);
    if (text) yield Buffer.from(text, 'utf8');
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
