import { describe, expect, it } from 'vitest';
import {
  FIRST_DROP_DATE,
  IRREGULAR_DROP_DATES,
  fileNameFor,
  isDropDate,
  latestDropDate,
  resolveDropDates,
  todayInNewYork,
  type DropDateSelection,
} from '../../src/dates/drop-dates.ts';
import { UsageError } from '../../src/errors.ts';

/** Wednesday 2026-11-25, noon in New York (EST): the fixed "now" unless a test needs another. */
const NOW = new Date('2026-11-25T17:00:00Z');

/** Resolves and expects a UsageError with a one-line message matching `pattern`. */
function expectRefusal(selection: DropDateSelection, pattern: RegExp, now: Date = NOW): void {
  expect(() => resolveDropDates(selection, now)).toThrow(UsageError);
  expect(() => resolveDropDates(selection, now)).toThrow(pattern);
  try {
    resolveDropDates(selection, now);
  } catch (error) {
    expect((error as Error).message).not.toContain('\n');
  }
}

/** Saturdays in [start, end], computed independently of the module (UTC noon, step a day). */
function saturdaysBetween(start: string, end: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${start}T12:00:00Z`); t <= Date.parse(`${end}T12:00:00Z`); t += 86_400_000) {
    const day = new Date(t);
    if (day.getUTCDay() === 6) out.push(day.toISOString().slice(0, 10));
  }
  return out;
}

describe('constants', () => {
  it('start at the Wednesday first file', () => {
    expect(FIRST_DROP_DATE).toBe('2010-05-05');
    expect(IRREGULAR_DROP_DATES).toEqual(['2010-05-05']);
  });
});

describe('todayInNewYork', () => {
  it('is the New York calendar date, not the UTC one', () => {
    expect(todayInNewYork(new Date('2023-06-03T03:30:00Z'))).toBe('2023-06-02'); // 23:30 EDT Friday
    expect(todayInNewYork(new Date('2023-06-03T04:00:00Z'))).toBe('2023-06-03'); // 00:00 EDT Saturday
    expect(todayInNewYork(new Date('2024-01-01T04:59:59Z'))).toBe('2023-12-31'); // 23:59:59 EST
    expect(todayInNewYork(new Date('2024-01-01T05:00:00Z'))).toBe('2024-01-01');
  });
});

describe('latestDropDate', () => {
  it('is today when today is a Saturday in New York', () => {
    expect(latestDropDate(new Date('2023-06-03T16:00:00Z'))).toBe('2023-06-03');
  });

  it('is yesterday on a Sunday', () => {
    expect(latestDropDate(new Date('2023-06-04T16:00:00Z'))).toBe('2023-06-03');
  });

  it('is last Saturday on a Friday', () => {
    expect(latestDropDate(new Date('2023-06-09T16:00:00Z'))).toBe('2023-06-03');
  });

  it('goes by New York, not UTC, around midnight', () => {
    // Friday 23:30 EDT is already Saturday in UTC: this Saturday has not come yet in New York.
    expect(latestDropDate(new Date('2023-06-03T03:30:00Z'))).toBe('2023-05-27');
    expect(latestDropDate(new Date('2023-06-03T03:59:59Z'))).toBe('2023-05-27');
    expect(latestDropDate(new Date('2023-06-03T04:00:01Z'))).toBe('2023-06-03');
  });

  it('handles spring forward (2024-03-10)', () => {
    // Friday 23:59 EST, Saturday 00:00 EST.
    expect(latestDropDate(new Date('2024-03-09T04:59:00Z'))).toBe('2024-03-02');
    expect(latestDropDate(new Date('2024-03-09T05:00:00Z'))).toBe('2024-03-09');
    // Saturday 19:30 EST (Sunday in UTC), then Sunday 01:30 EST and 03:30 EDT either side of the jump.
    expect(latestDropDate(new Date('2024-03-10T00:30:00Z'))).toBe('2024-03-09');
    expect(latestDropDate(new Date('2024-03-10T06:30:00Z'))).toBe('2024-03-09');
    expect(latestDropDate(new Date('2024-03-10T07:30:00Z'))).toBe('2024-03-09');
    // The next Saturday starts an hour earlier in UTC, now that New York is on EDT.
    expect(latestDropDate(new Date('2024-03-16T03:59:00Z'))).toBe('2024-03-09');
    expect(latestDropDate(new Date('2024-03-16T04:00:00Z'))).toBe('2024-03-16');
  });

  it('handles fall back (2024-11-03)', () => {
    // Saturday 2024-11-02 starts at 04:00Z (EDT).
    expect(latestDropDate(new Date('2024-11-02T03:59:00Z'))).toBe('2024-10-26');
    expect(latestDropDate(new Date('2024-11-02T04:00:00Z'))).toBe('2024-11-02');
    // Saturday 20:30 EDT (Sunday in UTC); then 01:30 EDT and 01:30 EST, the repeated hour.
    expect(latestDropDate(new Date('2024-11-03T00:30:00Z'))).toBe('2024-11-02');
    expect(latestDropDate(new Date('2024-11-03T05:30:00Z'))).toBe('2024-11-02');
    expect(latestDropDate(new Date('2024-11-03T06:30:00Z'))).toBe('2024-11-02');
    // The next Saturday starts an hour later in UTC, now that New York is on EST.
    expect(latestDropDate(new Date('2024-11-09T04:30:00Z'))).toBe('2024-11-02');
    expect(latestDropDate(new Date('2024-11-09T05:00:00Z'))).toBe('2024-11-09');
  });

  it('is the Wednesday first file until the first Saturday', () => {
    expect(latestDropDate(new Date('2010-05-05T16:00:00Z'))).toBe('2010-05-05');
    expect(latestDropDate(new Date('2010-05-07T16:00:00Z'))).toBe('2010-05-05');
    expect(latestDropDate(new Date('2010-05-08T16:00:00Z'))).toBe('2010-05-08');
  });

  it('refuses a clock before the first file', () => {
    expect(() => latestDropDate(new Date('2010-05-04T16:00:00Z'))).toThrow(UsageError);
  });
});

describe('isDropDate', () => {
  it('is true exactly on the Saturdays of 2023', () => {
    let saturdays = 0;
    for (
      let t = Date.parse('2023-01-01T12:00:00Z');
      t <= Date.parse('2023-12-31T12:00:00Z');
      t += 86_400_000
    ) {
      const day = new Date(t);
      const isSaturday = day.getUTCDay() === 6;
      expect(isDropDate(day.toISOString().slice(0, 10))).toBe(isSaturday);
      if (isSaturday) saturdays++;
    }
    expect(saturdays).toBe(52);
  });

  it('includes the irregular first file and nothing before it', () => {
    expect(isDropDate('2010-05-05')).toBe(true); // a Wednesday
    expect(isDropDate('2010-05-01')).toBe(false); // a Saturday before the first file
    expect(isDropDate('2010-05-08')).toBe(true);
    expect(isDropDate('2010-05-12')).toBe(false); // later Wednesdays are not
    expect(isDropDate('2009-01-03')).toBe(false);
  });

  it('is false for anything that is not a real YYYY-MM-DD date', () => {
    for (const value of [
      '2023-6-3',
      '20230603',
      '2023-06-03T00:00',
      ' 2023-06-03',
      '2023-02-30',
      '2023-13-04',
      '',
    ])
      expect(isDropDate(value)).toBe(false);
  });
});

describe('fileNameFor', () => {
  it('names the file after the drop date with a two-digit year', () => {
    expect(fileNameFor('2023-06-03')).toBe('turnstile_230603.txt');
    expect(fileNameFor('2010-05-05')).toBe('turnstile_100505.txt');
  });

  it('refuses a malformed date', () => {
    expect(() => fileNameFor('2023-6-3')).toThrow(RangeError);
  });
});

describe('resolveDropDates', () => {
  it('is the latest drop date when nothing is given', () => {
    expect(resolveDropDates({}, NOW)).toEqual(['2026-11-21']);
    expect(resolveDropDates({ year: undefined, from: undefined }, NOW)).toEqual(['2026-11-21']);
  });

  it('lists a whole past year: 2022 has 53 Saturdays', () => {
    const dates = resolveDropDates({ year: '2022' }, NOW);
    expect(dates).toHaveLength(53);
    expect(dates[0]).toBe('2022-01-01');
    expect(dates.at(-1)).toBe('2022-12-31');
    expect(dates).toEqual(saturdaysBetween('2022-01-01', '2022-12-31'));
  });

  it('lists 2023 (52 Saturdays) when asked in January 2024', () => {
    const dates = resolveDropDates({ year: '2023' }, new Date('2024-01-10T17:00:00Z'));
    expect(dates).toHaveLength(52);
    expect(dates.at(-1)).toBe('2023-12-30');
  });

  it('starts 2010 at the Wednesday first file, then the Saturdays', () => {
    const dates = resolveDropDates({ year: '2010' }, NOW);
    expect(dates.slice(0, 3)).toEqual(['2010-05-05', '2010-05-08', '2010-05-15']);
    expect(dates.at(-1)).toBe('2010-12-25');
    expect(dates).toHaveLength(35);
  });

  it('lists the current year only up to today', () => {
    const dates = resolveDropDates({ year: '2026' }, NOW);
    expect(dates[0]).toBe('2026-01-03');
    expect(dates.at(-1)).toBe('2026-11-21');
    expect(dates).toEqual(saturdaysBetween('2026-01-01', '2026-11-25'));
  });

  it('lists the last month of a year from the next year', () => {
    expect(resolveDropDates({ year: '2023', month: '12' }, new Date('2024-01-10T17:00:00Z'))).toEqual([
      '2023-12-02',
      '2023-12-09',
      '2023-12-16',
      '2023-12-23',
      '2023-12-30',
    ]);
  });

  it('accepts a zero-padded month', () => {
    expect(resolveDropDates({ year: '2023', month: '06' }, NOW)).toEqual(
      resolveDropDates({ year: '2023', month: '6' }, NOW),
    );
  });

  it('lists a month in progress only up to today', () => {
    const tuesday = new Date('2023-06-20T16:00:00Z');
    expect(resolveDropDates({ year: '2023', month: '6' }, tuesday)).toEqual([
      '2023-06-03',
      '2023-06-10',
      '2023-06-17',
    ]);
  });

  it('includes today in the month listing when today is a Saturday in New York', () => {
    const saturdayNoon = new Date('2023-06-17T16:00:00Z');
    expect(resolveDropDates({ year: '2023', month: '6' }, saturdayNoon).at(-1)).toBe('2023-06-17');
    // Friday 23:00 EDT: Saturday in UTC, not yet in New York.
    const fridayNight = new Date('2023-06-17T03:00:00Z');
    expect(resolveDropDates({ year: '2023', month: '6' }, fridayNight)).toEqual(['2023-06-03', '2023-06-10']);
  });

  it('lists May 2010 from the first file', () => {
    expect(resolveDropDates({ year: '2010', month: '5' }, NOW)).toEqual([
      '2010-05-05',
      '2010-05-08',
      '2010-05-15',
      '2010-05-22',
      '2010-05-29',
    ]);
  });

  it('resolves one day given as year, month and day', () => {
    expect(resolveDropDates({ year: '2023', month: '6', day: '3' }, NOW)).toEqual(['2023-06-03']);
    expect(resolveDropDates({ year: '2010', month: '05', day: '05' }, NOW)).toEqual(['2010-05-05']);
  });

  it('resolves --date, including today when it is a Saturday', () => {
    expect(resolveDropDates({ date: '2023-06-03' }, NOW)).toEqual(['2023-06-03']);
    expect(resolveDropDates({ date: '2023-06-03' }, new Date('2023-06-03T04:00:00Z'))).toEqual([
      '2023-06-03',
    ]);
  });

  it('resolves an inclusive --from/--to range', () => {
    expect(resolveDropDates({ from: '2023-05-06', to: '2023-06-03' }, NOW)).toEqual([
      '2023-05-06',
      '2023-05-13',
      '2023-05-20',
      '2023-05-27',
      '2023-06-03',
    ]);
    expect(resolveDropDates({ from: '2023-06-03', to: '2023-06-03' }, NOW)).toEqual(['2023-06-03']);
  });

  it('runs --from alone up to today', () => {
    expect(resolveDropDates({ from: '2026-10-28' }, NOW)).toEqual([
      '2026-10-31',
      '2026-11-07',
      '2026-11-14',
      '2026-11-21',
    ]);
  });

  it('clips a range that starts before the first file, ascending without duplicates', () => {
    const dates = resolveDropDates({ from: '2009-01-01', to: '2010-05-22' }, NOW);
    expect(dates).toEqual(['2010-05-05', '2010-05-08', '2010-05-15', '2010-05-22']);
  });

  it('returns every drop date since the first file, ascending and unique', () => {
    const dates = resolveDropDates({ from: '2010-01-01' }, NOW);
    expect(dates[0]).toBe('2010-05-05');
    expect(dates.at(-1)).toBe('2026-11-21');
    expect(new Set(dates).size).toBe(dates.length);
    expect([...dates].sort()).toEqual(dates);
    expect(dates.slice(1)).toEqual(saturdaysBetween('2010-05-06', '2026-11-25'));
  });
});

describe('resolveDropDates refusals', () => {
  const cases: [string, DropDateSelection, RegExp][] = [
    // Malformed years.
    ['year abc', { year: 'abc' }, /^--year abc is not a year \(2010 to 9999\)$/],
    ['year 6.5', { year: '2023.5' }, /^--year 2023\.5 is not a year \(2010 to 9999\)$/],
    ['year empty', { year: '' }, /^--year "" is not a year \(2010 to 9999\)$/],
    ['year leading space', { year: ' 2023' }, /^--year " 2023" is not a year/],
    ['year plus sign', { year: '+2023' }, /^--year \+2023 is not a year/],
    ['year hex', { year: '0x7E7' }, /^--year 0x7E7 is not a year/],
    ['year 10000', { year: '10000' }, /^--year 10000 is not a year \(2010 to 9999\)$/],
    ['year newline', { year: '2023\n' }, /^--year "2023\\n" is not a year/],
    [
      'year before first file',
      { year: '2009' },
      /^--year 2009 is before the first published file \(2010-05-05\)$/,
    ],
    [
      'year in the future',
      { year: '2027' },
      /^--year 2027 is in the future \(today in New York is 2026-11-25\)$/,
    ],
    // Malformed months.
    ['month 13', { year: '2023', month: '13' }, /^--month 13 is not a month \(1 to 12\)$/],
    ['month 0', { year: '2023', month: '0' }, /^--month 0 is not a month \(1 to 12\)$/],
    ['month 6.5', { year: '2023', month: '6.5' }, /^--month 6\.5 is not a month \(1 to 12\)$/],
    ['month abc', { year: '2023', month: 'abc' }, /^--month abc is not a month/],
    ['month empty', { year: '2023', month: '' }, /^--month "" is not a month/],
    ['month leading space', { year: '2023', month: ' 6' }, /^--month " 6" is not a month/],
    ['month plus sign', { year: '2023', month: '+6' }, /^--month \+6 is not a month/],
    ['month hex', { year: '2023', month: '0x6' }, /^--month 0x6 is not a month/],
    [
      'month in the future',
      { year: '2026', month: '12' },
      /^--year 2026 --month 12 is in the future \(today in New York is 2026-11-25\)$/,
    ],
    [
      'month before first file',
      { year: '2010', month: '4' },
      /^--year 2010 --month 4 is before the first published file \(2010-05-05\)$/,
    ],
    // Malformed days.
    [
      'day 31 of June',
      { year: '2023', month: '6', day: '31' },
      /^--day 31 is not a day of 2023-06 \(1 to 30\)$/,
    ],
    [
      'day 29 of Feb 2023',
      { year: '2023', month: '2', day: '29' },
      /^--day 29 is not a day of 2023-02 \(1 to 28\)$/,
    ],
    ['day 0', { year: '2023', month: '6', day: '0' }, /^--day 0 is not a day of 2023-06/],
    ['day 3.0', { year: '2023', month: '6', day: '3.0' }, /^--day 3\.0 is not a day of 2023-06/],
    ['day empty', { year: '2023', month: '6', day: '' }, /^--day "" is not a day of 2023-06/],
    // A day that exists but is not a drop date, or is out of bounds.
    [
      'day not a drop date',
      { year: '2023', month: '6', day: '4' },
      /^2023-06-04 is not a drop date: drop dates are Saturdays \(the nearest are 2023-06-03 and 2023-06-10\)$/,
    ],
    ['leap day not a drop date', { year: '2024', month: '2', day: '29' }, /^2024-02-29 is not a drop date/],
    [
      'day in the future',
      { year: '2026', month: '11', day: '28' },
      /^2026-11-28 is in the future \(today in New York is 2026-11-25\)$/,
    ],
    [
      'day before first file',
      { year: '2010', month: '5', day: '1' },
      /^2010-05-01 is before the first published file \(2010-05-05\)$/,
    ],
    // Missing parts.
    ['month without year', { month: '6' }, /^--month 6 needs --year/],
    ['day without month', { year: '2023', day: '3' }, /^--day 3 needs --month/],
    ['day alone', { day: '3' }, /^--day 3 needs --year/],
    ['to without from', { to: '2023-05-06' }, /^--to 2023-05-06 needs --from/],
    // Mixed shapes.
    [
      'date with year',
      { date: '2023-06-03', year: '2023' },
      /^--date 2023-06-03 cannot be combined with --year 2023: /,
    ],
    [
      'date with day',
      { date: '2023-06-03', day: '3' },
      /^--date 2023-06-03 cannot be combined with --day 3: /,
    ],
    [
      'date with from',
      { date: '2023-06-03', from: '2023-01-07' },
      /^--date 2023-06-03 cannot be combined with --from 2023-01-07: /,
    ],
    [
      'date with to',
      { date: '2023-06-03', to: '2023-07-01' },
      /^--date 2023-06-03 cannot be combined with --to 2023-07-01: /,
    ],
    [
      'year with from',
      { year: '2023', from: '2023-01-07' },
      /^--year 2023 cannot be combined with --from 2023-01-07: /,
    ],
    [
      'month with to',
      { year: '2023', month: '6', to: '2023-07-01' },
      /^--year 2023 --month 6 cannot be combined with --to 2023-07-01: /,
    ],
    // --date.
    [
      'date not a drop date',
      { date: '2023-06-04' },
      /^2023-06-04 is not a drop date: drop dates are Saturdays \(the nearest are 2023-06-03 and 2023-06-10\)$/,
    ],
    [
      'date whose next drop date has not come',
      { date: '2026-11-24' },
      /^2026-11-24 is not a drop date: drop dates are Saturdays \(the latest is 2026-11-21\)$/,
    ],
    [
      'date in the future',
      { date: '2031-01-04' },
      /^2031-01-04 is in the future \(today in New York is 2026-11-25\)$/,
    ],
    [
      'date before first file',
      { date: '2009-01-03' },
      /^2009-01-03 is before the first published file \(2010-05-05\)$/,
    ],
    ['date just before first file', { date: '2010-05-04' }, /^2010-05-04 is before the first published file/],
    [
      'date not in calendar',
      { date: '2023-02-30' },
      /^--date 2023-02-30 is not a calendar date \(YYYY-MM-DD/,
    ],
    ['date month 13', { date: '2023-13-01' }, /^--date 2023-13-01 is not a calendar date/],
    ['date unpadded', { date: '2023-6-3' }, /^--date 2023-6-3 is not a calendar date/],
    ['date compact', { date: '20230603' }, /^--date 20230603 is not a calendar date/],
    ['date with time', { date: '2023-06-03T00:00' }, /^--date 2023-06-03T00:00 is not a calendar date/],
    ['date empty', { date: '' }, /^--date "" is not a calendar date/],
    // Ranges.
    [
      'from after to',
      { from: '2023-06-10', to: '2023-05-06' },
      /^--from 2023-06-10 is after --to 2023-05-06$/,
    ],
    [
      'to in the future',
      { from: '2026-11-01', to: '2026-11-28' },
      /^--to 2026-11-28 is in the future \(today in New York is 2026-11-25\)$/,
    ],
    [
      'from alone in the future',
      { from: '2026-12-05' },
      /^--from 2026-12-05 is in the future \(today in New York is 2026-11-25\)$/,
    ],
    [
      'range before first file',
      { from: '2009-01-01', to: '2010-05-04' },
      /^--from 2009-01-01 --to 2010-05-04 is entirely before the first published file \(2010-05-05\)$/,
    ],
    [
      'range without a drop date',
      { from: '2023-06-04', to: '2023-06-09' },
      /there is no drop date from 2023-06-04 to 2023-06-09 \(drop dates are Saturdays\)$/,
    ],
    ['from malformed', { from: '2023-06-31', to: '2023-07-01' }, /^--from 2023-06-31 is not a calendar date/],
    ['to malformed', { from: '2023-06-03', to: 'tomorrow' }, /^--to tomorrow is not a calendar date/],
  ];

  it.each(cases)('refuses %s', (_name, selection, pattern) => {
    expectRefusal(selection, pattern);
  });

  it('refuses a month that has not reached its first Saturday yet', () => {
    // Friday 2023-09-01: September's first drop date is tomorrow.
    expectRefusal(
      { year: '2023', month: '9' },
      /^--year 2023 --month 9: no drop date in that month has come yet \(the first is 2023-09-02; today in New York is 2023-09-01\)$/,
      new Date('2023-09-01T16:00:00Z'),
    );
  });

  it('refuses a year that has not reached its first Saturday yet', () => {
    expectRefusal(
      { year: '2024' },
      /^--year 2024: no drop date in that year has come yet \(the first is 2024-01-06; today in New York is 2024-01-03\)$/,
      new Date('2024-01-03T16:00:00Z'),
    );
    expect(resolveDropDates({ year: '2024' }, new Date('2024-01-10T16:00:00Z'))).toEqual(['2024-01-06']);
  });

  it('refuses a year that starts tomorrow in New York but today in UTC', () => {
    // 2023-12-31 23:30 EST is already 2024 in UTC.
    expectRefusal(
      { year: '2024' },
      /^--year 2024 is in the future \(today in New York is 2023-12-31\)$/,
      new Date('2024-01-01T04:30:00Z'),
    );
  });
});
