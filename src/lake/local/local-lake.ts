/**
 * The lake as a local folder. Each object is written to a temporary name beside its final
 * one, flushed to disk, and renamed into place, so a crash leaves the old object or the new
 * one, and at worst a `.tmp-` file that the next write of that key sweeps away.
 */
import { copyFile, mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { LakeError, oneLine } from '../../errors.ts';
import type { Lake, StoredObject } from '../lake.ts';

const TEMP_MARK = '.tmp-';

export class LocalLake implements Lake {
  readonly uri: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.uri = pathToFileURL(this.root).href;
  }

  uriOf(key: string): string {
    return pathToFileURL(this.pathOf(key)).href;
  }

  async putFile(key: string, localPath: string): Promise<StoredObject> {
    return this.atomicWrite(key, (temp) => copyFile(localPath, temp));
  }

  async putText(key: string, text: string): Promise<StoredObject> {
    return this.atomicWrite(key, (temp) => writeFile(temp, text));
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
    const temp = `${path}${TEMP_MARK}${randomBytes(6).toString('hex')}`;
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
    }
  }
}

/** Temporaries a killed run left beside this object. */
async function removeStaleTemps(path: string): Promise<void> {
  const name = path.slice(dirname(path).length + 1);
  for (const entry of await readdir(dirname(path))) {
    if (entry.startsWith(`${name}${TEMP_MARK}`)) await rm(join(dirname(path), entry), { force: true });
  }
}

async function fsync(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
