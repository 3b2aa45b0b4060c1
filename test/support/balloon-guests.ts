/**
 * A simulated host with the two kinds of balloon guest the suites test: a
 * mainline kernel (sysfs; 512 MiB, maxmem 640) and a XenLinux 2.6.18 one
 * (/proc/xen/balloon; 512 MiB), both started with `xl create`.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SimHost } from '../../scripts/simhost/host.js';

export function hostWithBalloonGuests(work: string, names: { sysfs: string; proc: string }): SimHost {
  // User nobody must reach the files, so that what refuses it is their mode, as on a real machine.
  chmodSync(work, 0o755);
  const host = SimHost.create(join(work, 'm'), { runnerUnit: null });
  const configs: Record<string, string> = {
    [names.sysfs]: 'memory = 512\nmaxmem = 640\nkernel = "/boot/vmlinuz-6.1.0-18-amd64"\n',
    [names.proc]: 'memory = 512\nkernel = "/boot/vmlinuz-2.6.18-xen"\n',
  };
  for (const [vm, rest] of Object.entries(configs)) {
    const cfg = join(work, `${vm}.cfg`);
    writeFileSync(cfg, `name = "${vm}"\ntype = "pv"\n${rest}`);
    const r = spawnSync('xl', ['create', cfg], { env: host.env(), encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
  }
  return host;
}
