/**
 * Freshness: how far the warehouse is behind the MTA's calendar, for `status` (text, `--json`,
 * `--fail-if-behind`) and for the run's `mta_ingest_weeks_behind` gauge.
 *
 * - The latest expected week is the calendar's latest drop date in New York
 *   (drop-dates.ts latestDropDate): the MTA posts each week on Saturday, so from Saturday until
 *   the weekly run loads it a healthy warehouse is one week behind. Nothing is fetched: the index
 *   page could say the MTA is late, but a monitor must answer from the stores alone, offline.
 * - Weeks behind: the drop dates after the latest loaded one, up to the latest expected (a count
 *   of drop dates, not days / 7, so an off-pattern date counts once).
 * - Gaps: drop dates between the first and the latest loaded weeks that the warehouse does not
 *   hold (the tail after the latest loaded is "behind", not a gap): `run --missing` fills them.
 * - A week counts as loaded when the warehouse holds rows for it, whichever version (`status`'s
 *   `other version` and `drift` too: the data is there, `verify` judges it).
 */
import { dropDatesBetween, latestDropDate, addDays, type IsoDate } from '../dates/drop-dates.ts';
import { ExitCode, UsageError } from '../errors.ts';
import type { Config } from '../config.ts';
import type { BackendOverrides } from '../backends.ts';
import { withReadOnlyBackends } from './read-only-backends.ts';
import { statusCommand, type WeekStatus } from './status.ts';

export interface GapRange {
  first: IsoDate;
  last: IsoDate;
  weeks: number;
}

export interface Freshness {
  /** The latest drop date by the calendar, New York time: the week that should exist by now. */
  latestExpected: IsoDate;
  /** null: the warehouse holds no week. */
  latestLoaded: IsoDate | null;
  firstLoaded: IsoDate | null;
  /** Drop dates after the latest loaded, up to the latest expected; null when nothing is loaded. */
  weeksBehind: number | null;
  /** Those drop dates, ascending. */
  behind: IsoDate[];
  /** Runs of drop dates missing between the first and the latest loaded weeks, ascending. */
  gaps: GapRange[];
  /** Weeks with a version held back as suspect, waiting for `run --accept` (or a better file). */
  suspect: { dropDate: IsoDate; reasons: string[] }[];
}

export interface StatusReport {
  freshness: Freshness;
  weeks: WeekStatus[];
}

/** Freshness of a set of loaded drop dates at `now` (pure). */
export function freshnessOf(
  loaded: Iterable<IsoDate>,
  now: Date,
  suspect: Freshness['suspect'] = [],
): Freshness {
  const latestExpected = latestDropDate(now);
  const dates = [...new Set(loaded)].sort();
  const first = dates[0];
  const last = dates.at(-1);
  if (first === undefined || last === undefined) {
    return {
      latestExpected,
      latestLoaded: null,
      firstLoaded: null,
      weeksBehind: null,
      behind: [],
      gaps: [],
      suspect,
    };
  }
  const held = new Set(dates);
  const behind = last < latestExpected ? dropDatesBetween(addDays(last, 1), latestExpected) : [];
  const missing = dropDatesBetween(first, last).filter((date) => !held.has(date));
  return {
    latestExpected,
    latestLoaded: last,
    firstLoaded: first,
    weeksBehind: behind.length,
    behind,
    gaps: rangesOf(missing),
    suspect,
  };
}

/** Freshness from `status`'s weeks. */
export function freshnessOfWeeks(weeks: readonly WeekStatus[], now: Date): Freshness {
  return freshnessOf(
    weeks.filter((week) => week.warehouse !== 'not loaded').map((week) => week.dropDate),
    now,
    weeks.flatMap((week) => (week.suspect ? [{ dropDate: week.dropDate, reasons: week.suspect }] : [])),
  );
}

/** `mta-ingest status`: every stored week, and the warehouse's freshness at `now`. */
export async function statusReport(options: {
  config: Config;
  now: Date;
  overrides?: BackendOverrides | undefined;
  signal?: AbortSignal | undefined;
}): Promise<StatusReport> {
  const weeks = await statusCommand(options);
  return { freshness: freshnessOfWeeks(weeks, options.now), weeks };
}

/**
 * Weeks behind at `now`, from the warehouse's load records alone (one listing; no lake read):
 * the run's lag gauge. Undefined when the warehouse holds no week.
 */
export async function weeksBehind(
  config: Config,
  now: Date,
  signal?: AbortSignal,
  overrides?: BackendOverrides,
): Promise<number | undefined> {
  const loaded = await withReadOnlyBackends(
    config,
    async (_lake, warehouse) =>
      warehouse.capabilities.listsWeeks
        ? (await warehouse.listLoadedWeeks()).map((record) => record.dropDate)
        : [],
    overrides,
    signal,
  );
  return freshnessOf(loaded, now).weeksBehind ?? undefined;
}

/** `--fail-if-behind N`: a whole number of weeks, at least 1 (0 would fail every check). */
export function parseFailIfBehind(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const weeks = /^\d{1,4}$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!(weeks >= 1)) {
    throw new UsageError(
      `--fail-if-behind ${JSON.stringify(value)} is not a number of weeks of at least 1 (e.g. 2: from Saturday until the weekly run loads it, 1 week behind is normal)`,
    );
  }
  return weeks;
}

/**
 * The monitor's verdict: `behind` (exit 6) when the warehouse is `threshold` or more weeks
 * behind, or holds no week at all; ok otherwise, and always without a threshold.
 */
export function freshnessExitCode(freshness: Freshness, threshold: number | undefined): ExitCode {
  if (threshold === undefined) return ExitCode.ok;
  if (freshness.weeksBehind === null || freshness.weeksBehind >= threshold) return ExitCode.behind;
  return ExitCode.ok;
}

function rangesOf(dates: readonly IsoDate[]): GapRange[] {
  const ranges: GapRange[] = [];
  for (const date of dates) {
    const open = ranges.at(-1);
    // Consecutive drop dates: no drop date lies between the run's last and this one.
    if (open && dropDatesBetween(addDays(open.last, 1), date).length === 1) {
      open.last = date;
      open.weeks += 1;
    } else {
      ranges.push({ first: date, last: date, weeks: 1 });
    }
  }
  return ranges;
}
