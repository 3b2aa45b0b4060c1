/**
 * Conformance of shared/tko/parser.ts with autotest's TKO parser, rule by
 * rule and quirk by quirk, as /work/shared/docs/status-log-v1.md gives them.
 * Each case is a hand-written log and the exact list the reference produces
 * (de-duplicated, in its order): testname, status, reason, subdir, kernel
 * base, started, finished.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StatusError, StatusLogWriter } from '../shared/statuslog/writer.js';
import { kernelFromFields, kernelHash } from '../shared/tko/kernel.js';
import {
  ReferenceOrder,
  StatusLogParseError,
  StatusLogParser,
  parseStatusLogText,
  type ReferenceFailure,
  type StatusLogParserOptions,
} from '../shared/tko/parser.js';
import type { TkoTest } from '../shared/tko/types.js';

type Row = [testname: string, status: string, reason: string, subdir: string | null, kernel: string, started: number | null, finished: number | null];

export interface ConformanceCase {
  title: string;
  log: string;
  options?: StatusLogParserOptions;
  rows?: Row[];
  /** For a log the reference refuses: its exception and the line (null: not a line). */
  error?: { referenceError: ReferenceFailure; line: number | null };
}

function row(t: TkoTest): Row {
  return [t.testname, t.status, t.reason, t.subdir, t.kernel.base, t.started, t.finished];
}

function rows(log: string, options: StatusLogParserOptions = {}): Row[] {
  return parseStatusLogText(log, options).map(row);
}

/** Lines of a log: TABs between the given parts, a newline after each line. */
function log(...lines: string[]): string {
  return lines.map((l) => l + '\n').join('');
}

const U = 'UNKNOWN';

/** The worked example of status-log-v1.md, byte for byte. */
const DOC_EXAMPLE = log(
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
);

const K = '3.10.0-123.el7';

export const CASES: ConformanceCase[] = [
  {
    title: 'the worked example of the document, exactly as it gives it',
    log: DOC_EXAMPLE,
    options: { serverJobStatus: 'GOOD' },
    rows: [
      ['SERVER_JOB', 'GOOD', '', '----', K, null, null],
      ['boot.0', 'GOOD', K, null, K, 1369257628, 1369257634],
      ['CLIENT_JOB.0', 'GOOD', '', null, K, 1369257636, 1369257654],
      ['network_Ping.4k', 'FAIL', 'BUG: soft lockup - CPU#3 stuck for 56s!, Timeout reached after 1800 seconds', 'network_Ping.4k', K, 1369257638, 1369257650],
      ['mkfs -t ext4 /dev/sdb1', 'GOOD', '', null, K, null, 1369257652],
    ],
  },

  // --- What the parser accepts -------------------------------------------
  {
    title: 'cleaning: every "\\r\\x00" is deleted, even inside the status word',
    log: log('GO\r\x00OD\t----\tt1\ttimestamp=10\tfine\r\x00 really'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'GOOD', 'fine really', null, U, null, 10],
    ],
  },
  {
    title: 'cleaning: a lone \\r is kept and ends up in the reason',
    log: log('FAIL\t----\tt1\ttimestamp=10\tboom\r'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'FAIL', 'boom\r', null, U, null, 10],
    ],
  },
  {
    title: 'status-line test: blank lines, continuation lines, fewer than three TABs, an empty or space-led field are skipped',
    log: log(
      '',
      '  Traceback (most recent call last):',
      'GOOD\t----\tno_third_tab',
      'GOOD\t\tempty_subdir\ttimestamp=1\t',
      'GOOD\t ----\tspace_led\ttimestamp=2\t',
      ' GOOD\t----\tspace_first\ttimestamp=3\t',
      'no tabs at all',
      'GOOD\t----\tcounted\ttimestamp=4\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['counted', 'GOOD', '', null, U, null, 4],
    ],
  },
  {
    title: 'fields: a later duplicate key wins',
    log: log('GOOD\t----\tt1\ttimestamp=10\ttimestamp=20\t'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'GOOD', '', null, U, null, 20],
    ],
  },
  {
    title: 'fields: warnings.disable=x stops field parsing; it and everything after it are the reason',
    log: log('WARN\t----\tt1\twarnings.disable=x\ttimestamp=10\tmsg'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'WARN', 'warnings.disable=x\ttimestamp=10\tmsg', null, U, null, null],
    ],
  },
  {
    title: 'fields: a reason such as "errno=5 oops" is taken as a field, leaving the reason empty',
    log: log('FAIL\t----\tt1\ttimestamp=10\terrno=5 oops'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'FAIL', '', null, U, null, 10],
    ],
  },
  {
    title: 'fields: "key=" with nothing after it is not a field (.+ needs a character)',
    log: log('FAIL\t----\tt1\tkey=\ttimestamp=10\tx'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'FAIL', 'key=\ttimestamp=10\tx', null, U, null, null],
    ],
  },
  {
    title: 'fields: a line that ends after its fields has an empty reason',
    log: log('FAIL\t----\tt1\ttimestamp=10'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'FAIL', '', null, U, null, 10],
    ],
  },
  {
    title: 'type: ---- is None; a test made of one status line is named after its testname, else its subdir',
    log: log('GOOD\tsub1\t----\ttimestamp=10\t', 'GOOD\t----\tname2\ttimestamp=11\t', 'GOOD\tsub3\tname3\ttimestamp=12\t'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['sub1', 'GOOD', '', 'sub1', U, null, 10],
      ['name2', 'GOOD', '', null, U, null, 11],
      ['name3', 'GOOD', '', 'sub3', U, null, 12],
    ],
  },
  {
    title: 'type: every job status is accepted, and a status line with no names is not a test',
    log: log(
      'START\t----\tall\ttimestamp=1\t',
      '\tNOSTATUS\t----\t----\ttimestamp=2\t',
      '\tRUNNING\t----\t----\ttimestamp=3\t',
      '\tALERT\t----\t----\ttimestamp=4\t',
      '\tBUG\t----\t----\ttimestamp=5\tbug',
      '\tGOOD\t----\t----\ttimestamp=6\t',
      'END GOOD\t----\tall\ttimestamp=7\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['all', 'GOOD', 'bug', null, U, 1, 7],
    ],
  },

  // --- The status stack ------------------------------------------------------
  {
    title: 'stack: a test is the worst of its lines and its END; TEST_NA counts as worse than ABORT',
    log: log(
      'START\t----\tna\ttimestamp=1\t',
      '\tTEST_NA\t----\t----\ttimestamp=2\tnot applicable',
      '\tABORT\t----\t----\ttimestamp=3\tdied',
      'END GOOD\t----\tna\ttimestamp=4\t',
      'START\t----\tend_worst\ttimestamp=5\t',
      '\tWARN\t----\t----\ttimestamp=6\tw',
      'END ERROR\t----\tend_worst\ttimestamp=7\terr',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['na', 'TEST_NA', 'not applicable', null, U, 1, 4],
      ['end_worst', 'ERROR', 'w', null, U, 5, 7],
    ],
  },
  {
    title: 'stack: a group inside a test (run_group, sysinfo) is one test with the worst status inside it',
    log: log(
      'START\tgrp\tgrp\ttimestamp=1\t',
      '\tSTART\t----\tinner1\ttimestamp=2\t',
      '\t\tGOOD\t----\tinner1\ttimestamp=3\t',
      '\tEND GOOD\t----\tinner1\ttimestamp=4\t',
      '\tSTART\t----\tinner2\ttimestamp=5\t',
      '\t\tFAIL\t----\tinner2\ttimestamp=6\tinner failed',
      '\tEND FAIL\t----\tinner2\ttimestamp=7\t',
      'END GOOD\tgrp\tgrp\ttimestamp=8\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['grp', 'FAIL', 'inner failed', 'grp', U, 1, 8],
    ],
  },

  // --- Indentation -------------------------------------------------------------
  {
    title: 'indent: a line indented too little closes the open level with END ABORT carrying its reason and timestamp',
    log: log(
      'START\tt1\tt1\ttimestamp=1\t',
      '\tGOOD\tt1\tt1\ttimestamp=2\t',
      'FAIL\t----\tt2\ttimestamp=3\tt2 broke',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'ABORT', 't2 broke', 't1', U, 1, 3],
      ['t2', 'FAIL', 't2 broke', null, U, null, 3],
    ],
  },
  {
    title: 'indent: for an INFO line the synthetic END ABORT\'s reason is the string "None"',
    log: log(
      'START\tt1\tt1\ttimestamp=1\t',
      'INFO\t----\t----\tkernel=4.1\ttimestamp=5\tignored',
      'GOOD\t----\tt2\ttimestamp=6\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', '4.1', null, null],
      ['t1', 'ABORT', 'None', 't1', U, 1, 5],
      ['t2', 'GOOD', '', null, '4.1', null, 6],
    ],
  },
  {
    title:
      'indent: a level without subdir is closed with "END ABORT ---- ----" (no timestamp= if the line has none); ' +
      'a test closed so becomes the CLIENT_JOB (re-using, and renaming, the client\'s record) and itself stays RUNNING',
    log: log('START\t----\t----\ttimestamp=1\t', '\tSTART\t----\tt1\ttimestamp=2\t', 'GOOD\t----\tt2\t'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['CLIENT_JOB.1', 'ABORT', '', null, U, 1, null],
      ['t1', 'RUNNING', '', null, U, 2, null],
      ['t2', 'GOOD', '', null, U, null, null],
    ],
  },
  {
    title: 'indent: a line indented too much is ignored (its status word is still checked)',
    log: log('START\tt1\tt1\ttimestamp=1\t', '\t\t\tFAIL\tt1\tt1\ttimestamp=2\tlost', 'END GOOD\tt1\tt1\ttimestamp=3\t', '\tGOOD\t----\tx\ttimestamp=4\t'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'GOOD', '', 't1', U, 1, 3],
    ],
  },
  {
    title: 'indent: an END at the top level is ignored',
    log: log('END FAIL\tt1\tt1\ttimestamp=1\t', 'GOOD\t----\tt2\ttimestamp=2\t'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t2', 'GOOD', '', null, U, null, 2],
    ],
  },

  // --- START: client jobs and tests --------------------------------------------
  {
    title: 'START ---- ---- starts a client job (CLIENT_JOB.<n>, counted from 0); tests inside are at its depth + 1',
    log: log(
      'START\t----\t----\ttimestamp=1\t',
      '\tSTART\tt1\tt1\ttimestamp=2\t',
      '\tEND GOOD\tt1\tt1\ttimestamp=3\t',
      'END GOOD\t----\t----\ttimestamp=4\t',
      'START\t----\t----\ttimestamp=5\t',
      '\tGOOD\t----\tt2\ttimestamp=6\t',
      'END GOOD\t----\t----\ttimestamp=7\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['CLIENT_JOB.0', 'GOOD', '', null, U, 1, 4],
      ['t1', 'GOOD', '', 't1', U, 2, 3],
      ['CLIENT_JOB.1', 'GOOD', '', null, U, 5, 7],
      ['t2', 'GOOD', '', null, U, null, 6],
    ],
  },
  {
    title: 'START: a test\'s own START reason is one of its reasons',
    log: log('START\tt1\tt1\ttimestamp=1\tstarting', '\tFAIL\tt1\tt1\ttimestamp=2\tfailed', 'END FAIL\tt1\tt1\ttimestamp=3\t'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'FAIL', 'failed, starting', 't1', U, 1, 3],
    ],
  },
  {
    title: 'START ---- ---- inside a running test only nests',
    log: log('START\tt1\tt1\ttimestamp=1\t', '\tSTART\t----\t----\ttimestamp=2\t', '\tEND WARN\t----\t----\ttimestamp=3\tw', 'END GOOD\tt1\tt1\ttimestamp=4\t'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'WARN', '', 't1', U, 1, 4],
    ],
  },

  // --- INFO ---------------------------------------------------------------------------
  {
    title: 'INFO kernel=: base without -autotest, patches hashed, used by the tests that follow',
    log: log(
      'INFO\t----\t----\tkernel=5.10.0-autotest\tpatch0=fix1 http://x/fix1.patch abc123\tpatch1=fix2  ref2   def456\ttimestamp=1\t',
      'GOOD\t----\tt1\ttimestamp=2\t',
      'INFO\t----\t----\tkernel=-autotest\tpatch0=not three\ttimestamp=3\t',
      'GOOD\t----\tt2\ttimestamp=4\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'GOOD', '', null, '5.10.0', null, 2],
      ['t2', 'GOOD', '', null, U, null, 4],
    ],
  },
  {
    title: 'INFO kernel=: a patch that is not exactly three words makes the reference fail (TypeError)',
    log: log('GOOD\t----\tt0\ttimestamp=1\t', 'INFO\t----\t----\tkernel=5.10\tpatch0=only two\ttimestamp=2\t'),
    error: { referenceError: 'TypeError', line: 2 },
  },
  {
    title: 'INFO job_abort_reason= becomes SERVER_JOB\'s reason; INFO lines are not tests',
    log: log('INFO\t----\t----\tjob_abort_reason=control file raised\ttimestamp=1\tcontrol file raised', 'GOOD\t----\tt1\ttimestamp=2\t'),
    options: { serverJobStatus: 'FAIL' },
    rows: [
      ['SERVER_JOB', 'FAIL', 'control file raised', '----', U, null, null],
      ['t1', 'GOOD', '', null, U, null, 2],
    ],
  },

  // --- STATUS -------------------------------------------------------------------------
  {
    title: 'STATUS: a status line with a subdir inside a test sets the test\'s subdir',
    log: log('START\t----\tt1\ttimestamp=1\t', '\tGOOD\tresults_t1\tt1\ttimestamp=2\t', 'END GOOD\t----\tt1\ttimestamp=3\t'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'GOOD', '', 'results_t1', U, 1, 3],
    ],
  },
  {
    title: 'STATUS: reasons that are part of a longer one are dropped, the rest sorted and joined with ", "',
    log: log(
      'START\tt1\tt1\ttimestamp=1\t',
      '\tWARN\t----\t----\ttimestamp=2\tzeta warning',
      '\tWARN\t----\t----\ttimestamp=3\tzeta',
      '\tWARN\t----\t----\ttimestamp=4\talpha',
      '\tWARN\t----\t----\ttimestamp=5\tzeta',
      'END WARN\tt1\tt1\ttimestamp=6\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'WARN', 'alpha, zeta warning', 't1', U, 1, 6],
    ],
  },
  {
    title: 'STATUS: only lines as bad as the current status or worse add reasons (GOOD after WARN adds nothing)',
    log: log(
      'START\tt1\tt1\ttimestamp=1\t',
      '\tWARN\t----\t----\ttimestamp=2\twarned',
      '\tGOOD\tt1\tt1\ttimestamp=3\tcompleted successfully',
      'END WARN\tt1\tt1\ttimestamp=4\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'WARN', 'warned', 't1', U, 1, 4],
    ],
  },

  // --- END ------------------------------------------------------------------------------
  {
    title: 'END: the subdir is the level\'s (from its START or a status line), not the END line\'s own names',
    log: log('START\tstart_sub\tt1\ttimestamp=1\t', 'END GOOD\tend_sub\tend_name\ttimestamp=2\t'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['end_name', 'GOOD', '', 'start_sub', U, 1, 2],
    ],
  },
  {
    title: 'END: a parent level without a subdir inherits the subdir of the level that ended',
    log: log(
      'START\t----\touter\ttimestamp=1\t',
      '\tSTART\tinner_sub\tinner\ttimestamp=2\t',
      '\tEND GOOD\tinner_sub\tinner\ttimestamp=3\t',
      'END GOOD\t----\touter\ttimestamp=4\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['outer', 'GOOD', '', 'inner_sub', U, 1, 4],
    ],
  },
  {
    title: 'END reboot: a reboot that did not fail takes the kernel from kernel=/patchN=, none means UNKNOWN; boot.<n> counts boots',
    log: log(
      'START\t----\treboot\ttimestamp=1\t',
      'END GOOD\t----\treboot\tkernel=4.9.0-autotest\tpatch0=a b c\ttimestamp=2\t',
      'GOOD\t----\tt1\ttimestamp=3\t',
      'START\t----\treboot\ttimestamp=4\t',
      'END WARN\t----\treboot\ttimestamp=5\tslow',
      'GOOD\t----\tt2\ttimestamp=6\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['boot.0', 'GOOD', '', null, '4.9.0', 1, 2],
      ['t1', 'GOOD', '', null, '4.9.0', null, 3],
      ['boot.1', 'WARN', 'slow', null, U, 4, 5],
      ['t2', 'GOOD', '', null, U, null, 6],
    ],
  },
  {
    title: 'END reboot: a failed reboot keeps the kernel; a reboot with a subdir keeps its name and is not a boot.<n>',
    log: log(
      'INFO\t----\t----\tkernel=4.1\ttimestamp=1\t',
      'START\t----\treboot\ttimestamp=2\t',
      'END FAIL\t----\treboot\tkernel=9.9\ttimestamp=3\tdid not come back',
      'START\trb\treboot\ttimestamp=4\t',
      'END GOOD\trb\treboot\tkernel=5.0\ttimestamp=5\t',
      'GOOD\t----\tboot.1\ttimestamp=6\t',
      'START\t----\treboot\ttimestamp=7\t',
      'END GOOD\t----\treboot\tkernel=6.0\ttimestamp=8\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', '6.0', null, null],
      ['boot.0', 'FAIL', 'did not come back', null, '4.1', 2, 3],
      ['reboot', 'GOOD', '', 'rb', '5.0', 4, 5],
      ['boot.1', 'GOOD', '', null, '5.0', null, 6],
      ['boot.2', 'GOOD', '', null, '6.0', 7, 8],
    ],
  },

  // --- A test finishes ---------------------------------------------------------------
  {
    title: 'finish: CLIENT_JOB.<n> is GOOD even if its tests failed, but keeps ABORT and TEST_NA',
    log: log(
      'START\t----\t----\ttimestamp=1\t',
      '\tFAIL\t----\tt1\ttimestamp=2\tbad',
      'END FAIL\t----\t----\ttimestamp=3\t',
      'START\t----\t----\ttimestamp=4\t',
      'END ABORT\t----\t----\ttimestamp=5\tclient died',
      'START\t----\t----\ttimestamp=6\t',
      'END TEST_NA\t----\t----\ttimestamp=7\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['CLIENT_JOB.0', 'GOOD', '', null, U, 1, 3],
      ['t1', 'FAIL', 'bad', null, U, null, 2],
      ['CLIENT_JOB.1', 'ABORT', 'client died', null, U, 4, 5],
      ['CLIENT_JOB.2', 'TEST_NA', '', null, U, 6, 7],
    ],
  },
  {
    title: 'finish: with no reason from its lines, a test takes the reason of the line that ends it',
    log: log('START\tt1\tt1\ttimestamp=1\t', 'END FAIL\tt1\tt1\ttimestamp=2\tended badly'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'FAIL', 'ended badly', 't1', U, 1, 2],
    ],
  },

  // --- End of input -----------------------------------------------------------------
  {
    title: 'end of input: open levels get END ABORT "Job aborted unexpectedly" with the last line\'s timestamp',
    log: log('START\t----\t----\ttimestamp=1\t', '\tSTART\tt1\tt1\ttimestamp=2\t', '\t\tGOOD\t----\tstep\ttimestamp=3\t'),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['CLIENT_JOB.0', 'ABORT', 'Job aborted unexpectedly', null, U, 1, 3],
      ['t1', 'ABORT', 'Job aborted unexpectedly', 't1', U, 2, 3],
    ],
  },
  {
    title: 'end of input: with aborted_by in the job keyval the reason is "Job aborted by <user> at <date>"',
    log: log('START\tt1\tt1\ttimestamp=2\t'),
    options: { jobKeyval: new Map([['aborted_by', 'alice'], ['aborted_on', '1369257626']]), tz: 'UTC' },
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'ABORT', 'Job aborted by alice at May 22 21:20:26', 't1', U, 2, 2],
    ],
  },
  {
    title: 'end of input quirk: a client job cut off after a test becomes a test named after that subdir; CLIENT_JOB.n stays RUNNING',
    log: log(
      'START\t----\t----\ttimestamp=1\t',
      '\tSTART\tt1\tt1\ttimestamp=2\t',
      '\tEND GOOD\tt1\tt1\ttimestamp=3\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['CLIENT_JOB.0', 'RUNNING', '', null, U, 1, null],
      ['t1', 'GOOD', '', 't1', U, 2, 3],
      ['t1', 'ABORT', 'Job aborted unexpectedly', 't1', U, 1, 3],
    ],
  },
  {
    title: 'end of input: the last line must be a status line when levels are open (the reference fails otherwise)',
    log: log('START\tt1\tt1\ttimestamp=1\t', '\tFAIL\tt1\tt1\ttimestamp=2\tboom', '  Traceback (most recent call last):'),
    error: { referenceError: 'AttributeError', line: 3 },
  },
  {
    title: 'end of input: aborted_by without aborted_on makes the reference fail',
    log: log('START\tt1\tt1\ttimestamp=1\t'),
    options: { jobKeyval: new Map([['aborted_by', 'alice']]) },
    error: { referenceError: 'AttributeError', line: null },
  },
  {
    title: 'end of input: a last line without its newline is still a line',
    log: 'GOOD\t----\tt1\ttimestamp=1\tno newline',
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['t1', 'GOOD', 'no newline', null, U, null, 1],
    ],
  },

  // --- SERVER_JOB -------------------------------------------------------------------------
  {
    title: 'SERVER_JOB: first in the list, ABORT when the status is unknown, times from job_started/job_finished',
    log: log('GOOD\t----\tt1\ttimestamp=5\t'),
    options: { jobKeyval: new Map([['job_started', '100'], ['job_finished', '200']]) },
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, 100, 200],
      ['t1', 'GOOD', '', null, U, null, 5],
    ],
  },
  {
    title: 'SERVER_JOB: an empty log is SERVER_JOB alone',
    log: '',
    options: { serverJobStatus: 'GOOD' },
    rows: [['SERVER_JOB', 'GOOD', '', '----', U, null, null]],
  },

  // --- The quirks the document lists --------------------------------------------------------
  {
    title: 'quirk: a job-level WARN between tests makes the next test GOOD with that reason',
    log: log(
      'START\t----\t----\ttimestamp=1\t',
      '\tWARN\t----\t----\ttimestamp=2\tclock skew',
      '\tSTART\tt1\tt1\ttimestamp=3\t',
      '\t\tGOOD\tt1\tt1\ttimestamp=4\tcompleted successfully',
      '\tEND GOOD\tt1\tt1\ttimestamp=5\t',
      'END GOOD\t----\t----\ttimestamp=6\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['CLIENT_JOB.0', 'GOOD', '', null, U, 1, 6],
      ['t1', 'GOOD', 'clock skew', 't1', U, 3, 5],
    ],
  },
  {
    title: 'quirk: a bare named GOOD at client level reports the worst earlier bare line or warning of the client job, with reason ""',
    log: log(
      'START\t----\t----\ttimestamp=1\t',
      '\tWARN\t----\t----\ttimestamp=2\tclock skew',
      '\tSTART\tt1\tt1\ttimestamp=3\t',
      '\tEND GOOD\tt1\tt1\ttimestamp=4\t',
      '\tGOOD\t----\tumount /mnt\ttimestamp=5\t',
      'END GOOD\t----\t----\ttimestamp=6\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['CLIENT_JOB.0', 'GOOD', '', null, U, 1, 6],
      ['t1', 'GOOD', 'clock skew', 't1', U, 3, 4],
      ['umount /mnt', 'WARN', '', null, U, null, 5],
    ],
  },
  {
    title: 'quirk: a missing END gives the test an END ABORT named after its subdir, with the reason of the line that caught it',
    log: log(
      'START\t----\t----\ttimestamp=1\t',
      '\tSTART\tt1\tt1\ttimestamp=2\t',
      '\t\tGOOD\t----\tstep\ttimestamp=3\t',
      '\tSTART\tt2\tt2\ttimestamp=4\t',
      '\tEND GOOD\tt2\tt2\ttimestamp=5\t',
      'END GOOD\t----\t----\ttimestamp=6\t',
    ),
    rows: [
      ['SERVER_JOB', 'ABORT', '', '----', U, null, null],
      ['CLIENT_JOB.0', 'GOOD', '', null, U, 1, 6],
      ['t1', 'ABORT', '', 't1', U, 2, 4],
      ['t2', 'GOOD', '', 't2', U, 4, 5],
    ],
  },

  // --- Logs the reference refuses ------------------------------------------------------------
  {
    title: 'refused: an unknown status word (AssertionError), at its line',
    log: log('GOOD\t----\tt1\ttimestamp=1\t', 'PASS\t----\tt2\ttimestamp=2\t'),
    error: { referenceError: 'AssertionError', line: 2 },
  },
  {
    title: 'refused: a bare END (AssertionError), even indented too deep to be used',
    log: log('\t\tEND\t----\t----\ttimestamp=1\t'),
    error: { referenceError: 'AssertionError', line: 1 },
  },
  {
    title: 'refused: a timestamp that is not an integer (ValueError)',
    log: log('START\tt1\tt1\ttimestamp=1\t', 'END GOOD\tt1\tt1\ttimestamp=12.5\t'),
    error: { referenceError: 'ValueError', line: 2 },
  },
  {
    title: 'refused: an END ---- ---- closing a test with no subdir before any client job (UnboundLocalError)',
    log: log('START\t----\treboot\ttimestamp=1\t', 'END GOOD\t----\t----\ttimestamp=2\t'),
    error: { referenceError: 'UnboundLocalError', line: 2 },
  },
];

describe('tko parser: conformance with status-log-v1.md', function () {
  for (const c of CASES) {
    it(c.title, function () {
      if (c.error) {
        let caught: unknown;
        try {
          parseStatusLogText(c.log, c.options);
        } catch (e) {
          caught = e;
        }
        expect(caught, 'a StatusLogParseError').to.be.instanceOf(StatusLogParseError);
        const e = caught as StatusLogParseError;
        expect(e.referenceError).to.equal(c.error.referenceError);
        expect(e.line).to.equal(c.error.line);
      } else {
        expect(rows(c.log, c.options)).to.deep.equal(c.rows);
      }
    });
  }
});

describe('tko parser: details', function () {
  it('timestamps: surrounding whitespace and a sign are accepted as int() accepts them', function () {
    expect(rows(log('GOOD\t----\tt1\ttimestamp= +12 \t'))[1]).to.deep.equal(['t1', 'GOOD', '', null, U, null, 12]);
    expect(() => rows(log('GOOD\t----\tt1\ttimestamp=0x10\t'))).to.throw(StatusLogParseError, /timestamp=0x10/);
    expect(() => rows(log('GOOD\t----\tt1\ttimestamp=99999999999999\t'))).to.throw(StatusLogParseError, /years 1 to 9999/);
  });

  it('accepts exactly START, INFO, the job statuses and END <status> as status words', function () {
    const statuses = ['TEST_NA', 'ABORT', 'ERROR', 'FAIL', 'WARN', 'GOOD', 'BUG', 'ALERT', 'RUNNING', 'NOSTATUS'];
    for (const word of ['START', 'INFO', ...statuses, ...statuses.map((s) => `END ${s}`)]) {
      expect(() => parseStatusLogText(log(`${word}\t----\t----\ttimestamp=1\t`)), word).not.to.throw();
    }
    const nearMisses = ['GOOX', 'GOODS', 'good', 'ABORTS', 'ALERX', 'BUGS', 'TEST_NAX', 'RUNNINGX', 'NOSTATUX', 'STARX', 'INFOS', 'END', 'END ', 'END  GOOD', 'END GOOD ', 'ENDGOOD', 'PASS'];
    for (const word of nearMisses) {
      expect(() => parseStatusLogText(log(`${word}\t----\t----\ttimestamp=1\t`)), word).to.throw(StatusLogParseError, /is not a status/);
    }
  });

  it('an INFO line\'s timestamp is never read, even a bad one', function () {
    expect(rows(log('INFO\t----\t----\ttimestamp=bad\t'))).to.deep.equal([['SERVER_JOB', 'ABORT', '', '----', U, null, null]]);
  });

  it('kernel hash: md5 of the base and the patch hashes, joined with commas', function () {
    const k = kernelFromFields(new Map([['kernel', '5.10.0-autotest'], ['patch0', 'fix1 http://x/fix1.patch abc123']]));
    expect(k).to.deep.equal({
      base: '5.10.0',
      patches: [{ spec: 'fix1', reference: 'http://x/fix1.patch', hash: 'abc123' }],
      hash: kernelHash('5.10.0', ['abc123']),
    });
    // md5("5.10.0,abc123"), as Python's hashlib gives it.
    expect(k.hash).to.equal('60c2812d6199d6c7d25eb680133e6357');
    expect(kernelFromFields(new Map([['kernel', 'x-autotest-autotest']])).base).to.equal('x-autotest');
  });

  it('the parse error names the file and line and says what to do', function () {
    try {
      parseStatusLogText(log('GOOD\t----\tt1\ttimestamp=1\t', 'PASSED\t----\tt2\ttimestamp=2\t'), { file: 'night/status.log' });
      expect.fail('no error');
    } catch (e) {
      expect(e).to.be.instanceOf(StatusLogParseError);
      expect((e as Error).message).to.match(/^night\/status\.log:2: "PASSED" is not a status/);
      expect((e as StatusLogParseError).hint).to.match(/correct or delete that line/);
    }
  });

  it('a bad job keyval time fails when the parser is made, as the reference fails loading the job', function () {
    expect(() => new StatusLogParser({ jobKeyval: new Map([['job_started', 'yesterday']]) })).to.throw(StatusLogParseError, /job_started/);
  });

  it('gives the same tests whatever the pieces the log is fed in', function () {
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    for (const c of CASES.filter((x) => x.rows)) {
      for (let round = 0; round < 5; round++) {
        const parser = new StatusLogParser(c.options);
        const order = new ReferenceOrder();
        for (let i = 0; i < c.log.length; ) {
          const n = 1 + Math.floor(rnd() * 9);
          order.add(parser, parser.feed(c.log.slice(i, i + n)));
          i += n;
        }
        order.add(parser, parser.end());
        expect(order.tests().map(row), c.title).to.deep.equal(c.rows);
      }
    }
  });

  it('feed returns tests as they finish; end returns the aborted ones, those left RUNNING and SERVER_JOB last', function () {
    const parser = new StatusLogParser({ serverJobStatus: 'GOOD' });
    const first = parser.feed(log('START\t----\t----\ttimestamp=1\t', '\tSTART\tt1\tt1\ttimestamp=2\t', '\tEND GOOD\tt1\tt1\ttimestamp=3\t', '\tSTART\tt2\tt2\ttimestamp=4\t'));
    expect(first.map((t) => [t.testname, t.status])).to.deep.equal([['t1', 'GOOD']]);
    expect(parser.sequences).to.deep.equal([2]);
    const last = parser.end();
    expect(last.map((t) => [t.testname, t.status])).to.deep.equal([
      ['t2', 'ABORT'],
      ['t1', 'ABORT'],
      ['CLIENT_JOB.0', 'RUNNING'],
      ['SERVER_JOB', 'GOOD'],
    ]);
    expect(parser.sequences).to.deep.equal([3, 4, 1, 0]);
    expect(() => parser.end()).to.throw(/twice/);
    expect(() => parser.feed('x')).to.throw(/after end/);
  });

  it('summary-only mode counts the same entries by final status and keeps no tests', function () {
    for (const c of CASES.filter((x) => x.rows)) {
      const parser = new StatusLogParser({ ...c.options, summaryOnly: true });
      expect(parser.feed(c.log)).to.deep.equal([]);
      expect(parser.end()).to.deep.equal([]);
      const counts: Record<string, number> = {};
      for (const r of c.rows!) counts[r[1]] = (counts[r[1]] ?? 0) + 1;
      const summary = parser.summary;
      expect(summary.tests, c.title).to.equal(c.rows!.length);
      expect(Object.fromEntries(Object.entries(summary.byStatus).filter(([, n]) => n > 0)), c.title).to.deep.equal(counts);
    }
  });

  it('reads our own writer\'s output as expected', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xentest-tko-writer-'));
    try {
      const file = path.join(dir, 'status.log');
      let t = 1700000000;
      const w = new StatusLogWriter(file, { sync: 'none', tz: 'UTC', now: () => t++ });
      w.info([['kernel', '6.1.0-13-amd64']]);
      await w.group(null, 'reboot', (g) => {
        g.status('GOOD', null, 'reboot.start', '');
        g.status('GOOD', null, 'reboot.verify', 'Xen 4.19.0');
        return undefined;
      });
      w.start(null, null);
      await w.group('sieve', 'sieve', (g) => g.status('GOOD', 'sieve', 'sieve', 'completed successfully'));
      await w
        .group('settime', 'settime', () => {
          throw new StatusError('FAIL', 'exited with status 1\nsee run.log');
        })
        .catch(() => undefined);
      await w.group('ltp', 'ltp', (g) => g.status('WARN', null, null, 'rc=1 from make'));
      w.status('GOOD', null, 'collect results', '');
      w.end('GOOD', null, null);
      w.close();
      const text = fs.readFileSync(file, 'utf8');
      expect(rows(text, { serverJobStatus: 'GOOD' })).to.deep.equal([
        ['SERVER_JOB', 'GOOD', '', '----', U, null, null],
        ['boot.0', 'GOOD', 'Xen 4.19.0', null, U, 1700000001, 1700000004],
        ['CLIENT_JOB.0', 'GOOD', '', null, U, 1700000005, 1700000015],
        ['sieve', 'GOOD', 'completed successfully', 'sieve', U, 1700000006, 1700000008],
        ['settime', 'FAIL', 'exited with status 1', 'settime', U, 1700000009, 1700000010],
        ['ltp', 'WARN', ' rc=1 from make', 'ltp', U, 1700000011, 1700000013],
        ['collect results', 'GOOD', '', null, U, null, 1700000014],
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
