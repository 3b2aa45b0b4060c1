/**
 * What the results database needs of a driver, and nothing more: run a
 * statement, read rows, insert many rows, and a transaction. The SQL given
 * here is the dialect-neutral SQL of schema.ts with `?` placeholders; each
 * driver turns it into its own (sqlite.ts, postgres.ts).
 */
import type { Dialect } from './schema.js';

export type SqlValue = string | number | null;
export type Row = Record<string, SqlValue>;

export interface Connection {
  readonly dialect: Dialect;
  run(sql: string, params?: readonly SqlValue[]): Promise<void>;
  all<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /**
   * Inserts rows into a table, in as few round trips as the driver allows.
   * `afterRows` is told how many rows have been written so far (after each
   * row or batch): the crash tests pause the ingest there.
   */
  insertRows(table: string, columns: readonly string[], rows: readonly SqlValue[][], afterRows?: (n: number) => Promise<void>): Promise<void>;
  /**
   * Runs fn in one transaction that no other writer interleaves with:
   * committed if fn resolves, rolled back if it throws. Transactions of one
   * connection run one after another.
   */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Turns `?` placeholders into PostgreSQL's `$1, $2, ...` (our SQL has no `?` in its literals). */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** Runs async work one at a time, in the order it was asked for. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(() => fn());
    this.tail = result.catch(() => undefined);
    return result;
  }
}
