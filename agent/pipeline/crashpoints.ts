/**
 * Fault injection for the crash tests: every step passes named checkpoints
 * (before it starts, after its START line, in the middle of its work, before
 * and after its END line).
 *
 *   XENTEST_CHECKPOINT_LOG=FILE   append each checkpoint's name to FILE
 *   XENTEST_CRASH_AT=NAME[#K]     SIGKILL this process at NAME (at its K-th
 *                                 occurrence in the log, counting across runs:
 *                                 a step entered again after a reboot passes
 *                                 its points again), exactly as `kill -9`
 *                                 would: children keep running
 *   XENTEST_CRASH_ONCE=FILE       crash only if FILE does not exist yet (it is
 *                                 created first), so a run that inherits the
 *                                 environment, e.g. across a reboot, gets past
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

export function checkpoint(name: string): void {
  const log = process.env.XENTEST_CHECKPOINT_LOG;
  if (log) appendFileSync(log, name + '\n');
  const target = process.env.XENTEST_CRASH_AT;
  if (!target) return;
  const [point, nth] = target.split('#');
  if (point !== name) return;
  if (nth !== undefined) {
    if (!log) throw new Error('XENTEST_CRASH_AT=NAME#K needs XENTEST_CHECKPOINT_LOG');
    const seen = readFileSync(log, 'utf8').split('\n').filter((l) => l === name).length;
    if (seen !== Number(nth)) return;
  }
  const once = process.env.XENTEST_CRASH_ONCE;
  if (once) {
    if (existsSync(once)) return;
    writeFileSync(once, target + '\n');
  }
  process.kill(process.pid, 'SIGKILL');
}
