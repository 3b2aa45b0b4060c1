/**
 * Parsing a status.log while it is being written: the file is watched with
 * chokidar (inotify), or with pollMs looked at on a timer (a file on NFS,
 * such as a domain's log in the shared directory, written by another
 * machine), and whatever was appended since the last look is fed to a
 * StatusLogParser, so each test is reported as soon as its last line is on
 * disk. This is what the reference's continuous parsing in autoserv does
 * with its parser library.
 *
 * - The file may not exist yet: the follower waits for it.
 * - If it shrinks (truncated) or is replaced by another file (a new inode,
 *   e.g. renamed over), parsing starts over from its first byte with a new
 *   parser; onReset says so, and tests already reported are not reported
 *   again unless the new content finishes them again.
 * - If it is deleted, the follower waits for it to come back.
 * - A line the reference parser would reject stops the parsing (onError);
 *   close() then rejects with that StatusLogParseError.
 *
 * chokidar reports no change when the file's mtime is the one it saw last
 * and the file was read since (its atime is newer): an append that lands in
 * the same clock tick as the previous one (ext4 keeps mtime to the kernel's
 * coarse clock, a few milliseconds) goes unreported. So the file is looked
 * at again a little after each change, and once more after a second (for
 * file systems with whole-second times); appends are never lost, at worst
 * reported a moment late.
 */
import * as fsp from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { watch, type FSWatcher } from 'chokidar';
import { ReferenceOrder, StatusLogParser, type StatusLogParserOptions } from './parser.js';
import type { TkoTest } from './types.js';

export interface FollowOptions extends Omit<StatusLogParserOptions, 'summaryOnly' | 'file'> {
  /** Called for each test as it finishes, in the order they finish. */
  onTest?: (test: TkoTest) => void;
  /** The file was truncated or replaced: parsing starts over. */
  onReset?: (why: 'truncated' | 'replaced') => void;
  /** Reading or parsing failed; no more tests will be reported. */
  onError?: (error: Error) => void;
  /**
   * Look at the file every `pollMs` instead of waiting for inotify: for a
   * file on NFS, where inotify never hears of what another machine writes
   * (the file, and the directories above it, may appear at any time).
   */
  pollMs?: number;
  /** A read error to wait out (a shared mount away for a moment) rather than stop at. */
  isTransient?: (error: NodeJS.ErrnoException) => boolean;
}

export interface StatusLogFollower {
  /** Settles once the watch is in place and what the file already holds has been parsed. */
  readonly ready: Promise<void>;
  /** Every test finished so far (since the last reset), in the reference's order. */
  tests(): TkoTest[];
  /**
   * Stop watching, parse what was appended last, and finish the parse as at
   * the end of the log (END ABORT for open levels, SERVER_JOB): returns the
   * tests this finishes (also passed to onTest). Rejects with the error that
   * stopped the parsing, if one did.
   */
  close(): Promise<TkoTest[]>;
}

const READ_BYTES = 1 << 16;
/** When to look again after a change, in ms (see the module comment). */
const RECHECK_MS = [100, 1100];

export function followStatusLog(file: string, options: FollowOptions = {}): StatusLogFollower {
  const { onTest, onReset, onError, pollMs, isTransient, ...parserOptions } = options;
  const newParser = (): StatusLogParser => new StatusLogParser({ ...parserOptions, file });

  let parser = newParser();
  let order = new ReferenceOrder();
  let decoder = new StringDecoder('utf8');
  let offset = 0;
  let inode: number | undefined;
  let failure: Error | undefined;
  let closed = false;
  let pumping: Promise<void> | undefined;
  let again = false;

  const deliver = (tests: TkoTest[]): void => {
    order.add(parser, tests);
    if (onTest) for (const t of tests) onTest(t);
  };

  const fail = (e: unknown): void => {
    if (failure !== undefined) return;
    failure = e instanceof Error ? e : new Error(String(e));
    onError?.(failure);
  };

  const restart = (why: 'truncated' | 'replaced'): void => {
    parser = newParser();
    order = new ReferenceOrder();
    decoder = new StringDecoder('utf8');
    offset = 0;
    onReset?.(why);
  };

  /** Read from `offset` to the end of the file as it is now. */
  const pumpOnce = async (): Promise<void> => {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // not there (yet, or for now)
      if (isTransient?.(e as NodeJS.ErrnoException)) return; // looked at again at the next change or poll
      throw e;
    }
    try {
      // Looked at through the open descriptor, so that size and inode are those of the file read.
      const st = await handle.stat();
      if (inode !== undefined && st.ino !== inode) restart('replaced');
      else if (st.size < offset) restart('truncated');
      inode = st.ino;
      const buf = Buffer.allocUnsafe(READ_BYTES);
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, READ_BYTES, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        deliver(parser.feed(decoder.write(buf.subarray(0, bytesRead))));
      }
    } finally {
      await handle.close();
    }
  };

  const pump = (): Promise<void> => {
    if (pumping !== undefined) {
      again = true;
      return pumping;
    }
    pumping = (async () => {
      try {
        do {
          again = false;
          if (failure === undefined) await pumpOnce();
        } while (again);
      } catch (e) {
        fail(e);
      } finally {
        pumping = undefined;
      }
    })();
    return pumping;
  };

  let rechecks: NodeJS.Timeout[] = [];
  const onChange = (): void => {
    for (const t of rechecks) clearTimeout(t);
    rechecks = closed ? [] : RECHECK_MS.map((ms) => setTimeout(() => void pump(), ms));
    void pump();
  };

  // Polling: the file is looked at every pollMs by a timer of our own. chokidar's polling mode does not
  // serve here: it never reports a file whose directory did not exist when the watch began, and a
  // domain's results directory is made by its runner after dom0 starts following it.
  let watcher: FSWatcher | undefined;
  let poller: NodeJS.Timeout | undefined;
  let ready: Promise<void>;
  if (pollMs !== undefined) {
    poller = setInterval(() => void pump(), pollMs);
    ready = pump();
  } else {
    const w = watch(file, { persistent: true, ignoreInitial: false });
    watcher = w;
    w.on('add', onChange);
    w.on('change', onChange);
    w.on('error', (e) => fail(e));
    ready = new Promise<void>((resolve) => {
      w.once('ready', () => {
        void pump().then(resolve);
      });
    });
  }

  return {
    ready,
    tests: () => order.tests(),
    async close(): Promise<TkoTest[]> {
      if (closed) throw new Error(`the follower of ${file} is already closed`);
      closed = true;
      for (const t of rechecks) clearTimeout(t);
      rechecks = [];
      await ready;
      if (poller !== undefined) clearInterval(poller);
      await watcher?.close();
      // What was appended after the last event.
      while (pumping !== undefined) await pumping;
      await pump();
      if (failure !== undefined) throw failure;
      try {
        const rest = decoder.end();
        if (rest !== '') deliver(parser.feed(rest));
        const last = parser.end();
        deliver(last);
        return last;
      } catch (e) {
        fail(e);
        throw failure!;
      }
    },
  };
}
