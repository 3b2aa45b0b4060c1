/**
 * bootloader: make the next boot, and only the next one, boot the new build.
 * GRUB: regenerate grub.cfg (update-grub), find the entry that boots the new
 * hypervisor image (with the new dom0 kernel if one was built), and
 * grub-reboot it. The default entry stays the last good build, so if the new
 * one does not come up the machine falls back to it by itself.
 */
import { readFileSync } from 'node:fs';
import { describeResult, lastOutputLine, shellQuote } from '../../../shared/process/run.js';
import { findXenEntry, parseGrubMenu } from '../../boot/grubcfg.js';
import { readGrubEnv } from '../../boot/grubenv.js';
import type { Night } from '../night.js';
import type { Step, StepContext, StepResult } from '../runner.js';

const GRUB_TIMEOUT_MS = 120_000;

async function grub(ctx: StepContext, command: string): Promise<string | undefined> {
  ctx.log(command);
  const r = await ctx.run(command, { cwd: '/', timeoutMs: GRUB_TIMEOUT_MS });
  return r.exitStatus === 0 ? undefined : `${command} ${describeResult(r)}: ${lastOutputLine(r)}`;
}

export function bootloaderStep(night: Night): Step {
  return {
    name: 'bootloader',
    async run(ctx): Promise<StepResult> {
      const image = night.journal.output<string>('install.xen', 'image');
      // With a new dom0 kernel tonight, the entry must boot both.
      const kernel = night.control.preferences.linuxTree ? night.journal.output<string>('install.linux', 'kernel') : undefined;
      const failed = await grub(ctx, 'update-grub');
      if (failed) return { status: 'ERROR', reason: failed };
      ctx.checkpoint('middle');
      const entries = parseGrubMenu(readFileSync(night.paths.grubCfg, 'utf8'));
      const entry = findXenEntry(entries, image, kernel);
      if (!entry) {
        const what = kernel ? `${image} with ${kernel}` : image;
        return { status: 'FAIL', reason: `no entry in ${night.paths.grubCfg} boots ${what} after update-grub` };
      }
      const fallback = readGrubEnv(night.paths.grubEnv).get('saved_entry') ?? entries[0]?.path ?? '0';
      const armFailed = await grub(ctx, `grub-reboot ${shellQuote(entry.path)}`);
      if (armFailed) return { status: 'ERROR', reason: armFailed };
      const armed = readGrubEnv(night.paths.grubEnv).get('next_entry');
      if (armed !== entry.path) {
        return { status: 'ERROR', reason: `grub-reboot did not set next_entry in ${night.paths.grubEnv} (it is ${armed ?? 'unset'})` };
      }
      return {
        status: 'GOOD',
        reason: `next boot: ${entry.title}; fallback: ${fallback}`,
        outputs: { entry: entry.path, title: entry.title, fallback },
      };
    },
  };
}
