/**
 * Today's interface (drivers/xen/xen-balloon.c,
 * Documentation/ABI/stable/sysfs-devices-system-xen_memory):
 * /sys/devices/system/xen_memory/xen_memory0/ with target_kb (KiB, parsed
 * with simple_strtoull base 0), target (bytes, memparse: K, M, G suffixes),
 * info/current_kb. A write needs CAP_SYS_ADMIN (EPERM) and is not checked
 * otherwise: garbage parses as 0, a target of nothing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BalloonFormatError, toolstackLimitKb, type BalloonInterface, type BalloonReading, type Identity, type WriteOutcome } from './interface.js';
import { writeOnceAs } from './write-once.js';
import { xenstoreNumber } from './xenstore.js';

export const SYSFS_BALLOON = 'sys/devices/system/xen_memory/xen_memory0';

export class SysfsBalloon implements BalloonInterface {
  readonly name = 'sysfs' as const;
  readonly ownDomain = true;
  readonly where: string;

  constructor(
    root: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.where = join(root, SYSFS_BALLOON);
  }

  file(name: string): string {
    return join(this.where, name);
  }

  /** A file holding one unsigned number and a newline. */
  readNumber(name: string): number {
    const file = this.file(name);
    const text = readFileSync(file, 'utf8');
    if (!/^\d+\n?$/.test(text)) throw new BalloonFormatError(`${file}: expected a number, read ${JSON.stringify(text.slice(0, 100))}`);
    return Number(text.trim());
  }

  async read(): Promise<BalloonReading> {
    return { currentKb: this.readNumber('info/current_kb'), targetKb: this.readNumber('target_kb'), hardLimitKb: null };
  }

  request(targetKb: number, as: Identity = 'self'): Promise<WriteOutcome> {
    return this.writeBytes(Buffer.from(`${targetKb}\n`), as);
  }

  /** To target_kb. */
  writeBytes(bytes: Uint8Array, as: Identity = 'self'): Promise<WriteOutcome> {
    return writeOnceAs(this.file('target_kb'), bytes, as);
  }

  /** To target (bytes, with a memparse suffix). */
  writeTarget(bytes: Uint8Array, as: Identity = 'self'): Promise<WriteOutcome> {
    return writeOnceAs(this.file('target'), bytes, as);
  }

  staticMaxKb(): Promise<number | null> {
    return xenstoreNumber('memory/static-max', this.env);
  }

  async xenLimitKb(): Promise<number | null> {
    return toolstackLimitKb(await xenstoreNumber('memory/target', this.env));
  }
}
