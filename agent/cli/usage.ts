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
