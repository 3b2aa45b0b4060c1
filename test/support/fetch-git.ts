/**
 * Real git repositories in temp dirs, made with the git CLI, for fetch tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const IDENTITY = {
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.invalid',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
};

export function git(cwd: string, args: readonly string[], env: Record<string, string> = {}): string {
  return execFileSync('git', args, { cwd, env: { ...process.env, ...IDENTITY, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

export class TestRepo {
  constructor(readonly dir: string) {}

  static create(dir: string, branch = 'main'): TestRepo {
    mkdirSync(dir, { recursive: true });
    git(dir, ['init', '--quiet', '-b', branch]);
    return new TestRepo(dir);
  }

  get url(): string {
    return pathToFileURL(this.dir).href;
  }

  write(path: string, content: string, mode?: number): void {
    const full = join(this.dir, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content, mode === undefined ? undefined : { mode });
  }

  /** Stages everything and commits; returns the new commit's sha. */
  commit(message: string): string {
    git(this.dir, ['add', '-A']);
    git(this.dir, ['commit', '--quiet', '--allow-empty', '-m', message]);
    return this.head();
  }

  head(): string {
    return git(this.dir, ['rev-parse', 'HEAD']);
  }

  run(args: readonly string[], env: Record<string, string> = {}): string {
    return git(this.dir, args, env);
  }
}
