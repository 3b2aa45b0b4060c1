/**
 * What the balloon suite needs of an interface to a domain's balloon driver:
 * read the current allocation and the target, ask for a new target the
 * interface's own well-formed way, and (for the files) send exactly these
 * bytes in one write(2), also as another user. Three interfaces have it:
 * the legacy XenLinux /proc/xen/balloon, today's sysfs xen_memory0, and
 * `xl mem-set` from dom0.
 */
export type InterfaceName = 'proc' | 'sysfs' | 'xl';
export const INTERFACE_NAMES: readonly InterfaceName[] = ['proc', 'sysfs', 'xl'];

export interface BalloonReading {
  /** KiB the domain has now. */
  currentKb: number;
  /** KiB it was asked to have. */
  targetKb: number;
  /** /proc only: the allocation Xen capped it at ("Xen hard limit"), null while "???". */
  hardLimitKb: number | null;
}

/** Who does the write: this process, user nobody, or root without CAP_SYS_ADMIN. */
export type Identity = 'self' | 'nobody' | 'no-cap-sys-admin';

export type WriteOutcome =
  | { ok: true; written: number }
  /** code: the errno name (EPERM, EBADMSG...), or "exit N" for a command. */
  | { ok: false; code: string; at: 'open' | 'write' | 'command'; message: string };

export interface BalloonInterface {
  readonly name: InterfaceName;
  /** Where it acts, for messages: a path, or "xl mem-set vm1". */
  readonly where: string;
  /** Does the suite act on its own domain (so it can allocate memory there)? */
  readonly ownDomain: boolean;
  read(): Promise<BalloonReading>;
  /** Ask for this target (KiB), written as the interface expects it. */
  request(targetKb: number, as?: Identity): Promise<WriteOutcome>;
  /** proc and sysfs: one write(2) of exactly these bytes to the target file. */
  writeBytes?(bytes: Uint8Array, as?: Identity): Promise<WriteOutcome>;
  /** The domain's static maximum (memory/static-max, KiB): what xl mem-set accepts at most, when it can be known. */
  staticMaxKb(): Promise<number | null>;
  /**
   * What Xen gives the domain at most now (its max_pages, KiB), when the domain can know it: the
   * toolstack sets it to its own target plus 1 MiB (libxl's LIBXL_MAXMEM_CONSTANT) at xl create and
   * at every xl mem-set, so a guest raising its own target gets no further (seen on a real Xen
   * 4.17.5). null through xl, whose mem-set raises it with the target.
   */
  xenLimitKb(): Promise<number | null>;
}

/** libxl's LIBXL_MAXMEM_CONSTANT (KiB): max_pages is the toolstack's target plus this. */
export const LIBXL_MAXMEM_CONSTANT_KB = 1024;

/** max_pages as a guest can know it: the toolstack's target (its own memory/target in xenstore) + 1 MiB. */
export function toolstackLimitKb(memoryTargetKb: number | null): number | null {
  return memoryTargetKb === null ? null : memoryTargetKb + LIBXL_MAXMEM_CONSTANT_KB;
}

/** The interface cannot be used here: a user's problem, printed without a stack trace. */
export class BalloonUnavailable extends Error {
  override readonly name = 'BalloonUnavailable';
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** An interface answered something the suite cannot read: a driver bug or a kernel we do not know. */
export class BalloonFormatError extends Error {
  override readonly name = 'BalloonFormatError';
}

export function describeOutcome(o: WriteOutcome): string {
  return o.ok ? `accepted (${o.written} bytes written)` : `${o.code} at ${o.at}${o.message ? `: ${o.message}` : ''}`;
}
