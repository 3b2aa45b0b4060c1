/**
 * `toJUnitXml`: well-formed XML 1.0 whatever the names and reasons hold, read
 * back by two independent parsers (fast-xml-parser, Python's ElementTree),
 * in the shape Jenkins' junit-10.xsd accepts, with every autotest status
 * mapped as documented.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { escapeXmlAttribute, escapeXmlText, toJUnitXml, xmlChars } from '../agent/results/export/junit.js';
import type { DomainRecord, NightRecord, StepResultRecord, TestRecord } from '../agent/results/record.js';
import { JOB_STATUSES, type JobStatus } from '../shared/statuslog/entry.js';

const T0 = Date.parse('2026-01-01T02:00:00Z') / 1000;
const KERNEL = { base: '6.1.0', patches: [], hash: '0123456789abcdef0123456789abcdef' };

function testRecord(name: string, status: JobStatus, reason = '', extra: Partial<TestRecord> = {}): TestRecord {
  return { name, status, reason, subdir: name, kernel: KERNEL, started: T0 + 600, finished: T0 + 660.5, keyval: {}, iterations: [], ...extra };
}

function stepRecord(name: string, status: JobStatus | null, reason = '', ran = true): StepResultRecord {
  return ran
    ? { name, status, reason, started: '2026-01-01T02:00:00.000Z', finished: status === null ? null : '2026-01-01T02:01:30.250Z', durationMs: status === null ? null : 90_250 }
    : { name, status, reason, started: null, finished: null, durationMs: null };
}

const STEP_NAMES = ['fetch', 'build.xen', 'install.xen', 'bootloader', 'reboot', 'profilers.start', 'domains.dispatch', 'domains.start', 'domains.wait', 'profilers.stop', 'domains.collect'];

/** Names and reasons with everything XML finds hard: markup, quotes, "]]>", controls, NUL, lone surrogates, U+FFFE, beyond the BMP. */
const ODD_NAME = `odd <&> "dq" 'sq' ]]> \u0001\u001b\u007f tab\tnl\ncr\r end 😀 é`;
const ODD_REASON = `line1\r\nline2\ttabbed <b>&amp; "x" 'y' ]]> ]]]]><![CDATA[ \u0000nul \u0008bs \ud800lone \udfffrev \ufffe\uffff 𝄞 \u0085nel`;

function fullNight(): NightRecord {
  const everyStatus = JOB_STATUSES.map((s) => testRecord(`t_${s}`, s, s === 'GOOD' ? '' : `reason for ${s}`));
  const domains: DomainRecord[] = [
    { name: 'xenhost1', status: 'GOOD', reason: '', tests: everyStatus },
    {
      name: 'guest.example',
      status: 'WARN',
      reason: ODD_REASON,
      tests: [
        testRecord(ODD_NAME, 'FAIL', ODD_REASON),
        testRecord('boot.0', 'GOOD', 'completed successfully', { started: null, finished: null }),
        testRecord('CLIENT_JOB.0', 'WARN', ODD_REASON, { started: T0 + 700, finished: T0 + 690 }),
        testRecord('skipped', 'TEST_NA', ODD_REASON),
      ],
    },
    { name: 'empty', status: 'ERROR', reason: 'xl create failed: no such file', tests: [] },
  ];
  return {
    machine: 'xenhost1',
    night: '20260101T020000Z',
    dir: '/var/lib/xentest/nights/20260101T020000Z',
    started: '2026-01-01T02:00:00.000Z',
    finished: '2026-01-01T04:00:00.000Z',
    status: 'ERROR',
    reason: 'domain empty did not start',
    build: { xenTree: `git:${'a'.repeat(40)}`, linuxTree: null, xenVersion: '4.19-unstable', xenBuildId: 'deadbeef', kernel: '6.1.0' },
    steps: STEP_NAMES.map((n) => stepRecord(n, n === 'profilers.start' ? 'WARN' : n === 'domains.start' ? 'ERROR' : 'GOOD', n === 'domains.start' ? 'domain empty did not start' : '')),
    domains,
  };
}

/** A night whose fetch failed: nothing after it ran, no domain. */
function earlyFailure(): NightRecord {
  return {
    ...fullNight(),
    status: 'ERROR',
    reason: 'cannot fetch xen-unstable',
    build: { xenTree: null, linuxTree: null, xenVersion: null, xenBuildId: null, kernel: null },
    steps: STEP_NAMES.map((n) => (n === 'fetch' ? stepRecord(n, 'ERROR', 'cannot fetch xen-unstable: 404') : stepRecord(n, null, '', false))),
    domains: [],
  };
}

// ---- reading the XML back -------------------------------------------------------------------

interface PyElement {
  tag: string;
  attrib: Record<string, string>;
  text: string | null;
  children: PyElement[];
}

const PY_DUMP = `
import json, sys, xml.etree.ElementTree as E
def dump(e):
    return {"tag": e.tag, "attrib": dict(e.attrib), "text": e.text, "children": [dump(c) for c in e]}
print(json.dumps(dump(E.parse(sys.argv[1]).getroot())))
`;

/** Python's ElementTree: E.parse on the file, the tree back as JSON. */
function pythonParse(xml: string): PyElement {
  const dir = mkdtempSync(join(tmpdir(), 'xentest-junit-'));
  try {
    const file = join(dir, 'report.xml');
    writeFileSync(file, xml, 'utf8');
    const r = spawnSync('python3', ['-c', PY_DUMP, file], { encoding: 'utf8' });
    if (r.error) throw r.error;
    expect(r.status, r.stderr).to.equal(0);
    return JSON.parse(r.stdout) as PyElement;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function hasPython(): boolean {
  const r = spawnSync('python3', ['-c', 'import xml.etree.ElementTree'], { encoding: 'utf8' });
  return r.status === 0;
}

const fxp = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseAttributeValue: false,
  parseTagValue: false,
  isArray: (name) => ['testsuite', 'testcase', 'property'].includes(name),
});

type FxpNode = Record<string, unknown>;

/**
 * Jenkins xUnit plugin's junit-10.xsd (jenkinsci/xunit-plugin,
 * src/main/resources/org/jenkinsci/plugins/xunit/types/model/xsd/junit-10.xsd):
 * the attributes each element may have (required ones first) and the
 * children it may contain. An element with an undeclared attribute or child
 * does not validate there.
 */
const JUNIT_10: Record<string, { required: string[]; optional: string[]; children: string[]; text: boolean }> = {
  testsuites: { required: [], optional: ['name', 'time', 'tests', 'failures', 'errors'], children: ['testsuite'], text: false },
  testsuite: {
    required: ['name', 'tests', 'failures', 'errors'],
    optional: ['group', 'time', 'skipped', 'timestamp', 'hostname', 'id', 'package', 'file', 'log', 'url'],
    children: ['testsuite', 'properties', 'testcase', 'system-out', 'system-err'],
    text: false,
  },
  properties: { required: [], optional: [], children: ['property'], text: false },
  property: { required: ['name', 'value'], optional: [], children: [], text: false },
  testcase: {
    required: ['name'],
    optional: ['time', 'classname', 'group'],
    children: ['skipped', 'error', 'failure', 'rerunFailure', 'rerunError', 'flakyFailure', 'flakyError', 'system-out', 'system-err'],
    text: false,
  },
  failure: { required: [], optional: ['type', 'message'], children: [], text: true },
  error: { required: [], optional: ['type', 'message'], children: [], text: true },
  skipped: { required: [], optional: ['type', 'message'], children: [], text: true },
  'system-out': { required: [], optional: [], children: [], text: true },
  'system-err': { required: [], optional: [], children: [], text: true },
};

/** junit-10.xsd's SUREFIRE_TIME, for testsuite/@time and testsuites/@time. */
const SUREFIRE_TIME = /^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$/;

function checkJUnit10(e: PyElement, path = ''): void {
  const where = `${path}/${e.tag}`;
  const spec = JUNIT_10[e.tag];
  expect(spec, `${where} is not a junit-10.xsd element`).to.not.equal(undefined);
  if (!spec) return;
  for (const a of spec.required) expect(e.attrib, `${where} needs @${a}`).to.have.property(a);
  for (const a of Object.keys(e.attrib)) expect([...spec.required, ...spec.optional], `${where} may not have @${a}`).to.include(a);
  for (const c of e.children) expect(spec.children, `${where} may not contain <${c.tag}>`).to.include(c.tag);
  if (!spec.text) expect((e.text ?? '').trim(), `${where} has no text content`).to.equal('');
  if ((e.tag === 'testsuite' || e.tag === 'testsuites') && e.attrib.time !== undefined) {
    expect(e.attrib.time, `${where}/@time`).to.match(SUREFIRE_TIME);
  }
  for (const c of e.children) checkJUnit10(c, where);
}

function suites(root: PyElement): PyElement[] {
  return root.children.filter((c) => c.tag === 'testsuite');
}

function cases(suite: PyElement): PyElement[] {
  return suite.children.filter((c) => c.tag === 'testcase');
}

function outcome(tc: PyElement): PyElement | undefined {
  return tc.children.find((c) => ['failure', 'error', 'skipped'].includes(c.tag));
}

describe('JUnit export', () => {
  const nights: Array<[string, NightRecord]> = [
    ['a night with every status, odd names and an empty domain', fullNight()],
    ['a night that failed before the domains', earlyFailure()],
    ['a night in progress', { ...fullNight(), finished: null, status: null, steps: fullNight().steps.map((s) => (s.name.startsWith('domains.') || s.name === 'profilers.stop' ? stepRecord(s.name, null, '', s.name === 'domains.dispatch') : s)) }],
  ];

  for (const [what, night] of nights) {
    describe(what, () => {
      const xml = toJUnitXml(night);

      it('is well-formed XML 1.0 by fast-xml-parser, with nothing XML 1.0 cannot carry', () => {
        expect(XMLValidator.validate(xml)).to.equal(true);
        expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n')).to.equal(true);
        expect(xml).to.not.match(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/);
        expect(xml).to.not.match(/\p{Surrogate}/u);
        expect(xml).to.not.include('<![CDATA[');
      });

      it('is read by Python ElementTree (E.parse) and has the shape Jenkins junit-10.xsd accepts', function () {
        if (!hasPython()) this.skip();
        const root = pythonParse(xml);
        expect(root.tag).to.equal('testsuites');
        checkJUnit10(root);
      });

      it('counts tests, failures, errors, skipped and time on every suite and the root', function () {
        const doc = fxp.parse(xml) as { testsuites: FxpNode & { testsuite: FxpNode[] } };
        let tests = 0;
        let failures = 0;
        let errors = 0;
        let time = 0;
        for (const s of doc.testsuites.testsuite) {
          const tcs = (s.testcase as FxpNode[] | undefined) ?? [];
          const n = (k: string): number => tcs.filter((tc) => tc[k] !== undefined).length;
          expect(s['@tests'], String(s['@name'])).to.equal(String(tcs.length));
          expect(s['@failures']).to.equal(String(n('failure')));
          expect(s['@errors']).to.equal(String(n('error')));
          expect(s['@skipped']).to.equal(String(n('skipped')));
          const sum = tcs.reduce((a, tc) => a + Number(tc['@time'] ?? 0), 0);
          expect(Number(s['@time'])).to.be.closeTo(sum, 0.0015 * (tcs.length + 1));
          tests += tcs.length;
          failures += n('failure');
          errors += n('error');
          time += Number(s['@time']);
        }
        expect(doc.testsuites['@tests']).to.equal(String(tests));
        expect(doc.testsuites['@failures']).to.equal(String(failures));
        expect(doc.testsuites['@errors']).to.equal(String(errors));
        expect(Number(doc.testsuites['@time'])).to.be.closeTo(time, 0.01);
      });

      it('is the same every time', () => {
        expect(toJUnitXml(night)).to.equal(xml);
      });
    });
  }

  it('maps every autotest status as documented', function () {
    if (!hasPython()) this.skip();
    const root = pythonParse(toJUnitXml(fullNight()));
    const dom0 = suites(root).find((s) => s.attrib.name === 'xenhost1') as PyElement;
    const byName = new Map(cases(dom0).map((c) => [c.attrib.name, c]));
    const expected: Record<JobStatus, string> = {
      GOOD: 'passed',
      WARN: 'passed',
      FAIL: 'failure',
      ERROR: 'error',
      ABORT: 'error',
      BUG: 'error',
      ALERT: 'error',
      RUNNING: 'error',
      NOSTATUS: 'error',
      TEST_NA: 'skipped',
    };
    for (const s of JOB_STATUSES) {
      const tc = byName.get(`t_${s}`) as PyElement;
      const o = outcome(tc);
      expect(o?.tag ?? 'passed', s).to.equal(expected[s]);
      if (o) {
        expect(o.attrib.type, s).to.equal(s);
        expect(o.attrib.message, s).to.equal(`reason for ${s}`);
      }
      expect(tc.attrib.classname).to.equal('xentest.xenhost1.xenhost1');
      expect(tc.attrib.time).to.equal('60.500');
    }
    // WARN passes, and says why in its output.
    const warn = byName.get('t_WARN') as PyElement;
    expect(warn.children.map((c) => c.tag)).to.deep.equal(['system-out']);
    expect(warn.children[0]?.text).to.equal('WARN: reason for WARN');
    expect(byName.get('t_GOOD')?.children).to.deep.equal([]);
    // The suite: its counts, when it started (its first test), which host ran it.
    expect(dom0.attrib).to.include({ tests: '10', failures: '1', errors: '6', skipped: '1', hostname: 'xenhost1', timestamp: '2026-01-01T02:10:00Z' });
  });

  it('carries odd names and reasons through both parsers exactly, less what XML 1.0 cannot carry', function () {
    if (!hasPython()) this.skip();
    const root = pythonParse(toJUnitXml(fullNight()));
    const guest = suites(root).find((s) => s.attrib.name === 'guest.example') as PyElement;
    const [odd, boot, client, skipped] = cases(guest) as [PyElement, PyElement, PyElement, PyElement];
    const expectedName = ODD_NAME.replace(/[\u0001\u001b]/g, '\uFFFD');
    expect(odd.attrib.name).to.equal(expectedName);
    expect(odd.attrib.classname).to.equal('xentest.xenhost1.guest.example');
    const failure = outcome(odd) as PyElement;
    expect(failure.tag).to.equal('failure');
    // Attribute values and text keep their tabs, CRs and newlines; NUL, BS, lone surrogates, U+FFFE and U+FFFF become U+FFFD.
    const carried = ODD_REASON.replace(/[\u0000\u0008\ud800\udfff\ufffe\uffff]/g, '\uFFFD');
    expect(failure.attrib.message).to.equal(carried);
    expect(failure.text).to.equal(carried);
    expect(carried).to.include('𝄞').and.include('\r\n').and.include(']]>');
    // No timestamps, no time; an END before its START, no time either.
    expect(boot.attrib).to.not.have.property('time');
    expect(client.attrib).to.not.have.property('time');
    expect(client.children.map((c) => c.tag)).to.deep.equal(['system-out']);
    expect(client.children[0]?.text).to.equal(`WARN: ${carried}`);
    expect(outcome(skipped)?.tag).to.equal('skipped');
    expect(outcome(skipped)?.attrib.message).to.equal(carried);
  });

  it("puts the night's steps and each domain as dom0 saw it in the night's suite, with what was built", function () {
    if (!hasPython()) this.skip();
    const root = pythonParse(toJUnitXml(fullNight()));
    expect(root.attrib).to.deep.equal({ name: 'xentest xenhost1 night 20260101T020000Z', tests: '28', failures: '2', errors: '8', time: '1718.750' });
    const all = suites(root);
    expect(all.map((s) => s.attrib.name)).to.deep.equal(['night 20260101T020000Z', 'xenhost1', 'guest.example', 'empty']);
    const night = all[0] as PyElement;
    expect(night.attrib).to.include({ hostname: 'xenhost1', timestamp: '2026-01-01T02:00:00Z', id: '0' });
    const names = cases(night).map((c) => c.attrib.name);
    expect(names).to.deep.equal([...STEP_NAMES, 'domain.xenhost1', 'domain.guest.example', 'domain.empty']);
    for (const c of cases(night)) expect(c.attrib.classname).to.equal('xentest.xenhost1');
    const byName = new Map(cases(night).map((c) => [c.attrib.name, c]));
    expect(byName.get('fetch')?.attrib.time).to.equal('90.250');
    expect(outcome(byName.get('domains.start') as PyElement)?.attrib).to.deep.equal({ type: 'ERROR', message: 'domain empty did not start' });
    expect(outcome(byName.get('domain.empty') as PyElement)?.attrib).to.deep.equal({ type: 'ERROR', message: 'xl create failed: no such file' });
    expect(byName.get('profilers.start')?.children[0]?.text).to.equal('WARN: (no reason given)');
    // The domain with no tests: an empty suite, all counts zero.
    expect(all[3]?.attrib).to.include({ tests: '0', failures: '0', errors: '0', skipped: '0', time: '0.000' });
    expect(all[3]?.attrib).to.not.have.property('timestamp');
    expect(cases(all[3] as PyElement)).to.deep.equal([]);
    const props = Object.fromEntries((night.children.find((c) => c.tag === 'properties') as PyElement).children.map((p) => [p.attrib.name, p.attrib.value]));
    expect(props).to.deep.equal({
      machine: 'xenhost1',
      night: '20260101T020000Z',
      status: 'ERROR',
      reason: 'domain empty did not start',
      started: '2026-01-01T02:00:00.000Z',
      finished: '2026-01-01T04:00:00.000Z',
      xen_tree: `git:${'a'.repeat(40)}`,
      xen_version: '4.19-unstable',
      xen_build_id: 'deadbeef',
      kernel: '6.1.0',
    });
  });

  it('shows a night that failed before the domains as its failed step and the steps it never ran', function () {
    if (!hasPython()) this.skip();
    const root = pythonParse(toJUnitXml(earlyFailure()));
    const all = suites(root);
    expect(all).to.have.length(1);
    const byName = new Map(cases(all[0] as PyElement).map((c) => [c.attrib.name, c]));
    expect(outcome(byName.get('fetch') as PyElement)?.attrib).to.deep.equal({ type: 'ERROR', message: 'cannot fetch xen-unstable: 404' });
    for (const n of STEP_NAMES.slice(1)) {
      const tc = byName.get(n) as PyElement;
      expect(outcome(tc)?.tag, n).to.equal('skipped');
      expect(outcome(tc)?.attrib).to.deep.equal({ type: 'NOT_RUN', message: 'not run: the night ended before this step' });
      expect(tc.attrib).to.not.have.property('time');
    }
    expect(all[0]?.attrib).to.include({ tests: '11', failures: '0', errors: '1', skipped: '10' });
  });

  it('tells a step cut short from one still running', function () {
    if (!hasPython()) this.skip();
    const cut: NightRecord = { ...earlyFailure(), steps: [stepRecord('fetch', 'GOOD'), stepRecord('build.xen', null)] };
    const running: NightRecord = { ...cut, finished: null, status: null };
    const buildOf = (n: NightRecord): PyElement => outcome(cases(suites(pythonParse(toJUnitXml(n)))[0] as PyElement)[1] as PyElement) as PyElement;
    expect(buildOf(cut).tag).to.equal('error');
    expect(buildOf(cut).attrib).to.deep.equal({ type: 'UNFINISHED', message: 'started at 2026-01-01T02:00:00.000Z and never finished' });
    expect(buildOf(running).tag).to.equal('skipped');
    expect(buildOf(running).attrib.type).to.equal('IN_PROGRESS');
  });

  describe('escaping', () => {
    it('escapes markup in text and attributes, and keeps whitespace in attributes as references', () => {
      expect(escapeXmlText('a<b>&c ]]> "q" \'s\'\r\n\t')).to.equal('a&lt;b&gt;&amp;c ]]&gt; "q" \'s\'&#13;\n\t');
      expect(escapeXmlAttribute('a<b>&c "q" \'s\'\r\n\t')).to.equal('a&lt;b&gt;&amp;c &quot;q&quot; &apos;s&apos;&#13;&#10;&#9;');
    });

    it('replaces what XML 1.0 cannot carry, and nothing else', () => {
      const illegal = ['\u0000', '\u0001', '\u0008', '\u000b', '\u000c', '\u000e', '\u001f', '\ud800', '\udbff', '\udc00', '\udfff', '\ufffe', '\uffff'];
      for (const c of illegal) expect(xmlChars(`a${c}b`), JSON.stringify(c)).to.equal('a\uFFFDb');
      const legal = ['\t', '\n', '\r', ' ', '\u007f', '\u0085', '\ud7ff', '\ue000', '\ufffd', '😀', '\u{10ffff}', '𝄞'];
      for (const c of legal) expect(xmlChars(`a${c}b`), JSON.stringify(c)).to.equal(`a${c}b`);
      // A reversed pair is two unpaired surrogates.
      expect(xmlChars('\udc00\ud800')).to.equal('\uFFFD\uFFFD');
    });
  });
});
