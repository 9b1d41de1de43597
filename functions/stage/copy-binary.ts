/** Bytes of one binary COPY buffer before it is handed to the COPY stream (about). */
export const COPY_CHUNK = 256 * 1024;

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * The framing of PostgreSQL's binary COPY format, written into a growing buffer: the file header,
 * the trailer, and `take()` to hand the bytes written so far to the COPY stream. Writers of rows
 * (the staging writer, stage-table.ts; the direct shapefile load, local/load-direct.ts) extend it.
 */
export class CopyBinaryBuffer {
  protected buf = Buffer.allocUnsafe(2 * COPY_CHUNK);
  length = 0;

  header(): void {
    this.room(SIGNATURE.length + 8);
    SIGNATURE.copy(this.buf, this.length);
    this.length += SIGNATURE.length;
    this.length = this.buf.writeUInt32BE(0, this.length); // flags
    this.length = this.buf.writeUInt32BE(0, this.length); // header extension
  }

  trailer(): void {
    this.room(2);
    this.length = this.buf.writeInt16BE(-1, this.length);
  }

  /** The bytes written so far; the writer starts a fresh buffer (the COPY stream may still hold these). */
  take(): Buffer {
    const chunk = this.buf.subarray(0, this.length);
    this.buf = Buffer.allocUnsafe(2 * COPY_CHUNK);
    this.length = 0;
    return chunk;
  }

  protected room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.length + n));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }
}
