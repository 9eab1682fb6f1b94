/**
 * Whether a process on this machine is still running, for telling a killed run's leftovers
 * (temporaries, spool folders) from a live run's. Signal 0 checks without signalling: ESRCH
 * means no such process; EPERM means one exists that belongs to someone else (alive).
 *
 * A PID can be reused after its process dies; then a leftover looks alive and is kept, which
 * is the safe mistake (it is removed once that process ends too).
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the process that named `path` with its PID is still at work on it. A path with this
 * process's own PID is alive only if this process has it in hand (`ownLive`): in a container
 * every run is PID 1, so what a killed earlier run left carries this run's PID.
 */
export function isOwnerAlive(pid: number, path: string, ownLive: ReadonlySet<string>): boolean {
  return pid === process.pid ? ownLive.has(path) : isProcessAlive(pid);
}
