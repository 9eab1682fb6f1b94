/**
 * Waiting for a DuckDB file that another process holds. DuckDB takes an OS lock on the file
 * for as long as a process has it attached, and refuses a second process at once ("Could not
 * set lock on file ... Conflicting lock is held in ... (PID n)"). Two runs started together
 * (a retry that overlaps a slow run, a scheduler and a person) should not fail for that: the
 * second waits for the first to let go, then carries on, and finds done what the first did.
 *
 * The wait is bounded: a process that holds the file longer than `waitMs` is stuck (or is
 * something else, such as a DuckDB shell left open), and the run fails with one line naming
 * the holder's PID.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { WarehouseBusyError, oneLine } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { DEFAULT_LOCK_WAIT_MS } from '../warehouse.ts';
import { sleepUnlessStopped, throwIfStopped } from '../../util/abort.ts';

/** First pause between attempts; doubles up to MAX_PAUSE_MS, so a short hold costs little. */
const FIRST_PAUSE_MS = 20;
const MAX_PAUSE_MS = 500;

export interface LockWait {
  file: string;
  log?: Logger | undefined;
  waitMs?: number | undefined;
  /** The run's stop: the wait ends at once (a wait of minutes would outlast any grace period). */
  signal?: AbortSignal | undefined;
}

/** DuckDB's refusal of a file another process holds, or undefined for any other error. */
export function lockHolder(error: unknown): { pid: string | undefined } | undefined {
  const message = oneLine(error);
  if (!/Could not set lock on file|Conflicting lock/i.test(message)) return undefined;
  return { pid: /\(PID (\d+)\)/.exec(message)?.[1] };
}

/** Runs `attach` until the file is free, or fails once `waitMs` has passed. */
export async function attachWaiting(db: DuckDBConnection, attach: string, wait: LockWait): Promise<void> {
  const waitMs = wait.waitMs ?? DEFAULT_LOCK_WAIT_MS;
  const started = Date.now();
  let waiting = false;
  for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(pause * 2, MAX_PAUSE_MS)) {
    throwIfStopped(wait.signal);
    try {
      await db.run(attach);
      if (waiting) {
        wait.log?.info(
          { event: 'warehouse.lock.acquired', file: wait.file, waitedMs: Date.now() - started },
          'the warehouse is free: carrying on',
        );
      }
      return;
    } catch (error) {
      const holder = lockHolder(error);
      if (!holder) throw error;
      const waited = Date.now() - started;
      if (waited >= waitMs) {
        throw new WarehouseBusyError(
          `the DuckDB warehouse ${wait.file} is still in use by another process (PID ${holder.pid ?? 'unknown'}) after waiting ${(waited / 1000).toFixed(1)} s: is a run stuck?`,
          { cause: error },
        );
      }
      if (!waiting) {
        waiting = true;
        wait.log?.info(
          { event: 'warehouse.lock.wait', file: wait.file, holderPid: holder.pid, waitMs },
          'the warehouse is in use by another process: waiting for it',
        );
      }
      await sleepUnlessStopped(Math.min(pause, Math.max(0, waitMs - waited)), wait.signal);
    }
  }
}
