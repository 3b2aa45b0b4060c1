/**
 * fetch: get tonight's trees. If they are exactly what the last good night
 * built (same tarball digest, same commit, same directory content), the night
 * neither builds nor reboots: what it does instead is the control file's
 * on_unchanged (rebuild, or skip the build).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fetchTree, FetchError, probeIdentity, type FetchOptions } from '../../../shared/fetch/index.js';
import { terminalProgress } from '../../../shared/fetch/progress.js';
import { buildStepNames, DOMAIN_STEP_NAMES, type Night } from '../night.js';
import type { Step, StepResult } from '../runner.js';

/** A tarball of a tree holds one top directory (xen-4.19.0/); the tree is that directory. */
function treeTop(dir: string): string {
  const entries = readdirSync(dir, { withFileTypes: true });
  const only = entries[0];
  return entries.length === 1 && only?.isDirectory() ? join(dir, only.name) : dir;
}

export function fetchStep(night: Night): Step {
  return {
    name: 'fetch',
    async run(ctx): Promise<StepResult> {
      const prefs = night.control.preferences;
      const options: FetchOptions = {
        cacheDir: night.files.cache,
        maxBytes: prefs.fetchLimitBytes,
        log: (line) => ctx.log(line),
        progress: terminalProgress(process.stderr),
      };
      const trees = [{ key: 'xen', location: prefs.xenTree }, ...(prefs.linuxTree ? [{ key: 'linux', location: prefs.linuxTree }] : [])];
      try {
        const identities: Record<string, string> = {};
        const probed: Record<string, { downloaded: boolean; description?: string }> = {};
        for (const t of trees) {
          const p = await probeIdentity(t.location.source, options);
          identities[t.key] = p.identity;
          probed[t.key] = p;
        }
        ctx.checkpoint('middle');
        const last = night.lastGood;
        const unchanged =
          last !== undefined && last.trees.xen === identities.xen && (last.trees.linux ?? undefined) === (identities.linux ?? undefined);
        if (unchanged && prefs.onUnchanged !== 'rebuild') {
          const reason = `unchanged since night ${last.night} (${identities.xen})`;
          // retest: no build, no reboot, the domains test the running build again; skip: nothing at all.
          const skipped = [...buildStepNames(!!prefs.linuxTree), 'bootloader', 'reboot', ...(prefs.onUnchanged === 'skip' ? DOMAIN_STEP_NAMES : [])];
          return {
            status: 'GOOD',
            reason,
            // Tonight tests what the last good night booted: its hypervisor is tonight's build.
            outputs: { unchanged: true, identities, running: { version: last.xen.version, buildId: last.xen.buildId ?? null, night: last.night } },
            skip: { steps: skipped, reason: `${reason}: nothing to build` },
          };
        }
        const dirs: Record<string, string> = {};
        const described: string[] = [];
        for (const t of trees) {
          const got = await fetchTree(t.location.source, join(night.files.work, t.key), options);
          identities[t.key] = got.identity;
          dirs[t.key] = t.location.source.kind === 'tarball' ? treeTop(got.dir) : got.dir;
          const probe = probed[t.key];
          described.push(`${t.location.name}: ${probe?.downloaded && probe.description ? probe.description : got.description}`);
        }
        return { status: 'GOOD', reason: described.join('; '), outputs: { unchanged: false, identities, dirs } };
      } catch (e) {
        if (e instanceof FetchError) return { status: 'ERROR', reason: e.message };
        throw e;
      }
    },
  };
}
