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
