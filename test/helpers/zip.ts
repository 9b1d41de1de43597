/** Build zip archives in memory for tests, and tamper with them the way hostile archives do. */
import yazl from 'yazl';

export async function makeZip(members: Record<string, string | Buffer>, opts: { compress?: boolean } = {}): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, content] of Object.entries(members)) {
    zip.addBuffer(Buffer.isBuffer(content) ? content : Buffer.from(content), name, { compress: opts.compress ?? true, mtime: new Date(2026, 0, 1) });
  }
  zip.end();
  const parts: Buffer[] = [];
  for await (const chunk of zip.outputStream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;

/** Replace a member's name (same length) in its local and central headers: how a "zip slip" archive is made. */
export function renameMember(zip: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('names must have the same length');
  const out = Buffer.from(zip);
  const a = Buffer.from(from);
  for (let at = out.indexOf(a); at >= 0; at = out.indexOf(a, at + 1)) out.write(to, at, 'latin1');
  return out;
}

/** Set the "encrypted" flag on every member. */
export function markEncrypted(zip: Buffer): Buffer {
  const out = Buffer.from(zip);
  eachHeader(out, (at, central) => out.writeUInt16LE(out.readUInt16LE(at + (central ? 8 : 6)) | 1, at + (central ? 8 : 6)));
  return out;
}

/** Make every member (or only the one named `member`) declare `size` uncompressed bytes (a lie). */
export function declareSize(zip: Buffer, size: number, member?: string): Buffer {
  const out = Buffer.from(zip);
  eachHeader(out, (at, central) => {
    const nameAt = at + (central ? 46 : 30);
    const name = out.toString('latin1', nameAt, nameAt + out.readUInt16LE(at + (central ? 28 : 26)));
    if (member !== undefined && name !== member) return;
    if (central) out.writeUInt32LE(size, at + 24);
    else out.writeUInt32LE(size, at + 22);
  });
  return out;
}

function eachHeader(buf: Buffer, fn: (at: number, central: boolean) => void): void {
  for (let at = 0; at + 4 <= buf.length; at++) {
    const sig = buf.readUInt32LE(at);
    if (sig === LOCAL) fn(at, false);
    else if (sig === CENTRAL) fn(at, true);
  }
}
