import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GZIP_BLOCK_BYTES, ParallelGzipWriter } from '../../src/fetch/parallel-gzip.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgzip-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** Compressible but not trivial: text lines with random counters, like a turnstile file. */
function sampleInput(bytes: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i += 1) {
    const line = `A002,R051,02-00-00,59 ST,NQR456W,BMT,05/27/2023,00:00:00,REGULAR,${randomBytes(5).toString('hex')},${i}\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

async function compress(input: Buffer, chunkSize: number, name: string): Promise<Buffer> {
  const path = join(dir, name);
  const writer = new ParallelGzipWriter(path);
  for (let at = 0; at < input.length; at += chunkSize) await writer.write(input.subarray(at, at + chunkSize));
  await writer.end();
  return readFile(path);
}

describe('ParallelGzipWriter', () => {
  const input = sampleInput(GZIP_BLOCK_BYTES * 3 + 12_345);

  it('writes concatenated gzip members that gunzip to exactly the input', async () => {
    const output = await compress(input, 65_536, 'a.gz');
    expect(gunzipSync(output).equals(input)).toBe(true);
    // One member per 4 MiB block: four gzip headers (1f 8b 08) in the file.
    let members = 0;
    for (
      let i = output.indexOf('\x1f\x8b\x08', 0, 'latin1');
      i !== -1;
      i = output.indexOf('\x1f\x8b\x08', i + 1, 'latin1')
    ) {
      members += 1;
    }
    expect(members).toBeGreaterThanOrEqual(4);
  });

  it('gives the same bytes however the input was chunked', async () => {
    const reference = await compress(input, 65_536, 'a.gz');
    for (const size of [1_000, 333_333, GZIP_BLOCK_BYTES, input.length]) {
      expect((await compress(input, size, `b${size}.gz`)).equals(reference), `chunks of ${size}`).toBe(true);
    }
  });

  it('writes a valid empty gzip file for no input', async () => {
    const output = await compress(Buffer.alloc(0), 1, 'empty.gz');
    expect(gunzipSync(output)).toHaveLength(0);
  });
});
