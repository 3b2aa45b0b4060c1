/**
 * Run fn over items, `width` at a time, in order of index; resolves when all
 * have ended, rejects with the first error once the running ones have ended.
 * For the kill matrices: each point is a night of its own, in a directory of
 * its own, and most of a night is waiting on its processes.
 */
export async function eachAtOnce<T>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown = null;
  const lane = async (): Promise<void> => {
    while (failed === null && next < items.length) {
      const i = next++;
      try {
        await fn(items[i] as T, i);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  if (failed !== null) throw failed;
}

/** How many nights the kill matrices run at once (XENTEST_TEST_MATRIX_WIDTH, default 3). */
export function matrixWidth(): number {
  const v = Number(process.env.XENTEST_TEST_MATRIX_WIDTH ?? '3');
  return Number.isInteger(v) && v >= 1 ? v : 3;
}
