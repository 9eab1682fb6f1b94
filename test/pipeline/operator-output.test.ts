/**
 * What a person reads: the live display on a terminal, --quiet and --json, and failure lines
 * that say which week, what failed, and what to do next.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  RunDisplay,
  outputModeFor,
  summaryTable,
  type DisplayStream,
} from '../../src/terminal/run-display.ts';
import type { RunSummary } from '../../src/pipeline/week-result.ts';
import type { WeekResult } from '../../src/pipeline/week-result.ts';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { runWorker } from '../support/harnesses/cli.ts';
import { realWeekFile } from '../support/fixtures/real-week.ts';

class FakeTerminal implements DisplayStream {
  readonly isTTY = true;
  readonly columns = 80;
  output = '';
  write(text: string): boolean {
    this.output += text;
    return true;
  }
  /** What the screen shows: carriage returns and line clears applied. */
  get screen(): string[] {
    return this.output
      .split('\n')
      .map((line) => line.split('\r').at(-1)!.replaceAll('\x1b[2K', ''))
      .filter((line) => line !== '');
  }
}

const week: WeekResult = {
  dropDate: '2023-06-03',
  outcome: 'loaded',
  sourceUrl: 'http://127.0.0.1/turnstile_230603.txt',
  rows: 253_237,
  rejects: 0,
  bytes: 33_174_178,
  seconds: 1.2,
};

describe('the run display', () => {
  it('chooses its mode from the flags and the stream', () => {
    expect(outputModeFor({ write: () => true, isTTY: true }, {})).toBe('live');
    expect(outputModeFor({ write: () => true }, {})).toBe('lines');
    expect(outputModeFor({ write: () => true, isTTY: true }, { quiet: true })).toBe('quiet');
    expect(outputModeFor({ write: () => true, isTTY: true }, { json: true, quiet: true })).toBe('json');
  });

  it('on a terminal, redraws one status line per week through the stages, then the result and a summary', () => {
    const terminal = new FakeTerminal();
    let clock = 0;
    const display = new RunDisplay(terminal, 'live', () => clock);
    display.progress({ dropDate: '2023-06-03', stage: 'fetch', state: 'start' });
    clock += 200;
    display.progress({ dropDate: '2023-06-03', stage: 'fetch', state: 'progress', bytes: 12_300_000 });
    expect(terminal.output.split('\r').at(-1)).toContain('2023-06-03  fetching…  (12.3 MB fetched)');
    clock += 10; // too soon to redraw: the status line stays as it was
    display.progress({ dropDate: '2023-06-03', stage: 'fetch', state: 'progress', bytes: 20_000_000 });
    expect(terminal.output).not.toContain('20.0 MB');
    display.progress({ dropDate: '2023-06-03', stage: 'convert', state: 'start' });
    display.progress({ dropDate: '2023-06-03', stage: 'convert', state: 'progress', rows: 253_237 });
    display.progress({ dropDate: '2023-06-03', stage: 'store', state: 'start' });
    display.progress({ dropDate: '2023-06-03', stage: 'load', state: 'start' });
    expect(terminal.output.split('\r').at(-1)).toContain(
      'loading into the warehouse…  (20.0 MB fetched, 253,237 rows)',
    );
    display.week(week);
    const summary: RunSummary = { runId: 'r1', weeks: [week], exitCode: 0 };
    display.finish(summary);
    expect(terminal.screen).toEqual([
      expect.stringMatching(/^2023-06-03\s+loaded\s+253,237 rows\s+0 rejects\s+33\.2 MB\s+1\.2 s$/) as string,
      'Summary of run r1',
      '  loaded             1 week        253,237 rows     33.2 MB fetched',
      '  already-loaded     0 weeks',
      '  not-published      0 weeks',
      '  failed             0 weeks',
      expect.stringMatching(/^ {2}1 week in [\d.]+ s, exit code 0$/) as string,
    ]);
  });

  it('prints nothing live into a pipe, and nothing at all when quiet', () => {
    const pipe = {
      output: '',
      write(text: string) {
        this.output += text;
        return true;
      },
    };
    const lines = new RunDisplay(pipe, 'lines');
    lines.progress({ dropDate: '2023-06-03', stage: 'fetch', state: 'start' });
    lines.week(week);
    lines.finish({ runId: 'r', weeks: [week], exitCode: 0 });
    expect(pipe.output).not.toContain('\r');
    expect(pipe.output.trimEnd().split('\n')).toHaveLength(1);
    const quietPipe = {
      output: '',
      write(text: string) {
        this.output += text;
        return true;
      },
    };
    const quiet = new RunDisplay(quietPipe, 'quiet');
    quiet.week(week);
    quiet.finish({ runId: 'r', weeks: [week], exitCode: 0 });
    expect(quietPipe.output).toBe('');
    expect(summaryTable({ runId: 'r', weeks: [], exitCode: 3 }, 0)).toContain(
      '0 weeks in 0.0 s, exit code 3',
    );
  });
});

describe('run output and failure messages', () => {
  let server: SourceServer;
  let dir: string;
  beforeAll(async () => {
    server = await startSourceServer({
      files: [{ name: 'turnstile_230603.txt', path: await realWeekFile() }],
    });
  });
  afterAll(() => server.close());
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mta-ingest-output-'));
    return () => rm(dir, { recursive: true, force: true });
  });
  const run = (now: string, ...args: string[]) => runWorker({ sourceUrl: server.baseUrl, dir, now }, ...args);

  it('logs one JSON object per event on stderr, with Cloud Logging fields, run id and drop date', async () => {
    const result = await run('2023-06-05T16:00:00Z', '--date', '2023-06-03', '--log-level', 'info');
    expect(result.code, result.stderr).toBe(0);
    const events = result.stderr
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(events.length).toBeGreaterThan(8);
    for (const event of events) {
      expect(event).toMatchObject({ severity: 'INFO', message: expect.any(String) as string });
      expect(Date.parse(event.time as string)).not.toBeNaN();
      expect(event.runId).toMatch(/^20230605T160000Z-[0-9a-f]{6}$/);
    }
    const weekEvents = events.filter((e) => e.dropDate === '2023-06-03').map((e) => e.event);
    expect(weekEvents).toEqual(
      expect.arrayContaining([
        'fetch.start',
        'fetch.done',
        'convert.done',
        'quality',
        'load.done',
        'week.done',
      ]),
    );
    const quiet = await run('2023-06-05T16:00:00Z', '--date', '2023-06-03', '--log-level', 'warn');
    expect(quiet.stderr).toBe('');
  });

  it('--json prints one summary document; --quiet prints nothing', async () => {
    const json = await run('2023-06-05T16:00:00Z', '--date', '2023-06-03', '--json');
    expect(json.code, json.stderr).toBe(0);
    const summary = JSON.parse(json.stdout) as RunSummary;
    expect(summary).toMatchObject({
      exitCode: 0,
      weeks: [{ dropDate: '2023-06-03', outcome: 'loaded', rows: 253_237 }],
    });
    expect(summary.weeks[0]!.timings).toMatchObject({
      fetch: expect.any(Number) as number,
      load: expect.any(Number) as number,
    });
    const quiet = await run('2023-06-05T16:00:00Z', '--date', '2023-06-03', '--quiet');
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toBe('');
  });

  it('a 404 on the latest Saturday says it is not published yet and what to do', async () => {
    // Saturday 2023-06-10, evening in New York: the file is not there yet.
    const result = await run('2023-06-10T23:00:00Z');
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(
      /^2023-06-10\s+not-published .*HTTP 404 .*→ not published yet: the MTA posts each week on Saturday; retry later, or pass --date for an earlier week$/m,
    );
  });

  it('a 404 on an older week, and a source that keeps failing, say what failed and what to do', async () => {
    const old = await run('2023-06-12T12:00:00Z', '--date', '2023-05-20');
    expect(old.stdout).toMatch(
      /^2023-05-20\s+not-published .*→ the source has no file for this date: check the date, or --source-url/m,
    );
    server.fault('turnstile_230603.txt', { kind: 'status', status: 503 });
    const failing = await run('2023-06-05T16:00:00Z', '--date', '2023-06-03', '--fetch-attempts', '2');
    server.fault('turnstile_230603.txt', undefined);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(
      /^2023-06-03\s+failed .*gave up after 2 attempts: HTTP 503 .*→ nothing was stored; check the network and --source-url, then rerun/m,
    );
  });
});
