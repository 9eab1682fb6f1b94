/**
 * Input tolerance and honest advice, through the real worker (a child process, as a scheduler
 * runs it) against the source stand-in on 127.0.0.1:
 *
 * - every legitimate encoding of a well-formed file lands exactly: a byte-order mark, CRLF line
 *   ends, gzip / deflate / brotli content codings, `Transfer-Encoding: gzip, chunked`;
 * - a line longer than the reader's limit is that line's reject, with its line number, and the
 *   rest of the week loads (rows + rejects = data lines);
 * - what retrying cannot change (a redirect loop, an unknown coding, a 4xx) is tried once, and a
 *   body cut on every attempt fails clearly; nothing is stored, and the advice after `→` names
 *   the cause, not "the network".
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSourceServer, type Fault, type SourceServer } from '../support/peers/source-server.ts';
import { withBom, withCrlf, withLongLine } from '../support/peers/source-framing.ts';
import { runWorker, type CliResult } from '../support/harnesses/cli.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import {
  factsOf,
  realWeekFile,
  REAL_WEEK_ROWS,
  type WeekFacts,
  WEEK,
  FILE,
  NOW,
} from '../support/fixtures/real-week.ts';
import { filesUnder, realLines, sourceText } from '../support/fixtures/week-sample.ts';
import { MAX_LINE_BYTES } from '../../src/fetch/spool.ts';
import { weekKeys } from '../../src/lake/lake-layout.ts';
import type { Manifest } from '../../src/manifest/manifest.ts';

const LINES = 2_000;
/** 1.5 MiB: over the spool's 1 MiB limit, under nothing else. */
const LONG_LINE = 1.5 * 1024 * 1024;

let source: SourceServer;
let sample: string;
let realText: string;
let realFacts: WeekFacts;
let dir: string;

beforeAll(async () => {
  sample = sourceText(await realLines(LINES));
  const realWeek = await realWeekFile();
  realText = await readFile(realWeek, 'latin1');
  realFacts = await factsOf(realWeek);
  source = await startSourceServer();
});
afterAll(() => source.close());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-tolerance-'));
  source.fault(FILE, undefined);
  source.requests.length = 0;
  return () => rm(dir, { recursive: true, force: true });
});

const run = (...args: string[]): Promise<CliResult> =>
  runWorker({ sourceUrl: source.baseUrl, dir, now: NOW }, '--date', WEEK, ...args);

async function manifest(): Promise<Manifest> {
  return JSON.parse(await readFile(join(dir, 'lake', weekKeys(WEEK).manifest), 'utf8')) as Manifest;
}

/** The week in the warehouse: rows, counter sums, and its first and last source line. */
async function loaded(): Promise<{ rows: number; entries: bigint; exits: bigint; lines: number[] }> {
  const [row] = await query(
    `SELECT count(*) AS n, sum(entries)::VARCHAR AS e, sum(exits)::VARCHAR AS x,
            min(source_line) AS lo, max(source_line) AS hi
     FROM turnstile_readings WHERE drop_date = DATE '${WEEK}'`,
    join(dir, 'wh.duckdb'),
  );
  return {
    rows: Number(row!.n),
    entries: BigInt((row!.e as string | null) ?? 0),
    exits: BigInt((row!.x as string | null) ?? 0),
    lines: [Number(row!.lo), Number(row!.hi)],
  };
}

const stdoutLine = (result: CliResult): string =>
  result.stdout.split('\n').find((line) => line.startsWith(WEEK)) ?? '';

describe('every legitimate encoding of a well-formed file lands exactly', () => {
  it('the real week, gzip-encoded over Content-Length: 253,237 rows, the same sums, the plain file hashed', async () => {
    source.serve({ name: FILE, content: realText });
    source.fault(FILE, { kind: 'framing', framing: { by: 'length', encoding: 'gzip' } });
    const result = await run();
    expect(result.code, result.stderr.slice(-2000)).toBe(0);
    expect(stdoutLine(result)).toMatch(/loaded\s+253,237 rows\s+0 rejects/);
    const facts = await loaded();
    expect(facts).toMatchObject({ rows: REAL_WEEK_ROWS, entries: realFacts.entries, exits: realFacts.exits });
    const stored = await manifest();
    // What was stored is the file, not its transfer form: its sha256 is the plain file's.
    expect(stored.source.sha256).toBe(createHash('sha256').update(realText, 'latin1').digest('hex'));
    expect(stored.source.bytes).toBe(realText.length);
  });

  it('the real week with a byte-order mark and CRLF line ends: 253,237 rows, the same sums, no rejects', async () => {
    source.serve({ name: FILE, content: Buffer.concat([withBom(''), withCrlf(realText)]) });
    const result = await run();
    expect(result.code, result.stderr.slice(-2000)).toBe(0);
    expect(stdoutLine(result)).toMatch(/loaded\s+253,237 rows\s+0 rejects/);
    expect(await loaded()).toMatchObject({
      rows: REAL_WEEK_ROWS,
      entries: realFacts.entries,
      exits: realFacts.exits,
    });
  });

  it.each<[string, Buffer | string, Fault | undefined]>([
    ['a byte-order mark', 'bom', undefined],
    ['CRLF line ends', 'crlf', undefined],
    [
      'deflate (zlib) over chunked',
      'plain',
      { kind: 'framing', framing: { by: 'chunked', encoding: 'deflate' } },
    ],
    [
      'raw deflate over a closed connection',
      'plain',
      { kind: 'framing', framing: { by: 'close', encoding: 'deflate-raw' } },
    ],
    ['brotli, sent unasked', 'plain', { kind: 'framing', framing: { by: 'length', encoding: 'br' } }],
    [
      'Transfer-Encoding: gzip, chunked',
      'plain',
      { kind: 'framing', framing: { by: 'chunked', encoding: 'gzip', transfer: true } },
    ],
  ])('%s: every line of the sample, no rejects', async (_name, variant, fault) => {
    const content = variant === 'bom' ? withBom(sample) : variant === 'crlf' ? withCrlf(sample) : sample;
    source.serve({ name: FILE, content });
    source.fault(FILE, fault);
    const result = await run();
    expect(result.code, result.stderr.slice(-2000)).toBe(0);
    expect(stdoutLine(result)).toMatch(/loaded\s+2,000 rows\s+0 rejects/);
    expect((await loaded()).lines).toEqual([2, LINES + 1]);
    expect(source.requestsFor(FILE)).toHaveLength(1);
  });
});

describe('a line over the reader limit is its own reject; the rest of the week loads', () => {
  it('the real week with a 1.5 MiB line as line 1,001: 253,237 rows, 1 reject at line 1,001', async () => {
    source.serve({ name: FILE, content: withLongLine(realText, 1_001, LONG_LINE) });
    const result = await run();
    expect(result.code, result.stderr.slice(-2000)).toBe(0);
    expect(stdoutLine(result)).toMatch(/loaded\s+253,237 rows\s+1 rejects?/);
    const facts = await loaded();
    expect(facts).toMatchObject({ rows: REAL_WEEK_ROWS, entries: realFacts.entries, exits: realFacts.exits });
    // The lines after it keep their own numbers: the last data line is one further down.
    expect(facts.lines).toEqual([2, REAL_WEEK_ROWS + 2]);

    const stored = await manifest();
    expect(stored).toMatchObject({ rows: REAL_WEEK_ROWS, rejects: 1 });
    expect(stored.rows + stored.rejects).toBe(stored.source.lines - stored.source.blankLines - 1);
    const rejectsKey = stored.objects.rejects?.key;
    expect(rejectsKey).toBeDefined();
    const rejects = await query(
      `SELECT source_line, reason, length(line) AS kept FROM read_parquet('${join(dir, 'lake', rejectsKey!)}')`,
    );
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ source_line: 1_001n, kept: 256n });
    expect(rejects[0]!.reason).toMatch(
      `the line is ${LONG_LINE} bytes long, over the reader's limit of ${MAX_LINE_BYTES}`,
    );
  });
});

describe('what retrying cannot change is tried once, and the advice names the cause', () => {
  it.each<[string, Fault, number, RegExp, RegExp]>([
    [
      'a redirect loop',
      { kind: 'redirect', loop: 'self' },
      1,
      /redirects in a loop/,
      /→ nothing was stored; the source redirects in a loop or too often: check --source-url/,
    ],
    [
      'an unknown content encoding',
      { kind: 'framing', framing: { by: 'length', encoding: 'compress' } },
      1,
      /cannot decode \(compress\)/,
      /→ nothing was stored; the source sends an encoding the worker cannot decode/,
    ],
    [
      'HTTP 403',
      { kind: 'status', status: 403 },
      1,
      /HTTP 403/,
      /→ nothing was stored; the source refused the request \(not retried\)/,
    ],
    [
      'a gzip stream cut on every attempt',
      { kind: 'framing', framing: { by: 'length', encoding: 'gzip', cutAt: 100_000, cut: 'clean' } },
      5,
      /gave up after 5 attempts: the gzip stream ends before its trailer/,
      /→ nothing was stored; every attempt was cut before the end of the body/,
    ],
  ])('%s', async (_name, fault, requests, detail, advice) => {
    source.serve({ name: FILE, content: fault.kind === 'framing' ? realText : sample });
    source.fault(FILE, fault);
    const result = await run();
    expect(result.code, result.stderr.slice(-2000)).toBe(1);
    const line = stdoutLine(result);
    expect(line).toMatch(/^2023-06-03\s+failed\s/);
    expect(line).toMatch(detail);
    expect(line).toMatch(advice);
    expect(line).not.toMatch(/check the network/);
    expect(source.requestsFor(FILE)).toHaveLength(requests);
    expect(await filesUnder(join(dir, 'lake'))).toEqual([]);
    expect(existsSync(join(dir, 'wh.duckdb')) ? (await loaded()).rows : 0).toBe(0);
  });
});
