/**
 * A run's scratch folder in the work dir, and the sweep of those that killed runs left behind.
 *
 * A run spools each week (the download, its numbered lines, the Parquet, DuckDB's spill) into
 * `<work dir>/mta-ingest-<run id>-p<pid>-XXXXXX` and removes it when it ends. A run that is
 * killed (SIGKILL, OOM, a node that vanished) cannot, and a week's spool is ~70 MB; so each run
 * begins by removing the folders whose run is dead: named with a PID that is no longer alive,
 * by a host of the same name (a `owner` file inside says which host). A folder of another host
 * (a work dir on a shared volume) is left alone: its PID means nothing here.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isOwnerAlive } from '../util/process-alive.ts';
import type { Logger } from '../log.ts';
import { UsageError } from '../errors.ts';
import { ENV } from '../config.ts';

const PREFIX = 'mta-ingest-';
/** `mta-ingest-<run id>-p<pid>-<mkdtemp's 6 characters>`. */
const NAME = /^mta-ingest-.+-p(\d+)-[A-Za-z0-9]{6}$/;
const OWNER_FILE = 'owner';
/**
 * A folder without its owner file was left by a run killed between creating it and writing the
 * file, or is not one of ours: it is removed only once it is this old and its PID is dead.
 */
const UNOWNED_GRACE_MS = 10 * 60_000;

export async function createWorkDir(base: string, runId: string): Promise<string> {
  let dir: string;
  try {
    dir = await mkdtemp(join(base, `${PREFIX}${runId}-p${process.pid}-`));
  } catch (error) {
    // A work dir that is not there is a setting to fix (exit 2), not a failed week.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new UsageError(`the work dir ${base} is not a folder (--work-dir, ${ENV.workDir})`);
    }
    throw error;
  }
  LIVE.add(dir);
  await writeFile(join(dir, OWNER_FILE), `${hostname()}\n`);
  return dir;
}

/** Removes a run's scratch folder when the run ends. */
export async function removeWorkDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  LIVE.delete(dir);
}

/** The scratch folders of this process's runs that have not ended. */
const LIVE = new Set<string>();

/** Removes the scratch folders of dead runs in `base`; returns their names. */
export async function removeStaleWorkDirs(base: string, log: Logger): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(base, { withFileTypes: true });
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const pid = entry.isDirectory() ? NAME.exec(entry.name)?.[1] : undefined;
    const dir = join(base, entry.name);
    if (pid === undefined || isOwnerAlive(Number(pid), dir, LIVE)) continue;
    if (!(await leftHere(dir))) continue;
    try {
      await rm(dir, { recursive: true, force: true });
      removed.push(entry.name);
    } catch (error) {
      log.warn(
        { event: 'workdir.sweep.failed', dir, error: String(error) },
        'could not remove a stale spool',
      );
    }
  }
  if (removed.length > 0) {
    log.info({ event: 'workdir.swept', dirs: removed }, 'removed spool folders that killed runs left');
  }
  return removed;
}

/** Whether a dead PID's folder was left by a run on this host (so its PID is one of ours). */
async function leftHere(dir: string): Promise<boolean> {
  try {
    return (await readFile(join(dir, OWNER_FILE), 'utf8')).trim() === hostname();
  } catch {
    const info = await stat(dir).catch(() => undefined);
    return info !== undefined && Date.now() - info.mtimeMs > UNOWNED_GRACE_MS;
  }
}
