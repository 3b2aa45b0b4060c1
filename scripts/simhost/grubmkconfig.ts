/**
 * grub-mkconfig as Debian bookworm runs it (GRUB 2.06): /etc/default/grub
 * (and /etc/default/grub.d/*.cfg) read, then the scripts 00_header,
 * 05_debian_theme, 10_linux, 20_linux_xen, 30_os-prober, 30_uefi-firmware,
 * 40_custom and 41_custom, each output wrapped in "### BEGIN/END" lines.
 *
 * Followed where they decide what the menu holds:
 * - 00_header: load_env; next_entry used once (set to empty and saved);
 *   GRUB_DEFAULT=saved becomes `set default="${saved_entry}"`.
 * - 10_linux: every /boot/vmlinuz-* (regular file, symlinks followed), newest
 *   first (sort -V); the newest gets the top-level "simple" entry, all get an
 *   entry and a recovery entry in "Advanced options for Debian GNU/Linux",
 *   whose id is 'gnulinux-advanced-<uuid>'.
 * - 20_linux_xen: only kernels whose /boot/config-<version> has
 *   CONFIG_XEN_DOM0=y (or CONFIG_XEN_PRIVILEGED_GUEST=y); every /boot/xen*
 *   that is a regular file (symlinks followed: Xen's xen.gz, xen-4.gz ...
 *   get entries too) and not xen-syms-*, xenpolicy-* or *.config; newest Xen
 *   first. The newest Xen with the newest kernel is the top-level
 *   'xen-gnulinux-simple-<uuid>'; then ONE submenu "Advanced options for
 *   Debian GNU/Linux (with Xen hypervisor)" holding a submenu
 *   "Xen hypervisor, version <ver>" ('xen-hypervisor-<ver>-<uuid>') per image.
 *   That outer submenu's id is 'gnulinux-advanced-<uuid>' too, the same id as
 *   10_linux's submenu, which comes first: GRUB resolves an id path starting
 *   with it into 10_linux's submenu. Titles are unique; the ids below are.
 *   multiboot2/module2 when the image has a multiboot2 header, else
 *   multiboot/module (grub-file --is-x86-multiboot2).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { hasMultiboot2Header } from './elf.js';

export interface GrubSettings {
  uuid: string;
  /** The root device as grub-mkconfig names it (GRUB_DEVICE). */
  device: string;
}

/** /etc/default/grub and /etc/default/grub.d/*.cfg, the simple assignments of them. */
export function readGrubDefaults(root: string): Map<string, string> {
  const values = new Map<string, string>();
  const files = [path.join(root, 'etc/default/grub')];
  const dropIns = path.join(root, 'etc/default/grub.d');
  if (fs.existsSync(dropIns)) {
    for (const f of fs.readdirSync(dropIns).sort()) if (f.endsWith('.cfg')) files.push(path.join(dropIns, f));
  }
  for (const file of files) {
    if (!fs.existsSync(file)) continue;
    for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
      const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(raw);
      if (!m) continue;
      values.set(m[1] as string, shellValue((m[2] as string).trim()));
    }
  }
  return values;
}

/** A shell assignment's value: quotes removed; a command substitution (GRUB_DISTRIBUTOR's lsb_release) gives Debian. */
function shellValue(v: string): string {
  if (v.includes('`') || v.includes('$(')) return 'Debian';
  if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) return v.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
  if (v.startsWith("'") && v.endsWith("'") && v.length >= 2) return v.slice(1, -1);
  return v.replace(/\s+#.*$/, '');
}

export function grubQuote(s: string): string {
  return s.replace(/'/g, `'\\''`);
}

/** grub_file_is_not_garbage: `test -f` (symlinks followed) and not a packaging leftover. */
function isNotGarbage(file: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return false;
  }
  if (!st.isFile()) return false;
  const base = path.basename(file);
  if (/\.dpkg-/.test(base) || /\.(rpmsave|rpmnew|sig)$/.test(base) || base.startsWith('README')) return false;
  return true;
}

/**
 * version_find_latest's order, newest first: `sort -V` of the machine paths
 * (/boot/NAME) with everything up to the first '-' removed. As in GRUB, a
 * name without '-' (/boot/xen.gz) keeps its leading '/', which sort -V ranks
 * above any digit: xen.gz counts as the newest Xen.
 */
function newestFirst(files: string[]): string[] {
  if (files.length <= 1) return files.slice();
  const byKey = new Map<string, string>();
  for (const f of files) byKey.set(`/boot/${path.basename(f)}`.replace(/^[^-]*-/, ''), f);
  const out = execFileSync('sort', ['-V', '-r'], { input: [...byKey.keys()].join('\n') + '\n', env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => byKey.has(l))
    .map((l) => byKey.get(l) as string);
}

function kernelVersion(basename: string): string {
  return basename.replace(/^[^0-9]*-/, '');
}

function findInitrd(bootDir: string, version: string): string | undefined {
  const alt = version.replace(/\.old$/, '');
  const candidates = [
    `initrd.img-${version}`,
    `initrd-${version}.img`,
    `initrd-${version}.gz`,
    `initrd-${version}`,
    `initramfs-${version}.img`,
    `initrd.img-${alt}`,
    `initrd-${alt}.img`,
    `initrd-${alt}`,
    `initramfs-${alt}.img`,
  ];
  return candidates.find((c) => fs.existsSync(path.join(bootDir, c)));
}

function prepareDevice(s: GrubSettings): string[] {
  return [
    'insmod part_msdos',
    'insmod ext2',
    "set root='hd0,msdos1'",
    'if [ x$feature_platform_search_hint = xy ]; then',
    `  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,msdos1 --hint-efi=hd0,msdos1 --hint-baremetal=ahci0,msdos1  ${s.uuid}`,
    'else',
    `  search --no-floppy --fs-uuid --set=root ${s.uuid}`,
    'fi',
  ];
}

function indent(lines: string[], prefix: string): string[] {
  return lines.map((l) => prefix + l);
}

function header(defaults: Map<string, string>, s: GrubSettings): string[] {
  const def = defaults.get('GRUB_DEFAULT') ?? '0';
  const defaultValue = def === 'saved' ? '${saved_entry}' : def;
  const timeout = defaults.get('GRUB_TIMEOUT') ?? '5';
  return [
    'if [ -s $prefix/grubenv ]; then',
    '  set have_grubenv=true',
    '  load_env',
    'fi',
    'if [ "${next_entry}" ] ; then',
    '   set default="${next_entry}"',
    '   set next_entry=',
    '   save_env next_entry',
    '   set boot_once=true',
    'else',
    `   set default="${defaultValue}"`,
    'fi',
    '',
    'if [ x"${feature_menuentry_id}" = xy ]; then',
    '  menuentry_id_option="--id"',
    'else',
    '  menuentry_id_option=""',
    'fi',
    '',
    'export menuentry_id_option',
    '',
    'if [ "${prev_saved_entry}" ]; then',
    '  set saved_entry="${prev_saved_entry}"',
    '  save_env saved_entry',
    '  set prev_saved_entry=',
    '  save_env prev_saved_entry',
    '  set boot_once=true',
    'fi',
    '',
    'function savedefault {',
    '  if [ -z "${boot_once}" ]; then',
    '    saved_entry="${chosen}"',
    '    save_env saved_entry',
    '  fi',
    '}',
    'function load_video {',
    '  if [ x$feature_all_video_module = xy ]; then',
    '    insmod all_video',
    '  else',
    '    insmod efi_gop',
    '    insmod efi_uga',
    '    insmod ieee1275_fb',
    '    insmod vbe',
    '    insmod vga',
    '    insmod video_bochs',
    '    insmod video_cirrus',
    '  fi',
    '}',
    '',
    'if [ x$feature_default_font_path = xy ] ; then',
    '   font=unicode',
    'else',
    ...prepareDevice(s),
    '    font="/usr/share/grub/unicode.pf2"',
    'fi',
    '',
    'if loadfont $font ; then',
    '  set gfxmode=auto',
    '  load_video',
    '  insmod gfxterm',
    '  set locale_dir=$prefix/locale',
    '  set lang=en_US',
    '  insmod gettext',
    'fi',
    'terminal_output gfxterm',
    'if [ x$feature_timeout_style = xy ] ; then',
    '  set timeout_style=menu',
    `  set timeout=${timeout}`,
    '# Fallback normal timeout code in case the timeout_style feature is',
    '# unavailable.',
    'else',
    `  set timeout=${timeout}`,
    'fi',
  ];
}

interface Kernel {
  file: string;
  basename: string;
  version: string;
  initrd: string | undefined;
}

function kernels(bootDir: string): Kernel[] {
  if (!fs.existsSync(bootDir)) return [];
  const files = fs
    .readdirSync(bootDir)
    .filter((n) => n.startsWith('vmlinuz-') || n.startsWith('kernel-'))
    .map((n) => path.join(bootDir, n))
    .filter(isNotGarbage);
  return newestFirst(files).map((file) => {
    const basename = path.basename(file);
    const version = kernelVersion(basename);
    return { file, basename, version, initrd: findInitrd(bootDir, version) };
  });
}

function linuxSection(ks: Kernel[], defaults: Map<string, string>, s: GrubSettings, os: string, classes: string, log: string[]): string[] {
  const out: string[] = [];
  const cmdline = defaults.get('GRUB_CMDLINE_LINUX') ?? '';
  const cmdlineDefault = defaults.get('GRUB_CMDLINE_LINUX_DEFAULT') ?? '';
  const recovery = defaults.get('GRUB_DISABLE_RECOVERY') !== 'true';
  let topLevel = true;
  let ind = '';
  const entry = (k: Kernel, type: 'simple' | 'advanced' | 'recovery', args: string): void => {
    const title = type === 'simple' ? os : type === 'recovery' ? `${os}, with Linux ${k.version} (recovery mode)` : `${os}, with Linux ${k.version}`;
    const id = type === 'simple' ? `gnulinux-simple-${s.uuid}` : `gnulinux-${k.version}-${type}-${s.uuid}`;
    const root = k.initrd ? `UUID=${s.uuid}` : s.device;
    const lines = [
      `menuentry '${grubQuote(title)}' ${classes} $menuentry_id_option '${id}' {`,
      '\tload_video',
      '\tinsmod gzio',
      '\tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi',
      ...indent(prepareDevice(s), '\t'),
      `\techo\t'${grubQuote(`Loading Linux ${k.version} ...`)}'`,
      `\tlinux\t/boot/${k.basename} root=${root} ro ${args}`,
      ...(k.initrd ? [`\techo\t'Loading initial ramdisk ...'`, `\tinitrd\t/boot/${k.initrd}`] : []),
      '}',
    ];
    out.push(...indent(lines, ind));
  };
  for (const k of ks) {
    log.push(`Found linux image: /boot/${k.basename}`);
    if (k.initrd) log.push(`Found initrd image: /boot/${k.initrd}`);
    if (topLevel) {
      entry(k, 'simple', `${cmdline} ${cmdlineDefault}`);
      out.push(`submenu '${grubQuote(`Advanced options for ${os}`)}' $menuentry_id_option 'gnulinux-advanced-${s.uuid}' {`);
      ind = '\t';
      topLevel = false;
    }
    entry(k, 'advanced', `${cmdline} ${cmdlineDefault}`);
    if (recovery) entry(k, 'recovery', `single ${cmdline}`);
  }
  if (!topLevel) out.push('}');
  out.push('');
  return out;
}

function isXenGarbage(file: string): boolean {
  const base = path.basename(file);
  return base.startsWith('xen-syms-') || base.startsWith('xenpolicy-') || base.endsWith('.config');
}

/** grub-file --is-x86-multiboot2 on the (decompressed) image. */
function isMultiboot2(file: string): boolean {
  try {
    let buf = fs.readFileSync(file);
    if (buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
    return hasMultiboot2Header(buf);
  } catch {
    return false;
  }
}

function dom0Capable(bootDir: string, version: string): boolean {
  const alt = version.replace(/\.old$/, '');
  for (const f of [`config-${version}`, `config-${alt}`]) {
    const file = path.join(bootDir, f);
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    return /^CONFIG_XEN_DOM0=y$/m.test(text) || /^CONFIG_XEN_PRIVILEGED_GUEST=y$/m.test(text);
  }
  return false;
}

function xenSection(ks: Kernel[], bootDir: string, defaults: Map<string, string>, s: GrubSettings, os: string, classes: string, log: string[]): string[] {
  const linux = ks.filter((k) => dom0Capable(bootDir, k.version));
  if (linux.length === 0) return [];
  const xens = newestFirst(
    fs
      .readdirSync(bootDir)
      .filter((n) => n.startsWith('xen'))
      .map((n) => path.join(bootDir, n))
      .filter((f) => isNotGarbage(f) && !isXenGarbage(f)),
  );
  const out: string[] = [];
  const xenClasses = `${classes} --class xen`;
  const cmdline = defaults.get('GRUB_CMDLINE_LINUX') ?? '';
  const cmdlineDefault = defaults.get('GRUB_CMDLINE_LINUX_DEFAULT') ?? '';
  const xenCmdline = defaults.get('GRUB_CMDLINE_XEN') ?? '';
  const xenCmdlineDefault = defaults.get('GRUB_CMDLINE_XEN_DEFAULT') ?? '';
  const recovery = defaults.get('GRUB_DISABLE_RECOVERY') !== 'true';
  let topLevel = true;
  let ind = '';
  for (const xen of xens) {
    const xenBase = path.basename(xen);
    const xenVersion = xenBase.replace(/\.gz$/, '').replace(/^xen-/, '');
    if (!topLevel) out.push(`\tsubmenu '${grubQuote(`Xen hypervisor, version ${xenVersion}`)}' $menuentry_id_option 'xen-hypervisor-${xenVersion}-${s.uuid}' {`);
    const mb2 = isMultiboot2(xen);
    const loader = mb2 ? 'multiboot2' : 'multiboot';
    const moduleLoader = mb2 ? 'module2' : 'module';
    const entry = (k: Kernel, type: 'simple' | 'advanced' | 'recovery', args: string, xenArgs: string): void => {
      const title =
        type === 'simple'
          ? `${os}, with Xen hypervisor`
          : type === 'recovery'
            ? `${os}, with Xen ${xenVersion} and Linux ${k.version} (recovery mode)`
            : `${os}, with Xen ${xenVersion} and Linux ${k.version}`;
      const id = type === 'simple' ? `xen-gnulinux-simple-${s.uuid}` : `xen-gnulinux-${k.version}-${type}-${s.uuid}`;
      const root = k.initrd ? `UUID=${s.uuid}` : s.device;
      const lines = [
        `menuentry '${grubQuote(title)}' ${xenClasses} $menuentry_id_option '${id}' {`,
        ...indent(prepareDevice(s), '\t'),
        `\techo\t'${grubQuote(`Loading Xen ${xenVersion} ...`)}'`,
        '        if [ "$grub_platform" = "pc" -o "$grub_platform" = "" ]; then',
        '            xen_rm_opts=',
        '        else',
        '            xen_rm_opts="no-real-mode edd=off"',
        '        fi',
        `\t${loader}\t/boot/${xenBase} placeholder ${xenArgs} \${xen_rm_opts}`,
        `\techo\t'${grubQuote(`Loading Linux ${k.version} ...`)}'`,
        `\t${moduleLoader}\t/boot/${k.basename} placeholder root=${root} ro ${args}`,
        ...(k.initrd ? [`\techo\t'Loading initial ramdisk ...'`, `\t${moduleLoader}\t--nounzip   /boot/${k.initrd}`] : []),
        '}',
      ];
      out.push(...indent(lines, ind));
    };
    for (const k of linux) {
      log.push(`Found linux image: /boot/${k.basename}`);
      if (k.initrd) log.push(`Found initrd image: /boot/${k.initrd}`);
      if (topLevel) {
        entry(k, 'simple', `${cmdline} ${cmdlineDefault}`, `${xenCmdline} ${xenCmdlineDefault}`);
        ind = '\t\t';
        out.push(`submenu '${grubQuote(`Advanced options for ${os} (with Xen hypervisor)`)}' $menuentry_id_option 'gnulinux-advanced-${s.uuid}' {`);
        out.push(`\tsubmenu '${grubQuote(`Xen hypervisor, version ${xenVersion}`)}' $menuentry_id_option 'xen-hypervisor-${xenVersion}-${s.uuid}' {`);
        topLevel = false;
      }
      entry(k, 'advanced', `${cmdline} ${cmdlineDefault}`, `${xenCmdline} ${xenCmdlineDefault}`);
      if (recovery) entry(k, 'recovery', `single ${cmdline}`, xenCmdline);
    }
    if (!topLevel) out.push('\t}');
  }
  if (!topLevel) out.push('}');
  out.push('');
  return out;
}

/** The whole grub.cfg for the machine whose filesystem is `root`, and what grub-mkconfig prints on stderr meanwhile. */
export function grubMkconfig(root: string, s: GrubSettings): { config: string; messages: string[] } {
  const defaults = readGrubDefaults(root);
  const bootDir = path.join(root, 'boot');
  const distributor = defaults.get('GRUB_DISTRIBUTOR') || '';
  const os = distributor ? `${distributor} GNU/Linux` : 'GNU/Linux';
  const classes = `${distributor ? `--class ${distributor.toLowerCase().split(' ')[0]?.replace(/[^a-z0-9_]/g, '_')} ` : ''}--class gnu-linux --class gnu --class os`;
  const log: string[] = [];
  const ks = kernels(bootDir);
  const sections: Array<[string, string[]]> = [
    ['00_header', header(defaults, s)],
    ['05_debian_theme', ['set menu_color_normal=cyan/blue', 'set menu_color_highlight=white/blue']],
    ['10_linux', linuxSection(ks, defaults, s, os, classes, log)],
    ['20_linux_xen', xenSection(ks, bootDir, defaults, s, os, classes, log)],
    ['30_os-prober', []],
    ['30_uefi-firmware', []],
    [
      '40_custom',
      [
        '# This file provides an easy way to add custom menu entries.  Simply type the',
        '# menu entries you want to add after this comment.  Be careful not to change',
        "# the 'exec tail' line above.",
      ],
    ],
    [
      '41_custom',
      [
        'if [ -f  ${config_directory}/custom.cfg ]; then',
        '  source ${config_directory}/custom.cfg',
        'elif [ -z "${config_directory}" -a -f  $prefix/custom.cfg ]; then',
        '  source $prefix/custom.cfg',
        'fi',
      ],
    ],
  ];
  const lines = [
    '#',
    '# DO NOT EDIT THIS FILE',
    '#',
    '# It is automatically generated by grub-mkconfig using templates',
    '# from /etc/grub.d and settings from /etc/default/grub',
    '#',
  ];
  for (const [name, body] of sections) {
    lines.push('', `### BEGIN /etc/grub.d/${name} ###`, ...body, `### END /etc/grub.d/${name} ###`);
  }
  const messages = [
    'Generating grub configuration file ...',
    ...log,
    'Warning: os-prober will not be executed to detect other bootable partitions.',
    'Systems on them will not be added to the GRUB boot configuration.',
    'Check GRUB_DISABLE_OS_PROBER documentation entry.',
    'done',
  ];
  return { config: lines.join('\n') + '\n', messages };
}
