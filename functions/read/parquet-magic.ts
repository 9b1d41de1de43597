/**
 * How a Parquet file begins and ends, apart from the reader (parquet.ts) so that recognising one
 * (open.ts) does not load hyparquet: the reader is imported only for a Parquet file.
 */

/** The first and last four bytes of a Parquet file. */
export const PARQUET_MAGIC = Buffer.from('PAR1', 'latin1');
/** The first and last four bytes of a Parquet file whose footer is encrypted. */
export const PARQUET_ENCRYPTED_MAGIC = Buffer.from('PARE', 'latin1');
