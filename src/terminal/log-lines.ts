/**
 * A log event as a person reads it on a terminal: one short line, `warning 2023-06-03: fetch
 * attempt failed, retrying (attempt 2): connect ECONNREFUSED`, instead of the JSON object a log
 * collector wants. Only what says what happened and why; the full event is one
 * `--log-format json` away.
 */
import { oneLine } from '../errors.ts';

const LABEL: Record<string, string> = {
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warning',
  ERROR: 'error',
  CRITICAL: 'fatal',
};

/** The fields that say why, in the order they are shown. */
const WHY = ['error', 'reason', 'problem', 'reasons', 'detail'] as const;

/** One pino JSON line as one text line (ending in a newline); a line that is not JSON as is. */
export function textLogLine(json: string): string {
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const label = LABEL[String(event.severity)] ?? 'log';
  const where = typeof event.dropDate === 'string' ? ` ${event.dropDate}` : '';
  const attempt = typeof event.attempt === 'number' ? ` (attempt ${event.attempt})` : '';
  const why = WHY.map((key) => event[key])
    .filter((value) => value !== undefined && value !== '')
    .map((value) => (Array.isArray(value) ? value.join('; ') : String(value)));
  const message = typeof event.message === 'string' ? event.message : '';
  const text = `${message}${attempt}${why.length > 0 ? `: ${why.join('; ')}` : ''}`;
  // Messages quote what the user gave (URLs, paths): one printable line, no terminal escapes.
  return `${label}${where}: ${oneLine(text)}\n`;
}
