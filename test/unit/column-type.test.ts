import { describe, expect, it } from 'vitest';
import { parseDatePattern } from '../../contract/rules.ts';
import { expandYear, inferColumnType, missingWarning, pipelineType, settleDateOrder } from '../../functions/profile/column-type.ts';

const infer = (values: string[], threshold = 1, hints = {}) => inferColumnType(values, threshold, hints);

describe('the type inference on value lists', () => {
  it('types plain numbers by their width, and keeps codes with leading zeros text', () => {
    expect(infer(['1', '-25', '', '300000000'])).toMatchObject({ type: 'integer', share: 1 });
    expect(infer(['1', '12345678901'])).toMatchObject({ type: 'bigint' });
    expect(infer(['1', '2.5', '-.5'])).toMatchObject({ type: 'numeric' });
    expect(infer(['75001', '01000', '13001'])).toMatchObject({ type: 'text' });
    expect(infer(['0.5', '0'])).toMatchObject({ type: 'numeric' });
    // more than 18 digits: an identifier (the pipeline's double would merge neighbours), text
    expect(infer(['1234567890123456789012', '12345678901234567891'])).toMatchObject({ type: 'text' });
    expect(infer(['1234567890123456789012', '1.5'])).toMatchObject({ type: 'numeric' });
    expect(infer(['.5', '-0.25', '+3'])).toEqual({ type: 'numeric', share: 1 });
    expect(infer(['00.5', '1.5'])).toMatchObject({ type: 'text' });
    expect(infer(['-007'])).toMatchObject({ type: 'text' });
  });

  it('reads exponent notation as PostgreSQL does, whatever the exponent digits', () => {
    expect(infer(['4.63355654586e+007', '1.5E-3', '12'])).toEqual({ type: 'numeric', share: 1 });
  });

  it('finds the decimal comma and the thousands separator', () => {
    expect(infer(['3,5', '12', '-0,25'])).toEqual({ type: 'numeric', number: { decimal: ',', thousands: '' }, share: 1 });
    expect(infer(['1.234,56', '3,5', '999'])).toEqual({ type: 'numeric', number: { decimal: ',', thousands: '.' }, share: 1 });
    expect(infer(['1 234,56', '3,5', '12\u00a0345,1'])).toEqual({ type: 'numeric', number: { decimal: ',', thousands: ' ' }, share: 1 });
    expect(infer(['1,234.5', '12'])).toEqual({ type: 'numeric', number: { decimal: '.', thousands: ',' }, share: 1 });
    // grouped whole numbers are integers
    expect(infer(['1.234', '12.345.678', '7'])).toEqual({ type: 'integer', number: { decimal: ',', thousands: '.' }, share: 1 });
  });

  it('keeps text what reads two ways, unless the file says which decimal mark it uses', () => {
    // 1,234 is 1.234 with a decimal comma and 1234 with a thousands comma
    expect(infer(['1,234', '5,678'])).toMatchObject({ type: 'text' });
    expect(infer(['1,234', '5,678'], 1, { decimalComma: true })).toEqual({ type: 'numeric', number: { decimal: ',', thousands: '' }, share: 1 });
    // a file that writes a decimal point: 1,2 is a list, not 1.2; grouped thousands still read
    expect(infer(['1,2', '3,4', '10,15'], 1, { decimalComma: false })).toMatchObject({ type: 'text' });
    expect(infer(['1,234', '5,678'], 1, { decimalComma: false })).toEqual({ type: 'integer', number: { decimal: '.', thousands: ',' }, share: 1 });
    // likewise 2.644 beside 462 (ISTAT's populations): three digits after every dot, no integer
    // above 999 — 2.644 or 2644; the file's decimal comma says which
    expect(infer(['1.234', '5.678'])).toMatchObject({ type: 'text' });
    expect(infer(['2.644', '462', '16.893', '872.367'])).toMatchObject({ type: 'text' });
    expect(infer(['2.644', '462', '16.893', '872.367'], 1, { decimalComma: true })).toEqual({ type: 'integer', number: { decimal: ',', thousands: '.' }, share: 1 });
    // a plain dot decimal is read as PostgreSQL reads it: another number of decimals, a leading
    // zero, or an integer written without grouping says the dot is a decimal point
    expect(infer(['1.234', '5.67'])).toEqual({ type: 'numeric', share: 1 });
    expect(infer(['0.250', '1.500'])).toEqual({ type: 'numeric', share: 1 });
    expect(infer(['2.644', '1462'])).toEqual({ type: 'numeric', share: 1 });
  });

  it('reads day-first, month-first, dotted, unpadded dates and two-digit years where the column is unambiguous', () => {
    expect(infer(['13/01/2021', '02/03/2021'])).toEqual({ type: 'date', date: 'd/m/yyyy', share: 1 });
    expect(infer(['15/1/2021', '3/2/2021'])).toEqual({ type: 'date', date: 'd/m/yyyy', share: 1 });
    expect(infer(['01/13/2021', '12/31/2020'])).toEqual({ type: 'date', date: 'm/d/yyyy', share: 1 });
    expect(infer(['23.04.13', '01.02.13'])).toEqual({ type: 'date', date: 'd.m.yy', share: 1 });
    expect(infer(['01.02.2013'])).toEqual({ type: 'date', date: 'd.m.yyyy', share: 1 });
    expect(infer(['1.2.13', '2.10.11'])).toMatchObject({ type: 'text' }); // version numbers
    expect(infer(['1/15/21', '12/1/20'])).toEqual({ type: 'date', date: 'm/d/yy', share: 1 });
    expect(infer(['13-01-2021 08:30', '1-2-2021 23:59'])).toEqual({ type: 'timestamp', date: 'd-m-yyyy h:mi', share: 1 });
    expect(infer(['2021/01/13'])).toEqual({ type: 'date', date: 'yyyy/m/d', share: 1 });
  });

  it('keeps ambiguous day/month columns text, unless the whole column told the order', () => {
    const ambiguous = ['01/02/2021', '03/04/2021'];
    const open = infer(ambiguous);
    expect(open).toMatchObject({ type: 'text', note: expect.stringMatching(/ambiguous/) });
    expect(infer(ambiguous, 1, { dateOrder: 'mdy' })).toMatchObject({ type: 'date', date: 'm/d/yyyy', share: 1 });
    expect(settleDateOrder(open, 3, 0)).toMatchObject({ type: 'date', date: 'd/m/yyyy', share: 1 });
    expect(settleDateOrder(open, 0, 0)).toMatchObject({ type: 'text' });
    // one value of 300 that reads day-first only settles a column that the 0.99 threshold lets read both ways
    const many = [...Array.from({ length: 299 }, () => '01/02/2021'), '25/02/2021'];
    expect(infer(many, 0.99)).toMatchObject({ type: 'date', date: 'd/m/yyyy', share: 1 });
    // a 13th in either place settles it; one in each place is no date order at all
    expect(infer(['01/02/2021', '13/02/2021', '02/13/2021'])).toMatchObject({ type: 'text' });
  });

  it('types ISO dates and timestamps as written, with a time zone when a value has an offset', () => {
    expect(infer(['2021-01-13', '2020-02-29'])).toEqual({ type: 'date', share: 1 });
    expect(infer(['2021-02-29'])).toMatchObject({ type: 'text' });
    expect(infer(['2021-01-13T10:00:00', '2021-01-13 10:00'])).toEqual({ type: 'timestamp', share: 1 });
    expect(infer(['2021-01-13T10:00:00Z', '2021-01-13T10:00:00+02:00'])).toEqual({ type: 'timestamptz', share: 1 });
  });

  it('reads booleans as PostgreSQL does, and keeps 0/1 integers', () => {
    expect(infer(['yes', 'No', 'TRUE', 'f'])).toEqual({ type: 'boolean', share: 1 });
    expect(infer(['0', '1'])).toMatchObject({ type: 'integer' });
    expect(infer(['oui', 'non'])).toMatchObject({ type: 'text' });
  });

  it('keeps a type when the threshold share of the values fit it', () => {
    const values = [...Array.from({ length: 99 }, (_, i) => String(i)), 'about 5'];
    expect(infer(values, 0.99)).toEqual({ type: 'integer', share: 0.99 });
    expect(infer(values, 1)).toMatchObject({ type: 'text' });
    const dates = [...Array.from({ length: 99 }, (_, i) => `${(i % 28) + 1}/1/2021`), 'unknown'];
    expect(infer(dates, 0.99)).toEqual({ type: 'date', date: 'd/m/yyyy', share: 0.99 });
  });

  it('reads missing-value markers as empty in a number or date column, and as values anywhere else', () => {
    // pandas/readr's NA spellings and the statistics offices' symbols, whatever their share
    expect(infer(['1', 'NA', '3', 'NA'])).toEqual({ type: 'integer', share: 1, missing: [{ value: 'NA', count: 2 }] });
    expect(infer(['2,5', '...', '1.234,5', '-', ' x '])).toEqual({
      type: 'numeric',
      number: { decimal: ',', thousands: '.' },
      share: 1,
      missing: [
        { value: '-', count: 1 },
        { value: '...', count: 1 },
        { value: 'x', count: 1 },
      ],
    });
    expect(infer(['13/01/2021', 'n/a', '14/01/2021'])).toEqual({ type: 'date', date: 'd/m/yyyy', share: 1, missing: [{ value: 'n/a', count: 1 }] });
    expect(infer(['2021-01-13', 'NULL', 'nan'])).toMatchObject({
      type: 'date',
      missing: [
        { value: 'NULL', count: 1 },
        { value: 'nan', count: 1 },
      ],
    });
    // the UK statistical service's [c] (suppressed) and NASA GISTEMP's asterisks
    expect(infer(['50', '[c]', '1200', '[x]'])).toMatchObject({
      type: 'integer',
      missing: [
        { value: '[c]', count: 1 },
        { value: '[x]', count: 1 },
      ],
    });
    expect(infer(['-43', '****', '*****', '12'])).toMatchObject({
      type: 'integer',
      missing: [
        { value: '****', count: 1 },
        { value: '*****', count: 1 },
      ],
    });
    // a marker is a value where the others are text (Namibia's ISO code, a name), booleans, or where nothing else is written
    expect(infer(['NA', 'FR', 'DE'])).toEqual({ type: 'text', share: 1 });
    expect(infer(['yes', 'no', 'NA'], 0.5)).toEqual({ type: 'boolean', share: 0.6667 });
    expect(infer(['NA', '-', '...'])).toEqual({ type: 'text', share: 1 });
    // only the listed spellings: `unknown` is not one, so the column stays text
    expect(infer(['1', 'unknown', '3'])).toEqual({ type: 'text', share: 1 });
    // a marker counts once the column is a number: a leading-zero code stays text, markers and all
    expect(infer(['007', 'NA'])).toEqual({ type: 'text', share: 1 });
  });

  it('says which markers were read as missing, in how many columns and values', () => {
    const d = [infer(['1', 'NA', 'NA']), infer(['1,5', '...']), infer(['a', 'NA'])];
    expect(missingWarning(d)).toBe('NA, ... read as missing in 2 columns (3 values)');
    expect(missingWarning([infer(['1', '2'])])).toBeUndefined();
  });

  it('widens to the pipeline types, and reads two-digit years as strptime does', () => {
    expect(['integer', 'numeric', 'date'].map((t) => pipelineType(t as never))).toEqual(['bigint', 'double', 'date']);
    expect([expandYear(0), expandYear(13), expandYear(68), expandYear(69), expandYear(99)]).toEqual([2000, 2013, 2068, 1969, 1999]);
    expect(parseDatePattern('d.m.yy', { twoDigitYears: true })).toMatchObject({ regex: '^[0-9]{1,2}[.][0-9]{1,2}[.][0-9]{2}$', twoDigitYear: true });
    expect(() => parseDatePattern('dd.mm.yy')).toThrow(/two-digit years/);
  });
});
