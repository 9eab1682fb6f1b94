/**
 * The worker's logger: pino, one event per line on stderr (stdout is kept for results). As JSON
 * (the default off a terminal), with the field names Cloud Logging reads (`severity`, `message`,
 * `time`); as text (the default on a terminal), one short line a person reads
 * (terminal/log-lines.ts), written between redraws of the live display so it never breaks it.
 */
import pino from 'pino';
import { textLogLine } from './terminal/log-lines.ts';

export type Logger = pino.Logger;
/** pino's levels, and `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

export function createLogger(
  level: LogLevel = 'info',
  destination: pino.DestinationStream = pino.destination(2),
): Logger {
  return pino(
    {
      level,
      messageKey: 'message',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      // Resident memory on every event: where a week's memory goes, visible in any log viewer.
      mixin: () => ({ rssMb: Math.round(process.memoryUsage.rss() / 1e6) }),
      formatters: { level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
    },
    destination,
  );
}

/** Runs a write of the log; the live display passes one that lifts its status line around it. */
export type AroundWrite = (write: () => void) => void;

/**
 * Where log lines go: file descriptor 2, synchronously (so a line is out before the display
 * redraws), as JSON or as text, each write wrapped by `around`.
 */
export function logDestination(
  format: LogFormat,
  around: AroundWrite = (write) => write(),
  sink: { write(text: string): unknown } = pino.destination({ fd: 2, sync: true }),
): pino.DestinationStream {
  return {
    write(line: string): void {
      const text = format === 'text' ? textLogLine(line) : line;
      around(() => void sink.write(text));
    },
  };
}

/** A logger that drops everything, for library use and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
