/**
 * `xentest demo`: a whole night on the simulated Xen host with nothing to set
 * up. A Xen-like tree and two small test suites are generated and served
 * from 127.0.0.1; the real agent fetches the tree, builds it with make,
 * installs it, arms GRUB and "reboots"; at boot it starts dom0's runner and
 * two guests (xl create), every domain fetches, builds and runs its tests,
 * and dom0 collects the results.
 *
 * The suites:
 *  sieve     a C program built with make: counts the primes below 10^6 and
 *            checks the count (78498), logging into log_dir
 *  settime   the paper's DOM0_SETTIME example: setting the wall clock is a
 *            control-domain operation, so it must fail in a guest
 *            (`unprivileged = fail`). Here the program asks what a domain
 *            knows of its privilege, /proc/xen/capabilities ("control_d" in
 *            dom0), since the simulated host has no hypervisor to refuse it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NightLab, TarballServer } from './lab.js';

export const DEMO_GUESTS = ['vm1', 'vm2'];

const SIEVE_C = `/* Count the primes below N with a sieve of Eratosthenes and check the count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long expected = argc > 2 ? atol(argv[2]) : 78498;
    char *composite = calloc(n, 1);
    long count = 0;
    struct timespec t0, t1;

    if (!composite) { perror("calloc"); return 2; }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 2; i < n; i++) {
        if (composite[i]) continue;
        count++;
        for (long j = i * i; j < n; j += i) composite[j] = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("primes below %ld: %ld (expected %ld) in %.1f ms\\n", n, count, expected,
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    free(composite);
    return count == expected ? 0 : 1;
}
`;

const SETTIME_C = `/*
 * DOM0_SETTIME needs the control domain. A domain learns whether it is one
 * from /proc/xen/capabilities ("control_d"); anywhere else the operation is
 * refused with EPERM, which is what this test expects in a guest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    const char *root = getenv("XENTEST_ROOT");
    char path[4096], caps[256] = "";
    FILE *f;

    snprintf(path, sizeof path, "%s/proc/xen/capabilities", root ? root : "");
    f = fopen(path, "r");
    if (f) {
        if (!fgets(caps, sizeof caps, f)) caps[0] = 0;
        fclose(f);
    }
    if (!strstr(caps, "control_d")) {
        fprintf(stderr, "DOM0_SETTIME: %s (not the control domain)\\n", strerror(EPERM));
        return 1;
    }
    printf("DOM0_SETTIME: wall clock set\\n");
    return 0;
}
`;

function makefile(program: string): string {
  return `CFLAGS ?= -O2 -Wall\n\nall: ${program}\n\n${program}: ${program}.c\n\t$(CC) $(CFLAGS) -o $@ $<\n\nclean:\n\trm -f ${program}\n`;
}

/** A test suite as a .tar.gz with one top-level directory, as suites are published. */
function writeSuite(file: string, top: string, files: Record<string, { text: string; mode?: number }>): void {
  const tmp = mkdtempSync(join(tmpdir(), 'xentest-suite-'));
  try {
    mkdirSync(join(tmp, top));
    for (const [name, f] of Object.entries(files)) writeFileSync(join(tmp, top, name), f.text, { mode: f.mode ?? 0o644 });
    execFileSync('tar', ['-czf', file, '--owner=0', '--group=0', '--numeric-owner', '-C', tmp, top], { stdio: 'pipe' });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The two suites, served by `server`, and the hypercall fuzzer, as test sections. */
export function writeDemoSuites(server: TarballServer): Record<string, Record<string, string>> {
  mkdirSync(join(server.dir, 'suites'), { recursive: true });
  writeSuite(join(server.dir, 'suites', 'sieve-1.0.tar.gz'), 'sieve-1.0', {
    'sieve.c': { text: SIEVE_C },
    Makefile: { text: makefile('sieve') },
    run: { text: '#!/bin/sh\nset -e\nmkdir -p ../logs/sieve\n./sieve 1000000 78498 | tee ../logs/sieve/result.txt\n', mode: 0o755 },
  });
  writeSuite(join(server.dir, 'suites', 'settime-1.0.tar.gz'), 'settime-1.0', {
    'settime.c': { text: SETTIME_C },
    Makefile: { text: makefile('settime') },
  });
  return {
    sieve: {
      source_url: server.url('suites/sieve-1.0.tar.gz'),
      test_dir: 'sieve-1.0',
      build_command: 'make',
      run_command: './run',
      log_dir: 'logs/sieve',
      timeout: '5m',
    },
    settime: {
      source_url: server.url('suites/settime-1.0.tar.gz'),
      test_dir: 'settime-1.0',
      build_command: 'make',
      run_command: './settime',
      unprivileged: 'fail',
      timeout: '5m',
    },
    // Installed with xentest, nothing to fetch: a new seed each night, printed first in its log.
    xenfc: {
      run_command: 'xenfc -q -l 200000',
      timeout: '5m',
    },
    // Installed with xentest too: the balloon scenarios on each guest's interface (vm2 is a XenLinux guest:
    // /proc/xen/balloon) and, in dom0, on sysfs and through xl mem-set.
    balloon: {
      run_command: 'xentest balloon --floor 64m --rapid 10',
      timeout: '5m',
    },
  };
}

export interface DemoNight {
  lab: NightLab;
  server: TarballServer;
}

/** Everything the demo night needs, in `dir`: served tree and suites, the machine, the control file. */
export async function setUpDemo(dir: string): Promise<DemoNight> {
  mkdirSync(join(dir, 'www'), { recursive: true });
  const server = new TarballServer(join(dir, 'www'));
  await server.start();
  const lab = new NightLab(dir, server, { guests: DEMO_GUESTS, guestKernels: { vm2: '/boot/vmlinuz-2.6.18-xen' }, tests: writeDemoSuites(server), domainTimeoutSeconds: 300 });
  return { lab, server };
}
