/**
 * `mta-ingest run`: resolve the drop dates (refusing bad ones before any request), then take
 * each week through the pipeline in order. Returns the weeks' reports and the exit code; the
 * caller prints. `onWeek` is called as each week ends, for live output.
 */
import { latestDropDate, type DropDateSelection } from '../dates/drop-dates.ts';
import { resolveSelection } from '../dates/selection.ts';
import { ExitCode, UsageError, WarehouseBusyError } from '../errors.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { ingestWeek } from '../pipeline/ingest-week.ts';
import type { ProgressEvent, RunSummary, WeekResult } from '../pipeline/week-result.ts';

export type { RunSummary } from '../pipeline/week-result.ts';
import { skippedWeek, warehouseFailedWeek } from '../pipeline/unfinished-week.ts';
import { newRunId, openRunContext } from '../pipeline/run-context.ts';
import { preflight } from '../pipeline/preflight.ts';
import type { BackendOverrides } from '../backends.ts';
import type { TaskShare } from '../dates/shard.ts';
import { ACCEPT_ENV } from './accept-env.ts';
import { refuseMissingWithForce, selectWeeks, type SelectionNote } from './week-selection.ts';

export interface RunOptions {
  selection: DropDateSelection;
  force: boolean;
  /** `--missing`: take only the selected weeks the warehouse does not hold (week-selection.ts). */
  missing?: boolean | undefined;
  /**
   * Weeks to load even if the plausibility gate finds them suspect (`--accept`): these drop
   * dates, or 'all'. `force` accepts too.
   */
  accept?: readonly string[] | 'all' | undefined;
  /** Fail weeks with rejects or duplicate readings instead of loading them. */
  strict?: boolean | undefined;
  /** Check the warehouse's rows, not only its load record, where that is billed (`verify --repair`). */
  readRows?: boolean | undefined;
  config: Config;
  now: Date;
  log: Logger;
  signal?: AbortSignal | undefined;
  onWeek?: ((week: WeekResult) => void) | undefined;
  /** Lines about the selection (catch-up, its bound, the index page), before the first week. */
  onNote?: ((note: SelectionNote) => void) | undefined;
  overrides?: BackendOverrides | undefined;
  /** Live progress events, for a terminal display. */
  onProgress?: ((event: ProgressEvent) => void) | undefined;
  /**
   * This task's share of a fan-out (dates/shard.ts): only those of the selected dates are run.
   * Undefined: every date.
   */
  share?: TaskShare | undefined;
}

export async function runCommand(options: RunOptions): Promise<RunSummary> {
  // The whole selection is resolved (and refused) first and then shared, so every task of a
  // fan-out takes its share of the same list: a drop date that comes between two tasks' starts
  // only lengthens the list at its end, and no earlier date changes hands.
  const selected = resolveSelection(options.selection, options.now);
  refuseMissingWithForce(options.missing, options.force);
  await preflight(options.config); // local paths a run writes: a bad one is exit 2, before any fetch
  // With no date selection, the latest week and the missing ones before it (catch-up.ts).
  const { dates, notes } = await selectWeeks({ ...options, resolved: selected });
  const latest = latestDropDate(options.now);
  const runId = newRunId(options.now);
  const ctx = await openRunContext(
    options.config,
    options.log,
    runId,
    options.signal,
    options.overrides,
    options.onProgress,
  );
  const weeks: WeekResult[] = [];
  try {
    ctx.log.info(
      {
        event: 'run.start',
        weeks: dates.length,
        first: dates[0],
        last: dates.at(-1),
        ...(options.share && { share: { ...options.share, selectedWeeks: selected.length } }),
      },
      'run started',
    );
    for (const note of notes) {
      ctx.log[note.level]({ event: note.event }, note.message);
      options.onNote?.(note);
    }
    for (const date of dates) {
      const weekOptions = {
        force: options.force,
        strict: options.strict ?? false,
        readRows: options.readRows ?? false,
        isLatest: date === latest,
        accept: options.force || options.accept === 'all' || (options.accept?.includes(date) ?? false),
      };
      // Every selected week gets its line: those the stop came before are skipped.
      let began = false;
      const week = options.signal?.aborted
        ? skippedWeek(ctx, date, options.signal, weekOptions)
        : await ctx
            .withWeek((resources) => {
              began = true;
              return ingestWeek(ctx, resources, date, weekOptions);
            })
            .catch((error: unknown) => {
              // ingestWeek reports its own failures; these are the week's warehouse failing to
              // open or close. Opening it for the first week, that is the whole run's problem (a
              // setting, a table of another schema: one line, nothing fetched), unless another
              // run holds the file or a signal ended the wait. Closing it after a week began (a
              // full disk at the checkpoint), or mid-run (the file turned invalid), the week
              // fails with the reason and the run goes on: every week its line.
              const upFront = !began && weeks.length === 0 && !(error instanceof WarehouseBusyError);
              if (upFront && !options.signal?.aborted) throw error;
              return warehouseFailedWeek(ctx, date, error, weekOptions);
            });
      weeks.push(week);
      options.onWeek?.(week);
    }
  } finally {
    await ctx.close();
  }
  const exitCode = exitCodeFor(weeks, options.signal?.aborted ? signalOf(options.signal) : false);
  ctx.log.info({ event: 'run.done', exitCode }, 'run finished');
  return { runId, weeks, exitCode, ...(notes.length > 0 && { notes: notes.map((note) => note.message) }) };
}

/**
 * The run's exit code, the most urgent first: 130/143 if a signal stopped the run, 1 if any
 * week failed, 4 if any was held back as suspect, 3 if any was not published, else 0.
 */
export function exitCodeFor(
  weeks: readonly WeekResult[],
  interrupted: false | 'SIGINT' | 'SIGTERM' = false,
): ExitCode {
  if (interrupted === 'SIGINT') return ExitCode.interruptedBySigint;
  if (interrupted === 'SIGTERM') return ExitCode.interruptedBySigterm;
  if (weeks.some((w) => w.outcome === 'failed' || w.outcome === 'interrupted')) return ExitCode.failed;
  if (weeks.some((w) => w.outcome === 'suspect')) return ExitCode.suspect;
  if (weeks.some((w) => w.outcome === 'not-published')) return ExitCode.notPublished;
  return ExitCode.ok;
}

/** Which signal an aborted run's signal carries (its reason names it); SIGTERM when unknown. */
function signalOf(signal: AbortSignal): 'SIGINT' | 'SIGTERM' {
  const reason: unknown = signal.reason;
  const text = reason instanceof Error ? reason.message : String(reason);
  return text.includes('SIGINT') ? 'SIGINT' : 'SIGTERM';
}

export { ACCEPT_ENV };

/** `--accept`'s value: `all`, or drop dates separated by commas; undefined when not given. */
export function parseAccept(
  value: string | undefined,
  from = '--accept',
): readonly string[] | 'all' | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (value.trim() === 'all') return 'all';
  const dates = value.split(',').map((date) => date.trim());
  for (const date of dates) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
      throw new UsageError(`${from} ${JSON.stringify(date)} is not a drop date (YYYY-MM-DD) or 'all'`);
    }
  }
  return dates;
}
