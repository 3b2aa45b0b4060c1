/**
 * GRUB's user-space tools on the simulated machine: update-grub and
 * grub-mkconfig (grubmkconfig.ts), grub-editenv, grub-reboot and
 * grub-set-default, with their options, messages and exit statuses
 * (GRUB 2.06's util/grub-editenv.c, grub-reboot.in, grub-set-default.in).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileReplacing } from './fsutil.js';
import { EnvBlockError, formatEnvBlock, readEnvBlock, setVar, unsetVar } from './grubenv.js';
import { grubMkconfig } from './grubmkconfig.js';
import { hostPath, readMachine, type SimLayout } from './layout.js';
import type { Io } from './xl.js';

function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'No such file or directory';
  if (code === 'EACCES') return 'Permission denied';
  if (code === 'EISDIR') return 'Is a directory';
  return (e as Error).message;
}

/** grub-mkconfig [-o FILE]; update-grub is `grub-mkconfig -o /boot/grub/grub.cfg`. */
export function grubMkconfigMain(layout: SimLayout, args: string[], io: Io, self = 'grub-mkconfig'): number {
  let output: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '-o' || a === '--output') output = args[++i];
    else if (a.startsWith('--output=')) output = a.slice('--output='.length);
    else if (a.startsWith('-o') && a.length > 2) output = a.slice(2);
    else if (a === '-h' || a === '--help') {
      io.out(`Usage: ${self} [OPTION]\nGenerate a grub config file\n\n  -o, --output=FILE       output generated config to FILE [default=stdout]\n`);
      return 0;
    } else {
      io.err(`${self}: unrecognized option '${a}'\nTry '${self} --help' for more information.\n`);
      return 1;
    }
  }
  const machine = readMachine(layout);
  const { config, messages } = grubMkconfig(layout.root, { uuid: machine.uuid, device: machine.device });
  io.err(messages[0] + '\n');
  for (const m of messages.slice(1)) io.err(m + '\n');
  if (output === undefined) {
    io.out(config);
    return 0;
  }
  const target = hostPath(layout, output);
  try {
    writeFileReplacing(`${target}.new`, config);
    fs.renameSync(`${target}.new`, target);
  } catch (e) {
    io.err(`${self}: error: cannot open '${output}.new': ${errnoText(e)}.\n`);
    return 1;
  }
  return 0;
}

function defaultEnvFile(layout: SimLayout): string {
  return layout.grubEnv;
}

/** grub-editenv FILE COMMAND: create, list, set NAME=VALUE..., unset NAME... ('-' is /boot/grub/grubenv). */
export function grubEditenvMain(layout: SimLayout, args: string[], io: Io, self = 'grub-editenv'): number {
  const positional = args.filter((a) => !(a.startsWith('-') && a !== '-'));
  if (args.includes('--help') || args.includes('-h')) {
    io.out(
      `Usage: ${self} [OPTION...] FILENAME COMMAND\n\nTool to edit environment block.\nCommands:\n  create                     Create a blank environment block file.\n  list                       List the current variables.\n  set [NAME=VALUE ...]       Set variables.\n  unset [NAME ...]           Delete variables.\n\nIf FILENAME is '-', the default value //boot/grub/grubenv is used.\n`,
    );
    return 0;
  }
  const [fileArg, command, ...rest] = positional;
  if (fileArg === undefined) {
    io.err(`${self}: error: You need to specify at least one command.\nUsage: ${self} [OPTION...] FILENAME COMMAND\nTry '${self} --help' or '${self} --usage' for more information.\n`);
    return 64;
  }
  if (command === undefined) {
    io.err(`${self}: error: You need to specify at least one command.\nUsage: ${self} [OPTION...] FILENAME COMMAND\nTry '${self} --help' or '${self} --usage' for more information.\n`);
    return 64;
  }
  const file = fileArg === '-' ? defaultEnvFile(layout) : hostPath(layout, fileArg);
  try {
    if (command === 'create') {
      fs.writeFileSync(file, formatEnvBlock([]));
      return 0;
    }
    let vars: Array<[string, string]>;
    try {
      vars = readEnvBlock(file);
    } catch (e) {
      if (e instanceof EnvBlockError) {
        io.err(`${self}: error: invalid environment block.\n`);
        return 1;
      }
      io.err(`${self}: error: cannot open \`${fileArg === '-' ? '//boot/grub/grubenv' : fileArg}': ${errnoText(e)}.\n`);
      return 1;
    }
    if (command === 'list') {
      io.out(vars.map(([k, v]) => `${k}=${v}\n`).join(''));
      return 0;
    }
    if (command === 'set') {
      for (const a of rest) {
        const eq = a.indexOf('=');
        if (eq < 0) {
          io.err(`${self}: error: invalid parameter ${a}.\n`);
          return 1;
        }
        vars = setVar(vars, a.slice(0, eq), a.slice(eq + 1));
      }
    } else if (command === 'unset') {
      for (const a of rest) vars = unsetVar(vars, a);
    } else {
      io.err(`${self}: error: unknown command \`${command}'.\n`);
      return 1;
    }
    let block: Buffer;
    try {
      block = formatEnvBlock(vars);
    } catch (e) {
      if (e instanceof EnvBlockError) {
        io.err(`${self}: error: environment block too small.\n`);
        return 1;
      }
      throw e;
    }
    fs.writeFileSync(file, block);
    return 0;
  } catch (e) {
    io.err(`${self}: error: cannot open \`${fileArg}': ${errnoText(e)}.\n`);
    return 1;
  }
}

/** grub-reboot ENTRY (next_entry, for the next boot only) and grub-set-default ENTRY (saved_entry). */
export function grubEntryToolMain(layout: SimLayout, tool: 'grub-reboot' | 'grub-set-default', args: string[], io: Io): number {
  const what = tool === 'grub-reboot' ? 'Set the default boot menu entry for GRUB, for the next boot only.' : 'Set the saved default boot menu entry for GRUB.';
  const usage =
    `Usage: ${tool} [OPTION] MENU_ENTRY\n${what}\n\n` +
    '  -h, --help              print this message and exit\n' +
    '  -V, --version           print the version information and exit\n' +
    '  --boot-directory=DIR    expect GRUB images under the directory DIR/grub instead of the /boot/grub directory\n\n' +
    'MENU_ENTRY is a number, a menu item title or a menu item identifier. Please note that menu items in\n' +
    "submenus or sub-submenus require specifying the submenu components and then the\nmenu item component. The titles should be separated using the greater-than\ncharacter (>) with no extra spaces. Depending on your shell some characters including > may need escaping.\n\n" +
    'Report bugs to <bug-grub@gnu.org>.\n';
  let bootDir = '/boot';
  let entry: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '-h' || a === '--help') {
      io.out(usage);
      return 0;
    } else if (a === '-V' || a === '--version') {
      io.out(`${tool} (GRUB) 2.06-13+deb12u1\n`);
      return 0;
    } else if (a === '--boot-directory') {
      bootDir = args[++i] ?? bootDir;
    } else if (a.startsWith('--boot-directory=')) {
      bootDir = a.slice('--boot-directory='.length);
    } else if (a.startsWith('-') && entry === undefined && a !== '-') {
      io.err(`Unrecognized option \`${a}'\n`);
      io.out(usage);
      return 1;
    } else if (entry === undefined) {
      entry = a;
    } else {
      io.err(`${tool}: error: More than one menu entry?\n`);
      io.out(usage);
      return 1;
    }
  }
  if (entry === undefined || entry === '') {
    io.err(`${tool}: error: menu entry not specified.\n`);
    io.out(usage);
    return 1;
  }
  const envFile = path.join(hostPath(layout, bootDir), 'grub/grubenv');
  const variable = tool === 'grub-reboot' ? 'next_entry' : 'saved_entry';
  const unset = grubEditenvMain(layout, [envFile, 'unset', 'prev_saved_entry'], io);
  if (unset !== 0) return unset;
  return grubEditenvMain(layout, [envFile, 'set', `${variable}=${entry}`], io);
}
