/**
 * GRUB at boot, as far as choosing and loading an entry goes
 * (grub-core/normal/menu.c, GRUB 2.06):
 *
 * - the menu is the menuentry/submenu blocks of grub.cfg in file order;
 * - `default` is resolved one '>'-separated component per menu level
 *   ('>>' is a literal '>'): a component that starts with digits is an index,
 *   otherwise the FIRST entry whose title or id equals it; nothing found (or an
 *   index out of range) means entry 0 of that level;
 * - a submenu is entered with the rest of the path as its default.
 *
 * The header's environment handling (load_env, next_entry, saved_entry,
 * prev_saved_entry) is taken from the grub.cfg text too, so a hand-written
 * grub.cfg without it behaves as GRUB would with it missing.
 *
 * This is GRUB's side and deliberately does not share code with the agent's
 * reading of grub.cfg (agent/boot/grubcfg.ts), though both tokenise GRUB
 * script: a mistake in the agent's parser must meet GRUB's behaviour here,
 * not be mirrored by it (this is how the duplicate-submenu-id trap showed).
 */

export interface MenuNode {
  kind: 'menuentry' | 'submenu';
  title: string;
  id: string | null;
  line: number;
  /** Entries of a submenu. */
  children: MenuNode[];
  /** Commands of a menuentry, one word list per line, variables expanded. */
  commands: string[][];
}

export interface HeaderSemantics {
  loadsEnv: boolean;
  /** The next_entry block: default from next_entry, which is then emptied and saved. */
  honoursNextEntry: boolean;
  /** `set default="..."` for the normal case: '${saved_entry}' or a literal. */
  defaultExpr: string;
  honoursPrevSavedEntry: boolean;
}

/** Variables as GRUB has them on a BIOS machine while running grub.cfg. */
const BOOT_VARIABLES: Record<string, string> = {
  grub_platform: 'pc',
  grub_cpu: 'i386',
  feature_menuentry_id: 'y',
  feature_platform_search_hint: 'y',
  menuentry_id_option: '--id',
  xen_rm_opts: '',
};

/** GRUB script words: '...' literal, "..." and bare words expand $var and ${var}; an empty unquoted expansion is no word. */
export function grubScriptWords(line: string, vars: Record<string, string> = BOOT_VARIABLES): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  const expand = (i: number): [string, number] => {
    if (line[i + 1] === '{') {
      const end = line.indexOf('}', i + 2);
      if (end < 0) return ['$', i];
      return [vars[line.slice(i + 2, end)] ?? '', end];
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9#?@*]/.exec(line.slice(i + 1));
    if (!m) return ['$', i];
    return [vars[m[0]] ?? '', i + m[0].length];
  };
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
        if (line[j] === '\\' && j + 1 < line.length && '"\\$'.includes(line[j + 1] as string)) {
          cur += line[++j];
        } else if (line[j] === '$') {
          const [v, end] = expand(j);
          cur += v;
          j = end;
        } else {
          cur += line[j];
        }
      }
      i = j;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (c === '$') {
      const [v, end] = expand(i);
      i = end;
      if (v !== '') {
        cur += v;
        inWord = true;
      }
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

function entryHeader(words: string[]): { title: string; id: string | null } {
  const title = words[1] ?? '';
  let id: string | null = null;
  for (let i = 2; i < words.length; i++) {
    const w = words[i] as string;
    if (w === '--id') id = words[i + 1] ?? null;
    else if (w.startsWith('--id=')) id = w.slice(5);
  }
  return { title, id };
}

export interface ParsedGrubCfg {
  menu: MenuNode[];
  header: HeaderSemantics;
}

export function parseGrubCfg(text: string): ParsedGrubCfg {
  const menu: MenuNode[] = [];
  const stack: Array<MenuNode | 'other'> = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const words = grubScriptWords(raw.trim());
    if (words.length === 0) return;
    const first = words[0] as string;
    if (words[words.length - 1] === '{') {
      if (first === 'menuentry' || first === 'submenu') {
        const node: MenuNode = { kind: first, ...entryHeader(words), line: i + 1, children: [], commands: [] };
        const parent = [...stack].reverse().find((f): f is MenuNode => f !== 'other');
        if (parent) parent.children.push(node);
        else menu.push(node);
        stack.push(node);
      } else {
        stack.push('other');
      }
      return;
    }
    if (first === '}') {
      stack.pop();
      return;
    }
    const top = stack[stack.length - 1];
    if (top && top !== 'other' && top.kind === 'menuentry') top.commands.push(words);
  });
  return { menu, header: headerSemantics(text) };
}

function headerSemantics(text: string): HeaderSemantics {
  const nextBlock = /if \[ "\$\{next_entry\}" \] ; then\s*\n\s*set default="\$\{next_entry\}"\s*\n\s*set next_entry=\s*\n\s*save_env next_entry/.exec(text);
  let defaultExpr = '0';
  for (const m of text.matchAll(/^\s*set default="([^"]*)"\s*$/gm)) {
    if (m[1] !== '${next_entry}') {
      defaultExpr = m[1] as string;
      break;
    }
  }
  return {
    loadsEnv: /^\s*load_env\b/m.test(text),
    honoursNextEntry: nextBlock !== null,
    defaultExpr,
    honoursPrevSavedEntry: /if \[ "\$\{prev_saved_entry\}" \]; then/.test(text),
  };
}

/** Split a default at its first '>' that is not '>>'; '>>' in the component becomes '>'. */
function firstComponent(spec: string): [string, string | undefined] {
  let comp = '';
  for (let i = 0; i < spec.length; i++) {
    if (spec[i] === '>' && spec[i + 1] === '>') {
      comp += '>';
      i++;
    } else if (spec[i] === '>') {
      return [comp, spec.slice(i + 1)];
    } else {
      comp += spec[i];
    }
  }
  return [comp, undefined];
}

/** grub_strtoul(val, 0, 0): leading digits (0x hex, 0 octal) make a number; anything else is not one. */
function leadingNumber(s: string): number | undefined {
  const m = /^\s*(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(s);
  if (!m) return undefined;
  const t = m[1] as string;
  if (/^0[xX]/.test(t)) return parseInt(t.slice(2), 16);
  if (t.length > 1 && t.startsWith('0')) return parseInt(t, 8);
  return parseInt(t, 10);
}

export interface Resolution {
  /** From the top level down; the last one is the menuentry GRUB runs. Empty if the menu is empty. */
  path: MenuNode[];
  /** Where GRUB fell back to the first entry of a level, and why; null if every component matched. */
  fallback: string | null;
}

export function resolveEntry(menu: MenuNode[], spec: string | undefined): Resolution {
  const path: MenuNode[] = [];
  let level = menu;
  let rest = spec;
  let fallback: string | null = null;
  let where = 'the top-level menu';
  for (;;) {
    if (level.length === 0) return { path, fallback: fallback ?? `${where} is empty` };
    let index = -1;
    let comp: string | undefined;
    if (rest !== undefined && rest !== '') {
      const n = leadingNumber(rest);
      if (n !== undefined) {
        index = n;
        comp = String(n);
      } else {
        [comp] = firstComponent(rest);
        index = level.findIndex((e) => e.title === comp || e.id === comp);
      }
    }
    if (index < 0 || index >= level.length) {
      if (rest !== undefined && rest !== '' && fallback === null) {
        fallback = `no entry '${comp ?? rest}' in ${where}: GRUB took its first entry '${(level[0] as MenuNode).title}'`;
      }
      index = 0;
    }
    const node = level[index] as MenuNode;
    path.push(node);
    if (node.kind === 'menuentry') return { path, fallback };
    const [, tail] = rest ? firstComponent(rest) : ['', undefined];
    rest = tail;
    level = node.children;
    where = `the submenu '${node.title}'`;
  }
}

/** Every menuentry with its path, for messages and tests. */
export function flattenMenu(menu: MenuNode[], parents: MenuNode[] = []): Array<{ path: MenuNode[] }> {
  const out: Array<{ path: MenuNode[] }> = [];
  for (const n of menu) {
    if (n.kind === 'menuentry') out.push({ path: [...parents, n] });
    else out.push(...flattenMenu(n.children, [...parents, n]));
  }
  return out;
}
