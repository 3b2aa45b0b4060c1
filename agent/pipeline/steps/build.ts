/**
 * build.<tree> and install.<tree>: the control file's commands (or the
 * defaults) run in the fetched tree, each with the build timeout, in its own
 * process group, its output streamed to the step's log.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildRecipe } from '../../../shared/controlfile/model.js';
import { describeResult, lastOutputLine, type CmdResult } from '../../../shared/process/run.js';
import { builtXenIdentity, type XenIdentity } from '../../xen/identity.js';
import type { JsonValue } from '../journal.js';
import type { Night } from '../night.js';
import type { Step, StepContext, StepResult } from '../runner.js';

type Tree = 'xen' | 'linux';

function recipe(night: Night, tree: Tree): BuildRecipe {
  return tree === 'xen' ? night.control.preferences.xen : night.control.preferences.linux;
}

function treeDir(night: Night, tree: Tree): string {
  const dir = night.journal.output<{ [k: string]: string }>('fetch', 'dirs')[tree];
  if (dir === undefined) throw new Error(`bug: fetch recorded no ${tree} tree`);
  return dir;
}

function failure(what: string, r: CmdResult, logFile: string): StepResult {
  const last = lastOutputLine(r);
  return { status: 'FAIL', reason: `${what} ${describeResult(r)}${last ? `: ${last}` : ''} (log: ${logFile})` };
}

async function runIn(night: Night, ctx: StepContext, tree: Tree, command: string, env: NodeJS.ProcessEnv): Promise<CmdResult> {
  const cwd = treeDir(night, tree);
  ctx.log(`${command}  (in ${cwd})`);
  const r = await ctx.run(command, { cwd, env, timeoutMs: night.control.preferences.buildTimeoutSeconds * 1000 });
  ctx.checkpoint('middle');
  return r;
}

export function buildStep(night: Night, tree: Tree): Step {
  return {
    name: `build.${tree}`,
    async run(ctx) {
      const command = recipe(night, tree).build.value;
      const r = await runIn(night, ctx, tree, command, night.env);
      return r.exitStatus === 0 && !r.timedOut ? { status: 'GOOD', reason: `${command} (${describeResult(r)})` } : failure(command, r, ctx.logFile);
    },
  };
}

/**
 * Where a command installs to: the machine's root. Xen's makefiles honour
 * DESTDIR; Linux's `make install` honours INSTALL_PATH (the boot directory)
 * and `make modules_install` INSTALL_MOD_PATH.
 */
function installEnv(night: Night): NodeJS.ProcessEnv {
  if (night.paths.root === '/') return night.env;
  return { ...night.env, DESTDIR: night.paths.root, INSTALL_PATH: night.paths.bootDir, INSTALL_MOD_PATH: night.paths.root };
}

/** The release of a built kernel tree, as its own makefile says (`make -s kernelrelease`). */
async function kernelRelease(night: Night, ctx: StepContext): Promise<string | StepResult> {
  const r = await ctx.run('make -s kernelrelease', { cwd: treeDir(night, 'linux'), timeoutMs: 120_000 });
  const release = lastOutputLine(r);
  if (r.exitStatus !== 0 || !/^[\w.+-]+$/.test(release)) {
    return { status: 'FAIL', reason: `make -s kernelrelease ${describeResult(r)}${release ? `: ${release}` : ''}` };
  }
  return release;
}

export function installStep(night: Night, tree: Tree): Step {
  return {
    name: `install.${tree}`,
    async run(ctx) {
      const command = recipe(night, tree).install.value;
      const r = await runIn(night, ctx, tree, command, installEnv(night));
      if (r.exitStatus !== 0 || r.timedOut) return failure(command, r, ctx.logFile);
      if (tree === 'linux') {
        const release = await kernelRelease(night, ctx);
        if (typeof release !== 'string') return release;
        const kernel = `vmlinuz-${release}`;
        if (!existsSync(join(night.paths.bootDir, kernel))) {
          return { status: 'FAIL', reason: `${command} did not install ${join(night.paths.bootDir, kernel)}` };
        }
        return { status: 'GOOD', reason: `installed ${kernel}`, outputs: { kernel, release } };
      }
      let identity: XenIdentity;
      try {
        identity = builtXenIdentity(treeDir(night, 'xen'));
      } catch (e) {
        return { status: 'FAIL', reason: (e as Error).message };
      }
      const image = `xen-${identity.version}.gz`;
      if (!existsSync(join(night.paths.bootDir, image))) {
        return { status: 'FAIL', reason: `${command} did not install ${join(night.paths.bootDir, image)}` };
      }
      return {
        status: 'GOOD',
        reason: `installed ${image}`,
        outputs: { image, identity: identity as unknown as JsonValue },
      };
    },
  };
}
