// Tests for the GCS test infrastructure: fake-gcs-server (test/support/peers/fake-gcs.ts) driven by the real
// @google-cloud/storage client, directly and through the fault proxy (test/support/peers/fault-proxy.ts).
// They pin down what the emulator and the client really do, including where they fall short of
// real GCS, so the GCS lake backend's tests can rely on (and work around) exactly that.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CRC32C, Storage, type StorageOptions } from '@google-cloud/storage';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeGcsBinary, startFakeGcs, type FakeGcs } from '../support/peers/fake-gcs.ts';
import { startFaultProxy, type FaultProxy, type ProxyRequestRecord } from '../support/peers/fault-proxy.ts';

const BUCKET = 'mta-lake-test';
const MiB = 1024 * 1024;
/** A multiple of 256 KiB, as resumable chunk sizes must be. */
const CHUNK = 256 * 1024 * 4;
const BIG = randomBytes(3 * MiB);

let gcs: FakeGcs;
let proxy: FaultProxy;

/**
 * A fresh client per test. A custom apiEndpoint makes the client skip authentication entirely
 * (`useAuthWithCustomEndpoint` defaults to false; it is spelled out here), so no credentials and no
 * metadata server are looked for: beforeAll points GOOGLE_APPLICATION_CREDENTIALS at a file that
 * does not exist, which would fail any request that tried.
 *
 * Fresh, because @google-cloud/storage 8.x mutates shared retry state: see the 'no precondition' test.
 * maxRetryDelay cannot go below 1 s: File#save wraps uploads in async-retry, whose minTimeout is
 * 1000 ms, and it throws "minTimeout is greater than maxTimeout" for anything smaller.
 */
function client(apiEndpoint: string, extra: StorageOptions = {}): Storage {
  return new Storage({
    apiEndpoint,
    projectId: 'test',
    useAuthWithCustomEndpoint: false,
    retryOptions: { maxRetries: 3, maxRetryDelay: 1, totalTimeout: 20 },
    ...extra,
  });
}

function crc32c(data: Buffer): string {
  const crc = new CRC32C();
  crc.update(data);
  return crc.toString();
}

async function download(storage: Storage, name: string): Promise<Buffer | undefined> {
  const file = storage.bucket(BUCKET).file(name);
  const [exists] = await file.exists();
  return exists ? (await file.download())[0] : undefined;
}

/** `METHOD path status[ fault]`, with upload ids elided, for readable assertions. */
function summary(records: ProxyRequestRecord[]): string[] {
  return records.map((r) => {
    const path = r.url.replace(/upload_id=[^&]+/, 'upload_id=*');
    return `${r.method} ${path} ${r.status}${r.fault ? ` ${r.fault}` : ''}`;
  });
}

beforeAll(async () => {
  vi.stubEnv('METADATA_SERVER_DETECTION', 'none');
  vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', '/nonexistent/credentials.json');
  gcs = await startFakeGcs({ buckets: [BUCKET] });
  proxy = await startFaultProxy(gcs.url);
});

afterAll(async () => {
  await proxy?.close();
  await gcs?.stop();
  vi.unstubAllEnvs();
});

beforeEach(() => {
  proxy.fault(undefined);
  proxy.requests.length = 0;
});

describe('startFakeGcs', () => {
  it('runs the installed binary on 127.0.0.1 with the requested buckets', async () => {
    expect(existsSync(fakeGcsBinary())).toBe(true);
    expect(gcs.url).toBe(`http://127.0.0.1:${gcs.port}`);
    const [buckets] = await client(gcs.url).getBuckets();
    expect(buckets.map((b) => b.name)).toEqual([BUCKET]);
    expect(buckets[0]?.metadata.location).toBe('US');
  });

  it('honours location, starts several servers side by side, and stop() really ends one', async () => {
    const other = await startFakeGcs({ buckets: ['lake-a', 'lake-b'], location: 'EUROPE-WEST1' });
    try {
      expect(other.port).not.toBe(gcs.port);
      const [buckets] = await client(other.url).getBuckets();
      // The emulator lists buckets in no fixed order.
      expect(buckets.map((b) => [b.name, b.metadata.location]).sort()).toEqual([
        ['lake-a', 'EUROPE-WEST1'],
        ['lake-b', 'EUROPE-WEST1'],
      ]);
    } finally {
      await other.stop();
    }
    await expect(fetch(`${other.url}/storage/v1/b`)).rejects.toThrow();
    await other.stop(); // idempotent
    // The shared server is untouched.
    expect((await fetch(`${gcs.url}/storage/v1/b`)).status).toBe(200);
  });

  it('fails fast, with the server output, when the server exits during startup', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fake-gcs-test-'));
    try {
      const binary = join(dir, 'broken-server');
      writeFileSync(binary, '#!/bin/sh\necho "flag provided but not defined: $1" >&2\nexit 2\n', {
        mode: 0o755,
      });
      const started = Date.now();
      await expect(startFakeGcs({ binary })).rejects.toThrow(
        /did not start: .*exited with code 2; its output:\nflag provided but not defined: -scheme/s,
      );
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // The server must not outlive the process that started it, however that process ends: normally
  // (without calling stop(): an 'exit' hook kills it) or SIGKILLed (the watchdog sees its pipe close).
  for (const ending of ['exits without stop()', 'is SIGKILLed'] as const) {
    it(`is killed when the process that started it ${ending}`, async () => {
      const helper = pathToFileURL(join(import.meta.dirname, '../support/peers/fake-gcs.ts')).href;
      const script =
        `import { startFakeGcs } from ${JSON.stringify(helper)};\n` +
        `const gcs = await startFakeGcs();\n` +
        `console.log(gcs.url);\n` +
        (ending === 'is SIGKILLed' ? 'setInterval(() => {}, 1000);\n' : '');
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = once(child, 'exit');
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      const url = line.toString().trim();
      expect(url, stderr).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      if (ending === 'is SIGKILLed') {
        expect((await fetch(`${url}/storage/v1/b`)).status).toBe(200);
        child.kill('SIGKILL');
      }
      await exited;
      await vi.waitFor(() => expect(fetch(`${url}/storage/v1/b`)).rejects.toThrow(), { timeout: 5_000 });
    });
  }
});

describe('uploads and downloads', () => {
  it('round-trips a simple (multipart) upload', async () => {
    const storage = client(gcs.url);
    const file = storage.bucket(BUCKET).file('simple/hello.txt');
    await file.save('hello, lake\n', { resumable: false, contentType: 'text/plain' });
    const [content] = await file.download();
    expect(content.toString()).toBe('hello, lake\n');
    const [metadata] = await file.getMetadata();
    expect(metadata).toMatchObject({ size: '12', contentType: 'text/plain' });
    expect(metadata.crc32c).toBe(crc32c(Buffer.from('hello, lake\n')));
  });

  for (const via of ['direct', 'proxied'] as const) {
    it(`round-trips a 3 MiB resumable upload in 1 MiB chunks with crc32c validation (${via})`, async () => {
      const storage = client(via === 'direct' ? gcs.url : proxy.url);
      const name = `resumable/${via}.bin`;
      await storage
        .bucket(BUCKET)
        .file(name)
        .save(BIG, { resumable: true, chunkSize: CHUNK, validation: 'crc32c' });

      const [metadata] = await storage.bucket(BUCKET).file(name).getMetadata();
      expect(metadata.size).toBe(String(BIG.length));
      expect(metadata.crc32c).toBe(crc32c(BIG));
      expect((await download(storage, name))?.equals(BIG)).toBe(true);

      if (via === 'proxied') {
        // Every request, chunks included, went through the proxy: the session URI (Location) was
        // rewritten to it. fake-gcs-server honours Content-Range chunking: 308 until the last chunk.
        const upload = `/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=resumable%2Fproxied.bin`;
        expect(summary(proxy.requests).slice(0, 4)).toEqual([
          `POST /upload/storage/v1/b/${BUCKET}/o?name=resumable%2Fproxied.bin&uploadType=resumable 200`,
          `PUT ${upload}&upload_id=* 308`,
          `PUT ${upload}&upload_id=* 308`,
          `PUT ${upload}&upload_id=* 200`,
        ]);
      }
    });
  }
});

describe('preconditions (ifGenerationMatch: 0, "create only")', () => {
  it('are enforced on simple (multipart) uploads: the second create fails with 412', async () => {
    const storage = client(gcs.url);
    const file = storage.bucket(BUCKET).file('preconditions/multipart.txt');
    const create = { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } };
    await file.save('first', create);
    await expect(file.save('second', create)).rejects.toMatchObject({ code: 412 });
    expect((await download(storage, 'preconditions/multipart.txt'))?.toString()).toBe('first');
  });

  it('are NOT enforced by fake-gcs-server on resumable uploads: the second create overwrites', async () => {
    // fake-gcs-server 1.52.2 checks ifGenerationMatch only for uploadType=multipart; media and
    // resumable uploads ignore it (real GCS answers 412). Tests that need create-only semantics on
    // this emulator must use simple uploads.
    const storage = client(gcs.url);
    const file = storage.bucket(BUCKET).file('preconditions/resumable.txt');
    const create = { resumable: true, preconditionOpts: { ifGenerationMatch: 0 } };
    await file.save('first', create);
    await file.save('second', create);
    expect((await download(storage, 'preconditions/resumable.txt'))?.toString()).toBe('second');
  });
});

describe('retries through the fault proxy', () => {
  const onUploads = (r: { url: string }): boolean => r.url.startsWith('/upload/');

  it('retries a simple upload made idempotent by ifGenerationMatch past two 503s', async () => {
    const storage = client(proxy.url);
    proxy.fault({ kind: 'status', status: 503, times: 2, match: onUploads });
    await storage
      .bucket(BUCKET)
      .file('retry/simple.txt')
      .save('third time lucky', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });

    const post = `POST /upload/storage/v1/b/${BUCKET}/o?uploadType=multipart&name=retry%2Fsimple.txt&ifGenerationMatch=0`;
    expect(summary(proxy.requests)).toEqual([`${post} 503 status`, `${post} 503 status`, `${post} 200`]);
    expect((await download(client(gcs.url), 'retry/simple.txt'))?.toString()).toBe('third time lucky');
  });

  it('retries starting a resumable upload session past 429 and 503', async () => {
    const storage = client(proxy.url);
    proxy.fault({ kind: 'status', status: 429, times: 1, match: onUploads });
    const file = storage.bucket(BUCKET).file('retry/resumable.bin');
    const saved = file.save(BIG, {
      resumable: true,
      chunkSize: CHUNK,
      validation: 'crc32c',
      preconditionOpts: { ifGenerationMatch: 0 },
    });
    // Once the 429 has been answered, fail the retry with a 503 too.
    await vi.waitUntil(() => proxy.requests.length >= 1 && proxy.requests[0]!.status === 429);
    proxy.fault({ kind: 'status', status: 503, times: 1, match: onUploads });
    await saved;

    expect(summary(proxy.requests).map((line) => line.replace(/ \/.*\?/, ' ?'))).toEqual([
      `POST ?name=retry%2Fresumable.bin&uploadType=resumable&ifGenerationMatch=0 429 status`,
      `POST ?name=retry%2Fresumable.bin&uploadType=resumable&ifGenerationMatch=0 503 status`,
      `POST ?name=retry%2Fresumable.bin&uploadType=resumable&ifGenerationMatch=0 200`,
      `PUT ?uploadType=resumable&name=retry%2Fresumable.bin&upload_id=* 308`,
      `PUT ?uploadType=resumable&name=retry%2Fresumable.bin&upload_id=* 308`,
      `PUT ?uploadType=resumable&name=retry%2Fresumable.bin&upload_id=* 200`,
    ]);
    const [metadata] = await client(gcs.url).bucket(BUCKET).file('retry/resumable.bin').getMetadata();
    expect(metadata.crc32c).toBe(crc32c(BIG));
  });

  it('retries a simple upload whose connection is reset before the body is sent', async () => {
    const storage = client(proxy.url);
    proxy.fault({ kind: 'reset', times: 1, match: onUploads });
    await storage
      .bucket(BUCKET)
      .file('retry/reset.txt')
      .save('after a reset', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    const post = `POST /upload/storage/v1/b/${BUCKET}/o?uploadType=multipart&name=retry%2Freset.txt&ifGenerationMatch=0`;
    expect(summary(proxy.requests)).toEqual([`${post} 0 reset`, `${post} 200`]);
    expect((await download(client(gcs.url), 'retry/reset.txt'))?.toString()).toBe('after a reset');
  });

  it('does not retry an upload without a precondition, and then stops retrying anything (client quirk)', async () => {
    const storage = client(proxy.url);
    proxy.fault({ kind: 'status', status: 503, times: 1, match: onUploads });
    await expect(
      storage.bucket(BUCKET).file('retry/not-idempotent.txt').save('once', { resumable: false }),
    ).rejects.toMatchObject({ code: 503 });
    expect(proxy.requests).toHaveLength(1);

    // @google-cloud/storage 8.x: File#save without a precondition sets the *client's*
    // retryOptions.autoRetry to false and never restores it (it happens on success too), so every
    // later upload on this Storage instance, idempotent or not, is never retried. The GCS backend
    // must always pass a precondition (or use a dedicated client per non-idempotent write).
    expect(storage.retryOptions.autoRetry).toBe(false);
    proxy.fault({ kind: 'status', status: 503, times: 1, match: onUploads });
    await expect(
      storage
        .bucket(BUCKET)
        .file('retry/idempotent-but-poisoned.txt')
        .save('x', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }),
    ).rejects.toMatchObject({ code: 503 });
    expect(proxy.requests).toHaveLength(2);
  });

  it('a reset mid-chunk fails the resumable upload, and fake-gcs-server keeps a truncated object', async () => {
    const storage = client(proxy.url);
    const name = 'retry/reset-mid-chunk.bin';
    // Break the connection 300 kB into the second chunk (the second PUT of the session).
    let puts = 0;
    proxy.fault({
      kind: 'reset',
      times: 1,
      afterBytes: 300_000,
      match: (r) => r.method === 'PUT' && ++puts === 2,
    });
    await expect(
      storage
        .bucket(BUCKET)
        .file(name)
        .save(BIG, {
          resumable: true,
          chunkSize: CHUNK,
          validation: 'crc32c',
          preconditionOpts: { ifGenerationMatch: 0 },
        }),
    ).rejects.toThrow(/offset is lower than the number of bytes written/);

    // What happened: after the reset the client asks for the session's status (PUT, empty body,
    // `Content-Range: bytes */*`). Real GCS answers 308 with `Range: bytes=0-1048575` and the client
    // resends from there. fake-gcs-server 1.52.2 instead treats that request as the final one: it
    // commits the bytes it has (the first chunk) as the object and answers 200, and the client, told
    // the server has "0 bytes", gives up rather than risk data loss.
    const session = `/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=retry%2Freset-mid-chunk.bin&upload_id=*`;
    expect(summary(proxy.requests).slice(1)).toEqual([
      `PUT ${session} 308`,
      `PUT ${session} 0 reset`,
      `PUT ${session} 200`,
    ]);
    // So, unlike on real GCS, an object with the wrong content exists after the failure: the first
    // 1 MiB only. (Its crc32c is that of the prefix, not of the data; a backend that checks the
    // stored crc32c/size against its own catches this.)
    const stored = await download(client(gcs.url), name);
    expect(stored?.length).toBe(CHUNK);
    expect(stored?.equals(BIG.subarray(0, CHUNK))).toBe(true);
    const [metadata] = await client(gcs.url).bucket(BUCKET).file(name).getMetadata();
    expect(metadata.crc32c).not.toBe(crc32c(BIG));
  });
});
