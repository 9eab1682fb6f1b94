/**
 * The command line's date selection as drop dates: `--week-of` (week-of.ts) or the drop-date
 * flags (drop-dates.ts), never both; and whether anything was selected at all, since a run with
 * no selection catches up (catch-up.ts) rather than taking one fixed date.
 */
import { UsageError } from '../errors.ts';
import { resolveDropDates, shown, type DropDateSelection, type IsoDate } from './drop-dates.ts';
import { resolveWeekOf } from './week-of.ts';

/** True when no flag (or flow-run parameter) selects dates: the run catches up. */
export function selectsNothing(selection: DropDateSelection): boolean {
  return Object.values(selection).every((value) => value === undefined);
}

export function resolveSelection(selection: DropDateSelection, now: Date): IsoDate[] {
  const { weekOf, ...dates } = selection;
  if (weekOf === undefined) return resolveDropDates(dates, now);
  const others = Object.entries(dates)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `--${name} ${shown(value)}`);
  if (others.length > 0) {
    throw new UsageError(
      `--week-of ${shown(weekOf)} cannot be combined with ${others.join(' ')}: give --week-of alone`,
    );
  }
  return [resolveWeekOf(weekOf, now)];
}
