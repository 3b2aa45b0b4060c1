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
  /** How many KiB Xen lets the domain have at most, when it can be known. */
  staticMaxKb(): Promise<number | null>;
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
