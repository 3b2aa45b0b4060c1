/**
 * Processes of the simulated machine, seen through /proc: whether one still
 * runs, and killing one with everything it started, the way a reboot or a
 * power cut ends every process of a real machine (systemd kills the whole
 * cgroup, so children that moved to process groups of their own die too).
 */
import * as fs from 'node:fs';
import { processAlive, processStartTime, readProcStat, type ProcStat } from '../../shared/process/procstat.js';

export { processAlive, processStartTime };

function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readProcStat(Number(name));
    if (st) out.push(st);
  }
  return out;
}

/** pid and all its descendants, parents first. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const st of allStats()) {
    const list = children.get(st.ppid) ?? [];
    list.push(st.pid);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    if (out.includes(p)) continue;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** This process and its ancestors: never to be killed by the simulation, whatever a stale file says. */
function protectedPids(): Set<number> {
  const out = new Set<number>([1, process.pid]);
  let p = process.ppid;
  for (let i = 0; i < 64 && p > 1 && !out.has(p); i++) {
    out.add(p);
    p = readProcStat(p)?.ppid ?? 0;
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone already.
  }
}

/**
 * SIGKILL pid and its descendants. They are stopped first, so none can start
 * another process or be reparented out of reach between the walk and the kill.
 * Returns the pids signalled.
 */
export function killProcessTree(pid: number): number[] {
  if (!processAlive(pid)) return [];
  const keep = protectedPids();
  const seen = new Set<number>();
  const killed: number[] = [];
  // Walk, stop, walk again: whatever was forked during the first walk is caught by the second.
  for (let round = 0; round < 3; round++) {
    const tree = processTree(pid).filter((p) => !keep.has(p) && !seen.has(p));
    if (tree.length === 0) break;
    for (const p of tree) {
      signal(p, 'SIGSTOP');
      seen.add(p);
    }
  }
  for (const p of seen) {
    signal(p, 'SIGKILL');
    killed.push(p);
  }
  return killed;
}

/**
 * Every process that belongs to the machine in `dir` by its environment
 * (XENTEST_ROOT or SIMHOST_DIR inside it): also those the machine's own
 * processes started and left behind in groups of their own, such as the
 * agent's profilers, which a power cut ends as surely as the rest.
 */
export function machineProcesses(dir: string): number[] {
  const inside = (v: string | undefined): boolean => v !== undefined && (v === dir || v.startsWith(dir + '/'));
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let env: string;
    try {
      env = fs.readFileSync(`/proc/${name}/environ`, 'latin1');
    } catch {
      continue; // gone, or another user's
    }
    const vars = new Map(env.split('\0').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const));
    if (inside(vars.get('XENTEST_ROOT')) || inside(vars.get('SIMHOST_DIR'))) out.push(Number(name));
  }
  const keep = protectedPids();
  return out.filter((p) => !keep.has(p));
}

