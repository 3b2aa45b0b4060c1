/**
 * How Python fails to read a control file that is not valid UTF-8.
 *
 * Python reads control files with `open(path, encoding='utf-8')` and iterates
 * over the lines. That does not decode the whole file first: the text layer
 * (C TextIOWrapper in CPython 3.11) reads 8192-byte chunks and feeds each one
 * to an incremental UTF-8 decoder (`codecs.utf_8_decode(data, 'strict',
 * final)`), which holds back an incomplete sequence at the end of a chunk
 * until the next one and only calls it an error at end of file. So for
 * invalid bytes Python's exception depends on the chunk they fall in:
 *
 *  - its message gives positions relative to the data handed to the decoder
 *    (the held-back bytes of the previous chunk, then the new chunk), not to
 *    the file, and its wording comes from CPython's UTF-8 decoder
 *    (Objects/stringlib/codecs.h, unicode_decode_utf8 in unicodeobject.c);
 *  - it is raised only when configparser asks for the first line that is not
 *    complete in the text decoded so far, so an error configparser raises
 *    while reading an earlier line (a duplicate, a missing header) wins.
 *
 * This module reproduces both, byte for byte.
 */

/** C TextIOWrapper's chunk_size: each read from the binary buffer asks for this many bytes. */
export const PY_TEXT_CHUNK = 8192;

export interface Utf8Failure {
  /** Python's str(UnicodeDecodeError), exactly. */
  readonly message: string;
  /** Absolute offset in the file of the first byte Python complains about. */
  readonly offset: number;
  /**
   * How many bytes at the start of the file Python has decoded when it raises:
   * always a whole number of characters, valid UTF-8.
   */
  readonly decoded: number;
}

type Scan =
  | { readonly kind: 'ok'; readonly consumed: number }
  | { readonly kind: 'error'; readonly start: number; readonly end: number; readonly reason: string };

const isContinuation = (b: number): boolean => b >= 0x80 && b < 0xc0;

/**
 * CPython's `utf_8_decode(data, 'strict', final)`: either how many bytes it
 * consumed (the rest is an incomplete sequence kept for the next call), or the
 * error it raises, with start/end as in the exception. The branches and their
 * order are those of codecs.h's utf8_decode, so that a sequence that is both
 * truncated and invalid gets the same reason as in Python.
 */
function scanUtf8(d: Uint8Array, final: boolean): Scan {
  const len = d.length;
  // Outcomes of one sequence, named after the labels in codecs.h.
  const INCOMPLETE = 0;
  const INVALID_START = 1;
  const INVALID_CONT1 = 2;
  const INVALID_CONT2 = 3;
  const INVALID_CONT3 = 4;
  let i = 0;
  let outcome = -1;
  while (i < len) {
    const c = d[i] as number;
    const avail = len - i;
    if (c < 0x80) {
      i += 1;
      continue;
    }
    if (c < 0xc2) {
      outcome = INVALID_START; // a lone continuation byte, or an overlong C0/C1 lead
    } else if (c < 0xe0) {
      if (avail < 2) outcome = INCOMPLETE;
      else if (!isContinuation(d[i + 1] as number)) outcome = INVALID_CONT1;
      else i += 2;
    } else if (c < 0xf0) {
      const c2 = d[i + 1] as number;
      if (avail < 3) {
        if (avail < 2) outcome = INCOMPLETE;
        else if (!isContinuation(c2) || (c2 < 0xa0 ? c === 0xe0 : c === 0xed)) outcome = INVALID_CONT1;
        else outcome = INCOMPLETE;
      } else if (!isContinuation(c2)) outcome = INVALID_CONT1;
      else if (c === 0xe0 && c2 < 0xa0) outcome = INVALID_CONT1; // overlong
      else if (c === 0xed && c2 >= 0xa0) outcome = INVALID_CONT1; // a surrogate
      else if (!isContinuation(d[i + 2] as number)) outcome = INVALID_CONT2;
      else i += 3;
    } else if (c < 0xf5) {
      const c2 = d[i + 1] as number;
      if (avail < 4) {
        if (avail < 2) outcome = INCOMPLETE;
        else if (!isContinuation(c2) || (c2 < 0x90 ? c === 0xf0 : c === 0xf4)) outcome = INVALID_CONT1;
        else if (avail < 3) outcome = INCOMPLETE;
        else if (!isContinuation(d[i + 2] as number)) outcome = INVALID_CONT2;
        else outcome = INCOMPLETE;
      } else if (!isContinuation(c2)) outcome = INVALID_CONT1;
      else if (c === 0xf0 && c2 < 0x90) outcome = INVALID_CONT1; // overlong
      else if (c === 0xf4 && c2 >= 0x90) outcome = INVALID_CONT1; // beyond U+10FFFF
      else if (!isContinuation(d[i + 2] as number)) outcome = INVALID_CONT2;
      else if (!isContinuation(d[i + 3] as number)) outcome = INVALID_CONT3;
      else i += 4;
    } else {
      outcome = INVALID_START; // F5..FF never start a sequence
    }
    if (outcome >= 0) break;
  }
  if (outcome < 0) return { kind: 'ok', consumed: len };
  // unicode_decode_utf8: what the outcome means at this point of the data.
  switch (outcome) {
    case INCOMPLETE:
      if (!final) return { kind: 'ok', consumed: i };
      return { kind: 'error', start: i, end: len, reason: 'unexpected end of data' };
    case INVALID_START:
      return { kind: 'error', start: i, end: i + 1, reason: 'invalid start byte' };
    case INVALID_CONT1: {
      // A truncated surrogate (ED A0..BF) at the very end is kept for the next call.
      const c2 = d[i + 1] as number;
      if (!final && d[i] === 0xed && len - i === 2 && c2 >= 0xa0 && c2 <= 0xbf) {
        return { kind: 'ok', consumed: i };
      }
      return { kind: 'error', start: i, end: i + 1, reason: 'invalid continuation byte' };
    }
    default: // INVALID_CONT2 and INVALID_CONT3 name the lead byte and the good continuation bytes
      return { kind: 'error', start: i, end: i + outcome - 1, reason: 'invalid continuation byte' };
  }
}

/** UnicodeDecodeError.__str__ (Objects/exceptions.c). */
function decodeErrorMessage(data: Uint8Array, start: number, end: number, reason: string): string {
  if (start < data.length && end === start + 1) {
    const byte = (data[start] as number).toString(16).padStart(2, '0');
    return `'utf-8' codec can't decode byte 0x${byte} in position ${start}: ${reason}`;
  }
  return `'utf-8' codec can't decode bytes in position ${start}-${end - 1}: ${reason}`;
}

/**
 * Where and how Python's chunked decoding of `bytes` fails, or undefined if
 * the bytes are valid UTF-8. Chunks are read until one returns nothing, and
 * that empty read is the only one decoded with final=True.
 */
export function pythonUtf8Failure(bytes: Uint8Array): Utf8Failure | undefined {
  let dataStart = 0; // where the bytes held back from the previous chunk begin
  for (let chunkStart = 0; ; chunkStart += PY_TEXT_CHUNK) {
    const chunkEnd = Math.min(bytes.length, chunkStart + PY_TEXT_CHUNK);
    const final = chunkStart >= bytes.length;
    const data = bytes.subarray(dataStart, chunkEnd);
    const scan = scanUtf8(data, final);
    if (scan.kind === 'error') {
      return {
        message: decodeErrorMessage(data, scan.start, scan.end, scan.reason),
        offset: dataStart + scan.start,
        decoded: dataStart,
      };
    }
    dataStart += scan.consumed;
    if (final) return undefined;
  }
}

/**
 * The lines configparser has read when the decoder raises: the decoded text
 * up to the last line ending Python has seen. A `\r` at the very end of the
 * decoded text does not count yet: the newline decoder holds it back until it
 * knows whether a `\n` follows.
 */
export function linesReadBeforeFailure(decoded: string): string {
  const visible = decoded.endsWith('\r') ? decoded.slice(0, -1) : decoded;
  const lastEnd = Math.max(visible.lastIndexOf('\n'), visible.lastIndexOf('\r'));
  return visible.slice(0, lastEnd + 1);
}
