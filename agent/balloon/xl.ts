/**
 * `xl mem-set DOMAIN SIZE` from dom0 (tools/xl/xl_mem.c, libxl_mem.c): a
 * bare number is MiB, suffixes k, m, g; libxl refuses a target above the
 * domain's static-max and, for dom0, below 128 MiB, then writes
 * memory/target (KiB) to xenstore for the guest's balloon driver to follow.
 * The allocation is what `xl list` shows (MiB); the target is read back from
 * xenstore.
 */
import { captureOutput } from '../../shared/process/capture.js';
import { BalloonFormatError, BalloonUnavailable, type BalloonInterface, type BalloonReading, type Identity, type WriteOutcome } from './interface.js';
import { identityPrefix } from './write-once.js';
import { xenstoreNumber } from './xenstore.js';

export interface XlDomain {
  name: string;
  id: number;
}

/** `xl list NAME`'s one line after the header: name, id, Mem (MiB). */
export function parseXlListLine(text: string, domain: string): { name: string; id: number; memMiB: number } {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const line = lines.find((l, i) => i > 0 && /\s\d+\s+\d+\s+\d+\s/.test(l));
  const m = line ? /^(.*?)\s+(\d+)\s+(\d+)\s+\d+\s/.exec(line) : null;
  if (!m) throw new BalloonFormatError(`xl list ${domain}: no domain line in its output: ${JSON.stringify(text.slice(0, 300))}`);
  return { name: (m[1] as string).trim(), id: Number(m[2]), memMiB: Number(m[3]) };
}

export class XlBalloon implements BalloonInterface {
  readonly name = 'xl' as const;
  readonly where: string;

  constructor(
    readonly domain: string,
    readonly ownDomain: boolean,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.where = `xl mem-set ${domain}`;
  }

  private async list(): Promise<{ id: number; memMiB: number }> {
    const c = await captureOutput(['xl', 'list', this.domain], { env: this.env });
    if (c.result.exitStatus !== 0) {
      throw new BalloonUnavailable(`xl list ${this.domain} failed: ${c.output.trim().split('\n').pop() ?? ''}`, 'name a running domain with --domain (xl list shows them), and run it in dom0 as root');
    }
    return parseXlListLine(c.output, this.domain);
  }

  async read(): Promise<BalloonReading> {
    const { id, memMiB } = await this.list();
    let target = await xenstoreNumber(`/local/domain/${id}/memory/target`, this.env);
    // dom0 has no memory/target until the first xl mem-set; libxl then takes its allocation as
    // the target (libxl__fill_dom0_memory_info), and so does the suite (seen on a real Xen 4.17.5).
    if (target === null && id === 0) target = memMiB * 1024;
    if (target === null) throw new BalloonFormatError(`xenstore-read /local/domain/${id}/memory/target gave no number`);
    return { currentKb: memMiB * 1024, targetKb: target, hardLimitKb: null };
  }

  request(targetKb: number, as: Identity = 'self'): Promise<WriteOutcome> {
    return this.memSet(`${targetKb}k`, as);
  }

  /** xl mem-set with this size argument, exactly. */
  async memSet(size: string, as: Identity = 'self'): Promise<WriteOutcome> {
    const c = await captureOutput([...identityPrefix(as), 'xl', 'mem-set', this.domain, size], { env: this.env });
    if (c.result.exitStatus === 0) return { ok: true, written: 0 };
    // libxl's error, then xl's own "cannot set domid N dynamic max memory to : SIZE".
    const said = c.output.trim().split('\n').filter((l) => l !== '').join(' / ');
    return { ok: false, code: `exit ${c.result.exitStatus ?? c.result.signal}`, at: 'command', message: said };
  }

  async staticMaxKb(): Promise<number | null> {
    const { id } = await this.list();
    return xenstoreNumber(`/local/domain/${id}/memory/static-max`, this.env);
  }

  /** xl mem-set raises max_pages with the target: no limit below static-max. */
  async xenLimitKb(): Promise<number | null> {
    return null;
  }
}
