/**
 * iconv-lite, the decoders of text that is not UTF-8, imported when the first such file is read —
 * not when a function starts. Its module carries every code page it knows (the CJK tables alone are
 * 400 KB): 493 KB, a quarter of what the stage and clean functions read and compiled at every cold
 * start (docs/performance.md, coldstart), for files that are nearly all UTF-8.
 *
 * `loadCodecs()` imports it (once); `loadedCodecs()` gives it synchronously to code that runs after
 * a `loadCodecs()`, and throws `CodecsNotLoadedError` before one (detect.ts's synchronous
 * detection is retried by its caller after loading, see `detectStructureLoadingCodecs`).
 */
import type iconvModule from 'iconv-lite';

export type Codecs = typeof iconvModule;

let codecs: Codecs | undefined;

/** iconv-lite, imported on the first call. */
export async function loadCodecs(): Promise<Codecs> {
  codecs ??= (await import('iconv-lite')).default;
  return codecs;
}

/** Asked for the decoders of a non-UTF-8 encoding before `loadCodecs()` was awaited. */
export class CodecsNotLoadedError extends Error {
  override name = 'CodecsNotLoadedError';
  constructor(encoding: string) {
    super(`decoding ${encoding} needs iconv-lite, which is imported on first use: await loadCodecs() first`);
  }
}

/** iconv-lite, once `loadCodecs()` has been awaited; `encoding` names what needed it, for the error. */
export function loadedCodecs(encoding: string): Codecs {
  if (!codecs) throw new CodecsNotLoadedError(encoding);
  return codecs;
}
