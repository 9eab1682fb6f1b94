/**
 * Gzip that keeps up with a fast download: the input is cut into blocks, each block is
 * compressed on the libuv pool as its own gzip member while the next ones arrive, and the
 * members are written in order. A file of concatenated members is a valid gzip file (RFC 1952
 * §2.2) that gunzip, zlib, Python and DuckDB read as one stream. Blocks are cut at exact
 * offsets, so the same input always gives the same bytes. Memory: at most `maxInFlight` blocks.
 *
 * Measured on the real week (33.2 MB): one zlib stream at level 6 took 350 ms and held the
 * download back to its pace. Level 4 takes 122 ms for a file 6% larger than level 6's
 * (2.75 MB against 2.59 MB); level 1, 73 ms for 19% larger. Level 4 is the default.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);

export const GZIP_BLOCK_BYTES = 4 * 1024 * 1024;

export class ParallelGzipWriter {
  private readonly file: Promise<FileHandle>;
  private readonly pending: Promise<void>[] = [];
  private block: Buffer[] = [];
  private blockBytes = 0;
  /** The write of the latest block: each write waits for the one before it. */
  private lastWrite: Promise<void> = Promise.resolve();
  private readonly level: number;
  private readonly maxInFlight: number;

  constructor(path: string, options: { level?: number; maxInFlight?: number } = {}) {
    this.level = options.level ?? 4;
    this.maxInFlight = options.maxInFlight ?? 3;
    this.file = open(path, 'w');
    this.file.catch(() => undefined);
  }

  /** Takes a chunk; resolves once there is room for more (backpressure). */
  async write(chunk: Buffer): Promise<void> {
    let rest = chunk;
    while (this.blockBytes + rest.length >= GZIP_BLOCK_BYTES) {
      const take = GZIP_BLOCK_BYTES - this.blockBytes;
      this.block.push(rest.subarray(0, take));
      this.blockBytes += take;
      this.flushBlock();
      rest = rest.subarray(take);
    }
    if (rest.length > 0) {
      this.block.push(rest);
      this.blockBytes += rest.length;
    }
    while (this.pending.length > this.maxInFlight) await this.pending.shift();
  }

  /** Compresses what is left, writes everything, and closes the file. */
  async end(): Promise<void> {
    if (this.blockBytes > 0 || this.pending.length === 0) this.flushBlock();
    try {
      await Promise.all(this.pending.splice(0));
    } finally {
      await (await this.file).close();
    }
  }

  /** Stops and closes; what was written is left for the caller to remove. */
  async destroy(): Promise<void> {
    this.block = [];
    await Promise.allSettled(this.pending.splice(0));
    await (await this.file.catch(() => undefined))?.close().catch(() => undefined);
  }

  private flushBlock(): void {
    const input = Buffer.concat(this.block, this.blockBytes);
    this.block = [];
    this.blockBytes = 0;
    const compressed = gzipAsync(input, { level: this.level });
    const previous = this.lastWrite;
    const write = (async () => {
      const [member, file] = await Promise.all([compressed, this.file, previous]);
      await file.write(member);
    })();
    // Each write is awaited through `pending`; this copy only orders the next one.
    this.lastWrite = write.catch(() => undefined);
    this.pending.push(write);
  }
}
