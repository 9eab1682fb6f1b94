/**
 * Completeness is proven, not assumed: fetchWeek against the source stand-in's framing and
 * encoding faults over real sockets. A body is accepted only when its end is proven (declared
 * length met, chunked terminator, every coding's trailer), or marked `connection-close` when
 * nothing could prove it; a body cut mid-stream is retried on a fresh spool and then fails
 * clearly, leaving nothing behind; what retrying cannot change (a redirect loop, a refused TLS
 * certificate, an unknown coding, a 4xx) is tried once.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { deflateSync, gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FetchError } from '../../src/errors.ts';
import { fetchWeek, MAX_REDIRECTS, type FetchResult } from '../../src/fetch/fetch-week.ts';
import { silentLogger } from '../../src/log.ts';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import type { Framing } from '../support/peers/source-framing.ts';
import { LINE_BYTES, realLines, sourceText } from '../support/fixtures/week-sample.ts';
import { FILE } from '../support/fixtures/real-week.ts';

const LINES = 2_000;
const ATTEMPTS = 3;
/** The header and the first 1,000 data lines: a cut on a line boundary. */
const LINE_BOUNDARY = LINE_BYTES * 1_001;
/** The served file's length: every line of the real week is LINE_BYTES long. */
const TEXT_BYTES = LINE_BYTES * (LINES + 1);

let source: SourceServer;
let text: string;
let dir: string;

beforeAll(async () => {
  text = sourceText(await realLines(LINES));
  source = await startSourceServer({ files: [{ name: FILE, content: text }] });
});
afterAll(() => source.close());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-completeness-'));
  source.fault(FILE, undefined);
  source.requests.length = 0;
  return () => rm(dir, { recursive: true, force: true });
});

function fetchIt(url = `${source.baseUrl}/${FILE}`): Promise<FetchResult> {
  return fetchWeek({
    url,
    spoolDir: dir,
    policy: { timeoutMs: 10_000, attempts: ATTEMPTS, backoffMs: 1 },
    log: silentLogger,
  });
}

const sha256 = (data: string): string => createHash('sha256').update(data, 'latin1').digest('hex');

/** The fetch, expected to succeed: its result, the spool's numbered lines checked against `served`. */
async function fetched(served: string): Promise<Extract<FetchResult, { outcome: 'fetched' }>> {
  const result = await fetchIt();
  if (result.outcome !== 'fetched') throw new Error(`expected fetched, got ${result.outcome}`);
  await result.rawGzWritten;
  expect(result.bytes).toBe(Buffer.byteLength(served, 'latin1'));
  expect(result.sha256).toBe(sha256(served));
  const dataLines = served.split('\n').filter((line) => line !== '').length;
  expect(result.lines).toBe(dataLines);
  expect((await readFile(result.linesPath, 'latin1')).split('\n')).toHaveLength(dataLines + 1);
  return result;
}

/** The fetch, expected to fail: its error; the spool folder is left empty. */
async function failure(): Promise<FetchError> {
  const error = await fetchIt().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FetchError);
  expect(await readdir(dir)).toEqual([]);
  return error as FetchError;
}

const framed = (framing: Framing, times?: number): void =>
  source.fault(FILE, { kind: 'framing', framing, ...(times !== undefined && { times }) });

describe('a body whose end is proven is accepted, and says what proved it', () => {
  it.each<[string, Framing | undefined, string, string | undefined]>([
    ['chunked (the stand-in as the MTA serves)', undefined, 'chunked', undefined],
    ['Content-Length met', { by: 'length' }, 'content-length', undefined],
    ['gzip over Content-Length', { by: 'length', encoding: 'gzip' }, 'content-length', 'gzip'],
    ['gzip over chunked', { by: 'chunked', encoding: 'gzip' }, 'chunked', 'gzip'],
    ['deflate (zlib) over chunked', { by: 'chunked', encoding: 'deflate' }, 'chunked', 'deflate'],
    [
      'deflate sent raw, as some servers do',
      { by: 'length', encoding: 'deflate-raw' },
      'content-length',
      'deflate',
    ],
    ['brotli, sent unasked', { by: 'length', encoding: 'br' }, 'content-length', 'br'],
    [
      'Transfer-Encoding: gzip, chunked',
      { by: 'chunked', encoding: 'gzip', transfer: true },
      'chunked',
      'gzip',
    ],
  ])('%s', async (_name, framing, completeness, encoding) => {
    if (framing) framed(framing);
    const result = await fetched(text);
    expect(result.completeness).toBe(completeness);
    expect(result.contentEncoding).toBe(encoding);
    expect(result.lines).toBe(LINES + 1);
    expect(source.requestsFor(FILE)).toHaveLength(1);
  });
});

describe('a body ended only by the connection closing cannot be proven: accepted, marked so', () => {
  it('whole', async () => {
    framed({ by: 'close' });
    expect((await fetched(text)).completeness).toBe('connection-close');
  });

  it('cut on a line boundary: HTTP cannot tell, the mark carries it to the gate', async () => {
    framed({ by: 'close', cutAt: LINE_BOUNDARY });
    const result = await fetched(text.slice(0, LINE_BOUNDARY));
    expect(result).toMatchObject({ completeness: 'connection-close', lines: 1_001 });
    expect(result.unterminatedLastLine).toBeUndefined();
  });

  it('gzip over a closed connection is proven by its trailer instead', async () => {
    framed({ by: 'close', encoding: 'gzip' });
    expect(await fetched(text)).toMatchObject({ completeness: 'connection-close', contentEncoding: 'gzip' });
  });
});

describe('a body cut mid-stream is retried, then fails clearly; nothing is kept', () => {
  const encodedLength = (encoding: 'gzip' | 'deflate'): number => {
    return (encoding === 'gzip' ? gzipSync : deflateSync)(Buffer.from(text, 'latin1')).length;
  };

  it.each<[string, () => Framing, RegExp]>([
    [
      'Content-Length declared and not met',
      () => ({ by: 'length', cutAt: LINE_BOUNDARY }),
      new RegExp(`the body ended before its ${TEXT_BYTES} declared bytes`),
    ],
    [
      'chunked, the connection dies before the terminator',
      () => ({ by: 'chunked', cutAt: LINE_BOUNDARY }),
      /the chunked body ended without its last chunk/,
    ],
    [
      'gzip cut mid-stream, in a response that ends cleanly (Content-Length of what was sent)',
      () => ({ by: 'length', encoding: 'gzip', cutAt: Math.floor(encodedLength('gzip') / 2), cut: 'clean' }),
      /the gzip stream ends before its trailer \(after \d+ encoded bytes\): the body was cut/,
    ],
    [
      'gzip cut mid-stream, ended by closing the connection',
      () => ({ by: 'close', encoding: 'gzip', cutAt: Math.floor(encodedLength('gzip') / 2) }),
      /the gzip stream ends before its trailer/,
    ],
    [
      'gzip that lost only its trailer, in a clean chunked response',
      () => ({ by: 'chunked', encoding: 'gzip', cutAt: encodedLength('gzip') - 4, cut: 'clean' }),
      /the gzip stream ends before its trailer/,
    ],
    [
      'deflate cut mid-stream, in a clean chunked response',
      () => ({
        by: 'chunked',
        encoding: 'deflate',
        cutAt: Math.floor(encodedLength('deflate') / 2),
        cut: 'clean',
      }),
      /the deflate stream ends before its trailer/,
    ],
  ])('%s', async (_name, framing, message) => {
    framed(framing());
    const error = await failure();
    expect(error.message).toMatch(`gave up after ${ATTEMPTS} attempts`);
    expect(error.message).toMatch(message);
    expect(error.kind).toBe('incomplete-body');
    expect(source.requestsFor(FILE)).toHaveLength(ATTEMPTS);
  });

  it('a cut gzip stream on the first attempt only: the retry lands the whole file', async () => {
    framed({ by: 'length', encoding: 'gzip', cutAt: 1_000, cut: 'clean' }, 1);
    const result = await fetched(text);
    expect(result.attempts).toBe(2);
    expect(source.requestsFor(FILE)).toHaveLength(2);
  });
});

describe('what retrying cannot change is tried once', () => {
  it('an encoding the worker cannot decode', async () => {
    framed({ by: 'length', encoding: 'compress' });
    const error = await failure();
    expect(error.message).toMatch(/an encoding this worker cannot decode \(compress\)/);
    expect(error.kind).toBe('content-encoding');
    expect(source.requestsFor(FILE)).toHaveLength(1);
  });

  it('a redirect back to itself', async () => {
    source.fault(FILE, { kind: 'redirect', loop: 'self' });
    const error = await failure();
    expect(error.message).toMatch(/redirects in a loop/);
    expect(error.kind).toBe('redirects');
    expect(source.requestsFor(FILE)).toHaveLength(1);
  });

  it(`redirects without end: ${MAX_REDIRECTS} are followed, once`, async () => {
    source.fault(FILE, { kind: 'redirect', loop: 'endless' });
    const error = await failure();
    expect(error.message).toMatch(`more than ${MAX_REDIRECTS} redirects`);
    expect(error.kind).toBe('redirects');
    expect(source.requestsFor(FILE)).toHaveLength(MAX_REDIRECTS + 1);
  });

  it.each([403, 401, 400])('HTTP %i', async (status) => {
    source.fault(FILE, { kind: 'status', status });
    const error = await failure();
    expect(error.message).toMatch(`HTTP ${status}`);
    expect(error.kind).toBe('http-status');
    expect(source.requestsFor(FILE)).toHaveLength(1);
  });

  describe('a TLS certificate the worker does not trust', () => {
    let https: Server;
    let handshakes = 0;
    beforeAll(async () => {
      const keys = await mkdtemp(join(tmpdir(), 'mta-ingest-tls-'));
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-keyout',
          join(keys, 'key.pem'),
          '-out',
          join(keys, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
      https = createHttpsServer(
        { key: await readFile(join(keys, 'key.pem')), cert: await readFile(join(keys, 'cert.pem')) },
        (_req, res) => res.end(text),
      );
      https.on('connection', () => (handshakes += 1));
      await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
      await rm(keys, { recursive: true, force: true });
    });
    afterAll(() => new Promise<void>((resolve) => https.close(() => resolve())));

    it('is refused once, not retried as a network fault', async () => {
      const { port } = https.address() as AddressInfo;
      const error = await fetchIt(`https://127.0.0.1:${port}/${FILE}`).then(
        () => undefined,
        (e: unknown) => e as FetchError,
      );
      expect(error).toBeInstanceOf(FetchError);
      expect(error!.message).toMatch(/TLS failed: (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)/);
      expect(error!.kind).toBe('tls');
      expect(handshakes).toBe(1);
    });
  });
});
