/**
 * SIGINT and SIGTERM for the whole command line, in one place. The first signal aborts the
 * AbortSignal every command is given: the core stops waiting wherever it is (download, DuckDB
 * query, lock wait, upload, BigQuery job, Prefect call), rolls back what it had begun, reports
 * the week `interrupted` and the weeks not begun `skipped`, and the CLI exits 130 (SIGINT) or
 * 143 (SIGTERM). Orchestrators send SIGTERM and kill a few seconds later (Docker 10 s, Cloud Run
 * 10 s, Kubernetes 30 s by default), so the stop is bounded: a second signal, or STOP_GRACE_MS
 * passing, exits at once with the same code. Nothing is half-written even then: lake writes are
 * atomic and a warehouse load is one transaction (or one BigQuery job).
 *
 * The handlers also matter as PID 1 (a container without an init): the kernel delivers no
 * default-action signal to PID 1, so without a handler a container's SIGTERM does nothing.
 */
import { ExitCode } from './errors.ts';
import { interruptEveryConnection } from './duckdb/stoppable.ts';

/** From the first signal to the hard exit, if the clean stop has not ended the process yet. */
export const STOP_GRACE_MS = 2500;

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
type StopSignal = (typeof SIGNALS)[number];

export interface ProcessStop {
  /** Aborted by the first signal, with the reason `interrupted by SIGINT|SIGTERM`. */
  readonly signal: AbortSignal;
  /** 130 or 143 once a signal came, else undefined. */
  exitCode(): ExitCode | undefined;
  /** Takes the handlers off again (the command has ended). */
  dispose(): void;
}

export interface ProcessStopOptions {
  /** One line for a person (stderr), e.g. that the stop began or that it is being forced. */
  say: (line: string) => void;
  graceMs?: number;
  /** How to end the process hard (tests of this module replace it). */
  exit?: (code: number) => void;
}

export function exitCodeOfSignal(signal: StopSignal): ExitCode {
  return signal === 'SIGINT' ? ExitCode.interruptedBySigint : ExitCode.interruptedBySigterm;
}

export function installProcessStop(options: ProcessStopOptions): ProcessStop {
  const controller = new AbortController();
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const graceMs = options.graceMs ?? STOP_GRACE_MS;
  let first: StopSignal | undefined;
  let timer: NodeJS.Timeout | undefined;
  const forced = (why: string): void => {
    options.say(`${why}: exiting now`);
    interruptEveryConnection();
    exit(exitCodeOfSignal(first ?? 'SIGTERM'));
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (first !== undefined) {
      forced(`${signal} again while stopping`);
      return;
    }
    first = signal === 'SIGINT' ? 'SIGINT' : 'SIGTERM';
    options.say(`${signal}: stopping (weeks not done are reported; a second signal exits at once)`);
    controller.abort(new Error(`interrupted by ${first}`));
    // Unref'd: a stop that ends cleanly exits as soon as the work is done, not after the grace.
    timer = setTimeout(() => forced(`still stopping ${graceMs / 1000} s after ${first}`), graceMs);
    timer.unref();
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  return {
    signal: controller.signal,
    exitCode: () => (first === undefined ? undefined : exitCodeOfSignal(first)),
    dispose() {
      for (const signal of SIGNALS) process.off(signal, onSignal);
      clearTimeout(timer);
    },
  };
}
