/**
 * What `run` shows while it works, by where its output goes:
 * - `live` (stdout is a terminal): one status line per week, redrawn as it moves through its
 *   stages (bytes fetched, rows converted, bytes stored, load), replaced by the week's result
 *   line when it ends, and a summary table at the end;
 * - `lines` (a pipe or a file, as under a scheduler): the result line of each week as it ends;
 * - `quiet`: nothing (the exit code and the JSON log on stderr tell);
 * - `json`: one JSON document at the end, for machines.
 */
import { WEEK_OUTCOMES, type ProgressEvent, type WeekResult } from '../pipeline/week-result.ts';
import type { RunSummary } from '../pipeline/week-result.ts';
import { formatWeekLine } from '../cli-output.ts';
import { jsonDocument } from '../json-document.ts';

export type OutputMode = 'live' | 'lines' | 'quiet' | 'json';

export interface DisplayStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function outputModeFor(stream: DisplayStream, flags: { json?: boolean; quiet?: boolean }): OutputMode {
  if (flags.json) return 'json';
  if (flags.quiet) return 'quiet';
  return stream.isTTY ? 'live' : 'lines';
}

const count = new Intl.NumberFormat('en-US');
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
const ACTIVITY: Record<ProgressEvent['stage'], string> = {
  fetch: 'fetching',
  convert: 'converting',
  measure: 'measuring quality',
  store: 'storing in the lake',
  load: 'loading into the warehouse',
};
/** Redraws at most this often: a terminal does not need more, and a log file gets none. */
const REDRAW_MS = 100;

export class RunDisplay {
  private readonly stream: DisplayStream;
  readonly mode: OutputMode;
  private readonly now: () => number;
  private readonly started: number;
  private status:
    | { dropDate: string; stage: ProgressEvent['stage']; fetched: number; rows?: number; stored?: number }
    | undefined;
  private lastDraw = 0;
  private drawn = false;

  constructor(stream: DisplayStream, mode: OutputMode, now: () => number = Date.now) {
    this.stream = stream;
    this.mode = mode;
    this.now = now;
    this.started = now();
  }

  progress(event: ProgressEvent): void {
    if (this.mode !== 'live') return;
    const status =
      this.status?.dropDate === event.dropDate
        ? this.status
        : { dropDate: event.dropDate, stage: event.stage, fetched: 0 };
    status.stage = event.stage;
    if (event.stage === 'fetch' && event.bytes !== undefined) status.fetched = event.bytes;
    if (event.rows !== undefined) status.rows = event.rows;
    if (event.stage === 'store' && event.bytes !== undefined) status.stored = event.bytes;
    this.status = status;
    const forced = event.state !== 'progress';
    if (forced || this.now() - this.lastDraw >= REDRAW_MS) this.draw();
  }

  week(week: WeekResult): void {
    if (this.mode === 'live' || this.mode === 'lines') {
      this.clear();
      this.stream.write(`${formatWeekLine(week)}\n`);
    }
    this.status = undefined;
  }

  /** A line about the run's selection (catch-up, its bound), before its weeks' lines. */
  note(line: string): void {
    if (this.mode === 'live' || this.mode === 'lines') {
      this.clear();
      this.stream.write(`${line}\n`);
    }
  }

  /**
   * Runs a write of something else to the terminal (a log line on stderr) with the status line
   * lifted: cleared before, redrawn after, so the line lands above it and never glued onto it.
   */
  readonly around = (write: () => void): void => {
    if (this.mode !== 'live' || !this.drawn) return write();
    this.clear();
    write();
    this.draw();
  };

  finish(summary: RunSummary): void {
    this.clear();
    if (this.mode === 'json') this.stream.write(`${jsonDocument(summary)}\n`);
    if (this.mode === 'live')
      this.stream.write(`${summaryTable(summary, (this.now() - this.started) / 1000)}\n`);
  }

  private draw(): void {
    const s = this.status;
    if (!s) return;
    const details = [
      s.fetched > 0 ? `${mb(s.fetched)} fetched` : undefined,
      s.rows !== undefined ? `${count.format(s.rows)} rows` : undefined,
      s.stored !== undefined ? `${mb(s.stored)} stored` : undefined,
    ].filter(Boolean);
    const line = `${s.dropDate}  ${ACTIVITY[s.stage]}…${details.length > 0 ? `  (${details.join(', ')})` : ''}`;
    // A pseudo-terminal may report 0 columns: that means unknown, not narrow.
    const width = Math.max(20, (this.stream.columns || 100) - 1);
    this.stream.write(`\r\x1b[2K${line.slice(0, width)}`);
    this.drawn = true;
    this.lastDraw = this.now();
  }

  private clear(): void {
    if (!this.drawn) return;
    this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}

/** The end-of-run table: weeks by outcome, with their rows and bytes. */
export function summaryTable(summary: RunSummary, seconds: number): string {
  /** Shown even when no week had them; the rarer outcomes only when a week had one. */
  const always: readonly string[] = ['loaded', 'already-loaded', 'not-published', 'failed'];
  const lines = [`Summary of run ${summary.runId}`];
  for (const outcome of WEEK_OUTCOMES) {
    const weeks = summary.weeks.filter((w) => w.outcome === outcome);
    if (weeks.length === 0 && !always.includes(outcome)) continue;
    const rows = weeks.reduce((sum, w) => sum + (w.rows ?? 0), 0);
    const bytes = weeks.reduce((sum, w) => sum + w.bytes, 0);
    lines.push(
      `  ${outcome.padEnd(15)}${String(weeks.length).padStart(5)} week${weeks.length === 1 ? ' ' : 's'}` +
        (weeks.length > 0
          ? `  ${count.format(rows).padStart(12)} rows  ${mb(bytes).padStart(10)} fetched`
          : ''),
    );
  }
  lines.push(
    `  ${summary.weeks.length} week${summary.weeks.length === 1 ? '' : 's'} in ${seconds.toFixed(1)} s, exit code ${summary.exitCode}`,
  );
  return lines.join('\n');
}
