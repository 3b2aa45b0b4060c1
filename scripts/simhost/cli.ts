/**
 * The simulated machine's commands, one entry point: D/bin/<command> runs
 * `node cli.js <command> args...` with SIMHOST_DIR naming the machine.
 * Every command but the internal `boot` and `domain-runner` is logged to D/log/commands.jsonl.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFaults, runBoot, trackedProcesses } from './boot.js';
import { appendJsonLine } from './fsutil.js';
import { grubEditenvMain, grubEntryToolMain, grubMkconfigMain } from './grubtools.js';
import { layoutFromEnv, readMachine, type SimLayout } from './layout.js';
import { superviseRunner } from './runners.js';
import type { BootRecord, CommandRecord } from './types.js';
import { xlMain, type Io } from './xl.js';
import { xenstoreReadMain } from './xenstore.js';

const CLI = fileURLToPath(import.meta.url);

const io: Io = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
};

const REBOOT_FAILURE =
  "Failed to start reboot.target: Transaction for reboot.target/start is destructive (emergency.target has 'start' job queued, but 'stop' is included in transaction).\n" +
  "See system logs and 'systemctl status reboot.target' for details.\n";

/** The reboot request: a detached boot process takes over (it must outlive us and our caller), and we return at once. */
function requestReboot(layout: SimLayout): number {
  if (readFaults(layout).rebootFails) {
    io.err(REBOOT_FAILURE);
    return 1;
  }
  // A reboot already under way (its boot process still shutting down) swallows a second request, as systemd does.
  if (trackedProcesses(layout).some((p) => p.role === 'boot' && p.boot === null)) return 0;
  const machine = readMachine(layout);
  fs.mkdirSync(layout.logDir, { recursive: true });
  const log = fs.openSync(path.join(layout.logDir, 'boot.log'), 'a');
  const child = spawn(
    machine.node,
    [CLI, 'boot', '--cause=reboot', `--caller-parent=${process.ppid}`, `--requested-at=${new Date().toISOString()}`],
    { detached: true, stdio: ['ignore', log, log], env: { ...process.env, SIMHOST_DIR: layout.dir }, cwd: '/' },
  );
  child.unref();
  fs.closeSync(log);
  return 0;
}

function systemctlMain(layout: SimLayout, args: string[]): number {
  const verbs = args.filter((a) => !a.startsWith('-'));
  if (verbs[0] === 'reboot' && verbs.length === 1) return requestReboot(layout);
  io.err(`systemctl: only "systemctl reboot" is simulated on this simulated Xen host (asked: systemctl ${args.join(' ')})\n`);
  return 1;
}

function option(args: string[], name: string): string | undefined {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}

async function bootMain(args: string[]): Promise<number> {
  const layout = layoutFromEnv();
  const n = option(args, 'n');
  const caller = option(args, 'caller-parent');
  const record: BootRecord = await runBoot(layout, {
    cause: (option(args, 'cause') ?? 'reboot') as BootRecord['cause'],
    requestedAt: option(args, 'requested-at') ?? new Date().toISOString(),
    shutdown: !args.includes('--no-shutdown'),
    ...(caller ? { callerParent: Number(caller) } : {}),
    ...(n !== undefined ? { n: Number(n) } : {}),
    runResume: !args.includes('--no-resume'),
  });
  process.stdout.write(
    `${new Date().toISOString()} boot ${record.n} (${record.cause}): ${record.down ? 'DOWN' : record.entry}${record.fellBack ? ` [fell back: ${record.reason}]` : ''}` +
      `${record.resume ? `; resume ${record.resume.skipped ? `skipped (${record.resume.skipped})` : `exit ${record.resume.exitStatus ?? record.resume.signal}`}` : ''}\n`,
  );
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === 'boot') return bootMain(args);
  if (command === 'domain-runner') {
    return superviseRunner(layoutFromEnv(), Number(option(args, 'boot')), Number(option(args, 'id')), option(args, 'name') ?? '');
  }
  const layout = layoutFromEnv();
  const started = Date.now();
  const at = new Date(started).toISOString();
  const log = (exitStatus: number | null, extra: Partial<CommandRecord> = {}): void => {
    try {
      appendJsonLine(layout.commands, { argv: [command ?? '', ...args], exitStatus, at, ms: Date.now() - started, ...extra } satisfies CommandRecord);
    } catch (e) {
      // Another user than the machine's (a test's unprivileged caller) cannot write its log: the command still answers.
      if ((e as NodeJS.ErrnoException).code !== 'EACCES') throw e;
    }
  };
  let status: number | 'hang';
  switch (command) {
    case 'xl':
      status = xlMain(layout, args, io, (sub) => readFaults(layout).xl?.[sub], () => log(null, { hung: true }));
      break;
    case 'update-grub':
      status = grubMkconfigMain(layout, ['-o', '/boot/grub/grub.cfg', ...args], io, 'update-grub');
      break;
    case 'grub-mkconfig':
      status = grubMkconfigMain(layout, args, io);
      break;
    case 'grub-editenv':
      status = grubEditenvMain(layout, args, io);
      break;
    case 'grub-reboot':
    case 'grub-set-default':
      status = grubEntryToolMain(layout, command, args, io);
      break;
    case 'reboot':
      status = requestReboot(layout);
      break;
    case 'systemctl':
      status = systemctlMain(layout, args);
      break;
    case 'xenstore-read':
      status = xenstoreReadMain(layout, args, io);
      break;
    default:
      io.err(`simhost: unknown command ${command ?? '(none)'}\n`);
      status = 127;
  }
  if (status === 'hang') {
    // Hung like a stuck hypercall: only a signal ends it.
    setInterval(() => undefined, 1 << 30);
    return new Promise<number>(() => undefined);
  }
  log(status);
  return status;
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (e: unknown) => {
    process.stderr.write(`simhost: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 70;
  },
);
