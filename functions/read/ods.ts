/**
 * OpenDocument spreadsheets (.ods): one sheet as a `ReadTable`.
 *
 * Every sheet lives in the one `content.xml` member, streamed out of the zip (yauzl) into a SAX
 * parser (saxes); nothing is kept but the current row. What the format compresses is expanded
 * lazily: `table:number-columns-repeated` and `table:number-rows-repeated` of empty cells only
 * move a counter (a sheet that "repeats" 1,048,576 empty rows costs nothing), and repeated
 * non-empty cells are expanded up to the sheet's width (`read.limits.maxColumns`, a warning for
 * the rest). A row with values repeated past the sheet's last row (`maxRows`), or repeats adding
 * more than `maxRepeatedCells` cells, fail the read naming the row: a 1 kB file repeating a row a
 * billion times would otherwise be read for hours.
 *
 * Element and attribute names are matched with the prefixes the specification uses (`table:`,
 * `office:`, `text:`), which is what every producer writes.
 */
import {
  Kind,
  type Merge,
  type SheetRow,
  type SheetSource,
  type XmlTag,
  type Zip,
  cellRef,
  clockText,
  columnLetters,
  isOle2,
  numberText,
  openZip,
  parseXml,
  assessSheet,
  chooseSheet,
  pickSheet,
  sheetTable,
} from './sheet.ts';
import { readLimits, type ReadLimits } from '../common/limits.ts';
import { beyondLimit, ReadError, type ReadOptions, type ReadTable } from './types.ts';

/** Merged ranges remembered, enough for any header. */
const MAX_MERGES = 1_000;
const CONTENT = 'content.xml';

/** Read one sheet of an .ods workbook (default: the first visible one that holds a table, see `chooseSheet`). */
export async function readOds(path: string, name: string, opts: ReadOptions = {}): Promise<ReadTable> {
  const limits = readLimits(opts.limits);
  if (opts.sheet === undefined) {
    // The first sheet is judged alone first: listing every sheet means parsing all of content.xml.
    const first = (await odsSheets(path, name, (_, index) => index === 0))[0];
    if (first === undefined) pickSheet([], undefined, name);
    const assessment = first!.hidden ? undefined : await assessSheet(odsSource(path, name, limits, 0, `${name}#${first!.name}`), first!.name);
    if (assessment === undefined || assessment.rank < 3) {
      const all = (await odsSheets(path, name, () => false)).map((sheet, index) => ({ ...sheet, index }));
      // Hidden sheets (a table style with table:display="false") are passed over, as Calc and Excel hide them; all hidden: read them all.
      const visible = all.filter((s) => !s.hidden);
      const candidates = visible.length > 0 ? visible : all;
      const choice = await chooseSheet(
        name,
        candidates.map((s) => ({ name: s.name, source: () => odsSource(path, name, limits, s.index, `${name}#${s.name}`) })),
        assessment && candidates[0]?.index === 0 ? [assessment] : [],
      );
      const sheet = candidates[choice.index]!;
      return sheetTable(odsSource(path, name, limits, sheet.index, `${name}#${sheet.name}`), choice.note ? [choice.note] : []);
    }
  }
  const wanted = opts.sheet ?? 0;
  // A string of digits may name a sheet or, when none is so named, be an index: then every sheet is listed (pickSheet decides).
  const sheets = await odsSheets(path, name, (sheetName, index) => (typeof wanted === 'number' ? index === wanted : sheetName === wanted));
  // `sheets` ends at the sheet wanted when there is one; otherwise it lists them all for the message.
  const sheet = pickSheet(
    sheets.map((s, index) => ({ name: s.name, index })),
    wanted,
    name,
  );
  return sheetTable(odsSource(path, name, limits, sheet.index, `${name}#${sheet.name}`));
}

/** The names of an .ods workbook's sheets, in order (parses all of content.xml). */
export async function listOdsSheets(path: string, name: string = path): Promise<string[]> {
  return (await odsSheets(path, name, () => false)).map((s) => s.name);
}

/**
 * Sheets in order, up to the first one `stop` accepts (every sheet must be parsed past to reach
 * the next one's name, so stopping early saves reading the rest of content.xml). A sheet is hidden
 * when its table style (`table:style-name`, an automatic style of family `table`, which content.xml
 * declares before the body) sets `table:display="false"` (ODF 1.2 §17.15 / 19.711).
 */
async function odsSheets(path: string, name: string, stop: (sheetName: string, index: number) => boolean): Promise<{ name: string; hidden: boolean }[]> {
  const zip = await openOds(path, name);
  const sheets: { name: string; hidden: boolean }[] = [];
  const hiddenStyles = new Set<string>();
  let tableStyle: string | undefined;
  /** Tables open around the parser: a sheet is a table at depth 0, a table inside a cell is not. */
  let depth = 0;
  let found = false;
  try {
    for await (const _ of parseXml(
      zip.chunks(CONTENT),
      {
        open(tag) {
          if (tag.name === 'style:style') {
            tableStyle = tag.attributes['style:family'] === 'table' ? tag.attributes['style:name'] : undefined;
            return;
          }
          if (tag.name === 'style:table-properties') {
            if (tableStyle !== undefined && tag.attributes['table:display'] === 'false') hiddenStyles.add(tableStyle);
            return;
          }
          if (tag.name !== 'table:table' || found) return;
          if (depth++ > 0) return;
          const style = tag.attributes['table:style-name'];
          sheets.push({ name: tag.attributes['table:name'] ?? `Sheet${sheets.length + 1}`, hidden: style !== undefined && hiddenStyles.has(style) });
          found = stop(sheets[sheets.length - 1]!.name, sheets.length - 1);
        },
        close(tag) {
          if (tag.name === 'table:table') depth--;
          else if (tag.name === 'style:style') tableStyle = undefined;
        },
      },
      () => (found ? true : undefined),
      { file: `${name}!${CONTENT}` },
    )) {
      if (found) break;
    }
  } finally {
    zip.close();
  }
  return sheets;
}

async function openOds(path: string, name: string, limits?: ReadLimits): Promise<Zip> {
  if (await isOle2(path)) throw new ReadError(`${name}: an OLE2 (Excel 97–2003 or encrypted) file, not an .ods workbook`, { file: name });
  const zip = await openZip(path, name, '.ods workbook', limits);
  try {
    if (zip.has('mimetype')) {
      const mime = (await zip.text('mimetype')).trim();
      if (mime !== 'application/vnd.oasis.opendocument.spreadsheet' && mime !== 'application/vnd.oasis.opendocument.spreadsheet-template') {
        throw new ReadError(`${name}: not an OpenDocument spreadsheet (its mimetype is ${mime.slice(0, 80)})`, { file: name });
      }
    }
    if (!zip.has(CONTENT)) throw new ReadError(`${name}: not a readable .ods workbook (content.xml is missing)`, { file: name });
    return zip;
  } catch (error) {
    zip.close();
    throw error;
  }
}

/** `PT36H05M30S` (an ODF duration) as `36:05:30`. */
export function odsTimeText(duration: string): string | undefined {
  const m = /^(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?$/.exec(duration.trim());
  if (!m) return undefined;
  const seconds = Number(m[2] ?? 0) * 86_400 + Number(m[3] ?? 0) * 3_600 + Number(m[4] ?? 0) * 60 + Math.round(Number(m[5] ?? 0));
  return clockText(m[1] ? -seconds : seconds);
}

/** `2024-03-01T10:30:00.123` as `2024-03-01T10:30:00`; a date stays a date. */
function odsDateText(value: string): string {
  return value.trim().replace(/(\.\d+)?(Z|[+-]\d\d:\d\d)?$/, '');
}

const count = (text: string | undefined) => {
  const n = Number(text ?? 1);
  return Number.isInteger(n) && n > 0 ? n : 1;
};

/** Rows as the sheet shows them: a row repeated n times is n rows (yielded 1,000 at a time). */
function* expandRepeats(parsed: [SheetRow, number][]): Generator<SheetRow[]> {
  let out: SheetRow[] = [];
  for (const [row, repeat] of parsed) {
    out.push(row);
    for (let i = 1; i < repeat; i++) {
      out.push({ position: row.position + i, values: [...row.values], kinds: row.kinds, hasError: row.hasError });
      if (out.length >= 1_000) {
        yield out;
        out = [];
      }
    }
  }
  if (out.length > 0) yield out;
}

function odsSource(path: string, name: string, limits: ReadLimits, tableIndex: number, file: string): SheetSource {
  /** Widest row materialised (a repeated non-empty cell past this is cut, with a warning; a cell starting past it is refused). */
  const MAX_COLUMNS = limits.maxColumns;
  let merges: Merge[] = [];
  let notes: string[] = [];
  return {
    file,
    format: 'ods',
    notes: () => notes,
    merges: async (throughRow) => merges.filter((m) => m.top <= throughRow),
    async *rows() {
      const zip = await openOds(path, name, limits);
      notes = [];
      merges = [];
      let tables = -1;
      /** Tables open around the parser: sheets are at depth 1, a table inside a cell deeper. */
      let depth = 0;
      let inTable = false;
      let done = false;
      /** Rows parsed from the last chunk, each with how many times it repeats. */
      let batch: [SheetRow, number][] = [];
      let position = 0;
      let rowRepeat = 1;
      let row: SheetRow | undefined;
      let col = 0;
      let pendingEmpty = 0;
      let cut = 0;
      /** Cells that repeated rows with values added so far. */
      let repeatedCells = 0;
      // The cell being read
      let cell: Record<string, string> | undefined;
      let covered = false;
      let cellRepeat = 1;
      let text = '';
      let paragraphs = 0;
      let inParagraph = 0;
      let annotation = 0;
      const checkText = (value: string) => {
        if (value.length <= limits.maxCellChars) return;
        const ref = cellRef(position, col);
        throw beyondLimit(file, `cell ${ref} holds more than ${limits.maxCellChars} characters`, 'maxCellChars', limits.maxCellChars, { line: position, column: ref });
      };
      const addCell = (value: string | null, kind: Kind) => {
        if (!row) return;
        if (value === null) {
          pendingEmpty += cellRepeat;
          col += cellRepeat;
          return;
        }
        const { values, kinds } = row;
        if (col >= MAX_COLUMNS) {
          const ref = cellRef(position, col);
          throw beyondLimit(file, `cell ${ref} is right of column ${columnLetters(MAX_COLUMNS - 1)}, the last one read`, 'maxColumns', MAX_COLUMNS, { line: position, column: ref });
        }
        for (; pendingEmpty > 0 && values.length < MAX_COLUMNS; pendingEmpty--) {
          values.push(null);
          kinds.push(Kind.Empty);
        }
        pendingEmpty = 0;
        for (let i = 0; i < cellRepeat; i++) {
          if (values.length >= MAX_COLUMNS) {
            cut++;
            break;
          }
          values.push(value);
          kinds.push(kind);
        }
        if (kind === Kind.Error) row.hasError = true;
        col += cellRepeat;
      };
      const finishCell = () => {
        const a = cell!;
        const type = a['office:value-type'];
        const calc = a['calcext:value-type'];
        let value: string | null = null;
        let kind: Kind = Kind.Empty;
        if (covered) {
          // What a merge hides: a spreadsheet shows nothing there, even when a value was kept.
        } else if (calc === 'error') [value, kind] = [text.trim() || '#VALUE!', Kind.Error];
        else if (type === 'float' || type === 'percentage' || type === 'currency') {
          const n = Number(a['office:value']);
          [value, kind] = Number.isFinite(n) ? [numberText(n), Kind.Number] : [text || null, Kind.Text];
        } else if (type === 'date') {
          const d = a['office:date-value'];
          [value, kind] = d ? [odsDateText(d), Kind.Date] : [text || null, Kind.Text];
        } else if (type === 'time') {
          const t = a['office:time-value'];
          const clock = t ? odsTimeText(t) : undefined;
          [value, kind] = clock ? [clock, Kind.Date] : [text || null, Kind.Text];
        } else if (type === 'boolean') {
          const b = (a['office:boolean-value'] ?? '').trim().toLowerCase();
          [value, kind] = [b === 'true' || b === '1' ? 'true' : 'false', Kind.Boolean];
        } else {
          const s = a['office:string-value'] || text;
          checkText(s);
          if (s !== '') [value, kind] = [s, Kind.Text];
        }
        if (kind === Kind.Text && a['table:formula'] && /^(#[A-Z/0!?]+[!?A]?|Err:\d+)$/.test(value ?? '') && !type) kind = Kind.Error;
        const across = count(a['table:number-columns-spanned']);
        const down = count(a['table:number-rows-spanned']);
        if ((across > 1 || down > 1) && merges.length < MAX_MERGES) {
          for (let i = 0; i < Math.min(cellRepeat, 64); i++) {
            merges.push({ top: position, left: col + i * across, bottom: position + down - 1, right: col + i * across + across - 1 });
          }
        }
        addCell(value, kind);
        cell = undefined;
      };
      const handlers = {
        open(tag: XmlTag) {
          const a = tag.attributes;
          if (tag.name === 'table:table') {
            if (depth++ === 0 && ++tables === tableIndex) inTable = true;
            return;
          }
          if (!inTable || depth > 1) return;
          switch (tag.name) {
            case 'table:table-row':
              rowRepeat = count(a['table:number-rows-repeated']);
              position++;
              row = { position, values: [], kinds: [], hasError: false };
              col = 0;
              pendingEmpty = 0;
              break;
            case 'table:table-cell':
            case 'table:covered-table-cell':
              cell = a;
              cellRepeat = count(a['table:number-columns-repeated']);
              covered = tag.name === 'table:covered-table-cell';
              text = '';
              paragraphs = 0;
              break;
            case 'office:annotation':
              annotation++;
              break;
            case 'text:p':
            case 'text:h':
              if (cell && annotation === 0) {
                if (inParagraph === 0 && paragraphs++ > 0) text += '\n';
                inParagraph++;
              }
              break;
            case 'text:s':
              if (cell && annotation === 0 && inParagraph > 0) {
                text += ' '.repeat(Math.min(count(a['text:c']), 1_000));
                checkText(text);
              }
              break;
            case 'text:tab':
              if (cell && annotation === 0 && inParagraph > 0) text += '\t';
              break;
            case 'text:line-break':
              if (cell && annotation === 0 && inParagraph > 0) text += '\n';
              break;
          }
        },
        close(tag: XmlTag) {
          if (tag.name === 'table:table') {
            if (--depth === 0 && inTable) {
              inTable = false;
              done = true;
            }
            return;
          }
          if (!inTable || depth > 1) return;
          switch (tag.name) {
            case 'table:table-cell':
            case 'table:covered-table-cell':
              if (cell) finishCell();
              break;
            case 'office:annotation':
              annotation--;
              break;
            case 'text:p':
            case 'text:h':
              if (cell && annotation === 0) inParagraph--;
              break;
            case 'table:table-row': {
              const r = row!;
              row = undefined;
              if (r.values.length === 0) {
                position += rowRepeat - 1;
                break;
              }
              const last = position + rowRepeat - 1;
              if (last > limits.maxRows) {
                const what =
                  rowRepeat > 1
                    ? `row ${position} with values, repeated ${rowRepeat} times (table:number-rows-repeated), reaches row ${last}, below the sheet's last row`
                    : `row ${position} is below the sheet's last row`;
                throw beyondLimit(file, what, 'maxRows', limits.maxRows, { line: position });
              }
              repeatedCells += r.values.length * (rowRepeat - 1);
              if (repeatedCells > limits.maxRepeatedCells) {
                throw beyondLimit(
                  file,
                  `row ${position} with values, repeated ${rowRepeat} times (table:number-rows-repeated), makes repeated rows of more than ${limits.maxRepeatedCells} cells`,
                  'maxRepeatedCells',
                  limits.maxRepeatedCells,
                  { line: position },
                );
              }
              batch.push([r, rowRepeat]);
              position = last;
              break;
            }
          }
        },
        text(t: string) {
          if (cell && inParagraph > 0 && annotation === 0) {
            text += t;
            checkText(text);
          }
        },
      };
      try {
        const drain = () => {
          if (batch.length === 0 && !done) return undefined;
          const b = batch;
          batch = [];
          return b;
        };
        for await (const parsed of parseXml(zip.chunks(CONTENT), handlers, drain, { file, describe: () => (position > 0 ? `near row ${position}` : ''), limits })) {
          yield* expandRepeats(parsed);
          // the rest of the document is parsed (not kept): a content.xml cut off after this sheet fails too
        }
      } finally {
        zip.close();
        if (cut > 0) notes.push(`${file}: ${cut} repeated cell${cut === 1 ? '' : 's'} beyond column ${MAX_COLUMNS} (${cellRef(1, MAX_COLUMNS - 1).replace(/1$/, '')}) ignored`);
      }
    },
  };
}
