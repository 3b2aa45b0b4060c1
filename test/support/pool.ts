/**
 * fn over items, `width` at a time, started in order of index; resolves with
 * the results in the order of the items once all have ended, or rejects with
 * the first error once the running ones have ended. For the kill matrices:
 * each point is a night of its own, in a directory of its own, and most of a
 * night is waiting on its processes.
 */
export async function mapAtOnce<T, R>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const errors: unknown[] = [];
  const lane = async (): Promise<void> => {
    while (errors.length === 0 && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (error) {
        errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  if (errors.length > 0) throw errors[0];
  return results;
}

/** How many nights the kill matrices run at once (XENTEST_TEST_MATRIX_WIDTH, default 3). */
export function matrixWidth(): number {
  const v = Number(process.env.XENTEST_TEST_MATRIX_WIDTH ?? '3');
  return Number.isInteger(v) && v >= 1 ? v : 3;
}
