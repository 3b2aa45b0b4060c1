/**
 * The GNU build-id note of an ELF file (NT_GNU_BUILD_ID, name "GNU"): what
 * `readelf -n` prints as "Build ID", and what Xen reports as build_id.
 */
import { readFileSync } from 'node:fs';

const NT_GNU_BUILD_ID = 3;
const SHT_NOTE = 7;
const PT_NOTE = 4;

export function elfBuildId(file: string): string | undefined {
  return elfBuildIdOf(readFileSync(file));
}

export function elfBuildIdOf(buf: Buffer): string | undefined {
  if (buf.length < 52 || buf.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const is64 = buf[4] === 2;
  const le = buf[5] === 1;
  const u16 = (o: number): number => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const word = (o: number): number => (is64 ? Number(le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o)) : u32(o));
  const regions: Array<[number, number]> = [];
  // Section headers first; program headers too, for images whose sections were stripped.
  const shoff = word(is64 ? 0x28 : 0x20);
  const shentsize = u16(is64 ? 0x3a : 0x2e);
  const shnum = u16(is64 ? 0x3c : 0x30);
  for (let i = 0; i < shnum && shoff > 0; i++) {
    const sh = shoff + i * shentsize;
    if (sh + shentsize > buf.length) break;
    if (u32(sh + 4) !== SHT_NOTE) continue;
    regions.push([word(is64 ? sh + 0x18 : sh + 0x10), word(is64 ? sh + 0x20 : sh + 0x14)]);
  }
  const phoff = word(is64 ? 0x20 : 0x1c);
  const phentsize = u16(is64 ? 0x36 : 0x2a);
  const phnum = u16(is64 ? 0x38 : 0x2c);
  for (let i = 0; i < phnum && phoff > 0; i++) {
    const ph = phoff + i * phentsize;
    if (ph + phentsize > buf.length) break;
    if (u32(ph) !== PT_NOTE) continue;
    regions.push([word(is64 ? ph + 0x08 : ph + 0x04), word(is64 ? ph + 0x20 : ph + 0x10)]);
  }
  for (const [offset, size] of regions) {
    let p = offset;
    const end = Math.min(offset + size, buf.length);
    while (p + 12 <= end) {
      const namesz = u32(p);
      const descsz = u32(p + 4);
      const type = u32(p + 8);
      const name = buf.subarray(p + 12, p + 12 + namesz);
      const desc = p + 12 + align4(namesz);
      if (type === NT_GNU_BUILD_ID && name.toString('latin1').replace(/\0+$/, '') === 'GNU' && desc + descsz <= end) {
        return buf.subarray(desc, desc + descsz).toString('hex');
      }
      p = desc + align4(descsz);
    }
  }
  return undefined;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
