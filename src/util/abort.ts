/**
 * Stopping on a signal, for the core: the CLI turns SIGINT/SIGTERM into an aborted
 * AbortSignal (src/process-stop.ts) whose reason reads `interrupted by SIGTERM`; the core
 * passes it down and stops waiting wherever it waits (a download, a DuckDB query, a lock, a
 * BigQuery job, an upload), so a run ends within seconds with a line for every week.
 */

/** Thrown where work stops because the run was stopped; its message is the signal's reason. */
export class StoppedError extends Error {
  constructor(signal: AbortSignal) {
    super(reasonOf(signal));
    this.name = 'StoppedError';
  }
}

/** The stop's reason as one line, e.g. `interrupted by SIGTERM`. */
export function reasonOf(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason.message;
  return typeof reason === 'string' ? reason : 'interrupted';
}

/** Throws a StoppedError once the signal is aborted (a point where work may not begin). */
export function throwIfStopped(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StoppedError(signal);
}

/**
 * `work`, or a StoppedError as soon as the signal aborts, whichever comes first. For calls
 * that cannot be cancelled themselves (a client library's request): the caller stops waiting,
 * and what the call does after that is bounded by the process's exit. Only for work whose
 * late completion is harmless (an atomic write, a read).
 */
export function untilStopped<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(new StoppedError(signal));
  }
  let stop: () => void = () => undefined;
  const stopped = new Promise<never>((_, reject) => {
    stop = () => reject(new StoppedError(signal));
    signal.addEventListener('abort', stop, { once: true });
  });
  return Promise.race([work, stopped]).finally(() => signal.removeEventListener('abort', stop));
}

/** Waits `ms`, or rejects with a StoppedError as soon as the signal aborts. */
export function sleepUnlessStopped(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return untilStopped(
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener('abort', () => clearTimeout(timer), { once: true });
    }),
    signal,
  );
}
