/** A mistake on the command line: printed without a stack trace, exit status 64 (EX_USAGE). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly hint = 'run "xentest help" for the commands and their options',
  ) {
    super(message);
  }
}

export const EXIT_USAGE = 64;

/** `xentest report`'s usage: its errors' hint, and its line in `xentest help` (which loads no command). */
export const REPORT_USAGE = 'usage: xentest report [NIGHT | NIGHT_DIR] [--db URL|FILE] [--machine M] [--base NIGHT] [--nights N] [--out FILE] [--text]';
