/**
 * Zip archives from suppliers, opened safely. Nothing in an archive is trusted: member names may
 * try to escape the extraction folder ("zip slip"), sizes in the headers may lie, a small file may
 * expand to terabytes (a zip bomb), members may be encrypted or be archives themselves. Every one
 * of those ends in a `ReadError` naming the archive and the member; members are written only
 * under a temporary folder that is always removed (Lambda's /tmp is small and reused).
 *
 * Members a reader takes front to back (a shapefile's parts) can instead be left in the archive
 * and streamed from it as they are read (`unpackZip`'s `leave`): the same checks of their
 * headers first, then their bytes counted as they inflate, as for a member written to disk.
 */
import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { createInflateRaw, type ZlibOptions } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { ReadError } from './types.ts';

export interface ArchiveLimits {
  /** Total uncompressed bytes written for one archive, all members and nested archives (default 4 GiB). */
  maxTotalBytes: number;
  /** Largest expansion of a member over its compressed size (default 1,000×; tiny members are exempt). */
  maxRatio: number;
  /** Members (default 10,000). */
  maxEntries: number;
  /** Archives inside archives: 1 allows a zip in the zip, not deeper (default 1). */
  maxDepth: number;
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
  maxTotalBytes: 4 * 1024 ** 3,
  maxRatio: 1000,
  maxEntries: 10_000,
  maxDepth: 1,
};

/** Members this small may compress as well as they like: the ratio guard is for big expansions. */
const RATIO_EXEMPT_BYTES = 1024 * 1024;

export interface ExtractedMember {
  /** Path inside the archive (`data/parks.shp`); for nested archives `inner.zip!data/parks.shp`. */
  name: string;
  /** Where it was written, under the temporary folder. */
  path: string;
  size: number;
  /** Archive or gzip layers around the archive it came from: 0 when the file itself is that archive, 1 for a zip in it… */
  depth: number;
}

/**
 * A member left in its archive: `open()` streams its bytes, inflated, from the start, as often as
 * needed, until the archive is closed.
 */
export interface ArchivedMember {
  /** Path inside the archive, as for an extracted member. */
  name: string;
  /** The size its headers declare; more bytes than that fail the read. */
  size: number;
  open(): AsyncIterable<Buffer>;
}

/** What `unpackZip` gives: members on disk or left in the archive, and how to close the archive. */
export interface UnpackedZip {
  members: (ExtractedMember | ArchivedMember)[];
  /** Closes the archive that left members are read from (nothing to do when there are none). */
  close(): void;
}

/** A temporary folder that `dispose()` removes with everything in it (and runs what was `defer`red). */
export interface TempDir {
  path: string;
  dispose(): Promise<void>;
  /** Run `cleanup` when the folder is disposed of (an archive whose members are still read). */
  defer(cleanup: () => void): void;
}

/**
 * A temporary folder, `civic-etl-<pid>-XXXXXX` under the system's one. Removed by `dispose()` (the
 * readers' callers do it in `finally`), and on the process's exit; a process killed outright
 * (out of memory, a Lambda timeout) cannot, so the first call in a process first removes the
 * folders a dead process left: ours by their prefix, whose pid is no longer running, or is ours
 * but older than this process (a killed predecessor's: Lambda reuses pids and /tmp).
 */
export async function makeTempDir(): Promise<TempDir> {
  await (staleCleaned ??= removeStaleTempDirs(tmpdir()));
  const path = await mkdtemp(join(tmpdir(), `${TEMP_PREFIX}${process.pid}-`));
  live.add(path);
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => live.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
  }
  const deferred: (() => void)[] = [];
  return {
    path,
    defer: (cleanup) => void deferred.push(cleanup),
    dispose: async () => {
      for (const cleanup of deferred.splice(0)) cleanup();
      await rm(path, { recursive: true, force: true });
      live.delete(path);
    },
  };
}

const TEMP_PREFIX = 'civic-etl-';
const live = new Set<string>();
let exitHooked = false;
let staleCleaned: Promise<string[]> | undefined;

/** Remove the temporary folders of dead civic-etl processes under `root` (see `makeTempDir`); returns the ones removed. */
export async function removeStaleTempDirs(root: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return removed; // no temporary folder to clean: nothing was left there
  }
  for (const name of names) {
    const m = /^civic-etl-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && isRunning(pid)) continue;
    // our pid: a killed predecessor's (Lambda reuses pids and /tmp) if it predates this process;
    // a newer one is another thread's of this process
    if (pid === process.pid && (live.has(join(root, name)) || (await changedSince(join(root, name), PROCESS_STARTED)))) continue;
    await rm(join(root, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

const PROCESS_STARTED = Date.now() - process.uptime() * 1000;

async function changedSince(path: string, time: number): Promise<boolean> {
  try {
    return (await stat(path)).ctimeMs >= time;
  } catch {
    return true; // gone already: nothing to remove
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export { isZip } from './zip-magic.ts';

/**
 * Extract every member of the zip at `path` into `into` (a folder under a temporary folder), with
 * the limits above. Nested zips are extracted too (one level by default) and named
 * `outer!inner.zip!member`. Folders, macOS resource forks (`__MACOSX/`) and dot-files are skipped.
 * `name` is how messages name the archive (its S3 key).
 */
export async function extractZip(path: string, name: string, into: string, limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS): Promise<ExtractedMember[]> {
  const budget = { left: limits.maxTotalBytes, files: 0 };
  return (await extractInto(path, name, '', await mkdtemp(join(into, 'zip-')), limits, budget, 0, undefined)) as ExtractedMember[];
}

/**
 * `extractZip`, except that the members `leave` picks (by their path in the archive; members of
 * nested archives are always extracted) stay in the archive and are streamed from it when read:
 * no copy on disk for a reader that reads front to back. They pass the same checks first (path,
 * encryption, declared size against the archive's limit — which their declared sizes count
 * against — and expansion ratio); while they are read, a member inflating to more bytes than it
 * declares fails the read (and yauzl checks it inflates to exactly that many). `close()` once
 * they have been read.
 */
export async function unpackZip(
  path: string,
  name: string,
  into: string,
  limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
  leave: (member: string) => boolean = () => false,
  /**
   * When the archive sits in another one or in a gzip stream: the bytes and members left for the
   * whole file, shared by every level (spent here), and how many archive or gzip layers are around it.
   */
  shared?: { budget: { left: number; files: number }; depth: number },
): Promise<UnpackedZip> {
  const budget = shared?.budget ?? { left: limits.maxTotalBytes, files: 0 };
  const opened: yauzl.ZipFile[] = [];
  try {
    const members = await extractInto(path, name, '', await mkdtemp(join(into, 'zip-')), limits, budget, shared?.depth ?? 0, { leave, opened });
    return { members, close: () => opened.splice(0).forEach((zip) => zip.close()) };
  } catch (error) {
    opened.splice(0).forEach((zip) => zip.close());
    throw error;
  }
}

async function extractInto(
  path: string,
  name: string,
  prefix: string,
  into: string,
  limits: ArchiveLimits,
  budget: { left: number; files: number },
  depth: number,
  left: { leave: (member: string) => boolean; opened: yauzl.ZipFile[] } | undefined,
): Promise<(ExtractedMember | ArchivedMember)[]> {
  const zip = await openZip(path, name);
  const out: (ExtractedMember | ArchivedMember)[] = [];
  const seen = new Set<string>();
  let keepOpen = false;
  try {
    for (let entry = await nextEntry(zip, name); entry; entry = await nextEntry(zip, name)) {
      const member = entry.fileName;
      const label = `${name}!${prefix}${member}`;
      checkName(member, label);
      if (member.endsWith('/') || skipped(member)) continue;
      checkUnique(member, seen, label);
      if (++budget.files > limits.maxEntries) throw new ReadError(`${name}: more than ${limits.maxEntries} members: refused (read.limits.maxMembers)`, { file: name });
      if (entry.isEncrypted()) throw new ReadError(`${label}: the member is encrypted; send it without a password`, { file: label });
      if (entry.uncompressedSize > budget.left) {
        throw new ReadError(
          `${label}: declares ${entry.uncompressedSize} bytes, beyond the ${limits.maxTotalBytes}-byte limit for one archive: refused (read.limits.maxExpandedBytes, every archive and gzip stream in the file together)`,
          { file: label },
        );
      }
      checkRatio(entry.uncompressedSize, entry.compressedSize, limits, label);
      if (left?.leave(member)) {
        // its declared size counts against the archive's limit now; it may not inflate past it
        budget.left -= entry.uncompressedSize;
        if (!keepOpen) left.opened.push(zip);
        keepOpen = true;
        out.push(archivedMember(zip, path, entry, `${prefix}${member}`, label));
        continue;
      }
      const target = join(into, `${budget.files}-${posix.basename(member)}`.replace(/[^A-Za-z0-9._-]/g, '_'));
      const size = await writeMember(zip, entry, target, label, limits, budget);
      const extracted = { name: `${prefix}${member}`, path: target, size, depth };
      if (/\.zip$/i.test(member)) {
        if (depth + 1 > limits.maxDepth) {
          throw new ReadError(
            `${label}: an archive nested ${depth + 1} deep; at most ${limits.maxDepth} level${limits.maxDepth === 1 ? '' : 's'} of archives (or gzip streams) in archives are read (read.limits.maxDepth)`,
            { file: label },
          );
        }
        const inner = join(into, `${budget.files}-nested`);
        await mkdir(inner);
        out.push(...(await extractInto(target, name, `${prefix}${member}!`, inner, limits, budget, depth + 1, undefined)));
        await rm(target, { force: true });
        continue;
      }
      out.push(extracted);
    }
  } finally {
    if (!keepOpen) zip.close();
  }
  return out;
}

/** Bytes inflated at a time for an archived member: few, large chunks keep the stream's overhead low. */
const INFLATE_CHUNK = 256 * 1024;
/** Compressed bytes read from the archive at a time, and inflated bytes kept ready ahead of the reader. */
const READ_AHEAD = 1024 * 1024;

/**
 * A member read from the archive at `path` each time `open()` is iterated: its data found through
 * its local header (yauzl), read in large chunks and, when deflated, inflated here, on libuv's
 * thread pool, up to READ_AHEAD bytes ahead of the reader. The bytes are counted as they come:
 * past the declared size the read fails, and at the end they must be exactly the declared size
 * (as yauzl checks when it inflates).
 */
function archivedMember(zip: yauzl.ZipFile, path: string, entry: yauzl.Entry, name: string, label: string): ArchivedMember {
  const declared = entry.uncompressedSize;
  const method = entry.compressionMethod;
  return {
    name,
    size: declared,
    async *open() {
      if (method !== 0 && method !== 8) throw asReadError(new Error(`unsupported compression method: ${method}`), label);
      const { fileDataStart } = await new Promise<{ fileDataStart: number }>((resolve, reject) =>
        zip.readLocalFileHeader(entry, { minimal: true }, (error, header) => (error ? reject(asReadError(error, label)) : resolve(header))),
      );
      const raw: Readable = entry.compressedSize === 0 ? Readable.from([]) : createReadStream(path, { start: fileDataStart, end: fileDataStart + entry.compressedSize - 1, highWaterMark: READ_AHEAD });
      const stream = method === 8 ? raw.pipe(createInflateRaw({ chunkSize: INFLATE_CHUNK, highWaterMark: READ_AHEAD } as ZlibOptions)) : raw;
      if (stream !== raw) raw.on('error', (error) => stream.destroy(error));
      let size = 0;
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > declared) throw new ReadError(`${label}: the member is larger than its declared ${declared} bytes: refused`, { file: label });
          yield chunk;
        }
        if (size !== declared) throw new ReadError(`${label}: the member holds ${size} bytes, not the ${declared} it declares: refused`, { file: label });
      } catch (error) {
        throw error instanceof ReadError ? error : asReadError(error as Error, label);
      } finally {
        stream.destroy();
        raw.destroy();
      }
    },
  };
}

/** Absolute paths, drive letters, backslashes and `..` segments would write outside the folder. */
function checkName(member: string, label: string): void {
  const parts = member.split(/[\\/]/);
  if (member.startsWith('/') || /^[A-Za-z]:/.test(member) || parts.includes('..')) {
    throw new ReadError(`${label}: the member's path leaves the archive's folder (zip slip): refused`, { file: label });
  }
}

/**
 * Two members of one name (a zip may hold them; unzip keeps one, overwriting or asking) would be
 * one load: the rows of one lost without a word. The archive is refused, naming the member.
 */
function checkUnique(member: string, seen: Set<string>, label: string): void {
  const key = member.replace(/\\/g, '/').replace(/^(\.\/)+/, '');
  if (seen.has(key)) throw new ReadError(`${label}: the archive holds two members named "${key}": send one, or name them apart`, { file: label });
  seen.add(key);
}

function skipped(member: string): boolean {
  return member.startsWith('__MACOSX/') || posix.basename(member).startsWith('.');
}

function checkRatio(uncompressed: number, compressed: number, limits: ArchiveLimits, label: string): void {
  if (uncompressed <= RATIO_EXEMPT_BYTES) return;
  if (compressed === 0 || uncompressed / compressed > limits.maxRatio) {
    throw new ReadError(`${label}: expands from ${compressed} to ${uncompressed} bytes (over ${limits.maxRatio}× its compressed size): refused as a likely zip bomb`, { file: label });
  }
}

/**
 * Copy one member to disk, counting the bytes as they come: the header's sizes are only claims.
 * yauzl also checks that the member inflates to exactly the size it declares.
 */
async function writeMember(zip: yauzl.ZipFile, entry: yauzl.Entry, target: string, label: string, limits: ArchiveLimits, budget: { left: number }): Promise<number> {
  const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) => zip.openReadStream(entry, (error, s) => (error || !s ? reject(asReadError(error, label)) : resolve(s))));
  let size = 0;
  const guard = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      budget.left -= chunk.length;
      if (budget.left < 0)
        return done(
          new ReadError(`${label}: the archive expands past the ${limits.maxTotalBytes}-byte limit: refused (read.limits.maxExpandedBytes, every archive and gzip stream in the file together)`, {
            file: label,
          }),
        );
      if (size > entry.uncompressedSize) return done(new ReadError(`${label}: the member is larger than its declared ${entry.uncompressedSize} bytes: refused`, { file: label }));
      done(null, chunk);
    },
  });
  try {
    await pipeline(stream, guard, createWriteStream(target));
  } catch (error) {
    throw error instanceof ReadError ? error : asReadError(error as Error, label);
  }
  return size;
}

/** The member names of a zip, without extracting anything. */
export async function listZip(path: string, name: string): Promise<string[]> {
  const zip = await openZip(path, name);
  const names: string[] = [];
  try {
    for (let entry = await nextEntry(zip, name); entry; entry = await nextEntry(zip, name)) names.push(entry.fileName);
  } finally {
    zip.close();
  }
  return names;
}

function openZip(path: string, name: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(path, { lazyEntries: true, autoClose: false, strictFileNames: false, decodeStrings: true, validateEntrySizes: true }, (error, zip) =>
      error || !zip ? reject(asReadError(error, name, 'not a readable zip archive')) : resolve(zip),
    ),
  );
}

function nextEntry(zip: yauzl.ZipFile, name: string): Promise<yauzl.Entry | undefined> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    const onEntry = (e: yauzl.Entry) => (cleanup(), resolve(e));
    const onEnd = () => (cleanup(), resolve(undefined));
    const onError = (e: Error) => (cleanup(), reject(asReadError(e, name)));
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

function asReadError(error: Error | null | undefined, label: string, what = 'unreadable'): ReadError {
  const reason = error?.message ?? 'unknown error';
  if (/invalid relative path|absolute path/i.test(reason)) {
    return new ReadError(`${label}: a member's path leaves the archive's folder (zip slip): refused (${reason})`, { file: label });
  }
  return new ReadError(`${label}: ${what}: ${reason}`, { file: label }, { cause: error ?? undefined });
}
