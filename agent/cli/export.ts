/**
 * `xentest export --junit|--kcidb [--origin NAME] [--out FILE] NIGHT_DIR`:
 * one night's results (nights/<id>/) as JUnit XML, for Jenkins and GitLab, or
 * as KCIDB JSON, for KernelCI's kcidb-submit. To standard output, or to FILE
 * (replaced atomically, so a reader never sees half a report).
 *
 * Exit 0 written; 1 the night's files cannot be read or FILE cannot be
 * written; 64 a usage mistake (including a NIGHT_DIR that is not a night's
 * directory).
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../../shared/atomic.js';
import { loadControlFile } from '../../shared/controlfile/model.js';
import { toJUnitXml } from '../results/export/junit.js';
import { KCIDB_ORIGIN_PATTERN, toKcidb, type KcidbOptions } from '../results/export/kcidb.js';
import { loadNightRecord } from '../results/load.js';
import type { NightRecord } from '../results/record.js';
import { UsageError } from './usage.js';

export const EXPORT_USAGE = 'usage: xentest export --junit|--kcidb [--origin NAME] [--out FILE] NIGHT_DIR';
export const EXIT_EXPORT_FAILED = 1;
export const DEFAULT_KCIDB_ORIGIN = 'xentest';

export type NightLoader = (dir: string) => NightRecord | Promise<NightRecord>;

export interface ExportDeps {
  /** Reads a night's directory into a NightRecord (agent/results/load.ts's loadNightRecord by default). */
  load?: NightLoader;
}

export async function exportCommand(argv: string[], deps: ExportDeps = {}): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      junit: { type: 'boolean', default: false },
      kcidb: { type: 'boolean', default: false },
      origin: { type: 'string' },
      out: { type: 'string' },
    },
    allowPositionals: true,
  });
  if (values.junit === values.kcidb) throw new UsageError('export takes exactly one of --junit and --kcidb', EXPORT_USAGE);
  if (values.origin !== undefined && !values.kcidb) throw new UsageError('--origin is for --kcidb only', EXPORT_USAGE);
  const origin = values.origin ?? DEFAULT_KCIDB_ORIGIN;
  if (!KCIDB_ORIGIN_PATTERN.test(origin)) {
    throw new UsageError(
      `--origin ${JSON.stringify(origin)} is not a KCIDB origin`,
      'an origin is lower-case letters, digits and underscores, e.g. --origin xentest_lab1',
    );
  }
  if (values.out === '') throw new UsageError('--out needs a file name', EXPORT_USAGE);
  const dirArg = positionals[0];
  if (positionals.length !== 1 || dirArg === undefined) throw new UsageError('export takes exactly one night directory', EXPORT_USAGE);
  const dir = resolve(dirArg);
  if (!isDirectory(dir) || !existsSync(join(dir, 'journal.json'))) {
    throw new UsageError(
      `${dirArg} is not a night's directory (it has no journal.json)`,
      'give a night under the state directory: $XENTEST_STATE_DIR/nights/<id>/ (default /var/lib/xentest)',
    );
  }

  let night: NightRecord;
  try {
    night = await (deps.load ?? loadNightRecord)(dir);
  } catch (e) {
    if (e instanceof TypeError || e instanceof ReferenceError) throw e;
    process.stderr.write(`xentest: cannot read the night in ${dirArg}: ${(e as Error).message}\n`);
    return EXIT_EXPORT_FAILED;
  }

  const text = values.junit ? toJUnitXml(night) : JSON.stringify(toKcidb(night, { origin, tree: xenTreeOf(dir) }), null, 2) + '\n';
  if (values.out === undefined) {
    process.stdout.write(text);
    return 0;
  }
  try {
    writeFileAtomic(values.out, text, { createDir: false });
  } catch (e) {
    if (typeof (e as NodeJS.ErrnoException).code !== 'string') throw e;
    process.stderr.write(`xentest: cannot write ${values.out}: ${(e as Error).message}\n`);
    return EXIT_EXPORT_FAILED;
  }
  return 0;
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The Xen tree's name and URL from the night's copy of its control file
 * (control.cfg): the night's record has the tree's identity only. Without the
 * copy, or if it no longer reads, the checkout just goes without them.
 */
function xenTreeOf(dir: string): KcidbOptions['tree'] {
  try {
    const { xenTree } = loadControlFile(join(dir, 'control.cfg')).preferences;
    const s = xenTree.source;
    if (s.kind === 'directory') return { name: xenTree.name, kind: s.kind, url: s.path };
    if (s.kind === 'git' && s.ref !== undefined) return { name: xenTree.name, kind: s.kind, url: s.url, ref: s.ref };
    return { name: xenTree.name, kind: s.kind, url: s.url };
  } catch {
    return undefined;
  }
}

