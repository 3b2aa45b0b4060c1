/**
 * The domctl hypercall as the fuzzer sends it: numbers and names from Xen's
 * public headers (xen/include/public/{xen,domctl,errno}.h) and the byte layout
 * of struct xen_domctl. Every backend speaks these bytes, so the real
 * hypervisor and the simulated one see exactly the same call.
 */

export const HYPERVISOR_DOMCTL = 36;

/** struct xen_domctl: cmd u32 @0, interface_version u32 @4, domain u16 @8, _pad[3] @10, union u (128 bytes) @16. */
export const DOMCTL_SIZE = 144;
export const OFF_CMD = 0;
export const OFF_VERSION = 4;
export const OFF_DOMAIN = 8;
export const OFF_U = 16;

/** struct xen_domctl_createdomain (interface 0x15 and later), offsets inside u. */
export const CREATE = {
  ssidref: 0,
  /** xen_domain_handle_t: 16 bytes. */
  handle: 4,
  flags: 20,
  iommuOpts: 24,
  maxVcpus: 28,
  maxEvtchnPort: 32,
  maxGrantFrames: 36,
  maxMaptrackFrames: 40,
  grantOpts: 44,
  vmtraceSize: 48,
  cpupoolId: 52,
  /** struct xen_arch_domainconfig (x86): emulation_flags u32, misc_flags u32. */
  archEmulationFlags: 56,
  archMiscFlags: 60,
} as const;

/** XEN_DOMCTL_CDF_* (domctl.h). */
export const CDF = {
  hvm: 1 << 0,
  hap: 1 << 1,
  s3Integrity: 1 << 2,
  oosOff: 1 << 3,
  xsDomain: 1 << 4,
  iommu: 1 << 5,
  nestedVirt: 1 << 6,
  vpmu: 1 << 7,
} as const;
/** Every flag 4.17 knows; any other bit is refused with EINVAL. */
export const CDF_KNOWN = 0xff;

export const CMD = {
  createdomain: 1,
  destroydomain: 2,
  pausedomain: 3,
  unpausedomain: 4,
  getdomaininfo: 5,
} as const;
export type CommandName = keyof typeof CMD;
export const COMMAND_NAMES: readonly CommandName[] = ['createdomain', 'destroydomain', 'pausedomain', 'unpausedomain', 'getdomaininfo'];

export function commandName(cmd: number): CommandName | undefined {
  return cmd >= 1 && cmd <= 5 ? COMMAND_NAMES[cmd - 1] : undefined;
}

/**
 * Every domctl number a Xen release up to 4.22 defines or has retired lies in
 * 1..127. A "random command" is drawn outside that range, so it is unknown to
 * every Xen and the model can say what it must return; a random number that
 * landed on a real command (max_mem, shadow_op, ...) would run it with random
 * data against a live domain.
 */
export const DEFINED_COMMANDS_END = 128;

/** Reserved domain ids (xen.h). */
export const DOMID = {
  firstReserved: 0x7ff0,
  self: 0x7ff0,
  io: 0x7ff1,
  xen: 0x7ff2,
  cow: 0x7ff3,
  invalid: 0x7ff4,
  idle: 0x7fff,
  /** The largest id a guest can have. */
  maxGuest: 0x7fef,
  allOnes: 0xffff,
} as const;

export const ERRNO = {
  EPERM: 1,
  ESRCH: 3,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EEXIST: 17,
  EINVAL: 22,
  ENOSYS: 38,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
} as const;

const ERRNO_NAMES = new Map<number, string>(Object.entries(ERRNO).map(([k, v]) => [v, k]));

/** "ESRCH" for 3; "" for 0 and numbers without a name here. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(Math.abs(errno)) ?? '';
}

/** XEN_DOMCTL_INTERFACE_VERSION by Xen release (xen-facts.md: 4.17 = 0x15, 4.18 = 0x16, 4.19-4.21 = 0x17, 4.22 = 0x18). */
export function domctlInterfaceVersion(major: number, minor: number): number {
  // 4.16 (0x14) laid out u.createdomain differently (no grant_opts); the model starts at 4.17.
  if (major !== 4 || minor < 17) {
    throw new Error(`Xen ${major}.${minor} is older than any domctl interface this fuzzer models (4.17 and later)`);
  }
  if (minor === 17) return 0x15;
  if (minor === 18) return 0x16;
  if (minor <= 21) return 0x17;
  if (minor === 22) return 0x18;
  throw new Error(`Xen 4.${minor} is newer than the domctl interface versions this fuzzer knows (up to 4.22: 0x18); add it to agent/fuzz/domctl.ts`);
}

/** A domctl the generator made, with the fields it set; everything else in the 144 bytes is zero. */
export interface DomctlCall {
  cmd: number;
  interfaceVersion: number;
  domain: number;
  /** Only for createdomain: the fields of u.createdomain. */
  create?: CreateDomainFields;
  /** Send a pointer the hypervisor cannot read (NULL): the copy from the guest fails. */
  badBuffer: boolean;
}

export interface CreateDomainFields {
  ssidref: number;
  flags: number;
  iommuOpts: number;
  maxVcpus: number;
  maxEvtchnPort: number;
  maxGrantFrames: number;
  maxMaptrackFrames: number;
  grantOpts: number;
}

/** Write the call into buf (at least DOMCTL_SIZE bytes), zeroing what it does not set. */
export function encodeDomctl(call: DomctlCall, buf: Uint8Array, view: DataView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)): void {
  buf.fill(0, 0, DOMCTL_SIZE);
  view.setUint32(OFF_CMD, call.cmd >>> 0, true);
  view.setUint32(OFF_VERSION, call.interfaceVersion >>> 0, true);
  view.setUint16(OFF_DOMAIN, call.domain & 0xffff, true);
  const c = call.create;
  if (c) {
    view.setUint32(OFF_U + CREATE.ssidref, c.ssidref >>> 0, true);
    // The handle (a UUID to the toolstack) marks a domain as the fuzzer's: "xenfc" then zeros.
    buf.set(XENFC_HANDLE, OFF_U + CREATE.handle);
    view.setUint32(OFF_U + CREATE.flags, c.flags >>> 0, true);
    view.setUint32(OFF_U + CREATE.iommuOpts, c.iommuOpts >>> 0, true);
    view.setUint32(OFF_U + CREATE.maxVcpus, c.maxVcpus >>> 0, true);
    view.setUint32(OFF_U + CREATE.maxEvtchnPort, c.maxEvtchnPort >>> 0, true);
    view.setInt32(OFF_U + CREATE.maxGrantFrames, c.maxGrantFrames | 0, true);
    view.setInt32(OFF_U + CREATE.maxMaptrackFrames, c.maxMaptrackFrames | 0, true);
    view.setUint32(OFF_U + CREATE.grantOpts, c.grantOpts >>> 0, true);
  }
}

export const XENFC_HANDLE = new Uint8Array([0x78, 0x65, 0x6e, 0x66, 0x63, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
