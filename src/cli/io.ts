/**
 * What the command line is given instead of reaching for the process: where results and
 * refusals go, the environment and the working directory. `main` (cli.ts) takes one; tests pass
 * their own, the executable passes the process's. (Logs go straight to file descriptor 2,
 * log.ts, as text or JSON lines by whether `stderr` is a terminal; signals are the process's,
 * process-stop.ts.)
 */
import type { DisplayStream } from '../terminal/run-display.ts';
import type { ProcessStop } from '../process-stop.ts';

export interface CliIo {
  /** Results: a command's output, the run's week lines. */
  stdout: DisplayStream;
  /** Refusals and problems, one `mta-ingest:` line each. */
  stderr: { write(text: string): unknown; isTTY?: boolean };
  env: Record<string, string | undefined>;
  cwd: string;
}

/** The process's own streams, environment and working directory. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

/** What an action is handed: the io, its two ways of printing, and the process's stop. */
export interface CliContext {
  io: CliIo;
  /** One result line (or block) on stdout. */
  out: (text: string) => void;
  /** One `mta-ingest:` line on stderr. */
  err: (text: string) => void;
  stop: ProcessStop;
  /** A command's work, no longer waited for once the process is stopped. */
  until: <T>(work: Promise<T>) => Promise<T>;
}

/**
 * An action's outcome: the exit code its result decides (a run's weeks, verify's drift), or
 * nothing for "ok"; main turns it, and any error, into the process's exit code.
 */
export type ActionResult = number | void;
