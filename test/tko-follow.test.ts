/**
 * shared/tko/follow.ts on a real file appended to over time, as a night
 * appends to its status.log.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { followStatusLog as follow, type FollowOptions, type StatusLogFollower } from '../shared/tko/follow.js';
import { StatusLogParseError } from '../shared/tko/parser.js';
import type { TkoTest } from '../shared/tko/types.js';

/** Resolves when `check` holds, polling; fails after `ms`. */
async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const names = (tests: TkoTest[]): string[] => tests.map((t) => `${t.testname} ${t.status}`);

/** Followers still watching: a failed test must not leave a watcher that keeps mocha alive. */
const followers = new Set<StatusLogFollower>();
function followStatusLog(file: string, options: FollowOptions): StatusLogFollower {
  const f = follow(file, options);
  const close = f.close.bind(f);
  followers.add(f);
  f.close = () => {
    followers.delete(f);
    return close();
  };
  return f;
}

describe('tko follow: a status.log still being written', function () {
  this.timeout(20000);
  let dir: string;
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xentest-tko-follow-'));
  });
  afterEach(async function () {
    for (const f of [...followers]) await f.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('polling (pollMs, for NFS): a log whose directory is made after the follow began, each test told while the log is written', async function () {
    const file = path.join(dir, 'vm1', 'results', 'status.log');
    const seen: string[] = [];
    const follower = followStatusLog(file, { pollMs: 50, serverJobStatus: 'GOOD', onTest: (t) => seen.push(`${t.testname} ${t.status}`) });
    await follower.ready;
    await sleep(120);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'START\tquick\tquick\ttimestamp=1\t\nEND GOOD\tquick\tquick\ttimestamp=2\tok\n');
    await until(() => seen.length === 1, 'the first test');
    expect(seen).to.deep.equal(['quick GOOD']);
    fs.appendFileSync(file, 'START\tslow\tslow\ttimestamp=3\t\n');
    await sleep(150);
    expect(seen).to.deep.equal(['quick GOOD']);
    fs.appendFileSync(file, 'END FAIL\tslow\tslow\ttimestamp=4\ttoo slow\n');
    await until(() => seen.length === 2, 'the second test');
    expect(names(await follower.close())).to.deep.equal(['SERVER_JOB GOOD']);
    expect(seen).to.deep.equal(['quick GOOD', 'slow FAIL', 'SERVER_JOB GOOD']);
  });

  it('reports each test once its last line is on disk, even a line written in pieces, and close() finishes the job', async function () {
    const file = path.join(dir, 'status.log');
    fs.writeFileSync(file, 'START\t----\t----\ttimestamp=1\t\n');
    const seen: TkoTest[] = [];
    const follower = followStatusLog(file, { serverJobStatus: 'GOOD', onTest: (t) => seen.push(t) });
    await follower.ready;
    expect(seen).to.deep.equal([]);

    fs.appendFileSync(file, '\tSTART\tt1\tt1\ttimestamp=2\t\n\t\tGOOD\tt1\tt1\ttimestamp=3\tok\n');
    await sleep(100);
    expect(seen).to.deep.equal([]);
    // The END in three writes: nothing until its newline arrives.
    fs.appendFileSync(file, '\tEND GO');
    await sleep(100);
    fs.appendFileSync(file, 'OD\tt1\tt1\ttimestamp=4');
    await sleep(100);
    expect(seen).to.deep.equal([]);
    fs.appendFileSync(file, '\t\n');
    await until(() => seen.length === 1, 't1');
    expect(names(seen)).to.deep.equal(['t1 GOOD']);
    expect(seen[0]!.reason).to.equal('ok');

    fs.appendFileSync(file, '\tSTART\tt2\tt2\ttimestamp=5\t\n\t\tFAIL\tt2\tt2\ttimestamp=6\tbroke\n\tEND FAIL\tt2\tt2\ttimestamp=7\t\n');
    await until(() => seen.length === 2, 't2');
    fs.appendFileSync(file, 'END GOOD\t----\t----\ttimestamp=8\t\n');
    await until(() => seen.length === 3, 'CLIENT_JOB.0');

    const last = await follower.close();
    expect(names(last)).to.deep.equal(['SERVER_JOB GOOD']);
    expect(names(seen)).to.deep.equal(['t1 GOOD', 't2 FAIL', 'CLIENT_JOB.0 GOOD', 'SERVER_JOB GOOD']);
    expect(names(follower.tests())).to.deep.equal(['SERVER_JOB GOOD', 'CLIENT_JOB.0 GOOD', 't1 GOOD', 't2 FAIL']);
  });

  it('waits for a file that does not exist yet', async function () {
    const file = path.join(dir, 'status.log');
    const seen: TkoTest[] = [];
    const follower = followStatusLog(file, { onTest: (t) => seen.push(t) });
    await follower.ready;
    await sleep(100);
    fs.writeFileSync(file, 'GOOD\t----\tfirst\ttimestamp=1\t\n');
    await until(() => seen.length === 1, 'first');
    fs.appendFileSync(file, 'GOOD\t----\tsecond\ttimestamp=2\t\n');
    await until(() => seen.length === 2, 'second');
    expect(names(await follower.close())).to.deep.equal(['SERVER_JOB ABORT']);
  });

  it('starts over when the file is truncated or replaced', async function () {
    const file = path.join(dir, 'status.log');
    fs.writeFileSync(file, 'GOOD\t----\told1\ttimestamp=1\t\nGOOD\t----\told2\ttimestamp=2\t\n');
    const seen: TkoTest[] = [];
    const resets: string[] = [];
    const follower = followStatusLog(file, { onTest: (t) => seen.push(t), onReset: (why) => resets.push(why) });
    await follower.ready;
    expect(names(seen)).to.deep.equal(['old1 GOOD', 'old2 GOOD']);

    fs.truncateSync(file, 0);
    fs.appendFileSync(file, 'FAIL\t----\tnew1\ttimestamp=3\tx\n');
    await until(() => seen.length === 3, 'new1');
    expect(resets).to.deep.equal(['truncated']);

    const other = path.join(dir, 'status.log.new');
    fs.writeFileSync(other, 'WARN\t----\treplaced1\ttimestamp=4\tw\nWARN\t----\treplaced2\ttimestamp=5\tw\n');
    fs.renameSync(other, file);
    await until(() => seen.length === 5, 'replaced1 and replaced2');
    expect(resets).to.deep.equal(['truncated', 'replaced']);
    expect(names(seen.slice(2))).to.deep.equal(['new1 FAIL', 'replaced1 WARN', 'replaced2 WARN']);
    await follower.close();
    expect(names(follower.tests())).to.deep.equal(['SERVER_JOB ABORT', 'replaced1 WARN', 'replaced2 WARN']);
  });

  it('close() reads what was appended since the last event and finishes open levels', async function () {
    const file = path.join(dir, 'status.log');
    fs.writeFileSync(file, '');
    const follower = followStatusLog(file, { serverJobStatus: 'ABORT' });
    await follower.ready;
    fs.appendFileSync(file, 'START\tt1\tt1\ttimestamp=1\t\n\tGOOD\tt1\tt1\ttimestamp=2\tpartial');
    const last = await follower.close();
    expect(last.map((t) => [t.testname, t.status, t.reason])).to.deep.equal([
      // The GOOD line's reason is the test's (current_reason), so the END ABORT's is not used.
      ['t1', 'ABORT', 'partial'],
      ['SERVER_JOB', 'ABORT', ''],
    ]);
  });

  it('stops at a line the reference refuses: onError, and close() rejects with it', async function () {
    const file = path.join(dir, 'status.log');
    fs.writeFileSync(file, 'GOOD\t----\tt1\ttimestamp=1\t\n');
    const errors: Error[] = [];
    const follower = followStatusLog(file, { onError: (e) => errors.push(e) });
    await follower.ready;
    fs.appendFileSync(file, 'PASSED\t----\tt2\ttimestamp=2\t\n');
    await until(() => errors.length === 1, 'the error');
    expect(errors[0]).to.be.instanceOf(StatusLogParseError);
    expect(errors[0]!.message).to.match(/status\.log:2: "PASSED" is not a status/);
    let rejected: unknown;
    await follower.close().catch((e: unknown) => (rejected = e));
    expect(rejected).to.equal(errors[0]);
  });
});
