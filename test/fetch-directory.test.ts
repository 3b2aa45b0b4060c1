/**
 * Directory sources: copied as they are (links stay links, modes and mtimes
 * kept) and identified by their content, so a night can tell an unchanged
 * tree from a changed one.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Source } from '../shared/controlfile/sources.js';
import { FetchError, fetchTree, probeIdentity, type FetchOptions } from '../shared/fetch/index.js';

async function rejected(promise: Promise<unknown>): Promise<FetchError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FetchError) return error;
    throw error;
  }
  throw new Error('expected a FetchError, but the fetch succeeded');
}

describe('fetch: directories', function () {
  let root: string;
  let src: string;
  let dest: string;
  let options: FetchOptions;
  const source = (): Source => ({ kind: 'directory', path: src });
  const identity = async (): Promise<string> => (await probeIdentity(source(), options)).identity;
  const when = new Date('2023-08-01T10:00:00Z');

  beforeEach(function () {
    root = mkdtempSync(join(tmpdir(), 'xentest-fetch-dir-'));
    src = join(root, 'src');
    dest = join(root, 'work', 'xen');
    options = { cacheDir: join(root, 'cache') };
    mkdirSync(join(src, 'tools', 'private'), { recursive: true });
    writeFileSync(join(src, 'README'), 'Xen\n');
    writeFileSync(join(src, 'tools', 'build.sh'), '#!/bin/sh\n');
    chmodSync(join(src, 'tools', 'build.sh'), 0o755);
    writeFileSync(join(src, 'tools', 'private', 'key'), 'secret\n');
    chmodSync(join(src, 'tools', 'private', 'key'), 0o600);
    chmodSync(join(src, 'tools', 'private'), 0o750);
    symlinkSync('tools/build.sh', join(src, 'build'));
    symlinkSync('/nonexistent/absolute', join(src, 'dangling'));
    utimesSync(join(src, 'README'), when, when);
    utimesSync(join(src, 'tools', 'private'), when, when);
  });

  afterEach(function () {
    rmSync(root, { recursive: true, force: true });
  });

  it('copies the tree, keeping symbolic links as links, modes and mtimes', async function () {
    const got = await fetchTree(source(), dest, options);
    expect(got.dir).to.equal(dest);
    expect(got.identity).to.match(/^tree:[0-9a-f]{64}$/);
    expect(got.downloaded).to.equal(false);
    expect(got.description).to.equal(`directory ${src} (${got.identity.slice(0, 17)})`);
    expect(readFileSync(join(dest, 'README'), 'utf8')).to.equal('Xen\n');
    expect(statSync(join(dest, 'tools/build.sh')).mode & 0o7777).to.equal(0o755);
    expect(statSync(join(dest, 'tools/private/key')).mode & 0o7777).to.equal(0o600);
    expect(statSync(join(dest, 'tools/private')).mode & 0o7777).to.equal(0o750);
    expect(lstatSync(join(dest, 'build')).isSymbolicLink()).to.equal(true);
    expect(readlinkSync(join(dest, 'build'))).to.equal('tools/build.sh');
    expect(readlinkSync(join(dest, 'dangling'))).to.equal('/nonexistent/absolute');
    expect(statSync(join(dest, 'README')).mtime.toISOString()).to.equal(when.toISOString());
    expect(statSync(join(dest, 'tools/private')).mtime.toISOString()).to.equal(when.toISOString());
    expect(got.identity).to.equal(await identity());
    expect(readdirSync(join(root, 'work'))).to.deep.equal(['xen']);
  });

  it('the identity is stable, ignores mtimes, and changes with content, modes, names and link targets', async function () {
    const base = await identity();
    expect(await identity()).to.equal(base);

    utimesSync(join(src, 'README'), new Date(), new Date());
    expect(await identity(), 'touching a file').to.equal(base);

    const seen = new Set([base]);
    const changes: Array<[string, () => void]> = [
      ['content', () => writeFileSync(join(src, 'README'), 'Xen 4.17\n')],
      ['mode', () => chmodSync(join(src, 'tools/build.sh'), 0o700)],
      ['name', () => renameSync(join(src, 'README'), join(src, 'README.md'))],
      ['link target', () => (rmSync(join(src, 'build')), symlinkSync('tools/other.sh', join(src, 'build')))],
      ['new empty directory', () => mkdirSync(join(src, 'empty'))],
      ['file becomes a link', () => (rmSync(join(src, 'README.md')), symlinkSync('Xen', join(src, 'README.md')))],
    ];
    for (const [what, change] of changes) {
      change();
      const now = await identity();
      expect(seen.has(now), `identity after a change of ${what}`).to.equal(false);
      seen.add(now);
    }
  });

  it('leaves .git out of the identity but copies it', async function () {
    execFileSync('git', ['init', '--quiet', src]);
    const before = await identity();
    writeFileSync(join(src, '.git', 'index'), 'rewritten by git status');
    expect(await identity()).to.equal(before);
    await fetchTree(source(), dest, options);
    expect(existsSync(join(dest, '.git', 'HEAD'))).to.equal(true);
  });

  it('a missing directory is a FetchError naming it', async function () {
    const missing = join(root, 'no-such-dir');
    const error = await rejected(fetchTree({ kind: 'directory', path: missing }, dest, options));
    expect(error.url).to.equal(missing);
    expect(error.reason).to.equal('no such directory');
    expect(error.message).to.equal(`${missing}: no such directory`);
    expect(existsSync(dest)).to.equal(false);
    const probe = await rejected(probeIdentity({ kind: 'directory', path: missing }, options));
    expect(probe.reason).to.equal('no such directory');
  });

  it('a file where the directory should be is a FetchError', async function () {
    const error = await rejected(fetchTree({ kind: 'directory', path: join(src, 'README') }, dest, options));
    expect(error.reason).to.equal('not a directory');
  });

  it('refuses a special file in the tree, leaving nothing behind', async function () {
    execFileSync('mkfifo', [join(src, 'tools', 'pipe')]);
    const error = await rejected(fetchTree(source(), dest, options));
    expect(error.reason).to.equal('tools/pipe is a FIFO (named pipe), which a source tree has no business holding');
    expect(existsSync(dest)).to.equal(false);
    expect(readdirSync(join(root, 'work'))).to.deep.equal([]);
  });

  it('refuses a dest inside the source, and a dest that holds the source (which replacing would delete)', async function () {
    let error = await rejected(fetchTree(source(), join(src, 'build-tree'), options));
    expect(error.reason).to.include('overlap');
    error = await rejected(fetchTree(source(), root, { cacheDir: join(tmpdir(), 'xentest-fetch-dir-elsewhere') }));
    expect(error.reason).to.include('overlap');
    expect(readFileSync(join(src, 'README'), 'utf8')).to.equal('Xen\n');
  });

  it('stops a copy bigger than maxBytes', async function () {
    writeFileSync(join(src, 'big'), Buffer.alloc(200_000));
    const error = await rejected(fetchTree(source(), dest, { ...options, maxBytes: 100_000 }));
    expect(error.reason).to.equal('the directory holds more than the limit of 98 KiB');
    expect(existsSync(dest)).to.equal(false);
    expect(readdirSync(join(root, 'work'))).to.deep.equal([]);
  });
});
