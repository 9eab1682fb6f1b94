/**
 * `--week-of DATE`: any date, turned into the drop date whose file holds its readings, so that a
 * scheduler can pass its own logical date (Airflow's `{{ ds }}`, a Sunday) as it is.
 *
 * The rule: the file named for drop date D holds the readings from D-7 to D-1 (Saturday to
 * Friday), so a date is covered by **the first drop date after it**, never by its own day: a
 * Saturday's readings are in the next Saturday's file, a Sunday's in the Saturday six days on.
 * The first file (Wednesday 2010-05-05) is taken to cover the seven days before it, like every
 * other. A covering file that is not due yet (its drop date after today in New York) is refused
 * like any other future date: the week is not over, so no run could load it.
 */
import { UsageError } from '../errors.ts';
import {
  FIRST_DROP_DATE,
  addDays,
  dropDateOnOrAfter,
  isCalendarDate,
  shown,
  todayInNewYork,
  type IsoDate,
} from './drop-dates.ts';

/** The drop date whose file holds `date`'s readings (whether or not it has come yet). */
export function dropDateCovering(date: IsoDate): IsoDate | undefined {
  if (date < addDays(FIRST_DROP_DATE, -7)) return undefined;
  return dropDateOnOrAfter(addDays(date, 1));
}

/** `--week-of`'s value as the one drop date it selects, or a one-line UsageError. */
export function resolveWeekOf(value: string, now: Date): IsoDate {
  if (!isCalendarDate(value)) {
    throw new UsageError(`--week-of ${shown(value)} is not a calendar date (YYYY-MM-DD, e.g. 2023-05-28)`);
  }
  const today = todayInNewYork(now);
  const covering = dropDateCovering(value);
  if (covering === undefined) {
    throw new UsageError(
      `--week-of ${value} is before the first published file's week (${FIRST_DROP_DATE} covers ${addDays(FIRST_DROP_DATE, -7)} on)`,
    );
  }
  if (covering > today) {
    throw new UsageError(
      `--week-of ${value} is in the file of ${covering}, which is in the future (today in New York is ${today}; the file named for a Saturday holds the 7 days before it)`,
    );
  }
  return covering;
}
