/**
 * Unpacking: the three compressions, and every way an archive can try to
 * write outside its tree or blow up, each refused with nothing left behind.
 * Archives are real: made by the system tar from a real tree, or written
 * header by header (test/support/fetch-tar.ts) for the malicious ones.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

import type { Compression, Source } from '../shared/controlfile/sources.js';
import { FetchError, fetchTree, type FetchOptions } from '../shared/fetch/index.js';
import { EntryGuard } from '../shared/fetch/entry-guard.js';
import { tarArchive, tarGz, type TarEntrySpec } from './support/fetch-tar.js';

async function rejected(promise: Promise<unknown>): Promise<FetchError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FetchError) return error;
    throw error;
  }
  throw new Error('expected a FetchError, but the fetch succeeded');
}

const SUFFIX: Record<Compression, string> = { gzip: 'tar.gz', bzip2: 'tar.bz2', xz: 'tar.xz' };
const TAR_FLAG: Record<Compression, string> = { gzip: '-z', bzip2: '-j', xz: '-J' };

describe('fetch: unpacking archives', function () {
  let root: string;
  let cacheDir: string;
  let work: string;
  let dest: string;
  /** A directory beside the tree that no entry may touch. */
  let outside: string;

  const options = (extra: Partial<FetchOptions> = {}): FetchOptions => ({ cacheDir, retries: 0, timeoutMs: 10_000, ...extra });

  /** Writes `bytes` as an archive file and returns a file: tarball source for it. */
  const archiveFile = (name: string, bytes: Buffer, compression: Compression = 'gzip'): Source => {
    const path = join(root, 'archives', name);
    mkdirSync(join(root, 'archives'), { recursive: true });
    writeFileSync(path, bytes);
    return { kind: 'tarball', url: pathToFileURL(path).href, compression };
  };
  const malicious = (entries: TarEntrySpec[]): Source => archiveFile(`evil-${Math.random().toString(36).slice(2)}.tar.gz`, tarGz(entries));

  /** The refusal leaves no dest, no partial tree beside it, and nothing outside. */
  const expectNothingWritten = (): void => {
    expect(existsSync(dest), 'dest exists').to.equal(false);
    expect(readdirSync(work), 'left beside dest').to.deep.equal([]);
    expect(readdirSync(outside), 'written outside').to.deep.equal([]);
  };

  /** A real tree, tarred by the system tar. */
  const realTree = (): string => {
    const src = join(root, 'src');
    mkdirSync(join(src, 'xen', 'tools'), { recursive: true });
    writeFileSync(join(src, 'xen', 'README'), 'Xen\n');
    writeFileSync(join(src, 'xen', 'tools', 'build.sh'), '#!/bin/sh\n', { mode: 0o755 });
    symlinkSync('tools/build.sh', join(src, 'xen', 'build'));
    execFileSync('ln', [join(src, 'xen', 'README'), join(src, 'xen', 'README.hard')]);
    const when = new Date('2023-08-01T10:00:00Z');
    utimesSync(join(src, 'xen', 'README'), when, when);
    return src;
  };

  beforeEach(function () {
    root = mkdtempSync(join(tmpdir(), 'xentest-fetch-extract-'));
    cacheDir = join(root, 'cache');
    work = join(root, 'work');
    dest = join(work, 'xen');
    outside = join(root, 'outside');
    mkdirSync(work, { recursive: true });
    mkdirSync(outside, { recursive: true });
  });

  afterEach(function () {
    rmSync(root, { recursive: true, force: true });
  });

  for (const compression of ['gzip', 'bzip2', 'xz'] as const) {
    it(`unpacks a .${SUFFIX[compression]} made by tar, keeping modes, mtimes, symbolic and hard links`, async function () {
      const src = realTree();
      const path = join(root, `xen.${SUFFIX[compression]}`);
      execFileSync('tar', ['-c', TAR_FLAG[compression], '-f', path, '-C', src, 'xen']);
      const bytes = readFileSync(path);
      const url = pathToFileURL(path).href;
      const got = await fetchTree({ kind: 'tarball', url, compression }, dest, options());
      expect(got).to.deep.equal({
        dir: dest,
        identity: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
        downloaded: false,
        description: `xen.${SUFFIX[compression]} (local file)`,
      });
      expect(readFileSync(join(dest, 'xen/README'), 'utf8')).to.equal('Xen\n');
      expect(statSync(join(dest, 'xen/tools/build.sh')).mode & 0o777).to.equal(0o755);
      expect(readlinkSync(join(dest, 'xen/build'))).to.equal('tools/build.sh');
      expect(statSync(join(dest, 'xen/README.hard')).ino).to.equal(statSync(join(dest, 'xen/README')).ino);
      expect(statSync(join(dest, 'xen/README')).mtime.toISOString()).to.equal('2023-08-01T10:00:00.000Z');
      expect(readdirSync(work)).to.deep.equal(['xen']);
    });
  }

  it('replaces whatever was at dest, and removes a partial tree a crash left beside it', async function () {
    mkdirSync(dest);
    writeFileSync(join(dest, 'old'), 'yesterday');
    mkdirSync(join(work, '.xen.xentest-partial-1234-abcdef'));
    writeFileSync(join(work, '.xen.xentest-partial-1234-abcdef', 'half'), '');
    await fetchTree(archiveFile('ok.tar.gz', tarGz([{ name: 'new', content: 'today' }])), dest, options());
    expect(readdirSync(dest)).to.deep.equal(['new']);
    expect(readdirSync(work)).to.deep.equal(['xen']);
  });

  it('refuses an entry with a ".." component', async function () {
    const error = await rejected(fetchTree(malicious([{ name: 'ok', content: 'fine' }, { name: '../outside/x', content: 'escaped' }]), dest, options()));
    expect(error.reason).to.equal('entry "../outside/x" has a ".." component, which would put it outside the tree');
    expect(error.hint).to.include('do not use this archive');
    expectNothingWritten();
  });

  it('refuses an entry with an absolute path', async function () {
    const target = join(outside, 'abs');
    const error = await rejected(fetchTree(malicious([{ name: target, content: 'escaped' }]), dest, options()));
    expect(error.reason).to.equal(`entry ${JSON.stringify(target)} has an absolute path`);
    expectNothingWritten();
  });

  it('refuses a symbolic link that escapes, so a file cannot be written through it', async function () {
    const error = await rejected(
      fetchTree(malicious([{ name: 'link', type: 'symlink', linkname: '../../outside' }, { name: 'link/pwned', content: 'escaped' }]), dest, options()),
    );
    expect(error.reason).to.equal('symbolic link "link" -> "../../outside" points outside the tree');
    expectNothingWritten();
  });

  it('refuses a symbolic link to an absolute path', async function () {
    const error = await rejected(fetchTree(malicious([{ name: 'etc', type: 'symlink', linkname: '/etc' }]), dest, options()));
    expect(error.reason).to.equal('symbolic link "etc" points to the absolute path "/etc", outside the tree');
    expectNothingWritten();
  });

  it('refuses a file written through a symbolic link even when the link stays inside', async function () {
    const error = await rejected(
      fetchTree(malicious([{ name: 'sub/', type: 'dir' }, { name: 'l', type: 'symlink', linkname: 'sub' }, { name: 'l/x', content: 'through' }]), dest, options()),
    );
    expect(error.reason).to.equal('entry "l/x" would be written through the symbolic link "l"');
    expectNothingWritten();
  });

  it('refuses a symbolic link that escapes only through an earlier symbolic link', async function () {
    // d/s -> .. is the top of the tree (fine); d/t -> s/.. looks like "d" but is the parent of the tree.
    const error = await rejected(
      fetchTree(
        malicious([
          { name: 'd/', type: 'dir' },
          { name: 'd/s', type: 'symlink', linkname: '..' },
          { name: 'd/t', type: 'symlink', linkname: 's/..' },
        ]),
        dest,
        options(),
      ),
    );
    expect(error.reason).to.equal('symbolic link "d/t" -> "s/.." points outside the tree');
    expectNothingWritten();
  });

  it('refuses a later symbolic link that would make an earlier one point outside', async function () {
    // sub/l -> d/../.. is the top of the tree while sub/d is a directory; sub/d -> .. would send it above.
    const error = await rejected(
      fetchTree(
        malicious([
          { name: 'sub/', type: 'dir' },
          { name: 'sub/l', type: 'symlink', linkname: 'd/../..' },
          { name: 'sub/d', type: 'symlink', linkname: '..' },
        ]),
        dest,
        options(),
      ),
    );
    expect(error.reason).to.equal('entry "sub/d" would change where an earlier symbolic link points');
    expectNothingWritten();
  });

  it('refuses a hard link to /etc/passwd, and one that climbs out with ..', async function () {
    let error = await rejected(fetchTree(malicious([{ name: 'passwd', type: 'hardlink', linkname: '/etc/passwd' }]), dest, options()));
    expect(error.reason).to.equal('hard link "passwd" points to the absolute path "/etc/passwd", outside the tree');
    expectNothingWritten();
    error = await rejected(fetchTree(malicious([{ name: 'passwd', type: 'hardlink', linkname: '../../../../etc/passwd' }]), dest, options()));
    expect(error.reason).to.equal('hard link "passwd" -> "../../../../etc/passwd" points outside the tree');
    expectNothingWritten();
  });

  it('refuses a hard link to a symbolic link (it would carry the link somewhere its target means something else)', async function () {
    const error = await rejected(
      fetchTree(
        malicious([
          { name: 'a/b/', type: 'dir' },
          { name: 'a/b/up', type: 'symlink', linkname: '../..' },
          { name: 'up', type: 'hardlink', linkname: 'a/b/up' },
        ]),
        dest,
        options(),
      ),
    );
    expect(error.reason).to.equal('hard link "up" -> "a/b/up" names a symbolic link, not a file');
    expectNothingWritten();
  });

  for (const [type, words] of [
    ['chardev', 'a character device'],
    ['blockdev', 'a block device'],
    ['fifo', 'a FIFO (named pipe)'],
  ] as const) {
    it(`refuses ${words} entry`, async function () {
      const error = await rejected(fetchTree(malicious([{ name: 'ok', content: 'fine' }, { name: 'dev', type }]), dest, options()));
      expect(error.reason).to.equal(`entry "dev" is ${words}, which a source tree has no business holding`);
      expectNothingWritten();
    });
  }

  it('strips setuid, setgid and sticky bits', async function () {
    await fetchTree(malicious([{ name: 'su', content: '#!/bin/sh\n', mode: 0o6755 }]), dest, options());
    expect(statSync(join(dest, 'su')).mode & 0o7777).to.equal(0o755);
  });

  it('gives the tree to the user running the fetch, not to the uids in the archive (even as root)', async function () {
    await fetchTree(malicious([{ name: 'owned', content: 'x', uid: 4242, gid: 4242 }, { name: 'dir/', type: 'dir', uid: 4242, gid: 4242 }]), dest, options());
    for (const path of ['owned', 'dir']) {
      expect(statSync(join(dest, path)).uid).to.equal(process.getuid!());
      expect(statSync(join(dest, path)).gid).to.equal(process.getgid!());
    }
  });

  it('a truncated .tar.gz is reported as truncated or corrupt', async function () {
    const whole = tarGz([{ name: 'big', content: Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) % 256)) }]);
    const error = await rejected(fetchTree(archiveFile('cut.tar.gz', whole.subarray(0, whole.length >> 1)), dest, options()));
    expect(error.reason).to.equal('the archive is truncated or corrupt (gzip: unexpected end of file)');
    expectNothingWritten();
  });

  it('a .tar.gz with damaged compressed data is reported as corrupt', async function () {
    const damaged = Buffer.from(tarGz([{ name: 'a', content: 'x'.repeat(10_000) }, { name: 'b', content: 'y'.repeat(10_000) }]));
    damaged[40] ^= 0xff;
    damaged[41] ^= 0xff;
    const error = await rejected(fetchTree(archiveFile('bad.tar.gz', damaged), dest, options()));
    expect(error.reason).to.match(/^the archive is truncated or corrupt \(gzip: /);
    expectNothingWritten();
  });

  it('a tar stream cut short inside intact gzip is reported as truncated', async function () {
    const tar = tarArchive([{ name: 'big', content: Buffer.alloc(20_000, 1) }]);
    const error = await rejected(fetchTree(archiveFile('short.tar.gz', gzipSync(tar.subarray(0, 512 + 8192))), dest, options()));
    expect(error.reason).to.match(/^the archive is truncated or corrupt \(tar: Truncated input/);
    expectNothingWritten();
  });

  it('a tar header with a bad checksum is reported as corrupt', async function () {
    const error = await rejected(fetchTree(malicious([{ name: 'a', content: 'x', badChecksum: true }]), dest, options()));
    expect(error.reason).to.equal('the archive is truncated or corrupt (tar: checksum failure)');
    expectNothingWritten();
  });

  for (const compression of ['bzip2', 'xz'] as const) {
    it(`a truncated .${SUFFIX[compression]} is reported as truncated or corrupt, in ${compression}'s words`, async function () {
      const src = join(root, 'src');
      mkdirSync(src);
      writeFileSync(join(src, 'data'), Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251)));
      const path = join(root, `whole.${SUFFIX[compression]}`);
      execFileSync('tar', ['-c', TAR_FLAG[compression], '-f', path, '-C', src, 'data']);
      const whole = readFileSync(path);
      const error = await rejected(fetchTree(archiveFile(`cut.${SUFFIX[compression]}`, whole.subarray(0, whole.length >> 1), compression), dest, options()));
      expect(error.reason).to.match(new RegExp(`^the archive is truncated or corrupt \\(${compression} exited with status \\d+: .*(ends unexpectedly|Unexpected end of input)`));
      expectNothingWritten();
    });
  }

  for (const [compression, pkg] of [
    ['bzip2', 'bzip2'],
    ['xz', 'xz-utils'],
  ] as const) {
    it(`says to install ${pkg} when ${compression} is missing`, async function () {
      const source = archiveFile(`x.${SUFFIX[compression]}`, Buffer.from('irrelevant'), compression);
      const saved = process.env.PATH;
      process.env.PATH = join(root, 'empty-bin');
      let error: FetchError;
      try {
        error = await rejected(fetchTree(source, dest, options()));
      } finally {
        process.env.PATH = saved;
      }
      expect(error.reason).to.equal(`${compression} is not installed, and it is needed to unpack a .${SUFFIX[compression]} archive`);
      expect(error.hint).to.equal(`install Debian's ${pkg} package (apt-get install ${pkg})`);
      expectNothingWritten();
    });
  }

  it('refuses an archive file bigger than maxBytes before reading it', async function () {
    const source = archiveFile('big.tar.gz', tarGz([{ name: 'noise', content: randomBytes(50_000) }]));
    const error = await rejected(fetchTree(source, dest, options({ maxBytes: 10_000 })));
    expect(error.reason).to.match(/^the file is \d+ KiB, over the limit of 9\.8 KiB$/);
    expectNothingWritten();
  });

  it('stops an archive whose files add up to more than maxBytes (a decompression bomb)', async function () {
    const bomb = tarGz([{ name: 'zeros', content: Buffer.alloc(4 * 1024 * 1024) }]);
    expect(bomb.length).to.be.below(64 * 1024);
    const error = await rejected(fetchTree(archiveFile('bomb.tar.gz', bomb), dest, options({ maxBytes: 1024 * 1024 })));
    expect(error.reason).to.equal('the archive unpacks to more than the limit of 1.0 MiB (entry "zeros" would bring it to 4.0 MiB)');
    expectNothingWritten();
  });

  it('stops an archive whose uncompressed stream passes maxBytes, even with no file content', async function () {
    const flood = tarGz(Array.from({ length: 400 }, (_, i) => ({ name: `d${i}/`, type: 'dir' as const })));
    const error = await rejected(fetchTree(archiveFile('flood.tar.gz', flood), dest, options({ maxBytes: 64 * 1024 })));
    expect(error.reason).to.equal('the archive unpacks to more than the limit of 64 KiB (a decompression bomb, or a tree bigger than the limit)');
    expectNothingWritten();
  });

  it('a missing file: URL is a FetchError naming it', async function () {
    const url = pathToFileURL(join(root, 'nope.tar.gz')).href;
    const error = await rejected(fetchTree({ kind: 'tarball', url, compression: 'gzip' }, dest, options()));
    expect(error.url).to.equal(url);
    expect(error.reason).to.equal(`no such file: ${join(root, 'nope.tar.gz')}`);
    expectNothingWritten();
  });

  it('refuses a dest that holds the cache directory', async function () {
    const source = archiveFile('ok.tar.gz', tarGz([{ name: 'a', content: 'x' }]));
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(join(cacheDir, 'precious'), '');
    const error = await rejected(fetchTree(source, root, options()));
    expect(error.reason).to.include('holds the cache directory');
    expect(existsSync(join(cacheDir, 'precious'))).to.equal(true);
  });
});

describe('fetch: the entry guard', function () {
  it('follows a chain of archive symbolic links the way the kernel would', function () {
    const guard = new EntryGuard(1 << 20);
    expect(guard.check({ path: 'a/b/c/', type: 'Directory', size: 0 })).to.equal(undefined);
    expect(guard.check({ path: 'top', type: 'SymbolicLink', linkpath: '.', size: 0 })).to.equal(undefined);
    expect(guard.check({ path: 'a/b/c/up', type: 'SymbolicLink', linkpath: '../../..', size: 0 })).to.equal(undefined);
    // through two links: a/b/c/up is the top, top is the top, so top/.. is outside
    expect(guard.check({ path: 'a/x', type: 'SymbolicLink', linkpath: 'b/c/up/top/..', size: 0 })).to.equal('symbolic link "a/x" -> "b/c/up/top/.." points outside the tree');
    expect(guard.check({ path: 'a/y', type: 'SymbolicLink', linkpath: 'b/c/up/a/b', size: 0 })).to.equal(undefined);
  });

  it('stops a loop of symbolic links', function () {
    const guard = new EntryGuard(1 << 20);
    expect(guard.check({ path: 'p', type: 'SymbolicLink', linkpath: 'q', size: 0 })).to.equal(undefined);
    expect(guard.check({ path: 'q', type: 'SymbolicLink', linkpath: 'p', size: 0 })).to.equal(undefined);
    expect(guard.check({ path: 'r', type: 'SymbolicLink', linkpath: 'p/x', size: 0 })).to.equal('symbolic link "r" -> "p/x" goes through more than 40 symbolic links');
  });

  it('allows a hard link to a file unpacked before it, and nothing else', function () {
    const guard = new EntryGuard(1 << 20);
    expect(guard.check({ path: 'f', type: 'Link', linkpath: 'missing', size: 0 })).to.equal('hard link "f" -> "missing" names no file unpacked before it');
    expect(guard.check({ path: 'd/', type: 'Directory', size: 0 })).to.equal(undefined);
    expect(guard.check({ path: 'g', type: 'Link', linkpath: 'd', size: 0 })).to.equal('hard link "g" -> "d" names a directory, not a file');
    expect(guard.check({ path: 'd/file', type: 'File', size: 3 })).to.equal(undefined);
    expect(guard.check({ path: 'h', type: 'Link', linkpath: 'd/file', size: 0 })).to.equal(undefined);
  });
});
