/**
 * Kernel identity as autotest's TKO parser computes it (tko/parsers/version_1.py
 * `kernel` and `status_line.get_kernel`, tko/models.py `kernel.compute_hash`,
 * tko/parsers/version_0.py `patch`):
 *
 *   base    = value of kernel= with one trailing "-autotest" removed;
 *   patches = patch0, patch1, ... for as long as the next index exists, each
 *             "spec reference hash" split on whitespace (exactly three words,
 *             or the reference fails with TypeError);
 *   hash    = md5(",".join([base] + [patch hashes])), hex;
 *   an empty base means UNKNOWN (hash "UNKNOWN", no patches, and the patch
 *   fields are not looked at at all).
 */
import { createHash } from 'node:crypto';
import type { KernelId } from './types.js';

/** What TKO records before any kernel= was seen, or for a reboot that names none. */
export const UNKNOWN_KERNEL: KernelId = Object.freeze({ base: 'UNKNOWN', patches: [], hash: 'UNKNOWN' }) as KernelId;

/** A patchN= value that is not three whitespace-separated words. */
export class KernelPatchError extends Error {
  override readonly name = 'KernelPatchError';
  constructor(
    readonly field: string,
    readonly value: string,
    readonly words: number,
  ) {
    super(
      `${field}=${value} has ${words} word${words === 1 ? '' : 's'}; a patch is exactly three: "spec reference hash"`,
    );
  }
}

/** TKO's kernel_hash: md5 of the base and the patch hashes joined with commas. */
export function kernelHash(base: string, patchHashes: readonly string[]): string {
  return createHash('md5').update([base, ...patchHashes].join(','), 'utf8').digest('hex');
}

/** Python 2 str.split() with no argument: runs of ASCII whitespace, ends trimmed. */
function pySplit(s: string): string[] {
  const words = s.split(/[ \t\n\r\v\f]+/);
  if (words[0] === '') words.shift();
  if (words.length > 0 && words[words.length - 1] === '') words.pop();
  return words;
}

/**
 * The kernel a line's fields describe (an INFO line with kernel=, or the END
 * of a successful reboot). `fields` is the line's key=value fields, a later
 * duplicate already having replaced an earlier one.
 */
export function kernelFromFields(fields: ReadonlyMap<string, string>): KernelId {
  let base = fields.get('kernel') ?? '';
  if (base.endsWith('-autotest')) base = base.slice(0, -'-autotest'.length);
  if (base === '') return UNKNOWN_KERNEL;
  const patches: KernelId['patches'] = [];
  for (let i = 0; ; i++) {
    const key = `patch${i}`;
    const value = fields.get(key);
    if (value === undefined) break;
    const words = pySplit(value);
    if (words.length !== 3) throw new KernelPatchError(key, value, words.length);
    patches.push({ spec: words[0]!, reference: words[1]!, hash: words[2]! });
  }
  return Object.freeze({
    base,
    patches,
    hash: kernelHash(
      base,
      patches.map((p) => p.hash),
    ),
  });
}

/** The kernel for a plain release string, as an INFO kernel=<release> line with no patches gives it. */
export function kernelFromRelease(release: string): KernelId {
  return kernelFromFields(new Map([['kernel', release]]));
}
