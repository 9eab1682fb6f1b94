/**
 * An in-memory Lake (src/lake/lake.ts) for tests that exercise the week decision and the week
 * store without a disk or a GCS emulator: objects are byte arrays in a Map, each with a
 * generation that grows on every write, and `putText` honours its `ifGeneration` precondition as
 * GCS does ('0': the object must not exist; otherwise it must still have that generation), so a
 * concurrent writer's manifest is refused, never overwritten.
 *
 * Tests reach behind the port with `objects`, `writes` and the `beforeWrite` hook (to play
 * another run writing between this run's read and its write).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { LakeError } from '../../../src/errors.ts';
import type { Lake, LakeCapabilities, StoredObject } from '../../../src/lake/lake.ts';

export interface MemoryObject {
  bytes: Buffer;
  contentType: string;
  generation: number;
}

export class MemoryLake implements Lake {
  readonly uri: string;
  /** Writes are whole Map entries: nothing is left behind, and there is no location. */
  readonly capabilities: LakeCapabilities = { scheme: 'mem', leavesTemporaries: false, knowsLocation: false };
  /** Every object by key; tests may read, damage or delete them directly. */
  readonly objects = new Map<string, MemoryObject>();
  /** Keys in the order they were written (putFile and putText), refused writes excluded. */
  readonly writes: string[] = [];
  /** Called before each putText, e.g. to write another run's manifest in between. Once per set. */
  beforeWrite: ((key: string) => Promise<void> | void) | undefined;
  private nextGeneration = 1;

  constructor(uri = 'mem://lake') {
    this.uri = uri;
  }

  location(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  removeStaleTemporaries(): Promise<number> {
    return Promise.resolve(0);
  }

  uriOf(key: string): string {
    return `${this.uri}/${key}`;
  }

  async putFile(key: string, localPath: string, contentType: string): Promise<StoredObject> {
    return this.store(key, await readFile(localPath), contentType);
  }

  async putText(
    key: string,
    text: string,
    contentType: string,
    precondition?: { ifGeneration: string },
  ): Promise<StoredObject> {
    const hook = this.beforeWrite;
    if (hook !== undefined) {
      this.beforeWrite = undefined;
      await hook(key);
    }
    if (precondition !== undefined) {
      const now = this.objects.get(key);
      const held = now === undefined ? '0' : String(now.generation);
      if (held !== precondition.ifGeneration) {
        throw new LakeError(
          `${this.uriOf(key)} changed since it was read (generation ${held}, expected ${precondition.ifGeneration})`,
        );
      }
    }
    return this.store(key, Buffer.from(text, 'utf8'), contentType);
  }

  getText(key: string): Promise<string | undefined> {
    return Promise.resolve(this.objects.get(key)?.bytes.toString('utf8'));
  }

  getTextWithGeneration(key: string): Promise<{ text: string; generation: string } | undefined> {
    const object = this.objects.get(key);
    return Promise.resolve(
      object === undefined
        ? undefined
        : { text: object.bytes.toString('utf8'), generation: String(object.generation) },
    );
  }

  sizeOf(key: string): Promise<number | undefined> {
    return Promise.resolve(this.objects.get(key)?.bytes.length);
  }

  async getFile(key: string, localPath: string): Promise<void> {
    const object = this.objects.get(key);
    if (object === undefined) throw new LakeError(`${this.uriOf(key)} does not exist`);
    await writeFile(localPath, object.bytes);
  }

  list(prefix: string): Promise<string[]> {
    return Promise.resolve([...this.objects.keys()].filter((key) => key.startsWith(prefix)).sort());
  }

  delete(key: string): Promise<void> {
    this.objects.delete(key);
    return Promise.resolve();
  }

  /** Writes an object as another process would (no precondition), e.g. a concurrent run's manifest. */
  putRaw(key: string, text: string): StoredObject {
    return this.store(key, Buffer.from(text, 'utf8'), 'application/json');
  }

  private store(key: string, bytes: Buffer, contentType: string): StoredObject {
    const generation = this.nextGeneration++;
    this.objects.set(key, { bytes, contentType, generation });
    this.writes.push(key);
    return { key, uri: this.uriOf(key), generation: String(generation) };
  }
}
