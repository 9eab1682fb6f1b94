/**
 * What can be checked about the local paths a run writes before anything is fetched: a work
 * dir or lake folder that is a file, missing (the work dir), or not writable, and a DuckDB
 * warehouse path that is a folder or a file that is not a DuckDB database. Each is a setting to
 * fix, so a UsageError (exit 2) naming the path, the setting and the cause, rather than a week
 * failed five times over as a network fault, or a run that dies at its first week's load.
 *
 * Writability is asked of the kernel with access(2) (W_OK), which creates nothing: it answers
 * EROFS on a read-only mount and EACCES for a user the mode bits refuse (root passes them, as it
 * does when it writes). A disk that fills up later is the week's failure (LocalResourceError).
 * GCS lakes and BigQuery warehouses have no local path: their access is checked when opened.
 */
import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { ENV } from '../config.ts';
import { UsageError } from '../errors.ts';
import { localPathOf } from '../backends/registry.ts';

/** DuckDB's file header: an 8-byte checksum, then the magic bytes "DUCK" (storage format). */
const DUCKDB_MAGIC = Buffer.from('DUCK', 'latin1');
const DUCKDB_MAGIC_AT = 8;

export async function preflight(config: Pick<Config, 'workDir' | 'lake' | 'warehouse'>): Promise<void> {
  const workDir = `the work dir ${config.workDir} (--work-dir, ${ENV.workDir})`;
  const { existing, info } = await nearestExisting(resolve(config.workDir));
  if (existing !== resolve(config.workDir) && info.isDirectory())
    throw new UsageError(`${workDir} does not exist`);
  await writableFolder(
    existing,
    info,
    existing === resolve(config.workDir) ? workDir : `${workDir}: ${existing}`,
  );

  const lake = localPathOf('lake', config.lake);
  if (lake !== undefined) await folderToBe(lake, `the lake ${config.lake} (--lake, ${ENV.lake})`);

  const warehouse = localPathOf('warehouse', config.warehouse);
  if (warehouse !== undefined)
    await duckdbFile(warehouse, `the warehouse ${config.warehouse} (--warehouse, ${ENV.warehouse})`);
}

/** A folder that exists or can be made: it, or its nearest existing ancestor, a writable folder. */
async function folderToBe(path: string, setting: string): Promise<void> {
  const { existing, info } = await nearestExisting(resolve(path));
  await writableFolder(existing, info, existing === resolve(path) ? setting : `${setting}: ${existing}`);
}

async function duckdbFile(path: string, setting: string): Promise<void> {
  const file = resolve(path);
  const info = await statOf(file);
  if (info === undefined) return folderToBe(dirname(file), setting);
  if (info.isDirectory()) throw new UsageError(`${setting} is a folder, not a DuckDB database file`);
  const header = Buffer.alloc(DUCKDB_MAGIC_AT + DUCKDB_MAGIC.length);
  const handle = await open(file, 'r').catch((error: unknown) => {
    throw new UsageError(`${setting} cannot be read: ${causeOf(error)}`);
  });
  try {
    await handle.read(header, 0, header.length, 0);
  } finally {
    await handle.close();
  }
  if (!header.subarray(DUCKDB_MAGIC_AT).equals(DUCKDB_MAGIC)) {
    throw new UsageError(`${setting} is not a DuckDB database (no DuckDB header in its first bytes)`);
  }
  // DuckDB writes the file and a write-ahead log beside it.
  await writable(file, setting);
  await writable(dirname(file), `${setting}: its folder ${dirname(file)}`);
}

async function writableFolder(
  path: string,
  info: Awaited<ReturnType<typeof stat>>,
  setting: string,
): Promise<void> {
  if (!info.isDirectory()) throw new UsageError(`${setting} is a file, not a folder`);
  await writable(path, setting);
}

async function writable(path: string, setting: string): Promise<void> {
  try {
    await access(path, constants.W_OK);
  } catch (error) {
    throw new UsageError(`${setting} is not writable: ${causeOf(error)}`);
  }
}

async function nearestExisting(
  path: string,
): Promise<{ existing: string; info: Awaited<ReturnType<typeof stat>> }> {
  for (let at = path; ; at = dirname(at)) {
    const info = await statOf(at);
    if (info !== undefined) return { existing: at, info };
    if (dirname(at) === at) throw new UsageError(`no folder of ${path} exists`);
  }
}

/** The path's stat; undefined when nothing is there, or a file stands where a folder should. */
async function statOf(path: string): Promise<Awaited<ReturnType<typeof stat>> | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new UsageError(`${path} cannot be checked: ${causeOf(error)}`);
  }
}

/** "read-only file system (EROFS)": the OS's words for an errno, without Node's call and path. */
function causeOf(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  const words = /^[A-Z]+: ([^,]+)/.exec(message)?.[1] ?? message;
  return code ? `${words} (${code})` : words;
}
