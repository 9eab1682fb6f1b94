// Tests for the MTA file-server stand-in: the worker's fault-handling tests are only as good as
// the faults it really produces on the wire, so each mode is checked with node's own fetch.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';

const GZ = '/work/shared/data/mta/turnstile_230603.txt.gz';
const GZ_NAME = 'turnstile_230603.txt';
const GZ_LENGTH = 33_174_178;
const PLAIN = '/work/shared/data/mta/turnstile_150919_hudsonyd.txt';
const PLAIN_NAME = 'turnstile_150919.txt';
// In memory and large enough to span many 64 KiB chunks, so slicing at afterBytes is exercised.
const MEM_NAME = 'turnstile_230610.txt';
const MEM = randomBytes(300_000);

interface Read {
  bytes: Buffer;
  sha256: string;
  error?: unknown;
}

/** Reads a body to the end (or to its error), keeping what arrived before any error. */
async function readBody(res: Response): Promise<Read> {
  const chunks: Uint8Array[] = [];
  let error: unknown;
  try {
    // The web stream iterator is typed any here; it yields Uint8Array.
    if (res.body) for await (const chunk of res.body as AsyncIterable<Uint8Array>) chunks.push(chunk);
  } catch (err) {
    error = err;
  }
  const bytes = Buffer.concat(chunks);
  return { bytes, sha256: sha256(bytes), error };
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

let server: SourceServer;
let gzSha256: string;
const url = (name: string): string => `${server.baseUrl}/${name}`;

beforeAll(async () => {
  // Reference hash of the gunzipped file, computed independently of the server.
  const hash = createHash('sha256');
  let length = 0;
  await pipeline(createReadStream(GZ), createGunzip(), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      hash.update(chunk);
      length += chunk.length;
    }
  });
  expect(length).toBe(GZ_LENGTH);
  gzSha256 = hash.digest('hex');
  server = await startSourceServer({
    files: [
      { name: GZ_NAME, gzPath: GZ },
      { name: PLAIN_NAME, path: PLAIN },
      { name: MEM_NAME, content: MEM },
    ],
  });
});

afterAll(() => server.close());

beforeEach(() => {
  for (const name of [GZ_NAME, PLAIN_NAME, MEM_NAME]) server.fault(name, undefined);
});

describe('normal responses', () => {
  it('streams the gunzipped file exactly, chunked, as text/plain with validators', async () => {
    expect(server.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/data\/nyct\/turnstile$/);
    const res = await fetch(url(GZ_NAME));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain');
    expect(res.headers.get('content-length')).toBeNull();
    // The ETag is the sha256 of the gunzipped content, not of the .gz on disk.
    expect(res.headers.get('etag')).toBe(`"${gzSha256}"`);
    expect(Number.isNaN(Date.parse(res.headers.get('last-modified') ?? ''))).toBe(false);
    const body = await readBody(res);
    expect(body.error).toBeUndefined();
    expect(body.bytes.length).toBe(GZ_LENGTH);
    expect(body.sha256).toBe(gzSha256);
  });

  it('serves plain files from disk and in-memory content', async () => {
    const plain = await readBody(await fetch(url(PLAIN_NAME)));
    expect(plain.bytes.equals(readFileSync(PLAIN))).toBe(true);
    const mem = await fetch(url(MEM_NAME));
    expect(mem.headers.get('etag')).toBe(`"${sha256(MEM)}"`);
    expect((await readBody(mem)).bytes.equals(MEM)).toBe(true);
  });

  it('answers HEAD with the headers and no body', async () => {
    const res = await fetch(url(MEM_NAME), { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"${sha256(MEM)}"`);
    expect(res.headers.get('content-length')).toBeNull();
    expect((await readBody(res)).bytes.length).toBe(0);
  });

  it('gives 404 for unknown or removed files, 405 for other methods', async () => {
    const unknown = await fetch(url('turnstile_990101.txt'));
    expect(unknown.status).toBe(404);
    await unknown.body?.cancel();

    server.serve({ name: 'gone.txt', content: 'a\n' });
    expect((await fetch(url('gone.txt'))).status).toBe(200);
    server.remove('gone.txt');
    expect((await fetch(url('gone.txt'))).status).toBe(404);

    const post = await fetch(url(MEM_NAME), { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers a matching If-None-Match with 304 and no body', async () => {
    const etag = `"${sha256(MEM)}"`;
    const res = await fetch(url(MEM_NAME), { headers: { 'if-none-match': etag } });
    expect(res.status).toBe(304);
    expect(res.headers.get('etag')).toBe(etag);
    expect((await readBody(res)).bytes.length).toBe(0);
    const other = await fetch(url(MEM_NAME), { headers: { 'if-none-match': '"something-else"' } });
    expect(other.status).toBe(200);
    await other.body?.cancel();
    expect(
      server
        .requestsFor(MEM_NAME)
        .slice(-2)
        .map((r) => r.status),
    ).toEqual([304, 200]);
  });

  it('records every request with method, path, headers and status', async () => {
    const before = server.requests.length;
    await (await fetch(url(MEM_NAME), { method: 'HEAD', headers: { 'x-test': 'yes' } })).body?.cancel();
    await (await fetch(url('missing.txt'))).body?.cancel();
    const [head, missing] = server.requests.slice(before);
    expect(head).toMatchObject({ method: 'HEAD', path: `/data/nyct/turnstile/${MEM_NAME}`, status: 200 });
    expect(head?.headers['x-test']).toBe('yes');
    expect(missing).toMatchObject({ method: 'GET', path: '/data/nyct/turnstile/missing.txt', status: 404 });
    expect(server.requestsFor('missing.txt')).toEqual([missing]);
  });
});

describe('faults', () => {
  it('status fault with times=2 gives 500, 500, then 200', async () => {
    server.fault(MEM_NAME, { kind: 'status', status: 500, times: 2 });
    const before = server.requestsFor(MEM_NAME).length;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(url(MEM_NAME));
      statuses.push(res.status);
      await readBody(res);
    }
    expect(statuses).toEqual([500, 500, 200]);
    expect(
      server
        .requestsFor(MEM_NAME)
        .slice(before)
        .map((r) => r.status),
    ).toEqual([500, 500, 200]);
  });

  it('reset drops the connection mid-body after at most afterBytes', async () => {
    server.fault(MEM_NAME, { kind: 'reset', afterBytes: 100_000, times: 1 });
    const res = await fetch(url(MEM_NAME));
    expect(res.status).toBe(200);
    const body = await readBody(res);
    expect(body.error).toBeInstanceOf(Error);
    expect(body.bytes.length).toBeLessThanOrEqual(100_000);
    // Whatever did arrive is an exact prefix of the file.
    expect(body.bytes.equals(MEM.subarray(0, body.bytes.length))).toBe(true);
    // times=1: the next request is served in full.
    expect((await readBody(await fetch(url(MEM_NAME)))).bytes.equals(MEM)).toBe(true);
  });

  it('reset also works on the streamed gz file', async () => {
    server.fault(GZ_NAME, { kind: 'reset', afterBytes: 1_000_000 });
    const body = await readBody(await fetch(url(GZ_NAME)));
    expect(body.error).toBeInstanceOf(Error);
    expect(body.bytes.length).toBeLessThanOrEqual(1_000_000);
  });

  it('stall pauses the body for ms, then completes it', async () => {
    server.fault(MEM_NAME, { kind: 'stall', afterBytes: 70_000, ms: 300 });
    const started = performance.now();
    const body = await readBody(await fetch(url(MEM_NAME)));
    expect(performance.now() - started).toBeGreaterThanOrEqual(280);
    expect(body.error).toBeUndefined();
    expect(body.bytes.equals(MEM)).toBe(true);
  });

  it('html fault gives a 200 text/html error page', async () => {
    server.fault(MEM_NAME, { kind: 'html', times: 1 });
    const res = await fetch(url(MEM_NAME));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toContain('<html>');
  });

  it('truncate ends the body cleanly after exactly afterBytes', async () => {
    server.fault(MEM_NAME, { kind: 'truncate', afterBytes: 123_457 });
    const mem = await readBody(await fetch(url(MEM_NAME)));
    expect(mem.error).toBeUndefined();
    expect(mem.bytes.equals(MEM.subarray(0, 123_457))).toBe(true);

    server.fault(GZ_NAME, { kind: 'truncate', afterBytes: 1000 });
    const gz = await readBody(await fetch(url(GZ_NAME)));
    expect(gz.error).toBeUndefined();
    expect(gz.bytes.length).toBe(1000);
  });

  it('empty fault gives 200 text/plain with no body and no content-length', async () => {
    server.fault(MEM_NAME, { kind: 'empty' });
    const res = await fetch(url(MEM_NAME));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain');
    expect(res.headers.get('content-length')).toBeNull();
    expect(await res.text()).toBe('');
  });
});

it('close() ends a stalled connection instead of waiting for it', async () => {
  const own = await startSourceServer({ files: [{ name: 'a.txt', content: MEM }] });
  own.fault('a.txt', { kind: 'stall', afterBytes: 10, ms: 30_000 });
  const res = await fetch(`${own.baseUrl}/a.txt`);
  const reading = readBody(res);
  const started = performance.now();
  await own.close();
  expect(performance.now() - started).toBeLessThan(2000);
  const body = await reading;
  expect(body.error).toBeInstanceOf(Error);
  expect(body.bytes.length).toBeLessThanOrEqual(10);
});
