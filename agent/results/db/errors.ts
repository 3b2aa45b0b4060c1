/**
 * Problems with the results database that a user causes or can fix (a path
 * that cannot be opened, a server that cannot be reached, a database made by
 * a newer xentest): the commands print them with a hint and exit
 * EXIT_DB_UNAVAILABLE, without a stack trace.
 */

/** EX_UNAVAILABLE (sysexits.h). */
export const EXIT_DB_UNAVAILABLE = 69;

export class ResultsDbError extends Error {
  override readonly name = 'ResultsDbError';
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** A --db (or XENTEST_DB) value that names no database xentest can use: a usage mistake. */
export class BadDbLocation extends Error {
  override readonly name = 'BadDbLocation';
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}
