/**
 * Git sources against real repositories made with the git CLI in temp dirs:
 * one cached clone per URL, reused and fetched shallowly; branches, tags,
 * commits and the remote's HEAD; a clean exported tree; and nothing in the
 * fetched repository (its .gitattributes, hooks from any config) gets to run
 * or change what is exported.
 */
import { expect } from 'chai';
import { chmodSync, existsSync, utimesSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Source } from '../shared/controlfile/sources.js';
import { FetchError, fetchTree, probeIdentity, type FetchOptions } from '../shared/fetch/index.js';
import { closedPort } from './support/fetch-http.js';
import { git, TestRepo } from './support/fetch-git.js';

async function rejected(promise: Promise<unknown>): Promise<FetchError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FetchError) return error;
    throw error;
  }
  throw new Error('expected a FetchError, but the fetch succeeded');
}

describe('fetch: git repositories', function () {
  let root: string;
  let cacheDir: string;
  let dest: string;
  let logs: string[];
  let origin: TestRepo;
  let first: string;

  const options = (extra: Partial<FetchOptions> = {}): FetchOptions => ({
    cacheDir,
    retries: 1,
    retryDelayMs: 5,
    timeoutMs: 20_000,
    log: (line) => logs.push(line),
    ...extra,
  });
  const source = (ref?: string, url = origin.url): Source => ({ kind: 'git', url, ...(ref !== undefined ? { ref } : {}) });
  const clones = (): string[] => (existsSync(join(cacheDir, 'git')) ? readdirSync(join(cacheDir, 'git')) : []);
  const cloneDir = (): string => {
    const [only] = clones();
    return join(cacheDir, 'git', only!);
  };

  /** Runs `work` with HOME pointing at a directory whose .gitconfig says `config`. */
  const withGlobalConfig = async <T>(config: string, work: () => Promise<T>): Promise<T> => {
    const home = join(root, 'home');
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, '.gitconfig'), config);
    const saved = process.env.HOME;
    process.env.HOME = home;
    try {
      return await work();
    } finally {
      process.env.HOME = saved;
    }
  };

  beforeEach(function () {
    root = mkdtempSync(join(tmpdir(), 'xentest-fetch-git-'));
    cacheDir = join(root, 'cache');
    dest = join(root, 'work', 'xen');
    logs = [];
    origin = TestRepo.create(join(root, 'origin'));
    origin.write('README', 'Xen\n');
    origin.write('tools/build.sh', '#!/bin/sh\necho build\n', 0o755);
    origin.write('version.txt', 'commit $Format:%H$\n');
    origin.write('secret.txt', 'kept\n');
    origin.write('.gitattributes', 'version.txt export-subst\nsecret.txt export-ignore\n');
    first = origin.commit('first');
    origin.run(['symbolic-ref', 'HEAD', 'refs/heads/main']);
  });

  afterEach(function () {
    rmSync(root, { recursive: true, force: true });
  });

  it('clones a branch shallowly and exports a clean tree with its modes and symbolic links', async function () {
    symlinkSync('tools/build.sh', join(origin.dir, 'build'));
    const second = origin.commit('second');

    const got = await fetchTree(source('main'), dest, options());
    expect(got).to.deep.equal({ dir: dest, identity: `git:${second}`, downloaded: true, description: `git ${origin.url} main at ${second.slice(0, 7)}` });
    expect(readFileSync(join(dest, 'README'), 'utf8')).to.equal('Xen\n');
    expect(statSync(join(dest, 'tools/build.sh')).mode & 0o777).to.equal(0o755);
    expect(readlinkSync(join(dest, 'build'))).to.equal('tools/build.sh');
    expect(existsSync(join(dest, '.git'))).to.equal(false);
    expect(clones()).to.have.length(1);
    expect(git(cloneDir(), ['rev-parse', '--is-shallow-repository'])).to.equal('true');
    expect(git(cloneDir(), ['rev-list', '--count', '--all'])).to.equal('1');
    expect(logs).to.include(`${origin.url}: cloned main at ${second.slice(0, 12)} into a new shallow clone`);
  });

  it("ignores the repository's .gitattributes: export-ignore and export-subst change nothing", async function () {
    await fetchTree(source('main'), dest, options());
    expect(readFileSync(join(dest, 'secret.txt'), 'utf8')).to.equal('kept\n');
    expect(readFileSync(join(dest, 'version.txt'), 'utf8')).to.equal('commit $Format:%H$\n');
  });

  it('reuses the cached clone: a second commit is fetched into it, and an unchanged ref transfers nothing', async function () {
    const one = await fetchTree(source('main'), dest, options());
    expect(one.identity).to.equal(`git:${first}`);
    const repo = cloneDir();
    writeFileSync(join(repo, 'marker'), 'still the same clone');

    origin.write('README', 'Xen, second\n');
    const second = origin.commit('second');
    logs = [];
    const two = await fetchTree(source('main'), dest, options());
    expect(two).to.deep.equal({ dir: dest, identity: `git:${second}`, downloaded: true, description: `git ${origin.url} main at ${second.slice(0, 7)}` });
    expect(readFileSync(join(dest, 'README'), 'utf8')).to.equal('Xen, second\n');
    expect(clones()).to.have.length(1);
    expect(readFileSync(join(repo, 'marker'), 'utf8')).to.equal('still the same clone');
    expect(logs).to.include(`${origin.url}: fetched main at ${second.slice(0, 12)} into the cached clone`);
    expect(logs.some((l) => l.includes('cloned'))).to.equal(false);

    logs = [];
    const three = await fetchTree(source('main'), dest, options());
    expect(three.identity).to.equal(`git:${second}`);
    expect(three.downloaded).to.equal(false);
    expect(logs).to.include(`${origin.url}: main is at ${second.slice(0, 12)}, already in the cached clone`);
  });

  it('resolves annotated and lightweight tags to their commit', async function () {
    origin.run(['tag', '-a', '-m', 'release 4.17', 'RELEASE-4.17.0']);
    origin.run(['tag', 'light']);
    origin.write('README', 'after the release\n');
    origin.commit('second');
    const annotated = await fetchTree(source('RELEASE-4.17.0'), dest, options());
    expect(annotated.identity).to.equal(`git:${first}`);
    expect(readFileSync(join(dest, 'README'), 'utf8')).to.equal('Xen\n');
    const light = await probeIdentity(source('light'), options());
    expect(light).to.deep.equal({ identity: `git:${first}`, downloaded: false });
  });

  it('without a ref, follows the remote HEAD', async function () {
    origin.run(['checkout', '--quiet', '-b', 'other']);
    origin.write('README', 'other branch\n');
    origin.commit('on other');
    origin.run(['checkout', '--quiet', 'main']);
    const got = await fetchTree(source(), dest, options());
    expect(got.identity).to.equal(`git:${first}`);
    expect(got.description).to.equal(`git ${origin.url} HEAD at ${first.slice(0, 7)}`);
    origin.run(['symbolic-ref', 'HEAD', 'refs/heads/other']);
    const other = await probeIdentity(source(), options());
    expect(other.identity).to.equal(`git:${git(origin.dir, ['rev-parse', 'other'])}`);
  });

  it('fetches a full commit sha directly, shallowly', async function () {
    origin.write('README', 'newer\n');
    origin.commit('second');
    const got = await fetchTree(source(first), dest, options());
    expect(got.identity).to.equal(`git:${first}`);
    expect(got.downloaded).to.equal(true);
    expect(readFileSync(join(dest, 'README'), 'utf8')).to.equal('Xen\n');
    expect(git(cloneDir(), ['rev-list', '--count', '--all'])).to.equal('1');
    expect(logs.some((l) => l.includes('would not send'))).to.equal(false);
    const again = await probeIdentity(source(first), options());
    expect(again).to.deep.equal({ identity: `git:${first}`, downloaded: false });
  });

  it('falls back to fetching everything when the server will not send a commit by its sha', async function () {
    origin.write('README', 'newer\n');
    origin.commit('second');
    // Protocol v0 and no uploadpack.allowReachableSHA1InWant: the server refuses unadvertised commits.
    const got = await withGlobalConfig('[protocol]\n\tversion = 0\n', () => fetchTree(source(first), dest, options()));
    expect(got.identity).to.equal(`git:${first}`);
    expect(readFileSync(join(dest, 'README'), 'utf8')).to.equal('Xen\n');
    expect(logs.some((l) => l.includes(`would not send commit ${first.slice(0, 12)} by itself`) && l.includes('fetching all branches and tags'))).to.equal(true);
  });

  it('a ref that does not exist is a FetchError naming the URL and the ref', async function () {
    const error = await rejected(fetchTree(source('no-such-branch'), dest, options()));
    expect(error.url).to.equal(origin.url);
    expect(error.reason).to.equal('there is no branch or tag named "no-such-branch" in the repository');
    expect(error.hint).to.include('full 40-character sha');
    expect(existsSync(dest)).to.equal(false);
  });

  it('refuses a ref that git could take for an option, without running git', async function () {
    const marker = join(root, 'pwned');
    const error = await rejected(fetchTree(source(`--upload-pack=touch ${marker}`), dest, options()));
    expect(error.reason).to.equal(`"--upload-pack=touch ${marker}" is not a valid branch, tag or commit name`);
    expect(existsSync(marker)).to.equal(false);
    expect(clones()).to.deep.equal([]);
  });

  it('removes a lock file that a killed git left in the cached clone', async function () {
    await fetchTree(source('main'), dest, options());
    const lock = join(cloneDir(), 'shallow.lock');
    writeFileSync(lock, '');
    const old = new Date(Date.now() - 2 * 3600 * 1000);
    utimesSync(lock, old, old);
    origin.write('README', 'second\n');
    const second = origin.commit('second');
    const got = await fetchTree(source('main'), dest, options());
    expect(got.identity).to.equal(`git:${second}`);
    expect(existsSync(lock)).to.equal(false);
  });

  it('says to install git when it is missing', async function () {
    const saved = process.env.PATH;
    process.env.PATH = join(root, 'empty-bin');
    let error: FetchError;
    try {
      error = await rejected(fetchTree(source('main'), dest, options()));
    } finally {
      process.env.PATH = saved;
    }
    expect(error.reason).to.equal('git is not installed, and it is needed to fetch a git repository');
    expect(error.hint).to.equal("install Debian's git package (apt-get install git)");
  });

  it('a commit that does not exist is a FetchError naming it', async function () {
    const missing = 'f'.repeat(40);
    const error = await rejected(fetchTree(source(missing), dest, options()));
    expect(error.reason).to.equal(`commit ${missing} is not in the repository`);
    expect(existsSync(dest)).to.equal(false);
  });

  it('a URL with no repository behind it is a FetchError', async function () {
    const url = `file://${join(root, 'nothing-here')}`;
    const error = await rejected(fetchTree(source('main', url), dest, options()));
    expect(error.url).to.equal(url);
    expect(error.reason).to.match(/^there is no git repository at this URL: /);
  });

  it('an unreachable git server (a closed port) is a FetchError after the retries', async function () {
    const port = await closedPort();
    const url = `git://127.0.0.1:${port}/xen.git`;
    const error = await rejected(fetchTree(source('main', url), dest, options({ retries: 1 })));
    expect(error.url).to.equal(url);
    expect(error.reason).to.match(/^git could not reach the repository: .*Connection refused.* \(gave up after 2 attempts\)$/);
    expect(logs.filter((l) => l.includes('retry 1/1'))).to.have.length(1);
  });

  it('runs no hook, even one that the global git config points at', async function () {
    const hooks = join(root, 'hooks');
    mkdirSync(hooks);
    const marker = join(root, 'hook-ran');
    for (const hook of ['reference-transaction', 'post-checkout', 'post-merge']) {
      writeFileSync(join(hooks, hook), `#!/bin/sh\necho ${hook} >> ${marker}\n`);
      chmodSync(join(hooks, hook), 0o755);
    }
    const config = `[core]\n\thooksPath = ${hooks}\n`;
    // The hook is real: a plain git fetch with this config runs it.
    const scratch = join(root, 'scratch');
    git(root, ['init', '--quiet', '--bare', scratch]);
    mkdirSync(join(root, 'home'));
    writeFileSync(join(root, 'home', '.gitconfig'), config);
    git(scratch, ['fetch', '--quiet', origin.url, 'main:refs/heads/main'], { HOME: join(root, 'home') });
    expect(existsSync(marker)).to.equal(true);
    rmSync(marker);

    await withGlobalConfig(config, () => fetchTree(source('main'), dest, options()));
    origin.write('README', 'second\n');
    origin.commit('second');
    await withGlobalConfig(config, () => fetchTree(source('main'), dest, options()));
    expect(existsSync(marker)).to.equal(false);
  });

  it('refuses a repository whose symbolic link points outside the tree', async function () {
    symlinkSync('../../../etc', join(origin.dir, 'escape'));
    origin.commit('evil');
    const error = await rejected(fetchTree(source('main'), dest, options()));
    expect(error.reason).to.equal('symbolic link "escape" -> "../../../etc" points outside the tree');
    expect(existsSync(dest)).to.equal(false);
    expect(readdirSync(join(root, 'work'))).to.deep.equal([]);
  });

  it('probeIdentity fetches into the cache, and fetchTree then has nothing to transfer', async function () {
    const probed = await probeIdentity(source('main'), options());
    expect(probed).to.deep.equal({ identity: `git:${first}`, downloaded: true });
    expect(existsSync(dest)).to.equal(false);
    const got = await fetchTree(source('main'), dest, options());
    expect(got.identity).to.equal(probed.identity);
    expect(got.downloaded).to.equal(false);
  });
});
