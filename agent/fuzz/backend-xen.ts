/**
 * The `xen` backend: real domctl hypercalls through Xen's own libxencall
 * (Debian's libxencall1), loaded with koffi.
 *
 * Why libxencall and not our own ioctl: a hypercall's argument must be in
 * memory the hypervisor can read at any moment. Linux >= 4.18 hands such
 * buffers out by mmap(MAP_SHARED) of /dev/xen/hypercall, older kernels need
 * locked pages; libxencall's xencall_alloc_buffer does whichever the kernel
 * supports, and xencall1 issues IOCTL_PRIVCMD_HYPERCALL
 * (struct privcmd_hypercall { __u64 op; __u64 arg[5]; }) on /dev/xen/privcmd.
 * A failed hypercall comes back as -1 with errno set.
 */
import koffi from 'koffi';
import { BackendUnavailable, type HypercallBackend } from './backend.js';
import { DOMCTL_SIZE, HYPERVISOR_DOMCTL } from './domctl.js';

const ERRNO_NAMES: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 6: 'ENXIO', 13: 'EACCES', 19: 'ENODEV' };

interface XencallLib {
  open: (logger: null, flags: number) => unknown;
  close: (h: unknown) => number;
  alloc: (h: unknown, size: number) => unknown;
  free: (h: unknown, p: unknown) => void;
  call1: (h: unknown, op: number, arg: bigint) => number;
}

function loadLibrary(library: string): XencallLib {
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(library);
  } catch (e) {
    throw new BackendUnavailable(
      `cannot load ${library}: ${(e as Error).message}`,
      "install Debian's libxencall1 (apt-get install libxencall1), or use --backend sim",
    );
  }
  koffi.opaque('xencall_handle');
  return {
    open: lib.func('xencall_handle *xencall_open(void *logger, unsigned int open_flags)') as XencallLib['open'],
    close: lib.func('int xencall_close(xencall_handle *xcall)') as XencallLib['close'],
    alloc: lib.func('void *xencall_alloc_buffer(xencall_handle *xcall, size_t size)') as XencallLib['alloc'],
    free: lib.func('void xencall_free_buffer(xencall_handle *xcall, void *p)') as XencallLib['free'],
    call1: lib.func('int xencall1(xencall_handle *xcall, unsigned int op, uint64_t arg1)') as XencallLib['call1'],
  };
}

/** Is the library there to be loaded? (Not whether a hypervisor is.) */
export function xencallLibraryAvailable(library = 'libxencall.so.1'): boolean {
  try {
    koffi.load(library);
    return true;
  } catch {
    return false;
  }
}

export function openXenBackend(options: { library?: string } = {}): HypercallBackend {
  const library = options.library ?? 'libxencall.so.1';
  const x = loadLibrary(library);
  const handle = x.open(null, 0);
  if (handle === null) {
    const errno = koffi.errno();
    throw new BackendUnavailable(
      `libxencall cannot open the privileged command interface /dev/xen/privcmd (${ERRNO_NAMES[errno] ?? 'errno'} ${errno})`,
      'this is not a Xen domain, or the xen privcmd driver is not loaded (modprobe xen-privcmd; mount -t xenfs xenfs /proc/xen); run as root; or use --backend sim',
    );
  }
  const ptr = x.alloc(handle, DOMCTL_SIZE);
  if (ptr === null) {
    const errno = koffi.errno();
    x.close(handle);
    throw new BackendUnavailable(`libxencall cannot allocate a hypercall buffer (errno ${errno})`, 'check /dev/xen/hypercall and the locked-memory limit (ulimit -l)');
  }
  const native = new Uint8Array(koffi.view(ptr, DOMCTL_SIZE));
  const address = koffi.address(ptr);
  let open = true;
  return {
    name: 'xen',
    domctl(buf: Uint8Array, badBuffer: boolean): number {
      native.set(buf.subarray(0, DOMCTL_SIZE));
      const rc = x.call1(handle, HYPERVISOR_DOMCTL, badBuffer ? 0n : address);
      const errno = rc < 0 ? koffi.errno() : 0;
      // Xen copies the struct back on success (createdomain's new id, getdomaininfo's answer).
      buf.set(native);
      return rc < 0 ? -errno : 0;
    },
    close(): void {
      if (!open) return;
      open = false;
      x.free(handle, ptr);
      x.close(handle);
    },
  };
}
