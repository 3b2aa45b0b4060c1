/**
 * Where a tree or a test comes from. A control file names a source by one
 * string; this decides what kind of source it is, or says why it cannot be one.
 *
 *   http(s)://host/xen-unstable.tar.gz[#sha256=HEX]   a tarball (.tar.gz .tgz .tar.bz2 .tbz2 .tar.xz .txz)
 *   file:///srv/mirror/xen.tar.xz[#sha256=HEX]         a tarball on this machine
 *   git://host/xen.git[#REF]                           a git repository and a ref (branch, tag or commit)
 *   git+https://... git+ssh://... git+file:///...     the same over another transport
 *   https://host/xen.git[#REF] ssh://...               the same, recognised by .git or ssh
 *   /srv/src/xen   file:///srv/src/xen                 a directory used as it is
 */
import { posix } from 'node:path';

export type Compression = 'gzip' | 'bzip2' | 'xz';

export type Source =
  | { readonly kind: 'tarball'; readonly url: string; readonly compression: Compression; readonly sha256?: string }
  | { readonly kind: 'git'; readonly url: string; readonly ref?: string }
  | { readonly kind: 'directory'; readonly path: string };

export type SourceResult = { ok: true; source: Source } | { ok: false; reason: string; hint: string };

const ARCHIVE_SUFFIXES: ReadonlyArray<readonly [string, Compression]> = [
  ['.tar.gz', 'gzip'],
  ['.tgz', 'gzip'],
  ['.tar.bz2', 'bzip2'],
  ['.tbz2', 'bzip2'],
  ['.tbz', 'bzip2'],
  ['.tar.xz', 'xz'],
  ['.txz', 'xz'],
];

const UNSUPPORTED_ARCHIVES = ['.zip', '.tar', '.tar.zst', '.tzst', '.tar.lz', '.tar.lzma', '.7z', '.rar', '.gz', '.bz2', '.xz'];

const SCHEMES_HINT = 'use http://, https:// or file:// for a tarball, git:// or git+https:// for a repository, or an absolute path';

const FORMATS_HINT = 'supported tarballs end in .tar.gz, .tgz, .tar.bz2, .tbz2, .tar.xz or .txz';

function compressionOf(pathname: string): Compression | undefined {
  const lower = pathname.toLowerCase();
  for (const [suffix, compression] of ARCHIVE_SUFFIXES) if (lower.endsWith(suffix)) return compression;
  return undefined;
}

function fail(reason: string, hint: string): SourceResult {
  return { ok: false, reason, hint };
}

/** The `#sha256=HEX` pin of a tarball, if any. */
function tarballPin(fragment: string, url: string): SourceResult | { sha256?: string } {
  if (fragment === '') return {};
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(fragment);
  if (!m) return fail(`"#${fragment}" after ${url} is not a sha256 pin`, 'pin a tarball with #sha256= followed by 64 hex digits');
  return { sha256: (m[1] as string).toLowerCase() };
}

function tarball(url: string, pathname: string, fragment: string): SourceResult {
  const compression = compressionOf(pathname);
  if (!compression) {
    const lower = pathname.toLowerCase();
    const bad = UNSUPPORTED_ARCHIVES.find((s) => lower.endsWith(s));
    return fail(
      bad ? `${url} is a ${bad} file, which xentest cannot unpack` : `${url} does not name a tarball`,
      FORMATS_HINT,
    );
  }
  const pin = tarballPin(fragment, url);
  if ('ok' in pin) return pin;
  return { ok: true, source: { kind: 'tarball', url, compression, ...(pin.sha256 ? { sha256: pin.sha256 } : {}) } };
}

function git(url: string, fragment: string): SourceResult {
  return { ok: true, source: { kind: 'git', url, ...(fragment ? { ref: fragment } : {}) } };
}

function splitFragment(text: string): [string, string] {
  const hash = text.indexOf('#');
  return hash < 0 ? [text, ''] : [text.slice(0, hash), text.slice(hash + 1)];
}

export function parseSource(text: string): SourceResult {
  if (text === '') return fail('the location is empty', SCHEMES_HINT);
  if (/\s/.test(text)) return fail(`"${text}" contains white space`, 'write the URL or path on one line, without spaces');
  if (text.startsWith('/')) {
    const [path, fragment] = splitFragment(text);
    if (compressionOf(path)) return tarball('file://' + path, path, fragment);
    if (fragment) return fail(`a directory (${path}) cannot have "#${fragment}"`, 'refs are for git repositories and sha256 pins for tarballs');
    return { ok: true, source: { kind: 'directory', path: posix.normalize(path) } };
  }
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(text)?.[1]?.toLowerCase();
  if (!scheme) return fail(`"${text}" is neither a URL nor an absolute path`, SCHEMES_HINT);
  const [url, fragment] = splitFragment(text);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail(`"${text}" is not a valid URL`, SCHEMES_HINT);
  }
  switch (scheme) {
    case 'http':
    case 'https':
      if (!parsed.hostname) return fail(`${url} has no host name`, SCHEMES_HINT);
      if (parsed.pathname.endsWith('.git') || parsed.pathname.endsWith('.git/')) return git(url, fragment);
      return tarball(url, parsed.pathname, fragment);
    case 'file': {
      const path = decodeURIComponent(parsed.pathname);
      if (compressionOf(path)) return tarball(url, path, fragment);
      if (path.endsWith('.git') || path.endsWith('.git/')) return git(url, fragment);
      if (fragment) return fail(`a directory (${path}) cannot have "#${fragment}"`, 'refs are for git repositories and sha256 pins for tarballs');
      return { ok: true, source: { kind: 'directory', path: posix.normalize(path) } };
    }
    case 'git':
    case 'ssh':
      return git(url, fragment);
    case 'git+https':
    case 'git+http':
    case 'git+ssh':
    case 'git+file':
      return git(url.slice(4), fragment);
    default:
      return fail(`the URL scheme "${scheme}:" of ${url} is not supported`, SCHEMES_HINT);
  }
}

export function describeSource(s: Source): string {
  switch (s.kind) {
    case 'tarball':
      return `tarball ${s.url}${s.sha256 ? ' (sha256 pinned)' : ''}`;
    case 'git':
      return `git ${s.url}${s.ref ? ` at ${s.ref}` : ''}`;
    case 'directory':
      return `directory ${s.path}`;
  }
}
