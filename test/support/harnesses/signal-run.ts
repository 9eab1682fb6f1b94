/**
 * The real CLI as a child process, to be stopped with a signal at a point it reached: its JSON
 * log lines (stderr) are read as they come, `until` waits for one, and `stop` sends the signal
 * and measures from the signal to the process's exit. Never timed by sleeps: the signal goes
 * when the worker has logged (or a server has seen) what it is doing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { CLI } from './cli.ts';

export interface LogEvent {
  event?: string;
  dropDate?: string;
  [field: string]: unknown;
}

export interface Stopped {
  code: number | null;
  /** Set when the process died of the signal instead of handling it. */
  signal: NodeJS.Signals | null;
  /** From the signal to the process's exit. */
  ms: number;
  stdout: string;
  stderr: string;
  events: LogEvent[];
}

export interface SignalRun {
  readonly child: ChildProcess;
  readonly events: LogEvent[];
  /** Resolves with the first log event (past or future) `match` accepts; rejects if the process ends first. */
  until(match: (event: LogEvent) => boolean): Promise<LogEvent>;
  /** Sends `signal` to `pid` (default the child) and resolves once the child has exited. */
  stop(signal: NodeJS.Signals, pid?: number): Promise<Stopped>;
  /** Resolves when the child exits by itself. */
  exited(): Promise<Stopped>;
}

/** `node src/cli.ts ...args`, or `command ...prefix node src/cli.ts ...args` (e.g. unshare). */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
  wrapper: string[] = [],
): SignalRun {
  const argv = [process.execPath, CLI, ...args];
  const [command, ...rest] = wrapper.length > 0 ? [...wrapper, ...argv] : argv;
  const child = spawn(command!, rest, {
    env: { ...process.env, MTA_INGEST_FETCH_BACKOFF_MS: '10', MTA_INGEST_ACCEPT: 'all', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: LogEvent[] = [];
  const waiters: { match: (e: LogEvent) => boolean; resolve: (e: LogEvent) => void }[] = [];
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  const lines = createInterface({ input: child.stderr });
  lines.on('line', (line) => {
    stderr += `${line}\n`;
    let event: LogEvent;
    try {
      event = JSON.parse(line) as LogEvent;
      events.push(event);
    } catch {
      // A plain line (process-stop.ts's `SIGINT: stopping …`): waiters can match it as the
      // pseudo-event `stderr.line`; it is not a log event.
      event = { event: 'stderr.line', message: line };
    }
    for (const waiter of [...waiters]) {
      if (!waiter.match(event)) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(event);
    }
  });
  let signalledAt = 0;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  const done = Promise.all([
    exit,
    new Promise<void>((resolve) => child.stdout.once('close', () => resolve())),
    new Promise<void>((resolve) => lines.once('close', () => resolve())),
  ]).then(([{ code, signal, at }]): Stopped => ({
    code,
    signal,
    ms: signalledAt === 0 ? 0 : at - signalledAt,
    stdout,
    stderr,
    events,
  }));
  return {
    child,
    events,
    until(match) {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise<LogEvent>((resolve, reject) => {
        waiters.push({ match, resolve });
        void exit.then(() =>
          reject(new Error(`the CLI exited before the awaited event; stderr:\n${stderr.slice(-3000)}`)),
        );
      });
    },
    stop(signal, pid) {
      signalledAt = performance.now();
      process.kill(pid ?? child.pid!, signal);
      return done;
    },
    exited: () => done,
  };
}

/** `event` (for `dropDate`, when given). */
export const at =
  (event: string, dropDate?: string) =>
  (e: LogEvent): boolean =>
    e.event === event && (dropDate === undefined || e.dropDate === dropDate);

/**
 * An HTTP server that takes requests and never answers them: a hung GCS, BigQuery or Prefect
 * endpoint. `requested` resolves at its first request.
 */
export interface SilentServer {
  readonly url: string;
  readonly requested: Promise<void>;
  close(): Promise<void>;
}

export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let first: () => void = () => undefined;
  const requested = new Promise<void>((resolve) => (first = resolve));
  const server: Server = createServer(() => first());
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requested,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The summary `run --json` prints: one line per selected week. */
export interface JsonSummary {
  weeks: {
    dropDate: string;
    outcome: string;
    failedStage?: string;
    detail?: string;
    advice?: string;
    rows?: number;
  }[];
  exitCode: number;
}

export function jsonSummary(stdout: string): JsonSummary {
  return JSON.parse(stdout) as JsonSummary;
}
