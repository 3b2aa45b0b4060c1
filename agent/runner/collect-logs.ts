/**
 * A test's log_dir (tempdir/log_dir) copied into its results, without ever
 * following a symbolic link: log_dir itself must resolve inside the tempdir,
 * links inside it are listed and skipped (a test cannot make the runner copy
 * /etc/shadow into a shared directory every domain reads), and so are
 * devices, fifos and sockets.
 */
import * as fs from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { DomainArea } from './shared-area.js';

export interface CollectedLogs {
  /** What happened, in one line. */
  summary: string;
  files: number;
  bytes: number;
  skipped: string[];
}

function inside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

export function collectLogDir(tempdir: string, logDir: string, dest: string, area: DomainArea): CollectedLogs {
  const src = join(tempdir, logDir);
  const none = (summary: string): CollectedLogs => ({ summary, files: 0, bytes: 0, skipped: [] });
  let st: fs.Stats;
  try {
    st = fs.lstatSync(src);
  } catch {
    return none(`log_dir ${src} does not exist; no logs collected`);
  }
  if (st.isSymbolicLink()) return none(`log_dir ${src} is a symbolic link; not followed, no logs collected`);
  if (!st.isDirectory()) return none(`log_dir ${src} is not a directory; no logs collected`);
  const realTemp = fs.realpathSync(tempdir);
  const realSrc = fs.realpathSync(src);
  if (!inside(realSrc, realTemp)) return none(`log_dir ${src} leads to ${realSrc}, outside the tempdir ${realTemp}; not followed`);

  area.op(`clear ${dest}`, () => fs.rmSync(dest, { recursive: true, force: true }));
  area.mkdir(dest);
  const out: CollectedLogs = { summary: '', files: 0, bytes: 0, skipped: [] };
  const walk = (from: string, to: string): void => {
    for (const e of fs.readdirSync(from, { withFileTypes: true })) {
      const s = join(from, e.name);
      const d = join(to, e.name);
      if (e.isDirectory()) {
        area.mkdir(d);
        walk(s, d);
      } else if (e.isFile()) {
        area.op(`copy ${d}`, () => fs.copyFileSync(s, d));
        out.files++;
        out.bytes += fs.lstatSync(s).size;
      } else {
        out.skipped.push(`${relative(src, s)} (${e.isSymbolicLink() ? 'symbolic link' : 'not a regular file'})`);
      }
    }
  };
  walk(src, dest);
  out.summary = `collected ${out.files} files (${out.bytes} bytes) from ${src}${out.skipped.length ? `; skipped ${out.skipped.join(', ')}` : ''}`;
  return out;
}
