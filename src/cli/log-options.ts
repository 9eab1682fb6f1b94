/**
 * A command's logger, as its flags, the environment (settings table: logLevel, logFormat) and
 * where stderr goes decide: a person at a terminal gets short text lines, a scheduler or a log
 * collector JSON lines. No block field: the logger exists before any block is read.
 */
import { UsageError } from '../errors.ts';
import {
  LOG_FORMATS,
  LOG_LEVELS,
  createLogger,
  logDestination,
  type AroundWrite,
  type LogFormat,
  type LogLevel,
  type Logger,
} from '../log.ts';
import { settingNamed } from '../settings/settings-table.ts';
import type { CliIo } from './io.ts';

export interface LogFlags {
  logLevel?: string | undefined;
  logFormat?: string | undefined;
}

export interface LogOptions {
  level: LogLevel;
  format: LogFormat;
}

/** Flag, then variable, then the command's default (a flag's value commander has checked). */
export function logOptionsOf(
  flags: LogFlags,
  env: Record<string, string | undefined>,
  stderrIsTty: boolean,
  defaultLevel: LogLevel,
): LogOptions {
  return {
    level: (flags.logLevel ?? fromEnv('logLevel', LOG_LEVELS, env) ?? defaultLevel) as LogLevel,
    format: (flags.logFormat ??
      fromEnv('logFormat', LOG_FORMATS, env) ??
      (stderrIsTty ? 'text' : 'json')) as LogFormat,
  };
}

function fromEnv(
  name: 'logLevel' | 'logFormat',
  allowed: readonly string[],
  env: Record<string, string | undefined>,
): string | undefined {
  const variable = settingNamed(name).env;
  const value = env[variable]?.trim();
  if (value === undefined || value === '') return undefined;
  if (!allowed.includes(value)) {
    throw new UsageError(`${variable} ${value}: expected one of ${allowed.join(', ')}`);
  }
  return value;
}

/**
 * The logger of a command run from the command line; `around` is the live display's, so that a
 * line is written above its status line rather than onto it.
 */
export function commandLogger(
  flags: LogFlags,
  io: CliIo,
  defaultLevel: LogLevel,
  around?: AroundWrite,
): Logger {
  const { level, format } = logOptionsOf(flags, io.env, io.stderr.isTTY === true, defaultLevel);
  return createLogger(level, logDestination(format, around));
}
