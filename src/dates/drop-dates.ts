/**
 * Drop dates: the dates the MTA named its weekly turnstile files after (`turnstile_YYMMDD.txt`).
 *
 * Dates are ISO calendar strings ('YYYY-MM-DD'), not `Date`s: a drop date is a day on a calendar,
 * and plain strings compare, sort and print without any time zone getting in the way. The only
 * instant in this module is the injected `now`, turned into New York's calendar date once, because
 * the MTA publishes on New York time and tests need a fixed clock.
 */
// TZDate alone: importing date-fns' root (or even date-fns/format) loads hundreds of modules
// and cost 45 to 341 MB of RSS, more than the whole conversion.
import { TZDate } from '@date-fns/tz';
import { UsageError } from '../errors.ts';

export type IsoDate = string;

export const FIRST_DROP_DATE = '2010-05-05';

/**
 * Drop dates that are not Saturdays. The first file came out on a Wednesday; every later one on a
 * Saturday. Add any other off-pattern date found in the MTA archive here (on or after the first).
 */
export const IRREGULAR_DROP_DATES: readonly IsoDate[] = ['2010-05-05'];

/** What the user asked for, as raw strings from flags/env (undefined when not given). */
export interface DropDateSelection {
  year?: string;
  month?: string;
  day?: string;
  date?: string;
  from?: string;
  to?: string;
  /** Any date: the drop date whose file covers it (week-of.ts); resolved by selection.ts. */
  weekOf?: string;
}

const NEW_YORK = 'America/New_York';
const SATURDAY = 6;
const DAY_MS = 86_400_000;

/** The calendar date in New York at the instant `now` (the MTA's clock, whatever the host's is). */
export function todayInNewYork(now: Date): IsoDate {
  const local = new TZDate(now.getTime(), NEW_YORK);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${local.getFullYear()}-${pad(local.getMonth() + 1)}-${pad(local.getDate())}`;
}

/** A real calendar date in strict YYYY-MM-DD form, at or after the first file, that got a file. */
export function isDropDate(date: IsoDate): boolean {
  return (
    isCalendarDate(date) &&
    date >= FIRST_DROP_DATE &&
    (IRREGULAR_DROP_DATES.includes(date) || weekday(date) === SATURDAY)
  );
}

/** The latest drop date on or before today in New York. */
export function latestDropDate(now: Date): IsoDate {
  const today = todayInNewYork(now);
  const latest = dropDateOnOrBefore(today);
  if (latest === undefined) {
    throw new UsageError(
      `no file is published yet: the first is ${FIRST_DROP_DATE}, today in New York is ${today}`,
    );
  }
  return latest;
}

/**
 * The drop dates a selection asks for, ascending and without duplicates, or a `UsageError` whose
 * one-line message names the offending flag value and says what is accepted. A selection that
 * would resolve to nothing is refused too, so a typo never turns into a silent no-op.
 */
export function resolveDropDates(selection: DropDateSelection, now: Date): IsoDate[] {
  const { year, month, day, date, from, to } = selection;
  const today = todayInNewYork(now);
  const shapes = 'give --date, or --year [--month [--day]], or --from [--to]';

  if (date !== undefined) {
    const others = flags({ year, month, day, from, to });
    if (others) throw new UsageError(`--date ${shown(date)} cannot be combined with ${others}: ${shapes}`);
    return [checkedDropDate(parseDate('--date', date), today)];
  }
  const calendar = flags({ year, month, day });
  const range = flags({ from, to });
  if (calendar && range) throw new UsageError(`${calendar} cannot be combined with ${range}: ${shapes}`);
  if (range) return resolveRange(from, to, today);
  if (calendar) return resolveCalendar(year, month, day, today);
  return [latestDropDate(now)];
}

/** '2023-06-03' -> 'turnstile_230603.txt' (the MTA used two-digit years). */
export function fileNameFor(date: IsoDate): string {
  if (!isCalendarDate(date)) throw new RangeError(`${shown(date)} is not a YYYY-MM-DD date`);
  return `turnstile_${date.slice(2, 4)}${date.slice(5, 7)}${date.slice(8, 10)}.txt`;
}

/** Where the MTA publishes a week's file: `sourceUrl` (a folder URL) and its file name. */
export function sourceUrlFor(sourceUrl: string, date: IsoDate): string {
  return `${sourceUrl}/${fileNameFor(date)}`;
}

/** --year [--month [--day]]. */
function resolveCalendar(
  year: string | undefined,
  month: string | undefined,
  day: string | undefined,
  today: IsoDate,
): IsoDate[] {
  if (year === undefined) {
    const given = flags({ month, day });
    throw new UsageError(`${given} needs --year: give --year [--month [--day]], e.g. --year 2023 --month 6`);
  }
  if (month === undefined && day !== undefined) {
    throw new UsageError(`--day ${shown(day)} needs --month: give --year [--month [--day]]`);
  }
  const y = parseYear(year, today);
  if (month === undefined) {
    return nonEmpty(dropDatesBetween(`${y}-01-01`, min(`${y}-12-31`, today)), `--year ${y}`, 'year', today);
  }

  const m = parseWholeNumber(month, 2);
  if (m === undefined || m < 1 || m > 12)
    throw new UsageError(`--month ${shown(month)} is not a month (1 to 12)`);
  const ym = `${y}-${pad2(m)}`;
  const lastDay = daysInMonth(y, m);
  if (day === undefined) {
    const label = `--year ${y} --month ${month}`;
    if (`${ym}-01` > today) throw new UsageError(`${label} is in the future (today in New York is ${today})`);
    if (`${ym}-${lastDay}` < FIRST_DROP_DATE) {
      throw new UsageError(`${label} is before the first published file (${FIRST_DROP_DATE})`);
    }
    return nonEmpty(dropDatesBetween(`${ym}-01`, min(`${ym}-${lastDay}`, today)), label, 'month', today);
  }

  const d = parseWholeNumber(day, 2);
  if (d === undefined || d < 1 || d > lastDay) {
    throw new UsageError(`--day ${shown(day)} is not a day of ${ym} (1 to ${lastDay})`);
  }
  return [checkedDropDate(`${ym}-${pad2(d)}`, today)];
}

/** --from [--to], inclusive; without --to the range runs to today. */
function resolveRange(from: string | undefined, to: string | undefined, today: IsoDate): IsoDate[] {
  if (from === undefined) {
    throw new UsageError(`--to ${shown(to)} needs --from: a range is --from YYYY-MM-DD [--to YYYY-MM-DD]`);
  }
  const start = parseDate('--from', from);
  const end = to === undefined ? today : parseDate('--to', to);
  if (to !== undefined) {
    if (start > end) throw new UsageError(`--from ${start} is after --to ${end}`);
    if (end > today) throw new UsageError(`--to ${end} is in the future (today in New York is ${today})`);
  }
  if (start > today) throw new UsageError(`--from ${start} is in the future (today in New York is ${today})`);
  const label = flags({ from: start, to });
  if (end < FIRST_DROP_DATE) {
    throw new UsageError(`${label} is entirely before the first published file (${FIRST_DROP_DATE})`);
  }
  const dates = dropDatesBetween(start, end);
  if (dates.length === 0) {
    throw new UsageError(
      `${label}: there is no drop date from ${start} to ${end} (drop dates are Saturdays)`,
    );
  }
  return dates;
}

/** One requested date: it must have come already and have had a file. */
function checkedDropDate(date: IsoDate, today: IsoDate): IsoDate {
  if (date < FIRST_DROP_DATE) {
    throw new UsageError(`${date} is before the first published file (${FIRST_DROP_DATE})`);
  }
  if (date > today) throw new UsageError(`${date} is in the future (today in New York is ${today})`);
  if (!isDropDate(date)) {
    // date >= FIRST_DROP_DATE, so there is always an earlier one; the later one may not have come yet.
    const before = dropDateOnOrBefore(date);
    const after = dropDateOnOrAfter(date);
    const nearest =
      after !== undefined && after <= today
        ? `the nearest are ${before} and ${after}`
        : `the latest is ${before}`;
    throw new UsageError(`${date} is not a drop date: drop dates are Saturdays (${nearest})`);
  }
  return date;
}

/**
 * A year or month listing that came out empty: only possible while it is in progress and before its
 * first Saturday, so its first drop date is the next one from today.
 */
function nonEmpty(dates: IsoDate[], label: string, unit: 'year' | 'month', today: IsoDate): IsoDate[] {
  if (dates.length > 0) return dates;
  const next = dropDateOnOrAfter(max(today, FIRST_DROP_DATE));
  throw new UsageError(
    `${label}: no drop date in that ${unit} has come yet (the first is ${next}; today in New York is ${today})`,
  );
}

function parseYear(value: string, today: IsoDate): number {
  const year = /^\d{4}$/.test(value) ? Number(value) : undefined;
  if (year === undefined) {
    throw new UsageError(`--year ${shown(value)} is not a year (2010 to 9999)`);
  }
  if (year < 2010)
    throw new UsageError(`--year ${year} is before the first published file (${FIRST_DROP_DATE})`);
  if (`${year}-01-01` > today)
    throw new UsageError(`--year ${year} is in the future (today in New York is ${today})`);
  return year;
}

/** Plain decimal digits only: Number() would also take ' 6', '+6', '0x6', '6.5' and ''. */
function parseWholeNumber(value: string, maxDigits: number): number | undefined {
  return new RegExp(`^\\d{1,${maxDigits}}$`).test(value) ? Number(value) : undefined;
}

function parseDate(flag: string, value: string): IsoDate {
  if (!isCalendarDate(value)) {
    throw new UsageError(`${flag} ${shown(value)} is not a calendar date (YYYY-MM-DD, e.g. 2023-06-03)`);
  }
  return value;
}

/** Drop dates in [start, end], both inclusive (clipped to the first file). */
export function dropDatesBetween(start: IsoDate, end: IsoDate): IsoDate[] {
  const from = dayNumber(max(start, FIRST_DROP_DATE));
  const to = dayNumber(end);
  const dates = new Set(IRREGULAR_DROP_DATES.filter((date) => date >= start && date <= end));
  // Step from the first Saturday on or after `from`, a week at a time.
  for (let n = from + ((SATURDAY - weekdayOf(from) + 7) % 7); n <= to; n += 7) dates.add(isoDate(n));
  return [...dates].sort();
}

/** Every 7-day window holds a Saturday, so a week each way is enough to find the neighbours. */
function dropDateOnOrBefore(date: IsoDate): IsoDate | undefined {
  return dropDatesBetween(isoDate(dayNumber(date) - 6), date).at(-1);
}

export function dropDateOnOrAfter(date: IsoDate): IsoDate | undefined {
  return dropDatesBetween(date, isoDate(dayNumber(date) + 6))[0];
}

/** Strict YYYY-MM-DD that exists on the calendar (no 2023-02-30). */
export function isCalendarDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const [y, m, d] = value.split('-').map(Number) as [number, number, number];
  return m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m);
}

function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
}

/** Days since 1970-01-01: whole-day arithmetic in UTC, where no day is ever 23 or 25 hours long. */
function dayNumber(date: IsoDate): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0..99 to 1900..1999.
  return new Date(0).setUTCFullYear(y, m - 1, d) / DAY_MS;
}

/** The date `days` days after `date` (before, when negative). */
export function addDays(date: IsoDate, days: number): IsoDate {
  return isoDate(dayNumber(date) + days);
}

function isoDate(dayNo: number): IsoDate {
  return new Date(dayNo * DAY_MS).toISOString().slice(0, 10);
}

function weekday(date: IsoDate): number {
  return weekdayOf(dayNumber(date));
}

function weekdayOf(dayNo: number): number {
  return new Date(dayNo * DAY_MS).getUTCDay();
}

/** The given flags as a command line would show them, e.g. '--year 2023 --from 2023-01-07'. */
function flags(values: Record<string, string | undefined>): string {
  return Object.entries(values)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `--${name} ${shown(value)}`)
    .join(' ');
}

/** A value as typed, quoted when it is empty or holds spaces or newlines, so messages stay one line. */
export function shown(value: string | undefined): string {
  return value !== undefined && /^[\w.:+-]+$/.test(value) ? value : JSON.stringify(value ?? '');
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

function min(a: IsoDate, b: IsoDate): IsoDate {
  return a < b ? a : b;
}

function max(a: IsoDate, b: IsoDate): IsoDate {
  return a > b ? a : b;
}
