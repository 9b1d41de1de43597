/**
 * Where byte `offset` of `text` (UTF-8) is, as an editor shows it — line and column from 1, the
 * column in characters — counted here by splitting the text, apart from the readers' own counting.
 */
export function lineColumn(text: string | Buffer, offset: number): { line: number; column: number } {
  const before = Buffer.from(text).subarray(0, offset).toString('utf8').split('\n');
  return { line: before.length, column: [...before.at(-1)!].length + 1 };
}

/** The suffix a reader's error message gets for that place: ` (line L, column C)`. */
export function atLineColumn(text: string | Buffer, offset: number): string {
  const { line, column } = lineColumn(text, offset);
  return ` (line ${line}, column ${column})`;
}
