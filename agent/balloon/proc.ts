/**
 * The legacy XenLinux interface, /proc/xen/balloon (2.6.18-xen
 * drivers/xen/balloon/balloon.c). A read gives
 *   Current allocation: %8lu kB
 *   Requested target:   %8lu kB
 *   Low-mem balloon:    %8lu kB
 *   High-mem balloon:   %8lu kB
 *   Driver pages:       %8lu kB      (not in the oldest drivers)
 *   Xen hard limit:     %8lu kB | ??? kB
 * A write is parsed with memparse (K, M, G suffixes), after three checks in
 * this order: CAP_SYS_ADMIN (EPERM), at most 1 byte (EBADMSG), more than 64
 * bytes (EFBIG).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BalloonFormatError, toolstackLimitKb, type BalloonInterface, type BalloonReading, type Identity, type WriteOutcome } from './interface.js';
import { writeOnceAs } from './write-once.js';
import { xenstoreNumber } from './xenstore.js';

export const PROC_BALLOON = 'proc/xen/balloon';

export interface ProcBalloonText {
  currentKb: number;
  targetKb: number;
  lowKb: number;
  highKb: number;
  driverKb: number | null;
  hardLimitKb: number | null;
}

export function parseProcBalloon(text: string, file: string): ProcBalloonText {
  const field = (label: string, optional = false): number | null => {
    const m = new RegExp(`^${label}:\\s+(\\d+) kB$`, 'm').exec(text);
    if (m) return Number(m[1]);
    if (optional) return null;
    throw new BalloonFormatError(`${file}: no "${label}: N kB" line in what it read: ${JSON.stringify(text.slice(0, 400))}`);
  };
  const hard = /^Xen hard limit:\s+(\?\?\?|\d+) kB/m.exec(text);
  if (!hard) throw new BalloonFormatError(`${file}: no "Xen hard limit:" line in what it read: ${JSON.stringify(text.slice(0, 400))}`);
  return {
    currentKb: field('Current allocation') as number,
    targetKb: field('Requested target') as number,
    lowKb: field('Low-mem balloon') as number,
    highKb: field('High-mem balloon') as number,
    driverKb: field('Driver pages', true),
    hardLimitKb: hard[1] === '???' ? null : Number(hard[1]),
  };
}

export class ProcBalloon implements BalloonInterface {
  readonly name = 'proc' as const;
  readonly ownDomain = true;
  readonly where: string;

  constructor(
    root: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.where = join(root, PROC_BALLOON);
  }

  readText(): ProcBalloonText {
    return parseProcBalloon(readFileSync(this.where, 'utf8'), this.where);
  }

  async read(): Promise<BalloonReading> {
    const t = this.readText();
    return { currentKb: t.currentKb, targetKb: t.targetKb, hardLimitKb: t.hardLimitKb };
  }

  request(targetKb: number, as: Identity = 'self'): Promise<WriteOutcome> {
    return this.writeBytes(Buffer.from(`${targetKb}K\n`), as);
  }

  writeBytes(bytes: Uint8Array, as: Identity = 'self'): Promise<WriteOutcome> {
    return writeOnceAs(this.where, bytes, as);
  }

  staticMaxKb(): Promise<number | null> {
    return xenstoreNumber('memory/static-max', this.env);
  }

  async xenLimitKb(): Promise<number | null> {
    return toolstackLimitKb(await xenstoreNumber('memory/target', this.env));
  }
}
