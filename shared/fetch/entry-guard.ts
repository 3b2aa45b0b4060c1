/**
 * Decides, entry by entry and before anything is written, whether a tar entry
 * may be unpacked. It refuses everything that would put a file outside the
 * target or make a later write land outside it: absolute paths, ".."
 * components, symbolic links that point outside (also when they get there
 * through an earlier symbolic link), writes through a symbolic link,
 * hard links to anything but a regular file unpacked earlier, devices, FIFOs
 * and other special entries; and it keeps the total size under the limit.
 *
 * It models the tree the archive builds (which paths are directories, files,
 * symbolic links) so symbolic links are resolved the way the kernel would
 * resolve them once the tree is on disk, not just lexically.
 */
import { formatBytes } from './options.js';

/** The parts of a tar header the guard looks at (node-tar's ReadEntry has them). */
export interface EntryHeader {
  path: string;
  type: string;
  linkpath?: string | undefined;
  size: number;
}

type Kind = 'file' | 'dir' | 'symlink';

/** How deep symbolic links may chain, as Linux's MAXSYMLINKS. */
const MAX_LINK_HOPS = 40;

const SPECIAL: Readonly<Record<string, string>> = {
  CharacterDevice: 'a character device',
  BlockDevice: 'a block device',
  FIFO: 'a FIFO (named pipe)',
  SparseFile: 'a GNU sparse file',
  ContinuationFile: 'a multi-volume continuation',
  TapeVolumeHeader: 'a tape volume header',
  Inode: 'an inode-only entry',
  SolarisACL: 'a Solaris ACL',
};

function components(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

function quote(path: string): string {
  return JSON.stringify(path);
}

type Resolution = { ok: true; parts: string[] } | { ok: false; why: 'outside' | 'loop' };

export class EntryGuard {
  private readonly kinds = new Map<string, Kind>();
  private readonly symlinks = new Map<string, string>();
  /** Paths that resolving some symbolic link walked through: turning one into (or out of) a symbolic link would change where that link points. */
  private readonly traversed = new Set<string>();
  private totalBytes = 0;
  private count = 0;

  constructor(private readonly maxBytes: number) {}

  get entries(): number {
    return this.count;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Why `entry` must not be unpacked, or undefined when it may (and then it is recorded). */
  check(entry: EntryHeader): string | undefined {
    const path = entry.path;
    const q = quote(path);
    if (path.startsWith('/')) return `entry ${q} has an absolute path`;
    const parts = components(path);
    if (parts.includes('..')) return `entry ${q} has a ".." component, which would put it outside the tree`;
    const rel = parts.join('/');

    let kind: Kind | 'hardlink';
    switch (entry.type) {
      case 'File':
      case 'OldFile':
      case 'ContiguousFile':
        kind = 'file';
        break;
      case 'Directory':
      case 'GNUDumpDir':
        kind = 'dir';
        break;
      case 'SymbolicLink':
        kind = 'symlink';
        break;
      case 'Link':
        kind = 'hardlink';
        break;
      default: {
        const what = SPECIAL[entry.type];
        return what ? `entry ${q} is ${what}, which a source tree has no business holding` : `entry ${q} is of tar type ${entry.type}, which xentest does not unpack`;
      }
    }

    if (rel === '') return kind === 'dir' ? undefined : `entry ${q} would replace the top of the tree`;

    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (this.kinds.get(prefix) === 'symlink') return `entry ${q} would be written through the symbolic link ${quote(prefix)}`;
    }
    if (this.traversed.has(rel) && (kind === 'symlink' || this.kinds.get(rel) === 'symlink')) {
      return `entry ${q} would change where an earlier symbolic link points`;
    }

    if (kind === 'symlink') {
      const why = this.checkSymlink(q, parts, entry.linkpath ?? '');
      if (why) return why;
    } else if (kind === 'hardlink') {
      const why = this.checkHardlink(q, entry.linkpath ?? '');
      if (why) return why;
    } else if (kind === 'file') {
      if (this.totalBytes + entry.size > this.maxBytes) {
        return `the archive unpacks to more than the limit of ${formatBytes(this.maxBytes)} (entry ${q} would bring it to ${formatBytes(this.totalBytes + entry.size)})`;
      }
      this.totalBytes += entry.size;
    }

    this.record(parts, rel, kind, entry.linkpath ?? '');
    return undefined;
  }

  private checkSymlink(q: string, parts: string[], target: string): string | undefined {
    if (target === '') return `symbolic link ${q} has no target`;
    if (target.startsWith('/')) return `symbolic link ${q} points to the absolute path ${quote(target)}, outside the tree`;
    const resolution = this.resolve(parts.slice(0, -1), target.split('/'), 0, false);
    if (!resolution.ok) {
      return resolution.why === 'loop'
        ? `symbolic link ${q} -> ${quote(target)} goes through more than ${MAX_LINK_HOPS} symbolic links`
        : `symbolic link ${q} -> ${quote(target)} points outside the tree`;
    }
    return undefined;
  }

  private checkHardlink(q: string, target: string): string | undefined {
    if (target === '') return `hard link ${q} has no target`;
    if (target.startsWith('/')) return `hard link ${q} points to the absolute path ${quote(target)}, outside the tree`;
    const parts = components(target);
    if (parts.includes('..')) return `hard link ${q} -> ${quote(target)} points outside the tree`;
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (this.kinds.get(prefix) === 'symlink') return `hard link ${q} -> ${quote(target)} goes through the symbolic link ${quote(prefix)}`;
    }
    const kind = this.kinds.get(parts.join('/'));
    if (kind === 'file') return undefined;
    if (kind === undefined) return `hard link ${q} -> ${quote(target)} names no file unpacked before it`;
    return `hard link ${q} -> ${quote(target)} names a ${kind === 'dir' ? 'directory' : 'symbolic link'}, not a file`;
  }

  /**
   * Where `target`, read in directory `base`, ends up once on disk, following
   * the symbolic links the archive made. The last component of a link being
   * checked is not followed (if it is a link, it was itself checked to stay
   * inside); every component of a link being gone through is.
   */
  private resolve(base: string[], target: string[], hops: number, followLast: boolean): Resolution {
    let current = [...base];
    let last = target.length - 1;
    while (last >= 0 && (target[last] === '' || target[last] === '.')) last--;
    for (let i = 0; i <= last; i++) {
      const c = target[i] as string;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (current.length === 0) return { ok: false, why: 'outside' };
        current.pop();
        continue;
      }
      const next = [...current, c];
      if (i === last && !followLast) return { ok: true, parts: next };
      const key = next.join('/');
      this.traversed.add(key);
      const link = this.symlinks.get(key);
      if (link === undefined) {
        current = next;
        continue;
      }
      if (hops >= MAX_LINK_HOPS) return { ok: false, why: 'loop' };
      const through = this.resolve(current, link.split('/'), hops + 1, true);
      if (!through.ok) return through;
      current = through.parts;
    }
    return { ok: true, parts: current };
  }

  private record(parts: string[], rel: string, kind: Kind | 'hardlink', target: string): void {
    this.count++;
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (!this.kinds.has(prefix)) this.kinds.set(prefix, 'dir');
    }
    if (kind === 'symlink') {
      this.kinds.set(rel, 'symlink');
      this.symlinks.set(rel, target);
    } else {
      this.kinds.set(rel, kind === 'hardlink' ? 'file' : kind);
      this.symlinks.delete(rel);
    }
  }
}
