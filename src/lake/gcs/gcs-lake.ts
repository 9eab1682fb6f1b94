/**
 * The lake in Google Cloud Storage (`gs://bucket/prefix`), with `@google-cloud/storage`:
 *
 * - uploads of more than 8 MiB are resumable, in 8 MiB chunks (a multiple of 256 KiB), so a
 *   broken connection resumes instead of starting over;
 * - every upload is validated with CRC32C end to end (the library compares its own checksum of
 *   what it sent with the one GCS computed);
 * - every upload carries a generation precondition (`ifGenerationMatch`: the generation seen
 *   just before, or 0 for "must not exist"), which makes it idempotent, so the library's
 *   automatic retries stay on, and means a concurrent writer is never silently overwritten.
 *   A 412 whose object already holds our bytes is our own earlier attempt that landed.
 *
 * A GCS object appears whole or not at all, so no temporary names are needed. Credentials come
 * from Application Default Credentials; `MTA_INGEST_GCS_EMULATOR` points the client at an
 * emulator instead (no credentials are sent then).
 */
import { stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import type { Bucket, File } from '@google-cloud/storage';
import { CRC32C, Storage } from '@google-cloud/storage';
import { LakeError, oneLine } from '../../errors.ts';
import type { Lake, StoredObject } from '../lake.ts';
import { GCS_LAKE_CAPABILITIES } from '../../backends/capabilities.ts';
import { parseGcsUri } from '../../backends/gcs-uri.ts';

export { parseGcsUri } from '../../backends/gcs-uri.ts';
import { throwIfStopped, untilStopped } from '../../util/abort.ts';

/** Above this, uploads are resumable. */
export const RESUMABLE_THRESHOLD = 8 * 1024 * 1024;
/** Resumable chunk size: GCS requires a multiple of 256 KiB. */
export const CHUNK_SIZE = 32 * 256 * 1024;

/** A client for a GCS emulator such as fake-gcs-server: its URL, and no credentials. */
export function emulatorStorage(url: string): Storage {
  return new Storage({ apiEndpoint: url.replace(/\/+$/, ''), useAuthWithCustomEndpoint: false });
}

export class GcsLake implements Lake {
  readonly uri: string;
  readonly capabilities = GCS_LAKE_CAPABILITIES;
  private readonly bucket: Bucket;
  private readonly prefix: string;

  /** The run's stop: a file's upload is no longer waited for (an object appears whole or not at all). */
  private readonly signal: AbortSignal | undefined;

  constructor(uri: string, storage?: Storage, signal?: AbortSignal) {
    this.signal = signal;
    const { bucket, prefix } = parseGcsUri(uri);
    this.prefix = prefix;
    this.uri = `gs://${bucket}${prefix === '' ? '' : `/${prefix.slice(0, -1)}`}`;
    this.bucket = (storage ?? new Storage()).bucket(bucket);
  }

  uriOf(key: string): string {
    return `gs://${this.bucket.name}/${this.nameOf(key)}`;
  }

  /** The bucket's location (e.g. US, EU, EUROPE-WEST1), for the warehouse's colocation check. */
  /** Nothing to remove: an object appears whole or not at all (no temporaries). */
  removeStaleTemporaries(): Promise<number> {
    return Promise.resolve(0);
  }

  async location(): Promise<string> {
    const [metadata] = await this.call('reading the bucket', () => this.bucket.getMetadata());
    return String(metadata.location ?? '').toUpperCase();
  }

  async putFile(key: string, localPath: string, contentType: string): Promise<StoredObject> {
    throwIfStopped(this.signal);
    const { size } = await stat(localPath);
    return this.upload(
      key,
      () => crc32cOfFile(localPath),
      (file, generation) =>
        untilStopped(
          this.bucket.upload(localPath, {
            destination: file,
            resumable: size > RESUMABLE_THRESHOLD,
            chunkSize: CHUNK_SIZE,
            validation: 'crc32c',
            metadata: { contentType },
            preconditionOpts: { ifGenerationMatch: generation },
          }),
          this.signal,
        ).then(([uploaded]) => uploaded),
    );
  }

  async putText(
    key: string,
    text: string,
    contentType: string,
    precondition?: { ifGeneration: string },
  ): Promise<StoredObject> {
    const body = Buffer.from(text);
    return this.upload(
      key,
      () => Promise.resolve(crc32cOf(body)),
      async (file, seen) => {
        // The generation the caller read (a read-modify-write), else the one seen just now.
        const generation = precondition === undefined ? seen : Number(precondition.ifGeneration);
        await file.save(body, {
          resumable: false,
          validation: 'crc32c',
          contentType,
          preconditionOpts: { ifGenerationMatch: generation },
        });
        return file;
      },
    );
  }

  async getText(key: string): Promise<string | undefined> {
    const file = this.bucket.file(this.nameOf(key));
    try {
      const [body] = await file.download({ validation: 'crc32c' });
      return body.toString('utf8');
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw new LakeError(`reading ${this.uriOf(key)} failed: ${oneLine(error)}`, { cause: error });
    }
  }

  async getTextWithGeneration(key: string): Promise<{ text: string; generation: string } | undefined> {
    const file = this.bucket.file(this.nameOf(key));
    try {
      const [metadata] = await file.getMetadata();
      // That exact generation: the text and the generation returned belong together.
      const pinned = this.bucket.file(this.nameOf(key), { generation: Number(metadata.generation) });
      const [body] = await pinned.download({ validation: 'crc32c' });
      return { text: body.toString('utf8'), generation: String(metadata.generation) };
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw new LakeError(`reading ${this.uriOf(key)} failed: ${oneLine(error)}`, { cause: error });
    }
  }

  async sizeOf(key: string): Promise<number | undefined> {
    try {
      const [metadata] = await this.bucket.file(this.nameOf(key)).getMetadata();
      return Number(metadata.size);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw new LakeError(`reading ${this.uriOf(key)} failed: ${oneLine(error)}`, { cause: error });
    }
  }

  async getFile(key: string, localPath: string): Promise<void> {
    const file = this.bucket.file(this.nameOf(key));
    await this.call(`downloading ${this.uriOf(key)}`, () =>
      file.download({ destination: localPath, validation: 'crc32c' }),
    );
  }

  async list(prefix: string): Promise<string[]> {
    const [files] = await this.call(`listing ${this.uriOf(prefix)}`, () =>
      this.bucket.getFiles({ prefix: this.nameOf(prefix), autoPaginate: true }),
    );
    return files.map((file) => file.name.slice(this.prefix.length)).sort();
  }

  async delete(key: string): Promise<void> {
    await this.call(`deleting ${this.uriOf(key)}`, () =>
      this.bucket.file(this.nameOf(key)).delete({ ignoreNotFound: true }),
    );
  }

  private nameOf(key: string): string {
    if (key.split('/').some((part) => part === '..' || part === '.')) {
      throw new LakeError(`object key escapes the lake: ${key}`);
    }
    return `${this.prefix}${key}`;
  }

  /**
   * One upload under a generation precondition: the generation seen now (0: absent). On 412
   * the object changed after we looked: if it now holds exactly our bytes (same CRC32C), it
   * is our own attempt that landed before a retry; otherwise someone else wrote it.
   */
  private async upload(
    key: string,
    localCrc32c: () => Promise<string>,
    send: (file: File, generation: number) => Promise<File>,
  ): Promise<StoredObject> {
    const file = this.bucket.file(this.nameOf(key));
    const where = this.uriOf(key);
    const generation = await this.generationOf(file, where);
    try {
      const uploaded = await send(file, generation);
      const [metadata] = await uploaded.getMetadata();
      return { key, uri: where, generation: String(metadata.generation), crc32c: String(metadata.crc32c) };
    } catch (error) {
      if (statusOf(error) === 412) {
        const [metadata] = await this.call(`reading ${where}`, () => file.getMetadata());
        if (metadata.crc32c === (await localCrc32c())) {
          return {
            key,
            uri: where,
            generation: String(metadata.generation),
            crc32c: String(metadata.crc32c),
          };
        }
        throw new LakeError(
          `${where} was changed by another writer while this run wrote it (generation precondition failed)`,
          {
            cause: error,
          },
        );
      }
      throw new LakeError(`uploading ${where} failed: ${oneLine(error)}`, { cause: error });
    }
  }

  private async generationOf(file: File, where: string): Promise<number> {
    try {
      const [metadata] = await file.getMetadata();
      return Number(metadata.generation);
    } catch (error) {
      if (statusOf(error) === 404) return 0;
      throw new LakeError(`reading ${where} failed: ${oneLine(error)}`, { cause: error });
    }
  }

  private async call<T>(what: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      throw new LakeError(`${what} failed: ${oneLine(error)}`, { cause: error });
    }
  }
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

function crc32cOf(body: Buffer): string {
  const crc = new CRC32C();
  crc.update(body);
  return crc.toString();
}

async function crc32cOfFile(path: string): Promise<string> {
  const crc = new CRC32C();
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) crc.update(chunk);
  return crc.toString();
}
