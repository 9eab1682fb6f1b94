import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { MAX_LINE_BYTES, REJECT_TEXT_BYTES, Spool, type SpoolSummary } from '../../src/fetch/spool.ts';
import { HUDSON_YARDS } from '../support/fixtures/real-week.ts';

const LF = 0x0a;
const CR = 0x0d;

/** What the spool should produce for an input, computed the obvious (whole-buffer) way. */
interface Expected {
  linesCsv: Buffer;
  lines: number;
  blankLines: number;
  firstLine: string | undefined;
  unterminatedLastLine: { lineNumber: number; text: string } | undefined;
}

/**
 * Reference implementation: split the whole input on '\n', number the lines from 1, strip one
 * trailing CR, drop lines made only of space/tab/CR, write any other CR as a space. A final '\n' ends the last line rather than
 * starting an empty one; without it the last piece is a line of its own.
 */
function reference(input: Buffer): Expected {
  const pieces: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < input.length; i += 1) {
    if (input[i] === LF) {
      pieces.push(input.subarray(start, i));
      start = i + 1;
    }
  }
  const terminated = start === input.length;
  if (!terminated) pieces.push(input.subarray(start));

  const out: Buffer[] = [];
  let blankLines = 0;
  let firstLine: string | undefined;
  pieces.forEach((raw, index) => {
    const text = raw.length > 0 && raw[raw.length - 1] === CR ? raw.subarray(0, raw.length - 1) : raw;
    if (text.every((byte) => byte === 0x20 || byte === 0x09 || byte === CR)) {
      blankLines += 1;
      return;
    }
    // The spool keeps only the first 4096 bytes of the first line: enough to tell the layout.
    firstLine ??= text.subarray(0, 4096).toString('latin1');
    // A CR left inside a line is written as a space (DuckDB's reader would end the line there).
    const inLine = Buffer.from(text.map((byte) => (byte === CR ? 0x20 : byte)));
    out.push(Buffer.from(`${index + 1},`, 'latin1'), inLine, Buffer.from('\n'));
  });

  const last = pieces[pieces.length - 1];
  const lastIsBlank = last === undefined || last.every((b) => b === 0x20 || b === 0x09 || b === CR);
  return {
    linesCsv: Buffer.concat(out),
    lines: pieces.length,
    blankLines,
    firstLine,
    // The text is the raw last line (a trailing CR kept): the converter trims it itself.
    unterminatedLastLine:
      terminated || lastIsBlank ? undefined : { lineNumber: pieces.length, text: last.toString('latin1') },
  };
}

/** mulberry32: a small seeded PRNG, so a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Weighted towards the bytes that matter (line ends, blanks) plus a non-ASCII latin1 byte and NUL,
// which must pass through untouched.
const ALPHABET = Buffer.from('aaaabZ09,,,    \t\t\r\r\r\n\n\n\n\n\xe9\x00', 'latin1');

function randomInput(random: () => number, maxLength: number): Buffer {
  const length = Math.floor(random() * (maxLength + 1));
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i += 1) bytes[i] = ALPHABET[Math.floor(random() * ALPHABET.length)]!;
  return bytes;
}

/** Cuts `input` at the given offsets (sorted, deduplicated, empty pieces kept out). */
function cutAt(input: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.filter((o) => o > 0 && o < input.length))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of [...points, input.length]) {
    chunks.push(input.subarray(start, point));
    start = point;
  }
  return chunks.filter((chunk) => chunk.length > 0);
}

type Chunker = (input: Buffer, random: () => number) => Buffer[];

const CHUNKERS: Record<string, Chunker> = {
  whole: (input) => (input.length === 0 ? [] : [input]),
  oneByte: (input) =>
    cutAt(
      input,
      Array.from({ length: input.length }, (_, i) => i),
    ),
  randomSizes: (input, random) => {
    const offsets: number[] = [];
    for (let o = 0; o < input.length; o += 1 + Math.floor(random() * 17)) offsets.push(o);
    return cutAt(input, offsets);
  },
  // A chunk ends just before and just after every '\n'.
  aroundNewlines: (input) => {
    const offsets: number[] = [];
    input.forEach((byte, i) => {
      if (byte === LF) offsets.push(i, i + 1);
    });
    return cutAt(input, offsets);
  },
  // A chunk ends between the '\r' and the '\n' of every CRLF: the CR must still be stripped.
  betweenCrAndLf: (input) => {
    const offsets: number[] = [];
    input.forEach((byte, i) => {
      if (byte === LF && input[i - 1] === CR) offsets.push(i);
    });
    return cutAt(input, offsets);
  },
};

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spool-test-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Spools `chunks` into a fresh folder under `dir`, checking `bytesSoFar` after each write. */
async function spool(chunks: Buffer[], name = 'run'): Promise<SpoolSummary> {
  const target = join(dir, name);
  await rm(target, { recursive: true, force: true });
  await mkdir(target);
  const spooler = new Spool(target);
  let total = 0;
  for (const chunk of chunks) {
    await spooler.write(chunk);
    total += chunk.length;
    expect(spooler.bytesSoFar).toBe(total);
  }
  const summary = await spooler.finish();
  // raw.txt.gz is complete only once rawGzWritten settles (its last blocks compress late).
  await summary.rawGzWritten;
  return summary;
}

/** Every check that compares a finished spool with the reference for `input`. */
async function expectMatchesReference(input: Buffer, summary: SpoolSummary, label: string): Promise<void> {
  const expected = reference(input);
  const linesCsv = await readFile(summary.linesPath);
  // Byte-for-byte, with a readable diff when it fails.
  expect(linesCsv.toString('latin1'), label).toBe(expected.linesCsv.toString('latin1'));
  expect(linesCsv.equals(expected.linesCsv), label).toBe(true);
  expect(gunzipSync(await readFile(summary.rawGzPath)).equals(input), label).toBe(true);
  expect(summary.bytes, label).toBe(input.length);
  expect(summary.sha256, label).toBe(createHash('sha256').update(input).digest('hex'));
  expect(summary.lines, label).toBe(expected.lines);
  expect(summary.blankLines, label).toBe(expected.blankLines);
  expect(summary.firstLine, label).toBe(expected.firstLine);
  expect(summary.unterminatedLastLine, label).toEqual(expected.unterminatedLastLine);
}

/** Hand-picked inputs: the edges of line ends and blank lines. */
const EDGE_CASES = [
  '',
  '\n',
  '\n\n',
  'a',
  'a\n',
  'a\r\n',
  '\r\n',
  '\r',
  'a\r',
  ' \t\r\n',
  'a\r\r\n',
  'a\rb\n',
  '\r\rx\n',
  '  x  \n',
  'x\n  ',
  'x\n\r',
  'x\n \t',
  'head\n\n  \n\t\r\nbody\r\nlast',
  '\n\n\nthird-blank-lines-first\n',
  'caf\xe9\x00,1\n',
];

describe('Spool against the reference', () => {
  it.each(EDGE_CASES.map((text) => [JSON.stringify(text), text]))(
    '%s, in every chunking',
    async (_, text) => {
      const input = Buffer.from(text, 'latin1');
      for (const [name, chunker] of Object.entries(CHUNKERS)) {
        const summary = await spool(chunker(input, prng(1)), name);
        await expectMatchesReference(input, summary, `${JSON.stringify(text)} / ${name}`);
      }
    },
  );

  it('matches on 200 random inputs in every chunking', async () => {
    const random = prng(20240603);
    for (let round = 0; round < 200; round += 1) {
      const input = randomInput(random, 300);
      for (const [name, chunker] of Object.entries(CHUNKERS)) {
        const summary = await spool(chunker(input, random), name);
        await expectMatchesReference(input, summary, `round ${round} / ${name}: ${input.toString('hex')}`);
      }
    }
  });

  it('accepts empty chunks anywhere', async () => {
    const input = Buffer.from('a\r\n\nb\nc', 'latin1');
    const empty = Buffer.alloc(0);
    const chunks = [empty, ...CHUNKERS.oneByte!(input, prng(2)).flatMap((chunk) => [chunk, empty])];
    await expectMatchesReference(input, await spool(chunks), 'with empty chunks');
  });

  it('matches on a multi-megabyte body (backpressure on both outputs)', async () => {
    const random = prng(7);
    const lines: string[] = [];
    for (let i = 0; i < 60_000; i += 1) {
      const blank = random() < 0.05;
      lines.push(blank ? ' \t' : `A002,R051,02-00-00,59 ST,NQR456W,BMT,09/12/2015,00:00:00,REGULAR,${i}`);
    }
    const input = Buffer.from(`${lines.join(random() < 0.5 ? '\n' : '\r\n')}\r\n`, 'latin1');
    expect(input.length).toBeGreaterThan(3 << 20); // well past the 1 MiB lines.csv buffer
    const chunks = cutAt(
      input,
      Array.from({ length: 400 }, () => Math.floor(random() * input.length)),
    );
    await expectMatchesReference(input, await spool(chunks), 'big body');
  });
});

describe('Spool summary details', () => {
  it('counts every line, blank and unterminated ones included', async () => {
    const summary = await spool([Buffer.from('x\n\n  \ny')]);
    expect(summary.lines).toBe(4);
    expect(summary.blankLines).toBe(2);
    expect(summary.unterminatedLastLine).toEqual({ lineNumber: 4, text: 'y' });
  });

  it('reports no unterminated line when the body ends with a newline', async () => {
    const summary = await spool([Buffer.from('x\ny\n')]);
    expect(summary.lines).toBe(2);
    expect(summary.unterminatedLastLine).toBeUndefined();
  });

  it('reports no unterminated line when the unterminated last line is blank', async () => {
    const summary = await spool([Buffer.from('x\ny\n \t\r')]);
    expect(summary.lines).toBe(3);
    expect(summary.blankLines).toBe(1);
    expect(summary.unterminatedLastLine).toBeUndefined();
    expect((await readFile(summary.linesPath, 'latin1')).split('\n')).toEqual(['1,x', '2,y', '']);
  });

  it('summarises an empty body', async () => {
    const summary = await spool([]);
    expect(summary).toMatchObject({ bytes: 0, lines: 0, blankLines: 0, firstLine: undefined });
    expect(summary.sha256).toBe(createHash('sha256').digest('hex'));
    expect(summary.unterminatedLastLine).toBeUndefined();
    expect(await readFile(summary.linesPath)).toHaveLength(0);
    expect(gunzipSync(await readFile(summary.rawGzPath))).toHaveLength(0);
  });

  it('names its two files inside the folder it was given', async () => {
    const summary = await spool([Buffer.from('a\n')]);
    expect(summary.rawGzPath).toBe(join(dir, 'run', 'raw.txt.gz'));
    expect(summary.linesPath).toBe(join(dir, 'run', 'lines.csv'));
  });
});

describe('Spool.firstLine', () => {
  it('is undefined until the first non-blank line is complete, then that line without CR', async () => {
    const spooler = new Spool(dir);
    expect(spooler.firstLine).toBeUndefined();
    await spooler.write(Buffer.from(' \t\r\n\nhea'));
    expect(spooler.firstLine).toBeUndefined();
    await spooler.write(Buffer.from('der\r'));
    expect(spooler.firstLine).toBeUndefined();
    await spooler.write(Buffer.from('\nsecond\n'));
    expect(spooler.firstLine).toBe('header');
    expect((await spooler.finish()).firstLine).toBe('header');
  });

  it('is the unterminated last line when that is the only non-blank line, once finished', async () => {
    const spooler = new Spool(dir);
    await spooler.write(Buffer.from('\n\nonly'));
    expect(spooler.firstLine).toBeUndefined();
    const summary = await spooler.finish();
    expect(summary.firstLine).toBe('only');
    expect(spooler.firstLine).toBe('only');
    expect(summary.unterminatedLastLine).toEqual({ lineNumber: 3, text: 'only' });
  });

  it('is cut to its first 4096 bytes (layout detection needs no more)', async () => {
    const long = 'y'.repeat(10_000);
    const summary = await spool([Buffer.from(`${long}\nz\n`)]);
    expect(summary.firstLine).toBe(long.slice(0, 4096));
    // lines.csv still has the whole line.
    expect(await readFile(summary.linesPath, 'latin1')).toBe(`1,${long}\n2,z\n`);
  });
});

describe('Spool line length limit: an overlong line is its own reject, the rest is read', () => {
  const overlong = (length: number): Buffer => Buffer.alloc(length, 'x');
  const expectOverlong = (summary: SpoolSummary, lineNumber: number, bytes: number): void => {
    expect(summary.overlongLines).toHaveLength(1);
    const [reject] = summary.overlongLines;
    expect(reject!.lineNumber).toBe(lineNumber);
    expect(reject!.reason).toMatch(
      new RegExp(`^the line is ${bytes} bytes long, over the reader's limit of ${MAX_LINE_BYTES}`),
    );
    // Only a prefix is kept: the line is never held whole.
    expect(reject!.text).toBe('x'.repeat(REJECT_TEXT_BYTES));
  };

  it('in one chunk: lines before and after it keep their numbers', async () => {
    const input = Buffer.concat([Buffer.from('a\n'), overlong(MAX_LINE_BYTES + 1), Buffer.from('\nb\nc\n')]);
    const summary = await spool([input]);
    expectOverlong(summary, 2, MAX_LINE_BYTES + 1);
    expect(await readFile(summary.linesPath, 'latin1')).toBe('1,a\n3,b\n4,c\n');
    expect(summary.lines).toBe(4);
    expect(gunzipSync(await readFile(summary.rawGzPath)).equals(input)).toBe(true);
  });

  it('in pieces, crossing the limit on a later write (CRLF: the CR is not counted)', async () => {
    const spooler = new Spool(dir);
    await spooler.write(Buffer.from('h\r\nstart'));
    const piece = overlong(64 * 1024);
    for (let written = 0; written < 1.5 * MAX_LINE_BYTES; written += piece.length) await spooler.write(piece);
    await spooler.write(Buffer.from('\r'));
    await spooler.write(Buffer.from('\nnext\r\n'));
    const summary = await spooler.finish();
    await summary.rawGzWritten;
    expect(summary.overlongLines.map((r) => r.lineNumber)).toEqual([2]);
    expect(summary.overlongLines[0]!.reason).toMatch(`is ${5 + 1.5 * MAX_LINE_BYTES} bytes long`);
    expect(summary.overlongLines[0]!.text).toBe(`start${'x'.repeat(REJECT_TEXT_BYTES - 5)}`);
    expect(await readFile(summary.linesPath, 'latin1')).toBe('1,h\n3,next\n');
    expect(summary.lines).toBe(3);
  });

  it('as the last line, without a newline: a reject that says the file ends inside it', async () => {
    const summary = await spool([Buffer.from('h\n'), overlong(MAX_LINE_BYTES + 10)]);
    expectOverlong(summary, 2, MAX_LINE_BYTES + 10);
    expect(summary.overlongLines[0]!.reason).toMatch('(the file ends inside it)');
    expect(summary.unterminatedLastLine).toBeUndefined();
    expect(await readFile(summary.linesPath, 'latin1')).toBe('1,h\n');
  });

  it('accepts a line of exactly MAX_LINE_BYTES', async () => {
    const line = Buffer.alloc(MAX_LINE_BYTES, 'x');
    const input = Buffer.concat([line, Buffer.from('\nnext')]);
    const chunks = cutAt(input, [100, MAX_LINE_BYTES, MAX_LINE_BYTES + 1]);
    await expectMatchesReference(input, await spool(chunks), 'max line');
    expect((await spool(chunks)).overlongLines).toEqual([]);
  });
});

describe('Spool byte-order mark', () => {
  const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
  it.each([
    ['whole', [3 + 4]],
    ['split inside the mark', [1, 2]],
    ['one byte at a time', [1, 2, 3, 4, 5, 6]],
  ])('leaves a leading UTF-8 BOM out of lines.csv, raw keeps it (%s)', async (_name, cuts) => {
    const input = Buffer.concat([BOM, Buffer.from('C/A,UNIT\r\nx,y\r\n')]);
    const summary = await spool(cutAt(input, cuts));
    expect(summary.firstLine).toBe('C/A,UNIT');
    expect(await readFile(summary.linesPath, 'latin1')).toBe('1,C/A,UNIT\n2,x,y\n');
    expect(gunzipSync(await readFile(summary.rawGzPath)).equals(input)).toBe(true);
    expect(summary.bytes).toBe(input.length);
  });

  it('keeps the same bytes later in the file (only a leading mark is a signature)', async () => {
    const input = Buffer.concat([Buffer.from('a\n'), BOM, Buffer.from('b\n')]);
    const summary = await spool([input]);
    expect(await readFile(summary.linesPath, 'latin1')).toBe(`1,a\n2,${BOM.toString('latin1')}b\n`);
  });
});

describe('Spool.discard', () => {
  it('removes both files mid-stream', async () => {
    const spooler = new Spool(dir);
    await spooler.write(Buffer.from('a\nb\nc'));
    await spooler.discard();
    expect(existsSync(join(dir, 'raw.txt.gz'))).toBe(false);
    expect(existsSync(join(dir, 'lines.csv'))).toBe(false);
  });

  it('removes both files after finish', async () => {
    const spooler = new Spool(dir);
    await spooler.write(Buffer.from('a\nb\n'));
    const summary = await spooler.finish();
    await summary.rawGzWritten;
    expect(existsSync(summary.rawGzPath)).toBe(true);
    expect(existsSync(summary.linesPath)).toBe(true);
    await spooler.discard();
    expect(existsSync(summary.rawGzPath)).toBe(false);
    expect(existsSync(summary.linesPath)).toBe(false);
  });

  it('removes both files when nothing was written', async () => {
    const spooler = new Spool(dir);
    await spooler.discard();
    expect(existsSync(join(dir, 'raw.txt.gz'))).toBe(false);
    expect(existsSync(join(dir, 'lines.csv'))).toBe(false);
  });
});

describe('Spool on the real Hudson Yards file', () => {
  // 843 lines; the last one has no newline and, unlike the others, a single trailing space.
  it('counts 843 lines and keeps the unterminated last one', async () => {
    const input = await readFile(HUDSON_YARDS);
    const summary = await spool(CHUNKERS.randomSizes!(input, prng(843)));
    expect(summary.lines).toBe(843);
    expect(summary.blankLines).toBe(0);
    expect(summary.unterminatedLastLine?.lineNumber).toBe(843);
    expect(summary.unterminatedLastLine?.text).toBe(
      'R550,R072,00-05-01,34 ST-HUDSON YD,7,IRT,09/18/2015,20:00:00,REGULAR,0000000001,0000000054 ',
    );
    const linesCsv = (await readFile(summary.linesPath, 'latin1')).split('\n');
    expect(linesCsv.pop()).toBe(''); // every lines.csv line ends in LF, the last one too
    expect(linesCsv).toHaveLength(843);
    expect(linesCsv[0]).toMatch(/^1,C\/A,UNIT,SCP,/);
    expect(linesCsv[842]).toMatch(/^843,/);
    expect(summary.firstLine?.trimEnd()).toBe(
      'C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS',
    );
    await expectMatchesReference(input, summary, 'hudson yards');
  });
});
