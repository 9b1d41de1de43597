/**
 * Stack traces of a bundled function, mapped to the sources only when one is read.
 *
 * A function's bundle is minified (lib/bundle.ts), so its raw stack traces point into one long
 * line of `index.mjs` or a chunk. Node's `--enable-source-maps` maps them, but it reads and parses
 * the map of every file as the file is loaded — about 12 ms of each cold start of the stage and
 * clean functions here (`npm run bench -- coldstart`), for traces that most invocations never
 * print. This installs `Error.prepareStackTrace`, which V8 calls the first time an error's
 * `stack` is read: each frame in a file with a map beside it (`<file>.map`) is shown at its place
 * in the source (`functions/stage/stage-object.ts:120:11`), the map read and parsed then, once
 * per file, with Node's own `SourceMap` (node:module). A frame it cannot map keeps its place in
 * the bundle; a trace it cannot format at all is V8's own.
 *
 * Installed by each Lambda entry's first import (functions/common/install-stack-maps.ts), before
 * any other module of the bundle runs: an error thrown while they load is mapped too. Where Node maps stacks already
 * (`--enable-source-maps`, tsx in the tests and the local runner), it does nothing. Node's default
 * hook formats the same way (the error's string, then `at` each frame); it is called when this one
 * cannot format a trace.
 */
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

const maps = new Map<string, SourceMap | null>();

/** The map of the bundle file at `url` (a file: URL or a path), read once; null when it has none. */
function mapOf(url: string): SourceMap | null {
  let map = maps.get(url);
  if (map === undefined) {
    try {
      const file = url.startsWith('file:') ? fileURLToPath(url) : url;
      map = file.endsWith('.mjs') ? new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))) : null;
    } catch {
      map = null;
    }
    maps.set(url, map);
  }
  return map;
}

/** Where a frame is in the bundle, and the map of its file (undefined when it has none). */
function placeOf(frame: NodeJS.CallSite): { url: string; line: number; column: number; map: SourceMap | null } | undefined {
  const url = frame.getFileName() ?? frame.getScriptNameOrSourceURL();
  const line = frame.getLineNumber();
  const column = frame.getColumnNumber();
  if (!url || line === null || column === null) return undefined;
  return { url, line, column, map: mapOf(url) };
}

/**
 * A frame as Node prints it with `--enable-source-maps`: `[async ]<name> (<source>:<line>:<column>)`
 * — the name the source gives the function where its caller calls it (`caller`: the next frame;
 * the bundle's own names are minified), else V8's, else `<anonymous>`; a frame the maps do not know
 * as V8 prints it.
 */
export function mappedFrame(frame: NodeJS.CallSite, caller?: NodeJS.CallSite): string {
  const at = placeOf(frame);
  const origin = at?.map?.findOrigin(at.line, at.column);
  if (!at || !origin || !('fileName' in origin)) return frame.toString();
  // sources are relative to where esbuild wrote the bundle: `../../../functions/x.ts` → `functions/x.ts`
  const source = origin.fileName.replace(/^(\.\.\/)+/, '');
  const typeName = frame.getTypeName();
  const ownName = `${typeName !== null && typeName !== 'global' && !frame.isToplevel() ? `${typeName}.` : ''}${frame.getFunctionName() ?? frame.getMethodName() ?? '<anonymous>'}`;
  const from = caller && placeOf(caller);
  const called = from?.map?.findEntry(from.line - 1, from.column - 1);
  const name = called && 'name' in called && called.name ? called.name : ownName;
  return `${frame.isAsync() ? 'async ' : frame.isConstructor() ? 'new ' : ''}${name} (${source}:${origin.lineNumber}:${origin.columnNumber})`;
}

/** Install the hook (see the top of this file); true when it did. */
export function mapStackTracesOnDemand(): boolean {
  if (process.sourceMapsEnabled || installed) return false;
  const previous = Error.prepareStackTrace; // Node's own (it has one), or a hook of another library
  Error.prepareStackTrace = (error: Error, frames: NodeJS.CallSite[]): unknown => {
    try {
      return `${Error.prototype.toString.call(error)}${frames.map((f, i) => `\n    at ${mappedFrame(f, frames[i + 1])}`).join('')}`;
    } catch {
      return previous ? previous(error, frames) : `${String(error)}${frames.map((f) => `\n    at ${String(f)}`).join('')}`;
    }
  };
  installed = true;
  return true;
}

let installed = false;
