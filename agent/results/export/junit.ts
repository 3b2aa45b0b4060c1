/**
 * A night as JUnit XML, the format Jenkins (the junit and xUnit plugins) and
 * GitLab read test reports in.
 *
 * There is no single JUnit schema; the strictest reader is Jenkins' xUnit
 * plugin, which validates its input against junit-10.xsd, so the output keeps
 * to that: <testsuites> carries name, tests, failures, errors and time (no
 * skipped, no timestamp: junit-10.xsd does not allow them there), each
 * <testsuite> carries name, tests, failures, errors, skipped, time,
 * timestamp, hostname and id, and each <testcase> name, classname and time.
 *
 *   <testsuites>
 *     <testsuite name="night <id>">   the night's own steps (fetch, build.xen, ..., reboot,
 *                                      domains.*) and one domain.<name> case per domain,
 *                                      as dom0 saw it (started, finished, timed out), like
 *                                      the night's status.log; its <properties> say what was
 *                                      built and booted
 *     <testsuite name="<domain>">     one case per test in the domain's status.log,
 *                                      classname xentest.<machine>.<domain>
 *
 * How autotest statuses become JUnit results ({@link junitVerdict}):
 *
 *   GOOD                   passed
 *   WARN                   passed, with <system-out>WARN: <reason></system-out>
 *   FAIL                   <failure type="FAIL" message="<reason>">
 *   ERROR, ABORT           <error type="ERROR"|"ABORT" message="<reason>">
 *   BUG, ALERT             <error>: not a result a test ends with, so not a pass
 *   RUNNING, NOSTATUS      <error>: the test never recorded how it ended
 *   TEST_NA                <skipped type="TEST_NA" message="<reason>">
 *
 * A step with no status was either never entered (<skipped type="NOT_RUN">)
 * or entered and never finished (<error type="UNFINISHED">, or <skipped> if
 * the night is still in progress).
 *
 * Text is escaped for XML 1.0; characters XML 1.0 cannot carry at all (C0
 * controls other than tab, newline and carriage return, unpaired UTF-16
 * surrogates, U+FFFE, U+FFFF) cannot be written even as character
 * references, so they are replaced by U+FFFD. No CDATA sections are used:
 * escaping covers every character, "]]>" included.
 */
import type { JobStatus } from '../../../shared/statuslog/entry.js';
import type { DomainRecord, NightRecord, StepResultRecord, TestRecord } from '../record.js';
import { isoFromEpochSeconds, isoFromString, stepOutcome, stepSeconds, testSeconds } from './common.js';

export type JUnitVerdict =
  | { kind: 'passed'; note?: string }
  | { kind: 'failure' | 'error' | 'skipped'; type: string; message: string };

export function junitVerdict(status: JobStatus, reason: string): JUnitVerdict {
  switch (status) {
    case 'GOOD':
      return { kind: 'passed' };
    case 'WARN':
      return { kind: 'passed', note: `WARN: ${reason === '' ? '(no reason given)' : reason}` };
    case 'FAIL':
      return { kind: 'failure', type: status, message: reason || status };
    case 'ERROR':
    case 'ABORT':
    case 'BUG':
    case 'ALERT':
      return { kind: 'error', type: status, message: reason || status };
    case 'RUNNING':
      return { kind: 'error', type: status, message: reason || 'started and never recorded an end' };
    case 'NOSTATUS':
      return { kind: 'error', type: status, message: reason || 'no status was recorded' };
    case 'TEST_NA':
      return { kind: 'skipped', type: status, message: reason || status };
  }
}

interface Case {
  name: string;
  classname: string;
  seconds: number | null;
  verdict: JUnitVerdict;
}

interface Suite {
  name: string;
  hostname: string;
  timestamp: string | null;
  properties: Array<[string, string]>;
  cases: Case[];
}

interface Counts {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  seconds: number;
}

export function toJUnitXml(night: NightRecord): string {
  const suites = [nightSuite(night), ...night.domains.map((d) => domainSuite(night, d))];
  const all = suites.map(count);
  const total = all.reduce(
    (a, c) => ({
      tests: a.tests + c.tests,
      failures: a.failures + c.failures,
      errors: a.errors + c.errors,
      skipped: a.skipped + c.skipped,
      seconds: a.seconds + c.seconds,
    }),
    { tests: 0, failures: 0, errors: 0, skipped: 0, seconds: 0 },
  );
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(
    `<testsuites${attrs([
      ['name', `xentest ${night.machine} night ${night.night}`],
      ['tests', total.tests],
      ['failures', total.failures],
      ['errors', total.errors],
      ['time', seconds(total.seconds)],
    ])}>`,
  );
  suites.forEach((s, i) => writeSuite(out, s, all[i] as Counts, i));
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}

function nightSuite(night: NightRecord): Suite {
  const classname = `xentest.${night.machine}`;
  const cases: Case[] = night.steps.map((step) => ({
    name: step.name,
    classname,
    seconds: stepSeconds(step),
    verdict: stepVerdict(step, night),
  }));
  for (const d of night.domains) {
    cases.push({ name: `domain.${d.name}`, classname, seconds: null, verdict: junitVerdict(d.status, d.reason) });
  }
  const b = night.build;
  const properties: Array<[string, string | null]> = [
    ['machine', night.machine],
    ['night', night.night],
    ['status', night.status],
    ['reason', night.reason === '' ? null : night.reason],
    ['started', night.started],
    ['finished', night.finished],
    ['xen_tree', b.xenTree],
    ['linux_tree', b.linuxTree],
    ['xen_version', b.xenVersion],
    ['xen_build_id', b.xenBuildId],
    ['kernel', b.kernel],
  ];
  return {
    name: `night ${night.night}`,
    hostname: night.machine,
    timestamp: isoFromString(night.started),
    properties: properties.filter((p): p is [string, string] => p[1] !== null),
    cases,
  };
}

function stepVerdict(step: StepResultRecord, night: NightRecord): JUnitVerdict {
  const o = stepOutcome(step, night);
  switch (o.kind) {
    case 'status':
      return junitVerdict(o.status, o.reason);
    case 'not-run':
      return { kind: 'skipped', type: 'NOT_RUN', message: o.reason };
    case 'unfinished':
      return night.finished === null
        ? { kind: 'skipped', type: 'IN_PROGRESS', message: o.reason }
        : { kind: 'error', type: 'UNFINISHED', message: o.reason };
  }
}

function domainSuite(night: NightRecord, domain: DomainRecord): Suite {
  const classname = `xentest.${night.machine}.${domain.name}`;
  const starts = domain.tests.map((t) => t.started).filter((t): t is number => t !== null && Number.isFinite(t));
  return {
    name: domain.name,
    hostname: domain.name,
    timestamp: starts.length > 0 ? isoFromEpochSeconds(Math.min(...starts)) : null,
    properties: [],
    cases: domain.tests.map((t: TestRecord) => ({
      name: t.name,
      classname,
      seconds: testSeconds(t.started, t.finished),
      verdict: junitVerdict(t.status, t.reason),
    })),
  };
}

function count(s: Suite): Counts {
  const n = (k: JUnitVerdict['kind']): number => s.cases.filter((c) => c.verdict.kind === k).length;
  return {
    tests: s.cases.length,
    failures: n('failure'),
    errors: n('error'),
    skipped: n('skipped'),
    seconds: s.cases.reduce((a, c) => a + (c.seconds ?? 0), 0),
  };
}

function writeSuite(out: string[], s: Suite, c: Counts, id: number): void {
  out.push(
    `  <testsuite${attrs([
      ['name', s.name],
      ['tests', c.tests],
      ['failures', c.failures],
      ['errors', c.errors],
      ['skipped', c.skipped],
      ['time', seconds(c.seconds)],
      ['timestamp', s.timestamp === null ? null : junitTimestamp(s.timestamp)],
      ['hostname', s.hostname],
      ['id', id],
    ])}>`,
  );
  if (s.properties.length > 0) {
    out.push('    <properties>');
    for (const [name, value] of s.properties) out.push(`      <property${attrs([['name', name], ['value', value]])}/>`);
    out.push('    </properties>');
  }
  for (const tc of s.cases) writeCase(out, tc);
  out.push('  </testsuite>');
}

function writeCase(out: string[], tc: Case): void {
  const open = `    <testcase${attrs([
    ['name', tc.name],
    ['classname', tc.classname],
    ['time', tc.seconds === null ? null : seconds(tc.seconds)],
  ])}`;
  const v = tc.verdict;
  if (v.kind === 'passed') {
    if (v.note === undefined) {
      out.push(`${open}/>`);
      return;
    }
    out.push(`${open}>`, `      <system-out>${escapeXmlText(v.note)}</system-out>`, '    </testcase>');
    return;
  }
  const body = v.kind === 'skipped' ? '' : escapeXmlText(v.message);
  out.push(`${open}>`, `      <${v.kind}${attrs([['type', v.type], ['message', v.message]])}>${body}</${v.kind}>`, '    </testcase>');
}

/** Seconds as junit-10.xsd's SUREFIRE_TIME accepts them: digits, a point, milliseconds. */
function seconds(s: number): string {
  return (Number.isFinite(s) && s > 0 ? s : 0).toFixed(3);
}

/** ISO 8601 to the second, in UTC. */
function junitTimestamp(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z');
}

function attrs(pairs: Array<[string, string | number | null]>): string {
  return pairs
    .filter((p): p is [string, string | number] => p[1] !== null)
    .map(([k, v]) => ` ${k}="${escapeXmlAttribute(String(v))}"`)
    .join('');
}

/**
 * Replace what XML 1.0 cannot carry (Char production: tab, newline, carriage
 * return, U+0020-U+D7FF, U+E000-U+FFFD, U+10000-U+10FFFF) by U+FFFD. With
 * the u flag, an unpaired surrogate is one code point outside every range;
 * a paired one (a character beyond the BMP) is inside the last.
 */
export function xmlChars(s: string): string {
  return s.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD');
}

/** Element content. ">" is escaped too, so "]]>" never appears; CR as a reference, or parsers turn CRLF into LF. */
export function escapeXmlText(s: string): string {
  return xmlChars(s).replace(/[&<>\r]/g, (c) => TEXT_ESCAPES[c] as string);
}

/** Attribute values, double-quoted. Tab, LF and CR as references, or attribute-value normalisation turns them into spaces. */
export function escapeXmlAttribute(s: string): string {
  return xmlChars(s).replace(/[&<>"'\t\n\r]/g, (c) => ATTRIBUTE_ESCAPES[c] as string);
}

const TEXT_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };
const ATTRIBUTE_ESCAPES: Record<string, string> = {
  ...TEXT_ESCAPES,
  '"': '&quot;',
  "'": '&apos;',
  '\t': '&#9;',
  '\n': '&#10;',
};
