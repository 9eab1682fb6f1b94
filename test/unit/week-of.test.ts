/**
 * `--week-of`: any date selects the drop date whose file holds its readings, the first drop date
 * after it (the file named for Saturday D holds D-7 to D-1). Checked for every weekday around a
 * drop date, across a year boundary, at the first file, for the future, and through the CLI.
 */
import { describe, expect, it } from 'vitest';
import { dropDateCovering, resolveWeekOf } from '../../src/dates/week-of.ts';
import { resolveSelection } from '../../src/dates/selection.ts';
import { UsageError } from '../../src/errors.ts';
import { inProcess } from '../support/harnesses/in-process-cli.ts';

/** Monday 2023-06-05, noon in New York: the latest drop date is Saturday 2023-06-03. */
const NOW = new Date('2023-06-05T16:00:00Z');

function refusal(value: string, now = NOW): string {
  try {
    resolveWeekOf(value, now);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`--week-of ${value} was not refused`);
}

describe('--week-of: the drop date whose file covers a date', () => {
  it('takes each day of Saturday 2023-05-27 to Friday 2023-06-02 to the file of 2023-06-03', () => {
    const days = [
      '2023-05-27',
      '2023-05-28',
      '2023-05-29',
      '2023-05-30',
      '2023-05-31',
      '2023-06-01',
      '2023-06-02',
    ];
    // Saturday, Sunday (Airflow's {{ ds }} for a weekly Sunday run), Monday ... Friday.
    expect(days.map((day) => new Date(`${day}T12:00:00Z`).getUTCDay())).toEqual([6, 0, 1, 2, 3, 4, 5]);
    for (const day of days) expect(resolveWeekOf(day, NOW), day).toBe('2023-06-03');
  });

  it("takes a drop date itself to the next file: a Saturday's readings are in the next Saturday's file", () => {
    expect(dropDateCovering('2023-06-03')).toBe('2023-06-10');
    expect(dropDateCovering('2023-05-26')).toBe('2023-05-27');
    expect(resolveWeekOf('2023-05-26', NOW)).toBe('2023-05-27');
  });

  it('crosses a year boundary', () => {
    // 2022-12-31 is a Saturday: its readings are in 2023-01-07's file; the week before, in its own.
    expect(dropDateCovering('2022-12-24')).toBe('2022-12-31');
    expect(dropDateCovering('2022-12-30')).toBe('2022-12-31');
    expect(dropDateCovering('2022-12-31')).toBe('2023-01-07');
    expect(dropDateCovering('2023-01-01')).toBe('2023-01-07');
    expect(dropDateCovering('2023-01-06')).toBe('2023-01-07');
    // 2020-12-31 is a Thursday: the file of Saturday 2021-01-02.
    expect(resolveWeekOf('2020-12-31', NOW)).toBe('2021-01-02');
  });

  it('covers the week before the Wednesday first file with it, and refuses earlier dates', () => {
    expect(dropDateCovering('2010-04-28')).toBe('2010-05-05');
    expect(dropDateCovering('2010-05-04')).toBe('2010-05-05');
    expect(dropDateCovering('2010-05-05')).toBe('2010-05-08');
    expect(refusal('2010-04-27')).toMatch(/before the first published file's week/);
  });

  it('refuses a date whose covering file is in the future, in one line', () => {
    // Sunday 2023-06-04 is in the file of 2023-06-10, not due until then.
    const message = refusal('2023-06-04');
    expect(message).toBe(
      '--week-of 2023-06-04 is in the file of 2023-06-10, which is in the future (today in New York is 2023-06-05; the file named for a Saturday holds the 7 days before it)',
    );
    expect(refusal('2023-06-03')).toMatch(/file of 2023-06-10, which is in the future/);
    expect(refusal('2031-01-01')).toMatch(/in the future/);
    // On Saturday 2023-06-10 itself, that file is due.
    expect(resolveWeekOf('2023-06-04', new Date('2023-06-10T16:00:00Z'))).toBe('2023-06-10');
  });

  it('refuses what is not a calendar date, and --week-of with another selection', () => {
    expect(refusal('2023-02-30')).toMatch(/is not a calendar date/);
    expect(refusal('2023-6-3')).toMatch(/is not a calendar date/);
    expect(() => resolveSelection({ weekOf: '2023-05-28', date: '2023-06-03' }, NOW)).toThrow(
      /--week-of 2023-05-28 cannot be combined with --date 2023-06-03/,
    );
    expect(resolveSelection({ weekOf: '2023-05-28' }, NOW)).toEqual(['2023-06-03']);
  });
});

describe('--week-of through the CLI', () => {
  const env = { MTA_INGEST_NOW: NOW.toISOString(), MTA_INGEST_SOURCE_URL: 'http://127.0.0.1:9/nowhere' };

  it('plans the covering drop date', async () => {
    const result = await inProcess(
      [
        'plan',
        '--week-of',
        '2023-05-28',
        '--json',
        '--lake',
        '/nonexistent/lake',
        '--warehouse',
        '/nonexistent/wh.duckdb',
      ],
      env,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(
      (JSON.parse(result.stdout) as { weeks: { dropDate: string }[] }).weeks.map((week) => week.dropDate),
    ).toEqual(['2023-06-03']);
  });

  it('refuses a covering file in the future with exit 2 and one line, before any fetch', async () => {
    const result = await inProcess(['run', '--week-of', '2023-06-04'], env);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(
      '--week-of 2023-06-04 is in the file of 2023-06-10, which is in the future',
    );
  });
});
