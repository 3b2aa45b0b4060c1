import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasStackTrace, REPO_ROOT, runXentest } from './support/cli.js';

const FIXTURES = join(REPO_ROOT, 'test/fixtures/check');

interface Expected {
  line: number;
  severity: 'error' | 'warning';
  text: string;
}

interface Reported {
  line: number;
  severity: 'error' | 'warning';
  block: string;
}

/** Fixture expectations: LINE <tab> ERR|WARN <tab> text found in the message or its hint. */
function expectations(name: string): Expected[] {
  return readFileSync(join(FIXTURES, name.replace(/\.cfg$/, '.expect')), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [line, sev, text] = l.split('\t');
      return { line: Number(line), severity: sev === 'ERR' ? 'error' : 'warning', text: text ?? '' };
    });
}

/** "FILE:LINE: error: message" (or "FILE: error: ..." without a line) and its "  hint: ..." line. */
function reported(stdout: string, file: string): Reported[] {
  const out: Reported[] = [];
  const lines = stdout.split('\n');
  lines.forEach((l, i) => {
    if (!l.startsWith(file)) return;
    const m = /^:(?:(\d+):)? (error|warning): (.*)$/.exec(l.slice(file.length));
    if (!m) return;
    out.push({ line: Number(m[1] ?? 0), severity: m[2] as 'error' | 'warning', block: `${m[3]}\n${lines[i + 1] ?? ''}` });
  });
  return out;
}

describe('xentest check', () => {
  const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.cfg')).sort();

  it('has at least 30 malformed or inconsistent control files to check', () => {
    const withErrors = fixtures.filter((f) => expectations(f).some((e) => e.severity === 'error'));
    expect(withErrors.length).to.be.at.least(30);
  });

  for (const name of fixtures) {
    it(`answers ${name} with the right file:line and no stack trace`, () => {
      const file = `test/fixtures/check/${name}`;
      const want = expectations(name);
      const r = runXentest(['check', file]);
      const output = r.stdout + r.stderr;
      expect(hasStackTrace(output), output).to.equal(false);
      expect(r.status, output).to.equal(want.some((e) => e.severity === 'error') ? 1 : 0);
      const got = reported(r.stdout, file);
      const unmatched = [...got];
      for (const w of want) {
        const i = unmatched.findIndex((g) => g.line === w.line && g.severity === w.severity && g.block.includes(w.text));
        expect(i, `expected ${file}:${w.line}: ${w.severity} mentioning "${w.text}" in:\n${output}`).to.be.at.least(0);
        unmatched.splice(i, 1);
      }
      expect(unmatched, `unexpected problems in:\n${output}`).to.deep.equal([]);
      for (const g of got) expect(g.block, 'every problem says what to do').to.match(/\n {2}hint: \S/);
    });
  }

  for (const example of ['conf/paper.cfg', 'conf/example.cfg']) {
    it(`accepts ${example} without a single problem and summarises it`, () => {
      const r = runXentest(['check', example]);
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout).to.match(new RegExp(`^${example}: OK$`, 'm'));
      expect(r.stdout).not.to.match(/(error|warning):/);
      expect(r.stdout).to.match(/\d+ domains?, \d+ test sections?:/);
    });
  }

  it("lists the example's profilers in its summary", () => {
    const r = runXentest(['check', 'conf/example.cfg']);
    expect(r.stdout).to.match(/^ {2}3 profilers in dom0 while the domains test:\n {4}xentop: xentop -b -d 5\n {4}dmesg: xl dmesg\n {4}vmstat: vmstat 5$/m);
  });

  it('summarises the paper example: tree, shared dir, each domain and its tests', () => {
    const r = runXentest(['check', 'conf/paper.cfg']);
    expect(r.stdout).to.include('xen tree:   xen-unstable (tarball http://www.where/to/download/xen-unstable.tgz)');
    expect(r.stdout).to.include('shared dir: /xentest/shared');
    expect(r.stdout).to.include('3 domains, 1 test section:');
    expect(r.stdout).to.match(/bob13 \[XENVM0\], already running .*: 1 test \(LTP\)/);
    expect(r.stdout).to.match(/bob13-vm2 \[XENVM2\], started from \/home\/plars\/xen\/xen-sarge\/bob13-vm2\.config/);
  });

  it('says clearly when the file does not exist', () => {
    const r = runXentest(['check', 'no/such/file.cfg']);
    expect(r.status).to.equal(1);
    expect(r.stdout).to.include('no/such/file.cfg: error: cannot read no/such/file.cfg: no such file');
    expect(hasStackTrace(r.stdout + r.stderr)).to.equal(false);
  });

  it('rejects a wrong command line with a usage message and status 64', () => {
    for (const args of [['check'], ['check', 'a.cfg', 'b.cfg'], ['check', '--bogus']]) {
      const r = runXentest(args);
      expect(r.status, args.join(' ')).to.equal(64);
      expect(r.stderr).to.include('usage: xentest check FILE');
      expect(hasStackTrace(r.stderr)).to.equal(false);
    }
  });
});
