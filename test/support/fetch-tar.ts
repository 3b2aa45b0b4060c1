/**
 * Writes tar archives byte by byte (ustar headers), so tests can build the
 * archives no honest tar program would: absolute paths, "..", links out of
 * the tree, devices, lying sizes, bad checksums.
 */
import { gzipSync } from 'node:zlib';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'blockdev' | 'fifo';

export interface TarEntrySpec {
  name: string;
  type?: TarEntryType;
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
  /** Seconds since the epoch. */
  mtime?: number;
  uid?: number;
  gid?: number;
  /** Spoil the header checksum. */
  badChecksum?: boolean;
}

const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  chardev: '3',
  blockdev: '4',
  dir: '5',
  fifo: '6',
};

function put(header: Buffer, offset: number, length: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > length) throw new Error(`tar field too long: ${text}`);
  bytes.copy(header, offset);
}

function octal(value: number, length: number): string {
  return value.toString(8).padStart(length - 1, '0') + '\0';
}

export function tarHeader(spec: TarEntrySpec, size: number): Buffer {
  const type = spec.type ?? 'file';
  const header = Buffer.alloc(512);
  put(header, 0, 100, spec.name);
  put(header, 100, 8, octal(spec.mode ?? (type === 'dir' ? 0o755 : 0o644), 8));
  put(header, 108, 8, octal(spec.uid ?? 0, 8));
  put(header, 116, 8, octal(spec.gid ?? 0, 8));
  put(header, 124, 12, octal(size, 12));
  put(header, 136, 12, octal(spec.mtime ?? 1_700_000_000, 12));
  header.fill(0x20, 148, 156); // checksum counts as spaces while it is computed
  put(header, 156, 1, TYPEFLAG[type]);
  put(header, 157, 100, spec.linkname ?? '');
  put(header, 257, 6, 'ustar\0');
  put(header, 263, 2, '00');
  put(header, 265, 32, 'root');
  put(header, 297, 32, 'root');
  put(header, 329, 8, octal(type === 'chardev' || type === 'blockdev' ? 1 : 0, 8));
  put(header, 337, 8, octal(type === 'chardev' || type === 'blockdev' ? 3 : 0, 8));
  let sum = 0;
  for (const byte of header) sum += byte;
  if (spec.badChecksum) sum += 1;
  put(header, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return header;
}

/** A complete tar archive: each entry's header and padded content, then two zero blocks. */
export function tarArchive(entries: readonly TarEntrySpec[]): Buffer {
  const blocks: Buffer[] = [];
  for (const spec of entries) {
    const content = spec.content === undefined ? Buffer.alloc(0) : Buffer.isBuffer(spec.content) ? spec.content : Buffer.from(spec.content);
    blocks.push(tarHeader(spec, content.length));
    if (content.length > 0) {
      blocks.push(content);
      const pad = (512 - (content.length % 512)) % 512;
      if (pad) blocks.push(Buffer.alloc(pad));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export function tarGz(entries: readonly TarEntrySpec[]): Buffer {
  return gzipSync(tarArchive(entries));
}
