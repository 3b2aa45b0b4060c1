/**
 * GRUB's environment block (grub-core/lib/envblk.c): a file of exactly 1024
 * bytes, "# GRUB Environment Block\n", then "name=value\n" lines (a backslash
 * escapes '\\' and newline in values), padded to the end with '#'. GRUB itself
 * (load_env, save_env) and grub-editenv read and write it in place; it never
 * changes size, so GRUB can rewrite it without a filesystem driver that writes.
 */
import * as fs from 'node:fs';

export const ENVBLK_SIGNATURE = '# GRUB Environment Block\n';
export const ENVBLK_SIZE = 1024;

export class EnvBlockError extends Error {
  override readonly name = 'EnvBlockError';
}

/** The variables in file order. */
export function parseEnvBlock(buf: Buffer): Array<[string, string]> {
  const text = buf.toString('latin1');
  if (!text.startsWith(ENVBLK_SIGNATURE)) throw new EnvBlockError('invalid environment block');
  const out: Array<[string, string]> = [];
  let i = ENVBLK_SIGNATURE.length;
  while (i < text.length) {
    if (text[i] === '#') {
      const nl = text.indexOf('\n', i);
      if (nl < 0) break;
      i = nl + 1;
      continue;
    }
    const eq = text.indexOf('=', i);
    const nl = text.indexOf('\n', i);
    if (eq < 0 || (nl >= 0 && nl < eq)) {
      if (nl < 0) break;
      i = nl + 1;
      continue;
    }
    const name = text.slice(i, eq);
    let value = '';
    let j = eq + 1;
    for (; j < text.length && text[j] !== '\n'; j++) {
      if (text[j] === '\\' && j + 1 < text.length) j++;
      value += text[j];
    }
    out.push([name, Buffer.from(value, 'latin1').toString('utf8')]);
    i = j + 1;
  }
  return out;
}

export function formatEnvBlock(vars: ReadonlyArray<readonly [string, string]>): Buffer {
  let body = ENVBLK_SIGNATURE;
  for (const [name, value] of vars) {
    const escaped = Buffer.from(value, 'utf8').toString('latin1').replace(/[\\\n]/g, (c) => `\\${c}`);
    body += `${name}=${escaped}\n`;
  }
  if (body.length > ENVBLK_SIZE) throw new EnvBlockError('environment block too small');
  return Buffer.from(body + '#'.repeat(ENVBLK_SIZE - body.length), 'latin1');
}

export function readEnvBlock(file: string): Array<[string, string]> {
  return parseEnvBlock(fs.readFileSync(file));
}

/** The block with `name` set: replaced where it is, else appended (grub_envblk_set). */
export function setVar(vars: Array<[string, string]>, name: string, value: string): Array<[string, string]> {
  const at = vars.findIndex(([n]) => n === name);
  if (at < 0) return [...vars, [name, value]];
  const copy = vars.slice();
  copy[at] = [name, value];
  return copy;
}

export function unsetVar(vars: Array<[string, string]>, name: string): Array<[string, string]> {
  return vars.filter(([n]) => n !== name);
}

/** Rewrite the block in place, as GRUB's save_env does: same file, same 1024 bytes. */
export function writeEnvBlockInPlace(file: string, vars: ReadonlyArray<readonly [string, string]>): void {
  const buf = formatEnvBlock(vars);
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, buf, 0, buf.length, 0);
    fs.ftruncateSync(fd, buf.length);
  } finally {
    fs.closeSync(fd);
  }
}

export function getVar(vars: ReadonlyArray<readonly [string, string]>, name: string): string | undefined {
  return vars.find(([n]) => n === name)?.[1];
}
