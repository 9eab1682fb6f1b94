/**
 * Server binaries for tests (fake-gcs.ts, pushgateway.ts), run as child processes that cannot outlive
 * the test process.
 *
 * A server is started through a small `sh` watchdog that holds a pipe from this process and kills
 * the server when the pipe closes, so it cannot outlive the test process even when that process is
 * SIGKILLed (vitest SIGTERMs, then SIGKILLs, its fork workers, and neither runs 'exit' handlers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Closures, not methods: they can be passed around detached (`const { stop } = server`). */
export interface WatchedProcess {
  /** The tail of the server's stdout and stderr, interleaved as they arrived. */
  readonly output: () => string;
  /**
   * undefined while the watchdog runs; then its exit code (the server's status), -1 if it was killed
   * by a signal or could not be spawned.
   */
  readonly exitCode: () => number | null | undefined;
  /**
   * Close the watchdog's pipe (which terminates the server) and wait until it has exited, killing the
   * whole process group if that takes longer than STOP_TIMEOUT_MS. Idempotent.
   */
  readonly stop: () => Promise<void>;
}

const STOP_TIMEOUT_MS = 5_000;
/** How much of the server's output to keep for error messages. */
const OUTPUT_TAIL = 16 * 1024;

/**
 * Runs "$@" (the server) in the background, and a watcher that blocks reading the shell's stdin (kept
 * on fd 3: a background job's own stdin would be /dev/null), a pipe whose only writer is the test
 * process. EOF means stop() closed it or the test process died, and the watcher then terminates the
 * server. The shell waits for the server and exits with its status, so it exits when the server does,
 * for whatever reason (the watcher's `cat`, left behind in the process group, is killed by the caller).
 */
const WATCHDOG = `exec 3<&0 </dev/null
"$@" 3<&- &
server=$!
(cat <&3 >/dev/null; kill -TERM "$server" 2>/dev/null) &
exec 3<&-
wait "$server"`;

/** A port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not get a free port');
  return address.port;
}

/**
 * Starts a server on a free port, trying again (three times in all) when another process took
 * the port between freePort() and the server's bind: `start` rejects with an error whose
 * message says "address already in use" then.
 */
export async function startOnFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await start(await freePort());
    } catch (error) {
      lastError = error;
      if (!(error instanceof Error && /address already in use/i.test(error.message))) throw error;
    }
  }
  throw lastError;
}

/**
 * Polls `probe` (true when ready, else what it saw) until it says ready. Gives up when the
 * server exits or `timeoutMs` passes, with an error naming the last thing seen and `describe()`
 * (the command and the server's output).
 */
export async function waitUntilReady(ready: {
  label: string;
  url: string;
  server: Pick<WatchedProcess, 'exitCode'>;
  probe: () => Promise<true | string>;
  describe: () => string;
  timeoutMs: number;
  intervalMs?: number;
}): Promise<void> {
  const deadline = Date.now() + ready.timeoutMs;
  let lastProblem = 'no answer yet';
  while (ready.server.exitCode() === undefined && Date.now() <= deadline) {
    try {
      const answer = await ready.probe();
      if (answer === true) return;
      lastProblem = answer;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    await sleep(ready.intervalMs ?? 50);
  }
  if (ready.server.exitCode() !== undefined) {
    throw new Error(`${ready.label} did not start: ${ready.describe()}`);
  }
  throw new Error(
    `${ready.label} did not get ready at ${ready.url} within ${ready.timeoutMs} ms (${lastProblem}): ${ready.describe()}`,
  );
}

/** Live servers, killed (whole process group) if this process exits without stopping them. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    // detached: the watchdog leads its own process group, which the server shares.
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: already gone.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) killGroup(child, 'SIGKILL');
  });
}

/**
 * Start `binary args...` under the watchdog. `label` names the watchdog shell (`<label>-watchdog`,
 * its $0, as seen in ps). Readiness is the caller's business; on failure it must call stop().
 */
export function startWatched(label: string, binary: string, args: string[]): WatchedProcess {
  const child = spawn('/bin/sh', ['-c', WATCHDOG, `${label}-watchdog`, binary, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  live.add(child);
  installExitHook();

  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  // Do not keep the test process alive for the server: stop() (or exit) ends it.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    (stream as unknown as { unref?: () => void }).unref?.();
  }
  // The pipe's read end can be gone when the server already died: ignore EPIPE.
  child.stdin.on('error', () => {});

  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
      live.delete(child);
      // The server was the watchdog's only other group member; make sure of it.
      killGroup(child, 'SIGKILL');
      resolve();
    });
    child.once('error', (error) => {
      collect(Buffer.from(`spawn failed: ${error.message}\n`));
      exitCode = -1;
      live.delete(child);
      resolve();
    });
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitCode === undefined) {
        child.stdin.end();
        const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS, true)]);
        if (timedOut) {
          killGroup(child, 'SIGKILL');
          await exited;
        }
      }
    })();
    return stopping;
  };

  return { output: () => output, exitCode: () => exitCode, stop };
}
