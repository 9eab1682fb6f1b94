/**
 * The log as a person reads it: text lines on a terminal, JSON elsewhere, the level and format
 * from flag, variable or default, and log writes that lift the live status line.
 */
import { describe, expect, it } from 'vitest';
import { textLogLine } from '../../src/terminal/log-lines.ts';
import { createLogger, logDestination } from '../../src/log.ts';
import { logOptionsOf } from '../../src/cli/log-options.ts';
import { RunDisplay } from '../../src/terminal/run-display.ts';

describe('text log lines', () => {
  it('say the level, the week, the message and why, on one line', () => {
    const json = JSON.stringify({
      severity: 'WARNING',
      time: '2026-12-04T05:10:38.823Z',
      runId: 'r',
      dropDate: '2023-06-03',
      rssMb: 151,
      attempt: 2,
      reason: 'connect ECONNREFUSED 127.0.0.1:9',
      retryInMs: 92,
      message: 'fetch attempt failed, retrying',
    });
    expect(textLogLine(`${json}\n`)).toBe(
      'warning 2023-06-03: fetch attempt failed, retrying (attempt 2): connect ECONNREFUSED 127.0.0.1:9\n',
    );
    expect(
      textLogLine(JSON.stringify({ severity: 'WARNING', message: 'held back', reasons: ['a', 'b'] })),
    ).toBe('warning: held back: a; b\n');
  });

  it('never pass a terminal escape through from what a message quotes', () => {
    const line = textLogLine(
      JSON.stringify({ severity: 'ERROR', message: 'week failed', error: 'x\u001b[2Jy\nz' }),
    );
    expect(line).toBe('error: week failed: x\\u001b[2Jy z\n');
  });

  it('go through pino as text or JSON, each write wrapped', () => {
    const written: string[] = [];
    const wraps: string[] = [];
    const sink = { write: (text: string) => written.push(text) };
    const around = (write: () => void) => {
      wraps.push('lift');
      write();
    };
    createLogger('warn', logDestination('text', around, sink)).warn({ dropDate: '2023-06-03' }, 'hello');
    createLogger('warn', logDestination('json', around, sink)).info('not at warn');
    createLogger('info', logDestination('json', around, sink)).info('as json');
    expect(written[0]).toBe('warning 2023-06-03: hello\n');
    expect(JSON.parse(written[1]!)).toMatchObject({ severity: 'INFO', message: 'as json' });
    expect(wraps).toEqual(['lift', 'lift']);
  });
});

describe('log options', () => {
  it('flag, then MTA_INGEST_LOG_LEVEL / MTA_INGEST_LOG_FORMAT, then the default (text on a terminal)', () => {
    expect(logOptionsOf({}, {}, true, 'warn')).toEqual({ level: 'warn', format: 'text' });
    expect(logOptionsOf({}, {}, false, 'info')).toEqual({ level: 'info', format: 'json' });
    const env = { MTA_INGEST_LOG_LEVEL: 'debug', MTA_INGEST_LOG_FORMAT: 'json' };
    expect(logOptionsOf({}, env, true, 'warn')).toEqual({ level: 'debug', format: 'json' });
    expect(logOptionsOf({ logLevel: 'error', logFormat: 'text' }, env, false, 'warn')).toEqual({
      level: 'error',
      format: 'text',
    });
  });

  it('refuses a variable that is not a choice, naming it', () => {
    expect(() => logOptionsOf({}, { MTA_INGEST_LOG_LEVEL: 'loud' }, true, 'warn')).toThrow(
      /^MTA_INGEST_LOG_LEVEL loud: expected one of fatal, error, warn, info, debug, trace, silent$/,
    );
    expect(() => logOptionsOf({}, { MTA_INGEST_LOG_FORMAT: 'xml' }, true, 'warn')).toThrow(
      /^MTA_INGEST_LOG_FORMAT xml: expected one of text, json$/,
    );
  });
});

describe('the live display around a log line', () => {
  it('clears the status line, lets the line through, and redraws the status below it', () => {
    let output = '';
    const terminal = { isTTY: true, columns: 80, write: (text: string) => (output += text) };
    const display = new RunDisplay(terminal, 'live', () => 0);
    display.progress({ dropDate: '2023-06-03', stage: 'fetch', state: 'start' });
    display.around(() => (output += 'warning 2023-06-03: slow\n'));
    expect(output).toBe(
      '\r\x1b[2K2023-06-03  fetching…\r\x1b[2Kwarning 2023-06-03: slow\n\r\x1b[2K2023-06-03  fetching…',
    );
  });
});
