/**
 * reboot: boot into the new build and make sure it is the one running.
 *
 * The step spans the reboot: it asks for the reboot and the agent goes down
 * with the machine; at boot the resume unit enters the step again, and
 * `xl info` tells whether the hypervisor running now is the build installed
 * tonight. If it is, that build becomes the default boot entry and the last
 * good build. If the machine rebooted but runs something else, GRUB fell back
 * to the last good entry: the night is a boot failure (ABORT) and the machine
 * is left as it was, usable. The boot id (which changes at every boot) tells
 * "rebooted and fell back" from "never got to reboot" (a kill or power cut
 * before the reboot command), so an interrupted night reboots instead of
 * calling it a failure.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describeResult, lastOutputLine, shellQuote } from '../../../shared/process/run.js';
import { describeXen, parseXlInfo, runningXenIdentity, sameXen, type XenIdentity } from '../../xen/identity.js';
import type { JsonValue } from '../journal.js';
import { writeLastGood, type Night } from '../night.js';
import type { Step, StepContext, StepResult } from '../runner.js';

const XL_TIMEOUT_MS = 60_000;
const REBOOT_COMMAND_TIMEOUT_MS = 120_000;

export function currentBootId(bootIdFile: string): string {
  return existsSync(bootIdFile) ? readFileSync(bootIdFile, 'utf8').trim() : 'unknown';
}

type XlInfo = { ok: true; identity: XenIdentity; info: Map<string, string> } | { ok: false; error: string };

async function xlInfo(ctx: StepContext): Promise<XlInfo> {
  const r = await ctx.run('xl info', { cwd: '/', timeoutMs: XL_TIMEOUT_MS });
  if (r.exitStatus !== 0 || r.timedOut) {
    return { ok: false, error: `xl info ${describeResult(r)}: ${lastOutputLine(r)}` };
  }
  // The log file holds the whole output; xl info is small, its tail is all of it.
  const info = parseXlInfo(r.tail);
  return { ok: true, identity: runningXenIdentity(info), info };
}

/** A build that falls back this many times in a row did not boot. */
export const BOOT_TRIES = 2;

export function rebootStep(night: Night): Step {
  return {
    name: 'reboot',
    async run(ctx): Promise<StepResult> {
      const expected = night.journal.output<JsonValue>('install.xen', 'identity') as unknown as XenIdentity;
      const entry = night.journal.output<string>('bootloader', 'entry');
      const title = night.journal.output<string>('bootloader', 'title');
      const bootId = currentBootId(night.paths.bootIdFile);
      const out = ctx.record.outputs;
      const release = night.control.preferences.linuxTree ? night.journal.output<string>('install.linux', 'release') : undefined;
      const running = await xlInfo(ctx);
      const newBuildRunning =
        running.ok && sameXen(expected, running.identity) && (release === undefined || running.info.get('release') === release);

      if (running.ok && newBuildRunning) {
        ctx.saveOutputs({ verified: true });
        const now = describeXen(running.identity);
        ctx.statusOnce('GOOD', 'reboot.verify', now);
        ctx.checkpoint('verified');
        const promoted = await ctx.run(`grub-set-default ${shellQuote(entry)}`, { cwd: '/', timeoutMs: XL_TIMEOUT_MS });
        const fetched = night.journal.output<{ [k: string]: string }>('fetch', 'identities');
        writeLastGood(night.files.lastGood, {
          night: night.id,
          at: new Date().toISOString(),
          trees: { xen: fetched.xen as string, ...(fetched.linux ? { linux: fetched.linux } : {}) },
          xen: running.identity,
          image: night.journal.output<string>('install.xen', 'image'),
          entry,
        });
        const warning = promoted.exitStatus === 0 ? '' : `; grub-set-default ${describeResult(promoted)}, so the default entry is still the old build`;
        return {
          status: promoted.exitStatus === 0 ? 'GOOD' : 'WARN',
          reason: `running ${now}${warning}`,
          fields: [
            ['kernel', running.info.get('release') ?? 'UNKNOWN'],
            ['xen_version', running.identity.version],
            ...(running.identity.buildId ? ([['xen_build_id', running.identity.buildId]] as Array<[string, string]>) : []),
          ],
        };
      }

      const rebootedSinceRequest = typeof out.requestedInBoot === 'string' && out.requestedInBoot !== bootId;
      if (rebootedSinceRequest && out.verified !== true) {
        // Back on something else. A fallback, or a power cut after a boot we never got to see:
        // only a second fallback in a row settles it.
        const fallbacks = Number(out.fallbacks ?? 0) + 1;
        const newKernel = release ? ` with Linux ${release}` : '';
        const why = running.ok
          ? `the machine came back on ${describeXen(running.identity)} with Linux ${running.info.get('release') ?? '?'}, ` +
            `not the new ${describeXen(expected)}${newKernel}`
          : `after the reboot ${running.error}: no hypervisor is running`;
        if (fallbacks >= BOOT_TRIES) {
          const reason = `${why}: the new build did not boot ${fallbacks} times and GRUB fell back to the last good entry`;
          ctx.statusOnce('ABORT', 'reboot.verify', reason);
          return { status: 'ABORT', reason };
        }
        ctx.saveOutputs({ fallbacks });
        ctx.statusOnce('WARN', 'reboot.retry', `${why}; booting the new build once more`);
      }
      // Not rebooted yet, or rebooting again: a retry, or the new build ran before an interruption.
      if (rebootedSinceRequest) {
        const armed = await ctx.run(`grub-reboot ${shellQuote(entry)}`, { cwd: '/', timeoutMs: XL_TIMEOUT_MS });
        if (armed.exitStatus !== 0) return { status: 'ERROR', reason: `grub-reboot ${describeResult(armed)}` };
      }
      ctx.statusOnce('GOOD', 'reboot.start', `rebooting into ${title}`);
      ctx.saveOutputs({ requestedInBoot: bootId, verified: false });
      ctx.checkpoint('middle');
      const command = night.control.preferences.rebootCommand.value;
      ctx.log(`${command} (next boot: ${title})`);
      const r = await ctx.run(command, { cwd: '/', timeoutMs: REBOOT_COMMAND_TIMEOUT_MS });
      if (r.exitStatus !== 0 || r.timedOut) {
        // Nothing rebooted: take the one-shot entry back so a later reboot boots the last good build.
        await ctx.run(`grub-editenv ${shellQuote(night.paths.grubEnv)} unset next_entry`, { cwd: '/', timeoutMs: XL_TIMEOUT_MS });
        ctx.saveOutputs({ requestedInBoot: null });
        return { status: 'ERROR', reason: `${command} ${describeResult(r)}: ${lastOutputLine(r)}` };
      }
      return { status: 'GOOD', then: 'going-down' };
    },
  };
}
