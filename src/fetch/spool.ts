/**
 * Writes a source body, as it streams in, to the two files the later stages need, hashing
 * (sha256) and counting the bytes on the way, with memory bounded by one chunk and one line:
 *
 * - `raw.txt.gz`: the exact bytes, gzipped in parallel blocks while the body streams in
 *   (parallel-gzip.ts);
 * - `lines.csv`: each non-blank line, without its line end, prefixed by its 1-based line number
 *   in the source (`N,`). The converter reads `source_line` from that prefix: numbering in
 *   DuckDB with `row_number() OVER ()` cost 0.22 s of a 0.37 s conversion on a real week.
 *
 * A CR inside a line (not the CR of a CRLF line end, which is dropped) is written to `lines.csv`
 * as a space: DuckDB's CSV reader takes any CR for a line end, and one stray byte would
 * otherwise split a line in two and fail the whole week. raw.txt.gz keeps the exact bytes.
 *
 * The spool also tells whether the body ended inside a line (no final newline), which is how a
 * broken download that still ended "cleanly" shows itself.
 *
 * A UTF-8 byte-order mark at the start of the body is left out of `lines.csv` (raw.txt.gz keeps
 * it): it is an encoding's signature, not part of the first line (layout detection, or a legacy
 * file's first C/A, would otherwise read it). A line longer than MAX_LINE_BYTES is not written
 * either: it is skipped to its newline, keeping only its first REJECT_TEXT_BYTES, and becomes
 * that line's reject (`overlongLines`), so memory stays bounded and the rest of the week loads.
 *
 * Numbered lines are built in one reused buffer and written through a file handle: a fresh
 * buffer per network chunk left tens of MB of garbage for the GC, and peak RSS grew with it.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { localResourceError } from '../errors.ts';
import { join } from 'node:path';
import { ParallelGzipWriter } from './parallel-gzip.ts';

/**
 * A line longer than this (without its line end) is not a turnstile line (theirs are 130 bytes):
 * it becomes a reject instead of being held in memory. DuckDB's reader takes lines up to its
 * buffer (week-output.ts, CSV_BUFFER_BYTES, 4 MiB), so every line written is readable.
 */
export const MAX_LINE_BYTES = 1 << 20;

/** How much of an overlong line its reject keeps, as its text. */
export const REJECT_TEXT_BYTES = 256;

/** A line the spool did not write to `lines.csv`, with why: a reject of its own. */
export interface SpoolReject {
  lineNumber: number;
  reason: string;
  /** The line's first REJECT_TEXT_BYTES bytes (latin1). */
  text: string;
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

const NEWLINE = 0x0a;
const COMMA = 0x2c;
const CR = 0x0d;
const SPACE = 0x20;

export interface SpoolSummary {
  bytes: number;
  sha256: string;
  /** Lines in the source, blank ones included (a last line without a newline counts). */
  lines: number;
  /** Blank or whitespace-only lines: not data, left out of `lines.csv`. */
  blankLines: number;
  /** The first non-blank line, for layout detection. */
  firstLine: string | undefined;
  /** The last line when the body did not end with a newline. */
  unterminatedLastLine: { lineNumber: number; text: string } | undefined;
  /** Lines longer than MAX_LINE_BYTES: left out of `lines.csv`, each one a reject. */
  overlongLines: SpoolReject[];
  rawGzPath: string;
  /**
   * Settles when raw.txt.gz is complete: the last blocks are still being compressed when the
   * lines are ready, and finish while DuckDB converts. Await it before reading raw.txt.gz.
   */
  rawGzWritten: Promise<void>;
  linesPath: string;
}

export class Spool {
  readonly rawGzPath: string;
  readonly linesPath: string;
  private readonly hash: Hash = createHash('sha256');
  private readonly gzip: ParallelGzipWriter;
  private readonly linesFile: Promise<FileHandle>;
  private out = Buffer.allocUnsafe(1 << 20);
  private bytes = 0;
  private lineNumber = 0;
  /** `lineNumber + 1` as ASCII digits, counted up in place: no string per line. */
  private readonly nextDigits = new LineCounter();
  private blankLines = 0;
  private carry: Buffer | undefined;
  private first: string | undefined;
  /** The overlong line being skipped: its number, first bytes and length so far. */
  private skipping:
    { lineNumber: number; prefix: Buffer; bytes: number; lastByte: number | undefined } | undefined;
  private readonly overlong: SpoolReject[] = [];
  private readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    this.rawGzPath = join(dir, 'raw.txt.gz');
    this.linesPath = join(dir, 'lines.csv');
    this.gzip = new ParallelGzipWriter(this.rawGzPath);
    this.linesFile = open(this.linesPath, 'w');
    // Settled here so a spool discarded before its first write leaves no unhandled rejection.
    this.linesFile.catch(() => undefined);
  }

  /** Bytes written so far. */
  get bytesSoFar(): number {
    return this.bytes;
  }

  /** The first non-blank line, once it is complete. */
  get firstLine(): string | undefined {
    return this.first;
  }

  async write(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    const gzipped = this.gzip.write(chunk);
    gzipped.catch(() => undefined);
    const length = this.numberLines(chunk);
    try {
      if (length > 0) await (await this.linesFile).write(this.out, 0, length);
      await gzipped;
    } catch (error) {
      throw this.localFault(error);
    }
  }

  async finish(): Promise<SpoolSummary> {
    try {
      return await this.finishFiles();
    } catch (error) {
      throw this.localFault(error);
    }
  }

  /** A disk or path fault of the spool's files, naming its folder; other errors as they are. */
  private localFault(error: unknown): unknown {
    return localResourceError(error, this.dir, 'writing the download to') ?? error;
  }

  private async finishFiles(): Promise<SpoolSummary> {
    let unterminatedLastLine: SpoolSummary['unterminatedLastLine'];
    const file = await this.linesFile;
    if (this.skipping !== undefined) this.endOverlongLine(' (the file ends inside it)');
    if (this.carry !== undefined) {
      // The body ended inside a line: keep it (it may be complete, as in files whose last line
      // lacks only the newline) and let the converter judge it.
      const line = this.carry;
      const length = this.numberLines(Buffer.from('\n'));
      if (length > 0) {
        await file.write(this.out, 0, length);
        unterminatedLastLine = { lineNumber: this.lineNumber, text: line.toString('latin1') };
      }
    }
    const rawGzWritten = this.gzip.end();
    // Observed here so a failure before anyone awaits it is not an unhandled rejection;
    // whoever awaits `rawGzWritten` still sees it.
    rawGzWritten.catch(() => undefined);
    await file.close();
    return {
      bytes: this.bytes,
      sha256: this.hash.digest('hex'),
      lines: this.lineNumber,
      blankLines: this.blankLines,
      firstLine: this.first,
      unterminatedLastLine,
      overlongLines: this.overlong,
      rawGzPath: this.rawGzPath,
      rawGzWritten,
      linesPath: this.linesPath,
    };
  }

  /** Stops writing and removes both files (a failed or retried attempt). */
  async discard(): Promise<void> {
    await this.gzip.destroy();
    await (await this.linesFile.catch(() => undefined))?.close().catch(() => undefined);
    await Promise.all([rm(this.rawGzPath, { force: true }), rm(this.linesPath, { force: true })]);
  }

  /**
   * Numbers the lines that `chunk` completes into `this.out` and returns the length written;
   * the unfinished rest becomes the carry. A line begun in an earlier chunk is joined first
   * (a copy of one line, not of the chunk).
   */
  private numberLines(chunk: Buffer): number {
    let start = 0;
    let written = 0;
    if (this.skipping !== undefined) {
      const end = chunk.indexOf(NEWLINE);
      if (end === -1) {
        this.skipping.bytes += chunk.length;
        this.skipping.lastByte = chunk.at(-1) ?? this.skipping.lastByte;
        return 0;
      }
      this.skipping.bytes += end;
      if (end > 0) this.skipping.lastByte = chunk[end - 1];
      this.endOverlongLine('');
      start = end + 1;
    }
    if (this.carry !== undefined) {
      const end = chunk.indexOf(NEWLINE, start);
      if (end === -1) {
        this.keepCarry(Buffer.concat([this.carry, chunk.subarray(start)]));
        return 0;
      }
      const line = Buffer.concat([this.carry, chunk.subarray(start, end + 1)]);
      this.carry = undefined;
      this.reserve(line.length + 11);
      written = this.emitLines(line, 0, written);
      start = end + 1;
    }
    this.reserve(written + chunk.length - start + 11 * countNewlines(chunk, start) + 16);
    written = this.emitLines(chunk, start, written);
    const rest = chunk.length - this.scanEnd;
    if (rest > 0) this.keepCarry(Buffer.from(chunk.subarray(this.scanEnd)));
    return written;
  }

  /** Where the last emitLines stopped: just past its last newline. */
  private scanEnd = 0;

  private emitLines(input: Buffer, from: number, at: number): number {
    const out = this.out;
    let written = at;
    let start = from;
    const digits = this.nextDigits;
    let nextCr = input.indexOf(CR, from);
    for (let end = input.indexOf(NEWLINE, start); end !== -1; end = input.indexOf(NEWLINE, start)) {
      if (this.lineNumber === 0 && input.subarray(start, start + BOM.length).equals(BOM)) start += BOM.length;
      this.lineNumber += 1;
      let lineEnd = end;
      if (lineEnd > start && input[lineEnd - 1] === CR) lineEnd -= 1;
      if (lineEnd - start > MAX_LINE_BYTES) {
        // Whole in this buffer (a large chunk), yet as overlong as one skipped across chunks.
        this.overlong.push(
          overlongReject(this.lineNumber, input.subarray(start, lineEnd), lineEnd - start, ''),
        );
      } else if (isBlank(input, start, lineEnd)) {
        this.blankLines += 1;
      } else {
        this.first ??= input.toString('latin1', start, Math.min(lineEnd, start + 4096));
        written += digits.copyTo(out, written);
        out[written++] = COMMA;
        const copied = input.copy(out, written, start, lineEnd);
        // Real files have no CR inside a line (CRLF's CR is already off): blank out stray ones
        // only in a line that holds one. The next CR is found once and passed by, not searched
        // for again per line (indexOf is native; the byte loop is not).
        if (nextCr !== -1 && nextCr < start) nextCr = input.indexOf(CR, start);
        if (nextCr !== -1 && nextCr < lineEnd) blankOut(out, written, written + copied, CR);
        written += copied;
        out[written++] = NEWLINE;
      }
      digits.increment();
      start = end + 1;
    }
    this.scanEnd = start;
    return written;
  }

  private keepCarry(rest: Buffer): void {
    // The CR of a CRLF line end is not the line's (a line of exactly MAX_LINE_BYTES may carry it).
    if (rest.length > MAX_LINE_BYTES + (rest[rest.length - 1] === CR ? 1 : 0)) {
      this.skipping = {
        lineNumber: this.lineNumber + 1,
        prefix: Buffer.from(rest.subarray(0, REJECT_TEXT_BYTES)),
        bytes: rest.length,
        lastByte: rest.at(-1),
      };
      this.carry = undefined;
      return;
    }
    this.carry = rest;
  }

  /** The skipped overlong line has ended (at a newline, or at the end of the body: `note`). */
  private endOverlongLine(note: string): void {
    const skipped = this.skipping;
    if (skipped === undefined) return;
    this.skipping = undefined;
    this.lineNumber += 1;
    this.nextDigits.increment();
    // Its length without the line end: a CRLF's CR is not the line's.
    const bytes = skipped.bytes - (note === '' && skipped.lastByte === CR ? 1 : 0);
    this.overlong.push(overlongReject(skipped.lineNumber, skipped.prefix, bytes, note));
  }

  /** Grows the output buffer (rarely: only for chunks larger than any seen before). */
  private reserve(bytes: number): void {
    if (bytes > this.out.length) {
      const grown = Buffer.allocUnsafe(Math.max(bytes, this.out.length * 2));
      this.out.copy(grown);
      this.out = grown;
    }
  }
}

/** A decimal counter kept as ASCII digits (right-aligned in a 16-byte buffer), from 1. */
class LineCounter {
  private readonly digits = Buffer.from('0000000000000001', 'latin1');
  private first = this.digits.length - 1;

  copyTo(target: Buffer, at: number): number {
    return this.digits.copy(target, at, this.first);
  }

  increment(): void {
    let i = this.digits.length - 1;
    while (this.digits[i] === 0x39) this.digits[i--] = 0x30;
    this.digits[i] = (this.digits[i] ?? 0x30) + 1;
    if (i < this.first) this.first = i;
  }
}

function overlongReject(lineNumber: number, line: Buffer, bytes: number, note: string): SpoolReject {
  return {
    lineNumber,
    reason: `the line is ${bytes} bytes long, over the reader's limit of ${MAX_LINE_BYTES}${note}: not read (its text here is its first ${REJECT_TEXT_BYTES} bytes)`,
    text: line.toString('latin1', 0, Math.min(line.length, REJECT_TEXT_BYTES)),
  };
}

function countNewlines(buffer: Buffer, from = 0): number {
  let count = 0;
  for (let i = buffer.indexOf(NEWLINE, from); i !== -1; i = buffer.indexOf(NEWLINE, i + 1)) count += 1;
  return count;
}

/** Replaces every `byte` in buffer[start, end) with a space. */
function blankOut(buffer: Buffer, start: number, end: number, byte: number): void {
  for (let i = start; i < end; i += 1) if (buffer[i] === byte) buffer[i] = SPACE;
}

function isBlank(buffer: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i += 1) {
    const byte = buffer[i];
    if (byte !== 0x20 && byte !== 0x09 && byte !== CR) return false;
  }
  return true;
}
