/**
 * Catch-up: what a run with no date selection takes. The latest drop date, and every earlier
 * one of the last `weeks` drop dates that the warehouse does not hold, so that a week the MTA
 * posted late (a 404, `not-published`, at one run) lands at the next, and a scheduler that was
 * down for a while recovers on its own.
 *
 * - Only weeks after the warehouse's first loaded week are caught up: the first run on an empty
 *   warehouse takes the latest week alone, and history before it is a backfill's to load, never
 *   a surprise download.
 * - The bound (`--catch-up-weeks`, settings-table.ts) caps one run's downloads; missing weeks
 *   older than it (after the first loaded week) are named in one line (`cutOff`) with the
 *   backfill that loads them, on every run until they are loaded.
 * - Where the MTA's index page was read (fetch/source-index.ts), it says which drop dates exist:
 *   listed off-pattern dates count as drop dates, and unlisted earlier dates are not published
 *   (yet), so they are not asked for (`unlisted`). The latest drop date is always asked for, so
 *   that a week not posted yet is `not-published` (exit 3), as without the page.
 *
 * Pure: the warehouse's load state and the page are read by the caller (commands/week-selection.ts).
 */
import { addDays, dropDatesBetween, type IsoDate } from './drop-dates.ts';

export interface CatchUpInput {
  /** The latest drop date by the calendar (drop-dates.ts latestDropDate). */
  latest: IsoDate;
  /** Today in New York: a listed date after it is ignored. */
  today: IsoDate;
  /** The drop dates the warehouse holds. */
  loaded: ReadonlySet<IsoDate>;
  /**
   * Whether `loaded` is every loaded week (a warehouse that lists them) or only those of the
   * window (asked one by one): then nothing is known before the window, and nothing is cut off.
   */
  complete: boolean;
  /** The bound: how many of the most recent drop dates a run looks at, the latest included. */
  weeks: number;
  /** The drop dates the index page lists; undefined when it could not be read. */
  published?: readonly IsoDate[] | undefined;
}

export interface CatchUp {
  /** What the run takes, ascending: missing weeks of the window, then the latest. */
  dates: IsoDate[];
  /** The window's first drop date (its last is `latest`). */
  windowStart: IsoDate;
  latest: IsoDate;
  /** Missing weeks older than the window, after the first loaded week. */
  cutOff?: { weeks: number; first: IsoDate; last: IsoDate } | undefined;
  /** Missing weeks of the window the index page does not list: not asked for. */
  unlisted: IsoDate[];
}

/** The drop dates of the window a catch-up looks at: the `weeks` most recent, latest included. */
export function catchUpWindow(
  input: Pick<CatchUpInput, 'latest' | 'today' | 'weeks' | 'published'>,
): IsoDate[] {
  const latest = latestOf(input);
  return dropDatesIn(addDays(latest, -7 * input.weeks), latest, input.published).slice(-input.weeks);
}

export function catchUp(input: CatchUpInput): CatchUp {
  const latest = latestOf(input);
  const window = catchUpWindow(input);
  const windowStart = window[0] ?? latest;
  const loaded = [...input.loaded].sort();
  const first = loaded[0];
  if (first === undefined) return { dates: [latest], windowStart, latest, unlisted: [] };

  const listed = input.published === undefined ? undefined : new Set(input.published);
  const missing = window.filter((date) => date !== latest && date > first && !input.loaded.has(date));
  const unlisted = listed ? missing.filter((date) => !listed.has(date)) : [];
  const dates = [...missing.filter((date) => !unlisted.includes(date)), latest];

  // Cut off: the missing weeks between the first loaded week and the window. Said on every run
  // until they are loaded, not only on the run that first left them behind.
  let cutOff: CatchUp['cutOff'];
  if (input.complete && first < windowStart) {
    const gap = dropDatesIn(addDays(first, 1), addDays(windowStart, -1), input.published).filter(
      (date) => !input.loaded.has(date) && (!listed || listed.has(date)),
    );
    if (gap.length > 0) cutOff = { weeks: gap.length, first: gap[0]!, last: gap.at(-1)! };
  }
  return { dates, windowStart, latest, cutOff, unlisted };
}

/** The calendar's latest drop date, or a later listed one (an off-pattern date) up to today. */
function latestOf(input: Pick<CatchUpInput, 'latest' | 'today' | 'published'>): IsoDate {
  const listed = input.published?.filter((date) => date > input.latest && date <= input.today).at(-1);
  return listed ?? input.latest;
}

/** Drop dates in [start, end]: the calendar's, and any listed ones (off-pattern dates). */
function dropDatesIn(start: IsoDate, end: IsoDate, published: readonly IsoDate[] | undefined): IsoDate[] {
  const dates = new Set(dropDatesBetween(start, end));
  for (const date of published ?? []) if (date >= start && date <= end) dates.add(date);
  return [...dates].sort();
}
