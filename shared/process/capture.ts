/**
 * A short command whose whole output is wanted (xl list, xenstore-read):
 * run like every other command (timeout, own process group, output to a
 * log file), then the log read back. Its output is small by nature; the
 * read is capped so that a runaway command cannot fill memory.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runArgv, type CmdResult } from './run.js';

export interface Captured {
  result: CmdResult;
  /** stdout and stderr interleaved, at most maxBytes of it. */
  output: string;
}

export async function captureOutput(argv: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; maxBytes?: number } = {}): Promise<Captured> {
  const dir = mkdtempSync(join(tmpdir(), 'xentest-capture-'));
  try {
    const logFile = join(dir, 'out.log');
    const maxBytes = options.maxBytes ?? 1 << 20;
    const result = await runArgv(argv, { env: options.env, timeoutMs: options.timeoutMs ?? 30_000, logFile, tailBytes: 4096 });
    let text = '';
    try {
      text = readFileSync(logFile).subarray(0, maxBytes).toString('utf8');
    } catch {
      // Nothing was written: the command printed nothing.
    }
    return { result, output: withoutLogFrame(text) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The log's first line ("$ command  # cwd=... started=...") and its last ("# exited ... (finished ...)") are not the command's. */
function withoutLogFrame(text: string): string {
  const body = text.slice(text.indexOf('\n') + 1);
  const footer = /\n?# [^\n]* \(finished [^)\n]*\)\n$/.exec(body);
  return footer ? body.slice(0, footer.index) + (footer[0].startsWith('\n') ? '\n' : '') : body;
}

/** The output of a command that must succeed, or null when it did not. */
export async function outputIfSucceeded(argv: readonly string[], env?: NodeJS.ProcessEnv): Promise<string | null> {
  const c = await captureOutput(argv, { env });
  return c.result.exitStatus === 0 ? c.output : null;
}
