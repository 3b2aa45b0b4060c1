/**
 * Git sources: one bare clone per URL in the cache (cacheDir/git/<hash of
 * url>), fetched shallowly and reused night after night, and the wanted
 * commit exported into a directory.
 *
 * The tree is exported with `git archive <sha> | tar -x` (through the same
 * guarded unpacker as tarballs), not a worktree or a local clone: dest gets a
 * clean tree and nothing else, with no .git that points back into the cache
 * (so the cache can be fetched, gc'd or deleted while a build runs, and a
 * build cannot write into it), and no git metadata to go stale. The price:
 * the tree has no .git, so a build that asks git for its version will not
 * find one; the commit is in the identity instead.
 *
 * Safety: nothing from the fetched repository configures git. Hooks never run
 * (core.hooksPath=/dev/null on every command, and the clone is made without
 * templates); the clone's info/attributes overrides the tree's .gitattributes
 * so export-ignore, export-subst, filters, ident and eol conversion do not
 * change what is exported; only the file, git, http(s) and ssh transports are
 * allowed (no ext::); git never prompts for a password; ambient GIT_*
 * variables (GIT_DIR, GIT_WORK_TREE...) are not passed on.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GitError, GitPluginError, simpleGit, type SimpleGit } from 'simple-git';

import { findOnPath } from './decompress.js';
import { FetchError, TransientFailure } from './errors.js';
import { extractArchive, isCorruptArchiveError, type ExtractResult } from './extract.js';
import { serialized } from './lock.js';
import type { ResolvedOptions } from './options.js';
import { formatDuration, withRetries } from './retry.js';
import { urlKey } from './tarball-cache.js';

export interface GitSource {
  readonly url: string;
  readonly ref?: string;
}

export interface GitRevision {
  /** The full commit sha. */
  sha: string;
  /** False when the commit was already in the cached clone and nothing was transferred. */
  downloaded: boolean;
  repoDir: string;
}

/** Every git command runs with these, whatever the repository's or the user's config says. */
const SAFE_CONFIG: readonly string[] = [
  'core.hooksPath=/dev/null',
  'core.fsmonitor=false',
  // A gc that git decides to run after a fetch finishes before we go on, instead of outliving us in the background.
  'gc.autoDetach=false',
];

const ATTRIBUTES = [
  '# Written by xentest: the exported tree is exactly what the commit holds,',
  '# whatever the .gitattributes inside it ask for.',
  '* -export-ignore -export-subst -filter -ident -text -eol -working-tree-encoding',
  '',
].join('\n');

const ENV_WE_SET = ['GIT_DIR', 'GIT_TERMINAL_PROMPT', 'GIT_ALLOW_PROTOCOL', 'GIT_SSH_COMMAND'] as const;

/** Variables simple-git refuses to pass unless named; we pass none of them from the ambient environment. */
const GUARDED_NON_GIT = new Set(['editor', 'visual', 'pager', 'ssh_askpass', 'prefix']);

const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;

const TRANSIENT_PATTERNS: readonly RegExp[] = [
  /could not resolve host/i,
  /connection refused/i,
  /connection reset/i,
  /connection timed out/i,
  /operation timed out/i,
  /network is unreachable/i,
  /no route to host/i,
  /early eof/i,
  /the remote end hung up unexpectedly/i,
  /rpc failed/i,
  /transfer closed/i,
  /returned error: (?:5\d\d|429|408)/i,
  /unable to connect/i,
  /failed to connect/i,
];

const NOT_A_REPOSITORY: readonly RegExp[] = [/does not appear to be a git repository/i, /repository .* not found/i, /returned error: 404/i];
const ACCESS_DENIED: readonly RegExp[] = [/permission denied/i, /authentication failed/i, /host key verification failed/i, /could not read username/i, /returned error: 40[13]/i];

function gitEnv(gitDir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    const lower = key.toLowerCase();
    if (lower.startsWith('git_') || GUARDED_NON_GIT.has(lower)) continue;
    env[key] = value;
  }
  // English messages, which classifyGitError reads.
  env.LC_ALL = 'C';
  env.LANGUAGE = 'C';
  env.GIT_DIR = gitDir;
  env.GIT_TERMINAL_PROMPT = '0';
  env.GIT_ALLOW_PROTOCOL = 'file:git:http:https:ssh';
  env.GIT_SSH_COMMAND = process.env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes';
  return env;
}

function gitAt(gitDir: string, cwd: string, o: ResolvedOptions): SimpleGit {
  return simpleGit({
    baseDir: cwd,
    maxConcurrentProcesses: 1,
    config: [...SAFE_CONFIG],
    timeout: { block: o.timeoutMs },
    allowEnvironment: [...ENV_WE_SET],
    // simple-git guards these settings against untrusted callers; ours make git safer, not less.
    unsafe: { allowUnsafeHooksPath: true, allowUnsafeFsMonitor: true, allowUnsafeSshCommand: true, allowUnsafeTemplateDir: true },
    ...(o.signal ? { abort: o.signal } : {}),
  }).env(gitEnv(gitDir));
}

/** Git's boilerplate after the line that says what actually happened. */
const BOILERPLATE = [/^could not read from remote repository\.?$/i, /^please make sure you have the correct access rights/i, /^and the repository exists\.?$/i];

function firstLines(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim().replace(/^(fatal|error): /, ''))
    .filter((l) => l !== '' && !l.startsWith('hint:') && !BOILERPLATE.some((b) => b.test(l)));
  return lines.slice(0, 3).join('; ') || 'no message';
}

/** A failed git command as a transient failure, a FetchError, or (abort) the abort reason. */
function classifyGitError(url: string, error: unknown, o: ResolvedOptions): Error {
  if (o.signal?.aborted) return o.signal.reason as Error;
  if (error instanceof GitPluginError && error.plugin === 'timeout') {
    return new TransientFailure(`git made no progress for ${formatDuration(o.timeoutMs)}`, 'the server or the network is slow or down; try again later');
  }
  if (!(error instanceof GitError)) return error as Error;
  const text = error.message;
  const said = firstLines(text);
  if (ACCESS_DENIED.some((p) => p.test(text))) {
    return new FetchError(url, `access denied: ${said}`, "check the URL and this machine's credentials (ssh key, known_hosts) for that server", { cause: error });
  }
  if (NOT_A_REPOSITORY.some((p) => p.test(text))) {
    return new FetchError(url, `there is no git repository at this URL: ${said}`, 'check the URL in the control file', { cause: error });
  }
  if (TRANSIENT_PATTERNS.some((p) => p.test(text))) {
    return new TransientFailure(`git could not reach the repository: ${said}`, 'check the URL, the network, and that the server is up; try again later');
  }
  return new FetchError(url, `git failed: ${said}`, 'check the URL and ref in the control file', { cause: error });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A lock git left this long ago belongs to a git that died (power loss, SIGKILL), not to one at work. */
const STALE_LOCK_MS = 60 * 60 * 1000;

/**
 * Removes lock files a killed git left behind (shallow.lock, packed-refs.lock,
 * refs/.../x.lock): git never removes them itself, and every later fetch
 * would fail on them until someone deleted them by hand.
 */
async function removeStaleLocks(dir: string, depth = 0): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && (depth > 0 || entry.name === 'refs')) {
      await removeStaleLocks(path, depth + 1);
    } else if (entry.isFile() && entry.name.endsWith('.lock')) {
      const st = await stat(path).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) await rm(path, { force: true });
    }
  }
}

/**
 * Whether `ref` can be a branch, tag or ref name (after git check-ref-format),
 * and in particular cannot be taken for an option of the git command it is passed to.
 */
export function isPlausibleRef(ref: string): boolean {
  if (ref === '' || ref === '@' || ref.startsWith('-') || ref.startsWith('/') || ref.endsWith('/') || ref.endsWith('.') || ref.endsWith('.lock')) return false;
  if (/[\x00-\x20\x7f~^:?*[\\]|\.\.|@\{|\/\/|\/\./.test(ref)) return false;
  return !ref.split('/').some((part) => part.startsWith('.'));
}

/** Makes the bare clone for `url` if there is no usable one; true if it was made now. */
async function ensureRepository(repoDir: string, url: string, o: ResolvedOptions): Promise<boolean> {
  if ((await exists(join(repoDir, 'HEAD'))) && (await exists(join(repoDir, 'objects')))) {
    const configured = await readFile(join(repoDir, 'xentest-url'), 'utf8').catch(() => undefined);
    if (configured === url) {
      await writeFile(join(repoDir, 'info', 'attributes'), ATTRIBUTES);
      await removeStaleLocks(repoDir);
      return false;
    }
  }
  // Missing, or left half made by a crash: start again.
  await rm(repoDir, { recursive: true, force: true });
  await mkdir(dirname(repoDir), { recursive: true });
  const tmp = await mkdtemp(`${repoDir}.init-`);
  try {
    const git = gitAt(tmp, tmp, o);
    await git.raw(['init', '--bare', '--quiet', '--template=']);
    await git.raw(['config', 'remote.origin.url', url]);
    await mkdir(join(tmp, 'info'), { recursive: true });
    await writeFile(join(tmp, 'info', 'attributes'), ATTRIBUTES);
    await writeFile(join(tmp, 'xentest-url'), url);
    await rename(tmp, repoDir);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
  return true;
}

async function hasCommit(git: SimpleGit, sha: string): Promise<boolean> {
  try {
    await git.raw(['cat-file', '-e', `${sha}^{commit}`]);
    return true;
  } catch {
    return false;
  }
}

/** `git ls-remote` output as ref name -> sha (peeled tags appear as "refs/tags/x^{}"). */
function parseLsRemote(text: string): Map<string, string> {
  const refs = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{40,64})\t(\S+)$/.exec(line);
    if (m) refs.set(m[2] as string, m[1] as string);
  }
  return refs;
}

/** Which advertised ref `ref` means, by git's own order: exact, refs/<ref>, tags, then branches. */
function pickRef(refs: Map<string, string>, ref: string): string | undefined {
  const candidates = ref.startsWith('refs/') ? [ref] : [`refs/${ref}`, `refs/tags/${ref}`, `refs/heads/${ref}`];
  return candidates.find((c) => refs.has(c));
}

/**
 * Makes the cached clone of `source.url` hold the commit `source.ref` names
 * (the remote's HEAD when there is none) and returns its full sha.
 */
export async function resolveGitRevision(source: GitSource, o: ResolvedOptions): Promise<GitRevision> {
  const url = source.url;
  if (source.ref !== undefined && !isPlausibleRef(source.ref)) {
    throw new FetchError(url, `"${source.ref}" is not a valid branch, tag or commit name`, 'check the ref after # in the control file');
  }
  if (!(await findOnPath('git'))) {
    throw new FetchError(url, 'git is not installed, and it is needed to fetch a git repository', "install Debian's git package (apt-get install git)");
  }
  const repoDir = join(o.cacheDir, 'git', urlKey(url));
  return serialized(repoDir, async () => {
    const created = await ensureRepository(repoDir, url, o);
    const git = gitAt(repoDir, repoDir, o);
    const policy = { url, retries: o.retries, baseDelayMs: o.retryDelayMs, maxDelayMs: Math.max(o.retryDelayMs, 30_000), log: o.log, ...(o.signal ? { signal: o.signal } : {}) };
    const remote = (args: string[]): Promise<string> =>
      withRetries(policy, async () => {
        try {
          return await git.raw(args);
        } catch (error) {
          throw classifyGitError(url, error, o);
        }
      });
    const label = source.ref ?? 'HEAD';
    const fetched = (sha: string): GitRevision => {
      o.log(`${url}: ${created ? 'cloned' : 'fetched'} ${label} at ${sha.slice(0, 12)} into ${created ? 'a new shallow clone' : 'the cached clone'}`);
      return { sha, downloaded: true, repoDir };
    };
    const alreadyHere = (sha: string): GitRevision => {
      o.log(`${url}: ${label} is at ${sha.slice(0, 12)}, already in the cached clone`);
      return { sha, downloaded: false, repoDir };
    };

    if (source.ref !== undefined && FULL_SHA.test(source.ref)) {
      const sha = source.ref.toLowerCase();
      if (await hasCommit(git, sha)) return alreadyHere(sha);
      try {
        await remote(['fetch', '--quiet', '--depth=1', '--no-tags', 'origin', sha]);
      } catch (error) {
        if (!(error instanceof FetchError)) throw error;
        // Servers without uploadpack.allowReachableSHA1InWant (and protocol v0) refuse a bare sha.
        o.log(`${url}: the server would not send commit ${sha.slice(0, 12)} by itself (${error.reason}); fetching all branches and tags`);
        const shallow = (await git.raw(['rev-parse', '--is-shallow-repository'])).trim() === 'true';
        await remote(['fetch', '--quiet', '--no-tags', ...(shallow ? ['--unshallow'] : []), 'origin', '+refs/heads/*:refs/xentest/all/heads/*', '+refs/tags/*:refs/xentest/all/tags/*']);
      }
      if (!(await hasCommit(git, sha))) {
        throw new FetchError(url, `commit ${sha} is not in the repository`, 'check the commit sha after # in the control file, and that it has been pushed to this repository');
      }
      await git.raw(['update-ref', `refs/xentest/commits/${sha}`, sha]);
      return fetched(sha);
    }

    const listing = parseLsRemote(await remote(['ls-remote', 'origin', source.ref ?? 'HEAD']));
    let remoteRef: string;
    if (source.ref === undefined) {
      if (!listing.has('HEAD')) throw new FetchError(url, 'the repository has no HEAD (is it empty?)', 'name a branch, tag or commit after # in the control file');
      remoteRef = 'HEAD';
    } else {
      const picked = pickRef(listing, source.ref);
      if (picked === undefined) {
        throw new FetchError(
          url,
          `there is no branch or tag named "${source.ref}" in the repository`,
          'check the ref after # in the control file; a commit must be given as its full 40-character sha',
        );
      }
      remoteRef = picked;
    }
    const advertised = (listing.get(`${remoteRef}^{}`) ?? listing.get(remoteRef)) as string;
    const localRef = `refs/xentest/${remoteRef}`;
    if (await hasCommit(git, advertised)) {
      await git.raw(['update-ref', localRef, advertised]);
      return alreadyHere(advertised);
    }
    await remote(['fetch', '--quiet', '--depth=1', '--no-tags', 'origin', `+${remoteRef}:${localRef}`]);
    // What was fetched, not what was advertised a moment before: the branch may have moved in between.
    const sha = (await git.raw(['rev-parse', '--verify', `${localRef}^{commit}`])).trim();
    await git.raw(['update-ref', localRef, sha]);
    return fetched(sha);
  });
}

/** Writes the tree of commit `sha` into `into` (an empty directory): `git archive` into the guarded unpacker. */
export async function exportCommit(url: string, revision: GitRevision, into: string, o: ResolvedOptions): Promise<ExtractResult> {
  const args = [...SAFE_CONFIG.flatMap((c) => ['-c', c]), 'archive', '--format=tar', revision.sha];
  // Spawned directly rather than through simple-git, which collects a
  // command's whole output in memory: a Linux tree is gigabytes.
  const child = spawn('git', args, { cwd: revision.repoDir, env: gitEnv(revision.repoDir), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderr = (stderr + text).slice(-4096);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', (code) => resolve(code));
  });
  const kill = (): void => {
    if (child.pid === undefined || child.exitCode !== null) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  try {
    const result = await extractArchive({
      url,
      input: child.stdout,
      compression: 'none',
      into,
      maxBytes: o.maxBytes,
      timeoutMs: o.timeoutMs,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const code = await exited;
    if (code !== 0) throw new FetchError(url, `git archive ${revision.sha.slice(0, 12)} failed: ${firstLines(stderr)}`, `the cached clone may be damaged: delete ${revision.repoDir} and fetch again`);
    return result;
  } catch (error) {
    kill();
    const code = await exited;
    // A git archive that failed explains a truncated tar stream better than the unpacker can.
    if (isCorruptArchiveError(error) && code !== 0 && code !== null && stderr.trim()) throw new FetchError(url, `git archive ${revision.sha.slice(0, 12)} failed: ${firstLines(stderr)}`, `the cached clone may be damaged: delete ${revision.repoDir} and fetch again`, { cause: error });
    throw error;
  }
}
