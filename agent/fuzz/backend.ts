/**
 * Where a domctl goes: the real hypervisor (libxencall) or the simulated
 * host's model of it. Both take the same 144 bytes of struct xen_domctl and
 * answer as Xen does: 0, or a negative errno, with the bytes Xen copied back.
 */
export interface HypercallBackend {
  readonly name: 'xen' | 'sim';
  /**
   * Send the domctl in buf (DOMCTL_SIZE bytes). badBuffer: hand the
   * hypervisor a pointer it cannot read (NULL) instead of the buffer, so the
   * copy from the guest fails. Returns 0 or -errno; on return buf holds what
   * the hypervisor copied back (unchanged if it copied nothing).
   */
  domctl(buf: Uint8Array, badBuffer: boolean): number;
  /**
   * The ids of the domains alive now, as the control domain lists them (xl
   * list); null when it cannot tell. A fuzzing run asks only when an answer
   * disagrees with its model: a toolstack may have started or ended domains
   * under it (tonight's guests start while dom0 runs its tests).
   */
  domains?(): Promise<number[] | null>;
  close(): void;
}

/** The backend cannot be used here (no library, no hypervisor): a user's problem, printed without a stack trace. */
export class BackendUnavailable extends Error {
  constructor(message: string, readonly hint: string) {
    super(message);
    this.name = 'BackendUnavailable';
  }
}
