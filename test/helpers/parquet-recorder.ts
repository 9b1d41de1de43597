/**
 * A stand-in for hyparquet-writer that keeps its contract — `write` takes one row group's columns
 * then calls the sink's `flush`, `finish` writes the footer then calls the sink's `finish` — but
 * writes JSON lines instead of Parquet: the schema, each row group's values, then the footer's
 * key-value metadata. It lets the export's own work (cursor batches, row groups, value forms,
 * GeoParquet metadata, streaming to S3) be checked without the Parquet encoder.
 */
import type { ByteWriter, ParquetLibrary, SchemaElement } from '../../functions/combine/exports.ts';

export type RecordedLine = { schema: SchemaElement[] } | { rowGroup: number; columns: Record<string, unknown[]> } | { footer: { key: string; value: string }[] | undefined; createdBy?: string };

/** Values as JSON can hold them: bigint → `"123n"`, bytes → `"hex:…"`. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return `hex:${Buffer.from(value).toString('hex')}`;
  return value;
}

class RecordingWriter implements ByteWriter {
  index = 0;
  /** Set by the export: empties the buffer into its upload. */
  flush?: () => void | Promise<void>;
  private buffer = new Uint8Array(1024);

  append(text: string): void {
    const bytes = Buffer.from(`${text}\n`);
    if (this.index + bytes.length > this.buffer.length) {
      const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.index + bytes.length));
      grown.set(this.buffer.subarray(0, this.index));
      this.buffer = grown;
    }
    this.buffer.set(bytes, this.index);
    this.index += bytes.length;
  }

  getBytes(): Uint8Array {
    return this.buffer.subarray(0, this.index);
  }

  finish(): void {}
}

export function recordingParquet(): ParquetLibrary {
  class ParquetWriter {
    private readonly writer: RecordingWriter;
    constructor(private readonly options: ConstructorParameters<ParquetLibrary['ParquetWriter']>[0]) {
      this.writer = options.writer as RecordingWriter;
      this.writer.append(JSON.stringify({ schema: options.schema }));
    }
    write({ columnData, rowGroupSize }: { columnData: { name: string; data: unknown[] }[]; rowGroupSize: number }) {
      for (const c of columnData) if (c.data.length !== rowGroupSize) throw new Error('a row group of the wrong size');
      this.writer.append(JSON.stringify({ rowGroup: rowGroupSize, columns: Object.fromEntries(columnData.map((c) => [c.name, c.data.map(plain)])) }));
      return this.writer.flush?.();
    }
    finish() {
      this.writer.append(JSON.stringify({ footer: this.options.kvMetadata, createdBy: this.options.createdBy }));
      return this.writer.finish();
    }
  }
  return { ByteWriter: RecordingWriter, ParquetWriter };
}

/** The lines a recording export wrote. */
export function recordedLines(text: string): RecordedLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as RecordedLine);
}
