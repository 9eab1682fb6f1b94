/**
 * The lake as a local folder. Each object is written to a temporary name beside its final
 * one, flushed to disk, and renamed into place, so a crash leaves the old object or the new
 * one, and at worst a `.tmp-` file. The temporary's name carries the writer's PID
 * (`<name>.tmp-p<pid>-<random>`), so a temporary is removed only once its writer is dead: by
 * the next write of that key, or when a run begins the week (`removeStaleTemporaries`), even
 * if that run then writes nothing. A live writer's temporary is never touched.
 */
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
import { LakeError, oneLine } from '../../errors.ts';
import type { Lake, StoredObject } from '../lake.ts';
import { LOCAL_LAKE_CAPABILITIES } from '../../backends/capabilities.ts';
import { isOwnerAlive } from '../../util/process-alive.ts';
import { throwIfStopped } from '../../util/abort.ts';

const TEMP_MARK = '.tmp-';
/** `p<pid>-<hex>` after TEMP_MARK; a temporary without a PID predates this and has no owner. */
const TEMP_OWNER = /^p(\d+)-[0-9a-f]+$/;

export class LocalLake implements Lake {
  readonly uri: string;
  readonly capabilities = LOCAL_LAKE_CAPABILITIES;
  private readonly root: string;

  /** The run's stop: a file's copy stops before it is renamed into place (temporary removed). */
  private readonly signal: AbortSignal | undefined;

  constructor(root: string, signal?: AbortSignal) {
    this.root = resolve(root);
    this.uri = pathToFileURL(this.root).href;
    this.signal = signal;
  }

  uriOf(key: string): string {
    return pathToFileURL(this.pathOf(key)).href;
  }

  async putFile(key: string, localPath: string): Promise<StoredObject> {
    return this.atomicWrite(key, async (temp) => {
      throwIfStopped(this.signal);
      await copyFile(localPath, temp);
      throwIfStopped(this.signal);
    });
  }

  /**
   * A folder has no generations: the precondition compares the content's hash just before the
   * rename. That leaves a window of microseconds, which only matters for two writers of one
   * week at once; on a local lake those are serialised by the DuckDB warehouse's file lock.
   */
  async putText(
    key: string,
    text: string,
    _contentType?: string,
    precondition?: { ifGeneration: string },
  ): Promise<StoredObject> {
    const stored = await this.atomicWrite(key, async (temp) => {
      await writeFile(temp, text);
      if (precondition === undefined) return;
      const now = (await this.getTextWithGeneration(key))?.generation ?? '0';
      if (now !== precondition.ifGeneration) {
        throw new Error(`it was changed by another writer since it was read (precondition failed)`);
      }
    });
    return { ...stored, generation: contentGeneration(text) };
  }

  async getTextWithGeneration(key: string): Promise<{ text: string; generation: string } | undefined> {
    const text = await this.getText(key);
    return text === undefined ? undefined : { text, generation: contentGeneration(text) };
  }

  async sizeOf(key: string): Promise<number | undefined> {
    try {
      return (await stat(this.pathOf(key))).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new LakeError(`reading ${this.uriOf(key)} failed: ${oneLine(error)}`, { cause: error });
    }
  }

  async getText(key: string): Promise<string | undefined> {
    try {
      return await readFile(this.pathOf(key), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new LakeError(`reading ${this.uriOf(key)} failed: ${oneLine(error)}`, { cause: error });
    }
  }

  async getFile(key: string, localPath: string): Promise<void> {
    try {
      await copyFile(this.pathOf(key), localPath);
    } catch (error) {
      throw new LakeError(`copying ${this.uriOf(key)} failed: ${oneLine(error)}`, { cause: error });
    }
  }

  async list(prefix: string): Promise<string[]> {
    const base = this.pathOf(prefix.endsWith('/') ? prefix : dirname(prefix));
    let entries;
    try {
      entries = await readdir(base, { recursive: true, withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new LakeError(`listing ${this.uriOf(prefix)} failed: ${oneLine(error)}`, { cause: error });
    }
    return entries
      .filter((entry) => entry.isFile())
      .map((entry) => relative(this.root, join(entry.parentPath, entry.name)).split(sep).join('/'))
      .filter((key) => key.startsWith(prefix) && !key.includes(TEMP_MARK))
      .sort();
  }

  /** A folder on this machine has no location to colocate with. */
  location(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  /**
   * Removes what killed writers left beside these keys; returns how many. Keys whose folder
   * does not exist have nothing to remove.
   */
  async removeStaleTemporaries(keys: readonly string[]): Promise<number> {
    let removed = 0;
    for (const key of keys) {
      try {
        // A key ending in '/' is a folder (a week's kept versions): every temporary below it.
        removed += key.endsWith('/')
          ? await removeStaleTempsUnder(this.pathOf(key.slice(0, -1)))
          : await removeStaleTemps(this.pathOf(key));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new LakeError(`cleaning up beside ${this.uriOf(key)} failed: ${oneLine(error)}`, {
          cause: error,
        });
      }
    }
    return removed;
  }

  async delete(key: string): Promise<void> {
    try {
      await rm(this.pathOf(key), { force: true });
    } catch (error) {
      throw new LakeError(`deleting ${this.uriOf(key)} failed: ${oneLine(error)}`, { cause: error });
    }
  }

  private pathOf(key: string): string {
    const path = resolve(this.root, ...key.split('/'));
    // An object is a file strictly inside the root: '' or 'a/..' would name the root itself.
    if (!path.startsWith(this.root + sep)) {
      throw new LakeError(`object key escapes the lake: ${key}`);
    }
    return path;
  }

  private async atomicWrite(key: string, write: (tempPath: string) => Promise<void>): Promise<StoredObject> {
    const path = this.pathOf(key);
    const temp = `${path}${TEMP_MARK}p${process.pid}-${randomBytes(6).toString('hex')}`;
    WRITING.add(temp);
    try {
      await mkdir(dirname(path), { recursive: true });
      await removeStaleTemps(path);
      await write(temp);
      await fsync(temp);
      await rename(temp, path);
      await fsync(dirname(path));
      return { key, uri: this.uriOf(key) };
    } catch (error) {
      await rm(temp, { force: true });
      throw new LakeError(`writing ${this.uriOf(key)} failed: ${oneLine(error)}`, { cause: error });
    } finally {
      WRITING.delete(temp);
    }
  }
}

/** A local object's "generation": its content's hash (a folder keeps no generations). */
function contentGeneration(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** The temporaries this process is writing now (of any LocalLake instance). */
const WRITING = new Set<string>();

/**
 * Temporaries a killed run left beside this object: those whose writer is no longer alive, and
 * those without an owner (written before temporaries named one). Returns how many it removed.
 */
async function removeStaleTemps(path: string): Promise<number> {
  const name = path.slice(dirname(path).length + 1);
  let removed = 0;
  for (const entry of await readdir(dirname(path))) {
    if (!entry.startsWith(`${name}${TEMP_MARK}`)) continue;
    const owner = TEMP_OWNER.exec(entry.slice(name.length + TEMP_MARK.length))?.[1];
    const temp = join(dirname(path), entry);
    if (owner !== undefined && isOwnerAlive(Number(owner), temp, WRITING)) continue;
    await rm(temp, { force: true });
    removed += 1;
  }
  return removed;
}

/** Temporaries a killed run left anywhere below a folder (each beside the object it wrote). */
async function removeStaleTempsUnder(folder: string): Promise<number> {
  let removed = 0;
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
    const at = entry.name.indexOf(TEMP_MARK);
    if (!entry.isFile() || at <= 0) continue;
    removed += await removeStaleTemps(join(entry.parentPath, entry.name.slice(0, at)));
  }
  return removed;
}

async function fsync(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
