import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import {
  STATUS_LINE_RE,
  StatusLogUsageError,
  renderEntry,
  sanitiseName,
  type FieldsInput,
  type StatusEntry,
} from '../shared/statuslog/entry.js';
import { formatLocaltime, parsePosixTz } from '../shared/statuslog/localtime.js';
import { StatusError, StatusLogWriter, analyseStatusLog } from '../shared/statuslog/writer.js';
import {
  KeyvalFormatError,
  formatKeyval,
  parseKeyval,
  readKeyval,
  writeIterationKeyval,
  writeKeyval,
} from '../shared/statuslog/keyval.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const writerModuleUrl = pathToFileURL(path.resolve(here, '../shared/statuslog/writer.js')).href;

/** The example log of /work/shared/docs/status-log-v1.md, byte for byte (its localtimes are UTC). */
const DOC_EXAMPLE = [
  'INFO\t----\t----\tkernel=2.6.32-71.el6-autotest\ttimestamp=1369257626\tlocaltime=May 22 21:20:26\t',
  'START\t----\treboot\ttimestamp=1369257628\tlocaltime=May 22 21:20:28\t',
  '\tGOOD\t----\treboot.start\ttimestamp=1369257630\tlocaltime=May 22 21:20:30\t',
  '\tGOOD\t----\treboot.verify\ttimestamp=1369257632\tlocaltime=May 22 21:20:32\t3.10.0-123.el7',
  'END GOOD\t----\treboot\tkernel=3.10.0-123.el7\ttimestamp=1369257634\tlocaltime=May 22 21:20:34\t',
  'START\t----\t----\ttimestamp=1369257636\tlocaltime=May 22 21:20:36\t',
  '\tSTART\tnetwork_Ping.4k\tnetwork_Ping.4k\ttimeout=1800\ttimestamp=1369257638\tlocaltime=May 22 21:20:38\t',
  '\t\tSTART\t----\t----\ttimestamp=1369257640\tlocaltime=May 22 21:20:40\t',
  '\t\t\tGOOD\t----\tsysinfo.before\ttimestamp=1369257642\tlocaltime=May 22 21:20:42\t',
  '\t\tEND GOOD\t----\t----\ttimestamp=1369257644\tlocaltime=May 22 21:20:44\t',
  '\t\tWARN\t----\t----\ttimestamp=1369257646\tlocaltime=May 22 21:20:46\tBUG: soft lockup - CPU#3 stuck for 56s!',
  '\t\tFAIL\tnetwork_Ping.4k\tnetwork_Ping.4k\ttimestamp=1369257648\tlocaltime=May 22 21:20:48\tTimeout reached after 1800 seconds',
  '  Traceback (most recent call last):',
  '  FailError',
  '\tEND FAIL\tnetwork_Ping.4k\tnetwork_Ping.4k\ttimestamp=1369257650\tlocaltime=May 22 21:20:50\t',
  '\tGOOD\t----\tmkfs -t ext4 /dev/sdb1\ttimestamp=1369257652\tlocaltime=May 22 21:20:52\t',
  'END GOOD\t----\t----\ttimestamp=1369257654\tlocaltime=May 22 21:20:54\t',
  '',
].join('\n');

/** The calls that produce DOC_EXAMPLE, one entry every 2 seconds from 1369257626. */
function writeDocExample(w: StatusLogWriter): void {
  w.info([['kernel', '2.6.32-71.el6-autotest']]);
  w.start(null, 'reboot');
  w.status('GOOD', null, 'reboot.start', '');
  w.status('GOOD', null, 'reboot.verify', '3.10.0-123.el7');
  w.end('GOOD', null, 'reboot', [['kernel', '3.10.0-123.el7']]);
  w.start(null, null);
  w.start('network_Ping.4k', 'network_Ping.4k', [['timeout', 1800]]);
  w.start(null, null);
  w.status('GOOD', null, 'sysinfo.before', '');
  w.end('GOOD', null, null);
  w.status('WARN', null, null, 'BUG: soft lockup - CPU#3 stuck for 56s!');
  w.status(
    'FAIL',
    'network_Ping.4k',
    'network_Ping.4k',
    'Timeout reached after 1800 seconds\nTraceback (most recent call last):\nFailError',
  );
  w.end('FAIL', 'network_Ping.4k', 'network_Ping.4k');
  w.status('GOOD', null, 'mkfs -t ext4 /dev/sdb1', '');
  w.end('GOOD', null, null);
}

function clockFrom(start: number, step = 2): () => number {
  let t = start;
  return () => {
    const r = t;
    t += step;
    return r;
  };
}

function withTz<T>(tz: string | undefined, fn: () => T): T {
  const saved = process.env.TZ;
  if (tz === undefined) delete process.env.TZ;
  else process.env.TZ = tz;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
}

function hasPython(): boolean {
  return spawnSync('python3', ['--version']).status === 0;
}

/** A status line split the way the doc (and the reference parser) splits it. */
interface SplitLine {
  indent: number;
  status: string;
  subdir: string;
  testname: string;
  fields: [string, string][];
  reason: string;
}

/** The doc's steps 1-3, in JavaScript, Python 2 (ASCII) reading of \S and \w. */
function splitStatusLine(raw: string): SplitLine | null {
  const line = raw.replace(/\r\x00/g, '');
  if (!STATUS_LINE_RE.test(line)) return null;
  const indent = /^\t*/.exec(line)![0].length;
  const parts = line.slice(indent).split('\t');
  let i = 3;
  const fields: [string, string][] = [];
  for (; i < parts.length; i++) {
    const m = /^([A-Za-z0-9_]+)=([^\n]+)/.exec(parts[i]!);
    if (!m) break;
    fields.push([m[1]!, m[2]!]);
  }
  return {
    indent,
    status: parts[0]!,
    subdir: parts[1]!,
    testname: parts[2]!,
    fields,
    reason: parts.slice(i).join('\t'),
  };
}

let tmp: string;
beforeEach(function () {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xentest-statuslog-'));
});
afterEach(function () {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('statuslog: rendering', function () {
  it('reproduces the example log of status-log-v1.md byte for byte (TZ=UTC)', function () {
    const file = path.join(tmp, 'status.log');
    withTz('UTC', () => {
      const w = new StatusLogWriter(file, { sync: 'none', now: clockFrom(1369257626) });
      writeDocExample(w);
      w.close();
    });
    expect(fs.readFileSync(file, 'utf8')).to.equal(DOC_EXAMPLE);
  });

  it('changes only localtime= when the writer runs in another timezone', function () {
    const file = path.join(tmp, 'status.log');
    withTz('America/New_York', () => {
      const w = new StatusLogWriter(file, { sync: 'none', now: clockFrom(1369257626) });
      writeDocExample(w);
      w.close();
    });
    const got = fs.readFileSync(file, 'utf8');
    expect(got).to.not.equal(DOC_EXAMPLE);
    expect(got).to.include('localtime=May 22 17:20:26\t'); // EDT, UTC-4
    const dropLocaltime = (s: string) => s.replace(/\tlocaltime=[^\t]*/g, '');
    expect(dropLocaltime(got)).to.equal(dropLocaltime(DOC_EXAMPLE));
  });

  it('reads TZ at render time, and an explicit tz option wins', function () {
    const e: StatusEntry = { status: 'GOOD', testname: 't', timestamp: 1369257626 };
    expect(withTz('UTC', () => renderEntry(e, 0))).to.include('localtime=May 22 21:20:26\t');
    expect(withTz('Asia/Tokyo', () => renderEntry(e, 0))).to.include('localtime=May 23 06:20:26\t');
    expect(withTz('Asia/Tokyo', () => renderEntry(e, 0, { tz: 'UTC' }))).to.include('localtime=May 22 21:20:26\t');
  });

  it('ends START and END lines in a TAB and renders missing names as ----', function () {
    const ts = 1369257626;
    expect(withTz('UTC', () => renderEntry({ status: 'START', timestamp: ts }, 0))).to.equal(
      'START\t----\t----\ttimestamp=1369257626\tlocaltime=May 22 21:20:26\t\n',
    );
    expect(withTz('UTC', () => renderEntry({ status: 'END ABORT', subdir: '', testname: 'x', timestamp: ts }, 2))).to.equal(
      '\t\tEND ABORT\t----\tx\ttimestamp=1369257626\tlocaltime=May 22 21:20:26\t\n',
    );
  });

  it('keeps the given field order, then timestamp and localtime', function () {
    const fields: FieldsInput = new Map<string, string | number>([
      ['zeta', 'last?'],
      ['10', 'integer-like key stays where it was put'],
      ['alpha', 1],
    ]);
    const line = withTz('UTC', () => renderEntry({ status: 'INFO', fields, timestamp: 5.9 }, 0));
    expect(line).to.equal(
      'INFO\t----\t----\tzeta=last?\t10=integer-like key stays where it was put\talpha=1\ttimestamp=5\tlocaltime=Jan 01 00:00:05\t\n',
    );
  });

  it('turns TABs in the first message line into 8 spaces', function () {
    const line = withTz('UTC', () =>
      renderEntry({ status: 'FAIL', testname: 't', message: 'a\tb\t\tc', timestamp: 0 }, 1),
    );
    expect(line).to.equal('\tFAIL\t----\tt\ttimestamp=0\tlocaltime=Jan 01 00:00:00\ta        b                c\n');
    expect(splitStatusLine(line.slice(0, -1))!.reason).to.equal('a        b                c');
  });

  it('writes further message lines as two-space continuation lines, without the indent', function () {
    const text = withTz('UTC', () =>
      renderEntry({ status: 'FAIL', testname: 't', message: 'first\nsecond\twith tab\n\nlast\n', timestamp: 0 }, 3),
    );
    expect(text.split('\n')).to.deep.equal([
      '\t\t\tFAIL\t----\tt\ttimestamp=0\tlocaltime=Jan 01 00:00:00\tfirst',
      '  second\twith tab',
      '  ',
      '  last',
      '  ',
      '',
    ]);
    // The parser skips every continuation line.
    for (const l of text.split('\n').slice(1)) expect(splitStatusLine(l)).to.equal(null);
  });
});

describe('statuslog: sanitising text autotest would refuse', function () {
  const cases: { input: [string | null, string | null, string]; fields: [string, string | number][]; subdir: string; testname: string; reason: string; continuation: string[]; fieldsOut: [string, string][] }[] = [
    {
      input: [' \t leading', 'name\twith\ttabs', 'msg\twith tab\r\nand crlf'],
      fields: [['kernel', 'a\tb\nc'], ['empty', ''], ['num', 42]],
      subdir: 'leading',
      testname: 'name with tabs',
      reason: 'msg        with tab',
      continuation: ['  and crlf'],
      fieldsOut: [['kernel', 'a b c'], ['num', '42']],
    },
    {
      input: ['\u00a0nbsp', '\u2028line-separator', 'rc=1 from make'],
      fields: [],
      subdir: 'nbsp',
      testname: 'line-separator',
      reason: ' rc=1 from make',
      continuation: [],
      fieldsOut: [],
    },
    {
      input: ['\n', '  \r\n ', 'x\vy\fz\r'],
      fields: [['v', '\r\n']],
      subdir: '----',
      testname: '----',
      reason: 'x y z ',
      continuation: [],
      fieldsOut: [['v', ' ']],
    },
    {
      input: ['\x1cunit-separator', '\ufeffbom', 'kernel=evil injected'],
      fields: [],
      subdir: 'unit-separator',
      testname: 'bom',
      reason: ' kernel=evil injected',
      continuation: [],
      fieldsOut: [],
    },
    {
      input: ['ünï/dir', 'tëst ', 'ß=1 is a field to Python 3\nnext\r\vline\f'],
      fields: [],
      subdir: 'ünï/dir',
      testname: 'tëst ',
      reason: ' ß=1 is a field to Python 3',
      continuation: ['  next  line '],
      fieldsOut: [],
    },
  ];

  function render(c: (typeof cases)[number]): string {
    return withTz('UTC', () =>
      renderEntry(
        { status: 'WARN', subdir: c.input[0], testname: c.input[1], message: c.input[2], fields: c.fields, timestamp: 1 },
        1,
      ),
    );
  }

  cases.forEach((c, n) => {
    it(`case ${n}: still one parseable status line with the expected names, fields and reason`, function () {
      const lines = render(c).split('\n');
      expect(lines.pop()).to.equal('');
      const first = lines[0]!;
      // The parser's regex, with Python 2's ASCII \S and with the Unicode \S of Python 3 / JavaScript.
      expect(STATUS_LINE_RE.test(first)).to.equal(true);
      expect(/^\t*(\S[^\t]*\t){3}/u.test(first)).to.equal(true);
      const split = splitStatusLine(first)!;
      expect(split.indent).to.equal(1);
      expect(split.status).to.equal('WARN');
      expect(split.subdir).to.equal(c.subdir);
      expect(split.testname).to.equal(c.testname);
      expect(split.fields).to.deep.equal([...c.fieldsOut, ['timestamp', '1'], ['localtime', 'Jan 01 00:00:01']]);
      expect(split.reason).to.equal(c.reason);
      expect(lines.slice(1)).to.deep.equal(c.continuation);
      for (const l of lines) expect(l).to.not.match(/[\r\v\f]/);
    });
  });

  it('sanitiseName trims leading whitespace only and maps empty to ----', function () {
    expect(sanitiseName(undefined)).to.equal('----');
    expect(sanitiseName('')).to.equal('----');
    expect(sanitiseName(' \t\u3000 ')).to.equal('----');
    expect(sanitiseName('  a b  ')).to.equal('a b  ');
  });

  it('the Python reading of the doc regex and field split agrees on every sanitised line', function () {
    if (!hasPython()) this.skip();
    const file = path.join(tmp, 'status.log');
    withTz('UTC', () => {
      const w = new StatusLogWriter(file, { sync: 'none', now: clockFrom(1000) });
      w.start('grp', 'grp', [['timeout', 60]]);
      for (const c of cases) w.status('WARN', c.input[0], c.input[1], c.input[2], c.fields);
      w.info([['kernel', '3.10.0']], 'info message');
      w.end('WARN', 'grp', 'grp');
      w.close();
    });
    // A tiny Python version of the doc's steps 1-3, run on bytes (Python 2's
    // ASCII \S and \w) and on str (Python 3's Unicode ones).
    const script = String.raw`
import json, re, sys
def split(lines, T, E, CRNUL, NL):
    status_re = re.compile(r'^\t*(\S[^\t]*\t){3}' if isinstance(T, str) else rb'^\t*(\S[^\t]*\t){3}')
    field_re = re.compile(r'^(\w+)=(.+)' if isinstance(T, str) else rb'^(\w+)=(.+)')
    out = []
    for line in lines:
        line = line.replace(CRNUL, E)
        if not status_re.search(line):
            out.append(None)
            continue
        indent = len(line) - len(line.lstrip(T))
        parts = line[indent:].rstrip(NL).split(T)
        i, fields = 3, []
        while i < len(parts):
            m = field_re.search(parts[i])
            if not m:
                break
            fields.append([m.group(1), m.group(2)])
            i += 1
        out.append([indent, parts[0], parts[1], parts[2], fields, T.join(parts[i:])])
    return out
def text(x):
    if isinstance(x, bytes): return x.decode('utf-8')
    if isinstance(x, list): return [text(y) for y in x]
    return x
data = open(sys.argv[1], 'rb').read()
b = split(data.split(b'\n')[:-1], b'\t', b'', b'\r\x00', b'\n')
s = split(data.decode('utf-8').split('\n')[:-1], '\t', '', '\r\x00', '\n')
print(json.dumps({'bytes': text(b), 'str': s}))
`;
    const py = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
    expect(py.status, py.stderr).to.equal(0);
    const got = JSON.parse(py.stdout) as { bytes: unknown[]; str: unknown[] };
    const expected = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .slice(0, -1)
      .map((l) => {
        const s = splitStatusLine(l);
        return s && [s.indent, s.status, s.subdir, s.testname, s.fields, s.reason];
      });
    expect(got.bytes).to.deep.equal(expected);
    expect(got.str).to.deep.equal(expected);
    // And the expected values are the ones we meant to write.
    const statusLines = expected.filter((x) => x !== null) as unknown[][];
    expect(statusLines).to.have.length(cases.length + 3);
    cases.forEach((c, n) => {
      const [indent, status, subdir, testname, , reason] = statusLines[n + 1]!;
      expect([indent, status, subdir, testname, reason]).to.deep.equal([1, 'WARN', c.subdir, c.testname, c.reason]);
    });
    const infoTime = 1000 + 2 * (cases.length + 1);
    expect(statusLines[cases.length + 1]!.slice(1)).to.deep.equal([
      'INFO',
      '----',
      '----',
      [['kernel', '3.10.0'], ['timestamp', String(infoTime)], ['localtime', formatLocaltime(infoTime, 'UTC')]],
      'info message',
    ]);
  });
});

describe('statuslog: programming errors are refused', function () {
  const entry = (over: Partial<StatusEntry>): StatusEntry => ({ status: 'GOOD', timestamp: 0, ...over });

  it('refuses status codes outside job_statuses', function () {
    for (const status of ['END', 'END START', 'PASS', 'good', 'GOOD ', 'END  GOOD']) {
      expect(() => renderEntry(entry({ status: status as StatusEntry['status'] }), 0), status).to.throw(StatusLogUsageError);
    }
    for (const status of ['TEST_NA', 'END TEST_NA', 'NOSTATUS', 'END ALERT', 'BUG', 'INFO', 'START']) {
      expect(() => renderEntry(entry({ status: status as StatusEntry['status'] }), 0), status).to.not.throw();
    }
  });

  it('refuses field keys the parser would not read as fields, reserved and duplicate keys, and plain objects', function () {
    for (const key of ['warnings.disable', 'a-b', '', 'ключ', 'a b', 'k=v']) {
      expect(() => renderEntry(entry({ fields: [[key, 'v']] }), 0), key).to.throw(StatusLogUsageError, /not \[A-Za-z0-9_\]\+/);
    }
    expect(() => renderEntry(entry({ fields: [['timestamp', 1]] }), 0)).to.throw(StatusLogUsageError, /reserved/);
    expect(() => renderEntry(entry({ fields: [['localtime', 'x']] }), 0)).to.throw(StatusLogUsageError, /reserved/);
    expect(() => renderEntry(entry({ fields: [['a', 1], ['a', 2]] }), 0)).to.throw(StatusLogUsageError, /twice/);
    expect(() => renderEntry(entry({ fields: { a: 1 } as unknown as FieldsInput }), 0)).to.throw(StatusLogUsageError, /plain object/);
  });

  it('refuses END with nothing open, and writing after close', function () {
    const w = new StatusLogWriter(path.join(tmp, 'status.log'), { sync: 'none' });
    expect(() => w.end('GOOD', null, null)).to.throw(StatusLogUsageError);
    expect(() => w.status('START' as 'GOOD', null, 'x', '')).to.throw(StatusLogUsageError);
    w.close();
    expect(() => w.info([])).to.throw(StatusLogUsageError, /closed/);
    expect(fs.readFileSync(path.join(tmp, 'status.log'), 'utf8')).to.equal('');
  });
});

describe('statuslog: localtime', function () {
  it('uses English month names whatever the process locale', function () {
    const code = `
      const { formatLocaltime } = await import(${JSON.stringify(pathToFileURL(path.resolve(here, '../shared/statuslog/localtime.js')).href)});
      console.log([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((m) => formatLocaltime(Date.UTC(2013, m, 3, 4, 5, 6) / 1000)).join(','));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
      encoding: 'utf8',
      env: { ...process.env, TZ: 'UTC', LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8', LC_TIME: 'fr_FR.UTF-8' },
    });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal(
      'Jan 03 04:05:06,Feb 03 04:05:06,Mar 03 04:05:06,Apr 03 04:05:06,May 03 04:05:06,Jun 03 04:05:06,' +
        'Jul 03 04:05:06,Aug 03 04:05:06,Sep 03 04:05:06,Oct 03 04:05:06,Nov 03 04:05:06,Dec 03 04:05:06',
    );
  });

  it('parses POSIX TZ rule strings', function () {
    expect(parsePosixTz('JST-9')).to.deep.equal({ stdOffset: -9 * 3600 });
    expect(parsePosixTz('<+0530>-5:30')).to.deep.equal({ stdOffset: -(5 * 3600 + 1800) });
    expect(parsePosixTz('CET-1CEST,M3.5.0,M10.5.0/3')).to.deep.include({ stdOffset: -3600, dstOffset: -7200 });
    expect(parsePosixTz('Nowhere/Bogus')).to.equal(undefined);
    expect(parsePosixTz('EST')).to.equal(undefined);
  });

  // Transitions of 2013 (US, EU, southern hemisphere) and a spread of other instants.
  const timestamps: number[] = [];
  for (const t of [1362898800, 1383458400, 1364691600, 1382835600, 1365264000, 1380988800, 1369257626, 0, 86399]) {
    for (const d of [-3601, -3600, -1, 0, 1, 3599, 3600]) timestamps.push(t + d);
  }
  let seed = 12345;
  for (let i = 0; i < 200; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    timestamps.push(631152000 + (seed % (2145916800 - 631152000))); // 1990..2037
  }
  const zones: (string | undefined)[] = [
    undefined,
    '',
    'UTC',
    'America/New_York',
    'Europe/Berlin',
    ':Europe/Paris',
    'Australia/Lord_Howe',
    'Asia/Kolkata',
    'EST5EDT',
    'JST-9',
    'IST-5:30',
    '<+0530>-5:30',
    'CET-1CEST,M3.5.0,M10.5.0/3',
    'AEST-10AEDT,M10.1.0,M4.1.0/3',
    'NZST-12NZDT,M9.5.0,M4.1.0/3',
    'XXX3YYY,J60/1,300/25',
    'Nowhere/Bogus',
  ];
  zones.forEach((tz) => {
    it(`matches Python's time.strftime('%b %d %H:%M:%S', time.localtime(t)) with TZ=${JSON.stringify(tz)}`, function () {
      if (!hasPython()) this.skip();
      const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
      if (tz === undefined) delete env.TZ;
      else env.TZ = tz;
      const py = spawnSync(
        'python3',
        ['-c', "import sys, time\nfor l in sys.stdin: print(time.strftime('%b %d %H:%M:%S', time.localtime(int(l))))"],
        { input: timestamps.join('\n') + '\n', encoding: 'utf8', env },
      );
      expect(py.status, py.stderr).to.equal(0);
      const expected = py.stdout.trim().split('\n');
      const got = withTz(tz, () => timestamps.map((t) => formatLocaltime(t)));
      const mismatches = timestamps
        .map((t, i) => [t, got[i], expected[i]])
        .filter(([, g, e]) => g !== e);
      expect(mismatches).to.deep.equal([]);
    });
  });
});

describe('statuslog: writer depth, resuming and groups', function () {
  it('keeps the depth like autotest: START raises it for the next lines, END is written one level up', function () {
    const w = new StatusLogWriter(path.join(tmp, 'status.log'), { sync: 'none', now: () => 0 });
    expect(w.depth).to.equal(0);
    w.start('a', 'a');
    w.info([['kernel', 'k']]);
    w.start(null, 'b');
    expect(w.depth).to.equal(2);
    expect(w.end('GOOD', null, 'b').startsWith('\tEND GOOD\t')).to.equal(true);
    expect(w.status('GOOD', null, 'x', '').startsWith('\tGOOD\t')).to.equal(true);
    expect(w.end('GOOD', 'a', 'a').startsWith('END GOOD\t')).to.equal(true);
    expect(w.depth).to.equal(0);
    w.close();
  });

  it('a writer reopened after every entry writes exactly what one writer writes', function () {
    const one = path.join(tmp, 'one.log');
    const many = path.join(tmp, 'many.log');
    withTz('UTC', () => {
      const w = new StatusLogWriter(one, { sync: 'none', now: clockFrom(1369257626) });
      writeDocExample(w);
      w.close();

      // Replay the same calls, but with a fresh writer for each one.
      const clock = clockFrom(1369257626);
      const calls: ((w: StatusLogWriter) => void)[] = [];
      const recorder = new Proxy({} as StatusLogWriter, {
        get: (_t, prop) =>
          (...args: unknown[]) => {
            calls.push((real) => (real as unknown as Record<string, (...a: unknown[]) => unknown>)[prop as string]!(...args));
          },
      });
      writeDocExample(recorder);
      const depths: number[] = [];
      for (const call of calls) {
        const fresh = new StatusLogWriter(many, { sync: 'none', now: clock });
        depths.push(fresh.depth);
        call(fresh);
        fresh.close();
      }
      expect(depths).to.deep.equal([0, 0, 1, 1, 1, 0, 1, 2, 3, 3, 2, 2, 2, 1, 1]);
    });
    expect(fs.readFileSync(many, 'utf8')).to.equal(fs.readFileSync(one, 'utf8'));
    expect(fs.readFileSync(many, 'utf8')).to.equal(DOC_EXAMPLE);
  });

  it('learns the open levels, their names and worst statuses from the file', function () {
    const file = path.join(tmp, 'status.log');
    const w1 = new StatusLogWriter(file, { sync: 'none', now: () => 7 });
    w1.start(null, null);
    w1.start('ping', 'ping');
    w1.status('WARN', null, 'x', 'it warned\nmore');
    w1.close();
    const w2 = new StatusLogWriter(file, { sync: 'none', now: () => 8 });
    expect(w2.depth).to.equal(2);
    expect(w2.openLevels).to.deep.equal([
      { subdir: null, testname: null, status: 'NOSTATUS', reason: '' },
      { subdir: 'ping', testname: 'ping', status: 'WARN', reason: 'it warned' },
    ]);
    expect(w2.resumed!.truncatedTail).to.equal(undefined);
    expect(w2.end('GOOD', 'ping', 'ping')).to.match(/^\tEND GOOD\tping\tping\t/);
    expect(w2.depth).to.equal(1);
    w2.close();
    const w3 = new StatusLogWriter(file, { sync: 'none', resume: false });
    expect(w3.depth).to.equal(0);
    w3.close();
  });

  it('truncates a torn last line before continuing', function () {
    const file = path.join(tmp, 'status.log');
    const w1 = new StatusLogWriter(file, { sync: 'none', now: () => 7 });
    w1.start('t', 't');
    w1.close();
    const complete = fs.readFileSync(file, 'utf8');
    fs.appendFileSync(file, '\tGOOD\t----\tpartial\ttimest');
    const w2 = new StatusLogWriter(file, { sync: 'none', now: () => 8 });
    expect(w2.resumed!.truncatedTail!.toString()).to.equal('\tGOOD\t----\tpartial\ttimest');
    expect(fs.readFileSync(file, 'utf8')).to.equal(complete);
    expect(w2.depth).to.equal(1);
    w2.end('GOOD', 't', 't');
    w2.close();
    expect(fs.readFileSync(file, 'utf8')).to.match(/^START\tt\tt\t[^\n]*\nEND GOOD\tt\tt\t[^\n]*\n$/);
  });

  it('counts levels exactly as the reference parser does', function () {
    const L = (indent: number, status: string, name = '----', rest = 'timestamp=1\t') =>
      '\t'.repeat(indent) + `${status}\t----\t${name}\t${rest}`;
    const text = [
      L(0, 'START', 'job'), // depth 1
      L(1, 'START', 'a'), // depth 2
      '  a continuation line\twith\ttabs',
      L(3, 'GOOD', 'too-deep'), // ignored: indent higher than expected
      L(1, 'FAIL', 'regressed', 'timestamp=1\tboom'), // indent 1 < 2: implicit END ABORT of "a", then counted at depth 1
      L(0, 'END GOOD', 'stray-end-too-deep?'), // END at indent 0 with depth 1: closes "job"
      L(0, 'END GOOD', 'stray'), // nothing open: expected indent -1, ignored
      'START\r\x00\t----\tcleaned\t', // "\r\x00" is deleted first: a START at depth 0
      '\tINFO\t----\t----\tkernel=x\t', // INFO changes nothing
      '\tBOGUS\t----\t----\t', // AssertionError in the parser: reported, skipped
      '\tEND\t----\t----\t', // bare END: same
      'GOOD\tonly two fields\t', // not a status line
      ' START\t----\t----\t', // leading space: not a status line
      '',
    ].join('\n');
    const a = analyseStatusLog(text);
    expect(a.levels).to.deep.equal([{ subdir: null, testname: 'cleaned', status: 'NOSTATUS', reason: '' }]);
    expect(a.implicitAborts).to.equal(1);
    expect(a.overIndentedLines).to.equal(2);
    expect(a.invalidLines).to.deep.equal([10, 11]);
    expect(a.statusLines).to.equal(6);
    expect(a.topStatus).to.equal('ABORT');

    // An indent that drops by two levels aborts both, then the line counts at the outer level.
    const b = analyseStatusLog(
      [L(0, 'START', 'job'), L(1, 'START', 'a'), L(2, 'START', 'b'), L(1, 'START', 'c'), ''].join('\n'),
    );
    expect(b.implicitAborts).to.equal(2);
    expect(b.levels.map((l) => [l.testname, l.status])).to.deep.equal([
      ['job', 'ABORT'],
      ['c', 'NOSTATUS'],
    ]);
  });

  it('group writes START and END with the worst status and its reason', async function () {
    const file = path.join(tmp, 'status.log');
    const w = new StatusLogWriter(file, { sync: 'none', now: () => 0, tz: 'UTC' });
    const r = await w.group('build', 'build', (g) => {
      g.status('GOOD', null, 'configure', '');
      g.status('WARN', null, 'make', 'warnings: 3');
      g.status('GOOD', null, 'install', 'done');
      return 42;
    });
    expect(r).to.equal(42);
    await w.group(null, 'empty', () => undefined);
    await w.group(null, 'na-beats-abort', async (g) => {
      g.status('ABORT', null, 'x', 'aborted');
      g.status('TEST_NA', null, 'y', 'not applicable');
    });
    await w.group(null, 'outer', async (g) => {
      await g.group(null, 'inner', (h) => {
        h.status('FAIL', null, 'z', 'inner failed');
      });
    });
    expect(w.depth).to.equal(0);
    w.close();
    const ends = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => /^\t*END /.test(l))
      .map((l) => {
        const s = splitStatusLine(l)!;
        return [s.indent, s.status, s.testname, s.reason];
      });
    expect(ends).to.deep.equal([
      [0, 'END WARN', 'build', 'warnings: 3'],
      [0, 'END GOOD', 'empty', ''],
      [0, 'END TEST_NA', 'na-beats-abort', 'not applicable'],
      [1, 'END FAIL', 'inner', 'inner failed'],
      [0, 'END FAIL', 'outer', 'inner failed'],
    ]);
  });

  it('group writes END even if fn throws, and rethrows', async function () {
    const file = path.join(tmp, 'status.log');
    const w = new StatusLogWriter(file, { sync: 'none', now: () => 0, tz: 'UTC' });
    const boom = new Error('kaboom');
    let caught: unknown;
    try {
      await w.group(null, 'crash', (g) => {
        g.start(null, 'left-open');
        g.status('WARN', null, 'w', 'first warning');
        throw boom;
      });
    } catch (e) {
      caught = e;
    }
    expect(caught).to.equal(boom);
    await w
      .group('sub', 'failing', () => {
        throw new StatusError('FAIL', 'ping lost 3 of 4\nsecond line');
      })
      .catch(() => undefined);
    await w
      .group('sub', 'warned-then-na', (g) => {
        g.status('WARN', null, 'w', 'warned');
        return Promise.reject(new StatusError('TEST_NA', 'no IOMMU'));
      })
      .catch(() => undefined);
    expect(w.depth).to.equal(0);
    w.close();
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const ends = lines
      .filter((l) => /^\t*END /.test(l))
      .map((l) => {
        const s = splitStatusLine(l)!;
        return [s.indent, s.status, s.testname, s.reason];
      });
    expect(ends).to.deep.equal([
      [1, 'END ABORT', 'left-open', 'level left open when its enclosing group ended'],
      [0, 'END ABORT', 'crash', 'kaboom'],
      [0, 'END FAIL', 'failing', 'ping lost 3 of 4'],
      [0, 'END TEST_NA', 'warned-then-na', 'no IOMMU'],
    ]);
    // ABORT carries the stack as continuation lines; a StatusError only its own further lines.
    const crashEnd = lines.findIndex((l) => l.startsWith('END ABORT\t----\tcrash'));
    expect(lines[crashEnd + 1]).to.equal('  Error: kaboom');
    expect(lines[crashEnd + 2]).to.match(/^ {2} {4}at /);
    const failEnd = lines.findIndex((l) => l.startsWith('END FAIL\tsub\tfailing'));
    expect(lines[failEnd + 1]).to.equal('  second line');
    expect(lines[failEnd + 2]).to.match(/^START\t/);
  });
});

describe('statuslog: a writer killed with SIGKILL never leaves half an entry', function () {
  this.timeout(120000);

  /** The child: resume on the file, then write entries forever (seq=N in every entry). */
  const child = `
    import * as fs from 'node:fs';
    const { StatusLogWriter } = await import(${JSON.stringify(writerModuleUrl)});
    const file = process.argv[1];
    const w = new StatusLogWriter(file);
    let seq = 0;
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/\\tseq=(\\d+)\\t/g)) seq = Math.max(seq, Number(m[1]) + 1);
    process.stdout.write('ready ' + w.depth + '\\n');
    for (;;) {
      const r = seq % 7;
      const f = [['seq', seq]];
      if (w.depth < 3 && (r === 0 || r === 3)) w.start('grp' + seq, 'grp' + seq, f);
      else if (w.depth > 0 && (r === 2 || r === 5 || r === 6)) {
        const top = w.openLevels[w.openLevels.length - 1];
        w.end('GOOD', top.subdir, top.testname, f);
      } else {
        w.status(r === 4 ? 'WARN' : 'GOOD', null, 'op' + seq,
          'entry ' + seq + ' ' + 'x'.repeat((seq * 37) % 300) + '\\nsecond line ' + seq + '\\nthird line ' + seq, f);
      }
      seq++;
    }
  `;

  function runAndKill(file: string, delayMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, ['--input-type=module', '-e', child, file], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let killed = false;
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.stdout.on('data', (d: Buffer) => {
        if (!killed && d.toString().includes('ready')) {
          killed = true;
          setTimeout(() => p.kill('SIGKILL'), delayMs);
        }
      });
      p.on('error', reject);
      p.on('exit', (code, signal) => {
        if (signal === 'SIGKILL') resolve();
        else reject(new Error(`child exited with ${code}/${signal}: ${stderr}`));
      });
    });
  }

  /** Every line complete and valid, seq 0..n-1 each exactly once, indents consistent. Returns n. */
  function check(file: string): number {
    const text = fs.readFileSync(file, 'utf8');
    expect(text === '' || text.endsWith('\n'), 'file ends with a newline').to.equal(true);
    const lines = text.split('\n').slice(0, -1);
    let depth = 0;
    let expectSeq = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const s = splitStatusLine(line);
      expect(s, `line ${i + 1} is a status line: ${JSON.stringify(line)}`).to.not.equal(null);
      const fields = new Map(s!.fields);
      expect(fields.get('seq'), `line ${i + 1} seq`).to.equal(String(expectSeq));
      expect(fields.has('timestamp') && fields.has('localtime')).to.equal(true);
      if (s!.status === 'START') {
        expect(s!.indent, `line ${i + 1} indent`).to.equal(depth);
        depth++;
      } else if (s!.status.startsWith('END ')) {
        expect(s!.indent, `line ${i + 1} indent`).to.equal(depth - 1);
        depth--;
      } else {
        expect(s!.indent, `line ${i + 1} indent`).to.equal(depth);
        expect(s!.reason).to.match(new RegExp(`^entry ${expectSeq} x*$`));
        expect(lines[i + 1], `line ${i + 2}`).to.equal(`  second line ${expectSeq}`);
        expect(lines[i + 2], `line ${i + 3}`).to.equal(`  third line ${expectSeq}`);
        i += 2;
      }
      expectSeq++;
    }
    expect(analyseStatusLog(text).levels).to.have.length(depth);
    return expectSeq;
  }

  it('kill, check, resume, repeat', async function () {
    const file = path.join(tmp, 'status.log');
    fs.writeFileSync(file, '');
    let previous = 0;
    const delays = [40, 5, 120, 0, 75, 200, 15, 60];
    for (const delay of delays) {
      await runAndKill(file, delay + Math.floor(Math.random() * 30));
      const n = check(file);
      expect(n).to.be.at.least(previous);
      previous = n;
    }
    expect(previous, 'the children wrote something').to.be.greaterThan(delays.length);
    // A last writer closes whatever is open, at the right indents.
    const w = new StatusLogWriter(file, { sync: 'none' });
    while (w.depth > 0) {
      const top = w.openLevels[w.depth - 1]!;
      w.end('GOOD', top.subdir, top.testname, [['seq', previous++]]);
    }
    w.close();
    expect(check(file)).to.equal(previous);
    expect(analyseStatusLog(fs.readFileSync(file, 'utf8')).levels).to.deep.equal([]);
  });
});

describe('statuslog: keyval', function () {
  it('writes key=value lines in sorted key order, as autotest does', function () {
    expect(formatKeyval([['b', 2], ['a', 'x y'], ['c-d.e', 1.5], ['A', true], ['big', 2n ** 70n], ['n', 1e21]])).to.equal(
      'A=True\na=x y\nb=2\nbig=1180591620717411303424\nc-d.e=1.5\nn=1000000000000000000000\n',
    );
    expect(formatKeyval(new Map([['b', 1], ['a', 2]]), undefined, { order: 'given' })).to.equal('b=1\na=2\n');
  });

  it('adds or accepts the {type_tag} suffix and checks keys like autotest', function () {
    expect(formatKeyval([['throughput', 12.5], ['lat{perf}', 3]], 'perf')).to.equal('lat{perf}=3\nthroughput{perf}=12.5\n');
    expect(formatKeyval([['version', '1']], 'attr')).to.equal('version{attr}=1\n');
    const bad: [Parameters<typeof formatKeyval>[0], Parameters<typeof formatKeyval>[1]][] = [
      [[['a b', 1]], undefined],
      [[['', 1]], undefined],
      [[['x{perf}', 1]], undefined],
      [[['x{attr}', 1]], 'perf'],
      [[['a=b', 1]], undefined],
      [[['ключ', 1]], undefined],
      [[['a', 1], ['a', 2]], undefined],
      [{ a: 1 } as unknown as [string, number][], undefined],
    ];
    for (const [entries, tag] of bad) expect(() => formatKeyval(entries, tag), JSON.stringify(entries)).to.throw(StatusLogUsageError);
    expect(() => formatKeyval([['a', 1]], 'foo' as 'perf')).to.throw(StatusLogUsageError, 'Invalid type tag: foo');
  });

  it('writes nothing at all when one key is bad', function () {
    const file = path.join(tmp, 'keyval');
    writeKeyval(file, [['ok', 1]]);
    expect(() => writeKeyval(file, [['fine', 1], ['not fine', 2]])).to.throw(StatusLogUsageError, 'Invalid key: not fine');
    expect(fs.readFileSync(file, 'utf8')).to.equal('ok=1\n');
  });

  it('keeps every value on its line', function () {
    expect(formatKeyval([['a', 'x\ny\r\nz\rw']])).to.equal('a=x y z w\n');
  });

  it('round-trips through readKeyval, with autotest\'s numeric conversions', function () {
    const dir = path.join(tmp, 'results');
    fs.mkdirSync(dir);
    writeKeyval(dir, [
      ['int', 7],
      ['float', 2.5],
      ['str', 'hello world'],
      ['dotted.key-name', 'v'],
      ['zero_padded', '007'],
      ['trailing_dot', '1.'],
      ['leading_dot', '.5'],
      ['negative', -3],
      ['huge', '123456789012345678901234567890'],
      ['eq', 'a=b'],
      ['kernel', '3.10.0-123.el7'],
    ]);
    writeKeyval(dir, [['rate', 99.5], ['count', 3]], 'perf');
    writeKeyval(dir, [['version', 2]], 'attr');
    writeKeyval(dir, [['int', 8]]); // a later key wins
    expect(fs.existsSync(path.join(dir, 'keyval'))).to.equal(true);
    const all = readKeyval(dir);
    expect(Object.fromEntries(all)).to.deep.equal({
      int: 8,
      float: 2.5,
      str: 'hello world',
      'dotted.key-name': 'v',
      zero_padded: 7,
      trailing_dot: '1.',
      leading_dot: '.5',
      negative: '-3',
      huge: 123456789012345678901234567890n,
      eq: 'a=b',
      kernel: '3.10.0-123.el7',
      'count{perf}': 3,
      'rate{perf}': 99.5,
      'version{attr}': 2,
    });
    expect(Object.fromEntries(readKeyval(dir, 'perf'))).to.deep.equal({ count: 3, rate: 99.5 });
    expect(Object.fromEntries(readKeyval(dir, 'attr'))).to.deep.equal({ version: 2 });
    expect(readKeyval(path.join(tmp, 'missing')).size).to.equal(0);
  });

  it('reads comments, blank lines and trailing whitespace as autotest does, and rejects malformed lines', function () {
    const text = '# a comment\n\na=1 # trailing comment\nb=x#y\nc=  spaced  \t\r\n   \nd=\n';
    expect(Object.fromEntries(parseKeyval(text))).to.deep.equal({ a: 1, b: 'x', c: '  spaced', d: '' });
    for (const bad of ['b = 2', ' a=1', 'noequals', 'a b=1', '{perf}=1']) {
      expect(() => parseKeyval(`ok=1\n${bad}\n`), bad)
        .to.throw(KeyvalFormatError, `Invalid format line: ${bad.trimEnd()}`)
        .with.property('line', 2);
    }
  });

  it('writes an iteration as attr lines, perf lines and the blank line that ends it', function () {
    const file = path.join(tmp, 'keyval');
    writeIterationKeyval(file, { attr: [['mode', 'hvm']], perf: [['mbps', 940.5], ['loss', 0]] });
    writeIterationKeyval(file, { perf: [['mbps', 941]] });
    expect(fs.readFileSync(file, 'utf8')).to.equal('mode{attr}=hvm\nloss{perf}=0\nmbps{perf}=940.5\n\nmbps{perf}=941\n\n');
    expect(Object.fromEntries(readKeyval(file, 'perf'))).to.deep.equal({ loss: 0, mbps: 941 });
  });
});
