import iconv from 'iconv-lite';
import type { Encoding } from '../profile/types.ts';

const LF = 0x0a;

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

/** The stream after its first `lines` line feeds (the preamble and header), untouched otherwise. */
export async function* skipLines(source: AsyncIterable<Buffer>, lines: number): AsyncGenerator<Buffer> {
  let left = lines;
  for await (const chunk of source) {
    if (left === 0) {
      yield chunk;
      continue;
    }
    let at = 0;
    while (left > 0) {
      const i = chunk.indexOf(LF, at);
      if (i < 0) break;
      left--;
      at = i + 1;
    }
    if (left === 0 && at < chunk.length) yield chunk.subarray(at);
  }
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
