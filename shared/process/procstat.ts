/**
 * /proc/PID/stat, read once for everyone who asks about a process: its state,
 * parent, process group and start time. A pid alone does not name a process
 * (pids are reused); the pid with its start time does.
 */
import { readFileSync } from 'node:fs';

export interface ProcStat {
  readonly pid: number;
  /** Field 3: R, S, D, Z (zombie), X (dead), ... */
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  /** Field 22, in clock ticks since boot. */
  readonly startTime: string;
  /** Fields 3 onwards (fields[0] is the state). */
  readonly fields: readonly string[];
}

export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // Field 2 (the command name) is in parentheses and may contain anything, ")" included.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).trim().split(' ');
  return {
    pid,
    state: fields[0] ?? '',
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    startTime: fields[19] ?? '',
    fields,
  };
}

function finished(st: ProcStat): boolean {
  return st.state === 'Z' || st.state === 'X';
}

/** Running (a zombie has finished: it only waits for its parent to collect its status). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const st = readProcStat(pid);
  return st !== undefined && !finished(st);
}

/** The start time of a running process; undefined if there is none, or it has finished. */
export function processStartTime(pid: number): string | undefined {
  const st = readProcStat(pid);
  return st && !finished(st) ? st.startTime : undefined;
}
