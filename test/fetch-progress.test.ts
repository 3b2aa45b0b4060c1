/**
 * The download progress display: a bar redrawn in place on a terminal, plain
 * lines every 10% elsewhere (journald), drawn on real Writable streams.
 */
import { expect } from 'chai';
import { Writable } from 'node:stream';

import { terminalProgress } from '../shared/fetch/progress.js';
import { FetchError } from '../shared/fetch/index.js';

class Capture extends Writable {
  text = '';
  constructor(readonly isTTY: boolean, readonly columns?: number) {
    super();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

const URL_ = 'https://downloads.example.org/release/xen-4.17.0.tar.gz';
const MiB = 1024 * 1024;

describe('fetch: progress display', function () {
  it('prints a plain line at every 10% when not on a terminal', function () {
    const out = new Capture(false);
    const progress = terminalProgress(out);
    const total = 40 * MiB;
    for (let received = 0; received < total; received += 64 * 1024) progress({ url: URL_, receivedBytes: received, totalBytes: total, done: false });
    progress({ url: URL_, receivedBytes: total, totalBytes: total, done: true });
    const lines = out.text.trimEnd().split('\n');
    expect(lines).to.have.length(10);
    expect(lines[0]).to.equal('xen-4.17.0.tar.gz: 10% (4.0 MiB of 40 MiB)');
    expect(lines[9]).to.equal('xen-4.17.0.tar.gz: 100% (40 MiB of 40 MiB)');
    expect(out.text).to.not.include('\r');
  });

  it('prints every 16 MiB and a last line when the size is unknown', function () {
    const out = new Capture(false);
    const progress = terminalProgress(out);
    for (let received = 0; received <= 40 * MiB; received += MiB) progress({ url: URL_, receivedBytes: received, done: false });
    progress({ url: URL_, receivedBytes: 40 * MiB + 5, done: true });
    expect(out.text.trimEnd().split('\n')).to.deep.equal(['xen-4.17.0.tar.gz: 16 MiB so far', 'xen-4.17.0.tar.gz: 32 MiB so far', 'xen-4.17.0.tar.gz: done, 40 MiB']);
  });

  it('redraws one line in place on a terminal, at most ten times a second, and ends it when done', function () {
    const out = new Capture(true, 200);
    let now = 0;
    const progress = terminalProgress(out, () => now);
    progress({ url: URL_, receivedBytes: 0, totalBytes: 10 * MiB, done: false });
    now = 50;
    progress({ url: URL_, receivedBytes: 5 * MiB, totalBytes: 10 * MiB, done: false }); // too soon: not drawn
    now = 150;
    progress({ url: URL_, receivedBytes: 6 * MiB, totalBytes: 10 * MiB, done: false });
    now = 160;
    progress({ url: URL_, receivedBytes: 10 * MiB, totalBytes: 10 * MiB, done: true }); // always drawn
    const draws = out.text.split('\r').filter(Boolean);
    expect(draws).to.deep.equal([
      'xen-4.17.0.tar.gz [........................]   0% 0 B of 10 MiB\x1b[K',
      'xen-4.17.0.tar.gz [##############..........]  60% 6.0 MiB of 10 MiB\x1b[K',
      'xen-4.17.0.tar.gz [########################] 100% 10 MiB of 10 MiB\x1b[K\n',
    ]);
  });

  it('keeps the terminal line within the terminal width', function () {
    const out = new Capture(true, 30);
    terminalProgress(out)({ url: URL_, receivedBytes: 1, totalBytes: 2, done: false });
    expect(out.text.replace('\r', '').replace('\x1b[K', '').length).to.equal(29);
  });
});

describe('fetch: FetchError', function () {
  it('says the URL and the reason in its message, and carries a hint', function () {
    const error = new FetchError('http://x/y.tar.gz', 'the server answered HTTP 404 Not Found', 'check the URL');
    expect(error).to.be.instanceOf(Error);
    expect(error.name).to.equal('FetchError');
    expect(error.message).to.equal('http://x/y.tar.gz: the server answered HTTP 404 Not Found');
    expect([error.url, error.reason, error.hint]).to.deep.equal(['http://x/y.tar.gz', 'the server answered HTTP 404 Not Found', 'check the URL']);
  });
});
