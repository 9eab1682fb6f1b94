/**
 * A DuckDB connection that stops with the run. When the signal aborts, the statement running
 * on the connection is interrupted (DuckDB checks for it while it executes: a 10x week's
 * conversion stops within milliseconds instead of running its 8.5 s out), and no new work may
 * start on it. An interrupted statement inside a transaction rolls the transaction back, so a
 * warehouse load is left as it was.
 *
 * DuckDB drops an interrupt that comes between two statements (it is reset when the next one
 * begins), which is why the connection also refuses new statements once stopped, rather than
 * relying on the interrupt alone. Statements that undo or release (ROLLBACK, DROP, DETACH,
 * switching the catalog back, restoring a setting: the thread count, the row order) still run:
 * a stop must leave things tidy.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { StoppedError } from '../util/abort.ts';

/** What a stopped connection still runs: statements that undo or release, never new work. */
const TIDYING =
  /^\s*(ROLLBACK|ABORT|DROP\s|DETACH\s|USE\s+memory\b|SET\s+(preserve_insertion_order|threads)\b)/i;

/** Every open connection of the process's engines, for the hard exit's last interrupt. */
const OPEN = new Set<DuckDBConnection>();

/** Counts `connection` among the open ones until it is closed (duckdb-engine.ts). */
export function track(connection: DuckDBConnection): () => void {
  OPEN.add(connection);
  return () => void OPEN.delete(connection);
}

/**
 * Interrupts whatever every open connection runs. For the hard exit (process-stop.ts): Node's
 * exit waits for a running DuckDB statement to finish (measured: a process.exit during a long
 * query took 16 s to end the process; after an interrupt, 30 ms).
 */
export function interruptEveryConnection(): void {
  for (const connection of OPEN) connection.interrupt();
}

/** Makes `connection` stop with `signal` (in place) and returns it. */
export function stopWith(connection: DuckDBConnection, signal: AbortSignal): DuckDBConnection {
  const run = connection.run.bind(connection);
  const runAndReadAll = connection.runAndReadAll.bind(connection);
  const refused = (sql: string): boolean => signal.aborted && !TIDYING.test(sql);
  const guarded: Pick<DuckDBConnection, 'run' | 'runAndReadAll'> = {
    run: (sql, ...rest) => (refused(sql) ? Promise.reject(new StoppedError(signal)) : run(sql, ...rest)),
    runAndReadAll: (sql, ...rest) =>
      refused(sql) ? Promise.reject(new StoppedError(signal)) : runAndReadAll(sql, ...rest),
  };
  Object.assign(connection, guarded);
  if (!signal.aborted) {
    const interrupt = (): void => connection.interrupt();
    signal.addEventListener('abort', interrupt, { once: true });
    // A week's connections are closed with its engine; the listener must not outlive them.
    const closeSync = connection.closeSync.bind(connection);
    Object.assign(connection, {
      closeSync: () => {
        signal.removeEventListener('abort', interrupt);
        closeSync();
      },
    });
  }
  return connection;
}
