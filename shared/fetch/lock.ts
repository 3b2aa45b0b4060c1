/**
 * One operation at a time on one cache entry within this process, so two
 * fetches of the same URL (say a probe and a fetch started together) do not
 * race on the same temp file, meta file or git repository. Across processes
 * the cache stays consistent because every publish is a rename.
 */
const tails = new Map<string, Promise<unknown>>();

export async function serialized<T>(key: string, work: () => Promise<T>): Promise<T> {
  const previous = tails.get(key) ?? Promise.resolve();
  const run = previous.then(work, work);
  const tail = run.catch(() => undefined);
  tails.set(key, tail);
  try {
    return await run;
  } finally {
    if (tails.get(key) === tail) tails.delete(key);
  }
}
