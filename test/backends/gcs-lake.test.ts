/**
 * The GCS lake against fake-gcs-server (and the fault proxy where a fault is needed): the
 * resumable path, CRC32C, and what a generation precondition failure means.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CRC32C, Storage } from '@google-cloud/storage';
import { startFakeGcs, type FakeGcs } from '../support/peers/fake-gcs.ts';
import { startFaultProxy, type FaultProxy } from '../support/peers/fault-proxy.ts';
import { GcsLake, RESUMABLE_THRESHOLD, parseGcsUri } from '../../src/lake/gcs/gcs-lake.ts';
import { LakeError, UsageError } from '../../src/errors.ts';

const BUCKET = 'lake-test';
let gcs: FakeGcs;
let proxy: FaultProxy;
let dir: string;
let prefix = 0;

const storageAt = (url: string) =>
  new Storage({
    apiEndpoint: url,
    projectId: 'test',
    useAuthWithCustomEndpoint: false,
    retryOptions: { maxRetries: 2, maxRetryDelay: 1, totalTimeout: 20 },
  });
const crc32c = (data: Buffer) => {
  const crc = new CRC32C();
  crc.update(data);
  return crc.toString();
};

beforeAll(async () => {
  process.env.METADATA_SERVER_DETECTION = 'none';
  gcs = await startFakeGcs({ buckets: [BUCKET], location: 'EU' });
  proxy = await startFaultProxy(gcs.url);
});
afterAll(async () => {
  await proxy.close();
  await gcs.stop();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gcs-lake-'));
  prefix += 1;
  proxy.fault(undefined);
  return () => rm(dir, { recursive: true, force: true });
});

const lakeUri = () => `gs://${BUCKET}/p${prefix}/nested`;

describe('GcsLake', () => {
  it('parses gs:// URIs and refuses bad ones as usage errors', () => {
    expect(parseGcsUri('gs://my-bucket')).toEqual({ bucket: 'my-bucket', prefix: '' });
    expect(parseGcsUri('gs://my-bucket/a/b/')).toEqual({ bucket: 'my-bucket', prefix: 'a/b/' });
    for (const bad of ['gs://', 'gs://A_Bucket', 'gs://b/../x', 'gs://b/./x', 's3://b/x']) {
      expect(() => parseGcsUri(bad), bad).toThrow(UsageError);
    }
    expect(new GcsLake('gs://my-bucket/a/b/', storageAt(gcs.url)).uri).toBe('gs://my-bucket/a/b');
  });

  it('writes, reads, lists and deletes under its prefix, and knows its location', async () => {
    const lake = new GcsLake(lakeUri(), storageAt(gcs.url));
    const stored = await lake.putText(
      'turnstile/_manifests/drop_date=2023-06-03.json',
      '{"a":1}',
      'application/json',
    );
    expect(stored).toMatchObject({ uri: `${lakeUri()}/turnstile/_manifests/drop_date=2023-06-03.json` });
    expect(stored.crc32c).toBe(crc32c(Buffer.from('{"a":1}')));
    expect(Number(stored.generation)).toBeGreaterThan(0);
    expect(await lake.getText('turnstile/_manifests/drop_date=2023-06-03.json')).toBe('{"a":1}');
    expect(await lake.getText('turnstile/_manifests/missing.json')).toBeUndefined();
    await lake.putText('turnstile/raw/x.txt', 'x', 'text/plain');
    expect(await lake.list('turnstile/_manifests/')).toEqual([
      'turnstile/_manifests/drop_date=2023-06-03.json',
    ]);
    expect(await lake.list('turnstile/')).toHaveLength(2);
    await lake.delete('turnstile/raw/x.txt');
    await lake.delete('turnstile/raw/never-there.txt');
    expect(await lake.list('turnstile/raw/')).toEqual([]);
    expect(await lake.location()).toBe('EU');
    await expect(lake.putText('../escape', 'x', 'text/plain')).rejects.toThrow(LakeError);
  });

  it("a manifest write under a stale generation is refused by GCS itself, and the other writer's text stays", async () => {
    // Straight to fake-gcs-server (no fault proxy): the 412 must come from the precondition sent.
    const lake = new GcsLake(lakeUri(), storageAt(gcs.url));
    const key = 'turnstile/_manifests/drop_date=2023-06-03.json';
    await lake.putText(key, '{"v":1}', 'application/json');
    const read = await lake.getTextWithGeneration(key);
    expect(read).toMatchObject({ text: '{"v":1}' });
    await lake.putText(key, '{"v":2,"by":"another run"}', 'application/json');
    await expect(
      lake.putText(key, '{"v":3}', 'application/json', { ifGeneration: read!.generation }),
    ).rejects.toThrow(/changed by another writer/);
    expect(await lake.getText(key)).toBe('{"v":2,"by":"another run"}');
    // "Must not exist" (generation 0) on an object that exists is refused the same way.
    await expect(lake.putText(key, '{"v":4}', 'application/json', { ifGeneration: '0' })).rejects.toThrow(
      /changed by another writer/,
    );
    const now = await lake.getTextWithGeneration(key);
    await lake.putText(key, '{"v":5}', 'application/json', { ifGeneration: now!.generation });
    expect(await lake.getText(key)).toBe('{"v":5}');
    expect(await lake.sizeOf(key)).toBe(7);
    expect(await lake.sizeOf('turnstile/none')).toBeUndefined();
  });

  it('uploads a large file resumably, in chunks, validated by CRC32C, and reads it back whole', async () => {
    const data = randomBytes(RESUMABLE_THRESHOLD + 3 * 1024 * 1024);
    const path = join(dir, 'big.bin');
    await writeFile(path, data);
    const lake = new GcsLake(lakeUri(), storageAt(proxy.url));
    const stored = await lake.putFile('big.bin', path, 'application/octet-stream');
    expect(stored.crc32c).toBe(crc32c(data));
    // A resumable session: started with uploadType=resumable, then the body in chunks.
    const uploads = proxy.requests.filter((r) => r.url.includes('/upload/') && r.url.includes(`p${prefix}`));
    expect(uploads.some((r) => r.url.includes('uploadType=resumable'))).toBe(true);
    // 11 MiB in 8 MiB chunks: two PUTs to the session.
    expect(proxy.requests.filter((r) => r.method === 'PUT').length).toBeGreaterThanOrEqual(2);
    const copy = join(dir, 'copy.bin');
    await lake.getFile('big.bin', copy);
    expect((await readFile(copy)).equals(data)).toBe(true);
  });

  it('replaces an object under the generation it saw', async () => {
    const lake = new GcsLake(lakeUri(), storageAt(gcs.url));
    const first = await lake.putText('k.txt', 'one', 'text/plain');
    const second = await lake.putText('k.txt', 'two', 'text/plain');
    expect(Number(second.generation)).toBeGreaterThan(Number(first.generation));
    expect(await lake.getText('k.txt')).toBe('two');
  });

  it('a 412 on an object that already holds our bytes is our own landed attempt', async () => {
    // The first attempt landed but its answer was lost; the object holds exactly our bytes.
    await storageAt(gcs.url)
      .bucket(BUCKET)
      .file(`p${prefix}/nested/k.txt`)
      .save('ours', { resumable: false });
    proxy.fault({ kind: 'status', status: 412, times: 1, match: (r) => r.url.includes('/upload/') });
    const lake = new GcsLake(lakeUri(), storageAt(proxy.url));
    const stored = await lake.putText('k.txt', 'ours', 'text/plain');
    expect(stored.crc32c).toBe(crc32c(Buffer.from('ours')));
  });

  it('a 412 on an object someone else changed fails clearly, and overwrites nothing', async () => {
    await storageAt(gcs.url)
      .bucket(BUCKET)
      .file(`p${prefix}/nested/k.txt`)
      .save('theirs', { resumable: false });
    proxy.fault({ kind: 'status', status: 412, times: 1, match: (r) => r.url.includes('/upload/') });
    const lake = new GcsLake(lakeUri(), storageAt(proxy.url));
    await expect(lake.putText('k.txt', 'ours', 'text/plain')).rejects.toThrow(
      /was changed by another writer .*generation precondition failed/,
    );
    expect(await lake.getText('k.txt')).toBe('theirs');
  });
});
