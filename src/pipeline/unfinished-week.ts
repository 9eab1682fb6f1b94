/**
 * The line of a week that `ingestWeek` did not report itself: every selected week gets exactly
 * one, however the run ends. A week the run's stop came before is `skipped`; a week whose
 * warehouse could not be opened (or closed) is `failed` with the reason, or `interrupted` when
 * the stop ended the wait for it; the run goes on to the next week, and ends with its summary.
 */
import { oneLine } from '../errors.ts';
import { sourceUrlFor, type IsoDate } from '../dates/drop-dates.ts';
import { reasonOf } from '../util/abort.ts';
import { adviceFor } from './advice.ts';
import type { WeekOptions, WeekResult } from './week-result.ts';
import type { RunContext } from './run-context.ts';

/** A week not begun: the run was stopped (SIGINT/SIGTERM) before it. */
export function skippedWeek(
  ctx: RunContext,
  date: IsoDate,
  signal: AbortSignal,
  options: Pick<WeekOptions, 'isLatest'>,
): WeekResult {
  const detail = `not begun: ${reasonOf(signal)}`;
  ctx.log.info({ event: 'week.skipped', dropDate: date, reason: reasonOf(signal) }, 'week skipped');
  return weekLine(ctx, date, 'skipped', detail, undefined, options);
}

/**
 * A week whose warehouse failed outside `ingestWeek`: opening it (held by another run past the
 * wait, an invalid file, a full disk) or closing it. Interrupted when the run was stopped.
 */
export function warehouseFailedWeek(
  ctx: RunContext,
  date: IsoDate,
  error: unknown,
  options: Pick<WeekOptions, 'isLatest'>,
): WeekResult {
  if (!ctx.signal?.aborted) return warehouseUnavailable(ctx, date, error, options);
  const detail = `${reasonOf(ctx.signal)} while opening or closing the warehouse (nothing of the week was written)`;
  ctx.log.warn(
    { event: 'week.interrupted', dropDate: date, stage: 'load', error: oneLine(error) },
    'week interrupted',
  );
  return weekLine(ctx, date, 'interrupted', detail, 'load', options);
}

function weekLine(
  ctx: RunContext,
  date: IsoDate,
  outcome: 'skipped' | 'interrupted',
  detail: string,
  failedStage: WeekResult['failedStage'],
  options: Pick<WeekOptions, 'isLatest'>,
): WeekResult {
  const week: WeekResult = {
    dropDate: date,
    outcome,
    sourceUrl: sourceUrlFor(ctx.config.sourceUrl, date),
    bytes: 0,
    seconds: 0,
    detail,
    failedStage,
  };
  return { ...week, advice: adviceFor(week, options.isLatest ?? false, ctx.config.tool) };
}

/**
 * The report of a week whose warehouse could not be opened (a DuckDB file another run held past
 * the wait): the week failed, and the run goes on to the next.
 */
function warehouseUnavailable(
  ctx: RunContext,
  date: IsoDate,
  error: unknown,
  options: Pick<WeekOptions, 'isLatest'>,
): WeekResult {
  ctx.log.error(
    { event: 'week.failed', dropDate: date, stage: 'load', error: oneLine(error) },
    'week failed',
  );
  const week: WeekResult = {
    dropDate: date,
    outcome: 'failed',
    sourceUrl: sourceUrlFor(ctx.config.sourceUrl, date),
    bytes: 0,
    seconds: 0,
    detail: oneLine(error),
    failedStage: 'load',
  };
  return { ...week, advice: adviceFor(week, options.isLatest ?? false, ctx.config.tool) };
}
