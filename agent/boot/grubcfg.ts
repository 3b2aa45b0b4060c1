/**
 * The menu of a grub.cfg as grub-mkconfig writes it: menuentry and submenu
 * blocks with their titles, ids ($menuentry_id_option 'id') and the images
 * they load. Enough to find the entry that boots a given Xen image and to
 * name it the way grub-reboot and grub-set-default take it ("id>id>id").
 */

export interface MenuEntry {
  readonly title: string;
  readonly id?: string;
  /**
   * Titles from the top level down to this entry, joined by '>', as
   * grub-reboot and grub-set-default take them. Titles, not ids: Debian's
   * 10_linux and 20_linux_xen give their two "Advanced options" submenus the
   * same id, and GRUB takes the first match at each level, so an id path
   * would lead into the plain Linux submenu.
   */
  readonly path: string;
  /** How many submenus deep the entry is (0: top level). */
  readonly depth: number;
  /** multiboot / multiboot2 image (the hypervisor), as written in grub.cfg. */
  readonly hypervisor?: string;
  /** linux / module / module2 images after the hypervisor (the dom0 kernel first). */
  readonly modules: readonly string[];
  readonly line: number;
}

/** Split a GRUB script line into words, honouring '...' and "..." quoting and backslash escapes. */
export function grubWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      cur += line.slice(i + 1, end < 0 ? line.length : end);
      i = end < 0 ? line.length : end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && j + 1 < line.length) j++;
        cur += line[j];
      }
      i = j;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else if (c === '#' && !inWord) {
      break;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

interface Frame {
  kind: 'menuentry' | 'submenu' | 'other';
  title: string;
  id?: string;
  hypervisor?: string;
  modules: string[];
  line: number;
}

function entryHeader(words: string[]): { title: string; id?: string } {
  const title = words[1] ?? '';
  const idAt = words.findIndex((w) => w === '$menuentry_id_option' || w === '--id');
  const id = idAt >= 0 ? words[idAt + 1] : undefined;
  return id ? { title, id } : { title };
}

export function parseGrubMenu(text: string): MenuEntry[] {
  const entries: MenuEntry[] = [];
  const stack: Frame[] = [];
  text.split('\n').forEach((raw, i) => {
    const words = grubWords(raw.trim());
    if (words.length === 0) return;
    const first = words[0] as string;
    if (words[words.length - 1] === '{') {
      if (first === 'menuentry' || first === 'submenu') {
        stack.push({ kind: first, ...entryHeader(words), modules: [], line: i + 1 });
      } else {
        stack.push({ kind: 'other', title: '', modules: [], line: i + 1 });
      }
      return;
    }
    if (first === '}') {
      const frame = stack.pop();
      if (frame?.kind === 'menuentry') {
        const submenus = stack.filter((f) => f.kind === 'submenu');
        entries.push({
          title: frame.title,
          ...(frame.id ? { id: frame.id } : {}),
          path: [...submenus, frame].map((f) => f.title).join('>'),
          depth: submenus.length,
          ...(frame.hypervisor ? { hypervisor: frame.hypervisor } : {}),
          modules: frame.modules,
          line: frame.line,
        });
      }
      return;
    }
    const entry = [...stack].reverse().find((f) => f.kind === 'menuentry');
    if (!entry) return;
    if ((first === 'multiboot' || first === 'multiboot2') && words[1]) entry.hypervisor = words[1];
    else if ((first === 'module' || first === 'module2' || first === 'linux') && words[1]) {
      const image = words[1] === '--nounzip' ? words[2] : words[1];
      if (image) entry.modules.push(image);
    }
  });
  return entries;
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/**
 * The entry that boots `image` (a file name such as xen-4.19-unstable.gz,
 * matched by name so that a separate /boot partition's paths match too) and,
 * if given, the dom0 kernel `kernel` (vmlinuz-...).
 *
 * The per-version entry in the advanced submenus is preferred: the top-level
 * "with Xen hypervisor" entry boots whichever image sorts newest, which may
 * be another one by the next night, and must never become the saved default.
 * Recovery-mode entries are not wanted either.
 */
export function findXenEntry(entries: readonly MenuEntry[], image: string, kernel?: string): MenuEntry | undefined {
  const matches = entries.filter(
    (e) =>
      e.hypervisor !== undefined &&
      basename(e.hypervisor) === image &&
      (kernel === undefined || basename(e.modules[0] ?? '') === kernel),
  );
  const normal = matches.filter((e) => !/\(recovery mode\)$/.test(e.title));
  return normal.find((e) => e.depth > 0) ?? normal[0] ?? matches[0];
}

/** The entry grub-set-default / saved_entry names: by id path, title path, or number. */
export function resolveEntry(entries: readonly MenuEntry[], name: string): MenuEntry | undefined {
  return entries.find((e) => e.path === name || e.id === name || e.title === name);
}
