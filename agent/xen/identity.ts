/**
 * Which hypervisor is which: the identity of a build (read from the built
 * tree) and of the running hypervisor (read from `xl info`), and whether they
 * are the same. After the reboot this is how the agent knows that the machine
 * really runs the new build and did not fall back to the last good one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { elfBuildId } from './elfnote.js';

export interface XenIdentity {
  /** XEN_FULLVERSION, e.g. 4.17.5 or 4.19-unstable: what xl info calls xen_version. */
  readonly version: string;
  readonly changeset?: string;
  readonly compileDate?: string;
  readonly buildId?: string;
}

/** Read xen/include/xen/compile.h (written by Xen's build) and the build id of xen/xen-syms. */
export function builtXenIdentity(tree: string): XenIdentity {
  const header = join(tree, 'xen/include/xen/compile.h');
  if (!existsSync(header)) {
    throw new Error(`${header} is missing: the build did not produce a Xen hypervisor (is this a Xen tree?)`);
  }
  const defs = new Map<string, string>();
  for (const m of readFileSync(header, 'utf8').matchAll(/^#define\s+(\w+)\s+(.*)$/gm)) {
    const raw = (m[2] as string).trim();
    defs.set(m[1] as string, raw.startsWith('"') ? raw.slice(1, raw.lastIndexOf('"')) : raw);
  }
  const major = defs.get('XEN_VERSION');
  const minor = defs.get('XEN_SUBVERSION');
  if (major === undefined || minor === undefined) throw new Error(`${header} does not define XEN_VERSION and XEN_SUBVERSION`);
  const syms = join(tree, 'xen/xen-syms');
  const buildId = existsSync(syms) ? elfBuildId(syms) : undefined;
  const changeset = defs.get('XEN_CHANGESET');
  const compileDate = defs.get('XEN_COMPILE_DATE');
  return {
    version: `${major}.${minor}${defs.get('XEN_EXTRAVERSION') ?? ''}`,
    ...(changeset ? { changeset } : {}),
    ...(compileDate ? { compileDate } : {}),
    ...(buildId ? { buildId } : {}),
  };
}

/** `xl info` output: "key                    : value" lines. */
export function parseXlInfo(text: string): Map<string, string> {
  const info = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    info.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return info;
}

export function runningXenIdentity(info: Map<string, string>): XenIdentity {
  const version = info.get('xen_version') ?? `${info.get('xen_major') ?? '?'}.${info.get('xen_minor') ?? '?'}${info.get('xen_extra') ?? ''}`;
  const changeset = info.get('xen_changeset');
  const compileDate = info.get('cc_compile_date');
  const buildId = info.get('build_id');
  return {
    version,
    ...(changeset ? { changeset } : {}),
    ...(compileDate ? { compileDate } : {}),
    ...(buildId ? { buildId } : {}),
  };
}

/**
 * The same build? A build id on both sides decides; without one, the version
 * and the compile date (and the changeset, where both have it) must agree.
 */
export function sameXen(expected: XenIdentity, running: XenIdentity): boolean {
  if (expected.buildId && running.buildId) return expected.buildId === running.buildId;
  if (expected.version !== running.version) return false;
  if (expected.compileDate && expected.compileDate !== running.compileDate) return false;
  if (expected.changeset && running.changeset && expected.changeset !== running.changeset) return false;
  return true;
}

export function describeXen(id: XenIdentity): string {
  const parts = [`Xen ${id.version}`];
  if (id.compileDate) parts.push(`built ${id.compileDate}`);
  if (id.buildId) parts.push(`build id ${id.buildId.slice(0, 12)}`);
  return parts.join(', ');
}
