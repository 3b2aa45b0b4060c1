/**
 * Tarballs over HTTP: the cache and its revalidation, retries, limits,
 * truncation, digests, progress. A real server on 127.0.0.1 records every
 * request, so the tests check what went over the wire, not just the result.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Source } from '../shared/controlfile/sources.js';
import { FetchError, fetchTree, probeIdentity, type FetchOptions, type FetchProgress } from '../shared/fetch/index.js';
import { backoffDelay } from '../shared/fetch/retry.js';
import { closedPort, staticFile, TestServer, type StaticFile } from './support/fetch-http.js';
import { tarGz } from './support/fetch-tar.js';

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Every file under `dir`, relative, sorted. */
function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(path);
      else out.push(path);
    }
  };
  walk('');
  return out.sort();
}

async function rejected(promise: Promise<unknown>): Promise<FetchError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FetchError) return error;
    throw error;
  }
  throw new Error('expected a FetchError, but the fetch succeeded');
}

const XEN_V1 = tarGz([
  { name: 'xen-4.17/', type: 'dir' },
  { name: 'xen-4.17/README', content: 'Xen 4.17\n' },
  { name: 'xen-4.17/configure', content: '#!/bin/sh\necho configured\n', mode: 0o755 },
]);
const XEN_V2 = tarGz([
  { name: 'xen-4.17/', type: 'dir' },
  { name: 'xen-4.17/README', content: 'Xen 4.17.1\n' },
]);

describe('fetch: tarballs over HTTP', function () {
  let root: string;
  let server: TestServer;
  let cacheDir: string;
  let dest: string;
  let logs: string[];

  const options = (extra: Partial<FetchOptions> = {}): FetchOptions => ({
    cacheDir,
    retries: 3,
    retryDelayMs: 5,
    timeoutMs: 2000,
    log: (line) => logs.push(line),
    ...extra,
  });
  const tarball = (path: string, sha?: string): Source => ({ kind: 'tarball', url: server.url(path), compression: 'gzip', ...(sha ? { sha256: sha } : {}) });
  const cacheFiles = (): string[] => listFiles(join(cacheDir, 'tarballs'));
  /** What is in the directory that holds dest: only dest itself, or nothing, never a partial tree. */
  const besideDest = (): string[] => (existsSync(join(root, 'work')) ? readdirSync(join(root, 'work')).sort() : []);

  beforeEach(async function () {
    root = mkdtempSync(join(tmpdir(), 'xentest-fetch-http-'));
    cacheDir = join(root, 'cache');
    dest = join(root, 'work', 'xen');
    logs = [];
    server = await TestServer.start();
  });

  afterEach(async function () {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('downloads and unpacks a tarball, keeping file modes, with identity = sha256 of the archive', async function () {
    server.route('/xen-4.17.tar.gz', staticFile(() => ({ body: XEN_V1, etag: '"v1"' })));
    const got = await fetchTree(tarball('/xen-4.17.tar.gz'), dest, options());
    expect(got).to.deep.equal({ dir: dest, identity: `sha256:${sha256(XEN_V1)}`, downloaded: true, description: `xen-4.17.tar.gz (downloaded, ${XEN_V1.length} B)` });
    expect(readFileSync(join(dest, 'xen-4.17/README'), 'utf8')).to.equal('Xen 4.17\n');
    expect(statSync(join(dest, 'xen-4.17/configure')).mode & 0o777).to.equal(0o755);
    expect(server.requests).to.have.length(1);
    expect(server.requests[0]?.headers['accept-encoding']).to.equal('identity');
    expect(besideDest()).to.deep.equal(['xen']);
  });

  it('revalidates the cached copy with If-None-Match and If-Modified-Since; a 304 transfers no body', async function () {
    let file: StaticFile = { body: XEN_V1, etag: '"v1"', lastModified: 'Tue, 01 Aug 2023 10:00:00 GMT' };
    server.route('/xen.tar.gz', staticFile(() => file));

    const first = await fetchTree(tarball('/xen.tar.gz'), dest, options());
    expect(first.downloaded).to.equal(true);
    expect(server.requests[0]?.headers['if-none-match']).to.equal(undefined);

    writeFileSync(join(dest, 'stale-file'), 'left from yesterday');
    const second = await fetchTree(tarball('/xen.tar.gz'), dest, options());
    expect(server.requests).to.have.length(2);
    const revalidation = server.requests[1]!;
    expect(revalidation.headers['if-none-match']).to.equal('"v1"');
    expect(revalidation.headers['if-modified-since']).to.equal('Tue, 01 Aug 2023 10:00:00 GMT');
    expect(revalidation.status).to.equal(304);
    expect(revalidation.bodyBytes).to.equal(0);
    expect(second).to.deep.equal({ dir: dest, identity: first.identity, downloaded: false, description: 'xen.tar.gz (cached, not modified)' });
    expect(logs.some((l) => l.includes('cached copy is current (304 Not Modified)'))).to.equal(true);
    // dest was replaced, from the cached archive
    expect(existsSync(join(dest, 'stale-file'))).to.equal(false);
    expect(readFileSync(join(dest, 'xen-4.17/README'), 'utf8')).to.equal('Xen 4.17\n');

    // The file changes on the server: a 200, a new identity, and the old archive leaves the cache.
    file = { body: XEN_V2, etag: '"v2"' };
    const third = await fetchTree(tarball('/xen.tar.gz'), dest, options());
    expect(server.requests[2]?.status).to.equal(200);
    expect(third.downloaded).to.equal(true);
    expect(third.identity).to.equal(`sha256:${sha256(XEN_V2)}`);
    expect(readFileSync(join(dest, 'xen-4.17/README'), 'utf8')).to.equal('Xen 4.17.1\n');
    const [key] = readdirSync(join(cacheDir, 'tarballs'));
    expect(readdirSync(join(cacheDir, 'tarballs', key!)).sort()).to.deep.equal([`${sha256(XEN_V2)}.tar.gz`, 'meta.json']);
  });

  it('revalidates with If-Modified-Since alone when the server sends no ETag', async function () {
    server.route('/xen.tar.gz', staticFile(() => ({ body: XEN_V1, lastModified: 'Tue, 01 Aug 2023 10:00:00 GMT' })));
    await probeIdentity(tarball('/xen.tar.gz'), options());
    const again = await probeIdentity(tarball('/xen.tar.gz'), options());
    expect(again).to.deep.equal({ identity: `sha256:${sha256(XEN_V1)}`, downloaded: false, description: 'xen.tar.gz (cached, not modified)' });
    expect(server.requests[1]?.headers['if-none-match']).to.equal(undefined);
    expect(server.requests[1]?.headers['if-modified-since']).to.equal('Tue, 01 Aug 2023 10:00:00 GMT');
    expect(server.requests[1]?.status).to.equal(304);
  });

  it('probeIdentity downloads into the cache without unpacking, and fetchTree then only revalidates', async function () {
    server.route('/xen.tar.gz', staticFile(() => ({ body: XEN_V1, etag: '"v1"' })));
    const probed = await probeIdentity(tarball('/xen.tar.gz'), options());
    expect(probed).to.deep.equal({ identity: `sha256:${sha256(XEN_V1)}`, downloaded: true, description: 'xen.tar.gz (downloaded, 200 B)' });
    expect(existsSync(dest)).to.equal(false);
    const got = await fetchTree(tarball('/xen.tar.gz'), dest, options());
    expect(got.identity).to.equal(probed.identity);
    expect(got.downloaded).to.equal(false);
    expect(server.requests.map((r) => r.status)).to.deep.equal([200, 304]);
  });

  it('a pinned tarball already in the cache is used without asking the server', async function () {
    server.route('/xen.tar.gz', staticFile(() => ({ body: XEN_V1, etag: '"v1"' })));
    const pin = sha256(XEN_V1);
    await fetchTree(tarball('/xen.tar.gz', pin), dest, options());
    const again = await fetchTree(tarball('/xen.tar.gz', pin), dest, options());
    expect(server.requests).to.have.length(1);
    expect(again.downloaded).to.equal(false);
    expect(again.description).to.equal('xen.tar.gz (cached, pinned sha256)');
  });

  it('a wrong sha256 is a FetchError naming the URL and both digests, and nothing is cached or unpacked', async function () {
    server.route('/xen.tar.gz', staticFile(() => ({ body: XEN_V1, etag: '"v1"' })));
    const pin = 'ab'.repeat(32);
    const error = await rejected(fetchTree(tarball('/xen.tar.gz', pin), dest, options()));
    expect(error.url).to.equal(server.url('/xen.tar.gz'));
    expect(error.message).to.equal(`${server.url('/xen.tar.gz')}: ${error.reason}`);
    expect(error.reason).to.include(pin).and.include(sha256(XEN_V1));
    expect(error.hint).to.include('#sha256=');
    expect(server.requests).to.have.length(1); // a wrong digest is not retried
    expect(existsSync(dest)).to.equal(false);
    expect(besideDest()).to.deep.equal([]);
    expect(cacheFiles()).to.deep.equal([]);
  });

  it('a 404 fails at once with a clear reason, without retries', async function () {
    const error = await rejected(fetchTree(tarball('/missing.tar.gz'), dest, options()));
    expect(server.requests).to.have.length(1);
    expect(error.url).to.equal(server.url('/missing.tar.gz'));
    expect(error.reason).to.equal('the server answered HTTP 404 Not Found: there is no file at this URL');
    expect(error.hint).to.include('check the URL');
    expect(existsSync(dest)).to.equal(false);
  });

  it('retries HTTP 503 and 429 with backoff, then succeeds', async function () {
    server.route('/xen.tar.gz', (req, res, n) => {
      if (n === 1) {
        res.statusCode = 503;
        res.end('busy');
      } else if (n === 2) {
        res.statusCode = 429;
        res.setHeader('Retry-After', '0');
        res.end('slow down');
      } else staticFile(() => ({ body: XEN_V1 }))(req, res, n);
    });
    const got = await fetchTree(tarball('/xen.tar.gz'), dest, options());
    expect(got.downloaded).to.equal(true);
    expect(server.requests.map((r) => r.status)).to.deep.equal([503, 429, 200]);
    expect(logs.filter((l) => l.includes('retry'))).to.have.length(2);
    expect(logs[0]).to.match(/HTTP 503 Service Unavailable; retry 1\/3 in \d+ ms$/);
    expect(logs[1]).to.match(/HTTP 429 Too Many Requests; retry 2\/3 in \d+ ms$/);
  });

  it('an unreachable host (a closed port) is a FetchError after the retries', async function () {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/xen.tar.gz`;
    const error = await rejected(fetchTree({ kind: 'tarball', url, compression: 'gzip' }, dest, options({ retries: 2 })));
    expect(error.url).to.equal(url);
    expect(error.reason).to.equal(`connection refused (127.0.0.1:${port}) (gave up after 3 attempts)`);
    expect(error.hint).to.include('nothing is listening');
    expect(logs).to.deep.equal([
      `${url}: connection refused (127.0.0.1:${port}); retry 1/2 in ${/in (\d+ ms)$/.exec(logs[0] ?? '')?.[1]}`,
      `${url}: connection refused (127.0.0.1:${port}); retry 2/2 in ${/in (\d+ ms)$/.exec(logs[1] ?? '')?.[1]}`,
    ]);
    expect(existsSync(dest)).to.equal(false);
  });

  it('a connection dropped mid-body is retried, then reported as truncated, and poisons nothing', async function () {
    server.route('/xen.tar.gz', (_req, res) => {
      res.writeHead(200, { 'Content-Length': XEN_V1.length });
      res.write(XEN_V1.subarray(0, XEN_V1.length >> 1), () => res.socket?.destroy());
    });
    const error = await rejected(fetchTree(tarball('/xen.tar.gz'), dest, options({ retries: 2 })));
    expect(server.requests).to.have.length(3);
    expect(error.reason).to.equal(`the download was truncated: the connection closed after ${XEN_V1.length >> 1} of ${XEN_V1.length} bytes (gave up after 3 attempts)`);
    expect(cacheFiles()).to.deep.equal([]);
    expect(existsSync(dest)).to.equal(false);
    expect(besideDest()).to.deep.equal([]);

    // The server recovers: the next fetch downloads the whole file afresh.
    server.route('/xen.tar.gz', staticFile(() => ({ body: XEN_V1, etag: '"v1"' })));
    const got = await fetchTree(tarball('/xen.tar.gz'), dest, options());
    expect(got.identity).to.equal(`sha256:${sha256(XEN_V1)}`);
    expect(server.requests.at(-1)?.headers['if-none-match']).to.equal(undefined);
  });

  it('a truncated first attempt is retried and the second one succeeds', async function () {
    server.route('/xen.tar.gz', (req, res, n) => {
      if (n > 1) return staticFile(() => ({ body: XEN_V1 }))(req, res, n);
      res.writeHead(200, { 'Content-Length': XEN_V1.length });
      res.write(XEN_V1.subarray(0, 100), () => res.socket?.destroy());
    });
    const got = await fetchTree(tarball('/xen.tar.gz'), dest, options());
    expect(got.identity).to.equal(`sha256:${sha256(XEN_V1)}`);
    expect(logs[0]).to.include('truncated').and.include('retry 1/3');
  });

  it('a transfer that stalls longer than timeoutMs is abandoned', async function () {
    server.route('/xen.tar.gz', (_req, res) => {
      res.writeHead(200, { 'Content-Length': XEN_V1.length });
      res.write(XEN_V1.subarray(0, 100)); // and then nothing
    });
    const started = Date.now();
    const error = await rejected(fetchTree(tarball('/xen.tar.gz'), dest, options({ retries: 0, timeoutMs: 200 })));
    expect(Date.now() - started).to.be.below(2000);
    expect(error.reason).to.equal(`the download stalled: no data for 200 ms after 100 of ${XEN_V1.length} bytes (gave up after 1 attempt)`);
    expect(cacheFiles()).to.deep.equal([]);
  });

  it('a Content-Length over maxBytes fails before the body is downloaded', async function () {
    let clientGaveUp = false;
    server.route('/huge.tar.gz', async (_req, res) => {
      res.writeHead(200, { 'Content-Length': 10 * 1024 * 1024 });
      res.flushHeaders();
      // The body is only sent if the client is still there after 5 s.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5000);
        res.on('close', () => {
          clientGaveUp = true;
          clearTimeout(timer);
          resolve();
        });
      });
      if (!res.destroyed) res.end(Buffer.alloc(10 * 1024 * 1024));
    });
    const error = await rejected(fetchTree(tarball('/huge.tar.gz'), dest, options({ maxBytes: 1024 * 1024 })));
    expect(error.reason).to.equal('the file is 10 MiB, over the limit of 1.0 MiB');
    for (let waited = 0; !clientGaveUp && waited < 5000; waited += 10) await sleep(10);
    expect(clientGaveUp).to.equal(true);
    expect(server.requests).to.have.length(1);
    expect(server.requests[0]?.bodyBytes).to.equal(0);
    expect(cacheFiles()).to.deep.equal([]);
  });

  it('a body without Content-Length that passes maxBytes is stopped while streaming', async function () {
    let sent = 0;
    server.route('/endless.tar.gz', async (_req, res) => {
      res.writeHead(200); // chunked: no length announced
      const chunk = Buffer.alloc(64 * 1024);
      while (!res.destroyed && sent < 64 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          await new Promise<void>((resolve) => {
            const go = (): void => {
              res.off('drain', go).off('close', go);
              resolve();
            };
            res.on('drain', go).on('close', go);
          });
        }
      }
      res.end();
    });
    const error = await rejected(fetchTree(tarball('/endless.tar.gz'), dest, options({ maxBytes: 1024 * 1024 })));
    expect(error.reason).to.equal('the download passed the limit of 1.0 MiB and was stopped');
    expect(sent).to.be.below(16 * 1024 * 1024);
    expect(cacheFiles()).to.deep.equal([]);
  });

  it('follows redirects, and refuses one to a scheme other than http(s)', async function () {
    server.route('/latest.tar.gz', (_req, res) => {
      res.writeHead(302, { Location: '/xen-4.17.tar.gz' });
      res.end();
    });
    server.route('/xen-4.17.tar.gz', staticFile(() => ({ body: XEN_V1 })));
    const got = await fetchTree(tarball('/latest.tar.gz'), dest, options());
    expect(got.identity).to.equal(`sha256:${sha256(XEN_V1)}`);
    expect(server.requests.map((r) => `${r.path} ${r.status}`)).to.deep.equal(['/latest.tar.gz 302', '/xen-4.17.tar.gz 200']);

    server.route('/elsewhere.tar.gz', (_req, res) => {
      res.writeHead(301, { Location: 'ftp://127.0.0.1/xen.tar.gz' });
      res.end();
    });
    const error = await rejected(fetchTree(tarball('/elsewhere.tar.gz'), dest, options()));
    expect(error.reason).to.equal('the server redirects to ftp://127.0.0.1/xen.tar.gz, which is not http or https');
  });

  it('reports progress as bytes arrive, ending with done', async function () {
    const big = tarGz([{ name: 'random.bin', content: Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251)) }]);
    server.route('/big.tar.gz', staticFile(() => ({ body: big })));
    const seen: FetchProgress[] = [];
    await fetchTree(tarball('/big.tar.gz'), dest, options({ progress: (p) => seen.push({ ...p }) }));
    expect(seen.length).to.be.greaterThan(1);
    for (const p of seen) expect(p.totalBytes).to.equal(big.length);
    const received = seen.map((p) => p.receivedBytes);
    expect(received).to.deep.equal([...received].sort((a, b) => a - b));
    expect(seen.at(-1)).to.deep.equal({ url: server.url('/big.tar.gz'), receivedBytes: big.length, totalBytes: big.length, done: true });
    expect(seen.filter((p) => p.done)).to.have.length(1);
  });

  it('removes download leftovers of a crashed process and never uses them', async function () {
    server.route('/xen.tar.gz', staticFile(() => ({ body: XEN_V1, etag: '"v1"' })));
    await probeIdentity(tarball('/xen.tar.gz'), options());
    const [key] = readdirSync(join(cacheDir, 'tarballs'));
    const keyDir = join(cacheDir, 'tarballs', key!);
    const leftover = join(keyDir, '.part-99999-deadbeef');
    writeFileSync(leftover, 'half a download');
    const old = new Date(Date.now() - 2 * 3600 * 1000);
    utimesSync(leftover, old, old);
    await fetchTree(tarball('/xen.tar.gz'), dest, options());
    expect(existsSync(leftover)).to.equal(false);
  });

  it('a cached archive damaged on disk is reported and dropped from the cache', async function () {
    server.route('/xen.tar.gz', staticFile(() => ({ body: XEN_V1, etag: '"v1"' })));
    await probeIdentity(tarball('/xen.tar.gz'), options());
    const [key] = readdirSync(join(cacheDir, 'tarballs'));
    const archive = join(cacheDir, 'tarballs', key!, `${sha256(XEN_V1)}.tar.gz`);
    const damaged = Buffer.from(XEN_V1);
    damaged[damaged.length - 5] ^= 0xff; // the gzip trailer: the tree unpacks, the bytes differ
    writeFileSync(archive, damaged);
    const error = await rejected(fetchTree(tarball('/xen.tar.gz'), dest, options()));
    expect(error.reason).to.equal(`the cached copy is damaged (its sha256 is now ${sha256(damaged)}, it was ${sha256(XEN_V1)} when downloaded)`);
    expect(error.hint).to.equal('it has been dropped from the cache: fetch again');
    expect(existsSync(dest)).to.equal(false);
    expect(cacheFiles()).to.deep.equal([]);
    // The next fetch downloads it afresh rather than trusting the damaged copy.
    const got = await fetchTree(tarball('/xen.tar.gz'), dest, options());
    expect(got.downloaded).to.equal(true);
    expect(server.requests.at(-1)?.headers['if-none-match']).to.equal(undefined);
    expect(readFileSync(join(dest, 'xen-4.17/README'), 'utf8')).to.equal('Xen 4.17\n');
  });

  it('an abort signal stops a stalled download at once', async function () {
    server.route('/xen.tar.gz', (_req, res) => {
      res.writeHead(200, { 'Content-Length': XEN_V1.length });
      res.write(XEN_V1.subarray(0, 10));
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    let caught: unknown;
    try {
      await fetchTree(tarball('/xen.tar.gz'), dest, options({ signal: controller.signal, timeoutMs: 10_000 }));
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(Error);
    expect((caught as Error).name).to.equal('AbortError');
    expect(Date.now() - started).to.be.below(2000);
    expect(cacheFiles()).to.deep.equal([]);
    mkdirSync(join(root, 'work'), { recursive: true });
    expect(besideDest()).to.deep.equal([]);
  });
});

describe('fetch: retry backoff', function () {
  it('doubles from the first delay, is capped, and jitters down by at most a quarter', function () {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, 1000, 10_000, () => 1))).to.deep.equal([1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(backoffDelay(3, 1000, 10_000, () => 0)).to.equal(3000);
  });
});
