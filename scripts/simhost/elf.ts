/**
 * What the simulated firmware and bootloader need from a hypervisor image:
 * that it is an ELF file, its GNU build id (the NT_GNU_BUILD_ID note), the
 * multiboot header GRUB looks for, and the identity strings the simulated Xen
 * tree embeds (XEN_SIM_IDENT_BEGIN ... XEN_SIM_IDENT_END).
 */

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const SHT_NOTE = 7;
const PT_NOTE = 4;
const NT_GNU_BUILD_ID = 3;

export function isElf(buf: Buffer): boolean {
  return buf.length >= 52 && buf.subarray(0, 4).equals(ELF_MAGIC);
}

interface ElfReader {
  is64: boolean;
  u16(off: number): number;
  u32(off: number): number;
  addr(off: number): number;
}

function reader(buf: Buffer): ElfReader {
  const is64 = buf[4] === 2;
  const le = buf[5] !== 2;
  const u16 = (o: number): number => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u64 = (o: number): number => Number(le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o));
  return { is64, u16, u32, addr: is64 ? u64 : u32 };
}

/** Note regions [offset, size]: the SHT_NOTE sections, or the PT_NOTE segments when there are no sections. */
function noteRegions(buf: Buffer, r: ElfReader): Array<[number, number]> {
  const regions: Array<[number, number]> = [];
  const shoff = r.addr(r.is64 ? 0x28 : 0x20);
  const shentsize = r.u16(r.is64 ? 0x3a : 0x2e);
  const shnum = r.u16(r.is64 ? 0x3c : 0x30);
  for (let i = 0; shoff > 0 && i < shnum; i++) {
    const sh = shoff + i * shentsize;
    if (sh + shentsize > buf.length) break;
    if (r.u32(sh + 4) !== SHT_NOTE) continue;
    regions.push([r.addr(sh + (r.is64 ? 0x18 : 0x10)), r.addr(sh + (r.is64 ? 0x20 : 0x14))]);
  }
  if (regions.length > 0) return regions;
  const phoff = r.addr(r.is64 ? 0x20 : 0x1c);
  const phentsize = r.u16(r.is64 ? 0x36 : 0x2a);
  const phnum = r.u16(r.is64 ? 0x38 : 0x2c);
  for (let i = 0; phoff > 0 && i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + phentsize > buf.length) break;
    if (r.u32(ph) !== PT_NOTE) continue;
    regions.push([r.addr(ph + (r.is64 ? 0x08 : 0x04)), r.addr(ph + (r.is64 ? 0x20 : 0x10))]);
  }
  return regions;
}

/** The GNU build id as lowercase hex, or undefined if the ELF file has none. Throws if buf is not ELF. */
export function gnuBuildId(buf: Buffer): string | undefined {
  if (!isElf(buf)) throw new Error('not an ELF file');
  const r = reader(buf);
  for (const [start, size] of noteRegions(buf, r)) {
    let off = start;
    const end = Math.min(start + size, buf.length);
    while (off + 12 <= end) {
      const namesz = r.u32(off);
      const descsz = r.u32(off + 4);
      const type = r.u32(off + 8);
      const name = off + 12;
      const desc = name + align4(namesz);
      if (desc + descsz > end) break;
      if (type === NT_GNU_BUILD_ID && namesz === 4 && buf.toString('latin1', name, name + 3) === 'GNU') {
        return buf.subarray(desc, desc + descsz).toString('hex');
      }
      off = desc + align4(descsz);
    }
  }
  return undefined;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

const MB2_MAGIC = 0xe85250d6;
const MB1_MAGIC = 0x1badb002;

/**
 * grub-file --is-x86-multiboot2: a multiboot2 header (magic, architecture,
 * length, and a checksum making their sum 0) 8-byte aligned in the first 32 KiB.
 */
export function hasMultiboot2Header(buf: Buffer): boolean {
  const limit = Math.min(buf.length, 32768);
  for (let off = 0; off + 16 <= limit; off += 8) {
    if (buf.readUInt32LE(off) !== MB2_MAGIC) continue;
    const sum = (MB2_MAGIC + buf.readUInt32LE(off + 4) + buf.readUInt32LE(off + 8) + buf.readUInt32LE(off + 12)) >>> 0;
    if (sum === 0) return true;
  }
  return false;
}

/** grub-file --is-x86-multiboot: a multiboot header 4-byte aligned in the first 8 KiB. */
export function hasMultibootHeader(buf: Buffer): boolean {
  const limit = Math.min(buf.length, 8192);
  for (let off = 0; off + 12 <= limit; off += 4) {
    if (buf.readUInt32LE(off) !== MB1_MAGIC) continue;
    if (((MB1_MAGIC + buf.readUInt32LE(off + 4) + buf.readUInt32LE(off + 8)) >>> 0) === 0) return true;
  }
  return false;
}

export const IDENT_BEGIN = 'XEN_SIM_IDENT_BEGIN\n';
export const IDENT_END = 'XEN_SIM_IDENT_END';
export const UNBOOTABLE_MARKER = 'XEN_SIM_BOOTS=no';

/** KEY=value lines between the identity markers embedded by the simulated tree's version.c. */
export function embeddedIdentity(buf: Buffer): Map<string, string> | undefined {
  const start = buf.indexOf(IDENT_BEGIN, 0, 'latin1');
  if (start < 0) return undefined;
  const end = buf.indexOf(IDENT_END, start, 'latin1');
  if (end < 0) return undefined;
  const out = new Map<string, string>();
  for (const line of buf.toString('utf8', start + IDENT_BEGIN.length, end).split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}
