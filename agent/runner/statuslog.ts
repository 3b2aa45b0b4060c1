/**
 * The domain's status.log in the shared directory: the ordinary writer, with
 * each entry written through the DomainArea so a soft-mounted NFS directory
 * that returns EIO for a moment does not lose the line or end the runner.
 *
 * Exactly once: a write that fails part-way is truncated away by the writer
 * itself; a write that reached the file but whose fdatasync failed would be
 * written twice by a plain retry, so before retrying, an entry already at the
 * end of the file (same text, same timestamp: the timestamp is fixed before
 * the first attempt) is cut off and written again, which also brings the
 * writer's idea of the open levels back in step with the file.
 */
import * as fs from 'node:fs';
import { renderEntry } from '../../shared/statuslog/entry.js';
import { StatusLogWriter, type RecordInput } from '../../shared/statuslog/writer.js';
import type { DomainArea } from './shared-area.js';

export class SharedStatusLog extends StatusLogWriter {
  constructor(
    path: string,
    private readonly area: DomainArea,
  ) {
    super(path);
  }

  static open(path: string, area: DomainArea): SharedStatusLog {
    return area.op(`open ${path}`, () => new SharedStatusLog(path, area));
  }

  override record(input: RecordInput): string {
    const entry: RecordInput = { ...input, timestamp: input.timestamp ?? Date.now() / 1000 };
    let attempt = 0;
    return this.area.op(`write ${this.path}`, () => {
      if (attempt++ > 0) this.dropIfWritten(entry);
      return super.record(entry);
    });
  }

  private dropIfWritten(entry: RecordInput): void {
    const indent = entry.status.startsWith('END ') ? this.depth - 1 : this.depth;
    if (indent < 0) return;
    const text = Buffer.from(
      renderEntry(
        { status: entry.status, subdir: entry.subdir, testname: entry.testname, message: entry.message ?? '', fields: entry.fields, timestamp: entry.timestamp as number },
        indent,
      ),
    );
    const size = fs.statSync(this.path).size;
    if (size < text.length) return;
    const fd = fs.openSync(this.path, 'r+');
    try {
      const tail = Buffer.alloc(text.length);
      fs.readSync(fd, tail, 0, text.length, size - text.length);
      if (tail.equals(text)) {
        fs.ftruncateSync(fd, size - text.length);
        fs.fdatasyncSync(fd);
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}
